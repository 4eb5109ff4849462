//! Finding frame boundaries, resumably and within limits (1.2 "STOMP Frames").
//!
//! The scanner walks a frame once, whatever the chunking: it remembers where its last search
//! stopped and resumes there, so a frame that arrives in a thousand pieces costs one pass over
//! its bytes. Each head line is checked as soon as its EOL arrives and every limit is enforced
//! before the frame is complete, so nothing invalid or oversized is ever buffered to the end.

use core::ops::Range;

use memchr::memchr;

use crate::classes::{self, Marks, Rules};
use crate::escape::{self, Flaw};
use crate::grammar::{self, strip_cr};
use crate::version::Escaping;
use crate::{Command, Config, Error, Version};

/// Where the parts of a complete frame lie in its buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) command: Command,
    pub(crate) escaping: Escaping,
    /// The header lines, each with its EOL; the blank line is not included.
    pub(crate) headers: Range<usize>,
    pub(crate) header_count: usize,
    pub(crate) body: Range<usize>,
    /// The frame's octets, its NUL included.
    pub(crate) len: usize,
}

/// What the bytes scanned so far amount to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// No complete item yet.
    Incomplete,
    /// An EOL of this many octets before any frame: a heart-beat, or the trailing EOL of the
    /// previous frame (1.2 "Heart-beating").
    HeartBeat(usize),
    /// A complete frame at the start of the buffer.
    Frame(Layout),
}

/// A head whose command line has been read.
#[derive(Clone, Copy, Debug)]
struct Head {
    command: Command,
    escaping: Escaping,
    headers_start: usize,
    line_start: usize,
    header_count: usize,
    content_length: Option<usize>,
    /// The current line's colon and first backslash or CR once seen, and whether any header
    /// octet so far is not ASCII: a head without one is valid UTF-8.
    marks: Marks,
    /// How backslashes and CRs are judged as the lines are searched.
    rules: Rules,
}

/// A frame whose head is complete: what the body and the layout need of it.
#[derive(Clone, Copy, Debug)]
struct Body {
    command: Command,
    escaping: Escaping,
    headers: (usize, usize),
    header_count: usize,
    content_length: Option<usize>,
    body_start: usize,
}

/// Where the scan of the current frame stands. Each part is worked on in place, not copied out
/// and back at each call.
#[derive(Clone, Copy, Debug, Default)]
enum Phase {
    /// Before a frame: EOLs here are heart-beats.
    #[default]
    Start,
    Head(Head),
    Body(Body),
}

/// The resumable scanner. Its offsets are relative to the start of the buffer, which holds the
/// frame being scanned from its first octet; the caller removes each item it is given before
/// scanning on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scanner {
    phase: Phase,
    /// Octets before this offset have been searched already.
    pos: usize,
}

impl Scanner {
    /// Scans `buf` from where the last call stopped. After `Scan::Frame` or `Scan::HeartBeat`
    /// the scanner is ready for the next item, which starts where the returned one ends.
    pub(crate) fn scan(&mut self, buf: &[u8], config: &Config) -> Result<Scan, Error> {
        if self.pos > buf.len() {
            // The caller gave a shorter buffer than before: start again rather than index out
            // of bounds.
            *self = Scanner::default();
        }
        loop {
            let Scanner { phase, pos } = self;
            match phase {
                Phase::Start => match start(pos, buf, config)? {
                    Ok(head) => *phase = Phase::Head(head),
                    Err(scan) => return Ok(scan),
                },
                Phase::Head(head) => match head_lines(head, pos, buf, config)? {
                    Some(body) => *phase = Phase::Body(body),
                    None => return Ok(Scan::Incomplete),
                },
                Phase::Body(body) => {
                    let scan = body_end(body, pos, buf, config)?;
                    if let Scan::Frame(_) = scan {
                        *self = Scanner::default();
                    }
                    return Ok(scan);
                }
            }
        }
    }

    /// The command of the frame being scanned, once its command line is read.
    pub(crate) fn command(&self) -> Option<Command> {
        match self.phase {
            Phase::Start => None,
            Phase::Head(Head { command, .. }) | Phase::Body(Body { command, .. }) => Some(command),
        }
    }
}

/// Leading EOLs, then the command line: the head it starts, or what to return instead.
fn start(pos: &mut usize, buf: &[u8], config: &Config) -> Result<Result<Head, Scan>, Error> {
    match (buf.first(), buf.get(1)) {
        (None, _) | (Some(b'\r'), None) => return Ok(Err(Scan::Incomplete)),
        (Some(b'\n'), _) => return Ok(Err(Scan::HeartBeat(1))),
        (Some(b'\r'), Some(b'\n')) => return Ok(Err(Scan::HeartBeat(2))),
        (Some(b'\r'), Some(_)) => return Err(Error::LoneCarriageReturn { offset: 0 }),
        _ => {}
    }
    let Some(eol) = find(b'\n', pos, buf) else {
        // No command is longer than UNSUBSCRIBE: a longer first line is refused now, not
        // after the peer has filled a buffer with it.
        if buf.len() > COMMAND_LINE_MAX {
            return Err(unknown_command(buf));
        }
        return Ok(Err(Scan::Incomplete));
    };
    let line = strip_cr(buf.get(..eol).unwrap_or_default());
    let command = Command::from_bytes(line).ok_or_else(|| unknown_command(line))?;
    check_head_size(eol + 1, config)?;
    let escaping = Escaping::for_frame(config.version(), command);
    Ok(Ok(Head {
        command,
        escaping,
        headers_start: eol + 1,
        line_start: eol + 1,
        header_count: 0,
        content_length: None,
        marks: Marks::default(),
        rules: Rules::new(
            escaping,
            config.keeps_undefined_escapes(),
            rejects_cr(config),
        ),
    }))
}

/// Header lines up to the blank line, each checked as its EOL arrives: the body that follows,
/// or `None` while the head is still arriving.
fn head_lines(
    head: &mut Head,
    pos: &mut usize,
    buf: &[u8],
    config: &Config,
) -> Result<Option<Body>, Error> {
    let limits = config.limits();
    while let Some(eol) = next_line_end(pos, &mut head.marks, head.rules, buf) {
        check_head_size(eol + 1, config)?;
        let line = strip_cr(buf.get(head.line_start..eol).unwrap_or_default());
        if line.is_empty() {
            if head.marks.non_ascii {
                let block = buf.get(head.headers_start..head.line_start);
                if let Err(e) = core::str::from_utf8(block.unwrap_or_default()) {
                    return Err(Error::InvalidUtf8 {
                        offset: head.headers_start + e.valid_up_to(),
                    });
                }
            }
            return Ok(Some(Body {
                command: head.command,
                escaping: head.escaping,
                headers: (head.headers_start, head.line_start),
                header_count: head.header_count,
                content_length: head.content_length,
                body_start: eol + 1,
            }));
        }
        head.header_count += 1;
        if head.header_count > limits.max_headers {
            return Err(Error::TooManyHeaders {
                limit: limits.max_headers,
                actual: head.header_count,
            });
        }
        check_line_length(head.line_start, line.len(), config)?;
        header_line(head, line, config)?;
        head.line_start = eol + 1;
        head.marks.next_line();
    }
    // The current line is still arriving; a CR at its end may be the first half of an EOL.
    let partial = strip_cr(buf.get(head.line_start..).unwrap_or_default());
    check_line_length(head.line_start, partial.len(), config)?;
    check_head_size(buf.len(), config)?;
    Ok(None)
}

/// The body, ended by `content-length` octets and a NUL, or by the first NUL.
fn body_end(body: &Body, pos: &mut usize, buf: &[u8], config: &Config) -> Result<Scan, Error> {
    let Body {
        command,
        body_start,
        ..
    } = *body;
    let max_body = config.limits().max_body;
    let nul = match body.content_length {
        Some(length) => {
            if length > 0 && !command.allows_body() {
                return Err(Error::BodyNotAllowed {
                    command,
                    offset: body_start,
                });
            }
            let nul = body_start.checked_add(length).ok_or(Error::BodyTooLarge {
                limit: max_body,
                actual: length,
            })?;
            match buf.get(nul) {
                None => return Ok(Scan::Incomplete),
                Some(0) => nul,
                Some(&found) => {
                    return Err(Error::ContentLengthMismatch {
                        offset: nul,
                        content_length: length,
                        found,
                    });
                }
            }
        }
        None if !command.allows_body() => match buf.get(body_start) {
            None => return Ok(Scan::Incomplete),
            Some(0) => body_start,
            Some(_) => {
                return Err(Error::BodyNotAllowed {
                    command,
                    offset: body_start,
                });
            }
        },
        None => {
            *pos = (*pos).max(body_start);
            match find(0, pos, buf) {
                Some(nul) if nul - body_start <= max_body => nul,
                found => {
                    let actual = found.unwrap_or(buf.len()) - body_start;
                    if actual > max_body {
                        return Err(Error::BodyTooLarge {
                            limit: max_body,
                            actual,
                        });
                    }
                    return Ok(Scan::Incomplete);
                }
            }
        }
    };
    let (headers_start, headers_end) = body.headers;
    Ok(Scan::Frame(Layout {
        command,
        escaping: body.escaping,
        headers: headers_start..headers_end,
        header_count: body.header_count,
        body: body_start..nul,
        len: nul + 1,
    }))
}

/// Finds the end of the current head line from where the last search stopped, noting its
/// first colon and first backslash or CR on the way.
fn next_line_end(pos: &mut usize, marks: &mut Marks, rules: Rules, buf: &[u8]) -> Option<usize> {
    let from = *pos;
    // The search works on a copy of the marks, written back once, rather than through the
    // scanner's state at every run: with nothing of it behind a pointer, the copy can stay in
    // registers (a seventh off the time of the borrowed parse of small frames).
    let mut searched = *marks;
    let found = classes::line_end(buf, from, &mut searched, rules);
    *marks = searched;
    *pos = found.map_or(buf.len(), |eol| eol + 1);
    #[cfg(all(test, feature = "std"))]
    tests::SEARCHED.with(|n| n.set(n.get() + (*pos - from)));
    found
}

/// Searches for `octet` from where the last search stopped. Found: the search resumes after it
/// next time. Not found: the whole buffer counts as searched.
fn find(octet: u8, pos: &mut usize, buf: &[u8]) -> Option<usize> {
    let from = *pos;
    let haystack = buf.get(from..).unwrap_or_default();
    let found = memchr(octet, haystack);
    #[cfg(all(test, feature = "std"))]
    tests::SEARCHED.with(|n| n.set(n.get() + found.map_or(haystack.len(), |i| i + 1)));
    *pos = found.map_or(buf.len(), |i| from + i + 1);
    found.map(|i| from + i)
}

/// The longest command line that can hold a command: UNSUBSCRIBE and a CR.
const COMMAND_LINE_MAX: usize = Command::MAX_LEN + 1;

/// The error for a first line that is no command. It quotes only the octets that decided it, so
/// the error is the same whether the line arrived whole or in pieces.
fn unknown_command(line: &[u8]) -> Error {
    let decided = line.get(..COMMAND_LINE_MAX).unwrap_or(line);
    Error::UnknownCommand {
        found: Error::excerpt(decided),
    }
}

fn check_head_size(size: usize, config: &Config) -> Result<(), Error> {
    let limit = config.limits().max_head_bytes;
    if size > limit {
        return Err(Error::HeadTooLarge {
            limit,
            actual: size,
        });
    }
    Ok(())
}

fn check_line_length(offset: usize, length: usize, config: &Config) -> Result<(), Error> {
    let limit = config.limits().max_header_line;
    if length > limit {
        return Err(Error::HeaderLineTooLong {
            offset,
            limit,
            actual: length,
        });
    }
    Ok(())
}

/// 1.2 allows CR only as part of an EOL; 1.0 and 1.1 treat a lone CR as an ordinary octet.
fn rejects_cr(config: &Config) -> bool {
    config.version() == Version::V1_2
}

/// Checks the escapes of a header line whose backslashes and CRs were not all judged good as it
/// was searched, and finds the flaw.
fn check_escapes(
    escaping: Escaping,
    name: &[u8],
    value: &[u8],
    offset: usize,
    config: &Config,
) -> Result<(), Error> {
    let keep = config.keeps_undefined_escapes();
    let reject_cr = rejects_cr(config);
    let value_offset = offset + name.len() + 1;
    let flaw = escape::check(name, escaping, keep, reject_cr)
        .map_err(|flaw| (flaw, offset))
        .and_then(|()| {
            escape::check(value, escaping, keep, reject_cr).map_err(|flaw| (flaw, value_offset))
        });
    if let Err((flaw, base)) = flaw {
        return Err(match flaw {
            Flaw::UndefinedEscape { at, escape } => Error::UndefinedEscape {
                offset: base + at,
                header: Error::excerpt(name),
                escape,
            },
            Flaw::LoneCarriageReturn { at } => Error::LoneCarriageReturn { offset: base + at },
        });
    }
    Ok(())
}

/// Checks one complete header line and notes the first `content-length`.
fn header_line(head: &mut Head, line: &[u8], config: &Config) -> Result<(), Error> {
    let offset = head.line_start;
    // The colon was noted, and every backslash and CR judged, as the line was searched.
    let colon = head
        .marks
        .colon
        .map(|at| at - offset)
        .ok_or(Error::MissingColon { offset })?;
    if colon == 0 {
        return Err(Error::EmptyHeaderName { offset });
    }
    let (name, value) = (
        line.get(..colon).unwrap_or_default(),
        line.get(colon + 1..).unwrap_or_default(),
    );
    if head.marks.doubtful {
        check_escapes(head.escaping, name, value, offset, config)?;
    }
    // The first occurrence of a repeated header is the one that counts (1.2 "Repeated Header
    // Entries"). A bad content-length is an error, never a reason to scan for NUL instead.
    if head.content_length.is_none() && name == b"content-length" {
        let length = grammar::content_length(value).ok_or_else(|| Error::InvalidContentLength {
            offset: offset + name.len() + 1,
            value: Error::excerpt(value),
        })?;
        let limit = config.limits().max_body;
        if length > limit {
            return Err(Error::BodyTooLarge {
                limit,
                actual: length,
            });
        }
        head.content_length = Some(length);
    }
    Ok(())
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use core::cell::Cell;

    use bytes::BytesMut;

    use crate::{Config, Decoder, Item, Version};

    std::thread_local! {
        /// Octets the searches advanced over on this thread.
        pub(super) static SEARCHED: Cell<usize> = const { Cell::new(0) };
    }

    /// Decodes `stream` in pieces of `piece` octets and returns the octets searched.
    fn searched(stream: &[u8], piece: usize) -> usize {
        SEARCHED.with(|n| n.set(0));
        let mut decoder = Decoder::new(Config::new(Version::V1_2));
        let mut buf = BytesMut::new();
        let mut frames = 0;
        for chunk in stream.chunks(piece) {
            buf.extend_from_slice(chunk);
            while let Some(item) = decoder.decode(&mut buf).ok().flatten() {
                frames += usize::from(matches!(item, Item::Frame(_)));
            }
        }
        assert_eq!(frames, 1);
        SEARCHED.with(Cell::get)
    }

    #[test]
    fn a_frame_in_many_pieces_is_searched_once() {
        // 1 MiB body without content-length, in TCP-segment-sized pieces.
        let mut stream = b"MESSAGE\ndestination:/topic/a\n\n".to_vec();
        stream.resize(stream.len() + (1 << 20), b'x');
        stream.push(0);
        for piece in [1460, 7, 1] {
            assert_eq!(searched(&stream, piece), stream.len(), "pieces of {piece}");
        }
        // A head that trickles in one octet at a time is searched once as well.
        let head = b"SEND\nx-long:0123456789012345678901234567890123456789\n\n\0";
        assert_eq!(searched(head, 1), head.len());
    }
}
