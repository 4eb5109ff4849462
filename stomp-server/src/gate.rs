//! What a WebSocket client of the server's own HTTP listener may send before it is let in.
//!
//! Over TCP the connection reads no more than one head of a client before CONNECTED. Over
//! WebSocket the WebSocket layer reads whole messages, so a first message of many megabytes
//! would be read, and held, before any STOMP octet of it is judged. The gate sits under the
//! WebSocket layer, on the socket: from the upgrade until the client is let in, it passes
//! at most a head's worth (and room for the WebSocket framing) and then reads nothing more; a
//! client whose CONNECT does not fit is closed at the CONNECT deadline, having cost that much.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Room for WebSocket frame heads around the STOMP octets a client may send before it is let
/// in.
const FRAMING: usize = 4096;

/// The shared state of one connection's gate.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Octets read since the gate was armed.
    read: AtomicUsize,
    /// Most octets passed while armed and not open; 0 until armed (plain HTTP passes freely).
    limit: AtomicUsize,
    /// The client is let in: everything passes.
    open: AtomicBool,
    /// The read waiting for the gate to open.
    waiting: Mutex<Option<Waker>>,
}

impl Gate {
    /// From now on, at most `preamble` octets (and the WebSocket framing) pass until
    /// [`open`](Self::open).
    pub(crate) fn arm(&self, preamble: usize) {
        self.read.store(0, Ordering::Relaxed);
        self.limit
            .store(preamble.saturating_add(FRAMING), Ordering::Release);
    }

    /// The client is let in.
    pub(crate) fn open(&self) {
        self.open.store(true, Ordering::Release);
        let waiting = self.waiting.lock().map(|mut w| w.take());
        if let Ok(Some(waker)) = waiting {
            waker.wake();
        }
    }

    /// Octets that may be read now: all while unarmed or open.
    fn allowance(&self) -> usize {
        let limit = self.limit.load(Ordering::Acquire);
        if limit == 0 || self.open.load(Ordering::Acquire) {
            return usize::MAX;
        }
        limit.saturating_sub(self.read.load(Ordering::Relaxed))
    }
}

/// A stream read through a [`Gate`].
#[derive(Debug)]
pub(crate) struct Gated<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> Gated<S> {
    pub(crate) fn new(inner: S, gate: Arc<Gate>) -> Gated<S> {
        Gated { inner, gate }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut allowance = this.gate.allowance();
        if allowance == 0 {
            if let Ok(mut waiting) = this.gate.waiting.lock() {
                *waiting = Some(cx.waker().clone());
            }
            // Opened meanwhile: go on.
            allowance = this.gate.allowance();
            if allowance == 0 {
                return Poll::Pending;
            }
        }
        if allowance >= buf.remaining() {
            let before = buf.filled().len();
            let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
            let read = buf.filled().len() - before;
            this.gate.read.fetch_add(read, Ordering::Relaxed);
            return polled;
        }
        // Less room than the caller offers, while the client is not let in yet: read into a
        // buffer of the room left (a copy, for a head's worth at most).
        let mut room = vec![0; allowance];
        let mut part = ReadBuf::new(&mut room);
        let polled = Pin::new(&mut this.inner).poll_read(cx, &mut part);
        buf.put_slice(part.filled());
        this.gate
            .read
            .fetch_add(part.filled().len(), Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn an_armed_gate_passes_one_preamble_until_it_opens() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let gate = Arc::new(Gate::default());
        let mut gated = Gated::new(server, gate.clone());
        client.write_all(&[b'x'; 200_000]).await.unwrap();
        // Unarmed, as plain HTTP: anything passes.
        let mut buf = vec![0; 10_000];
        gated.read_exact(&mut buf).await.unwrap();
        gate.arm(1000);
        let mut read = 0;
        let limit = 1000 + FRAMING;
        while read < limit {
            read += gated.read(&mut buf).await.unwrap();
        }
        assert_eq!(read, limit);
        let stalled =
            tokio::time::timeout(std::time::Duration::from_millis(50), gated.read(&mut buf));
        assert!(stalled.await.is_err(), "read past the preamble");
        let reader = tokio::spawn(async move {
            let mut rest = vec![0; 1000];
            gated.read_exact(&mut rest).await.map(|_| ())
        });
        gate.open();
        reader.await.unwrap().unwrap();
    }
}
