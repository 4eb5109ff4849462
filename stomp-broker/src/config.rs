//! What the broker serves, its limits, and who may do what.

use std::time::Duration;

use stomp_session::{ConnectRequest, FrameBuf, Refused, ServerConfig};

/// What the broker serves and the bounds it keeps. Every limit has a default chosen for a
/// server on one machine; each says what happens when it is reached.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Every connection's session settings (heart-beats, frame limits, versions, subscriptions
    /// and transactions per connection).
    pub(crate) session: ServerConfig,
    /// Destinations the broker serves (default `/topic/`, `/queue/`, `/chat/`): clients may
    /// subscribe and send only under these, the application and user prefixes aside.
    pub(crate) broker_prefixes: Vec<String>,
    /// Destinations whose SENDs go to application code (default `/app/`).
    pub(crate) app_prefixes: Vec<String>,
    /// Broker destinations with queue semantics (default `/queue/`); the others are topics.
    pub(crate) queue_prefix: String,
    /// User destinations (default `/user/`): a SUBSCRIBE to `/user/queue/x` is that session's
    /// own, reached only by the application ([`Broker::reply`](crate::Broker::reply)); clients
    /// may not SEND there, nor subscribe with patterns.
    pub(crate) user_prefix: String,
    /// Longest destination, in octets (default 1024). A longer one is an ERROR.
    pub(crate) max_destination_length: usize,
    /// Most `/`-separated segments in a destination (default 64). More is an ERROR.
    pub(crate) max_destination_segments: usize,
    /// Most octets one queue holds, waiting and unacknowledged (default 64 MiB). Past it, a
    /// connection that sends to the queue is flow-controlled: its message is kept, and its
    /// input is not read until the queue is back under the limit.
    pub(crate) max_queue_bytes: usize,
    /// Most octets all queues hold together (default 512 MiB), with the same flow control.
    pub(crate) max_total_queue_bytes: usize,
    /// Queue messages an auto-ack subscription may have in flight, handed to the connection
    /// and not yet written (default 256).
    pub(crate) prefetch_auto: usize,
    /// Messages a `client` or `client-individual` subscription may hold unacknowledged
    /// (default 64). A queue consumer at its window gets no more until it acknowledges; a
    /// topic subscriber past it is closed with an ERROR.
    pub(crate) prefetch_client: usize,
    /// The largest window a SUBSCRIBE may ask for with RabbitMQ's `prefetch-count` or
    /// ActiveMQ's `activemq.prefetchSize` header (default 65535); larger values are cut to it.
    pub(crate) max_prefetch: usize,
    /// Queue messages are handed to a connection only while fewer than this many octets wait
    /// to be written to it (default 4 MiB), so that a queue backlog never makes a consumer
    /// look slow. A driver closing slow consumers should allow at least this much.
    pub(crate) max_outbound_bytes: usize,
    /// How long a refused login waits for its ERROR (default 1 s), to slow down guessing.
    pub(crate) login_failure_delay: Duration,
    /// Whether a SEND to a destination nobody serves is dropped with a
    /// [`BrokerEvent::Dropped`](crate::BrokerEvent::Dropped), as Spring's simple broker does,
    /// rather than refused with an ERROR before its RECEIPT (default: refused).
    pub(crate) drop_unserved_sends: bool,
    /// Whether broker destinations are served by another broker, through a relay the driver
    /// runs (default: no, they are served here). See [`Broker`](crate::Broker#relay-mode).
    pub(crate) relay: bool,
    /// Which queue messages are written to the journal before the broker answers for them
    /// (default: none, the broker keeps everything in memory). See
    /// [`Broker`](crate::Broker#persistence).
    pub(crate) persistence: Persistence,
    /// How many times a queue message may be redelivered (after a NACK, or a consumer that
    /// went away holding it) before it moves to its dead-letter queue (default 6, as
    /// ActiveMQ's redelivery policy); `None` redelivers for ever.
    pub(crate) max_redeliveries: Option<u32>,
    /// Where a queue's dead letters go: this prefix and the queue's name after the queue
    /// prefix (default `/queue/DLQ.`, so `/queue/orders` has `/queue/DLQ.orders`). A dead-letter
    /// queue has no dead letters of its own: its messages are redelivered for ever, and
    /// dropped when they expire.
    pub(crate) dead_letter_prefix: String,
    /// Time to live of the messages of queues matching a pattern, first match first (default
    /// none): a message gets an `expires` header that far ahead when it is taken, as if its
    /// sender had set one.
    pub(crate) queue_ttl: Vec<(crate::Pattern, Duration)>,
    /// Whether expired queue messages move to the dead-letter queue (default, as ActiveMQ
    /// does) or are dropped.
    pub(crate) dead_letter_expired: bool,
    /// Topics matching a pattern keep a history of their last messages, at most this many and
    /// this old, first match first (default: none).
    pub(crate) topic_history: Vec<(crate::Pattern, usize, Duration)>,
    /// Most octets all topic histories hold together (default 64 MiB).
    pub(crate) max_history_bytes: usize,
    /// Most sessions one user may hold at once (default 100).
    pub(crate) max_sessions_per_user: usize,
    /// This broker's place among the shards of one server (default: shard 0 of 1). See
    /// [`Broker`](crate::Broker#shards).
    pub(crate) shard: Shard,
}

/// Which queue messages outlive the broker: written to its journal before their RECEIPT, and
/// rebuilt from it on start. Topic messages are never kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Persistence {
    /// None: the broker keeps messages in memory only.
    #[default]
    Off,
    /// Queue messages sent with the header `persistent:true`, as RabbitMQ and ActiveMQ take it.
    Marked,
    /// Every queue message.
    Every,
}

impl Persistence {
    /// Whether a queue message with these headers is kept.
    pub(crate) fn keeps(self, persistent_header: Option<&str>) -> bool {
        match self {
            Persistence::Off => false,
            Persistence::Marked => persistent_header == Some("true"),
            Persistence::Every => true,
        }
    }
}

/// A broker's place among the shards of one server: its index, and how many there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards there are, at least 1.
    pub count: usize,
}

impl Shard {
    /// The `n`th id (from 1) a shard hands out, unique among all shards: shard `i` of `c`
    /// hands out `i + 1`, `i + 1 + c`, `i + 1 + 2c`...
    pub(crate) fn id(self, n: u64) -> u64 {
        (n - 1) * self.count as u64 + self.index as u64 + 1
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            session: ServerConfig::default(),
            broker_prefixes: ["/topic/", "/queue/", "/chat/"].map(String::from).to_vec(),
            app_prefixes: vec!["/app/".into()],
            queue_prefix: "/queue/".into(),
            user_prefix: "/user/".into(),
            max_destination_length: 1024,
            max_destination_segments: 64,
            max_queue_bytes: 64 * 1024 * 1024,
            max_total_queue_bytes: 512 * 1024 * 1024,
            prefetch_auto: 256,
            prefetch_client: 64,
            max_prefetch: 65_535,
            max_outbound_bytes: 4 * 1024 * 1024,
            login_failure_delay: Duration::from_secs(1),
            drop_unserved_sends: false,
            relay: false,
            persistence: Persistence::Off,
            max_redeliveries: Some(6),
            dead_letter_prefix: "/queue/DLQ.".into(),
            queue_ttl: Vec::new(),
            dead_letter_expired: true,
            topic_history: Vec::new(),
            max_history_bytes: 64 * 1024 * 1024,
            max_sessions_per_user: 100,
            shard: Shard { index: 0, count: 1 },
        }
    }
}

impl BrokerConfig {
    /// Sets [`session`](Self::session).
    #[must_use]
    pub fn with_session(mut self, session: ServerConfig) -> Self {
        self.session = session;
        self
    }

    /// Every connection's session settings (heart-beats, frame limits, versions, subscriptions
    /// and transactions per connection).
    pub fn session(&self) -> &ServerConfig {
        &self.session
    }

    /// Sets [`broker_prefixes`](Self::broker_prefixes).
    #[must_use]
    pub fn with_broker_prefixes(
        mut self,
        broker_prefixes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.broker_prefixes = broker_prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Destinations the broker serves (default `/topic/`, `/queue/`, `/chat/`): clients may
    /// subscribe and send only under these, the application and user prefixes aside.
    pub fn broker_prefixes(&self) -> &[String] {
        &self.broker_prefixes
    }

    /// Sets [`app_prefixes`](Self::app_prefixes).
    #[must_use]
    pub fn with_app_prefixes(
        mut self,
        app_prefixes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.app_prefixes = app_prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Destinations whose SENDs go to application code (default `/app/`).
    pub fn app_prefixes(&self) -> &[String] {
        &self.app_prefixes
    }

    /// Sets [`queue_prefix`](Self::queue_prefix).
    #[must_use]
    pub fn with_queue_prefix(mut self, queue_prefix: impl Into<String>) -> Self {
        self.queue_prefix = queue_prefix.into();
        self
    }

    /// Broker destinations with queue semantics (default `/queue/`); the others are topics.
    pub fn queue_prefix(&self) -> &str {
        &self.queue_prefix
    }

    /// Sets [`user_prefix`](Self::user_prefix).
    #[must_use]
    pub fn with_user_prefix(mut self, user_prefix: impl Into<String>) -> Self {
        self.user_prefix = user_prefix.into();
        self
    }

    /// User destinations (default `/user/`): a SUBSCRIBE to `/user/queue/x` is that session's
    /// own, reached only by the application ([`Broker::reply`](crate::Broker::reply)); clients
    /// may not SEND there, nor subscribe with patterns.
    pub fn user_prefix(&self) -> &str {
        &self.user_prefix
    }

    /// Sets [`max_destination_length`](Self::max_destination_length).
    #[must_use]
    pub fn with_max_destination_length(mut self, max_destination_length: usize) -> Self {
        self.max_destination_length = max_destination_length;
        self
    }

    /// Longest destination, in octets (default 1024). A longer one is an ERROR.
    pub fn max_destination_length(&self) -> usize {
        self.max_destination_length
    }

    /// Sets [`max_destination_segments`](Self::max_destination_segments).
    #[must_use]
    pub fn with_max_destination_segments(mut self, max_destination_segments: usize) -> Self {
        self.max_destination_segments = max_destination_segments;
        self
    }

    /// Most `/`-separated segments in a destination (default 64). More is an ERROR.
    pub fn max_destination_segments(&self) -> usize {
        self.max_destination_segments
    }

    /// Sets [`max_queue_bytes`](Self::max_queue_bytes).
    #[must_use]
    pub fn with_max_queue_bytes(mut self, max_queue_bytes: usize) -> Self {
        self.max_queue_bytes = max_queue_bytes;
        self
    }

    /// Most octets one queue holds, waiting and unacknowledged (default 64 MiB). Past it, a
    /// connection that sends to the queue is flow-controlled: its message is kept, and its
    /// input is not read until the queue is back under the limit.
    pub fn max_queue_bytes(&self) -> usize {
        self.max_queue_bytes
    }

    /// Sets [`max_total_queue_bytes`](Self::max_total_queue_bytes).
    #[must_use]
    pub fn with_max_total_queue_bytes(mut self, max_total_queue_bytes: usize) -> Self {
        self.max_total_queue_bytes = max_total_queue_bytes;
        self
    }

    /// Most octets all queues hold together (default 512 MiB), with the same flow control.
    pub fn max_total_queue_bytes(&self) -> usize {
        self.max_total_queue_bytes
    }

    /// Sets [`prefetch_auto`](Self::prefetch_auto).
    #[must_use]
    pub fn with_prefetch_auto(mut self, prefetch_auto: usize) -> Self {
        self.prefetch_auto = prefetch_auto;
        self
    }

    /// Queue messages an auto-ack subscription may have in flight, handed to the connection
    /// and not yet written (default 256).
    pub fn prefetch_auto(&self) -> usize {
        self.prefetch_auto
    }

    /// Sets [`prefetch_client`](Self::prefetch_client).
    #[must_use]
    pub fn with_prefetch_client(mut self, prefetch_client: usize) -> Self {
        self.prefetch_client = prefetch_client;
        self
    }

    /// Messages a `client` or `client-individual` subscription may hold unacknowledged
    /// (default 64). A queue consumer at its window gets no more until it acknowledges; a
    /// topic subscriber past it is closed with an ERROR.
    pub fn prefetch_client(&self) -> usize {
        self.prefetch_client
    }

    /// Sets [`max_prefetch`](Self::max_prefetch).
    #[must_use]
    pub fn with_max_prefetch(mut self, max_prefetch: usize) -> Self {
        self.max_prefetch = max_prefetch;
        self
    }

    /// The largest window a SUBSCRIBE may ask for with RabbitMQ's `prefetch-count` or
    /// ActiveMQ's `activemq.prefetchSize` header (default 65535); larger values are cut to it.
    pub fn max_prefetch(&self) -> usize {
        self.max_prefetch
    }

    /// Sets [`max_outbound_bytes`](Self::max_outbound_bytes).
    #[must_use]
    pub fn with_max_outbound_bytes(mut self, max_outbound_bytes: usize) -> Self {
        self.max_outbound_bytes = max_outbound_bytes;
        self
    }

    /// Queue messages are handed to a connection only while fewer than this many octets wait
    /// to be written to it (default 4 MiB), so that a queue backlog never makes a consumer
    /// look slow. A driver closing slow consumers should allow at least this much.
    pub fn max_outbound_bytes(&self) -> usize {
        self.max_outbound_bytes
    }

    /// Sets [`login_failure_delay`](Self::login_failure_delay).
    #[must_use]
    pub fn with_login_failure_delay(mut self, login_failure_delay: Duration) -> Self {
        self.login_failure_delay = login_failure_delay;
        self
    }

    /// How long a refused login waits for its ERROR (default 1 s), to slow down guessing.
    pub fn login_failure_delay(&self) -> Duration {
        self.login_failure_delay
    }

    /// Sets [`drop_unserved_sends`](Self::drop_unserved_sends).
    #[must_use]
    pub fn with_drop_unserved_sends(mut self, drop_unserved_sends: bool) -> Self {
        self.drop_unserved_sends = drop_unserved_sends;
        self
    }

    /// Whether a SEND to a destination nobody serves is dropped with a
    /// [`BrokerEvent::Dropped`](crate::BrokerEvent::Dropped), as Spring's simple broker does,
    /// rather than refused with an ERROR before its RECEIPT (default: refused).
    pub fn drop_unserved_sends(&self) -> bool {
        self.drop_unserved_sends
    }

    /// Sets [`relay`](Self::relay).
    #[must_use]
    pub fn with_relay(mut self, relay: bool) -> Self {
        self.relay = relay;
        self
    }

    /// Sets [`persistence`](Self::persistence).
    #[must_use]
    pub fn with_persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// Which queue messages are written to the journal before the broker answers for them.
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// Sets [`max_redeliveries`](Self::max_redeliveries).
    #[must_use]
    pub fn with_max_redeliveries(mut self, redeliveries: Option<u32>) -> Self {
        self.max_redeliveries = redeliveries;
        self
    }

    /// How many times a queue message may be redelivered (after a NACK, or a consumer that
    /// went away holding it) before it moves to its dead-letter queue (default 6, as
    /// ActiveMQ's redelivery policy); `None` redelivers for ever.
    pub fn max_redeliveries(&self) -> Option<u32> {
        self.max_redeliveries
    }

    /// Sets [`dead_letter_prefix`](Self::dead_letter_prefix).
    #[must_use]
    pub fn with_dead_letter_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.dead_letter_prefix = prefix.into();
        self
    }

    /// Where a queue's dead letters go: this prefix and the queue's name after the queue
    /// prefix (default `/queue/DLQ.`, so `/queue/orders` has `/queue/DLQ.orders`), with the
    /// headers `dead-letter-reason` (`redelivered` or `expired`) and `dead-letter-from` (the
    /// queue). A dead-letter queue has no dead letters of its own: its messages are
    /// redelivered for ever, and dropped when they expire.
    pub fn dead_letter_prefix(&self) -> &str {
        &self.dead_letter_prefix
    }

    /// Gives the messages of queues matching `pattern` (`*` one segment, `**` any) a time to
    /// live, ahead of the patterns given after it: a message gets an `expires` header (Unix
    /// time in milliseconds, as ActiveMQ's) that far ahead when the queue takes it, unless its
    /// sender set one. Expiry needs the wall clock: see
    /// [`Broker::set_wall_clock`](crate::Broker::set_wall_clock).
    #[must_use]
    pub fn with_queue_ttl(mut self, pattern: &str, ttl: Duration) -> Self {
        self.queue_ttl.push((crate::Pattern::new(pattern), ttl));
        self
    }

    /// Makes topics matching `pattern` keep a history of their last messages, at most `count`
    /// of them and none older than `age`, so that a client back from a short disconnect gets
    /// what it missed (ahead of the patterns given after it; default: no topic keeps one).
    ///
    /// Every MESSAGE of such a topic carries its `position` (a number that grows with each
    /// message of the topic, and across restarts); a SUBSCRIBE with `after-position:N` first
    /// gets every kept message after position `N`, in order, then the new ones. Its RECEIPT,
    /// if it asked for one, says `recovered:true`, or `recovered:false` when the history no
    /// longer reaches back that far (or the position is unknown): then what it got is only
    /// what was kept.
    #[must_use]
    pub fn with_topic_history(mut self, pattern: &str, count: usize, age: Duration) -> Self {
        self.topic_history
            .push((crate::Pattern::new(pattern), count, age));
        self
    }

    /// Sets [`max_sessions_per_user`](Self::max_sessions_per_user).
    #[must_use]
    pub fn with_max_sessions_per_user(mut self, sessions: usize) -> Self {
        self.max_sessions_per_user = sessions.max(1);
        self
    }

    /// Most sessions one user may hold at once (default 100, more than one person opens):
    /// a login past it is refused with an ERROR naming the limit, and counted
    /// ([`BrokerStats`](crate::BrokerStats)'s `user_limit_refused`). Anonymous sessions
    /// (no user) are bounded by the connection limits alone.
    pub fn max_sessions_per_user(&self) -> usize {
        self.max_sessions_per_user
    }

    /// Sets [`max_history_bytes`](Self::max_history_bytes).
    #[must_use]
    pub fn with_max_history_bytes(mut self, bytes: usize) -> Self {
        self.max_history_bytes = bytes;
        self
    }

    /// Most octets all topic histories hold together (default 64 MiB): a topic that would
    /// pass it forgets its own oldest messages first, and keeps none rather than take from
    /// another's.
    pub fn max_history_bytes(&self) -> usize {
        self.max_history_bytes
    }

    /// Sets [`dead_letter_expired`](Self::dead_letter_expired).
    #[must_use]
    pub fn with_dead_letter_expired(mut self, dead_letter: bool) -> Self {
        self.dead_letter_expired = dead_letter;
        self
    }

    /// Whether expired queue messages move to the dead-letter queue (default, as ActiveMQ
    /// does) or are dropped.
    pub fn dead_letter_expired(&self) -> bool {
        self.dead_letter_expired
    }

    /// Whether broker destinations are served by another broker, through a relay the driver
    /// runs (default: no, they are served here). See [`Broker`](crate::Broker#relay-mode).
    pub fn relay(&self) -> bool {
        self.relay
    }

    /// Sets [`shard`](Self::shard): this broker is shard `index` of `count`.
    ///
    /// # Panics
    /// If `count` is 0 or `index` is not below it.
    #[must_use]
    pub fn with_shard(mut self, index: usize, count: usize) -> Self {
        assert!(index < count, "shard {index} of {count}");
        self.shard = Shard { index, count };
        self
    }

    /// This broker's place among the shards of one server (default: shard 0 of 1). See
    /// [`Broker`](crate::Broker#shards).
    pub fn shard(&self) -> Shard {
        self.shard
    }
}

/// Decides who may connect, and as whom, and who may subscribe and send. Every method allows
/// by default. It is shared by every connection, so it takes `&self`; keep any state behind a
/// lock. It runs on the broker's own thread of control: keep it quick.
pub trait Authorizer: Send + Sync {
    /// Whether a CONNECT is accepted, and as which user: `Ok(Some(user))` makes the session
    /// `user`'s (CONNECTED carries `user-name:user`, and [`Broker::send_to_user`] reaches it),
    /// `Ok(None)` leaves it anonymous. An `Err`'s message is the ERROR's, sent after the
    /// broker's login failure delay. By default, the session is the CONNECT's `login`'s.
    ///
    /// [`Broker::send_to_user`]: crate::Broker::send_to_user
    fn connect(&self, request: &ConnectRequest) -> Result<Option<String>, Refused> {
        Ok(request.login.clone())
    }

    /// Whether CONNECTs are decided off the broker (an async login): instead of calling
    /// [`connect`](Self::connect), the broker reports [`BrokerEvent::Login`] and the session
    /// waits, within its CONNECT deadline, for [`Broker::log_in`]; the broker serves the other
    /// sessions meanwhile. Default `false`.
    ///
    /// [`BrokerEvent::Login`]: crate::BrokerEvent::Login
    /// [`Broker::log_in`]: crate::Broker::log_in
    fn decides_later(&self) -> bool {
        false
    }

    /// Whether `user` may subscribe to `destination` with `frame` (within the broker, user or
    /// application prefixes).
    fn subscribe(
        &self,
        user: Option<&str>,
        destination: &str,
        frame: &FrameBuf,
    ) -> Result<(), Refused> {
        let _ = (user, destination, frame);
        Ok(())
    }

    /// Whether `user` may send `frame` to `destination` (within the broker or application
    /// prefixes), checked as the SEND arrives, before its RECEIPT.
    fn send(&self, user: Option<&str>, destination: &str, frame: &FrameBuf) -> Result<(), Refused> {
        let _ = (user, destination, frame);
        Ok(())
    }
}

/// Allows everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {}
