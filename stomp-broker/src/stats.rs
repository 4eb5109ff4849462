//! [`BrokerStats`]: what a broker holds and has done.

/// What a broker holds at one moment, from [`Broker::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Open connections.
    pub connections: usize,
    /// Subscriptions of all connections.
    pub subscriptions: usize,
    /// Literal topic destinations with at least one subscriber.
    pub topics: usize,
    /// Nodes of the pattern trie below its root: what pattern subscriptions hold.
    pub pattern_nodes: usize,
    /// Queues with messages or consumers.
    pub queues: usize,
    /// Messages waiting in queues for a consumer.
    pub queued_messages: usize,
    /// Octets held in queues, waiting or unacknowledged.
    pub queued_bytes: usize,
    /// Connections whose input is stopped by a queue limit.
    pub paused_publishers: usize,
    /// Logged-in users with at least one session.
    pub users: usize,
    /// Connections opened since the start.
    pub opened: u64,
    /// Sessions closed since the start.
    pub closed: u64,
    /// Sessions closed other than by the client's DISCONNECT.
    pub closed_abnormally: u64,
    /// Consumers closed for falling behind, since the start.
    pub slow_consumers_closed: u64,
    /// Frames received from clients since the start, heart-beats aside.
    pub frames_received: u64,
    /// Frames queued for clients since the start, heart-beats aside.
    pub frames_sent: u64,
    /// MESSAGE frames queued for subscribers since the start.
    pub deliveries: u64,
    /// Octets received from clients since the start: what the driver handed in.
    pub octets_received: u64,
}

impl std::ops::AddAssign for BrokerStats {
    /// Adds another shard's figures: the server's are the sum of its shards'.
    fn add_assign(&mut self, other: BrokerStats) {
        self.connections += other.connections;
        self.subscriptions += other.subscriptions;
        self.topics += other.topics;
        self.pattern_nodes += other.pattern_nodes;
        self.queues += other.queues;
        self.queued_messages += other.queued_messages;
        self.queued_bytes += other.queued_bytes;
        self.paused_publishers += other.paused_publishers;
        self.users += other.users;
        self.opened += other.opened;
        self.closed += other.closed;
        self.closed_abnormally += other.closed_abnormally;
        self.slow_consumers_closed += other.slow_consumers_closed;
        self.frames_received += other.frames_received;
        self.frames_sent += other.frames_sent;
        self.deliveries += other.deliveries;
        self.octets_received += other.octets_received;
    }
}
