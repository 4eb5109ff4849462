//! `--queue`: messages shared out rather than fanned out. `--producers` clients send
//! `--messages` in all to one queue; `--consumers` clients subscribed to it under auto ack take
//! each message once between them, as the broker deals them out. The producers stay at most
//! `--window` messages ahead of what the consumers have received together. Reported: messages
//! delivered per second, and the latency of each (SEND to its receipt by a consumer) at p50
//! and p99.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stomp_session::{AckMode, AskReceipt, ClientEvent, SendFrame};

use crate::{Args, STAMP, connect, sent_at};

/// The queue: one name for every run, drained by the end of each, so that a broker that keeps
/// queues keeps one empty queue.
const QUEUE: &str = "/queue/stomp-load-shared";

/// A consumer that has received nothing for this long while messages are due fails the run.
const STALL: Duration = Duration::from_secs(30);

/// What the producers and consumers share.
struct Shared {
    sent: AtomicU64,
    received: AtomicU64,
    /// Set by a consumer that failed, so that the producers stop waiting for it.
    failed: AtomicBool,
}

/// Runs the workload; prints its row.
pub(crate) fn run(args: &Args, start: Instant) {
    let producers = args.producers.max(1);
    let per_producer = args.messages / producers as u64;
    let total = per_producer * producers as u64;
    let shared = Shared {
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        failed: AtomicBool::new(false),
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (latencies, elapsed) = std::thread::scope(|scope| {
        let consumers: Vec<_> = (0..args.consumers.max(1))
            .map(|_| {
                let (shared, ready) = (&shared, ready_tx.clone());
                scope.spawn(move || {
                    let latencies = consume(args, start, total, shared, ready);
                    if latencies.is_none() {
                        shared.failed.store(true, Ordering::Relaxed);
                    }
                    latencies
                })
            })
            .collect();
        drop(ready_tx);
        // A consumer that failed before it subscribed dropped its sender unused.
        let subscribed = ready_rx.iter().take(consumers.len()).count();
        if subscribed < consumers.len() {
            shared.failed.store(true, Ordering::Relaxed);
            panic!(
                "{subscribed} of {} queue consumers subscribed",
                consumers.len()
            );
        }
        let began = Instant::now();
        let producing: Vec<_> = (0..producers)
            .map(|_| scope.spawn(|| produce(args, start, per_producer, &shared)))
            .collect();
        for producer in producing {
            producer.join().unwrap();
        }
        let latencies: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| {
                c.join()
                    .unwrap()
                    .expect("every consumer received its share")
            })
            .collect();
        (latencies, began.elapsed())
    });
    let mut latencies = latencies;
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1e3;
    println!(
        "| {} | queue | {producers} producers x {} consumers x {total} msgs of {} B | {:.0} deliveries/s | p50 {:.0} us | p99 {:.0} us |",
        args.name,
        args.consumers.max(1),
        args.size,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
    );
}

/// Subscribes, says so on `ready`, then takes messages until the consumers together have
/// `total`; the latency of each it took, or `None` when it failed (its reason printed).
fn consume(
    args: &Args,
    start: Instant,
    total: u64,
    shared: &Shared,
    ready: std::sync::mpsc::Sender<()>,
) -> Option<Vec<u64>> {
    let mut client = connect(args, &args.addr);
    let sub = client
        .session()
        .subscribe(Instant::now(), QUEUE, AckMode::Auto, AskReceipt::Yes)
        .unwrap();
    let receipt = sub.receipt.unwrap();
    loop {
        match client.next_event(Some(Duration::from_secs(10))).unwrap() {
            Some(ClientEvent::Receipt { receipt: r, .. }) if r == receipt => break,
            Some(_) => {}
            None => {
                eprintln!("stomp-load: no receipt for SUBSCRIBE to {QUEUE}");
                return None;
            }
        }
    }
    ready.send(()).unwrap();
    let mut latencies = Vec::new();
    let mut progress = Instant::now();
    while shared.received.load(Ordering::Relaxed) < total {
        // A short wait, to see when the others took the last messages.
        match client.next_event(Some(Duration::from_millis(200))).unwrap() {
            Some(ClientEvent::Message(message)) => {
                let now = start.elapsed().as_nanos() as u64;
                latencies.push(now.saturating_sub(sent_at(message.body())));
                shared.received.fetch_add(1, Ordering::Relaxed);
                progress = Instant::now();
            }
            Some(ClientEvent::Closed { reason, .. }) => {
                eprintln!("stomp-load: queue consumer closed: {reason}");
                return None;
            }
            Some(_) => {}
            None if progress.elapsed() > STALL => {
                eprintln!(
                    "stomp-load: queue consumer stalled ({} of {total} received in all)",
                    shared.received.load(Ordering::Relaxed)
                );
                return None;
            }
            None => {}
        }
    }
    let _ = client.disconnect(Duration::from_secs(5));
    Some(latencies)
}

/// Sends `count` messages, stamped with their send time, at most `--window` ahead of what the
/// consumers have received together.
fn produce(args: &Args, start: Instant, count: u64, shared: &Shared) {
    let mut producer = connect(args, args.producer_addr.as_deref().unwrap_or(&args.addr));
    let mut body = vec![b'x'; args.size.max(STAMP)];
    for n in 0..count {
        while shared.sent.load(Ordering::Relaxed)
            >= args.window + shared.received.load(Ordering::Relaxed)
        {
            assert!(
                !shared.failed.load(Ordering::Relaxed),
                "a queue consumer failed"
            );
            producer.flush().unwrap();
            // A pause, not a spin, as for the fan-out's producer.
            std::thread::sleep(Duration::from_micros(50));
        }
        let stamp = format!(
            "{:0width$}",
            start.elapsed().as_nanos() as u64,
            width = STAMP
        );
        body[..STAMP].copy_from_slice(stamp.as_bytes());
        producer
            .session()
            .send(Instant::now(), SendFrame::new(QUEUE, body.clone()))
            .unwrap();
        shared.sent.fetch_add(1, Ordering::Relaxed);
        if (n + 1) % args.flush_every.max(1) == 0 {
            producer.flush().unwrap();
        }
    }
    producer.flush().unwrap();
    let _ = producer.disconnect(Duration::from_secs(5));
}
