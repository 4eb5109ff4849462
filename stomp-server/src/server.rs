//! [`Server`]: the broker task, its transports and its application, started together.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{MethodRouter, get};
use stomp_broker::{Broker, BrokerConfig, Persistence};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::app::{Admission, App};
use crate::channel::ToHub;
use crate::connection::Settings;
use crate::handle::Handle;
use crate::hub::{Hub, HubSettings};
#[cfg(feature = "metrics")]
use crate::metrics;
use crate::origins::AllowedOrigins;
use crate::peer_slots::PeerSlots;
use crate::peers::Peers;
use crate::relay_bridge::RelayConfig;
use crate::stats::Refusals;
use crate::store::{self, Store};
#[cfg(feature = "tls")]
use crate::tls::Tls;
use crate::watchdog::{self, Progress};
use crate::{http, tcp, ws};

/// How a [`Server`] is set up: the broker's configuration, the application, and the bounds of
/// the transports. [`Server::builder`] starts one with every default.
#[derive(Debug)]
pub struct ServerBuilder {
    config: BrokerConfig,
    app: App,
    max_connections: usize,
    max_outbound: usize,
    send_timeout: Duration,
    summary_interval: Duration,
    relay: Option<RelayConfig>,
    shards: usize,
    stall_timeout: Duration,
    data_dir: Option<PathBuf>,
    max_journal_bytes: u64,
    origins: AllowedOrigins,
    max_connections_per_peer: usize,
}

impl ServerBuilder {
    /// The broker's configuration: destinations, sessions and every limit (default
    /// [`BrokerConfig::default`]).
    pub fn config(mut self, config: BrokerConfig) -> ServerBuilder {
        self.config = config;
        self
    }

    /// The application: its state, handlers, login and hooks (default: none, every login
    /// let in).
    pub fn app<S: Clone + Send + Sync + 'static>(mut self, app: App<S>) -> ServerBuilder {
        self.app = app.bind();
        self
    }

    /// Most STOMP connections open at once, TCP and WebSocket together (default 10,000); past
    /// it, new TCP sockets are closed at once and WebSocket upgrades refused with 503. The
    /// server's own HTTP listener keeps as many HTTP connections besides.
    pub fn max_connections(mut self, connections: usize) -> ServerBuilder {
        self.max_connections = connections.max(1);
        self
    }

    /// Most buffers waiting to be written to one connection (default 4096); a consumer that
    /// falls further behind is closed with an ERROR, as one past
    /// [`BrokerConfig::max_outbound_bytes`] octets is.
    pub fn max_outbound_buffers(mut self, buffers: usize) -> ServerBuilder {
        self.max_outbound = buffers.max(1);
        self
    }

    /// How long a write may make no progress before the connection is closed (default 10 s),
    /// as for a client that stopped reading.
    pub fn send_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.send_timeout = timeout;
        self
    }

    /// How often the summary (connections, subscriptions, queues, totals) is logged at info
    /// level (default 60 s).
    pub fn summary_interval(mut self, interval: Duration) -> ServerBuilder {
        self.summary_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Relays the broker destinations to RabbitMQ or ActiveMQ instead of serving them here, so
    /// that many nodes share them (Spring's broker relay); application destinations stay with
    /// the handlers, which publish through the relay.
    ///
    /// The connection model: the `auto` topic subscriptions of the node's sessions are one
    /// broker subscription per topic, multiplexed over [`RelayConfig::connections`] broker
    /// connections under the relay's own ids; what a session does alone (its SENDs, its queue
    /// and acknowledged subscriptions, `client-individual` at the broker with a
    /// `prefetch-count`, so that the broker sends more only as the client takes them) goes
    /// over a broker connection of its own, opened when first needed; the application's
    /// publishes and messages to users go over a system connection, and the watches of the
    /// users' destinations over one more. A broker ends a whole connection over one frame it
    /// refuses, so that a refused frame closes the client that sent it and nobody else (a
    /// topic subscription new to the node is tried on a connection of its own first). Every
    /// broker connection logs in with the relay's credentials and
    /// virtual host, keeps its own heart-beats (a session that only SENDs to `/app` needs
    /// nothing of the broker), and reconnects for ever with jittered backoff over the
    /// addresses. While one is down, relayed SUBSCRIBEs and SENDs are refused with an ERROR
    /// and [`Handle::publish`] fails with [`PublishError::BrokerUnavailable`]
    /// (`relay_available` in [`Handle::stats`] and `/metrics` says which). Once up, the
    /// system connection is no part of that: a publish the broker refuses (say, to a
    /// destination taken from a client) ends it until it reconnects, and meanwhile only the
    /// publishes fail, with [`PublishError::BrokerUnavailable`]; the sessions go on. A session whose
    /// broker connection is lost (or refuses it with an ERROR) is closed with an ERROR,
    /// unless [`RelayConfig::restore_subscriptions`].
    ///
    /// Messages to users ([`Handle::send_to_user`]) reach the user's sessions on this node at
    /// once, and those on other nodes through a per-user destination
    /// ([`RelayConfig::user_prefix`]) that each node with a session of the user subscribes to
    /// while it has one.
    ///
    /// [`PublishError::BrokerUnavailable`]: crate::PublishError::BrokerUnavailable
    #[cfg(feature = "relay")]
    pub fn relay(mut self, relay: RelayConfig) -> ServerBuilder {
        self.relay = Some(relay);
        self
    }

    /// Broker tasks routing side by side (default 1), for a server with more cores than one
    /// task's routing keeps busy. Connections are dealt to them in turn; each broker
    /// destination is owned by one of them, chosen by its name, which routes its messages: a
    /// topic's to every shard, each of which delivers to its own subscribers, a queue's to its
    /// consumers on any shard. Every subscriber of a destination gets its messages in one
    /// order, the owner's, in which each publisher's keep the order they were sent in
    /// (messages to different destinations may pass each other). Past 65,536 messages on
    /// their way between shards, clients' input is not read until half of them have arrived.
    /// In relay mode each shard is a node of the relay.
    #[must_use]
    pub fn shards(mut self, shards: usize) -> ServerBuilder {
        self.shards = shards.max(1);
        self
    }

    /// How long a broker task may be away from its loop before it counts as stalled
    /// (default 5 s): no client frame, handler or hook should hold it anywhere near that long.
    /// A stalled task is logged as an error naming its shard and what it was serving, is
    /// shown in [`Handle::stats`] and `/metrics` (`stomp_shard_stalled`), is not waited for
    /// by them, and [`Server::shutdown`] still ends within its grace period.
    #[must_use]
    pub fn stall_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.stall_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Keeps persistent queue messages in a journal in `dir` (created if missing), so that they
    /// survive a restart or a crash (default: none, everything in memory). Which messages are
    /// kept is [`BrokerConfig::with_persistence`]'s choice; with a data directory and no
    /// choice made, those sent with `persistent:true`, as RabbitMQ and ActiveMQ do.
    ///
    /// - A SEND's RECEIPT leaves only once its message is written and synced; a journal thread
    ///   syncs once for everything that came meanwhile (group commit), so that many
    ///   publishers share one sync.
    /// - Acknowledged messages are removed from the journal; once the log has grown past
    ///   64 MiB and four times what is live, the next log starts from a snapshot of the live
    ///   messages and the files before it are deleted. Every start compacts too.
    /// - On start every queue is rebuilt in order before a connection is taken; messages that
    ///   were delivered and not acknowledged come back marked `redelivered:true`. A record
    ///   cut short or corrupt at the end of the log (a write torn by a crash) is cut off, with
    ///   a warning saying how much.
    /// - A journal that cannot be written (a full disk, a failed sync) closes each connection
    ///   waiting for it with an ERROR saying its message was not stored: never a RECEIPT.
    ///
    /// With [`shards`](Self::shards) above 1, each shard keeps the journal of the queues it
    /// owns (in `dir/shard-N`), and a client on another shard waits for that shard's journal
    /// as it would for its own. A data directory keeps the number of shards it was made with:
    /// [`try_start`](Self::try_start) refuses another, since each queue's owner would change.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> ServerBuilder {
        self.data_dir = Some(dir.into());
        self
    }

    /// The web pages that may open STOMP over WebSocket on the [endpoint](Server::endpoint)
    /// (default [`AllowedOrigins::same_origin`]: the server's own pages, and clients that send
    /// no `Origin`). A browser opens a WebSocket to any address a page asks for, with that
    /// browser's cookies, so without this check any page could act as its user. A refused
    /// upgrade gets HTTP 403 with a body saying why, is counted in `/metrics`
    /// (`stomp_origins_refused_total`) and logged at debug level.
    #[must_use]
    pub fn allowed_origins(mut self, origins: AllowedOrigins) -> ServerBuilder {
        self.origins = origins;
        self
    }

    /// Most connections open at once from one peer address, TCP and WebSocket together
    /// (default 1000: more than a browser opens, and room for an office behind one address),
    /// so that one address cannot take every place of
    /// [`max_connections`](Self::max_connections). Past it, a WebSocket upgrade gets HTTP 503
    /// and a TCP connection an ERROR, each saying why; counted in `/metrics`
    /// (`stomp_peers_refused_total`). Sessions per user are bounded by
    /// [`BrokerConfig::with_max_sessions_per_user`].
    #[must_use]
    pub fn max_connections_per_peer(mut self, connections: usize) -> ServerBuilder {
        self.max_connections_per_peer = connections.max(1);
        self
    }

    /// Most octets the journal of a [`data_dir`](Self::data_dir) may hold on disk (default
    /// 4 GiB). At the limit, a connection that sends a persistent message is flow-controlled
    /// (its message is kept, its input not read) until consumers have taken enough for a
    /// compaction to bring the journal back under it; nothing is dropped, and `/metrics` shows
    /// `stomp_journal_bytes` and `stomp_journal_full`.
    #[must_use]
    pub fn max_journal_bytes(mut self, bytes: u64) -> ServerBuilder {
        self.max_journal_bytes = bytes.max(1);
        self
    }

    /// Starts the broker tasks on the current tokio runtime, as [`try_start`](Self::try_start)
    /// does.
    ///
    /// # Panics
    /// Outside a tokio runtime, and where [`try_start`](Self::try_start) returns an error:
    /// only with a [`data_dir`](Self::data_dir).
    pub fn start(self) -> Server {
        self.try_start()
            .unwrap_or_else(|error| panic!("stomp-server could not start: {error}"))
    }

    /// Starts the broker tasks on the current tokio runtime, after restoring the queues from
    /// the [`data_dir`](Self::data_dir) if there is one. Connections come once the server is
    /// given listeners ([`Server::serve_tcp`], [`Server::serve_http`]) or its
    /// [endpoint](Server::endpoint) is mounted in an axum router.
    ///
    /// # Errors
    /// The data directory cannot be read or written, a journal file is corrupt before its
    /// end, or the data directory was made with another number of shards.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn try_start(mut self) -> std::io::Result<Server> {
        if let Some(dir) = &self.data_dir {
            store::check_shards(dir, self.shards)?;
        }
        if self.data_dir.is_some() && self.config.persistence() == Persistence::Off {
            self.config = self.config.with_persistence(Persistence::Marked);
        }
        if self.relay.is_some() {
            self.config = self.config.with_relay(true);
        }
        let logins = Arc::new(Semaphore::new(self.app.login().map_or(1, |(_, n, _)| n)));
        let app = Arc::new(self.app);
        let admission = Admission {
            app: app.clone(),
            app_prefixes: self.config.app_prefixes().to_vec(),
        };
        let limits = self.config.session().limits();
        let connect_timeout = self.config.session().connect_timeout();
        let max_outbound_bytes = self.config.max_outbound_bytes();
        let shards = self.shards;
        let (senders, inboxes): (Vec<_>, Vec<_>) = (0..shards).map(|_| mpsc::channel(1024)).unzip();
        let hubs: Arc<[mpsc::Sender<ToHub>]> = senders.into();
        let progress: Arc<[Arc<Progress>]> =
            (0..shards).map(|_| Arc::new(Progress::new())).collect();
        watchdog::start(&progress, self.stall_timeout);
        let refusals = Arc::new(Refusals::default());
        let handle = Handle::new(hubs.clone(), self.relay.is_some(), progress.clone())
            .with_refusals(refusals.clone());
        let (peers, from_peers) = Peers::new(shards);
        let mut tasks = Vec::with_capacity(shards);
        let each = inboxes.into_iter().zip(peers).zip(from_peers).enumerate();
        for (index, ((inbox, peers), from_peers)) in each {
            let config = self.config.clone().with_shard(index, shards);
            let mut broker = Broker::with_authorizer(config, Box::new(admission.clone()));
            let store = match &self.data_dir {
                Some(dir) => {
                    let dir = store::shard_dir(dir, index, shards);
                    let limit = self.max_journal_bytes / shards as u64;
                    let inbox = hubs[index].clone();
                    let (store, recovery) = Store::open(&dir, limit, &mut broker, inbox)?;
                    tracing::info!(
                        dir = %dir.display(),
                        records = recovery.records,
                        messages = recovery.messages,
                        cut_octets = recovery.cut,
                        took_ms = recovery.took.as_millis() as u64,
                        "journal recovered"
                    );
                    Some(store)
                }
                None => None,
            };
            let settings = HubSettings {
                handle: handle.at(index),
                max_outbound_bytes,
                summary_every: self.summary_interval,
                relay: self.relay.clone(),
                peers,
                progress: progress[index].clone(),
                logins: logins.clone(),
                store,
            };
            let hub = Hub::new(broker, app.clone(), settings);
            tasks.push(tokio::spawn(hub.run(inbox, from_peers)));
        }
        let hub_tasks = tasks.iter().map(|t| t.abort_handle()).collect();
        let task = tokio::spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
        });
        let settings = Settings {
            hubs,
            opened: Arc::default(),
            queue: Hub::queue_size(self.max_outbound),
            send_timeout: self.send_timeout,
            connect_timeout,
            connections: Arc::new(Semaphore::new(self.max_connections)),
            // One STOMP frame at the limits: the largest a WebSocket message need carry.
            max_ws_message: limits
                .max_head_bytes()
                .saturating_add(limits.max_body())
                .saturating_add(2),
            max_preamble: limits.max_head_bytes(),
            origins: Arc::new(self.origins),
            refusals,
            peer_slots: Arc::new(PeerSlots::new(self.max_connections_per_peer)),
        };
        Ok(Server {
            handle,
            settings,
            max_connections: self.max_connections,
            task,
            hub_tasks,
        })
    }
}

/// A running STOMP server: the in-memory broker and the application, served over any number
/// of TCP listeners, WebSocket endpoints and axum routers.
///
/// ```no_run
/// use stomp_server::{App, Context, Failure, Message, Server};
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let app = App::new().message("/app/echo", |_: Context, message: Message| async move {
///     Ok::<_, Failure>(message.text()?.to_uppercase())
/// });
/// let server = Server::builder().app(app).start();
/// // STOMP over TCP, and an axum application with STOMP over WebSocket at /stomp.
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:61613").await?;
/// tokio::spawn(server.serve_tcp(tcp));
/// let router = axum::Router::new()
///     .route("/hello", axum::routing::get(|| async { "hello" }))
///     .route("/stomp", server.endpoint());
/// let http = tokio::net::TcpListener::bind("127.0.0.1:15674").await?;
/// axum::serve(http, router).await
/// # }
/// ```
pub struct Server {
    handle: Handle,
    settings: Settings,
    max_connections: usize,
    task: JoinHandle<()>,
    /// Each broker task, to cancel past the shutdown's grace.
    hub_tasks: Vec<tokio::task::AbortHandle>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with every default: [`BrokerConfig::default`], an empty [`App`], 10,000
    /// connections.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: BrokerConfig::default(),
            app: App::new(),
            max_connections: 10_000,
            max_outbound: 4096,
            send_timeout: Duration::from_secs(10),
            summary_interval: Duration::from_secs(60),
            relay: None,
            shards: 1,
            stall_timeout: Duration::from_secs(5),
            data_dir: None,
            max_journal_bytes: 4 << 30,
            origins: AllowedOrigins::same_origin(),
            max_connections_per_peer: 1000,
        }
    }

    /// A connection to the server in memory (no socket, no port), served as a TCP one is:
    /// what tests of an application hand a client, as axum's `oneshot` does for HTTP
    /// (`stomp_tokio::Client::builder("local").connect_with(server.connect_local()?)`). It
    /// counts under the connection limit; past it, the error says so.
    pub fn connect_local(&self) -> std::io::Result<tokio::io::DuplexStream> {
        tcp::serve_local(&self.settings)
    }

    /// The way to publish and send to users from anywhere in the application.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The STOMP-over-WebSocket endpoint, to mount as a route of any axum router
    /// (`.route("/stomp", server.endpoint())`): it negotiates the `v12.stomp`, `v11.stomp` and
    /// `v10.stomp` sub-protocols and keeps the server's limits (message size, connections).
    /// Served by [`serve_http`](Self::serve_http), the CONNECT deadline counts from the TCP
    /// accept, the handshake included; under `axum::serve`, from the upgrade.
    pub fn endpoint<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        get(ws::upgrade).with_state(self.settings.clone())
    }

    /// The server's figures in the Prometheus text format, to mount as a route
    /// (`.route("/metrics", server.metrics())`): sessions (open, opened, closed, closed
    /// abnormally), frames in and out, deliveries, slow consumers closed, subscriptions,
    /// queues and their depths.
    #[cfg(feature = "metrics")]
    pub fn metrics<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        get(metrics::serve).with_state(self.handle.clone())
    }

    /// A router with the endpoint at `/stomp`, to serve as it is or merge into an
    /// application's router. The figures are not on it: they name queues and show traffic, so
    /// they go where the operator chooses ([`metrics_router`](Self::metrics_router),
    /// [`serve_metrics`](Self::serve_metrics)).
    pub fn router(&self) -> Router {
        Router::new().route("/stomp", self.endpoint())
    }

    /// A router with the figures at `/metrics`: merge it into a router on a private address,
    /// or into the public one when that is what the operator wants.
    #[cfg(feature = "metrics")]
    pub fn metrics_router(&self) -> Router {
        Router::new().route("/metrics", self.metrics())
    }

    /// Serves the figures at `/metrics` on a listener of their own, such as one on a private
    /// address, bounded as [`serve_http`](Self::serve_http) is.
    #[cfg(feature = "metrics")]
    pub fn serve_metrics(
        &self,
        listener: TcpListener,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.serve_http(listener, self.metrics_router())
    }

    /// Serves STOMP over TCP on `listener` until it fails (as when out of descriptors, it
    /// backs off and goes on). Each connection gets a task; Nagle is off.
    pub fn serve_tcp(&self, listener: TcpListener) -> impl Future<Output = ()> + Send + 'static {
        tcp::listen(listener, self.settings.clone(), None)
    }

    /// Serves STOMP over TLS on `listener` (clients' `tls://` or `ssl://`), as
    /// [`serve_tcp`](Self::serve_tcp) does over TCP; each handshake must be done within the
    /// session's connect timeout, which counts from the accept.
    #[cfg(feature = "tls")]
    pub fn serve_tls(
        &self,
        listener: TcpListener,
        tls: Tls,
    ) -> impl Future<Output = ()> + Send + 'static {
        tcp::listen(listener, self.settings.clone(), Some(tls))
    }

    /// Serves `router` over HTTP/1.1 on `listener` until it fails, as `axum::serve` would,
    /// bounded: at most [`max_connections`](ServerBuilder::max_connections) HTTP connections,
    /// and each request head (the WebSocket upgrade included) within the session's connect
    /// timeout.
    pub fn serve_http(
        &self,
        listener: TcpListener,
        router: Router,
    ) -> impl Future<Output = ()> + Send + 'static {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        http::serve(listener, router, limit, self.settings.connect_timeout, None)
    }

    /// Serves `router` over HTTPS on `listener`, bounded as
    /// [`serve_http`](Self::serve_http) is, the TLS handshake within the same deadline as the
    /// request head: STOMP over WebSocket is then `wss://`.
    #[cfg(feature = "tls")]
    pub fn serve_https(
        &self,
        listener: TcpListener,
        router: Router,
        tls: Tls,
    ) -> impl Future<Output = ()> + Send + 'static {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        http::serve(
            listener,
            router,
            limit,
            self.settings.connect_timeout,
            Some(tls),
        )
    }

    /// Closes every client with an ERROR after writing out what was queued for it, and waits
    /// (at most `grace`) for them to be gone and for the application to be done: the
    /// handlers already running finish, and every session's hook hears it ended
    /// ([`Ending::Shutdown`](crate::Ending::Shutdown)). Then the broker tasks end; what is
    /// still running at the deadline is cancelled. Listeners and routers still running refuse
    /// new clients with an ERROR.
    ///
    /// It returns within `grace` whatever happens, even when a broker task is stuck (see
    /// [`ServerBuilder::stall_timeout`]): that task's clients are not closed, and a program
    /// that then returns from `main` should not wait for the runtime's threads (the
    /// `stomp-server` binary shuts its runtime down with a timeout, and exits).
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        for hub in self.settings.hubs.iter() {
            // A stuck broker task takes nothing: its inbox fills, and it is not waited for.
            let _ = tokio::time::timeout_at(deadline, hub.send(ToHub::Shutdown)).await;
        }
        if tokio::time::timeout_at(deadline, self.task).await.is_err() {
            tracing::warn!("connections or handlers still running after {grace:?}: cancelled");
            // Dropping a broker task drops its sessions' workers, and cancels their handlers.
            for task in &self.hub_tasks {
                task.abort();
            }
        }
    }
}
