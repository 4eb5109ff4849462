//! [`Receipt`]: the server's RECEIPT for a command already queued, awaited later.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use stomp_session::CloseReason;
use tokio::sync::{oneshot, watch};

use crate::Error;

/// Resolves when the server has sent the RECEIPT for a command queued earlier
/// ([`Client::send_tracked`](crate::Client::send_tracked),
/// [`Subscription::ack_tracked`](crate::Subscription::ack_tracked)). Queuing and awaiting
/// apart let one task keep many commands in flight, in order, and learn of each outcome.
/// Dropping it forgets the outcome, not the command.
#[must_use = "a Receipt does nothing unless awaited; drop it to forget the outcome"]
pub struct Receipt {
    answer: oneshot::Receiver<Result<(), Error>>,
    /// Why the client closed, for an answer that never comes.
    closed: watch::Receiver<Option<CloseReason>>,
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt").finish_non_exhaustive()
    }
}

impl Receipt {
    pub(crate) fn new(
        answer: oneshot::Receiver<Result<(), Error>>,
        closed: watch::Receiver<Option<CloseReason>>,
    ) -> Receipt {
        Receipt { answer, closed }
    }
}

impl Future for Receipt {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.answer).poll(cx).map(|answer| {
            // The connection task ended without answering: the client is closed.
            answer.unwrap_or_else(|_| {
                let reason = this.closed.borrow().clone();
                Err(Error::Closed(reason.unwrap_or(CloseReason::PeerClosed)))
            })
        })
    }
}
