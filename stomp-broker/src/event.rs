//! What the broker tells its driver, by audience: the application ([`BrokerEvent`]), the relay
//! ([`RelayEvent`]) and the other shards ([`BrokerEvent::ToShard`]).

use bytes::Bytes;
use stomp_session::{AckMode, CloseReason, FrameBuf, SubscriptionId};

use crate::ids::ConnectionId;
use crate::settlement::Settlement;
use crate::shard::ShardMessage;

/// What application code learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerEvent {
    /// A client's CONNECT waits for the application's verdict ([`Broker::log_in`]), as the
    /// [`Authorizer`](crate::Authorizer) [decides later](crate::Authorizer::decides_later).
    ///
    /// [`Broker::log_in`]: crate::Broker::log_in
    Login {
        /// The connection.
        connection: ConnectionId,
        /// Its CONNECT (boxed, as in [`stomp_session::ServerEvent::Connect`]).
        request: Box<stomp_session::ConnectRequest>,
    },
    /// A client connected.
    Connected {
        /// The connection.
        connection: ConnectionId,
        /// The user it acts as, as the [`Authorizer`](crate::Authorizer) named it (by default
        /// its login).
        user: Option<String>,
    },
    /// A session subscribed to a broker destination (not an application one: see
    /// [`AppSubscribe`](BrokerEvent::AppSubscribe)).
    Subscribed {
        /// The connection.
        connection: ConnectionId,
        /// The subscription's id.
        id: SubscriptionId,
        /// Its destination.
        destination: String,
    },
    /// A session ended one of its subscriptions with UNSUBSCRIBE (a session that closes
    /// reports [`Closed`](BrokerEvent::Closed) alone).
    Unsubscribed {
        /// The connection.
        connection: ConnectionId,
        /// The subscription's id.
        id: SubscriptionId,
        /// Its destination.
        destination: String,
    },
    /// A SEND to an application destination.
    AppMessage {
        /// The sender.
        connection: ConnectionId,
        /// The destination it was sent to.
        destination: String,
        /// The SEND frame.
        frame: FrameBuf,
    },
    /// A SUBSCRIBE to an application destination, confirmed: the application may answer the
    /// subscriber there with [`Broker::reply`](crate::Broker::reply) (as Spring's
    /// `@SubscribeMapping` does), until it unsubscribes.
    AppSubscribe {
        /// The subscriber.
        connection: ConnectionId,
        /// The subscription's id in its session.
        id: SubscriptionId,
        /// The destination it subscribed to.
        destination: String,
        /// The SUBSCRIBE frame.
        frame: FrameBuf,
    },
    /// A SEND to a destination nobody serves, dropped (only with
    /// [`BrokerConfig::drop_unserved_sends`](crate::BrokerConfig::drop_unserved_sends);
    /// otherwise such a SEND is an ERROR).
    Dropped {
        /// The sender.
        connection: ConnectionId,
        /// The destination.
        destination: String,
    },
    /// A connection's session closed.
    Closed {
        /// The connection.
        connection: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
    /// Relay mode: for the relay, which carries it to the other broker.
    Relay(RelayEvent),
    /// Shards: a message for another shard of the server, to hand to its
    /// [`Broker::handle_shard`](crate::Broker::handle_shard) (see
    /// [`Broker`](crate::Broker#shards)).
    ToShard {
        /// The shard it is for.
        shard: usize,
        /// What to hand it.
        message: ShardMessage,
    },
}

/// Relay mode: what the relay carries to the other broker, in the order the broker produced it
/// (see [`BrokerEvent::Relay`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// A SUBSCRIBE to a broker destination, waiting for the other broker. Answer with
    /// [`Broker::relay_subscribed`](crate::Broker::relay_subscribed); until then the session
    /// acts on nothing more it received.
    Subscribe {
        /// The subscriber.
        connection: ConnectionId,
        /// The subscription's id in its session: deliveries name it.
        id: SubscriptionId,
        /// The destination it subscribed to.
        destination: String,
        /// Its ack mode towards the client.
        ack: AckMode,
        /// The SUBSCRIBE frame, for headers such as `prefetch-count`.
        frame: FrameBuf,
    },
    /// A relayed subscription ended (UNSUBSCRIBE, or its session closed); what it
    /// had not acknowledged is the other broker's to redeliver.
    Unsubscribe {
        /// The subscriber.
        connection: ConnectionId,
        /// The subscription's id in its session.
        id: SubscriptionId,
    },
    /// A SEND to a broker destination (at COMMIT when it was in a transaction).
    Send {
        /// The sender.
        connection: ConnectionId,
        /// The destination.
        destination: String,
        /// The SEND frame.
        frame: FrameBuf,
    },
    /// The application published to a broker destination
    /// ([`Broker::publish`](crate::Broker::publish)).
    Publish {
        /// The destination.
        destination: String,
        /// The message's own headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Bytes,
    },
    /// Relayed messages are done with ([`Settlement::Ack`]: the client
    /// acknowledged them, or, under auto ack, they were written to it) or refused
    /// ([`Settlement::Nack`]: the client NACKed them).
    Settle {
        /// The subscriber.
        connection: ConnectionId,
        /// The subscription's id in its session.
        id: SubscriptionId,
        /// The `message-id`s the deliveries carried, oldest first.
        message_ids: Vec<String>,
        /// Acknowledged, or refused.
        settlement: Settlement,
    },
}
