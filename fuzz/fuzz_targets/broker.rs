//! The broker, on one shard or two, driven by a few clients doing anything, in any order: raw
//! bytes, well-formed frames from a small vocabulary (subscriptions to topics, patterns, queues
//! and user destinations with every ack mode and window, sends in and out of transactions,
//! ACKs and NACKs of what was delivered), several of them in one input as clients pipeline
//! them, a driver that writes or stalls, write reports, clock steps, closes and removals, and
//! messages between shards held back or carried. No panic; every call makes bounded progress
//! (its steps, [`Broker::steps`], within a bound of what it was given and what the broker
//! holds; one that never returns is a hang, which `scripts/fuzz` runs with a per-input
//! timeout to catch); and once every connection is gone, the broker holds no subscription,
//! topic, pattern node, user or paused publisher, and every queue message that is left waits
//! in its queue.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use stomp_broker::{Broker, BrokerConfig, BrokerEvent, ConnectionId, ShardMessage};
use stomp_codec::{Config, Status, Version, parse};
use stomp_testkit::progress::bounded;

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
    /// Frames written in one go: the broker reads them in one input.
    Frames {
        conn: u8,
        frames: Vec<Frame>,
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
    /// Messages between shards are held back, or carried.
    Hold {
        held: bool,
    },
}

/// The input: on how many shards, and what happens.
#[derive(Arbitrary, Debug)]
struct Input {
    two_shards: bool,
    ops: Vec<Op>,
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
    brokers: Vec<Broker>,
    /// Each connection's id, shard and what the driver knows of it.
    conns: Vec<(ConnectionId, usize, Conn)>,
    between: Vec<(usize, usize, ShardMessage)>,
    holding: bool,
    /// Frames, messages and connections so far: what bounds a call's steps.
    size: u64,
}

impl Run {
    /// Runs one call on shard `shard`, checking that it made bounded progress.
    fn call<R>(
        &mut self,
        shard: usize,
        frames: usize,
        call: impl FnOnce(&mut Broker, Instant) -> R,
    ) -> R {
        bounded(
            &mut self.brokers[shard],
            self.now,
            (frames, self.size),
            call,
        )
    }

    /// Carries what the shards tell each other, unless held, and forgets the other events.
    fn carry(&mut self) {
        for _round in 0..1000 {
            for shard in 0..self.brokers.len() {
                while let Some(event) = self.brokers[shard].poll_event() {
                    if let BrokerEvent::ToShard { shard: to, message } = event {
                        self.between.push((shard, to, message));
                    }
                }
            }
            if self.holding || self.between.is_empty() {
                return;
            }
            for (from, to, message) in std::mem::take(&mut self.between) {
                self.call(to, 1, |b, now| b.handle_shard(now, from, message));
            }
        }
        panic!("no progress: the shards kept telling each other things for 1000 rounds");
    }

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
                let acks = &self.conns[at].2.acks;
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
                let acks = &self.conns[at].2.acks;
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
        let (id, shard) = (self.conns[at].0, self.conns[at].1);
        if write {
            while let Some(bytes) = self.call(shard, 0, |b, _| b.poll_transmit(id)) {
                let conn = &mut self.conns[at].2;
                conn.handed += bytes.len() as u64;
                conn.received.extend_from_slice(&bytes);
            }
            let conn = &mut self.conns[at].2;
            conn.written = conn.handed;
            Self::learn_acks(conn);
            let (handed, written) = (conn.handed, conn.written);
            if let Some(total) = self.brokers[shard].poll_write_report(id) {
                assert!(total <= handed, "a report beyond what was handed");
                self.call(shard, 0, |b, now| b.handle_written(id, now, written));
            }
        }
        for broker in &mut self.brokers {
            while broker.poll_ready().is_some() {}
        }
        self.carry();
    }

    /// Hands `bytes` holding `frames` frames to connection `at`.
    fn input(&mut self, at: usize, frames: usize, bytes: &[u8]) {
        let (id, shard) = (self.conns[at].0, self.conns[at].1);
        self.size += frames as u64 + 1;
        self.call(shard, frames, |b, now| b.handle_input(id, now, bytes));
        self.carry();
    }
}

fuzz_target!(|input: Input| {
    let now = Instant::now();
    let config = || {
        BrokerConfig::default()
            .with_max_queue_bytes(2048)
            .with_max_total_queue_bytes(4096)
            .with_prefetch_auto(3)
            .with_prefetch_client(2)
            .with_max_outbound_bytes(1024)
    };
    let shards = if input.two_shards { 2 } else { 1 };
    let mut run = Run {
        now,
        brokers: (0..shards)
            .map(|i| Broker::new(config().with_shard(i, shards)))
            .collect(),
        conns: Vec::new(),
        between: Vec::new(),
        holding: false,
        size: 0,
    };
    let mut published = 0usize;
    for op in input.ops.into_iter().take(200) {
        match op {
            Op::Open => {
                if run.conns.len() < 4 {
                    let shard = run.conns.len() % shards;
                    let id = run.call(shard, 0, |b, now| b.open(now));
                    run.size += 1;
                    run.conns.push((id, shard, Conn::default()));
                }
            }
            Op::Frame { conn, frame } => {
                if let Some(at) = run.conn(conn) {
                    let bytes = run.frame_bytes(at, &frame);
                    published += usize::from(matches!(frame, Frame::Send { .. }));
                    run.input(at, 1, &bytes);
                }
            }
            Op::Frames { conn, frames } => {
                if let Some(at) = run.conn(conn) {
                    let mut bytes = Vec::new();
                    for frame in frames.iter().take(16) {
                        bytes.extend(run.frame_bytes(at, frame));
                        published += usize::from(matches!(frame, Frame::Send { .. }));
                    }
                    run.input(at, frames.len().min(16), &bytes);
                }
            }
            Op::Bytes { conn, bytes } => {
                if let Some(at) = run.conn(conn) {
                    // Any frames the bytes hold: at most one per NUL.
                    let frames = bytes.iter().filter(|b| **b == 0).count();
                    run.input(at, frames, &bytes);
                }
            }
            Op::Eof { conn } => {
                if let Some(at) = run.conn(conn) {
                    let (id, shard) = (run.conns[at].0, run.conns[at].1);
                    run.call(shard, 0, |b, now| b.handle_eof(id, now));
                    run.carry();
                }
            }
            Op::Drain { conn, write } => {
                if let Some(at) = run.conn(conn) {
                    run.drain(at, write);
                }
            }
            Op::Advance { millis } => {
                run.now += Duration::from_millis(u64::from(millis) * 50);
                for at in 0..run.conns.len() {
                    let (id, shard) = (run.conns[at].0, run.conns[at].1);
                    let due = run.brokers[shard].poll_timeout(id);
                    if due.is_some_and(|t| t <= run.now) {
                        run.call(shard, 0, |b, now| b.handle_timeout(id, now));
                    }
                }
                run.carry();
            }
            Op::Remove { conn } => {
                if let Some(at) = run.conn(conn) {
                    let (id, shard, _) = run.conns.remove(at);
                    run.call(shard, 0, |b, now| b.remove(id, now));
                    run.carry();
                }
            }
            Op::Publish { dest, size } => {
                let d = DESTINATIONS[dest as usize % 7];
                published += 1;
                run.size += 1;
                let body = Bytes::from(vec![b'p'; size as usize]);
                run.call(0, 1, |b, now| b.publish(now, d, &[], body));
                run.carry();
            }
            Op::Reply { conn, dest } => {
                if let Some(at) = run.conn(conn) {
                    let (id, shard) = (run.conns[at].0, run.conns[at].1);
                    let d = DESTINATIONS[dest as usize % DESTINATIONS.len()];
                    let body = Bytes::from_static(b"r");
                    run.call(shard, 1, |b, now| b.reply(now, id, d, &[], body));
                    run.carry();
                }
            }
            Op::ToUser { dest } => {
                let d = ["/queue/x", "/queue/y"][dest as usize % 2];
                for shard in 0..shards {
                    let body = Bytes::from_static(b"u");
                    run.call(shard, 1, |b, now| {
                        b.send_to_user(now, "alice", d, &[], body)
                    });
                }
                run.carry();
            }
            Op::CloseWithError { conn } => {
                if let Some(at) = run.conn(conn) {
                    let (id, shard) = (run.conns[at].0, run.conns[at].1);
                    run.call(shard, 0, |b, now| b.close_with_error(id, now, "slow"));
                    run.carry();
                }
            }
            Op::Hold { held } => {
                run.holding = held;
                run.carry();
            }
        }
    }
    for (id, shard, _) in std::mem::take(&mut run.conns) {
        run.call(shard, 0, |b, now| b.remove(id, now));
    }
    run.holding = false;
    run.carry();
    let mut stats = stomp_broker::BrokerStats::default();
    for broker in &run.brokers {
        stats += broker.stats();
    }
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
