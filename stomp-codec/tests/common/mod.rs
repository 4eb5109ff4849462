//! The shared harness: streams fed to a decoder in chosen pieces.
#![allow(unused_imports, unreachable_pub)]

pub use stomp_testkit::pieces::*;
