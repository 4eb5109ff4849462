//! One connection, over any transport: what arrives goes to the broker task; what the broker
//! hands out is written; one timer, re-armed from the session's deadline, reports timeouts.

use std::future::Future;
use std::io;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

use crate::hub::{Out, ToHub};

/// A byte stream STOMP runs over: TCP, or WebSocket messages.
pub(crate) trait Transport: Send {
    /// The next bytes received; `None` at the end of the stream. Must be cancel-safe.
    fn receive(&mut self) -> impl Future<Output = io::Result<Option<Bytes>>> + Send;
    /// Writes bytes.
    fn send(&mut self, bytes: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes the transport after everything was written.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// Serves one connection until either side ends it. `_alive` is held until the connection is
/// written out and closed, so that shutdown can wait for it.
pub(crate) async fn serve<T: Transport>(
    mut transport: T,
    peer: String,
    hub: mpsc::Sender<ToHub>,
    queue: usize,
    _alive: mpsc::Sender<()>,
) {
    let (out, mut outbox) = mpsc::channel(queue);
    let (reply, id) = oneshot::channel();
    if hub.send(ToHub::Open { out, peer, reply }).await.is_err() {
        return;
    }
    let Ok(id) = id.await else { return };
    let mut deadline: Option<Instant> = None;
    let (mut reading, mut writable) = (true, true);
    loop {
        tokio::select! {
            received = transport.receive(), if reading => match received {
                Ok(Some(bytes)) => {
                    if hub.send(ToHub::Input(id, bytes)).await.is_err() { break }
                }
                Ok(None) | Err(_) => {
                    reading = false;
                    let _ = hub.send(ToHub::Eof(id)).await;
                }
            },
            command = outbox.recv() => match command {
                Some(Out::Write(bytes)) => {
                    // After a failed write, what remains is dropped until the close comes.
                    if writable && transport.send(bytes).await.is_err() {
                        writable = false;
                        reading = false;
                        let _ = hub.send(ToHub::Eof(id)).await;
                    }
                }
                Some(Out::Deadline(next)) => deadline = next,
                Some(Out::Close) | None => break,
            },
            () = wait_for(deadline) => {
                deadline = None;
                if hub.send(ToHub::Timeout(id)).await.is_err() { break }
            }
        }
    }
    transport.close().await;
    tracing::debug!(connection = id, "connection closed");
}

async fn wait_for(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Accepts connections until the listener fails, handing each, with Nagle off, to `serve`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    kind: &str,
    mut serve: impl FnMut(TcpStream, String),
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                serve(stream, format!("{kind}:{peer}"));
            }
            Err(e) => tracing::warn!(error = %e, "accepting a {kind} connection failed"),
        }
    }
}
