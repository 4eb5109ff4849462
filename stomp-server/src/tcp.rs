//! STOMP over TCP.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

use crate::connection::{self, Reader, Settings, Writer};

struct TcpReader {
    stream: OwnedReadHalf,
    buf: BytesMut,
}

impl Reader for TcpReader {
    async fn receive(&mut self) -> io::Result<Option<Bytes>> {
        self.buf.reserve(16 * 1024);
        // `read_buf` is cancel-safe: nothing is lost if another event wins the race.
        match self.stream.read_buf(&mut self.buf).await? {
            0 => Ok(None),
            _ => Ok(Some(self.buf.split().freeze())),
        }
    }
}

struct TcpWriter {
    stream: OwnedWriteHalf,
}

impl Writer for TcpWriter {
    async fn send(&mut self, bytes: Bytes, stall: Duration) -> io::Result<()> {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            // Each write must make progress within `stall`; a slow reader that keeps reading
            // is not cut off, one that stopped is.
            let n = match timeout(stall, self.stream.write(rest)).await {
                Ok(n) => n?,
                Err(_) => return Err(io::ErrorKind::TimedOut.into()),
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    async fn close(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// Accepts TCP connections until the listener fails.
pub(crate) async fn listen(listener: TcpListener, settings: Settings) {
    let limit = settings.connections.clone();
    connection::accept_loop(listener, "tcp", limit, |stream, accepted| {
        let (read, write) = stream.into_split();
        let reader = TcpReader {
            stream: read,
            buf: BytesMut::new(),
        };
        let writer = TcpWriter { stream: write };
        tokio::spawn(connection::serve(
            reader,
            writer,
            accepted,
            settings.clone(),
        ));
    })
    .await;
}
