//! [`Message`]: a MESSAGE as a subscription hands it out.

use std::borrow::Cow;

use bytes::Bytes;
use stomp_session::{AckMode, FrameBuf, SubscriptionId};

/// A MESSAGE from the server, for one of the client's subscriptions, and the connection it
/// came on (acknowledgements are only meaningful on that one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    inner: stomp_session::Message,
    connection: u64,
}

impl Message {
    pub(crate) fn new(inner: stomp_session::Message, connection: u64) -> Message {
        Message { inner, connection }
    }

    /// The body, sharing the received bytes.
    pub fn body(&self) -> &Bytes {
        self.inner.body()
    }

    /// The `destination` header.
    pub fn destination(&self) -> Option<Cow<'_, str>> {
        self.inner.destination()
    }

    /// The `message-id` header.
    pub fn message_id(&self) -> Option<Cow<'_, str>> {
        self.inner.message_id()
    }

    /// The id of the subscription it was delivered for (its `subscription` header).
    pub fn subscription(&self) -> Option<SubscriptionId> {
        self.inner.subscription()
    }

    /// The ack mode of that subscription.
    pub fn ack_mode(&self) -> Option<AckMode> {
        self.inner.ack_mode()
    }

    /// A header's value, decoded for the connection's version; the first if repeated.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.inner.frame().header(name)
    }

    /// The whole frame, every header included.
    pub fn frame(&self) -> &FrameBuf {
        self.inner.frame()
    }

    /// Which connection of the client it came on: 1 for the first, one more after each
    /// reconnect.
    pub fn connection(&self) -> u64 {
        self.connection
    }

    /// The session's own view of the message.
    pub fn as_session_message(&self) -> &stomp_session::Message {
        &self.inner
    }
}
