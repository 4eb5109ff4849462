//! Errors of decoding and encoding.

use alloc::string::String;
use core::fmt;

use crate::{Command, Version};

/// Why bytes could not be decoded as STOMP.
///
/// Offsets count octets from the first byte of the frame being decoded (the first byte of the
/// input given to [`parse`](crate::parse), or of the buffer given to
/// [`Decoder::decode`](crate::Decoder::decode)). Texts taken from the input are cut to
/// [`Error::EXCERPT_LEN`] octets and decoded lossily.
///
/// A byte stream cannot resynchronise after any of these: a [`Decoder`](crate::Decoder) that
/// returned one returns it again on every later call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The first line of a frame is not a STOMP command (commands are case-sensitive).
    UnknownCommand {
        /// The start of the line that was read.
        found: String,
    },
    /// A CR that is not followed by LF (1.2 "Augmented BNF": an EOL is LF or CR LF).
    LoneCarriageReturn {
        /// Where the CR is.
        offset: usize,
    },
    /// A header line with no colon.
    MissingColon {
        /// Where the line starts.
        offset: usize,
    },
    /// A header line that starts with its colon: a header name has at least one octet.
    EmptyHeaderName {
        /// Where the line starts.
        offset: usize,
    },
    /// A backslash that does not start an escape defined by the frame's version
    /// (1.2 "Value Encoding"). Undefined escapes are fatal unless
    /// [`Config::keep_undefined_escapes`](crate::Config::keep_undefined_escapes) is set.
    UndefinedEscape {
        /// Where the backslash is.
        offset: usize,
        /// The header's name as it stands on the wire.
        header: String,
        /// The octet after the backslash, or `None` when the backslash ends the name or value.
        escape: Option<u8>,
    },
    /// Header octets that are not UTF-8 (1.2 "Value Encoding": headers are UTF-8).
    InvalidUtf8 {
        /// Where the first invalid octet is.
        offset: usize,
    },
    /// A `content-length` that is not a plain decimal number of octets that fits in `usize`.
    InvalidContentLength {
        /// Where the value starts.
        offset: usize,
        /// The value as it stands on the wire.
        value: String,
    },
    /// The octet after `content-length` body octets is not the NUL that must end the frame.
    ContentLengthMismatch {
        /// Where the NUL should be.
        offset: usize,
        /// The frame's `content-length`.
        content_length: usize,
        /// The octet found there instead.
        found: u8,
    },
    /// A body on a frame whose command may not carry one: only SEND, MESSAGE and ERROR may.
    BodyNotAllowed {
        /// The frame's command.
        command: Command,
        /// Where the body starts.
        offset: usize,
    },
    /// The command and header section is larger than [`Limits::max_head_bytes`](crate::Limits).
    HeadTooLarge {
        /// The limit.
        limit: usize,
        /// The octets of the section read so far.
        actual: usize,
    },
    /// More header lines than [`Limits::max_headers`](crate::Limits).
    TooManyHeaders {
        /// The limit.
        limit: usize,
        /// The header lines counted so far.
        actual: usize,
    },
    /// A header line longer than [`Limits::max_header_line`](crate::Limits).
    HeaderLineTooLong {
        /// Where the line starts.
        offset: usize,
        /// The limit.
        limit: usize,
        /// The octets of the line read so far, its EOL not counted.
        actual: usize,
    },
    /// A body larger than [`Limits::max_body`](crate::Limits), by `content-length` or by the
    /// octets read without finding the NUL.
    BodyTooLarge {
        /// The limit.
        limit: usize,
        /// The `content-length`, or the body octets read so far.
        actual: usize,
    },
}

impl Error {
    /// How many octets of input an error quotes at most.
    pub const EXCERPT_LEN: usize = 64;

    /// Quotes up to [`Error::EXCERPT_LEN`] octets of `bytes`, lossily decoded.
    pub(crate) fn excerpt(bytes: &[u8]) -> String {
        let end = bytes.len().min(Error::EXCERPT_LEN);
        String::from_utf8_lossy(bytes.get(..end).unwrap_or(bytes)).into_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownCommand { found } => write!(
                f,
                "unknown command {found:?} (commands are upper case, such as SEND or MESSAGE)"
            ),
            Error::LoneCarriageReturn { offset } => {
                write!(f, "CR not followed by LF at offset {offset}")
            }
            Error::MissingColon { offset } => {
                write!(f, "header line without a colon at offset {offset}")
            }
            Error::EmptyHeaderName { offset } => {
                write!(f, "header line with an empty name at offset {offset}")
            }
            Error::UndefinedEscape {
                offset,
                header,
                escape: Some(byte),
            } => write!(
                f,
                "undefined escape \\{} in header {header:?} at offset {offset}",
                char::from(*byte).escape_default()
            ),
            Error::UndefinedEscape {
                offset,
                header,
                escape: None,
            } => write!(
                f,
                "backslash at the end of header {header:?} at offset {offset}"
            ),
            Error::InvalidUtf8 { offset } => {
                write!(f, "header octets that are not UTF-8 at offset {offset}")
            }
            Error::InvalidContentLength { offset, value } => write!(
                f,
                "content-length {value:?} at offset {offset} is not a decimal number of octets"
            ),
            Error::ContentLengthMismatch {
                offset,
                content_length,
                found,
            } => write!(
                f,
                "expected NUL after {content_length} body octets (content-length) at offset \
                 {offset}, found 0x{found:02x}"
            ),
            Error::BodyNotAllowed { command, offset } => write!(
                f,
                "{command} frame has a body at offset {offset}; only SEND, MESSAGE and ERROR may"
            ),
            Error::HeadTooLarge { limit, actual } => write!(
                f,
                "command and headers take {actual} octets or more, over the limit of {limit}"
            ),
            Error::TooManyHeaders { limit, actual } => write!(
                f,
                "frame has {actual} header lines or more, over the limit of {limit}"
            ),
            Error::HeaderLineTooLong {
                offset,
                limit,
                actual,
            } => write!(
                f,
                "header line at offset {offset} takes {actual} octets or more, over the limit \
                 of {limit}"
            ),
            Error::BodyTooLarge { limit, actual } => write!(
                f,
                "body of {actual} octets or more is over the limit of {limit}"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Why a frame could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A body on a frame whose command may not carry one: only SEND, MESSAGE and ERROR may.
    BodyNotAllowed {
        /// The frame's command.
        command: Command,
    },
    /// A header with an empty name.
    EmptyHeaderName,
    /// A header name or value holds an octet that this version cannot carry for this command:
    /// no escaping exists for it (1.0, and CONNECT, CONNECTED and STOMP frames are never escaped;
    /// 1.1 has no escape for a CR that would end a line).
    Unrepresentable {
        /// The header's name.
        header: String,
        /// The octet that cannot be carried.
        byte: u8,
        /// The version the frame was encoded for.
        version: Version,
        /// The frame's command.
        command: Command,
    },
    /// The destination buffer cannot grow and has too little room for the frame.
    BufferTooSmall {
        /// Octets the frame needs.
        needed: usize,
        /// Octets the buffer has room for.
        available: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BodyNotAllowed { command } => write!(
                f,
                "{command} frames may not carry a body; only SEND, MESSAGE and ERROR may"
            ),
            EncodeError::EmptyHeaderName => f.write_str("header with an empty name"),
            EncodeError::Unrepresentable {
                header,
                byte,
                version,
                command,
            } => write!(
                f,
                "header {header:?} holds octet 0x{byte:02x}, which a STOMP {version} {command} \
                 frame cannot carry"
            ),
            EncodeError::BufferTooSmall { needed, available } => write!(
                f,
                "frame needs {needed} octets but the buffer has room for {available}"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}
