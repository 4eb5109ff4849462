//! [`Transaction`]: SENDs and acknowledgements that take effect together.

use std::fmt;

use stomp_session::{SendFrame, TransactionId};

use crate::client::Client;
use crate::command::{Command, Ending, Verdict};
use crate::error::Error;
use crate::message::Message;

impl Client {
    /// Begins a transaction, once the server confirmed it (its RECEIPT). What is sent and
    /// acknowledged through it takes effect at [`Transaction::commit`]; dropping it uncommitted
    /// aborts it.
    pub async fn begin(&self) -> Result<Transaction, Error> {
        let id = self.ask(|done| Command::Begin { done }).await?;
        Ok(Transaction::new(id, self.clone()))
    }
}

/// A transaction: its SENDs, ACKs and NACKs take effect together at
/// [`commit`](Self::commit), or not at all at [`abort`](Self::abort) (or when dropped). A
/// transaction does not outlive its connection: after a reconnect its commands fail.
pub struct Transaction {
    id: TransactionId,
    client: Client,
    ended: bool,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Transaction {
    pub(crate) fn new(id: TransactionId, client: Client) -> Transaction {
        Transaction {
            id,
            client,
            ended: false,
        }
    }

    /// The transaction's id.
    pub fn id(&self) -> &TransactionId {
        &self.id
    }

    /// Sends a message within the transaction; returns once queued.
    pub async fn send(&self, frame: SendFrame) -> Result<(), Error> {
        let frame = frame.in_transaction(&self.id);
        self.client.send_frame(frame).await
    }

    /// Acknowledges `message` within the transaction.
    pub async fn ack(&self, message: &Message) -> Result<(), Error> {
        let transaction = Some(self.id.clone());
        self.client
            .acknowledge(message, Verdict::Ack, transaction)
            .await
    }

    /// Refuses `message` within the transaction.
    pub async fn nack(&self, message: &Message) -> Result<(), Error> {
        let transaction = Some(self.id.clone());
        self.client
            .acknowledge(message, Verdict::Nack, transaction)
            .await
    }

    /// Commits, and waits for the server's RECEIPT.
    pub async fn commit(self) -> Result<(), Error> {
        self.end(Ending::Commit).await
    }

    /// Aborts, and waits for the server's RECEIPT.
    pub async fn abort(self) -> Result<(), Error> {
        self.end(Ending::Abort).await
    }

    async fn end(mut self, ending: Ending) -> Result<(), Error> {
        self.ended = true;
        let id = self.id.clone();
        self.client
            .ask(|done| Command::End {
                id,
                ending,
                done: Some(done),
            })
            .await
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.ended {
            let command = Command::End {
                id: self.id.clone(),
                ending: Ending::Abort,
                done: None,
            };
            // With the queue full or the connection over, the server drops the transaction at
            // the close anyway.
            let _ = self.client.try_command(command);
        }
    }
}
