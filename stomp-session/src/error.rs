//! Why a command was refused, why a session closed, and why an application's check refused a
//! client's frame.

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
    /// A subscription already has this id.
    DuplicateSubscription(SubscriptionId),
    /// No open transaction has this id.
    UnknownTransaction(TransactionId),
    /// The message needs no acknowledgement, or carries no id to acknowledge it by.
    NotAcknowledgeable,
    /// The negotiated version has no such command (NACK in 1.0).
    Unsupported {
        /// The command.
        command: Command,
        /// The negotiated version.
        version: Version,
    },
    /// No CONNECT awaits the application's answer: accepted or rejected already, or the
    /// session is not a server's waiting for one.
    NoConnectPending,
    /// No SUBSCRIBE awaits the application's confirmation.
    NoSubscriptionPending,
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
            SessionError::UnknownSubscription(id) => {
                write!(f, "no subscription {:?}", id.as_str())
            }
            SessionError::DuplicateSubscription(id) => {
                write!(f, "a subscription {:?} exists already", id.as_str())
            }
            SessionError::UnknownTransaction(id) => {
                write!(f, "no open transaction {:?}", id.as_str())
            }
            SessionError::NotAcknowledgeable => {
                f.write_str("the message has nothing to acknowledge it by")
            }
            SessionError::Unsupported { command, version } => {
                write!(f, "STOMP {version} has no {command} command")
            }
            SessionError::NoConnectPending => f.write_str("no CONNECT awaits acceptance"),
            SessionError::NoSubscriptionPending => f.write_str("no SUBSCRIBE awaits confirmation"),
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
    /// The peer broke a protocol rule; a server said which in its ERROR.
    Protocol(Violation),
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
            CloseReason::Protocol(violation) => write!(f, "protocol error: {violation}"),
            CloseReason::ErrorFrame(Some(message)) => write!(f, "server error: {message}"),
            CloseReason::ErrorFrame(None) => f.write_str("server error"),
            CloseReason::Rejected(message) => write!(f, "connection refused: {message}"),
            CloseReason::Local(message) => write!(f, "closed: {message}"),
        }
    }
}

impl std::error::Error for CloseReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CloseReason::Decode(e) => Some(e),
            CloseReason::Protocol(violation) => Some(violation),
            _ => None,
        }
    }
}

/// A protocol rule a peer broke, as [`CloseReason::Protocol`] reports it. A server session
/// sends the [`Display`](fmt::Display) text as its ERROR frame's `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A client's first frame was not CONNECT or STOMP.
    NotConnected(Command),
    /// CONNECT or STOMP on an established connection.
    AlreadyConnected,
    /// A frame only a server sends, from a client.
    ServerFrame(Command),
    /// A frame the client did not expect from the server, or not at this point.
    UnexpectedFrame(Command),
    /// A frame without a header it needs.
    MissingHeader {
        /// The frame's command.
        command: Command,
        /// The header.
        header: &'static str,
        /// Since which version it is needed, when not always.
        since: Option<Version>,
    },
    /// CONNECT offered no version this server speaks.
    NoCommonVersion {
        /// The versions this server speaks, as `accept-version` lists them.
        supported: String,
    },
    /// CONNECTED chose a version the client did not offer.
    VersionNotOffered(String),
    /// A `heart-beat` header that is not two numbers.
    InvalidHeartBeat(String),
    /// A header value the negotiated version could never send back in the frames that echo it.
    Unechoable {
        /// The header as echoed.
        header: &'static str,
        /// Its value.
        value: String,
        /// The frame that would echo it.
        command: Command,
        /// The negotiated version.
        version: Version,
    },
    /// BEGIN of a transaction that is open already.
    TransactionOpen(TransactionId),
    /// A frame in, or the end of, a transaction that is not open.
    UnknownTransaction {
        /// COMMIT or ABORT, or none for a frame inside the transaction.
        command: Option<Command>,
        /// The transaction.
        id: TransactionId,
    },
    /// More open transactions than the limit.
    TooManyTransactions(usize),
    /// A transaction holding more frames than the limit.
    TransactionFrames {
        /// The transaction.
        id: TransactionId,
        /// The limit.
        limit: usize,
    },
    /// A transaction holding more octets than the limit.
    TransactionBytes {
        /// The transaction.
        id: TransactionId,
        /// The limit.
        limit: usize,
    },
    /// SUBSCRIBE with an id in use.
    SubscriptionInUse(SubscriptionId),
    /// More subscriptions than the limit.
    TooManySubscriptions(usize),
    /// UNSUBSCRIBE of a subscription that does not exist.
    UnknownSubscription(SubscriptionId),
    /// An `ack` header naming no ack mode.
    UnknownAckMode(String),
    /// A command the negotiated version does not have (NACK in 1.0).
    Unsupported {
        /// The command.
        command: Command,
        /// The negotiated version.
        version: Version,
    },
    /// ACK or NACK of a message that awaits no acknowledgement.
    NotPending(Command),
    /// More input than allowed while the session waits for the application.
    TooMuchInput {
        /// The octets allowed.
        bound: usize,
        /// What the session was waiting for.
        waiting: &'static str,
    },
    /// RECEIPT without `receipt-id`.
    ReceiptWithoutId,
    /// The application refused the frame (a send check, a refused subscription), saying why.
    Refused(Refused),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotConnected(command) => {
                write!(
                    f,
                    "expected CONNECT or STOMP as the first frame, got {command}"
                )
            }
            Violation::AlreadyConnected => f.write_str("already connected"),
            Violation::ServerFrame(command) => write!(f, "{command} is a server frame"),
            Violation::UnexpectedFrame(command) => {
                write!(f, "unexpected {command} frame from the server")
            }
            Violation::MissingHeader {
                command,
                header,
                since: None,
            } => write!(f, "{command} without {header}"),
            Violation::MissingHeader {
                command,
                header,
                since: Some(version),
            } => write!(
                f,
                "{command} without {header} (required from STOMP {version})"
            ),
            Violation::NoCommonVersion { supported } => {
                write!(f, "no common STOMP version; this server speaks {supported}")
            }
            Violation::VersionNotOffered(version) => {
                write!(f, "server chose version {version:?}, which was not offered")
            }
            Violation::InvalidHeartBeat(text) => f.write_str(text),
            Violation::Unechoable {
                header,
                value,
                command,
                version,
            } => write!(
                f,
                "{header} {value:?} cannot be sent back in a STOMP {version} {command}"
            ),
            Violation::TransactionOpen(id) => {
                write!(f, "transaction {:?} is already open", id.as_str())
            }
            Violation::UnknownTransaction { command: None, id } => {
                write!(f, "unknown transaction {:?}", id.as_str())
            }
            Violation::UnknownTransaction {
                command: Some(command),
                id,
            } => write!(f, "{command} of unknown transaction {:?}", id.as_str()),
            Violation::TooManyTransactions(limit) => {
                write!(f, "more than {limit} open transactions")
            }
            Violation::TransactionFrames { id, limit } => {
                write!(
                    f,
                    "transaction {:?} holds more than {limit} frames",
                    id.as_str()
                )
            }
            Violation::TransactionBytes { id, limit } => {
                write!(
                    f,
                    "transaction {:?} holds more than {limit} octets",
                    id.as_str()
                )
            }
            Violation::SubscriptionInUse(id) => {
                write!(f, "subscription id {:?} is already in use", id.as_str())
            }
            Violation::TooManySubscriptions(limit) => write!(f, "more than {limit} subscriptions"),
            Violation::UnknownSubscription(id) => {
                write!(f, "UNSUBSCRIBE of unknown subscription {:?}", id.as_str())
            }
            Violation::UnknownAckMode(mode) => write!(f, "unknown ack mode {mode:?}"),
            Violation::Unsupported { command, version } => {
                write!(f, "{command} is not part of STOMP {version}")
            }
            Violation::NotPending(command) => {
                write!(f, "{command} of a message that awaits no acknowledgement")
            }
            Violation::TooMuchInput { bound, waiting } => {
                write!(f, "more than {bound} octets sent {waiting}")
            }
            Violation::ReceiptWithoutId => f.write_str("RECEIPT without receipt-id"),
            Violation::Refused(refused) => refused.fmt(f),
        }
    }
}

impl std::error::Error for Violation {}

/// A client's frame refused by a check of the application (a login, a subscription, a send):
/// the message is what the client reads in the ERROR frame that answers it.
///
/// ```
/// use stomp_session::Refused;
///
/// let refused = Refused::new("only admins may publish here");
/// assert_eq!(refused.message(), "only admins may publish here");
/// let from_text: Refused = "bad login".into();
/// assert_eq!(from_text.to_string(), "bad login");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    message: String,
}

impl Refused {
    /// A refusal whose ERROR says `message`.
    pub fn new(message: impl Into<String>) -> Refused {
        Refused {
            message: message.into(),
        }
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

impl From<&str> for Refused {
    fn from(message: &str) -> Refused {
        Refused::new(message)
    }
}

impl From<String> for Refused {
    fn from(message: String) -> Refused {
        Refused::new(message)
    }
}
