//! Relay mode: the broker destinations are another broker's (RabbitMQ, ActiveMQ), so that
//! many nodes share them ([`ServerBuilder::relay`](crate::ServerBuilder::relay)).
//!
//! The broker task keeps the sessions, the application and user destinations; this module
//! carries the broker's relay events ([`stomp_broker::RelayEvent::Subscribe`] and the
//! rest) to the other broker. The `auto` topic subscriptions a node's sessions share go over
//! a few broker connections ([`RelayConfig::connections`]), under the relay's own
//! subscription ids, and the watches of the user destinations over one of their own: the
//! relay is available while these are up. The application's publishes go over the system
//! connection, which a publish the broker refuses ends for a moment, and which is therefore
//! part of that availability only until it first connects. What a session does alone (its SENDs, its queue and
//! acknowledged subscriptions) goes over a broker connection of its own, opened when first
//! needed, and a new shared subscription is tried first on a connection of its own: the
//! broker ends a whole connection over one frame it refuses, and a client must not be able
//! to end the others' subscriptions that way.
//!
//! At the broker a queue subscription is `client-individual`: a client's `auto` becomes an
//! ACK of each message once written to it, its `client` ACK one ACK for each message it
//! settles. An `auto` client's topic subscription is `auto` there as well. A session's SENDs
//! waiting together go out together, with one RECEIPT for the batch (the broker takes a
//! connection's frames in order); each client hears its own RECEIPT only once the broker has
//! its message.

mod config;
mod link;
mod topics;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use stomp_broker::{ConnectionId, Settlement};
use stomp_session::{AckMode, FrameBuf, Refused, SendFrame, SubscriptionId};
use tokio::sync::{Semaphore, mpsc, oneshot};

use config::{NODE_HEADER, USER_DESTINATION_HEADER};
pub use config::{RelayConfig, RelayUrlError};
use link::{Kind, LinkCommand, Origin, Relayed, Settle, Shared, Target};
use topics::{Joined, TopicKey, Topics};

use crate::channel::ToHub;
use crate::error::PublishError;

/// SENDs of one session the broker has not confirmed, past which its input is held.
const MAX_IN_FLIGHT: usize = 256;

/// The broker task's end of the relay.
pub(crate) struct Relay {
    shared: Shared,
    /// The connections of the topic subscriptions sessions share.
    links: Vec<mpsc::UnboundedSender<LinkCommand>>,
    /// The application's publishes and sends to users.
    system: mpsc::UnboundedSender<LinkCommand>,
    /// The watches of the users' destinations: apart from the publishes, whose destinations
    /// and headers the application may take from clients, so that a publish the broker
    /// refuses (which ends the connection it came on) leaves every watch in place.
    watches: mpsc::UnboundedSender<LinkCommand>,
    /// Each session's own connection, for what it does alone.
    sessions: HashMap<ConnectionId, mpsc::UnboundedSender<LinkCommand>>,
    /// Each relayed subscription's serial and where it is served.
    subscriptions: HashMap<(ConnectionId, SubscriptionId), (u64, Served)>,
    /// The topic subscriptions sessions share.
    topics: Topics,
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
            down: Arc::new(AtomicUsize::new(pool + 2)),
            node: Arc::from(format!("{:016x}", fastrand::u64(..))),
            probes: Arc::new(Semaphore::new(link::MAX_PROBES)),
        };
        let system = link::open(&shared, "system".to_owned(), Kind::Publishes);
        let watches = link::open(&shared, "users".to_owned(), Kind::Relay);
        let links = (0..pool)
            .map(|n| link::open(&shared, format!("topics-{n}"), Kind::Relay))
            .collect();
        tracing::info!(
            endpoints = %config.endpoints().join(","),
            connections = pool + 2,
            node = %shared.node,
            "relay: connecting to the broker"
        );
        Relay {
            shared,
            links,
            system,
            watches,
            sessions: HashMap::new(),
            subscriptions: HashMap::new(),
            topics: Topics::default(),
            subscribed: 0,
            in_flight: HashMap::new(),
            users: HashMap::new(),
            published: 0,
        }
    }

    /// Whether the relay's broker connections are up ([`Kind::Relay`], and the publishes'
    /// until it first connects).
    pub(crate) fn available(&self) -> bool {
        self.shared.down.load(Ordering::Acquire) == 0
    }

    /// The connection for the topic subscription that `connection` is the first to ask for.
    fn topic_link(&self, connection: ConnectionId) -> &mpsc::UnboundedSender<LinkCommand> {
        &self.links[(connection.get() % self.links.len() as u64) as usize]
    }

    /// The session's own connection, opened on first use.
    fn session_link(&mut self, connection: ConnectionId) -> &mpsc::UnboundedSender<LinkCommand> {
        let shared = &self.shared;
        self.sessions
            .entry(connection)
            .or_insert_with(|| link::open(shared, format!("session {connection}"), Kind::Own))
    }

    /// Relays a SUBSCRIBE; `Ok(true)` when the session is subscribed already (it shares a
    /// topic subscription the broker has taken), `Ok(false)` when the broker's answer is
    /// awaited, `Err` says why it cannot be now.
    pub(crate) fn subscribe(
        &mut self,
        connection: ConnectionId,
        id: SubscriptionId,
        destination: String,
        ack: AckMode,
        frame: &FrameBuf,
    ) -> Result<bool, Refused> {
        if !self.available() {
            return Err(Refused::new("broker unavailable"));
        }
        let remote = self.shared.config.remote(&destination);
        let rule = self
            .shared
            .config
            .rule(&destination)
            .map(|(l, r)| (l.to_owned(), r.to_owned()));
        let prefetch = self.shared.config.prefetch_count().to_string();
        let mut headers = vec![
            ("prefetch-count".to_owned(), prefetch.clone()),
            ("activemq.prefetchSize".to_owned(), prefetch),
        ];
        // A topic subscription is a queue of its own on RabbitMQ: exclusive makes it one
        // that 3.x and 4.x both accept and delete when the subscription ends.
        let topic = remote.starts_with("/topic/") || remote.starts_with("/exchange/");
        if topic {
            headers.push(("exclusive".to_owned(), "true".to_owned()));
        }
        // What the client asked of the other broker (a selector, for one) passes on.
        for header in frame.headers() {
            let name = header.name();
            if name == "selector" || name.starts_with("x-") || name.starts_with("activemq.") {
                headers.push((name.into_owned(), header.value().into_owned()));
            }
        }
        // An `auto` client's topic subscription is `auto` at the broker too: its messages go
        // nowhere else, whether acknowledged or not, so an ACK per message would only cost
        // the broker. A durable one (ActiveMQ's subscription name) keeps what it was not
        // written, as does every queue subscription: those stay `client-individual`.
        let durable = headers
            .iter()
            .any(|(name, _)| name == "activemq.subscriptionName");
        let broker_ack = if topic && ack == AckMode::Auto && !durable {
            AckMode::Auto
        } else {
            AckMode::ClientIndividual
        };
        self.subscribed += 1;
        let serial = self.subscribed;
        let member = (connection, id.clone());
        let (target, settle) = if broker_ack == AckMode::Auto {
            let key = TopicKey {
                local: destination.clone(),
                remote: remote.clone(),
                rule: rule.clone(),
                headers: headers.clone(),
            };
            match self.topics.join(key, member.clone()) {
                Joined::New(number, stopped) => {
                    self.subscriptions
                        .insert(member, (serial, Served::Shared(number)));
                    (Target::Topic(number), stopped)
                }
                Joined::Up(number) => {
                    self.subscriptions
                        .insert(member, (serial, Served::Shared(number)));
                    return Ok(true);
                }
                Joined::Pending(number) => {
                    self.subscriptions
                        .insert(member, (serial, Served::Shared(number)));
                    return Ok(false);
                }
            }
        } else {
            let (settle, settled) = mpsc::unbounded_channel();
            self.subscriptions
                .insert(member, (serial, Served::Own(settle)));
            let target = Target::Session {
                connection,
                id,
                serial,
            };
            (target, settled)
        };
        // A shared subscription goes on the relay's connections (tried first where a refusal
        // costs nobody else), the session's own on its own connection.
        let shared = matches!(target, Target::Topic(_));
        let relayed = Relayed {
            target,
            local: destination,
            remote,
            rule,
            headers,
            broker_ack,
            settle,
        };
        let command = LinkCommand::Subscribe(Box::new(relayed));
        let link = if shared {
            self.topic_link(connection)
        } else {
            self.session_link(connection)
        };
        let _ = link.send(command);
        Ok(false)
    }

    /// A relayed subscription ended.
    pub(crate) fn unsubscribe(&mut self, connection: ConnectionId, id: &SubscriptionId) {
        let member = (connection, id.clone());
        if let Some((_, Served::Shared(number))) = self.subscriptions.remove(&member) {
            self.topics.leave(number, &member);
        }
    }

    /// The broker's answer to a shared topic subscription: the sessions to tell.
    pub(crate) fn topic_answered(
        &mut self,
        number: u64,
        taken: bool,
    ) -> Vec<(ConnectionId, SubscriptionId)> {
        let members = self.topics.answered(number, taken);
        if !taken {
            for member in &members {
                self.subscriptions.remove(member);
            }
        }
        members
    }

    /// The sessions a message of shared topic subscription `number` goes to.
    pub(crate) fn topic_members(&self, number: u64) -> &[(ConnectionId, SubscriptionId)] {
        self.topics.members(number)
    }

    /// A shared topic subscription was lost: the sessions to close.
    pub(crate) fn topic_lost(&mut self, number: u64) -> Vec<(ConnectionId, SubscriptionId)> {
        let members = self.topics.end(number);
        for member in &members {
            self.subscriptions.remove(member);
        }
        members
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
        if let Some((_, Served::Own(settle))) = self.subscriptions.get(&(connection, id)) {
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
        let mut send = SendFrame::new(self.shared.config.remote(destination), frame.body().clone());
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
        let _ = self.session_link(connection).send(command);
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
        let mut send = SendFrame::new(self.shared.config.remote(destination), body);
        for (name, value) in headers {
            send = send.header(*name, *value);
        }
        self.published += 1;
        let id = format!("{}-{}", self.shared.node, self.published);
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
        let mut send = SendFrame::new(self.shared.config.user_destination(user), body)
            .header(NODE_HEADER, &*self.shared.node)
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
            destination: self.shared.config.user_destination(user),
            stop: stopped,
        };
        let _ = self.watches.send(watch);
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
    /// by one, as the broker reports each `RelayUnsubscribe`), and its own connection closes
    /// once what it was given is done.
    pub(crate) fn closed(&mut self, connection: ConnectionId) {
        self.in_flight.remove(&connection);
        self.sessions.remove(&connection);
    }
}

/// Where a session's relayed subscription is served.
enum Served {
    /// By a subscription of its own at the broker, with the way to its task.
    Own(mpsc::UnboundedSender<Settle>),
    /// By shared topic subscription number `n` (auto: nothing to settle at the broker).
    Shared(u64),
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
        relay.shared.down.store(0, Ordering::Release);
        let connection = Broker::new(BrokerConfig::default()).open(std::time::Instant::now());
        let id = SubscriptionId::from("1");
        let subscribe = |relay: &mut Relay, destination: &str| {
            let frame = subscribe_frame(destination);
            relay
                .subscribe(
                    connection,
                    id.clone(),
                    destination.into(),
                    AckMode::ClientIndividual,
                    &frame,
                )
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
