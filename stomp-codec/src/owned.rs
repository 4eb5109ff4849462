//! Owned frames, backed by the reference-counted bytes they were received in.

use alloc::borrow::Cow;
use core::fmt;
use core::ops::Range;

use bytes::Bytes;

use crate::Command;
use crate::frame::{Frame, Headers};
use crate::parse::frame_at;
use crate::scan::Layout;

/// A complete frame that owns its bytes.
///
/// It holds the frame's wire bytes as one [`Bytes`] and the offsets of its parts: building one
/// copies nothing and allocates nothing, and cloning one only bumps a reference count. Its body is
/// a [`Bytes`] slice of the received bytes, so one body can go to many subscribers without a copy.
/// Headers are read through the same borrowed view as [`Frame`].
///
/// ```
/// use bytes::BytesMut;
/// use stomp_codec::{Command, Config, Decoder, Item};
///
/// let mut decoder = Decoder::new(Config::default());
/// let mut buf = BytesMut::from(&b"MESSAGE\ndestination:/topic/a\n\nhi\0"[..]);
/// let Ok(Some(Item::Frame(frame))) = decoder.decode(&mut buf) else { panic!() };
/// let body = frame.body().clone(); // shares the received bytes
/// std::thread::spawn(move || assert_eq!(&body[..], b"hi")).join().unwrap();
/// assert_eq!(frame.command(), Command::Message);
/// assert_eq!(frame.header("destination").as_deref(), Some("/topic/a"));
/// ```
#[derive(Clone)]
pub struct FrameBuf {
    /// The whole frame, its NUL included.
    bytes: Bytes,
    body: Bytes,
    layout: Layout,
}

impl FrameBuf {
    pub(crate) fn new(bytes: Bytes, layout: Layout) -> FrameBuf {
        let body = bytes.slice(clamp(&layout.body, bytes.len()));
        FrameBuf {
            bytes,
            body,
            layout,
        }
    }

    /// The frame's command.
    pub fn command(&self) -> Command {
        self.layout.command
    }

    /// All header lines, in wire order, duplicates kept.
    pub fn headers(&self) -> Headers<'_> {
        self.as_frame().headers()
    }

    /// The decoded value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.as_frame().header(name)
    }

    /// The body, sharing the received bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The frame as it was received, from its command to its NUL.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The borrowed view of this frame.
    pub fn as_frame(&self) -> Frame<'_> {
        frame_at(&self.bytes, &self.layout)
    }
}

/// `range`, cut to fit in `len` octets, so that slicing cannot panic.
fn clamp(range: &Range<usize>, len: usize) -> Range<usize> {
    let end = range.end.min(len);
    range.start.min(end)..end
}

impl PartialEq for FrameBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_frame() == other.as_frame()
    }
}

impl Eq for FrameBuf {}

impl fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_frame().fmt(f)
    }
}
