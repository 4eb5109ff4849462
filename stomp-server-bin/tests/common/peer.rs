//! A STOMP client over a tokio socket, frame by frame, for tests of the library in-process.

use std::time::Duration;

use bytes::BytesMut;
use stomp_session::FrameBuf;
use stomp_session::stomp_codec::{Config, Decoder, Item};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// TCP, or a connection in memory.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct Peer {
    stream: Box<dyn Stream>,
    decoder: Decoder,
    buffer: BytesMut,
}

impl Peer {
    /// Connects over TCP with STOMP 1.2 and `headers` (lines such as `"login:alice\n"`);
    /// returns the peer and its CONNECTED frame.
    pub async fn connect(address: &str, headers: &str) -> (Peer, FrameBuf) {
        let stream = TcpStream::connect(address).await.unwrap();
        Peer::over(Box::new(stream), headers).await
    }

    /// Connects in memory (no socket), as [`connect`](Self::connect) does over TCP.
    #[allow(dead_code)] // not every test crate connects in memory
    pub async fn local(server: &stomp_server::Server, headers: &str) -> (Peer, FrameBuf) {
        let stream = server.connect_local().unwrap();
        Peer::over(Box::new(stream), headers).await
    }

    async fn over(stream: Box<dyn Stream>, headers: &str) -> (Peer, FrameBuf) {
        let mut peer = Peer {
            stream,
            decoder: Decoder::new(Config::default()),
            buffer: BytesMut::new(),
        };
        peer.send(&format!("CONNECT\naccept-version:1.2\n{headers}\n\0"))
            .await;
        let connected = peer.frame().await;
        (peer, connected)
    }

    /// Writes raw frames.
    pub async fn send(&mut self, frames: &str) {
        self.stream.write_all(frames.as_bytes()).await.unwrap();
    }

    /// Subscribes with a receipt and waits for it.
    pub async fn subscribe(&mut self, id: &str, destination: &str) {
        self.send(&format!(
            "SUBSCRIBE\nid:{id}\ndestination:{destination}\nreceipt:sub-{id}\n\n\0"
        ))
        .await;
        let receipt = self.frame().await;
        assert_eq!(
            receipt.header("receipt-id").as_deref(),
            Some(format!("sub-{id}").as_str()),
            "{receipt:?}"
        );
    }

    /// The next frame, within 5 s.
    pub async fn frame(&mut self) -> FrameBuf {
        self.frame_within(Duration::from_secs(5))
            .await
            .expect("no frame within 5 s")
    }

    /// The next frame within `wait`, or `None` (also at the end of the stream).
    pub async fn frame_within(&mut self, wait: Duration) -> Option<FrameBuf> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.decoder.decode(&mut self.buffer).unwrap() {
                Some(Item::Frame(frame)) => return Some(frame),
                Some(Item::HeartBeat) => continue,
                None => {}
            }
            let read = self.stream.read_buf(&mut self.buffer);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) | Err(_) => return None,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("read failed: {e}"),
            }
        }
    }
}

/// A frame's body as text.
pub fn body(frame: &FrameBuf) -> String {
    String::from_utf8_lossy(frame.body()).into_owned()
}
