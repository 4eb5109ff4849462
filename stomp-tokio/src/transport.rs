//! The byte streams STOMP runs over: TCP, TLS over TCP, and WebSocket messages (sub-protocols
//! `v12.stomp`, `v11.stomp`, `v10.stomp`) over either. One WebSocket message may carry several
//! frames or part of one, so all of them are byte streams to the session.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use stomp_session::ClientSession;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::Error;
use crate::endpoint::Endpoint;

/// A plain or TLS byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) type Stream = Box<dyn Io>;

pub(crate) struct Transport(Inner);

enum Inner {
    Stream(Stream),
    WebSocket(Box<WebSocketStream<Stream>>),
}

/// Room for each read from a byte stream: a burst of small frames in one system call.
const READ_SIZE: usize = 64 * 1024;

impl Transport {
    /// STOMP straight over a stream the application opened.
    pub(crate) fn over(stream: Stream) -> Transport {
        Transport(Inner::Stream(stream))
    }

    /// Opens a connection to `endpoint`: TCP (Nagle off), the TLS handshake through `tls` when
    /// the endpoint is secure, and the WebSocket handshake, with `headers` besides its own,
    /// when it is a WebSocket URL, whose messages are bounded by `max_message`.
    pub(crate) async fn open(
        endpoint: &Endpoint,
        tls: Option<&TlsConnector>,
        max_message: usize,
        headers: &[(String, String)],
    ) -> Result<Transport, Error> {
        let tcp = TcpStream::connect(endpoint.address.as_str()).await?;
        tcp.set_nodelay(true)?;
        let stream: Stream = match tls {
            Some(connector) if endpoint.is_secure() => {
                let name = ServerName::try_from(endpoint.host.clone())
                    .map_err(|e| Error::InvalidEndpoint(format!("{}: {e}", endpoint.text)))?;
                Box::new(
                    connector
                        .connect(name, tcp)
                        .await
                        .map_err(Error::from_tls)?,
                )
            }
            _ => Box::new(tcp),
        };
        if !endpoint.is_websocket() {
            return Ok(Transport(Inner::Stream(stream)));
        }
        let mut request = endpoint
            .text
            .as_str()
            .into_client_request()
            .map_err(|e| Error::InvalidEndpoint(format!("{}: {e}", endpoint.text)))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("v12.stomp, v11.stomp, v10.stomp"),
        );
        for (name, value) in headers {
            let invalid = |e: &dyn std::fmt::Display| {
                Error::InvalidEndpoint(format!("{}: header {name}: {e}", endpoint.text))
            };
            let name = HeaderName::try_from(name.as_str()).map_err(|e| invalid(&e))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| invalid(&e))?;
            request.headers_mut().append(name, value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let (socket, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|e| Error::Io(io::Error::other(e)))?;
        Ok(Transport(Inner::WebSocket(Box::new(socket))))
    }

    /// Reads the next bytes received into `buf` (which the caller empties once it has used
    /// them), and says how many came; `None` at the end of the stream. The buffer is kept from
    /// read to read: the session copies what it needs. Cancel-safe: nothing is lost when
    /// another event wins a `select!`.
    pub(crate) async fn receive(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        match &mut self.0 {
            Inner::Stream(stream) => {
                buf.reserve(READ_SIZE);
                match stream.read_buf(buf).await? {
                    0 => Ok(None),
                    n => Ok(Some(n)),
                }
            }
            Inner::WebSocket(socket) => loop {
                let data = match socket.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(None),
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(io::Error::other(e)),
                };
                buf.extend_from_slice(&data);
                return Ok(Some(data.len()));
            },
        }
    }

    /// Writes everything `session` has queued, then flushes once: the session packs small
    /// frames together, so a burst of commands goes out in one write.
    pub(crate) async fn send_all(&mut self, session: &mut ClientSession) -> io::Result<()> {
        let Some(mut bytes) = session.poll_transmit() else {
            return Ok(());
        };
        match &mut self.0 {
            Inner::Stream(stream) => {
                loop {
                    stream.write_all(&bytes).await?;
                    match session.poll_transmit() {
                        Some(next) => bytes = next,
                        None => break,
                    }
                }
                stream.flush().await
            }
            Inner::WebSocket(socket) => {
                loop {
                    // STOMP is text; a body that is not UTF-8 goes as a binary message.
                    let message = match Utf8Bytes::try_from(bytes.clone()) {
                        Ok(text) => Message::Text(text),
                        Err(_) => Message::Binary(bytes),
                    };
                    socket.feed(message).await.map_err(io::Error::other)?;
                    match session.poll_transmit() {
                        Some(next) => bytes = next,
                        None => break,
                    }
                }
                socket.flush().await.map_err(io::Error::other)
            }
        }
    }

    pub(crate) async fn close(&mut self) {
        match &mut self.0 {
            Inner::Stream(stream) => {
                let _ = stream.shutdown().await;
            }
            Inner::WebSocket(socket) => {
                // Sends a Close frame and flushes it.
                let _ = SinkExt::close(socket.as_mut()).await;
            }
        }
    }
}
