//! Why a command was refused, and why a session closed.

use std::fmt;

use stomp_codec::{Command, EncodeError, Version};

use crate::ids::{SubscriptionId, TransactionId};

/// Why the session refused a command from the application. The session is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The command needs an established connection, and there is none yet.
    NotConnected,
    /// DISCONNECT was sent: nothing may follow it (1.2 "DISCONNECT").
    Disconnecting,
    /// The session is closed.
    Closed,
    /// No subscription has this id.
    UnknownSubscription(SubscriptionId),
    /// No open transaction has this id.
    UnknownTransaction(TransactionId),
    /// A transaction with this id is open already.
    DuplicateTransaction(String),
    /// The message needs no acknowledgement, or carries no id to acknowledge it by.
    NotAcknowledgeable,
    /// The negotiated version has no such command (NACK in 1.0).
    Unsupported {
        /// The command.
        command: Command,
        /// The negotiated version.
        version: Version,
    },
    /// The call is not valid in the session's state, such as accepting a connection twice.
    InvalidState(&'static str),
    /// The frame cannot be encoded for the negotiated version.
    Encode(EncodeError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::NotConnected => f.write_str("not connected yet"),
            SessionError::Disconnecting => {
                f.write_str("DISCONNECT was sent; nothing may follow it")
            }
            SessionError::Closed => f.write_str("the session is closed"),
            SessionError::UnknownSubscription(id) => write!(f, "no subscription {id:?}"),
            SessionError::UnknownTransaction(id) => write!(f, "no open transaction {id:?}"),
            SessionError::DuplicateTransaction(id) => {
                write!(f, "transaction {id:?} is open already")
            }
            SessionError::NotAcknowledgeable => {
                f.write_str("the message has nothing to acknowledge it by")
            }
            SessionError::Unsupported { command, version } => {
                write!(f, "STOMP {version} has no {command} command")
            }
            SessionError::InvalidState(what) => f.write_str(what),
            SessionError::Encode(e) => write!(f, "cannot encode frame: {e}"),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EncodeError> for SessionError {
    fn from(e: EncodeError) -> Self {
        SessionError::Encode(e)
    }
}

/// Why a session closed. Each session reports it exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// A graceful DISCONNECT completed: the client got its RECEIPT, the server sent it, or the
    /// server closed the connection after DISCONNECT as servers may.
    Disconnected,
    /// The client sent DISCONNECT and no RECEIPT came within the configured time.
    DisconnectTimedOut,
    /// The peer closed the connection without a graceful DISCONNECT.
    PeerClosed,
    /// Nothing arrived from the peer for longer than the heart-beat period and its margin.
    HeartBeatTimedOut,
    /// No CONNECT (server) or CONNECTED (client) arrived within the configured time.
    ConnectTimedOut,
    /// The peer's bytes are not STOMP.
    Decode(stomp_codec::Error),
    /// The peer broke a protocol rule; the message says which. A server sent it in an ERROR.
    Protocol(String),
    /// The server sent an ERROR frame, with this `message` header.
    ErrorFrame(Option<String>),
    /// The server application refused the connection (for example a bad login), with this
    /// message.
    Rejected(String),
    /// The application closed the session.
    Local(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Disconnected => f.write_str("disconnected"),
            CloseReason::DisconnectTimedOut => f.write_str("no RECEIPT for DISCONNECT in time"),
            CloseReason::PeerClosed => f.write_str("the peer closed the connection"),
            CloseReason::HeartBeatTimedOut => f.write_str("the peer fell silent (heart-beat)"),
            CloseReason::ConnectTimedOut => f.write_str("the connection was not set up in time"),
            CloseReason::Decode(e) => write!(f, "invalid STOMP from the peer: {e}"),
            CloseReason::Protocol(message) => write!(f, "protocol error: {message}"),
            CloseReason::ErrorFrame(Some(message)) => write!(f, "server error: {message}"),
            CloseReason::ErrorFrame(None) => f.write_str("server error"),
            CloseReason::Rejected(message) => write!(f, "connection refused: {message}"),
            CloseReason::Local(message) => write!(f, "closed: {message}"),
        }
    }
}
