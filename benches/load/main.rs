//! `stomp-load`: fan-out load over loopback TCP or WebSocket against any STOMP broker.
//!
//! One producer sends `--messages` messages of `--size` octets to one topic; `--consumers`
//! clients subscribed to it each receive every message. The producer stays at most `--window`
//! messages ahead of the slowest consumer. Reported: deliveries per second, and the latency of
//! each delivery (send to receipt by the consumer) at p50 and p99. With `--rate`, the producer
//! is paced instead, for latency alone. An address `ws://host:port/path` runs every client over
//! WebSocket instead of TCP, with the same client code. With `--topics N`, N such groups run
//! side by side, each a producer and its consumers on a topic of its own (for a server that
//! routes on several cores). With `--persistent`, the queue workload with a RECEIPT for each
//! persistent message instead (see `persistent.rs`); with `--queue`, messages shared out
//! between the consumers of one queue (see `queue.rs`).
//!
//! ```text
//! cargo run --release -p stomp-benches --bin stomp-load -- --addr 127.0.0.1:61613 --host /
//! cargo run --release -p stomp-benches --bin stomp-load -- --addr ws://127.0.0.1:15674/stomp
//! ```

mod persistent;
mod queue;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use stomp_blocking::Client;
use stomp_session::{AckMode, AskReceipt, ClientConfig, ClientEvent, SendFrame};
use transport::Transport;

#[derive(Parser, Debug)]
struct Args {
    /// The broker's STOMP address: `host:port` (TCP) or `ws://host:port/path` (WebSocket).
    #[arg(long, default_value = "127.0.0.1:61613")]
    addr: String,
    /// Where the producer connects, when not `--addr`: another node relaying to the same
    /// broker, so that every message crosses it.
    #[arg(long)]
    producer_addr: Option<String>,
    /// The `host` header (RabbitMQ: `/`).
    #[arg(long, default_value = "/")]
    host: String,
    #[arg(long, default_value = "guest")]
    login: String,
    #[arg(long, default_value = "guest")]
    passcode: String,
    /// A name for the report.
    #[arg(long, default_value = "broker")]
    name: String,
    #[arg(long, default_value_t = 10)]
    consumers: usize,
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Most messages the producer may be ahead of the slowest consumer.
    #[arg(long, default_value_t = 1000)]
    window: u64,
    /// Messages per second to pace the producer at (latency run); 0: as fast as the window lets.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The producer writes after this many SENDs (1: each SEND on its own, as a browser does
    /// over WebSocket).
    #[arg(long, default_value_t = 32)]
    flush_every: u64,
    /// Groups side by side, each a producer and `--consumers` consumers on a topic of its own.
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// The persistent queue workload: `--producers` clients send `persistent:true` messages
    /// with a receipt each (at most `--window` unanswered each) to a queue one consumer drains.
    #[arg(long)]
    persistent: bool,
    /// The queue workload: `--producers` clients send `--messages` in all to a queue that
    /// `--consumers` clients share out under auto ack.
    #[arg(long, conflicts_with = "persistent")]
    queue: bool,
    /// Producers of the persistent and queue workloads.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// With `--persistent`: leave the messages in the queue, nobody consuming them (a backlog
    /// for a recovery measurement).
    #[arg(long, requires = "persistent")]
    fill: bool,
}

fn connect(args: &Args, addr: &str) -> Client<Transport> {
    let config = ClientConfig::new(args.host.as_str())
        .with_login(args.login.as_str(), args.passcode.as_str());
    let transport = Transport::open(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    Client::over(transport, config).unwrap_or_else(|e| panic!("{addr}: {e}"))
}

/// Octets of a body that say when it was sent: nanoseconds since `start`, in decimal, so that
/// the body is text (brokers send STOMP over WebSocket as text messages, which must be UTF-8).
const STAMP: usize = 20;

/// The time a message was sent, in nanoseconds since `start`, from its first octets.
fn sent_at(body: &[u8]) -> u64 {
    body.get(..STAMP)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|b| b.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args = Args::parse();
    if args.fill {
        persistent::fill(&args);
        return;
    }
    if args.persistent {
        persistent::run(&args);
        return;
    }
    let start = Instant::now();
    if args.queue {
        queue::run(&args, start);
        return;
    }
    // Every producer starts once every consumer of every group has subscribed.
    let ready = std::sync::Barrier::new(args.topics.max(1));
    let (latencies, elapsed): (Vec<Vec<u64>>, Vec<Duration>) = std::thread::scope(|scope| {
        let groups: Vec<_> = (0..args.topics.max(1))
            .map(|group| {
                let topic = format!("/topic/stomp-load-{}-{group}", std::process::id());
                let (args, ready) = (&args, &ready);
                scope.spawn(move || run_group(args, &topic, start, ready))
            })
            .collect();
        groups.into_iter().map(|g| g.join().unwrap()).unzip()
    });
    let mut latencies: Vec<u64> = latencies.into_iter().flatten().collect();
    let elapsed = elapsed.into_iter().max().unwrap_or_default();
    report(&args, &mut latencies, elapsed);
}

/// One producer and its consumers on `topic`: every delivery's latency, and how long the
/// producer took from its first message to the last delivery. Starts sending once every
/// group has its consumers subscribed (`ready`).
fn run_group(
    args: &Args,
    topic: &str,
    start: Instant,
    ready: &std::sync::Barrier,
) -> (Vec<u64>, Duration) {
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.consumers).map(|_| AtomicU64::new(0)).collect());

    // Consumers: subscribe, confirm with a receipt, then count and time every delivery.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let consumers: Vec<_> = (0..args.consumers)
        .map(|index| {
            let mut client = connect(args, &args.addr);
            let received = Arc::clone(&received);
            let (topic, total, ready) = (topic.to_owned(), args.messages, ready_tx.clone());
            std::thread::spawn(move || {
                let sub = client
                    .session()
                    .subscribe(Instant::now(), &topic, AckMode::Auto, AskReceipt::Yes)
                    .unwrap();
                let receipt = sub.receipt.unwrap();
                loop {
                    match client.next_event(Some(Duration::from_secs(10))).unwrap() {
                        Some(ClientEvent::Receipt { receipt: r, .. }) if r == receipt => break,
                        Some(_) => {}
                        None => panic!("no receipt for SUBSCRIBE"),
                    }
                }
                ready.send(()).unwrap();
                let mut latencies = Vec::with_capacity(total as usize);
                let mut count = 0;
                while count < total {
                    match client.next_event(Some(Duration::from_secs(30))).unwrap() {
                        Some(ClientEvent::Message(message)) => {
                            let now = start.elapsed().as_nanos() as u64;
                            latencies.push(now.saturating_sub(sent_at(message.body())));
                            count += 1;
                            received[index].store(count, Ordering::Relaxed);
                        }
                        // A consumer that fails no longer holds the producer back: the run
                        // ends, and fails when the consumers are joined.
                        Some(ClientEvent::Closed { reason, .. }) => {
                            received[index].store(u64::MAX, Ordering::Relaxed);
                            panic!("consumer closed: {reason}")
                        }
                        Some(_) => {}
                        None => {
                            received[index].store(u64::MAX, Ordering::Relaxed);
                            panic!("consumer {index} stalled at {count} of {total}")
                        }
                    }
                }
                let _ = client.disconnect(Duration::from_secs(5));
                latencies
            })
        })
        .collect();
    for _ in 0..args.consumers {
        ready_rx.recv().unwrap();
    }
    ready.wait();

    // The producer: the send time, then padding to the body size.
    let mut producer = connect(args, args.producer_addr.as_deref().unwrap_or(&args.addr));
    let began = Instant::now();
    let mut body = vec![b'x'; args.size.max(STAMP)];
    for n in 0..args.messages {
        if args.rate > 0 {
            let due = began + Duration::from_secs_f64(n as f64 / args.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                producer.flush().unwrap();
                std::thread::sleep(wait);
            }
        } else {
            // Flow control: at most `window` ahead of the slowest consumer. A consumer that
            // failed counts as `u64::MAX`, so that once all have failed nothing holds the
            // producer: the sum saturates rather than wrapping to a window never reached.
            while n
                >= args.window.saturating_add(
                    received
                        .iter()
                        .map(|r| r.load(Ordering::Relaxed))
                        .min()
                        .unwrap_or(0),
                )
            {
                producer.flush().unwrap();
                // A pause, not a spin: on a small machine a spinning producer takes the
                // core the broker needs.
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let stamp = format!(
            "{:0width$}",
            start.elapsed().as_nanos() as u64,
            width = STAMP
        );
        body[..STAMP].copy_from_slice(stamp.as_bytes());
        producer
            .session()
            .send(Instant::now(), SendFrame::new(topic, body.clone()))
            .unwrap();
        if (n + 1) % args.flush_every.max(1) == 0 {
            producer.flush().unwrap();
        }
    }
    producer.flush().unwrap();
    let latencies: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let elapsed = began.elapsed();
    let _ = producer.disconnect(Duration::from_secs(5));
    (latencies, elapsed)
}

/// Prints the run's row: deliveries per second over the slowest group's time, and latency.
fn report(args: &Args, latencies: &mut [u64], elapsed: Duration) {
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1e3;
    let deliveries = latencies.len() as f64;
    let mut mode = if args.rate > 0 {
        format!("paced {}/s", args.rate)
    } else {
        "fan-out".into()
    };
    if args.flush_every == 1 {
        mode.push_str(", one SEND per write");
    }
    let groups = match args.topics {
        0 | 1 => String::new(),
        n => format!("{n} topics x "),
    };
    println!(
        "| {} | {mode} | {groups}{} consumers x {} msgs of {} B | {:.0} deliveries/s | p50 {:.0} us | p99 {:.0} us |",
        args.name,
        args.consumers,
        args.messages,
        args.size,
        deliveries / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
    );
}
