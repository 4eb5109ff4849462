//! Each implementation's way of decoding and encoding, behind one shape: decode a stream (in
//! pieces of `piece` octets, as a socket delivers it) and count its frames.

use bytes::{Bytes, BytesMut};
use stomp_codec::{Command, Config, Decoder, Encoder, Item, Status, Version, parse};
use tokio_util::codec::Encoder as _;

/// The read buffer every streaming decoder starts with, whole delivery or pieces alike, as a
/// socket driver's would be; it grows as a frame needs.
const READ_BUFFER: usize = 64 * 1024;

/// A decoder under test: the frames it found in `stream`, fed `piece` octets at a time.
pub type DecodeFn = fn(&[u8], usize) -> Result<usize, String>;

/// Feeds `stream` to a tokio-util decoder in pieces and counts what it yields.
fn through_codec<D, T>(
    mut decoder: D,
    stream: &[u8],
    piece: usize,
    is_frame: fn(&T) -> bool,
) -> Result<usize, String>
where
    D: tokio_util::codec::Decoder<Item = T>,
    D::Error: std::fmt::Debug,
{
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut frames = 0;
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf).map_err(|e| format!("{e:?}"))? {
            frames += usize::from(is_frame(&item));
        }
    }
    Ok(frames)
}

/// Ours, borrowed: `parse` over the slice; no allocation. Whole input only.
pub fn ours_borrowed(stream: &[u8], _piece: usize) -> Result<usize, String> {
    let config = Config::new(Version::V1_2);
    let mut rest = stream;
    let mut frames = 0;
    loop {
        match parse(rest, &config).map_err(|e| e.to_string())? {
            Status::Frame(frame, used) => {
                frames += 1;
                std::hint::black_box(frame.body());
                rest = &rest[used..];
            }
            Status::HeartBeat(n) => rest = &rest[n..],
            Status::Incomplete => return Ok(frames),
        }
    }
}

/// Ours, owned: the streaming `Decoder` over `BytesMut`.
pub fn ours_owned(stream: &[u8], piece: usize) -> Result<usize, String> {
    let mut decoder = Decoder::new(Config::new(Version::V1_2));
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut frames = 0;
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            if let Item::Frame(frame) = item {
                frames += 1;
                std::hint::black_box(frame.body());
            }
        }
    }
    Ok(frames)
}

pub fn async_stomp(stream: &[u8], piece: usize) -> Result<usize, String> {
    through_codec(
        async_stomp::client::ClientCodec::new(),
        stream,
        piece,
        |_| true,
    )
}

pub fn iridium_codec(stream: &[u8], piece: usize) -> Result<usize, String> {
    through_codec(iridium_stomp::StompCodec::new(), stream, piece, |item| {
        matches!(item, iridium_stomp::StompItem::Frame(_))
    })
}

/// iridium-stomp's slice parser, over the whole input.
pub fn iridium_slice(stream: &[u8], _piece: usize) -> Result<usize, String> {
    let mut rest = stream;
    let mut frames = 0;
    while rest.iter().any(|&b| b != b'\n' && b != b'\r') {
        match iridium_stomp::parser::parse_frame_slice(rest)? {
            Some((_, _, body, used)) => {
                frames += 1;
                std::hint::black_box(body);
                rest = &rest[used..];
            }
            None => break,
        }
    }
    Ok(frames)
}

pub fn tokio_stomp_2(stream: &[u8], piece: usize) -> Result<usize, String> {
    through_codec(tokio_stomp_2::client::ClientCodec, stream, piece, |_| true)
}

/// stomp-parser takes one whole frame per call, as an owned `Vec`: the caller must have framed
/// the stream already. `frames` holds the frames cut at their NULs beforehand.
pub fn stomp_parser(frames: &[Vec<u8>]) -> Result<usize, String> {
    let mut count = 0;
    for frame in frames {
        let parsed = stomp_parser::server::ServerFrame::try_from(frame.clone())
            .map_err(|e| format!("{e:?}"))?;
        std::hint::black_box(parsed);
        count += 1;
    }
    Ok(count)
}

/// Cuts a stream of frames into whole frames (without the EOLs between them), for
/// stomp-parser; uses our decoder, outside the timed part.
pub fn frames_of(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut decoder = Decoder::new(Config::new(Version::V1_2));
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    while let Ok(Some(item)) = decoder.decode(&mut buf) {
        if let Item::Frame(frame) = item {
            frames.push(frame.as_bytes().to_vec());
        }
    }
    frames
}

/// An encoder under test: encodes a frame with these headers and body into `dst`.
pub type EncodeFn = fn(&[(&str, &str)], &Bytes, &mut BytesMut) -> Result<(), String>;

/// Ours: a MESSAGE from its parts, into the reused buffer.
pub fn encode_ours(
    headers: &[(&str, &str)],
    body: &Bytes,
    dst: &mut BytesMut,
) -> Result<(), String> {
    Encoder::new(Version::V1_2)
        .always_content_length(true)
        .encode_parts(Command::Message, headers.iter().copied(), body, dst)
        .map_err(|e| e.to_string())
}

/// The peers are clients: they encode the same headers and body as a SEND.
pub fn encode_async_stomp(
    headers: &[(&str, &str)],
    body: &Bytes,
    dst: &mut BytesMut,
) -> Result<(), String> {
    let message = async_stomp::Message {
        content: async_stomp::ToServer::Send {
            destination: headers[1].1.to_owned(),
            transaction: None,
            headers: Some(
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            ),
            body: Some(body.to_vec()),
        },
        extra_headers: Vec::new(),
    };
    async_stomp::client::ClientCodec::new()
        .encode(message, dst)
        .map_err(|e| e.to_string())
}

pub fn encode_tokio_stomp_2(
    headers: &[(&str, &str)],
    body: &Bytes,
    dst: &mut BytesMut,
) -> Result<(), String> {
    let message = tokio_stomp_2::Message {
        content: tokio_stomp_2::ToServer::Send {
            destination: headers[1].1.to_owned(),
            transaction: None,
            headers: Some(
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            ),
            body: Some(body.to_vec()),
        },
        extra_headers: Vec::new(),
    };
    tokio_stomp_2::client::ClientCodec
        .encode(message, dst)
        .map_err(|e| e.to_string())
}

pub fn encode_iridium(
    headers: &[(&str, &str)],
    body: &Bytes,
    dst: &mut BytesMut,
) -> Result<(), String> {
    let mut frame = iridium_stomp::Frame::new("SEND");
    for (name, value) in headers {
        frame = frame.header(*name, *value);
    }
    let frame = frame.set_body(body.to_vec());
    iridium_stomp::StompCodec::new()
        .encode(iridium_stomp::StompItem::Frame(frame), dst)
        .map_err(|e| e.to_string())
}
