//! A sans-IO in-memory STOMP broker over [`stomp_session::ServerSession`], in the shape of
//! Spring's simple broker.
//!
//! - Broker destinations (by prefix, `/topic/`, `/queue/`, `/chat/` and `/user/` by default):
//!   topic semantics (every subscriber gets each message), and queue semantics under the queue
//!   prefix (each message to one consumer, round-robin; redelivered after a NACK, or when a
//!   client-ack consumer leaves without acknowledging it). Subscriptions may use patterns: `*`
//!   for one segment, `**` for any number.
//! - Application destinations (`/app/` by default): a SEND there becomes a
//!   [`BrokerEvent::AppMessage`] for application code, which can [`Broker::reply`] to the sender
//!   and [`Broker::publish`] to broker destinations.
//! - A SUBSCRIBE outside the broker prefixes is refused with an ERROR, and an [`Authorizer`] can
//!   refuse more, and logins.
//! - Every message gets a unique `message-id`; its body is one [`Bytes`] shared by every
//!   subscriber, never copied per delivery.
//!
//! The broker does no IO and reads no clock. A driver owns the sockets: it calls
//! [`Broker::open`] per accepted connection, feeds it input and time, and after each call
//! writes out what [`Broker::poll_ready`] names.
//!
//! ```
//! use std::time::Instant;
//! use stomp_broker::{Broker, BrokerConfig};
//!
//! let now = Instant::now();
//! let mut broker = Broker::new(BrokerConfig::default());
//! let alice = broker.open(now);
//! let bob = broker.open(now);
//! broker.handle_input(alice, now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0SUBSCRIBE\nid:0\ndestination:/topic/news\n\n\0");
//! broker.handle_input(bob, now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0SEND\ndestination:/topic/news\n\nhi\0");
//! let mut alice_got = Vec::new();
//! while let Some(bytes) = broker.poll_transmit(alice) {
//!     alice_got.extend_from_slice(&bytes);
//! }
//! let text = String::from_utf8_lossy(&alice_got);
//! assert!(text.contains("MESSAGE\nsubscription:0\nmessage-id:"));
//! assert!(text.ends_with("\n\nhi\0"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod pattern;
mod queue;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
pub use pattern::Pattern;
use queue::{Queues, Stored};
use stomp_session::{
    AckMode, CloseReason, ConnectRequest, Delivery, FrameBuf, MessageSet, ServerConfig,
    ServerEvent, ServerSession,
};

/// Identifies one connection of the broker.
pub type ConnectionId = u64;

/// What the broker serves.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Every connection's session settings (heart-beats, limits, versions).
    pub session: ServerConfig,
    /// Destinations the broker serves: clients may subscribe only under these.
    pub broker_prefixes: Vec<String>,
    /// Destinations whose SENDs go to application code.
    pub app_prefixes: Vec<String>,
    /// Broker destinations with queue semantics; the others are topics.
    pub queue_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            session: ServerConfig::default(),
            broker_prefixes: ["/topic/", "/queue/", "/chat/", "/user/"]
                .map(String::from)
                .to_vec(),
            app_prefixes: vec!["/app/".into()],
            queue_prefix: "/queue/".into(),
        }
    }
}

/// Decides who may connect and subscribe. Every method allows by default.
pub trait Authorizer: Send {
    /// Whether a CONNECT is accepted; `Err` carries the ERROR's message.
    fn connect(&mut self, request: &ConnectRequest) -> Result<(), String> {
        let _ = request;
        Ok(())
    }

    /// Whether `login` may subscribe to `destination` (within the broker prefixes).
    fn subscribe(&mut self, login: Option<&str>, destination: &str) -> Result<(), String> {
        let _ = (login, destination);
        Ok(())
    }
}

/// Allows everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {}

/// What application code learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerEvent {
    /// A client connected.
    Connected {
        /// The connection.
        connection: ConnectionId,
        /// Its login, if any.
        login: Option<String>,
    },
    /// A SEND to an application destination.
    AppMessage {
        /// The sender.
        connection: ConnectionId,
        /// The destination it was sent to.
        destination: String,
        /// The SEND frame.
        frame: FrameBuf,
    },
    /// A SEND to a destination neither the broker nor the application serves; it was dropped.
    Dropped {
        /// The sender.
        connection: ConnectionId,
        /// The destination.
        destination: String,
    },
    /// A connection's session closed.
    Closed {
        /// The connection.
        connection: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
}

#[derive(Debug)]
struct Subscription {
    id: String,
    pattern: Pattern,
    ack: AckMode,
}

#[derive(Debug)]
struct Connection {
    session: ServerSession,
    login: Option<String>,
    subscriptions: Vec<Subscription>,
}

/// The broker: many server sessions and the destinations between them.
pub struct Broker {
    config: BrokerConfig,
    authorizer: Box<dyn Authorizer>,
    connections: HashMap<ConnectionId, Connection>,
    next_connection: ConnectionId,
    next_message: u64,
    queues: Queues,
    events: VecDeque<BrokerEvent>,
    /// Connections that may have bytes to write, or have closed.
    ready: BTreeSet<ConnectionId>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connections", &self.connections.len())
            .field("queued", &self.queues.waiting_count())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker that allows every login and every subscription within its prefixes.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker::with_authorizer(config, Box::new(AllowAll))
    }

    /// A broker whose logins and subscriptions `authorizer` decides.
    pub fn with_authorizer(mut config: BrokerConfig, authorizer: Box<dyn Authorizer>) -> Broker {
        // Subscriptions outside the broker prefixes are refused before their RECEIPT.
        config.session.confirm_subscriptions = true;
        Broker {
            config,
            authorizer,
            connections: HashMap::new(),
            next_connection: 0,
            next_message: 0,
            queues: Queues::default(),
            events: VecDeque::new(),
            ready: BTreeSet::new(),
        }
    }

    // ---- Connections ----

    /// Starts a session for a newly accepted connection.
    pub fn open(&mut self, now: Instant) -> ConnectionId {
        self.next_connection += 1;
        let id = self.next_connection;
        let connection = Connection {
            session: ServerSession::new(self.config.session.clone(), now),
            login: None,
            subscriptions: Vec::new(),
        };
        self.connections.insert(id, connection);
        id
    }

    /// Takes bytes received on `connection`.
    pub fn handle_input(&mut self, connection: ConnectionId, now: Instant, bytes: &[u8]) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.session.handle_input(now, bytes);
            self.settle(connection, now);
        }
    }

    /// `connection`'s peer closed it.
    pub fn handle_eof(&mut self, connection: ConnectionId, now: Instant) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.session.handle_eof(now);
            self.settle(connection, now);
        }
    }

    /// `connection`'s deadline ([`poll_timeout`](Self::poll_timeout)) has passed.
    pub fn handle_timeout(&mut self, connection: ConnectionId, now: Instant) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.session.handle_timeout(now);
            self.settle(connection, now);
        }
    }

    /// Closes every connection with an ERROR carrying `message`, as at shutdown. Messages a
    /// client had not acknowledged go back to their queues.
    pub fn shut_down(&mut self, now: Instant, message: &str) {
        let ids: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.connections.get_mut(&id) {
                c.session.close_with_error(now, message);
            }
            self.settle(id, now);
        }
    }

    /// Closes one connection with an ERROR carrying `message`, dropping what it had not been
    /// handed yet, as for a consumer too slow to keep up. Its unacknowledged queue messages
    /// go to other consumers.
    pub fn close_with_error(&mut self, connection: ConnectionId, now: Instant, message: &str) {
        if let Some(c) = self.connections.get_mut(&connection) {
            while c.session.poll_transmit().is_some() {}
            c.session.close_with_error(now, message);
            self.settle(connection, now);
        }
    }

    /// Forgets a connection whose socket is gone.
    pub fn remove(&mut self, connection: ConnectionId, now: Instant) {
        self.handle_eof(connection, now);
        self.connections.remove(&connection);
        self.ready.remove(&connection);
    }

    // ---- Output ----

    /// A connection that may have bytes to write or may have closed: write what
    /// [`poll_transmit`](Self::poll_transmit) gives, then check [`is_closed`](Self::is_closed).
    #[must_use]
    pub fn poll_ready(&mut self) -> Option<ConnectionId> {
        self.ready.pop_first()
    }

    /// The next bytes to write to `connection`.
    #[must_use]
    pub fn poll_transmit(&mut self, connection: ConnectionId) -> Option<Bytes> {
        self.connections
            .get_mut(&connection)?
            .session
            .poll_transmit()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due for `connection`.
    #[must_use]
    pub fn poll_timeout(&self, connection: ConnectionId) -> Option<Instant> {
        self.connections.get(&connection)?.session.poll_timeout()
    }

    /// Whether `connection`'s session is over and written out: close its socket and
    /// [`remove`](Self::remove) it.
    pub fn is_closed(&self, connection: ConnectionId) -> bool {
        self.connections
            .get(&connection)
            .is_none_or(|c| c.session.is_closed())
    }

    /// The next event for application code.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.events.pop_front()
    }

    /// How many connections the broker holds.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    // ---- Application commands ----

    /// Publishes a message to a broker destination, as a SEND there would; returns its id.
    pub fn publish(
        &mut self,
        now: Instant,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> String {
        let message = self.new_message(destination, headers, body);
        let id = message.message_id.clone();
        self.route(now, message);
        id
    }

    /// Sends a message to `connection`'s own subscriptions that match `destination` (such as a
    /// `/user/queue/replies` it subscribed to), as an answer to that client alone. Returns how
    /// many subscriptions it reached.
    pub fn reply(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> usize {
        let message = self.new_message(destination, headers, body);
        let Some(c) = self.connections.get_mut(&connection) else {
            return 0;
        };
        let targets: Vec<String> = c
            .subscriptions
            .iter()
            .filter(|s| s.pattern.matches(destination))
            .map(|s| s.id.clone())
            .collect();
        for subscription in &targets {
            deliver(&mut c.session, now, subscription, &message);
        }
        self.ready.insert(connection);
        targets.len()
    }

    // ---- Routing ----

    fn new_message(&mut self, destination: &str, headers: &[(&str, &str)], body: Bytes) -> Stored {
        self.next_message += 1;
        Stored {
            destination: destination.to_owned(),
            message_id: format!("m-{}", self.next_message),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body,
            redelivered: false,
        }
    }

    fn is_queue(&self, destination: &str) -> bool {
        destination.starts_with(&self.config.queue_prefix)
    }

    /// Every (connection, subscription) whose pattern matches `destination`, in a stable order.
    fn matching(&self, destination: &str) -> Vec<(ConnectionId, String, AckMode)> {
        let mut found: Vec<(ConnectionId, String, AckMode)> = self
            .connections
            .iter()
            .filter(|(_, c)| c.session.is_connected())
            .flat_map(|(id, c)| {
                c.subscriptions
                    .iter()
                    .filter(|s| s.pattern.matches(destination))
                    .map(move |s| (*id, s.id.clone(), s.ack))
            })
            .collect();
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        found
    }

    /// Delivers a message: to every subscriber of a topic, or to one consumer of a queue.
    fn route(&mut self, now: Instant, message: Stored) {
        let targets = self.matching(&message.destination);
        if !self.is_queue(&message.destination) {
            for (connection, subscription, _) in targets {
                if let Some(c) = self.connections.get_mut(&connection) {
                    deliver(&mut c.session, now, &subscription, &message);
                    self.ready.insert(connection);
                }
            }
            return;
        }
        if targets.is_empty() {
            self.queues.hold(message);
            return;
        }
        let pick = self.queues.pick(&message.destination, targets.len());
        let (connection, subscription, ack) = &targets[pick];
        let taken = match self.connections.get_mut(connection) {
            Some(c) => deliver(&mut c.session, now, subscription, &message),
            None => false,
        };
        self.ready.insert(*connection);
        if !taken {
            // Never lost: it waits for the next consumer.
            self.queues.hold(message);
        } else if ack.needs_ack() {
            self.queues.sent_unacknowledged(message);
        }
    }

    /// Acts on what `connection`'s session reported.
    fn settle(&mut self, connection: ConnectionId, now: Instant) {
        self.ready.insert(connection);
        loop {
            let Some(c) = self.connections.get_mut(&connection) else {
                return;
            };
            let Some(event) = c.session.poll_event() else {
                return;
            };
            match event {
                ServerEvent::Connect(request) => match self.authorizer.connect(&request) {
                    Ok(()) => {
                        c.login = request.login.clone();
                        let _ = c.session.accept(now);
                        self.events.push_back(BrokerEvent::Connected {
                            connection,
                            login: request.login,
                        });
                    }
                    Err(message) => {
                        let _ = c.session.reject(now, &message);
                    }
                },
                ServerEvent::Subscribe {
                    id,
                    destination,
                    ack,
                    ..
                } => self.subscribe(connection, now, id, destination, ack),
                ServerEvent::Unsubscribe { id, unacked, .. } => {
                    c.subscriptions.retain(|s| s.id != id);
                    self.redeliver(now, &unacked);
                }
                ServerEvent::Send(frame) => self.on_send(connection, now, frame),
                ServerEvent::Ack(MessageSet { message_ids, .. }) => {
                    for id in &message_ids {
                        self.queues.acknowledged(id);
                    }
                }
                ServerEvent::Nack(MessageSet { message_ids, .. }) => {
                    self.redeliver(now, &message_ids);
                }
                ServerEvent::Closed { reason, unacked } => {
                    c.subscriptions.clear();
                    let abandoned: Vec<String> = unacked
                        .into_iter()
                        .flat_map(|set| set.message_ids)
                        .collect();
                    self.redeliver(now, &abandoned);
                    self.events
                        .push_back(BrokerEvent::Closed { connection, reason });
                }
                _ => {}
            }
        }
    }

    fn subscribe(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: String,
        destination: String,
        ack: AckMode,
    ) {
        let served = self
            .config
            .broker_prefixes
            .iter()
            .any(|prefix| destination.starts_with(prefix.as_str()));
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let verdict = if served {
            self.authorizer.subscribe(c.login.as_deref(), &destination)
        } else {
            Err(format!("no such destination: {destination}"))
        };
        if let Err(message) = verdict {
            let _ = c.session.refuse_subscription(now, &message);
            return;
        }
        let _ = c.session.confirm_subscription(now);
        let pattern = Pattern::new(&destination);
        // Messages waiting in matching queues go to the new consumer.
        let waiting = self.queues.take_waiting(|queue| pattern.matches(queue));
        c.subscriptions.push(Subscription { id, pattern, ack });
        for message in waiting {
            self.route(now, message);
        }
    }

    fn on_send(&mut self, connection: ConnectionId, now: Instant, frame: FrameBuf) {
        let destination = frame
            .header("destination")
            .map(|d| d.into_owned())
            .unwrap_or_default();
        let starts =
            |prefixes: &[String]| prefixes.iter().any(|p| destination.starts_with(p.as_str()));
        if starts(&self.config.app_prefixes) {
            self.events.push_back(BrokerEvent::AppMessage {
                connection,
                destination,
                frame,
            });
        } else if starts(&self.config.broker_prefixes) {
            // The sender's own headers pass on to subscribers; the ones that framed the SEND
            // or that each delivery sets do not.
            let own: Vec<(String, String)> = frame
                .headers()
                .iter()
                .map(|h| (h.name().into_owned(), h.value().into_owned()))
                .filter(|(name, _)| !RESERVED.contains(&name.as_str()))
                .collect();
            let pairs: Vec<(&str, &str)> =
                own.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let message = self.new_message(&destination, &pairs, frame.body().clone());
            self.route(now, message);
        } else {
            self.events.push_back(BrokerEvent::Dropped {
                connection,
                destination,
            });
        }
    }

    /// Puts refused or abandoned queue messages back: each goes to a consumer again.
    fn redeliver(&mut self, now: Instant, message_ids: &[String]) {
        for id in message_ids {
            if let Some(message) = self.queues.take_for_redelivery(id) {
                self.route(now, message);
            }
        }
    }
}

/// Headers of a SEND that do not pass on to MESSAGEs.
const RESERVED: [&str; 8] = [
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "message-id",
    "subscription",
    "ack",
    "redelivered",
];

/// Writes `message` to one subscription of one session; whether the session took it.
fn deliver(
    session: &mut ServerSession,
    now: Instant,
    subscription: &str,
    message: &Stored,
) -> bool {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(message.headers.len() + 1);
    if message.redelivered {
        headers.push(("redelivered", "true"));
    }
    headers.extend(
        message
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    let delivery = Delivery {
        destination: &message.destination,
        message_id: &message.message_id,
        headers: &headers,
        body: &message.body,
    };
    session.deliver(now, subscription, delivery).is_ok()
}
