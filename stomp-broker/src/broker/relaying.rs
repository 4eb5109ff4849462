//! Relay mode ([`BrokerConfig::with_relay`](crate::BrokerConfig::with_relay)): broker
//! destinations are another broker's. Sessions, application and user destinations stay here;
//! SUBSCRIBE, UNSUBSCRIBE and SEND to broker destinations, and the acknowledgements of what
//! was relayed, become events for the driver's relay, which hands messages back with
//! [`Broker::relay_deliver`].

use std::time::Instant;

use stomp_session::{AckMode, Delivery, Refused, SubscriptionId};

use crate::event::{BrokerEvent, RelayEvent};
use crate::ids::{ConnectionId, SubscriberKey};
use crate::policy::Kind;
use crate::settlement::Settlement;
use crate::shard::{Inner, Peer};

use super::{Broker, HeldElsewhere};

impl Broker {
    /// The other broker's answer to a [`RelayEvent::Subscribe`](crate::RelayEvent::Subscribe): `Ok`
    /// confirms the subscription (its RECEIPT goes out, and the session acts on what it received
    /// next); `Err` refuses it with an ERROR carrying the message, and the session closes. An
    /// answer for a subscription or connection that is gone meanwhile is ignored.
    pub fn relay_subscribed(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: &SubscriptionId,
        outcome: Result<(), Refused>,
    ) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let Some(key) = c.subscriptions.get(id) else {
            return;
        };
        // A relayed SUBSCRIBE holds its session's input, so it is the one that waits.
        let _ = match outcome {
            Ok(()) => {
                if let Some(subscriber) = self.subscribers.get(key) {
                    self.events.push_back(BrokerEvent::Subscribed {
                        connection,
                        id: id.clone(),
                        destination: subscriber.pattern.as_str().to_owned(),
                    });
                }
                c.session.confirm_subscription(now)
            }
            Err(refused) => c.session.refuse_subscription(now, refused.message()),
        };
        self.on_session_events(connection, now);
    }

    /// Delivers a message from the other broker to relayed subscription `id` of `connection`;
    /// whether it was taken (not if the subscription is gone). Under `client` ack modes its
    /// acknowledgement comes as a [`RelayEvent::Settle`]; under auto ack, a `Settle`
    /// comes once it is written to the client, so that the relay can let the other broker
    /// send more only as fast as the client takes them.
    pub fn relay_deliver(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        id: &SubscriptionId,
        delivery: Delivery<'_>,
    ) -> bool {
        let key = self
            .connections
            .get(&connection)
            .and_then(|c| c.subscriptions.get(id).copied());
        key.is_some_and(|key| self.deliver_from_afar(key, now, delivery, Kind::Relayed))
    }

    /// Delivers a message held elsewhere (by the other broker, or by the queue's owner shard)
    /// to subscriber `key`, of `kind`; whether it was taken. Under auto ack, its holder hears
    /// once it is written.
    pub(super) fn deliver_from_afar(
        &mut self,
        key: SubscriberKey,
        now: Instant,
        delivery: Delivery<'_>,
        kind: Kind,
    ) -> bool {
        self.steps += 1;
        let Some(s) = self.subscribers.get(&key) else {
            return false;
        };
        let owner = self.owner(s.pattern.as_str());
        let Some(c) = self.connections.get_mut(&s.connection) else {
            return false;
        };
        if s.kind != kind || c.session.deliver(now, &s.id, delivery).is_err() {
            return false;
        }
        if s.ack == AckMode::Auto {
            let remote = (kind == Kind::Remote).then_some(Peer { shard: owner, key });
            c.relayed_unwritten.push_back(HeldElsewhere {
                end: c.session.octets_queued(),
                id: s.id.clone(),
                message_id: delivery.message_id.to_owned(),
                remote,
            });
        }
        self.totals.deliveries += 1;
        self.ready.insert(s.connection);
        true
    }

    /// The other broker took a relayed SEND of `connection` that asked for a RECEIPT: the
    /// RECEIPT with `receipt_id` goes out now (the [`RelayEvent::Send`](crate::RelayEvent::Send)'s
    /// frame carries the id as its `receipt` header; one inside a transaction was answered
    /// already). A refused one is the driver's to close with an ERROR.
    pub fn relay_sent(&mut self, connection: ConnectionId, now: Instant, receipt_id: &str) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        if c.session.send_receipt_for(now, receipt_id).is_ok() {
            self.ready.insert(connection);
        }
    }

    /// Auto-ack messages held elsewhere now written to `connection`: one `RelayAck` per
    /// relayed subscription, one `Settle` per consumer of a queue on another shard.
    pub(super) fn relayed_written(&mut self, connection: ConnectionId) {
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        let mut done: Vec<(SubscriptionId, Option<Peer>, Vec<String>)> = Vec::new();
        while c
            .relayed_unwritten
            .front()
            .is_some_and(|u| u.end <= c.written)
        {
            let Some(u) = c.relayed_unwritten.pop_front() else {
                break;
            };
            self.steps += 1;
            match done
                .iter_mut()
                .find(|(id, remote, _)| *id == u.id && *remote == u.remote)
            {
                Some((_, _, ids)) => ids.push(u.message_id),
                None => done.push((u.id, u.remote, vec![u.message_id])),
            }
        }
        for (id, remote, message_ids) in done {
            match remote {
                Some(peer) => self.tell(
                    peer.shard,
                    Inner::Settle {
                        consumer: peer.key,
                        message_ids,
                        settlement: Settlement::Ack,
                        confirm: None,
                    },
                ),
                None => self
                    .events
                    .push_back(BrokerEvent::Relay(RelayEvent::Settle {
                        connection,
                        id,
                        message_ids,
                        settlement: Settlement::Ack,
                    })),
            }
        }
    }

    /// A connection is gone with messages held elsewhere not written: those of queues on
    /// other shards go back to their owners' queues (relayed ones are the other broker's to
    /// redeliver, once their subscription ends).
    pub(super) fn relayed_lost(&mut self, lost: std::collections::VecDeque<HeldElsewhere>) {
        for u in lost {
            self.steps += 1;
            if let Some(peer) = u.remote {
                let settle = Inner::Settle {
                    consumer: peer.key,
                    message_ids: vec![u.message_id],
                    settlement: Settlement::Nack,
                    confirm: None,
                };
                self.tell(peer.shard, settle);
            }
        }
    }
}
