//! `stomp-shards`: the in-memory broker's routing on 1 to N threads, without sockets, so that
//! what is measured is the brokers alone (decoding SENDs, routing, encoding MESSAGEs, and the
//! messages between shards), not the kernel or the clients.
//!
//! `--topics` topics, each with a publisher and `--consumers` subscribers (distinct
//! subscription ids, as separate clients choose), dealt to the shards in turn as the server
//! deals connections. Each shard is a thread owning one `Broker` shard: it feeds its
//! publishers' SENDs (32 to a read, as a burst arrives), carries what it has for the other
//! shards over one channel into each, and drains its connections' output (written nowhere).
//! Reported: deliveries per second for each shard count, in one run.
//!
//! ```text
//! cargo run --release -p stomp-benches --bin stomp-shards -- --shards 1,2
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use stomp_broker::{Broker, BrokerConfig, BrokerEvent, ConnectionId, ShardMessage};

#[derive(Parser, Debug)]
struct Args {
    /// The shard counts to run, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    shards: Vec<usize>,
    #[arg(long, default_value_t = 4)]
    topics: usize,
    #[arg(long, default_value_t = 5)]
    consumers: usize,
    /// Messages each publisher sends.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    #[arg(long, default_value_t = 256)]
    size: usize,
}

/// SENDs a publisher writes at once.
const BURST: usize = 32;

/// Messages on their way between shards past which publishers wait (as the server stops
/// reading its clients).
const MAX_BACKLOG: usize = 65_536;

const CONNECT: &[u8] = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0";

/// What all shards share: messages on their way, and publishers not done.
struct Shared {
    backlog: AtomicUsize,
    publishing: AtomicUsize,
}

/// One shard's broker, its publishers (with their bursts) and its way to the others.
struct Shard {
    broker: Broker,
    publishers: Vec<(ConnectionId, Vec<u8>, usize)>,
    to: Vec<mpsc::Sender<(usize, Vec<ShardMessage>)>>,
    from: mpsc::Receiver<(usize, Vec<ShardMessage>)>,
    index: usize,
    now: Instant,
}

impl Shard {
    /// Output written nowhere; what is for other shards sent, one message per shard.
    fn settle(&mut self, shared: &Shared) {
        while let Some(id) = self.broker.poll_ready() {
            while self.broker.poll_transmit(id).is_some() {}
        }
        let mut out: Vec<Vec<ShardMessage>> = vec![Vec::new(); self.to.len()];
        while let Some(event) = self.broker.poll_event() {
            if let BrokerEvent::ToShard { shard, message } = event {
                out[shard].push(message);
            }
        }
        for (shard, batch) in out.into_iter().enumerate() {
            if !batch.is_empty() {
                shared.backlog.fetch_add(batch.len(), Ordering::AcqRel);
                self.to[shard]
                    .send((self.index, batch))
                    .expect("shard gone");
            }
        }
    }

    fn run(mut self, shared: &Shared, messages: usize) -> u64 {
        let mut done = self.publishers.is_empty();
        loop {
            if !done && shared.backlog.load(Ordering::Acquire) < MAX_BACKLOG {
                done = true;
                for (id, burst, sent) in &mut self.publishers {
                    if *sent < messages {
                        self.broker.handle_input(*id, self.now, burst);
                        *sent += BURST;
                        done = false;
                    }
                }
                if done {
                    shared.publishing.fetch_sub(1, Ordering::AcqRel);
                }
                self.settle(shared);
            }
            let mut received = false;
            while let Ok((from, batch)) = self.from.try_recv() {
                let count = batch.len();
                for message in batch {
                    self.broker.handle_shard(self.now, from, message);
                }
                self.settle(shared);
                shared.backlog.fetch_sub(count, Ordering::AcqRel);
                received = true;
            }
            let idle = done && !received;
            if idle
                && shared.publishing.load(Ordering::Acquire) == 0
                && shared.backlog.load(Ordering::Acquire) == 0
            {
                return self.broker.stats().deliveries;
            }
            if idle {
                std::thread::yield_now();
            }
        }
    }
}

/// Sets up `shards` shards and runs them; deliveries and the time they took.
fn run(args: &Args, shards: usize) -> (u64, Duration) {
    let now = Instant::now();
    let (to, from): (Vec<_>, Vec<_>) = (0..shards).map(|_| mpsc::channel()).unzip();
    let mut all: Vec<Shard> = from
        .into_iter()
        .enumerate()
        .map(|(index, from)| Shard {
            broker: Broker::new(BrokerConfig::default().with_shard(index, shards)),
            publishers: Vec::new(),
            to: to.clone(),
            from,
            index,
            now,
        })
        .collect();
    let shared = Arc::new(Shared {
        backlog: AtomicUsize::new(0),
        publishing: AtomicUsize::new(0),
    });
    // Connections dealt in turn: every subscriber, then every publisher.
    let mut next = 0;
    let mut deal = || {
        next += 1;
        (next - 1) % shards
    };
    let body = "x".repeat(args.size);
    for topic in 0..args.topics {
        for consumer in 0..args.consumers {
            let shard = &mut all[deal()];
            let id = shard.broker.open(now);
            let subscribe = format!(
                "SUBSCRIBE\nid:sub-{topic}-{consumer}\ndestination:/topic/bench-{topic}\n\n\0"
            );
            shard.broker.handle_input(id, now, CONNECT);
            shard.broker.handle_input(id, now, subscribe.as_bytes());
        }
    }
    for topic in 0..args.topics {
        let shard = &mut all[deal()];
        let id = shard.broker.open(now);
        shard.broker.handle_input(id, now, CONNECT);
        let send = format!("SEND\ndestination:/topic/bench-{topic}\n\n{body}\0");
        shard
            .publishers
            .push((id, send.repeat(BURST).into_bytes(), 0));
    }
    for shard in &mut all {
        shard.settle(&shared);
        if !shard.publishers.is_empty() {
            shared.publishing.fetch_add(1, Ordering::AcqRel);
        }
    }
    let messages = args.messages;
    let began = Instant::now();
    let deliveries = std::thread::scope(|scope| {
        let threads: Vec<_> = all
            .into_iter()
            .map(|shard| {
                let shared = &shared;
                scope.spawn(move || shard.run(shared, messages))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("shard panicked"))
            .sum()
    });
    (deliveries, began.elapsed())
}

fn main() {
    let args = Args::parse();
    let messages = args.messages.div_ceil(BURST) * BURST;
    let expected = (messages * args.topics * args.consumers) as u64;
    println!("| broker | threads | load | throughput | vs 1 |");
    println!("|---|---:|---|---:|---:|");
    let mut first = None;
    for &shards in &args.shards {
        let (deliveries, elapsed) = run(&args, shards.max(1));
        assert_eq!(deliveries, expected, "every delivery made once");
        let rate = deliveries as f64 / elapsed.as_secs_f64();
        let base = *first.get_or_insert(rate);
        println!(
            "| stomp-broker, {shards} shard{} | {shards} | {} topics x {} consumers x {messages} msgs of {} B | {rate:.0} deliveries/s | {:.2}x |",
            if shards == 1 { "" } else { "s" },
            args.topics,
            args.consumers,
            args.size,
            rate / base,
        );
    }
}
