//! A sans-IO in-memory STOMP broker over [`stomp_session::ServerSession`], in the shape of
//! Spring's simple broker, bounded and isolated so that no client can exhaust it.
//!
//! **Who this is for.** Authors of servers on a runtime of their choice. To run a broker or
//! build an application with handlers, start with `stomp-server`, which drives this crate over
//! TCP and WebSocket with tokio.
//!
//! - Broker destinations (by prefix, `/topic/`, `/queue/` and `/chat/` by default): topic
//!   semantics (every subscriber gets each message; `*` matches one segment and `**` any
//!   number), and queue semantics under the queue prefix: each message goes to one consumer,
//!   round-robin among those with room in their window (prefetch), and leaves the queue only
//!   when acknowledged, or under auto ack once written to the transport. A NACK, or a consumer
//!   that goes away, puts its messages back at the head of the queue, marked `redelivered`.
//! - Durable topic subscriptions in RabbitMQ's headers (`durable:true`, `auto-delete:false`,
//!   named by `id`) and ActiveMQ's (`client-id` on CONNECT, `activemq.subscriptionName`):
//!   what is published while the subscriber is away waits for it, within the queue limits.
//! - Dead letters: a queue message redelivered more than six times (configurable), or past
//!   its `expires` time or its queue's time to live, moves to `/queue/DLQ.<name>`.
//! - Persistence ([`Broker#persistence`]): with a journal the driver keeps, persistent queue
//!   messages (and durable subscriptions) outlive the process.
//! - Application destinations (`/app/` by default): a SEND there becomes a
//!   [`BrokerEvent::AppMessage`] for application code, which can [`Broker::reply`] to the sender
//!   and [`Broker::publish`] to broker destinations.
//! - User destinations (`/user/` by default): a SUBSCRIBE to `/user/queue/x` is the session's
//!   own; only the application reaches it. Clients may not send there.
//! - A SUBSCRIBE or SEND outside what is served, with a pattern where none is allowed, or
//!   refused by the [`Authorizer`], is an ERROR before any RECEIPT.
//! - Bounds: queue octets per destination and in all (publishers past them are
//!   flow-controlled: [`Broker::wants_input`] turns false), windows of unacknowledged messages,
//!   destination length and segments, and every session limit of [`BrokerConfig::session`]. A
//!   destination nobody uses holds no memory.
//! - Routing costs one map look-up and a walk linear in the destination's segments, however
//!   many subscriptions exist elsewhere.
//!
//! The broker does no IO and reads no clock. A driver owns the sockets: it calls
//! [`Broker::open`] per accepted connection, feeds it input and time, and after each call
//! writes out what [`Broker::poll_ready`] names; it reports how far it has written with
//! [`Broker::handle_written`] when [`Broker::poll_write_report`] asks.
//!
//! ```
//! use std::time::Instant;
//! use stomp_broker::{Broker, BrokerConfig};
//!
//! let now = Instant::now();
//! let mut broker = Broker::new(BrokerConfig::default());
//! let alice = broker.open(now);
//! let bob = broker.open(now);
//! broker.handle_input(alice, now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0SUBSCRIBE\nid:0\ndestination:/topic/news\n\n\0");
//! broker.handle_input(bob, now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0SEND\ndestination:/topic/news\n\nhi\0");
//! let mut alice_got = Vec::new();
//! while let Some(bytes) = broker.poll_transmit(alice) {
//!     alice_got.extend_from_slice(&bytes);
//! }
//! let text = String::from_utf8_lossy(&alice_got);
//! assert!(text.contains("MESSAGE\nsubscription:0\nmessage-id:"));
//! assert!(text.ends_with("\n\nhi\0"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod broker;
mod config;
mod event;
mod history;
mod ids;
pub mod journal;
mod pattern;
mod policy;
mod queue;
mod ready;
mod routes;
mod settlement;
mod shard;
mod stats;

pub use broker::Broker;
pub use config::{AllowAll, Authorizer, BrokerConfig, Persistence, Shard};
pub use event::{BrokerEvent, RelayEvent};
pub use ids::{ConnectionId, connection_named, session_name};
pub use pattern::Pattern;
pub use settlement::Settlement;
pub use shard::{ShardMessage, owner_of};
pub use stats::{BrokerStats, Figure, FigureKind};
/// The session crate this broker is built on; the session types its API uses are re-exported
/// here too, so that no other crate need be named.
pub use stomp_session;
pub use stomp_session::{
    AckMode, CloseReason, ConnectRequest, Delivery, FrameBuf, Refused, ServerConfig, SubscriptionId,
};
