//! [`Stats`]: what the server holds and has done, as [`Handle::stats`](crate::Handle::stats)
//! reports it and `/metrics` serves it.

use stomp_broker::BrokerStats;

/// What the server holds and has done, from [`Handle::stats`](crate::Handle::stats): the figures `/metrics` serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections, subscriptions, queues, and running totals of sessions, frames and
    /// deliveries.
    pub broker: BrokerStats,
    /// Each queue with messages or consumers, and the messages waiting in it, by name.
    pub queues: Vec<(String, usize)>,
    /// Relay mode: whether every connection to the other broker is up (`None` without a
    /// relay).
    pub relay_available: Option<bool>,
    /// Shards whose broker task has not come back to its loop within the stall timeout
    /// ([`ServerBuilder::stall_timeout`](crate::ServerBuilder::stall_timeout)): their
    /// clients wait, and their figures are missing from the rest.
    pub stalled_shards: Vec<usize>,
    /// Times a broker task stalled so, since the start.
    pub stalls: u64,
}
