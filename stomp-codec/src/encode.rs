//! Encoding frames into any `BufMut` for a given version.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::{BufMut, Bytes};
use memchr::memchr;

use crate::escape::{self, Field};
use crate::frame::{BodyExcerpt, Frame};
use crate::version::Escaping;
use crate::{Command, EncodeError, Version};

const CONTENT_LENGTH: &str = "content-length";

/// Encodes frames by the rules of one version.
///
/// Header names and values are escaped as the version requires, except in CONNECT, CONNECTED
/// and STOMP frames, which are never escaped (1.2 "Value Encoding"). A header that the version
/// cannot carry is refused with [`EncodeError::Unrepresentable`] before anything is written.
///
/// The encoder owns `content-length`: it is added whenever the body holds a NUL (the body would
/// otherwise end there), or always with [`always_content_length`](Encoder::always_content_length)
/// on frames that may carry a body; a `content-length` the caller supplies is written with the
/// true body length in its place, and repeats of it are dropped.
///
/// ```
/// use stomp_codec::{Command, Encoder, OutFrame, Version};
///
/// let frame = OutFrame::new(Command::Send)
///     .with_header("destination", "/queue/a")
///     .with_header("x-note", "a:b")
///     .with_body(&b"bin\0ary"[..]);
/// let mut wire = Vec::new();
/// Encoder::new(Version::V1_2).encode(&frame, &mut wire)?;
/// assert_eq!(wire, b"SEND\ndestination:/queue/a\nx-note:a\\cb\ncontent-length:7\n\nbin\0ary\0");
/// # Ok::<(), stomp_codec::EncodeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Encoder {
    version: Version,
    always_content_length: bool,
}

impl Encoder {
    /// The octet that ends every frame, after its body.
    pub const FRAME_END: &'static [u8] = b"\0";

    /// An encoder for `version` that adds `content-length` only when the body holds a NUL.
    pub fn new(version: Version) -> Encoder {
        Encoder {
            version,
            always_content_length: false,
        }
    }

    /// The same encoder, adding `content-length` to every SEND, MESSAGE and ERROR frame (`true`)
    /// or only where the body holds a NUL (`false`, the default).
    #[must_use]
    pub fn always_content_length(mut self, always: bool) -> Encoder {
        self.always_content_length = always;
        self
    }

    /// The version whose rules apply.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Switches to the rules of `version`, as a session does once the version is negotiated.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// Checks that one header could be sent in a `command` frame under this version, as a server
    /// does before it accepts a subscription id it must echo in every MESSAGE.
    ///
    /// ```
    /// use stomp_codec::{Command, Encoder, Version};
    ///
    /// assert!(Encoder::new(Version::V1_2).check_header(Command::Message, "subscription", "a:b").is_ok());
    /// assert!(Encoder::new(Version::V1_0).check_header(Command::Message, "subscription", "a\n").is_err());
    /// ```
    pub fn check_header(
        &self,
        command: Command,
        name: &str,
        value: &str,
    ) -> Result<(), EncodeError> {
        let escaping = Escaping::for_frame(self.version, command);
        let name_bytes = name.as_bytes();
        self.check_field(command, escaping, name_bytes, Field::Name, name_bytes)?;
        self.check_field(
            command,
            escaping,
            name_bytes,
            Field::Value,
            value.as_bytes(),
        )
    }

    /// Encodes `frame` whole: head, body and NUL.
    pub fn encode<B: BufMut>(&self, frame: &OutFrame, dst: &mut B) -> Result<(), EncodeError> {
        self.encode_parts(frame.command, frame.pairs(), &frame.body, dst)
    }

    /// Encodes the head of `frame`, up to and including the blank line. The caller then writes
    /// [`OutFrame::body`] and [`Encoder::FRAME_END`]: a large body goes to the transport as its
    /// own buffer, never copied.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use stomp_codec::{Command, Encoder, OutFrame, Version};
    ///
    /// let frame = OutFrame::new(Command::Message)
    ///     .with_header("destination", "/topic/big")
    ///     .with_body(Bytes::from(vec![b'x'; 1 << 20]));
    /// let mut head = Vec::new();
    /// Encoder::new(Version::V1_2).encode_head(&frame, &mut head)?;
    /// assert_eq!(head, b"MESSAGE\ndestination:/topic/big\n\n");
    /// let pieces: [&[u8]; 3] = [&head, frame.body(), Encoder::FRAME_END];
    /// assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), head.len() + (1 << 20) + 1);
    /// # Ok::<(), stomp_codec::EncodeError>(())
    /// ```
    pub fn encode_head<B: BufMut>(&self, frame: &OutFrame, dst: &mut B) -> Result<(), EncodeError> {
        self.write(frame.command, frame.pairs(), &frame.body, false, dst)
    }

    /// Encodes a decoded frame again under this encoder's version, for pass-through.
    pub fn encode_frame<B: BufMut>(
        &self,
        frame: &Frame<'_>,
        dst: &mut B,
    ) -> Result<(), EncodeError> {
        let headers = frame.headers().iter().map(|h| (h.name(), h.value()));
        self.encode_parts(frame.command(), headers, frame.body(), dst)
    }

    /// Encodes a frame from its parts without building an [`OutFrame`]: with a reused buffer,
    /// this allocates nothing.
    ///
    /// ```
    /// use stomp_codec::{Command, Encoder, Version};
    ///
    /// let mut wire = Vec::with_capacity(256);
    /// let headers = [("destination", "/topic/a"), ("message-id", "7"), ("subscription", "0")];
    /// Encoder::new(Version::V1_1).encode_parts(Command::Message, headers, b"hi", &mut wire)?;
    /// assert_eq!(wire, b"MESSAGE\ndestination:/topic/a\nmessage-id:7\nsubscription:0\n\nhi\0");
    /// # Ok::<(), stomp_codec::EncodeError>(())
    /// ```
    pub fn encode_parts<B, I, N, V>(
        &self,
        command: Command,
        headers: I,
        body: &[u8],
        dst: &mut B,
    ) -> Result<(), EncodeError>
    where
        B: BufMut,
        I: IntoIterator<Item = (N, V)>,
        I::IntoIter: Clone,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        self.write(command, headers, body, true, dst)
    }

    /// Encodes the head of a frame from its parts, up to and including the blank line; the
    /// caller then writes `body` and [`Encoder::FRAME_END`]. `body` is only read to size
    /// `content-length`.
    pub fn encode_head_parts<B, I, N, V>(
        &self,
        command: Command,
        headers: I,
        body: &[u8],
        dst: &mut B,
    ) -> Result<(), EncodeError>
    where
        B: BufMut,
        I: IntoIterator<Item = (N, V)>,
        I::IntoIter: Clone,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        self.write(command, headers, body, false, dst)
    }

    fn write<B, I, N, V>(
        &self,
        command: Command,
        headers: I,
        body: &[u8],
        with_body: bool,
        dst: &mut B,
    ) -> Result<(), EncodeError>
    where
        B: BufMut,
        I: IntoIterator<Item = (N, V)>,
        I::IntoIter: Clone,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        if !body.is_empty() && !command.allows_body() {
            return Err(EncodeError::BodyNotAllowed { command });
        }
        let escaping = Escaping::for_frame(self.version, command);
        let headers = headers.into_iter();
        let body_len = if with_body { body.len() + 1 } else { 0 };
        // Everything is checked before the first octet is written, so a refused frame leaves
        // `dst` untouched. Escaping at most doubles a field: that bound settles the room check
        // for growable buffers without counting escapes.
        let mut bound = command.as_str().len() + 1 + CONTENT_LENGTH.len() + 22 + body_len;
        for (name, value) in headers.clone() {
            let (name, value) = (name.as_ref().as_bytes(), value.as_ref().as_bytes());
            self.check_field(command, escaping, name, Field::Name, name)?;
            self.check_field(command, escaping, name, Field::Value, value)?;
            bound += 2 * (name.len() + value.len()) + 2;
        }
        let content_length = self.wants_content_length(command, body);
        if dst.remaining_mut() < bound {
            let needed =
                self.exact_len(command, escaping, headers.clone(), body, content_length) + body_len;
            if dst.remaining_mut() < needed {
                return Err(EncodeError::BufferTooSmall {
                    needed,
                    available: dst.remaining_mut(),
                });
            }
        }

        dst.put_slice(command.as_str().as_bytes());
        dst.put_u8(b'\n');
        let mut wrote_length = false;
        for (name, value) in headers {
            let (name, value) = (name.as_ref(), value.as_ref());
            if name == CONTENT_LENGTH {
                if !wrote_length {
                    put_content_length(dst, body.len());
                    wrote_length = true;
                }
                continue;
            }
            escape::put_escaped(dst, name.as_bytes(), escaping);
            dst.put_u8(b':');
            escape::put_escaped(dst, value.as_bytes(), escaping);
            dst.put_u8(b'\n');
        }
        if content_length && !wrote_length {
            put_content_length(dst, body.len());
        }
        dst.put_u8(b'\n');
        if with_body {
            dst.put_slice(body);
            dst.put_slice(Encoder::FRAME_END);
        }
        Ok(())
    }

    /// Checked for every header of every frame, so inlined: in 1.2 every octet has an escape,
    /// and only an empty name is refused.
    #[inline]
    fn check_field(
        &self,
        command: Command,
        escaping: Escaping,
        name: &[u8],
        kind: Field,
        field: &[u8],
    ) -> Result<(), EncodeError> {
        if kind == Field::Name && field.is_empty() {
            return Err(EncodeError::EmptyHeaderName);
        }
        if escaping == Escaping::V1_2 {
            return Ok(());
        }
        match escape::unrepresentable(field, kind, escaping, self.version) {
            None => Ok(()),
            Some(byte) => Err(self.unrepresentable(command, name, byte)),
        }
    }

    #[cold]
    fn unrepresentable(&self, command: Command, name: &[u8], byte: u8) -> EncodeError {
        EncodeError::Unrepresentable {
            header: String::from_utf8_lossy(name).into_owned(),
            byte,
            version: self.version,
            command,
        }
    }

    fn wants_content_length(&self, command: Command, body: &[u8]) -> bool {
        (self.always_content_length && command.allows_body()) || memchr(0, body).is_some()
    }

    /// The exact length of the head, for buffers that cannot grow.
    fn exact_len<I, N, V>(
        &self,
        command: Command,
        escaping: Escaping,
        headers: I,
        body: &[u8],
        content_length: bool,
    ) -> usize
    where
        I: Iterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let length_line = CONTENT_LENGTH.len() + 2 + itoa::Buffer::new().format(body.len()).len();
        let mut len = command.as_str().len() + 2;
        let mut wrote_length = false;
        for (name, value) in headers {
            let (name, value) = (name.as_ref(), value.as_ref());
            if name == CONTENT_LENGTH {
                if !wrote_length {
                    len += length_line;
                    wrote_length = true;
                }
                continue;
            }
            len += escape::escaped_len(name.as_bytes(), escaping)
                + escape::escaped_len(value.as_bytes(), escaping)
                + 2;
        }
        if content_length && !wrote_length {
            len += length_line;
        }
        len
    }
}

/// Writes the `content-length` line, assembled first so that it is one write to `dst`.
fn put_content_length<B: BufMut>(dst: &mut B, length: usize) {
    // The name, a colon, at most twenty digits and the LF.
    const ROOM: usize = CONTENT_LENGTH.len() + 22;
    let mut line = [0u8; ROOM];
    let mut free = line.as_mut_slice();
    free.put_slice(CONTENT_LENGTH.as_bytes());
    free.put_u8(b':');
    free.put_slice(itoa::Buffer::new().format(length).as_bytes());
    free.put_u8(b'\n');
    let used = ROOM - free.len();
    dst.put_slice(line.get(..used).unwrap_or_default());
}

/// An outgoing frame: a command, headers in order, and a body shared as [`Bytes`].
///
/// Header names and values are plain text; the [`Encoder`] escapes them for the version in use.
///
/// ```
/// use stomp_codec::{Command, OutFrame};
///
/// let frame = OutFrame::new(Command::Subscribe)
///     .with_header("id", "0")
///     .with_header("destination", "/topic/news")
///     .with_header("ack", "client-individual");
/// assert_eq!(frame.header("destination"), Some("/topic/news"));
/// assert_eq!(frame.headers().count(), 3);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OutFrame {
    command: Command,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Bytes,
}

impl OutFrame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> OutFrame {
        OutFrame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The same frame with one more header, after the others.
    #[must_use]
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> OutFrame {
        self.push_header(name, value);
        self
    }

    /// Adds a header after the others.
    pub fn push_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        self.headers.push((name.into(), value.into()));
    }

    /// The same frame with this body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> OutFrame {
        self.body = body.into();
        self
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// The frame's command.
    pub fn command(&self) -> Command {
        self.command
    }

    /// The headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.pairs()
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }
}

impl From<&Frame<'_>> for OutFrame {
    /// An owned copy of a decoded frame, its headers decoded.
    fn from(frame: &Frame<'_>) -> OutFrame {
        OutFrame {
            command: frame.command(),
            headers: frame
                .headers()
                .iter()
                .map(|h| {
                    (
                        Cow::Owned(h.name().into_owned()),
                        Cow::Owned(h.value().into_owned()),
                    )
                })
                .collect(),
            body: Bytes::copy_from_slice(frame.body()),
        }
    }
}

impl fmt::Debug for OutFrame {
    /// Never shows a `passcode` (1.2 "CONNECT or STOMP Frame": it is a secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Pairs<'a>(&'a OutFrame);
        impl fmt::Debug for Pairs<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for (name, value) in self.0.pairs() {
                    let value = if name == "passcode" {
                        "<redacted>"
                    } else {
                        value
                    };
                    list.entry(&format_args!("{name:?}: {value:?}"));
                }
                list.finish()
            }
        }
        f.debug_struct("OutFrame")
            .field("command", &self.command)
            .field("headers", &Pairs(self))
            .field("body", &BodyExcerpt(&self.body))
            .finish()
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for OutFrame {
    /// Any command with any headers; a body only where the command may carry one.
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let command = Command::arbitrary(u)?;
        let mut frame = OutFrame::new(command);
        for (name, value) in Vec::<(String, String)>::arbitrary(u)? {
            frame.push_header(name, value);
        }
        if command.allows_body() {
            frame.set_body(Vec::<u8>::arbitrary(u)?);
        }
        Ok(frame)
    }
}
