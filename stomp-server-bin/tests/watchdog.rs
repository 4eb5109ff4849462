//! A broker task that does not come back to its loop (here a login hook that never returns,
//! the binary's `test-hooks` feature) is reported: an error in the log naming its shard and
//! what it was serving, and `stomp_shard_stalled` in `/metrics`. The other shard goes on
//! serving, and SIGTERM still ends the process within its grace period; a second signal ends
//! it at once.
#![cfg(feature = "test-hooks")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Server;

/// A server whose shard 0 will be held by the login `stuck`.
fn server(extra: &[&str]) -> (Server, mpsc::Receiver<String>) {
    let mut flags = vec!["--shards", "2", "--stall-timeout", "1", "--public-metrics"];
    flags.extend_from_slice(extra);
    let mut server = Server::start_logged(&["env", "STOMP_SERVER_STALL_LOGIN=stuck"], &flags);
    let (lines, log) = mpsc::channel();
    let stderr = server.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (server, log)
}

/// A raw client that sends `frames` and reads until `until` is in what it got.
fn exchange(server: &Server, frames: &str, until: &str, limit: Duration) -> String {
    let mut socket = TcpStream::connect(&server.tcp).unwrap();
    socket.write_all(frames.as_bytes()).unwrap();
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Holds shard 0: the first connection is dealt to it.
fn hold_shard_zero(server: &Server) -> TcpStream {
    let mut socket = TcpStream::connect(&server.tcp).unwrap();
    socket
        .write_all(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:stuck\n\n\0SUBSCRIBE\nid:0\ndestination:/topic/x\n\n\0")
        .unwrap();
    socket
}

/// The first log line containing `text`, within `limit`.
fn logged(log: &mpsc::Receiver<String>, text: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {text:?} within {limit:?}"),
        }
    }
}

fn metrics(server: &Server) -> String {
    let address = server
        .ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap();
    let mut socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    socket.write_all(request.as_bytes()).unwrap();
    let mut page = String::new();
    socket.read_to_string(&mut page).unwrap();
    page
}

fn signal(server: &Server) {
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
}

/// Waits for the process to end; how long that took.
fn ended_within(server: &mut Server, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if server.child.try_wait().unwrap().is_some() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stuck_broker_task_is_reported_the_other_shard_serves_and_sigterm_ends_the_server() {
    let (mut server, log) = server(&["--shutdown-grace", "2"]);
    let _held = hold_shard_zero(&server);
    let line = logged(&log, "broker task stalled", Duration::from_secs(5));
    assert!(line.contains("shard=0"), "{line}");
    assert!(line.contains("a client's input"), "{line}");
    // The next connection is dealt to shard 1, which serves it at once.
    let start = Instant::now();
    let got = exchange(
        &server,
        "CONNECT\naccept-version:1.2\nhost:/\n\n\0SEND\ndestination:/queue/q\nreceipt:r\n\nhi\0",
        "receipt-id:r",
        Duration::from_secs(1),
    );
    assert!(got.starts_with("CONNECTED\n"), "{got:?}");
    assert!(got.contains("RECEIPT\nreceipt-id:r\n"), "{got:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
    let page = metrics(&server);
    assert!(page.contains("\nstomp_shards_stalled 1\n"), "{page}");
    assert!(
        page.contains("\nstomp_shard_stalled{shard=\"0\"} 1\n"),
        "{page}"
    );
    assert!(page.contains("\nstomp_shard_stalls_total 1\n"), "{page}");
    signal(&server);
    let took = ended_within(&mut server, Duration::from_secs(5));
    assert!(took < Duration::from_millis(3500), "ended after {took:?}");
}

#[test]
fn a_second_signal_ends_the_server_at_once() {
    let (mut server, log) = server(&["--shutdown-grace", "60"]);
    let _held = hold_shard_zero(&server);
    logged(&log, "broker task stalled", Duration::from_secs(5));
    signal(&server);
    // The stuck shard's clients are never closed: the shutdown waits its grace period.
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.child.try_wait().unwrap().is_none());
    signal(&server);
    let took = ended_within(&mut server, Duration::from_secs(3));
    assert!(took < Duration::from_secs(1), "ended after {took:?}");
}
