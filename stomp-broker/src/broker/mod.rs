//! [`Broker`]: the broker's state, and its API for drivers. What it does on a session's events,
//! how it routes and delivers, its relay mode and its shards are each a module below.

mod dead_letter;
mod durable;
mod persistence;
mod recovery;
mod registry;
mod relaying;
mod routing;
mod sessions;
mod sharding;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use foldhash::HashMap;
use rustc_hash::FxHashMap;
use stomp_session::{AckMode, Refused, ServerSession, SubscriptionId};

use crate::config::{AllowAll, Authorizer, BrokerConfig};
use crate::event::BrokerEvent;
use crate::history::Histories;
use crate::ids::{ConnectionId, SubscriberKey};
use crate::journal;
use crate::pattern::Pattern;
use crate::policy::{Kind, Policy};
use crate::queue::{Queues, Stored};
use crate::ready::Ready;
use crate::routes::Routes;
use crate::shard::{self, Peer};
use crate::stats::BrokerStats;

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
            unacked: HashMap::default(),
            remote: None,
            cancelled: false,
        }
    }

    fn in_flight(&self) -> usize {
        self.unwritten + self.unacked.len()
    }
}

/// One durable topic subscription, connected or not.
#[derive(Debug)]
struct Durable {
    /// The topic or pattern it subscribes to.
    destination: String,
    /// Its key in the durable routes.
    key: SubscriberKey,
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
    refusal: Option<(Instant, Refused)>,
    /// Octets handed out by `poll_transmit`.
    handed: u64,
    /// Octets the driver reported written.
    written: u64,
    /// A write report was asked for and has not come.
    report_asked: bool,
    /// Queue messages under auto ack not yet known to be written, oldest first.
    unwritten: VecDeque<Unwritten>,
    /// Relayed messages under auto ack not yet known to be written, oldest first.
    relayed_unwritten: VecDeque<HeldElsewhere>,
    /// A queue's limit stopped this connection's input (the queue is here).
    paused_here: bool,
    /// The shard whose queue's limit stopped this connection's input, if another's.
    held_by: Option<usize>,
    /// The driver holds this connection's input ([`Broker::hold_input`]).
    held: bool,
    /// The `client-id` of its CONNECT, which names ActiveMQ's durable subscriptions.
    client_id: Option<String>,
    /// The journal position its output waits for: what it was told depends on records up
    /// to there being synced.
    gate: u64,
    /// Records of other shards' journals its output waits for, each confirmed by
    /// [`Inner::Synced`](crate::shard::Inner::Synced).
    waits_afar: u32,
}

impl Connection {
    /// Whether its input is not to be read now.
    fn input_stopped(&self) -> bool {
        self.held || self.paused_here || self.held_by.is_some()
    }

    /// Tells the session whether its input is read, as [`input_stopped`](Self::input_stopped)
    /// says.
    fn pause_or_resume(&mut self, now: Instant) {
        if self.input_stopped() {
            self.session.pause_input(now);
        } else {
            self.session.resume_input(now);
        }
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
/// - a SUBSCRIBE to a broker destination is a
///   [`RelayEvent::Subscribe`](crate::RelayEvent::Subscribe), and waits (its session acting on
///   nothing it received after it) until the driver answers with
///   [`relay_subscribed`](Self::relay_subscribed), which sends its RECEIPT or refuses it with an
///   ERROR; its end is a [`RelayEvent::Unsubscribe`](crate::RelayEvent::Unsubscribe);
/// - a SEND to a broker destination is a [`RelayEvent::Send`](crate::RelayEvent::Send) (at COMMIT,
///   when it was in a transaction), and [`publish`](Self::publish) a
///   [`RelayEvent::Publish`](crate::RelayEvent::Publish);
/// - messages from the other broker come in with [`relay_deliver`](Self::relay_deliver); the
///   client's ACKs and NACKs of them, and under auto ack each one written to the client, come
///   out as [`RelayEvent::Settle`](crate::RelayEvent::Settle)s, so that the relay lets the other
///   broker send a subscription more only as fast as its client takes them.
///
/// # Shards
///
/// With [`BrokerConfig::with_shard`], several brokers are one server's shards, each with its
/// own connections, so that routing runs on as many cores. Each broker destination has one
/// owner shard ([`owner_of`](crate::owner_of)): a SEND anywhere goes to it, a topic's owner hands
/// each message to every shard for its own subscribers, and a queue's owner keeps the queue and
/// hands its messages to consumers on any shard. Every subscriber of a destination then gets its
/// messages in one order, in which each publisher's keep the order they were sent in. What
/// one shard has for another comes out as a [`BrokerEvent::ToShard`], for the driver to
/// carry, in order, to that shard's [`handle_shard`](Self::handle_shard). Connection and
/// message ids are unique across the shards; user destinations and replies reach the
/// sessions of the shard they are called on.
///
/// # Persistence
///
/// With [`BrokerConfig::with_persistence`], persistent queue messages are written ahead to a
/// journal the driver keeps on disk (the records are described in [`crate::journal`]):
/// - the driver appends what [`poll_journal`](Self::poll_journal) gives, syncs it (one sync
///   for all that has come meanwhile), and says how far with
///   [`handle_journaled`](Self::handle_journaled);
/// - until then, nothing that depends on those records leaves: a SEND's RECEIPT waits for
///   its message, a MESSAGE for the record of its delivery (so that after a restart it comes
///   back marked `redelivered`), an ACK's RECEIPT for the record of its removal;
/// - on start, before any connection, the driver reads the journal back and hands each record
///   to [`restore`](Self::restore), then calls [`restored`](Self::restored);
/// - [`journal_snapshot`](Self::journal_snapshot) gives records that rebuild every kept
///   message on their own, to start a new journal from and delete the old.
///
/// With several shards, each keeps the journal of the queues it owns; a client on another
/// shard waits for it as for its own (the owner confirms each record with a message to the
/// client's shard). Durable topic subscriptions are kept by the shard their SUBSCRIBE came
/// to.
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
    /// Records of persistent queue messages, for the driver to write.
    journal: journal::Writer,
    /// Connections whose output may wait for the journal.
    gated: Vec<ConnectionId>,
    /// Messages read back from the journal, by key, until [`Broker::restored`].
    restoring: BTreeMap<u64, Stored>,
    /// An instant and the Unix time in milliseconds then, from the driver, for `expires`.
    wall_clock: Option<(Instant, u64)>,
    /// Durable topic subscriptions by name, the topics they reach, and their names by key.
    durables: BTreeMap<String, Durable>,
    durable_routes: Routes,
    durable_keys: FxHashMap<SubscriberKey, String>,
    /// The last messages of topics that keep a history.
    histories: Histories,
    /// What the driver says the journal holds on disk, against its limit.
    journal_usage: JournalUsage,
    /// Connections on other shards waiting for records of this journal: the position each
    /// waits for, its shard, and the connection, in the order written.
    afar: VecDeque<(u64, usize, ConnectionId)>,
}

/// The journal's size on disk, as the driver reports it.
#[derive(Debug, Default)]
struct JournalUsage {
    bytes: u64,
    /// At its limit: publishers of persistent messages are flow-controlled.
    full: bool,
}

/// Running totals since the broker started.
#[derive(Debug, Default)]
struct Totals {
    opened: u64,
    closed: u64,
    closed_abnormally: u64,
    slow_consumers_closed: u64,
    deliveries: u64,
    /// Copies for durable subscriptions dropped at their queue's limit.
    durable_dropped: u64,
    /// Logins refused because their user had as many sessions as it may.
    user_limit_refused: u64,
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
            users: HashMap::default(),
            totals: Totals::default(),
            steps: 0,
            journal: journal::Writer::default(),
            gated: Vec::new(),
            restoring: BTreeMap::new(),
            wall_clock: None,
            durables: BTreeMap::new(),
            durable_routes: Routes::default(),
            durable_keys: FxHashMap::default(),
            histories: Histories::default(),
            journal_usage: JournalUsage::default(),
            afar: VecDeque::new(),
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
            subscriptions: HashMap::default(),
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
            client_id: None,
            gate: 0,
            waits_afar: 0,
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
                        let _ = c.session.reject(now, message.message());
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
            if let Some(key) = done.message.journaled {
                self.journal.removed(key);
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

    /// Stops reading `connection`'s input on the driver's behalf, as when the application is
    /// still busy with what the connection sent: silence while held does not count against
    /// its heart-beats, and [`wants_input`](Self::wants_input) is false.
    pub fn hold_input(&mut self, connection: ConnectionId, now: Instant) {
        self.set_held(connection, now, true);
    }

    /// Reads `connection`'s input again after [`hold_input`](Self::hold_input).
    pub fn release_input(&mut self, connection: ConnectionId, now: Instant) {
        self.set_held(connection, now, false);
    }

    fn set_held(&mut self, connection: ConnectionId, now: Instant, held: bool) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        if c.held != held {
            c.held = held;
            c.pause_or_resume(now);
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
        // Nothing leaves ahead of the journal records it depends on, here or on other shards.
        if c.gate > self.journal.synced || c.waits_afar > 0 {
            return None;
        }
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
    /// because a queue it sent to is over its limit, or held by [`hold_input`](Self::hold_input).
    /// Its heart-beats do not count meanwhile.
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
            history_bytes: self.histories.bytes(),
            journal_bytes: self.journal_usage.bytes,
            journal_full: usize::from(self.journal_usage.full),
            durable_subscriptions: self.durables.len(),
            durable_dropped: t.durable_dropped,
            user_limit_refused: t.user_limit_refused,
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

    /// Octets held in all queues, waiting or unacknowledged: what is live.
    pub fn queued_bytes(&self) -> usize {
        self.queues.total_bytes()
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
}

/// Whether what a session was handed will still be written to its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// The connection lives on (an UNSUBSCRIBE, a DISCONNECT, an ERROR on its way).
    Kept,
    /// The connection is gone or dropped: nothing queued for it will be written.
    Lost,
}

/// A message held elsewhere (by the other broker, or by a queue's owner shard) under auto
/// ack, done with once written.
#[derive(Debug)]
struct HeldElsewhere {
    /// The offset in the connection's output just past it.
    end: u64,
    id: SubscriptionId,
    message_id: String,
    /// For a queue on another shard: its owner, and the consumer as this shard names it
    /// (which outlives the subscription's id, a client may use that again).
    remote: Option<Peer>,
}
