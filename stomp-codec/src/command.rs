//! STOMP commands (1.2 "Client Frames" and "Server Frames").

use core::fmt;
use core::str::FromStr;

/// A frame's command. Commands are case-sensitive on the wire: `send` is not `SEND`.
///
/// ```
/// use stomp_codec::Command;
///
/// assert_eq!(Command::from_bytes(b"SEND"), Some(Command::Send));
/// assert_eq!(Command::from_bytes(b"send"), None);
/// assert!(Command::Message.allows_body());
/// assert!(!Command::Receipt.allows_body());
/// ```
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a connection.
    Connect,
    /// Client: open a connection (1.1+, handled exactly like CONNECT).
    Stomp,
    /// Client: send a message to a destination.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: refuse a message (1.1+).
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll back a transaction.
    Abort,
    /// Client: close the connection gracefully.
    Disconnect,
    /// Server: the connection is open.
    Connected,
    /// Server: a message for a subscription.
    Message,
    /// Server: a frame that asked for a receipt was processed.
    Receipt,
    /// Server: something went wrong; the server closes the connection.
    Error,
}

impl Command {
    /// Every command, client commands first.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The longest command on the wire (`UNSUBSCRIBE`), in octets.
    pub(crate) const MAX_LEN: usize = 11;

    /// The command as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Recognises a command line (without its EOL), case-sensitively.
    pub fn from_bytes(line: &[u8]) -> Option<Command> {
        Some(match line {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"CONNECTED" => Command::Connected,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// Whether a client sends this command.
    pub const fn is_client(self) -> bool {
        !self.is_server()
    }

    /// Whether a server sends this command.
    pub const fn is_server(self) -> bool {
        matches!(
            self,
            Command::Connected | Command::Message | Command::Receipt | Command::Error
        )
    }

    /// Whether frames of this command may carry a body: only SEND, MESSAGE and ERROR may
    /// (1.2 "STOMP Frames").
    pub const fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }

    /// Whether this command's headers are escaped. CONNECT, STOMP and CONNECTED never are
    /// (1.2 "Value Encoding").
    pub const fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Command`] from text that names no STOMP command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCommand;

impl fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown STOMP command")
    }
}

impl core::error::Error for UnknownCommand {}

impl FromStr for Command {
    type Err = UnknownCommand;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Command::from_bytes(s.as_bytes()).ok_or(UnknownCommand)
    }
}
