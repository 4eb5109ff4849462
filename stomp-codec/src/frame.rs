//! Borrowed views of a decoded frame: its command, headers and body.

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt;

use crate::Command;
use crate::classes::{self, Marks, Rules};
use crate::escape;
use crate::grammar::strip_cr;
use crate::version::Escaping;

/// A complete frame that borrows from the bytes it was decoded from.
///
/// Header values are decoded on access and borrow from the input when they hold no escape.
/// Frames compare equal when their commands, decoded headers (in order) and bodies are equal,
/// whatever their wire form.
///
/// ```
/// use stomp_codec::{parse, Command, Config, Status};
///
/// let input = b"MESSAGE\nsubscription:s1\nx-esc:a\\cb\nx-esc:second\n\nhello\0";
/// let Ok(Status::Frame(frame, used)) = parse(input, &Config::default()) else { panic!() };
/// assert_eq!(used, input.len());
/// assert_eq!(frame.command(), Command::Message);
/// assert_eq!(frame.header("subscription").as_deref(), Some("s1"));
/// // Escapes are decoded, and the first of two repeated headers counts.
/// assert_eq!(frame.header("x-esc").as_deref(), Some("a:b"));
/// assert_eq!(frame.headers().len(), 3);
/// assert_eq!(frame.body(), b"hello");
/// ```
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    command: Command,
    headers: Headers<'a>,
    body: &'a [u8],
}

impl<'a> Frame<'a> {
    pub(crate) fn new(command: Command, headers: Headers<'a>, body: &'a [u8]) -> Self {
        Frame {
            command,
            headers,
            body,
        }
    }

    /// The frame's command.
    pub fn command(&self) -> Command {
        self.command
    }

    /// All header lines, in wire order, duplicates kept.
    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }

    /// The decoded value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        self.headers.get(name)
    }

    /// The body: the octets between the blank line and the frame's NUL.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

impl PartialEq for Frame<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.command == other.command && self.headers == other.headers && self.body == other.body
    }
}

impl Eq for Frame<'_> {}

impl fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("headers", &self.headers)
            .field("body", &BodyExcerpt(self.body))
            .finish()
    }
}

/// Shows a body's length and at most its first [`Error::EXCERPT_LEN`](crate::Error) octets, so
/// that a large body does not flood a log.
pub(crate) struct BodyExcerpt<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for BodyExcerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..crate::Error::EXCERPT_LEN).unwrap_or(self.0);
        write!(
            f,
            "{} octets {:?}",
            self.0.len(),
            String::from_utf8_lossy(shown)
        )?;
        if shown.len() < self.0.len() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// A frame's header lines, in wire order, with duplicates kept.
///
/// [`get`](Headers::get) follows the rule that the first occurrence of a repeated header is the
/// one that counts (1.2 "Repeated Header Entries"); [`iter`](Headers::iter) yields them all, for
/// pass-through.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    /// The header lines, each ending in its EOL. The scanner checked every line: each has a
    /// colon after a non-empty name, defined escapes only (or kept ones), and UTF-8 text.
    block: &'a [u8],
    len: usize,
    escaping: Escaping,
}

impl<'a> Headers<'a> {
    pub(crate) fn new(block: &'a [u8], len: usize, escaping: Escaping) -> Self {
        Headers {
            block,
            len,
            escaping,
        }
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame has no header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every header, in wire order.
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.block,
            escaping: self.escaping,
        }
    }

    /// The first header whose decoded name is `name`.
    pub fn find(&self, name: &str) -> Option<Header<'a>> {
        self.iter()
            .find(|h| escape::decoded_eq(h.raw_name, name.as_bytes(), h.escaping))
    }

    /// The decoded value of the first header whose decoded name is `name`.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.find(name).map(|h| h.value())
    }

    /// The decoded values of every header whose decoded name is `name`, in wire order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = Cow<'a, str>> + 'n
    where
        'a: 'n,
    {
        self.iter()
            .filter(move |h| escape::decoded_eq(h.raw_name, name.as_bytes(), h.escaping))
            .map(|h| h.value())
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Headers<'_> {}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An iterator over a frame's headers, in wire order.
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    escaping: Escaping,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        // One pass finds the line's end, its colon and whether it holds a backslash.
        let mut marks = Marks::default();
        let eol = classes::line_end(self.rest, 0, &mut marks, Rules::default())
            .unwrap_or(self.rest.len());
        let (line, rest) = self.rest.split_at(eol);
        self.rest = rest.get(1..).unwrap_or_default();
        let line = strip_cr(line);
        // `header = name ":" value`, split at the first colon: real peers put raw colons in
        // values (ActiveMQ message ids, URLs in 1.0 frames). The scanner refused a line without
        // one; a name alone keeps this total.
        let (raw_name, raw_value) = match marks.colon {
            Some(colon) => (
                line.get(..colon).unwrap_or(line),
                line.get(colon + 1..).unwrap_or_default(),
            ),
            None => (line, &b""[..]),
        };
        // A line without a backslash has nothing to unescape. A CR that ends it is its EOL's; a
        // line with a raw CR within it is decoded as the frame's, which searches it.
        let plain = marks.special.is_none_or(|at| at >= line.len());
        Some(Header {
            raw_name,
            raw_value,
            escaping: if plain { Escaping::None } else { self.escaping },
        })
    }
}

/// One header line of a decoded frame.
#[derive(Clone, Copy)]
pub struct Header<'a> {
    raw_name: &'a [u8],
    raw_value: &'a [u8],
    /// How the fields decode: `Escaping::None` for a line without a backslash, whatever the
    /// frame's, so that decoding it need not search for one.
    escaping: Escaping,
}

impl<'a> Header<'a> {
    /// The decoded name; borrowed when it holds no escape.
    pub fn name(&self) -> Cow<'a, str> {
        decode(self.raw_name, self.escaping)
    }

    /// The decoded value; borrowed when it holds no escape.
    pub fn value(&self) -> Cow<'a, str> {
        decode(self.raw_value, self.escaping)
    }

    /// The name as it stands on the wire, escapes included.
    pub fn raw_name(&self) -> &'a [u8] {
        self.raw_name
    }

    /// The value as it stands on the wire, escapes included.
    pub fn raw_value(&self) -> &'a [u8] {
        self.raw_value
    }
}

/// Decodes a field the scanner has checked to be UTF-8; the lossy path is never taken for a
/// frame the scanner accepted, and keeps this total without a panic.
fn decode(raw: &[u8], escaping: Escaping) -> Cow<'_, str> {
    // `from_utf8` checks short ASCII fields faster than the lossy scan does.
    match core::str::from_utf8(raw) {
        Ok(text) => escape::decode(text, escaping),
        Err(_) => {
            let text = String::from_utf8_lossy(raw);
            Cow::Owned(escape::decode(&text, escaping).into_owned())
        }
    }
}

impl PartialEq for Header<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.value() == other.value()
    }
}

impl Eq for Header<'_> {}

impl fmt::Debug for Header<'_> {
    /// Shows the decoded name and value, except that a `passcode` is never shown
    /// (1.2 "CONNECT or STOMP Frame": it is a secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        if name == "passcode" {
            write!(f, "{name:?}: <redacted>")
        } else {
            write!(f, "{name:?}: {:?}", self.value())
        }
    }
}
