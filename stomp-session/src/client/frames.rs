//! The frames a client application handles: [`SendFrame`], a message to send, and
//! [`Message`], one received.

use bytes::Bytes;
use stomp_codec::FrameBuf;

use crate::ids::{SubscriptionId, TransactionId};
use crate::types::{AckMode, AskReceipt};

/// A message for the server: destination, body, and optional headers, transaction and receipt.
///
/// ```
/// use stomp_session::SendFrame;
///
/// let send = SendFrame::new("/queue/orders", "{\"id\":7}")
///     .header("content-type", "application/json")
///     .with_receipt();
/// ```
#[derive(Clone, Debug)]
pub struct SendFrame {
    pub(super) destination: String,
    pub(super) body: Bytes,
    pub(super) headers: Vec<(String, String)>,
    pub(super) transaction: Option<String>,
    pub(super) receipt: AskReceipt,
}

impl SendFrame {
    /// A SEND of `body` to `destination`.
    pub fn new(destination: impl Into<String>, body: impl Into<Bytes>) -> SendFrame {
        SendFrame {
            destination: destination.into(),
            body: body.into(),
            headers: Vec::new(),
            transaction: None,
            receipt: AskReceipt::No,
        }
    }

    /// Adds a header, which the server passes on to subscribers.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> SendFrame {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends within a transaction: the server delivers it only at COMMIT.
    #[must_use]
    pub fn in_transaction(mut self, transaction: &TransactionId) -> SendFrame {
        self.transaction = Some(transaction.as_str().to_owned());
        self
    }

    /// Sets the `content-type` header, the MIME type of the body (1.1 and later), such as
    /// `application/json` or `text/plain;charset=utf-8`.
    #[must_use]
    pub fn content_type(self, content_type: impl Into<String>) -> SendFrame {
        self.header("content-type", content_type)
    }

    /// Asks for a RECEIPT.
    #[must_use]
    pub fn with_receipt(mut self) -> SendFrame {
        self.receipt = AskReceipt::Yes;
        self
    }

    /// The destination.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The value of the first header named `name` added with [`header`](Self::header).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The transaction it is sent in, if any.
    pub fn transaction(&self) -> Option<TransactionId> {
        self.transaction.as_deref().map(TransactionId::from)
    }
}

/// A MESSAGE from the server, for one of this client's subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub(super) frame: FrameBuf,
    pub(super) ack_mode: Option<AckMode>,
}

impl Message {
    /// The id of the subscription the message was delivered for (its `subscription` header).
    pub fn subscription(&self) -> Option<SubscriptionId> {
        self.frame
            .header("subscription")
            .map(|id| SubscriptionId::from(id.into_owned()))
    }

    /// The ack mode of that subscription, if it is still known.
    pub fn ack_mode(&self) -> Option<AckMode> {
        self.ack_mode
    }

    /// The `destination` header.
    pub fn destination(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.frame.header("destination")
    }

    /// The `message-id` header.
    pub fn message_id(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.frame.header("message-id")
    }

    /// The body, sharing the received bytes.
    pub fn body(&self) -> &Bytes {
        self.frame.body()
    }

    /// The whole frame, every header included.
    pub fn frame(&self) -> &FrameBuf {
        &self.frame
    }
}
