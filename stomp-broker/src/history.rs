//! Topic histories: the last messages of topics configured to keep them, bounded in count,
//! age and octets (all topics together), so that a client back from a short disconnect can
//! ask for what it missed after a position. A topic whose history is empty is forgotten, so
//! that topics hold nothing once quiet; its next message takes a position from the wall
//! clock (milliseconds times 1000), past every position it gave before.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::queue::Stored;

/// One topic's history.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The position the next message gets.
    pub(crate) next: u64,
    /// Kept messages, oldest first, with their positions and when they came.
    kept: VecDeque<(u64, Instant, Stored)>,
}

/// What a SUBSCRIBE asking for messages after a position gets.
#[derive(Debug)]
pub(crate) struct Replay {
    /// The kept messages after the position, oldest first.
    pub(crate) messages: Vec<Stored>,
    /// Whether they are everything after the position.
    pub(crate) complete: bool,
}

/// Every topic's history.
#[derive(Debug, Default)]
pub(crate) struct Histories {
    by_topic: HashMap<String, History>,
    /// Octets held in all histories.
    bytes: usize,
}

impl Histories {
    /// The position for a new message of `topic`, whose history starts at `first` if new.
    pub(crate) fn next_position(&mut self, topic: &str, first: u64) -> u64 {
        let history = self
            .by_topic
            .entry(topic.to_owned())
            .or_insert_with(|| History {
                next: first,
                kept: VecDeque::new(),
            });
        let position = history.next;
        history.next += 1;
        position
    }

    /// Keeps `message` at `position` in its topic's history, within `count`, `age` and the
    /// octets of all histories (`max_bytes`).
    pub(crate) fn keep(
        &mut self,
        position: u64,
        now: Instant,
        message: &Stored,
        (count, age, max_bytes): (usize, Duration, usize),
    ) {
        let history = self
            .by_topic
            .entry(message.destination.clone())
            .or_default();
        history.next = history.next.max(position + 1);
        let size = message.size();
        // A topic makes room from its own oldest messages, never from another's.
        while history.kept.len() >= count.max(1) || self.bytes + size > max_bytes {
            let Some((_, _, old)) = history.kept.pop_front() else {
                break;
            };
            self.bytes -= old.size();
        }
        if count > 0 && self.bytes + size <= max_bytes {
            self.bytes += size;
            history.kept.push_back((position, now, message.clone()));
            forget_older(history, &mut self.bytes, now, age);
        }
        if history.kept.is_empty() {
            self.by_topic.remove(&message.destination);
        }
    }

    /// The kept messages of `topic` after `position`, none older than `age`.
    pub(crate) fn after(
        &mut self,
        topic: &str,
        position: u64,
        now: Instant,
        age: Duration,
    ) -> Replay {
        let Some(history) = self.by_topic.get_mut(topic) else {
            return Replay {
                messages: Vec::new(),
                complete: false,
            };
        };
        forget_older(history, &mut self.bytes, now, age);
        let oldest = history.kept.front().map_or(history.next, |(p, ..)| *p);
        // Nothing was missed when the first position wanted is kept, or is the next to come.
        let complete = position < history.next && position + 1 >= oldest;
        if history.kept.is_empty() {
            self.by_topic.remove(topic);
            return Replay {
                messages: Vec::new(),
                complete,
            };
        }
        let messages = (history.kept.iter())
            .filter(|(p, ..)| *p > position)
            .map(|(_, _, m)| m.clone())
            .collect();
        Replay { messages, complete }
    }

    /// Octets held in all histories.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

fn forget_older(history: &mut History, bytes: &mut usize, now: Instant, age: Duration) {
    while history
        .kept
        .front()
        .is_some_and(|(_, at, _)| now.saturating_duration_since(*at) > age)
    {
        if let Some((_, _, old)) = history.kept.pop_front() {
            *bytes -= old.size();
        }
    }
}
