//! STOMP over TCP, plain or in TLS.

use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::timeout;

use crate::connection::{self, Accepted, BATCH_BUFFERS, ReadError, Reader, Settings, Writer};
use crate::login::{Remote, Transport};
use crate::tls::Tls;

/// Octets room is made for before each read: a whole burst of pipelined frames in one read.
const READ_SIZE: usize = 16 * 1024;

/// The read half of a byte stream (TLS, in-memory).
struct StreamReader<R> {
    stream: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin + Send> Reader for StreamReader<R> {
    async fn receive(&mut self) -> Result<Option<Bytes>, ReadError> {
        self.buf.reserve(READ_SIZE);
        // `read_buf` is cancel-safe: nothing is lost if another event wins the race.
        match self.stream.read_buf(&mut self.buf).await? {
            0 => Ok(None),
            _ => Ok(Some(self.buf.split().freeze())),
        }
    }
}

/// The read half of a plain TCP connection. It holds no buffer while it waits, and what it
/// hands out is the size of what was read: most connections are idle most of the time (a
/// browser that only listens), and a read buffer reserved ahead of the data, or one of 16 KiB
/// kept alive by a heart-beat's single octet, would be most of what such a connection costs.
struct TcpReader {
    stream: OwnedReadHalf,
}

impl Reader for TcpReader {
    async fn receive(&mut self) -> Result<Option<Bytes>, ReadError> {
        loop {
            // `readable` is cancel-safe, and nothing is read until it returns.
            self.stream.readable().await?;
            // On the stack, and never across an await: copying what was read out of it costs
            // less than a heap buffer per read sized for the largest.
            let mut buf = [0; READ_SIZE];
            match self.stream.try_read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
                // Readiness can be spurious: wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The write half of a byte stream.
struct StreamWriter<W> {
    stream: W,
}

impl<W: AsyncWrite + Unpin + Send> Writer for StreamWriter<W> {
    async fn send(&mut self, batch: &[Bytes], stall: Duration) -> io::Result<()> {
        // The slices live on the stack: no allocation per write.
        for chunk in batch.chunks(BATCH_BUFFERS) {
            let mut slices = [IoSlice::new(&[]); BATCH_BUFFERS];
            for (slice, bytes) in slices.iter_mut().zip(chunk) {
                *slice = IoSlice::new(bytes);
            }
            let mut rest = &mut slices[..chunk.len()];
            while !rest.is_empty() {
                // Each write must make progress within `stall`; a slow reader that keeps
                // reading is not cut off, one that stopped is.
                let n = match timeout(stall, self.stream.write_vectored(rest)).await {
                    Ok(n) => n?,
                    Err(_) => return Err(io::ErrorKind::TimedOut.into()),
                };
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                IoSlice::advance_slices(&mut rest, n);
            }
        }
        // TLS holds what it encrypted until flushed; TCP's flush does nothing.
        match timeout(stall, self.stream.flush()).await {
            Ok(flushed) => flushed,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    async fn close(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

fn split<S: AsyncRead + AsyncWrite + Send>(
    stream: S,
) -> (
    StreamReader<tokio::io::ReadHalf<S>>,
    StreamWriter<tokio::io::WriteHalf<S>>,
) {
    let (read, write) = tokio::io::split(stream);
    let reader = StreamReader {
        stream: read,
        buf: BytesMut::new(),
    };
    (reader, StreamWriter { stream: write })
}

/// Serves one in-memory connection; the client's end of it.
pub(crate) fn serve_local(settings: &Settings) -> io::Result<tokio::io::DuplexStream> {
    let permit = settings
        .connections
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            io::Error::new(io::ErrorKind::ConnectionRefused, "connection limit reached")
        })?;
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (reader, writer) = split(server);
    let accepted = Accepted {
        remote: Remote::new(Transport::Local, None),
        at: std::time::Instant::now(),
        permit,
        gate: None,
        slot: None,
    };
    tokio::spawn(connection::serve(
        reader,
        writer,
        accepted,
        settings.clone(),
    ));
    Ok(client)
}

/// Accepts TCP connections until the listener fails; with `tls`, each speaks TLS, whose
/// handshake must be done within the CONNECT deadline.
pub(crate) async fn listen(listener: TcpListener, settings: Settings, tls: Option<Tls>) {
    let limit = settings.connections.clone();
    let (kind, transport) = match tls {
        Some(_) => ("tls", Transport::Tls),
        None => ("tcp", Transport::Tcp),
    };
    connection::accept_loop(listener, kind, transport, limit, |stream, accepted| {
        let settings = settings.clone();
        let Some(tls) = &tls else {
            // Plain TCP splits without a lock.
            let (read, write) = stream.into_split();
            let reader = TcpReader { stream: read };
            let writer = StreamWriter { stream: write };
            tokio::spawn(connection::serve(reader, writer, accepted, settings));
            return;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let deadline = accepted.at + settings.connect_timeout;
            let peer = accepted.remote.name();
            if let Some(stream) = tls.handshake(stream, deadline, &peer).await {
                let (reader, writer) = split(stream);
                connection::serve(reader, writer, accepted, settings).await;
            }
        });
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_read_holds_no_buffer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (mut client, (server, _)) = (client.unwrap(), accepted.unwrap());
        let (read, _write) = server.into_split();
        let mut reader = TcpReader { stream: read };
        // The read buffer lives on the stack between readiness and the read, never in the
        // future that waits: an idle connection's future stays small.
        let waiting = std::mem::size_of_val(&reader.receive());
        assert!(
            waiting < READ_SIZE / 8,
            "a waiting read is {waiting} octets"
        );
        client.write_all(b"\n").await.unwrap();
        let read = reader.receive().await.unwrap().unwrap();
        assert_eq!(&read[..], b"\n");
        drop(client);
        assert!(reader.receive().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_batch_goes_out_whole_and_in_order_through_short_writes() {
        // A pipe that takes at most 5 octets at a time: every vectored write is partial.
        let (near, mut far) = tokio::io::duplex(5);
        let mut writer = StreamWriter { stream: near };
        let batch = [
            "MESSAGE\ndestination:/topic/a\n\n",
            "body",
            "\0\n",
            "RECEIPT\n\n\0",
        ]
        .map(|s: &'static str| Bytes::from_static(s.as_bytes()));
        let reading = tokio::spawn(async move {
            let mut all = Vec::new();
            far.read_to_end(&mut all).await.map(|_| all)
        });
        writer.send(&batch, Duration::from_secs(5)).await.unwrap();
        writer.close().await;
        drop(writer);
        assert_eq!(reading.await.unwrap().unwrap(), batch.concat());
    }
}
