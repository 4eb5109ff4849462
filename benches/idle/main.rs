//! `stomp-idle`: what many idle clients cost a STOMP server, the way browsers sit on it.
//!
//! Opens `--connections` connections over WebSocket (or TCP), spread over several loopback
//! source addresses (127.0.0.2, 127.0.0.3, ...: one address has about 28k ephemeral ports);
//! each sends CONNECT with heart-beats 10000,10000 and one SUBSCRIBE to a topic, then only
//! keeps its heart-beats. Reported, from the server's `/proc/PID`: its resident memory per
//! connection, the CPU it uses while everyone is idle, and the time for one message published
//! to the topic to reach every connection (per recipient). With `--churn N`, clients instead
//! connect, subscribe and disconnect N times, and the server's memory is read along the way.
//!
//! ```text
//! cargo run --release -p stomp-benches --bin stomp-idle -- \
//!     --addr ws://127.0.0.1:15674/stomp --pid $(pidof stomp-server) --connections 19000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, ClientSession, HeartBeat, SendFrame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser, Debug)]
struct Args {
    /// The server: `ws://host:port/path` (WebSocket) or `host:port` (TCP).
    #[arg(long)]
    addr: String,
    /// The server's process, whose memory and CPU are read from /proc.
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 19_000)]
    connections: usize,
    /// Loopback source addresses to spread the connections over, from 127.0.0.2.
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Seconds the CPU at rest is measured over (at least one heart-beat period).
    #[arg(long, default_value_t = 20)]
    rest: u64,
    /// Messages broadcast to everyone, one after another.
    #[arg(long, default_value_t = 5)]
    broadcasts: usize,
    #[arg(long, default_value = "/")]
    host: String,
    /// A name for the report.
    #[arg(long, default_value = "stomp-server")]
    name: String,
    /// Instead of idle connections: this many connection cycles (CONNECT, SUBSCRIBE,
    /// DISCONNECT), for churn.
    #[arg(long)]
    churn: Option<u64>,
    /// Clients cycling at once in the churn run.
    #[arg(long, default_value_t = 32)]
    churn_clients: usize,
}

/// A value of `/proc/PID/status`, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time the process has used in user space and in the kernel, in clock ticks.
fn cpu_ticks(pid: u32) -> [u64; 2] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server runs");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    [tick(11), tick(12)]
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// One connection's transport, opened from `source`.
enum Link {
    Tcp(TcpStream),
    Ws(Box<tokio_tungstenite::WebSocketStream<TcpStream>>),
}

impl Link {
    async fn open(addr: &str, source: std::net::IpAddr) -> std::io::Result<Link> {
        let ws = addr.strip_prefix("ws://");
        let authority = ws.map_or(addr, |rest| rest.split('/').next().unwrap_or(rest));
        let server = tokio::net::lookup_host(authority)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let socket = TcpSocket::new_v4()?;
        socket.bind((source, 0).into())?;
        let stream = socket.connect(server).await?;
        stream.set_nodelay(true)?;
        if ws.is_none() {
            return Ok(Link::Tcp(stream));
        }
        let mut request = addr.into_client_request().map_err(std::io::Error::other)?;
        let protocols = "v12.stomp, v11.stomp, v10.stomp"
            .parse()
            .expect("a header value");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols);
        // The tool's own buffers stay small, so that the machine's memory is the server's.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Link::Ws(Box::new(ws)))
    }

    async fn write(&mut self, bytes: Bytes) -> std::io::Result<()> {
        match self {
            Link::Tcp(stream) => stream.write_all(&bytes).await,
            Link::Ws(ws) => {
                let message = match Utf8Bytes::try_from(bytes.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(bytes),
                };
                ws.send(message).await.map_err(std::io::Error::other)
            }
        }
    }

    /// The next bytes received; empty at the end of the stream.
    async fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Bytes> {
        match self {
            Link::Tcp(stream) => {
                buf.resize(4096, 0);
                let n = stream.read(buf).await?;
                Ok(Bytes::copy_from_slice(&buf[..n]))
            }
            Link::Ws(ws) => loop {
                return match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => Ok(Bytes::new()),
                    Some(Ok(Message::Text(text))) => Ok(Bytes::from(text)),
                    Some(Ok(Message::Binary(bytes))) => Ok(bytes),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => Err(std::io::Error::other(e)),
                };
            },
        }
    }
}

/// What every connection shares with the measuring task.
struct Shared {
    /// Connections subscribed so far.
    ready: AtomicUsize,
    /// For each broadcast, how many connections have received it.
    received: Vec<AtomicUsize>,
    /// Rung when a broadcast reached everyone.
    all_received: Notify,
    connections: usize,
}

/// Drives one session over `link` until it closes: writes what it queued, hands each event
/// to `on_event`, reads, and keeps its heart-beats.
async fn drive(
    mut link: Link,
    mut session: ClientSession,
    mut on_event: impl FnMut(ClientEvent, &mut ClientSession),
) {
    let mut buf = Vec::new();
    loop {
        while let Some(bytes) = session.poll_transmit() {
            if link.write(bytes).await.is_err() {
                return;
            }
        }
        let mut handled = false;
        while let Some(event) = session.poll_event() {
            on_event(event, &mut session);
            handled = true;
        }
        if session.is_closed() {
            return;
        }
        // Commands given by `on_event` go out before waiting.
        if handled {
            continue;
        }
        let deadline = session.poll_timeout();
        let wait = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = link.read(&mut buf) => match read {
                Ok(bytes) if bytes.is_empty() => session.handle_eof(Instant::now()),
                Ok(bytes) => session.handle_input(Instant::now(), &bytes),
                Err(_) => session.handle_eof(Instant::now()),
            },
            () = wait => session.handle_timeout(Instant::now()),
        }
    }
}

/// CONNECT with heart-beats 10000,10000, as browsers' clients do.
fn session(host: &str) -> ClientSession {
    let config = ClientConfig::new(host).with_heart_beat(HeartBeat::from_millis(10_000, 10_000));
    ClientSession::new(config, Instant::now())
}

/// One idle client: CONNECT, SUBSCRIBE with a receipt, then heart-beats and counting.
async fn idle_client(link: Link, topic: String, host: String, shared: Arc<Shared>) {
    let mut subscribed = None;
    drive(link, session(&host), |event, session| match event {
        ClientEvent::Connected { .. } => {
            let sub = session
                .subscribe(Instant::now(), &topic, AckMode::Auto, AskReceipt::Yes)
                .expect("connected");
            subscribed = sub.receipt;
        }
        ClientEvent::Receipt { receipt, .. } if Some(&receipt) == subscribed.as_ref() => {
            shared.ready.fetch_add(1, Ordering::AcqRel);
        }
        ClientEvent::Message(message) => {
            let n: usize = std::str::from_utf8(message.body())
                .ok()
                .and_then(|b| b.parse().ok())
                .unwrap_or(usize::MAX);
            if let Some(count) = shared.received.get(n) {
                if count.fetch_add(1, Ordering::AcqRel) + 1 == shared.connections {
                    shared.all_received.notify_one();
                }
            }
        }
        ClientEvent::Closed { reason, .. } => {
            eprintln!("stomp-idle: a connection closed: {reason}")
        }
        _ => {}
    })
    .await;
}

/// One churning client's cycle: CONNECT, SUBSCRIBE with a receipt, DISCONNECT with one.
async fn cycle(link: Link, topic: &str, host: &str) -> bool {
    let mut subscribed = None;
    let mut clean = false;
    drive(link, session(host), |event, session| match event {
        ClientEvent::Connected { .. } => {
            let sub = session
                .subscribe(Instant::now(), topic, AckMode::Auto, AskReceipt::Yes)
                .expect("connected");
            subscribed = sub.receipt;
        }
        ClientEvent::Receipt { receipt, .. } if Some(&receipt) == subscribed.as_ref() => {
            session.disconnect(Instant::now()).expect("connected");
        }
        ClientEvent::Closed { reason, .. } => {
            clean = matches!(reason, stomp_session::CloseReason::Disconnected);
        }
        _ => {}
    })
    .await;
    clean
}

/// Connection churn: `clients` tasks each running cycles until `cycles` are done in all;
/// the server's memory is read after a tenth of them and at the end.
async fn churn(args: &Args, cycles: u64) {
    let topic = format!("/topic/stomp-churn-{}", std::process::id());
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rss_before = status_kb(args.pid, "VmRSS:");
    let began = Instant::now();
    let tasks: Vec<_> = (0..args.churn_clients)
        .map(|i| {
            let (addr, topic, host) = (args.addr.clone(), topic.clone(), args.host.clone());
            let (done, failed) = (done.clone(), failed.clone());
            let sources = args.sources;
            tokio::spawn(async move {
                let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % sources as usize) as u8);
                while done.fetch_add(1, Ordering::AcqRel) < cycles {
                    let clean = match Link::open(&addr, source.into()).await {
                        Ok(link) => cycle(link, &topic, &host).await,
                        Err(_) => false,
                    };
                    if !clean {
                        failed.fetch_add(1, Ordering::AcqRel);
                    }
                }
            })
        })
        .collect();
    let mut rss_warm = None;
    while done.load(Ordering::Acquire) < cycles {
        if rss_warm.is_none() && done.load(Ordering::Acquire) >= cycles / 10 {
            rss_warm = Some(status_kb(args.pid, "VmRSS:"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = began.elapsed();
    // The last sessions' closes reach the server's broker task a moment after their receipts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = status_kb(args.pid, "VmRSS:");
    println!(
        "| {} | {} | churn: {} CONNECT, SUBSCRIBE, DISCONNECT cycles from {} clients | {:.0} cycles/s | {} not clean | RSS {} kB before, {} kB after a tenth, {} kB after all |",
        args.name,
        transport(&args.addr),
        cycles,
        args.churn_clients,
        cycles as f64 / elapsed.as_secs_f64(),
        failed.load(Ordering::Acquire),
        rss_before,
        rss_warm.unwrap_or(rss_before),
        rss_after,
    );
}

fn transport(addr: &str) -> &'static str {
    if addr.starts_with("ws://") {
        "WebSocket"
    } else {
        "TCP"
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("stomp-idle: cannot raise the descriptor limit: {e}");
    }
    if let Some(cycles) = args.churn {
        churn(&args, cycles).await;
        return;
    }
    let topic = format!("/topic/stomp-idle-{}", std::process::id());
    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        received: (0..args.broadcasts).map(|_| AtomicUsize::new(0)).collect(),
        all_received: Notify::new(),
        connections: args.connections,
    });
    let rss_before = status_kb(args.pid, "VmRSS:");

    // Connect everyone, a few hundred handshakes at a time.
    let opening = Arc::new(Semaphore::new(256));
    let began = Instant::now();
    for i in 0..args.connections {
        let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % args.sources as usize) as u8);
        let permit = opening.clone().acquire_owned().await.expect("open");
        let (addr, topic, host) = (args.addr.clone(), topic.clone(), args.host.clone());
        let shared = shared.clone();
        tokio::spawn(async move {
            let link = match Link::open(&addr, source.into()).await {
                Ok(link) => link,
                Err(e) => panic!("connection {i} from {source}: {e}"),
            };
            drop(permit);
            idle_client(link, topic, host, shared).await;
        });
    }
    while shared.ready.load(Ordering::Acquire) < args.connections {
        if began.elapsed() > Duration::from_secs(300) {
            panic!(
                "only {} of {} subscribed",
                shared.ready.load(Ordering::Acquire),
                args.connections
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened = began.elapsed();
    // Let the server settle (allocations freed after the handshakes) before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = status_kb(args.pid, "VmRSS:");

    // CPU at rest: everyone connected, only heart-beats.
    let ticks = clock_ticks_per_second();
    let (cpu_before, at) = (cpu_ticks(args.pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.rest)).await;
    let cpu_after = cpu_ticks(args.pid);
    // Seconds per second, user space and kernel.
    let rest = at.elapsed().as_secs_f64();
    let cpu_rest: [f64; 2] =
        std::array::from_fn(|i| (cpu_after[i] - cpu_before[i]) as f64 / ticks as f64 / rest);

    // Broadcasts: one publisher on its own connection, one message at a time, each timed
    // from its SEND until the last connection has it.
    let mut publisher = ClientSession::new(ClientConfig::new(args.host.as_str()), Instant::now());
    let source = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let mut link = Link::open(&args.addr, source.into())
        .await
        .expect("the publisher connects");
    let mut buf = Vec::new();
    while !publisher.is_connected() {
        while let Some(bytes) = publisher.poll_transmit() {
            link.write(bytes).await.expect("publisher writes");
        }
        let bytes = link.read(&mut buf).await.expect("publisher reads");
        assert!(!bytes.is_empty(), "the server closed the publisher");
        publisher.handle_input(Instant::now(), &bytes);
    }
    let mut per_recipient = Vec::new();
    // The server's own CPU time over the broadcasts: on this machine the clients share its
    // cores, so the wall time per recipient counts theirs too.
    let cpu_before = cpu_ticks(args.pid);
    for n in 0..args.broadcasts {
        let reached_all = shared.all_received.notified();
        let sent = Instant::now();
        let frame = SendFrame::new(topic.as_str(), n.to_string());
        publisher.send(sent, frame).expect("publisher sends");
        while let Some(bytes) = publisher.poll_transmit() {
            link.write(bytes).await.expect("publisher writes");
        }
        tokio::time::timeout(Duration::from_secs(60), reached_all)
            .await
            .expect("a broadcast reached everyone within a minute");
        let took = sent.elapsed();
        per_recipient.push(took.as_secs_f64() * 1e6 / args.connections as f64);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Less what it uses at rest over the pauses between broadcasts. The kernel's share holds
    // what loopback costs the sender: each segment's receive path runs in its system call.
    let pauses = Duration::from_millis(200) * args.broadcasts as u32;
    let cpu_after = cpu_ticks(args.pid);
    let [user, kernel]: [f64; 2] = std::array::from_fn(|i| {
        let spent = (cpu_after[i] - cpu_before[i]) as f64 / ticks as f64
            - cpu_rest[i] * pauses.as_secs_f64();
        spent.max(0.0) * 1e6 / (args.connections * args.broadcasts) as f64
    });
    per_recipient.sort_by(f64::total_cmp);
    let median = per_recipient[per_recipient.len() / 2];
    let best = per_recipient[0];
    let kb_per = (rss_idle.saturating_sub(rss_before)) as f64 / args.connections as f64;
    println!(
        "| {} | {} | {} idle connections (opened in {:.1} s) | {:.1} KB per connection (RSS {} -> {} kB) | {:.1}% of a core at rest | broadcast {:.2} us per recipient (best {:.2}; server CPU {:.2} us: user {:.2}, kernel {:.2}) |",
        args.name,
        transport(&args.addr),
        args.connections,
        opened.as_secs_f64(),
        kb_per,
        rss_before,
        rss_idle,
        (cpu_rest[0] + cpu_rest[1]) * 100.0,
        median,
        best,
        user + kernel,
        user,
        kernel,
    );
}
