//! The broker driven by a few clients doing anything, in any order: raw bytes, well-formed
//! frames from a small vocabulary (subscriptions to topics, patterns, queues and user
//! destinations with every ack mode and window, sends in and out of transactions, ACKs and
//! NACKs of what was delivered), a driver that writes or stalls, write reports, clock steps,
//! closes and removals. No panic; and once every connection is gone, the broker holds no
//! subscription, topic, pattern node, user or paused publisher, and every queue message that is
//! left waits in its queue.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use stomp_broker::{Broker, BrokerConfig, ConnectionId};
use stomp_codec::{Config, Status, Version, parse};

const DESTINATIONS: [&str; 10] = [
    "/topic/a",
    "/topic/*",
    "/topic/**",
    "/queue/q",
    "/queue/r",
    "/user/queue/x",
    "/chat/room",
    "/app/x",
    "/nowhere",
    "/queue/**",
];

#[derive(Arbitrary, Debug)]
enum Frame {
    Connect {
        login: bool,
    },
    Subscribe {
        dest: u8,
        ack: u8,
        prefetch: Option<u8>,
        receipt: bool,
    },
    Unsubscribe {
        id: u8,
    },
    Send {
        dest: u8,
        transaction: Option<u8>,
        receipt: bool,
        size: u8,
    },
    Ack {
        nth: u8,
        transaction: Option<u8>,
    },
    Nack {
        nth: u8,
    },
    Begin {
        transaction: u8,
    },
    Commit {
        transaction: u8,
    },
    Abort {
        transaction: u8,
    },
    Disconnect,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Open,
    Frame {
        conn: u8,
        frame: Frame,
    },
    Bytes {
        conn: u8,
        bytes: Vec<u8>,
    },
    Eof {
        conn: u8,
    },
    /// The driver writes what is pending (or leaves it, a stalled reader) and reports.
    Drain {
        conn: u8,
        write: bool,
    },
    Advance {
        millis: u16,
    },
    Remove {
        conn: u8,
    },
    Publish {
        dest: u8,
        size: u8,
    },
    Reply {
        conn: u8,
        dest: u8,
    },
    ToUser {
        dest: u8,
    },
    CloseWithError {
        conn: u8,
    },
}

#[derive(Default)]
struct Conn {
    /// Octets handed out and written by the driver.
    handed: u64,
    written: u64,
    /// `ack` headers of the MESSAGEs received, in order.
    acks: Vec<String>,
    received: Vec<u8>,
}

struct Run {
    now: Instant,
    broker: Broker,
    conns: Vec<(ConnectionId, Conn)>,
}

impl Run {
    fn conn(&self, n: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| n as usize % self.conns.len())
    }

    fn frame_bytes(&self, at: usize, frame: &Frame) -> Vec<u8> {
        let dest = |d: &u8| DESTINATIONS[*d as usize % DESTINATIONS.len()];
        let text = match frame {
            Frame::Connect { login } => {
                let login = if *login { "login:alice\n" } else { "" };
                format!("CONNECT\naccept-version:1.2\nhost:/\n{login}\n\0")
            }
            Frame::Subscribe {
                dest: d,
                ack,
                prefetch,
                receipt,
            } => {
                let ack = ["auto", "client", "client-individual"][*ack as usize % 3];
                let prefetch = prefetch
                    .map(|p| format!("prefetch-count:{p}\n"))
                    .unwrap_or_default();
                let receipt = if *receipt { "receipt:s\n" } else { "" };
                format!(
                    "SUBSCRIBE\nid:{d}\ndestination:{}\nack:{ack}\n{prefetch}{receipt}\n\0",
                    dest(d)
                )
            }
            Frame::Unsubscribe { id } => format!("UNSUBSCRIBE\nid:{}\n\n\0", id % 10),
            Frame::Send {
                dest: d,
                transaction,
                receipt,
                size,
            } => {
                let tx = transaction
                    .map(|t| format!("transaction:t{}\n", t % 3))
                    .unwrap_or_default();
                let receipt = if *receipt { "receipt:r\n" } else { "" };
                let body = "b".repeat(*size as usize);
                format!("SEND\ndestination:{}\n{tx}{receipt}\n{body}\0", dest(d))
            }
            Frame::Ack { nth, transaction } => {
                let acks = &self.conns[at].1.acks;
                let id = acks
                    .get(*nth as usize % acks.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                let tx = transaction
                    .map(|t| format!("transaction:t{}\n", t % 3))
                    .unwrap_or_default();
                format!("ACK\nid:{id}\n{tx}\n\0")
            }
            Frame::Nack { nth } => {
                let acks = &self.conns[at].1.acks;
                let id = acks
                    .get(*nth as usize % acks.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                format!("NACK\nid:{id}\n\n\0")
            }
            Frame::Begin { transaction } => {
                format!("BEGIN\ntransaction:t{}\n\n\0", transaction % 3)
            }
            Frame::Commit { transaction } => {
                format!("COMMIT\ntransaction:t{}\n\n\0", transaction % 3)
            }
            Frame::Abort { transaction } => {
                format!("ABORT\ntransaction:t{}\n\n\0", transaction % 3)
            }
            Frame::Disconnect => "DISCONNECT\nreceipt:bye\n\n\0".to_owned(),
        };
        text.into_bytes()
    }

    /// Takes `ack` headers out of what a connection received.
    fn learn_acks(conn: &mut Conn) {
        let config = Config::new(Version::V1_2);
        loop {
            match parse(&conn.received, &config) {
                Ok(Status::Frame(frame, used)) => {
                    if let Some(ack) = frame.header("ack") {
                        conn.acks.push(ack.into_owned());
                    }
                    conn.received.drain(..used);
                }
                Ok(Status::HeartBeat(n)) => {
                    conn.received.drain(..n);
                }
                Ok(Status::Incomplete) | Err(_) => return,
            }
        }
    }

    fn drain(&mut self, at: usize, write: bool) {
        let (id, conn) = &mut self.conns[at];
        if write {
            while let Some(bytes) = self.broker.poll_transmit(*id) {
                conn.handed += bytes.len() as u64;
                conn.received.extend_from_slice(&bytes);
            }
            conn.written = conn.handed;
            Self::learn_acks(conn);
            if let Some(total) = self.broker.poll_write_report(*id) {
                assert!(total <= conn.handed, "a report beyond what was handed");
                self.broker.handle_written(*id, self.now, conn.written);
            }
        }
        while self.broker.poll_ready().is_some() {}
        while self.broker.poll_event().is_some() {}
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let now = Instant::now();
    let config = BrokerConfig::default()
        .with_max_queue_bytes(2048)
        .with_max_total_queue_bytes(4096)
        .with_prefetch_auto(3)
        .with_prefetch_client(2)
        .with_max_outbound_bytes(1024);
    let mut run = Run {
        now,
        broker: Broker::new(config),
        conns: Vec::new(),
    };
    let mut published = 0usize;
    for op in ops.into_iter().take(200) {
        match op {
            Op::Open => {
                if run.conns.len() < 4 {
                    let id = run.broker.open(run.now);
                    run.conns.push((id, Conn::default()));
                }
            }
            Op::Frame { conn, frame } => {
                if let Some(at) = run.conn(conn) {
                    let bytes = run.frame_bytes(at, &frame);
                    published += usize::from(matches!(frame, Frame::Send { .. }));
                    run.broker.handle_input(run.conns[at].0, run.now, &bytes);
                }
            }
            Op::Bytes { conn, bytes } => {
                if let Some(at) = run.conn(conn) {
                    run.broker.handle_input(run.conns[at].0, run.now, &bytes);
                }
            }
            Op::Eof { conn } => {
                if let Some(at) = run.conn(conn) {
                    run.broker.handle_eof(run.conns[at].0, run.now);
                }
            }
            Op::Drain { conn, write } => {
                if let Some(at) = run.conn(conn) {
                    run.drain(at, write);
                }
            }
            Op::Advance { millis } => {
                run.now += Duration::from_millis(u64::from(millis) * 50);
                for (id, _) in &run.conns {
                    if run.broker.poll_timeout(*id).is_some_and(|t| t <= run.now) {
                        run.broker.handle_timeout(*id, run.now);
                    }
                }
            }
            Op::Remove { conn } => {
                if let Some(at) = run.conn(conn) {
                    let (id, _) = run.conns.remove(at);
                    run.broker.remove(id, run.now);
                }
            }
            Op::Publish { dest, size } => {
                let d = DESTINATIONS[dest as usize % 7];
                published += 1;
                let body = Bytes::from(vec![b'p'; size as usize]);
                run.broker.publish(run.now, d, &[], body);
            }
            Op::Reply { conn, dest } => {
                if let Some(at) = run.conn(conn) {
                    let d = DESTINATIONS[dest as usize % DESTINATIONS.len()];
                    run.broker
                        .reply(run.now, run.conns[at].0, d, &[], Bytes::from_static(b"r"));
                }
            }
            Op::ToUser { dest } => {
                let d = ["/queue/x", "/queue/y"][dest as usize % 2];
                run.broker
                    .send_to_user(run.now, "alice", d, &[], Bytes::from_static(b"u"));
            }
            Op::CloseWithError { conn } => {
                if let Some(at) = run.conn(conn) {
                    run.broker
                        .close_with_error(run.conns[at].0, run.now, "slow");
                }
            }
        }
    }
    for (id, _) in std::mem::take(&mut run.conns) {
        run.broker.remove(id, run.now);
    }
    let stats = run.broker.stats();
    assert_eq!(stats.connections, 0);
    assert_eq!(stats.subscriptions, 0, "{stats:?}");
    assert_eq!(stats.topics, 0, "{stats:?}");
    assert_eq!(stats.pattern_nodes, 0, "{stats:?}");
    assert_eq!(stats.users, 0, "{stats:?}");
    assert_eq!(stats.paused_publishers, 0, "{stats:?}");
    assert!(stats.queued_messages <= published, "{stats:?}");
    // Whatever is left waits in a queue: nothing is held in flight for nobody.
    assert_eq!(
        stats.queued_messages == 0,
        stats.queued_bytes == 0,
        "{stats:?}"
    );
    assert!(stats.queues <= 2, "{stats:?}");
});
