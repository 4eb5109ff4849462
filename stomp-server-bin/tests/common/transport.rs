//! A raw STOMP client's transport to the `stomp-server` binary, TCP or WebSocket: bytes out
//! in one write (one WebSocket message), bytes in as they come.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::Server;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A client's transport: bytes out in one write (one WebSocket message), bytes in.
pub enum Transport {
    Tcp(TcpStream),
    Ws(Box<Ws>),
}

impl Transport {
    pub async fn open(server: &Server, websocket: bool) -> Option<Transport> {
        if !websocket {
            return TcpStream::connect(&server.tcp)
                .await
                .ok()
                .map(Transport::Tcp);
        }
        let mut request = server.ws.as_str().into_client_request().ok()?;
        let protocols = "v12.stomp, v11.stomp, v10.stomp".parse().ok()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocols);
        let (socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        Some(Transport::Ws(Box::new(socket)))
    }

    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        match self {
            Transport::Tcp(socket) => socket.write_all(bytes).await.is_ok(),
            Transport::Ws(socket) => {
                let message = WsMessage::binary(bytes.to_vec());
                socket.send(message).await.is_ok()
            }
        }
    }

    /// What arrives first within `wait` (nothing, if nothing does); `None` once the server
    /// closed.
    pub async fn read(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while got.is_empty() {
            let next = match self {
                Transport::Tcp(socket) => {
                    let mut buf = vec![0u8; 16 * 1024];
                    match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
                        Err(_) => return Some(got),
                        Ok(Ok(0)) | Ok(Err(_)) => None,
                        Ok(Ok(n)) => {
                            buf.truncate(n);
                            Some(buf)
                        }
                    }
                }
                Transport::Ws(socket) => {
                    match tokio::time::timeout_at(deadline, socket.next()).await {
                        Err(_) => return Some(got),
                        Ok(Some(Ok(WsMessage::Text(text)))) => Some(text.as_bytes().to_vec()),
                        Ok(Some(Ok(WsMessage::Binary(bytes)))) => Some(bytes.to_vec()),
                        Ok(Some(Ok(WsMessage::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => None,
                        Ok(Some(Ok(_))) => Some(Vec::new()),
                    }
                }
            };
            got = next?;
        }
        Some(got)
    }
}
