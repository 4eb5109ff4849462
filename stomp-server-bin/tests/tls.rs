//! The `stomp-server` binary with `--tls-cert` and `--tls-key`: STOMP over TLS on the TCP
//! listener and `wss://` on the HTTP one, reached by stomp-tokio with a certificate made here;
//! a silent TLS socket closed at the CONNECT deadline; flags that do not go together refused.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;
use stomp_tokio::rustls::RootCertStore;
use stomp_tokio::rustls::pki_types::CertificateDer;
use stomp_tokio::{AckMode, Client, SendFrame};

/// A certificate for `localhost`: its PEM files, in a directory of the test's own that goes
/// when this does, and the roots that trust it.
struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    roots: RootCertStore,
    _dir: tempfile::TempDir,
}

fn certificate() -> Certificate {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("stomp-server-tls-")
        .tempdir()
        .unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(made.cert.der().to_vec()))
        .unwrap();
    Certificate {
        cert,
        key,
        roots,
        _dir: dir,
    }
}

fn port(address: &str) -> u16 {
    let (_, port) = address.rsplit_once(':').unwrap();
    port.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap()
}

#[test]
fn the_binary_serves_stomp_over_tls_and_secure_websocket() {
    let certificate = certificate();
    let server = Server::start(&[
        "--tls-cert",
        certificate.cert.to_str().unwrap(),
        "--tls-key",
        certificate.key.to_str().unwrap(),
    ]);
    assert!(server.ws.starts_with("wss://"), "{}", server.ws);
    let ws_port = port(server.ws.trim_end_matches("/stomp"));
    let endpoints = [
        format!("tls://localhost:{}", port(&server.tcp)),
        format!("wss://localhost:{ws_port}/stomp"),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for endpoint in endpoints {
            let client = Client::builder(endpoint.as_str())
                .tls_roots(certificate.roots.clone())
                .connect()
                .await
                .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
            let mut news = client
                .subscribe("/topic/news", AckMode::Auto)
                .await
                .unwrap();
            client
                .send_with_receipt(SendFrame::new("/topic/news", "over TLS"))
                .await
                .unwrap();
            let message = tokio::time::timeout(Duration::from_secs(5), news.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&message.body()[..], b"over TLS", "{endpoint}");
            client.disconnect().await.unwrap();
        }
    });
}

#[test]
fn a_silent_socket_on_the_tls_port_is_closed_at_the_connect_deadline() {
    let certificate = certificate();
    let server = Server::start(&[
        "--tls-cert",
        certificate.cert.to_str().unwrap(),
        "--tls-key",
        certificate.key.to_str().unwrap(),
        "--connect-timeout",
        "1",
    ]);
    for address in [
        server.tcp.clone(),
        format!("127.0.0.1:{}", port(server.ws.trim_end_matches("/stomp"))),
    ] {
        let mut socket = TcpStream::connect(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        // Nothing is sent: no handshake. The server ends the socket at the deadline.
        let _ = socket.read_to_end(&mut rest);
        let after = started.elapsed();
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(3),
            "{address}: closed after {after:?}"
        );
    }
}

#[test]
fn a_certificate_without_its_key_or_one_that_cannot_be_read_stops_the_start() {
    let certificate = certificate();
    let cert = &certificate.cert;
    let binary = env!("CARGO_BIN_EXE_stomp-server");
    let alone = Command::new(binary)
        .args(["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
        .args(["--tls-cert", cert.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--tls-key"));
    let missing = Command::new(binary)
        .args(["--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&missing.stdout).is_empty(),
        "nothing listened"
    );
}
