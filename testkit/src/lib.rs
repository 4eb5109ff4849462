//! Test support for this workspace, shared by the codec and session tests and the fuzz
//! targets, so that each harness exists once. Not published.
//!
//! - [`pieces`]: a byte stream fed to a `Decoder` in chosen pieces (whole, one octet at a time,
//!   random), following the version a CONNECT or CONNECTED settles, with outcomes to compare.
//! - [`pair`]: a client session and a server session wired together on virtual time.
//! - [`progress`]: a broker call checked for bounded progress.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod pair;
pub mod pieces;
pub mod progress;
