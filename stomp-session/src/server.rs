//! The server side of one accepted connection (1.2 "Client Frames", "Server Frames").

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use stomp_codec::{Command, Config, Encoder, FrameBuf, Item, Limits, Version};

use crate::delivery::{Delivery, SharedDelivery};
use crate::heartbeat::{HeartBeat, Periods};
use crate::ids::SubscriptionId;
use crate::link::Link;
use crate::subscriptions::{AckRef, MessageSet, Subscriptions};
use crate::types::{AckMode, Secret};
use crate::{CloseReason, SessionError, Violation};

/// Decides, as each SEND arrives (inside a transaction too), whether the client may send to
/// its destination. A refusal is an ERROR carrying the returned message (and the SEND's
/// `receipt` as `receipt-id`), before any RECEIPT, and then the close.
pub trait SendCheck: Send + Sync {
    /// `Ok` if the client acting as `user` (its login, unless the application named another
    /// user with [`ServerSession::set_user`]) may send `frame` to `destination`.
    fn check(&self, user: Option<&str>, destination: &str, frame: &FrameBuf) -> Result<(), String>;
}

/// How a server session treats its client.
#[derive(Clone)]
pub struct ServerConfig {
    /// The versions this server speaks; the highest one the client also offers is chosen.
    versions: Vec<Version>,
    /// The server's `heart-beat` offer: the period it can send at, the period it wants.
    heart_beat: HeartBeat,
    /// Silence from the client longer than this many receive periods closes the session.
    heart_beat_margin: f64,
    /// A connection that sends no CONNECT within this time is closed.
    connect_timeout: Duration,
    /// The `server` header of CONNECTED, if any.
    server: Option<String>,
    /// Limits on frames from the client.
    limits: Limits,
    /// Whether each SUBSCRIBE waits for [`ServerSession::confirm_subscription`] or
    /// [`ServerSession::refuse_subscription`] before it takes effect and its RECEIPT is sent, so
    /// that the application can refuse destinations it does not serve. Later frames wait too.
    confirm_subscriptions: bool,
    /// Whether the RECEIPT of a SEND outside a transaction waits for
    /// [`ServerSession::send_receipt_for`], as when the message is passed on to another broker.
    defer_send_receipts: bool,
    /// Decides each SEND's destination before it takes effect; `None` allows every one.
    send_check: Option<Arc<dyn SendCheck>>,
    /// Most subscriptions one connection may hold; one more is an ERROR.
    max_subscriptions: usize,
    /// Most transactions one connection may have open at once; one more is an ERROR.
    max_transactions: usize,
    /// Most SEND, ACK and NACK frames one transaction may hold until its COMMIT.
    max_transaction_frames: usize,
    /// Most octets (heads and bodies) one transaction may hold until its COMMIT.
    max_transaction_bytes: usize,
    /// Whether a 1.1 or 1.2 CONNECT without `host` is refused, as the specification says.
    /// Off by default: stompjs never sends `host` and stomp.py only with a virtual host, and
    /// RabbitMQ, ActiveMQ and Spring accept such a CONNECT.
    require_host: bool,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("versions", &self.versions)
            .field("heart_beat", &self.heart_beat)
            .field("heart_beat_margin", &self.heart_beat_margin)
            .field("connect_timeout", &self.connect_timeout)
            .field("server", &self.server)
            .field("limits", &self.limits)
            .field("confirm_subscriptions", &self.confirm_subscriptions)
            .field("defer_send_receipts", &self.defer_send_receipts)
            .field("send_check", &self.send_check.as_ref().map(|_| "..."))
            .field("max_subscriptions", &self.max_subscriptions)
            .field("max_transactions", &self.max_transactions)
            .field("max_transaction_frames", &self.max_transaction_frames)
            .field("max_transaction_bytes", &self.max_transaction_bytes)
            .field("require_host", &self.require_host)
            .finish()
    }
}

impl Default for ServerConfig {
    /// Every version, heart-beats of 10000,10000 ms with a margin of 2 periods, 10 s to send
    /// CONNECT, `host` not required, the default limits; at most 200,000 subscriptions and 16 open transactions
    /// per connection, each transaction holding at most 10,000 frames and 16 MiB.
    fn default() -> Self {
        ServerConfig {
            versions: Version::ALL.to_vec(),
            heart_beat: HeartBeat::from_millis(10_000, 10_000),
            heart_beat_margin: 2.0,
            connect_timeout: Duration::from_secs(10),
            server: None,
            limits: Limits::default(),
            confirm_subscriptions: false,
            defer_send_receipts: false,
            send_check: None,
            max_subscriptions: 200_000,
            max_transactions: 16,
            max_transaction_frames: 10_000,
            max_transaction_bytes: 16 * 1024 * 1024,
            require_host: false,
        }
    }
}

impl ServerConfig {
    /// Sets [`versions`](Self::versions).
    #[must_use]
    pub fn with_versions(mut self, versions: &[Version]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// The versions this server speaks; the highest one the client also offers is chosen.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Sets [`heart_beat`](Self::heart_beat).
    #[must_use]
    pub fn with_heart_beat(mut self, heart_beat: HeartBeat) -> Self {
        self.heart_beat = heart_beat;
        self
    }

    /// The server's `heart-beat` offer: the period it can send at, the period it wants.
    pub fn heart_beat(&self) -> HeartBeat {
        self.heart_beat
    }

    /// Sets [`heart_beat_margin`](Self::heart_beat_margin).
    #[must_use]
    pub fn with_heart_beat_margin(mut self, heart_beat_margin: f64) -> Self {
        self.heart_beat_margin = heart_beat_margin;
        self
    }

    /// Silence from the client longer than this many receive periods closes the session.
    pub fn heart_beat_margin(&self) -> f64 {
        self.heart_beat_margin
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// A connection that sends no CONNECT within this time is closed.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Sets [`server`](Self::server).
    #[must_use]
    pub fn with_server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// The `server` header of CONNECTED, if any.
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// Sets [`limits`](Self::limits).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Limits on frames from the client.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sets [`confirm_subscriptions`](Self::confirm_subscriptions).
    #[must_use]
    pub fn with_confirm_subscriptions(mut self, confirm_subscriptions: bool) -> Self {
        self.confirm_subscriptions = confirm_subscriptions;
        self
    }

    /// Whether each SUBSCRIBE waits for [`ServerSession::confirm_subscription`] or
    /// [`ServerSession::refuse_subscription`] before it takes effect and its RECEIPT is sent, so
    /// that the application can refuse destinations it does not serve. Later frames wait too.
    pub fn confirm_subscriptions(&self) -> bool {
        self.confirm_subscriptions
    }

    /// Sets [`defer_send_receipts`](Self::defer_send_receipts).
    #[must_use]
    pub fn with_defer_send_receipts(mut self, defer: bool) -> Self {
        self.defer_send_receipts = defer;
        self
    }

    /// Whether the RECEIPT a SEND outside a transaction asks for waits until the application
    /// calls [`ServerSession::send_receipt_for`] (default: no, it is sent once the SEND is
    /// acted on): a relay answers once the other broker took the message. A SEND inside a
    /// transaction is answered as it arrives, as ever (1.2 "RECEIPT").
    pub fn defer_send_receipts(&self) -> bool {
        self.defer_send_receipts
    }

    /// Sets [`max_subscriptions`](Self::max_subscriptions).
    #[must_use]
    pub fn with_max_subscriptions(mut self, max_subscriptions: usize) -> Self {
        self.max_subscriptions = max_subscriptions;
        self
    }

    /// Most subscriptions one connection may hold; one more is an ERROR.
    pub fn max_subscriptions(&self) -> usize {
        self.max_subscriptions
    }

    /// Sets [`max_transactions`](Self::max_transactions).
    #[must_use]
    pub fn with_max_transactions(mut self, max_transactions: usize) -> Self {
        self.max_transactions = max_transactions;
        self
    }

    /// Most transactions one connection may have open at once; one more is an ERROR.
    pub fn max_transactions(&self) -> usize {
        self.max_transactions
    }

    /// Sets [`max_transaction_frames`](Self::max_transaction_frames).
    #[must_use]
    pub fn with_max_transaction_frames(mut self, max_transaction_frames: usize) -> Self {
        self.max_transaction_frames = max_transaction_frames;
        self
    }

    /// Most SEND, ACK and NACK frames one transaction may hold until its COMMIT.
    pub fn max_transaction_frames(&self) -> usize {
        self.max_transaction_frames
    }

    /// Sets [`max_transaction_bytes`](Self::max_transaction_bytes).
    #[must_use]
    pub fn with_max_transaction_bytes(mut self, max_transaction_bytes: usize) -> Self {
        self.max_transaction_bytes = max_transaction_bytes;
        self
    }

    /// Most octets (heads and bodies) one transaction may hold until its COMMIT.
    pub fn max_transaction_bytes(&self) -> usize {
        self.max_transaction_bytes
    }

    /// Sets [`require_host`](Self::require_host).
    #[must_use]
    pub fn with_require_host(mut self, require_host: bool) -> Self {
        self.require_host = require_host;
        self
    }

    /// Whether a 1.1 or 1.2 CONNECT without `host` is refused, as the specification says.
    /// Off by default: stompjs never sends `host` and stomp.py only with a virtual host, and
    /// RabbitMQ, ActiveMQ and Spring accept such a CONNECT.
    pub fn require_host(&self) -> bool {
        self.require_host
    }

    /// Sets [`send_check`](Self::send_check).
    #[must_use]
    pub fn with_send_check(mut self, check: Arc<dyn SendCheck>) -> Self {
        self.send_check = Some(check);
        self
    }

    /// Decides each SEND's destination before it takes effect; none allows every one.
    pub fn send_check(&self) -> Option<&Arc<dyn SendCheck>> {
        self.send_check.as_ref()
    }
}

/// A client's CONNECT, for the application to accept or reject.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The version that will be used.
    pub version: Version,
    /// The `host` header.
    pub host: Option<String>,
    /// The `login` header.
    pub login: Option<String>,
    /// The `passcode` header. Never shown by `Debug`.
    pub passcode: Option<Secret>,
    /// The heart-beat periods that will apply.
    pub heart_beat: Periods,
}

/// What the server application learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A client asks to connect: call [`ServerSession::accept`] or [`ServerSession::reject`].
    Connect(ConnectRequest),
    /// A new subscription.
    Subscribe {
        /// Its id, unique in this session.
        id: SubscriptionId,
        /// Its destination.
        destination: String,
        /// Its ack mode.
        ack: AckMode,
        /// The SUBSCRIBE frame, for other headers such as selectors.
        frame: FrameBuf,
    },
    /// A subscription ended; its unacknowledged messages are listed.
    Unsubscribe {
        /// The subscription's id.
        id: SubscriptionId,
        /// Its destination.
        destination: String,
        /// Messages delivered to it and never acknowledged, to redeliver elsewhere.
        unacked: Vec<String>,
    },
    /// A SEND to act on: at once, or at COMMIT when it was part of a transaction.
    Send(FrameBuf),
    /// Messages the client acknowledged.
    Ack(MessageSet),
    /// Messages the client refused.
    Nack(MessageSet),
    /// The session closed. Reported once.
    Closed {
        /// Why.
        reason: CloseReason,
        /// Messages delivered and never acknowledged, per subscription.
        unacked: Vec<MessageSet>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    AwaitingConnect {
        deadline: Instant,
    },
    AwaitingAccept {
        deadline: Instant,
        periods: Periods,
    },
    Connected,
    /// An ERROR or the last RECEIPT is queued; the session is closed once it is written.
    Closing,
    Closed,
}

/// A SUBSCRIBE that waits for the application's confirmation.
#[derive(Clone, Debug)]
struct PendingSubscription {
    id: String,
    destination: String,
    ack: AckMode,
    receipt: Option<String>,
}

/// A frame held in a transaction until COMMIT.
#[derive(Clone, Debug)]
enum Deferred {
    Send(FrameBuf),
    Ack(FrameBuf),
    Nack(FrameBuf),
}

impl Deferred {
    /// The octets it keeps in memory.
    fn size(&self) -> usize {
        match self {
            Deferred::Send(frame) | Deferred::Ack(frame) | Deferred::Nack(frame) => {
                frame.as_bytes().len()
            }
        }
    }
}

/// An open transaction: the frames it holds until COMMIT, and their size in octets.
#[derive(Debug, Default)]
struct Transaction {
    frames: Vec<Deferred>,
    octets: usize,
}

/// A protocol error: the rule broken (the ERROR frame's message) and the receipt to echo.
struct Refusal {
    violation: Violation,
    receipt: Option<String>,
}

fn refuse(violation: Violation) -> Refusal {
    Refusal {
        violation,
        receipt: None,
    }
}

/// A sans-IO STOMP server session, one per accepted connection.
///
/// It checks every client frame against its version's rules, answers with CONNECTED, RECEIPT,
/// MESSAGE and ERROR frames, keeps subscriptions, unacknowledged messages and transactions, and
/// hands the application what it must act on as [`ServerEvent`]s. A protocol error produces an
/// ERROR frame with a `message` (and the failing frame's `receipt` as `receipt-id`), and then
/// the close; the ERROR is still handed out by [`poll_transmit`](Self::poll_transmit) before
/// [`is_closed`](Self::is_closed) turns true.
///
/// # Call order
///
/// As for [`ClientSession`](crate::ClientSession): [`handle_input`](Self::handle_input),
/// [`handle_eof`](Self::handle_eof) and [`handle_timeout`](Self::handle_timeout) for input;
/// [`accept`](Self::accept), [`reject`](Self::reject) and [`deliver`](Self::deliver) from the
/// application; then [`poll_event`](Self::poll_event), [`poll_transmit`](Self::poll_transmit)
/// and [`poll_timeout`](Self::poll_timeout) until they are empty.
///
/// Frames are acted on one event at a time: once a frame has given the application an event,
/// the next one is decoded only when the application asks for its next event, having acted
/// on this one. What the session knows (its subscriptions, what awaits acknowledgement) is
/// therefore never ahead of the application: a SEND, then an UNSUBSCRIBE, received in one
/// read, reach the application in turn, and the subscription still exists while the SEND is
/// routed.
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use stomp_session::{Delivery, ServerConfig, ServerEvent, ServerSession};
///
/// let now = Instant::now();
/// let mut server = ServerSession::new(ServerConfig::default(), now);
/// server.handle_input(now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0");
/// let Some(ServerEvent::Connect(request)) = server.poll_event() else { panic!() };
/// assert_eq!(request.host.as_deref(), Some("/"));
/// server.accept(now)?;
/// assert!(server.poll_transmit().unwrap().starts_with(b"CONNECTED\nversion:1.2\n"));
///
/// server.handle_input(now, b"SUBSCRIBE\nid:0\ndestination:/topic/a\n\n\0");
/// let Some(ServerEvent::Subscribe { id, .. }) = server.poll_event() else { panic!() };
/// let body = Bytes::from_static(b"hello");
/// let delivery = Delivery::new("/topic/a", "m-1", &body);
/// server.deliver(now, &id, delivery)?;
/// assert_eq!(
///     &server.poll_transmit().unwrap()[..],
///     b"MESSAGE\nsubscription:0\nmessage-id:m-1\ndestination:/topic/a\ncontent-length:5\n\nhello\0"
/// );
///
/// // A protocol error: ERROR, then the close.
/// server.handle_input(now, b"SEND\nreceipt:r1\n\n\0");
/// let error = server.poll_transmit().unwrap();
/// assert!(error.starts_with(b"ERROR\nmessage:SEND without destination\nreceipt-id:r1\n"));
/// assert!(server.is_closed());
/// # Ok::<(), stomp_session::SessionError>(())
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    link: Link,
    state: State,
    events: VecDeque<ServerEvent>,
    subscriptions: Subscriptions,
    transactions: HashMap<String, Transaction>,
    pending_subscription: Option<PendingSubscription>,
    next_ack: u64,
    /// The user the session acts as (the CONNECT's login unless set), for the send check.
    login: Option<String>,
    /// The latest time the driver gave: frames decoded when the application asks for its
    /// next event are acted on at this time.
    now: Instant,
    /// Octets received before the session was established, EOLs included: at most one
    /// head's worth ([`Limits::max_head_bytes`]) is taken from a client not yet let in.
    preamble: usize,
}

impl ServerSession {
    /// A session for a newly accepted connection, waiting for CONNECT.
    pub fn new(config: ServerConfig, now: Instant) -> ServerSession {
        let highest = config
            .versions
            .iter()
            .max()
            .copied()
            .unwrap_or(Version::V1_2);
        let codec = Config::new(highest).with_limits(config.limits);
        ServerSession {
            link: Link::new(codec, config.heart_beat_margin, now),
            state: State::AwaitingConnect {
                deadline: now + config.connect_timeout,
            },
            events: VecDeque::new(),
            subscriptions: Subscriptions::default(),
            transactions: HashMap::new(),
            pending_subscription: None,
            next_ack: 0,
            login: None,
            now,
            preamble: 0,
            config,
        }
    }

    // ---- Getters ----

    /// The negotiated version (before CONNECT, the highest this server speaks).
    pub fn version(&self) -> Version {
        self.link.version()
    }

    /// The negotiated heart-beat periods, from the server's side.
    pub fn heart_beat(&self) -> Periods {
        self.link.periods()
    }

    /// Whether the connection is established.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the session is over and its last bytes (an ERROR, a RECEIPT) have been taken.
    pub fn is_closed(&self) -> bool {
        match self.state {
            State::Closed => true,
            State::Closing => !self.link.has_output(),
            _ => false,
        }
    }

    /// The destination and ack mode of subscription `id`.
    pub fn subscription(&self, id: &SubscriptionId) -> Option<(&str, AckMode)> {
        self.subscriptions
            .get(id.as_str())
            .map(|s| (s.destination.as_str(), s.ack))
    }

    /// How many messages of subscription `id` wait for an ACK or NACK.
    pub fn unacked_count(&self, id: &SubscriptionId) -> usize {
        self.subscriptions
            .get(id.as_str())
            .map_or(0, |s| s.unacked_len())
    }

    /// How many subscriptions the client holds.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Octets ever queued for writing to the client, handed out by
    /// [`poll_transmit`](Self::poll_transmit) or not: the offset in the connection's output
    /// just past the last frame queued. A driver that reports how far it has written can tell
    /// from this which frames reached the transport.
    pub fn octets_queued(&self) -> u64 {
        self.link.octets_queued()
    }

    // ---- Input ----

    /// Takes bytes received from the client, in any chunking.
    ///
    /// Before the session is established, at most one head's worth
    /// ([`Limits::max_head_bytes`]) is taken in all, and a first frame other than CONNECT or
    /// STOMP is refused as soon as its command line is in, before its headers and body are
    /// read (1.2 "Connecting"): a client that is not let in costs one head of memory.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.now = now;
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        self.link.receive(now, bytes);
        if matches!(
            self.state,
            State::AwaitingConnect { .. } | State::AwaitingAccept { .. }
        ) {
            self.preamble = self.preamble.saturating_add(bytes.len());
            let bound = self.config.limits.max_head_bytes();
            if self.preamble > bound {
                self.refuse_input(now, bound, "before CONNECT was accepted");
                return;
            }
        }
        if !self.awaits_application() {
            self.process(now);
            return;
        }
        // Nothing is decoded until the application answers the CONNECT or SUBSCRIBE, or takes
        // the event that waits. What arrives meanwhile is bounded: one frame's worth.
        let limits = self.config.limits;
        let bound = limits.max_head_bytes().saturating_add(limits.max_body());
        if self.link.buffered() > bound {
            self.refuse_input(now, bound, "while awaiting the application");
        }
    }

    /// Too much input while the session cannot act on it: ERROR, then the close.
    fn refuse_input(&mut self, now: Instant, bound: usize, waiting: &'static str) {
        let violation = Violation::TooMuchInput { bound, waiting };
        let message = violation.to_string();
        self.fail(now, message, None, CloseReason::Protocol(violation));
    }

    /// The driver stops (`true`) or resumes (`false`) reading the client, as flow control.
    /// While paused, the client's silence does not count against its heart-beats; when reading
    /// resumes, its receive period starts afresh.
    pub fn pause_input(&mut self, now: Instant, paused: bool) {
        self.link.pause_input(now, paused);
    }

    /// Whether a CONNECT or SUBSCRIBE waits for the application's answer, or an event waits
    /// to be taken: no further frame is acted on meanwhile.
    fn awaits_application(&self) -> bool {
        matches!(self.state, State::AwaitingAccept { .. })
            || self.pending_subscription.is_some()
            || !self.events.is_empty()
    }

    /// Decodes and acts on buffered input while the state allows, up to the first frame that
    /// gives the application an event: what the session knows (its subscriptions, what awaits
    /// acknowledgement) never runs ahead of what the application has acted on.
    fn process(&mut self, now: Instant) {
        while matches!(self.state, State::AwaitingConnect { .. } | State::Connected)
            && !self.awaits_application()
        {
            match self.link.next_item() {
                Ok(None) => {
                    self.refuse_early(now);
                    return;
                }
                Ok(Some(Item::HeartBeat)) => {}
                Ok(Some(Item::Frame(frame))) => {
                    if let Err(refusal) = self.on_frame(now, frame) {
                        let message = refusal.violation.to_string();
                        let reason = CloseReason::Protocol(refusal.violation);
                        self.fail(now, message, refusal.receipt, reason);
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    self.fail(now, message, None, CloseReason::Decode(e));
                }
            }
        }
    }

    /// Before CONNECT, a frame that is not CONNECT or STOMP is refused as soon as its
    /// command line is read (1.2 "Connecting"), not once its body is in.
    fn refuse_early(&mut self, now: Instant) {
        if !matches!(self.state, State::AwaitingConnect { .. }) {
            return;
        }
        let command = self.link.command_in_progress();
        if let Some(command) = command.filter(|c| !matches!(c, Command::Connect | Command::Stomp)) {
            let violation = Violation::NotConnected(command);
            let message = violation.to_string();
            self.fail(now, message, None, CloseReason::Protocol(violation));
        }
    }

    /// The client closed the connection: open transactions are dropped.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            State::Closed => {}
            State::Closing => {
                // The peer is gone: what was queued cannot be delivered.
                self.link.discard();
                self.state = State::Closed;
            }
            _ => self.close(CloseReason::PeerClosed, true),
        }
    }

    /// Acts on every deadline that has passed: heart-beats to send, a silent client, a
    /// connection that never sent CONNECT.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            State::AwaitingConnect { deadline } | State::AwaitingAccept { deadline, .. }
                if now >= deadline =>
            {
                let millis = self.config.connect_timeout.as_millis();
                // A client that did send CONNECT is told what it waited for.
                let message = match self.state {
                    State::AwaitingAccept { .. } => {
                        format!("CONNECT not accepted within {millis} ms")
                    }
                    _ => format!("no CONNECT within {millis} ms"),
                };
                self.fail(now, message, None, CloseReason::ConnectTimedOut);
            }
            State::Connected => {
                let peer_silent = self.link.on_timeout(now);
                if peer_silent {
                    // Brokers drop a silent client with a plain close, no ERROR.
                    self.close(CloseReason::HeartBeatTimedOut, true);
                }
            }
            _ => {}
        }
    }

    fn on_frame(&mut self, now: Instant, frame: FrameBuf) -> Result<(), Refusal> {
        if let State::AwaitingConnect { .. } = self.state {
            return match frame.command() {
                Command::Connect | Command::Stomp => self.on_connect(now, &frame),
                other => Err(refuse(Violation::NotConnected(other))),
            };
        }
        let common = common_headers(&frame);
        let receipt = common.receipt.map(Cow::into_owned);
        let transaction = common.transaction.map(Cow::into_owned);
        let has_destination = common.destination.is_some();
        // A refused frame's receipt is echoed as the ERROR's receipt-id.
        self.on_client_frame(now, frame, receipt.as_deref(), transaction, has_destination)
            .map_err(|refusal| Refusal { receipt, ..refusal })
    }

    /// Acts on a frame of an established connection, given the headers most frames need.
    fn on_client_frame(
        &mut self,
        now: Instant,
        frame: FrameBuf,
        receipt: Option<&str>,
        transaction: Option<String>,
        has_destination: bool,
    ) -> Result<(), Refusal> {
        if let Some(receipt) = receipt {
            // A RECEIPT echoes it: refuse now what this version could never send back.
            let encoder = Encoder::new(self.version());
            if encoder
                .check_header(Command::Receipt, "receipt-id", receipt)
                .is_err()
            {
                return Err(refuse(Violation::Unechoable {
                    header: "receipt",
                    value: receipt.to_owned(),
                    command: Command::Receipt,
                    version: self.version(),
                }));
            }
        }
        match frame.command() {
            Command::Connect | Command::Stomp => return Err(refuse(Violation::AlreadyConnected)),
            Command::Send => {
                let deferred = self.config.defer_send_receipts && transaction.is_none();
                self.on_send(frame, transaction.as_deref(), has_destination)?;
                if deferred {
                    // The application answers with `send_receipt_for`.
                    return Ok(());
                }
            }
            Command::Subscribe => {
                if self.config.confirm_subscriptions {
                    // The RECEIPT waits for the application's confirmation.
                    return self.on_subscribe(frame, receipt.map(str::to_owned));
                }
                self.on_subscribe(frame, None)?;
            }
            Command::Unsubscribe => self.on_unsubscribe(&frame)?,
            Command::Ack | Command::Nack => self.on_ack(frame)?,
            Command::Begin => self.on_begin(&frame)?,
            Command::Commit => self.on_commit(&frame)?,
            Command::Abort => self.on_abort(&frame)?,
            Command::Disconnect => {
                if let Some(receipt) = receipt {
                    self.send_receipt(now, receipt);
                }
                self.close(CloseReason::Disconnected, false);
                return Ok(());
            }
            server_frame => {
                return Err(refuse(Violation::ServerFrame(server_frame)));
            }
        }
        if let Some(receipt) = receipt {
            self.send_receipt(now, receipt);
        }
        Ok(())
    }

    /// SEND: checked as it arrives (1.2 "SEND"), applied now or at its transaction's COMMIT.
    fn on_send(
        &mut self,
        frame: FrameBuf,
        transaction: Option<&str>,
        has_destination: bool,
    ) -> Result<(), Refusal> {
        if !has_destination {
            return Err(refuse(Violation::MissingHeader {
                command: Command::Send,
                header: "destination",
                since: None,
            }));
        }
        if let Some(check) = &self.config.send_check {
            let destination = frame.header("destination").unwrap_or_default();
            check
                .check(self.login.as_deref(), &destination, &frame)
                .map_err(|reason| refuse(Violation::Refused(reason)))?;
        }
        self.defer_or_apply(transaction, Deferred::Send(frame))
    }

    /// BEGIN (1.2 "BEGIN"): a new transaction, within the limit on open ones.
    fn on_begin(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        if self.transactions.contains_key(&tx) {
            return Err(refuse(Violation::TransactionOpen(tx.into())));
        }
        if self.transactions.len() >= self.config.max_transactions {
            return Err(refuse(Violation::TooManyTransactions(
                self.config.max_transactions,
            )));
        }
        self.transactions.insert(tx, Transaction::default());
        Ok(())
    }

    /// COMMIT (1.2 "COMMIT"): what the transaction held is applied, in order.
    fn on_commit(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        let deferred = self.transactions.remove(&tx).ok_or_else(|| {
            refuse(Violation::UnknownTransaction {
                command: Some(Command::Commit),
                id: tx.as_str().into(),
            })
        })?;
        for frame in deferred.frames {
            self.apply(frame);
        }
        Ok(())
    }

    /// ABORT (1.2 "ABORT"): what the transaction held is dropped.
    fn on_abort(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        self.transactions.remove(&tx).ok_or_else(|| {
            refuse(Violation::UnknownTransaction {
                command: Some(Command::Abort),
                id: tx.as_str().into(),
            })
        })?;
        Ok(())
    }

    fn on_connect(&mut self, now: Instant, frame: &FrameBuf) -> Result<(), Refusal> {
        // No accept-version: the client speaks 1.0 (1.2 "Protocol Negotiation").
        let offered: Vec<Version> = match frame.header("accept-version") {
            None => vec![Version::V1_0],
            Some(list) => list
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .collect(),
        };
        let Some(version) = offered
            .into_iter()
            .filter(|v| self.config.versions.contains(v))
            .max()
        else {
            self.fail_with_versions(now);
            return Ok(());
        };
        let host = frame.header("host").map(|h| h.into_owned());
        if host.is_none() && version >= Version::V1_1 && self.config.require_host {
            return Err(refuse(Violation::MissingHeader {
                command: Command::Connect,
                header: "host",
                since: Some(Version::V1_1),
            }));
        }
        let offer = match frame.header("heart-beat") {
            None => HeartBeat::NONE,
            Some(h) => h.parse().map_err(|e: crate::InvalidHeartBeat| {
                refuse(Violation::InvalidHeartBeat(e.to_string()))
            })?,
        };
        let heart_beat = self.config.heart_beat.negotiate(offer);
        self.link.set_version(version);
        let deadline = match self.state {
            State::AwaitingConnect { deadline } => deadline,
            _ => now,
        };
        self.state = State::AwaitingAccept {
            deadline,
            periods: heart_beat,
        };
        let login = frame.header("login").map(|l| l.into_owned());
        self.login.clone_from(&login);
        self.events.push_back(ServerEvent::Connect(ConnectRequest {
            version,
            host,
            login,
            passcode: frame
                .header("passcode")
                .map(|p| Secret::new(p.into_owned())),
            heart_beat,
        }));
        Ok(())
    }

    /// No version in common: ERROR with a `version` header listing ours, then the close.
    fn fail_with_versions(&mut self, now: Instant) {
        let mut versions = self.config.versions.clone();
        versions.sort();
        let list = versions
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let violation = Violation::NoCommonVersion {
            supported: list.clone(),
        };
        let message = violation.to_string();
        let headers = [
            ("message", message.as_str()),
            ("version", list.as_str()),
            ("content-type", "text/plain"),
        ];
        let _ = self
            .link
            .send(now, Command::Error, headers, &Bytes::from(message.clone()));
        self.close(CloseReason::Protocol(violation), false);
    }

    /// Holds a frame in the transaction it names until COMMIT, within the transaction
    /// limits, or acts on it now when it names none.
    fn defer_or_apply(&mut self, name: Option<&str>, frame: Deferred) -> Result<(), Refusal> {
        let Some(name) = name else {
            self.apply(frame);
            return Ok(());
        };
        let tx = self.transactions.get_mut(name).ok_or_else(|| {
            refuse(Violation::UnknownTransaction {
                command: None,
                id: name.into(),
            })
        })?;
        let size = frame.size();
        if tx.frames.len() >= self.config.max_transaction_frames {
            return Err(refuse(Violation::TransactionFrames {
                id: name.into(),
                limit: self.config.max_transaction_frames,
            }));
        }
        if tx.octets.saturating_add(size) > self.config.max_transaction_bytes {
            return Err(refuse(Violation::TransactionBytes {
                id: name.into(),
                limit: self.config.max_transaction_bytes,
            }));
        }
        tx.octets += size;
        tx.frames.push(frame);
        Ok(())
    }

    /// Takes a SUBSCRIBE; when subscriptions are confirmed, it waits with its `receipt`.
    fn on_subscribe(&mut self, frame: FrameBuf, receipt: Option<String>) -> Result<(), Refusal> {
        let destination = required(&frame, "destination")?;
        // 1.0 makes the id optional; the destination then names the subscription.
        let id = match frame.header("id") {
            Some(id) => id.into_owned(),
            None if self.version() == Version::V1_0 => destination.clone(),
            None => {
                return Err(refuse(Violation::MissingHeader {
                    command: Command::Subscribe,
                    header: "id",
                    since: Some(Version::V1_1),
                }));
            }
        };
        if self.subscriptions.contains(&id) {
            return Err(refuse(Violation::SubscriptionInUse(id.into())));
        }
        if self.subscriptions.len() >= self.config.max_subscriptions {
            return Err(refuse(Violation::TooManySubscriptions(
                self.config.max_subscriptions,
            )));
        }
        // Every MESSAGE echoes these: refuse now what this version could never send back (in
        // 1.0, a value ending in CR).
        let encoder = Encoder::new(self.version());
        for (name, value) in [("subscription", &id), ("destination", &destination)] {
            if encoder.check_header(Command::Message, name, value).is_err() {
                return Err(refuse(Violation::Unechoable {
                    header: name,
                    value: value.clone(),
                    command: Command::Message,
                    version: self.version(),
                }));
            }
        }
        let ack = match frame.header("ack") {
            None => AckMode::Auto,
            Some(mode) => {
                let unknown = || refuse(Violation::UnknownAckMode(mode.to_string()));
                AckMode::parse(&mode).ok_or_else(unknown)?
            }
        };
        if self.config.confirm_subscriptions {
            self.pending_subscription = Some(PendingSubscription {
                id: id.clone(),
                destination: destination.clone(),
                ack,
                receipt,
            });
        } else {
            self.subscriptions.add(id.clone(), destination.clone(), ack);
        }
        self.events.push_back(ServerEvent::Subscribe {
            id: id.into(),
            destination,
            ack,
            frame,
        });
        Ok(())
    }

    fn on_unsubscribe(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let id = match frame.header("id") {
            Some(id) => id.into_owned(),
            None if self.version() == Version::V1_0 => required(frame, "destination")?,
            None => {
                return Err(refuse(Violation::MissingHeader {
                    command: Command::Unsubscribe,
                    header: "id",
                    since: None,
                }));
            }
        };
        let (subscription, unacked) = self
            .subscriptions
            .remove(&id)
            .ok_or_else(|| refuse(Violation::UnknownSubscription(id.as_str().into())))?;
        self.events.push_back(ServerEvent::Unsubscribe {
            id: id.into(),
            destination: subscription.destination,
            unacked,
        });
        Ok(())
    }

    fn on_ack(&mut self, frame: FrameBuf) -> Result<(), Refusal> {
        let command = frame.command();
        if command == Command::Nack && self.version() == Version::V1_0 {
            return Err(refuse(Violation::Unsupported {
                command: Command::Nack,
                version: Version::V1_0,
            }));
        }
        let pending = {
            let reference = ack_ref(&frame, self.version())?;
            self.subscriptions.is_pending(reference.as_ref())
        };
        if !pending {
            return Err(refuse(Violation::NotPending(command)));
        }
        let deferred = if command == Command::Ack {
            Deferred::Ack(frame.clone())
        } else {
            Deferred::Nack(frame.clone())
        };
        let transaction = frame.header("transaction").map(Cow::into_owned);
        self.defer_or_apply(transaction.as_deref(), deferred)
    }

    /// Acts on a frame now: at once, or at its transaction's COMMIT.
    fn apply(&mut self, deferred: Deferred) {
        let version = self.version();
        match deferred {
            Deferred::Send(frame) => self.events.push_back(ServerEvent::Send(frame)),
            Deferred::Ack(frame) | Deferred::Nack(frame) => {
                let Ok(reference) = ack_ref(&frame, version) else {
                    return;
                };
                // Settled meanwhile by a cumulative ACK: nothing left to do.
                let Some(settled) = self.subscriptions.settle(reference.as_ref()) else {
                    return;
                };
                self.events.push_back(if frame.command() == Command::Ack {
                    ServerEvent::Ack(settled)
                } else {
                    ServerEvent::Nack(settled)
                });
            }
        }
    }

    fn send_receipt(&mut self, now: Instant, receipt: &str) {
        let _ = self.link.send(
            now,
            Command::Receipt,
            [("receipt-id", receipt)],
            &Bytes::new(),
        );
    }

    // ---- Commands ----

    /// Accepts the pending CONNECT: sends CONNECTED and starts heart-beats.
    pub fn accept(&mut self, now: Instant) -> Result<(), SessionError> {
        self.accept_with_headers(now, &[])
    }

    /// Accepts the pending CONNECT with further CONNECTED headers, such as `session` and
    /// `user-name`. A header that CONNECTED cannot carry (it is never escaped: no LF, no
    /// colon in its name) is left out.
    pub fn accept_with_headers(
        &mut self,
        now: Instant,
        extra: &[(&str, &str)],
    ) -> Result<(), SessionError> {
        let State::AwaitingAccept { periods, .. } = self.state else {
            return Err(SessionError::InvalidState("no CONNECT awaits acceptance"));
        };
        let version = self.version();
        let server_offer = self.config.heart_beat.to_string();
        let mut headers = vec![
            ("version", version.as_str()),
            ("heart-beat", server_offer.as_str()),
        ];
        if let Some(server) = &self.config.server {
            headers.push(("server", server));
        }
        let encoder = Encoder::new(version);
        headers.extend(extra.iter().copied().filter(|(name, value)| {
            encoder
                .check_header(Command::Connected, name, value)
                .is_ok()
        }));
        self.link
            .send(now, Command::Connected, headers, &Bytes::new())?;
        self.link.start_heart_beats(now, periods);
        self.state = State::Connected;
        // Frames the client pipelined after CONNECT are acted on as the application asks
        // for its next event.
        self.now = now;
        Ok(())
    }

    /// Frames received from the client and frames queued for it so far, heart-beats aside.
    pub fn frame_counts(&self) -> (u64, u64) {
        self.link.frame_counts()
    }

    /// Names the user this session acts as from now on, as the application authenticated it
    /// (by default, the CONNECT's `login`): what [`SendCheck::check`] is given.
    pub fn set_user(&mut self, user: Option<String>) {
        self.login = user;
    }

    /// Refuses the pending CONNECT (for example a bad login): ERROR with `message`, then the
    /// close.
    pub fn reject(&mut self, now: Instant, message: &str) -> Result<(), SessionError> {
        if !matches!(self.state, State::AwaitingAccept { .. }) {
            return Err(SessionError::InvalidState("no CONNECT awaits acceptance"));
        }
        self.fail(
            now,
            message.to_owned(),
            None,
            CloseReason::Rejected(message.to_owned()),
        );
        Ok(())
    }

    /// Confirms the SUBSCRIBE that waits (with [`ServerConfig::confirm_subscriptions`]): the
    /// subscription takes effect, its RECEIPT is sent, and later frames are acted on as the
    /// application asks for its next event.
    pub fn confirm_subscription(&mut self, now: Instant) -> Result<(), SessionError> {
        let pending = self
            .pending_subscription
            .take()
            .ok_or(SessionError::InvalidState(
                "no SUBSCRIBE awaits confirmation",
            ))?;
        self.subscriptions
            .add(pending.id, pending.destination, pending.ack);
        if let Some(receipt) = &pending.receipt {
            self.send_receipt(now, receipt);
        }
        self.now = now;
        Ok(())
    }

    /// Sends the RECEIPT with `receipt_id` that a SEND asked for, when
    /// [`ServerConfig::defer_send_receipts`] left it to the application.
    pub fn send_receipt_for(&mut self, now: Instant, receipt_id: &str) -> Result<(), SessionError> {
        match self.state {
            State::Connected => {}
            State::Closing | State::Closed => return Err(SessionError::Closed),
            _ => return Err(SessionError::NotConnected),
        }
        self.send_receipt(now, receipt_id);
        Ok(())
    }

    /// Refuses the SUBSCRIBE that waits: ERROR with `message` (and the SUBSCRIBE's receipt as
    /// `receipt-id`), then the close.
    pub fn refuse_subscription(&mut self, now: Instant, message: &str) -> Result<(), SessionError> {
        let pending = self
            .pending_subscription
            .take()
            .ok_or(SessionError::InvalidState(
                "no SUBSCRIBE awaits confirmation",
            ))?;
        let reason = CloseReason::Protocol(Violation::Refused(message.to_owned()));
        self.fail(now, message.to_owned(), pending.receipt, reason);
        Ok(())
    }

    /// Delivers a message to subscription `id` as a MESSAGE frame. Messages of `client` and
    /// `client-individual` subscriptions then wait for their ACK or NACK.
    pub fn deliver(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        delivery: Delivery<'_>,
    ) -> Result<(), SessionError> {
        let ack_mode = self.deliverable(id)?;
        self.deliver_with(now, id, delivery, ack_mode)
    }

    /// [`deliver`](Self::deliver), to a subscription known to take messages in `ack_mode`.
    fn deliver_with(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        delivery: Delivery<'_>,
        ack_mode: AckMode,
    ) -> Result<(), SessionError> {
        let ack_id = ack_mode.needs_ack().then(|| {
            self.next_ack += 1;
            self.next_ack.to_string()
        });
        // The `ack` header exists from 1.2 (1.2 "MESSAGE").
        let ack = ack_id
            .as_deref()
            .filter(|_| self.version() == Version::V1_2);
        self.link.send(
            now,
            Command::Message,
            message_headers(id, &delivery, ack),
            delivery.body,
        )?;
        if let Some(ack_id) = ack_id {
            self.subscriptions
                .delivered(id.as_str(), ack_id, delivery.message_id.to_owned());
        }
        Ok(())
    }

    /// Delivers like [`deliver`](Self::deliver) one message that goes to many subscriptions:
    /// a subscription without acknowledgements gets the very octets an earlier one with its id
    /// and protocol version got, encoded once (and kept from the second such subscription on,
    /// so a message for one costs what `deliver` does). A subscription that acknowledges gets
    /// a frame of its own, for its `ack` header.
    ///
    /// ```
    /// use std::time::Instant;
    /// use bytes::Bytes;
    /// use stomp_session::{Delivery, ServerConfig, ServerSession, SharedDelivery, SubscriptionId};
    ///
    /// let now = Instant::now();
    /// let mut sessions: Vec<ServerSession> = (0..3)
    ///     .map(|_| {
    ///         let mut session = ServerSession::new(ServerConfig::default(), now);
    ///         session.handle_input(now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0");
    ///         let _connect = session.poll_event();
    ///         session.accept(now).unwrap();
    ///         session.handle_input(now, b"SUBSCRIBE\nid:sub-0\ndestination:/topic/a\n\n\0");
    ///         while session.poll_event().is_some() {}
    ///         while session.poll_transmit().is_some() {}
    ///         session
    ///     })
    ///     .collect();
    /// let body = Bytes::from_static(b"hello");
    /// let mut shared = SharedDelivery::new(Delivery::new("/topic/a", "m-1", &body));
    /// let id = SubscriptionId::from("sub-0");
    /// for session in &mut sessions {
    ///     session.deliver_shared(now, &id, &mut shared).unwrap();
    /// }
    /// let frames: Vec<Bytes> = sessions.iter_mut().map(|s| s.poll_transmit().unwrap()).collect();
    /// assert!(frames.iter().all(|f| f == &frames[0]));
    /// assert!(frames[0].starts_with(b"MESSAGE\nsubscription:sub-0\nmessage-id:m-1\n"));
    /// ```
    pub fn deliver_shared(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        shared: &mut SharedDelivery<'_>,
    ) -> Result<(), SessionError> {
        let encoder = self.link.encoder();
        let ack_mode = self.deliverable(id)?;
        if ack_mode.needs_ack() || !shared.is_shared(encoder, id.as_str()) {
            return self.deliver_with(now, id, shared.delivery(), ack_mode);
        }
        let body = shared.delivery().body;
        let head = shared.head(encoder, id.as_str(), |delivery| {
            // Sized up front: grown a few octets at a time, the head would be reallocated
            // half a dozen times, which costs more than encoding it.
            let mut head = BytesMut::with_capacity(head_capacity(id, delivery));
            encoder
                .encode_head_parts(
                    Command::Message,
                    message_headers(id, delivery, None),
                    delivery.body,
                    &mut head,
                )
                .map(|()| head)
        })?;
        self.link.send_encoded(now, head, body);
        Ok(())
    }

    /// The ack mode of subscription `id`, when a message can be delivered to it.
    fn deliverable(&self, id: &SubscriptionId) -> Result<AckMode, SessionError> {
        match self.state {
            State::Connected => {}
            State::Closing | State::Closed => return Err(SessionError::Closed),
            _ => return Err(SessionError::NotConnected),
        }
        self.subscriptions
            .get(id.as_str())
            .map(|s| s.ack)
            .ok_or_else(|| SessionError::UnknownSubscription(id.clone()))
    }

    /// Closes the session from the application's side, for example at shutdown: an ERROR with
    /// `message`, then the close.
    pub fn close_with_error(&mut self, now: Instant, message: &str) {
        if !matches!(self.state, State::Closing | State::Closed) {
            self.fail(
                now,
                message.to_owned(),
                None,
                CloseReason::Local(message.to_owned()),
            );
        }
    }

    // ---- Output ----

    /// The next bytes to write, in order. A large body comes as a buffer of its own.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.link.poll_transmit()
    }

    /// The next event for the application. Received frames are acted on here, up to the one
    /// that gives the next event: call it again only once the last event is acted on.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if self.events.is_empty() {
            self.process(self.now);
        }
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingConnect { deadline } | State::AwaitingAccept { deadline, .. } => {
                Some(deadline)
            }
            State::Connected => self.link.heart_beat_deadline(),
            State::Closing | State::Closed => None,
        }
    }

    /// Sends an ERROR (1.2 "ERROR": `message`, and `receipt-id` when the failing frame asked
    /// for a receipt) and closes.
    fn fail(
        &mut self,
        now: Instant,
        message: String,
        receipt: Option<String>,
        reason: CloseReason,
    ) {
        // A message must fit one header line: its first line will do.
        let line = message.lines().next().unwrap_or_default().to_owned();
        // A receipt this version cannot echo (a 1.0 value ending in CR) is left out rather
        // than losing the ERROR.
        let encoder = Encoder::new(self.version());
        let receipt = receipt.filter(|r| {
            encoder
                .check_header(Command::Error, "receipt-id", r)
                .is_ok()
        });
        let mut headers = vec![("message", line.as_str())];
        if let Some(receipt) = &receipt {
            headers.push(("receipt-id", receipt));
        }
        headers.push(("content-type", "text/plain"));
        let body = Bytes::from(format!("{message}\n"));
        if self.link.send(now, Command::Error, headers, &body).is_err() {
            // Our own messages quote what they cite; should one still not fit, a plain ERROR
            // says as much.
            let plain = [
                ("message", "protocol error"),
                ("content-type", "text/plain"),
            ];
            let _ = self.link.send(now, Command::Error, plain, &body);
        }
        self.close(reason, false);
    }

    /// Ends the session: open transactions are dropped, unacknowledged messages reported.
    /// `abrupt`: the connection is gone or dropped, and nothing queued will be written.
    fn close(&mut self, reason: CloseReason, abrupt: bool) {
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        self.transactions.clear();
        self.pending_subscription = None;
        if abrupt {
            self.link.discard();
            self.state = State::Closed;
        } else {
            self.link.discard_input();
            self.state = State::Closing;
        }
        let unacked = self.subscriptions.drain_unacked();
        self.events
            .push_back(ServerEvent::Closed { reason, unacked });
    }
}

/// The headers the server reads from most client frames, found in one pass; the first of
/// repeated headers counts. None of these names holds an escapable octet, so raw names compare
/// exactly.
#[derive(Default)]
struct Common<'a> {
    receipt: Option<Cow<'a, str>>,
    transaction: Option<Cow<'a, str>>,
    destination: Option<Cow<'a, str>>,
}

fn common_headers(frame: &FrameBuf) -> Common<'_> {
    let mut common = Common::default();
    for header in frame.headers() {
        let slot = match header.raw_name() {
            b"receipt" => &mut common.receipt,
            b"transaction" => &mut common.transaction,
            b"destination" => &mut common.destination,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(header.value());
        }
    }
    common
}

/// The value of a header the frame must carry.
fn required(frame: &FrameBuf, name: &'static str) -> Result<String, Refusal> {
    frame.header(name).map(|v| v.into_owned()).ok_or_else(|| {
        refuse(Violation::MissingHeader {
            command: frame.command(),
            header: name,
            since: None,
        })
    })
}

/// An owned [`AckRef`].
enum OwnedAckRef {
    AckId(String),
    Subscription {
        message_id: String,
        subscription: String,
    },
    MessageId(String),
}

impl OwnedAckRef {
    fn as_ref(&self) -> AckRef<'_> {
        match self {
            OwnedAckRef::AckId(id) => AckRef::AckId(id),
            OwnedAckRef::Subscription {
                message_id,
                subscription,
            } => AckRef::Subscription {
                message_id,
                subscription,
            },
            OwnedAckRef::MessageId(id) => AckRef::MessageId(id),
        }
    }
}

/// How an ACK or NACK names its message in `version` (1.2 "ACK"): 1.2 `id`; 1.1 `message-id`
/// and `subscription`; 1.0 `message-id`.
fn ack_ref(frame: &FrameBuf, version: Version) -> Result<OwnedAckRef, Refusal> {
    Ok(match version {
        Version::V1_2 => OwnedAckRef::AckId(required(frame, "id")?),
        Version::V1_1 => OwnedAckRef::Subscription {
            message_id: required(frame, "message-id")?,
            subscription: required(frame, "subscription")?,
        },
        Version::V1_0 => OwnedAckRef::MessageId(required(frame, "message-id")?),
    })
}

/// Room for a MESSAGE head of `delivery` to `id`, unless escaping lengthens it.
fn head_capacity(id: &SubscriptionId, delivery: &Delivery<'_>) -> usize {
    // The command, the names of the session's own headers, `content-length` and the line ends.
    let fixed = 96;
    let own = id.as_str().len() + delivery.message_id.len() + delivery.destination.len();
    let further: usize = delivery
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum();
    fixed + own + further
}

/// The headers of a MESSAGE: the subscription's own, then the message's (1.2 "MESSAGE").
fn message_headers<'h>(
    id: &'h SubscriptionId,
    delivery: &Delivery<'h>,
    ack: Option<&'h str>,
) -> impl Iterator<Item = (&'h str, &'h str)> + Clone {
    [
        ("subscription", id.as_str()),
        ("message-id", delivery.message_id),
        ("destination", delivery.destination),
    ]
    .into_iter()
    .chain(ack.map(|a| ("ack", a)))
    .chain(delivery.headers.iter().copied())
}
