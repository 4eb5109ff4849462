//! Brokers as the shards of one server, driven with raw bytes as clients write them: any
//! number of frames in one input. Every call is checked for progress: it must return, and
//! within a bounded number of the broker's steps ([`Broker::steps`]).

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stomp_broker::{Broker, BrokerConfig, BrokerEvent, ConnectionId, ShardMessage};
use stomp_session::stomp_codec::{Config, Status, Version, parse};
use stomp_testkit::progress::bounded;

/// What these small scenarios' calls carry and what the broker holds at most, for the bound
/// on each call's steps.
const SCALE: (usize, u64) = (8, 30);

/// Runs `test` on a thread of its own and fails if it has not ended within `limit`: a broker
/// call that never returns fails the test instead of hanging it.
pub fn ends_within(limit: Duration, test: impl FnOnce() + Send + 'static) {
    let (done, ended) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match ended.recv_timeout(limit) {
        Ok(()) => worker.join().expect("the test panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The test panicked: report its own message.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no progress: the broker did not return within {limit:?}")
        }
    }
}

/// One frame a connection received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Wire {
    pub now: Instant,
    pub brokers: Vec<Broker>,
    /// Each connection's shard.
    shard_of: HashMap<ConnectionId, usize>,
    /// What each connection was handed, not yet parsed.
    raw: HashMap<ConnectionId, Vec<u8>>,
    /// The frames each connection received.
    pub got: HashMap<ConnectionId, Vec<Got>>,
    /// Octets handed to each connection.
    handed: HashMap<ConnectionId, u64>,
    /// Connections whose transport writes nothing: their output stays in the broker.
    pub stalled: HashSet<ConnectionId>,
    /// Messages between shards not carried yet (carried at once unless `holding`).
    pub between: Vec<(usize, usize, ShardMessage)>,
    pub holding: bool,
    pub events: Vec<BrokerEvent>,
    /// Each connection's version, to parse what it received.
    versions: HashMap<ConnectionId, Version>,
}

impl Wire {
    pub fn new(shards: usize, config: impl Fn() -> BrokerConfig) -> Wire {
        #[allow(clippy::disallowed_methods)] // the origin of virtual time
        let now = Instant::now();
        let brokers = (0..shards)
            .map(|i| Broker::new(config().with_shard(i, shards)))
            .collect();
        Wire {
            now,
            brokers,
            shard_of: HashMap::new(),
            raw: HashMap::new(),
            got: HashMap::new(),
            handed: HashMap::new(),
            stalled: HashSet::new(),
            between: Vec::new(),
            holding: false,
            events: Vec::new(),
            versions: HashMap::new(),
        }
    }

    /// Runs `call` on shard `shard`'s broker, checking that it makes bounded progress.
    fn on<R>(&mut self, shard: usize, call: impl FnOnce(&mut Broker, Instant) -> R) -> R {
        bounded(&mut self.brokers[shard], self.now, SCALE, call)
    }

    /// Opens a connection on `shard` and logs it in with `version`.
    pub fn connect(&mut self, shard: usize, version: Version) -> ConnectionId {
        let id = self.on(shard, |b, now| b.open(now));
        self.shard_of.insert(id, shard);
        self.versions.insert(id, version);
        let accept = match version {
            Version::V1_0 => String::new(),
            v => format!("accept-version:{}\n", v.as_str()),
        };
        self.input(
            id,
            format!("CONNECT\n{accept}host:/\nlogin:u{id}\n\n\0").as_bytes(),
        );
        assert_eq!(
            self.frames(id)[0].command,
            "CONNECTED",
            "{:?}",
            self.frames(id)
        );
        id
    }

    /// Hands `bytes` to `connection` as one input, then drives every shard until nothing moves.
    pub fn input(&mut self, connection: ConnectionId, bytes: &[u8]) {
        let shard = self.shard_of[&connection];
        self.on(shard, |b, now| b.handle_input(connection, now, bytes));
        self.settle();
    }

    /// The peer of `connection` is gone: the driver removes it.
    pub fn drop_connection(&mut self, connection: ConnectionId) {
        let shard = self.shard_of[&connection];
        self.on(shard, |b, now| b.remove(connection, now));
        self.settle();
    }

    /// `connection` writes again what it was handed.
    pub fn unstall(&mut self, connection: ConnectionId) {
        self.stalled.remove(&connection);
        let shard = self.shard_of[&connection];
        self.write(shard, connection);
        self.settle();
    }

    /// Carries the messages held between shards.
    pub fn carry(&mut self) {
        self.holding = false;
        self.settle();
    }

    /// Writes what every shard has for its connections and carries what shards tell each
    /// other, until nothing moves.
    pub fn settle(&mut self) {
        for _round in 0..1000 {
            let mut moved = false;
            for shard in 0..self.brokers.len() {
                while let Some(id) = self.on(shard, |b, _| b.poll_ready()) {
                    moved |= self.write(shard, id);
                }
                while let Some(event) = self.brokers[shard].poll_event() {
                    match event {
                        BrokerEvent::ToShard { shard: to, message } => {
                            self.between.push((shard, to, message));
                        }
                        other => self.events.push(other),
                    }
                    moved = true;
                }
            }
            if !self.holding {
                for (from, to, message) in std::mem::take(&mut self.between) {
                    self.on(to, |b, now| b.handle_shard(now, from, message));
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the shards kept telling each other things for 1000 rounds");
    }

    /// Writes what `id` has; whether anything moved.
    fn write(&mut self, shard: usize, id: ConnectionId) -> bool {
        if self.stalled.contains(&id) {
            return false;
        }
        let mut moved = false;
        while let Some(bytes) = self.on(shard, |b, _| b.poll_transmit(id)) {
            *self.handed.entry(id).or_default() += bytes.len() as u64;
            self.raw.entry(id).or_default().extend_from_slice(&bytes);
            moved = true;
        }
        self.parse(id);
        if self.brokers[shard].poll_write_report(id).is_some() {
            let written = self.handed.get(&id).copied().unwrap_or(0);
            self.on(shard, |b, now| b.handle_written(id, now, written));
            moved = true;
        }
        moved
    }

    fn parse(&mut self, id: ConnectionId) {
        let version = self.versions.get(&id).copied().unwrap_or(Version::V1_2);
        let config = Config::new(version);
        let raw = self.raw.entry(id).or_default();
        loop {
            match parse(raw, &config) {
                Ok(Status::Frame(frame, used)) => {
                    let got = Got {
                        command: frame.command().as_str().to_owned(),
                        headers: frame
                            .headers()
                            .iter()
                            .map(|h| (h.name().into_owned(), h.value().into_owned()))
                            .collect(),
                        body: frame.body().to_vec(),
                    };
                    self.got.entry(id).or_default().push(got);
                    raw.drain(..used);
                }
                Ok(Status::HeartBeat(n)) => {
                    raw.drain(..n);
                }
                Ok(Status::Incomplete) => return,
                Err(e) => panic!("the broker sent something that does not parse: {e}"),
            }
        }
    }

    /// Every frame `connection` received so far.
    pub fn frames(&self, connection: ConnectionId) -> Vec<Got> {
        self.got.get(&connection).cloned().unwrap_or_default()
    }

    /// The frames with `command` that `connection` received so far.
    pub fn frames_of(&self, connection: ConnectionId, command: &str) -> Vec<Got> {
        self.frames(connection)
            .into_iter()
            .filter(|f| f.command == command)
            .collect()
    }

    /// The bodies of the MESSAGEs `connection` received, in order.
    pub fn bodies(&self, connection: ConnectionId) -> Vec<String> {
        self.frames_of(connection, "MESSAGE")
            .iter()
            .map(|f| String::from_utf8_lossy(&f.body).into_owned())
            .collect()
    }

    /// Whether a fresh client on every shard is served at once: CONNECTED, then the RECEIPT
    /// of a SUBSCRIBE and of a SEND.
    pub fn serves_a_fresh_client(&mut self) {
        for shard in 0..self.brokers.len() {
            let fresh = self.connect(shard, Version::V1_2);
            self.input(
                fresh,
                b"SUBSCRIBE\nid:fresh\ndestination:/topic/fresh\nreceipt:s\n\n\0\
                  SEND\ndestination:/topic/fresh\nreceipt:p\n\nhello\0",
            );
            let receipts: Vec<String> = self
                .frames_of(fresh, "RECEIPT")
                .iter()
                .filter_map(|f| f.header("receipt-id").map(str::to_owned))
                .collect();
            assert_eq!(receipts, ["s", "p"], "shard {shard}");
            assert_eq!(self.bodies(fresh), ["hello"], "shard {shard}");
        }
    }

    /// Queue messages waiting and octets held, over every shard.
    pub fn held(&self) -> (usize, usize) {
        self.brokers.iter().fold((0, 0), |(m, b), broker| {
            let stats = broker.stats();
            (m + stats.queued_messages, b + stats.queued_bytes)
        })
    }
}
