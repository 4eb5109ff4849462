//! Dead letters: queue messages redelivered more often than the limit, and those past their
//! `expires` time, move to their queue's dead-letter queue (or, expired, are dropped), so that
//! no message circles for ever and none outstays its time.

use std::time::Instant;

use crate::queue::Stored;

use super::Broker;

/// Why a message leaves its queue for the dead letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DeadLetter {
    /// Redelivered more often than [`BrokerConfig::max_redeliveries`](crate::BrokerConfig::max_redeliveries).
    Redelivered,
    /// Past its `expires` time.
    Expired,
}

impl DeadLetter {
    fn as_str(self) -> &'static str {
        match self {
            DeadLetter::Redelivered => "redelivered",
            DeadLetter::Expired => "expired",
        }
    }
}

/// A message's `expires` header: Unix time in milliseconds, `0` (or none) for never, as
/// ActiveMQ's.
pub(super) fn expires_header(headers: &[(String, String)]) -> Option<u64> {
    let (_, value) = headers.iter().find(|(n, _)| n == "expires")?;
    value.trim().parse::<u64>().ok().filter(|ms| *ms > 0)
}

impl Broker {
    /// Tells the broker the wall clock: at `now` it is `unix_ms` milliseconds past the Unix
    /// epoch. `expires` headers and queue time to live ([`BrokerConfig::with_queue_ttl`]) count
    /// from it; a driver calls it now and then (the broker reads no clock). Until it is
    /// called, no message expires.
    ///
    /// [`BrokerConfig::with_queue_ttl`]: crate::BrokerConfig::with_queue_ttl
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.wall_clock = Some((now, unix_ms));
    }

    /// The Unix time in milliseconds at `now`, if the driver has told the wall clock.
    pub(super) fn unix_ms(&self, now: Instant) -> Option<u64> {
        let (at, unix_ms) = self.wall_clock?;
        let since = now.saturating_duration_since(at).as_millis() as u64;
        Some(unix_ms.saturating_add(since))
    }

    /// Whether `message` is past its time, by the last wall clock the driver gave.
    pub(super) fn is_expired(&self, message: &Stored) -> bool {
        match (message.expires, self.wall_clock) {
            (Some(expires), Some((_, unix_ms))) => unix_ms >= expires,
            _ => false,
        }
    }

    /// A message a queue takes: its `expires` header read, or set from its queue's time to
    /// live.
    pub(super) fn set_expiry(&self, now: Instant, message: &mut Stored) {
        message.expires = expires_header(&message.headers);
        if message.expires.is_some() {
            return;
        }
        let ttl = (self.config.queue_ttl.iter()).find(|(p, _)| p.matches(&message.destination));
        if let (Some((_, ttl)), Some(unix_ms)) = (ttl, self.unix_ms(now)) {
            let expires = unix_ms.saturating_add(ttl.as_millis() as u64);
            message.expires = Some(expires);
            message
                .headers
                .push(("expires".into(), expires.to_string()));
        }
    }

    /// Moves every waiting queue message past its time to the dead letters (or drops it), as
    /// delivery does for those it reaches: a driver calls it now and then (every few
    /// seconds), so that messages of queues nobody consumes do not outstay their time. Its
    /// cost is linear in the waiting messages.
    pub fn expire(&mut self, now: Instant) {
        let Some((_, unix_ms)) = self.wall_clock else {
            return;
        };
        for name in self.queues.names() {
            let expired =
                (self.queues).take_where(&name, |m| m.expires.is_some_and(|e| unix_ms >= e));
            self.steps += expired.len() as u64;
            for message in expired {
                self.dead_letter(now, message, DeadLetter::Expired);
            }
        }
    }

    /// Whether `queue` is a dead-letter queue, which keeps its messages whatever happens.
    fn is_dead_letter_queue(&self, queue: &str) -> bool {
        queue.starts_with(self.config.dead_letter_prefix.as_str())
    }

    /// Taken messages that were not done with (a NACK, a consumer gone) go back to the head of
    /// their queues, but those past the redelivery limit go to the dead letters.
    pub(super) fn requeue(&mut self, now: Instant, messages: Vec<Stored>) {
        let limit = self.config.max_redeliveries;
        let (dead, back): (Vec<Stored>, Vec<Stored>) = messages.into_iter().partition(|m| {
            limit.is_some_and(|limit| m.deliveries > limit)
                && !self.is_dead_letter_queue(&m.destination)
        });
        self.queues.put_back(back.into_iter());
        for message in dead {
            self.dead_letter(now, message, DeadLetter::Redelivered);
        }
    }

    /// A taken message leaves its queue for good: to the queue's dead letters, with headers
    /// saying why and from where, or (expired, when so configured, or already a dead letter)
    /// dropped.
    pub(super) fn dead_letter(&mut self, now: Instant, message: Stored, why: DeadLetter) {
        if let Some(key) = message.journaled {
            self.journal.removed(key);
        }
        self.queues.done(&message);
        let dropped = self.is_dead_letter_queue(&message.destination)
            || (why == DeadLetter::Expired && !self.config.dead_letter_expired);
        if dropped {
            return;
        }
        let name = (message.destination)
            .strip_prefix(self.config.queue_prefix.as_str())
            .unwrap_or(&message.destination);
        let queue = format!("{}{name}", self.config.dead_letter_prefix);
        let mut headers = message.headers;
        // An expired message does not expire again where it waits to be looked at.
        headers.retain(|(n, _)| n != "expires");
        headers.push(("dead-letter-reason".into(), why.as_str().into()));
        headers.push(("dead-letter-from".into(), message.destination));
        let dead = self.new_message(&queue, headers, message.body);
        self.route(now, dead, None);
    }
}
