//! The application path end to end, over loopback TCP: stomp-server in this process on a
//! runtime of its own, with an echo handler on `/app/echo` that answers each SEND's body to
//! its sender (`/user/queue/replies`).
//!
//! - `app_echo/pipelined`: an iteration writes 1000 SENDs (64-byte bodies) in batches of 100,
//!   and ends when the 1000 answers are back (counted by their NULs): handler round trips per
//!   second with the pipe full;
//! - `app_echo/one_at_a_time`: 100 SENDs, each once the answer to the one before is back: the
//!   latency of one round trip through the broker task, the session's worker and back.
//!
//! `cargo bench -p stomp-benches --bench app` runs it.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use stomp_server::{App, Context, Failure, Message, Payload, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Round trips per pipelined iteration, and how many are written at once.
const PIPELINED: usize = 1000;
const WINDOW: usize = 100;
/// Round trips one at a time per iteration.
const SERIAL: usize = 100;

async fn echo(_ctx: Context, message: Message) -> Result<Payload, Failure> {
    Ok(Payload::bytes(message.body().clone()))
}

/// A connected client subscribed to its answers.
async fn client(address: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(
            b"CONNECT\naccept-version:1.2\nhost:/\nlogin:bench\n\n\0\
              SUBSCRIBE\nid:0\ndestination:/user/queue/replies\nreceipt:ready\n\n\0",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buffer = vec![0; 4096];
    while !seen.windows(13).any(|w| w == b"receipt-id:re") {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    stream
}

/// Writes `count` SENDs, `window` at a time, and waits for as many answers.
async fn round_trips(stream: &mut TcpStream, count: usize, window: usize, buffer: &mut [u8]) {
    let body = [b'x'; 64];
    let mut frame = b"SEND\ndestination:/app/echo\ncontent-length:64\n\n".to_vec();
    frame.extend_from_slice(&body);
    frame.push(0);
    let batch: Vec<u8> = frame.repeat(window);
    let (mut sent, mut answered) = (0, 0);
    while answered < count {
        if sent == answered {
            let n = window.min(count - sent);
            stream.write_all(&batch[..frame.len() * n]).await.unwrap();
            sent += n;
        }
        let n = stream.read(buffer).await.unwrap();
        assert!(n > 0, "closed");
        answered += memchr_count(&buffer[..n]);
    }
}

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == 0).count()
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let address = runtime.block_on(async {
        let app = App::new().message("/app/echo", echo);
        let server = Server::builder().app(app).start();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(server.serve_tcp(listener));
        // The server lives as long as the runtime.
        std::mem::forget(server);
        address
    });
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    let mut group = criterion.benchmark_group("app_echo");
    let mut stream = runtime.block_on(client(address));
    let mut buffer = vec![0; 64 * 1024];
    for (name, count, window) in [
        ("pipelined", PIPELINED, WINDOW),
        ("one_at_a_time", SERIAL, 1),
    ] {
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        round_trips(&mut stream, count, window, &mut buffer).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
    criterion.final_summary();
}
