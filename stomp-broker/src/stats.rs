//! [`BrokerStats`]: what a broker holds and has done. Each figure is named once, in the list
//! below, with its Prometheus name and help: the struct, the sum over shards, the log line and
//! the metrics page all come from it.

use std::fmt;
use std::ops::AddAssign;

/// Whether a figure is a level now (a gauge) or a running total since the start (a counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FigureKind {
    /// A level: it goes up and down.
    Gauge,
    /// A running total: it only goes up.
    Counter,
}

/// One figure of [`BrokerStats`], as [`BrokerStats::figures`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Figure {
    /// The field's name, as logs show it.
    pub name: &'static str,
    /// Its Prometheus metric name.
    pub metric: &'static str,
    /// Gauge or counter.
    pub kind: FigureKind,
    /// Its Prometheus help text.
    pub help: &'static str,
    /// Its value.
    pub value: u64,
}

macro_rules! figures {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty, $kind:ident, $metric:literal, $help:literal;)*) => {
        /// What a broker holds at one moment, from [`Broker::stats`](crate::Broker::stats).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct BrokerStats {
            $($(#[doc = $doc])* pub $name: $ty,)*
        }

        impl AddAssign for BrokerStats {
            /// Adds another shard's figures: the server's are the sum of its shards'.
            fn add_assign(&mut self, other: BrokerStats) {
                $(self.$name += other.$name;)*
            }
        }

        impl BrokerStats {
            /// Every figure, in a fixed order, with its Prometheus name, kind and help.
            pub fn figures(&self) -> impl Iterator<Item = Figure> {
                [$(Figure {
                    name: stringify!($name),
                    metric: $metric,
                    kind: figure_kind!($kind),
                    help: $help,
                    value: self.$name as u64,
                }),*]
                .into_iter()
            }
        }
    };
}

macro_rules! figure_kind {
    (gauge) => {
        FigureKind::Gauge
    };
    (counter) => {
        FigureKind::Counter
    };
}

figures! {
    /// Open connections.
    connections: usize, gauge, "stomp_sessions", "Open STOMP connections.";
    /// Subscriptions of all connections.
    subscriptions: usize, gauge, "stomp_subscriptions", "Subscriptions of all sessions.";
    /// Literal topic destinations with at least one subscriber.
    topics: usize, gauge, "stomp_topics", "Topic destinations with a subscriber.";
    /// Nodes of the pattern trie below its root: what pattern subscriptions hold.
    pattern_nodes: usize, gauge, "stomp_pattern_nodes", "Nodes of the pattern trie.";
    /// Queues with messages or consumers.
    queues: usize, gauge, "stomp_queues", "Queues with messages or consumers.";
    /// Messages waiting in queues for a consumer.
    queued_messages: usize, gauge, "stomp_queued_messages", "Messages waiting in queues.";
    /// Octets held in queues, waiting or unacknowledged.
    queued_bytes: usize, gauge, "stomp_queued_bytes", "Octets held in queues, waiting or unacknowledged.";
    /// Connections whose input is stopped by a queue limit.
    paused_publishers: usize, gauge, "stomp_paused_publishers", "Connections whose input is stopped by a queue limit.";
    /// Logged-in users with at least one session.
    users: usize, gauge, "stomp_users", "Logged-in users with at least one session.";
    /// Connections opened since the start.
    opened: u64, counter, "stomp_sessions_opened_total", "Connections opened.";
    /// Sessions closed since the start.
    closed: u64, counter, "stomp_sessions_closed_total", "Sessions closed.";
    /// Sessions closed other than by the client's DISCONNECT.
    closed_abnormally: u64, counter, "stomp_sessions_closed_abnormally_total", "Sessions closed other than by DISCONNECT.";
    /// Consumers closed for falling behind, since the start.
    slow_consumers_closed: u64, counter, "stomp_slow_consumers_closed_total", "Consumers closed for falling behind.";
    /// Octets the journal holds on disk, as the driver reports them.
    journal_bytes: u64, gauge, "stomp_journal_bytes", "Octets the journal holds on disk.";
    /// 1 while the journal is at its limit and publishers of persistent messages wait.
    journal_full: usize, gauge, "stomp_journal_full", "1 while the journal is at its disk limit.";
    /// Octets held in topic histories.
    history_bytes: usize, gauge, "stomp_history_bytes", "Octets held in topic histories.";
    /// Durable topic subscriptions, connected or not.
    durable_subscriptions: usize, gauge, "stomp_durable_subscriptions", "Durable topic subscriptions.";
    /// Copies for durable subscriptions dropped because their queue was at its limit.
    durable_dropped: u64, counter, "stomp_durable_dropped_total", "Messages for durable subscriptions dropped at their queue limit.";
    /// Logins refused because their user had as many sessions as it may.
    user_limit_refused: u64, counter, "stomp_user_limit_refused_total", "Logins refused at the sessions-per-user limit.";
    /// Frames received from clients since the start, heart-beats aside.
    frames_received: u64, counter, "stomp_frames_received_total", "Frames received, heart-beats aside.";
    /// Frames queued for clients since the start, heart-beats aside.
    frames_sent: u64, counter, "stomp_frames_sent_total", "Frames sent, heart-beats aside.";
    /// MESSAGE frames queued for subscribers since the start.
    deliveries: u64, counter, "stomp_deliveries_total", "MESSAGE frames delivered to subscribers.";
    /// Octets received from clients since the start: what the driver handed in.
    octets_received: u64, counter, "stomp_received_bytes_total", "Octets read from clients.";
}

impl fmt::Display for BrokerStats {
    /// Every figure as `name=value`, separated by spaces, as the server's summary logs them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, figure) in self.figures().enumerate() {
            let space = if i == 0 { "" } else { " " };
            write!(f, "{space}{}={}", figure.name, figure.value)?;
        }
        Ok(())
    }
}
