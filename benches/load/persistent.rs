//! `--persistent`: the queue workload with a RECEIPT for each message. `--producers` clients
//! each send their share of `--messages` to one queue with `persistent:true` and a receipt,
//! at most `--window` unanswered at a time; one consumer drains the queue under auto ack, so
//! that it never fills. Reported: messages per second with their RECEIPT, and the latency
//! from a SEND to its RECEIPT at p50 and p99: what the broker's way to disk costs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use stomp_session::{AckMode, AskReceipt, ClientEvent, ReceiptId, SendFrame};

use crate::{Args, connect};

/// The queue, drained by the end of each run so that nothing is left in a durable broker.
const QUEUE: &str = "/queue/stomp-load-persistent";

/// Sends the messages with nobody consuming them, to leave a backlog (for a recovery
/// measurement); prints how long it took.
pub(crate) fn fill(args: &Args) {
    let producers = args.producers.max(1);
    let per_producer = args.messages / producers as u64;
    let began = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..producers {
            scope.spawn(|| produce(args, per_producer));
        }
    });
    println!(
        "{}: {} persistent messages of {} B left in {QUEUE} in {:.1} s",
        args.name,
        per_producer * producers as u64,
        args.size,
        began.elapsed().as_secs_f64()
    );
}

/// Runs the workload; prints its row.
pub(crate) fn run(args: &Args) {
    let producers = args.producers.max(1);
    let per_producer = args.messages / producers as u64;
    let total = per_producer * producers as u64;
    let mut consumer = connect(args, &args.addr);
    let sub = consumer
        .session()
        .subscribe(Instant::now(), QUEUE, AckMode::Auto, AskReceipt::Yes)
        .unwrap();
    let receipt = sub.receipt.unwrap();
    loop {
        match consumer.next_event(Some(Duration::from_secs(10))).unwrap() {
            Some(ClientEvent::Receipt { receipt: r, .. }) if r == receipt => break,
            Some(_) => {}
            None => panic!("no receipt for SUBSCRIBE"),
        }
    }
    let draining = std::thread::spawn(move || {
        let mut count = 0u64;
        while count < total {
            match consumer.next_event(Some(Duration::from_secs(60))).unwrap() {
                Some(ClientEvent::Message(_)) => count += 1,
                Some(ClientEvent::Closed { reason, .. }) => panic!("consumer closed: {reason}"),
                Some(_) => {}
                None => panic!("consumer stalled at {count} of {total}"),
            }
        }
        let _ = consumer.disconnect(Duration::from_secs(5));
    });
    let began = Instant::now();
    let latencies: Vec<u64> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..producers)
            .map(|_| scope.spawn(|| produce(args, per_producer)))
            .collect();
        running
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect()
    });
    let elapsed = began.elapsed();
    draining.join().unwrap();
    let mut latencies = latencies;
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1e3;
    println!(
        "| {} | persistent queue, a RECEIPT each | {producers} producers x {per_producer} msgs of {} B | {:.0} msgs/s | p50 {:.0} us | p99 {:.0} us |",
        args.name,
        args.size,
        total as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
    );
}

/// Sends `count` persistent messages with receipts, at most `--window` unanswered; the
/// latency of each, SEND to RECEIPT, in nanoseconds.
fn produce(args: &Args, count: u64) -> Vec<u64> {
    let mut producer = connect(args, &args.addr);
    let body = vec![b'x'; args.size];
    let mut waiting: HashMap<ReceiptId, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(count as usize);
    let mut sent = 0;
    while latencies.len() < count as usize {
        while sent < count && (waiting.len() as u64) < args.window.max(1) {
            let frame = SendFrame::new(QUEUE, body.clone())
                .header("persistent", "true")
                .with_receipt();
            let receipt = producer.session().send(Instant::now(), frame).unwrap();
            waiting.insert(receipt.unwrap(), Instant::now());
            sent += 1;
        }
        producer.flush().unwrap();
        match producer.next_event(Some(Duration::from_secs(30))).unwrap() {
            Some(ClientEvent::Receipt { receipt, .. }) => {
                if let Some(at) = waiting.remove(&receipt) {
                    latencies.push(at.elapsed().as_nanos() as u64);
                }
            }
            Some(ClientEvent::Closed { reason, .. }) => panic!("producer closed: {reason}"),
            Some(_) => {}
            None => panic!("no RECEIPT within 30 s ({} waiting)", waiting.len()),
        }
    }
    let _ = producer.disconnect(Duration::from_secs(5));
    latencies
}
