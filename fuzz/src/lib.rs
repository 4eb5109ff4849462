//! What the fuzz targets share: decoding a stream in chosen pieces, and comparing frames
//! without the `content-length` headers that encoders own.

use bytes::BytesMut;
use stomp_codec::{Config, Decoder, Error, Item, OutFrame};

/// An item of a decoded stream, owned and comparable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Frame(OutFrame),
    HeartBeat,
}

/// Decodes `stream` fed in pieces of the given sizes (cycled; zero means one octet), stopping
/// at the first error.
pub fn decode_in_pieces(
    config: Config,
    stream: &[u8],
    sizes: &[usize],
) -> (Vec<Seen>, Option<Error>) {
    let mut decoder = Decoder::new(config);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(Item::HeartBeat)) => items.push(Seen::HeartBeat),
                Ok(Some(Item::Frame(frame))) => {
                    items.push(Seen::Frame(OutFrame::from(&frame.as_frame())))
                }
                Err(e) => return (items, Some(e)),
            }
        }
    }
    (items, None)
}

/// The outcome with the sizes that limit errors report ("octets read so far", which depend on
/// how much had arrived) set aside; everything else must match exactly.
pub fn comparable(outcome: &(Vec<Seen>, Option<Error>)) -> (Vec<Seen>, Option<Error>) {
    let error = outcome.1.clone().map(|error| match error {
        Error::HeadTooLarge { limit, .. } => Error::HeadTooLarge { limit, actual: 0 },
        Error::HeaderLineTooLong { offset, limit, .. } => Error::HeaderLineTooLong {
            offset,
            limit,
            actual: 0,
        },
        Error::BodyTooLarge { limit, .. } => Error::BodyTooLarge { limit, actual: 0 },
        other => other,
    });
    (outcome.0.clone(), error)
}

/// The frame without any `content-length` header, which encoders write for themselves.
pub fn without_content_length(frame: &OutFrame) -> OutFrame {
    let mut plain = OutFrame::new(frame.command()).with_body(frame.body().clone());
    for (name, value) in frame
        .headers()
        .filter(|(name, _)| *name != "content-length")
    {
        plain.push_header(name.to_owned(), value.to_owned());
    }
    plain
}
