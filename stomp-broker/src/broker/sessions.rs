//! What the broker does on each session's events: connections let in, subscriptions made and
//! ended, acknowledgements settled, SENDs routed.

use std::time::Instant;

use bytes::Bytes;
use stomp_session::{
    AckMode, CloseReason, FrameBuf, MessageSet, Refused, ServerEvent, SubscriptionId,
};

use crate::event::{BrokerEvent, RelayEvent};
use crate::ids::{ConnectionId, SubscriberKey, session_name};
use crate::policy::Kind;
use crate::queue::Stored;
use crate::settlement::Settlement;
use crate::shard::{self};

use super::routing::RESERVED;
use super::{Broker, Output, Subscriber};

impl Broker {
    /// Acts on what `connection`'s session reported.
    pub(super) fn on_session_events(&mut self, connection: ConnectionId, now: Instant) {
        self.ready.insert(connection);
        loop {
            let Some(c) = self.connections.get_mut(&connection) else {
                return;
            };
            // Each event is acted on before the session decodes the frame after it.
            let Some(event) = c.session.poll_event() else {
                return;
            };
            self.steps += 1;
            match event {
                ServerEvent::Connect(request) => {
                    c.client_id = request.frame.header("client-id").map(|v| v.into_owned());
                    if self.policy.authorizer.decides_later() {
                        // The session waits (within its CONNECT deadline) for `log_in`.
                        self.events.push_back(BrokerEvent::Login {
                            connection,
                            request,
                        });
                        return;
                    }
                    let verdict = self.policy.authorizer.connect(&request);
                    self.conclude_login(connection, now, verdict);
                }
                ServerEvent::Subscribe {
                    id,
                    destination,
                    ack,
                    frame,
                } => self.subscribe(connection, now, id, destination, ack, &frame),
                ServerEvent::Unsubscribe {
                    id,
                    destination,
                    frame,
                    ..
                } => {
                    let known = c.subscriptions.contains_key(&id);
                    let durable = (c.subscriptions.get(&id))
                        .and_then(|key| self.subscribers.get(key))
                        .and_then(|s| s.pattern.as_str().strip_prefix("durable:"))
                        .filter(|_| Broker::ends_durable(&frame))
                        .map(str::to_owned);
                    self.unsubscribe(connection, now, &id, Output::Kept);
                    if let Some(name) = durable {
                        self.unsubscribe_durable(&name);
                    }
                    if known {
                        self.events.push_back(BrokerEvent::Unsubscribed {
                            connection,
                            id,
                            destination,
                        });
                    }
                }
                ServerEvent::Send(frame) => self.on_send(connection, now, frame),
                ServerEvent::Ack(set) => self.settle_acks(connection, now, set, Settlement::Ack),
                ServerEvent::Nack(set) => self.settle_acks(connection, now, set, Settlement::Nack),
                ServerEvent::Closed { reason, .. } => {
                    // The queue's owner forgets it as a publisher to resume.
                    if let Some(owner) = c.held_by.take() {
                        self.tell(owner, shard::Inner::Gone { connection });
                    }
                    let Some(c) = self.connections.get_mut(&connection) else {
                        return;
                    };
                    let ids: Vec<SubscriptionId> = c.subscriptions.keys().cloned().collect();
                    // Dropped or silent: nothing queued for it will be written.
                    let output = match reason {
                        CloseReason::PeerClosed | CloseReason::HeartBeatTimedOut => Output::Lost,
                        _ => Output::Kept,
                    };
                    for id in ids {
                        self.unsubscribe(connection, now, &id, output);
                    }
                    if let Some(user) = self
                        .connections
                        .get(&connection)
                        .and_then(|c| c.user.as_ref())
                    {
                        if let Some(sessions) = self.users.get_mut(user) {
                            sessions.remove(&connection);
                            if sessions.is_empty() {
                                self.users.remove(user);
                            }
                        }
                    }
                    self.totals.closed += 1;
                    if reason != CloseReason::Disconnected {
                        self.totals.closed_abnormally += 1;
                    }
                    self.events
                        .push_back(BrokerEvent::Closed { connection, reason });
                }
                _ => {}
            }
        }
    }

    /// Lets the session waiting for its login in as `user`, or refuses it (after the login
    /// failure delay); see [`Authorizer::decides_later`](crate::Authorizer::decides_later).
    /// A session that is gone, or that waits for no login, is left as it is.
    pub fn log_in(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        verdict: Result<Option<String>, Refused>,
    ) {
        let waits = self
            .connections
            .get(&connection)
            .is_some_and(|c| c.session.awaits_accept());
        if waits {
            self.conclude_login(connection, now, verdict);
            // Frames pipelined after the CONNECT are acted on now.
            self.on_session_events(connection, now);
        }
    }

    /// Lets the session in or refuses it, as `verdict` says.
    fn conclude_login(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        verdict: Result<Option<String>, Refused>,
    ) {
        // One user may hold only so many sessions.
        let max = self.config.max_sessions_per_user;
        let over = |user: &String| self.users.get(user).is_some_and(|s| s.len() >= max);
        let verdict = match verdict {
            Ok(Some(user)) if over(&user) => {
                self.totals.user_limit_refused += 1;
                Err(Refused::new(format!(
                    "too many sessions for user {user}: at most {max}"
                )))
            }
            verdict => verdict,
        };
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        match verdict {
            Ok(user) => {
                // As RabbitMQ and Spring do: the session's id, and the user it is for once
                // the authorizer let it in.
                let session = session_name(connection);
                let mut headers = vec![("session", session.as_str())];
                if let Some(user) = &user {
                    headers.push(("user-name", user));
                }
                c.session.set_user(user.clone());
                if c.session.accept_with_headers(now, &headers).is_ok() {
                    if let Some(user) = &user {
                        self.users
                            .entry(user.clone())
                            .or_default()
                            .insert(connection);
                    }
                }
                c.user.clone_from(&user);
                self.events
                    .push_back(BrokerEvent::Connected { connection, user });
            }
            // Held back: a failed login costs the client time.
            Err(message) => {
                c.refusal = Some((now + self.config.login_failure_delay, message));
            }
        }
    }

    pub(super) fn subscribe(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: SubscriptionId,
        destination: String,
        ack: AckMode,
        frame: &FrameBuf,
    ) {
        let owner = self.owner(&destination);
        let here = owner == self.config.shard.index;
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let mut kind = match self
            .policy
            .subscribe(c.user.as_deref(), &destination, frame)
        {
            Ok(Kind::Topic | Kind::Pattern | Kind::Queue) if self.config.relay => Kind::Relayed,
            Ok(Kind::Queue) if !here => Kind::Remote,
            Ok(kind) => kind,
            Err(message) => {
                let _ = c.session.refuse_subscription(now, message.message());
                return;
            }
        };
        // A durable topic subscription consumes a queue of its own; the application hears
        // of the topic.
        let named = destination.clone();
        let mut destination = destination;
        if matches!(kind, Kind::Topic | Kind::Pattern) {
            if let Some(name) = self.durable_name(connection, frame) {
                destination = self.subscribe_durable(&name, &destination);
                kind = Kind::Queue;
            }
        }
        // A SUBSCRIBE that asks for a topic's history learns on its RECEIPT whether it got
        // all it missed.
        let recovery = match kind {
            Kind::Topic | Kind::Pattern => self.recovery(now, &named, frame),
            _ => None,
        };
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        // A relayed SUBSCRIBE waits for the other broker (`relay_subscribed`).
        match &recovery {
            Some((_, complete)) => {
                let recovered = [("recovered", if *complete { "true" } else { "false" })];
                let _ = c.session.confirm_subscription_with_headers(now, &recovered);
            }
            None if kind != Kind::Relayed => {
                let _ = c.session.confirm_subscription(now);
            }
            None => {}
        }
        let default = if ack.needs_ack() {
            self.config.prefetch_client
        } else {
            self.config.prefetch_auto
        };
        // RabbitMQ's and ActiveMQ's names for the window.
        let asked = ["prefetch-count", "activemq.prefetchSize"]
            .iter()
            .find_map(|name| frame.header(name)?.trim().parse::<usize>().ok());
        let window = asked
            .unwrap_or(default)
            .clamp(1, self.config.max_prefetch.max(1));
        self.next_subscriber += 1;
        let key = SubscriberKey(self.next_subscriber);
        c.subscriptions.insert(id.clone(), key);
        c.by_destination.insert((destination.clone(), key));
        match kind {
            Kind::Topic | Kind::Pattern => {
                self.routes.insert(&destination, kind == Kind::Pattern, key);
            }
            Kind::Queue => {
                c.consumes.insert((destination.clone(), key));
                self.queues.add_consumer(&destination, key);
            }
            Kind::Remote => {
                let consume = shard::Inner::Consume {
                    consumer: key,
                    connection,
                    id: id.clone(),
                    destination: destination.clone(),
                    ack,
                    window,
                };
                self.tell(owner, consume);
            }
            Kind::User => {}
            Kind::App => self.events.push_back(BrokerEvent::AppSubscribe {
                connection,
                id: id.clone(),
                destination: destination.clone(),
                frame: frame.clone(),
            }),
            Kind::Relayed => self
                .events
                .push_back(BrokerEvent::Relay(RelayEvent::Subscribe {
                    connection,
                    id: id.clone(),
                    destination: destination.clone(),
                    ack,
                    frame: frame.clone(),
                })),
        }
        // A relayed one is reported once the other broker took it (`relay_subscribed`).
        if kind != Kind::App && kind != Kind::Relayed {
            self.events.push_back(BrokerEvent::Subscribed {
                connection,
                id: id.clone(),
                destination: named,
            });
        }
        let mut subscriber = Subscriber::new(connection, id, &destination, kind);
        subscriber.ack = ack;
        subscriber.window = window;
        self.subscribers.insert(key, subscriber);
        if kind == Kind::Queue {
            self.dispatch(now, &destination);
        }
        if let Some((messages, _)) = recovery {
            self.replay(now, key, &messages);
        }
    }

    /// Ends a subscription: its unacknowledged queue messages go back to their queue. Queue
    /// messages already handed to the session under auto ack are still written (`output`
    /// kept); should the connection end first, they go back too. Relayed ones are settled at
    /// the other broker now, unless they will never be written (`output` lost), which leaves
    /// them to it to redeliver: the other broker cannot hold them for us.
    pub(super) fn unsubscribe(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: &SubscriptionId,
        output: Output,
    ) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let Some(key) = c.subscriptions.remove(id) else {
            return;
        };
        let Some(s) = self.subscribers.remove(&key) else {
            return;
        };
        self.steps += 1;
        let destination = s.pattern.as_str();
        c.by_destination.remove(&(destination.to_owned(), key));
        match s.kind {
            Kind::Topic | Kind::Pattern => {
                self.routes
                    .remove(destination, s.kind == Kind::Pattern, key);
            }
            Kind::Queue => {
                c.consumes.remove(&(destination.to_owned(), key));
                self.end_consumer(now, key, s);
            }
            Kind::Remote => {
                // Those still on their way to the client are settled by the owner once
                // written, or put back should the connection end first, as for a queue here.
                let handed = c
                    .relayed_unwritten
                    .iter()
                    .filter(|u| u.remote.is_some_and(|r| r.key == key))
                    .map(|u| u.message_id.clone())
                    .collect();
                let owner = self.owner(destination);
                let cancel = shard::Inner::Cancel {
                    consumer: key,
                    handed,
                };
                self.tell(owner, cancel);
            }
            Kind::Relayed => {
                let (handed, rest) = std::mem::take(&mut c.relayed_unwritten)
                    .into_iter()
                    .partition(|u| u.remote.is_none() && u.id == *id);
                c.relayed_unwritten = rest;
                let handed: Vec<String> = handed.into_iter().map(|u| u.message_id).collect();
                if output == Output::Kept && !handed.is_empty() {
                    self.events
                        .push_back(BrokerEvent::Relay(RelayEvent::Settle {
                            connection,
                            id: id.clone(),
                            message_ids: handed,
                            settlement: Settlement::Ack,
                        }));
                }
                self.events
                    .push_back(BrokerEvent::Relay(RelayEvent::Unsubscribe {
                        connection,
                        id: id.clone(),
                    }));
            }
            Kind::User | Kind::App => {}
        }
    }

    /// A queue consumer ended (here or on another shard): what it had not acknowledged goes
    /// back to the queue, for the others.
    pub(super) fn end_consumer(&mut self, now: Instant, key: SubscriberKey, s: Subscriber) {
        let destination = s.pattern.as_str();
        let mut unacked: Vec<(u64, Stored)> = s.unacked.into_values().collect();
        self.steps += unacked.len() as u64;
        unacked.sort_by_key(|(take, _)| *take);
        self.requeue(
            now,
            unacked.into_iter().map(|(_, message)| message).collect(),
        );
        self.queues.remove_consumer(destination, key);
        self.dispatch(now, destination);
    }

    /// An ACK (`done`) or NACK of queue messages: done with, or back to the head of the queue.
    pub(super) fn settle_acks(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        set: MessageSet,
        settlement: Settlement,
    ) {
        let Some(key) = self
            .connections
            .get(&connection)
            .and_then(|c| c.subscriptions.get(&set.subscription).copied())
        else {
            return;
        };
        let Some(s) = self.subscribers.get(&key) else {
            return;
        };
        match s.kind {
            Kind::Relayed => self
                .events
                .push_back(BrokerEvent::Relay(RelayEvent::Settle {
                    connection,
                    id: set.subscription,
                    message_ids: set.message_ids,
                    settlement,
                })),
            Kind::Remote => {
                let owner = self.owner(s.pattern.as_str());
                // With a journal, what follows (the RECEIPT of an ACK) waits for the owner's.
                let confirm = self.wait_afar(connection);
                let settle = shard::Inner::Settle {
                    consumer: key,
                    message_ids: set.message_ids,
                    settlement,
                    confirm,
                };
                self.tell(owner, settle);
            }
            Kind::Queue => self.settle(now, key, &set.message_ids, settlement),
            _ => {}
        }
    }

    /// Queue messages of consumer `key`, here or on another shard, are done with (ACK) or go
    /// back to the head of the queue (NACK).
    pub(super) fn settle(
        &mut self,
        now: Instant,
        key: SubscriberKey,
        message_ids: &[String],
        settlement: Settlement,
    ) {
        let Some(s) = self.subscribers.get_mut(&key) else {
            return;
        };
        let mut settled: Vec<(u64, Stored)> = message_ids
            .iter()
            .filter_map(|id| s.unacked.remove(id))
            .collect();
        self.steps += settled.len() as u64;
        let queue = s.pattern.as_str().to_owned();
        let connection = s.connection;
        // A consumer on another shard that ended is forgotten with its last message.
        if s.cancelled && s.unacked.is_empty() {
            if let Some(remote) = s.remote {
                self.remote_consumers.remove(&(remote.shard, remote.key));
            }
            self.subscribers.remove(&key);
        }
        if settlement == Settlement::Ack {
            for (_, message) in &settled {
                if let Some(key) = message.journaled {
                    self.journal.removed(key);
                }
                self.queues.done(message);
            }
            // The ACK's RECEIPT leaves once the journal has it.
            if settled.iter().any(|(_, m)| m.journaled.is_some()) {
                self.hold_for_journal(connection);
            }
        } else {
            settled.sort_by_key(|(take, _)| *take);
            self.requeue(
                now,
                settled.into_iter().map(|(_, message)| message).collect(),
            );
        }
        self.dispatch(now, &queue);
    }

    pub(super) fn on_send(&mut self, connection: ConnectionId, now: Instant, frame: FrameBuf) {
        let destination = frame
            .header("destination")
            .map(|d| d.into_owned())
            .unwrap_or_default();
        // In relay mode the session left this SEND's RECEIPT to the broker (one inside a
        // transaction was answered as it arrived).
        let deferred = self.config.relay && frame.header("transaction").is_none();
        let deferred_receipt = deferred
            .then(|| frame.header("receipt").map(|r| r.into_owned()))
            .flatten();
        if self.policy.is_app(&destination) {
            self.events.push_back(BrokerEvent::AppMessage {
                connection,
                destination,
                frame,
            });
        } else if self.config.relay && self.policy.is_served(&destination) {
            self.events.push_back(BrokerEvent::Relay(RelayEvent::Send {
                connection,
                destination,
                frame,
            }));
            // Its RECEIPT is the other broker's to give (`relay_sent`).
            return;
        } else if self.policy.is_served(&destination) {
            // The sender's own headers pass on to subscribers; the ones that framed the SEND
            // or that each delivery sets do not. Those are copied out of the frame once.
            let own: Vec<(String, String)> = frame
                .headers()
                .iter()
                .filter_map(|h| {
                    let name = h.name();
                    (!RESERVED.contains(&&*name))
                        .then(|| (name.into_owned(), h.value().into_owned()))
                })
                .collect();
            let queue = self.policy.is_queue(&destination);
            // A queue keeps the body: copied, so that it does not pin the whole buffer it
            // was read into, which queue limits would not count.
            let body = if queue {
                Bytes::copy_from_slice(frame.body())
            } else {
                frame.body().clone()
            };
            let message = self.new_message(destination, own, body);
            self.route(now, message, Some(connection));
        } else {
            self.events.push_back(BrokerEvent::Dropped {
                connection,
                destination,
            });
        }
        if let Some(receipt) = deferred_receipt {
            self.relay_sent(connection, now, &receipt);
        }
    }
}
