//! [`Stats`]: what the server holds and has done, as [`Handle::stats`](crate::Handle::stats)
//! reports it and `/metrics` serves it.

use std::sync::atomic::AtomicU64;

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
    /// Relay mode: whether the relay's connections to the other broker are up (`None`
    /// without a relay); see [`Handle::relay_available`](crate::Handle::relay_available).
    pub relay_available: Option<bool>,
    /// Shards whose broker task has not come back to its loop within the stall timeout
    /// ([`ServerBuilder::stall_timeout`](crate::ServerBuilder::stall_timeout)): their
    /// clients wait, and their figures are missing from the rest.
    pub stalled_shards: Vec<usize>,
    /// Times a broker task stalled so, since the start.
    pub stalls: u64,
    /// WebSocket upgrades refused for their `Origin`
    /// ([`ServerBuilder::allowed_origins`](crate::ServerBuilder::allowed_origins)), since the
    /// start.
    pub origins_refused: u64,
    /// Connections refused because their peer address had as many as it may
    /// ([`ServerBuilder::max_connections_per_peer`](crate::ServerBuilder::max_connections_per_peer)),
    /// since the start.
    pub peers_refused: u64,
}

/// What the endpoint refused before any broker task saw it, counted for the figures.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    /// Upgrades refused for their `Origin`.
    pub(crate) origin: AtomicU64,
    /// Connections refused at their address's bound.
    pub(crate) peer: AtomicU64,
}
