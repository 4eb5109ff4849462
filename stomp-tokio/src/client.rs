//! The application's side: [`ClientBuilder`] and [`Client`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use stomp_session::{
    ClientConfig, CloseReason, HeartBeat, Limits, SendFrame, TransactionId, Version,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::rustls;

use crate::Error;
use crate::command::{Command, Control, Verdict};
use crate::driver::{Driver, Setup};
use crate::endpoint::Endpoint;
use crate::events::{Events, Shared};
use crate::message::Message;
use crate::receipt::Receipt;
use crate::reconnect::Reconnect;
use crate::request::CORRELATION;
use crate::tls::Trust;
use crate::transport::Stream;

/// How a [`Client`] connects: [`Client::builder`], then [`connect`](Self::connect).
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    config: ClientConfig,
    commands: usize,
    buffer: usize,
    trust: Trust,
    reconnect: Option<Reconnect>,
    write_timeout: Duration,
    ws_headers: Vec<(String, String)>,
    reply_to: String,
}

impl ClientBuilder {
    /// A further CONNECT header, such as `Authorization: Bearer ...` for a server that logs
    /// in with a token, or ActiveMQ's `client-id`.
    pub fn connect_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config = self.config.with_connect_header(name, value);
        self
    }

    /// A further header of the WebSocket handshake (`ws://`, `wss://`), such as a `Cookie`
    /// or an `Authorization` that the server's HTTP layer checks.
    pub fn ws_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.ws_headers.push((name.into(), value.into()));
        self
    }

    /// Where the answers to [`Client::request`] come (its `reply-to`; default
    /// `/temp-queue/replies`, RabbitMQ's temporary queue, which needs no subscription). Any
    /// other destination is subscribed to before the first request, such as
    /// `/user/queue/replies` for stomp-server.
    pub fn reply_to(mut self, destination: impl Into<String>) -> Self {
        self.reply_to = destination.into();
        self
    }

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

    /// Limits on the frames the server sends (and on WebSocket messages: one frame at most).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config = self.config.with_limits(limits);
        self
    }

    /// How long a connection may take to be set up (default 30 s): TCP, TLS and WebSocket
    /// handshakes together, then CONNECTED.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.with_connect_timeout(timeout);
        self
    }

    /// How long [`Client::disconnect`] waits for the server's RECEIPT (default 5 s).
    pub fn disconnect_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.with_disconnect_timeout(timeout);
        self
    }

    /// How long a write may make no progress (default 10 s) before the connection counts as
    /// lost, as when the server stopped reading: heart-beats and the disconnect timeout are
    /// only kept while writes progress.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
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

    /// Another address of the same broker (or of a member of its cluster), in any scheme the
    /// builder takes. [`connect`](Self::connect) tries the addresses in order until one
    /// answers; a reconnect goes round them, starting with the one after the address lost.
    pub fn failover(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.push(endpoint.into());
        self
    }

    /// Reconnects after the connection is lost (by default the client closes instead).
    ///
    /// On each new connection, before anything else goes out, every subscription still held
    /// by the application is subscribed again under its id, with its ack mode and headers;
    /// the subscription's stream goes on where it was. Then:
    /// - SENDs awaiting their RECEIPT ([`Client::send_with_receipt`]) are sent again, so each
    ///   completes once a server has taken the message; one whose RECEIPT was lost with the
    ///   connection may arrive twice (at least once). Fire-and-forget SENDs already written
    ///   may be lost with the connection; those still queued go out on the new one.
    /// - A SEND or SUBSCRIBE is not made again when the server's ERROR ended the connection
    ///   while it awaited its RECEIPT (the ERROR may be its refusal, even without naming it),
    ///   nor after three connections ended so (a server may drop a connection without a word
    ///   over a frame it cannot take): its caller gets [`Error::Closed`], a subscription's
    ///   stream ends. A frame the server refuses never keeps the client reconnecting.
    /// - Messages received but not acknowledged are redelivered by the broker (to this client
    ///   or another consumer); acknowledging them afterwards fails with
    ///   [`Error::StaleMessage`], since their ids mean nothing to the new connection.
    /// - Transactions die with the connection (the broker aborts them): their commands fail
    ///   with [`Error::Closed`] or an unknown transaction.
    /// - While the connection is down, commands wait in the command queue (`send` waits when
    ///   it is full, `try_send` fails), and [`Client::disconnect`] ends the client at once.
    ///
    /// [`Client::events`] reports each loss, attempt and reconnection.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Trusts these root certificates for `tls://` and `wss://` endpoints, instead of the
    /// system's.
    pub fn tls_roots(mut self, roots: rustls::RootCertStore) -> Self {
        self.trust = Trust::Roots(Arc::new(roots));
        self
    }

    /// Uses this TLS configuration for `tls://` and `wss://` endpoints (client certificates,
    /// another crypto provider...).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.trust = Trust::Config(config);
        self
    }

    /// Connects, and resolves once the server has accepted the connection (CONNECTED), or
    /// fails with [`Error::Refused`] carrying the server's ERROR message. With several
    /// addresses, each is tried once in order and the last failure is returned; the
    /// [`reconnect`](Self::reconnect) policy applies once connected.
    pub async fn connect(self) -> Result<Client, Error> {
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| Endpoint::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        self.start(endpoints, None).await
    }

    /// Speaks STOMP over `stream`, a connection the application opened (such as stomp-server's
    /// in-memory `Server::connect_local`, for tests), and resolves at CONNECTED as
    /// [`connect`](Self::connect) does. The endpoint given to [`Client::builder`] only names
    /// it; there is nothing to reconnect to once it ends.
    pub async fn connect_with<S>(self, stream: S) -> Result<Client, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let name = self.endpoints.first().cloned().unwrap_or_default();
        let endpoints = vec![Endpoint::named(name)];
        self.start(endpoints, Some(Box::new(stream))).await
    }

    async fn start(self, endpoints: Vec<Endpoint>, given: Option<Stream>) -> Result<Client, Error> {
        let setup = Setup {
            config: self.config,
            endpoints,
            trust: self.trust,
            reconnect: self.reconnect.filter(|_| given.is_none()),
            write_timeout: self.write_timeout,
            ws_headers: self.ws_headers,
            given,
        };
        let (commands_tx, commands) = mpsc::channel(self.commands);
        let (control_tx, control) = mpsc::unbounded_channel();
        let (first_tx, first) = oneshot::channel();
        let (closed_tx, closed) = watch::channel(None);
        let shared = Arc::new(Shared::new());
        let driver = Driver::new(
            setup,
            commands,
            control,
            first_tx,
            closed_tx,
            shared.clone(),
        );
        tokio::spawn(driver.run());
        match first.await {
            Ok(Ok(())) => Ok(Client {
                commands: commands_tx,
                control: control_tx,
                closed,
                shared,
                buffer: self.buffer,
                reply_to: Arc::from(self.reply_to),
                requests: Arc::default(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed(CloseReason::PeerClosed)),
        }
    }
}

/// A connection to a STOMP server, driven by a task of its own. Cheap to clone, `Send` and
/// `Sync`: every clone uses the same connection. The connection ends when
/// [`disconnect`](Self::disconnect) is called or the last clone (and the last subscription)
/// is dropped.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    control: mpsc::UnboundedSender<Control>,
    closed: watch::Receiver<Option<CloseReason>>,
    shared: Arc<Shared>,
    /// Room of each subscription's stream.
    pub(crate) buffer: usize,
    /// Where answers to requests come.
    reply_to: Arc<str>,
    /// Requests made so far: the next one's correlation id.
    requests: Arc<AtomicU64>,
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
    /// `tls://host:port` (or `ssl://`) for TLS, `ws://host:port/path` and
    /// `wss://host:port/path` for WebSocket, plain or over TLS.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoints: vec![endpoint.into()],
            config: ClientConfig::new("/"),
            commands: 256,
            buffer: 64,
            trust: Trust::System,
            reconnect: None,
            write_timeout: Duration::from_secs(10),
            ws_headers: Vec::new(),
            reply_to: "/temp-queue/replies".to_owned(),
        }
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).await.map_err(|_| self.gone())
    }

    /// Sends a command that carries where its answer goes, and waits for the answer.
    pub(crate) async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (done, answer) = oneshot::channel();
        self.command(command(done)).await?;
        answer.await.map_err(|_| self.gone())?
    }

    /// Sends a command that carries where its RECEIPT's answer goes, once queued.
    async fn queue(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), Error>>) -> Command,
    ) -> Result<Receipt, Error> {
        let (done, answer) = oneshot::channel();
        self.command(command(done)).await?;
        Ok(Receipt::new(answer, self.closed.clone()))
    }

    /// Acknowledges or refuses `message`, within `transaction` if one is given, and waits
    /// for the server's RECEIPT.
    pub(crate) async fn acknowledge(
        &self,
        message: &Message,
        verdict: Verdict,
        transaction: Option<TransactionId>,
    ) -> Result<(), Error> {
        self.queue_acknowledge(message, verdict, transaction)
            .await?
            .await
    }

    /// Queues an ACK or NACK of `message`; its [`Receipt`] resolves at the server's RECEIPT.
    pub(crate) async fn queue_acknowledge(
        &self,
        message: &Message,
        verdict: Verdict,
        transaction: Option<TransactionId>,
    ) -> Result<Receipt, Error> {
        self.queue(|done| Command::Acknowledge {
            message: Box::new(message.clone()),
            verdict,
            transaction,
            done: Some(done),
        })
        .await
    }

    /// Queues an ACK or NACK of `message` that asks for no RECEIPT.
    pub(crate) async fn queue_acknowledge_unconfirmed(
        &self,
        message: &Message,
        verdict: Verdict,
    ) -> Result<(), Error> {
        self.command(Command::Acknowledge {
            message: Box::new(message.clone()),
            verdict,
            transaction: None,
            done: None,
        })
        .await
    }

    /// Tells the connection task that a subscription was dropped.
    pub(crate) fn unsubscribe(&self, id: stomp_session::SubscriptionId) {
        let _ = self.control.send(Control::Unsubscribe(id));
    }

    /// Queues a command without waiting, if there is room.
    pub(crate) fn try_command(&self, command: Command) -> Result<(), Error> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::QueueFull,
            mpsc::error::TrySendError::Closed(_) => self.gone(),
        })
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
    /// has taken the message. With a reconnect policy, a SEND whose connection was lost before
    /// its RECEIPT is sent again on the next connection, unless the server's ERROR ended it
    /// (see [`ClientBuilder::reconnect`]).
    pub async fn send_with_receipt(&self, frame: SendFrame) -> Result<(), Error> {
        self.send_tracked(frame).await?.await
    }

    /// Queues a message (waiting while the command queue is full) and returns its [`Receipt`],
    /// to await when it suits: one task can keep many SENDs in flight, in order, and still
    /// learn that the server took each one. The resend rule of
    /// [`send_with_receipt`](Self::send_with_receipt) holds.
    pub async fn send_tracked(&self, frame: SendFrame) -> Result<Receipt, Error> {
        self.queue(|done| Command::Send {
            frame,
            done: Some(done),
        })
        .await
    }

    /// Sends `frame` as a request and waits, at most `timeout`, for its answer: the message
    /// that comes back with the same `correlation-id`. The frame goes with a `correlation-id`
    /// of the client's choosing and a `reply-to` ([`ClientBuilder::reply_to`]) unless it has
    /// its own. stomp-server's `Context::reply` answers so; so does any service that copies
    /// `correlation-id` into its answer to `reply-to`. Past the deadline it fails with
    /// [`Error::TimedOut`], and a late answer is dropped.
    pub async fn request(&self, frame: SendFrame, timeout: Duration) -> Result<Message, Error> {
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let correlation = format!("request-{number}");
        let reply_to = match frame.header_value("reply-to") {
            Some(own) => own.to_owned(),
            None => self.reply_to.to_string(),
        };
        let mut frame = frame.header(CORRELATION, correlation.as_str());
        if frame.header_value("reply-to").is_none() {
            frame = frame.header("reply-to", reply_to.as_str());
        }
        let (reply, answer) = oneshot::channel();
        self.command(Command::Request {
            frame,
            correlation,
            reply_to,
            reply,
        })
        .await?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => Err(self.gone()),
            Err(_) => Err(Error::TimedOut),
        }
    }

    /// Queues a message without waiting: fails at once with [`Error::QueueFull`] when the
    /// command queue is full.
    pub fn try_send(&self, frame: SendFrame) -> Result<(), Error> {
        self.try_command(Command::Send { frame, done: None })
    }

    /// Disconnects gracefully: the commands queued before go out, then DISCONNECT, then the
    /// server's RECEIPT, within the disconnect timeout (default 5 s; [`Error::TimedOut`] past
    /// it) once written (each write within the write timeout). While reconnecting, it ends the
    /// client at once.
    pub async fn disconnect(self) -> Result<(), Error> {
        let (done, answer) = oneshot::channel();
        if self.control.send(Control::Disconnect(done)).is_err() {
            return Err(self.gone());
        }
        answer.await.map_err(|_| self.gone())?
    }

    /// The connection's events from now on, starting with where it stands: connected, lost,
    /// reconnecting, reconnected, closed.
    pub fn events(&self) -> Events {
        self.shared.subscribe()
    }

    /// Why the client closed for good, once it has (a heart-beat timeout without a reconnect
    /// policy, the server's ERROR, a disconnect...).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed.borrow().clone()
    }

    /// Resolves when the client closes for good, with the reason.
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
