//! A byte stream fed to a `Decoder` in chosen pieces, following the version a CONNECT or
//! CONNECTED frame settles as a session would, with outcomes that compare whatever the pieces.

use bytes::BytesMut;
use stomp_codec::{Command, Config, Decoder, Error, Item, OutFrame, Version};

/// One decoded item, owned and comparable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A frame.
    Frame(OutFrame),
    /// A heart-beat EOL.
    HeartBeat,
}

impl Seen {
    /// The frame, if it is one.
    pub fn frame(&self) -> Option<&OutFrame> {
        match self {
            Seen::Frame(frame) => Some(frame),
            Seen::HeartBeat => None,
        }
    }
}

/// Which side of the connection the bytes come from, to follow the negotiated version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Keep the configured version.
    Nothing,
    /// Bytes a server sent: CONNECTED's `version` (absent: 1.0) sets the version.
    Connected,
    /// Bytes a client sent: the highest `accept-version` of CONNECT or STOMP (absent: 1.0).
    Connect,
}

/// The result of feeding a whole stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What was decoded, in order.
    pub items: Vec<Seen>,
    /// The error that stopped decoding, if any.
    pub error: Option<Error>,
    /// Octets left in the buffer at the end; after an error, how much had arrived depends on the
    /// chunking, so it is not recorded.
    pub leftover: Option<usize>,
}

impl Outcome {
    /// The frames decoded.
    pub fn frames(&self) -> Vec<&OutFrame> {
        self.items.iter().filter_map(Seen::frame).collect()
    }

    /// The commands of the frames decoded.
    pub fn commands(&self) -> Vec<Command> {
        self.frames().iter().map(|f| f.command()).collect()
    }

    /// How many heart-beats were decoded.
    pub fn heart_beats(&self) -> usize {
        self.items.iter().filter(|i| **i == Seen::HeartBeat).count()
    }
}

/// Feeds `input` to a fresh decoder in pieces of the given sizes (the last piece takes the
/// rest), decoding everything after each piece.
pub fn feed(config: Config, follow: Follow, input: &[u8], sizes: &[usize]) -> Outcome {
    let mut decoder = Decoder::new(config);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = input;
    let mut sizes = sizes.iter().copied();
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
                    if let Some(version) = negotiated(follow, &frame.as_frame()) {
                        decoder.set_version(version);
                    }
                    items.push(Seen::Frame(OutFrame::from(&frame.as_frame())));
                }
                Err(error) => {
                    // A failed decoder stays failed.
                    assert_eq!(decoder.decode(&mut buf), Err(error.clone()));
                    return Outcome {
                        items,
                        error: Some(error),
                        leftover: None,
                    };
                }
            }
        }
    }
    Outcome {
        items,
        error: None,
        leftover: Some(buf.len()),
    }
}

fn negotiated(follow: Follow, frame: &stomp_codec::Frame<'_>) -> Option<Version> {
    match (follow, frame.command()) {
        (Follow::Connected, Command::Connected) => Some(
            frame
                .header("version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(Version::V1_0),
        ),
        (Follow::Connect, Command::Connect | Command::Stomp) => Some(
            frame
                .header("accept-version")
                .and_then(|list| list.split(',').filter_map(|v| v.parse().ok()).max())
                .unwrap_or(Version::V1_0),
        ),
        _ => None,
    }
}

/// Piece sizes that cover `len` octets one at a time.
pub fn bytewise(len: usize) -> Vec<usize> {
    vec![1; len]
}

/// Deterministic pseudo-random piece sizes from 1 to `max`, covering `len` octets.
pub fn random_pieces(len: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut sizes = Vec::new();
    let mut covered = 0;
    while covered < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state % max as u64) as usize + 1;
        sizes.push(n);
        covered += n;
    }
    sizes
}

/// Every way the tests feed a stream: whole, one octet at a time, and random pieces.
pub fn chunkings(len: usize) -> Vec<(String, Vec<usize>)> {
    let mut all = vec![
        ("whole".to_string(), vec![len]),
        ("bytewise".to_string(), bytewise(len)),
    ];
    for seed in 1..=12u64 {
        let max = [2, 3, 7, 64, 1460, 4096][seed as usize % 6];
        all.push((
            format!("random(max {max}, seed {seed})"),
            random_pieces(len, max, seed),
        ));
    }
    all
}

/// `sizes` repeated until they cover `len` octets: how a fuzz input's own octets choose the
/// pieces.
pub fn cycled(sizes: &[usize], len: usize) -> Vec<usize> {
    let mut all = Vec::new();
    let mut covered = 0;
    for &size in sizes.iter().cycle() {
        if covered >= len {
            break;
        }
        all.push(size);
        covered += size.max(1);
    }
    all
}

/// The outcome with the sizes that limit errors report ("octets read so far", which depend on
/// how much had arrived) set aside; everything else must match exactly.
pub fn comparable(outcome: &Outcome) -> (Vec<Seen>, Option<Error>) {
    let error = outcome.error.clone().map(|error| match error {
        Error::HeadTooLarge { limit, .. } => Error::HeadTooLarge { limit, actual: 0 },
        Error::HeaderLineTooLong { offset, limit, .. } => Error::HeaderLineTooLong {
            offset,
            limit,
            actual: 0,
        },
        Error::BodyTooLarge { limit, .. } => Error::BodyTooLarge { limit, actual: 0 },
        other => other,
    });
    (outcome.items.clone(), error)
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
