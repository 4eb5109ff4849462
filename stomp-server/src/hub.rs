//! The broker task: it owns the sans-IO broker, takes what connections receive, and hands each
//! connection its bytes to write, its next deadline and whether to read. A panic while
//! serving one connection closes that connection with an ERROR; the others go on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rustc_hash::FxHashMap;
use stomp_broker::{
    Broker, BrokerEvent, ConnectionId, ShardMessage, connection_named, session_name,
};
use stomp_session::CloseReason;
use tokio::sync::{Semaphore, mpsc};

use crate::app::App;
use crate::app_bridge::{AppBridge, Mapping};
use crate::budget::{Stage, Stamp, Turn};
use crate::channel::{Client, Command, Control, Out, SessionCommand, ToHub, Whom};
use crate::handle::Handle;
use crate::lifecycle::{Ending, SessionEvent};
use crate::peers::{FromPeer, Peers};
use crate::relay_bridge::{RelayBridge, RelayConfig};
use crate::stats::Stats;
use crate::store::Store;
use crate::watchdog::{Progress, Work};

/// Room a full outbound queue keeps for the final ERROR and a write report.
const HEADROOM: usize = 4;

/// Most inbox messages served before the connections are handed their output: enough to
/// gather a burst, few enough that output is not held back.
const BATCH_MESSAGES: usize = 64;

/// How often queues are swept for messages past their `expires` time.
const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The wall clock, for `expires` headers: milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

/// One broker task: the broker, its connections, and its bridges to the application, the
/// relay and the other shards.
pub(crate) struct Hub {
    broker: Broker,
    /// Keyed by ids the broker hands out, never chosen by a client: a fast hash is safe.
    clients: FxHashMap<ConnectionId, Client>,
    app: AppBridge,
    /// How often the summary is logged.
    summary_every: std::time::Duration,
    /// Octets waiting to be written past which a connection is closed as too slow.
    max_outbound_bytes: u64,
    shutting_down: bool,
    relay: Option<RelayBridge>,
    /// The other shards.
    peers: Peers,
    /// Too much is on its way between shards: clients' input is not read.
    congested: bool,
    /// What this task serves and since when, for the watchdog.
    progress: Arc<Progress>,
    /// The journal, with a data directory.
    store: Option<Store>,
}

/// How a broker task is set up, beside its broker and application.
pub(crate) struct HubSettings {
    /// The application's way in, answering this shard's connections; its inbox is this
    /// task's, for workers and the relay.
    pub(crate) handle: Handle,
    /// Octets waiting to be written past which a connection is closed as too slow.
    pub(crate) max_outbound_bytes: usize,
    pub(crate) summary_every: std::time::Duration,
    pub(crate) relay: Option<RelayConfig>,
    pub(crate) peers: Peers,
    /// What the task serves and since when, for the watchdog.
    pub(crate) progress: Arc<Progress>,
    /// One permit per login running, across shards.
    pub(crate) logins: Arc<Semaphore>,
    /// The journal, with a data directory.
    pub(crate) store: Option<Store>,
}

impl Hub {
    /// A broker task for `broker` and `app`.
    pub(crate) fn new(broker: Broker, app: Arc<App>, settings: HubSettings) -> Hub {
        let HubSettings {
            handle,
            max_outbound_bytes,
            summary_every,
            relay,
            peers,
            progress,
            logins,
            store,
        } = settings;
        let relay = relay.map(|config| RelayBridge::start(config, handle.inbox()));
        Hub {
            relay,
            broker,
            clients: FxHashMap::default(),
            app: AppBridge::new(app, handle, logins),
            summary_every,
            max_outbound_bytes: max_outbound_bytes as u64,
            shutting_down: false,
            peers,
            congested: false,
            progress,
            store,
        }
    }

    /// The outbound queue size each connection gets, its headroom included.
    pub(crate) fn queue_size(max_outbound: usize) -> usize {
        max_outbound + HEADROOM
    }

    /// Runs until shut down and every connection is closed; `from_peers` brings what the
    /// other shards send.
    pub(crate) async fn run(
        mut self,
        mut inbox: mpsc::Receiver<ToHub>,
        mut from_peers: mpsc::UnboundedReceiver<FromPeer>,
    ) {
        let mut summary = tokio::time::interval(self.summary_every);
        summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        summary.tick().await;
        let mut expiry = tokio::time::interval(EXPIRY_SWEEP);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        expiry.tick().await;
        let mut turn = Turn::default();
        loop {
            let message = tokio::select! {
                message = inbox.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
                Some(message) = from_peers.recv() => ToHub::Peer(message),
                _ = expiry.tick() => {
                    let now = Instant::now();
                    self.progress.busy(now);
                    self.progress.serving(Work::Expiry, None);
                    self.broker.set_wall_clock(now, unix_ms());
                    self.broker.expire(now);
                    self.dispatch_events(now);
                    if let Some(store) = self.store.as_mut() {
                        store.take_from(&mut self.broker, now);
                    }
                    self.hand_out(now);
                    self.progress.idle();
                    continue;
                }
                _ = summary.tick() => {
                    self.progress.busy(Instant::now());
                    self.progress.serving(Work::Summary, None);
                    self.log_summary();
                    self.progress.idle();
                    continue;
                }
            };
            let now = Instant::now();
            self.progress.busy(now);
            self.broker.set_wall_clock(now, unix_ms());
            // What else is waiting is served before anything is handed to the connections:
            // under load each connection then gets one buffer for many messages, not one each.
            let mut next = Some(message);
            let mut served = 0;
            while let Some(message) = next.take() {
                match &message {
                    ToHub::Input(_, bytes, read) => {
                        turn.take(Stage::ToBrokerTask, *read, bytes.len());
                    }
                    ToHub::Peer((_, messages, sent)) => {
                        let octets = messages.iter().map(ShardMessage::octets).sum();
                        turn.take(Stage::BetweenShards, *sent, octets);
                    }
                    _ => {}
                }
                self.serve(message, now);
                served += 1;
                if served < BATCH_MESSAGES {
                    // Taken in turns, so that neither clients nor shards wait behind the other.
                    let mut client = || inbox.try_recv().ok();
                    let mut peer = || from_peers.try_recv().ok().map(ToHub::Peer);
                    next = match served % 2 {
                        0 => client().or_else(peer),
                        _ => peer().or_else(client),
                    };
                }
            }
            self.progress.serving(Work::Output, None);
            if let Some(store) = self.store.as_mut() {
                store.take_from(&mut self.broker, now);
            }
            self.peers.flush();
            self.follow_congestion();
            if catch_unwind(AssertUnwindSafe(|| self.hand_out(now))).is_err() {
                self.recover(None, now);
            }
            turn.handed_out();
            self.progress.idle();
            // The application's last hooks and handlers may still ask the broker something.
            if self.shutting_down && self.clients.is_empty() && self.app.idle() {
                return;
            }
        }
    }

    /// Hands one message to the broker, and the broker's events to the application; a panic
    /// closes the connection it came from.
    fn serve(&mut self, message: ToHub, now: Instant) {
        let culprit = message.connection();
        self.progress.serving(message.work(), culprit);
        let served = catch_unwind(AssertUnwindSafe(|| {
            self.act_on(message, now);
            self.dispatch_events(now);
        }));
        if served.is_err() {
            self.recover(culprit, now);
        }
    }

    /// What the server holds and has done, at info level: per-connection events are logged at
    /// debug level only, so that connection churn does not flood the log.
    fn log_summary(&mut self) {
        let stats = self.broker.stats();
        tracing::info!(
            shard = self.peers.index(),
            figures = %stats,
            relay_available = self.relay.as_ref().map(RelayBridge::available),
            "summary"
        );
    }

    /// After a panic: the connection being served is closed with an ERROR, the rest go on.
    fn recover(&mut self, culprit: Option<ConnectionId>, now: Instant) {
        tracing::error!(
            connection = ?culprit,
            "panic while serving a connection: closing it"
        );
        if let Some(id) = culprit {
            let closed = catch_unwind(AssertUnwindSafe(|| {
                self.broker
                    .close_with_error(id, now, "internal server error");
            }));
            if closed.is_err() {
                if let Some(client) = self.clients.get_mut(&id) {
                    let _ = client.out.try_send(Out::Close);
                    client.closing = true;
                }
            }
        }
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.dispatch_events(now);
            self.hand_out(now);
        }));
    }

    /// Acts on one inbox message: into the broker, or answered.
    fn act_on(&mut self, message: ToHub, now: Instant) {
        match message {
            ToHub::Open {
                client,
                accepted_at,
                reply,
            } => {
                // The CONNECT deadline counts from the accept, handshakes included.
                let id = self.broker.open(accepted_at);
                let peer = client.remote.name();
                tracing::debug!(connection = %id, %peer, "connection opened");
                let mut client = client;
                client.session = Arc::from(session_name(id));
                self.clients.insert(id, client);
                let _ = reply.send(id);
                if self.shutting_down {
                    self.broker
                        .close_with_error(id, now, "server shutting down");
                }
            }
            ToHub::Input(id, bytes, _) => self.broker.handle_input(id, now, &bytes),
            ToHub::Eof(id) => self.broker.handle_eof(id, now),
            ToHub::Fail(id, refused) => {
                self.broker.close_with_error(id, now, refused.message());
            }
            ToHub::Timeout(id) => {
                // The connection's timer has fired and is unset: it gets its next deadline
                // whether or not that changed.
                if let Some(client) = self.clients.get_mut(&id) {
                    client.control.send_if_modified(|c| {
                        c.deadline = None;
                        false
                    });
                }
                self.broker.handle_timeout(id, now);
            }
            ToHub::Written(id, octets) => self.broker.handle_written(id, now, octets),
            ToHub::Gone(id, octets) => {
                self.broker.handle_written(id, now, octets);
                self.broker.remove(id, now);
                self.clients.remove(&id);
            }
            ToHub::Command(command) => self.answer(command, now),
            ToHub::WorkerEnded(_) => self.app.ended(),
            ToHub::WorkerIdle(id, done) => self.app.retire(id, done),
            ToHub::LoggedIn(id, verdict) => {
                let verdict = verdict.map(|admit| {
                    if let Some(client) = self.clients.get_mut(&id) {
                        client.extensions = Arc::new(admit.extensions);
                    }
                    admit.user
                });
                self.broker.log_in(id, now, verdict);
            }
            ToHub::Worked(id) => {
                let relay_holds = self.relay.as_ref().is_some_and(|r| r.holds(id));
                if !self.app.worked(id) && !relay_holds {
                    self.broker.release_input(id, now);
                }
            }
            ToHub::Relay(from) => {
                if let Some(relay) = self.relay.as_mut() {
                    let app = &self.app;
                    relay.take_in(&mut self.broker, from, now, |id| app.holds(id));
                }
            }
            ToHub::Peer((from, messages, _)) => {
                self.peers.received(messages.len());
                for message in messages {
                    self.broker.handle_shard(now, from, message);
                }
            }
            ToHub::Journaled(Ok(octets)) => self.broker.handle_journaled(octets),
            ToHub::Journaled(Err(error)) => self.broker.handle_journal_failed(now, &error),
            ToHub::Shutdown => {
                tracing::info!(
                    connections = self.broker.stats().connections,
                    "shutting down"
                );
                self.shutting_down = true;
                self.broker.shut_down(now, "server shutting down");
            }
        }
    }

    /// Answers what the application asks ([`Handle`]).
    fn answer(&mut self, command: Command, now: Instant) {
        match command {
            Command::Publish {
                destination,
                payload,
                done,
            } => {
                let headers = payload.header_pairs();
                let body = payload.body().clone();
                match self.relay.as_mut() {
                    Some(relay) => {
                        let broker = &mut self.broker;
                        relay.publish(broker, now, &destination, &headers, body, done);
                    }
                    None => {
                        let id = self.broker.publish(now, &destination, &headers, body);
                        let _ = done.send(Ok(id));
                    }
                }
            }
            Command::SendToUser {
                user,
                destination,
                payload,
                done,
            } => {
                let headers = payload.header_pairs();
                let body = payload.body().clone();
                let to = (user.as_str(), destination.as_str());
                match self.relay.as_mut() {
                    Some(relay) => {
                        relay.send_to_user(&mut self.broker, now, to, &headers, body, done);
                    }
                    None => {
                        let reached = self.broker.send_to_user(now, to.0, to.1, &headers, body);
                        let _ = done.send(Ok(reached));
                    }
                }
            }
            Command::Reply {
                connection,
                destination,
                payload,
                done,
            } => {
                let headers = payload.header_pairs();
                let body = payload.body().clone();
                let reached = self
                    .broker
                    .reply(now, connection, &destination, &headers, body);
                let _ = done.send(reached);
            }
            Command::Fail {
                connection,
                message,
            } => self.broker.close_with_error(connection, now, &message),
            Command::RelayAvailable { done } => {
                let _ = done.send(self.relay.as_ref().map(RelayBridge::available));
            }
            Command::Sessions(command) => self.answer_sessions(command, now),
            Command::Stats { done } => {
                let mut queues: Vec<(String, usize)> = self
                    .broker
                    .queue_depths()
                    .map(|(name, depth)| (name.to_owned(), depth))
                    .collect();
                queues.sort();
                let broker = self.broker.stats();
                let relay_available = self.relay.as_ref().map(RelayBridge::available);
                let _ = done.send(Stats {
                    broker,
                    queues,
                    relay_available,
                    ..Stats::default()
                });
            }
        }
    }

    /// Answers what the application asks of this shard's sessions.
    fn answer_sessions(&mut self, command: SessionCommand, now: Instant) {
        let here =
            |session: &str| connection_named(session).filter(|id| self.clients.contains_key(id));
        match command {
            SessionCommand::Users { done } => {
                let users = self
                    .broker
                    .users()
                    .map(|(u, n)| (u.to_owned(), n))
                    .collect();
                let _ = done.send(users);
            }
            SessionCommand::SessionsOf { user, done } => {
                let sessions = self.broker.sessions_of(&user);
                let _ = done.send(sessions.into_iter().map(session_name).collect());
            }
            SessionCommand::SubscriptionsOf { session, done } => {
                let found = here(&session).map(|id| {
                    let list = self.broker.subscriptions_of(id).into_iter();
                    list.map(|(sub, d)| (sub.to_string(), d)).collect()
                });
                let _ = done.send(found);
            }
            SessionCommand::SubscribersOf { destination, done } => {
                let found = self.broker.subscribers_of(&destination).into_iter();
                let found = found.map(|(id, sub)| (session_name(id), sub.to_string()));
                let _ = done.send(found.collect());
            }
            SessionCommand::SendTo {
                session,
                destination,
                payload,
                done,
            } => {
                let reached = here(&session).map(|id| {
                    let headers = payload.header_pairs();
                    let body = payload.body().clone();
                    self.broker.reply(now, id, &destination, &headers, body)
                });
                let _ = done.send(reached);
            }
            SessionCommand::Close {
                whom,
                message,
                done,
            } => {
                let ids = match whom {
                    Whom::Session(session) => here(&session).into_iter().collect(),
                    Whom::User(user) => self.broker.sessions_of(&user),
                };
                let mut closed = 0;
                for id in ids {
                    let Some(client) = self.clients.get_mut(&id) else {
                        continue;
                    };
                    if client.kicked.is_none() && !client.closing {
                        client.kicked = Some(message.clone());
                        self.broker.close_with_error(id, now, &message);
                        closed += 1;
                    }
                }
                let _ = done.send(closed);
            }
        }
    }

    /// Hands the broker's events to whom they are for: the application, the relay, the
    /// other shards.
    fn dispatch_events(&mut self, now: Instant) {
        while let Some(event) = self.broker.poll_event() {
            match event {
                BrokerEvent::Connected { connection, user } => {
                    tracing::debug!(
                        %connection,
                        user = user.as_deref().unwrap_or("-"),
                        "connected"
                    );
                    if let Some(client) = self.clients.get_mut(&connection) {
                        client.user = user.map(Arc::from);
                        client.connected = true;
                        if let (Some(relay), Some(user)) = (self.relay.as_mut(), &client.user) {
                            relay.user_joined(user);
                        }
                    }
                    self.tell(connection, now, SessionEvent::Connected);
                }
                BrokerEvent::Login {
                    connection,
                    request,
                } => {
                    if let Some(client) = self.clients.get(&connection) {
                        let deadline = self.broker.poll_timeout(connection);
                        self.app.log_in(client, connection, *request, deadline);
                    }
                }
                BrokerEvent::Subscribed {
                    connection,
                    id,
                    destination,
                } => {
                    let id = id.to_string();
                    self.tell(
                        connection,
                        now,
                        SessionEvent::Subscribed { id, destination },
                    );
                }
                BrokerEvent::Unsubscribed {
                    connection,
                    id,
                    destination,
                } => {
                    let id = id.to_string();
                    let event = SessionEvent::Unsubscribed { id, destination };
                    self.tell(connection, now, event);
                }
                BrokerEvent::Relay(event) => {
                    if let Some(relay) = self.relay.as_mut() {
                        relay.carry_out(&mut self.broker, event, now);
                    }
                }
                BrokerEvent::AppMessage {
                    connection,
                    destination,
                    frame,
                } => self.hand_over(connection, now, destination, frame, Mapping::Message),
                BrokerEvent::AppSubscribe {
                    connection,
                    destination,
                    frame,
                    ..
                } => self.hand_over(connection, now, destination, frame, Mapping::Subscribe),
                BrokerEvent::Dropped {
                    connection,
                    destination,
                } => {
                    tracing::warn!(%connection, %destination, "SEND to a destination nobody serves dropped");
                }
                BrokerEvent::Closed { connection, reason } => {
                    tracing::debug!(%connection, %reason, "session closed");
                    if let Some(client) = self.clients.get(&connection).filter(|c| c.connected) {
                        let kicked = client.kicked.as_deref();
                        let ending = Ending::of(&reason, kicked, self.shutting_down);
                        let event = SessionEvent::Disconnected(ending);
                        self.app.tell(client, connection, event);
                    }
                    self.app.closed(connection);
                    if let Some(relay) = self.relay.as_mut() {
                        let user = self.clients.get(&connection).and_then(|c| c.user.as_ref());
                        relay.closed(connection, user);
                    }
                    // Nothing queued can reach a peer that is gone or silent, and a write
                    // blocked on it must not hold the connection open.
                    if matches!(
                        reason,
                        CloseReason::HeartBeatTimedOut | CloseReason::PeerClosed
                    ) {
                        if let Some(client) = self.clients.get_mut(&connection) {
                            client.control.send_modify(|c| c.abort = true);
                        }
                    }
                }
                BrokerEvent::ToShard { shard, message } => self.peers.send(shard, message),
                other => tracing::debug!(?other, "broker event"),
            }
        }
    }

    /// Hands a SEND or SUBSCRIBE to an application destination to the session's worker; the
    /// session's input is held while its worker has a backlog.
    fn hand_over(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        destination: String,
        frame: stomp_session::FrameBuf,
        mapping: Mapping,
    ) {
        let Some(client) = self.clients.get(&connection) else {
            return;
        };
        if self
            .app
            .hand_over(client, connection, destination, frame, mapping)
        {
            self.broker.hold_input(connection, now);
        }
    }

    /// Tells the application a step of a session's life; the session's input is held while
    /// its worker has a backlog.
    fn tell(&mut self, connection: ConnectionId, now: Instant, event: SessionEvent) {
        let Some(client) = self.clients.get(&connection) else {
            return;
        };
        if self.app.tell(client, connection, event) {
            self.broker.hold_input(connection, now);
        }
    }

    /// Stops or resumes reading every client's input as the backlog between shards crosses
    /// its bounds.
    fn follow_congestion(&mut self) {
        let congested = self.peers.congested(self.congested);
        if congested == self.congested {
            return;
        }
        self.congested = congested;
        tracing::debug!(congested, "backlog between shards");
        for (id, client) in &self.clients {
            let paused = congested || !self.broker.wants_input(*id);
            client.control.send_if_modified(|c| {
                let changed = c.paused != paused;
                c.paused = paused;
                changed
            });
        }
    }

    /// Hands every ready connection its bytes, write report request, deadline and input
    /// state; tells finished ones to close.
    fn hand_out(&mut self, now: Instant) {
        let handed = Stamp::now();
        while let Some(id) = self.broker.poll_ready() {
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            if client.closing {
                continue;
            }
            let mut closing_slow = false;
            loop {
                // Backpressure: a consumer too slow for its traffic. What it has not been
                // handed is dropped, and it is closed with an ERROR that still fits.
                let waiting = client.counters.unwritten.load(Ordering::Acquire);
                if !closing_slow
                    && (client.out.capacity() <= HEADROOM || waiting > self.max_outbound_bytes)
                {
                    closing_slow = true;
                    tracing::warn!(
                        connection = %id,
                        octets = waiting,
                        "outbound queue full: closing a slow consumer"
                    );
                    self.broker
                        .close_slow_consumer(id, now, "too slow, outbound queue full");
                    continue;
                }
                let Some(bytes) = self.broker.poll_transmit(id) else {
                    break;
                };
                let len = bytes.len() as u64;
                client.counters.unwritten.fetch_add(len, Ordering::AcqRel);
                if client.out.try_send(Out::Write(bytes, handed)).is_err() {
                    self.broker.handle_eof(id, now);
                    break;
                }
            }
            if self.broker.poll_write_report(id).is_some() {
                let _ = client.out.try_send(Out::Report);
            }
            let deadline = self.broker.poll_timeout(id);
            let paused = self.congested || !self.broker.wants_input(id);
            let connected = self.broker.is_connected(id);
            client.control.send_if_modified(|c| {
                // A deadline that moved later (each frame sent postpones the next heart-beat)
                // is not worth waking the connection for: the earlier one fires, the broker
                // finds nothing due, and the connection is given the later one then.
                let deadline = match (c.deadline, deadline) {
                    (Some(set), Some(next)) if next > set => Some(set),
                    _ => deadline,
                };
                let control = Control {
                    deadline,
                    paused,
                    abort: c.abort,
                    connected,
                };
                let changed = *c != control;
                *c = control;
                changed
            });
            if self.broker.is_closed(id) {
                let _ = client.out.try_send(Out::Close);
                client.closing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use stomp_broker::{Authorizer, BrokerConfig};
    use stomp_session::{ConnectRequest, Refused};
    use tokio::sync::{oneshot, watch};

    use crate::login::{Remote, Transport};

    /// An application bug: it panics on one login.
    struct Buggy;

    impl Authorizer for Buggy {
        fn connect(&self, request: &ConnectRequest) -> Result<Option<String>, Refused> {
            assert_ne!(request.login.as_deref(), Some("boom"), "a bug");
            Ok(None)
        }
    }

    /// Opens a connection on the hub; its writer's end and id.
    async fn open(hub: &mpsc::Sender<ToHub>) -> (mpsc::Receiver<Out>, ConnectionId) {
        let (out, outbox) = mpsc::channel(16);
        let (control, _) = watch::channel(Control::default());
        let (reply, id) = oneshot::channel();
        let remote = Remote::new(Transport::Local, None);
        let client = Client::new(out, control, Arc::default(), remote);
        let accepted_at = Instant::now();
        let open = ToHub::Open {
            client,
            accepted_at,
            reply,
        };
        hub.send(open).await.unwrap();
        (outbox, id.await.unwrap())
    }

    async fn written(outbox: &mut mpsc::Receiver<Out>) -> String {
        match outbox.recv().await {
            Some(Out::Write(bytes, _)) => String::from_utf8_lossy(&bytes).into_owned(),
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_panic_serving_one_connection_closes_it_with_an_error_and_the_rest_go_on() {
        let broker = Broker::with_authorizer(BrokerConfig::default(), Box::new(Buggy));
        let (hub, inbox) = mpsc::channel(16);
        let summary = std::time::Duration::from_secs(60);
        let app = Arc::new(App::new());
        let (mut peers, mut from_peers) = Peers::new(1);
        let settings = HubSettings {
            handle: Handle::new(Arc::from([hub.clone()]), false, Arc::from([])),
            max_outbound_bytes: 1 << 20,
            summary_every: summary,
            relay: None,
            peers: peers.remove(0),
            progress: Arc::new(Progress::new()),
            logins: Arc::new(Semaphore::new(1)),
            store: None,
        };
        let hub_task = Hub::new(broker, app, settings).run(inbox, from_peers.remove(0));
        tokio::spawn(hub_task);
        let (mut victim, victim_id) = open(&hub).await;
        let (mut other, other_id) = open(&hub).await;
        let connect = |login: &str| {
            let frame = format!("CONNECT\naccept-version:1.2\nhost:/\nlogin:{login}\n\n\0");
            Bytes::from(frame)
        };
        hub.send(ToHub::Input(victim_id, connect("boom"), Stamp::now()))
            .await
            .unwrap();
        let error = written(&mut victim).await;
        assert!(
            error.starts_with("ERROR\nmessage:internal server error\n"),
            "{error}"
        );
        assert!(matches!(victim.recv().await, Some(Out::Close)));
        hub.send(ToHub::Input(other_id, connect("fine"), Stamp::now()))
            .await
            .unwrap();
        assert!(written(&mut other).await.starts_with("CONNECTED\n"));
    }
}
