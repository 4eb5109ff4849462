//! What the binary's public HTTP port shows a browser: `/metrics` only where the operator puts
//! it, and STOMP over WebSocket only to its own pages (and to programs, which send no
//! `Origin`) unless told otherwise.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Server, authority, counter};

/// The status of `GET path` on `address`, with further header lines.
fn status(address: &str, path: &str, headers: &str) -> u16 {
    let mut socket = TcpStream::connect(address).unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                       Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n";

#[test]
fn metrics_are_where_configured_and_nowhere_else() {
    let plain = Server::start(&[]);
    assert_eq!(
        status(&authority(&plain.ws), "/metrics", ""),
        404,
        "not on the public port"
    );
    assert!(plain.metrics.is_none());

    let private = Server::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = private
        .metrics
        .clone()
        .expect("a metrics address on the start line");
    assert_eq!(status(&authority(&metrics), "/metrics", ""), 200);
    assert_eq!(status(&authority(&private.ws), "/metrics", ""), 404);

    let public = Server::start(&["--public-metrics"]);
    assert_eq!(status(&authority(&public.ws), "/metrics", ""), 200);
}

#[test]
fn a_page_of_another_origin_is_refused_and_the_servers_own_is_not() {
    let server = Server::start(&["--public-metrics"]);
    let address = authority(&server.ws);
    let own = format!("{UPGRADE}Origin: http://{address}\r\n");
    let foreign = format!("{UPGRADE}Origin: http://evil.example\r\n");
    assert_eq!(status(&address, "/stomp", &own), 101);
    assert_eq!(
        status(&address, "/stomp", UPGRADE),
        101,
        "a program sends no Origin"
    );
    assert_eq!(status(&address, "/stomp", &foreign), 403);
    assert_eq!(counter(&address, "stomp_origins_refused_total"), 1);

    let listed = Server::start(&["--allowed-origin", "https://*.example.com"]);
    let address = authority(&listed.ws);
    let sub = format!("{UPGRADE}Origin: https://app.example.com\r\n");
    assert_eq!(status(&address, "/stomp", &sub), 101);
    assert_eq!(status(&address, "/stomp", &foreign), 403);

    let strict = Server::start(&["--refuse-missing-origin"]);
    assert_eq!(status(&authority(&strict.ws), "/stomp", UPGRADE), 403);

    let open = Server::start(&["--allow-any-origin"]);
    assert_eq!(status(&authority(&open.ws), "/stomp", &foreign), 101);
}

/// Connects from `source` (a loopback address of its own) over TCP; the first frame the
/// server sends after a CONNECT as `login`.
async fn first_frame(server: &str, source: &str, login: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server.parse().unwrap()).await.unwrap();
    let connect = format!("CONNECT\naccept-version:1.2\nhost:/\nlogin:{login}\npasscode:x\n\n\0");
    let _ = stream.write_all(connect.as_bytes()).await;
    let mut got = Vec::new();
    let mut buffer = [0u8; 1024];
    while !got.contains(&0) {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer));
        match read.await.unwrap() {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
        }
    }
    (stream, String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn one_address_and_one_user_get_their_bounds_while_others_still_connect() {
    let server = Server::start(&[
        "--max-connections-per-peer",
        "3",
        "--max-sessions-per-user",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut held = Vec::new();
    for n in 0..3 {
        let (stream, frame) = first_frame(&server.tcp, "127.0.0.1", &format!("user{n}")).await;
        assert!(frame.starts_with("CONNECTED\n"), "{frame}");
        held.push(stream);
    }
    let (_, frame) = first_frame(&server.tcp, "127.0.0.1", "user9").await;
    assert!(frame.starts_with("ERROR\n"), "{frame}");
    assert!(
        frame.contains("too many connections from 127.0.0.1: at most 3 per address"),
        "{frame}"
    );
    // Another address still gets in; there one user may hold two sessions, not three.
    for _ in 0..2 {
        let (stream, frame) = first_frame(&server.tcp, "127.0.0.2", "alice").await;
        assert!(frame.starts_with("CONNECTED\n"), "{frame}");
        held.push(stream);
    }
    let (_, frame) = first_frame(&server.tcp, "127.0.0.2", "alice").await;
    assert!(
        frame.contains("too many sessions for user alice: at most 2"),
        "{frame}"
    );
    let (_, frame) = first_frame(&server.tcp, "127.0.0.3", "bob").await;
    assert!(frame.starts_with("CONNECTED\n"), "{frame}");
    let metrics = authority(server.metrics.as_deref().unwrap());
    assert_eq!(counter(&metrics, "stomp_peers_refused_total"), 1);
    assert_eq!(counter(&metrics, "stomp_user_limit_refused_total"), 1);
}
