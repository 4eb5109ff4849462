//! Real RabbitMQ 3.10 and ActiveMQ 5.17 traffic (tests/fixtures/captures, described in INDEX.md)
//! decodes without error into the frames the brokers sent, whatever the chunking: whole, one
//! octet at a time, in the pieces the brokers' writes arrived in (the `.log` files), and in
//! pseudo-random pieces.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{Follow, Outcome, chunkings, feed};
use stomp_codec::{Command, Config, OutFrame, Version};

use Command::{Connected as CONNECTED, Error as ERROR, Message as MESSAGE, Receipt as RECEIPT};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captures")
}

fn read(name: &str, ext: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.{ext}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sizes of the pieces in which the broker's bytes arrived, from the `.log` file.
fn recv_sizes(name: &str) -> Vec<usize> {
    String::from_utf8(read(name, "log"))
        .unwrap()
        .lines()
        .map(|line| line.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect()
}

/// Decodes what a broker sent, as a client does: the version follows CONNECTED.
fn decode_received(name: &str) -> Outcome {
    let bytes = read(name, "bin");
    let sizes = recv_sizes(name);
    assert_eq!(
        sizes.iter().sum::<usize>(),
        bytes.len(),
        "{name}: .log covers .bin"
    );
    let config = Config::new(Version::V1_2);
    let reference = feed(config, Follow::Connected, &bytes, &sizes);
    assert_eq!(reference.error, None, "{name}: as received");
    assert_eq!(
        reference.leftover,
        Some(0),
        "{name}: incomplete frame at the end"
    );
    for (how, sizes) in chunkings(bytes.len()) {
        let outcome = feed(config, Follow::Connected, &bytes, &sizes);
        assert_eq!(
            outcome, reference,
            "{name}: {how} differs from the pieces as received"
        );
    }
    reference
}

/// The frames of every `.bin` capture, as INDEX.md describes them.
fn expected_commands() -> BTreeMap<&'static str, Vec<Command>> {
    let mut cases: BTreeMap<&str, Vec<Command>> = BTreeMap::new();
    let connected = vec![CONNECTED];
    let error_only = vec![ERROR];
    let connected_error = vec![CONNECTED, ERROR];
    let connected_receipt = vec![CONNECTED, RECEIPT];
    let message = vec![CONNECTED, RECEIPT, MESSAGE];
    for broker in ["rabbitmq", "activemq"] {
        let name = |case: &str| -> &'static str { format!("{broker}-{case}").leak() };
        for case in [
            "connect-leading-eols",
            "connect-multi-version",
            "connect-stomp-command",
            "connect-v10",
            "connect-v11",
            "connect-v12",
            "heartbeat-0-1000",
            "heartbeat-1000-0-silent",
            "heartbeat-v10-ignored",
        ] {
            cases.insert(name(case), connected.clone());
        }
        for case in [
            "connect-bad-login",
            "connect-bad-version",
            "frame-before-connect",
        ] {
            cases.insert(name(case), error_only.clone());
        }
        for case in [
            "error-ack-unknown",
            "error-garbage-command",
            "error-lowercase-command",
            "error-send-no-destination",
            "error-subscribe-no-destination",
            "error-unsubscribe-unknown",
        ] {
            cases.insert(name(case), connected_error.clone());
        }
        for case in ["connect-crlf", "receipt-disconnect", "receipt-send"] {
            cases.insert(name(case), connected_receipt.clone());
        }
        for case in [
            "message-binary-body",
            "message-colon-v10",
            "message-empty-body",
            "message-escaped-key-v12",
            "message-escaped-v11",
            "message-escaped-v12",
            "message-large-body",
            "message-no-content-length",
            "message-repeated-header",
        ] {
            cases.insert(name(case), message.clone());
        }
        cases.insert(
            name("message-ack-client-individual"),
            vec![CONNECTED, RECEIPT, MESSAGE, RECEIPT],
        );
        cases.insert(name("pipelined-frames"), vec![CONNECTED, MESSAGE, RECEIPT]);
        cases.insert(
            name("transaction"),
            vec![CONNECTED, RECEIPT, RECEIPT, MESSAGE],
        );
    }
    // Where the brokers differ (INDEX.md).
    cases.insert("activemq-connect-any-login-noauth", connected.clone());
    cases.insert("rabbitmq-error-bad-escape-v12", connected.clone()); // TCP close, no ERROR
    cases.insert("activemq-error-bad-escape-v12", connected_receipt.clone()); // accepted
    cases.insert("rabbitmq-error-content-length-mismatch", connected.clone()); // TCP close
    cases.insert(
        "activemq-error-content-length-mismatch",
        connected_error.clone(),
    );
    cases.insert("rabbitmq-error-frame-too-large", connected_receipt.clone()); // no limit
    cases.insert("activemq-error-frame-too-large", connected_error.clone());
    cases.insert("rabbitmq-error-header-too-large", connected_receipt.clone()); // accepted
    let mut flood = vec![CONNECTED];
    flood.extend([ERROR; 23]); // one ERROR, then 22 more while it re-parses the rest
    cases.insert("activemq-error-header-too-large", flood);
    cases.insert(
        "rabbitmq-error-subscribe-no-id-v12",
        connected_receipt.clone(),
    ); // accepted
    cases.insert(
        "activemq-error-subscribe-no-id-v12",
        connected_error.clone(),
    );
    cases.insert("rabbitmq-message-escaped-v10", connected_receipt.clone()); // bad_escape, close
    cases.insert("activemq-message-escaped-v10", message.clone());
    cases.insert(
        "rabbitmq-message-with-send-receipt",
        vec![CONNECTED, RECEIPT, MESSAGE, RECEIPT], // MESSAGE before the SEND's RECEIPT
    );
    cases.insert(
        "activemq-message-with-send-receipt",
        vec![CONNECTED, RECEIPT, RECEIPT, MESSAGE],
    );
    cases
}

#[test]
fn every_capture_decodes_the_same_however_it_is_chunked() {
    let expected = expected_commands();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".bin").map(str::to_owned))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk.len(),
        81,
        "every .bin capture of INDEX.md is a fixture"
    );
    assert_eq!(
        on_disk,
        expected.keys().map(|k| k.to_string()).collect::<Vec<_>>()
    );
    for (name, commands) in &expected {
        let outcome = decode_received(name);
        assert_eq!(outcome.commands(), *commands, "{name}");
        // Brokers end every frame with NUL LF: one trailing EOL per frame, plus heart-beats.
        assert!(outcome.heart_beats() >= commands.len(), "{name}");
    }
}

fn header<'a>(frame: &'a OutFrame, name: &str) -> &'a str {
    frame
        .header(name)
        .unwrap_or_else(|| panic!("no {name} header in {frame:?}"))
}

fn message(name: &str) -> OutFrame {
    let outcome = decode_received(name);
    outcome
        .frames()
        .into_iter()
        .find(|f| f.command() == MESSAGE)
        .unwrap_or_else(|| panic!("{name}: no MESSAGE"))
        .clone()
}

#[test]
fn connected_names_the_negotiated_version() {
    for broker in ["rabbitmq", "activemq"] {
        for (case, version) in [
            ("connect-v10", "1.0"),
            ("connect-v11", "1.1"),
            ("connect-v12", "1.2"),
            ("connect-multi-version", "1.2"),
            ("connect-stomp-command", "1.2"),
        ] {
            let outcome = decode_received(&format!("{broker}-{case}"));
            assert_eq!(
                header(outcome.frames()[0], "version"),
                version,
                "{broker}-{case}"
            );
        }
    }
}

#[test]
fn version_mismatch_error_lists_supported_versions() {
    let outcome = decode_received("rabbitmq-connect-bad-version");
    let error = outcome.frames()[0];
    assert_eq!(header(error, "message"), "Version mismatch");
    assert_eq!(header(error, "version"), "1.0,1.1,1.2");
    assert_eq!(error.body().len(), 35);
}

#[test]
fn error_frames_carry_message_and_receipt_id() {
    let outcome = decode_received("activemq-error-ack-unknown");
    let error = outcome.frames()[1];
    assert_eq!(header(error, "receipt-id"), "r-ack");
    assert!(header(error, "message").starts_with("Unexpected ACK"));
    // ActiveMQ's ERROR bodies are Java stack traces, sent without content-length.
    assert!(
        error.body().starts_with(b"org.apache.activemq"),
        "{error:?}"
    );
}

#[test]
fn headers_decode_by_the_negotiated_version() {
    // 1.0 has no escapes: ActiveMQ sends raw octets, RabbitMQ sends escapes that 1.0 keeps as is.
    assert_eq!(
        header(&message("activemq-message-escaped-v10"), "x-esc"),
        "a:b c\\d"
    );
    assert_eq!(
        header(&message("activemq-message-colon-v10"), "x-url"),
        "http://h:80/p"
    );
    assert_eq!(
        header(&message("rabbitmq-message-colon-v10"), "x-url"),
        "http\\c//h\\c80/p"
    );
    for broker in ["rabbitmq", "activemq"] {
        let v11 = message(&format!("{broker}-message-escaped-v11"));
        assert_eq!(header(&v11, "x-esc"), "a:b\nc\\d");
        let v12 = message(&format!("{broker}-message-escaped-v12"));
        assert_eq!(header(&v12, "x-esc"), "a:b\nc\\d\re");
        // Escapes in a header name.
        let key = message(&format!("{broker}-message-escaped-key-v12"));
        assert_eq!(header(&key, "x:key\\name"), "v:1");
    }
}

#[test]
fn activemq_message_ids_keep_their_colons() {
    let frame = message("activemq-message-ack-client-individual");
    assert!(header(&frame, "message-id").starts_with("ID:vm-46861-1795500505609-3:57"));
    assert_eq!(header(&frame, "ack"), "ID:vm-46861-1795500505609-4:13");
    // Its CONNECTED frame is never unescaped, and carries raw colons too.
    let outcome = decode_received("activemq-message-ack-client-individual");
    assert_eq!(
        header(outcome.frames()[0], "session"),
        "ID:vm-46861-1795500505609-3:57"
    );
}

#[test]
fn repeated_headers_keep_the_first() {
    for broker in ["rabbitmq", "activemq"] {
        let frame = message(&format!("{broker}-message-repeated-header"));
        assert_eq!(header(&frame, "x-dup"), "first");
    }
}

#[test]
fn rabbitmq_copies_receipt_and_transaction_into_messages() {
    assert_eq!(
        header(&message("rabbitmq-message-with-send-receipt"), "receipt"),
        "send-7"
    );
    assert_eq!(
        header(&message("rabbitmq-transaction"), "transaction"),
        "tx1"
    );
}

#[test]
fn heart_beats_are_items_of_their_own() {
    // CONNECTED NUL LF, then one LF every half period (RabbitMQ) or period (ActiveMQ).
    let rabbit = decode_received("rabbitmq-heartbeat-0-1000");
    assert_eq!(header(rabbit.frames()[0], "heart-beat"), "1000,0");
    assert_eq!(rabbit.heart_beats(), 10);
    let activemq = decode_received("activemq-heartbeat-0-1000");
    assert_eq!(activemq.heart_beats(), 4);
}

/// The SEND bodies a client wrote, decoded as a server decodes them.
fn sent_bodies(name: &str) -> Vec<Vec<u8>> {
    let bytes = read(name, "sent");
    let outcome = feed(
        Config::new(Version::V1_2),
        Follow::Connect,
        &bytes,
        &[bytes.len()],
    );
    assert_eq!(outcome.error, None, "{name}.sent");
    outcome
        .frames()
        .into_iter()
        .filter(|f| f.command() == Command::Send)
        .map(|f| f.body().to_vec())
        .collect()
}

#[test]
fn message_bodies_are_what_was_sent() {
    for broker in ["rabbitmq", "activemq"] {
        for case in [
            "message-binary-body",
            "message-colon-v10",
            "message-empty-body",
            "message-escaped-v11",
            "message-escaped-v12",
            "message-large-body",
            "message-no-content-length",
            "message-repeated-header",
        ] {
            let name = format!("{broker}-{case}");
            let sent = sent_bodies(&name);
            assert_eq!(sent.len(), 1, "{name}");
            assert_eq!(message(&name).body().as_ref(), sent[0].as_slice(), "{name}");
        }
    }
    let binary = message("rabbitmq-message-binary-body");
    assert!(binary.body().contains(&0), "the binary body holds NULs");
    assert_eq!(
        message("activemq-message-large-body").body().len(),
        256 * 1024
    );
}

#[test]
fn client_bytes_with_crlf_and_leading_eols_decode() {
    for broker in ["rabbitmq", "activemq"] {
        for case in ["connect-crlf", "connect-leading-eols", "pipelined-frames"] {
            let name = format!("{broker}-{case}");
            let bytes = read(&name, "sent");
            let config = Config::new(Version::V1_2);
            let whole = feed(config, Follow::Connect, &bytes, &[bytes.len()]);
            assert_eq!(whole.error, None, "{name}.sent");
            assert!(matches!(
                whole.commands().first(),
                Some(Command::Connect | Command::Stomp)
            ));
            for (how, sizes) in chunkings(bytes.len()) {
                assert_eq!(
                    feed(config, Follow::Connect, &bytes, &sizes),
                    whole,
                    "{name} {how}"
                );
            }
        }
    }
}

#[test]
fn invalid_client_bytes_are_refused_as_a_strict_server_would() {
    use stomp_codec::Error;
    type Check = fn(&Error) -> bool;
    let cases: [(&str, Check); 4] = [
        (
            "rabbitmq-error-lowercase-command",
            |e| matches!(e, Error::UnknownCommand { found } if found == "send"),
        ),
        (
            "rabbitmq-error-garbage-command",
            |e| matches!(e, Error::UnknownCommand { found } if found == "FOOBAR"),
        ),
        ("rabbitmq-error-bad-escape-v12", |e| {
            matches!(
                e,
                Error::UndefinedEscape {
                    escape: Some(b't'),
                    ..
                }
            )
        }),
        ("rabbitmq-error-content-length-mismatch", |e| {
            matches!(
                e,
                Error::ContentLengthMismatch {
                    content_length: 3,
                    ..
                }
            )
        }),
    ];
    for (name, expected) in cases {
        let bytes = read(name, "sent");
        let outcome = feed(
            Config::new(Version::V1_2),
            Follow::Connect,
            &bytes,
            &[bytes.len()],
        );
        let error = outcome.error.unwrap_or_else(|| panic!("{name}: accepted"));
        assert!(expected(&error), "{name}: {error:?}");
    }
}
