//! stomp-tokio over TLS against stomp-server's TLS listeners in the same process: STOMP over
//! TLS (`tls://`) and over secure WebSocket (`wss://`), with a certificate made here; and the
//! typed failures of a certificate that is not trusted or not for the host.

use std::time::Duration;

use stomp_server::{Server, Tls};
use stomp_tokio::rustls::RootCertStore;
use stomp_tokio::rustls::pki_types::CertificateDer;
use stomp_tokio::{AckMode, Client, Error, SendFrame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A certificate for `localhost` and 127.0.0.1, and the roots that trust it.
fn certificate() -> (Tls, RootCertStore) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).unwrap();
    let tls = Tls::from_pem(
        made.cert.pem().as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(made.cert.der().to_vec()))
        .unwrap();
    (tls, roots)
}

/// A server whose TCP and HTTP listeners speak TLS: the TLS port, the HTTPS port.
async fn tls_server(tls: Tls) -> (Server, u16, u16) {
    let server = Server::builder().start();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ports = (
        tcp.local_addr().unwrap().port(),
        http.local_addr().unwrap().port(),
    );
    tokio::spawn(server.serve_tls(tcp, tls.clone()));
    tokio::spawn(server.serve_https(http, server.router(), tls));
    (server, ports.0, ports.1)
}

fn text(message: &stomp_tokio::Message) -> String {
    String::from_utf8_lossy(message.body()).into_owned()
}

#[tokio::test]
async fn stomp_over_tls_and_secure_websocket_with_a_certificate_made_here() {
    let (tls, roots) = certificate();
    let (_server, tls_port, https_port) = tls_server(tls).await;
    let endpoints = [
        format!("tls://localhost:{tls_port}"),
        format!("ssl://127.0.0.1:{tls_port}"),
        format!("wss://localhost:{https_port}/stomp"),
    ];
    for endpoint in endpoints {
        let client = Client::builder(endpoint.as_str())
            .tls_roots(roots.clone())
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        let mut news = client
            .subscribe("/topic/news", AckMode::Auto)
            .await
            .unwrap();
        client
            .send_with_receipt(SendFrame::new("/topic/news", "sealed").content_type("text/plain"))
            .await
            .unwrap();
        let message = tokio::time::timeout(Duration::from_secs(5), news.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text(&message), "sealed", "{endpoint}");
        assert_eq!(
            message.header("content-type").as_deref(),
            Some("text/plain")
        );
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn an_untrusted_certificate_or_another_host_is_a_typed_tls_error() {
    let (tls, roots) = certificate();
    let (_server, tls_port, https_port) = tls_server(tls).await;
    // The system's roots do not know a certificate made here.
    for endpoint in [
        format!("tls://localhost:{tls_port}"),
        format!("wss://localhost:{https_port}/stomp"),
    ] {
        match Client::builder(endpoint.as_str()).connect().await {
            Err(Error::Tls(e)) => assert!(e.to_string().contains("certificate"), "{e}"),
            other => panic!("{endpoint}: expected a TLS error, got {other:?}"),
        }
    }
    // Trusted, but not issued for this name.
    let wrong_host = format!("tls://127.0.0.2:{tls_port}");
    match Client::builder(wrong_host).tls_roots(roots).connect().await {
        Err(Error::Tls(e)) => assert!(e.to_string().contains("certificate"), "{e}"),
        Err(Error::Io(e)) => {
            // 127.0.0.2 is loopback on Linux; where it is not, the connection itself fails.
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_plain_client_on_the_tls_port_is_not_served() {
    let (tls, _) = certificate();
    let (server, tls_port, _) = tls_server(tls).await;
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
        .await
        .unwrap();
    plain
        .write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // The handshake fails: the server closes the socket (reset or end of stream) without a
    // word of STOMP.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut answer),
    )
    .await
    .expect("the server closes the socket");
    assert!(!String::from_utf8_lossy(&answer).contains("CONNECTED"));
    assert_eq!(server.handle().stats().await.unwrap().broker.connections, 0);
}
