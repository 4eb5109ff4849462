//! [`Settlement`]: what a client did with messages it was handed.

/// Whether messages were acknowledged or refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Settlement {
    /// Done with: acknowledged (ACK), or written under auto ack.
    Ack,
    /// Refused (NACK): the broker redelivers them.
    Nack,
}
