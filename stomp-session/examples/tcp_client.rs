//! A client on a plain blocking `TcpStream`, driving the sans-IO session by hand:
//! `cargo run -p stomp-session --example tcp_client -- 127.0.0.1:61613`.
// The driver reads the clock and hands the time to the session, which never does.
#![allow(clippy::disallowed_methods)]
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;
use stomp_session::{AckMode, AskReceipt, ClientConfig, ClientEvent, ClientSession, SendFrame};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args().nth(1);
    let mut socket = TcpStream::connect(address.as_deref().unwrap_or("127.0.0.1:61613"))?;
    let config = ClientConfig::new("/").with_login("guest", "guest");
    let mut client = ClientSession::new(config, Instant::now());
    let mut buf = [0u8; 8192];
    loop {
        // Act on what arrived: acting queues frames...
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Connected { .. } => {
                    client.subscribe(
                        Instant::now(),
                        "/queue/demo",
                        AckMode::Auto,
                        AskReceipt::No,
                    )?;
                    client.send(Instant::now(), SendFrame::new("/queue/demo", "hello"))?;
                }
                ClientEvent::Message(message) => {
                    println!("received {:?}", String::from_utf8_lossy(message.body()));
                    client.disconnect(Instant::now())?;
                }
                _ => {}
            }
        }
        // ...so write out everything queued before waiting for more input.
        while let Some(bytes) = client.poll_transmit() {
            socket.write_all(&bytes)?;
        }
        if client.is_closed() {
            return Ok(());
        }
        // A real driver also sets the socket's read timeout to `poll_timeout()` and calls
        // `handle_timeout`, so that heart-beats go out on time: stomp-blocking does.
        match socket.read(&mut buf)? {
            0 => client.handle_eof(Instant::now()),
            n => client.handle_input(Instant::now(), &buf[..n]),
        }
    }
}
