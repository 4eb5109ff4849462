//! Relay mode ([`BrokerConfig::with_relay`](crate::BrokerConfig::with_relay)): broker
//! destinations are another broker's. Sessions, application and user destinations stay here;
//! SUBSCRIBE, UNSUBSCRIBE and SEND to broker destinations, and the acknowledgements of what
//! was relayed, become events for the driver's relay, which hands messages back with
//! [`Broker::relay_deliver`].

use std::time::Instant;

use stomp_session::{AckMode, Delivery, SubscriptionId};

use crate::policy::Kind;
use crate::{Broker, BrokerEvent, ConnectionId};

/// A relayed message under auto ack, done with once written.
#[derive(Debug)]
pub(crate) struct Unwritten {
    /// The offset in the connection's output just past it.
    pub(crate) end: u64,
    pub(crate) id: SubscriptionId,
    pub(crate) message_id: String,
}

impl Broker {
    /// The other broker's answer to a [`BrokerEvent::RelaySubscribe`]: `Ok` confirms the
    /// subscription (its RECEIPT goes out, and the session acts on what it received next);
    /// `Err` refuses it with an ERROR carrying the message, and the session closes. An answer
    /// for a subscription or connection that is gone meanwhile is ignored.
    pub fn relay_subscribed(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: &SubscriptionId,
        outcome: Result<(), &str>,
    ) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        if !c.subscriptions.contains_key(id) {
            return;
        }
        // A relayed SUBSCRIBE holds its session's input, so it is the one that waits.
        let _ = match outcome {
            Ok(()) => c.session.confirm_subscription(now),
            Err(message) => c.session.refuse_subscription(now, message),
        };
        self.on_session_events(connection, now);
    }

    /// Delivers a message from the other broker to relayed subscription `id` of `connection`;
    /// whether it was taken (not if the subscription is gone). Under `client` ack modes its
    /// acknowledgement comes as a [`BrokerEvent::RelayAck`]; under auto ack, a `RelayAck`
    /// comes once it is written to the client, so that the relay can let the other broker
    /// send more only as fast as the client takes them.
    pub fn relay_deliver(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: &SubscriptionId,
        delivery: Delivery<'_>,
    ) -> bool {
        self.deliver_from_afar(connection, now, id, delivery, Kind::Relayed)
    }

    /// Delivers a message held elsewhere (by the other broker, or by the queue's owner shard)
    /// to subscription `id` of `connection`, of `kind`; whether it was taken. Under auto ack,
    /// its holder hears once it is written.
    pub(crate) fn deliver_from_afar(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: &SubscriptionId,
        delivery: Delivery<'_>,
        kind: Kind,
    ) -> bool {
        let Some(c) = self.connections.get_mut(&connection) else {
            return false;
        };
        let Some(key) = c.subscriptions.get(id) else {
            return false;
        };
        let Some(s) = self.subscribers.get(key) else {
            return false;
        };
        if s.kind != kind || c.session.deliver(now, id, delivery).is_err() {
            return false;
        }
        if s.ack == AckMode::Auto {
            c.relayed_unwritten.push_back(Unwritten {
                end: c.session.octets_queued(),
                id: id.clone(),
                message_id: delivery.message_id.to_owned(),
            });
        }
        self.totals.deliveries += 1;
        self.ready.insert(connection);
        true
    }

    /// The other broker took a relayed SEND of `connection` that asked for a RECEIPT: the
    /// RECEIPT with `receipt_id` goes out now (the [`BrokerEvent::RelaySend`]'s frame carries
    /// the id as its `receipt` header; one inside a transaction was answered already). A
    /// refused one is the driver's to close with an ERROR.
    pub fn relay_sent(&mut self, connection: ConnectionId, now: Instant, receipt_id: &str) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        if c.session.send_receipt_for(now, receipt_id).is_ok() {
            self.ready.insert(connection);
        }
    }

    /// Relayed auto-ack messages now written to `connection`: one `RelayAck` per subscription.
    pub(crate) fn relayed_written(&mut self, connection: ConnectionId) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let mut done: Vec<(SubscriptionId, Vec<String>)> = Vec::new();
        while c
            .relayed_unwritten
            .front()
            .is_some_and(|u| u.end <= c.written)
        {
            let Some(u) = c.relayed_unwritten.pop_front() else {
                break;
            };
            match done.iter_mut().find(|(id, _)| *id == u.id) {
                Some((_, ids)) => ids.push(u.message_id),
                None => done.push((u.id, vec![u.message_id])),
            }
        }
        let Some(c) = self.connections.get(&connection) else {
            return;
        };
        let done: Vec<_> = done
            .into_iter()
            .map(|(id, message_ids)| {
                let remote = c
                    .subscriptions
                    .get(&id)
                    .and_then(|key| self.subscribers.get(key))
                    .filter(|s| s.kind == Kind::Remote)
                    .map(|s| self.owner(s.pattern.as_str()));
                (id, message_ids, remote)
            })
            .collect();
        for (id, message_ids, remote) in done {
            match remote {
                Some(owner) => self.tell(
                    owner,
                    crate::shard::Inner::Settle {
                        connection,
                        id,
                        message_ids,
                        ack: true,
                    },
                ),
                None => self.events.push_back(BrokerEvent::RelayAck {
                    connection,
                    id,
                    message_ids,
                    ack: true,
                }),
            }
        }
    }
}
