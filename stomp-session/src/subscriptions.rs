//! A server session's subscriptions and the messages they wait to have acknowledged
//! (1.2 "SUBSCRIBE" ack modes, "ACK", "NACK").

use std::collections::VecDeque;

use foldhash::HashMap;

use crate::ids::SubscriptionId;
use crate::types::AckMode;

/// A delivered message that waits for its ACK or NACK.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Unacked {
    ack_id: String,
    message_id: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub(crate) destination: String,
    pub(crate) ack: AckMode,
    /// Oldest first, so that a cumulative ACK takes a prefix.
    unacked: VecDeque<Unacked>,
}

impl Subscription {
    pub(crate) fn unacked_len(&self) -> usize {
        self.unacked.len()
    }
}

/// How an ACK or NACK names its message, by version.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AckRef<'a> {
    /// 1.2: the `id` header, the MESSAGE's `ack` header.
    AckId(&'a str),
    /// 1.1: `message-id` and `subscription`.
    Subscription {
        message_id: &'a str,
        subscription: &'a str,
    },
    /// 1.0: `message-id` alone.
    MessageId(&'a str),
}

/// Messages of one subscription: those an ACK or NACK settled, or those left unacknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageSet {
    /// The subscription's id.
    pub subscription: SubscriptionId,
    /// The `message-id`s, oldest first.
    pub message_ids: Vec<String>,
}

impl MessageSet {
    /// The messages `message_ids` of `subscription`, as an application compares them.
    pub fn new(
        subscription: impl Into<SubscriptionId>,
        message_ids: impl IntoIterator<Item = impl Into<String>>,
    ) -> MessageSet {
        MessageSet {
            subscription: subscription.into(),
            message_ids: message_ids.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    by_id: HashMap<String, Subscription>,
    /// Ack id to subscription id, for 1.2 ACKs.
    by_ack_id: HashMap<String, String>,
}

impl Subscriptions {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Subscription> {
        self.by_id.get(id)
    }

    pub(crate) fn add(&mut self, id: String, destination: String, ack: AckMode) {
        let subscription = Subscription {
            destination,
            ack,
            unacked: VecDeque::new(),
        };
        self.by_id.insert(id, subscription);
    }

    /// Removes a subscription; returns the ids of its messages still unacknowledged.
    pub(crate) fn remove(&mut self, id: &str) -> Option<(Subscription, Vec<String>)> {
        let subscription = self.by_id.remove(id)?;
        let pending = subscription
            .unacked
            .iter()
            .map(|u| {
                self.by_ack_id.remove(&u.ack_id);
                u.message_id.clone()
            })
            .collect();
        Some((subscription, pending))
    }

    /// Records a delivery that waits for acknowledgement.
    pub(crate) fn delivered(&mut self, id: &str, ack_id: String, message_id: String) {
        if let Some(subscription) = self.by_id.get_mut(id) {
            self.by_ack_id.insert(ack_id.clone(), id.to_owned());
            subscription
                .unacked
                .push_back(Unacked { ack_id, message_id });
        }
    }

    /// Finds the subscription and position an ACK or NACK names, without changing anything.
    fn locate(&self, reference: AckRef<'_>) -> Option<(&str, usize)> {
        let (subscription, wanted): (&str, &dyn Fn(&Unacked) -> bool) = match reference {
            AckRef::AckId(ack_id) => (self.by_ack_id.get(ack_id)?, &move |u| u.ack_id == ack_id),
            AckRef::Subscription {
                message_id,
                subscription,
            } => (subscription, &move |u| u.message_id == message_id),
            AckRef::MessageId(message_id) => {
                let found = self.by_id.iter().find_map(|(id, s)| {
                    s.unacked
                        .iter()
                        .position(|u| u.message_id == message_id)
                        .map(|at| (id.as_str(), at))
                });
                return found;
            }
        };
        let (id, entry) = self.by_id.get_key_value(subscription)?;
        let at = entry.unacked.iter().position(wanted)?;
        Some((id.as_str(), at))
    }

    /// Whether an ACK or NACK names a message that waits for one.
    pub(crate) fn is_pending(&self, reference: AckRef<'_>) -> bool {
        self.locate(reference).is_some()
    }

    /// Settles the named message: with `client` acks it and every earlier one of its
    /// subscription (cumulative), with `client-individual` it alone.
    pub(crate) fn settle(&mut self, reference: AckRef<'_>) -> Option<MessageSet> {
        let (id, at) = self.locate(reference)?;
        let id = id.to_owned();
        let subscription = self.by_id.get_mut(&id)?;
        let taken: Vec<Unacked> = match subscription.ack {
            AckMode::Client => subscription.unacked.drain(..=at).collect(),
            _ => subscription.unacked.remove(at).into_iter().collect(),
        };
        let message_ids = taken
            .into_iter()
            .map(|u| {
                self.by_ack_id.remove(&u.ack_id);
                u.message_id
            })
            .collect();
        Some(MessageSet {
            subscription: id.into(),
            message_ids,
        })
    }

    /// Every subscription's unacknowledged message ids, for a connection that ends.
    pub(crate) fn drain_unacked(&mut self) -> Vec<MessageSet> {
        self.by_ack_id.clear();
        let mut all: Vec<MessageSet> = self
            .by_id
            .iter_mut()
            .filter(|(_, s)| !s.unacked.is_empty())
            .map(|(id, s)| MessageSet {
                subscription: id.as_str().into(),
                message_ids: s.unacked.drain(..).map(|u| u.message_id).collect(),
            })
            .collect();
        all.sort_by(|a, b| a.subscription.cmp(&b.subscription));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(mode: AckMode) -> Subscriptions {
        let mut subs = Subscriptions::default();
        subs.add("s".into(), "/q".into(), mode);
        for n in 1..=3 {
            subs.delivered("s", format!("a{n}"), format!("m{n}"));
        }
        subs
    }

    #[test]
    fn client_mode_is_cumulative() {
        let mut subs = table(AckMode::Client);
        let settled = subs.settle(AckRef::AckId("a2")).unwrap();
        assert_eq!(settled.message_ids, ["m1", "m2"]);
        assert!(!subs.is_pending(AckRef::AckId("a1")));
        assert!(subs.is_pending(AckRef::MessageId("m3")));
    }

    #[test]
    fn client_individual_mode_is_one_by_one() {
        let mut subs = table(AckMode::ClientIndividual);
        let settled = subs
            .settle(AckRef::Subscription {
                message_id: "m2",
                subscription: "s",
            })
            .unwrap();
        assert_eq!(settled.message_ids, ["m2"]);
        assert!(subs.is_pending(AckRef::AckId("a1")));
        assert!(subs.settle(AckRef::AckId("a2")).is_none());
        assert_eq!(subs.drain_unacked()[0].message_ids, ["m1", "m3"]);
    }
}
