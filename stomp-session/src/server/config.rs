//! How a server session is set up: [`ServerConfig`], and [`SendCheck`], the hook that judges
//! each SEND.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use stomp_codec::{FrameBuf, Limits, Version};

use crate::error::Refused;
use crate::heartbeat::HeartBeat;

/// Decides, as each SEND arrives (inside a transaction too), whether the client may send to
/// its destination. A refusal is an ERROR carrying its message (and the SEND's `receipt` as
/// `receipt-id`), before any RECEIPT, and then the close.
pub trait SendCheck: Send + Sync {
    /// `Ok` if the client acting as `user` (its login, unless the application named another
    /// user with [`ServerSession::set_user`](crate::ServerSession::set_user)) may send `frame` to
    /// `destination`.
    fn check(&self, user: Option<&str>, destination: &str, frame: &FrameBuf)
    -> Result<(), Refused>;
}

/// How a server session treats its client.
#[derive(Clone)]
pub struct ServerConfig {
    /// The versions this server speaks; the highest one the client also offers is chosen.
    pub(super) versions: Vec<Version>,
    /// The server's `heart-beat` offer: the period it can send at, the period it wants.
    pub(super) heart_beat: HeartBeat,
    /// Silence from the client longer than this many receive periods closes the session.
    pub(super) heart_beat_margin: f64,
    /// A connection that sends no CONNECT within this time is closed.
    pub(super) connect_timeout: Duration,
    /// The `server` header of CONNECTED, if any.
    pub(super) server: Option<String>,
    /// Limits on frames from the client.
    pub(super) limits: Limits,
    /// Whether each SUBSCRIBE waits for [`ServerSession::confirm_subscription`] or
    /// [`ServerSession::refuse_subscription`] before it takes effect and its RECEIPT is sent, so
    /// that the application can refuse destinations it does not serve. Later frames wait too.
    pub(super) confirm_subscriptions: bool,
    /// Whether the RECEIPT of a SEND outside a transaction waits for
    /// [`ServerSession::send_receipt_for`], as when the message is passed on to another broker.
    pub(super) defer_send_receipts: bool,
    /// Decides each SEND's destination before it takes effect; `None` allows every one.
    pub(super) send_check: Option<Arc<dyn SendCheck>>,
    /// Most subscriptions one connection may hold; one more is an ERROR.
    pub(super) max_subscriptions: usize,
    /// Most transactions one connection may have open at once; one more is an ERROR.
    pub(super) max_transactions: usize,
    /// Most SEND, ACK and NACK frames one transaction may hold until its COMMIT.
    pub(super) max_transaction_frames: usize,
    /// Most octets (heads and bodies) one transaction may hold until its COMMIT.
    pub(super) max_transaction_bytes: usize,
    /// Whether a 1.1 or 1.2 CONNECT without `host` is refused, as the specification says.
    /// Off by default: stompjs never sends `host` and stomp.py only with a virtual host, and
    /// RabbitMQ, ActiveMQ and Spring accept such a CONNECT.
    pub(super) require_host: bool,
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
    /// CONNECT, `host` not required, the default limits; at most 200,000 subscriptions and 16 open
    /// transactions per connection, each transaction holding at most 10,000 frames and 16 MiB.
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

    /// Whether each SUBSCRIBE waits for
    /// [`ServerSession::confirm_subscription`](crate::ServerSession::confirm_subscription) or
    /// [`ServerSession::refuse_subscription`](crate::ServerSession::refuse_subscription) before it
    /// takes effect and its RECEIPT is sent, so that the application can refuse destinations it
    /// does not serve. Later frames wait too.
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
    /// calls [`ServerSession::send_receipt_for`](crate::ServerSession::send_receipt_for) (default:
    /// no, it is sent once the SEND is acted on): a relay answers once the other broker took the
    /// message. A SEND inside a transaction is answered as it arrives, as ever (1.2 "RECEIPT").
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
