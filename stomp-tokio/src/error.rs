//! What can go wrong, typed.

use std::fmt;
use std::io;

use stomp_session::{CloseReason, SessionError};
use tokio_rustls::rustls;

/// Why a connection or a command failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint cannot be used: a scheme this client does not serve, or a bad URL.
    InvalidEndpoint(String),
    /// Connecting, reading or writing failed.
    Io(io::Error),
    /// TLS could not be set up: no root certificates, or the server's certificate is not
    /// trusted or not for this host.
    Tls(rustls::Error),
    /// The server answered CONNECT with an ERROR frame, carrying this `message`.
    Refused(Option<String>),
    /// The server answered a command (a SUBSCRIBE, a SEND...) with an ERROR frame naming its
    /// receipt, carrying this `message`. The server closes the connection after an ERROR; the
    /// command is not made again on the next one.
    Rejected(Option<String>),
    /// The connection is over, for this reason (a heart-beat timeout, the server's ERROR, a
    /// graceful disconnect...). With a [`Reconnect`](crate::Reconnect) policy, this is the
    /// answer to a command whose connection was lost before the server confirmed it (an
    /// acknowledgement, a transaction's BEGIN or COMMIT), or the reason the client gave up.
    Closed(CloseReason),
    /// The session refused the command (an unknown subscription or transaction, NACK in
    /// STOMP 1.0...).
    Session(SessionError),
    /// No answer within the time allowed (CONNECTED, or a DISCONNECT's RECEIPT).
    TimedOut,
    /// [`Client::try_send`](crate::Client::try_send) found the command queue full.
    QueueFull,
    /// The message came on an earlier connection: after a reconnect its acknowledgement
    /// means nothing to the server, which redelivers what was not acknowledged.
    StaleMessage,
}

impl Error {
    /// A TLS handshake's failure: the rustls error itself when there is one.
    pub(crate) fn from_tls(e: io::Error) -> Error {
        let is_rustls = e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if !is_rustls {
            return Error::Io(e);
        }
        match e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            Some(Ok(tls)) => Error::Tls(*tls),
            Some(Err(other)) => Error::Io(io::Error::new(io::ErrorKind::InvalidData, other)),
            None => Error::Io(io::ErrorKind::InvalidData.into()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidEndpoint(why) => write!(f, "invalid endpoint: {why}"),
            Error::Io(e) => write!(f, "transport: {e}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Refused(Some(message)) => write!(f, "connection refused: {message}"),
            Error::Refused(None) => f.write_str("connection refused"),
            Error::Rejected(Some(message)) => write!(f, "command refused: {message}"),
            Error::Rejected(None) => f.write_str("command refused"),
            Error::Closed(reason) => write!(f, "connection closed: {reason}"),
            Error::Session(e) => write!(f, "{e}"),
            Error::TimedOut => f.write_str("timed out"),
            Error::QueueFull => f.write_str("the command queue is full"),
            Error::StaleMessage => {
                f.write_str("the message came on an earlier connection; the server redelivers it")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Tls(e) => Some(e),
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
