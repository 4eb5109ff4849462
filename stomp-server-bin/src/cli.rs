//! Command-line flags, each checked at start: a bad value exits with status 2 and says why.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use stomp_server::stomp_session::{HeartBeat, Limits};
use stomp_server::{
    AllowedOrigins, BrokerConfig, Persistence, RelayConfig, RelayUrlError, ServerConfig,
};

/// A STOMP 1.0/1.1/1.2 broker over TCP and WebSocket, with an in-memory broker for `/topic/`,
/// `/queue/` and `/chat/` destinations, user destinations under `/user/`, and a chat
/// application on `/app/`.
#[derive(Parser, Debug, Clone)]
#[command(version, about, allow_negative_numbers = true)]
pub(crate) struct Args {
    /// Address for STOMP over TCP.
    #[arg(long, default_value = "127.0.0.1:61613")]
    pub(crate) tcp: SocketAddr,
    /// Address for HTTP: STOMP over WebSocket and the chat page at `/`.
    #[arg(long, default_value = "127.0.0.1:15674")]
    pub(crate) ws: SocketAddr,
    /// Address of a listener of its own for the Prometheus figures at `/metrics` (such as
    /// 127.0.0.1:15692); by default they are served nowhere, since they name queues and show
    /// traffic.
    #[arg(long)]
    pub(crate) metrics: Option<SocketAddr>,
    /// Serve `/metrics` on the public HTTP address (`--ws`) too.
    #[arg(long)]
    pub(crate) public_metrics: bool,
    /// A directory holding stompjs's `stomp.umd.min.js` (such as
    /// `node_modules/@stomp/stompjs/bundles`) for the chat page; without it the page loads
    /// stompjs from the jsDelivr CDN.
    #[arg(long)]
    pub(crate) stompjs: Option<std::path::PathBuf>,
    /// A PEM file of the server's certificate chain: with `--tls-key`, both listeners speak
    /// TLS (STOMP over TLS on `--tcp`, HTTPS and `wss://` on `--ws`).
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// A PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// Path of the WebSocket endpoint.
    #[arg(long, default_value = "/stomp")]
    pub(crate) ws_path: String,
    /// Destination prefixes the broker serves; clients may subscribe only under these.
    #[arg(long = "broker-prefix", default_values = ["/topic/", "/queue/", "/chat/"])]
    pub(crate) broker_prefixes: Vec<String>,
    /// Destination prefixes whose SENDs go to the application.
    #[arg(long = "app-prefix", default_values = ["/app/"])]
    pub(crate) app_prefixes: Vec<String>,
    /// Prefix of user destinations: a subscription there is the session's own, and only the
    /// application sends there.
    #[arg(long, default_value = "/user/")]
    pub(crate) user_prefix: String,
    /// The server's heart-beat offer: the period it can send at and the one it wants, in ms.
    #[arg(long, default_value = "10000,10000")]
    pub(crate) heart_beat: HeartBeat,
    /// Silence of this many heart-beat periods closes a connection (a number, at least 1).
    #[arg(long, default_value_t = 2.0, value_parser = parse_margin)]
    pub(crate) heart_beat_margin: f64,
    /// Most octets in one frame's body.
    #[arg(long, default_value_t = Limits::default().max_body(), value_parser = at_least_one)]
    pub(crate) max_body: usize,
    /// Most header lines in one frame.
    #[arg(long, default_value_t = Limits::default().max_headers(), value_parser = at_least_one)]
    pub(crate) max_headers: usize,
    /// Most octets in one frame's command and headers; also all a client may send before its
    /// CONNECT is accepted.
    #[arg(long, default_value_t = Limits::default().max_head_bytes(), value_parser = at_least_one)]
    pub(crate) max_head: usize,
    /// Most buffers waiting to be written to one connection; a consumer that falls further
    /// behind is closed with an ERROR.
    #[arg(long, default_value_t = 4096, value_parser = at_least_one)]
    pub(crate) max_outbound: usize,
    /// Most octets waiting to be written to one connection (one frame larger than this is
    /// still sent alone); a topic subscriber that falls further behind is closed with an
    /// ERROR. Queue consumers are fed only as fast as they take messages.
    #[arg(long, default_value_t = 4 * 1024 * 1024, value_parser = at_least_one)]
    pub(crate) max_outbound_bytes: usize,
    /// Seconds a write may make no progress before the connection is closed (a reader that
    /// stopped reading).
    #[arg(long, default_value_t = 10, value_parser = at_least_one_u64)]
    pub(crate) send_timeout: u64,
    /// Refuse a STOMP 1.1 or 1.2 CONNECT without a `host` header, as the specification says
    /// (by default it is accepted, as stompjs and stomp.py leave it out).
    #[arg(long)]
    pub(crate) require_host: bool,
    /// Drop a SEND to a destination nobody serves, with a warning, as Spring's simple broker
    /// does (by default it is refused with an ERROR before any RECEIPT).
    #[arg(long)]
    pub(crate) drop_unserved_sends: bool,
    /// Seconds between the summaries logged at info level (connections, subscriptions, queues,
    /// closes); connections' own events are logged at debug level.
    #[arg(long, default_value_t = 60, value_parser = at_least_one_u64)]
    pub(crate) summary_interval: u64,
    /// Broker tasks routing side by side, each with its share of the connections and the
    /// destinations (a number, at least 1): more than one for a machine with more cores than
    /// one task's routing keeps busy.
    #[arg(long, alias = "workers", default_value_t = 1, value_parser = at_least_one)]
    pub(crate) shards: usize,
    /// Let pages from this origin open STOMP over WebSocket too, as `scheme://host[:port]`
    /// (`https://app.example.com`), or with `*.` before the host for every subdomain
    /// (`https://*.example.com`); repeat for more. By default only the server's own pages
    /// (the `Origin` host and port equal to `Host`) may: a browser sends its user's cookies to
    /// any address a page asks for. Other origins get HTTP 403.
    #[arg(long = "allowed-origin")]
    pub(crate) allowed_origins: Vec<String>,
    /// Let pages from any origin open STOMP over WebSocket (the origin check is off).
    #[arg(long, conflicts_with = "allowed_origins")]
    pub(crate) allow_any_origin: bool,
    /// Refuse WebSocket upgrades without an `Origin` header (by default programs, which send
    /// none, are let through; browsers always send one).
    #[arg(long)]
    pub(crate) refuse_missing_origin: bool,
    /// Keep persistent queue messages in a journal in this directory (created if missing), so
    /// that they survive a restart or a crash: a SEND with `persistent:true` to a queue gets
    /// its RECEIPT once the message is synced to disk, and every queue is rebuilt on start.
    /// Without it, everything is kept in memory.
    #[arg(long)]
    pub(crate) data_dir: Option<std::path::PathBuf>,
    /// With --data-dir, most octets the journal may hold on disk: at the limit, publishers of
    /// persistent messages are flow-controlled until consumers catch up; nothing is dropped.
    #[arg(long, default_value_t = 4 << 30, value_parser = at_least_one_u64)]
    pub(crate) max_journal_bytes: u64,
    /// With --data-dir, keep every queue message, not only those sent with `persistent:true`.
    #[arg(long, requires = "data_dir")]
    pub(crate) persist_all: bool,
    /// Times a queue message may be redelivered (after a NACK, or a consumer that went away
    /// holding it) before it moves to the queue's dead letters; 0 redelivers for ever.
    #[arg(long, default_value_t = 6)]
    pub(crate) max_redeliveries: u32,
    /// Where a queue's dead letters go: this prefix and the queue's name after `/queue/`.
    #[arg(long, default_value_t = BrokerConfig::default().dead_letter_prefix().to_owned())]
    pub(crate) dead_letter_prefix: String,
    /// Time to live of the messages of the queues matching PATTERN (`*` one segment, `**` any),
    /// as PATTERN=SECONDS, such as /queue/jobs/**=3600; repeat for more, first match first.
    #[arg(long = "queue-ttl", value_parser = parse_ttl)]
    pub(crate) queue_ttl: Vec<(String, u64)>,
    /// Topics matching PATTERN keep their last COUNT messages, none older than SECONDS, as
    /// PATTERN=COUNT,SECONDS: each MESSAGE carries its `position`, and a SUBSCRIBE with
    /// `after-position:N` first gets what came after N (its RECEIPT says `recovered:true`, or
    /// false when the history no longer reaches back). Repeat for more, first match first;
    /// `none` keeps no history. By default the chat's rooms keep theirs, so that a page back
    /// from a cut connection or a reload shows what it missed.
    #[arg(long = "topic-history", value_parser = parse_history, default_value = "/chat/*=100,300")]
    pub(crate) topic_history: Vec<Option<(String, usize, u64)>>,
    /// Drop expired queue messages rather than move them to the dead letters.
    #[arg(long)]
    pub(crate) drop_expired: bool,
    /// Seconds a broker task may be away from its loop before it is reported stalled: an
    /// error in the log naming the shard and what it was serving, and `stomp_shard_stalled`
    /// in /metrics.
    #[arg(long, default_value_t = 5, value_parser = at_least_one_u64)]
    pub(crate) stall_timeout: u64,
    /// Seconds SIGINT or SIGTERM leaves clients to be written out and closed; the process
    /// ends then, even with a broker task stuck. A second signal ends it at once.
    #[arg(long, default_value_t = 5)]
    pub(crate) shutdown_grace: u64,
    /// Accept only this login, as `user:passcode`.
    #[arg(long, value_parser = parse_login)]
    pub(crate) login: Option<(String, String)>,
    /// Milliseconds a refused login waits for its ERROR.
    #[arg(long, default_value_t = 1000)]
    pub(crate) login_failure_delay: u64,
    /// Seconds a new connection has, from the moment it is accepted (TLS and WebSocket
    /// handshakes included), to send CONNECT.
    #[arg(long, default_value_t = 10, value_parser = at_least_one_u64)]
    pub(crate) connect_timeout: u64,
    /// Most connections open at once, TCP and WebSocket together; past it, new sockets are
    /// closed at once.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
    pub(crate) max_connections: usize,
    /// Most connections open at once from one peer address (past it: HTTP 503, or an ERROR
    /// over TCP, naming the limit).
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    pub(crate) max_connections_per_peer: usize,
    /// Most sessions one user may hold at once (past it, the login is refused with an ERROR
    /// naming the limit).
    #[arg(long, default_value_t = BrokerConfig::default().max_sessions_per_user(), value_parser = at_least_one)]
    pub(crate) max_sessions_per_user: usize,
    /// Most subscriptions one connection may hold.
    #[arg(long, default_value_t = ServerConfig::default().max_subscriptions(), value_parser = at_least_one)]
    pub(crate) max_subscriptions: usize,
    /// Most transactions one connection may have open at once.
    #[arg(long, default_value_t = ServerConfig::default().max_transactions(), value_parser = at_least_one)]
    pub(crate) max_transactions: usize,
    /// Most SEND, ACK and NACK frames one transaction may hold.
    #[arg(long, default_value_t = ServerConfig::default().max_transaction_frames(), value_parser = at_least_one)]
    pub(crate) max_transaction_frames: usize,
    /// Most octets one transaction may hold.
    #[arg(long, default_value_t = ServerConfig::default().max_transaction_bytes(), value_parser = at_least_one)]
    pub(crate) max_transaction_bytes: usize,
    /// Longest destination, in octets.
    #[arg(long, default_value_t = BrokerConfig::default().max_destination_length(), value_parser = at_least_one)]
    pub(crate) max_destination_length: usize,
    /// Most `/`-separated segments in a destination.
    #[arg(long, default_value_t = BrokerConfig::default().max_destination_segments(), value_parser = at_least_one)]
    pub(crate) max_destination_segments: usize,
    /// Most octets one queue holds; publishers to a full queue are not read until it drains.
    #[arg(long, default_value_t = BrokerConfig::default().max_queue_bytes(), value_parser = at_least_one)]
    pub(crate) max_queue_bytes: usize,
    /// Most octets all queues hold together, with the same flow control.
    #[arg(long, default_value_t = BrokerConfig::default().max_total_queue_bytes(), value_parser = at_least_one)]
    pub(crate) max_total_queue_bytes: usize,
    /// Queue messages an auto-ack subscription may have in flight (unless its SUBSCRIBE sets
    /// `prefetch-count` or `activemq.prefetchSize`).
    #[arg(long, default_value_t = BrokerConfig::default().prefetch_auto(), value_parser = at_least_one)]
    pub(crate) prefetch: usize,
    /// Messages a client-ack subscription may hold unacknowledged (unless its SUBSCRIBE sets
    /// `prefetch-count` or `activemq.prefetchSize`).
    #[arg(long, default_value_t = BrokerConfig::default().prefetch_client(), value_parser = at_least_one)]
    pub(crate) prefetch_client: usize,
    /// Relay the broker destinations to RabbitMQ or ActiveMQ at
    /// stomp://[login:passcode@]host:port[/vhost]; repeat for more addresses (failover).
    #[arg(long = "relay")]
    pub(crate) relay: Vec<String>,
    /// Relay mode: a local destination prefix and the broker's, as LOCAL=REMOTE (repeatable;
    /// `/chat/=/topic/chat.` is always there unless given another way).
    #[arg(long = "relay-map", value_parser = parse_mapping)]
    pub(crate) relay_map: Vec<(String, String)>,
    /// Relay mode: messages the broker may send each relayed subscription ahead of its client.
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    pub(crate) relay_prefetch: usize,
    /// Relay mode: broker connections for the topic subscriptions the sessions share, besides
    /// the system and users' connections (a session's SENDs and own subscriptions use one of
    /// its own).
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    pub(crate) relay_connections: usize,
    /// Relay mode: when a broker connection is lost, keep its sessions and restore their
    /// subscriptions once it is back, instead of closing them with an ERROR.
    #[arg(long)]
    pub(crate) relay_restore: bool,
}

fn parse_mapping(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((local, remote)) if !local.is_empty() && !remote.is_empty() => {
            Ok((local.to_owned(), remote.to_owned()))
        }
        _ => Err("must be LOCAL=REMOTE, such as /chat/=/topic/chat.".into()),
    }
}

fn parse_margin(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(margin) if margin.is_finite() && margin >= 1.0 => Ok(margin),
        _ => Err("must be a finite number of periods, at least 1".into()),
    }
}

fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a whole number, at least 1".into()),
    }
}

fn at_least_one_u64(value: &str) -> Result<u64, String> {
    at_least_one(value).map(|n| n as u64)
}

fn parse_history(value: &str) -> Result<Option<(String, usize, u64)>, String> {
    if value == "none" {
        return Ok(None);
    }
    let usage = || "must be PATTERN=COUNT,SECONDS, such as /chat/*=100,300, or none".to_owned();
    let (pattern, limits) = value.split_once('=').ok_or_else(usage)?;
    let (count, seconds) = limits.split_once(',').ok_or_else(usage)?;
    match (count.parse::<usize>(), seconds.parse::<u64>()) {
        (Ok(count), Ok(seconds)) if pattern.starts_with('/') && count > 0 && seconds > 0 => {
            Ok(Some((pattern.to_owned(), count, seconds)))
        }
        _ => Err(usage()),
    }
}

fn parse_ttl(value: &str) -> Result<(String, u64), String> {
    match value.split_once('=') {
        Some((pattern, seconds)) if pattern.starts_with('/') => match seconds.parse::<u64>() {
            Ok(seconds) if seconds > 0 => Ok((pattern.to_owned(), seconds)),
            _ => Err("the seconds must be a whole number, at least 1".into()),
        },
        _ => Err("must be PATTERN=SECONDS, such as /queue/jobs/**=3600".into()),
    }
}

fn parse_login(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((user, passcode)) if !user.is_empty() && !passcode.is_empty() => {
            Ok((user.to_owned(), passcode.to_owned()))
        }
        _ => Err("must be user:passcode, both non-empty".into()),
    }
}

impl Args {
    pub(crate) fn broker_config(&self) -> BrokerConfig {
        let limits = Limits::default()
            .with_max_body(self.max_body)
            .with_max_headers(self.max_headers)
            .with_max_head_bytes(self.max_head);
        let session = ServerConfig::default()
            .with_heart_beat(self.heart_beat)
            .with_heart_beat_margin(self.heart_beat_margin)
            .with_connect_timeout(self.connect_timeout())
            .with_server(format!("stomp-server/{}", env!("CARGO_PKG_VERSION")))
            .with_limits(limits)
            .with_max_subscriptions(self.max_subscriptions)
            .with_max_transactions(self.max_transactions)
            .with_max_transaction_frames(self.max_transaction_frames)
            .with_max_transaction_bytes(self.max_transaction_bytes)
            .with_require_host(self.require_host);
        let config = BrokerConfig::default()
            .with_session(session)
            .with_broker_prefixes(self.broker_prefixes.clone())
            .with_app_prefixes(self.app_prefixes.clone())
            .with_user_prefix(self.user_prefix.clone())
            .with_max_destination_length(self.max_destination_length)
            .with_max_destination_segments(self.max_destination_segments)
            .with_max_queue_bytes(self.max_queue_bytes)
            .with_max_total_queue_bytes(self.max_total_queue_bytes)
            .with_prefetch_auto(self.prefetch)
            .with_prefetch_client(self.prefetch_client)
            .with_max_outbound_bytes(self.max_outbound_bytes)
            .with_login_failure_delay(Duration::from_millis(self.login_failure_delay))
            .with_drop_unserved_sends(self.drop_unserved_sends)
            .with_persistence(match (&self.data_dir, self.persist_all) {
                (None, _) => Persistence::Off,
                (Some(_), false) => Persistence::Marked,
                (Some(_), true) => Persistence::Every,
            })
            .with_max_redeliveries(Some(self.max_redeliveries).filter(|n| *n > 0))
            .with_dead_letter_prefix(self.dead_letter_prefix.clone())
            .with_dead_letter_expired(!self.drop_expired)
            .with_max_sessions_per_user(self.max_sessions_per_user);
        let config = (self.queue_ttl.iter()).fold(config, |config, (pattern, seconds)| {
            config.with_queue_ttl(pattern, Duration::from_secs(*seconds))
        });
        let histories = self.topic_history.iter().flatten();
        histories.fold(config, |config, (pattern, count, seconds)| {
            config.with_topic_history(pattern, *count, Duration::from_secs(*seconds))
        })
    }

    /// Which pages may open STOMP over WebSocket.
    pub(crate) fn allowed_origins(&self) -> AllowedOrigins {
        let origins = if self.allow_any_origin {
            AllowedOrigins::any()
        } else {
            (self.allowed_origins.iter()).fold(AllowedOrigins::same_origin(), |o, a| o.allow(a))
        };
        if self.refuse_missing_origin {
            origins.refuse_missing()
        } else {
            origins
        }
    }

    /// The relay, if `--relay` was given.
    pub(crate) fn relay(&self) -> Result<Option<RelayConfig>, RelayUrlError> {
        let Some((first, rest)) = self.relay.split_first() else {
            return Ok(None);
        };
        let mut relay = RelayConfig::parse(first)?
            .prefetch(self.relay_prefetch as u32)
            .connections(self.relay_connections)
            .restore_subscriptions(self.relay_restore);
        for url in rest {
            relay = relay.failover(url)?;
        }
        for (local, remote) in &self.relay_map {
            relay = relay.map(local.as_str(), remote.as_str());
        }
        Ok(Some(relay))
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }

    pub(crate) fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout)
    }
}
