//! Durable topic subscriptions, in the headers clients already send: RabbitMQ's
//! (`durable:true` and `auto-delete:false` on a SUBSCRIBE, named by its `id`) and ActiveMQ's
//! (`client-id` on CONNECT and `activemq.subscriptionName` on SUBSCRIBE). Each is a queue of
//! its own, outside every destination a client can name, that takes a copy of every message
//! of its topic while the subscription lasts, connected or not; its subscriber consumes that
//! queue. An UNSUBSCRIBE with the broker's convention (`durable:true`, or the subscription
//! name) ends it and drops what waits; a plain UNSUBSCRIBE or a disconnect keeps it.

use std::time::Instant;

use bytes::Bytes;
use stomp_session::FrameBuf;

use crate::config::Persistence;
use crate::ids::{ConnectionId, SubscriberKey};
use crate::pattern::Pattern;
use crate::queue::Stored;

use super::{Broker, Durable};

/// The queue that holds a durable subscription's messages: a name no SUBSCRIBE or SEND can
/// reach, since every destination a client names starts with `/`.
pub(super) fn durable_queue(name: &str) -> String {
    format!("durable:{name}")
}

impl Broker {
    /// The durable subscription a SUBSCRIBE asks for, by either convention, named within its
    /// user's (so that no client reaches another user's), or `None` for a plain one.
    /// ActiveMQ's needs the connection's `client-id`, as ActiveMQ does.
    pub(super) fn durable_name(
        &self,
        connection: ConnectionId,
        frame: &FrameBuf,
    ) -> Option<String> {
        let c = self.connections.get(&connection)?;
        let user = c.user.as_deref().unwrap_or("");
        if let Some(name) = frame.header("activemq.subscriptionName") {
            let client = c.client_id.as_deref()?;
            return Some(format!("activemq/{user}/{client}/{name}"));
        }
        let asked = ["durable", "persistent"]
            .iter()
            .any(|h| frame.header(h).as_deref() == Some("true"));
        let kept = frame.header("auto-delete").as_deref() != Some("true");
        if asked && kept {
            let id = frame.header("id")?;
            return Some(format!("rabbitmq/{user}/{id}"));
        }
        None
    }

    /// Whether an UNSUBSCRIBE ends the durable subscription behind it, as its convention
    /// says.
    pub(super) fn ends_durable(frame: &FrameBuf) -> bool {
        let durable = ["durable", "persistent"]
            .iter()
            .any(|h| frame.header(h).as_deref() == Some("true"));
        durable || frame.header("activemq.subscriptionName").is_some()
    }

    /// Makes durable subscription `name` to `destination`, or moves it there.
    pub(super) fn make_durable(&mut self, name: &str, destination: &str) {
        if let Some(durable) = self.durables.get(name) {
            if durable.destination == destination {
                return;
            }
            self.end_durable(name);
        }
        self.next_subscriber += 1;
        let key = SubscriberKey(self.next_subscriber);
        let pattern = Pattern::new(destination);
        self.durable_routes
            .insert(destination, pattern.is_wild(), key);
        self.durable_keys.insert(key, name.to_owned());
        let durable = Durable {
            destination: destination.to_owned(),
            key,
        };
        self.durables.insert(name.to_owned(), durable);
    }

    /// Forgets durable subscription `name`; its queue is left to the caller.
    pub(super) fn end_durable(&mut self, name: &str) {
        if let Some(durable) = self.durables.remove(name) {
            let wild = Pattern::new(&durable.destination).is_wild();
            self.durable_routes
                .remove(&durable.destination, wild, durable.key);
            self.durable_keys.remove(&durable.key);
        }
    }

    /// A SUBSCRIBE made durable subscription `name`: recorded, and its queue's name returned.
    pub(super) fn subscribe_durable(&mut self, name: &str, destination: &str) -> String {
        let known = self
            .durables
            .get(name)
            .is_some_and(|d| d.destination == destination);
        if !known {
            self.make_durable(name, destination);
            if self.config.persistence != Persistence::Off {
                self.journal.durable(name, destination);
            }
        }
        durable_queue(name)
    }

    /// The client ended durable subscription `name`: what waits for it is dropped.
    pub(super) fn unsubscribe_durable(&mut self, name: &str) {
        let queue = durable_queue(name);
        for message in self.queues.take_where(&queue, |_| true) {
            if let Some(key) = message.journaled {
                self.journal.removed(key);
            }
            self.queues.done(&message);
        }
        self.end_durable(name);
        if self.config.persistence != Persistence::Off {
            self.journal.durable_ended(name);
        }
    }

    /// A copy of a topic message for every durable subscription it reaches, into its queue
    /// (written to the journal when the broker has one), within the queue limits: past them
    /// the copy is dropped and counted, so that an absent subscriber never holds up the
    /// topic's publishers.
    pub(super) fn keep_for_durables(&mut self, now: Instant, message: &Stored) {
        if self.durables.is_empty() {
            return;
        }
        let mut keys = Vec::new();
        self.durable_routes
            .matching(&message.destination, &mut keys);
        if keys.is_empty() {
            return;
        }
        // Copied once, so that the copies do not pin the buffer the SEND was read into.
        let body = Bytes::copy_from_slice(&message.body);
        for key in keys {
            self.steps += 1;
            let Some(name) = self.durable_keys.get(&key) else {
                continue;
            };
            let queue = durable_queue(name);
            let full = (self.queues.get(&queue))
                .is_some_and(|q| q.bytes > self.config.max_queue_bytes)
                || self.queues.total_bytes() > self.config.max_total_queue_bytes;
            if full {
                self.totals.durable_dropped += 1;
                continue;
            }
            let mut copy = self.new_message(&queue, message.headers.clone(), body.clone());
            copy.origin = Some(message.destination.clone());
            if self.config.persistence != Persistence::Off {
                let key = self.config.shard.id(self.next_message);
                copy.journaled = Some(key);
                self.journal.put(&copy, key);
            }
            self.queues.push(copy);
            self.dispatch(now, &queue);
        }
    }
}
