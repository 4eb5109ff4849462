//! The shared harness: a client and a server session wired together on virtual time.
#![allow(unused_imports, unreachable_pub)]

pub use stomp_testkit::pair::*;
