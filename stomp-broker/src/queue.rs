//! Queue semantics (destinations under the queue prefix): each message goes to one consumer,
//! round-robin among those with room in their window, and leaves the queue only once it is
//! done with: acknowledged, or under auto ack written to the transport. A message that comes
//! back (a NACK, a consumer gone) goes to the head of its queue, marked redelivered.

use std::collections::VecDeque;

use bytes::Bytes;
use foldhash::HashMap;

use crate::ids::SubscriberKey;

/// A message as the broker keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) destination: String,
    pub(crate) message_id: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    /// Delivered before and not acknowledged.
    pub(crate) redelivered: bool,
    /// Its key in the journal, when it is written there (a persistent queue message).
    pub(crate) journaled: Option<u64>,
    /// How many times it was handed to a consumer.
    pub(crate) deliveries: u32,
    /// When it expires, in Unix milliseconds (its `expires` header).
    pub(crate) expires: Option<u64>,
    /// The destination it was published to, when its queue (`destination`) is a durable
    /// subscription's: what its MESSAGE shows.
    pub(crate) origin: Option<String>,
}

impl Stored {
    /// The octets it keeps in memory, roughly: what queue limits count.
    pub(crate) fn size(&self) -> usize {
        const OVERHEAD: usize = 64;
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2 * std::mem::size_of::<String>())
            .sum();
        OVERHEAD + self.destination.len() + self.message_id.len() + headers + self.body.len()
    }
}

/// One queue: waiting messages, the consumers that take them, and its size.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Messages no consumer holds, oldest (or redelivered) first.
    pub(crate) waiting: VecDeque<Stored>,
    /// Consumers in subscription order.
    pub(crate) consumers: Vec<SubscriberKey>,
    /// Where the next round-robin pick starts.
    pub(crate) next: usize,
    /// Messages handed to a consumer and not done with.
    in_flight: usize,
    /// Octets of the waiting and in-flight messages.
    pub(crate) bytes: usize,
}

impl Queue {
    fn is_unused(&self) -> bool {
        self.waiting.is_empty() && self.consumers.is_empty() && self.in_flight == 0
    }
}

/// Every queue of the broker, created on first use and forgotten when unused.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    by_name: HashMap<String, Queue>,
    /// Octets held in all queues.
    total: usize,
}

impl Queues {
    pub(crate) fn get(&self, name: &str) -> Option<&Queue> {
        self.by_name.get(name)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Queue> {
        self.by_name.get_mut(name)
    }

    /// Octets held in all queues.
    pub(crate) fn total_bytes(&self) -> usize {
        self.total
    }

    /// Messages waiting for a consumer, in all queues.
    pub(crate) fn waiting_count(&self) -> usize {
        self.by_name.values().map(|q| q.waiting.len()).sum()
    }

    /// Each queue's name and the messages waiting in it.
    pub(crate) fn depths(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.by_name
            .iter()
            .map(|(name, q)| (name.as_str(), q.waiting.len()))
    }

    /// Every message of every queue, waiting ones first, in no particular order.
    pub(crate) fn waiting(&self) -> impl Iterator<Item = &Stored> + '_ {
        self.by_name.values().flat_map(|q| q.waiting.iter())
    }

    /// Queues in existence.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// A new message at the tail of its queue.
    pub(crate) fn push(&mut self, message: Stored) {
        let size = message.size();
        let queue = self.by_name.entry(message.destination.clone()).or_default();
        queue.bytes += size;
        self.total += size;
        queue.waiting.push_back(message);
    }

    pub(crate) fn add_consumer(&mut self, name: &str, key: SubscriberKey) {
        self.by_name
            .entry(name.to_owned())
            .or_default()
            .consumers
            .push(key);
    }

    pub(crate) fn remove_consumer(&mut self, name: &str, key: SubscriberKey) {
        if let Some(queue) = self.by_name.get_mut(name) {
            queue.consumers.retain(|k| *k != key);
        }
        self.forget_if_unused(name);
    }

    /// The message at the head of `name`, taken by a consumer: it stays counted until
    /// [`done`](Self::done) or [`put_back`](Self::put_back).
    pub(crate) fn take(&mut self, name: &str) -> Option<Stored> {
        let queue = self.by_name.get_mut(name)?;
        let message = queue.waiting.pop_front()?;
        queue.in_flight += 1;
        Some(message)
    }

    /// Takes every waiting message of `name` for which `pick` holds, in order, as
    /// [`take`](Self::take) takes one.
    pub(crate) fn take_where(&mut self, name: &str, pick: impl Fn(&Stored) -> bool) -> Vec<Stored> {
        let Some(queue) = self.by_name.get_mut(name) else {
            return Vec::new();
        };
        let (taken, kept): (VecDeque<Stored>, VecDeque<Stored>) =
            std::mem::take(&mut queue.waiting)
                .into_iter()
                .partition(|m| pick(m));
        queue.waiting = kept;
        queue.in_flight += taken.len();
        taken.into()
    }

    /// Names of the queues with waiting messages.
    pub(crate) fn names(&self) -> Vec<String> {
        (self.by_name.iter())
            .filter(|(_, q)| !q.waiting.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A taken message is done with: acknowledged, or written under auto ack.
    pub(crate) fn done(&mut self, message: &Stored) {
        let size = message.size();
        if let Some(queue) = self.by_name.get_mut(&message.destination) {
            queue.in_flight = queue.in_flight.saturating_sub(1);
            queue.bytes = queue.bytes.saturating_sub(size);
        }
        self.total = self.total.saturating_sub(size);
        self.forget_if_unused(&message.destination);
    }

    /// Taken messages come back to the head of their queues, marked redelivered, in the order
    /// they were first taken.
    pub(crate) fn put_back(&mut self, messages: impl DoubleEndedIterator<Item = Stored>) {
        for mut message in messages.rev() {
            message.redelivered = true;
            let queue = self.by_name.entry(message.destination.clone()).or_default();
            queue.in_flight = queue.in_flight.saturating_sub(1);
            queue.waiting.push_front(message);
        }
    }

    fn forget_if_unused(&mut self, name: &str) {
        if self.by_name.get(name).is_some_and(Queue::is_unused) {
            self.by_name.remove(name);
        }
    }
}
