//! The server's own HTTP listener for an axum [`Router`]: what `axum::serve` does, with the
//! bounds a public endpoint needs: a connection limit, and a deadline on each request head (and
//! on the TLS handshake before it), so that sockets that never finish a request (the WebSocket
//! upgrade included) cannot pile up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::connection::{self, Accepted};
use crate::gate::{Gate, Gated};
use crate::login::{Remote, Transport};
use crate::tls::Tls;
use crate::ws::Origin;

/// Serves `router` on `listener` until the listener fails; with `tls`, as HTTPS.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limit: Arc<Semaphore>,
    head_timeout: Duration,
    tls: Option<Tls>,
) {
    let kind = if tls.is_some() { "https" } else { "http" };
    let transport = Transport::WebSocket;
    connection::accept_loop(listener, kind, transport, limit, |stream, accepted| {
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Accepted {
                remote, at, permit, ..
            } = accepted;
            match tls {
                None => serve_one(stream, router, remote, at, head_timeout).await,
                Some(tls) => {
                    let deadline = at + head_timeout;
                    if let Some(stream) = tls.handshake(stream, deadline, &remote.name()).await {
                        serve_one(stream, router, remote, at, head_timeout).await;
                    }
                }
            }
            // An upgraded connection is the WebSocket endpoint's now, under its own permit.
            drop(permit);
        });
    })
    .await;
}

/// Serves one HTTP/1.1 connection.
async fn serve_one<S>(
    stream: S,
    router: Router,
    remote: Remote,
    at: Instant,
    head_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Passes everything until a WebSocket upgrade arms it (`ws::upgrade`).
    let gate = Arc::new(Gate::default());
    let stream = Gated::new(stream, gate.clone());
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let origin = Origin {
            at,
            remote: remote.clone(),
            gate: Some(gate.clone()),
        };
        request.extensions_mut().insert(origin);
        router.clone().oneshot(request)
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}
