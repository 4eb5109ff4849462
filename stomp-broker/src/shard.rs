//! Shards ([`BrokerConfig::with_shard`](crate::BrokerConfig::with_shard)): one server's
//! brokers, each with its own connections, routing side by side on as many cores. Every
//! broker destination has one owner shard, chosen by its name: a message sent anywhere goes
//! to its destination's owner, which routes it. A topic's owner hands each message to every
//! shard, which delivers it to its own subscribers; a queue's owner keeps the queue, and its
//! consumers on other shards are the owner's remote consumers, each message handed to one
//! of them and held until that shard says it is done with (acknowledged, or written under
//! auto ack). All subscribers of a destination therefore get its messages in one order, the
//! owner's, in which each publisher's messages keep the order they were sent in (the owner
//! gets them over one channel). What passes between shards is a [`ShardMessage`], which the
//! driver carries from the [`BrokerEvent::ToShard`] of one broker to
//! [`Broker::handle_shard`] of another, over one channel into each shard, in order.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHasher;
use stomp_session::{AckMode, SubscriptionId};

use crate::ids::{ConnectionId, SubscriberKey};
use crate::queue::Stored;
use crate::settlement::Settlement;

/// The shard, of `count`, that owns `destination`: the same on every shard and in every
/// driver (a name, not a client, decides it; names made to collide only load one shard).
pub fn owner_of(destination: &str, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let mut hasher = FxHasher::default();
    destination.hash(&mut hasher);
    (hasher.finish() % count as u64) as usize
}

/// What one shard tells another, opaque to the driver: carry it from a
/// [`BrokerEvent::ToShard`](crate::BrokerEvent::ToShard) to
/// [`Broker::handle_shard`](crate::Broker::handle_shard) of the shard it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardMessage(pub(crate) Inner);

impl ShardMessage {
    /// The octets of the client's message it carries (destination, headers and body, as a
    /// SEND carries them), or 0 for the shards' other business: for a driver's figures.
    pub fn octets(&self) -> usize {
        let stored = match &self.0 {
            Inner::Publish { message, .. } | Inner::Deliver { message, .. } => message,
            Inner::Fanout(message) => &**message,
            _ => return 0,
        };
        let headers: usize = stored
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum();
        stored.destination.len() + headers + stored.body.len()
    }
}

/// A queue consumer as the shards name it between them: the consumer's shard and its key
/// there, which, unlike the subscription's id, is never used again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) shard: usize,
    pub(crate) key: SubscriberKey,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Inner {
    /// To a destination's owner: a message to route, and who sent it (for flow control).
    Publish {
        message: Stored,
        from: Option<ConnectionId>,
    },
    /// From a topic's owner: a message for this shard's subscribers.
    Fanout(Arc<Stored>),
    /// To a queue's owner: a consumer on the sending shard.
    Consume {
        consumer: SubscriberKey,
        connection: ConnectionId,
        id: SubscriptionId,
        destination: String,
        ack: AckMode,
        window: usize,
    },
    /// To a queue's owner: that consumer is gone; what it held goes back, but for the
    /// messages `handed` to its session under auto ack and not yet written, which stay
    /// with it until they are settled.
    Cancel {
        consumer: SubscriberKey,
        handed: Vec<String>,
    },
    /// From a queue's owner: a message for one consumer here, of `connection`.
    Deliver {
        consumer: SubscriberKey,
        connection: ConnectionId,
        message: Stored,
    },
    /// To a queue's owner: messages a consumer is done with, or refused; with `confirm`,
    /// the connection whose output waits for the owner's journal to have it ([`Inner::Synced`]).
    Settle {
        consumer: SubscriberKey,
        message_ids: Vec<String>,
        settlement: Settlement,
        confirm: Option<ConnectionId>,
    },
    /// From a queue's owner with a journal: a record a connection here waited for (its
    /// persistent message, the delivery of one, its acknowledgement) is on disk.
    Synced { connection: ConnectionId },
    /// From a queue's owner: the queue a connection here sent to is full (`true`), or has
    /// room again.
    Pause {
        connection: ConnectionId,
        paused: bool,
    },
    /// To a queue's owner: a connection it paused has closed.
    Gone { connection: ConnectionId },
}
