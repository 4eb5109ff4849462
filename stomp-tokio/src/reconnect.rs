//! [`Reconnect`]: when and how often a client connects again after losing its connection.

use std::time::Duration;

/// A reconnect policy: exponential backoff with jitter, over the client's addresses in turn.
///
/// After a connection is lost (the server went away, heart-beats stopped, an ERROR), the client
/// waits, then tries the next address of its list ([`ClientBuilder::failover`]), and so on
/// round the list. The pause before attempt `n` (from 0) is drawn at random between half and
/// all of `initial × multiplierⁿ`, capped at `max`: clients cut off together do not come back
/// together. A connection that is up again resets the count.
///
/// On the new connection the client restores every live subscription under its old id before
/// anything else goes out, then sends again the SENDs still waiting for their RECEIPT, then
/// the commands queued meanwhile. See [`ClientBuilder::reconnect`] for what is kept and what
/// is not.
///
/// ```
/// use std::time::Duration;
/// use stomp_tokio::Reconnect;
///
/// let policy = Reconnect::new()
///     .with_initial_delay(Duration::from_millis(200))
///     .with_max_delay(Duration::from_secs(10))
///     .with_max_attempts(20);
/// assert_eq!(policy.base_delay(0), Duration::from_millis(200));
/// assert_eq!(policy.base_delay(3), Duration::from_millis(1600));
/// assert_eq!(policy.base_delay(10), Duration::from_secs(10));
/// ```
///
/// [`ClientBuilder::failover`]: crate::ClientBuilder::failover
/// [`ClientBuilder::reconnect`]: crate::ClientBuilder::reconnect
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    attempts: Option<u32>,
}

impl Default for Reconnect {
    /// 100 ms at first, doubling up to 30 s, for ever.
    fn default() -> Reconnect {
        Reconnect {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            attempts: None,
        }
    }
}

impl Reconnect {
    /// The default policy: 100 ms at first, doubling up to 30 s, for ever.
    pub fn new() -> Reconnect {
        Reconnect::default()
    }

    /// The pause before the first attempt (default 100 ms).
    #[must_use]
    pub fn with_initial_delay(mut self, delay: Duration) -> Reconnect {
        self.initial = delay;
        self
    }

    /// The longest pause (default 30 s).
    #[must_use]
    pub fn with_max_delay(mut self, delay: Duration) -> Reconnect {
        self.max = delay;
        self
    }

    /// How much the pause grows after each failed attempt (default 2; taken as at least 1, and
    /// as 1 when not a number).
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Reconnect {
        self.multiplier = if multiplier.is_nan() {
            1.0
        } else {
            multiplier.max(1.0)
        };
        self
    }

    /// Attempts in a row after which the client gives up and closes (default: none, it tries
    /// for ever).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Reconnect {
        self.attempts = Some(attempts);
        self
    }

    /// The pause before the first attempt.
    pub fn initial_delay(&self) -> Duration {
        self.initial
    }

    /// The longest pause.
    pub fn max_delay(&self) -> Duration {
        self.max
    }

    /// How much the pause grows after each failed attempt.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// Attempts in a row before giving up, if bounded.
    pub fn max_attempts(&self) -> Option<u32> {
        self.attempts
    }

    /// The pause before attempt `attempt` (0 for the first after a loss) before jitter:
    /// `initial × multiplier^attempt`, at most the maximum.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.powi(attempt.min(i32::MAX as u32) as i32);
        let seconds = self.initial.as_secs_f64() * factor;
        if seconds.is_finite() && seconds < self.max.as_secs_f64() {
            Duration::from_secs_f64(seconds)
        } else {
            self.max
        }
    }

    /// The pause before `attempt` with jitter: `random` in [0, 1) places it between half and
    /// all of the base delay.
    pub(crate) fn delay(&self, attempt: u32, random: f64) -> Duration {
        self.base_delay(attempt)
            .mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }

    /// Whether `attempt` (from 0) may still be made.
    pub(crate) fn allows(&self, attempt: u32) -> bool {
        self.attempts.is_none_or(|most| attempt < most)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_jitter_stays_within_half_and_all() {
        let policy = Reconnect::new();
        let bases: Vec<u128> = (0..12).map(|n| policy.base_delay(n).as_millis()).collect();
        assert_eq!(
            bases,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        assert_eq!(policy.base_delay(u32::MAX), Duration::from_secs(30));
        for attempt in [0, 4, 20] {
            let base = policy.base_delay(attempt);
            assert_eq!(policy.delay(attempt, 0.0), base / 2);
            assert!(policy.delay(attempt, 0.999) <= base);
            assert!(policy.delay(attempt, 0.5) > base / 2);
        }
    }

    #[test]
    fn attempts_are_bounded_only_when_asked_and_odd_multipliers_are_tamed() {
        assert!(Reconnect::new().allows(u32::MAX - 1));
        let three = Reconnect::new().with_max_attempts(3);
        assert!(three.allows(2) && !three.allows(3));
        let flat = Reconnect::new().with_multiplier(f64::NAN);
        assert_eq!(flat.base_delay(5), flat.base_delay(0));
        assert_eq!(Reconnect::new().with_multiplier(0.1).multiplier(), 1.0);
    }
}
