//! STOMP over TCP.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::connection::{self, Transport};
use crate::hub::ToHub;

struct Tcp {
    stream: TcpStream,
    buf: BytesMut,
}

impl Transport for Tcp {
    async fn receive(&mut self) -> io::Result<Option<Bytes>> {
        self.buf.reserve(16 * 1024);
        // `read_buf` is cancel-safe: nothing is lost if another event wins the race.
        match self.stream.read_buf(&mut self.buf).await? {
            0 => Ok(None),
            _ => Ok(Some(self.buf.split().freeze())),
        }
    }

    async fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        self.stream.write_all(&bytes).await
    }

    async fn close(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// Accepts TCP connections until the listener fails.
pub(crate) async fn listen(
    listener: TcpListener,
    hub: mpsc::Sender<ToHub>,
    queue: usize,
    alive: mpsc::Sender<()>,
) {
    connection::accept_loop(listener, "tcp", |stream, peer| {
        let transport = Tcp {
            stream,
            buf: BytesMut::new(),
        };
        tokio::spawn(connection::serve(
            transport,
            peer,
            hub.clone(),
            queue,
            alive.clone(),
        ));
    })
    .await;
}
