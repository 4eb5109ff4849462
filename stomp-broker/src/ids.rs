//! The names the broker gives connections and subscriptions.

/// Identifies one connection of the broker, for the broker's whole life: its
/// [`session_name`] is the `session` header its CONNECTED carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    /// The number behind the id, as logs show it.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies one subscription across the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SubscriberKey(pub(crate) u64);

/// The `session` header CONNECTED carries, naming the connection as Spring and RabbitMQ do.
pub fn session_name(connection: ConnectionId) -> String {
    format!("session-{connection}")
}

/// The connection a [`session_name`] names, if it is one.
pub fn connection_named(session: &str) -> Option<ConnectionId> {
    let number = session.strip_prefix("session-")?;
    // Only the form `session_name` writes: no sign, no leading zero.
    if number.starts_with(['+', '0']) && number != "0" {
        return None;
    }
    number.parse().ok().map(ConnectionId)
}
