//! A client session and a server session wired together on virtual time, after quinn-proto's
//! `Pair`: bytes pass both ways whole or one octet at a time, a closed session closes the
//! "socket" so its peer sees EOF, and a tiny application on the server side accepts connections
//! and delivers each SEND to the subscriptions of its destination.

use std::time::{Duration, Instant};

use stomp_session::{
    ClientConfig, ClientEvent, ClientSession, Delivery, ServerConfig, ServerEvent, ServerSession,
};

/// Two sessions and the bytes between them: see the module's documentation.
#[derive(Debug)]
pub struct Pair {
    /// The virtual time now.
    pub now: Instant,
    /// When the pair was made.
    pub start: Instant,
    /// The client session.
    pub client: ClientSession,
    /// The server session.
    pub server: ServerSession,
    /// Pass bytes one octet at a time.
    pub bytewise: bool,
    /// Accept every CONNECT.
    pub auto_accept: bool,
    /// Deliver every SEND to this session's subscriptions of its destination.
    pub echo: bool,
    /// Every event the client reported.
    pub client_events: Vec<ClientEvent>,
    /// Every event the server reported.
    pub server_events: Vec<ServerEvent>,
    /// Everything each side wrote, with the virtual time it was written at.
    pub to_server: Vec<(Duration, Vec<u8>)>,
    /// What the server wrote.
    pub to_client: Vec<(Duration, Vec<u8>)>,
    /// Whether each side's "socket" has been closed, so the other saw EOF.
    pub client_socket_closed: bool,
    /// Whether the server's "socket" has been closed.
    pub server_socket_closed: bool,
    /// A side that stopped writing (a silent peer).
    pub mute_client: bool,
    /// The server stopped writing.
    pub mute_server: bool,
    subscriptions: Vec<(stomp_session::SubscriptionId, String)>,
    next_message: u64,
}

impl Pair {
    /// A pair of fresh sessions, passing bytes whole or one octet at a time.
    pub fn new(client: ClientConfig, server: ServerConfig, bytewise: bool) -> Pair {
        // Only the origin of virtual time; no test reads the clock again.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        Pair {
            now: start,
            start,
            client: ClientSession::new(client, start),
            server: ServerSession::new(server, start),
            bytewise,
            auto_accept: true,
            echo: true,
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_socket_closed: false,
            server_socket_closed: false,
            mute_client: false,
            mute_server: false,
            subscriptions: Vec::new(),
            next_message: 0,
        }
    }

    /// A pair that has connected, its events cleared.
    pub fn connected(client: ClientConfig, server: ServerConfig, bytewise: bool) -> Pair {
        let mut pair = Pair::new(client, server, bytewise);
        pair.drive();
        assert!(pair.client.is_connected(), "{:?}", pair.client_events);
        pair.client_events.clear();
        pair.server_events.clear();
        pair
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Passes bytes and events until neither side has anything more to say.
    pub fn drive(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(bytes) = self.client.poll_transmit() {
                progressed = true;
                if self.mute_client || self.client_socket_closed {
                    continue;
                }
                self.to_server.push((self.elapsed(), bytes.to_vec()));
                feed(self.bytewise, &bytes, |b| {
                    self.server.handle_input(self.now, b)
                });
            }
            while let Some(bytes) = self.server.poll_transmit() {
                progressed = true;
                if self.mute_server || self.server_socket_closed {
                    continue;
                }
                self.to_client.push((self.elapsed(), bytes.to_vec()));
                feed(self.bytewise, &bytes, |b| {
                    self.client.handle_input(self.now, b)
                });
            }
            while let Some(event) = self.server.poll_event() {
                progressed = true;
                self.on_server_event(&event);
                self.server_events.push(event);
            }
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                self.client_events.push(event);
            }
            if self.server.is_closed() && !self.server_socket_closed {
                self.server_socket_closed = true;
                self.client.handle_eof(self.now);
                progressed = true;
            }
            if self.client.is_closed() && !self.client_socket_closed {
                self.client_socket_closed = true;
                self.server.handle_eof(self.now);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
    }

    fn on_server_event(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::Connect(_) if self.auto_accept => self.server.accept(self.now).unwrap(),
            ServerEvent::Subscribe {
                id, destination, ..
            } => {
                self.subscriptions.push((id.clone(), destination.clone()));
            }
            ServerEvent::Unsubscribe { id, .. } => self.subscriptions.retain(|(s, _)| s != id),
            ServerEvent::Send(frame) if self.echo => {
                let destination = frame.header("destination").unwrap().into_owned();
                let targets: Vec<stomp_session::SubscriptionId> = self
                    .subscriptions
                    .iter()
                    .filter(|(_, d)| *d == destination)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in targets {
                    self.next_message += 1;
                    let message_id = format!("m-{}", self.next_message);
                    let delivery = Delivery::new(&destination, &message_id, frame.body());
                    self.server.deliver(self.now, &id, delivery).unwrap();
                }
            }
            _ => {}
        }
    }

    /// Advances virtual time to `now + by`, calling each side's `handle_timeout` at each of
    /// its deadlines on the way, in order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        loop {
            self.drive();
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = target;
        self.drive();
    }

    /// The server's frames (not heart-beats) as text, in order.
    pub fn server_wrote(&self) -> String {
        text(&self.to_client)
    }

    /// The client's frames (not heart-beats) as text, in order.
    pub fn client_wrote(&self) -> String {
        text(&self.to_server)
    }

    /// Why the server session closed, if it did.
    pub fn server_closed_reason(&self) -> Option<&stomp_session::CloseReason> {
        self.server_events.iter().find_map(|e| match e {
            ServerEvent::Closed { reason, .. } => Some(reason),
            _ => None,
        })
    }

    /// Why the client session closed, if it did.
    pub fn client_closed_reason(&self) -> Option<&stomp_session::CloseReason> {
        self.client_events.iter().find_map(|e| match e {
            ClientEvent::Closed { reason, .. } => Some(reason),
            _ => None,
        })
    }
}

fn feed(bytewise: bool, bytes: &[u8], mut sink: impl FnMut(&[u8])) {
    if bytewise {
        for octet in bytes.chunks(1) {
            sink(octet);
        }
    } else {
        sink(bytes);
    }
}

fn text(writes: &[(Duration, Vec<u8>)]) -> String {
    let all: Vec<u8> = writes.iter().flat_map(|(_, b)| b.clone()).collect();
    String::from_utf8_lossy(&all).into_owned()
}

/// Both ways of passing bytes, for tests that run twice.
pub const BOTH: [bool; 2] = [false, true];
