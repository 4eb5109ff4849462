//! The client side of a connection (1.2 "Client Frames").

use std::collections::VecDeque;

use foldhash::HashMap;
use std::time::Instant;

use bytes::Bytes;
use stomp_codec::{Command, Config, FrameBuf, Item, Version};

mod config;
mod frames;

use crate::heartbeat::{HeartBeat, Periods};
use crate::ids::{ReceiptId, SubscriptionId, TransactionId};
use crate::link::Link;
use crate::types::{AckMode, AskReceipt};
use crate::{CloseReason, SessionError, Violation};
pub use config::ClientConfig;
pub use frames::{Message, SendFrame};

/// What the client application learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server accepted the connection.
    Connected {
        /// The negotiated version.
        version: Version,
        /// The negotiated heart-beat periods.
        heart_beat: Periods,
        /// The `server` header, if any.
        server: Option<String>,
        /// The `session` header, if any.
        session: Option<String>,
    },
    /// A message for a subscription.
    Message(Message),
    /// The server processed a frame that asked for a receipt.
    Receipt {
        /// The receipt id the session put on the frame.
        receipt: ReceiptId,
        /// The command of that frame.
        command: Command,
        /// The RECEIPT itself, for headers a server adds (such as `recovered` on a
        /// SUBSCRIBE's).
        frame: FrameBuf,
    },
    /// The server sent an ERROR frame; the session closes.
    Error(FrameBuf),
    /// The session closed, with the reason and the receipts that never came.
    Closed {
        /// Why.
        reason: CloseReason,
        /// Receipt ids asked for and never answered.
        unanswered_receipts: Vec<ReceiptId>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Connecting { deadline: Instant },
    Connected,
    Disconnecting { receipt: String, deadline: Instant },
    Closed,
}

/// A sans-IO STOMP client session.
///
/// It does no IO and reads no clock: the caller feeds it received bytes and the time, and takes
/// from it the bytes to write, the events, and the next deadline. Any transport can drive it.
///
/// # Call order
///
/// - Input: [`handle_input`](Self::handle_input) with every received chunk (any chunking),
///   [`handle_eof`](Self::handle_eof) when the peer closes, and
///   [`handle_timeout`](Self::handle_timeout) once [`poll_timeout`](Self::poll_timeout)'s
///   deadline has passed (calling it early or twice is harmless).
/// - Commands: [`subscribe`](Self::subscribe), [`send`](Self::send), [`ack`](Self::ack) and the
///   rest, once [`ClientEvent::Connected`] has come.
/// - Output, after any of the above: write every [`poll_transmit`](Self::poll_transmit) buffer
///   in order, handle every [`poll_event`](Self::poll_event), and sleep until
///   [`poll_timeout`](Self::poll_timeout) or more input. Stop when
///   [`is_closed`](Self::is_closed).
///
/// # A driver loop
///
/// Here the "transport" is an in-memory server that answers CONNECT and SEND; a real driver
/// reads and writes a socket in the same places.
///
/// ```
/// use std::time::Instant;
/// use stomp_session::{ClientConfig, ClientEvent, ClientSession, SendFrame};
///
/// let now = Instant::now();
/// let mut client = ClientSession::new(ClientConfig::new("/"), now);
/// let mut wire = Vec::new();
/// while let Some(bytes) = client.poll_transmit() {
///     wire.extend_from_slice(&bytes); // socket.write_all(&bytes)
/// }
/// assert!(wire.starts_with(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\n"));
///
/// client.handle_input(now, b"CONNECTED\nversion:1.2\n\n\0"); // socket.read(...)
/// assert!(matches!(client.poll_event(), Some(ClientEvent::Connected { .. })));
///
/// let receipt = client.send(now, SendFrame::new("/queue/a", "hi").with_receipt())?.unwrap();
/// let sent = client.poll_transmit().unwrap();
/// assert!(sent.starts_with(b"SEND\ndestination:/queue/a\nreceipt:"));
/// client.handle_input(now, format!("RECEIPT\nreceipt-id:{receipt}\n\n\0").as_bytes());
/// assert!(matches!(client.poll_event(), Some(ClientEvent::Receipt { .. })));
///
/// client.disconnect(now)?;
/// assert!(client.poll_transmit().unwrap().starts_with(b"DISCONNECT\nreceipt:"));
/// client.handle_eof(now); // the server may close before its RECEIPT
/// assert!(client.is_closed());
/// # Ok::<(), stomp_session::SessionError>(())
/// ```
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    link: Link,
    state: State,
    events: VecDeque<ClientEvent>,
    /// Receipt id to the command that asked for it.
    receipts: HashMap<String, Command>,
    subscriptions: HashMap<String, AckMode>,
    transactions: Vec<String>,
    next_id: u64,
}

impl ClientSession {
    /// A session that has queued its CONNECT (or STOMP) frame.
    pub fn new(config: ClientConfig, now: Instant) -> ClientSession {
        let highest = config
            .versions
            .iter()
            .max()
            .copied()
            .unwrap_or(Version::V1_0);
        let codec = Config::new(highest).with_limits(config.limits);
        let mut session = ClientSession {
            link: Link::new(codec, config.heart_beat_margin, now),
            state: State::Connecting {
                deadline: now + config.connect_timeout,
            },
            events: VecDeque::new(),
            receipts: HashMap::default(),
            subscriptions: HashMap::default(),
            transactions: Vec::new(),
            next_id: 0,
            config,
        };
        session.send_connect(now);
        session
    }

    fn send_connect(&mut self, now: Instant) {
        let config = &self.config;
        let command = if config.use_stomp_command {
            Command::Stomp
        } else {
            Command::Connect
        };
        let mut versions = config.versions.clone();
        versions.sort();
        versions.dedup();
        let accept = versions
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let heart_beat = config.heart_beat.to_string();
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(5);
        // A 1.0 client sends no accept-version (1.2 "Protocol Negotiation").
        if versions != [Version::V1_0] {
            headers.push(("accept-version", &accept));
        }
        headers.push(("host", &config.host));
        if let Some(login) = &config.login {
            headers.push(("login", login));
        }
        if let Some(passcode) = &config.passcode {
            headers.push(("passcode", passcode.expose()));
        }
        if config.heart_beat != HeartBeat::NONE {
            headers.push(("heart-beat", &heart_beat));
        }
        headers.extend(
            config
                .connect_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        if let Err(e) = self.link.send(now, command, headers, &Bytes::new()) {
            // A login or host with a line break cannot be sent in CONNECT.
            self.close(CloseReason::Local(format!("cannot send {command}: {e}")));
        }
    }

    // ---- Getters ----

    /// The negotiated version, once connected; until then the highest offered.
    pub fn version(&self) -> Version {
        self.link.version()
    }

    /// The negotiated heart-beat periods (none before CONNECTED).
    pub fn heart_beat(&self) -> Periods {
        self.link.periods()
    }

    /// Whether CONNECTED has come and DISCONNECT has not been sent.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the session is over and has nothing left to write.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && !self.link.has_output()
    }

    /// The driver stops reading the server, as backpressure from a slow consumer: the
    /// server's silence meanwhile does not count against its heart-beats.
    pub fn pause_input(&mut self, now: Instant) {
        self.link.pause_input(now, true);
    }

    /// The driver reads the server again after [`pause_input`](Self::pause_input); the
    /// receive period starts afresh.
    pub fn resume_input(&mut self, now: Instant) {
        self.link.pause_input(now, false);
    }

    // ---- Input ----

    /// Takes bytes received from the server, in any chunking.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        self.link.receive(now, bytes);
        loop {
            match self.link.next_item() {
                Ok(None) => return,
                Ok(Some(Item::HeartBeat)) => {}
                Ok(Some(Item::Frame(frame))) => self.on_frame(now, frame),
                Err(e) => return self.close(CloseReason::Decode(e)),
            }
            if self.state == State::Closed {
                return;
            }
        }
    }

    /// The server closed the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.state {
            State::Closed => {}
            // Servers may close right after DISCONNECT without the RECEIPT.
            State::Disconnecting { .. } => self.close(CloseReason::Disconnected),
            _ => self.close(CloseReason::PeerClosed),
        }
    }

    /// Acts on every deadline that has passed: heart-beats to send, a silent server, a CONNECTED
    /// or DISCONNECT receipt that did not come.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Closed => {}
            State::Connecting { deadline } if now >= *deadline => {
                self.close(CloseReason::ConnectTimedOut)
            }
            State::Disconnecting { deadline, .. } if now >= *deadline => {
                self.close(CloseReason::DisconnectTimedOut)
            }
            _ => {
                if self.link.on_timeout(now) {
                    self.close(CloseReason::HeartBeatTimedOut);
                }
            }
        }
    }

    fn on_frame(&mut self, now: Instant, frame: FrameBuf) {
        match (frame.command(), &self.state) {
            (Command::Connected, State::Connecting { .. }) => self.on_connected(now, &frame),
            (Command::Error, _) => {
                let message = frame.header("message").map(|m| m.into_owned());
                self.events.push_back(ClientEvent::Error(frame));
                self.close(CloseReason::ErrorFrame(message));
            }
            (Command::Receipt, _) => self.on_receipt(&frame),
            (Command::Message, State::Connected | State::Disconnecting { .. }) => {
                let ack_mode = frame
                    .header("subscription")
                    .and_then(|id| self.subscriptions.get(id.as_ref()).copied());
                self.events
                    .push_back(ClientEvent::Message(Message { frame, ack_mode }));
            }
            (command, _) => self.close(CloseReason::Protocol(Violation::UnexpectedFrame(command))),
        }
    }

    fn on_connected(&mut self, now: Instant, frame: &FrameBuf) {
        // No version header means the server speaks 1.0 (1.2 "Protocol Negotiation").
        let version = match frame.header("version") {
            None => Version::V1_0,
            Some(v) => match v.parse::<Version>() {
                Ok(v) if self.config.versions.contains(&v) => v,
                _ => {
                    let violation = Violation::VersionNotOffered(v.into_owned());
                    return self.close(CloseReason::Protocol(violation));
                }
            },
        };
        let offer = match frame.header("heart-beat") {
            None => HeartBeat::NONE,
            Some(h) => match h.parse::<HeartBeat>() {
                Ok(offer) => offer,
                Err(e) => {
                    let violation = Violation::InvalidHeartBeat(e.to_string());
                    return self.close(CloseReason::Protocol(violation));
                }
            },
        };
        let periods = self.config.heart_beat.negotiate(offer);
        self.link.set_version(version);
        self.link.start_heart_beats(now, periods);
        self.state = State::Connected;
        self.events.push_back(ClientEvent::Connected {
            version,
            heart_beat: periods,
            server: frame.header("server").map(|s| s.into_owned()),
            session: frame.header("session").map(|s| s.into_owned()),
        });
    }

    fn on_receipt(&mut self, frame: &FrameBuf) {
        let Some(id) = frame.header("receipt-id") else {
            return self.close(CloseReason::Protocol(Violation::ReceiptWithoutId));
        };
        let Some(command) = self.receipts.remove(id.as_ref()) else {
            // A receipt for nothing this session asked: harmless, and ignored.
            return;
        };
        let receipt = id.into_owned();
        let graceful = matches!(&self.state, State::Disconnecting { receipt: wanted, .. } if *wanted == receipt);
        self.events.push_back(ClientEvent::Receipt {
            receipt: ReceiptId::from(receipt),
            command,
            frame: frame.clone(),
        });
        if graceful {
            self.close(CloseReason::Disconnected);
        }
    }

    // ---- Commands ----

    fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    fn check_connected(&self) -> Result<(), SessionError> {
        match self.state {
            State::Connected => Ok(()),
            State::Connecting { .. } => Err(SessionError::NotConnected),
            State::Disconnecting { .. } => Err(SessionError::Disconnecting),
            State::Closed => Err(SessionError::Closed),
        }
    }

    /// Sends a frame, adding a `receipt` header when asked; returns the receipt id.
    fn transmit<'h, I>(
        &mut self,
        now: Instant,
        command: Command,
        headers: I,
        body: &Bytes,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
        I::IntoIter: Clone,
    {
        self.check_connected()?;
        let receipt = (receipt == AskReceipt::Yes).then(|| self.next_id("rcpt"));
        let with_receipt = receipt.as_deref().map(|r| ("receipt", r));
        let all = headers.into_iter().map(shorten).chain(with_receipt);
        self.link.send(now, command, all, body)?;
        if let Some(id) = &receipt {
            self.receipts.insert(id.clone(), command);
        }
        Ok(receipt.map(ReceiptId::from))
    }

    /// Subscribes to `destination` and returns the new subscription's id.
    pub fn subscribe(
        &mut self,
        now: Instant,
        destination: &str,
        ack: AckMode,
        receipt: AskReceipt,
    ) -> Result<Subscribed, SessionError> {
        self.subscribe_with_headers(now, destination, ack, &[], receipt)
    }

    /// Subscribes with further headers, such as a broker's `prefetch-count`.
    pub fn subscribe_with_headers(
        &mut self,
        now: Instant,
        destination: &str,
        ack: AckMode,
        extra: &[(&str, &str)],
        receipt: AskReceipt,
    ) -> Result<Subscribed, SessionError> {
        self.check_connected()?;
        // Ids given to `subscribe_as` are never handed out again.
        let id = loop {
            let id = self.next_id("sub");
            if !self.subscriptions.contains_key(&id) {
                break SubscriptionId::from(id);
            }
        };
        let receipt = self.subscribe_as(now, &id, destination, ack, extra, receipt)?;
        Ok(Subscribed { id, receipt })
    }

    /// Subscribes under an id the caller chose, such as one a subscription had on an earlier
    /// connection, restored after a reconnect so that its messages keep the id the
    /// application knows. Fails with [`SessionError::DuplicateSubscription`] if this session
    /// already has a subscription `id`; [`subscribe`](Self::subscribe) never hands it out.
    pub fn subscribe_as(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        destination: &str,
        ack: AckMode,
        extra: &[(&str, &str)],
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.check_connected()?;
        if self.subscriptions.contains_key(id.as_str()) {
            return Err(SessionError::DuplicateSubscription(id.clone()));
        }
        let mut headers = vec![("id", id.as_str()), ("destination", destination)];
        if ack != AckMode::Auto {
            headers.push(("ack", ack.as_str()));
        }
        headers.extend(extra.iter().copied());
        let receipt = self.transmit(now, Command::Subscribe, headers, &Bytes::new(), receipt)?;
        self.subscriptions.insert(id.as_str().to_owned(), ack);
        Ok(receipt)
    }

    /// Ends subscription `id`.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.unsubscribe_with_headers(now, id, &[], receipt)
    }

    /// Ends subscription `id` with further headers, such as the `durable:true` with which
    /// RabbitMQ ends a durable subscription.
    pub fn unsubscribe_with_headers(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        extra: &[(&str, &str)],
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.check_connected()?;
        if !self.subscriptions.contains_key(id.as_str()) {
            return Err(SessionError::UnknownSubscription(id.clone()));
        }
        let headers = [("id", id.as_str())]
            .into_iter()
            .chain(extra.iter().copied());
        let receipt = self.transmit(now, Command::Unsubscribe, headers, &Bytes::new(), receipt)?;
        self.subscriptions.remove(id.as_str());
        Ok(receipt)
    }

    /// Sends a message; returns the receipt id when one was asked for.
    pub fn send(
        &mut self,
        now: Instant,
        send: SendFrame,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.check_connected()?;
        if let Some(tx) = &send.transaction {
            self.check_transaction(tx)?;
        }
        // A slice and the frame's own headers make a cheaper iterator for the encoder, which
        // walks the headers twice per frame, than a chain with an option in it.
        let destination = ("destination", send.destination.as_str());
        let (own, len) = match send.transaction.as_deref() {
            Some(tx) => ([destination, ("transaction", tx)], 2),
            None => ([destination, ("", "")], 1),
        };
        let headers = own
            .get(..len)
            .unwrap_or_default()
            .iter()
            .copied()
            .chain(send.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.transmit(now, Command::Send, headers, &send.body, send.receipt)
    }

    /// Acknowledges `message`, with the headers its version needs: 1.0 `message-id`; 1.1
    /// `message-id` and `subscription`; 1.2 `id`, the MESSAGE's `ack` header.
    pub fn ack(
        &mut self,
        now: Instant,
        message: &Message,
        transaction: Option<&TransactionId>,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.acknowledge(now, Command::Ack, message, transaction, receipt)
    }

    /// Refuses `message` (1.1+), with the same headers as [`ack`](Self::ack).
    pub fn nack(
        &mut self,
        now: Instant,
        message: &Message,
        transaction: Option<&TransactionId>,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        if self.version() == Version::V1_0 {
            return Err(SessionError::Unsupported {
                command: Command::Nack,
                version: Version::V1_0,
            });
        }
        self.acknowledge(now, Command::Nack, message, transaction, receipt)
    }

    fn acknowledge(
        &mut self,
        now: Instant,
        command: Command,
        message: &Message,
        transaction: Option<&TransactionId>,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.check_connected()?;
        if let Some(tx) = transaction {
            self.check_transaction(tx.as_str())?;
        }
        let frame = message.frame();
        let message_id = frame.header("message-id");
        let ack = frame.header("ack");
        let subscription = message.frame().header("subscription");
        let mut headers: Vec<(&str, &str)> = match self.version() {
            Version::V1_0 => vec![(
                "message-id",
                message_id
                    .as_deref()
                    .ok_or(SessionError::NotAcknowledgeable)?,
            )],
            Version::V1_1 => vec![
                (
                    "message-id",
                    message_id
                        .as_deref()
                        .ok_or(SessionError::NotAcknowledgeable)?,
                ),
                (
                    "subscription",
                    subscription
                        .as_deref()
                        .ok_or(SessionError::NotAcknowledgeable)?,
                ),
            ],
            Version::V1_2 => vec![(
                "id",
                ack.as_deref().ok_or(SessionError::NotAcknowledgeable)?,
            )],
        };
        if let Some(tx) = transaction {
            headers.push(("transaction", tx.as_str()));
        }
        self.transmit(now, command, headers, &Bytes::new(), receipt)
    }

    fn check_transaction(&self, tx: &str) -> Result<(), SessionError> {
        if self.transactions.iter().any(|t| t == tx) {
            Ok(())
        } else {
            Err(SessionError::UnknownTransaction(tx.into()))
        }
    }

    /// Starts a transaction and returns its id.
    pub fn begin(
        &mut self,
        now: Instant,
        receipt: AskReceipt,
    ) -> Result<Transaction, SessionError> {
        self.check_connected()?;
        let id = self.next_id("tx");
        let receipt = self.transmit(
            now,
            Command::Begin,
            [("transaction", id.as_str())],
            &Bytes::new(),
            receipt,
        )?;
        self.transactions.push(id.clone());
        let id = TransactionId::from(id);
        Ok(Transaction { id, receipt })
    }

    /// Commits transaction `id`: the server acts on its frames now.
    pub fn commit(
        &mut self,
        now: Instant,
        id: &TransactionId,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.end_transaction(now, Command::Commit, id, receipt)
    }

    /// Aborts transaction `id`: the server drops its frames.
    pub fn abort(
        &mut self,
        now: Instant,
        id: &TransactionId,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.end_transaction(now, Command::Abort, id, receipt)
    }

    fn end_transaction(
        &mut self,
        now: Instant,
        command: Command,
        id: &TransactionId,
        receipt: AskReceipt,
    ) -> Result<Option<ReceiptId>, SessionError> {
        self.check_connected()?;
        self.check_transaction(id.as_str())?;
        let headers = [("transaction", id.as_str())];
        let receipt = self.transmit(now, command, headers, &Bytes::new(), receipt)?;
        self.transactions.retain(|t| t != id.as_str());
        Ok(receipt)
    }

    /// Starts a graceful disconnect: DISCONNECT with a receipt, then the session waits for the
    /// RECEIPT, the server's close, or [`ClientConfig::disconnect_timeout`].
    pub fn disconnect(&mut self, now: Instant) -> Result<(), SessionError> {
        let receipt = self
            .transmit(now, Command::Disconnect, [], &Bytes::new(), AskReceipt::Yes)?
            .unwrap_or_default();
        self.link.stop_heart_beats();
        self.state = State::Disconnecting {
            receipt: receipt.into(),
            deadline: now + self.config.disconnect_timeout,
        };
        Ok(())
    }

    // ---- Output ----

    /// The next bytes to write, in order. A large body comes as a buffer of its own.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.link.poll_transmit()
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Closed => None,
            State::Connecting { deadline } | State::Disconnecting { deadline, .. } => {
                Some(*deadline)
            }
            State::Connected => self.link.heart_beat_deadline(),
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        // Nothing more is read or written: the connection is over.
        self.link.discard();
        let mut unanswered_receipts: Vec<ReceiptId> =
            self.receipts.drain().map(|(id, _)| id.into()).collect();
        unanswered_receipts.sort();
        self.events.push_back(ClientEvent::Closed {
            reason,
            unanswered_receipts,
        });
    }
}

/// A header pair, with its lifetime shortened to that of the frame being sent.
fn shorten<'a, 'h: 'a>(pair: (&'h str, &'h str)) -> (&'a str, &'a str) {
    pair
}

/// A new subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscribed {
    /// The subscription's id, which its messages carry.
    pub id: SubscriptionId,
    /// The receipt id, when one was asked for.
    pub receipt: Option<ReceiptId>,
}

/// A new transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transaction {
    /// The transaction's id.
    pub id: TransactionId,
    /// The receipt id, when one was asked for.
    pub receipt: Option<ReceiptId>,
}
