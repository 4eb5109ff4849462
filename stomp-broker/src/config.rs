//! What the broker serves, its limits, and who may do what.

use std::time::Duration;

use stomp_session::{ConnectRequest, FrameBuf, ServerConfig};

/// What the broker serves and the bounds it keeps. Every limit has a default chosen for a
/// server on one machine; each says what happens when it is reached.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Every connection's session settings (heart-beats, frame limits, versions, subscriptions
    /// and transactions per connection).
    pub session: ServerConfig,
    /// Destinations the broker serves (default `/topic/`, `/queue/`, `/chat/`): clients may
    /// subscribe and send only under these, the application and user prefixes aside.
    pub broker_prefixes: Vec<String>,
    /// Destinations whose SENDs go to application code (default `/app/`).
    pub app_prefixes: Vec<String>,
    /// Broker destinations with queue semantics (default `/queue/`); the others are topics.
    pub queue_prefix: String,
    /// User destinations (default `/user/`): a SUBSCRIBE to `/user/queue/x` is that session's
    /// own, reached only by the application ([`Broker::reply`](crate::Broker::reply)); clients
    /// may not SEND there, nor subscribe with patterns.
    pub user_prefix: String,
    /// Longest destination, in octets (default 1024). A longer one is an ERROR.
    pub max_destination_length: usize,
    /// Most `/`-separated segments in a destination (default 64). More is an ERROR.
    pub max_destination_segments: usize,
    /// Most octets one queue holds, waiting and unacknowledged (default 64 MiB). Past it, a
    /// connection that sends to the queue is flow-controlled: its message is kept, and its
    /// input is not read until the queue is back under the limit.
    pub max_queue_bytes: usize,
    /// Most octets all queues hold together (default 512 MiB), with the same flow control.
    pub max_total_queue_bytes: usize,
    /// Queue messages an auto-ack subscription may have in flight, handed to the connection
    /// and not yet written (default 256).
    pub prefetch_auto: usize,
    /// Messages a `client` or `client-individual` subscription may hold unacknowledged
    /// (default 64). A queue consumer at its window gets no more until it acknowledges; a
    /// topic subscriber past it is closed with an ERROR.
    pub prefetch_client: usize,
    /// The largest window a SUBSCRIBE may ask for with RabbitMQ's `prefetch-count` or
    /// ActiveMQ's `activemq.prefetchSize` header (default 65535); larger values are cut to it.
    pub max_prefetch: usize,
    /// Queue messages are handed to a connection only while fewer than this many octets wait
    /// to be written to it (default 4 MiB), so that a queue backlog never makes a consumer
    /// look slow. A driver closing slow consumers should allow at least this much.
    pub max_outbound_bytes: usize,
    /// How long a refused login waits for its ERROR (default 1 s), to slow down guessing.
    pub login_failure_delay: Duration,
    /// Whether a SEND to a destination nobody serves is dropped with a
    /// [`BrokerEvent::Dropped`](crate::BrokerEvent::Dropped), as Spring's simple broker does,
    /// rather than refused with an ERROR before its RECEIPT (default: refused).
    pub drop_unserved_sends: bool,
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
        }
    }
}

/// Decides who may connect, and as whom, and who may subscribe and send. Every method allows
/// by default. It is shared by every connection, so it takes `&self`; keep any state behind a
/// lock. It runs on the broker's own thread of control: keep it quick.
pub trait Authorizer: Send + Sync {
    /// Whether a CONNECT is accepted, and as which user: `Ok(Some(user))` makes the session
    /// `user`'s (CONNECTED carries `user-name:user`, and [`Broker::send_to_user`] reaches it),
    /// `Ok(None)` leaves it anonymous. `Err` carries the ERROR's message, sent after the
    /// broker's login failure delay. By default, the session is the CONNECT's `login`'s.
    ///
    /// [`Broker::send_to_user`]: crate::Broker::send_to_user
    fn connect(&self, request: &ConnectRequest) -> Result<Option<String>, String> {
        Ok(request.login.clone())
    }

    /// Whether `user` may subscribe to `destination` with `frame` (within the broker, user or
    /// application prefixes).
    fn subscribe(
        &self,
        user: Option<&str>,
        destination: &str,
        frame: &FrameBuf,
    ) -> Result<(), String> {
        let _ = (user, destination, frame);
        Ok(())
    }

    /// Whether `user` may send `frame` to `destination` (within the broker or application
    /// prefixes), checked as the SEND arrives, before its RECEIPT.
    fn send(&self, user: Option<&str>, destination: &str, frame: &FrameBuf) -> Result<(), String> {
        let _ = (user, destination, frame);
        Ok(())
    }
}

/// Allows everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {}
