//! Property tests: a server session fed arbitrary bytes in arbitrary pieces, with the clock
//! stepping, never panics, reports its close once, writes nothing once closed, answers every
//! protocol error with an ERROR before the close, and never asks to be woken in the past.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use stomp_codec::{Command, Config, Status, Version, parse};
use stomp_session::{
    CloseReason, Delivery, HeartBeat, ServerConfig, ServerEvent, ServerSession, SessionError,
};

#[derive(Clone, Debug)]
enum Step {
    Input(Vec<u8>),
    Advance(u64),
    Eof,
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            &b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\nheart-beat:100,100\n\n\0"[..],
            b"CONNECT\n\n\0", b"STOMP\naccept-version:1.1\nhost:h\n\n\0",
            b"SUBSCRIBE\nid:0\ndestination:/q\nack:client\n\n\0",
            b"SUBSCRIBE\nid:1\ndestination:/q\nack:client-individual\nreceipt:r\n\n\0",
            b"SEND\ndestination:/q\n\nhi\0", b"SEND\ndestination:/q\ntransaction:t\n\n\0",
            b"BEGIN\ntransaction:t\n\n\0", b"COMMIT\ntransaction:t\n\n\0",
            b"ABORT\ntransaction:t\nreceipt:a\n\n\0", b"ACK\nid:1\n\n\0",
            b"ACK\nmessage-id:m-1\nsubscription:0\n\n\0", b"NACK\nid:2\n\n\0",
            b"UNSUBSCRIBE\nid:0\n\n\0", b"DISCONNECT\nreceipt:bye\n\n\0", b"\n", b"\r\n",
            b"SEND", b"\0", b":", b"x:\\t\n", b"content-length:2\n", b"\n\n",
        ]).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::collection::vec(token(), 1..4).prop_map(|t| Step::Input(t.concat())),
            2 => (0u64..400).prop_map(Step::Advance),
            1 => Just(Step::Eof),
        ],
        0..40,
    )
}

/// The commands of the frames in `wire`.
fn commands(wire: &[u8], version: Version) -> Vec<Command> {
    let config = Config::new(version).keep_undefined_escapes(true);
    let mut rest = wire;
    let mut all = Vec::new();
    while let Ok(status) = parse(rest, &config) {
        match status {
            Status::Frame(frame, used) => {
                all.push(frame.command());
                rest = &rest[used..];
            }
            Status::HeartBeat(n) => rest = &rest[n..],
            Status::Incomplete => break,
        }
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn server_session_survives_anything(
        connect_first in prop::bool::weighted(0.9),
        steps in steps(),
        accept in prop::bool::weighted(0.9),
    ) {
        #[allow(clippy::disallowed_methods)] // the origin of virtual time
        let mut now = Instant::now();
        let config = ServerConfig::default().with_heart_beat(HeartBeat::from_millis(100, 100)).with_connect_timeout(Duration::from_millis(500));
        let mut server = ServerSession::new(config, now);
        let mut wire = Vec::new();
        let mut closed: Option<CloseReason> = None;
        let mut subscriptions: Vec<stomp_session::SubscriptionId> = Vec::new();
        let mut next_message = 0u32;
        let connect = Step::Input(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0".to_vec());
        for step in connect_first.then_some(connect).into_iter().chain(steps) {
            match step {
                Step::Input(bytes) => server.handle_input(now, &bytes),
                Step::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    server.handle_timeout(now);
                    if let Some(deadline) = server.poll_timeout() {
                        prop_assert!(deadline > now, "deadline in the past after handle_timeout");
                    }
                }
                Step::Eof => server.handle_eof(now),
            }
            let was_closed = server.is_closed();
            while let Some(event) = server.poll_event() {
                match event {
                    ServerEvent::Connect(_) if accept => server.accept(now).unwrap(),
                    ServerEvent::Connect(_) => server.reject(now, "no").unwrap(),
                    ServerEvent::Subscribe { id, .. } => subscriptions.push(id),
                    ServerEvent::Unsubscribe { id, .. } => subscriptions.retain(|s| *s != id),
                    ServerEvent::Send(frame) => {
                        // The test application delivers every SEND to every subscription.
                        for id in &subscriptions {
                            next_message += 1;
                            let message_id = format!("m-{next_message}");
                            let delivery = Delivery::new("/q", &message_id, frame.body());
                            // Frames after this SEND, in the same input, may have ended the
                            // subscription or closed the session meanwhile.
                            match server.deliver(now, id, delivery) {
                                Ok(()) | Err(SessionError::Closed | SessionError::UnknownSubscription(_)) => {}
                                Err(e) => prop_assert!(false, "delivery refused: {e}"),
                            }
                        }
                    }
                    ServerEvent::Closed { reason, .. } => {
                        prop_assert!(closed.is_none(), "closed twice");
                        closed = Some(reason);
                    }
                    _ => {}
                }
            }
            let mut wrote = Vec::new();
            while let Some(bytes) = server.poll_transmit() {
                wrote.extend_from_slice(&bytes);
            }
            prop_assert!(!was_closed || wrote.is_empty(), "bytes written after the close");
            wire.extend_from_slice(&wrote);
        }
        if let Some(CloseReason::Protocol(_) | CloseReason::Decode(_) | CloseReason::Rejected(_)) = &closed {
            let sent = commands(&wire, server.version());
            prop_assert_eq!(sent.last(), Some(&Command::Error), "no ERROR before the close");
        }
        if closed.is_some() {
            prop_assert!(server.poll_transmit().is_none());
        }
    }
}
