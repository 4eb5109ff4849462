//! A zero-copy, resumable frame parser and encoder for STOMP 1.0, 1.1 and 1.2.
//!
//! STOMP frames are a command line, header lines and a body ended by NUL. This crate finds them
//! in a byte stream from any transport (TCP, WebSocket messages, test vectors), checks them
//! against the rules of the negotiated version, and encodes outgoing ones. It does no IO.
//!
//! **Who this is for.** Anyone who handles STOMP bytes directly: drivers, proxies, capture
//! tools, tests. It is what `stomp-session` is built on; an application that wants to connect,
//! subscribe and send should start with a driver (`stomp-blocking`, or `stomp-server` for a
//! server) rather than here.
//!
//! - [`parse`]: one item from a `&[u8]`; the [`Frame`] borrows its command, headers and body from
//!   the input, with no allocation.
//! - [`Decoder`]: a resumable decoder over `BytesMut` that yields owned [`FrameBuf`]s backed by
//!   [`bytes::Bytes`]; a frame in many pieces is scanned once, and bodies are never copied.
//! - [`Encoder`] and [`OutFrame`]: frames into any [`bytes::BufMut`], escaped for the version,
//!   with `content-length` added where the body needs it, and the head apart from the body when
//!   the body is large.
//! - [`Limits`]: sizes enforced while a frame is still arriving.
//!
//! Header escaping follows the version (1.2 "Value Encoding"): none in 1.0, `\n` `\c` `\\` in
//! 1.1, and `\r` too in 1.2; CONNECT, CONNECTED and STOMP frames are never escaped. A header
//! line splits at its first colon, the first of repeated headers counts, CR LF line ends are
//! accepted on every version, and invalid input is a typed [`Error`], never a panic.
//!
//! # Parsing
//!
//! ```
//! use stomp_codec::{parse, Command, Config, Status, Version};
//!
//! let wire = b"MESSAGE\r\ndestination:/topic/a\r\nmessage-id:ID\\c7\r\n\r\nhello\0\n";
//! let config = Config::new(Version::V1_2);
//! let Status::Frame(frame, used) = parse(wire, &config)? else { panic!("incomplete") };
//! assert_eq!(frame.command(), Command::Message);
//! assert_eq!(frame.header("message-id").as_deref(), Some("ID:7"));
//! assert_eq!(frame.body(), b"hello");
//! // The LF after the NUL is an item of its own: a heart-beat or a trailing EOL.
//! assert_eq!(parse(&wire[used..], &config)?, Status::HeartBeat(1));
//! # Ok::<(), stomp_codec::Error>(())
//! ```
//!
//! # Decoding a stream
//!
//! ```
//! use bytes::BytesMut;
//! use stomp_codec::{Config, Decoder, Item, Version};
//!
//! let mut decoder = Decoder::new(Config::new(Version::V1_2));
//! let mut buf = BytesMut::new();
//! let mut bodies = Vec::new();
//! for piece in [&b"SEND\ndestination:/q\ncontent-length:3\n\na\0"[..], b"b\0", b"\n"] {
//!     buf.extend_from_slice(piece); // as read from a socket
//!     while let Some(item) = decoder.decode(&mut buf)? {
//!         if let Item::Frame(frame) = item {
//!             bodies.push(frame.body().clone());
//!         }
//!     }
//! }
//! assert_eq!(bodies, [&b"a\0b"[..]]);
//! # Ok::<(), stomp_codec::Error>(())
//! ```
//!
//! # Encoding
//!
//! ```
//! use stomp_codec::{Command, Encoder, OutFrame, Version};
//!
//! let frame = OutFrame::new(Command::Send)
//!     .with_header("destination", "/queue/orders")
//!     .with_header("x-path", "a:b")
//!     .with_body("hi");
//! let mut wire = Vec::new();
//! Encoder::new(Version::V1_2).encode(&frame, &mut wire)?;
//! assert_eq!(wire, b"SEND\ndestination:/queue/orders\nx-path:a\\cb\n\nhi\0");
//!
//! // 1.0 has no escapes: a colon in a header name cannot be sent.
//! let bad = OutFrame::new(Command::Send).with_header("a:b", "c");
//! assert!(Encoder::new(Version::V1_0).encode(&bad, &mut Vec::new()).is_err());
//! # Ok::<(), stomp_codec::EncodeError>(())
//! ```
//!
//! # Features
//!
//! - `std` (default): builds against the standard library. Without it the crate needs only
//!   `alloc`.
//! - `tokio-util`: [`StompCodec`], tokio-util's `Decoder` and `Encoder`, for `Framed`.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

mod classes;
mod command;
mod config;
mod decoder;
mod encode;
mod error;
mod escape;
mod frame;
mod grammar;
mod limits;
mod owned;
mod parse;
mod scan;
mod swar;
#[cfg(feature = "tokio-util")]
mod tokio_codec;
mod version;

pub use command::{Command, UnknownCommand};
pub use config::Config;
pub use decoder::{Decoder, Item};
pub use encode::{Encoder, OutFrame};
pub use error::{EncodeError, Error};
pub use frame::{Frame, Header, HeaderIter, Headers};
pub use limits::Limits;
pub use owned::FrameBuf;
pub use parse::{Status, parse};
#[cfg(feature = "tokio-util")]
pub use tokio_codec::{CodecError, StompCodec};
pub use version::{UnknownVersion, Version};
