//! An async STOMP client for tokio, over TCP, TLS and WebSocket, on the sans-IO
//! [`stomp_session::ClientSession`]: STOMP 1.0, 1.1 and 1.2 with the server's choice, receipts
//! awaited as futures, subscriptions as bounded [`Stream`](futures_util::Stream)s with
//! backpressure, heart-beats on the runtime's timers, and reconnection that restores
//! subscriptions.
//!
//! A [`Client`] is a handle to a connection driven by a task of its own: clone it into as many
//! tasks as need it. Publishing goes through a bounded queue and never waits for the receive
//! path; a subscription whose consumer falls behind makes the connection stop reading from the
//! server (TCP then slows the server down) instead of dropping messages or growing memory.
//!
//! ```no_run
//! use stomp_tokio::{AckMode, Client};
//!
//! # async fn run() -> Result<(), stomp_tokio::Error> {
//! let client = Client::builder("127.0.0.1:61613").login("guest", "guest").connect().await?;
//! let mut news = client.subscribe("/topic/news", AckMode::Auto).await?;
//! client.send("/topic/news", "hello").await?;
//! if let Some(message) = news.next().await {
//!     println!("{:?}", message.body());
//! }
//! client.disconnect().await
//! # }
//! ```
//!
//! # Endpoints
//!
//! | endpoint | transport |
//! |---|---|
//! | `host:port`, `tcp://host:port` | TCP |
//! | `tls://host:port`, `ssl://host:port` | TLS over TCP (rustls), the system's roots unless [`ClientBuilder::tls_roots`] or [`ClientBuilder::tls_config`] |
//! | `ws://host:port/path` | WebSocket, sub-protocols `v12.stomp`, `v11.stomp`, `v10.stomp` |
//! | `wss://host:port/path` | WebSocket over TLS |
//!
//! # Reconnecting
//!
//! ```no_run
//! use std::time::Duration;
//! use stomp_tokio::{AckMode, Client, ConnectionEvent, Reconnect};
//!
//! # async fn run() -> Result<(), stomp_tokio::Error> {
//! let client = Client::builder("tls://mq-1.example:61614")
//!     .failover("tls://mq-2.example:61614")
//!     .reconnect(Reconnect::new().with_max_delay(Duration::from_secs(10)))
//!     .connect()
//!     .await?;
//! let mut events = client.events();
//! tokio::spawn(async move {
//!     while let Some(event) = events.next().await {
//!         if let ConnectionEvent::Disconnected(reason) = event {
//!             eprintln!("lost the broker: {reason}");
//!         }
//!     }
//! });
//! // Restored on every new connection, under the same id.
//! let mut orders = client.subscribe("/queue/orders", AckMode::ClientIndividual).await?;
//! while let Some(order) = orders.next().await {
//!     // An order from a lost connection is redelivered; its ack fails with StaleMessage.
//!     let _ = orders.ack(&order).await;
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod command;
mod driver;
mod endpoint;
mod error;
mod events;
mod message;
mod receipt;
mod reconnect;
mod request;
mod subscription;
mod tls;
mod transaction;
mod transport;

pub use client::{Client, ClientBuilder};
pub use error::Error;
pub use events::{ConnectionEvent, ConnectionInfo, Events};
pub use message::Message;
pub use receipt::Receipt;
pub use reconnect::Reconnect;
pub use stomp_session::{
    self, AckMode, CloseReason, FrameBuf, HeartBeat, Limits, SendFrame, SubscriptionId,
    TransactionId, Version,
};
pub use subscription::Subscription;
pub use tokio_rustls::rustls;
pub use transaction::Transaction;

/// The README's Rust examples, compiled, and run where they need no server, as doctests:
/// this crate's tests can build them all.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct Readme;

/// The Rust examples of docs/client.md, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/client.md")]
struct ClientGuide;
