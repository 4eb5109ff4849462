//! Relay mode: the broker destinations are another broker's (RabbitMQ, ActiveMQ), so that
//! many nodes share them ([`ServerBuilder::relay`](crate::ServerBuilder::relay)).
//!
//! The broker task keeps the sessions, the application and user destinations; this module
//! carries the broker's relay events ([`stomp_broker::RelayEvent::Subscribe`] and the
//! rest) to a few broker connections, multiplexed: each session's relayed subscriptions and
//! SENDs go over one of [`RelayConfig::connections`] connections (by connection id), under
//! the relay's own subscription ids, and the application's publishes and the user
//! destinations over the system connection. At the broker every subscription is
//! `client-individual`: a client's `auto` becomes an ACK of each message once written to it,
//! its `client` ACK one ACK for each message it settles.

mod config;
mod link;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use stomp_broker::{ConnectionId, Settlement};
use stomp_session::{FrameBuf, Refused, SendFrame, SubscriptionId};
use tokio::sync::{mpsc, oneshot};

use config::{NODE_HEADER, USER_DESTINATION_HEADER};
pub use config::{RelayConfig, RelayUrlError};
use link::{LinkCommand, Origin, Relayed, Settle, Shared};

use crate::channel::ToHub;
use crate::error::PublishError;

/// SENDs of one session the broker has not confirmed, past which its input is held.
const MAX_IN_FLIGHT: usize = 256;

/// The broker task's end of the relay.
pub(crate) struct Relay {
    config: Arc<RelayConfig>,
    links: Vec<mpsc::UnboundedSender<LinkCommand>>,
    system: mpsc::UnboundedSender<LinkCommand>,
    down: Arc<AtomicUsize>,
    node: Arc<str>,
    /// Each relayed subscription's serial and the way to its forwarding task.
    subscriptions: HashMap<(ConnectionId, SubscriptionId), (u64, mpsc::UnboundedSender<Settle>)>,
    /// Relayed subscriptions so far, for their serials.
    subscribed: u64,
    /// SENDs awaiting the broker's RECEIPT, by session.
    in_flight: HashMap<ConnectionId, usize>,
    /// This node's sessions of each user, and what stops watching the user's destination.
    users: HashMap<Arc<str>, (usize, mpsc::UnboundedSender<()>)>,
    /// Application publishes so far, for their ids.
    published: u64,
}

impl Relay {
    /// Starts the broker connections on the current runtime.
    pub(crate) fn start(config: RelayConfig, hub: mpsc::Sender<ToHub>) -> Relay {
        let config = Arc::new(config);
        let pool = config.pool();
        let shared = Shared {
            config: config.clone(),
            hub,
            down: Arc::new(AtomicUsize::new(pool + 1)),
            node: Arc::from(format!("{:016x}", fastrand::u64(..))),
        };
        let spawn = |name: String| {
            let (commands, inbox) = mpsc::unbounded_channel();
            tokio::spawn(link::run(shared.clone(), name, inbox));
            commands
        };
        let system = spawn("system".to_owned());
        let links = (0..pool).map(|n| spawn(format!("sessions-{n}"))).collect();
        tracing::info!(
            endpoints = %config.endpoints().join(","),
            connections = pool + 1,
            node = %shared.node,
            "relay: connecting to the broker"
        );
        Relay {
            config,
            links,
            system,
            down: shared.down,
            node: shared.node,
            subscriptions: HashMap::new(),
            subscribed: 0,
            in_flight: HashMap::new(),
            users: HashMap::new(),
            published: 0,
        }
    }

    /// Whether every broker connection is up.
    pub(crate) fn available(&self) -> bool {
        self.down.load(Ordering::Acquire) == 0
    }

    fn link(&self, connection: ConnectionId) -> &mpsc::UnboundedSender<LinkCommand> {
        &self.links[(connection.get() % self.links.len() as u64) as usize]
    }

    /// Relays a SUBSCRIBE; `Err` says why it cannot be now.
    pub(crate) fn subscribe(
        &mut self,
        connection: ConnectionId,
        id: SubscriptionId,
        destination: String,
        frame: &FrameBuf,
    ) -> Result<(), Refused> {
        if !self.available() {
            return Err(Refused::new("broker unavailable"));
        }
        let remote = self.config.remote(&destination);
        let rule = self
            .config
            .rule(&destination)
            .map(|(l, r)| (l.to_owned(), r.to_owned()));
        let prefetch = self.config.prefetch_count().to_string();
        let mut headers = vec![
            ("prefetch-count".to_owned(), prefetch.clone()),
            ("activemq.prefetchSize".to_owned(), prefetch),
        ];
        // A topic subscription is a queue of its own on RabbitMQ: exclusive makes it one
        // that 3.x and 4.x both accept and delete when the subscription ends.
        if remote.starts_with("/topic/") || remote.starts_with("/exchange/") {
            headers.push(("exclusive".to_owned(), "true".to_owned()));
        }
        // What the client asked of the other broker (a selector, for one) passes on.
        for header in frame.headers() {
            let name = header.name();
            if name == "selector" || name.starts_with("x-") || name.starts_with("activemq.") {
                headers.push((name.into_owned(), header.value().into_owned()));
            }
        }
        let (settle, settled) = mpsc::unbounded_channel();
        self.subscribed += 1;
        let serial = self.subscribed;
        self.subscriptions
            .insert((connection, id.clone()), (serial, settle));
        let relayed = Relayed {
            connection,
            id,
            serial,
            local: destination,
            remote,
            rule,
            headers,
            settle: settled,
        };
        let _ = self
            .link(connection)
            .send(LinkCommand::Subscribe(Box::new(relayed)));
        Ok(())
    }

    /// A relayed subscription ended.
    pub(crate) fn unsubscribe(&mut self, connection: ConnectionId, id: &SubscriptionId) {
        self.subscriptions.remove(&(connection, id.clone()));
    }

    /// Whether subscription `serial` is still the session's subscription `id`: a client may
    /// use an id again after UNSUBSCRIBE, while messages for the earlier subscription are
    /// still on their way here. Those are not delivered (the other broker redelivers them,
    /// never acknowledged, once the earlier subscription ended there).
    pub(crate) fn is_current(
        &self,
        connection: ConnectionId,
        id: &SubscriptionId,
        serial: u64,
    ) -> bool {
        self.subscriptions
            .get(&(connection, id.clone()))
            .is_some_and(|(current, _)| *current == serial)
    }

    /// The client is done with relayed messages.
    pub(crate) fn settle(
        &mut self,
        connection: ConnectionId,
        id: SubscriptionId,
        message_ids: Vec<String>,
        settlement: Settlement,
    ) {
        if let Some((_, settle)) = self.subscriptions.get(&(connection, id)) {
            let _ = settle.send(Settle {
                message_ids,
                settlement,
            });
        }
    }

    /// Relays a session's SEND; `Ok(true)` when the session must now stop being read until
    /// the broker confirmed some of what it sent.
    pub(crate) fn send(
        &mut self,
        connection: ConnectionId,
        destination: &str,
        frame: &FrameBuf,
    ) -> Result<bool, Refused> {
        if !self.available() {
            return Err(Refused::new("broker unavailable: message not relayed"));
        }
        let mut send = SendFrame::new(self.config.remote(destination), frame.body().clone());
        for header in frame.headers() {
            let name = header.name();
            if !SEND_FRAMING.contains(&name.as_ref()) {
                send = send.header(name.into_owned(), header.value().into_owned());
            }
        }
        // Its RECEIPT waits for the broker's, unless a transaction's (answered already).
        let receipt = match frame.header("transaction") {
            None => frame.header("receipt").map(|r| r.into_owned()),
            Some(_) => None,
        };
        let in_flight = self.in_flight.entry(connection).or_default();
        *in_flight += 1;
        let hold = *in_flight == MAX_IN_FLIGHT;
        let command = LinkCommand::Send {
            from: Origin::Session {
                connection,
                receipt,
            },
            frame: send,
        };
        let _ = self.link(connection).send(command);
        Ok(hold)
    }

    /// The broker took one of the session's SENDs; whether its input, held for them, may be
    /// read again.
    pub(crate) fn sent(&mut self, connection: ConnectionId) -> bool {
        let Some(in_flight) = self.in_flight.get_mut(&connection) else {
            return false;
        };
        *in_flight -= 1;
        let release = *in_flight == MAX_IN_FLIGHT / 2;
        if *in_flight == 0 {
            self.in_flight.remove(&connection);
        }
        release
    }

    /// Whether the session's input is held for its SENDs in flight.
    pub(crate) fn holds(&self, connection: ConnectionId) -> bool {
        self.in_flight
            .get(&connection)
            .is_some_and(|n| *n > MAX_IN_FLIGHT / 2)
    }

    /// Relays the application's publish; `done` hears once the broker took it, so that
    /// a publisher waits for the broker and holds nothing here meanwhile.
    pub(crate) fn publish(
        &mut self,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        done: oneshot::Sender<Result<String, PublishError>>,
    ) {
        if !self.available() {
            let _ = done.send(Err(PublishError::BrokerUnavailable));
            return;
        }
        let mut send = SendFrame::new(self.config.remote(destination), body);
        for (name, value) in headers {
            send = send.header(*name, *value);
        }
        self.published += 1;
        let id = format!("{}-{}", self.node, self.published);
        let command = LinkCommand::Send {
            from: Origin::Publish { id, done },
            frame: send,
        };
        let _ = self.system.send(command);
    }

    /// Sends `user`'s sessions on other nodes a message for user destination `destination`;
    /// `done` hears `reached` (the subscriptions reached on this node) once the broker took
    /// it.
    pub(crate) fn to_user(
        &self,
        user: &str,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        (reached, done): (usize, oneshot::Sender<Result<usize, PublishError>>),
    ) {
        if !self.available() {
            let _ = done.send(Err(PublishError::BrokerUnavailable));
            return;
        }
        let mut send = SendFrame::new(self.config.user_destination(user), body)
            .header(NODE_HEADER, &*self.node)
            .header(USER_DESTINATION_HEADER, destination);
        for (name, value) in headers {
            send = send.header(*name, *value);
        }
        let command = LinkCommand::Send {
            from: Origin::ToUser { reached, done },
            frame: send,
        };
        let _ = self.system.send(command);
    }

    /// A session of `user` began here: the first one watches the user's destination.
    pub(crate) fn user_joined(&mut self, user: &Arc<str>) {
        if let Some((sessions, _)) = self.users.get_mut(user) {
            *sessions += 1;
            return;
        }
        let (stop, stopped) = mpsc::unbounded_channel();
        let watch = LinkCommand::Watch {
            user: user.clone(),
            destination: self.config.user_destination(user),
            stop: stopped,
        };
        let _ = self.system.send(watch);
        self.users.insert(user.clone(), (1, stop));
    }

    /// A session of `user` ended here: with the last one, the watch ends (and its queue on
    /// the broker with it).
    pub(crate) fn user_left(&mut self, user: &Arc<str>) {
        if let Some((sessions, _)) = self.users.get_mut(user) {
            *sessions -= 1;
            if *sessions == 0 {
                self.users.remove(user);
            }
        }
    }

    /// The session is over: what it had in flight is forgotten (its subscriptions end one
    /// by one, as the broker reports each `RelayUnsubscribe`).
    pub(crate) fn closed(&mut self, connection: ConnectionId) {
        self.in_flight.remove(&connection);
    }
}

/// A SEND's headers that frame it here; the rest pass on to the other broker.
const SEND_FRAMING: [&str; 5] = [
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "message-id",
];

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use stomp_broker::{Broker, BrokerConfig};
    use stomp_session::stomp_codec::{Decoder, Item};

    fn subscribe_frame(destination: &str) -> FrameBuf {
        let text = format!("SUBSCRIBE\nid:1\ndestination:{destination}\n\n\0");
        match Decoder::default().decode(&mut BytesMut::from(text.as_bytes())) {
            Ok(Some(Item::Frame(frame))) => frame,
            other => panic!("{other:?}"),
        }
    }

    /// A client unsubscribes and subscribes again with the same id: what the broker sent for
    /// the first subscription, still on its way, is not the second one's.
    #[tokio::test]
    async fn a_delivery_for_an_earlier_subscription_with_the_same_id_is_not_current() {
        // No broker listens there: the links keep trying, which this test does not need.
        let config = RelayConfig::parse("stomp://127.0.0.1:9").unwrap();
        let (hub, _inbox) = mpsc::channel(16);
        let mut relay = Relay::start(config, hub);
        relay.down.store(0, Ordering::Release);
        let connection = Broker::new(BrokerConfig::default()).open(std::time::Instant::now());
        let id = SubscriptionId::from("1");
        let subscribe = |relay: &mut Relay, destination: &str| {
            let frame = subscribe_frame(destination);
            relay
                .subscribe(connection, id.clone(), destination.into(), &frame)
                .unwrap();
            relay.subscribed
        };
        let first = subscribe(&mut relay, "/queue/a");
        assert!(relay.is_current(connection, &id, first));
        relay.unsubscribe(connection, &id);
        assert!(!relay.is_current(connection, &id, first));
        let second = subscribe(&mut relay, "/topic/b");
        assert!(!relay.is_current(connection, &id, first));
        assert!(relay.is_current(connection, &id, second));
    }
}
