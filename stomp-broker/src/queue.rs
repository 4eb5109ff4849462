//! Queue semantics (destinations under the queue prefix): each message goes to one consumer,
//! round-robin; a message a client-ack consumer has not acknowledged is redelivered after a
//! NACK, or when that consumer leaves.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// A message held by the broker until a consumer acknowledges it.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) destination: String,
    pub(crate) message_id: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    /// Delivered before and not acknowledged.
    pub(crate) redelivered: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Queues {
    /// Messages of each queue that no consumer has taken yet, oldest first.
    waiting: HashMap<String, VecDeque<Stored>>,
    /// Where the next round-robin pick starts, per queue.
    next: HashMap<String, usize>,
    /// Delivered to a client-ack consumer and not acknowledged yet, by message id.
    in_flight: HashMap<String, Stored>,
}

impl Queues {
    /// Keeps a message no consumer can take now.
    pub(crate) fn hold(&mut self, message: Stored) {
        self.waiting
            .entry(message.destination.clone())
            .or_default()
            .push_back(message);
    }

    /// Takes the waiting messages of every queue that `matches` accepts, oldest first.
    pub(crate) fn take_waiting(&mut self, matches: impl Fn(&str) -> bool) -> Vec<Stored> {
        let names: Vec<String> = self
            .waiting
            .keys()
            .filter(|q| matches(q))
            .cloned()
            .collect();
        names
            .into_iter()
            .flat_map(|name| self.waiting.remove(&name).unwrap_or_default())
            .collect()
    }

    /// Which of `consumers` takes the next message of `queue`.
    pub(crate) fn pick(&mut self, queue: &str, consumers: usize) -> usize {
        let next = self.next.entry(queue.to_owned()).or_insert(0);
        let pick = *next % consumers;
        *next = next.wrapping_add(1);
        pick
    }

    pub(crate) fn sent_unacknowledged(&mut self, message: Stored) {
        self.in_flight.insert(message.message_id.clone(), message);
    }

    /// An acknowledged message is done with.
    pub(crate) fn acknowledged(&mut self, message_id: &str) {
        self.in_flight.remove(message_id);
    }

    /// A refused or abandoned message, to deliver again.
    pub(crate) fn take_for_redelivery(&mut self, message_id: &str) -> Option<Stored> {
        let mut message = self.in_flight.remove(message_id)?;
        message.redelivered = true;
        Some(message)
    }

    /// Messages waiting for a consumer, in all queues.
    pub(crate) fn waiting_count(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }
}
