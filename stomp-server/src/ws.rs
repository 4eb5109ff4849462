//! STOMP over WebSocket as an axum route (sub-protocols `v12.stomp`, `v11.stomp`,
//! `v10.stomp`): one message may carry several frames or part of one, so messages are fed to
//! the session as a byte stream.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, OriginalUri};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;

use stomp_session::Refused;

use crate::connection::{self, Accepted, ReadError, Reader, Settings, Writer};
use crate::gate::Gate;
use crate::login::{Remote, Transport};

/// Octets read from a WebSocket at a time.
const READ_BUFFER: usize = 4096;

/// The sub-protocols offered, best first; the STOMP version is still negotiated in CONNECT.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Set by the server's own HTTP listener on each request it serves: when the connection was
/// accepted (the CONNECT deadline counts from there, the handshake included) and from where.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) at: Instant,
    pub(crate) remote: Remote,
    /// What the connection may read before its client is let in, once armed.
    pub(crate) gate: Option<Arc<Gate>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    /// For a request served by another listener (`axum::serve`): now, from somewhere.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Origin, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Origin>()
            .cloned()
            .unwrap_or_else(|| {
                // axum's `ConnectInfo`, when the router was served with it, names the peer.
                let address = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|info| info.0);
                Origin {
                    at: Instant::now(),
                    remote: Remote::new(Transport::WebSocket, address),
                    gate: None,
                }
            }))
    }
}

struct WsReader {
    stream: SplitStream<WebSocket>,
}

impl Reader for WsReader {
    async fn receive(&mut self) -> Result<Option<Bytes>, ReadError> {
        loop {
            return match self.stream.next().await {
                None | Some(Ok(Message::Close(_))) => Ok(None),
                Some(Ok(Message::Text(text))) => Ok(Some(Bytes::from(text))),
                Some(Ok(Message::Binary(bytes))) => Ok(Some(bytes)),
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(_)) => continue,
                // A message over the limits, or broken framing: the client is told why.
                Some(Err(e)) => Err(ReadError::Refused(Refused::new(format!("WebSocket: {e}")))),
            };
        }
    }
}

/// STOMP is text, and browsers' clients expect text messages; a binary body goes as binary.
fn message(bytes: &Bytes) -> Message {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes.clone()),
    }
}

struct WsWriter {
    sink: SplitSink<WebSocket, Message>,
}

impl Writer for WsWriter {
    async fn send(&mut self, batch: &[Bytes], stall: Duration) -> io::Result<()> {
        // Each buffer is one message, and the batch goes out in one write: the messages are
        // queued in the WebSocket's write buffer, then flushed together.
        let queue_all = async {
            for bytes in batch {
                self.sink.feed(message(bytes)).await?;
            }
            self.sink.flush().await
        };
        // The batch must be taken within `stall`.
        match timeout(stall, queue_all).await {
            Ok(sent) => sent.map_err(io::Error::other),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}

/// The upgrade request's head with storage of its own. The server parses the URI and the
/// header values as slices of its read buffer (8 KiB or more), and a head kept for the
/// connection's life (for the login) would keep that whole buffer for every idle
/// connection.
fn detached(mut request: Parts) -> Parts {
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for (name, value) in &request.headers {
        // A value the server accepted is one `HeaderValue` accepts; should one not be, it is
        // kept as it was, costing only memory.
        let copy = match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(mut copy) => {
                copy.set_sensitive(value.is_sensitive());
                copy
            }
            Err(_) => value.clone(),
        };
        headers.append(name.clone(), copy);
    }
    request.headers = headers;
    // The router keeps a copy of the URI among the extensions, as shared as the first.
    let owned = |uri: &Uri| Uri::try_from(uri.to_string()).ok();
    if let Some(uri) = owned(&request.uri) {
        request.uri = uri;
    }
    if let Some(OriginalUri(uri)) = request.extensions.get_mut::<OriginalUri>() {
        if let Some(owned) = owned(uri) {
            *uri = owned;
        }
    }
    request
}

/// The endpoint: upgrades to STOMP over WebSocket within the connection limit, choosing the
/// first STOMP sub-protocol the client offers; past the limit, 503.
pub(crate) async fn upgrade(
    State(settings): State<Settings>,
    Origin {
        at,
        mut remote,
        gate,
    }: Origin,
    upgrade: WebSocketUpgrade,
    request: Parts,
) -> Response {
    let headers = &request.headers;
    // A page of another origin may not act as its browser's user (CSWSH).
    if let Err(why) = settings.origins.check(headers) {
        settings.refusals.origin.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = %remote.name(), %why, "WebSocket upgrade refused");
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let Ok(permit) = settings.connections.clone().try_acquire_owned() else {
        connection::refused("ws");
        return (StatusCode::SERVICE_UNAVAILABLE, "connection limit reached").into_response();
    };
    // One address may not take every place.
    let slot = match remote.address.map(|a| settings.peer_slots.admit(a.ip())) {
        Some(Err(why)) => {
            settings.refusals.peer.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %remote.name(), %why, "WebSocket upgrade refused");
            return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
        }
        Some(Ok(slot)) => Some(slot),
        None => None,
    };
    let max = settings.max_ws_message;
    // The first STOMP sub-protocol in the client's order of preference.
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let chosen = offered
        .into_iter()
        .find_map(|p| SUBPROTOCOLS.into_iter().find(|s| *s == p));
    // What a login may look at: headers, cookies, the URI, an auth layer's extensions.
    remote.upgrade = Some(Arc::new(detached(request)));
    // From here until the client is let in, one head's worth is read of it.
    if let Some(gate) = &gate {
        gate.arm(settings.max_preamble);
    }
    upgrade
        .protocols(chosen)
        .max_message_size(max)
        .max_frame_size(max)
        // The read buffer is allocated, and zero-filled before each read, for every
        // connection: what browsers send (SUBSCRIBE, small SENDs, heart-beats) fits in a page,
        // and the buffer grows for a larger message while it is read.
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            let (reader, writer) = (WsReader { stream }, WsWriter { sink });
            let accepted = Accepted {
                remote,
                at,
                permit,
                gate,
                slot,
            };
            connection::serve(reader, writer, accepted, settings).await;
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[test]
    fn the_head_kept_for_the_login_shares_nothing_with_the_buffer_it_was_read_into() {
        // As the HTTP server parses a head: the URI and the values are slices of one buffer.
        let buffer = Bytes::from(b"/stomp?room=1 v12.stomp secret".to_vec());
        let uri = Uri::from_maybe_shared(buffer.slice(0..13)).unwrap();
        let protocol = HeaderValue::from_maybe_shared(buffer.slice(14..23)).unwrap();
        let mut cookie = HeaderValue::from_maybe_shared(buffer.slice(24..30)).unwrap();
        cookie.set_sensitive(true);
        let (mut parts, ()) = Request::builder()
            .uri(uri.clone())
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
            .header(header::COOKIE, cookie)
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(OriginalUri(uri));

        let kept = detached(parts);

        assert!(buffer.is_unique(), "the head still holds the read buffer");
        assert_eq!(kept.uri, "/stomp?room=1");
        let Some(OriginalUri(original)) = kept.extensions.get::<OriginalUri>() else {
            panic!("the router's copy of the URI is gone");
        };
        assert_eq!(original, "/stomp?room=1");
        assert_eq!(kept.headers[header::SEC_WEBSOCKET_PROTOCOL], "v12.stomp");
        assert_eq!(kept.headers[header::COOKIE], "secret");
        assert!(kept.headers[header::COOKIE].is_sensitive());
    }
}
