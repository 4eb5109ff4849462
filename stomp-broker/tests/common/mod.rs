//! A broker with client sessions attached, on virtual time, and a driver that writes at once
//! (or, for connections marked stalled, not at all).
#![allow(dead_code, unreachable_pub)]

pub mod wire;

use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_broker::{Broker, BrokerEvent, ConnectionId};
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, ClientSession, CloseReason, Message, SendFrame,
};

pub struct Net {
    pub now: Instant,
    pub broker: Broker,
    pub clients: Vec<(ConnectionId, ClientSession, Vec<ClientEvent>)>,
    pub events: Vec<BrokerEvent>,
    /// Every buffer each connection was handed, to check that bodies are shared.
    pub wrote: Vec<(ConnectionId, Bytes)>,
    /// Connections whose transport writes nothing (a reader that stopped): what they are
    /// handed is held here, unwritten.
    pub stalled: Vec<ConnectionId>,
    /// Octets handed to each connection, as a driver counts them for write reports.
    pub handed: std::collections::HashMap<ConnectionId, u64>,
}

impl Net {
    pub fn new(broker: Broker) -> Net {
        #[allow(clippy::disallowed_methods)] // the origin of virtual time
        let now = Instant::now();
        Net {
            now,
            broker,
            clients: Vec::new(),
            events: Vec::new(),
            wrote: Vec::new(),
            stalled: Vec::new(),
            handed: Default::default(),
        }
    }

    /// Connects a client with `login`; returns its index.
    pub fn client(&mut self, login: &str) -> usize {
        let connection = self.broker.open(self.now);
        let config = ClientConfig::new("/").with_login(login, "secret");
        self.clients
            .push((connection, ClientSession::new(config, self.now), Vec::new()));
        self.pump();
        self.clients.len() - 1
    }

    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for (connection, client, _) in &mut self.clients {
                // A flow-controlled connection is not read.
                while self.broker.wants_input(*connection) {
                    let Some(bytes) = client.poll_transmit() else {
                        break;
                    };
                    self.broker.handle_input(*connection, self.now, &bytes);
                    progressed = true;
                }
            }
            while let Some(connection) = self.broker.poll_ready() {
                let stalled = self.stalled.contains(&connection);
                while let Some(bytes) = (!stalled)
                    .then(|| self.broker.poll_transmit(connection))
                    .flatten()
                {
                    progressed = true;
                    *self.handed.entry(connection).or_default() += bytes.len() as u64;
                    self.wrote.push((connection, bytes.clone()));
                    if let Some((_, client, _)) =
                        self.clients.iter_mut().find(|c| c.0 == connection)
                    {
                        client.handle_input(self.now, &bytes);
                    }
                }
                // Written at once: report it when asked.
                if let Some(total) = self.broker.poll_write_report(connection) {
                    let written = self.handed.get(&connection).copied().unwrap_or(0);
                    assert!(written >= total, "a report asked beyond what was handed");
                    self.broker.handle_written(connection, self.now, written);
                    progressed = true;
                }
                if !stalled && self.broker.is_closed(connection) {
                    if let Some((_, client, _)) =
                        self.clients.iter_mut().find(|c| c.0 == connection)
                    {
                        client.handle_eof(self.now);
                    }
                    self.broker.remove(connection, self.now);
                }
            }
            for (_, client, events) in &mut self.clients {
                while let Some(event) = client.poll_event() {
                    events.push(event);
                    progressed = true;
                }
            }
            while let Some(event) = self.broker.poll_event() {
                self.events.push(event);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
    }

    pub fn subscribe(
        &mut self,
        who: usize,
        destination: &str,
        ack: AckMode,
    ) -> stomp_session::SubscriptionId {
        let now = self.now;
        let sub = self.clients[who]
            .1
            .subscribe(now, destination, ack, AskReceipt::Yes)
            .unwrap();
        self.pump();
        sub.id
    }

    pub fn send(&mut self, who: usize, destination: &str, body: &'static str) {
        let now = self.now;
        self.clients[who]
            .1
            .send(now, SendFrame::new(destination, body))
            .unwrap();
        self.pump();
    }

    /// The messages `who` received so far, and forgets them.
    pub fn take_messages(&mut self, who: usize) -> Vec<Message> {
        let events = std::mem::take(&mut self.clients[who].2);
        let (messages, rest): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| matches!(e, ClientEvent::Message(_)));
        self.clients[who].2 = rest;
        messages
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Moves virtual time on by `by`, firing every deadline then due, on both sides.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        for (connection, client, _) in &mut self.clients {
            if client.poll_timeout().is_some_and(|at| at <= now) {
                client.handle_timeout(now);
            }
            if self
                .broker
                .poll_timeout(*connection)
                .is_some_and(|at| at <= now)
            {
                self.broker.handle_timeout(*connection, now);
            }
        }
        self.pump();
    }

    /// The `message` of the ERROR `who` received, if any.
    pub fn error_message(&self, who: usize) -> Option<String> {
        self.clients[who].2.iter().find_map(|e| match e {
            ClientEvent::Error(frame) => frame.header("message").map(|m| m.into_owned()),
            _ => None,
        })
    }

    /// The `message` of the ERROR `who` received, if any, checking that a refused frame got no
    /// RECEIPT before it (and an accepted one did).
    pub fn refusal(&self, who: usize) -> Option<String> {
        let error = self.error_message(who);
        assert_eq!(
            self.got_receipt(who),
            error.is_none(),
            "no RECEIPT before an ERROR"
        );
        error
    }

    /// Whether `who` received a RECEIPT.
    pub fn got_receipt(&self, who: usize) -> bool {
        self.receipts(who) > 0
    }

    /// How many RECEIPTs `who` got.
    pub fn receipts(&self, who: usize) -> usize {
        self.clients[who]
            .2
            .iter()
            .filter(|e| matches!(e, ClientEvent::Receipt { .. }))
            .count()
    }

    pub fn closed_reason(&self, who: usize) -> Option<&CloseReason> {
        self.clients[who].2.iter().find_map(|e| match e {
            ClientEvent::Closed { reason, .. } => Some(reason),
            _ => None,
        })
    }
}

pub fn bodies(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.body()).into_owned())
        .collect()
}
