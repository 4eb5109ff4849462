//! [`Subscription`]: a subscription's messages as a bounded stream.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use stomp_session::{AckMode, SubscriptionId};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::command::{Command, Verdict};
use crate::error::Error;
use crate::message::Message;
use crate::receipt::Receipt;

/// A subscription's messages, in order. It is a [`Stream`]; [`next`](Self::next) is the same
/// as an inherent method. Dropping it unsubscribes.
///
/// Receiving is cancel-safe: a `next()` future dropped in a `select!` loses no message.
///
/// The stream is bounded ([`ClientBuilder::subscription_buffer`]): when it is full the
/// connection stops reading from the server until the consumer takes a message. With a
/// reconnect policy the stream outlives a lost connection: the subscription is restored under
/// the same id and messages go on coming.
///
/// [`ClientBuilder::subscription_buffer`]: crate::ClientBuilder::subscription_buffer
pub struct Subscription {
    id: SubscriptionId,
    messages: mpsc::Receiver<Message>,
    client: Client,
}

impl Client {
    /// Subscribes to `destination` and resolves once the server confirmed it (its RECEIPT),
    /// so that messages sent after this returns reach the subscription.
    pub async fn subscribe(&self, destination: &str, ack: AckMode) -> Result<Subscription, Error> {
        self.subscribe_with_headers(destination, ack, &[]).await
    }

    /// Subscribes with further headers, such as RabbitMQ's `prefetch-count`.
    pub async fn subscribe_with_headers(
        &self,
        destination: &str,
        ack: AckMode,
        headers: &[(&str, &str)],
    ) -> Result<Subscription, Error> {
        let (messages_tx, messages) = mpsc::channel(self.buffer);
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let id = self
            .ask(|done| Command::Subscribe {
                destination: destination.to_owned(),
                ack,
                headers,
                messages: messages_tx,
                done,
            })
            .await?;
        Ok(Subscription::new(id, messages, self.clone()))
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(
        id: SubscriptionId,
        messages: mpsc::Receiver<Message>,
        client: Client,
    ) -> Subscription {
        Subscription {
            id,
            messages,
            client,
        }
    }

    /// The subscription's id, which its messages carry.
    pub fn id(&self) -> &SubscriptionId {
        &self.id
    }

    /// The next message; `None` once the connection is over and every message was taken.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// Acknowledges `message` by its version's rules, and waits for the server's RECEIPT.
    pub async fn ack(&self, message: &Message) -> Result<(), Error> {
        self.client.acknowledge(message, Verdict::Ack, None).await
    }

    /// Refuses `message` (STOMP 1.1 and later): the server may redeliver it.
    pub async fn nack(&self, message: &Message) -> Result<(), Error> {
        self.client.acknowledge(message, Verdict::Nack, None).await
    }

    /// Queues the acknowledgement of `message` and returns its [`Receipt`], to await when it
    /// suits, so that acknowledging many messages costs no round trip each.
    pub async fn ack_tracked(&self, message: &Message) -> Result<Receipt, Error> {
        self.client
            .queue_acknowledge(message, Verdict::Ack, None)
            .await
    }

    /// Queues the acknowledgement of `message` without asking for a RECEIPT: the cheapest
    /// way, for a consumer that relies on the broker redelivering what a lost connection
    /// left unacknowledged. Returns once queued; a message from an earlier connection is
    /// skipped.
    pub async fn ack_unconfirmed(&self, message: &Message) -> Result<(), Error> {
        self.client
            .queue_acknowledge_unconfirmed(message, Verdict::Ack)
            .await
    }

    /// Queues the refusal of `message` without asking for a RECEIPT, as
    /// [`ack_unconfirmed`](Self::ack_unconfirmed) does an ACK.
    pub async fn nack_unconfirmed(&self, message: &Message) -> Result<(), Error> {
        self.client
            .queue_acknowledge_unconfirmed(message, Verdict::Nack)
            .await
    }

    /// Queues the refusal of `message`, as [`ack_tracked`](Self::ack_tracked) queues an ACK.
    pub async fn nack_tracked(&self, message: &Message) -> Result<Receipt, Error> {
        self.client
            .queue_acknowledge(message, Verdict::Nack, None)
            .await
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.messages.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.client.unsubscribe(self.id.clone());
    }
}
