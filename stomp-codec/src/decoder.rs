//! The streaming decoder: owned items from a growing `BytesMut`.

use bytes::{Buf, BytesMut};

use crate::owned::FrameBuf;
use crate::scan::{Scan, Scanner};
use crate::{Command, Config, Error, Version};

/// One decoded item of a STOMP byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(FrameBuf),
    /// An EOL outside any frame: a heart-beat, or the trailing EOL of the frame before
    /// (1.2 "Heart-beating"). Either way it proves the peer alive.
    HeartBeat,
}

/// A resumable decoder of a STOMP byte stream, in the shape of tokio-util's `Decoder`.
///
/// Append received bytes to a [`BytesMut`] and call [`decode`](Decoder::decode) until it returns
/// `Ok(None)`. Each frame is split off the buffer (`split_to(len).freeze()`), so its body is a
/// slice of the received bytes, never a copy. The decoder remembers where its scan stopped: a
/// frame that arrives in many pieces is scanned once in total.
///
/// After an error the decoder is failed for good: a byte stream cannot resynchronise, so every
/// later call returns the same error.
///
/// ```
/// use bytes::BytesMut;
/// use stomp_codec::{Command, Config, Decoder, Item, Version};
///
/// let mut decoder = Decoder::new(Config::new(Version::V1_2));
/// let mut buf = BytesMut::new();
/// let mut frames = Vec::new();
/// // A frame, a heart-beat and a second frame, arriving in small pieces.
/// for piece in [&b"CONNECTED\nversion:1."[..], b"2\n\n\0\n", b"\nRECEIPT\nreceipt-", b"id:1\n\n\0"] {
///     buf.extend_from_slice(piece);
///     while let Some(item) = decoder.decode(&mut buf)? {
///         if let Item::Frame(frame) = item {
///             frames.push(frame.command());
///         }
///     }
/// }
/// assert_eq!(frames, [Command::Connected, Command::Receipt]);
/// assert!(buf.is_empty());
/// # Ok::<(), stomp_codec::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Decoder {
    config: Config,
    scanner: Scanner,
    failed: Option<Error>,
}

impl Decoder {
    /// A decoder with these settings.
    pub fn new(config: Config) -> Decoder {
        Decoder {
            config,
            scanner: Scanner::default(),
            failed: None,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Switches to the rules of `version`, as a session does once CONNECTED has been read.
    ///
    /// A frame already partly received is scanned again under the new rules.
    pub fn set_version(&mut self, version: Version) {
        if version != self.config.version() {
            self.config = self.config.with_version(version);
            self.scanner = Scanner::default();
        }
    }

    /// The command of the frame being received, once its command line is in and before the
    /// frame is complete: a server can refuse a frame it may not take now (anything but
    /// CONNECT before the session is established) without reading its headers and body.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use stomp_codec::{Command, Decoder};
    ///
    /// let mut decoder = Decoder::default();
    /// let mut buf = BytesMut::from(&b"SEND\ndestination:/queue/a\n"[..]);
    /// assert_eq!(decoder.decode(&mut buf)?, None);
    /// assert_eq!(decoder.command_in_progress(), Some(Command::Send));
    /// # Ok::<(), stomp_codec::Error>(())
    /// ```
    pub fn command_in_progress(&self) -> Option<Command> {
        self.scanner.command()
    }

    /// The error the decoder failed with, if it has.
    pub fn error(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Decodes the next item from the front of `buf`, removing its bytes.
    ///
    /// `Ok(None)` means more bytes are needed; `buf` keeps what it holds, and the next call
    /// resumes the scan where this one stopped, so `buf` must only grow at its end between
    /// calls.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.scanner.scan(buf, &self.config) {
            Ok(Scan::Incomplete) => Ok(None),
            Ok(Scan::HeartBeat(n)) => {
                buf.advance(n);
                Ok(Some(Item::HeartBeat))
            }
            Ok(Scan::Frame(layout)) => {
                let bytes = buf.split_to(layout.len).freeze();
                Ok(Some(Item::Frame(FrameBuf::new(bytes, layout))))
            }
            Err(error) => {
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }
}

impl Default for Decoder {
    /// A strict STOMP 1.2 decoder with the default limits.
    fn default() -> Self {
        Decoder::new(Config::default())
    }
}
