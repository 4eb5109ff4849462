//! Small types both sides use: acknowledgement modes, receipts asked for, and secrets.

use std::fmt;

/// How a subscription's messages are acknowledged (1.2 "SUBSCRIBE", `ack` header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AckMode {
    /// No acknowledgement: a message counts as delivered once sent.
    #[default]
    Auto,
    /// Cumulative: acknowledging a message acknowledges every earlier one of the subscription.
    Client,
    /// One by one.
    ClientIndividual,
}

impl AckMode {
    /// The mode as the `ack` header spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }

    /// Parses an `ack` header value.
    pub fn parse(value: &str) -> Option<AckMode> {
        match value {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }

    /// Whether messages of this mode wait for an ACK or NACK.
    pub fn needs_ack(self) -> bool {
        self != AckMode::Auto
    }
}

/// A secret, such as a passcode: its `Debug` output never shows it.
///
/// ```
/// use stomp_session::Secret;
///
/// let passcode = Secret::new("guest");
/// assert_eq!(format!("{passcode:?}"), "Secret(<redacted>)");
/// assert_eq!(passcode.expose(), "guest");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Whether a frame asks the server for a RECEIPT (STOMP 1.2 "RECEIPT"), so that the client
/// learns when the server has acted on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AskReceipt {
    /// A `receipt` header goes with the frame; the server answers with a RECEIPT.
    Yes,
    /// No `receipt` header.
    No,
}
