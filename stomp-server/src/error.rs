//! Why the application's calls into the server fail: [`Stopped`] and [`PublishError`].

use std::fmt;

/// The server has stopped: nothing more can be sent through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the STOMP server has stopped")
    }
}

impl std::error::Error for Stopped {}

/// Why a message was not published or sent to a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The server has stopped.
    Stopped,
    /// Relay mode: the other broker is away (the server keeps reconnecting); nothing was
    /// sent, so the caller may retry or report it.
    BrokerUnavailable,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Stopped => Stopped.fmt(f),
            PublishError::BrokerUnavailable => f.write_str("the relayed broker is unavailable"),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<Stopped> for PublishError {
    fn from(_: Stopped) -> PublishError {
        PublishError::Stopped
    }
}
