//! Request and reply over STOMP: a SEND with a `correlation-id` and a `reply-to`, and the
//! MESSAGE that comes back with the same `correlation-id`, wherever it comes from (a
//! subscription of the client's, or RabbitMQ's `/temp-queue/` replies, which need none).

use std::collections::HashMap;

use tokio::sync::oneshot;

use crate::message::Message;

/// The header both sides carry the request's id in (JMS's `JMSCorrelationID`, as RabbitMQ and
/// ActiveMQ map it).
pub(crate) const CORRELATION: &str = "correlation-id";

/// Requests waiting for their reply, by correlation id.
#[derive(Default)]
pub(crate) struct Requests {
    waiting: HashMap<String, oneshot::Sender<Message>>,
}

impl Requests {
    /// Waits for the reply to `correlation`; requests whose caller gave up are forgotten.
    pub(crate) fn expect(&mut self, correlation: String, reply: oneshot::Sender<Message>) {
        self.waiting.retain(|_, r| !r.is_closed());
        self.waiting.insert(correlation, reply);
    }

    /// Hands `message` to the request it answers; the message back if it answers none.
    pub(crate) fn answer(&mut self, message: Message) -> Option<Message> {
        let Some(correlation) = message.frame().header(CORRELATION) else {
            return Some(message);
        };
        match self.waiting.remove(correlation.as_ref()) {
            Some(reply) => {
                let _ = reply.send(message);
                None
            }
            None => Some(message),
        }
    }
}

/// Whether replies to `destination` come without a SUBSCRIBE: RabbitMQ's temporary queues,
/// which the broker creates for the `reply-to` of a SEND and routes back to the sender.
pub(crate) fn needs_no_subscription(destination: &str) -> bool {
    destination.starts_with("/temp-queue/")
}
