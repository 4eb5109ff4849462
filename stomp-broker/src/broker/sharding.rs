//! Shards ([`BrokerConfig::with_shard`](crate::BrokerConfig::with_shard)): one server's
//! brokers, each with its own connections, routing side by side on as many cores. Every
//! broker destination has one owner shard, chosen by its name: a message sent anywhere goes
//! to its destination's owner, which routes it. A topic's owner hands each message to every
//! shard, which delivers it to its own subscribers; a queue's owner keeps the queue, and its
//! consumers on other shards are the owner's remote consumers, each message handed to one
//! of them and held until that shard says it is done with (acknowledged, or written under
//! auto ack). All subscribers of a destination therefore get its messages in one order, the
//! owner's, in which each publisher's messages keep the order they were sent in (the owner
//! gets them over one channel). What passes between shards is a [`ShardMessage`], which the
//! driver carries from the [`BrokerEvent::ToShard`] of one broker to
//! [`Broker::handle_shard`] of another, over one channel into each shard, in order.

use std::sync::Arc;
use std::time::Instant;

use crate::event::BrokerEvent;
use crate::ids::{ConnectionId, SubscriberKey};
use crate::policy::Kind;
use crate::queue::Stored;
use crate::settlement::Settlement;
use crate::shard::{Inner, Peer, ShardMessage, owner_of};

use super::routing::{delivery_of, stored_headers};
use super::{Broker, Subscriber};

impl Broker {
    /// This broker's own shard index.
    pub(super) fn here(&self) -> usize {
        self.config.shard.index
    }

    /// The shard that owns `destination`.
    pub(super) fn owner(&self, destination: &str) -> usize {
        owner_of(destination, self.config.shard.count)
    }

    /// The shard a connection id was handed out by (ids are strided, see `Shard::id`).
    pub(super) fn shard_of(&self, connection: ConnectionId) -> usize {
        let count = self.config.shard.count as u64;
        (connection.get().saturating_sub(1) % count) as usize
    }

    pub(super) fn tell(&mut self, shard: usize, inner: Inner) {
        self.events.push_back(BrokerEvent::ToShard {
            shard,
            message: ShardMessage(inner),
        });
    }

    /// A message another shard sent this one, `from` naming the sender.
    pub fn handle_shard(&mut self, now: Instant, from: usize, message: ShardMessage) {
        self.steps += 1;
        match message.0 {
            Inner::Publish { mut message, from } => {
                if self.policy.is_queue(&message.destination) {
                    self.renumber(&mut message);
                }
                self.route_here(now, message, from);
            }
            Inner::Fanout(message) => {
                self.deliver_to_subscribers(now, &message);
            }
            Inner::Consume {
                consumer,
                connection,
                id,
                destination,
                ack,
                window,
            } => {
                self.next_subscriber += 1;
                let key = SubscriberKey(self.next_subscriber);
                self.remote_consumers.insert((from, consumer), key);
                self.queues.add_consumer(&destination, key);
                let mut subscriber = Subscriber::new(connection, id, &destination, Kind::Queue);
                subscriber.ack = ack;
                subscriber.window = window;
                subscriber.remote = Some(Peer {
                    shard: from,
                    key: consumer,
                });
                self.subscribers.insert(key, subscriber);
                self.dispatch(now, &destination);
            }
            Inner::Cancel { consumer, handed } => self.cancel(now, from, consumer, &handed),
            Inner::Deliver {
                consumer,
                connection,
                message,
            } => {
                // Its MESSAGE waits for the owner's record of the delivery.
                if message.journaled.is_some() {
                    self.wait_afar(connection);
                }
                let headers = stored_headers(&message);
                let delivery = delivery_of(&message, &headers);
                // A consumer that ended meanwhile told the owner, which takes the message back
                // when that word arrives. One that lives but cannot take it gives it back now.
                if !self.deliver_from_afar(consumer, now, delivery, Kind::Remote)
                    && self.subscribers.contains_key(&consumer)
                {
                    let settle = Inner::Settle {
                        consumer,
                        message_ids: vec![message.message_id],
                        settlement: Settlement::Nack,
                        confirm: None,
                    };
                    self.tell(from, settle);
                }
            }
            Inner::Settle {
                consumer,
                message_ids,
                settlement,
                confirm,
            } => {
                if let Some(key) = self.remote_consumers.get(&(from, consumer)).copied() {
                    self.settle(now, key, &message_ids, settlement);
                }
                if let Some(connection) = confirm {
                    self.confirm_afar(from, connection);
                }
            }
            Inner::Gone { connection } => {
                self.paused.remove(&connection);
            }
            Inner::Synced { connection } => self.synced_afar(connection),
            Inner::Pause { connection, paused } => {
                if let Some(c) = self.connections.get_mut(&connection) {
                    c.held_by = paused.then_some(from);
                    c.pause_or_resume(now);
                    self.ready.insert(connection);
                } else if paused {
                    // Gone while its message was on its way: the owner forgets it now, not
                    // once the queue has room.
                    self.tell(from, Inner::Gone { connection });
                }
            }
        }
    }

    /// A consumer on shard `from` ended: it leaves its queue, and what it held goes back but
    /// for the messages `handed` to its client, which it keeps until they are settled.
    pub(super) fn cancel(
        &mut self,
        now: Instant,
        from: usize,
        consumer: SubscriberKey,
        handed: &[String],
    ) {
        let Some(key) = self.remote_consumers.get(&(from, consumer)).copied() else {
            return;
        };
        let Some(mut s) = self.subscribers.remove(&key) else {
            return;
        };
        let kept: foldhash::HashMap<String, (u64, Stored)> = handed
            .iter()
            .filter_map(|id| s.unacked.remove_entry(id))
            .collect();
        let rest = Subscriber {
            unacked: kept,
            remote: s.remote,
            cancelled: true,
            ..Subscriber::new(s.connection, s.id.clone(), s.pattern.as_str(), Kind::Queue)
        };
        self.end_consumer(now, key, s);
        if rest.unacked.is_empty() {
            self.remote_consumers.remove(&(from, consumer));
        } else {
            self.subscribers.insert(key, rest);
        }
    }

    /// Routes a message here or hands it to its destination's owner.
    pub(super) fn route(&mut self, now: Instant, message: Stored, from: Option<ConnectionId>) {
        let owner = self.owner(&message.destination);
        if owner == self.here() {
            self.route_here(now, message, from);
        } else {
            // With a journal, its RECEIPT waits for the owner's.
            if let (Some(from), Some(_)) = (from, message.journaled) {
                self.wait_afar(from);
            }
            self.tell(owner, Inner::Publish { message, from });
        }
    }

    /// As the owner of the message's destination: into its queue, or to every topic
    /// subscriber here and on every other shard.
    pub(super) fn route_here(&mut self, now: Instant, message: Stored, from: Option<ConnectionId>) {
        if self.policy.is_queue(&message.destination) {
            let mut message = message;
            self.set_expiry(now, &mut message);
            let name = message.destination.clone();
            let journaled = message.journaled.is_some();
            if let Some(key) = message.journaled {
                self.journal.put(&message, key);
                // Its RECEIPT leaves once the journal has it, here or on the publisher's shard.
                match from {
                    Some(from) if self.shard_of(from) == self.here() => self.hold_for_journal(from),
                    Some(from) => self.confirm_afar(self.shard_of(from), from),
                    None => {}
                }
            }
            self.queues.push(message);
            self.dispatch(now, &name);
            if let Some(from) = from {
                self.pause_if_full(from, now, &name, journaled && self.journal_usage.full);
            }
            return;
        }
        let mut message = message;
        self.number(now, &mut message);
        self.deliver_to_subscribers(now, &message);
        // One message shared by the other shards, allocated only when there are others.
        if self.config.shard.count > 1 {
            let message = Arc::new(message);
            let here = self.here();
            for shard in (0..self.config.shard.count).filter(|s| *s != here) {
                self.tell(shard, Inner::Fanout(message.clone()));
            }
        }
    }

    /// Stops `connection`'s input, here or on its own shard, if the queue it sent to, or all
    /// queues, are over their limit, or the journal is (`disk_full`, for a persistent message).
    pub(super) fn pause_if_full(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        queue: &str,
        disk_full: bool,
    ) {
        let full = disk_full
            || self
                .queues
                .get(queue)
                .is_some_and(|q| q.bytes > self.config.max_queue_bytes)
            || self.queues.total_bytes() > self.config.max_total_queue_bytes;
        let shard = self.shard_of(connection);
        // A publisher here that is gone already has nothing to pause.
        if !full || (shard == self.here() && !self.connections.contains_key(&connection)) {
            return;
        }
        self.paused.insert(connection, queue.to_owned());
        if shard != self.here() {
            self.tell(
                shard,
                Inner::Pause {
                    connection,
                    paused: true,
                },
            );
        } else if let Some(c) = self.connections.get_mut(&connection) {
            c.session.pause_input(now);
            c.paused_here = true;
            self.ready.insert(connection);
        }
    }

    /// Lets flow-controlled publishers go on once their queue, and all queues, have room.
    pub(super) fn resume_publishers(&mut self, now: Instant) {
        if self.paused.is_empty()
            || self.queues.total_bytes() > self.config.max_total_queue_bytes
            || self.journal_usage.full
        {
            return;
        }
        let limit = self.config.max_queue_bytes;
        let resumed: Vec<ConnectionId> = self
            .paused
            .iter()
            .filter(|(_, queue)| self.queues.get(queue).is_none_or(|q| q.bytes <= limit))
            .map(|(id, _)| *id)
            .collect();
        for id in resumed {
            self.paused.remove(&id);
            let shard = self.shard_of(id);
            if shard != self.here() {
                self.tell(
                    shard,
                    Inner::Pause {
                        connection: id,
                        paused: false,
                    },
                );
            } else if let Some(c) = self.connections.get_mut(&id) {
                c.paused_here = false;
                c.pause_or_resume(now);
                self.ready.insert(id);
            }
        }
    }
}
