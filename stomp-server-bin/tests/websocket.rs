//! STOMP over WebSocket against the `stomp-server` binary: the sub-protocol chosen in the
//! handshake, a frame split over two messages, two frames in one message, and a wrong path.

mod common;

use std::time::Duration;

use common::Server;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn frames_may_span_or_share_websocket_messages() {
    let server = Server::start(&[]);
    let mut request = server.ws.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "v11.stomp, v12.stomp".parse().unwrap(),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    // The first STOMP sub-protocol the client offers is chosen.
    assert_eq!(response.headers()["sec-websocket-protocol"], "v11.stomp");

    // CONNECT split over two messages, then SUBSCRIBE and SEND (with receipts) in one.
    socket
        .send(Message::text("CONNECT\naccept-version:1.2\nho"))
        .await
        .unwrap();
    socket.send(Message::text("st:/\n\n\0")).await.unwrap();
    let two = "SUBSCRIBE\nid:0\ndestination:/topic/ws\nreceipt:s\n\n\0SEND\ndestination:/topic/ws\nreceipt:m\n\nover ws\0";
    socket.send(Message::text(two)).await.unwrap();

    let mut received = String::new();
    while !received.contains("over ws") || !received.contains("receipt-id:m") {
        let next = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        match next.unwrap().unwrap().unwrap() {
            Message::Text(text) => received.push_str(&text),
            Message::Binary(bytes) => received.push_str(&String::from_utf8_lossy(&bytes)),
            _ => {}
        }
    }
    assert!(
        received.starts_with("CONNECTED\nversion:1.2\n"),
        "{received}"
    );
    assert!(received.contains("RECEIPT\nreceipt-id:s\n"), "{received}");
    assert!(received.contains("MESSAGE\nsubscription:0\n"), "{received}");
}

#[tokio::test]
async fn only_the_stomp_path_is_served() {
    let server = Server::start(&[]);
    let wrong = server.ws.replace("/stomp", "/other");
    let refused = tokio_tungstenite::connect_async(wrong.as_str()).await;
    assert!(refused.is_err());
}
