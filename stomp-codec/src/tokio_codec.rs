//! tokio-util's `Decoder` and `Encoder` traits, for use with `Framed` (feature `tokio-util`).

use std::fmt;
use std::io;

use bytes::BytesMut;

use crate::{Config, Decoder, EncodeError, Encoder, Error, Item, OutFrame, Version};

/// A [`Decoder`] and an [`Encoder`] in one value, implementing tokio-util's codec traits.
///
/// ```
/// use bytes::BytesMut;
/// use stomp_codec::{Command, Config, Item, OutFrame, StompCodec, Version};
/// use tokio_util::codec::{Decoder as _, Encoder as _};
///
/// let mut codec = StompCodec::new(Config::new(Version::V1_2));
/// let mut wire = BytesMut::new();
/// codec.encode(OutFrame::new(Command::Disconnect).with_header("receipt", "bye"), &mut wire)?;
/// let Some(Item::Frame(frame)) = codec.decode(&mut wire)? else { panic!() };
/// assert_eq!(frame.header("receipt").as_deref(), Some("bye"));
/// # Ok::<(), stomp_codec::CodecError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StompCodec {
    decoder: Decoder,
    encoder: Encoder,
}

impl StompCodec {
    /// A codec that decodes with `config` and encodes for the same version.
    pub fn new(config: Config) -> StompCodec {
        StompCodec {
            decoder: Decoder::new(config),
            encoder: Encoder::new(config.version()),
        }
    }

    /// Switches both directions to the rules of `version`.
    pub fn set_version(&mut self, version: Version) {
        self.decoder.set_version(version);
        self.encoder.set_version(version);
    }

    /// The decoder.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}

/// The error of [`StompCodec`]: the transport's, or a decoding or encoding error.
#[derive(Debug)]
#[non_exhaustive]
pub enum CodecError {
    /// The transport failed.
    Io(io::Error),
    /// The peer sent bytes that are not STOMP.
    Decode(Error),
    /// A frame could not be encoded.
    Encode(EncodeError),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Io(e) => write!(f, "transport error: {e}"),
            CodecError::Decode(e) => write!(f, "invalid STOMP input: {e}"),
            CodecError::Encode(e) => write!(f, "cannot encode frame: {e}"),
        }
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CodecError::Io(e) => Some(e),
            CodecError::Decode(e) => Some(e),
            CodecError::Encode(e) => Some(e),
        }
    }
}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> Self {
        CodecError::Io(e)
    }
}

impl From<Error> for CodecError {
    fn from(e: Error) -> Self {
        CodecError::Decode(e)
    }
}

impl From<EncodeError> for CodecError {
    fn from(e: EncodeError) -> Self {
        CodecError::Encode(e)
    }
}

impl tokio_util::codec::Decoder for StompCodec {
    type Item = Item;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Item>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl tokio_util::codec::Encoder<&OutFrame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &OutFrame, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encoder.encode(frame, dst)?)
    }
}

impl tokio_util::codec::Encoder<OutFrame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: OutFrame, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encoder.encode(&frame, dst)?)
    }
}
