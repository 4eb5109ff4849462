//! STOMP over WebSocket (sub-protocols `v12.stomp`, `v11.stomp`, `v10.stomp`): one message may
//! carry several frames or part of one, so messages are fed to the session as a byte stream.

use std::io;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::connection::{self, Transport};
use crate::hub::ToHub;

/// The sub-protocols offered, best first; the STOMP version is still negotiated in CONNECT.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

struct Ws {
    socket: WebSocketStream<TcpStream>,
}

impl Transport for Ws {
    async fn receive(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            return match self.socket.next().await {
                None | Some(Ok(Message::Close(_))) => Ok(None),
                Some(Ok(Message::Text(text))) => Ok(Some(Bytes::from(text))),
                Some(Ok(Message::Binary(bytes))) => Ok(Some(bytes)),
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(_)) => continue,
                Some(Err(e)) => Err(io::Error::other(e)),
            };
        }
    }

    async fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        // STOMP is text; browsers' clients expect text messages. A binary body goes as binary.
        let message = match Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        };
        self.socket.send(message).await.map_err(io::Error::other)
    }

    async fn close(&mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Accepts WebSocket connections at `path` until the listener fails.
pub(crate) async fn listen(
    listener: TcpListener,
    path: String,
    hub: mpsc::Sender<ToHub>,
    queue: usize,
    alive: mpsc::Sender<()>,
) {
    connection::accept_loop(listener, "ws", |stream, peer| {
        let (hub, path, alive) = (hub.clone(), path.clone(), alive.clone());
        // The handshake callback's error type is tungstenite's own, large as it is.
        #[allow(clippy::result_large_err)]
        tokio::spawn(async move {
            let handshake =
                |request: &Request, response: Response| handshake(&path, request, response);
            match tokio_tungstenite::accept_hdr_async(stream, handshake).await {
                Ok(socket) => connection::serve(Ws { socket }, peer, hub, queue, alive).await,
                Err(e) => tracing::info!(%peer, error = %e, "WebSocket handshake refused"),
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
