//! A sans-IO in-memory STOMP broker over [`stomp_session::ServerSession`], in the shape of
//! Spring's simple broker, bounded and isolated so that no client can exhaust it.
//!
//! **Who this is for.** Authors of servers on a runtime of their choice. To run a broker or
//! build an application with handlers, start with `stomp-server`, which drives this crate over
//! TCP and WebSocket with tokio.
//!
//! - Broker destinations (by prefix, `/topic/`, `/queue/` and `/chat/` by default): topic
//!   semantics (every subscriber gets each message; `*` matches one segment and `**` any
//!   number), and queue semantics under the queue prefix: each message goes to one consumer,
//!   round-robin among those with room in their window (prefetch), and leaves the queue only
//!   when acknowledged, or under auto ack once written to the transport. A NACK, or a consumer
//!   that goes away, puts its messages back at the head of the queue, marked `redelivered`.
//! - Application destinations (`/app/` by default): a SEND there becomes a
//!   [`BrokerEvent::AppMessage`] for application code, which can [`Broker::reply`] to the sender
//!   and [`Broker::publish`] to broker destinations.
//! - User destinations (`/user/` by default): a SUBSCRIBE to `/user/queue/x` is the session's
//!   own; only the application reaches it. Clients may not send there.
//! - A SUBSCRIBE or SEND outside what is served, with a pattern where none is allowed, or
//!   refused by the [`Authorizer`], is an ERROR before any RECEIPT.
//! - Bounds: queue octets per destination and in all (publishers past them are
//!   flow-controlled: [`Broker::wants_input`] turns false), windows of unacknowledged messages,
//!   destination length and segments, and every session limit of [`BrokerConfig::session`]. A
//!   destination nobody uses holds no memory.
//! - Routing costs one map look-up and a walk linear in the destination's segments, however
//!   many subscriptions exist elsewhere.
//!
//! The broker does no IO and reads no clock. A driver owns the sockets: it calls
//! [`Broker::open`] per accepted connection, feeds it input and time, and after each call
//! writes out what [`Broker::poll_ready`] names; it reports how far it has written with
//! [`Broker::handle_written`] when [`Broker::poll_write_report`] asks.
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

mod config;
mod event;
mod pattern;
mod policy;
mod queue;
mod ready;
mod relay;
mod routes;
mod shard;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
pub use config::{AllowAll, Authorizer, BrokerConfig, Shard};
pub use event::{BrokerEvent, RelayEvent, Settlement};
pub use pattern::Pattern;
use policy::{Kind, Policy};
use queue::{Queues, Stored};
use ready::Ready;
use routes::Routes;
pub use shard::{ShardMessage, owner_of};
/// The session crate this broker is built on; the session types its API uses are re-exported
/// here too, so that no other crate need be named.
pub use stomp_session;
pub use stomp_session::{
    AckMode, CloseReason, ConnectRequest, Delivery, FrameBuf, ServerConfig, SubscriptionId,
};
use stomp_session::{MessageSet, ServerEvent, ServerSession, SharedDelivery};

/// Identifies one connection of the broker, for the broker's whole life: its
/// [`session_name`] is the `session` header its CONNECTED carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// The number behind the id, as logs show it.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies one subscription across the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SubscriberKey(u64);

/// What a broker holds at one moment, from [`Broker::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Open connections.
    pub connections: usize,
    /// Subscriptions of all connections.
    pub subscriptions: usize,
    /// Literal topic destinations with at least one subscriber.
    pub topics: usize,
    /// Nodes of the pattern trie below its root: what pattern subscriptions hold.
    pub pattern_nodes: usize,
    /// Queues with messages or consumers.
    pub queues: usize,
    /// Messages waiting in queues for a consumer.
    pub queued_messages: usize,
    /// Octets held in queues, waiting or unacknowledged.
    pub queued_bytes: usize,
    /// Connections whose input is stopped by a queue limit.
    pub paused_publishers: usize,
    /// Logged-in users with at least one session.
    pub users: usize,
    /// Connections opened since the start.
    pub opened: u64,
    /// Sessions closed since the start.
    pub closed: u64,
    /// Sessions closed other than by the client's DISCONNECT.
    pub closed_abnormally: u64,
    /// Consumers closed for falling behind, since the start.
    pub slow_consumers_closed: u64,
    /// Frames received from clients since the start, heart-beats aside.
    pub frames_received: u64,
    /// Frames queued for clients since the start, heart-beats aside.
    pub frames_sent: u64,
    /// MESSAGE frames queued for subscribers since the start.
    pub deliveries: u64,
    /// Octets received from clients since the start: what the driver handed in.
    pub octets_received: u64,
}

impl std::ops::AddAssign for BrokerStats {
    /// Adds another shard's figures: the server's are the sum of its shards'.
    fn add_assign(&mut self, other: BrokerStats) {
        self.connections += other.connections;
        self.subscriptions += other.subscriptions;
        self.topics += other.topics;
        self.pattern_nodes += other.pattern_nodes;
        self.queues += other.queues;
        self.queued_messages += other.queued_messages;
        self.queued_bytes += other.queued_bytes;
        self.paused_publishers += other.paused_publishers;
        self.users += other.users;
        self.opened += other.opened;
        self.closed += other.closed;
        self.closed_abnormally += other.closed_abnormally;
        self.slow_consumers_closed += other.slow_consumers_closed;
        self.frames_received += other.frames_received;
        self.frames_sent += other.frames_sent;
        self.deliveries += other.deliveries;
        self.octets_received += other.octets_received;
    }
}

/// One subscription, as the broker routes to it.
#[derive(Debug)]
struct Subscriber {
    connection: ConnectionId,
    /// Its id in its session.
    id: SubscriptionId,
    /// As subscribed.
    pattern: Pattern,
    kind: Kind,
    ack: AckMode,
    /// Most messages in flight at once.
    window: usize,
    /// Queue messages handed out under auto ack and not yet written.
    unwritten: usize,
    /// Queue messages awaiting ACK or NACK, by message id, with the order they were taken in.
    unacked: HashMap<String, (u64, Stored)>,
    /// A queue's consumer on another shard, as that shard names it (its `connection` is one
    /// of that shard's, and its messages go there).
    remote: Option<shard::Peer>,
    /// A consumer on another shard that has ended while messages it was handed were still
    /// on their way to its client: it takes no more, and is forgotten once they are settled.
    cancelled: bool,
}

impl Subscriber {
    fn new(connection: ConnectionId, id: SubscriptionId, destination: &str, kind: Kind) -> Self {
        Subscriber {
            connection,
            id,
            pattern: Pattern::new(destination),
            kind,
            ack: AckMode::Auto,
            window: 1,
            unwritten: 0,
            unacked: HashMap::new(),
            remote: None,
            cancelled: false,
        }
    }

    fn in_flight(&self) -> usize {
        self.unwritten + self.unacked.len()
    }
}

/// A queue message handed to a connection under auto ack, done with once written.
#[derive(Debug)]
struct Unwritten {
    /// The offset in the connection's output just past it.
    end: u64,
    subscriber: SubscriberKey,
    message: Stored,
}

#[derive(Debug)]
struct Connection {
    session: ServerSession,
    /// The user the session acts as, once connected.
    user: Option<String>,
    /// Subscriptions by their id in the session.
    subscriptions: HashMap<SubscriptionId, SubscriberKey>,
    /// All of them by destination as subscribed, for replies.
    by_destination: BTreeSet<(String, SubscriberKey)>,
    /// Those of them that consume queues, by queue name.
    consumes: BTreeSet<(String, SubscriberKey)>,
    /// A refused login's ERROR, held back until then.
    refusal: Option<(Instant, String)>,
    /// Octets handed out by `poll_transmit`.
    handed: u64,
    /// Octets the driver reported written.
    written: u64,
    /// A write report was asked for and has not come.
    report_asked: bool,
    /// Queue messages under auto ack not yet known to be written, oldest first.
    unwritten: VecDeque<Unwritten>,
    /// Relayed messages under auto ack not yet known to be written, oldest first.
    relayed_unwritten: VecDeque<relay::Unwritten>,
    /// A queue's limit stopped this connection's input (the queue is here).
    paused_here: bool,
    /// The shard whose queue's limit stopped this connection's input, if another's.
    held_by: Option<usize>,
    /// The driver holds this connection's input ([`Broker::hold_input`]).
    held: bool,
}

impl Connection {
    /// Whether its input is not to be read now.
    fn input_stopped(&self) -> bool {
        self.held || self.paused_here || self.held_by.is_some()
    }

    /// Octets queued for the connection that the driver has not reported written.
    fn unwritten_octets(&self) -> u64 {
        self.session.octets_queued().saturating_sub(self.written)
    }
}

/// The broker: many server sessions and the destinations between them.
///
/// # Relay mode
///
/// With [`BrokerConfig::with_relay`], broker destinations are another broker's (RabbitMQ,
/// ActiveMQ), reached through a relay the driver runs; sessions, application destinations,
/// user destinations and every bound stay here. Then:
/// - a SUBSCRIBE to a broker destination is a [`BrokerEvent::Relay(RelayEvent::Subscribe)`], and waits (its
///   session acting on nothing it received after it) until the driver answers with
///   [`relay_subscribed`](Self::relay_subscribed), which sends its RECEIPT or refuses it with
///   an ERROR; its end is a [`BrokerEvent::Relay(RelayEvent::Unsubscribe)`];
/// - a SEND to a broker destination is a [`BrokerEvent::Relay(RelayEvent::Send)`] (at COMMIT, when it was in
///   a transaction), and [`publish`](Self::publish) a [`BrokerEvent::Relay(RelayEvent::Publish)`];
/// - messages from the other broker come in with [`relay_deliver`](Self::relay_deliver); the
///   client's ACKs and NACKs of them, and under auto ack each one written to the client, come
///   out as [`BrokerEvent::Relay(RelayEvent::Settle)`]s, so that the relay lets the other broker send a
///   subscription more only as fast as its client takes them.
///
/// # Shards
///
/// With [`BrokerConfig::with_shard`], several brokers are one server's shards, each with its
/// own connections, so that routing runs on as many cores. Each broker destination has one
/// owner shard ([`owner_of`]): a SEND anywhere goes to it, a topic's owner hands each message
/// to every shard for its own subscribers, and a queue's owner keeps the queue and hands its
/// messages to consumers on any shard. Every subscriber of a destination then gets its
/// messages in one order, in which each publisher's keep the order they were sent in. What
/// one shard has for another comes out as a [`BrokerEvent::ToShard`], for the driver to
/// carry, in order, to that shard's [`handle_shard`](Self::handle_shard). Connection and
/// message ids are unique across the shards; user destinations and replies reach the
/// sessions of the shard they are called on.
pub struct Broker {
    config: BrokerConfig,
    policy: Arc<Policy>,
    // Keyed by ids the broker hands out itself, never chosen by a client: a fast hash, with
    // nothing to fear from keys made to collide.
    connections: FxHashMap<ConnectionId, Connection>,
    subscribers: FxHashMap<SubscriberKey, Subscriber>,
    routes: Routes,
    queues: Queues,
    next_connection: u64,
    next_subscriber: u64,
    next_message: u64,
    next_take: u64,
    events: VecDeque<BrokerEvent>,
    /// Connections that may have bytes to write, have closed, or changed their input state.
    ready: Ready,
    /// Connections, here or on other shards, whose input is stopped by the limit of a queue
    /// here, and that queue.
    paused: BTreeMap<ConnectionId, String>,
    /// Consumers on other shards of queues here, by their shard and their key there.
    remote_consumers: FxHashMap<(usize, SubscriberKey), SubscriberKey>,
    /// The sessions of each logged-in user, for user destinations.
    users: HashMap<String, BTreeSet<ConnectionId>>,
    /// Running totals, for [`Broker::stats`].
    totals: Totals,
    /// Internal steps taken since the start ([`Broker::steps`]).
    steps: u64,
}

/// Running totals since the broker started.
#[derive(Debug, Default)]
struct Totals {
    opened: u64,
    closed: u64,
    closed_abnormally: u64,
    slow_consumers_closed: u64,
    deliveries: u64,
    octets_received: u64,
    /// Frames received and sent by sessions already removed.
    frames_received: u64,
    frames_sent: u64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connections", &self.connections.len())
            .field("subscriptions", &self.subscribers.len())
            .field("queues", &self.queues.len())
            .field("queued", &self.queues.waiting_count())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker that allows every login and every subscription within its prefixes.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker::with_authorizer(config, Box::new(AllowAll))
    }

    /// A broker whose logins, subscriptions and sends `authorizer` decides.
    pub fn with_authorizer(mut config: BrokerConfig, authorizer: Box<dyn Authorizer>) -> Broker {
        let policy = Arc::new(Policy::new(&config, Arc::from(authorizer)));
        // Subscriptions outside the broker prefixes are refused before their RECEIPT, and so
        // are SENDs, by the policy each session consults.
        // In relay mode a relayed SEND's RECEIPT waits for the other broker's
        // (`relay_sent`); the broker answers the others itself (`on_send`).
        let relay = config.relay;
        config.session = config
            .session
            .with_confirm_subscriptions(true)
            .with_defer_send_receipts(relay)
            .with_send_check(policy.clone());
        Broker {
            config,
            policy,
            connections: FxHashMap::default(),
            subscribers: FxHashMap::default(),
            routes: Routes::default(),
            queues: Queues::default(),
            next_connection: 0,
            next_subscriber: 0,
            next_message: 0,
            next_take: 0,
            events: VecDeque::new(),
            ready: Ready::default(),
            paused: BTreeMap::new(),
            remote_consumers: FxHashMap::default(),
            users: HashMap::new(),
            totals: Totals::default(),
            steps: 0,
        }
    }

    // ---- Connections ----

    /// Starts a session for a connection accepted at `now`; its CONNECT deadline counts from
    /// then, and [`poll_ready`](Self::poll_ready) names it so the driver learns the deadline.
    pub fn open(&mut self, now: Instant) -> ConnectionId {
        self.next_connection += 1;
        let id = ConnectionId(self.config.shard.id(self.next_connection));
        let connection = Connection {
            session: ServerSession::new(self.config.session.clone(), now),
            user: None,
            subscriptions: HashMap::new(),
            by_destination: BTreeSet::new(),
            consumes: BTreeSet::new(),
            refusal: None,
            handed: 0,
            written: 0,
            report_asked: false,
            unwritten: VecDeque::new(),
            relayed_unwritten: VecDeque::new(),
            paused_here: false,
            held_by: None,
            held: false,
        };
        self.totals.opened += 1;
        self.connections.insert(id, connection);
        self.ready.insert(id);
        id
    }

    /// Takes bytes received on `connection`.
    pub fn handle_input(&mut self, connection: ConnectionId, now: Instant, bytes: &[u8]) {
        self.totals.octets_received += bytes.len() as u64;
        if let Some(c) = self.connections.get_mut(&connection) {
            c.session.handle_input(now, bytes);
            self.on_session_events(connection, now);
        }
    }

    /// `connection`'s peer closed it.
    pub fn handle_eof(&mut self, connection: ConnectionId, now: Instant) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.session.handle_eof(now);
            self.on_session_events(connection, now);
        }
    }

    /// `connection`'s deadline ([`poll_timeout`](Self::poll_timeout)) has passed.
    pub fn handle_timeout(&mut self, connection: ConnectionId, now: Instant) {
        if let Some(c) = self.connections.get_mut(&connection) {
            if let Some((at, _)) = &c.refusal {
                if now >= *at {
                    if let Some((_, message)) = c.refusal.take() {
                        let _ = c.session.reject(now, &message);
                    }
                }
            }
            c.session.handle_timeout(now);
            self.on_session_events(connection, now);
        }
    }

    /// The first `octets` of what [`poll_transmit`](Self::poll_transmit) handed out for
    /// `connection` are written to its transport (a running total, counting whole buffers).
    /// Queue messages under auto ack within them are done with, and their consumers get more.
    pub fn handle_written(&mut self, connection: ConnectionId, now: Instant, octets: u64) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        c.written = c.written.max(octets);
        c.report_asked = false;
        let mut queues = BTreeSet::new();
        while c.unwritten.front().is_some_and(|u| u.end <= c.written) {
            let Some(done) = c.unwritten.pop_front() else {
                break;
            };
            self.steps += 1;
            if let Some(s) = self.subscribers.get_mut(&done.subscriber) {
                s.unwritten = s.unwritten.saturating_sub(1);
            }
            self.queues.done(&done.message);
            queues.insert(done.message.destination);
        }
        self.relayed_written(connection);
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        // Room in the output may let this connection's queue subscriptions take more.
        queues.extend(c.consumes.iter().map(|(queue, _)| queue.clone()));
        self.ready.insert(connection);
        for queue in queues {
            self.dispatch(now, &queue);
        }
        self.resume_publishers(now);
    }

    /// Closes every connection with an ERROR carrying `message`, as at shutdown. Messages a
    /// client had not acknowledged go back to their queues.
    pub fn shut_down(&mut self, now: Instant, message: &str) {
        let ids: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for id in ids {
            self.steps += 1;
            if let Some(c) = self.connections.get_mut(&id) {
                c.session.close_with_error(now, message);
            }
            self.on_session_events(id, now);
        }
    }

    /// Closes one connection with an ERROR carrying `message`, dropping what it had not been
    /// handed yet, as for a consumer too slow to keep up. Queue messages among what is dropped,
    /// and those it had not acknowledged, go back to their queues.
    pub fn close_with_error(&mut self, connection: ConnectionId, now: Instant, message: &str) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        while c.session.poll_transmit().is_some() {}
        // What was queued past the last octet handed out will never be written.
        let handed = c.handed;
        let lost: Vec<Unwritten> = {
            let keep = c.unwritten.iter().take_while(|u| u.end <= handed).count();
            c.unwritten.drain(keep..).collect()
        };
        let lost_afar = {
            let keep = (c.relayed_unwritten.iter()).take_while(|u| u.end <= handed);
            let keep = keep.count();
            c.relayed_unwritten.split_off(keep)
        };
        // From here on, offsets past `handed` count the ERROR, not what was dropped: what is
        // left of `unwritten` lies before it.
        c.session.close_with_error(now, message);
        self.put_back_unwritten(now, lost);
        self.relayed_lost(lost_afar);
        self.on_session_events(connection, now);
    }

    /// Closes a consumer too slow for its traffic with an ERROR carrying `message`, as
    /// [`close_with_error`](Self::close_with_error) does, and counts it in
    /// [`BrokerStats::slow_consumers_closed`].
    pub fn close_slow_consumer(&mut self, connection: ConnectionId, now: Instant, message: &str) {
        self.totals.slow_consumers_closed += 1;
        self.close_with_error(connection, now, message);
    }

    /// Stops (`held`) or resumes reading `connection`'s input on the driver's behalf, as when
    /// the application is still busy with what the connection sent: silence while held does
    /// not count against its heart-beats, and [`wants_input`](Self::wants_input) is false.
    pub fn hold_input(&mut self, connection: ConnectionId, now: Instant, held: bool) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        if c.held != held {
            c.held = held;
            let stopped = c.input_stopped();
            c.session.pause_input(now, stopped);
            self.ready.insert(connection);
        }
    }

    /// Forgets a connection whose transport is gone, after a last
    /// [`handle_written`](Self::handle_written). Queue messages not known to be written go
    /// back to their queues.
    pub fn remove(&mut self, connection: ConnectionId, now: Instant) {
        self.handle_eof(connection, now);
        let Some(c) = self.connections.remove(&connection) else {
            return;
        };
        let (received, sent) = c.session.frame_counts();
        self.totals.frames_received += received;
        self.totals.frames_sent += sent;
        self.ready.remove(connection);
        self.paused.remove(&connection);
        self.put_back_unwritten(now, c.unwritten.into_iter().collect());
        // Messages of queues on other shards that never reached the transport go back too.
        self.relayed_lost(c.relayed_unwritten);
    }

    // ---- Output ----

    /// A connection that may have bytes to write, may have closed, or may have changed
    /// whether it [`wants_input`](Self::wants_input): write what
    /// [`poll_transmit`](Self::poll_transmit) gives, then check
    /// [`poll_write_report`](Self::poll_write_report) and [`is_closed`](Self::is_closed).
    #[must_use]
    pub fn poll_ready(&mut self) -> Option<ConnectionId> {
        self.ready.pop()
    }

    /// The next bytes to write to `connection`.
    #[must_use]
    pub fn poll_transmit(&mut self, connection: ConnectionId) -> Option<Bytes> {
        let c = self.connections.get_mut(&connection)?;
        let bytes = c.session.poll_transmit()?;
        c.handed += bytes.len() as u64;
        Some(bytes)
    }

    /// Whether the broker wants to know when what was handed out for `connection` is written:
    /// `Some(total)` asks the driver to call [`handle_written`](Self::handle_written) once the
    /// first `total` octets are written. Asked only of connections that consume queues, so
    /// that queue messages leave their queue when they reach the transport.
    #[must_use]
    pub fn poll_write_report(&mut self, connection: ConnectionId) -> Option<u64> {
        let c = self.connections.get_mut(&connection)?;
        let consumes =
            !c.unwritten.is_empty() || !c.consumes.is_empty() || !c.relayed_unwritten.is_empty();
        if c.report_asked || !consumes || c.handed <= c.written {
            return None;
        }
        c.report_asked = true;
        Some(c.handed)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due for `connection`.
    #[must_use]
    pub fn poll_timeout(&self, connection: ConnectionId) -> Option<Instant> {
        let c = self.connections.get(&connection)?;
        let refusal = c.refusal.as_ref().map(|(at, _)| *at);
        match (c.session.poll_timeout(), refusal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the driver should read `connection`'s input: false while it is flow-controlled
    /// because a queue it sent to is over its limit, or held by [`hold_input`](Self::hold_input). Its heart-beats do not count meanwhile.
    pub fn wants_input(&self, connection: ConnectionId) -> bool {
        self.connections
            .get(&connection)
            .is_none_or(|c| !c.input_stopped())
    }

    /// Whether `connection`'s client has been let in (CONNECTED sent): until then a driver
    /// need read no more of it than one head ([`stomp_session::ServerSession::handle_input`]
    /// takes no more).
    pub fn is_connected(&self, connection: ConnectionId) -> bool {
        self.connections
            .get(&connection)
            .is_some_and(|c| c.session.is_connected())
    }

    /// Whether `connection`'s session is over and written out: close its transport, and once
    /// it is gone, [`remove`](Self::remove) it.
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

    /// What the broker holds now: connections, subscriptions, destinations, queued messages.
    pub fn stats(&self) -> BrokerStats {
        let (received, sent) = self
            .connections
            .values()
            .map(|c| c.session.frame_counts())
            .fold((0, 0), |(r, s), (r2, s2)| (r + r2, s + s2));
        let t = &self.totals;
        BrokerStats {
            opened: t.opened,
            closed: t.closed,
            closed_abnormally: t.closed_abnormally,
            slow_consumers_closed: t.slow_consumers_closed,
            frames_received: t.frames_received + received,
            frames_sent: t.frames_sent + sent,
            deliveries: t.deliveries,
            octets_received: t.octets_received,
            connections: self.connections.len(),
            subscriptions: self.subscribers.len() - self.remote_consumers.len(),
            topics: self.routes.topics(),
            pattern_nodes: self.routes.pattern_nodes(),
            queues: self.queues.len(),
            queued_messages: self.queues.waiting_count(),
            queued_bytes: self.queues.total_bytes(),
            paused_publishers: self.paused.len(),
            users: self.users.len(),
        }
    }

    /// Internal steps taken since the broker started: one per session event acted on, per
    /// delivery tried, per message that moves between a queue and a consumer, per message
    /// from another shard, per subscription ended. What a call adds is bounded by what it was
    /// given and what the broker holds (each waiting message is tried at most once per
    /// consumer per pass; a consumer that refuses one is not asked again in that pass), so a
    /// driver or a test can check that every call makes progress and ends.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Messages waiting in `queue` for a consumer.
    pub fn queue_depth(&self, queue: &str) -> usize {
        self.queues.get(queue).map_or(0, |q| q.waiting.len())
    }

    /// Every queue with messages or consumers, and the messages waiting in it.
    pub fn queue_depths(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.queues.depths()
    }

    // ---- Application commands ----

    /// Whether `destination` is another broker's: relay mode, and a broker destination.
    pub fn is_relayed(&self, destination: &str) -> bool {
        self.config.relay && self.policy.is_served(destination)
    }

    /// Publishes a message to a broker destination, as a SEND there would; returns its id. A
    /// queue takes it whatever its size: the application bounds what it publishes. In relay
    /// mode it becomes a [`BrokerEvent::Relay(RelayEvent::Publish)`].
    pub fn publish(
        &mut self,
        now: Instant,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> String {
        let message = self.new_message(destination, owned(headers), body);
        let id = message.message_id.clone();
        if self.config.relay && self.policy.is_served(destination) {
            self.events.push_back(BrokerEvent::Relay(RelayEvent::Publish {
                destination: message.destination,
                headers: message.headers,
                body: message.body,
            }));
            return id;
        }
        self.route(now, message, None);
        id
    }

    /// Sends a message to `connection`'s own subscriptions to `destination` (such as a
    /// `/user/queue/replies` it subscribed to), as an answer to that client alone; pattern
    /// subscriptions are not answered. Returns how many subscriptions it reached. Its cost does
    /// not grow with the connection's other subscriptions.
    pub fn reply(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> usize {
        let message = self.new_message(destination, owned(headers), body);
        self.deliver_to_own(now, connection, &message)
    }

    /// Sends a message to user `user` at `destination`, as Spring's user destinations do:
    /// `send_to_user(now, "alice", "/queue/x", ..)` reaches every session that logged in as
    /// alice and subscribed to `/user/queue/x`, and nobody else. Returns how many
    /// subscriptions it reached.
    pub fn send_to_user(
        &mut self,
        now: Instant,
        user: &str,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> usize {
        let prefix = self.config.user_prefix.trim_end_matches('/');
        let own = format!("{prefix}/{}", destination.trim_start_matches('/'));
        let sessions: Vec<ConnectionId> = match self.users.get(user) {
            Some(sessions) => sessions.iter().copied().collect(),
            None => return 0,
        };
        let message = self.new_message(&own, owned(headers), body);
        sessions
            .into_iter()
            .map(|connection| self.deliver_to_own(now, connection, &message))
            .sum()
    }

    /// Delivers to `connection`'s own subscriptions to the message's destination.
    fn deliver_to_own(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        message: &Stored,
    ) -> usize {
        let Some(c) = self.connections.get(&connection) else {
            return 0;
        };
        let first = (message.destination.clone(), SubscriberKey(0));
        let targets: Vec<SubscriberKey> = c
            .by_destination
            .range(first..)
            .take_while(|(d, _)| *d == message.destination)
            .map(|(_, key)| *key)
            .collect();
        let headers = stored_headers(message);
        let mut shared =
            SharedDelivery::new(delivery_of(message, &headers)).expecting(targets.len());
        targets
            .into_iter()
            .map(|key| usize::from(self.deliver_to_topic(now, key, &mut shared)))
            .sum()
    }

    // ---- Routing ----

    fn new_message(
        &mut self,
        destination: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Stored {
        self.next_message += 1;
        Stored {
            destination: destination.to_owned(),
            message_id: format!("m-{}", self.config.shard.id(self.next_message)),
            headers,
            body,
            redelivered: false,
        }
    }

    /// Delivers a topic message to every subscriber here.
    fn deliver_to_subscribers(&mut self, now: Instant, message: &Stored) {
        let mut targets = Vec::new();
        self.routes.matching(&message.destination, &mut targets);
        let headers = stored_headers(message);
        let mut shared =
            SharedDelivery::new(delivery_of(message, &headers)).expecting(targets.len());
        for key in targets {
            self.deliver_to_topic(now, key, &mut shared);
        }
    }

    /// Writes a topic message to one subscription; whether it took it. A subscriber holding
    /// more unacknowledged messages than its window is closed as too slow.
    fn deliver_to_topic(
        &mut self,
        now: Instant,
        key: SubscriberKey,
        shared: &mut SharedDelivery<'_>,
    ) -> bool {
        self.steps += 1;
        let Some(s) = self.subscribers.get(&key) else {
            return false;
        };
        let Some(c) = self.connections.get_mut(&s.connection) else {
            return false;
        };
        let taken = c.session.deliver_shared(now, &s.id, shared).is_ok();
        self.totals.deliveries += u64::from(taken);
        let connection = s.connection;
        self.ready.insert(connection);
        if taken && s.ack.needs_ack() && c.session.unacked_count(&s.id) > s.window {
            let text = format!(
                "too slow: more than {} messages unacknowledged on subscription {}",
                s.window, s.id
            );
            self.close_slow_consumer(connection, now, &text);
        }
        taken
    }

    /// Whether subscriber `key` may take a queue message of `size` octets now.
    fn has_room(&self, key: SubscriberKey, size: usize) -> bool {
        let Some(s) = self.subscribers.get(&key) else {
            return false;
        };
        // A consumer on another shard: its window bounds what it is handed, and its shard
        // feeds it as fast as it writes.
        if s.remote.is_some() {
            return !s.cancelled && s.in_flight() < s.window;
        }
        let Some(c) = self.connections.get(&s.connection) else {
            return false;
        };
        if !c.session.is_connected() || s.in_flight() >= s.window {
            return false;
        }
        // Fed as fast as it writes: never so much that the consumer would look slow.
        let unwritten = c.unwritten_octets();
        unwritten == 0
            || unwritten.saturating_add(size as u64) <= self.config.max_outbound_bytes as u64
    }

    /// Hands waiting messages of queue `name` to consumers with room, round-robin, from the
    /// head of the queue. Bounded by what it starts with: each round either hands over the
    /// head message (it leaves the waiting list) or finds a consumer that refused it, which
    /// is not asked again in this call; so it ends within `waiting + consumers` rounds.
    fn dispatch(&mut self, now: Instant, name: &str) {
        let Some(queue) = self.queues.get(name) else {
            return;
        };
        let rounds = queue.waiting.len() + queue.consumers.len();
        let mut refused: Vec<SubscriberKey> = Vec::new();
        for _ in 0..rounds {
            let Some(queue) = self.queues.get(name) else {
                break;
            };
            let Some(front) = queue.waiting.front() else {
                break;
            };
            let size = front.size();
            let count = queue.consumers.len();
            let start = queue.next;
            let pick = (0..count).map(|i| (start + i) % count).find(|&i| {
                let key = queue.consumers[i];
                !refused.contains(&key) && self.has_room(key, size)
            });
            let Some(pick) = pick else {
                break;
            };
            let key = queue.consumers[pick];
            self.steps += 1;
            if self.deliver_head(now, key, name) {
                if let Some(queue) = self.queues.get_mut(name) {
                    queue.next = (pick + 1) % count;
                }
            } else {
                refused.push(key);
            }
        }
        self.resume_publishers(now);
    }

    /// Hands the message at the head of queue `name` to consumer `key`, which holds it until
    /// it is written (auto) or acknowledged (client); whether it took it. A message its
    /// session refuses stays where it is, at the head, not marked redelivered: it was never
    /// delivered.
    fn deliver_head(&mut self, now: Instant, key: SubscriberKey, name: &str) -> bool {
        let Some(s) = self.subscribers.get_mut(&key) else {
            return false;
        };
        let take = self.next_take;
        // Held until its shard settles it: acknowledged, or under auto ack written.
        if let Some(remote) = s.remote {
            let Some(message) = self.queues.take(name) else {
                return false;
            };
            self.next_take += 1;
            s.unacked
                .insert(message.message_id.clone(), (take, message.clone()));
            let deliver = shard::Inner::Deliver {
                consumer: remote.key,
                message,
            };
            self.tell(remote.shard, deliver);
            return true;
        }
        let Some(c) = self.connections.get_mut(&s.connection) else {
            return false;
        };
        let Some(front) = self.queues.get(name).and_then(|q| q.waiting.front()) else {
            return false;
        };
        if !deliver(&mut c.session, now, &s.id, front) {
            return false;
        }
        let Some(message) = self.queues.take(name) else {
            return false;
        };
        self.next_take += 1;
        self.totals.deliveries += 1;
        self.ready.insert(s.connection);
        if s.ack.needs_ack() {
            s.unacked
                .insert(message.message_id.clone(), (take, message));
        } else {
            s.unwritten += 1;
            c.unwritten.push_back(Unwritten {
                end: c.session.octets_queued(),
                subscriber: key,
                message,
            });
        }
        true
    }

    /// Queue messages that never reached the transport go back to their queues.
    fn put_back_unwritten(&mut self, now: Instant, lost: Vec<Unwritten>) {
        if lost.is_empty() {
            return;
        }
        self.steps += lost.len() as u64;
        let mut queues = BTreeSet::new();
        for u in &lost {
            if let Some(s) = self.subscribers.get_mut(&u.subscriber) {
                s.unwritten = s.unwritten.saturating_sub(1);
            }
            queues.insert(u.message.destination.clone());
        }
        self.queues.put_back(lost.into_iter().map(|u| u.message));
        for queue in queues {
            self.dispatch(now, &queue);
        }
    }

    /// Acts on what `connection`'s session reported.
    fn on_session_events(&mut self, connection: ConnectionId, now: Instant) {
        self.ready.insert(connection);
        loop {
            let Some(c) = self.connections.get_mut(&connection) else {
                return;
            };
            // Each event is acted on before the session decodes the frame after it.
            let Some(event) = c.session.poll_event() else {
                return;
            };
            self.steps += 1;
            match event {
                ServerEvent::Connect(request) => match self.policy.authorizer.connect(&request) {
                    Ok(user) => {
                        // As RabbitMQ and Spring do: the session's id, and the user it is
                        // for once the authorizer let it in.
                        let session = session_name(connection);
                        let mut headers = vec![("session", session.as_str())];
                        if let Some(user) = &user {
                            headers.push(("user-name", user));
                        }
                        c.session.set_user(user.clone());
                        if c.session.accept_with_headers(now, &headers).is_ok() {
                            if let Some(user) = &user {
                                self.users
                                    .entry(user.clone())
                                    .or_default()
                                    .insert(connection);
                            }
                        }
                        c.user.clone_from(&user);
                        self.events
                            .push_back(BrokerEvent::Connected { connection, user });
                    }
                    // Held back: a failed login costs the client time.
                    Err(message) => {
                        c.refusal = Some((now + self.config.login_failure_delay, message));
                    }
                },
                ServerEvent::Subscribe {
                    id,
                    destination,
                    ack,
                    frame,
                } => self.subscribe(connection, now, id, destination, ack, &frame),
                ServerEvent::Unsubscribe { id, .. } => {
                    self.unsubscribe(connection, now, &id, Output::Kept);
                }
                ServerEvent::Send(frame) => self.on_send(connection, now, frame),
                ServerEvent::Ack(set) => self.settle_acks(connection, now, set, Settlement::Ack),
                ServerEvent::Nack(set) => self.settle_acks(connection, now, set, Settlement::Nack),
                ServerEvent::Closed { reason, .. } => {
                    // The queue's owner forgets it as a publisher to resume.
                    if let Some(owner) = c.held_by.take() {
                        self.tell(owner, shard::Inner::Gone { connection });
                    }
                    let Some(c) = self.connections.get_mut(&connection) else {
                        return;
                    };
                    let ids: Vec<SubscriptionId> = c.subscriptions.keys().cloned().collect();
                    // Dropped or silent: nothing queued for it will be written.
                    let output = match reason {
                        CloseReason::PeerClosed | CloseReason::HeartBeatTimedOut => Output::Lost,
                        _ => Output::Kept,
                    };
                    for id in ids {
                        self.unsubscribe(connection, now, &id, output);
                    }
                    if let Some(user) = self
                        .connections
                        .get(&connection)
                        .and_then(|c| c.user.as_ref())
                    {
                        if let Some(sessions) = self.users.get_mut(user) {
                            sessions.remove(&connection);
                            if sessions.is_empty() {
                                self.users.remove(user);
                            }
                        }
                    }
                    self.totals.closed += 1;
                    if reason != CloseReason::Disconnected {
                        self.totals.closed_abnormally += 1;
                    }
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
        id: SubscriptionId,
        destination: String,
        ack: AckMode,
        frame: &FrameBuf,
    ) {
        let owner = self.owner(&destination);
        let here = owner == self.config.shard.index;
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let kind = match self
            .policy
            .subscribe(c.user.as_deref(), &destination, frame)
        {
            Ok(Kind::Topic | Kind::Pattern | Kind::Queue) if self.config.relay => Kind::Relayed,
            Ok(Kind::Queue) if !here => Kind::Remote,
            Ok(kind) => kind,
            Err(message) => {
                let _ = c.session.refuse_subscription(now, &message);
                return;
            }
        };
        // A relayed SUBSCRIBE waits for the other broker (`relay_subscribed`).
        if kind != Kind::Relayed {
            let _ = c.session.confirm_subscription(now);
        }
        let default = if ack.needs_ack() {
            self.config.prefetch_client
        } else {
            self.config.prefetch_auto
        };
        // RabbitMQ's and ActiveMQ's names for the window.
        let asked = ["prefetch-count", "activemq.prefetchSize"]
            .iter()
            .find_map(|name| frame.header(name)?.trim().parse::<usize>().ok());
        let window = asked
            .unwrap_or(default)
            .clamp(1, self.config.max_prefetch.max(1));
        self.next_subscriber += 1;
        let key = SubscriberKey(self.next_subscriber);
        c.subscriptions.insert(id.clone(), key);
        c.by_destination.insert((destination.clone(), key));
        match kind {
            Kind::Topic | Kind::Pattern => {
                self.routes.insert(&destination, kind == Kind::Pattern, key);
            }
            Kind::Queue => {
                c.consumes.insert((destination.clone(), key));
                self.queues.add_consumer(&destination, key);
            }
            Kind::Remote => {
                let consume = shard::Inner::Consume {
                    consumer: key,
                    connection,
                    id: id.clone(),
                    destination: destination.clone(),
                    ack,
                    window,
                };
                self.tell(owner, consume);
            }
            Kind::User => {}
            Kind::App => self.events.push_back(BrokerEvent::AppSubscribe {
                connection,
                id: id.clone(),
                destination: destination.clone(),
                frame: frame.clone(),
            }),
            Kind::Relayed => self.events.push_back(BrokerEvent::Relay(RelayEvent::Subscribe {
                connection,
                id: id.clone(),
                destination: destination.clone(),
                ack,
                frame: frame.clone(),
            })),
        }
        let mut subscriber = Subscriber::new(connection, id, &destination, kind);
        subscriber.ack = ack;
        subscriber.window = window;
        self.subscribers.insert(key, subscriber);
        if kind == Kind::Queue {
            self.dispatch(now, &destination);
        }
    }

    /// Ends a subscription: its unacknowledged queue messages go back to their queue. Queue
    /// messages already handed to the session under auto ack are still written (`output`
    /// kept); should the connection end first, they go back too. Relayed ones are settled at
    /// the other broker now, unless they will never be written (`output` lost), which leaves
    /// them to it to redeliver: the other broker cannot hold them for us.
    fn unsubscribe(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: &SubscriptionId,
        output: Output,
    ) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let Some(key) = c.subscriptions.remove(id) else {
            return;
        };
        let Some(s) = self.subscribers.remove(&key) else {
            return;
        };
        self.steps += 1;
        let destination = s.pattern.as_str();
        c.by_destination.remove(&(destination.to_owned(), key));
        match s.kind {
            Kind::Topic | Kind::Pattern => {
                self.routes
                    .remove(destination, s.kind == Kind::Pattern, key);
            }
            Kind::Queue => {
                c.consumes.remove(&(destination.to_owned(), key));
                self.end_consumer(now, key, s);
            }
            Kind::Remote => {
                // Those still on their way to the client are settled by the owner once
                // written, or put back should the connection end first, as for a queue here.
                let handed = c
                    .relayed_unwritten
                    .iter()
                    .filter(|u| u.remote.is_some_and(|r| r.key == key))
                    .map(|u| u.message_id.clone())
                    .collect();
                let owner = self.owner(destination);
                let cancel = shard::Inner::Cancel {
                    consumer: key,
                    handed,
                };
                self.tell(owner, cancel);
            }
            Kind::Relayed => {
                let (handed, rest) = std::mem::take(&mut c.relayed_unwritten)
                    .into_iter()
                    .partition(|u| u.remote.is_none() && u.id == *id);
                c.relayed_unwritten = rest;
                let handed: Vec<String> = handed.into_iter().map(|u| u.message_id).collect();
                if output == Output::Kept && !handed.is_empty() {
                    self.events.push_back(BrokerEvent::Relay(RelayEvent::Settle {
                        connection,
                        id: id.clone(),
                        message_ids: handed,
                        settlement: Settlement::Ack,
                    }));
                }
                self.events.push_back(BrokerEvent::Relay(RelayEvent::Unsubscribe {
                    connection,
                    id: id.clone(),
                }));
            }
            Kind::User | Kind::App => {}
        }
    }

    /// A queue consumer ended (here or on another shard): what it had not acknowledged goes
    /// back to the queue, for the others.
    fn end_consumer(&mut self, now: Instant, key: SubscriberKey, s: Subscriber) {
        let destination = s.pattern.as_str();
        let mut unacked: Vec<(u64, Stored)> = s.unacked.into_values().collect();
        self.steps += unacked.len() as u64;
        unacked.sort_by_key(|(take, _)| *take);
        self.queues
            .put_back(unacked.into_iter().map(|(_, message)| message));
        self.queues.remove_consumer(destination, key);
        self.dispatch(now, destination);
    }

    /// An ACK (`done`) or NACK of queue messages: done with, or back to the head of the queue.
    fn settle_acks(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        set: MessageSet,
        settlement: Settlement,
    ) {
        let Some(key) = self
            .connections
            .get(&connection)
            .and_then(|c| c.subscriptions.get(&set.subscription).copied())
        else {
            return;
        };
        let Some(s) = self.subscribers.get(&key) else {
            return;
        };
        match s.kind {
            Kind::Relayed => self.events.push_back(BrokerEvent::Relay(RelayEvent::Settle {
                connection,
                id: set.subscription,
                message_ids: set.message_ids,
                settlement,
            })),
            Kind::Remote => {
                let owner = self.owner(s.pattern.as_str());
                let settle = shard::Inner::Settle {
                    consumer: key,
                    message_ids: set.message_ids,
                    settlement,
                };
                self.tell(owner, settle);
            }
            Kind::Queue => self.settle(now, key, &set.message_ids, settlement),
            _ => {}
        }
    }

    /// Queue messages of consumer `key`, here or on another shard, are done with (ACK) or go
    /// back to the head of the queue (NACK).
    fn settle(
        &mut self,
        now: Instant,
        key: SubscriberKey,
        message_ids: &[String],
        settlement: Settlement,
    ) {
        let Some(s) = self.subscribers.get_mut(&key) else {
            return;
        };
        let mut settled: Vec<(u64, Stored)> = message_ids
            .iter()
            .filter_map(|id| s.unacked.remove(id))
            .collect();
        self.steps += settled.len() as u64;
        let queue = s.pattern.as_str().to_owned();
        // A consumer on another shard that ended is forgotten with its last message.
        if s.cancelled && s.unacked.is_empty() {
            if let Some(remote) = s.remote {
                self.remote_consumers.remove(&(remote.shard, remote.key));
            }
            self.subscribers.remove(&key);
        }
        if settlement == Settlement::Ack {
            for (_, message) in &settled {
                self.queues.done(message);
            }
        } else {
            settled.sort_by_key(|(take, _)| *take);
            self.queues
                .put_back(settled.into_iter().map(|(_, message)| message));
        }
        self.dispatch(now, &queue);
    }

    fn on_send(&mut self, connection: ConnectionId, now: Instant, frame: FrameBuf) {
        let destination = frame
            .header("destination")
            .map(|d| d.into_owned())
            .unwrap_or_default();
        // In relay mode the session left this SEND's RECEIPT to the broker (one inside a
        // transaction was answered as it arrived).
        let deferred_receipt = match self.config.relay && frame.header("transaction").is_none() {
            true => frame.header("receipt").map(|r| r.into_owned()),
            false => None,
        };
        if self.policy.is_app(&destination) {
            self.events.push_back(BrokerEvent::AppMessage {
                connection,
                destination,
                frame,
            });
        } else if self.config.relay && self.policy.is_served(&destination) {
            self.events.push_back(BrokerEvent::Relay(RelayEvent::Send {
                connection,
                destination,
                frame,
            }));
            // Its RECEIPT is the other broker's to give (`relay_sent`).
            return;
        } else if self.policy.is_served(&destination) {
            // The sender's own headers pass on to subscribers; the ones that framed the SEND
            // or that each delivery sets do not. Those are copied out of the frame once.
            let own: Vec<(String, String)> = frame
                .headers()
                .iter()
                .filter_map(|h| {
                    let name = h.name();
                    (!RESERVED.contains(&&*name))
                        .then(|| (name.into_owned(), h.value().into_owned()))
                })
                .collect();
            let queue = self.policy.is_queue(&destination);
            // A queue keeps the body: copied, so that it does not pin the whole buffer it
            // was read into, which queue limits would not count.
            let body = match queue {
                true => Bytes::copy_from_slice(frame.body()),
                false => frame.body().clone(),
            };
            let message = self.new_message(&destination, own, body);
            self.route(now, message, Some(connection));
        } else {
            self.events.push_back(BrokerEvent::Dropped {
                connection,
                destination,
            });
        }
        if let Some(receipt) = deferred_receipt {
            self.relay_sent(connection, now, &receipt);
        }
    }
}

/// Whether what a session was handed will still be written to its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// The connection lives on (an UNSUBSCRIBE, a DISCONNECT, an ERROR on its way).
    Kept,
    /// The connection is gone or dropped: nothing queued for it will be written.
    Lost,
}

/// Headers of a SEND that do not pass on to MESSAGEs.
const RESERVED: [&str; 10] = [
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "message-id",
    "subscription",
    "ack",
    "redelivered",
    "prefetch-count",
    "activemq.prefetchSize",
];

/// Borrowed header pairs, owned for a stored message.
fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The headers a stored message is delivered with, after the subscription's own.
fn stored_headers(message: &Stored) -> Vec<(&str, &str)> {
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
    headers
}

/// Writes `message` to one subscription of one session; whether the session took it.
fn deliver(
    session: &mut ServerSession,
    now: Instant,
    subscription: &SubscriptionId,
    message: &Stored,
) -> bool {
    let headers = stored_headers(message);
    session
        .deliver(now, subscription, delivery_of(message, &headers))
        .is_ok()
}

/// A stored message as a delivery, with `headers` from [`stored_headers`].
fn delivery_of<'a>(message: &'a Stored, headers: &'a [(&'a str, &'a str)]) -> Delivery<'a> {
    Delivery::new(&message.destination, &message.message_id, &message.body).with_headers(headers)
}

/// The `session` header CONNECTED carries, naming the connection as Spring and RabbitMQ do.
pub fn session_name(connection: ConnectionId) -> String {
    format!("session-{connection}")
}
