//! The server's own HTTP listener for an axum [`Router`]: what `axum::serve` does, with the
//! bounds a public endpoint needs: a connection limit, and a deadline on each request head, so
//! that sockets that never finish a request (the WebSocket upgrade included) cannot pile up.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::connection::{self, Accepted};
use crate::ws::Origin;

/// Serves `router` on `listener` until the listener fails.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limit: Arc<Semaphore>,
    head_timeout: Duration,
) {
    connection::accept_loop(listener, "http", limit, |stream, accepted| {
        let router = router.clone();
        tokio::spawn(async move {
            let Accepted { peer, at, permit } = accepted;
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                let origin = Origin {
                    at,
                    peer: peer.clone(),
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
            // An upgraded connection is the WebSocket endpoint's now, under its own permit.
            drop(permit);
        });
    })
    .await;
}
