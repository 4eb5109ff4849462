//! What the stomp-tokio tests share: a TCP proxy that cuts or freezes the connections through
//! it, to take a client's connection away while the server stays up.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy that can cut every connection through it, or freeze them (stop forwarding
/// while keeping the sockets open).
pub struct Proxy {
    /// Where clients connect.
    pub address: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    frozen: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (frozen, _) = watch::channel(false);
        let accepting = (links.clone(), frozen.clone());
        tokio::spawn(async move {
            let (links, frozen) = accepting;
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let up = tokio::spawn(pipe(client_read, server_write, frozen.subscribe()));
                let down = tokio::spawn(pipe(server_read, client_write, frozen.subscribe()));
                links.lock().unwrap().extend([up, down]);
            }
        });
        Proxy {
            address,
            links,
            frozen,
        }
    }

    /// Closes every connection through the proxy; new ones are still accepted.
    pub fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let Ok(n @ 1..) = from.read(&mut buffer).await else {
            return;
        };
        while *frozen.borrow_and_update() {
            if frozen.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
