//! The borrowed entry point: one item from the start of a byte slice.

use crate::frame::{Frame, Headers};
use crate::scan::{Layout, Scan, Scanner};
use crate::{Config, Error};

/// What [`parse`] found at the start of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<'a> {
    /// The input holds no complete item yet: read more and call again with the longer input.
    Incomplete,
    /// An EOL of this many octets (1 for LF, 2 for CR LF) stands before any frame: a heart-beat,
    /// or the trailing EOL of the frame before. Skip it and call again.
    HeartBeat(usize),
    /// A complete frame, and the number of octets it used, its NUL included.
    Frame(Frame<'a>, usize),
}

/// Parses one item from the start of `input`, without allocating.
///
/// The frame borrows its command, headers and body from `input`. This entry point keeps no state
/// between calls: a caller that receives a frame in pieces should use the resumable
/// [`Decoder`](crate::Decoder), which scans each octet once.
///
/// ```
/// use stomp_codec::{parse, Command, Config, Status};
///
/// let config = Config::default();
/// let input = b"\nRECEIPT\nreceipt-id:77\n\n\0SEND";
/// assert_eq!(parse(input, &config), Ok(Status::HeartBeat(1)));
/// let Ok(Status::Frame(frame, used)) = parse(&input[1..], &config) else { panic!() };
/// assert_eq!(frame.command(), Command::Receipt);
/// assert_eq!(frame.header("receipt-id").as_deref(), Some("77"));
/// assert_eq!(parse(&input[1 + used..], &config), Ok(Status::Incomplete));
///
/// // Invalid input is an error, never "incomplete".
/// assert!(parse(b"send\n\n\0", &config).is_err());
/// ```
pub fn parse<'a>(input: &'a [u8], config: &Config) -> Result<Status<'a>, Error> {
    Ok(match Scanner::default().scan(input, config)? {
        Scan::Incomplete => Status::Incomplete,
        Scan::HeartBeat(n) => Status::HeartBeat(n),
        Scan::Frame(layout) => {
            let len = layout.len;
            Status::Frame(frame_at(input, &layout), len)
        }
    })
}

/// The borrowed view of a frame whose layout the scanner found in `buf`.
pub(crate) fn frame_at<'a>(buf: &'a [u8], layout: &Layout) -> Frame<'a> {
    let headers = Headers::new(
        buf.get(layout.headers.clone()).unwrap_or_default(),
        layout.header_count,
        layout.escaping,
    );
    Frame::new(
        layout.command,
        headers,
        buf.get(layout.body.clone()).unwrap_or_default(),
    )
}
