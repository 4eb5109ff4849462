//! An async STOMP client for tokio, over TCP and WebSocket, on the sans-IO
//! [`stomp_session::ClientSession`]: STOMP 1.0, 1.1 and 1.2 with the server's choice, receipts
//! awaited as futures, subscriptions as bounded [`Stream`](futures_util::Stream)s with
//! backpressure, heart-beats on the runtime's timers.
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod driver;
mod error;
mod transport;

pub use client::{Client, ClientBuilder, Subscription, Transaction};
pub use error::Error;
pub use stomp_session::{
    self, AckMode, CloseReason, HeartBeat, Limits, Message, SendFrame, SubscriptionId,
    TransactionId, Version,
};

/// The README's Rust examples, compiled, and run where they need no server, as doctests:
/// this crate's tests can build them all.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct Readme;
