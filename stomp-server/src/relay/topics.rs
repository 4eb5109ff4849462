//! Topic subscriptions that a node's sessions share at the other broker: every `auto`
//! subscription to the same topic (same destination, same headers) is one subscription
//! there, so the broker sends each message to the node once, however many of its sessions
//! subscribed, and the hub hands it to each of them.

use std::collections::HashMap;

use stomp_broker::ConnectionId;
use stomp_session::SubscriptionId;
use tokio::sync::mpsc;

use super::link::Settle;

/// What makes two subscriptions the same one at the broker: its destination there, how
/// deliveries are named here, and the headers it goes with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TopicKey {
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) rule: Option<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
}

/// One subscription at the broker and the sessions' subscriptions it serves.
#[derive(Debug)]
struct Topic {
    key: TopicKey,
    members: Vec<(ConnectionId, SubscriptionId)>,
    /// The broker answered its SUBSCRIBE: a new member is answered at once.
    up: bool,
    /// Dropped when the last member leaves, which ends the subscription at the broker.
    _stop: mpsc::UnboundedSender<Settle>,
}

/// Where a session joined.
#[derive(Debug)]
pub(crate) enum Joined {
    /// A new subscription at the broker, to be made under this number, stopped when the
    /// returned sender is dropped (its receiver goes to the subscription's task).
    New(u64, mpsc::UnboundedReceiver<Settle>),
    /// One the broker has taken already: the session is subscribed now.
    Up(u64),
    /// One whose SUBSCRIBE the broker has not answered yet: the session hears with the rest.
    Pending(u64),
}

/// The shared topic subscriptions of one broker task.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    by_number: HashMap<u64, Topic>,
    by_key: HashMap<TopicKey, u64>,
    numbered: u64,
}

impl Topics {
    /// Adds a session's subscription to the shared one for `key`, made if there is none.
    pub(crate) fn join(&mut self, key: TopicKey, member: (ConnectionId, SubscriptionId)) -> Joined {
        if let Some(&number) = self.by_key.get(&key) {
            if let Some(topic) = self.by_number.get_mut(&number) {
                topic.members.push(member);
                return if topic.up {
                    Joined::Up(number)
                } else {
                    Joined::Pending(number)
                };
            }
        }
        self.numbered += 1;
        let number = self.numbered;
        let (stop, stopped) = mpsc::unbounded_channel();
        self.by_key.insert(key.clone(), number);
        let topic = Topic {
            key,
            members: vec![member],
            up: false,
            _stop: stop,
        };
        self.by_number.insert(number, topic);
        Joined::New(number, stopped)
    }

    /// A member left: the last one's leaving ends the subscription at the broker.
    pub(crate) fn leave(&mut self, number: u64, member: &(ConnectionId, SubscriptionId)) {
        let Some(topic) = self.by_number.get_mut(&number) else {
            return;
        };
        topic.members.retain(|m| m != member);
        if topic.members.is_empty() {
            self.end(number);
        }
    }

    /// The broker took the SUBSCRIBE (`true`) or refused it: the members to answer. A
    /// refused one is gone.
    pub(crate) fn answered(
        &mut self,
        number: u64,
        taken: bool,
    ) -> Vec<(ConnectionId, SubscriptionId)> {
        let Some(topic) = self.by_number.get_mut(&number) else {
            return Vec::new();
        };
        topic.up = taken;
        if taken {
            topic.members.clone()
        } else {
            self.end(number)
        }
    }

    /// The members a message of subscription `number` goes to.
    pub(crate) fn members(&self, number: u64) -> &[(ConnectionId, SubscriptionId)] {
        self.by_number
            .get(&number)
            .map_or(&[], |topic| topic.members.as_slice())
    }

    /// Ends subscription `number` (lost with its broker connection, or refused); its members.
    pub(crate) fn end(&mut self, number: u64) -> Vec<(ConnectionId, SubscriptionId)> {
        let Some(topic) = self.by_number.remove(&number) else {
            return Vec::new();
        };
        self.by_key.remove(&topic.key);
        topic.members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(remote: &str) -> TopicKey {
        TopicKey {
            local: remote.to_owned(),
            remote: remote.to_owned(),
            rule: None,
            headers: Vec::new(),
        }
    }

    fn member(n: u64, id: &str) -> (ConnectionId, SubscriptionId) {
        let connection = stomp_broker::connection_named(&format!("session-{n}"));
        (
            connection.expect("a session name"),
            SubscriptionId::from(id),
        )
    }

    #[test]
    fn sessions_share_one_subscription_until_the_last_leaves() {
        let mut topics = Topics::default();
        let Joined::New(number, mut stopped) = topics.join(key("/topic/a"), member(1, "0")) else {
            panic!("the first member makes the subscription");
        };
        assert!(matches!(
            topics.join(key("/topic/a"), member(2, "0")),
            Joined::Pending(n) if n == number
        ));
        assert!(matches!(
            topics.join(key("/topic/b"), member(2, "1")),
            Joined::New(..)
        ));
        assert_eq!(topics.answered(number, true).len(), 2);
        assert!(matches!(
            topics.join(key("/topic/a"), member(3, "x")),
            Joined::Up(n) if n == number
        ));
        assert_eq!(topics.members(number).len(), 3);
        topics.leave(number, &member(1, "0"));
        topics.leave(number, &member(3, "x"));
        assert_eq!(topics.members(number), [member(2, "0")]);
        assert!(
            stopped
                .try_recv()
                .is_err_and(|e| e == mpsc::error::TryRecvError::Empty)
        );
        topics.leave(number, &member(2, "0"));
        assert!(topics.members(number).is_empty());
        // The subscription's task sees its end.
        assert!(matches!(
            stopped.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        // The next subscriber makes a new one.
        assert!(matches!(
            topics.join(key("/topic/a"), member(4, "0")),
            Joined::New(n, _) if n != number
        ));
    }

    #[test]
    fn a_refused_subscription_answers_and_forgets_its_members() {
        let mut topics = Topics::default();
        let Joined::New(number, _) = topics.join(key("/topic/a"), member(1, "0")) else {
            panic!();
        };
        topics.join(key("/topic/a"), member(2, "0"));
        assert_eq!(topics.answered(number, false).len(), 2);
        assert!(topics.members(number).is_empty());
        assert!(matches!(
            topics.join(key("/topic/a"), member(3, "0")),
            Joined::New(..)
        ));
    }
}
