//! Recovery for reconnecting clients: topics with a history
//! ([`BrokerConfig::with_topic_history`](crate::BrokerConfig::with_topic_history)) number
//! their messages (`position`), keep the last ones, and replay those after a position to a
//! SUBSCRIBE that asks (`after-position`), telling on its RECEIPT whether that was all.

use std::time::{Duration, Instant};

use stomp_session::FrameBuf;

use crate::ids::SubscriberKey;
use crate::queue::Stored;

use super::Broker;
use super::routing::{delivery_of, stored_headers};

/// The header each MESSAGE of a topic with a history carries.
const POSITION: &str = "position";
/// The header of a SUBSCRIBE that asks for the messages after a position.
const AFTER_POSITION: &str = "after-position";

impl Broker {
    /// The history `topic` keeps, if any: most messages and their age.
    fn history_of(&self, topic: &str) -> Option<(usize, Duration)> {
        (self.config.topic_history.iter())
            .find(|(pattern, ..)| pattern.matches(topic))
            .map(|(_, count, age)| (*count, *age))
    }

    /// As the topic's owner: numbers a message of a topic with a history.
    pub(super) fn number(&mut self, now: Instant, message: &mut Stored) {
        if self.config.topic_history.is_empty() || self.history_of(&message.destination).is_none() {
            return;
        }
        // Positions grow across restarts: a new history starts from the wall clock.
        let first = self.unix_ms(now).map_or(1, |ms| ms.saturating_mul(1000));
        let position = self.histories.next_position(&message.destination, first);
        message
            .headers
            .push((POSITION.into(), position.to_string()));
    }

    /// On every shard: keeps a numbered topic message in the topic's history.
    pub(super) fn remember(&mut self, now: Instant, message: &Stored) {
        if self.config.topic_history.is_empty() {
            return;
        }
        let Some((count, age)) = self.history_of(&message.destination) else {
            return;
        };
        let Some(position) = position_of(message) else {
            return;
        };
        let limits = (count, age, self.config.max_history_bytes);
        self.histories.keep(position, now, message, limits);
    }

    /// What a SUBSCRIBE to `destination` asks to recover: the messages to replay, and
    /// whether they are all it missed; `None` when it asks for nothing.
    pub(super) fn recovery(
        &mut self,
        now: Instant,
        destination: &str,
        frame: &FrameBuf,
    ) -> Option<(Vec<Stored>, bool)> {
        let asked = frame.header(AFTER_POSITION)?;
        let Some(position) = asked.trim().parse::<u64>().ok() else {
            return Some((Vec::new(), false));
        };
        let Some((_, age)) = self.history_of(destination) else {
            return Some((Vec::new(), false));
        };
        let replay = self.histories.after(destination, position, now, age);
        Some((replay.messages, replay.complete))
    }

    /// Replays kept messages to subscriber `key`, oldest first.
    pub(super) fn replay(&mut self, now: Instant, key: SubscriberKey, messages: &[Stored]) {
        for message in messages {
            let headers = stored_headers(message);
            let mut shared = stomp_session::SharedDelivery::new(delivery_of(message, &headers));
            self.deliver_to_topic(now, key, &mut shared);
        }
    }
}

fn position_of(message: &Stored) -> Option<u64> {
    let (_, value) = message.headers.iter().rev().find(|(n, _)| n == POSITION)?;
    value.parse().ok()
}
