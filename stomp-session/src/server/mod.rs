//! The server side of one accepted connection (1.2 "Client Frames", "Server Frames").

use std::collections::VecDeque;

use foldhash::HashMap;
use std::time::Instant;

use bytes::Bytes;
use stomp_codec::{Command, Config, Encoder, FrameBuf, Item, Version};

mod config;
mod inbound;
mod outbound;

use crate::error::{CloseReason, Refused, SessionError, Violation};
use crate::heartbeat::Periods;
use crate::ids::SubscriptionId;
use crate::link::Link;
use crate::subscriptions::{MessageSet, Subscriptions};
use crate::types::{AckMode, Secret};
pub use config::{SendCheck, ServerConfig};

/// A client's CONNECT, for the application to accept or reject.
#[derive(Clone, PartialEq, Eq)]
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
    /// The whole CONNECT frame, every header in wire order (a token in `Authorization`, a
    /// `client-id`). Never shown by `Debug`: it holds the passcode.
    pub frame: FrameBuf,
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("version", &self.version)
            .field("host", &self.host)
            .field("login", &self.login)
            .field("passcode", &self.passcode)
            .field("heart_beat", &self.heart_beat)
            .finish_non_exhaustive()
    }
}

/// What the server application learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A client asks to connect: call [`ServerSession::accept`] or [`ServerSession::reject`].
    /// Boxed: the largest event by far, and one per session, it would make every other event
    /// as large.
    Connect(Box<ConnectRequest>),
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
        /// The UNSUBSCRIBE frame, for headers the broker reads (such as those that end a
        /// durable subscription).
        frame: FrameBuf,
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
            transactions: HashMap::default(),
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
    /// ([`Limits::max_head_bytes`](crate::Limits::max_head_bytes)) is taken in all, and a first
    /// frame other than CONNECT or STOMP is refused as soon as its command line is in, before its
    /// headers and body are read (1.2 "Connecting"): a client that is not let in costs one head of
    /// memory.
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

    /// The driver stops reading the client, as flow control. While paused, the client's
    /// silence does not count against its heart-beats.
    pub fn pause_input(&mut self, now: Instant) {
        self.link.pause_input(now, true);
    }

    /// The driver reads the client again after [`pause_input`](Self::pause_input); the
    /// client's receive period starts afresh.
    pub fn resume_input(&mut self, now: Instant) {
        self.link.pause_input(now, false);
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
            return Err(SessionError::NoConnectPending);
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

    /// Whether a CONNECT waits to be [accepted](Self::accept) or [rejected](Self::reject).
    pub fn awaits_accept(&self) -> bool {
        matches!(self.state, State::AwaitingAccept { .. })
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
            return Err(SessionError::NoConnectPending);
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
        self.confirm_subscription_with_headers(now, &[])
    }

    /// As [`confirm_subscription`](Self::confirm_subscription), with further headers on its
    /// RECEIPT, such as what a broker says of the history it replayed.
    pub fn confirm_subscription_with_headers(
        &mut self,
        now: Instant,
        headers: &[(&str, &str)],
    ) -> Result<(), SessionError> {
        let pending = self
            .pending_subscription
            .take()
            .ok_or(SessionError::NoSubscriptionPending)?;
        self.subscriptions
            .add(pending.id, pending.destination, pending.ack);
        if let Some(receipt) = &pending.receipt {
            let all = [("receipt-id", receipt.as_str())]
                .into_iter()
                .chain(headers.iter().copied());
            let _ = self.link.send(now, Command::Receipt, all, &Bytes::new());
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
            .ok_or(SessionError::NoSubscriptionPending)?;
        let reason = CloseReason::Protocol(Violation::Refused(Refused::new(message)));
        self.fail(now, message.to_owned(), pending.receipt, reason);
        Ok(())
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
