//! What can go wrong, typed.

use std::fmt;
use std::io;

use stomp_session::{CloseReason, SessionError};

/// Why a connection or a command failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint cannot be used: a scheme this client does not serve, or a bad URL.
    InvalidEndpoint(String),
    /// Connecting, reading or writing failed.
    Io(io::Error),
    /// The server answered CONNECT with an ERROR frame, carrying this `message`.
    Refused(Option<String>),
    /// The connection is over, for this reason (a heart-beat timeout, the server's ERROR, a
    /// graceful disconnect...).
    Closed(CloseReason),
    /// The session refused the command (an unknown subscription, NACK in STOMP 1.0...).
    Session(SessionError),
    /// No answer within the time allowed (CONNECTED, or a DISCONNECT's RECEIPT).
    TimedOut,
    /// [`Client::try_send`](crate::Client::try_send) found the command queue full.
    QueueFull,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidEndpoint(why) => write!(f, "invalid endpoint: {why}"),
            Error::Io(e) => write!(f, "transport: {e}"),
            Error::Refused(Some(message)) => write!(f, "connection refused: {message}"),
            Error::Refused(None) => f.write_str("connection refused"),
            Error::Closed(reason) => write!(f, "connection closed: {reason}"),
            Error::Session(e) => write!(f, "{e}"),
            Error::TimedOut => f.write_str("timed out"),
            Error::QueueFull => f.write_str("the command queue is full"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Closed(reason) => Some(reason),
            Error::Session(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Error {
        Error::Session(e)
    }
}
