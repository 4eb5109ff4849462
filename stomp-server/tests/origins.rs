//! The WebSocket endpoint checks every upgrade's `Origin`: the server's own pages (the origin's
//! host and port equal to `Host`) and clients without an `Origin` by default; listed origins,
//! exact or any subdomain; none of it with the check off; a refusal is HTTP 403 saying why,
//! counted in the figures (`stomp-server-bin/tests/edge.rs` reads them in `/metrics`).

use std::net::SocketAddr;

use stomp_server::{AllowedOrigins, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server with `origins`, serving its router (`/stomp`) over HTTP.
async fn serve(origins: AllowedOrigins) -> (Server, SocketAddr) {
    let server = Server::builder().allowed_origins(origins).start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(server.serve_http(listener, server.router()));
    (server, address)
}

/// Sends a WebSocket upgrade to `/stomp` with `Host: host` and `origin`; the status and body.
async fn upgrade(address: SocketAddr, host: &str, origin: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /stomp HTTP/1.1\r\nHost: {host}\r\n{origin}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // The head, then for a refusal its body (Content-Length long).
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    let (status, body) = loop {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer));
        let n = read.await.unwrap().unwrap();
        assert!(
            n > 0,
            "closed early: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let status: u16 = head[9..12].parse().unwrap();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if status == 101 || body.len() >= length {
            break (status, body.to_owned());
        }
    };
    (status, body)
}

async fn refused_count(server: &Server) -> u64 {
    server.handle().stats().await.unwrap().origins_refused
}

#[tokio::test]
async fn by_default_the_servers_own_pages_and_programs_without_origin_may_upgrade() {
    let (server, address) = serve(AllowedOrigins::same_origin()).await;
    let host = address.to_string();
    let own = format!("http://{host}");
    assert_eq!(upgrade(address, &host, Some(&own)).await.0, 101);
    assert_eq!(
        upgrade(address, &host, None).await.0,
        101,
        "no Origin: not a browser"
    );
    let (status, body) = upgrade(address, &host, Some("http://evil.example")).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("origin http://evil.example may not"),
        "{body}"
    );
    // Same host, another port: another origin.
    let other_port = format!("http://127.0.0.1:{}", address.port() + 1);
    assert_eq!(upgrade(address, &host, Some(&other_port)).await.0, 403);
    assert_eq!(upgrade(address, &host, Some("null")).await.0, 403);
    assert_eq!(refused_count(&server).await, 3);
}

#[tokio::test]
async fn listed_origins_exact_or_any_subdomain_may_upgrade_and_missing_ones_can_be_refused() {
    let origins = AllowedOrigins::same_origin()
        .allow("https://app.example.com")
        .allow("https://*.example.org")
        .refuse_missing();
    let (_server, address) = serve(origins).await;
    let host = "stomp.example.net";
    for (origin, status) in [
        ("https://app.example.com", 101),
        ("https://app.example.com:443", 101),
        ("http://app.example.com", 403),
        ("https://other.example.com", 403),
        ("https://eu.example.org", 101),
        ("https://a.b.example.org", 101),
        ("https://example.org", 403),
        ("https://evilexample.org", 403),
        ("http://stomp.example.net", 101),
    ] {
        assert_eq!(
            upgrade(address, host, Some(origin)).await.0,
            status,
            "{origin}"
        );
    }
    let (status, body) = upgrade(address, host, None).await;
    assert_eq!(status, 403);
    assert!(body.contains("without an Origin"), "{body}");
}

#[tokio::test]
async fn with_the_check_off_every_origin_may_upgrade() {
    let (_server, address) = serve(AllowedOrigins::any()).await;
    let host = address.to_string();
    assert_eq!(
        upgrade(address, &host, Some("http://evil.example")).await.0,
        101
    );
}
