//! The async clients end to end, over loopback TCP through the same broker: stomp-server, in
//! this process on a runtime of its own. For each implementation (stomp-tokio, async-stomp
//! 0.7.0, iridium-stomp 0.6.0), 256-byte messages on a topic:
//!
//! - publish (criterion): an iteration sends 1000 messages, then one with a receipt, and ends
//!   at that RECEIPT (nobody subscribes);
//! - consume (criterion): a raw socket writes 1000 SENDs at once, and the iteration ends when
//!   the implementation's subscription has received all of them;
//! - publish and consume (criterion): one connection of the implementation publishes 1000
//!   messages while another receives them;
//! - latency: each message carries the instant it was published, and the consumer notes how
//!   long it took: paced at 5000 a second (5 each millisecond, for 2 s), and one at a time
//!   (each published once the one before was received, 2000 of them); p50 and p99.
//!
//! Each implementation is used the way its documentation shows: stomp-tokio's `send` and
//! `Subscription::next`, async-stomp's `SinkExt::send` and `StreamExt::next` on its transport,
//! iridium-stomp's `Connection::send` and `Subscription`'s stream. A last row does the same with
//! no client at all (frames encoded by hand, written a batch at once, counted by their NULs):
//! what the server and the kernel cost alone, the ceiling for any client.
//!
//! `cargo bench -p stomp-benches --bench clients` runs it; `target/criterion/clients.md` holds
//! the table afterwards.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::print_stdout,
    clippy::unwrap_used
)]

mod estimates;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use stomp_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Messages per criterion iteration.
const BATCH: usize = 1000;
/// Octets of each body.
const BODY: usize = 256;
/// The paced run: this many messages each millisecond, for this long.
const PACED_PER_MS: usize = 5;
const PACED_FOR: Duration = Duration::from_secs(2);
/// Messages sent one at a time.
const ROUND_TRIPS: usize = 2000;

/// Where the consumers listen; publishing alone goes where nobody does.
const TOPIC: &str = "/topic/bench";
const NOBODY: &str = "/topic/bench-unheard";

/// The row of no client at all.
const BARE: &str = "bare socket (no client)";

/// The three throughput workloads: criterion group, and the column it fills.
const WORKLOADS: [(&str, &str); 3] = [
    ("h_publish", "publish"),
    ("h_consume", "consume"),
    ("h_publish_consume", "publish and consume"),
];

/// A producer and a consumer of one implementation, the consumer subscribed to `TOPIC`. The
/// workloads run in a task of the runtime, as an application's code does.
trait Clients: Send + 'static {
    /// Publishes `count` messages to `NOBODY` and waits for the RECEIPT of one more.
    fn publish(&mut self, count: usize) -> impl Future<Output = ()> + Send;
    /// Receives `count` messages.
    fn consume(&mut self, count: usize) -> impl Future<Output = ()> + Send;
    /// Publishes `count` messages to `TOPIC` as `pacer` says, stamped with when each was sent
    /// (relative to `base`), while the consumer receives them; the latency of each.
    fn publish_consume(
        &mut self,
        pacer: Pacer,
        base: Instant,
    ) -> impl Future<Output = Vec<Duration>> + Send;
}

/// A body of `BODY` octets that starts with the nanoseconds since `base`, in 20 digits.
fn stamped(base: Instant) -> Vec<u8> {
    let mut body = PADDING.as_bytes()[..BODY].to_vec();
    let mut nanos = base.elapsed().as_nanos();
    for digit in body[..20].iter_mut().rev() {
        *digit = b'0' + (nanos % 10) as u8;
        nanos /= 10;
    }
    body
}

const PADDING: &str = concat!(
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
);

/// How long ago a stamped body was sent.
fn latency(body: &[u8], base: Instant) -> Duration {
    let nanos: u64 = std::str::from_utf8(&body[..20]).unwrap().parse().unwrap();
    base.elapsed().saturating_sub(Duration::from_nanos(nanos))
}

/// When to publish: all at once, or a few each millisecond.
struct Pacer {
    count: usize,
    left: usize,
    per_tick: Option<usize>,
    ticks: Option<tokio::time::Interval>,
}

impl Pacer {
    fn all(count: usize) -> Pacer {
        Pacer {
            count,
            left: count,
            per_tick: None,
            ticks: None,
        }
    }

    fn paced(count: usize, per_tick: usize) -> Pacer {
        Pacer {
            per_tick: Some(per_tick),
            ..Pacer::all(count)
        }
    }

    /// How many to send now, once it is time; `None` when all were.
    async fn burst(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        let Some(per_tick) = self.per_tick else {
            self.left = 0;
            return Some(self.count);
        };
        let ticks = self.ticks.get_or_insert_with(|| {
            let mut ticks = tokio::time::interval(Duration::from_millis(1));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        ticks.tick().await;
        let now = per_tick.min(self.left);
        self.left -= now;
        Some(now)
    }
}

struct Ours {
    producer: stomp_tokio::Client,
    consumer: stomp_tokio::Subscription,
}

impl Ours {
    async fn connect(address: &str) -> Ours {
        let connect = || stomp_tokio::Client::builder(address).connect();
        let producer = connect().await.unwrap();
        // Resolves at the SUBSCRIBE's RECEIPT: the subscription is live.
        let consumer = connect()
            .await
            .unwrap()
            .subscribe(TOPIC, stomp_tokio::AckMode::Auto)
            .await
            .unwrap();
        Ours { producer, consumer }
    }
}

impl Clients for Ours {
    async fn publish(&mut self, count: usize) {
        for _ in 0..count {
            self.producer.send(NOBODY, stamped_at_zero()).await.unwrap();
        }
        let last = stomp_tokio::SendFrame::new(NOBODY, stamped_at_zero());
        self.producer.send_with_receipt(last).await.unwrap();
    }

    async fn consume(&mut self, count: usize) {
        for _ in 0..count {
            self.consumer.next().await.unwrap();
        }
    }

    async fn publish_consume(&mut self, mut pacer: Pacer, base: Instant) -> Vec<Duration> {
        let count = pacer.count;
        let producer = &self.producer;
        let consumer = &mut self.consumer;
        let publish = async {
            while let Some(burst) = pacer.burst().await {
                for _ in 0..burst {
                    producer.send(TOPIC, stamped(base)).await.unwrap();
                }
            }
        };
        let consume = async {
            let mut latencies = Vec::with_capacity(count);
            for _ in 0..count {
                let message = consumer.next().await.unwrap();
                latencies.push(latency(message.body(), base));
            }
            latencies
        };
        tokio::join!(publish, consume).1
    }
}

fn stamped_at_zero() -> &'static str {
    &PADDING[..BODY]
}

struct AsyncStomp {
    producer: async_stomp::client::ClientTransport,
    consumer: async_stomp::client::ClientTransport,
}

impl AsyncStomp {
    async fn connect(address: &str) -> AsyncStomp {
        let connect = || {
            async_stomp::client::Connector::builder()
                .server(address.to_owned())
                .virtualhost("/")
                .connect()
        };
        let producer = connect().await.unwrap();
        let mut consumer = connect().await.unwrap();
        let subscribe = async_stomp::client::Subscriber::builder()
            .destination(TOPIC)
            .id("bench")
            .headers(vec![("receipt".to_owned(), "subscribed".to_owned())])
            .subscribe();
        consumer.send(subscribe).await.unwrap();
        // The subscription is live at its RECEIPT.
        receipt(&mut consumer).await;
        AsyncStomp { producer, consumer }
    }

    fn send(
        destination: &str,
        body: Vec<u8>,
        receipt: bool,
    ) -> async_stomp::Message<async_stomp::ToServer> {
        let headers = receipt.then(|| vec![("receipt".to_owned(), "published".to_owned())]);
        async_stomp::ToServer::Send {
            destination: destination.to_owned(),
            transaction: None,
            headers,
            body: Some(body),
        }
        .into()
    }
}

async fn receipt(transport: &mut async_stomp::client::ClientTransport) {
    loop {
        let frame = transport.next().await.unwrap().unwrap();
        if matches!(frame.content, async_stomp::FromServer::Receipt { .. }) {
            return;
        }
    }
}

impl Clients for AsyncStomp {
    async fn publish(&mut self, count: usize) {
        for _ in 0..count {
            let send = AsyncStomp::send(NOBODY, stamped_at_zero().into(), false);
            self.producer.send(send).await.unwrap();
        }
        let last = AsyncStomp::send(NOBODY, stamped_at_zero().into(), true);
        self.producer.send(last).await.unwrap();
        receipt(&mut self.producer).await;
    }

    async fn consume(&mut self, count: usize) {
        let mut received = 0;
        while received < count {
            let frame = self.consumer.next().await.unwrap().unwrap();
            if let async_stomp::FromServer::Message { .. } = frame.content {
                received += 1;
            }
        }
    }

    async fn publish_consume(&mut self, mut pacer: Pacer, base: Instant) -> Vec<Duration> {
        let count = pacer.count;
        let producer = &mut self.producer;
        let consumer = &mut self.consumer;
        let publish = async {
            while let Some(burst) = pacer.burst().await {
                for _ in 0..burst {
                    let send = AsyncStomp::send(TOPIC, stamped(base), false);
                    producer.send(send).await.unwrap();
                }
            }
        };
        let consume = async {
            let mut latencies = Vec::with_capacity(count);
            while latencies.len() < count {
                let frame = consumer.next().await.unwrap().unwrap();
                if let async_stomp::FromServer::Message { body, .. } = frame.content {
                    latencies.push(latency(&body.unwrap(), base));
                }
            }
            latencies
        };
        tokio::join!(publish, consume).1
    }
}

struct Iridium {
    producer: iridium_stomp::Connection,
    consumer: iridium_stomp::Subscription,
    _consumer_connection: iridium_stomp::Connection,
}

impl Iridium {
    async fn connect(address: &str) -> Iridium {
        let connect = || {
            iridium_stomp::Connection::connect(
                address,
                "guest",
                "guest",
                iridium_stomp::Connection::NO_HEARTBEAT,
            )
        };
        let producer = connect().await.unwrap();
        let connection = connect().await.unwrap();
        let mut consumer = connection
            .subscribe(TOPIC, iridium_stomp::AckMode::Auto)
            .await
            .unwrap();
        // It does not say when the subscription is live: probe until a message comes, then
        // wait until nothing more does.
        loop {
            producer.send(TOPIC, stamped_at_zero()).await.unwrap();
            let wait = Duration::from_millis(100);
            if tokio::time::timeout(wait, consumer.next()).await.is_ok() {
                break;
            }
        }
        while tokio::time::timeout(Duration::from_millis(200), consumer.next())
            .await
            .is_ok()
        {}
        Iridium {
            producer,
            consumer,
            _consumer_connection: connection,
        }
    }
}

impl Clients for Iridium {
    async fn publish(&mut self, count: usize) {
        for _ in 0..count {
            self.producer.send(NOBODY, stamped_at_zero()).await.unwrap();
        }
        let last = iridium_stomp::Frame::new("SEND")
            .header("destination", NOBODY)
            .set_body(stamped_at_zero().as_bytes().to_vec());
        let handle = self.producer.send_frame_with_receipt(last).await.unwrap();
        handle.wait(Duration::from_secs(30)).await.unwrap();
    }

    async fn consume(&mut self, count: usize) {
        for _ in 0..count {
            self.consumer.next().await.unwrap();
        }
    }

    async fn publish_consume(&mut self, mut pacer: Pacer, base: Instant) -> Vec<Duration> {
        let count = pacer.count;
        let producer = &self.producer;
        let consumer = &mut self.consumer;
        let publish = async {
            while let Some(burst) = pacer.burst().await {
                for _ in 0..burst {
                    let body = String::from_utf8(stamped(base)).unwrap();
                    producer.send(TOPIC, body).await.unwrap();
                }
            }
        };
        let consume = async {
            let mut latencies = Vec::with_capacity(count);
            for _ in 0..count {
                let frame = consumer.next().await.unwrap();
                latencies.push(latency(&frame.body, base));
            }
            latencies
        };
        tokio::join!(publish, consume).1
    }
}

/// A bare socket, CONNECTed.
async fn bare_connect(address: &str) -> tokio::net::TcpStream {
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.set_nodelay(true).unwrap();
    socket
        .write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .await
        .unwrap();
    let mut pending = Vec::new();
    read_frames(&mut socket, &mut pending, 1, |_| {}).await;
    socket
}

/// A SEND of `body` to `destination`, encoded by hand.
fn encoded_send(destination: &str, body: &[u8], receipt: bool) -> Vec<u8> {
    let receipt = if receipt { "receipt:done\n" } else { "" };
    let mut frame = format!(
        "SEND\ndestination:{destination}\n{receipt}content-length:{}\n\n",
        body.len()
    )
    .into_bytes();
    frame.extend_from_slice(body);
    frame.push(0);
    frame
}

/// Reads until `count` whole frames have come, handing each (without its NUL) to `each`;
/// what follows the last stays in `pending`.
async fn read_frames(
    socket: &mut tokio::net::TcpStream,
    pending: &mut Vec<u8>,
    count: usize,
    mut each: impl FnMut(&[u8]),
) {
    let mut seen = 0;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let mut start = 0;
        while seen < count {
            let Some(end) = pending[start..].iter().position(|&b| b == 0) else {
                break;
            };
            each(&pending[start..start + end]);
            start += end + 1;
            seen += 1;
        }
        pending.drain(..start);
        if seen == count {
            return;
        }
        let n = socket.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the server closed");
        pending.extend_from_slice(&buffer[..n]);
    }
}

/// No client library at all: frames encoded by hand, written a batch at a time, and counted by
/// their NULs. What it measures is the server and the kernel alone, the ceiling for any client.
struct Bare {
    producer: tokio::net::TcpStream,
    consumer: tokio::net::TcpStream,
    pending: Vec<u8>,
    unheard: Vec<u8>,
}

impl Bare {
    async fn connect(address: &str) -> Bare {
        let producer = bare_connect(address).await;
        let mut consumer = bare_connect(address).await;
        consumer
            .write_all(
                format!("SUBSCRIBE\nid:0\ndestination:{TOPIC}\nreceipt:ready\n\n\0").as_bytes(),
            )
            .await
            .unwrap();
        let mut pending = Vec::new();
        read_frames(&mut consumer, &mut pending, 1, |_| {}).await;
        let mut unheard = encoded_send(NOBODY, stamped_at_zero().as_bytes(), false).repeat(BATCH);
        unheard.extend(encoded_send(NOBODY, stamped_at_zero().as_bytes(), true));
        Bare {
            producer,
            consumer,
            pending,
            unheard,
        }
    }
}

impl Clients for Bare {
    async fn publish(&mut self, count: usize) {
        assert_eq!(count, BATCH);
        self.producer.write_all(&self.unheard).await.unwrap();
        read_frames(&mut self.producer, &mut Vec::new(), 1, |_| {}).await;
    }

    async fn consume(&mut self, count: usize) {
        read_frames(&mut self.consumer, &mut self.pending, count, |_| {}).await;
    }

    async fn publish_consume(&mut self, mut pacer: Pacer, base: Instant) -> Vec<Duration> {
        let count = pacer.count;
        let producer = &mut self.producer;
        let publish = async {
            while let Some(burst) = pacer.burst().await {
                let mut frames = Vec::with_capacity(burst * (BODY + 64));
                for _ in 0..burst {
                    frames.extend(encoded_send(TOPIC, &stamped(base), false));
                }
                producer.write_all(&frames).await.unwrap();
            }
        };
        let mut latencies = Vec::with_capacity(count);
        let consume = read_frames(&mut self.consumer, &mut self.pending, count, |frame| {
            latencies.push(latency(&frame[frame.len() - BODY..], base));
        });
        tokio::join!(publish, consume);
        latencies
    }
}

/// A producer that costs next to nothing: 1000 SENDs in one write, so that the consume
/// workload measures the consumer.
struct RawProducer {
    socket: tokio::net::TcpStream,
    batch: Vec<u8>,
}

impl RawProducer {
    async fn connect(address: &str) -> RawProducer {
        RawProducer {
            socket: bare_connect(address).await,
            batch: encoded_send(TOPIC, stamped_at_zero().as_bytes(), false).repeat(BATCH),
        }
    }

    async fn send_batch(&mut self) {
        self.socket.write_all(&self.batch).await.unwrap();
    }
}

/// What one implementation measured besides criterion's throughput.
struct Figures {
    name: &'static str,
    paced: Vec<Duration>,
    one_at_a_time: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs `work` on `state` in a task of `runtime` and gives the state back with the result.
fn in_task<S, T, W>(
    runtime: &tokio::runtime::Runtime,
    state: &mut Option<S>,
    work: impl FnOnce(S) -> W,
) -> T
where
    W: Future<Output = (S, T)> + Send + 'static,
    T: Send + 'static,
    S: Send + 'static,
{
    let task = runtime.spawn(work(state.take().unwrap()));
    let (back, result) = runtime.block_on(task).unwrap();
    *state = Some(back);
    result
}

/// Criterion's throughputs, then the latency runs, for one implementation.
fn measure<C: Clients>(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &'static str,
    clients: C,
    raw: &mut Option<RawProducer>,
) -> Figures {
    let base = Instant::now();
    let mut state = Some((clients, raw.take().unwrap()));
    let mut timed = |group: &str, c: &mut Criterion, workload: Workload| {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(estimates::slug(name), |b| {
            b.iter_custom(|iterations| {
                in_task(runtime, &mut state, |(mut clients, mut raw)| async move {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        match workload {
                            Workload::Publish => clients.publish(BATCH).await,
                            Workload::Consume => {
                                tokio::join!(raw.send_batch(), clients.consume(BATCH));
                            }
                            Workload::PublishConsume => {
                                clients.publish_consume(Pacer::all(BATCH), base).await;
                            }
                        }
                    }
                    ((clients, raw), started.elapsed())
                })
            })
        });
        g.finish();
    };
    for (workload, (group, _)) in [
        Workload::Publish,
        Workload::Consume,
        Workload::PublishConsume,
    ]
    .into_iter()
    .zip(WORKLOADS)
    {
        timed(group, c, workload);
    }
    let (paced, one_at_a_time) = in_task(runtime, &mut state, |(mut clients, raw)| async move {
        let paced_count = PACED_PER_MS * PACED_FOR.as_millis() as usize;
        let mut paced = clients
            .publish_consume(Pacer::paced(paced_count, PACED_PER_MS), base)
            .await;
        let mut one_at_a_time = Vec::with_capacity(ROUND_TRIPS);
        for _ in 0..ROUND_TRIPS {
            one_at_a_time.extend(clients.publish_consume(Pacer::all(1), base).await);
        }
        paced.sort_unstable();
        one_at_a_time.sort_unstable();
        ((clients, raw), (paced, one_at_a_time))
    });
    *raw = state.map(|(_, raw)| raw);
    Figures {
        name,
        paced,
        one_at_a_time,
    }
}

#[derive(Clone, Copy)]
enum Workload {
    Publish,
    Consume,
    PublishConsume,
}

fn micros(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

/// Messages a second in `group` for `name`, from criterion's mean.
fn rate(group: &str, name: &str) -> f64 {
    estimates::mean_ns(group, name).map_or(f64::NAN, |ns| BATCH as f64 / ns * 1e9)
}

fn table(figures: &[Figures]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| client | publish msg/s | consume msg/s | publish and consume msg/s | paced p50 | paced p99 | one at a time p50 | one at a time p99 |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in figures {
        let rates: Vec<String> = WORKLOADS
            .iter()
            .map(|(group, _)| format!("{:.0}", rate(group, f.name)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            f.name,
            rates[0],
            rates[1],
            rates[2],
            micros(percentile(&f.paced, 0.50)),
            micros(percentile(&f.paced, 0.99)),
            micros(percentile(&f.one_at_a_time, 0.50)),
            micros(percentile(&f.one_at_a_time, 0.99)),
        );
    }
    let _ = writeln!(md);
    let (ours, others) = figures.split_first().unwrap();
    for (group, title) in WORKLOADS {
        let best = others
            .iter()
            .filter(|p| p.name != BARE)
            .map(|p| (rate(group, p.name), p.name))
            .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
        let _ = writeln!(
            md,
            "{title}: {} {:.1}x the faster peer ({})",
            ours.name,
            rate(group, ours.name) / best.0,
            best.1
        );
    }
    md
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    // The broker on a runtime of its own, as a separate server process would be.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .enable_all()
        .build()
        .unwrap();
    let (_server, address) = server_runtime.block_on(async {
        let server = Server::builder().start();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(server.serve_tcp(listener));
        (server, address)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("clients")
        .enable_all()
        .build()
        .unwrap();
    let mut raw = Some(runtime.block_on(RawProducer::connect(&address)));
    let ours = runtime.block_on(Ours::connect(&address));
    let mut figures = vec![measure(&mut c, &runtime, "stomp-tokio", ours, &mut raw)];
    let peer = runtime.block_on(AsyncStomp::connect(&address));
    figures.push(measure(
        &mut c,
        &runtime,
        "async-stomp 0.7.0",
        peer,
        &mut raw,
    ));
    let peer = runtime.block_on(Iridium::connect(&address));
    figures.push(measure(
        &mut c,
        &runtime,
        "iridium-stomp 0.6.0",
        peer,
        &mut raw,
    ));
    let bare = runtime.block_on(Bare::connect(&address));
    figures.push(measure(&mut c, &runtime, BARE, bare, &mut raw));
    let md = table(&figures);
    println!("\n{md}");
    let dir = estimates::criterion_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("clients.md"), &md);
    println!("table: {}", dir.join("clients.md").display());
}
