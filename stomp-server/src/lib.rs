//! A STOMP server to build applications on, as Spring's STOMP support is in Java: handlers for
//! application destinations, an in-memory broker for the rest, user destinations, and an
//! endpoint for STOMP over WebSocket that mounts in any axum router, beside STOMP over TCP.
//!
//! - [`App`] holds the application: async handlers for SENDs to destinations such as
//!   `/app/chat/{room}` (Spring's `@MessageMapping`), handlers that answer SUBSCRIBEs
//!   (`@SubscribeMapping`), a CONNECT hook that turns a login into a user, and interceptors of
//!   every inbound SEND and SUBSCRIBE. Each handler gets the [`Message`] (headers, body, JSON
//!   through serde) and a [`Context`] (session, user, path parameters, the way back).
//! - [`Server`] runs the broker ([`stomp_broker`]) in one task and the handlers beside it, each
//!   session's in order, with a bounded queue: a slow or panicking handler stalls neither the
//!   broker nor another session.
//! - [`Handle`] publishes to broker destinations and sends to users from anywhere in the
//!   application (Spring's `SimpMessagingTemplate`).
//! - [`Server::endpoint`] is the WebSocket endpoint as an axum route; [`Server::serve_tcp`]
//!   serves STOMP over TCP; [`Server::serve_tls`] and [`Server::serve_https`] serve TCP and
//!   HTTP (and so `wss://`) in TLS, with a [`Tls`] certificate; [`Server::metrics`] serves
//!   Prometheus figures.
//! - [`ServerBuilder::relay`] with a [`RelayConfig`] relays the broker destinations to RabbitMQ
//!   or ActiveMQ (Spring's broker relay), so that many nodes share them: subscriptions, SENDs,
//!   acknowledgements, receipts and user destinations across nodes, over a few multiplexed
//!   broker connections that reconnect for ever.
//! - [`ServerBuilder::shards`] runs the broker as several tasks routing side by side, for a
//!   machine with more cores than one task's routing keeps busy; every subscriber of a
//!   destination still gets its messages in one order.
//! - [`ServerBuilder::data_dir`] keeps persistent queue messages in a journal on disk: a
//!   RECEIPT only once the message is synced, and every queue rebuilt on start.
//! - The `stomp-server-bin` package is the `stomp-server` binary, with the classic chat built on
//!   this API alone.
//!
//! Every bound of the broker and the sessions ([`stomp_broker::BrokerConfig`]) holds over both
//! transports: frame sizes, connections, the time to CONNECT, queue memory, slow consumers.
//!
//! ```
//! use stomp_server::{App, Context, Failure, Json, Message, Server};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { item: String, count: u32 }
//!
//! /// SENDs to /app/orders/{shop}: the shop's topic hears of it, the sender gets an answer.
//! async fn order(ctx: Context, message: Message) -> Result<Json<serde_json::Value>, Failure> {
//!     let order: Order = message.json()?;
//!     let shop = ctx.param("shop").unwrap_or_default();
//!     let text = format!("{} x {}", order.count, order.item);
//!     ctx.publish(format!("/topic/{shop}"), text).await?;
//!     Ok(Json(serde_json::json!({ "accepted": order.count })))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = Server::builder().app(App::new().message("/app/orders/{shop}", order)).start();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! tokio::spawn(server.serve_tcp(listener));
//!
//! // A client: it subscribes to the shop's topic and to its own answers, then orders.
//! let mut client = tokio::net::TcpStream::connect(address).await?;
//! client.write_all(b"CONNECT\naccept-version:1.2\nlogin:ann\n\n\0\
//!     SUBSCRIBE\nid:0\ndestination:/topic/rust\n\n\0\
//!     SUBSCRIBE\nid:1\ndestination:/user/queue/replies\nreceipt:ready\n\n\0\
//!     SEND\ndestination:/app/orders/rust\n\n{\"item\":\"crab\",\"count\":2}\0").await?;
//! let mut received = String::new();
//! let mut buffer = [0; 4096];
//! while !(received.contains("2 x crab") && received.contains("{\"accepted\":2}")) {
//!     let n = client.read(&mut buffer).await?;
//!     assert!(n > 0, "closed early: {received}");
//!     received.push_str(&String::from_utf8_lossy(&buffer[..n]));
//! }
//! assert!(received.starts_with("CONNECTED\n"));
//! assert!(received.contains("user-name:ann\n"));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod app;
mod app_bridge;
mod budget;
mod channel;
mod connection;
mod context;
mod error;
mod gate;
mod handle;
mod handler;
mod http;
mod hub;
mod lifecycle;
mod login;
mod message;
#[cfg(feature = "metrics")]
mod metrics;
mod origins;
mod path;
mod peer_slots;
mod peers;
#[cfg(feature = "relay")]
mod relay;
#[cfg(feature = "relay")]
mod relay_bridge;
#[cfg(not(feature = "relay"))]
#[path = "no_relay.rs"]
mod relay_bridge;
mod route;
mod server;
mod stats;
mod store;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;
mod watchdog;
mod worker;
mod ws;

pub use app::{App, Failures, Inbound};
#[cfg(feature = "latency-budget")]
#[cfg_attr(docsrs, doc(cfg(feature = "latency-budget")))]
pub use budget::{LatencyBudget, StageFigures, latency_budget};
pub use context::Context;
pub use error::{PublishError, Stopped};
pub use handle::Handle;
pub use handler::{Extension, FromMessage, Handler, Outcome, State};
pub use lifecycle::{Ending, SessionEvent};
pub use login::{Admit, Login, Transport};
pub use message::{Failure, IntoReply, JSON, Json, Message, Payload, TEXT};
pub use origins::AllowedOrigins;
pub use path::Path;
#[cfg(feature = "relay")]
#[cfg_attr(docsrs, doc(cfg(feature = "relay")))]
pub use relay::{RelayConfig, RelayUrlError};
pub use server::{Server, ServerBuilder};
pub use stats::Stats;
pub use stomp_broker::{self, BrokerConfig, BrokerStats, Persistence};
pub use stomp_session::{self, ConnectRequest, Refused, ServerConfig};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::Tls;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tokio_rustls::rustls;
