//! Property tests: encoding then decoding gives back the same frame in every version, and any
//! byte stream decodes to the same items whatever its chunking.

mod common;

use common::{Follow, feed};
use proptest::prelude::*;
use stomp_codec::{Command, Config, EncodeError, Encoder, OutFrame, Status, Version, parse};

/// Text rich in the octets that escaping and framing care about, and in non-ASCII characters.
fn text(min: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-z0-9/._-]{1,4}",
        1 => Just(":".to_string()),
        1 => Just("\\".to_string()),
        1 => Just("\r".to_string()),
        1 => Just("\n".to_string()),
        1 => Just("é☃\u{1F600}".to_string()),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, min..6).prop_map(|pieces| pieces.concat())
}

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(Version::ALL.to_vec())
}

fn out_frame() -> impl Strategy<Value = OutFrame> {
    let command = prop::sample::select(Command::ALL.to_vec());
    let headers = prop::collection::vec(
        (text(1), text(0)).prop_filter("the encoder owns content-length", |(n, _)| {
            n != "content-length"
        }),
        0..6,
    );
    let body = prop::collection::vec(
        prop_oneof![3 => any::<u8>(), 1 => Just(0u8), 1 => Just(b'\n')],
        0..64,
    );
    (command, headers, body).prop_map(|(command, headers, body)| {
        let mut frame = OutFrame::new(command);
        for (name, value) in headers {
            frame.push_header(name, value);
        }
        if command.allows_body() {
            frame.set_body(body);
        }
        frame
    })
}

/// Whether some header holds an octet that `version` cannot carry for this command: stated
/// independently of the encoder, from 1.2 "Value Encoding".
fn unrepresentable(frame: &OutFrame, version: Version) -> bool {
    let escaped = frame.command().escapes_headers() && version != Version::V1_0;
    frame.headers().any(|(name, value)| {
        let cr_in = |s: &str| match version {
            Version::V1_2 => !escaped && s.contains('\r'),
            _ => false,
        };
        let trailing_cr = value.ends_with('\r') && version != Version::V1_2;
        if escaped {
            trailing_cr
        } else {
            name.contains(':')
                || name.contains('\n')
                || value.contains('\n')
                || cr_in(name)
                || cr_in(value)
                || trailing_cr
        }
    })
}

/// The headers that sessions look up in every frame, and some like them.
const LOOKED_UP: [&str; 14] = [
    "destination",
    "subscription",
    "message-id",
    "receipt",
    "receipt-id",
    "transaction",
    "ack",
    "id",
    "content-type",
    "message",
    "content-length",
    "destinations",
    "i",
    "x-id",
];

/// The frame with the encoder's `content-length` header removed, checked to be right.
fn without_content_length(frame: OutFrame) -> OutFrame {
    let mut plain = OutFrame::new(frame.command()).with_body(frame.body().clone());
    for (name, value) in frame.headers() {
        if name == "content-length" {
            assert_eq!(value, frame.body().len().to_string());
        } else {
            plain.push_header(name.to_string(), value.to_string());
        }
    }
    plain
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_gives_back_the_frame(
        frame in out_frame(),
        version in version(),
        always in any::<bool>(),
        sizes in prop::collection::vec(1usize..40, 0..20),
    ) {
        let encoder = Encoder::new(version).always_content_length(always);
        let mut wire = Vec::new();
        match encoder.encode(&frame, &mut wire) {
            Err(EncodeError::Unrepresentable { .. }) => {
                prop_assert!(unrepresentable(&frame, version), "refused {frame:?}");
                prop_assert!(wire.is_empty());
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
            Ok(()) => prop_assert!(!unrepresentable(&frame, version)),
        }
        let config = Config::new(version);
        let Ok(Status::Frame(decoded, used)) = parse(&wire, &config) else {
            return Err(TestCaseError::fail(format!("{:?}", parse(&wire, &config))));
        };
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(without_content_length(OutFrame::from(&decoded)), frame.clone());

        // The streaming decoder agrees, in any pieces.
        let outcome = feed(config, Follow::Nothing, &wire, &sizes);
        prop_assert_eq!(&outcome.error, &None);
        prop_assert_eq!(outcome.frames().len(), 1);
        prop_assert_eq!(without_content_length(outcome.frames()[0].clone()), frame);
    }

    #[test]
    fn any_stream_decodes_the_same_whatever_its_chunking(
        pieces in prop::collection::vec(prop_oneof![
            4 => prop::sample::select(vec![
                &b"SEND\n"[..], b"MESSAGE\r\n", b"CONNECTED\n", b"RECEIPT\n", b"destination:/q\n",
                b"content-length:3\n", b"content-length:x\n", b"x:a\\cb\n", b"x:a\\tb\n", b"\n",
                b"\r\n", b"\0", b"\r", b":", b"abc", b"\xff", b"version:1.0\n", b"\n\n",
            ]).prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ], 0..40),
        sizes in prop::collection::vec(1usize..16, 0..64),
        version in version(),
    ) {
        let stream = pieces.concat();
        let config = Config::new(version);
        let whole = feed(config, Follow::Connected, &stream, &[stream.len()]);
        let chunked = feed(config, Follow::Connected, &stream, &sizes);
        prop_assert_eq!(&chunked, &whole);
        let bytewise = feed(config, Follow::Connected, &stream, &common::bytewise(stream.len()));
        prop_assert_eq!(bytewise, whole);
    }

    #[test]
    fn a_header_looked_up_is_the_first_line_a_search_finds(
        command in prop::sample::select(Command::ALL.to_vec()),
        headers in prop::collection::vec((
            prop_oneof![
                2 => prop::sample::select(LOOKED_UP.to_vec()).prop_map(String::from),
                1 => text(1),
            ],
            text(0),
        ), 0..8),
        version in version(),
    ) {
        let mut frame = OutFrame::new(command);
        for (name, value) in headers {
            frame.push_header(name, value);
        }
        let mut wire = Vec::new();
        if Encoder::new(version).encode(&frame, &mut wire).is_err() {
            return Ok(());
        }
        let Ok(Status::Frame(decoded, _)) = parse(&wire, &Config::new(version)) else {
            return Err(TestCaseError::fail(format!("{:?}", parse(&wire, &Config::new(version)))));
        };
        for name in LOOKED_UP.iter().copied().chain(frame.headers().map(|(n, _)| n)) {
            let searched = decoded.headers().iter().find(|h| h.name() == name).map(|h| h.value());
            prop_assert_eq!(decoded.header(name), searched, "{}", name);
        }
    }

    #[test]
    fn a_stream_of_frames_and_heart_beats_decodes_to_those_frames(
        frames in prop::collection::vec((out_frame(), 0usize..3), 1..8),
        version in version(),
        sizes in prop::collection::vec(1usize..64, 0..64),
    ) {
        let encoder = Encoder::new(version);
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (frame, eols) in frames {
            if encoder.encode(&frame, &mut stream).is_ok() {
                expected.push(frame);
            }
            stream.extend(std::iter::repeat_n(&b"\r\n"[..], eols).flatten());
        }
        let outcome = feed(Config::new(version), Follow::Nothing, &stream, &sizes);
        prop_assert_eq!(&outcome.error, &None);
        prop_assert_eq!(outcome.leftover, Some(0));
        let decoded: Vec<OutFrame> =
            outcome.frames().into_iter().cloned().map(without_content_length).collect();
        prop_assert_eq!(decoded, expected);
    }
}
