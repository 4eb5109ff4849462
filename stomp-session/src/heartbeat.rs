//! Heart-beat negotiation (1.2 "Heart-beating").

use std::time::Duration;

use nom::character::complete::{char, u64 as decimal};
use nom::combinator::all_consuming;
use nom::sequence::separated_pair;
use nom::{IResult, Parser};

/// A `heart-beat` header: what one side offers.
///
/// `send` is the smallest period at which this side can send heart-beats, `receive` the period
/// at which it wants to receive them; zero means "cannot" or "does not want".
///
/// ```
/// use std::time::Duration;
/// use stomp_session::HeartBeat;
///
/// let offer: HeartBeat = "10000,10000".parse()?;
/// assert_eq!(offer.send, Duration::from_secs(10));
/// assert_eq!(offer.to_string(), "10000,10000");
/// assert!("10000".parse::<HeartBeat>().is_err());
/// # Ok::<(), stomp_session::InvalidHeartBeat>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeartBeat {
    /// The smallest period at which this side can send (the first number).
    pub send: Duration,
    /// The period at which this side wants to receive (the second number).
    pub receive: Duration,
}

impl HeartBeat {
    /// No heart-beats either way: what a missing header means.
    pub const NONE: HeartBeat = HeartBeat {
        send: Duration::ZERO,
        receive: Duration::ZERO,
    };

    /// An offer of `send` and `receive` milliseconds.
    pub const fn from_millis(send: u64, receive: u64) -> HeartBeat {
        HeartBeat {
            send: Duration::from_millis(send),
            receive: Duration::from_millis(receive),
        }
    }

    /// The periods that result when this side's offer meets the peer's: each direction is zero
    /// when either side declines it, and otherwise the larger of the two numbers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stomp_session::HeartBeat;
    ///
    /// let client = HeartBeat::from_millis(1000, 5000);
    /// let server = HeartBeat::from_millis(2000, 500);
    /// let periods = client.negotiate(server);
    /// assert_eq!(periods.send, Some(Duration::from_millis(1000)));   // max(1000, 500)
    /// assert_eq!(periods.receive, Some(Duration::from_millis(5000))); // max(2000, 5000)
    /// assert_eq!(client.negotiate(HeartBeat::NONE).send, None);
    /// ```
    pub fn negotiate(self, peer: HeartBeat) -> Periods {
        let period = |offered: Duration, wanted: Duration| {
            (!offered.is_zero() && !wanted.is_zero()).then(|| offered.max(wanted))
        };
        Periods {
            send: period(self.send, peer.receive),
            receive: period(peer.send, self.receive),
        }
    }
}

/// Negotiated heart-beat periods, from one side's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Periods {
    /// Send an EOL when nothing was sent for this long; `None`: never.
    pub send: Option<Duration>,
    /// Expect something from the peer at least this often; `None`: no expectation.
    pub receive: Option<Duration>,
}

/// A `heart-beat` header that is not two non-negative integers separated by a comma.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidHeartBeat(pub String);

impl std::fmt::Display for InvalidHeartBeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heart-beat {:?} is not two millisecond counts such as 10000,10000",
            self.0
        )
    }
}

impl std::error::Error for InvalidHeartBeat {}

fn millis_pair(input: &str) -> IResult<&str, (u64, u64)> {
    all_consuming(separated_pair(decimal, char(','), decimal)).parse(input)
}

impl std::str::FromStr for HeartBeat {
    type Err = InvalidHeartBeat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (_, (send, receive)) = millis_pair(s).map_err(|_| InvalidHeartBeat(s.to_owned()))?;
        Ok(HeartBeat::from_millis(send, receive))
    }
}

impl std::fmt::Display for HeartBeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.send.as_millis(), self.receive.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_two_integers() {
        assert_eq!("0,0".parse(), Ok(HeartBeat::NONE));
        assert_eq!("1000,250".parse(), Ok(HeartBeat::from_millis(1000, 250)));
        for bad in [
            "", "1000", "1000,", ",1000", "-1,0", "1, 2", "1,2,3", "a,b", "1.5,2",
        ] {
            assert!(bad.parse::<HeartBeat>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn max_rule_from_both_sides() {
        let client = HeartBeat::from_millis(10_000, 10_000);
        let server = HeartBeat::from_millis(5_000, 20_000);
        let seen_by_client = client.negotiate(server);
        let seen_by_server = server.negotiate(client);
        assert_eq!(seen_by_client.send, Some(Duration::from_secs(20)));
        assert_eq!(seen_by_client.receive, Some(Duration::from_secs(10)));
        assert_eq!(seen_by_client.send, seen_by_server.receive);
        assert_eq!(seen_by_client.receive, seen_by_server.send);
        let silent = HeartBeat::from_millis(0, 1000).negotiate(server);
        assert_eq!(silent.send, None);
    }
}
