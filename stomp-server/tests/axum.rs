//! The example axum application (examples/axum_app.rs), run as written: one server answers a
//! REST route and STOMP over WebSocket at `/stomp`.

#[allow(dead_code)] // its main is for `cargo run --example`
#[path = "../examples/axum_app.rs"]
mod example;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Reads text messages until `done` holds of all that arrived.
async fn read_until<S>(socket: &mut S, done: impl Fn(&str) -> bool) -> String
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut received = String::new();
    while !done(&received) {
        let next = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        match next.expect("nothing within 5 s").unwrap().unwrap() {
            Message::Text(text) => received.push_str(&text),
            Message::Binary(bytes) => received.push_str(&String::from_utf8_lossy(&bytes)),
            _ => {}
        }
    }
    received
}

#[tokio::test]
async fn one_axum_server_serves_rest_and_stomp_over_websocket() {
    let server = example::server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = example::router(&server);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut request = format!("ws://{address}/stomp")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "v12.stomp".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "v12.stomp");
    let frames = "CONNECT\naccept-version:1.2\nAuthorization:Bearer ann-token\n\n\0\
        SUBSCRIBE\nid:room\ndestination:/topic/lobby\n\n\0\
        SUBSCRIBE\nid:news\ndestination:/topic/news\n\n\0\
        SUBSCRIBE\nid:me\ndestination:/user/queue/replies\nreceipt:ready\n\n\0";
    socket.send(Message::text(frames)).await.unwrap();
    read_until(&mut socket, |r| r.contains("receipt-id:ready")).await;

    let say = "SEND\ndestination:/app/rooms/lobby/say\n\n{\"text\":\"hi\"}\0";
    socket.send(Message::text(say)).await.unwrap();
    let received = read_until(&mut socket, |r| {
        r.contains("ann: hi") && r.contains("\"said\"")
    })
    .await;
    assert!(received.contains("subscription:room\n"), "{received}");
    assert!(received.contains("subscription:me\n"), "{received}");

    // The REST route publishes to the same broker.
    let mut http = tokio::net::TcpStream::connect(address).await.unwrap();
    let post = "POST /api/news HTTP/1.1\r\nHost: test\r\nContent-Length: 8\r\nConnection: close\r\n\r\nbreaking";
    http.write_all(post.as_bytes()).await.unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 202 Accepted\r\n"),
        "{response}"
    );
    let received = read_until(&mut socket, |r| r.contains("breaking")).await;
    assert!(received.contains("subscription:news\n"), "{received}");
}
