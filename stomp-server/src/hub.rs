//! The broker task: it owns the sans-IO broker, takes what connections receive, and hands each
//! connection its bytes to write, its next deadline and whether to read. A panic while
//! serving one connection closes that connection with an ERROR; the others go on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use stomp_broker::{Broker, BrokerEvent, ConnectionId, session_name};
use stomp_session::{CloseReason, Delivery, FrameBuf};
use tokio::sync::{mpsc, oneshot, watch};

use crate::app::App;
use crate::connection::Counters;
use crate::context::Context;
use crate::handle::{Handle, PublishError, Stats};
use crate::message::{Message, Payload};
use crate::peers::{FromPeer, Peers};
use crate::relay::{FromRelay, Relay, RelayConfig};
use crate::watchdog::{Progress, Work};
use crate::worker::{Job, Workers};

/// Owned headers as the broker's borrowed pairs.
fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// What a connection task tells the broker task.
#[derive(Debug)]
pub(crate) enum ToHub {
    Open {
        client: Client,
        peer: String,
        accepted_at: Instant,
        reply: oneshot::Sender<ConnectionId>,
    },
    Input(ConnectionId, Bytes),
    Eof(ConnectionId),
    /// The transport refused the client's input (a WebSocket message over the limits): the
    /// client gets an ERROR saying so.
    Fail(ConnectionId, String),
    Timeout(ConnectionId),
    /// Octets written so far, answering [`Out::Report`].
    Written(ConnectionId, u64),
    /// The transport is closed, after writing this many octets.
    Gone(ConnectionId, u64),
    /// The application asks the broker something ([`Handle`]).
    Command(Command),
    /// A session's worker finished a job while its input was held.
    Worked(ConnectionId),
    /// SIGINT or SIGTERM: every client gets an ERROR and a close.
    Shutdown,
    /// What another shard sent.
    Peer(FromPeer),
    /// Relay mode: the other broker's side.
    Relay(FromRelay),
}

/// What the application asks of the broker task, with where the answer goes.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        destination: String,
        payload: Payload,
        done: oneshot::Sender<Result<String, PublishError>>,
    },
    SendToUser {
        user: String,
        destination: String,
        payload: Payload,
        done: oneshot::Sender<Result<usize, PublishError>>,
    },
    RelayAvailable {
        done: oneshot::Sender<Option<bool>>,
    },
    Reply {
        connection: ConnectionId,
        destination: String,
        payload: Payload,
        done: oneshot::Sender<usize>,
    },
    Fail {
        connection: ConnectionId,
        message: String,
    },
    Stats {
        done: oneshot::Sender<Stats>,
    },
}

impl ToHub {
    /// What serving it is, for the watchdog.
    fn work(&self) -> Work {
        match self {
            ToHub::Open { .. } => Work::Open,
            ToHub::Input(..) => Work::Input,
            ToHub::Eof(_) => Work::Eof,
            ToHub::Fail(..) => Work::Fail,
            ToHub::Timeout(_) => Work::Timeout,
            ToHub::Written(..) => Work::Written,
            ToHub::Gone(..) => Work::Gone,
            ToHub::Command(_) => Work::Command,
            ToHub::Worked(_) => Work::Worked,
            ToHub::Shutdown => Work::Shutdown,
            ToHub::Peer(_) => Work::Peer,
            ToHub::Relay(_) => Work::Relay,
        }
    }

    fn connection(&self) -> Option<ConnectionId> {
        match self {
            ToHub::Input(id, _)
            | ToHub::Eof(id)
            | ToHub::Fail(id, _)
            | ToHub::Timeout(id)
            | ToHub::Written(id, _)
            | ToHub::Gone(id, _)
            | ToHub::Worked(id)
            | ToHub::Command(Command::Reply { connection: id, .. })
            | ToHub::Command(Command::Fail { connection: id, .. }) => Some(*id),
            ToHub::Relay(from) => from.connection(),
            ToHub::Open { .. } | ToHub::Command(_) | ToHub::Shutdown | ToHub::Peer(_) => None,
        }
    }
}

/// What the broker task tells a connection's writer, in order.
#[derive(Debug)]
pub(crate) enum Out {
    Write(Bytes),
    /// Once everything before is written, say how much was ([`ToHub::Written`]).
    Report,
    /// Everything is written: close the connection.
    Close,
}

/// What a connection's reader follows: when to report a timeout, and whether to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) deadline: Option<Instant>,
    /// Flow control: the connection's input is not read.
    pub(crate) paused: bool,
    /// The peer is gone or dead (heart-beats): drop the transport now, without writing what
    /// is still queued for it.
    pub(crate) abort: bool,
    /// The client is let in: before, no more than one head's worth is read of it.
    pub(crate) connected: bool,
}

/// Room a full outbound queue keeps for the final ERROR and a write report.
const HEADROOM: usize = 4;

/// Most inbox messages served before the connections are handed their output: enough to
/// gather a burst, few enough that output is not held back.
const BATCH_MESSAGES: usize = 64;

/// The broker task's end of one connection.
#[derive(Debug)]
pub(crate) struct Client {
    out: mpsc::Sender<Out>,
    control: watch::Sender<Control>,
    counters: Arc<Counters>,
    /// Told to close; waiting for the transport to be gone.
    closing: bool,
    /// The user the session acts as, once connected.
    user: Option<Arc<str>>,
    /// Its `session` id.
    session: Arc<str>,
}

impl Client {
    pub(crate) fn new(
        out: mpsc::Sender<Out>,
        control: watch::Sender<Control>,
        counters: Arc<Counters>,
    ) -> Client {
        Client {
            out,
            control,
            counters,
            closing: false,
            user: None,
            session: Arc::from(""),
        }
    }
}

pub(crate) struct Hub {
    broker: Broker,
    /// Keyed by ids the broker hands out, never chosen by a client: a fast hash is safe.
    clients: FxHashMap<ConnectionId, Client>,
    app: Arc<App>,
    workers: Workers,
    handle: Handle,
    /// How often the summary is logged.
    summary_every: std::time::Duration,
    /// Octets waiting to be written past which a connection is closed as too slow.
    max_outbound_bytes: u64,
    shutting_down: bool,
    relay: Option<Relay>,
    /// The other shards.
    peers: Peers,
    /// Too much is on its way between shards: clients' input is not read.
    congested: bool,
    /// What this task serves and since when, for the watchdog.
    progress: Arc<Progress>,
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
        } = settings;
        let inbox = handle.inbox();
        let workers = Workers::new(app.queue_size(), app.failure_mode(), inbox.clone());
        let relay = relay.map(|config| Relay::start(config, inbox.clone()));
        Hub {
            relay,
            broker,
            clients: FxHashMap::default(),
            app,
            workers,
            handle,
            summary_every,
            max_outbound_bytes: max_outbound_bytes as u64,
            shutting_down: false,
            peers,
            congested: false,
            progress,
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
        loop {
            let message = tokio::select! {
                message = inbox.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
                Some(message) = from_peers.recv() => ToHub::Peer(message),
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
            // What else is waiting is served before anything is handed to the connections:
            // under load each connection then gets one buffer for many messages, not one each.
            let mut next = Some(message);
            let mut served = 0;
            while let Some(message) = next.take() {
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
            self.peers.flush();
            self.follow_congestion();
            if catch_unwind(AssertUnwindSafe(|| self.flush(now))).is_err() {
                self.recover(None, now);
            }
            self.progress.idle();
            if self.shutting_down && self.clients.is_empty() {
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
            self.handle(message, now);
            self.application(now);
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
            connections = stats.connections,
            users = stats.users,
            subscriptions = stats.subscriptions,
            topics = stats.topics,
            queues = stats.queues,
            queued_messages = stats.queued_messages,
            queued_bytes = stats.queued_bytes,
            paused_publishers = stats.paused_publishers,
            opened = stats.opened,
            closed = stats.closed,
            closed_abnormally = stats.closed_abnormally,
            slow_consumers_closed = stats.slow_consumers_closed,
            frames_received = stats.frames_received,
            frames_sent = stats.frames_sent,
            deliveries = stats.deliveries,
            octets_received = stats.octets_received,
            relay_available = self.relay.as_ref().map(Relay::available),
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
            self.application(now);
            self.flush(now);
        }));
    }

    fn handle(&mut self, message: ToHub, now: Instant) {
        match message {
            ToHub::Open {
                client,
                peer,
                accepted_at,
                reply,
            } => {
                // The CONNECT deadline counts from the accept, handshakes included.
                let id = self.broker.open(accepted_at);
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
            ToHub::Input(id, bytes) => self.broker.handle_input(id, now, &bytes),
            ToHub::Eof(id) => self.broker.handle_eof(id, now),
            ToHub::Fail(id, reason) => self.broker.close_with_error(id, now, &reason),
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
            ToHub::Command(command) => self.command(command, now),
            ToHub::Worked(id) => {
                let relay_holds = self.relay.as_ref().is_some_and(|r| r.holds(id));
                if !self.workers.worked(id) && !relay_holds {
                    self.broker.hold_input(id, now, false);
                }
            }
            ToHub::Relay(from) => self.relayed(from, now),
            ToHub::Peer((from, messages)) => {
                self.peers.received(messages.len());
                for message in messages {
                    self.broker.handle_shard(now, from, message);
                }
            }
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

    fn command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Publish {
                destination,
                payload,
                done,
            } => {
                let headers = payload.header_pairs();
                let body = payload.body().clone();
                // Relayed: answered once the other broker took it.
                if let Some(relay) = self.relay.as_mut() {
                    if self.broker.is_relayed(&destination) {
                        relay.publish(&destination, &headers, body, done);
                        return;
                    }
                }
                let id = self.broker.publish(now, &destination, &headers, body);
                let _ = done.send(Ok(id));
            }
            Command::SendToUser {
                user,
                destination,
                payload,
                done,
            } => {
                let headers = payload.header_pairs();
                let body = payload.body().clone();
                // Her sessions on other nodes hear of it through the other broker, and the
                // call returns once the broker took it.
                if let Some(relay) = &self.relay {
                    if !relay.available() {
                        let _ = done.send(Err(PublishError::BrokerUnavailable));
                        return;
                    }
                    let reached =
                        self.broker
                            .send_to_user(now, &user, &destination, &headers, body.clone());
                    relay.to_user(&user, &destination, &headers, body, (reached, done));
                    return;
                }
                let reached = self
                    .broker
                    .send_to_user(now, &user, &destination, &headers, body);
                let _ = done.send(Ok(reached));
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
                let _ = done.send(self.relay.as_ref().map(Relay::available));
            }
            Command::Stats { done } => {
                let mut queues: Vec<(String, usize)> = self
                    .broker
                    .queue_depths()
                    .map(|(name, depth)| (name.to_owned(), depth))
                    .collect();
                queues.sort();
                let broker = self.broker.stats();
                let relay_available = self.relay.as_ref().map(Relay::available);
                let _ = done.send(Stats {
                    broker,
                    queues,
                    relay_available,
                    ..Stats::default()
                });
            }
        }
    }

    /// What the relay reports from the other broker.
    fn relayed(&mut self, from: FromRelay, now: Instant) {
        match from {
            FromRelay::Subscribed {
                connection,
                id,
                outcome,
            } => {
                let outcome = outcome.as_ref().map(|_| ()).map_err(String::as_str);
                self.broker.relay_subscribed(connection, now, &id, outcome);
            }
            FromRelay::Deliver {
                connection,
                id,
                serial,
                destination,
                message_id,
                headers,
                body,
            } => {
                let current = self
                    .relay
                    .as_ref()
                    .is_some_and(|r| r.is_current(connection, &id, serial));
                if current {
                    let pairs = pairs(&headers);
                    let delivery =
                        Delivery::new(&destination, &message_id, &body).with_headers(&pairs);
                    self.broker.relay_deliver(connection, now, &id, delivery);
                }
            }
            FromRelay::Sent {
                connection,
                receipt,
            } => {
                if let Some(receipt) = receipt {
                    self.broker.relay_sent(connection, now, &receipt);
                }
                let released = self.relay.as_mut().is_some_and(|r| r.sent(connection));
                if released && !self.workers.holds(connection) {
                    self.broker.hold_input(connection, now, false);
                }
            }
            FromRelay::Lost {
                connection,
                message,
            } => self.broker.close_with_error(connection, now, &message),
            FromRelay::ToUser {
                user,
                destination,
                headers,
                body,
            } => {
                self.broker
                    .send_to_user(now, &user, &destination, &pairs(&headers), body);
            }
        }
    }

    /// A relay event of the broker: handed to the relay, or refused while it cannot be.
    fn relay_event(&mut self, event: BrokerEvent, now: Instant) {
        let Some(relay) = self.relay.as_mut() else {
            return;
        };
        match event {
            BrokerEvent::RelaySubscribe {
                connection,
                id,
                destination,
                frame,
                ..
            } => {
                let subscribed = relay.subscribe(connection, id.clone(), destination, &frame);
                if let Err(why) = subscribed {
                    self.broker.relay_subscribed(connection, now, &id, Err(why));
                }
            }
            BrokerEvent::RelayUnsubscribe { connection, id } => relay.unsubscribe(connection, &id),
            BrokerEvent::RelaySend {
                connection,
                destination,
                frame,
            } => match relay.send(connection, &destination, &frame) {
                Ok(true) => self.broker.hold_input(connection, now, true),
                Ok(false) => {}
                Err(why) => self.broker.close_with_error(connection, now, why),
            },
            // The server's own publishes go to the relay directly (`Command::Publish`).
            BrokerEvent::RelayPublish { destination, .. } => {
                tracing::warn!(%destination, "relay: a publish of the broker's own not relayed");
            }
            BrokerEvent::RelayAck {
                connection,
                id,
                message_ids,
                ack,
            } => relay.settle(connection, id, message_ids, ack),
            _ => {}
        }
    }

    /// Hands a SEND or SUBSCRIBE to an application destination to the session's worker.
    fn hand_to_worker(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        destination: String,
        frame: FrameBuf,
        subscription: bool,
    ) {
        let found = match subscription {
            true => self.app.subscribe_handler(&destination),
            false => self.app.message_handler(&destination),
        };
        let (Some((handler, params)), Some(client)) = (found, self.clients.get(&connection)) else {
            return;
        };
        let reply_to = match subscription {
            true => destination.clone(),
            false => frame
                .header("reply-to")
                .map(|r| r.into_owned())
                .unwrap_or_else(|| self.app.default_reply_destination().to_owned()),
        };
        let context = Context {
            handle: self.handle.clone(),
            connection,
            session: client.session.clone(),
            user: client.user.clone(),
            params,
            reply_to,
        };
        let message = Message::new(frame, destination);
        let job = Job {
            handler,
            context,
            message,
        };
        if self.workers.submit(connection, job) {
            self.broker.hold_input(connection, now, true);
        }
    }

    fn application(&mut self, now: Instant) {
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
                        if let (Some(relay), Some(user)) = (self.relay.as_mut(), &client.user) {
                            relay.user_joined(user);
                        }
                    }
                }
                event @ (BrokerEvent::RelaySubscribe { .. }
                | BrokerEvent::RelayUnsubscribe { .. }
                | BrokerEvent::RelaySend { .. }
                | BrokerEvent::RelayPublish { .. }
                | BrokerEvent::RelayAck { .. }) => self.relay_event(event, now),
                BrokerEvent::AppMessage {
                    connection,
                    destination,
                    frame,
                } => self.hand_to_worker(connection, now, destination, frame, false),
                BrokerEvent::AppSubscribe {
                    connection,
                    destination,
                    frame,
                    ..
                } => self.hand_to_worker(connection, now, destination, frame, true),
                BrokerEvent::Dropped {
                    connection,
                    destination,
                } => {
                    tracing::warn!(%connection, %destination, "SEND to a destination nobody serves dropped");
                }
                BrokerEvent::Closed { connection, reason } => {
                    tracing::debug!(%connection, %reason, "session closed");
                    self.workers.remove(connection);
                    if let Some(relay) = self.relay.as_mut() {
                        relay.closed(connection);
                        if let Some(user) =
                            self.clients.get(&connection).and_then(|c| c.user.as_ref())
                        {
                            relay.user_left(user);
                        }
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
    fn flush(&mut self, now: Instant) {
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
                if client.out.try_send(Out::Write(bytes)).is_err() {
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
    use stomp_broker::{Authorizer, BrokerConfig};
    use stomp_session::ConnectRequest;

    /// An application bug: it panics on one login.
    struct Buggy;

    impl Authorizer for Buggy {
        fn connect(&self, request: &ConnectRequest) -> Result<Option<String>, String> {
            assert_ne!(request.login.as_deref(), Some("boom"), "a bug");
            Ok(None)
        }
    }

    /// Opens a connection on the hub; its writer's end and id.
    async fn open(hub: &mpsc::Sender<ToHub>) -> (mpsc::Receiver<Out>, ConnectionId) {
        let (out, outbox) = mpsc::channel(16);
        let (control, _) = watch::channel(Control::default());
        let (reply, id) = oneshot::channel();
        let client = Client::new(out, control, Arc::default());
        let accepted_at = Instant::now();
        let peer = "test".into();
        let open = ToHub::Open {
            client,
            peer,
            accepted_at,
            reply,
        };
        hub.send(open).await.unwrap();
        (outbox, id.await.unwrap())
    }

    async fn written(outbox: &mut mpsc::Receiver<Out>) -> String {
        match outbox.recv().await {
            Some(Out::Write(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
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
        };
        let hub_task = Hub::new(broker, app, settings).run(inbox, from_peers.remove(0));
        tokio::spawn(hub_task);
        let (mut victim, victim_id) = open(&hub).await;
        let (mut other, other_id) = open(&hub).await;
        let connect = |login: &str| {
            let frame = format!("CONNECT\naccept-version:1.2\nhost:/\nlogin:{login}\n\n\0");
            Bytes::from(frame)
        };
        hub.send(ToHub::Input(victim_id, connect("boom")))
            .await
            .unwrap();
        let error = written(&mut victim).await;
        assert!(
            error.starts_with("ERROR\nmessage:internal server error\n"),
            "{error}"
        );
        assert!(matches!(victim.recv().await, Some(Out::Close)));
        hub.send(ToHub::Input(other_id, connect("fine")))
            .await
            .unwrap();
        assert!(written(&mut other).await.starts_with("CONNECTED\n"));
    }
}
