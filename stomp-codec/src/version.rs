//! Protocol versions and the escaping rules each one implies.

use core::fmt;
use core::str::FromStr;

use crate::Command;

/// A STOMP protocol version.
///
/// Versions are ordered, so the highest common version of two lists is a `max` away.
///
/// ```
/// use stomp_codec::Version;
///
/// assert_eq!("1.1".parse::<Version>(), Ok(Version::V1_1));
/// assert!(Version::V1_2 > Version::V1_0);
/// assert_eq!(Version::V1_2.as_str(), "1.2");
/// ```
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping, LF line ends, no NACK.
    V1_0,
    /// STOMP 1.1: escapes `\n`, `\c`, `\\`; heart-beats; NACK.
    V1_1,
    /// STOMP 1.2: adds the `\r` escape and CR LF line ends.
    V1_2,
}

impl Version {
    /// Every version, lowest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as it appears in `accept-version` and `version` headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses a version token such as `1.2`, or `None` for anything else.
    pub fn from_bytes(token: &[u8]) -> Option<Version> {
        match token {
            b"1.0" => Some(Version::V1_0),
            b"1.1" => Some(Version::V1_1),
            b"1.2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Version`] from text that names no known version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownVersion;

impl fmt::Display for UnknownVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown STOMP version (expected 1.0, 1.1 or 1.2)")
    }
}

impl core::error::Error for UnknownVersion {}

impl FromStr for Version {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::from_bytes(s.as_bytes()).ok_or(UnknownVersion)
    }
}

/// How header names and values of one frame are escaped on the wire (1.2 "Value Encoding").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Escaping {
    /// No escapes: a backslash is an ordinary octet (1.0, and CONNECT, CONNECTED, STOMP always).
    None,
    /// `\n`, `\c`, `\\` (1.1).
    V1_1,
    /// `\r`, `\n`, `\c`, `\\` (1.2).
    V1_2,
}

impl Escaping {
    /// The escaping that `command` uses under `version`. CONNECT, CONNECTED and STOMP are never
    /// escaped, "to remain backward compatible" (1.2 "Value Encoding").
    pub(crate) fn for_frame(version: Version, command: Command) -> Escaping {
        if !command.escapes_headers() {
            return Escaping::None;
        }
        match version {
            Version::V1_0 => Escaping::None,
            Version::V1_1 => Escaping::V1_1,
            Version::V1_2 => Escaping::V1_2,
        }
    }
}
