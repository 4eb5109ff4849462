//! Crashes against the `stomp-server` binary with a data directory: publishers send persistent
//! messages with receipts and consumers acknowledge each one (`client-individual`, with a
//! receipt), while the server is killed with SIGKILL at random moments and started again on
//! the same directory. Then a last run drains every queue, and:
//! - every message that got a RECEIPT was delivered, at least once;
//! - none whose acknowledgement got a RECEIPT came back;
//! - a message delivered again carries `redelivered:true`;
//! - each consumer got each publisher's new messages on a queue in the order they were sent.
//!
//! Seeded and replayable: `CRASH_SEED=N` replays the kill moments; `CRASH_KILLS` sets how
//! many (default 3; `scripts/abuse` runs more against the release build).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::Server;
use stomp_session::FrameBuf;
use stomp_session::stomp_codec::{Config, Decoder, Item};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const QUEUES: [&str; 4] = [
    "/queue/crash-a",
    "/queue/crash-b",
    "/queue/crash-c",
    "/queue/crash-d",
];
const PUBLISHERS: usize = 2;
/// SENDs a publisher writes before it waits for their RECEIPTs.
const BATCH: usize = 10;

/// A message: its publisher, its queue and its number.
type Key = (usize, usize, u64);

/// What the clients saw, over every run.
#[derive(Default)]
struct Seen {
    /// Messages whose SEND got a RECEIPT.
    confirmed: BTreeSet<Key>,
    /// Each delivery: the message, whether marked redelivered, and the consumer's session.
    deliveries: Vec<(Key, bool, u64)>,
    /// Messages whose ACK got a RECEIPT, with the index in `deliveries` of the ACK's delivery.
    acked: HashMap<Key, usize>,
}

struct Reader {
    half: OwnedReadHalf,
    decoder: Decoder,
    buffer: BytesMut,
}

impl Reader {
    /// The next frame, or `None` when the connection is gone or silent for `wait`.
    async fn frame(&mut self, wait: Duration) -> Option<FrameBuf> {
        loop {
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some(Item::Frame(frame))) => return Some(frame),
                Ok(Some(Item::HeartBeat)) => continue,
                Ok(None) => {}
                Err(_) => return None,
            }
            match tokio::time::timeout(wait, self.half.read_buf(&mut self.buffer)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }
}

async fn connect(address: &str) -> Option<(Reader, OwnedWriteHalf)> {
    let stream = TcpStream::connect(address).await.ok()?;
    let (half, mut write) = stream.into_split();
    let mut reader = Reader {
        half,
        decoder: Decoder::new(Config::default()),
        buffer: BytesMut::new(),
    };
    write
        .write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .await
        .ok()?;
    let connected = reader.frame(Duration::from_secs(5)).await?;
    (connected.command().as_str() == "CONNECTED").then_some((reader, write))
}

fn parse_body(body: &[u8]) -> Key {
    let text = std::str::from_utf8(body).unwrap();
    let mut fields = text.split(':').map(|f| f.parse::<u64>().unwrap());
    let (p, q, n) = (fields.next(), fields.next(), fields.next());
    (p.unwrap() as usize, q.unwrap() as usize, n.unwrap())
}

/// Sends numbered persistent messages to every queue in batches, each batch's RECEIPTs
/// awaited, from `next` on, until the connection is gone; returns the next number.
async fn publish(address: String, publisher: usize, mut next: u64, seen: Arc<Mutex<Seen>>) -> u64 {
    let Some((mut reader, mut write)) = connect(&address).await else {
        return next;
    };
    loop {
        let mut frames = String::new();
        let mut batch = Vec::new();
        for _ in 0..BATCH {
            let queue = (next % QUEUES.len() as u64) as usize;
            let key = (publisher, queue, next);
            frames.push_str(&format!(
                "SEND\ndestination:{}\npersistent:true\nreceipt:{next}\n\n{publisher}:{queue}:{next}\0",
                QUEUES[queue]
            ));
            batch.push(key);
            next += 1;
        }
        if write.write_all(frames.as_bytes()).await.is_err() {
            return next;
        }
        for key in batch {
            let Some(frame) = reader.frame(Duration::from_secs(10)).await else {
                return next;
            };
            assert_eq!(frame.command().as_str(), "RECEIPT", "{frame:?}");
            assert_eq!(frame.header("receipt-id").unwrap(), key.2.to_string());
            seen.lock().unwrap().confirmed.insert(key);
        }
    }
}

/// Consumes `queue`, acknowledging every message with a receipt, until the connection is gone
/// or, when `drain`, silent for a second.
async fn consume(address: String, queue: usize, session: u64, drain: bool, seen: Arc<Mutex<Seen>>) {
    let Some((mut reader, mut write)) = connect(&address).await else {
        return;
    };
    let subscribe = format!(
        "SUBSCRIBE\nid:0\ndestination:{}\nack:client-individual\n\n\0",
        QUEUES[queue]
    );
    if write.write_all(subscribe.as_bytes()).await.is_err() {
        return;
    }
    let wait = Duration::from_secs(if drain { 1 } else { 30 });
    // ACK receipts by their id: the delivery each acknowledges.
    let mut pending: HashMap<String, (Key, usize)> = HashMap::new();
    let mut serial = 0u64;
    while let Some(frame) = reader.frame(wait).await {
        match frame.command().as_str() {
            "MESSAGE" => {
                let key = parse_body(frame.body());
                assert_eq!(key.1, queue, "a message of another queue");
                let redelivered = frame.header("redelivered").as_deref() == Some("true");
                let index = {
                    let mut seen = seen.lock().unwrap();
                    seen.deliveries.push((key, redelivered, session));
                    seen.deliveries.len() - 1
                };
                serial += 1;
                let ack = format!(
                    "ACK\nid:{}\nreceipt:a{serial}\n\n\0",
                    frame.header("ack").unwrap()
                );
                pending.insert(format!("a{serial}"), (key, index));
                if write.write_all(ack.as_bytes()).await.is_err() {
                    return;
                }
            }
            "RECEIPT" => {
                let id = frame.header("receipt-id").unwrap().into_owned();
                let (key, index) = pending.remove(&id).expect("a receipt asked for");
                // The first acknowledged delivery: nothing after it may bring the message back.
                seen.lock().unwrap().acked.entry(key).or_insert(index);
            }
            other => panic!("unexpected {other}: {frame:?}"),
        }
    }
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stomp-crash-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_with_a_receipt_survive_sigkill_and_acknowledged_ones_stay_gone() {
    crashes(1).await;
}

/// With two shards, publishers, consumers and queues land on either: a client waits for the
/// journal of the shard that owns the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_shards_too() {
    crashes(2).await;
}

async fn crashes(shards: usize) {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let kills: usize = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!("crash: seed {seed}, {kills} kills, {shards} shards");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = temp_dir();
    let data_dir = dir.to_str().unwrap().to_owned();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut next = [0u64; PUBLISHERS];
    let mut session = 0u64;
    for round in 0..=kills {
        let last = round == kills;
        // Redelivered as often as the kills require: none goes to the dead letters here.
        let shards = shards.to_string();
        let server = Server::start(&[
            "--data-dir",
            &data_dir,
            "--max-redeliveries",
            "0",
            "--shards",
            &shards,
        ]);
        // The kill comes at a random moment; the consumers start at one before it, so that
        // a backlog of confirmed messages is on disk only.
        let kill_at = rng.u64(300..1500);
        let start_at = if last { 0 } else { rng.u64(0..kill_at) };
        let mut consumers = Vec::new();
        for queue in 0..QUEUES.len() {
            for _ in 0..2 {
                session += 1;
                let (address, seen) = (server.tcp.clone(), seen.clone());
                consumers.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(start_at)).await;
                    consume(address, queue, session, last, seen).await;
                }));
            }
        }
        if last {
            // Nothing more is sent: what is left drains.
            for consumer in consumers {
                consumer.await.unwrap();
            }
            break;
        }
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| tokio::spawn(publish(server.tcp.clone(), p, next[p], seen.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(kill_at)).await;
        // SIGKILL: no shutdown, nothing flushed.
        drop(server);
        for (p, publisher) in publishers.into_iter().enumerate() {
            next[p] = publisher.await.unwrap();
        }
        for consumer in consumers {
            consumer.await.unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let seen = seen.lock().unwrap();
    assert!(
        seen.confirmed.len() > 50 * kills,
        "seed {seed}: too few messages to tell ({})",
        seen.confirmed.len()
    );
    let delivered: BTreeSet<Key> = seen.deliveries.iter().map(|(k, ..)| *k).collect();
    let lost: Vec<&Key> = seen.confirmed.difference(&delivered).collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: confirmed and never delivered: {lost:?}"
    );
    let mut first: HashMap<Key, usize> = HashMap::new();
    for (index, (key, redelivered, _)) in seen.deliveries.iter().enumerate() {
        if let Some(acked_at) = seen.acked.get(key) {
            assert!(
                index <= *acked_at,
                "seed {seed}: {key:?} came back after its ACK's RECEIPT"
            );
        }
        if first.insert(*key, index).is_some() {
            assert!(
                *redelivered,
                "seed {seed}: {key:?} again, not marked redelivered"
            );
        }
    }
    // Per consumer session, per publisher and queue: new messages in the order sent.
    let mut last_new: HashMap<(u64, usize, usize), u64> = HashMap::new();
    for (key, redelivered, session) in &seen.deliveries {
        if *redelivered {
            continue;
        }
        let (p, q, n) = *key;
        if let Some(before) = last_new.insert((*session, p, q), n) {
            assert!(
                before < n,
                "seed {seed}: {n} after {before} from {p} on {q}"
            );
        }
    }
    println!(
        "figure: crash ({kills} SIGKILLs, {shards} shards): {} confirmed, {} deliveries, {} acknowledged, none lost",
        seen.confirmed.len(),
        seen.deliveries.len(),
        seen.acked.len()
    );
}
