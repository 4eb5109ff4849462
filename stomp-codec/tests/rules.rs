//! One test per rule of the STOMP specifications that implementations get wrong, per known
//! mistake of the existing Rust crates, and per error variant. Every accepted input is decoded
//! three ways (h11's habit): `parse` on the whole input, the `Decoder` fed one octet at a time,
//! and `parse` with trailing bytes that must stay unconsumed.

mod common;

use std::borrow::Cow;
use std::mem::discriminant;

use bytes::{Bytes, BytesMut};
use common::{Follow, bytewise, feed};
use stomp_codec::{
    Command, Config, Decoder, EncodeError, Encoder, Error, Item, Limits, OutFrame, Status, Version,
    parse,
};

const V10: Version = Version::V1_0;
const V11: Version = Version::V1_1;
const V12: Version = Version::V1_2;

/// Decodes one frame that must use all of `input`, the same way by every route.
fn frame(config: Config, input: &[u8]) -> OutFrame {
    let Ok(Status::Frame(frame, used)) = parse(input, &config) else {
        panic!(
            "{:?} did not parse: {:?}",
            String::from_utf8_lossy(input),
            parse(input, &config)
        );
    };
    assert_eq!(used, input.len(), "a frame ends at its NUL");
    let whole = OutFrame::from(&frame);

    let mut trailing = input.to_vec();
    trailing.extend_from_slice(b"SEND\ndesti");
    match parse(&trailing, &config) {
        Ok(Status::Frame(again, used)) => {
            assert_eq!(used, input.len(), "trailing bytes stay unconsumed");
            assert_eq!(OutFrame::from(&again), whole);
        }
        other => panic!("with trailing bytes: {other:?}"),
    }

    let outcome = feed(config, Follow::Nothing, input, &bytewise(input.len()));
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.leftover, Some(0));
    assert_eq!(outcome.frames(), [&whole], "bytewise decoding differs");
    whole
}

/// Checks that `input` is refused, by `parse` and by a bytewise `Decoder` alike.
fn refused(config: Config, input: &[u8]) -> Error {
    let error = match parse(input, &config) {
        Err(error) => error,
        other => panic!(
            "{:?} was not refused: {other:?}",
            String::from_utf8_lossy(input)
        ),
    };
    let bytewise = feed(config, Follow::Nothing, input, &bytewise(input.len()));
    let late = bytewise
        .error
        .expect("the bytewise decoder accepted what parse refused");
    assert_eq!(
        discriminant(&late),
        discriminant(&error),
        "{late:?} vs {error:?}"
    );
    error
}

fn v(version: Version) -> Config {
    Config::new(version)
}

fn encode(version: Version, frame: &OutFrame) -> Vec<u8> {
    let mut wire = Vec::new();
    Encoder::new(version).encode(frame, &mut wire).unwrap();
    wire
}

// ---- Framing (1.2 "STOMP Frames", "Augmented BNF") ----

#[test]
fn frame_is_command_headers_blank_line_body_nul() {
    let f = frame(v(V12), b"SEND\ndestination:/q\n\nbody\0");
    assert_eq!(f.command(), Command::Send);
    assert_eq!(f.headers().collect::<Vec<_>>(), [("destination", "/q")]);
    assert_eq!(f.body().as_ref(), b"body");
    let bare = frame(v(V12), b"DISCONNECT\n\n\0");
    assert_eq!(bare.headers().count(), 0);
}

#[test]
fn eol_is_lf_or_crlf() {
    let lf = frame(v(V12), b"SEND\ndestination:/q\n\nx\0");
    let crlf = frame(v(V12), b"SEND\r\ndestination:/q\r\n\r\nx\0");
    assert_eq!(lf, crlf);
    // Mixed line ends within one frame are fine too.
    assert_eq!(frame(v(V12), b"SEND\r\ndestination:/q\n\r\nx\0"), lf);
}

#[test]
fn lone_cr_is_an_error() {
    assert_eq!(
        refused(v(V12), b"\rSEND\n\n\0"),
        Error::LoneCarriageReturn { offset: 0 }
    );
    assert_eq!(
        refused(v(V12), b"SEND\ndestination:/a\rb\n\n\0"),
        Error::LoneCarriageReturn { offset: 19 }
    );
    assert_eq!(
        refused(v(V12), b"SEND\ndesti\rnation:/q\n\n\0"),
        Error::LoneCarriageReturn { offset: 10 }
    );
}

#[test]
fn eols_between_frames_are_heart_beats_never_broken_frames() {
    let config = v(V12);
    assert_eq!(parse(b"\n", &config), Ok(Status::HeartBeat(1)));
    assert_eq!(parse(b"\r\n", &config), Ok(Status::HeartBeat(2)));
    assert_eq!(parse(b"\r", &config), Ok(Status::Incomplete));
    assert_eq!(parse(b"", &config), Ok(Status::Incomplete));
    let stream = b"\n\n\r\nRECEIPT\nreceipt-id:1\n\n\0\n\n\r\n\nRECEIPT\nreceipt-id:2\n\n\0\r\n";
    let outcome = feed(config, Follow::Nothing, stream, &[stream.len()]);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.commands(), [Command::Receipt, Command::Receipt]);
    assert_eq!(outcome.heart_beats(), 3 + 4 + 1);
    assert_eq!(
        feed(config, Follow::Nothing, stream, &bytewise(stream.len())),
        outcome
    );
}

#[test]
fn heart_beat_cr_and_lf_may_arrive_in_different_reads() {
    let mut decoder = Decoder::new(v(V12));
    let mut buf = BytesMut::from(&b"\r"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"\n");
    assert_eq!(decoder.decode(&mut buf), Ok(Some(Item::HeartBeat)));
    assert!(buf.is_empty());
    assert_eq!(decoder.decode(&mut buf), Ok(None));
}

#[test]
fn commands_are_case_sensitive() {
    assert_eq!(
        refused(v(V12), b"send\ndestination:/q\n\n\0"),
        Error::UnknownCommand {
            found: "send".into()
        }
    );
    assert!(matches!(
        refused(v(V12), b"Send\n\n\0"),
        Error::UnknownCommand { .. }
    ));
    assert!(matches!(
        refused(v(V12), b"SEND \n\n\0"),
        Error::UnknownCommand { .. }
    ));
}

#[test]
fn every_client_and_server_command_is_recognised() {
    for command in Command::ALL {
        let mut wire = command.as_str().as_bytes().to_vec();
        wire.extend_from_slice(b"\n\n\0");
        assert_eq!(frame(v(V12), &wire).command(), command);
        assert_eq!(command.as_str().parse::<Command>(), Ok(command));
    }
    assert!(Command::Stomp.is_client() && Command::Connected.is_server());
}

#[test]
fn garbage_first_line_is_refused_before_its_eol() {
    // No command is longer than UNSUBSCRIBE: the decoder does not wait for an EOL.
    let mut decoder = Decoder::new(v(V12));
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1 and much more"[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Err(Error::UnknownCommand { .. })
    ));
}

#[test]
fn header_splits_at_first_colon_and_keeps_raw_colons_in_values() {
    let f = frame(
        v(V12),
        b"MESSAGE\nmessage-id:ID:host-1:2\nx-url:http://h:80/p\n\n\0",
    );
    assert_eq!(f.header("message-id"), Some("ID:host-1:2"));
    assert_eq!(f.header("x-url"), Some("http://h:80/p"));
    let f10 = frame(v(V10), b"CONNECT\nlogin:a:b\n\n\0");
    assert_eq!(f10.header("login"), Some("a:b"));
}

#[test]
fn header_name_has_one_octet_or_more_and_value_may_be_empty() {
    let f = frame(v(V12), b"SEND\ndestination:/q\nx-empty:\n\n\0");
    assert_eq!(f.header("x-empty"), Some(""));
    assert_eq!(
        refused(v(V12), b"SEND\n:value\n\n\0"),
        Error::EmptyHeaderName { offset: 5 }
    );
}

#[test]
fn names_and_values_are_never_trimmed() {
    let f = frame(v(V12), b"SEND\nfoo : bar \n\n\0");
    assert_eq!(f.headers().collect::<Vec<_>>(), [("foo ", " bar ")]);
    assert_eq!(f.header("foo"), None);
}

#[test]
fn repeated_header_first_wins_and_all_are_kept_in_order() {
    let input = b"MESSAGE\nx-dup:first\ndestination:/q\nx-dup:second\n\n\0";
    let Ok(Status::Frame(parsed, _)) = parse(input, &v(V12)) else {
        panic!()
    };
    assert_eq!(parsed.header("x-dup").as_deref(), Some("first"));
    let all: Vec<_> = parsed.headers().get_all("x-dup").collect();
    assert_eq!(all, ["first", "second"]);
    let order: Vec<_> = parsed
        .headers()
        .iter()
        .map(|h| h.name().into_owned())
        .collect();
    assert_eq!(order, ["x-dup", "destination", "x-dup"]);
}

#[test]
fn only_send_message_and_error_carry_a_body() {
    for command in [Command::Send, Command::Message, Command::Error] {
        let wire = format!("{command}\n\nbody\0");
        assert_eq!(frame(v(V12), wire.as_bytes()).body().as_ref(), b"body");
    }
    for command in Command::ALL.into_iter().filter(|c| !c.allows_body()) {
        let wire = format!("{command}\n\nbody\0");
        let error = refused(v(V12), wire.as_bytes());
        let offset = command.as_str().len() + 2;
        assert_eq!(error, Error::BodyNotAllowed { command, offset });
        let with_length = format!("{command}\ncontent-length:4\n\nbody\0");
        assert!(matches!(
            refused(v(V12), with_length.as_bytes()),
            Error::BodyNotAllowed { .. }
        ));
    }
}

#[test]
fn body_on_receipt_is_refused_as_soon_as_it_starts() {
    let mut decoder = Decoder::new(v(V12));
    let mut buf = BytesMut::from(&b"RECEIPT\nreceipt-id:1\n\nx"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(Error::BodyNotAllowed {
            command: Command::Receipt,
            offset: 22
        })
    );
}

#[test]
fn headers_must_be_utf8_and_bad_octets_never_panic() {
    let f = frame(v(V12), "SEND\nx-text:héllo ☃\n\n\0".as_bytes());
    assert_eq!(f.header("x-text"), Some("héllo ☃"));
    assert_eq!(
        refused(v(V12), b"SEND\nx-bad:\xff\xfe\n\n\0"),
        Error::InvalidUtf8 { offset: 11 }
    );
    assert!(matches!(
        refused(v(V10), b"SEND\n\xc3:x\n\n\0"),
        Error::InvalidUtf8 { .. }
    ));
}

// ---- content-length (1.2 "Header content-length") ----

#[test]
fn content_length_counts_body_octets_nuls_included() {
    let f = frame(v(V12), b"SEND\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(f.body().as_ref(), b"a\0b\0c");
}

#[test]
fn content_length_zero_is_valid_on_any_frame() {
    for command in Command::ALL {
        let wire = format!("{command}\ncontent-length:0\n\n\0");
        assert_eq!(frame(v(V12), wire.as_bytes()).command(), command);
    }
}

#[test]
fn octet_after_content_length_must_be_nul() {
    assert_eq!(
        refused(v(V12), b"SEND\ncontent-length:3\n\nabcd\0"),
        Error::ContentLengthMismatch {
            offset: 26,
            content_length: 3,
            found: b'd'
        }
    );
}

#[test]
fn bad_content_length_is_an_error_never_a_reason_to_scan_for_nul() {
    for bad in [
        "abc",
        "-1",
        "+3",
        " 3",
        "3 ",
        "3.0",
        "",
        "99999999999999999999999",
    ] {
        let wire = format!("SEND\ncontent-length:{bad}\n\nabc\0");
        assert_eq!(
            refused(v(V12), wire.as_bytes()),
            Error::InvalidContentLength {
                offset: 20,
                value: bad.to_string()
            },
            "{bad:?}"
        );
    }
}

#[test]
fn only_the_first_content_length_counts() {
    let f = frame(
        v(V12),
        b"SEND\ncontent-length:3\ncontent-length:1\n\na\0b\0",
    );
    assert_eq!(f.body().as_ref(), b"a\0b");
}

#[test]
fn content_length_over_the_limit_is_refused_once_its_header_is_read() {
    let config = v(V12).with_limits(Limits::default().with_max_body(100));
    let mut decoder = Decoder::new(config);
    let mut buf = BytesMut::from(&b"SEND\ncontent-length:101\n"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(Error::BodyTooLarge {
            limit: 100,
            actual: 101
        })
    );
}

#[test]
fn without_content_length_the_body_ends_at_the_first_nul() {
    let Ok(Status::Frame(f, used)) = parse(b"SEND\n\nab\0cd\0", &v(V12)) else {
        panic!()
    };
    assert_eq!(f.body(), b"ab");
    assert_eq!(used, 9);
}

#[test]
fn encoder_adds_content_length_when_the_body_holds_a_nul() {
    let plain = OutFrame::new(Command::Send)
        .with_header("destination", "/q")
        .with_body("ab");
    assert_eq!(encode(V12, &plain), b"SEND\ndestination:/q\n\nab\0");
    let binary = plain.clone().with_body(&b"a\0b"[..]);
    assert_eq!(
        encode(V12, &binary),
        b"SEND\ndestination:/q\ncontent-length:3\n\na\0b\0"
    );
    let mut always = Vec::new();
    Encoder::new(V12)
        .always_content_length(true)
        .encode(&plain, &mut always)
        .unwrap();
    assert_eq!(always, b"SEND\ndestination:/q\ncontent-length:2\n\nab\0");
    // A supplied content-length is corrected in place; repeats are dropped.
    let wrong = OutFrame::new(Command::Send)
        .with_header("content-length", "99")
        .with_header("destination", "/q")
        .with_header("content-length", "1")
        .with_body("abc");
    assert_eq!(
        encode(V12, &wrong),
        b"SEND\ncontent-length:3\ndestination:/q\n\nabc\0"
    );
}

// ---- Escaping (1.2 "Value Encoding") ----

#[test]
fn v10_has_no_escapes() {
    let f = frame(v(V10), b"SEND\nx-esc:a\\cb\\tc\\\n\n\0");
    assert_eq!(f.header("x-esc"), Some("a\\cb\\tc\\"));
    let out = OutFrame::new(Command::Send).with_header("x-esc", "a\\b");
    assert_eq!(encode(V10, &out), b"SEND\nx-esc:a\\b\n\n\0");
}

#[test]
fn v11_decodes_lf_colon_and_backslash() {
    let f = frame(v(V11), b"SEND\nx-esc:a\\cb\\nc\\\\d\n\n\0");
    assert_eq!(f.header("x-esc"), Some("a:b\nc\\d"));
    // \r is not defined in 1.1.
    assert_eq!(
        refused(v(V11), b"SEND\nx-esc:a\\rb\n\n\0"),
        Error::UndefinedEscape {
            offset: 12,
            header: "x-esc".into(),
            escape: Some(b'r')
        }
    );
}

#[test]
fn v12_adds_the_cr_escape() {
    let f = frame(v(V12), b"SEND\nx-esc:a\\cb\\nc\\\\d\\re\n\n\0");
    assert_eq!(f.header("x-esc"), Some("a:b\nc\\d\re"));
}

#[test]
fn undefined_escape_is_fatal_in_strict_mode() {
    assert_eq!(
        refused(v(V12), b"SEND\nx-bad:a\\tb\n\n\0"),
        Error::UndefinedEscape {
            offset: 12,
            header: "x-bad".into(),
            escape: Some(b't')
        }
    );
    assert_eq!(
        refused(v(V12), b"SEND\nx-bad:ab\\\n\n\0"),
        Error::UndefinedEscape {
            offset: 13,
            header: "x-bad".into(),
            escape: None
        }
    );
    assert!(matches!(
        refused(v(V12), b"SEND\nx\\q:v\n\n\0"),
        Error::UndefinedEscape {
            offset: 6,
            escape: Some(b'q'),
            ..
        }
    ));
}

#[test]
fn lenient_option_keeps_undefined_escapes_verbatim() {
    let lenient = v(V12).keep_undefined_escapes(true);
    let f = frame(lenient, b"SEND\nx-bad:a\\tb\\cc\\\n\n\0");
    assert_eq!(f.header("x-bad"), Some("a\\tb:c\\"));
}

#[test]
fn connect_connected_and_stomp_are_never_unescaped() {
    for version in Version::ALL {
        for command in ["CONNECT", "STOMP", "CONNECTED"] {
            let wire = format!("{command}\nlogin:a\\cb\\t\nsession:ID:1:2\n\n\0");
            let f = frame(v(version), wire.as_bytes());
            assert_eq!(f.header("login"), Some("a\\cb\\t"), "{command} {version}");
        }
    }
}

#[test]
fn encoder_never_escapes_connect_connected_or_stomp() {
    let connect = OutFrame::new(Command::Connect)
        .with_header("accept-version", "1.2")
        .with_header("passcode", "p\\c:w");
    assert_eq!(
        encode(V12, &connect),
        b"CONNECT\naccept-version:1.2\npasscode:p\\c:w\n\n\0"
    );
    let connected = OutFrame::new(Command::Connected).with_header("session", "ID:a:1");
    assert_eq!(encode(V11, &connected), b"CONNECTED\nsession:ID:a:1\n\n\0");
}

#[test]
fn escaping_applies_to_header_names() {
    let f = frame(v(V12), b"MESSAGE\nx\\ckey\\\\name:v\\c1\n\n\0");
    assert_eq!(f.header("x:key\\name"), Some("v:1"));
    let out = OutFrame::new(Command::Message).with_header("x:key\\name", "v:1");
    assert_eq!(encode(V12, &out), b"MESSAGE\nx\\ckey\\\\name:v\\c1\n\n\0");
}

#[test]
fn encoder_escapes_per_version() {
    let out = OutFrame::new(Command::Send).with_header("x", "a:b\nc\\d\re");
    assert_eq!(encode(V12, &out), b"SEND\nx:a\\cb\\nc\\\\d\\re\n\n\0");
    assert_eq!(encode(V11, &out), b"SEND\nx:a\\cb\\nc\\\\d\re\n\n\0");
}

#[test]
fn values_without_escapes_are_borrowed() {
    let input = b"MESSAGE\ndestination:/topic/a\nx-esc:a\\cb\n\n\0";
    let Ok(Status::Frame(f, _)) = parse(input, &v(V12)) else {
        panic!()
    };
    assert!(matches!(
        f.header("destination"),
        Some(Cow::Borrowed("/topic/a"))
    ));
    assert!(matches!(f.header("x-esc"), Some(Cow::Owned(s)) if s == "a:b"));
}

// ---- Version differences ----

#[test]
fn crlf_is_accepted_on_v11_and_v10_too() {
    for version in [V10, V11] {
        let f = frame(v(version), b"SEND\r\ndestination:/q\r\n\r\nx\0");
        assert_eq!(f.header("destination"), Some("/q"));
    }
}

#[test]
fn lone_cr_is_an_ordinary_octet_in_v10_and_v11_values() {
    for version in [V10, V11] {
        let f = frame(v(version), b"SEND\nx:a\rb\n\n\0");
        assert_eq!(f.header("x"), Some("a\rb"));
    }
}

#[test]
fn leading_eols_before_the_first_frame_are_accepted() {
    let stream = b"\n\r\n\nCONNECT\naccept-version:1.2\nhost:/\n\n\0\n\n\n";
    let outcome = feed(v(V12), Follow::Connect, stream, &[stream.len()]);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.commands(), [Command::Connect]);
    assert_eq!(outcome.heart_beats(), 6);
}

#[test]
fn the_version_can_change_once_connected_is_read() {
    let stream = b"CONNECTED\nversion:1.0\n\n\0MESSAGE\nx:a\\cb\n\n\0";
    let outcome = feed(v(V12), Follow::Connected, stream, &bytewise(stream.len()));
    assert_eq!(outcome.frames()[1].header("x"), Some("a\\cb"));
    // Switching while a frame is partly read scans that frame again under the new rules.
    let mut decoder = Decoder::new(v(V12));
    let mut buf = BytesMut::from(&b"MESSAGE\nx:a\\t"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    decoder.set_version(V10);
    buf.extend_from_slice(b"\n\n\0");
    let Ok(Some(Item::Frame(f))) = decoder.decode(&mut buf) else {
        panic!()
    };
    assert_eq!(f.header("x").as_deref(), Some("a\\t"));
}

#[test]
fn encoder_refuses_what_the_version_cannot_carry() {
    let colon_name = OutFrame::new(Command::Send).with_header("a:b", "v");
    let mut sink = Vec::new();
    assert_eq!(
        Encoder::new(V10).encode(&colon_name, &mut sink),
        Err(EncodeError::Unrepresentable {
            header: "a:b".into(),
            byte: b':',
            version: V10,
            command: Command::Send
        })
    );
    let lf_value = OutFrame::new(Command::Connect).with_header("login", "a\nb");
    assert!(matches!(
        Encoder::new(V12).encode(&lf_value, &mut sink),
        Err(EncodeError::Unrepresentable { byte: b'\n', .. })
    ));
    let trailing_cr = OutFrame::new(Command::Send).with_header("x", "a\r");
    assert!(matches!(
        Encoder::new(V11).encode(&trailing_cr, &mut sink),
        Err(EncodeError::Unrepresentable {
            byte: b'\r',
            version: V11,
            ..
        })
    ));
    assert!(sink.is_empty(), "a refused frame writes nothing");
}

// ---- Limits ("Size Limits"), enforced before the frame is complete ----

/// Feeds `input` (which never completes a frame) octet by octet and returns the error.
fn refused_while_incomplete(limits: Limits, input: &[u8]) -> Error {
    let mut decoder = Decoder::new(v(V12).with_limits(limits));
    let mut buf = BytesMut::new();
    for &octet in input {
        buf.extend_from_slice(&[octet]);
        if let Err(e) = decoder.decode(&mut buf) {
            return e;
        }
    }
    panic!("no limit was enforced");
}

#[test]
fn head_size_limit() {
    let limits = Limits::default().with_max_head_bytes(32);
    let error = refused_while_incomplete(limits, b"SEND\nx-a:0123456789\nx-b:0123456789\n");
    assert_eq!(
        error,
        Error::HeadTooLarge {
            limit: 32,
            actual: 33
        }
    );
    assert!(matches!(
        refused(
            v(V12).with_limits(limits),
            b"SEND\nx-a:0123456789\nx-b:0123456789\n\n\0"
        ),
        Error::HeadTooLarge { limit: 32, .. }
    ));
}

#[test]
fn header_count_limit() {
    let limits = Limits::default().with_max_headers(2);
    let error = refused_while_incomplete(limits, b"SEND\na:1\nb:2\nc:3\n");
    assert_eq!(
        error,
        Error::TooManyHeaders {
            limit: 2,
            actual: 3
        }
    );
}

#[test]
fn header_line_limit() {
    let limits = Limits::default().with_max_header_line(8);
    let error = refused_while_incomplete(limits, b"SEND\nx:1234567");
    assert_eq!(
        error,
        Error::HeaderLineTooLong {
            offset: 5,
            limit: 8,
            actual: 9
        }
    );
    // A CR that may begin the EOL does not count.
    let ok = frame(v(V12).with_limits(limits), b"SEND\nx:123456\r\n\r\n\0");
    assert_eq!(ok.header("x"), Some("123456"));
}

#[test]
fn body_limit_without_content_length() {
    let limits = Limits::default().with_max_body(4);
    let error = refused_while_incomplete(limits, b"SEND\n\n12345");
    assert_eq!(
        error,
        Error::BodyTooLarge {
            limit: 4,
            actual: 5
        }
    );
    assert_eq!(
        frame(v(V12).with_limits(limits), b"SEND\n\n1234\0")
            .body()
            .as_ref(),
        b"1234"
    );
}

#[test]
fn default_limits_are_documented_values() {
    let limits = Limits::default();
    assert_eq!(
        (
            limits.max_head_bytes(),
            limits.max_headers(),
            limits.max_header_line(),
            limits.max_body()
        ),
        (64 * 1024, 128, 16 * 1024, 16 * 1024 * 1024)
    );
}

// ---- Errors ----

#[test]
fn missing_colon() {
    assert_eq!(
        refused(v(V12), b"SEND\nnocolon\n\n\0"),
        Error::MissingColon { offset: 5 }
    );
}

#[test]
fn decoder_stays_failed_after_an_error() {
    let mut decoder = Decoder::new(v(V12));
    let mut buf = BytesMut::from(&b"FOO\n\n\0"[..]);
    let error = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(decoder.error(), Some(&error));
    buf.clear();
    buf.extend_from_slice(b"SEND\n\n\0");
    assert_eq!(decoder.decode(&mut buf), Err(error));
}

#[test]
fn every_error_says_what_and_where() {
    let cases = [
        (
            Error::UnknownCommand {
                found: "send".into(),
            },
            "\"send\"",
        ),
        (Error::LoneCarriageReturn { offset: 7 }, "offset 7"),
        (Error::MissingColon { offset: 5 }, "offset 5"),
        (Error::EmptyHeaderName { offset: 5 }, "empty name"),
        (
            Error::UndefinedEscape {
                offset: 9,
                header: "x".into(),
                escape: Some(b't'),
            },
            "\\t in header \"x\" at offset 9",
        ),
        (
            Error::UndefinedEscape {
                offset: 9,
                header: "x".into(),
                escape: None,
            },
            "backslash",
        ),
        (Error::InvalidUtf8 { offset: 3 }, "UTF-8 at offset 3"),
        (
            Error::InvalidContentLength {
                offset: 20,
                value: "x".into(),
            },
            "\"x\" at offset 20",
        ),
        (
            Error::ContentLengthMismatch {
                offset: 26,
                content_length: 3,
                found: b'd',
            },
            "found 0x64",
        ),
        (
            Error::BodyNotAllowed {
                command: Command::Receipt,
                offset: 2,
            },
            "RECEIPT",
        ),
        (
            Error::HeadTooLarge {
                limit: 32,
                actual: 33,
            },
            "33 octets or more, over the limit of 32",
        ),
        (
            Error::TooManyHeaders {
                limit: 2,
                actual: 3,
            },
            "limit of 2",
        ),
        (
            Error::HeaderLineTooLong {
                offset: 5,
                limit: 8,
                actual: 9,
            },
            "offset 5",
        ),
        (
            Error::BodyTooLarge {
                limit: 4,
                actual: 5,
            },
            "5 octets",
        ),
    ];
    for (error, says) in cases {
        let text = error.to_string();
        assert!(text.contains(says), "{text:?} should contain {says:?}");
        let _: &dyn std::error::Error = &error;
    }
    let encode_cases = [
        (
            EncodeError::BodyNotAllowed {
                command: Command::Ack,
            },
            "ACK",
        ),
        (EncodeError::EmptyHeaderName, "empty name"),
        (
            EncodeError::Unrepresentable {
                header: "a:b".into(),
                byte: b':',
                version: V10,
                command: Command::Send,
            },
            "STOMP 1.0 SEND",
        ),
        (
            EncodeError::BufferTooSmall {
                needed: 9,
                available: 4,
            },
            "needs 9",
        ),
    ];
    for (error, says) in encode_cases {
        assert!(error.to_string().contains(says), "{error}");
    }
}

#[test]
fn encode_errors() {
    let mut sink = Vec::new();
    let body_on_ack = OutFrame::new(Command::Ack)
        .with_header("id", "1")
        .with_body("x");
    assert_eq!(
        Encoder::new(V12).encode(&body_on_ack, &mut sink),
        Err(EncodeError::BodyNotAllowed {
            command: Command::Ack
        })
    );
    let empty_name = OutFrame::new(Command::Send).with_header("", "v");
    assert_eq!(
        Encoder::new(V12).encode(&empty_name, &mut sink),
        Err(EncodeError::EmptyHeaderName)
    );
    let frame = OutFrame::new(Command::Send)
        .with_header("destination", "/q")
        .with_body("abc");
    let mut small = [0u8; 8];
    assert_eq!(
        Encoder::new(V12).encode(&frame, &mut &mut small[..]),
        Err(EncodeError::BufferTooSmall {
            needed: 25,
            available: 8
        })
    );
    let mut exact = [0u8; 25];
    Encoder::new(V12)
        .encode(&frame, &mut &mut exact[..])
        .unwrap();
    assert_eq!(&exact, b"SEND\ndestination:/q\n\nabc\0");
}

// ---- Owned frames ----

#[test]
fn owned_bodies_share_the_received_bytes() {
    let mut decoder = Decoder::new(v(V12));
    let mut buf = BytesMut::from(&b"MESSAGE\ncontent-length:4\n\nbody\0"[..]);
    let start = buf.as_ptr() as usize;
    let Ok(Some(Item::Frame(f))) = decoder.decode(&mut buf) else {
        panic!()
    };
    assert_eq!(
        f.body().as_ptr() as usize,
        start + 26,
        "the body is not a copy"
    );
    let copies: Vec<Bytes> = (0..3).map(|_| f.body().clone()).collect();
    assert!(copies.iter().all(|b| b.as_ptr() == f.body().as_ptr()));
    fn send_sync<T: Send + Sync + Clone>(_: &T) {}
    send_sync(&f);
}

#[test]
fn passcode_never_shows_in_debug_output() {
    let input = b"CONNECT\nlogin:guest\npasscode:s3cret\n\n\0";
    let Ok(Status::Frame(f, _)) = parse(input, &v(V12)) else {
        panic!()
    };
    let shown = format!("{f:?} {:?}", OutFrame::from(&f));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("guest"));
}

// ---- Regressions found by fuzzing ----

#[test]
fn limit_errors_name_the_same_place_and_limit_however_the_bytes_arrive() {
    // Their `actual` is what had arrived when the limit was passed ("N octets or more"), so it
    // may differ; the variant, offset and limit may not.
    let mut frame = b"CONNECT\naccept-version:1.2\nhost:".to_vec();
    frame.extend(std::iter::repeat_n(b'A', 20_000));
    frame.extend_from_slice(b"\n\n\0");
    let whole = match parse(&frame, &v(V12)) {
        Err(Error::HeaderLineTooLong {
            offset,
            limit,
            actual,
        }) => {
            assert_eq!(actual, 20_005);
            (offset, limit)
        }
        other => panic!("{other:?}"),
    };
    let pieces = feed(v(V12), Follow::Nothing, &frame, &[5000; 8]);
    let Some(Error::HeaderLineTooLong {
        offset,
        limit,
        actual,
    }) = pieces.error
    else {
        panic!()
    };
    assert_eq!((offset, limit), whole);
    assert_eq!(actual, 5000 * 4 - 27, "as much of the line as had arrived");
}

#[test]
fn frames_over_the_default_header_count_round_trip_without_limits() {
    let mut frame = OutFrame::new(Command::Message);
    for n in 0..300 {
        frame.push_header(format!("x-{n}"), "v");
    }
    let wire = encode(V12, &frame);
    assert!(matches!(
        parse(&wire, &v(V12)),
        Err(Error::TooManyHeaders { limit: 128, .. })
    ));
    let unlimited = v(V12).with_limits(Limits::UNLIMITED);
    let Ok(Status::Frame(decoded, _)) = parse(&wire, &unlimited) else {
        panic!()
    };
    assert_eq!(OutFrame::from(&decoded), frame);
}

#[test]
fn invalid_utf8_is_found_anywhere_in_a_line() {
    // Early in a long line (read a word at a time) and at its end (read octet by octet).
    for line in [
        &b"x-long:\xff234567890123456789012345"[..],
        b"x-tail:0123456789\xfe",
    ] {
        let mut frame = b"SEND\n".to_vec();
        frame.extend_from_slice(line);
        frame.extend_from_slice(b"\n\n\0");
        assert!(
            matches!(refused(v(V12), &frame), Error::InvalidUtf8 { .. }),
            "{line:?}"
        );
    }
    // Valid non-ASCII text anywhere is fine.
    let ok = frame(
        v(V12),
        "SEND\nx-long:ünïcödé ☃ text that spans words ✓\n\n\0".as_bytes(),
    );
    assert_eq!(
        ok.header("x-long"),
        Some("ünïcödé ☃ text that spans words ✓")
    );
}
