//! The byte streams STOMP runs over: TCP, and WebSocket messages (`ws://`, sub-protocols
//! `v12.stomp`, `v11.stomp`, `v10.stomp`). One WebSocket message may carry several frames or
//! part of one, so both are byte streams to the session.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Error;

/// Where to connect, as given to [`Client::builder`](crate::Client::builder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `host:port` or `tcp://host:port`.
    Tcp(String),
    /// `ws://host:port/path`.
    WebSocket(String),
}

impl Endpoint {
    pub(crate) fn parse(text: &str) -> Result<Endpoint, Error> {
        if let Some(address) = text.strip_prefix("tcp://") {
            return Ok(Endpoint::Tcp(address.to_owned()));
        }
        if text.starts_with("ws://") {
            return Ok(Endpoint::WebSocket(text.to_owned()));
        }
        if text.contains("://") {
            return Err(Error::InvalidEndpoint(format!(
                "{text}: the schemes served are tcp:// and ws://"
            )));
        }
        Ok(Endpoint::Tcp(text.to_owned()))
    }
}

pub(crate) enum Transport {
    Tcp(TcpStream),
    WebSocket(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
}

impl Transport {
    pub(crate) async fn open(endpoint: &Endpoint) -> Result<Transport, Error> {
        match endpoint {
            Endpoint::Tcp(address) => {
                let stream = TcpStream::connect(address.as_str()).await?;
                stream.set_nodelay(true)?;
                Ok(Transport::Tcp(stream))
            }
            Endpoint::WebSocket(url) => {
                let mut request = url
                    .as_str()
                    .into_client_request()
                    .map_err(|e| Error::InvalidEndpoint(format!("{url}: {e}")))?;
                request.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static("v12.stomp, v11.stomp, v10.stomp"),
                );
                let (socket, _) = tokio_tungstenite::connect_async(request)
                    .await
                    .map_err(|e| Error::Io(io::Error::other(e)))?;
                Ok(Transport::WebSocket(Box::new(socket)))
            }
        }
    }

    /// The next bytes received; `None` at the end of the stream. Cancel-safe: nothing is lost
    /// when another event wins a `select!`.
    pub(crate) async fn receive(&mut self, buf: &mut BytesMut) -> io::Result<Option<Bytes>> {
        match self {
            Transport::Tcp(stream) => {
                buf.reserve(16 * 1024);
                match stream.read_buf(buf).await? {
                    0 => Ok(None),
                    _ => Ok(Some(buf.split().freeze())),
                }
            }
            Transport::WebSocket(socket) => loop {
                return match socket.next().await {
                    None | Some(Ok(Message::Close(_))) => Ok(None),
                    Some(Ok(Message::Text(text))) => Ok(Some(Bytes::from(text))),
                    Some(Ok(Message::Binary(bytes))) => Ok(Some(bytes)),
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => Err(io::Error::other(e)),
                };
            },
        }
    }

    pub(crate) async fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.write_all(&bytes).await,
            Transport::WebSocket(socket) => {
                // STOMP is text; a body that is not UTF-8 goes as a binary message.
                let message = match Utf8Bytes::try_from(bytes.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(bytes),
                };
                socket.send(message).await.map_err(io::Error::other)
            }
        }
    }

    pub(crate) async fn close(&mut self) {
        match self {
            Transport::Tcp(stream) => {
                let _ = stream.shutdown().await;
            }
            Transport::WebSocket(socket) => {
                // Sends a Close frame and flushes it.
                let _ = SinkExt::close(socket.as_mut()).await;
            }
        }
    }
}
