//! STOMP over WebSocket (sub-protocols `v12.stomp`, `v11.stomp`, `v10.stomp`): one message may
//! carry several frames or part of one, so messages are fed to the session as a byte stream.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error, Message, Utf8Bytes};

use crate::connection::{self, Reader, Settings, Writer};

/// The sub-protocols offered, best first; the STOMP version is still negotiated in CONNECT.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

struct WsReader {
    stream: SplitStream<WebSocketStream<TcpStream>>,
}

impl Reader for WsReader {
    async fn receive(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            return match self.stream.next().await {
                None | Some(Ok(Message::Close(_))) => Ok(None),
                Some(Ok(Message::Text(text))) => Ok(Some(Bytes::from(text))),
                Some(Ok(Message::Binary(bytes))) => Ok(Some(bytes)),
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(_)) => continue,
                // A message over the limits: the client is told why.
                Some(Err(Error::Capacity(e))) => {
                    Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                }
                Some(Err(e)) => Err(io::Error::other(e)),
            };
        }
    }
}

struct WsWriter {
    sink: SplitSink<WebSocketStream<TcpStream>, Message>,
}

impl Writer for WsWriter {
    async fn send(&mut self, bytes: Bytes, stall: Duration) -> io::Result<()> {
        // STOMP is text; browsers' clients expect text messages. A binary body goes as binary.
        let message = match Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        };
        // One message is written as a whole: it must be taken within `stall`.
        match timeout(stall, self.sink.send(message)).await {
            Ok(sent) => sent.map_err(io::Error::other),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}

/// Accepts WebSocket connections at `path` until the listener fails. The handshake must end
/// within the connect timeout, counted from the accept; messages and frames are bounded like
/// the STOMP frames they carry (`max_message`).
pub(crate) async fn listen(
    listener: TcpListener,
    path: String,
    max_message: usize,
    settings: Settings,
) {
    let limit = settings.connections.clone();
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        // STOMP frames are small; a large read buffer per idle connection is memory wasted.
        .read_buffer_size(16 * 1024);
    connection::accept_loop(listener, "ws", limit, |stream, accepted| {
        let (path, settings) = (path.clone(), settings.clone());
        // The handshake callback's error type is tungstenite's own, large as it is.
        #[allow(clippy::result_large_err)]
        tokio::spawn(async move {
            let handshake =
                |request: &Request, response: Response| handshake(&path, request, response);
            let deadline = accepted.at + settings.connect_timeout;
            let upgrade =
                tokio_tungstenite::accept_hdr_async_with_config(stream, handshake, Some(config));
            match timeout_at(deadline.into(), upgrade).await {
                Ok(Ok(socket)) => {
                    let (sink, stream) = socket.split();
                    let (reader, writer) = (WsReader { stream }, WsWriter { sink });
                    connection::serve(reader, writer, accepted, settings).await;
                }
                Ok(Err(e)) => {
                    tracing::info!(peer = %accepted.peer, error = %e, "WebSocket handshake refused");
                }
                Err(_) => tracing::info!(
                    peer = %accepted.peer,
                    "no WebSocket handshake within the connect timeout: closed"
                ),
            }
        });
    })
    .await;
}

/// Accepts the upgrade at `path` only, choosing the first STOMP sub-protocol the client offers.
#[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
fn handshake(
    path: &str,
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    if request.uri().path() != path {
        let mut refusal = ErrorResponse::new(Some(format!(
            "no STOMP endpoint at {}",
            request.uri().path()
        )));
        *refusal.status_mut() = StatusCode::NOT_FOUND;
        return Err(refusal);
    }
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    if let Some(chosen) = offered.into_iter().find(|p| SUBPROTOCOLS.contains(p)) {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(static_name(chosen)),
        );
    }
    Ok(response)
}

fn static_name(protocol: &str) -> &'static str {
    SUBPROTOCOLS
        .into_iter()
        .find(|p| *p == protocol)
        .unwrap_or(SUBPROTOCOLS[0])
}
