//! Sans-IO STOMP sessions: the client and server state machines of STOMP 1.0, 1.1 and 1.2.
//!
//! **Who this is for.** Authors of drivers and servers: code that owns a socket and wants the
//! protocol done right without choosing a runtime for its users. To *use* STOMP from an
//! application, start with a driver instead: [`stomp-blocking`](https://docs.rs/stomp-blocking)
//! for a `std::net` client, or [`stomp-server`](https://docs.rs/stomp-server) for a server with
//! application handlers.
//!
//! A session handles CONNECT, SUBSCRIBE, SEND, ACK and NACK, transactions, receipts and
//! heart-beats, and nothing else: it does no IO, starts no thread and reads no clock. Bytes and
//! time go in; bytes to write, events and the next deadline come out. So any transport can drive
//! it: a blocking socket, tokio, a WebSocket, or a test on virtual time.
//!
//! - [`ClientSession`]: connects with a version and heart-beat offer, subscribes, sends, acks by
//!   the rules of the negotiated version, matches receipts, disconnects gracefully with a
//!   bounded wait.
//! - [`ServerSession`]: one per accepted connection; negotiates the version, checks every client
//!   frame, keeps subscriptions, unacknowledged messages and transactions, and answers protocol
//!   errors with an ERROR frame (its [`Violation`]) before it closes.
//!
//! # Driving a session
//!
//! 1. Input: [`handle_input`](ClientSession::handle_input) with every chunk of bytes received,
//!    in order, in any chunking; [`handle_eof`](ClientSession::handle_eof) when the peer closes;
//!    [`handle_timeout`](ClientSession::handle_timeout) once the deadline from
//!    [`poll_timeout`](ClientSession::poll_timeout) has passed.
//! 2. Commands from the application ([`ClientSession::send`], [`ServerSession::deliver`], ...)
//!    at any time; each returns at once.
//! 3. After any of the above, drain the output: [`poll_event`](ClientSession::poll_event) until
//!    `None` (acting on events may queue more frames), then
//!    [`poll_transmit`](ClientSession::poll_transmit) until `None`, writing each buffer in
//!    order; then ask [`poll_timeout`](ClientSession::poll_timeout) for the next deadline.
//!    Writing before acting on events would leave what they queued unwritten until the next
//!    input: the classic hang of hand-written drivers.
//! 4. Stop when [`is_closed`](ClientSession::is_closed) is true: everything is written.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use stomp_session::*;
//!
//! // A client and a server, wired together in memory, on virtual time.
//! let start = Instant::now();
//! let mut client = ClientSession::new(ClientConfig::new("/"), start);
//! let mut server = ServerSession::new(ServerConfig::default(), start);
//! let pump = |client: &mut ClientSession, server: &mut ServerSession, now| {
//!     while let Some(bytes) = client.poll_transmit() { server.handle_input(now, &bytes); }
//!     while let Some(bytes) = server.poll_transmit() { client.handle_input(now, &bytes); }
//! };
//! pump(&mut client, &mut server, start);
//! assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
//! server.accept(start)?;
//! pump(&mut client, &mut server, start);
//! assert!(matches!(client.poll_event(), Some(ClientEvent::Connected { .. })));
//!
//! client.send(start, SendFrame::new("/app/hello", "hi"))?;
//! pump(&mut client, &mut server, start);
//! let Some(ServerEvent::Send(frame)) = server.poll_event() else { panic!() };
//! assert_eq!(frame.header("destination").as_deref(), Some("/app/hello"));
//! # Ok::<(), SessionError>(())
//! ```
//!
//! # Time
//!
//! Every call that can move a session on takes `now`, an [`Instant`](std::time::Instant) from
//! the driver's clock (tests pass virtual time). `now` should never go backwards between calls.
//! If it does, nothing panics and no state is lost: deadlines are always computed forward from
//! the `now` of the event that set them, so they are off by as much as the clock stepped back,
//! and [`handle_timeout`](ServerSession::handle_timeout) acts only on deadlines that have
//! passed by the `now` it is given.
//!
//! Every name can be imported at once: none shadows the standard prelude, so `Send` bounds
//! still mean `std::marker::Send`, and sessions can move between threads.
//!
//! ```
//! use stomp_session::*;
//!
//! fn across_threads<T: Send + Sync + 'static>(_: &T) {}
//! let now = std::time::Instant::now();
//! across_threads(&ClientSession::new(ClientConfig::new("/"), now));
//! across_threads(&ServerSession::new(ServerConfig::default(), now));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod client;
mod delivery;
mod error;
mod heartbeat;
mod ids;
mod link;
mod outbox;
mod server;
mod subscriptions;
mod types;

pub use client::{
    ClientConfig, ClientEvent, ClientSession, Message, SendFrame, Subscribed, Transaction,
};
pub use delivery::{Delivery, SharedDelivery};
pub use error::{CloseReason, Refused, SessionError, Violation};
pub use heartbeat::{HeartBeat, InvalidHeartBeat, Periods};
pub use ids::{ReceiptId, SubscriptionId, TransactionId};
pub use server::{ConnectRequest, SendCheck, ServerConfig, ServerEvent, ServerSession};
/// The codec this crate is built on, for its other types (`stomp_session::stomp_codec::Error`
/// is what [`CloseReason::Decode`] carries).
pub use stomp_codec;
pub use stomp_codec::{
    Command, EncodeError, FrameBuf, Header, HeaderIter, Headers, Limits, UnknownVersion, Version,
};
pub use subscriptions::MessageSet;
pub use types::{AckMode, AskReceipt, Secret};
