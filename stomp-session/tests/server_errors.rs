//! Every server-side error path: the ERROR frame's `message` (and `receipt-id` when the failing
//! frame asked for a receipt) is checked, and the session closes only after the ERROR has been
//! handed out. Input is fed whole and one octet at a time.

use std::time::{Duration, Instant};

use stomp_codec::{Config, Status, Version, parse};
use stomp_session::{CloseReason, Refused, ServerConfig, ServerEvent, ServerSession};

const CONNECT_12: &str = "CONNECT\naccept-version:1.2\nhost:/\n\n\0";

/// A frame the server wrote: command, headers, body.
type Written = (String, Vec<(String, String)>, String);

struct Outcome {
    /// Every frame the server wrote, as (command, headers) text.
    frames: Vec<Written>,
    reason: Option<CloseReason>,
}

/// Feeds `input` to a fresh server session that accepts every CONNECT.
fn run(input: &str, bytewise: bool) -> Outcome {
    run_with(ServerConfig::default(), input, bytewise)
}

/// Feeds `input` to a fresh server session of `config` that accepts every CONNECT.
fn run_with(config: ServerConfig, input: &str, bytewise: bool) -> Outcome {
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    let now = Instant::now();
    let mut server = ServerSession::new(config, now);
    let mut wrote = Vec::new();
    let mut reason = None;
    let pieces: Vec<&[u8]> = if bytewise {
        input.as_bytes().chunks(1).collect()
    } else {
        vec![input.as_bytes()]
    };
    for piece in pieces {
        server.handle_input(now, piece);
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect(_) => server.accept(now).unwrap(),
                ServerEvent::Closed { reason: r, .. } => {
                    assert!(reason.is_none(), "closed twice");
                    // The ERROR is still to be handed out when the close is reported.
                    assert!(!server.is_closed());
                    reason = Some(r);
                }
                _ => {}
            }
        }
        while let Some(bytes) = server.poll_transmit() {
            wrote.extend_from_slice(&bytes);
        }
    }
    if reason.is_some() {
        assert!(server.is_closed());
        server.handle_input(now, b"SEND\ndestination:/q\n\n\0");
        assert!(
            server.poll_transmit().is_none(),
            "nothing is written after the close"
        );
        assert!(server.poll_event().is_none());
    }
    Outcome {
        frames: frames(&wrote),
        reason,
    }
}

fn frames(mut wire: &[u8]) -> Vec<Written> {
    let config = Config::new(Version::V1_2);
    let mut all = Vec::new();
    while !wire.is_empty() {
        match parse(wire, &config).unwrap() {
            Status::Frame(frame, used) => {
                let headers = frame
                    .headers()
                    .iter()
                    .map(|h| (h.name().into_owned(), h.value().into_owned()))
                    .collect();
                let body = String::from_utf8_lossy(frame.body()).into_owned();
                all.push((frame.command().to_string(), headers, body));
                wire = &wire[used..];
            }
            Status::HeartBeat(n) => wire = &wire[n..],
            Status::Incomplete => panic!("incomplete output"),
        }
    }
    all
}

/// Checks that what `server` wrote starts with an ERROR carrying `message`, and that it closed.
fn assert_closed_with_error(server: &mut ServerSession, message: &str) {
    let wrote: Vec<u8> = std::iter::from_fn(|| server.poll_transmit())
        .flatten()
        .collect();
    let expected = format!("ERROR\nmessage:{message}\n");
    assert!(
        wrote.starts_with(expected.as_bytes()),
        "{}",
        String::from_utf8_lossy(&wrote)
    );
    assert!(server.is_closed());
}

/// Checks that `input` ends in exactly one ERROR with this message (and receipt-id), last.
fn assert_error(input: &str, message: &str, receipt: Option<&str>) {
    assert_error_with(ServerConfig::default, input, message, receipt);
}

/// As [`assert_error`], for a session of the given configuration.
fn assert_error_with(
    config: impl Fn() -> ServerConfig,
    input: &str,
    message: &str,
    receipt: Option<&str>,
) {
    for bytewise in [false, true] {
        let outcome = run_with(config(), input, bytewise);
        let (command, headers, body) = outcome.frames.last().expect("no frame written");
        assert_eq!(command, "ERROR", "{input:?}");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("message"), Some(message), "{input:?}");
        assert_eq!(get("receipt-id"), receipt, "{input:?}");
        assert_eq!(get("content-type"), Some("text/plain"));
        assert!(body.starts_with(message));
        assert_eq!(outcome.frames.iter().filter(|f| f.0 == "ERROR").count(), 1);
        assert!(outcome.reason.is_some(), "{input:?} did not close");
    }
}

#[test]
fn frame_before_connect() {
    assert_error(
        "SEND\ndestination:/q\n\nx\0",
        "expected CONNECT or STOMP as the first frame, got SEND",
        None,
    );
}

#[test]
fn no_common_version_lists_the_supported_ones() {
    let outcome = run("CONNECT\naccept-version:2.0,9.9\nhost:/\n\n\0", false);
    let (command, headers, _) = &outcome.frames[0];
    assert_eq!(command, "ERROR");
    assert!(headers.contains(&("version".into(), "1.0,1.1,1.2".into())));
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "message" && v.contains("no common STOMP version"))
    );
    assert!(matches!(outcome.reason, Some(CloseReason::Protocol(_))));
}

#[test]
fn missing_host_from_v11() {
    // Accepted by default, as stompjs and stomp.py send no `host` with their defaults...
    for version in ["1.1", "1.2"] {
        let outcome = run(&format!("CONNECT\naccept-version:{version}\n\n\0"), false);
        assert_eq!(outcome.frames[0].0, "CONNECTED", "{version}");
    }
    // ...and refused when the specification's rule is asked for.
    let strict = || ServerConfig::default().with_require_host(true);
    assert_error_with(
        strict,
        "CONNECT\naccept-version:1.1\n\n\0",
        "CONNECT without host (required from STOMP 1.1)",
        None,
    );
    // 1.0 does not need it.
    let outcome = run("CONNECT\n\n\0", false);
    assert_eq!(outcome.frames[0].0, "CONNECTED");
    assert!(
        outcome.frames[0]
            .1
            .contains(&("version".into(), "1.0".into()))
    );
}

#[test]
fn bad_heart_beat_header() {
    assert_error(
        "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:fast\n\n\0",
        "heart-beat \"fast\" is not two millisecond counts such as 10000,10000",
        None,
    );
}

#[test]
fn missing_required_headers() {
    let cases = [
        ("SEND\nreceipt:r1\n\nx\0", "SEND without destination"),
        (
            "SUBSCRIBE\nid:0\nreceipt:r1\n\n\0",
            "SUBSCRIBE without destination",
        ),
        (
            "SUBSCRIBE\ndestination:/q\nreceipt:r1\n\n\0",
            "SUBSCRIBE without id (required from STOMP 1.1)",
        ),
        ("UNSUBSCRIBE\nreceipt:r1\n\n\0", "UNSUBSCRIBE without id"),
        ("ACK\nreceipt:r1\n\n\0", "ACK without id"),
        ("NACK\nreceipt:r1\n\n\0", "NACK without id"),
        ("BEGIN\nreceipt:r1\n\n\0", "BEGIN without transaction"),
        ("COMMIT\nreceipt:r1\n\n\0", "COMMIT without transaction"),
        ("ABORT\nreceipt:r1\n\n\0", "ABORT without transaction"),
    ];
    for (frame, message) in cases {
        assert_error(&format!("{CONNECT_12}{frame}"), message, Some("r1"));
    }
}

#[test]
fn v11_ack_needs_message_id_and_subscription() {
    let connect = "CONNECT\naccept-version:1.1\nhost:/\n\n\0";
    assert_error(
        &format!("{connect}ACK\nmessage-id:m\n\n\0"),
        "ACK without subscription",
        None,
    );
    assert_error(
        &format!("{connect}ACK\nsubscription:s\n\n\0"),
        "ACK without message-id",
        None,
    );
}

#[test]
fn unknown_subscription_transaction_and_ack_id() {
    let cases = [
        (
            "UNSUBSCRIBE\nid:nope\nreceipt:r2\n\n\0",
            "UNSUBSCRIBE of unknown subscription \"nope\"",
        ),
        (
            "COMMIT\ntransaction:tx9\nreceipt:r2\n\n\0",
            "COMMIT of unknown transaction \"tx9\"",
        ),
        (
            "ABORT\ntransaction:tx9\nreceipt:r2\n\n\0",
            "ABORT of unknown transaction \"tx9\"",
        ),
        (
            "SEND\ndestination:/q\ntransaction:tx9\nreceipt:r2\n\n\0",
            "unknown transaction \"tx9\"",
        ),
        (
            "ACK\nid:no-such-id\nreceipt:r2\n\n\0",
            "ACK of a message that awaits no acknowledgement",
        ),
        (
            "NACK\nid:no-such-id\nreceipt:r2\n\n\0",
            "NACK of a message that awaits no acknowledgement",
        ),
    ];
    for (frame, message) in cases {
        assert_error(&format!("{CONNECT_12}{frame}"), message, Some("r2"));
    }
}

#[test]
fn duplicate_subscription_id_and_transaction() {
    let sub = "SUBSCRIBE\nid:0\ndestination:/q\n\n\0";
    assert_error(
        &format!("{CONNECT_12}{sub}{sub}"),
        "subscription id \"0\" is already in use",
        None,
    );
    let begin = "BEGIN\ntransaction:t\n\n\0";
    assert_error(
        &format!("{CONNECT_12}{begin}{begin}"),
        "transaction \"t\" is already open",
        None,
    );
}

#[test]
fn bad_ack_mode_nack_in_v10_and_server_frames_from_a_client() {
    assert_error(
        &format!("{CONNECT_12}SUBSCRIBE\nid:0\ndestination:/q\nack:sometimes\n\n\0"),
        "unknown ack mode \"sometimes\"",
        None,
    );
    assert_error(
        "CONNECT\n\n\0NACK\nmessage-id:m\n\n\0",
        "NACK is not part of STOMP 1.0",
        None,
    );
    assert_error(
        &format!("{CONNECT_12}MESSAGE\n\n\0"),
        "MESSAGE is a server frame",
        None,
    );
    assert_error(
        &format!("{CONNECT_12}{CONNECT_12}"),
        "already connected",
        None,
    );
}

#[test]
fn undecodable_bytes_get_an_error_that_says_why() {
    assert_error(
        &format!("{CONNECT_12}send\ndestination:/q\n\n\0"),
        "unknown command \"send\" (commands are upper case, such as SEND or MESSAGE)",
        None,
    );
    let outcome = run(&format!("{CONNECT_12}SEND\nx:a\\tb\n\n\0"), false);
    assert!(matches!(outcome.reason, Some(CloseReason::Decode(_))));
}

#[test]
fn frames_over_the_limits_are_refused_before_they_complete() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let config =
        ServerConfig::default().with_limits(stomp_session::Limits::default().with_max_body(16));
    let mut server = ServerSession::new(config, now);
    server.handle_input(now, CONNECT_12.as_bytes());
    let _ = server.poll_event();
    server.accept(now).unwrap();
    // The body never ends, but the limit applies as soon as it is passed.
    server.handle_input(now, b"SEND\ndestination:/q\n\n0123456789abcdefX");
    let wrote: Vec<u8> = std::iter::from_fn(|| server.poll_transmit())
        .flatten()
        .collect();
    let text = String::from_utf8_lossy(&wrote);
    assert!(
        text.contains("ERROR\nmessage:body of 17 octets or more is over the limit of 16"),
        "{text}"
    );
    assert!(server.is_closed());
}

#[test]
fn a_silent_connection_is_closed_after_the_connect_timeout() {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let config = ServerConfig::default().with_connect_timeout(Duration::from_secs(3));
    let mut server = ServerSession::new(config, start);
    assert_eq!(server.poll_timeout(), Some(start + Duration::from_secs(3)));
    server.handle_timeout(start + Duration::from_millis(2999));
    assert!(server.poll_event().is_none());
    server.handle_timeout(start + Duration::from_secs(3));
    let wrote: Vec<u8> = std::iter::from_fn(|| server.poll_transmit())
        .flatten()
        .collect();
    assert!(wrote.starts_with(b"ERROR\nmessage:no CONNECT within 3000 ms\n"));
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Closed {
            reason: CloseReason::ConnectTimedOut,
            ..
        })
    ));
    assert!(server.is_closed());
}

#[test]
fn input_before_the_connect_is_answered_is_bounded() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let limits = stomp_session::Limits::default()
        .with_max_head_bytes(64)
        .with_max_body(64);
    let mut server = ServerSession::new(ServerConfig::default().with_limits(limits), now);
    server.handle_input(now, CONNECT_12.as_bytes());
    assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
    // The application has not answered yet; pipelined frames wait, up to one head's size.
    server.handle_input(now, b"SEND\ndestination:/q\n\nwaits\0");
    assert!(server.poll_transmit().is_none());
    server.handle_input(now, &[b'x'; 64]);
    assert_closed_with_error(
        &mut server,
        "more than 64 octets sent before CONNECT was accepted",
    );
}

#[test]
fn frames_pipelined_after_connect_are_acted_on_at_accept() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut server = ServerSession::new(ServerConfig::default(), now);
    let pipelined = format!("{CONNECT_12}SUBSCRIBE\nid:0\ndestination:/q\nreceipt:s\n\n\0");
    server.handle_input(now, pipelined.as_bytes());
    assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
    assert!(server.poll_event().is_none());
    server.accept(now).unwrap();
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Subscribe { .. })
    ));
    let wrote: Vec<u8> = std::iter::from_fn(|| server.poll_transmit())
        .flatten()
        .collect();
    let text = String::from_utf8_lossy(&wrote);
    assert!(text.starts_with("CONNECTED\nversion:1.2\n"), "{text}");
    assert!(text.ends_with("RECEIPT\nreceipt-id:s\n\n\0"), "{text}");
}

#[test]
fn a_subscription_can_wait_for_the_application_and_be_refused_before_its_receipt() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let config = ServerConfig::default().with_confirm_subscriptions(true);
    let mut server = ServerSession::new(config, now);
    server.handle_input(now, CONNECT_12.as_bytes());
    let _ = server.poll_event();
    server.accept(now).unwrap();
    let _ = std::iter::from_fn(|| server.poll_transmit()).count();
    let frames = "SUBSCRIBE\nid:0\ndestination:/topic/ok\nreceipt:a\n\n\0\
                  SUBSCRIBE\nid:1\ndestination:/secret\nreceipt:b\n\n\0";
    server.handle_input(now, frames.as_bytes());
    // The first waits: no RECEIPT yet, and the second is not read.
    assert!(
        matches!(server.poll_event(), Some(ServerEvent::Subscribe { ref id, .. }) if id == "0")
    );
    assert!(server.poll_event().is_none());
    assert!(server.poll_transmit().is_none());
    server.confirm_subscription(now).unwrap();
    assert_eq!(
        server.subscription(&"0".into()).map(|s| s.0),
        Some("/topic/ok")
    );
    let Some(ServerEvent::Subscribe { destination, .. }) = server.poll_event() else {
        panic!()
    };
    assert_eq!(destination, "/secret");
    server
        .refuse_subscription(now, "no such destination: /secret")
        .unwrap();
    let wrote: Vec<u8> = std::iter::from_fn(|| server.poll_transmit())
        .flatten()
        .collect();
    let text = String::from_utf8_lossy(&wrote);
    assert!(
        text.starts_with(
            // The colon in the message is escaped, as in every 1.2 header value.
            "RECEIPT\nreceipt-id:a\n\n\0ERROR\nmessage:no such destination\\c /secret\nreceipt-id:b\n"
        ),
        "{text}"
    );
    assert!(server.subscription(&"1".into()).is_none());
    assert!(server.is_closed());
}

#[test]
fn a_subscription_that_could_never_be_delivered_is_refused() {
    // Found by fuzzing: in 1.0 the destination names a subscription without id, and a value
    // may end in CR (the EOL takes only the last one), which no 1.0 MESSAGE can carry back.
    for bytewise in [false, true] {
        let outcome = run(
            "CONNECT\n\n\0SUBSCRIBE\ndestination:/queue/q\r\r\n\n\0",
            bytewise,
        );
        let (command, _, body) = outcome.frames.last().unwrap();
        assert_eq!(command, "ERROR");
        // The body is never escaped: it quotes the value as Rust's Debug does.
        assert_eq!(
            body,
            "subscription \"/queue/q\\r\" cannot be sent back in a STOMP 1.0 MESSAGE\n"
        );
        assert!(matches!(outcome.reason, Some(CloseReason::Protocol(_))));
    }
}

#[test]
fn a_receipt_that_could_never_be_echoed_is_refused_and_the_error_still_goes_out() {
    // Found by fuzzing: a 1.0 `receipt` ending in CR cannot be a `receipt-id`; the ERROR used
    // to be lost with it.
    for bytewise in [false, true] {
        let outcome = run(
            "CONNECT\n\n\0SEND\ndestination:/q\nreceipt:r\r\r\n\nx\0",
            bytewise,
        );
        let (command, headers, body) = outcome.frames.last().unwrap();
        assert_eq!(command, "ERROR");
        assert!(
            !headers.iter().any(|(n, _)| n == "receipt-id"),
            "{headers:?}"
        );
        assert_eq!(
            body,
            "receipt \"r\\r\" cannot be sent back in a STOMP 1.0 RECEIPT\n"
        );
        assert!(matches!(outcome.reason, Some(CloseReason::Protocol(_))));
    }
}

#[test]
fn more_than_one_connect_head_before_the_connect_is_accepted_is_refused() {
    // Only one head's worth is taken while the CONNECT awaits the application (a login
    // check), not the 16 MiB a pipelined body could hold.
    let config = ServerConfig::default()
        .with_limits(stomp_session::Limits::default().with_max_head_bytes(256));
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut server = ServerSession::new(config, now);
    server.handle_input(now, CONNECT_12.as_bytes());
    assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
    let send = format!("SEND\ndestination:/q\n\n{}\0", "x".repeat(300));
    server.handle_input(now, send.as_bytes());
    assert_closed_with_error(
        &mut server,
        "more than 256 octets sent before CONNECT was accepted",
    );
}

#[test]
fn subscriptions_per_connection_are_bounded() {
    let config = || ServerConfig::default().with_max_subscriptions(2);
    let input = format!(
        "{CONNECT_12}SUBSCRIBE\nid:0\ndestination:/a\n\n\0SUBSCRIBE\nid:1\ndestination:/b\n\n\0\
         SUBSCRIBE\nid:2\ndestination:/c\nreceipt:r\n\n\0"
    );
    assert_error_with(config, &input, "more than 2 subscriptions", Some("r"));
}

#[test]
fn transactions_are_bounded_in_number_frames_and_octets() {
    let config = || {
        ServerConfig::default()
            .with_max_transactions(2)
            .with_max_transaction_frames(3)
            .with_max_transaction_bytes(200)
    };
    let begins = format!(
        "{CONNECT_12}BEGIN\ntransaction:a\n\n\0BEGIN\ntransaction:b\n\n\0BEGIN\ntransaction:c\n\n\0"
    );
    assert_error_with(config, &begins, "more than 2 open transactions", None);
    let send = "SEND\ndestination:/q\ntransaction:t\n\nx\0";
    let frames = format!("{CONNECT_12}BEGIN\ntransaction:t\n\n\0{}", send.repeat(4));
    assert_error_with(
        config,
        &frames,
        "transaction \"t\" holds more than 3 frames",
        None,
    );
    let big = format!(
        "{CONNECT_12}BEGIN\ntransaction:t\n\n\0SEND\ndestination:/q\ntransaction:t\n\n{}\0",
        "x".repeat(200)
    );
    assert_error_with(
        config,
        &big,
        "transaction \"t\" holds more than 200 octets",
        None,
    );
    // After COMMIT, the room is free again.
    let reused = format!(
        "{CONNECT_12}BEGIN\ntransaction:t\n\n\0{send}{send}{send}COMMIT\ntransaction:t\n\n\0\
         BEGIN\ntransaction:t\n\n\0{send}{send}{send}COMMIT\ntransaction:t\nreceipt:done\n\n\0"
    );
    let outcome = run_with(config(), &reused, false);
    assert!(outcome.reason.is_none());
    assert_eq!(outcome.frames.last().map(|f| f.0.as_str()), Some("RECEIPT"));
}

struct NoSecrets;

impl stomp_session::SendCheck for NoSecrets {
    fn check(
        &self,
        login: Option<&str>,
        destination: &str,
        _: &stomp_session::FrameBuf,
    ) -> Result<(), Refused> {
        match destination.starts_with("/secret") {
            true => Err(format!("{} may not send to {destination}", login.unwrap_or("-")).into()),
            false => Ok(()),
        }
    }
}

#[test]
fn a_send_check_refuses_before_the_receipt_inside_a_transaction_too() {
    let config = || ServerConfig::default().with_send_check(std::sync::Arc::new(NoSecrets));
    let connect = "CONNECT\naccept-version:1.2\nhost:/\nlogin:eve\n\n\0";
    let direct = format!("{connect}SEND\ndestination:/secret/x\nreceipt:r1\n\nhi\0");
    assert_error_with(config, &direct, "eve may not send to /secret/x", Some("r1"));
    let in_tx = format!(
        "{connect}BEGIN\ntransaction:t\n\n\0SEND\ndestination:/secret/x\ntransaction:t\nreceipt:r2\n\nhi\0"
    );
    assert_error_with(config, &in_tx, "eve may not send to /secret/x", Some("r2"));
    for bytewise in [false, true] {
        let outcome = run_with(config(), &direct, bytewise);
        assert!(!outcome.frames.iter().any(|f| f.0 == "RECEIPT"));
    }
}

#[test]
fn a_margin_that_is_not_a_number_or_below_one_cannot_panic() {
    // NaN, infinite and below-one margins count as one period; a huge one as "never".
    for (margin, dropped) in [
        (f64::NAN, true),
        (-1.0, true),
        (0.0, true),
        (f64::INFINITY, true),
        (1e300, false),
    ] {
        let config = ServerConfig::default().with_heart_beat_margin(margin);
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut server = ServerSession::new(config, now);
        server.handle_input(
            now,
            b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:1000,1000\n\n\0",
        );
        let _ = server.poll_event();
        server.accept(now).unwrap();
        // The deadlines are computed from the margin: none may panic, and a silent client is
        // still dropped in the end.
        let mut at = now;
        for _ in 0..100 {
            let Some(next) = server.poll_timeout() else {
                break;
            };
            at = next.max(at);
            server.handle_timeout(at);
        }
        assert_eq!(!server.is_connected(), dropped, "margin {margin}");
    }
}

#[test]
fn a_client_whose_input_is_paused_is_not_timed_out_for_its_silence() {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut server = ServerSession::new(ServerConfig::default(), start);
    server.handle_input(
        start,
        b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:1000,0\n\n\0",
    );
    let _ = server.poll_event();
    server.accept(start).unwrap();
    server.pause_input(start);
    // The client's period is 10 s (the server's wish) with a margin of 2: ten times that of
    // silence while the driver does not read, and it is still connected.
    let later = start + Duration::from_secs(200);
    server.handle_timeout(later);
    assert!(server.is_connected());
    // Reading resumes: the client's period starts afresh, and silence counts again.
    server.resume_input(later);
    server.handle_timeout(later + Duration::from_millis(19_999));
    assert!(server.is_connected());
    server.handle_timeout(later + Duration::from_secs(20));
    assert!(!server.is_connected());
}

#[test]
fn a_connect_never_accepted_is_told_so_at_the_connect_timeout() {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let config = ServerConfig::default().with_connect_timeout(Duration::from_secs(3));
    let mut server = ServerSession::new(config, start);
    server.handle_input(start, CONNECT_12.as_bytes());
    assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
    // The application never answers.
    server.handle_timeout(start + Duration::from_secs(3));
    assert_closed_with_error(&mut server, "CONNECT not accepted within 3000 ms");
}

#[test]
fn a_clock_that_goes_backwards_cannot_panic_a_session() {
    #[allow(clippy::disallowed_methods)]
    let late = Instant::now() + Duration::from_secs(3600);
    let mut server = ServerSession::new(ServerConfig::default(), late);
    server.handle_input(
        late,
        b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:1000,1000\n\n\0",
    );
    let _ = server.poll_event();
    server.accept(late).unwrap();
    // Each call an hour earlier than the one before.
    for step in 1..=3u64 {
        let earlier = late - Duration::from_secs(1200 * step);
        server.handle_input(earlier, b"\n");
        server.handle_timeout(earlier);
        assert!(server.poll_timeout().is_some());
        assert!(server.is_connected());
    }
    while server.poll_transmit().is_some() {}
}

#[test]
fn a_protocol_close_names_the_rule_broken_as_a_value() {
    use stomp_session::{Command, Violation};
    let cases = [
        (
            format!("{CONNECT_12}SEND\n\nhi\0"),
            Violation::MissingHeader {
                command: Command::Send,
                header: "destination",
                since: None,
            },
        ),
        (
            format!("{CONNECT_12}MESSAGE\n\n\0"),
            Violation::ServerFrame(Command::Message),
        ),
        (
            format!("{CONNECT_12}COMMIT\ntransaction:t\n\n\0"),
            Violation::UnknownTransaction {
                command: Some(Command::Commit),
                id: "t".into(),
            },
        ),
        (
            "SEND\ndestination:/q\n\n\0".to_owned(),
            Violation::NotConnected(Command::Send),
        ),
    ];
    for (input, violation) in cases {
        let outcome = run(&input, false);
        let message = violation.to_string();
        assert_eq!(outcome.reason, Some(CloseReason::Protocol(violation)));
        // The ERROR frame carries the same rule as text.
        let (_, headers, _) = &outcome.frames[outcome.frames.len() - 1];
        assert!(
            headers.contains(&("message".into(), message)),
            "{headers:?}"
        );
    }
}
