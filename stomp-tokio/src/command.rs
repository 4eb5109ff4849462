//! What a [`Client`](crate::Client) and its subscriptions and transactions ask of the task
//! that owns the connection: [`Command`]s through a bounded queue, in order, and [`Control`]s
//! past it.

use stomp_session::{AckMode, SendFrame, SubscriptionId, TransactionId};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::message::Message;

/// What the application asks of the connection, in the order it asked.
pub(crate) enum Command {
    Send {
        frame: SendFrame,
        /// Answered at the RECEIPT when there is one, else once the frame is queued.
        done: Option<oneshot::Sender<Result<(), Error>>>,
    },
    Subscribe {
        destination: String,
        ack: AckMode,
        headers: Vec<(String, String)>,
        messages: mpsc::Sender<Message>,
        /// Answered at the SUBSCRIBE's RECEIPT: the subscription is active at the server.
        done: oneshot::Sender<Result<SubscriptionId, Error>>,
    },
    Acknowledge {
        message: Box<Message>,
        verdict: Verdict,
        transaction: Option<TransactionId>,
        /// Answered at the RECEIPT; without it, no RECEIPT is asked for.
        done: Option<oneshot::Sender<Result<(), Error>>>,
    },
    /// A SEND whose answer is the MESSAGE with its `correlation-id`.
    Request {
        frame: SendFrame,
        correlation: String,
        /// Subscribed to (once) before the first request, unless replies need none.
        reply_to: String,
        reply: oneshot::Sender<Message>,
    },
    Begin {
        /// Answered at the BEGIN's RECEIPT.
        done: oneshot::Sender<Result<TransactionId, Error>>,
    },
    End {
        id: TransactionId,
        ending: Ending,
        /// Answered at the RECEIPT; none for an abort on drop.
        done: Option<oneshot::Sender<Result<(), Error>>>,
    },
}

/// What a client does with a message it was handed (STOMP 1.2 "ACK", "NACK").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ack,
    Nack,
}

/// How a transaction ends (STOMP 1.2 "COMMIT", "ABORT").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Commit,
    Abort,
}

/// What goes past the command queue: it is never full, and it is read while the connection is
/// down.
pub(crate) enum Control {
    /// A subscription was dropped.
    Unsubscribe(SubscriptionId),
    /// Leave: after the commands queued so far when connected; at once while reconnecting.
    Disconnect(oneshot::Sender<Result<(), Error>>),
}
