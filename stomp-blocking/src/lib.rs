//! A blocking STOMP client over `std::net::TcpStream` (or any [`Stream`] wrapping one), driving
//! the sans-IO [`ClientSession`] on one thread with no async runtime: the place to start for a
//! program that talks to RabbitMQ, ActiveMQ or `stomp-server` without tokio.
//!
//! The other crates of the workspace: `stomp-codec` parses and encodes frames;
//! `stomp-session` holds the client and server state machines this crate drives;
//! `stomp-broker` is the sans-IO in-memory broker; `stomp-server` is the runnable broker
//! (`cargo run --release -p stomp-server-bin`).
//!
//! The whole driver is one loop: write what the session has to send, hand out its events, and
//! otherwise read from the socket with a read timeout set to the session's next deadline, so that
//! heart-beats go out and a silent server is noticed on time.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use stomp_blocking::Client;
//! use stomp_session::{AckMode, AskReceipt, ClientConfig, ClientEvent, SendFrame};
//!
//! let config = ClientConfig::new("/").with_login("guest", "guest");
//! let mut client = Client::connect("127.0.0.1:61613", config)?;
//! let now = Instant::now();
//! client.session().subscribe(now, "/queue/demo", AckMode::Auto, AskReceipt::No)?;
//! client.session().send(now, SendFrame::new("/queue/demo", "hello"))?;
//! while let Some(event) = client.next_event(Some(Duration::from_secs(5)))? {
//!     if let ClientEvent::Message(message) = event {
//!         println!("{:?}", message.body());
//!         break;
//!     }
//! }
//! client.disconnect(Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use stomp_session::{ClientConfig, ClientEvent, ClientSession, CloseReason};

/// A blocking byte stream a [`Client`] runs over: a `TcpStream`, or a wrapper of one (TLS, or
/// an adapter that carries the bytes in WebSocket messages).
pub trait Stream: Read + Write {
    /// Bounds how long the next read may wait; `None` waits for ever. A read that times out
    /// fails with `WouldBlock` or `TimedOut`, and a later read goes on where it stopped.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Ends the stream both ways.
    fn shutdown(&mut self) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Both)
    }
}

/// A connected STOMP client on a blocking stream, TCP unless said otherwise.
#[derive(Debug)]
pub struct Client<S = TcpStream> {
    stream: S,
    session: ClientSession,
    buf: Vec<u8>,
    /// Whether the socket has reached EOF or been shut down.
    eof: bool,
}

/// Why [`Client::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The socket failed.
    Io(io::Error),
    /// The session closed before CONNECTED came.
    Closed(CloseReason),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Io(e) => write!(f, "connecting: {e}"),
            ConnectError::Closed(reason) => write!(f, "connecting: {reason}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Io(e) => Some(e),
            ConnectError::Closed(_) => None,
        }
    }
}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        ConnectError::Io(e)
    }
}

impl Client {
    /// Connects to `addr` over TCP (Nagle off) and waits for CONNECTED (bounded by the
    /// configuration's connect timeout). The `Connected` event is consumed;
    /// [`session`](Self::session) tells the negotiated version and heart-beats.
    pub fn connect(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client, ConnectError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Client::over(stream, config)
    }
}

impl<S: Stream> Client<S> {
    /// Speaks STOMP over a stream already open, and waits for CONNECTED as
    /// [`connect`](Client::connect) does.
    pub fn over(stream: S, config: ClientConfig) -> Result<Client<S>, ConnectError> {
        let mut client = Client {
            stream,
            session: ClientSession::new(config, Instant::now()),
            buf: vec![0; 64 * 1024],
            eof: false,
        };
        loop {
            match client.next_event(None)? {
                Some(ClientEvent::Connected { .. }) => return Ok(client),
                Some(ClientEvent::Closed { reason, .. }) => {
                    return Err(ConnectError::Closed(reason));
                }
                Some(_) => {}
                None => return Err(ConnectError::Closed(CloseReason::PeerClosed)),
            }
        }
    }

    /// The session, for commands (`subscribe`, `send`, `ack`, ...) and getters. What commands
    /// queue is written by the next [`next_event`](Self::next_event) or [`flush`](Self::flush).
    pub fn session(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    /// Writes everything the session has queued.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut wrote = false;
        while let Some(bytes) = self.session.poll_transmit() {
            if !self.eof {
                self.stream.write_all(&bytes)?;
                wrote = true;
            }
        }
        // A wrapper may hold what it was given until flushed (TLS, WebSocket messages).
        if wrote {
            self.stream.flush()?;
        }
        Ok(())
    }

    /// Drives the session until it has an event, and returns it; `None` when `wait` passes
    /// first, or when the session has closed and reported everything.
    pub fn next_event(&mut self, wait: Option<Duration>) -> io::Result<Option<ClientEvent>> {
        let give_up = wait.map(|w| Instant::now() + w);
        loop {
            self.flush()?;
            if let Some(event) = self.session.poll_event() {
                return Ok(Some(event));
            }
            if self.session.is_closed() {
                return Ok(None);
            }
            let now = Instant::now();
            if give_up.is_some_and(|t| now >= t) {
                return Ok(None);
            }
            let wake = [give_up, self.session.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            if wake.is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
                continue;
            }
            self.stream.set_read_timeout(wake.map(|t| t - now))?;
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    self.session.handle_eof(Instant::now());
                }
                Ok(n) => {
                    let received = self.buf.get(..n).unwrap_or_default();
                    self.session.handle_input(Instant::now(), received);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.session.handle_timeout(Instant::now());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drives the session for `duration`, collecting every event.
    pub fn run_for(&mut self, duration: Duration) -> io::Result<Vec<ClientEvent>> {
        let until = Instant::now() + duration;
        let mut events = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(events);
            }
            match self.next_event(Some(left))? {
                Some(event) => events.push(event),
                None if self.session.is_closed() => return Ok(events),
                None => {}
            }
        }
    }

    /// Disconnects gracefully: DISCONNECT with a receipt, then waits for the RECEIPT or the
    /// server's close, at most the configured disconnect timeout. Returns how the session
    /// closed and the events that came meanwhile.
    pub fn disconnect(
        mut self,
        wait: Duration,
    ) -> io::Result<(Option<CloseReason>, Vec<ClientEvent>)> {
        let now = Instant::now();
        if self.session.disconnect(now).is_err() {
            return Ok((None, Vec::new()));
        }
        let mut events = Vec::new();
        let mut reason = None;
        while let Some(event) = self.next_event(Some(wait))? {
            if let ClientEvent::Closed { reason: r, .. } = &event {
                reason = Some(r.clone());
            }
            events.push(event);
        }
        let _ = self.stream.shutdown();
        Ok((reason, events))
    }
}
