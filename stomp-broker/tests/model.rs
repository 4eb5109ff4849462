//! A model test of the broker: a few clients on one shard or on three send any sequence of
//! frames (SUBSCRIBE in every ack mode to queues, topics and patterns with any window, SEND in
//! and out of transactions, UNSUBSCRIBE, ACK, NACK, BEGIN, COMMIT, ABORT, DISCONNECT), several
//! in one input or one at a time, while their transports stall and write again, their peers
//! vanish, the clock moves and the messages between shards are held and carried. What they
//! receive is checked against a small reference model after every step:
//!
//! - **progress**: every call returns, within a number of the broker's steps
//!   ([`Broker::steps`]) bounded by what it was given and what the broker holds; a call that
//!   never returns is caught by the per-case timeout;
//! - a queue message is held by at most one live consumer at a time, is never delivered again
//!   once acknowledged, says `redelivered` when it is delivered again, and is never lost: at
//!   the end every message the broker confirmed and nobody acknowledged is still in its queue,
//!   once;
//! - every subscriber of a topic gets its messages in one order, with each publisher's in the
//!   order they were routed;
//! - once every connection is gone, the broker holds nothing but the queued messages, and
//!   nothing once those are taken.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use stomp_broker::{Broker, BrokerConfig, BrokerEvent, ConnectionId, ShardMessage};
use stomp_session::stomp_codec::{Config, Status, Version, parse};
use stomp_testkit::progress::bounded;

/// Where SUBSCRIBEs go: queues, topics, patterns.
const SUBSCRIBE_TO: [&str; 6] = [
    "/queue/a",
    "/queue/b",
    "/topic/x",
    "/topic/*",
    "/topic/**",
    "/topic/y/z",
];
/// Where SENDs go.
const SEND_TO: [&str; 4] = ["/queue/a", "/queue/b", "/topic/x", "/topic/y/z"];
const ACK_MODES: [&str; 3] = ["auto", "client", "client-individual"];
const VERSIONS: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

#[derive(Clone, Debug)]
enum Frame {
    Subscribe {
        dest: usize,
        ack: usize,
        prefetch: Option<u8>,
        id: u8,
    },
    Unsubscribe {
        id: u8,
    },
    Send {
        dest: usize,
        tx: Option<u8>,
    },
    Ack {
        nth: usize,
        tx: Option<u8>,
    },
    Nack {
        nth: usize,
    },
    Begin {
        tx: u8,
    },
    Commit {
        tx: u8,
    },
    Abort {
        tx: u8,
    },
    Disconnect,
}

#[derive(Clone, Debug)]
enum Op {
    /// A client connects on a shard, with a version, promising heart-beats or not.
    Open {
        shard: usize,
        version: usize,
        heart_beat: bool,
    },
    /// Frames written in one go.
    Input { conn: usize, frames: Vec<Frame> },
    /// The transport stops writing, or writes again.
    Stall { conn: usize, stalled: bool },
    /// The peer closes.
    Eof { conn: usize },
    /// The transport is gone: the driver removes the connection.
    Remove { conn: usize },
    /// Virtual time moves on.
    Advance { secs: u8 },
    /// Messages between shards are held back, or carried.
    Hold { held: bool },
}

fn frame() -> impl Strategy<Value = Frame> {
    let tx = proptest::option::of(0..2u8);
    prop_oneof![
        4 => (0..SUBSCRIBE_TO.len(), 0..3usize, proptest::option::of(1..4u8), 0..3u8)
            .prop_map(|(dest, ack, prefetch, id)| Frame::Subscribe { dest, ack, prefetch, id }),
        2 => (0..3u8).prop_map(|id| Frame::Unsubscribe { id }),
        6 => (0..SEND_TO.len(), tx.clone()).prop_map(|(dest, tx)| Frame::Send { dest, tx }),
        4 => (any::<usize>(), tx).prop_map(|(nth, tx)| Frame::Ack { nth, tx }),
        2 => any::<usize>().prop_map(|nth| Frame::Nack { nth }),
        1 => (0..2u8).prop_map(|tx| Frame::Begin { tx }),
        1 => (0..2u8).prop_map(|tx| Frame::Commit { tx }),
        1 => (0..2u8).prop_map(|tx| Frame::Abort { tx }),
        1 => Just(Frame::Disconnect),
    ]
}

fn op(shards: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..shards, 0..3usize, proptest::bool::weighted(0.2))
            .prop_map(|(shard, version, heart_beat)| Op::Open { shard, version, heart_beat }),
        12 => (0..8usize, proptest::collection::vec(frame(), 1..8))
            .prop_map(|(conn, frames)| Op::Input { conn, frames }),
        2 => (0..8usize, any::<bool>()).prop_map(|(conn, stalled)| Op::Stall { conn, stalled }),
        1 => (0..8usize).prop_map(|conn| Op::Eof { conn }),
        1 => (0..8usize).prop_map(|conn| Op::Remove { conn }),
        1 => (0..30u8).prop_map(|secs| Op::Advance { secs }),
        1 => any::<bool>().prop_map(|held| Op::Hold { held }),
    ]
}

/// A subscription as the model knows it.
#[derive(Debug)]
struct Sub {
    /// Which subscription this is, across the run (ids are used again).
    serial: u64,
    dest: &'static str,
    ack: &'static str,
    live: bool,
    /// Queue messages received and not yet acknowledged or refused, oldest first.
    pending: Vec<String>,
}

impl Sub {
    fn new(serial: u64, dest: &'static str, ack: &'static str) -> Sub {
        Sub {
            serial,
            dest,
            ack,
            live: true,
            pending: Vec::new(),
        }
    }
}

/// A MESSAGE a client received, as it can acknowledge it.
#[derive(Clone, Debug)]
struct Received {
    body: String,
    sub: String,
    serial: u64,
    /// Its `ack` header (1.2), `message-id` (1.0 and 1.1).
    ack: Option<String>,
    message_id: String,
}

/// What a RECEIPT certifies once it arrives.
#[derive(Debug, Default)]
struct Certifies {
    sent: Vec<String>,
    acked: Vec<String>,
    /// A SUBSCRIBE's: the subscription id and serial.
    subscribed: Option<(String, u64)>,
}

/// What a transaction holds until COMMIT.
#[derive(Debug, Default)]
struct Tx {
    sent: Vec<String>,
    /// ACKed in the transaction: they stay unacknowledged until COMMIT.
    acks: Vec<Received>,
}

#[derive(Debug)]
struct Client {
    id: ConnectionId,
    shard: usize,
    version: Version,
    /// Removed by the driver.
    removed: bool,
    /// Its session has ended (as the broker reported), or it sent DISCONNECT or closed.
    ended: bool,
    stalled: bool,
    /// Written by the client, not yet read: the broker does not want its input now.
    unread: Vec<u8>,
    raw: Vec<u8>,
    handed: u64,
    subs: BTreeMap<String, Sub>,
    /// Subscriptions replaced by a later one with the same id, by serial: what was handed to
    /// them before they ended may be written late.
    retired: BTreeMap<u64, Sub>,
    /// For each id, the subscription whose RECEIPT was written last: MESSAGEs for the id
    /// written after it are that subscription's (the RECEIPT of a SUBSCRIBE precedes its
    /// messages, which precede the RECEIPT of the next SUBSCRIBE with the id).
    written: BTreeMap<String, u64>,
    /// MESSAGEs that await an ACK or NACK, oldest first.
    received: Vec<Received>,
    txs: BTreeMap<String, Tx>,
    receipts: HashMap<String, Certifies>,
}

struct Model {
    now: Instant,
    brokers: Vec<Broker>,
    clients: Vec<Client>,
    between: Vec<(usize, usize, ShardMessage)>,
    holding: bool,
    next_body: u64,
    next_serial: u64,
    next_receipt: u64,
    /// Queue messages sent (body -> queue), and those the broker confirmed it took.
    queue_sent: BTreeMap<String, &'static str>,
    accepted: BTreeSet<String>,
    /// Queue messages acknowledged: surely (RECEIPT seen, or received under auto ack), or
    /// perhaps (the ACK was read, its RECEIPT not seen).
    done: BTreeSet<String>,
    maybe_done: BTreeSet<String>,
    /// Who holds each queue message now: (client, subscription serial).
    holders: HashMap<String, Vec<(usize, u64)>>,
    delivered: BTreeSet<String>,
    /// The order each message was routed in, and its publisher.
    routed: HashMap<String, (usize, u64)>,
    next_route: u64,
    /// Topic messages as each subscription received them, by destination.
    topic_seen: BTreeMap<&'static str, BTreeMap<u64, Vec<String>>>,
    /// Frames, subscriptions and messages so far: what bounds a call's steps.
    size: u64,
}

fn config() -> BrokerConfig {
    // Small bounds, so that windows fill, queues flow-control their publishers and slow
    // consumers are closed. No redelivery limit: here a message leaves its queue only when
    // acknowledged (dead letters have tests of their own, tests/dead_letters.rs).
    BrokerConfig::default()
        .with_max_redeliveries(None)
        .with_max_queue_bytes(1500)
        .with_max_total_queue_bytes(2500)
        .with_prefetch_auto(3)
        .with_prefetch_client(2)
        .with_max_outbound_bytes(2048)
}

impl Model {
    fn new(shards: usize) -> Model {
        #[allow(clippy::disallowed_methods)] // the origin of virtual time
        let now = Instant::now();
        Model {
            now,
            brokers: (0..shards)
                .map(|i| Broker::new(config().with_shard(i, shards)))
                .collect(),
            clients: Vec::new(),
            between: Vec::new(),
            holding: false,
            next_body: 0,
            next_serial: 0,
            next_receipt: 0,
            queue_sent: BTreeMap::new(),
            accepted: BTreeSet::new(),
            done: BTreeSet::new(),
            maybe_done: BTreeSet::new(),
            holders: HashMap::new(),
            delivered: BTreeSet::new(),
            routed: HashMap::new(),
            next_route: 0,
            topic_seen: BTreeMap::new(),
            size: 0,
        }
    }

    /// Runs one broker call and checks its progress.
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

    fn receipt(&mut self, client: usize, certifies: Certifies) -> String {
        self.next_receipt += 1;
        let receipt = format!("r{}", self.next_receipt);
        self.clients[client]
            .receipts
            .insert(receipt.clone(), certifies);
        receipt
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Open {
                shard,
                version,
                heart_beat,
            } => self.open(shard % self.brokers.len(), VERSIONS[version], heart_beat),
            Op::Input { conn, frames } => {
                if let Some(c) = self.pick(conn) {
                    let bytes = self.encode(c, &frames);
                    self.clients[c].unread.extend_from_slice(&bytes);
                    self.feed(c, frames.len());
                }
            }
            Op::Stall { conn, stalled } => {
                if let Some(c) = self.pick(conn) {
                    self.clients[c].stalled = stalled;
                    if !stalled {
                        let (shard, id) = (self.clients[c].shard, self.clients[c].id);
                        self.write(shard, id);
                    }
                }
            }
            Op::Eof { conn } => {
                if let Some(c) = self.pick(conn) {
                    self.end(c);
                    let (shard, id) = (self.clients[c].shard, self.clients[c].id);
                    self.call(shard, 0, |b, now| b.handle_eof(id, now));
                }
            }
            Op::Remove { conn } => {
                if let Some(c) = self.pick(conn) {
                    self.remove(c);
                }
            }
            Op::Advance { secs } => {
                self.now += Duration::from_secs(u64::from(secs));
                for c in 0..self.clients.len() {
                    let (shard, id) = (self.clients[c].shard, self.clients[c].id);
                    if self.clients[c].removed {
                        continue;
                    }
                    let due = self.brokers[shard]
                        .poll_timeout(id)
                        .is_some_and(|at| at <= self.now);
                    if due {
                        self.call(shard, 0, |b, now| b.handle_timeout(id, now));
                    }
                }
            }
            Op::Hold { held } => self.holding = held,
        }
        self.settle();
    }

    /// A client still connected, by any number.
    fn pick(&self, n: usize) -> Option<usize> {
        let open: Vec<usize> = (0..self.clients.len())
            .filter(|c| !self.clients[*c].removed)
            .collect();
        (!open.is_empty()).then(|| open[n % open.len()])
    }

    fn open(&mut self, shard: usize, version: Version, heart_beat: bool) {
        if self.clients.iter().filter(|c| !c.removed).count() >= 6 {
            return;
        }
        let id = self.call(shard, 0, |b, now| b.open(now));
        self.size += 1;
        let accept = match version {
            Version::V1_0 => String::new(),
            v => format!("accept-version:{}\n", v.as_str()),
        };
        // A client that promises heart-beats and then sends none is dropped when the clock
        // moves on.
        let beats = if heart_beat {
            "heart-beat:1000,0\n"
        } else {
            ""
        };
        let connect = format!("CONNECT\n{accept}host:/\n{beats}\n\0");
        self.clients.push(Client {
            id,
            shard,
            version,
            removed: false,
            ended: false,
            stalled: false,
            unread: connect.into_bytes(),
            raw: Vec::new(),
            handed: 0,
            subs: BTreeMap::new(),
            retired: BTreeMap::new(),
            written: BTreeMap::new(),
            received: Vec::new(),
            txs: BTreeMap::new(),
            receipts: HashMap::new(),
        });
        self.feed(self.clients.len() - 1, 1);
    }

    /// Hands the broker what `c` wrote, if it wants its input now.
    fn feed(&mut self, c: usize, frames: usize) {
        let client = &self.clients[c];
        if client.unread.is_empty() || client.removed {
            return;
        }
        let (shard, id) = (client.shard, client.id);
        if !self.brokers[shard].wants_input(id) {
            return;
        }
        let bytes = std::mem::take(&mut self.clients[c].unread);
        self.call(shard, frames, |b, now| b.handle_input(id, now, &bytes));
    }

    /// The frames as bytes, updating what the model expects as the broker will read them.
    fn encode(&mut self, c: usize, frames: &[Frame]) -> Vec<u8> {
        let mut out = String::new();
        for frame in frames {
            self.size += 1;
            if let Some(text) = self.frame_text(c, frame) {
                out.push_str(&text);
            }
        }
        out.into_bytes()
    }

    /// A frame as a well-behaved client would write it now (ids of its own subscriptions,
    /// messages it received, transactions it opened); none when it has nothing of the kind.
    /// Sessions still end: slow consumers, flow control, peers that vanish.
    fn frame_text(&mut self, c: usize, frame: &Frame) -> Option<String> {
        let version = self.clients[c].version;
        let open_tx = |client: &Client, t: u8| client.txs.contains_key(&format!("t{t}"));
        match frame {
            Frame::Subscribe {
                dest,
                ack,
                prefetch,
                id,
            } => {
                let (dest, mut ack) = (SUBSCRIBE_TO[*dest], ACK_MODES[*ack]);
                // Before 1.2 an ACK names a message by its id, which a redelivery to the same
                // subscription keeps: a cumulative ACK could then settle copies the model has
                // not seen written yet. Only 1.2 clients ACK cumulatively here.
                if version < Version::V1_2 && ack == "client" {
                    ack = "client-individual";
                }
                let id = (0..3u8)
                    .map(|n| ((id + n) % 3).to_string())
                    .find(|id| !self.clients[c].subs.get(id).is_some_and(|s| s.live))?;
                let prefetch = prefetch
                    .map(|p| format!("prefetch-count:{p}\n"))
                    .unwrap_or_default();
                // A second SUBSCRIBE with a live id is an ERROR: the session ends.
                let mut subscribed = None;
                if !self.clients[c].subs.get(&id).is_some_and(|s| s.live) {
                    self.next_serial += 1;
                    let sub = Sub::new(self.next_serial, dest, ack);
                    subscribed = Some((id.clone(), sub.serial));
                    if let Some(old) = self.clients[c].subs.insert(id.clone(), sub) {
                        self.clients[c].retired.insert(old.serial, old);
                    }
                }
                let certifies = Certifies {
                    subscribed,
                    ..Certifies::default()
                };
                let receipt = self.receipt(c, certifies);
                Some(format!(
                    "SUBSCRIBE\nid:{id}\ndestination:{dest}\nack:{ack}\n{prefetch}receipt:{receipt}\n\n\0"
                ))
            }
            Frame::Unsubscribe { id } => {
                let live: Vec<String> = self.clients[c]
                    .subs
                    .iter()
                    .filter(|(_, s)| s.live)
                    .map(|(id, _)| id.clone())
                    .collect();
                let id = live.get(usize::from(*id) % live.len().max(1))?.clone();
                self.end_sub(c, &id);
                Some(format!("UNSUBSCRIBE\nid:{id}\n\n\0"))
            }
            Frame::Send { dest, tx } => {
                let dest = SEND_TO[*dest];
                let tx = tx.filter(|t| open_tx(&self.clients[c], *t));
                self.next_body += 1;
                let body = format!("c{c}-{}", self.next_body);
                if dest.starts_with("/queue/") {
                    self.queue_sent.insert(body.clone(), dest);
                }
                let tx_header = match tx {
                    Some(t) => {
                        let name = format!("t{t}");
                        if let Some(tx) = self.clients[c].txs.get_mut(&name) {
                            tx.sent.push(body.clone());
                        }
                        format!("transaction:{name}\n")
                    }
                    None => {
                        self.route(c, &body);
                        String::new()
                    }
                };
                let certifies = Certifies {
                    sent: if tx.is_none() {
                        vec![body.clone()]
                    } else {
                        vec![]
                    },
                    ..Certifies::default()
                };
                let receipt = self.receipt(c, certifies);
                Some(format!(
                    "SEND\ndestination:{dest}\n{tx_header}receipt:{receipt}\n\n{body}\0"
                ))
            }
            Frame::Ack { nth, tx } => {
                let got = self.nth_received(c, *nth)?;
                let tx = tx.filter(|t| open_tx(&self.clients[c], *t));
                let (tx_header, covered) = match tx {
                    Some(t) => {
                        let name = format!("t{t}");
                        if let Some(tx) = self.clients[c].txs.get_mut(&name) {
                            tx.acks.push(got.clone());
                        }
                        (format!("transaction:{name}\n"), Vec::new())
                    }
                    None => {
                        // Its RECEIPT proves it settled what it names: ACKing a message that
                        // awaits no acknowledgement is an ERROR.
                        let (mut covered, perhaps) = self.settled_by(c, &got);
                        covered.extend(perhaps);
                        self.release(c, &covered, true);
                        (String::new(), covered)
                    }
                };
                let certifies = Certifies {
                    acked: covered,
                    ..Certifies::default()
                };
                let receipt = self.receipt(c, certifies);
                Some(format!(
                    "ACK\n{}{tx_header}receipt:{receipt}\n\n\0",
                    ack_ref(version, &got)
                ))
            }
            Frame::Nack { nth } => {
                // NACK exists from 1.1.
                if version == Version::V1_0 {
                    return None;
                }
                let got = self.nth_received(c, *nth)?;
                let (covered, _) = self.settled_by(c, &got);
                self.release(c, &covered, false);
                Some(format!("NACK\n{}\n\0", ack_ref(version, &got)))
            }
            Frame::Begin { tx } => {
                let name = format!("t{tx}");
                if self.clients[c].txs.contains_key(&name) {
                    return None;
                }
                self.clients[c].txs.insert(name.clone(), Tx::default());
                Some(format!("BEGIN\ntransaction:{name}\n\n\0"))
            }
            Frame::Commit { tx } => {
                let name = format!("t{tx}");
                let held = self.clients[c].txs.remove(&name)?;
                for body in &held.sent {
                    self.route(c, body);
                }
                // Each ACK now, unless an earlier one settled its message meanwhile.
                // (One that finds nothing pending then is no error: its RECEIPT proves
                // nothing of it.)
                let mut acked = Vec::new();
                for got in &held.acks {
                    let (covered, perhaps) = self.settled_by(c, got);
                    acked.extend(covered);
                    self.maybe_done.extend(perhaps);
                }
                self.release(c, &acked, true);
                let certifies = Certifies {
                    sent: held.sent,
                    acked,
                    subscribed: None,
                };
                let receipt = self.receipt(c, certifies);
                Some(format!(
                    "COMMIT\ntransaction:{name}\nreceipt:{receipt}\n\n\0"
                ))
            }
            Frame::Abort { tx } => {
                let name = format!("t{tx}");
                self.clients[c].txs.remove(&name)?;
                Some(format!("ABORT\ntransaction:{name}\n\n\0"))
            }
            Frame::Disconnect => {
                self.end(c);
                Some("DISCONNECT\n\n\0".into())
            }
        }
    }

    /// The order a message is routed in, by its publisher.
    fn route(&mut self, c: usize, body: &str) {
        self.next_route += 1;
        self.routed.insert(body.to_owned(), (c, self.next_route));
    }

    fn nth_received(&self, c: usize, nth: usize) -> Option<Received> {
        let received = &self.clients[c].received;
        (!received.is_empty()).then(|| received[nth % received.len()].clone())
    }

    /// The queue messages an ACK or NACK of `got` settles: under `client`, every earlier one
    /// of the subscription too (1.2 "SUBSCRIBE ack Header"; a NACK "has the same semantics").
    /// They no longer await acknowledgement.
    ///
    /// Besides those it surely settles, it may settle one more: a message settled already as
    /// the model saw it, whose later copy, not seen written yet, the ACK names (before 1.2 an
    /// ACK names a message by its id, which a redelivery keeps).
    fn settled_by(&mut self, c: usize, got: &Received) -> (Vec<String>, Option<String>) {
        let client = &mut self.clients[c];
        let cumulative = client
            .subs
            .get(&got.sub)
            .is_some_and(|s| s.serial == got.serial && s.ack == "client");
        // As the session finds it (1.2 "ACK"): 1.2 by the delivery's ack id, 1.1 by message id
        // and subscription id, 1.0 by message id (one copy of a message is pending at a time).
        let names = |r: &Received| match client.version {
            Version::V1_2 => r.ack == got.ack,
            Version::V1_1 => r.body == got.body && r.sub == got.sub,
            _ => r.body == got.body,
        };
        let Some(at) = client.received.iter().position(names) else {
            let may_hold = client.subs.values().any(|s| s.live && s.ack != "auto");
            let queued = self.queue_sent.contains_key(&got.body);
            return (Vec::new(), (may_hold && queued).then(|| got.body.clone()));
        };
        let settled: Vec<Received> = if cumulative {
            let (mine, rest): (Vec<_>, Vec<_>) = client
                .received
                .drain(..=at)
                .partition(|r| r.serial == got.serial);
            client.received.splice(0..0, rest);
            mine
        } else {
            vec![client.received.remove(at)]
        };
        let bodies: Vec<String> = settled.into_iter().map(|r| r.body).collect();
        if let Some(sub) = client.subs.get_mut(&got.sub) {
            sub.pending.retain(|b| !bodies.contains(b));
        }
        let bodies = bodies
            .into_iter()
            .filter(|b| self.queue_sent.contains_key(b))
            .collect();
        (bodies, None)
    }

    /// Queue messages no longer held by `c`: acknowledged (perhaps), or refused.
    fn release(&mut self, c: usize, bodies: &[String], acked: bool) {
        for body in bodies {
            if let Some(holders) = self.holders.get_mut(body) {
                holders.retain(|(who, _)| *who != c);
            }
            if acked {
                self.maybe_done.insert(body.clone());
            }
        }
    }

    /// A subscription of `c` ends: what it held is released, and awaits no acknowledgement.
    fn end_sub(&mut self, c: usize, id: &str) {
        let Some(sub) = self.clients[c].subs.get_mut(id) else {
            return;
        };
        if !sub.live {
            return;
        }
        sub.live = false;
        sub.pending.clear();
        let serial = sub.serial;
        self.clients[c].received.retain(|r| r.serial != serial);
        for holders in self.holders.values_mut() {
            holders.retain(|(who, s)| !(*who == c && *s == serial));
        }
    }

    /// `c`'s session is over: every subscription ends, open transactions are dropped.
    fn end(&mut self, c: usize) {
        if self.clients[c].ended {
            return;
        }
        self.clients[c].ended = true;
        let ids: Vec<String> = self.clients[c].subs.keys().cloned().collect();
        for id in ids {
            self.end_sub(c, &id);
        }
        self.clients[c].txs.clear();
    }

    fn remove(&mut self, c: usize) {
        self.end(c);
        self.clients[c].removed = true;
        let (shard, id) = (self.clients[c].shard, self.clients[c].id);
        self.call(shard, 0, |b, now| b.remove(id, now));
    }

    /// Writes and carries until nothing moves, checking what arrives.
    fn settle(&mut self) {
        for _round in 0..10_000 {
            let mut moved = false;
            for shard in 0..self.brokers.len() {
                while let Some(id) = self.call(shard, 0, |b, _| b.poll_ready()) {
                    moved |= self.write(shard, id);
                }
                while let Some(event) = self.brokers[shard].poll_event() {
                    moved = true;
                    match event {
                        BrokerEvent::ToShard { shard: to, message } => {
                            self.between.push((shard, to, message));
                        }
                        BrokerEvent::Closed { connection, .. } => {
                            if let Some(c) = self.clients.iter().position(|c| c.id == connection) {
                                self.end(c);
                            }
                        }
                        _ => {}
                    }
                }
            }
            if !self.holding {
                for (from, to, message) in std::mem::take(&mut self.between) {
                    self.call(to, 1, |b, now| b.handle_shard(now, from, message));
                    moved = true;
                }
            }
            // Input held back by flow control is read once the broker wants it.
            for c in 0..self.clients.len() {
                let client = &self.clients[c];
                if !client.unread.is_empty()
                    && !client.removed
                    && self.brokers[client.shard].wants_input(client.id)
                {
                    self.feed(c, 8);
                    moved = true;
                }
            }
            if !moved {
                self.check_holders();
                return;
            }
        }
        panic!("no progress: the shards and their connections kept busy for 10,000 rounds");
    }

    /// Writes what connection `id` has, unless it is stalled; whether anything moved.
    fn write(&mut self, shard: usize, id: ConnectionId) -> bool {
        let Some(c) = self.clients.iter().position(|c| c.id == id) else {
            return false;
        };
        if self.clients[c].stalled || self.clients[c].removed {
            return false;
        }
        let mut moved = false;
        while let Some(bytes) = self.call(shard, 0, |b, _| b.poll_transmit(id)) {
            self.clients[c].handed += bytes.len() as u64;
            self.clients[c].raw.extend_from_slice(&bytes);
            moved = true;
        }
        self.receive(c);
        if self.brokers[shard].poll_write_report(id).is_some() {
            let written = self.clients[c].handed;
            self.call(shard, 0, |b, now| b.handle_written(id, now, written));
            moved = true;
        }
        if self.brokers[shard].is_closed(id) {
            self.end(c);
        }
        moved
    }

    /// Checks each frame `c` received against the model.
    fn receive(&mut self, c: usize) {
        let config = Config::new(self.clients[c].version);
        loop {
            let raw = &self.clients[c].raw;
            let (command, headers, body, used) = match parse(raw, &config) {
                Ok(Status::Frame(frame, used)) => (
                    frame.command().as_str().to_owned(),
                    frame
                        .headers()
                        .iter()
                        .map(|h| (h.name().into_owned(), h.value().into_owned()))
                        .collect::<Vec<_>>(),
                    String::from_utf8_lossy(frame.body()).into_owned(),
                    used,
                ),
                Ok(Status::HeartBeat(n)) => {
                    self.clients[c].raw.drain(..n);
                    continue;
                }
                Ok(Status::Incomplete) => return,
                Err(e) => panic!("the broker sent what does not parse: {e}"),
            };
            self.clients[c].raw.drain(..used);
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            match command.as_str() {
                "MESSAGE" => self.message(c, &header, body),
                "RECEIPT" => {
                    let id = header("receipt-id").unwrap_or_default();
                    if let Some(certifies) = self.clients[c].receipts.remove(&id) {
                        if let Some((sub, serial)) = certifies.subscribed {
                            self.clients[c].written.insert(sub, serial);
                        }
                        self.accepted.extend(
                            certifies
                                .sent
                                .into_iter()
                                .filter(|b| self.queue_sent.contains_key(b)),
                        );
                        self.done.extend(certifies.acked);
                    }
                }
                "ERROR" => self.end(c),
                _ => {}
            }
        }
    }

    fn message(&mut self, c: usize, header: &dyn Fn(&str) -> Option<String>, body: String) {
        let sub_id = header("subscription").expect("MESSAGE without subscription");
        let destination = header("destination").expect("MESSAGE without destination");
        let message_id = header("message-id").expect("MESSAGE without message-id");
        let client = &self.clients[c];
        let serial = client.written.get(&sub_id).copied();
        let sub = match client.subs.get(&sub_id) {
            Some(sub) if Some(sub.serial) == serial => Some(sub),
            _ => serial.and_then(|serial| client.retired.get(&serial)),
        };
        let sub =
            sub.unwrap_or_else(|| panic!("a MESSAGE for subscription {sub_id} before its RECEIPT"));
        let (serial, ack) = (sub.serial, sub.ack);
        assert!(
            matches(sub.dest, &destination),
            "a MESSAGE from {destination} for a subscription to {}",
            sub.dest
        );
        let live = sub.live && !client.ended;
        let ack_id = header("ack");
        if self.clients[c].version == Version::V1_2 && ack != "auto" && live {
            assert!(
                ack_id.is_some(),
                "a 1.2 MESSAGE to acknowledge has an ack header"
            );
        }
        let received = Received {
            body: body.clone(),
            sub: sub_id.clone(),
            serial,
            ack: ack_id,
            message_id,
        };
        if let Some(queue) = self.queue_sent.get(&body).copied() {
            assert_eq!(destination, queue, "a queue message from its queue");
            // A copy handed to a subscription before it ended may be written late, after the
            // message went to another consumer: only what a live one gets is checked.
            assert!(
                !live || !self.done.contains(&body),
                "{body}: delivered again after it was acknowledged"
            );
            if live && self.delivered.contains(&body) {
                assert_eq!(
                    header("redelivered").as_deref(),
                    Some("true"),
                    "{body}: delivered again without redelivered"
                );
            }
            self.delivered.insert(body.clone());
            if ack == "auto" {
                // Written: done with.
                self.done.insert(body);
            } else if live {
                self.holders
                    .entry(body.clone())
                    .or_default()
                    .push((c, serial));
                if let Some(sub) = self.clients[c].subs.get_mut(&sub_id) {
                    sub.pending.push(body);
                }
                self.clients[c].received.push(received);
            }
        } else {
            let dest = SEND_TO
                .into_iter()
                .find(|d| *d == destination)
                .expect("a topic message from a destination sent to");
            self.topic_seen
                .entry(dest)
                .or_default()
                .entry(serial)
                .or_default()
                .push(body);
            if ack != "auto" && live {
                self.clients[c].received.push(received);
            }
        }
    }

    /// At most one live consumer holds a queue message at a time.
    fn check_holders(&self) {
        for (body, holders) in &self.holders {
            assert!(
                holders.len() <= 1,
                "{body} is held by several live consumers: {holders:?}"
            );
        }
    }

    /// Every subscriber of a destination got its messages in one order, each publisher's in
    /// the order they were routed.
    fn check_topic_order(&self) {
        for (dest, subs) in &self.topic_seen {
            let sequences: Vec<&Vec<String>> = subs.values().collect();
            for seq in &sequences {
                let mut last: HashMap<usize, u64> = HashMap::new();
                for body in seq.iter() {
                    let (publisher, order) = self.routed[body];
                    let before = last.insert(publisher, order);
                    assert!(
                        before.is_none_or(|b| b < order),
                        "{dest}: {body} out of its publisher's order in {seq:?}"
                    );
                }
            }
            for (i, a) in sequences.iter().enumerate() {
                for b in &sequences[i + 1..] {
                    let common: BTreeSet<&String> = a.iter().filter(|x| b.contains(x)).collect();
                    let order_a: Vec<&String> = a.iter().filter(|x| common.contains(x)).collect();
                    let order_b: Vec<&String> = b.iter().filter(|x| common.contains(x)).collect();
                    assert_eq!(order_a, order_b, "{dest}: two subscribers, two orders");
                }
            }
        }
    }

    /// Every connection goes; then the broker holds nothing but queued messages, which a
    /// last consumer per queue finds: every confirmed message nobody acknowledged, once.
    fn finish(mut self) {
        self.holding = false;
        for c in 0..self.clients.len() {
            if !self.clients[c].removed {
                self.remove(c);
            }
        }
        self.settle();
        self.check_topic_order();
        for broker in &self.brokers {
            let stats = broker.stats();
            assert_eq!(stats.connections, 0, "{stats:?}");
            assert_eq!(stats.subscriptions, 0, "{stats:?}");
            assert_eq!(stats.topics, 0, "{stats:?}");
            assert_eq!(stats.pattern_nodes, 0, "{stats:?}");
            assert_eq!(stats.paused_publishers, 0, "{stats:?}");
        }
        let mut drained: Vec<String> = Vec::new();
        for queue in ["/queue/a", "/queue/b"] {
            self.open(0, Version::V1_2, false);
            let last = self.clients.len() - 1;
            let subscribe = format!(
                "SUBSCRIBE\nid:last\ndestination:{queue}\nack:client-individual\nprefetch-count:10000\n\n\0"
            );
            self.next_serial += 1;
            let sub = Sub::new(self.next_serial, queue, "client-individual");
            self.clients[last].written.insert("last".into(), sub.serial);
            self.clients[last].subs.insert("last".into(), sub);
            self.clients[last]
                .unread
                .extend_from_slice(subscribe.as_bytes());
            self.feed(last, 1);
            self.settle();
            let got = std::mem::take(&mut self.clients[last].subs.get_mut("last").unwrap().pending);
            for body in &got {
                assert_eq!(self.queue_sent[body], queue);
            }
            let acks: String = self.clients[last]
                .received
                .iter()
                .map(|r| format!("ACK\nid:{}\n\n\0", r.ack.as_deref().unwrap_or_default()))
                .collect();
            self.clients[last].unread.extend_from_slice(acks.as_bytes());
            let frames = got.len();
            self.feed(last, frames);
            drained.extend(got);
            self.remove(last);
            self.settle();
        }
        let unique: BTreeSet<&String> = drained.iter().collect();
        assert_eq!(unique.len(), drained.len(), "a message twice in its queue");
        for body in &drained {
            assert!(
                !self.done.contains(body),
                "{body}: acknowledged, yet queued"
            );
        }
        for body in &self.accepted {
            let acknowledged = self.done.contains(body) || self.maybe_done.contains(body);
            assert!(
                acknowledged || unique.contains(body),
                "{body}: confirmed, never acknowledged, and lost"
            );
        }
        for broker in &self.brokers {
            let stats = broker.stats();
            assert_eq!(stats.queued_messages, 0, "{stats:?}");
            assert_eq!(stats.queued_bytes, 0, "{stats:?}");
            assert_eq!(stats.queues, 0, "{stats:?}");
            assert_eq!(stats.users, 0, "{stats:?}");
        }
    }
}

/// Whether a subscription to `pattern` receives what is sent to `destination`: `*` is one
/// segment, `**` any number.
fn matches(pattern: &str, destination: &str) -> bool {
    match pattern {
        "/topic/**" => destination.starts_with("/topic/"),
        "/topic/*" => destination
            .strip_prefix("/topic/")
            .is_some_and(|rest| !rest.contains('/')),
        _ => pattern == destination,
    }
}

/// How an ACK or NACK names a message in `version` (1.2 "ACK").
fn ack_ref(version: Version, got: &Received) -> String {
    match version {
        Version::V1_2 => format!("id:{}\n", got.ack.as_deref().unwrap_or("none")),
        Version::V1_1 => format!("message-id:{}\nsubscription:{}\n", got.message_id, got.sub),
        _ => format!("message-id:{}\n", got.message_id),
    }
}

fn run(shards: usize, ops: Vec<Op>) {
    let mut model = Model::new(shards);
    for op in ops {
        model.apply(op);
    }
    model.finish();
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

proptest! {
    // Each case runs in a child process, killed if it does not end in time: a call that never
    // returns fails the case, which is then shrunk like any other failure.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        fork: true,
        timeout: 5_000,
        // A hang costs a whole timeout per shrinking step: a bounded number of them.
        max_shrink_iters: 64,
        max_shrink_time: 300_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/model.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn one_shard(ops in proptest::collection::vec(op(1), 1..120)) {
        run(1, ops);
    }

    #[test]
    fn three_shards(ops in proptest::collection::vec(op(3), 1..120)) {
        run(3, ops);
    }
}
