//! Routing: messages from publishers, the application and other shards to subscribers and
//! queue consumers, within each consumer's window, and back to the queue when not written.

use std::collections::BTreeSet;
use std::time::Instant;

use bytes::Bytes;
use stomp_session::{Delivery, ServerSession, SharedDelivery, SubscriptionId};

use crate::config::Persistence;
use crate::event::{BrokerEvent, RelayEvent};
use crate::ids::{ConnectionId, SubscriberKey};
use crate::queue::Stored;
use crate::shard::{self};

use super::dead_letter::DeadLetter;
use super::persistence::hold;
use super::{Broker, Unwritten};

impl Broker {
    /// Publishes a message to a broker destination, as a SEND there would; returns its id. A
    /// queue takes it whatever its size: the application bounds what it publishes. In relay
    /// mode it becomes a [`RelayEvent::Publish`](crate::RelayEvent::Publish).
    pub fn publish(
        &mut self,
        now: Instant,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> String {
        let message = self.new_message(destination, owned(headers), body);
        let id = message.message_id.clone();
        if self.config.relay && self.policy.is_served(destination) {
            self.events
                .push_back(BrokerEvent::Relay(RelayEvent::Publish {
                    destination: message.destination,
                    headers: message.headers,
                    body: message.body,
                }));
            return id;
        }
        self.route(now, message, None);
        id
    }

    /// Sends a message to `connection`'s own subscriptions to `destination` (such as a
    /// `/user/queue/replies` it subscribed to), as an answer to that client alone; pattern
    /// subscriptions are not answered. Returns how many subscriptions it reached. Its cost does
    /// not grow with the connection's other subscriptions.
    pub fn reply(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> usize {
        let message = self.new_message(destination, owned(headers), body);
        self.deliver_to_own(now, connection, &message)
    }

    /// Sends a message to user `user` at `destination`, as Spring's user destinations do:
    /// `send_to_user(now, "alice", "/queue/x", ..)` reaches every session that logged in as
    /// alice and subscribed to `/user/queue/x`, and nobody else. Returns how many
    /// subscriptions it reached.
    pub fn send_to_user(
        &mut self,
        now: Instant,
        user: &str,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> usize {
        let prefix = self.config.user_prefix.trim_end_matches('/');
        let own = format!("{prefix}/{}", destination.trim_start_matches('/'));
        let sessions: Vec<ConnectionId> = match self.users.get(user) {
            Some(sessions) => sessions.iter().copied().collect(),
            None => return 0,
        };
        let message = self.new_message(&own, owned(headers), body);
        sessions
            .into_iter()
            .map(|connection| self.deliver_to_own(now, connection, &message))
            .sum()
    }

    /// Delivers to `connection`'s own subscriptions to the message's destination.
    pub(super) fn deliver_to_own(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        message: &Stored,
    ) -> usize {
        let Some(c) = self.connections.get(&connection) else {
            return 0;
        };
        let first = (message.destination.clone(), SubscriberKey(0));
        let targets: Vec<SubscriberKey> = c
            .by_destination
            .range(first..)
            .take_while(|(d, _)| *d == message.destination)
            .map(|(_, key)| *key)
            .collect();
        let headers = stored_headers(message);
        let mut shared =
            SharedDelivery::new(delivery_of(message, &headers)).expecting(targets.len());
        targets
            .into_iter()
            .map(|key| usize::from(self.deliver_to_topic(now, key, &mut shared)))
            .sum()
    }

    // ---- Routing ----

    /// A key of this shard's, past every one it has given or restored, and the message id
    /// made of it.
    fn next_key(&mut self) -> (u64, String) {
        self.next_message += 1;
        let key = self.config.shard.id(self.next_message);
        (key, format!("m-{key}"))
    }

    /// As the owner of a queue: numbers a message another shard published to it. A shard
    /// knows only the keys its own journal holds, so after a restart the publisher's shard
    /// would number from where that journal left off and could give a key and message id
    /// that this queue still holds: the journal would restore one message for two, and an
    /// acknowledgement would settle both. Numbered by the shard that journals and queues it,
    /// a key is unique in that journal across restarts.
    pub(super) fn renumber(&mut self, message: &mut Stored) {
        let (key, message_id) = self.next_key();
        message.message_id = message_id;
        if message.journaled.is_some() {
            message.journaled = Some(key);
        }
    }

    /// A message numbered here; `destination` is taken as it is when already owned.
    pub(super) fn new_message(
        &mut self,
        destination: impl Into<String>,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Stored {
        let destination = destination.into();
        let (key, message_id) = self.next_key();
        let kept = self.config.persistence != Persistence::Off
            && self.policy.is_queue(&destination)
            && (self.config.persistence).keeps(
                headers
                    .iter()
                    .find(|(n, _)| n == "persistent")
                    .map(|(_, v)| v.as_str()),
            );
        Stored {
            destination,
            message_id,
            headers,
            body,
            redelivered: false,
            journaled: kept.then_some(key),
            deliveries: 0,
            expires: None,
            origin: None,
        }
    }

    /// Delivers a topic message to every subscriber here.
    pub(super) fn deliver_to_subscribers(&mut self, now: Instant, message: &Stored) {
        self.remember(now, message);
        self.keep_for_durables(now, message);
        let mut targets = Vec::new();
        self.routes.matching(&message.destination, &mut targets);
        let headers = stored_headers(message);
        let mut shared =
            SharedDelivery::new(delivery_of(message, &headers)).expecting(targets.len());
        for key in targets {
            self.deliver_to_topic(now, key, &mut shared);
        }
    }

    /// Writes a topic message to one subscription; whether it took it. A subscriber holding
    /// more unacknowledged messages than its window is closed as too slow.
    pub(super) fn deliver_to_topic(
        &mut self,
        now: Instant,
        key: SubscriberKey,
        shared: &mut SharedDelivery<'_>,
    ) -> bool {
        self.steps += 1;
        let Some(s) = self.subscribers.get(&key) else {
            return false;
        };
        let Some(c) = self.connections.get_mut(&s.connection) else {
            return false;
        };
        let taken = c.session.deliver_shared(now, &s.id, shared).is_ok();
        self.totals.deliveries += u64::from(taken);
        let connection = s.connection;
        self.ready.insert(connection);
        if taken && s.ack.needs_ack() && c.session.unacked_count(&s.id) > s.window {
            let text = format!(
                "too slow: more than {} messages unacknowledged on subscription {}",
                s.window, s.id
            );
            self.close_slow_consumer(connection, now, &text);
        }
        taken
    }

    /// Whether subscriber `key` may take a queue message of `size` octets now.
    pub(super) fn has_room(&self, key: SubscriberKey, size: usize) -> bool {
        let Some(s) = self.subscribers.get(&key) else {
            return false;
        };
        // A consumer on another shard: its window bounds what it is handed, and its shard
        // feeds it as fast as it writes.
        if s.remote.is_some() {
            return !s.cancelled && s.in_flight() < s.window;
        }
        let Some(c) = self.connections.get(&s.connection) else {
            return false;
        };
        if !c.session.is_connected() || s.in_flight() >= s.window {
            return false;
        }
        // Fed as fast as it writes: never so much that the consumer would look slow.
        let unwritten = c.unwritten_octets();
        unwritten == 0
            || unwritten.saturating_add(size as u64) <= self.config.max_outbound_bytes as u64
    }

    /// Hands waiting messages of queue `name` to consumers with room, round-robin, from the
    /// head of the queue. Bounded by what it starts with: each round either hands over the
    /// head message (it leaves the waiting list) or finds a consumer that refused it, which
    /// is not asked again in this call; so it ends within `waiting + consumers` rounds.
    pub(super) fn dispatch(&mut self, now: Instant, name: &str) {
        let Some(queue) = self.queues.get(name) else {
            return;
        };
        let rounds = queue.waiting.len() + queue.consumers.len();
        let mut refused: Vec<SubscriberKey> = Vec::new();
        for _ in 0..rounds {
            let Some(queue) = self.queues.get(name) else {
                break;
            };
            let Some(front) = queue.waiting.front() else {
                break;
            };
            if self.is_expired(front) {
                self.steps += 1;
                if let Some(expired) = self.queues.take(name) {
                    self.dead_letter(now, expired, DeadLetter::Expired);
                }
                continue;
            }
            let size = front.size();
            let count = queue.consumers.len();
            let start = queue.next;
            let pick = (0..count).map(|i| (start + i) % count).find(|&i| {
                let key = queue.consumers[i];
                !refused.contains(&key) && self.has_room(key, size)
            });
            let Some(pick) = pick else {
                break;
            };
            let key = queue.consumers[pick];
            self.steps += 1;
            if self.deliver_head(now, key, name) {
                if let Some(queue) = self.queues.get_mut(name) {
                    queue.next = (pick + 1) % count;
                }
            } else {
                refused.push(key);
            }
        }
        self.resume_publishers(now);
    }

    /// Hands the message at the head of queue `name` to consumer `key`, which holds it until
    /// it is written (auto) or acknowledged (client); whether it took it. A message its
    /// session refuses stays where it is, at the head, not marked redelivered: it was never
    /// delivered.
    pub(super) fn deliver_head(&mut self, now: Instant, key: SubscriberKey, name: &str) -> bool {
        let Some(s) = self.subscribers.get_mut(&key) else {
            return false;
        };
        let take = self.next_take;
        // Held until its shard settles it: acknowledged, or under auto ack written.
        if let Some(remote) = s.remote {
            let Some(mut message) = self.queues.take(name) else {
                return false;
            };
            message.deliveries += 1;
            self.next_take += 1;
            if let Some(key) = message.journaled {
                self.journal.delivered(key);
                // Its shard holds the MESSAGE until this record is on disk.
                let written = self.journal.written;
                self.afar.push_back((written, remote.shard, s.connection));
            }
            s.unacked
                .insert(message.message_id.clone(), (take, message.clone()));
            let deliver = shard::Inner::Deliver {
                consumer: remote.key,
                connection: s.connection,
                message,
            };
            self.tell(remote.shard, deliver);
            return true;
        }
        let Some(c) = self.connections.get_mut(&s.connection) else {
            return false;
        };
        let Some(front) = self.queues.get(name).and_then(|q| q.waiting.front()) else {
            return false;
        };
        if !deliver(&mut c.session, now, &s.id, front) {
            return false;
        }
        let Some(mut message) = self.queues.take(name) else {
            return false;
        };
        message.deliveries += 1;
        self.next_take += 1;
        self.totals.deliveries += 1;
        self.ready.insert(s.connection);
        // The MESSAGE leaves only once the journal says it was delivered, so that after a
        // restart it comes back marked redelivered.
        if let Some(key) = message.journaled {
            self.journal.delivered(key);
            hold(c, &mut self.gated, s.connection, &self.journal);
        }
        if s.ack.needs_ack() {
            s.unacked
                .insert(message.message_id.clone(), (take, message));
        } else {
            s.unwritten += 1;
            c.unwritten.push_back(Unwritten {
                end: c.session.octets_queued(),
                subscriber: key,
                message,
            });
        }
        true
    }

    /// Queue messages that never reached the transport go back to their queues.
    pub(super) fn put_back_unwritten(&mut self, now: Instant, lost: Vec<Unwritten>) {
        if lost.is_empty() {
            return;
        }
        self.steps += lost.len() as u64;
        let mut queues = BTreeSet::new();
        for u in &lost {
            if let Some(s) = self.subscribers.get_mut(&u.subscriber) {
                s.unwritten = s.unwritten.saturating_sub(1);
            }
            queues.insert(u.message.destination.clone());
        }
        self.requeue(now, lost.into_iter().map(|u| u.message).collect());
        for queue in queues {
            self.dispatch(now, &queue);
        }
    }
}

/// Headers of a SEND that do not pass on to MESSAGEs.
pub(super) const RESERVED: [&str; 10] = [
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "message-id",
    "subscription",
    "ack",
    "redelivered",
    "prefetch-count",
    "activemq.prefetchSize",
];

/// Borrowed header pairs, owned for a stored message.
pub(super) fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The headers a stored message is delivered with, after the subscription's own.
pub(super) fn stored_headers(message: &Stored) -> Vec<(&str, &str)> {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(message.headers.len() + 1);
    if message.redelivered {
        headers.push(("redelivered", "true"));
    }
    headers.extend(
        message
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    headers
}

/// Writes `message` to one subscription of one session; whether the session took it.
pub(super) fn deliver(
    session: &mut ServerSession,
    now: Instant,
    subscription: &SubscriptionId,
    message: &Stored,
) -> bool {
    let headers = stored_headers(message);
    session
        .deliver(now, subscription, delivery_of(message, &headers))
        .is_ok()
}

/// A stored message as a delivery, with `headers` from [`stored_headers`].
pub(super) fn delivery_of<'a>(
    message: &'a Stored,
    headers: &'a [(&'a str, &'a str)],
) -> Delivery<'a> {
    let destination = message.origin.as_deref().unwrap_or(&message.destination);
    Delivery::new(destination, &message.message_id, &message.body).with_headers(headers)
}
