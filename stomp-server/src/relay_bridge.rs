//! The broker task's bridge to the relay: the broker's relay events go out to the other
//! broker, and what comes back (answers, deliveries, receipts, messages to users) goes into
//! the broker.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use stomp_broker::{Broker, ConnectionId, RelayEvent};
use stomp_session::Delivery;
use tokio::sync::{mpsc, oneshot};

use crate::channel::{FromRelay, ToHub};
use crate::error::PublishError;
use crate::relay::Relay;
pub(crate) use crate::relay::RelayConfig;

/// Owned headers as the broker's borrowed pairs.
fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// The relay of one broker task.
pub(crate) struct RelayBridge {
    relay: Relay,
}

impl RelayBridge {
    /// Starts the relay's connections; what they receive comes to `inbox`.
    pub(crate) fn start(config: RelayConfig, inbox: mpsc::Sender<ToHub>) -> RelayBridge {
        RelayBridge {
            relay: Relay::start(config, inbox),
        }
    }

    /// Whether the relay's connections to the other broker are up.
    pub(crate) fn available(&self) -> bool {
        self.relay.available()
    }

    /// Whether the session's input is held for SENDs the other broker has not confirmed.
    pub(crate) fn holds(&self, connection: ConnectionId) -> bool {
        self.relay.holds(connection)
    }

    /// The application publishes to `destination`: relayed when the other broker serves
    /// it (answered once it took the message), else routed here.
    pub(crate) fn publish(
        &mut self,
        broker: &mut Broker,
        now: Instant,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        done: oneshot::Sender<Result<String, PublishError>>,
    ) {
        if broker.is_relayed(destination) {
            self.relay.publish(destination, headers, body, done);
        } else {
            let _ = done.send(Ok(broker.publish(now, destination, headers, body)));
        }
    }

    /// The application sends to `user`: her sessions here at once, those on other nodes
    /// through the other broker; answered once the other broker took it.
    pub(crate) fn send_to_user(
        &mut self,
        broker: &mut Broker,
        now: Instant,
        (user, destination): (&str, &str),
        headers: &[(&str, &str)],
        body: Bytes,
        done: oneshot::Sender<Result<usize, PublishError>>,
    ) {
        if !self.relay.available() {
            let _ = done.send(Err(PublishError::BrokerUnavailable));
            return;
        }
        let reached = broker.send_to_user(now, user, destination, headers, body.clone());
        self.relay
            .to_user(user, destination, headers, body, (reached, done));
    }

    /// A user's session here connected.
    pub(crate) fn user_joined(&mut self, user: &Arc<str>) {
        self.relay.user_joined(user);
    }

    /// A session here closed, as `user` if it had logged in.
    pub(crate) fn closed(&mut self, connection: ConnectionId, user: Option<&Arc<str>>) {
        self.relay.closed(connection);
        if let Some(user) = user {
            self.relay.user_left(user);
        }
    }

    /// What the relay reports from the other broker, into the broker. `held_by_worker` says
    /// whether a session's input is still held by its worker once the relay releases it.
    pub(crate) fn take_in(
        &mut self,
        broker: &mut Broker,
        from: FromRelay,
        now: Instant,
        held_by_worker: impl Fn(ConnectionId) -> bool,
    ) {
        match from {
            FromRelay::Subscribed {
                connection,
                id,
                outcome,
            } => {
                broker.relay_subscribed(connection, now, &id, outcome);
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
                // A late message of an earlier subscription with the same id is dropped.
                if self.relay.is_current(connection, &id, serial) {
                    let pairs = pairs(&headers);
                    let delivery =
                        Delivery::new(&destination, &message_id, &body).with_headers(&pairs);
                    broker.relay_deliver(connection, now, &id, delivery);
                }
            }
            FromRelay::Sent {
                connection,
                receipt,
            } => {
                if let Some(receipt) = receipt {
                    broker.relay_sent(connection, now, &receipt);
                }
                if self.relay.sent(connection) && !held_by_worker(connection) {
                    broker.release_input(connection, now);
                }
            }
            FromRelay::Lost {
                connection,
                message,
            } => broker.close_with_error(connection, now, &message),
            FromRelay::TopicSubscribed { topic, outcome } => {
                for (connection, id) in self.relay.topic_answered(topic, outcome.is_ok()) {
                    broker.relay_subscribed(connection, now, &id, outcome.clone());
                }
            }
            FromRelay::TopicDeliver {
                topic,
                destination,
                message_id,
                headers,
                body,
            } => {
                let pairs = pairs(&headers);
                let delivery = Delivery::new(&destination, &message_id, &body).with_headers(&pairs);
                for (connection, id) in self.relay.topic_members(topic) {
                    broker.relay_deliver(*connection, now, id, delivery);
                }
            }
            FromRelay::TopicLost { topic, message } => {
                for (connection, _) in self.relay.topic_lost(topic) {
                    broker.close_with_error(connection, now, &message);
                }
            }
            FromRelay::ToUser {
                user,
                destination,
                headers,
                body,
            } => {
                broker.send_to_user(now, &user, &destination, &pairs(&headers), body);
            }
        }
    }

    /// A relay event of the broker, out to the other broker; refused while it cannot be.
    pub(crate) fn carry_out(&mut self, broker: &mut Broker, event: RelayEvent, now: Instant) {
        let relay = &mut self.relay;
        match event {
            RelayEvent::Subscribe {
                connection,
                id,
                destination,
                ack,
                frame,
            } => match relay.subscribe(connection, id.clone(), destination, ack, &frame) {
                Ok(true) => broker.relay_subscribed(connection, now, &id, Ok(())),
                Ok(false) => {}
                Err(why) => broker.relay_subscribed(connection, now, &id, Err(why)),
            },
            RelayEvent::Unsubscribe { connection, id } => relay.unsubscribe(connection, &id),
            RelayEvent::Send {
                connection,
                destination,
                frame,
            } => match relay.send(connection, &destination, &frame) {
                Ok(true) => broker.hold_input(connection, now),
                Ok(false) => {}
                Err(why) => broker.close_with_error(connection, now, why.message()),
            },
            // The server's own publishes go to the relay directly (`publish` above).
            RelayEvent::Publish { destination, .. } => {
                tracing::warn!(%destination, "relay: a publish of the broker's own not relayed");
            }
            RelayEvent::Settle {
                connection,
                id,
                message_ids,
                settlement,
            } => relay.settle(connection, id, message_ids, settlement),
            other => tracing::debug!(?other, "relay: an event of a kind this relay ignores"),
        }
    }
}
