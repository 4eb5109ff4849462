//! Who is connected and subscribed where, as the application asks (presence, "who is in this
//! room"): the broker's own sessions only; a server with shards asks each.

use stomp_session::SubscriptionId;

use crate::ids::ConnectionId;

use super::Broker;

impl Broker {
    /// Every user with a session here, and how many sessions each has.
    pub fn users(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.users.iter().map(|(user, s)| (user.as_str(), s.len()))
    }

    /// The sessions of `user` here, oldest first.
    pub fn sessions_of(&self, user: &str) -> Vec<ConnectionId> {
        self.users
            .get(user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The user session `connection` acts as, if it is here, connected, and not anonymous.
    pub fn user_of(&self, connection: ConnectionId) -> Option<&str> {
        self.connections.get(&connection)?.user.as_deref()
    }

    /// The subscriptions of session `connection` (id and destination as subscribed), in
    /// order of destination.
    pub fn subscriptions_of(&self, connection: ConnectionId) -> Vec<(SubscriptionId, String)> {
        let Some(c) = self.connections.get(&connection) else {
            return Vec::new();
        };
        c.by_destination
            .iter()
            .filter_map(|(destination, key)| {
                let subscriber = self.subscribers.get(key)?;
                Some((subscriber.id.clone(), destination.clone()))
            })
            .collect()
    }

    /// The subscriptions here to `destination` exactly as subscribed (a pattern subscription
    /// counts under its pattern): session and subscription id.
    pub fn subscribers_of(&self, destination: &str) -> Vec<(ConnectionId, SubscriptionId)> {
        let mut found: Vec<(ConnectionId, SubscriptionId)> = self
            .connections
            .iter()
            .flat_map(|(connection, c)| {
                let start = (destination.to_owned(), crate::ids::SubscriberKey(0));
                c.by_destination
                    .range(start..)
                    .take_while(move |(d, _)| d == destination)
                    .filter_map(move |(_, key)| {
                        let subscriber = self.subscribers.get(key)?;
                        Some((*connection, subscriber.id.clone()))
                    })
            })
            .collect();
        found.sort();
        found
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::{Broker, BrokerConfig};

    #[test]
    fn users_sessions_and_subscriptions() {
        #[allow(clippy::disallowed_methods)] // the origin of virtual time
        let now = Instant::now();
        let mut broker = Broker::new(BrokerConfig::default());
        let mut open = |login: &str, subscribe: &str| {
            let id = broker.open(now);
            let frames =
                format!("CONNECT\naccept-version:1.2\nhost:/\nlogin:{login}\n\n\0{subscribe}");
            broker.handle_input(id, now, frames.as_bytes());
            id
        };
        let ann = open("ann", "SUBSCRIBE\nid:a\ndestination:/topic/room\n\n\0");
        let ann2 = open("ann", "");
        let bob = open(
            "bob",
            "SUBSCRIBE\nid:b1\ndestination:/topic/room\n\n\0SUBSCRIBE\nid:b2\ndestination:/queue/x\n\n\0",
        );
        let mut users: Vec<(&str, usize)> = broker.users().collect();
        users.sort();
        assert_eq!(users, [("ann", 2), ("bob", 1)]);
        assert_eq!(broker.sessions_of("ann"), [ann, ann2]);
        assert_eq!(broker.user_of(bob), Some("bob"));
        let subscriptions: Vec<(String, String)> = broker
            .subscriptions_of(bob)
            .into_iter()
            .map(|(id, d)| (id.to_string(), d))
            .collect();
        assert_eq!(
            subscriptions,
            [
                ("b2".to_owned(), "/queue/x".to_owned()),
                ("b1".to_owned(), "/topic/room".to_owned())
            ]
        );
        let room: Vec<_> = broker.subscribers_of("/topic/room");
        assert_eq!(room.len(), 2);
        assert_eq!((room[0].0, room[1].0), (ann, bob));
        broker.handle_input(bob, now, b"UNSUBSCRIBE\nid:b1\n\n\0");
        assert_eq!(broker.subscribers_of("/topic/room").len(), 1);
        broker.handle_eof(ann, now);
        assert_eq!(broker.sessions_of("ann"), [ann2]);
    }
}
