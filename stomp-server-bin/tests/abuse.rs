//! The `stomp-server` binary under attack and overload, each scenario bounded in count and
//! time. Every test prints what it measured as a `figure:` line (time to close, memory,
//! messages lost); `scripts/abuse` runs them in release and collects those lines.

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use stomp_blocking::Client;
use stomp_session::{AckMode, AskReceipt, ClientConfig, ClientEvent, Message, SendFrame};

const CONNECT: &[u8] = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0";

fn figure(attack: &str, value: impl std::fmt::Display) {
    println!("figure: {attack}: {value}");
}

fn now() -> Instant {
    Instant::now()
}

/// Reads until the server closes the socket; the time that took, from `since`.
fn time_to_close(socket: &mut TcpStream, since: Instant, limit: Duration) -> Duration {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("still open after {limit:?}")
            }
            // A reset counts as closed.
            Err(_) => return since.elapsed(),
        }
    }
}

/// Open descriptors of the server process.
fn descriptors(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .count()
}

/// Resident memory of the server process, in octets.
fn resident(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Waits until `done` holds, polling; how long it took.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn client(server: &Server, login: &str) -> Client {
    Client::connect(
        server.tcp.as_str(),
        ClientConfig::new("/").with_login(login, "pw"),
    )
    .unwrap()
}

/// Sends with a receipt and waits for it.
fn send_confirmed(client: &mut Client, send: SendFrame) {
    let receipt = client.session().send(now(), send.with_receipt()).unwrap();
    loop {
        match client.next_event(Some(Duration::from_secs(30))).unwrap() {
            Some(ClientEvent::Receipt { receipt: r, .. }) if Some(&r) == receipt.as_ref() => {
                return;
            }
            Some(ClientEvent::Message(_)) => {}
            other => panic!("expected the receipt, got {other:?}"),
        }
    }
}

fn next_message(client: &mut Client) -> Message {
    loop {
        match client.next_event(Some(Duration::from_secs(30))).unwrap() {
            Some(ClientEvent::Message(message)) => return message,
            Some(ClientEvent::Receipt { .. }) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

fn number(message: &Message) -> usize {
    let line = message.body().split(|b| *b == b'\n').next().unwrap();
    std::str::from_utf8(line).unwrap().parse().unwrap()
}

fn numbered(n: usize, size: usize) -> Vec<u8> {
    let mut body = format!("{n}\n").into_bytes();
    body.resize(size, b'x');
    body
}

#[test]
fn silent_tcp_sockets_are_closed_at_the_connect_deadline() {
    let server = Server::start(&["--connect-timeout", "1"]);
    let opened = now();
    let mut sockets: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.tcp.as_str()).unwrap())
        .collect();
    let slowest = sockets
        .iter_mut()
        .map(|s| time_to_close(s, opened, Duration::from_secs(10)))
        .max()
        .unwrap();
    figure(
        "200 silent TCP sockets, all closed after (connect timeout 1 s)",
        format!("{slowest:?}"),
    );
    assert!(slowest >= Duration::from_millis(900) && slowest < Duration::from_secs(3));
}

#[test]
fn silent_websocket_sockets_are_closed_before_and_after_the_upgrade() {
    let server = Server::start(&["--connect-timeout", "1"]);
    let address = server
        .ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // No handshake at all, and one that stops half-way.
    let opened = now();
    let mut silent = TcpStream::connect(&address).unwrap();
    let mut half = TcpStream::connect(&address).unwrap();
    half.write_all(b"GET /stomp HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let silent_closed = time_to_close(&mut silent, opened, Duration::from_secs(10));
    let half_closed = time_to_close(&mut half, opened, Duration::from_secs(10));
    figure(
        "WebSocket without handshake, closed after",
        format!("{silent_closed:?}"),
    );
    figure(
        "WebSocket with half a handshake, closed after",
        format!("{half_closed:?}"),
    );
    assert!(silent_closed < Duration::from_secs(3) && half_closed < Duration::from_secs(3));
    // Upgraded, then silent: the CONNECT deadline still counts from the accept.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let upgraded_closed = runtime.block_on(async {
        use futures_util::StreamExt;
        let opened = now();
        let (mut socket, _) = tokio_tungstenite::connect_async(server.ws.as_str())
            .await
            .unwrap();
        let mut error = String::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(10), socket.next()).await
        {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                error.push_str(&text);
            }
        }
        assert!(
            error.starts_with("ERROR\nmessage:no CONNECT within 1000 ms"),
            "{error}"
        );
        opened.elapsed()
    });
    figure(
        "WebSocket upgraded then silent, closed after",
        format!("{upgraded_closed:?}"),
    );
    assert!(upgraded_closed < Duration::from_secs(3));
}

#[test]
fn connections_past_the_cap_are_closed_at_once() {
    let server = Server::start(&["--max-connections", "5", "--connect-timeout", "30"]);
    let held: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(server.tcp.as_str()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(server.tcp.as_str()).unwrap();
    let refused = time_to_close(&mut extra, now(), Duration::from_secs(5));
    figure(
        "a connection past --max-connections 5, closed after",
        format!("{refused:?}"),
    );
    assert!(refused < Duration::from_secs(1));
    // One leaves: there is room again.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let mut accepted = TcpStream::connect(server.tcp.as_str()).unwrap();
    accepted.write_all(CONNECT).unwrap();
    accepted
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = [0u8; 9];
    accepted.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"CONNECTED");
}

/// Publishes `count` numbered messages of `size` octets to `queue`, confirmed by a receipt.
fn publish_backlog(server: &Server, queue: &str, count: usize, size: usize) {
    let mut producer = client(server, "producer");
    for n in 0..count {
        producer
            .session()
            .send(now(), SendFrame::new(queue, numbered(n, size)))
            .unwrap();
        if n % 100 == 0 {
            producer.flush().unwrap();
        }
    }
    send_confirmed(&mut producer, SendFrame::new("/topic/done", "x"));
}

#[test]
fn a_queue_backlog_drains_to_an_auto_ack_consumer_exactly_once() {
    let server = Server::start(&[]);
    publish_backlog(&server, "/queue/backlog", 3000, 20 * 1024);
    let mut consumer = client(&server, "consumer");
    consumer
        .session()
        .subscribe(now(), "/queue/backlog", AckMode::Auto, AskReceipt::No)
        .unwrap();
    let mut seen = HashSet::new();
    for _ in 0..3000 {
        assert!(
            seen.insert(number(&next_message(&mut consumer))),
            "delivered twice"
        );
    }
    // Nothing more comes, and the consumer is still connected.
    send_confirmed(&mut consumer, SendFrame::new("/topic/ping", "x"));
    figure(
        "3000 x 20 KiB queue backlog to an auto-ack consumer, messages lost",
        3000 - seen.len(),
    );
    assert_eq!(seen.len(), 3000);
}

#[test]
fn a_queue_backlog_drains_to_a_client_individual_consumer_exactly_once() {
    let server = Server::start(&[]);
    publish_backlog(&server, "/queue/backlog", 3000, 20 * 1024);
    let mut consumer = client(&server, "consumer");
    consumer
        .session()
        .subscribe(
            now(),
            "/queue/backlog",
            AckMode::ClientIndividual,
            AskReceipt::No,
        )
        .unwrap();
    let mut seen = HashSet::new();
    let mut deliveries = 0;
    while seen.len() < 3000 {
        let message = next_message(&mut consumer);
        deliveries += 1;
        seen.insert(number(&message));
        consumer
            .session()
            .ack(now(), &message, None, AskReceipt::No)
            .unwrap();
    }
    send_confirmed(&mut consumer, SendFrame::new("/topic/ping", "x"));
    figure(
        "3000 x 20 KiB queue backlog to a client-individual consumer, deliveries for 3000 messages",
        deliveries,
    );
    assert_eq!(deliveries, 3000);
}

#[test]
fn a_consumer_killed_mid_window_has_its_messages_redelivered() {
    let server = Server::start(&[]);
    publish_backlog(&server, "/queue/jobs", 50, 100);
    let mut doomed = client(&server, "doomed");
    doomed
        .session()
        .subscribe_with_headers(
            now(),
            "/queue/jobs",
            AckMode::ClientIndividual,
            &[("prefetch-count", "10")],
            AskReceipt::No,
        )
        .unwrap();
    let held: Vec<usize> = (0..10)
        .map(|_| number(&next_message(&mut doomed)))
        .collect();
    assert_eq!(held, (0..10).collect::<Vec<_>>());
    // Killed: its socket is gone. Once the server has let go of it too, what it held is back
    // at the head of the queue.
    let before = descriptors(&server);
    drop(doomed);
    wait_until(Duration::from_secs(10), || descriptors(&server) < before);
    let mut heir = client(&server, "heir");
    heir.session()
        .subscribe(now(), "/queue/jobs", AckMode::Auto, AskReceipt::No)
        .unwrap();
    let got: Vec<Message> = (0..50).map(|_| next_message(&mut heir)).collect();
    assert_eq!(
        got.iter().map(number).collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    let redelivered = got
        .iter()
        .filter(|m| m.frame().header("redelivered").as_deref() == Some("true"))
        .count();
    figure(
        "a client-ack consumer killed holding 10, redelivered",
        redelivered,
    );
    assert_eq!(redelivered, 10);
}

#[test]
fn memory_stays_under_budget_during_a_queue_flood() {
    let server = Server::start(&[
        "--max-queue-bytes",
        "16777216",
        "--max-total-queue-bytes",
        "33554432",
    ]);
    const COUNT: usize = 60_000;
    let sent = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (address, sent) = (server.tcp.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut socket = TcpStream::connect(address).unwrap();
            socket.write_all(CONNECT).unwrap();
            let body = vec![b'x'; 1024];
            for n in 0..COUNT {
                let mut frame = format!("SEND\ndestination:/queue/flood\nn:{n}\n\n").into_bytes();
                frame.extend_from_slice(&body);
                frame.push(0);
                if socket.write_all(&frame).is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            // Every message was taken once this RECEIPT comes.
            socket
                .write_all(b"SEND\ndestination:/topic/x\nreceipt:end\n\n\0")
                .unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("receipt-id:end") {
                let n = socket.read(&mut buf).unwrap();
                assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
                seen.extend_from_slice(&buf[..n]);
            }
        })
    };
    let baseline = resident(&server);
    let mut peak = baseline;
    // The publisher is flow-controlled: it stops making progress, and memory stays bounded.
    let mut last = 0;
    let mut still = 0;
    let start = now();
    while still < 10 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(resident(&server));
        let now_sent = sent.load(Ordering::Relaxed);
        still = if now_sent == last { still + 1 } else { 0 };
        last = now_sent;
    }
    let stalled_at = sent.load(Ordering::Relaxed);
    figure(
        "queue flood of 1 KiB messages, publisher held at message",
        stalled_at,
    );
    figure(
        "queue flood, server memory at peak (queue limit 16 MiB)",
        format!("{} MB", peak / 1_000_000),
    );
    assert!(stalled_at < COUNT, "the publisher was never held back");
    assert!(
        peak < baseline + 80_000_000,
        "peak {peak}, baseline {baseline}"
    );
    // A consumer drains everything; the publisher goes on; nothing is lost.
    let mut consumer = client(&server, "consumer");
    consumer
        .session()
        .subscribe(now(), "/queue/flood", AckMode::Auto, AskReceipt::No)
        .unwrap();
    let mut seen = vec![false; COUNT];
    for _ in 0..COUNT {
        let message = next_message(&mut consumer);
        let n: usize = message.frame().header("n").unwrap().parse().unwrap();
        assert!(!seen[n], "message {n} twice");
        seen[n] = true;
        if n % 1000 == 0 {
            peak = peak.max(resident(&server));
        }
    }
    producer.join().unwrap();
    figure(
        "queue flood, messages lost",
        seen.iter().filter(|s| !**s).count(),
    );
    assert!(seen.iter().all(|s| *s));
}

/// A client that subscribes to `/topic/flood` and then never reads.
fn stalled_subscriber(server: &Server, heart_beat: &str) -> TcpStream {
    let mut socket = TcpStream::connect(server.tcp.as_str()).unwrap();
    let connect = format!(
        "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:{heart_beat}\n\n\0\
         SUBSCRIBE\nid:0\ndestination:/topic/flood\nreceipt:ready\n\n\0"
    );
    socket.write_all(connect.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("receipt-id:ready") {
        let n = socket.read(&mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
    }
    socket
}

/// Publishes 400 x 64 KiB to `/topic/flood`; the producer is never held up.
fn flood_topic(server: &Server) {
    let mut producer = client(server, "producer");
    let body = vec![b'x'; 64 * 1024];
    for _ in 0..400 {
        producer
            .session()
            .send(now(), SendFrame::new("/topic/flood", body.clone()))
            .unwrap();
        producer.flush().unwrap();
    }
    send_confirmed(&mut producer, SendFrame::new("/topic/other", "x"));
}

#[test]
fn a_stalled_reader_is_closed_within_the_send_timeout() {
    // Limits high enough that only the send timeout can close it.
    let server = Server::start(&[
        "--send-timeout",
        "2",
        "--max-outbound-bytes",
        "1073741824",
        "--max-outbound",
        "100000",
    ]);
    let stalled = stalled_subscriber(&server, "0,0");
    let before = descriptors(&server);
    flood_topic(&server);
    let flooded = now();
    let closed = wait_until(Duration::from_secs(20), || descriptors(&server) < before);
    figure(
        "a subscriber that stopped reading, closed after (send timeout 2 s)",
        format!("{:?}", flooded.elapsed()),
    );
    assert!(closed <= Duration::from_secs(6), "{closed:?}");
    drop(stalled);
}

#[test]
fn heart_beats_close_a_silent_reader_even_while_a_write_is_blocked() {
    let server = Server::start(&[
        "--send-timeout",
        "60",
        "--max-outbound-bytes",
        "1073741824",
        "--max-outbound",
        "100000",
        "--heart-beat",
        "1000,1000",
    ]);
    // It promises a heart-beat a second and then neither reads nor sends.
    let stalled = stalled_subscriber(&server, "1000,1000");
    let before = descriptors(&server);
    let subscribed = now();
    flood_topic(&server);
    wait_until(Duration::from_secs(20), || descriptors(&server) < before);
    let closed = subscribed.elapsed();
    figure(
        "a silent subscriber behind a blocked write, closed after (heart-beat 1 s x 2)",
        format!("{closed:?}"),
    );
    assert!(closed < Duration::from_secs(8), "{closed:?}");
    drop(stalled);
}

#[test]
fn routing_stays_fast_with_100k_subscriptions_and_long_destinations() {
    let server = Server::start(&[]);
    // One client holds 100,000 subscriptions, 200 of them patterns full of `**`.
    let mut hog = TcpStream::connect(server.tcp.as_str()).unwrap();
    hog.write_all(CONNECT).unwrap();
    let mut frames = Vec::new();
    // 99,799 literal destinations, 200 patterns and one more: 100,000.
    for n in 0..99_799 {
        frames.extend_from_slice(
            format!("SUBSCRIBE\nid:{n}\ndestination:/topic/t{n}\n\n\0").as_bytes(),
        );
    }
    for n in 0..200 {
        let pattern = format!("/topic{}/x{n}", "/**/a".repeat(20));
        frames.extend_from_slice(
            format!("SUBSCRIBE\nid:p{n}\ndestination:{pattern}\n\n\0").as_bytes(),
        );
    }
    frames.extend_from_slice(b"SUBSCRIBE\nid:last\ndestination:/topic/last\nreceipt:all\n\n\0");
    let reader = {
        let mut hog = hog.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("receipt-id:all") {
                let n = hog.read(&mut buf).unwrap();
                assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
                seen.extend_from_slice(&buf[..n]);
            }
        })
    };
    hog.write_all(&frames).unwrap();
    reader.join().unwrap();
    // Another client's SEND and RECEIPT round trips, to plain destinations and to ones at the
    // length and segment limits that the patterns must walk.
    let mut other = client(&server, "other");
    let longest = format!("/topic/{}", "a/".repeat(56)) + &"a".repeat(1024 - 7 - 112);
    assert!(longest.len() == 1024 && longest.split('/').count() == 59);
    let mut slowest = Duration::ZERO;
    for n in 0..200 {
        let destination = if n % 2 == 0 {
            "/topic/elsewhere"
        } else {
            &longest
        };
        let start = now();
        send_confirmed(&mut other, SendFrame::new(destination, "ping"));
        slowest = slowest.max(start.elapsed());
    }
    figure(
        "SEND+RECEIPT round trip beside 100k subscriptions and 200 ** patterns, slowest of 200",
        format!("{slowest:?}"),
    );
    assert!(slowest < Duration::from_millis(100), "{slowest:?}");
    hog.shutdown(Shutdown::Both).unwrap();
}

#[test]
fn user_destinations_and_patterns_are_isolated() {
    let server = Server::start(&[]);
    let mut alice = client(&server, "alice");
    let mut eve = client(&server, "eve");
    alice
        .session()
        .subscribe(
            now(),
            "/user/queue/responses",
            AckMode::Auto,
            AskReceipt::Yes,
        )
        .unwrap();
    eve.session()
        .subscribe(now(), "/topic/**", AckMode::Auto, AskReceipt::No)
        .unwrap();
    send_confirmed(&mut eve, SendFrame::new("/topic/ready", "x"));
    // Alice's chat request answers her alone.
    let request =
        r#"{"tid":7,"method":"/chat/sendMessage","params":{"roomId":"r","content":"hi"}}"#;
    alice
        .session()
        .send(now(), SendFrame::new("/app/chat-api", request))
        .unwrap();
    let response = next_message(&mut alice);
    assert!(String::from_utf8_lossy(response.body()).contains(r#""type":"RESPONSE""#));
    // Eve can neither forge a response into Alice's destination nor read user destinations.
    eve.session()
        .send(now(), SendFrame::new("/user/queue/responses", "forged"))
        .unwrap();
    let events = eve.run_for(Duration::from_secs(2)).unwrap();
    let refused = events.iter().any(|e| {
        matches!(e, ClientEvent::Closed { reason: stomp_session::CloseReason::ErrorFrame(Some(m)), .. }
            if m == "clients may not send to user destinations: /user/queue/responses")
    });
    assert!(refused, "{events:?}");
    // Her pattern sees topics, never the forged message nor Alice's response.
    let leaked = events.iter().any(|e| match e {
        ClientEvent::Message(m) => {
            let body = String::from_utf8_lossy(m.body());
            body.contains("forged") || body.contains("RESPONSE")
        }
        _ => false,
    });
    assert!(!leaked, "{events:?}");
    let mut spy = client(&server, "spy");
    spy.session()
        .subscribe(now(), "/user/**", AckMode::Auto, AskReceipt::Yes)
        .unwrap();
    let events = spy.run_for(Duration::from_secs(2)).unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ClientEvent::Error(_))),
        "{events:?}"
    );
    figure(
        "a forged /user/ SEND and a /user/** subscription, refused",
        "2 of 2",
    );
}

#[test]
fn failed_logins_are_slowed_down() {
    let server = Server::start(&["--login", "admin:s3cret", "--login-failure-delay", "200"]);
    let start = now();
    for n in 0..5 {
        let guess = ClientConfig::new("/").with_login("admin", format!("guess{n}"));
        assert!(Client::connect(server.tcp.as_str(), guess).is_err());
    }
    let elapsed = start.elapsed();
    figure(
        "5 wrong passcodes in sequence (login failure delay 200 ms), took",
        format!("{elapsed:?}"),
    );
    assert!(elapsed >= Duration::from_millis(1000), "{elapsed:?}");
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut server = Server::start(&[]);
    let mut alice = client(&server, "alice");
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let events = alice.run_for(Duration::from_secs(2)).unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ClientEvent::Closed { reason: stomp_session::CloseReason::ErrorFrame(Some(m)), .. } if m == "server shutting down")),
        "{events:?}"
    );
}

#[test]
fn bad_flags_exit_with_status_2_and_say_why() {
    for (flag, value) in [
        ("--heart-beat-margin", "NaN"),
        ("--heart-beat-margin", "-1"),
        ("--heart-beat-margin", "0.5"),
        ("--login", "user"),
        ("--login", "user:"),
        ("--max-connections", "0"),
        ("--max-connections", "-5"),
        ("--send-timeout", "0"),
    ] {
        // Written both ways: `--flag=value` and `--flag value`.
        for args in [
            vec![format!("{flag}={value}")],
            vec![flag.into(), value.into()],
        ] {
            let output = Command::new(env!("CARGO_BIN_EXE_stomp-server"))
                .args(["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(flag), "{args:?}: {stderr}");
            assert!(
                stderr.contains("must be"),
                "{args:?}: the message says what is expected: {stderr}"
            );
        }
    }
}

#[test]
fn a_websocket_message_over_the_limits_gets_an_error() {
    let server = Server::start(&["--max-body", "1000", "--max-head", "1000"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message as Ws;
        let (mut socket, _) = tokio_tungstenite::connect_async(server.ws.as_str())
            .await
            .unwrap();
        socket
            .send(Ws::text("CONNECT\naccept-version:1.2\nhost:/\n\n\0"))
            .await
            .unwrap();
        let big = format!("SEND\ndestination:/topic/x\n\n{}\0", "x".repeat(10_000));
        let _ = socket.send(Ws::text(big)).await;
        let mut got = String::new();
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(5), socket.next()).await
        {
            if let Ws::Text(text) = message {
                got.push_str(&text);
            }
        }
        assert!(got.contains("ERROR\nmessage:"), "{got}");
        assert!(got.contains("Message too long"), "{got}");
    });
}

/// CPU time the process has used, from /proc (user and system, in clock ticks).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_and_logs_little() {
    // A hard limit of 64 descriptors, so the server cannot raise it: clients beyond it make
    // accept fail with EMFILE.
    let mut server =
        Server::start_logged(&["prlimit", "--nofile=64:64"], &["--connect-timeout", "30"]);
    let tcp = server.tcp.clone();
    let stderr = server.child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut all);
        all
    });
    let pid = server.child.id();
    // 100 silent clients: past about 55 of them, accepting fails.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(tcp.as_str()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(pid) - before;
    // Clock ticks are 1/100 s: 3 s of a core would be 300.
    figure(
        "accept failing for want of descriptors, server CPU over 3 s",
        format!("{}%", used * 100 / 300),
    );
    assert!(used < 30, "{used} ticks in 3 s");
    // Once descriptors free up, new clients are served again.
    drop(held);
    std::thread::sleep(Duration::from_millis(1500));
    let mut fresh = TcpStream::connect(tcp.as_str()).unwrap();
    fresh.write_all(CONNECT).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = [0u8; 9];
    fresh.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"CONNECTED");
    let _ = server.child.kill();
    let _ = server.child.wait();
    // About 5 s of failing accepts: a warning a second at most, each with its count.
    let log = logged.join().unwrap();
    let warnings = log.lines().filter(|l| l.contains("accepting tcp")).count();
    figure(
        "accept failing for want of descriptors, warnings logged in 5 s",
        warnings,
    );
    assert!((1..=8).contains(&warnings), "{log}");
}

/// A counter of the server's `/metrics` page, served on its WebSocket port (`--public-metrics`).
fn metric(server: &Server, name: &str) -> u64 {
    common::counter(&common::authority(&server.ws), name)
}

/// Before CONNECT, a SEND is refused as soon as its command line is read: ten clients each
/// sending a SEND head and then 15 MiB of body get an ERROR naming the rule and are closed,
/// having been read little past one head (64 KiB, and what one read takes), and the server's
/// memory barely moves.
#[test]
fn a_frame_before_connect_is_refused_at_its_command_line_and_its_body_is_not_read() {
    const BODY: usize = 15 * 1024 * 1024;
    let server = Server::start(&["--public-metrics"]);
    // A first client, so that the server's own start-up allocations are behind us.
    drop(client(&server, "warm"));
    let (memory, read) = (
        resident(&server),
        metric(&server, "stomp_received_bytes_total"),
    );
    let attackers: Vec<_> = (0..10)
        .map(|_| {
            let address = server.tcp.clone();
            std::thread::spawn(move || {
                let mut socket = TcpStream::connect(address).unwrap();
                socket
                    .write_all(b"SEND\ndestination:/queue/big\ncontent-length:15728640\n\n")
                    .unwrap();
                // The body, until the server closes: what it did not read stays in the
                // sockets' buffers, and then the writes fail.
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < BODY && socket.write_all(&chunk).is_ok() {
                    sent += chunk.len();
                }
                let _ = socket.shutdown(Shutdown::Write);
                socket
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut answer = Vec::new();
                let _ = socket.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    for attacker in attackers {
        let answer = attacker.join().unwrap();
        assert!(
            answer.starts_with(
                "ERROR\nmessage:expected CONNECT or STOMP as the first frame, got SEND\n"
            ),
            "{answer:?}"
        );
    }
    let read_each = (metric(&server, "stomp_received_bytes_total") - read) / 10;
    let grown = resident(&server).saturating_sub(memory);
    figure(
        "SEND of 15 MiB before CONNECT, octets read per connection",
        read_each,
    );
    figure(
        "SEND of 15 MiB before CONNECT x10, memory grown",
        format!("{} KB", grown / 1024),
    );
    assert!(read_each < 160 * 1024, "{read_each} octets read of each");
    assert!(grown < 8 * 1024 * 1024, "{grown} octets more resident");
    // And the next client is served at once.
    let mut next = client(&server, "next");
    send_confirmed(&mut next, SendFrame::new("/queue/after", "ok"));
}

/// The same over WebSocket: ten clients each upgrade, then send one WebSocket message holding
/// a SEND head and 15 MiB of body, before any CONNECT. The server reads little past one head of
/// each (it cannot judge a message before it is whole, so it reads no more of it): they are
/// closed at the CONNECT deadline, and the server's memory barely moves.
#[test]
fn a_large_first_websocket_message_is_not_read_before_connect() {
    const BODY: usize = 15 * 1024 * 1024;
    let server = Server::start(&["--connect-timeout", "2"]);
    drop(client(&server, "warm"));
    let address = server
        .ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let memory = resident(&server);
    let opened = now();
    let attackers: Vec<_> = (0..10)
        .map(|_| {
            let address = address.clone();
            std::thread::spawn(move || {
                let mut socket = TcpStream::connect(&address).unwrap();
                let upgrade = "GET /stomp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
                socket.write_all(upgrade.as_bytes()).unwrap();
                let mut response = [0u8; 1024];
                let n = socket.read(&mut response).unwrap();
                assert!(response[..n].starts_with(b"HTTP/1.1 101"));
                // One binary frame, masked with a zero key (so the payload is as written).
                let head = b"SEND\ndestination:/queue/big\n\n";
                let length = (head.len() + BODY) as u64;
                let mut frame = vec![0x82, 0x80 | 127];
                frame.extend_from_slice(&length.to_be_bytes());
                frame.extend_from_slice(&[0, 0, 0, 0]);
                frame.extend_from_slice(head);
                socket.write_all(&frame).unwrap();
                socket
                    .set_write_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < BODY && socket.write_all(&chunk).is_ok() {
                    sent += chunk.len();
                }
                time_to_close(&mut socket, opened, Duration::from_secs(10))
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for attacker in attackers {
        slowest = slowest.max(attacker.join().unwrap());
    }
    let grown = resident(&server).saturating_sub(memory);
    figure(
        "WebSocket message of 15 MiB before CONNECT x10, closed after",
        format!("{slowest:.2?}"),
    );
    figure(
        "WebSocket message of 15 MiB before CONNECT x10, memory grown",
        format!("{} KB", grown / 1024),
    );
    assert!(slowest < Duration::from_secs(5), "{slowest:?}");
    assert!(grown < 8 * 1024 * 1024, "{grown} octets more resident");
    let mut next = client(&server, "next");
    send_confirmed(&mut next, SendFrame::new("/queue/after", "ok"));
}
