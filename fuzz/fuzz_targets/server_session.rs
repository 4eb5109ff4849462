//! A server session fed arbitrary byte chunks and clock steps: no panic; nothing is transmitted
//! after the close; a protocol error always yields an ERROR frame before the close; after
//! `handle_timeout(now)` the next deadline is never in the past.
//!
//! Input: client bytes, then a control tail of `n` octets and the octet `n` itself. A capture of
//! client bytes (ending in NUL, so with an empty tail) is a seed as it is; the fuzzer grows tails
//! that cut the bytes into pieces, step the clock and close the connection.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use stomp_codec::{Command, Config, Status, parse};
use stomp_session::{
    CloseReason, Delivery, HeartBeat, ServerConfig, ServerEvent, ServerSession, SessionError,
    SubscriptionId,
};

struct Run {
    now: Instant,
    server: ServerSession,
    wire: Vec<u8>,
    closed: Option<CloseReason>,
    subscriptions: Vec<SubscriptionId>,
    accept: bool,
    next_message: u32,
}

impl Run {
    fn after_call(&mut self) {
        let was_closed = self.server.is_closed();
        while let Some(event) = self.server.poll_event() {
            match event {
                ServerEvent::Connect(_) if self.accept => self.server.accept(self.now).unwrap(),
                ServerEvent::Connect(_) => self.server.reject(self.now, "refused").unwrap(),
                ServerEvent::Subscribe { id, .. } => self.subscriptions.push(id),
                ServerEvent::Unsubscribe { id, .. } => self.subscriptions.retain(|s| *s != id),
                ServerEvent::Send(frame) => {
                    for id in &self.subscriptions {
                        self.next_message += 1;
                        let message_id = format!("m-{}", self.next_message);
                        let delivery = Delivery::new("/q", &message_id, frame.body());
                        match self.server.deliver(self.now, id, delivery) {
                            Ok(())
                            | Err(SessionError::Closed | SessionError::UnknownSubscription(_)) => {}
                            Err(e) => panic!("delivery refused: {e}"),
                        }
                    }
                }
                ServerEvent::Closed { reason, .. } => {
                    assert!(self.closed.is_none(), "closed twice");
                    self.closed = Some(reason);
                }
                _ => {}
            }
        }
        let mut wrote = Vec::new();
        while let Some(bytes) = self.server.poll_transmit() {
            wrote.extend_from_slice(&bytes);
        }
        assert!(
            !was_closed || wrote.is_empty(),
            "bytes written after the close"
        );
        self.wire.extend_from_slice(&wrote);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&tail_len, rest)) = data.split_last() else {
        return;
    };
    let split = rest.len().saturating_sub(usize::from(tail_len));
    let (mut stream, control) = rest.split_at(split);
    let start = Instant::now();
    let config = ServerConfig::default()
        .with_heart_beat(HeartBeat::from_millis(100, 100))
        .with_connect_timeout(Duration::from_millis(500));
    let mut run = Run {
        now: start,
        server: ServerSession::new(config, start),
        wire: Vec::new(),
        closed: None,
        subscriptions: Vec::new(),
        accept: control.first().is_none_or(|&c| c % 16 != 0),
        next_message: 0,
    };
    for pair in control.chunks(2) {
        let (op, arg) = (pair[0], usize::from(*pair.get(1).unwrap_or(&0)));
        match op % 4 {
            0 | 3 => {
                let n = if op % 4 == 0 { arg + 1 } else { (arg + 1) * 16 }.min(stream.len());
                let (piece, tail) = stream.split_at(n);
                stream = tail;
                run.server.handle_input(run.now, piece);
            }
            1 => {
                run.now += Duration::from_millis(arg as u64 * 4);
                run.server.handle_timeout(run.now);
                if let Some(deadline) = run.server.poll_timeout() {
                    assert!(
                        deadline > run.now,
                        "deadline in the past after handle_timeout"
                    );
                }
            }
            _ => run.server.handle_eof(run.now),
        }
        run.after_call();
    }
    run.server.handle_input(run.now, stream);
    run.after_call();
    if let Some(CloseReason::Protocol(_) | CloseReason::Decode(_) | CloseReason::Rejected(_)) =
        &run.closed
    {
        // The ERROR is the last frame written.
        let config = Config::new(run.server.version()).keep_undefined_escapes(true);
        let mut rest = &run.wire[..];
        let mut last = None;
        while let Ok(status) = parse(rest, &config) {
            match status {
                Status::Frame(frame, used) => {
                    last = Some(frame.command());
                    rest = &rest[used..];
                }
                Status::HeartBeat(n) => rest = &rest[n..],
                Status::Incomplete => break,
            }
        }
        assert_eq!(last, Some(Command::Error), "no ERROR before the close");
    }
});
