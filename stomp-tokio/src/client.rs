//! The application's side: [`Client`], [`ClientBuilder`] and [`Subscription`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use stomp_session::{
    AckMode, ClientConfig, ClientSession, CloseReason, HeartBeat, Limits, Message, SendFrame,
    SubscriptionId, TransactionId, Version,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::Error;
use crate::driver::{Command, Driver};
use crate::transport::{Endpoint, Transport};

/// How a [`Client`] connects: [`Client::builder`], then [`connect`](Self::connect).
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    endpoint: String,
    config: ClientConfig,
    commands: usize,
    buffer: usize,
}

impl ClientBuilder {
    /// The `login` and `passcode` headers.
    pub fn login(mut self, login: impl Into<String>, passcode: impl Into<String>) -> Self {
        self.config = self.config.with_login(login, passcode);
        self
    }

    /// The `host` header: the virtual host (default `/`, RabbitMQ's).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config = self.config.with_host(host);
        self
    }

    /// The heart-beat offer (default none): what the client can send, what it wants.
    pub fn heart_beat(mut self, heart_beat: HeartBeat) -> Self {
        self.config = self.config.with_heart_beat(heart_beat);
        self
    }

    /// The versions offered (default 1.0, 1.1 and 1.2; the server picks the highest it speaks).
    pub fn versions(mut self, versions: &[Version]) -> Self {
        self.config = self.config.with_versions(versions);
        self
    }

    /// Limits on the frames the server sends.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config = self.config.with_limits(limits);
        self
    }

    /// How long to wait for CONNECTED (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.with_connect_timeout(timeout);
        self
    }

    /// Commands waiting for the connection task at most (default 256): past it, `send` waits
    /// and `try_send` fails, so that publishing never holds up the receive path.
    pub fn command_queue(mut self, commands: usize) -> Self {
        self.commands = commands.max(1);
        self
    }

    /// Messages each subscription holds for its consumer (default 64). When it is full the
    /// connection stops reading from the server until the consumer takes one: nothing is
    /// dropped, and a slow consumer slows the server down rather than growing memory.
    pub fn subscription_buffer(mut self, messages: usize) -> Self {
        self.buffer = messages.max(1);
        self
    }

    /// Connects, and resolves once the server has accepted the connection (CONNECTED), or
    /// fails with [`Error::Refused`] carrying the server's ERROR message.
    pub async fn connect(self) -> Result<Client, Error> {
        let endpoint = Endpoint::parse(&self.endpoint)?;
        let timeout = self.config.connect_timeout();
        let transport = tokio::time::timeout(timeout, Transport::open(&endpoint))
            .await
            .map_err(|_| Error::TimedOut)??;
        // The driver task reads the clock; the session never does.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let session = ClientSession::new(self.config, now);
        let (commands_tx, commands) = mpsc::channel(self.commands);
        let (control_tx, control) = mpsc::unbounded_channel();
        let (connected_tx, connected) = oneshot::channel();
        let (closed_tx, closed) = watch::channel(None);
        let driver = Driver {
            session,
            transport,
            commands,
            control,
            connected: Some(connected_tx),
            closed: closed_tx,
        };
        tokio::spawn(driver.run());
        match connected.await {
            Ok(Ok(())) => Ok(Client {
                commands: commands_tx,
                control: control_tx,
                closed,
                buffer: self.buffer,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed(CloseReason::PeerClosed)),
        }
    }
}

/// A connection to a STOMP server, driven by a task of its own. Cheap to clone, `Send` and
/// `Sync`: every clone uses the same connection. The connection ends when
/// [`disconnect`](Self::disconnect) is called or the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    control: mpsc::UnboundedSender<SubscriptionId>,
    closed: watch::Receiver<Option<CloseReason>>,
    buffer: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("closed", &*self.closed.borrow())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a connection to `endpoint`: `host:port` or `tcp://host:port` for TCP,
    /// `ws://host:port/path` for WebSocket.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            config: ClientConfig::new("/"),
            commands: 256,
            buffer: 64,
        }
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).await.map_err(|_| self.gone())
    }

    /// Sends a command that carries where its answer goes, and waits for the answer.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (done, answer) = oneshot::channel();
        self.command(command(done)).await?;
        answer.await.map_err(|_| self.gone())?
    }

    /// Acknowledges or refuses `message`, within `transaction` if one is given, and waits
    /// for the server's RECEIPT.
    async fn acknowledge(
        &self,
        message: &Message,
        nack: bool,
        transaction: Option<TransactionId>,
    ) -> Result<(), Error> {
        self.ask(|done| Command::Acknowledge {
            message: Box::new(message.clone()),
            nack,
            transaction,
            done,
        })
        .await
    }

    /// The error for a connection that is over.
    fn gone(&self) -> Error {
        let reason = self.closed.borrow().clone();
        Error::Closed(reason.unwrap_or(CloseReason::PeerClosed))
    }

    /// Sends `body` to `destination`. Returns once the message is queued for the connection
    /// (waiting while the command queue is full), without waiting for the server.
    pub async fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        self.send_frame(SendFrame::new(destination, body)).await
    }

    /// Sends a message built with headers, content type or transaction; returns once queued.
    pub async fn send_frame(&self, frame: SendFrame) -> Result<(), Error> {
        self.command(Command::Send { frame, done: None }).await
    }

    /// Sends a message and waits for the server's RECEIPT: once this returns `Ok`, the server
    /// has taken the message.
    pub async fn send_with_receipt(&self, frame: SendFrame) -> Result<(), Error> {
        self.ask(|done| Command::Send {
            frame,
            done: Some(done),
        })
        .await
    }

    /// Queues a message without waiting: fails at once with [`Error::QueueFull`] when the
    /// command queue is full.
    pub fn try_send(&self, frame: SendFrame) -> Result<(), Error> {
        self.commands
            .try_send(Command::Send { frame, done: None })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::QueueFull,
                mpsc::error::TrySendError::Closed(_) => self.gone(),
            })
    }

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
        Ok(Subscription {
            id,
            messages,
            client: self.clone(),
        })
    }

    /// Begins a transaction, once the server confirmed it (its RECEIPT). What is sent and
    /// acknowledged through it takes effect at [`Transaction::commit`]; dropping it uncommitted
    /// aborts it.
    pub async fn begin(&self) -> Result<Transaction, Error> {
        let id = self.ask(|done| Command::Begin { done }).await?;
        Ok(Transaction {
            id,
            client: self.clone(),
            ended: false,
        })
    }

    /// Disconnects gracefully: DISCONNECT, then the server's RECEIPT, within the session's
    /// disconnect timeout (5 s).
    pub async fn disconnect(self) -> Result<(), Error> {
        self.ask(|done| Command::Disconnect { done }).await
    }

    /// Why the connection closed, once it has (a heart-beat timeout, the server's ERROR...).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed.borrow().clone()
    }

    /// Resolves when the connection closes, with the reason.
    pub async fn closed(&self) -> CloseReason {
        let mut closed = self.closed.clone();
        loop {
            if let Some(reason) = closed.borrow_and_update().clone() {
                return reason;
            }
            if closed.changed().await.is_err() {
                return CloseReason::PeerClosed;
            }
        }
    }
}

/// A subscription's messages, in order. It is a [`Stream`]; [`next`](Self::next) is the same
/// as an inherent method. Dropping it unsubscribes.
///
/// Receiving is cancel-safe: a `next()` future dropped in a `select!` loses no message.
pub struct Subscription {
    id: SubscriptionId,
    messages: mpsc::Receiver<Message>,
    client: Client,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
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
        self.client.acknowledge(message, false, None).await
    }

    /// Refuses `message` (STOMP 1.1 and later): the server may redeliver it.
    pub async fn nack(&self, message: &Message) -> Result<(), Error> {
        self.client.acknowledge(message, true, None).await
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
        let _ = self.client.control.send(self.id.clone());
    }
}

/// A transaction: its SENDs, ACKs and NACKs take effect together at
/// [`commit`](Self::commit), or not at all at [`abort`](Self::abort) (or when dropped).
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
        self.client.acknowledge(message, false, transaction).await
    }

    /// Refuses `message` within the transaction.
    pub async fn nack(&self, message: &Message) -> Result<(), Error> {
        let transaction = Some(self.id.clone());
        self.client.acknowledge(message, true, transaction).await
    }

    /// Commits, and waits for the server's RECEIPT.
    pub async fn commit(self) -> Result<(), Error> {
        self.end(true).await
    }

    /// Aborts, and waits for the server's RECEIPT.
    pub async fn abort(self) -> Result<(), Error> {
        self.end(false).await
    }

    async fn end(mut self, commit: bool) -> Result<(), Error> {
        self.ended = true;
        let id = self.id.clone();
        self.client
            .ask(|done| Command::End {
                id,
                commit,
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
                commit: false,
                done: None,
            };
            // With the queue full or the connection over, the server drops the transaction at
            // the close anyway.
            let _ = self.client.commands.try_send(command);
        }
    }
}
