//! Chaos against the `stomp-server` binary: several clients over TCP and WebSocket, in every
//! version, write random batches of frames in one go (every command; ACKs and NACKs of what
//! they received, and of what they did not; transactions; a heart-beat, a broken frame now and
//! then) and sometimes vanish mid-session. After every batch a fresh client must get
//! CONNECTED and a RECEIPT within one second: no client's frames, in any order or grouping,
//! may stall the others.
//!
//! Seeded and replayable: `CHAOS_SEED=N` replays a run (each client's batches are the same;
//! how they interleave is the scheduler's), `CHAOS_SECS` sets how long it runs (default 5;
//! `scripts/abuse` runs it longer against the release build).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use common::transport::Transport;
use stomp_session::stomp_codec::{Config, Status, Version, parse};
use tokio::time::timeout;

/// Clients writing at once.
const CLIENTS: u64 = 6;
/// How long a fresh client may wait for CONNECTED and its RECEIPT.
const PROBE_LIMIT: Duration = Duration::from_secs(1);

const SUBSCRIBE_TO: [&str; 8] = [
    "/queue/c0",
    "/queue/c1",
    "/topic/c0",
    "/topic/c1",
    "/topic/*",
    "/topic/**",
    "/user/queue/x",
    "/app/none",
];
const SEND_TO: [&str; 6] = [
    "/queue/c0",
    "/queue/c1",
    "/topic/c0",
    "/topic/c1",
    "/chat/room",
    "/nowhere",
];

/// One chaotic client's session, as far as it knows it.
struct Session {
    transport: Transport,
    version: Version,
    /// Subscription ids it believes live.
    subs: Vec<u32>,
    /// How it can name messages it received, for ACK and NACK.
    acks: Vec<String>,
    /// Transactions it opened.
    txs: Vec<u32>,
    /// Received and not yet parsed.
    raw: Vec<u8>,
    /// It sent DISCONNECT, or the server closed it.
    over: bool,
}

impl Session {
    async fn open(server: &Server, rng: &mut fastrand::Rng) -> Option<Session> {
        let websocket = rng.bool();
        let mut transport = Transport::open(server, websocket).await?;
        let version = [Version::V1_0, Version::V1_1, Version::V1_2][rng.usize(..3)];
        let accept = match version {
            Version::V1_0 => String::new(),
            v => format!("accept-version:{}\n", v.as_str()),
        };
        let beats = ["", "heart-beat:0,0\n", "heart-beat:1000,1000\n"][rng.usize(..3)];
        let login = format!("login:u{}\n", rng.u32(..4));
        let connect = format!("CONNECT\n{accept}host:/\n{login}{beats}\n\0");
        transport.write(connect.as_bytes()).await.then_some(())?;
        Some(Session {
            transport,
            version,
            subs: Vec::new(),
            acks: Vec::new(),
            txs: Vec::new(),
            raw: Vec::new(),
            over: false,
        })
    }

    /// A random batch of frames, as one write.
    fn batch(&mut self, rng: &mut fastrand::Rng, serial: &mut u64) -> Vec<u8> {
        let mut out = String::new();
        for _ in 0..rng.usize(1..8) {
            match rng.u8(..100) {
                0..20 => {
                    let id = self
                        .subs
                        .iter()
                        .copied()
                        .max()
                        .map_or(0, |m| m + 1)
                        .min(rng.u32(..6));
                    let dest = SUBSCRIBE_TO[rng.usize(..SUBSCRIBE_TO.len())];
                    let ack = ["auto", "client", "client-individual"][rng.usize(..3)];
                    let prefetch = match rng.bool() {
                        true => format!("prefetch-count:{}\n", rng.u32(1..5)),
                        false => String::new(),
                    };
                    let receipt = if rng.bool() { "receipt:s\n" } else { "" };
                    out.push_str(&format!(
                        "SUBSCRIBE\nid:{id}\ndestination:{dest}\nack:{ack}\n{prefetch}{receipt}\n\0"
                    ));
                    self.subs.push(id);
                }
                20..30 => {
                    let id = match self.subs.is_empty() || rng.u8(..10) == 0 {
                        true => rng.u32(..6),
                        false => self.subs.swap_remove(rng.usize(..self.subs.len())),
                    };
                    out.push_str(&format!("UNSUBSCRIBE\nid:{id}\n\n\0"));
                }
                30..55 => {
                    *serial += 1;
                    let dest = SEND_TO[rng.usize(..SEND_TO.len())];
                    let tx = match (self.txs.is_empty(), rng.bool()) {
                        (false, true) => format!("transaction:t{}\n", self.txs[0]),
                        _ => String::new(),
                    };
                    let receipt = if rng.bool() { "receipt:m\n" } else { "" };
                    let body = "b".repeat(rng.usize(..600));
                    let length = match rng.bool() {
                        true => format!("content-length:{}\n", body.len()),
                        false => String::new(),
                    };
                    out.push_str(&format!(
                        "SEND\ndestination:{dest}\n{tx}{receipt}{length}\n{body}\0"
                    ));
                }
                55..75 => {
                    let command = if rng.u8(..3) == 0 { "NACK" } else { "ACK" };
                    let reference = match self.acks.is_empty() || rng.u8(..8) == 0 {
                        true => "id:none\nmessage-id:none\nsubscription:0\n".to_owned(),
                        false => self.acks[rng.usize(..self.acks.len())].clone(),
                    };
                    let tx = match (self.txs.is_empty(), rng.bool()) {
                        (false, true) => format!("transaction:t{}\n", self.txs[0]),
                        _ => String::new(),
                    };
                    out.push_str(&format!("{command}\n{reference}{tx}\n\0"));
                }
                75..82 => {
                    let tx = rng.u32(..3);
                    self.txs.push(tx);
                    out.push_str(&format!("BEGIN\ntransaction:t{tx}\n\n\0"));
                }
                82..89 => {
                    let command = if rng.bool() { "COMMIT" } else { "ABORT" };
                    let tx = self.txs.pop().unwrap_or_else(|| rng.u32(..3));
                    out.push_str(&format!("{command}\ntransaction:t{tx}\nreceipt:c\n\n\0"));
                }
                89..93 => out.push('\n'),
                93..95 => {
                    out.push_str("DISCONNECT\nreceipt:bye\n\n\0");
                    self.over = true;
                }
                95..97 => out.push_str("send\ndestination:/queue/c0\n\n\0"),
                _ => out.push_str("SEND\ndestination:/queue/c0\ncontent-length:99999999\n\n"),
            }
        }
        out.into_bytes()
    }

    /// Takes the ack references of the MESSAGEs received; whether the server sent ERROR.
    fn learn(&mut self, bytes: &[u8]) -> bool {
        self.raw.extend_from_slice(bytes);
        let config = Config::new(self.version);
        let mut error = false;
        loop {
            match parse(&self.raw, &config) {
                Ok(Status::Frame(frame, used)) => {
                    match frame.command().as_str() {
                        "MESSAGE" => {
                            let header = |n: &str| frame.header(n).map(|v| v.into_owned());
                            let reference = match self.version {
                                Version::V1_2 => header("ack").map(|a| format!("id:{a}\n")),
                                Version::V1_1 => header("message-id")
                                    .zip(header("subscription"))
                                    .map(|(m, s)| format!("message-id:{m}\nsubscription:{s}\n")),
                                _ => header("message-id").map(|m| format!("message-id:{m}\n")),
                            };
                            self.acks.extend(reference);
                            if self.acks.len() > 32 {
                                self.acks.remove(0);
                            }
                        }
                        "ERROR" => error = true,
                        _ => {}
                    }
                    self.raw.drain(..used);
                }
                Ok(Status::HeartBeat(n)) => {
                    self.raw.drain(..n);
                }
                Ok(Status::Incomplete) => return error,
                Err(e) => panic!("the server sent what does not parse: {e}"),
            }
        }
    }
}

/// A fresh client, over TCP or WebSocket: CONNECTED and the RECEIPT of a SUBSCRIBE within
/// [`PROBE_LIMIT`], or why not.
async fn probe(server: &Server, websocket: bool) -> Result<(), String> {
    let started = Instant::now();
    let attempt = async {
        let mut transport = Transport::open(server, websocket)
            .await
            .ok_or("cannot connect")?;
        let frames = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0\
            SUBSCRIBE\nid:p\ndestination:/topic/probe\nreceipt:probe\n\n\0";
        transport
            .write(frames)
            .await
            .then_some(())
            .ok_or("cannot write")?;
        let mut got = Vec::new();
        loop {
            let text = String::from_utf8_lossy(&got);
            if text.contains("receipt-id:probe") {
                return match text.starts_with("CONNECTED\n") {
                    true => Ok(()),
                    false => Err(format!("no CONNECTED first: {text:?}")),
                };
            }
            let bytes = transport
                .read(PROBE_LIMIT)
                .await
                .ok_or_else(|| format!("closed: {text:?}"))?;
            got.extend_from_slice(&bytes);
        }
    };
    match timeout(PROBE_LIMIT, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("nothing within {:?}", started.elapsed())),
    }
}

/// One chaotic client until `until`; it probes after each of its batches. How many batches.
async fn chaos(server: Arc<Server>, seed: u64, until: Instant, batches: Arc<AtomicU64>) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut serial = 0;
    let mut session = None;
    let mut count = 0;
    while Instant::now() < until {
        let current = match &mut session {
            Some(current) => current,
            None => match Session::open(&server, &mut rng).await {
                Some(opened) => session.insert(opened),
                None => panic!("seed {seed}: a client could not connect"),
            },
        };
        let batch = current.batch(&mut rng, &mut serial);
        // Now and then a client vanishes mid-batch, its frame half written.
        let vanish = rng.u8(..20) == 0;
        let bytes = match vanish {
            true => &batch[..rng.usize(..=batch.len())],
            false => &batch[..],
        };
        let written = current.transport.write(bytes).await;
        let wait = Duration::from_millis(rng.u64(0..30));
        let received = match written && !vanish {
            true => current.transport.read(wait).await,
            false => None,
        };
        let error = received.as_deref().is_some_and(|r| current.learn(r));
        if vanish || received.is_none() || error || current.over {
            session = None;
        }
        count += 1;
        let n = batches.fetch_add(1, Ordering::Relaxed);
        if let Err(why) = probe(&server, n % 2 == 1).await {
            panic!("seed {seed}, batch {count}: a fresh client was not served: {why}");
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_pipelined_clients_never_stall_a_fresh_one() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..1_000_000));
    let seconds = std::env::var("CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("chaos: seed {seed} for {seconds} s (replay: CHAOS_SEED={seed})");
    let server = Arc::new(Server::start(&["--shards", "2", "--connect-timeout", "2"]));
    let until = Instant::now() + Duration::from_secs(seconds);
    let batches = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let run = chaos(server.clone(), seed * CLIENTS + n, until, batches.clone());
            tokio::spawn(run)
        })
        .collect();
    let mut total = 0;
    for client in clients {
        match client.await {
            Ok(count) => total += count,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    println!("figure: chaos batches, each followed by a fresh client served within 1 s: {total}");
    assert!(total > 0);
}
