//! The broker task: it owns the sans-IO broker, takes what connections receive, and hands each
//! connection its bytes to write and its next deadline.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use stomp_broker::{Broker, BrokerEvent, ConnectionId};
use tokio::sync::{mpsc, oneshot};

use crate::chat;

/// What a connection task tells the broker task.
#[derive(Debug)]
pub(crate) enum ToHub {
    Open {
        out: mpsc::Sender<Out>,
        peer: String,
        reply: oneshot::Sender<ConnectionId>,
    },
    Input(ConnectionId, Bytes),
    Eof(ConnectionId),
    Timeout(ConnectionId),
    /// Ctrl-C: every client gets an ERROR and a close.
    Shutdown,
}

/// What the broker task tells a connection task.
#[derive(Debug)]
pub(crate) enum Out {
    Write(Bytes),
    /// When to report a timeout next; `None`: no deadline.
    Deadline(Option<Instant>),
    /// Everything is written: close the connection.
    Close,
}

/// Room a full outbound queue keeps for the final ERROR.
const HEADROOM: usize = 4;

struct Link {
    out: mpsc::Sender<Out>,
    deadline: Option<Instant>,
}

pub(crate) struct Hub {
    broker: Broker,
    links: HashMap<ConnectionId, Link>,
}

impl Hub {
    pub(crate) fn new(broker: Broker) -> Hub {
        Hub {
            broker,
            links: HashMap::new(),
        }
    }

    /// The outbound queue size each connection gets, its headroom included.
    pub(crate) fn queue_size(max_outbound: usize) -> usize {
        max_outbound + HEADROOM
    }

    /// Runs until shut down and every connection is closed.
    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<ToHub>) {
        let mut shutting_down = false;
        while let Some(message) = inbox.recv().await {
            let now = Instant::now();
            match message {
                ToHub::Open { out, peer, reply } => {
                    let id = self.broker.open(now);
                    tracing::info!(connection = id, %peer, "connection opened");
                    self.links.insert(
                        id,
                        Link {
                            out,
                            deadline: None,
                        },
                    );
                    let _ = reply.send(id);
                    if shutting_down {
                        self.broker
                            .close_with_error(id, now, "server shutting down");
                    }
                }
                ToHub::Input(id, bytes) => self.broker.handle_input(id, now, &bytes),
                ToHub::Eof(id) => self.broker.handle_eof(id, now),
                ToHub::Timeout(id) => {
                    // The connection's timer has fired and is unset: it gets its next deadline
                    // whether or not that changed.
                    if let Some(link) = self.links.get_mut(&id) {
                        link.deadline = None;
                    }
                    self.broker.handle_timeout(id, now);
                }
                ToHub::Shutdown => {
                    tracing::info!(connections = self.broker.connections(), "shutting down");
                    shutting_down = true;
                    self.broker.shut_down(now, "server shutting down");
                }
            }
            self.application(now);
            self.flush(now);
            if shutting_down && self.links.is_empty() {
                return;
            }
        }
    }

    fn application(&mut self, now: Instant) {
        while let Some(event) = self.broker.poll_event() {
            match event {
                BrokerEvent::Connected { connection, login } => {
                    tracing::info!(
                        connection,
                        login = login.as_deref().unwrap_or("-"),
                        "connected"
                    );
                }
                BrokerEvent::AppMessage {
                    connection,
                    destination,
                    frame,
                } => {
                    chat::on_app_message(&mut self.broker, now, connection, &destination, &frame);
                }
                BrokerEvent::Dropped {
                    connection,
                    destination,
                } => {
                    tracing::warn!(connection, %destination, "SEND to a destination nobody serves dropped");
                }
                BrokerEvent::Closed { connection, reason } => {
                    tracing::info!(connection, %reason, "session closed");
                }
                other => tracing::debug!(?other, "broker event"),
            }
        }
    }

    /// Hands every ready connection its bytes and deadline; closes finished ones.
    fn flush(&mut self, now: Instant) {
        while let Some(id) = self.broker.poll_ready() {
            let Some(link) = self.links.get_mut(&id) else {
                continue;
            };
            let mut closing_slow = false;
            while let Some(bytes) = self.broker.poll_transmit(id) {
                // Once closed, only the ERROR is left, and the headroom keeps room for it.
                if !closing_slow && link.out.capacity() <= HEADROOM {
                    closing_slow = true;
                    // Backpressure: the consumer is too slow. What it has not been handed is
                    // dropped, and it is closed with an ERROR that still fits in the queue.
                    tracing::warn!(
                        connection = id,
                        "outbound queue full: closing a slow consumer"
                    );
                    self.broker
                        .close_with_error(id, now, "too slow, outbound queue full");
                    continue;
                }
                if link.out.try_send(Out::Write(bytes)).is_err() {
                    self.broker.handle_eof(id, now);
                    break;
                }
            }
            let deadline = self.broker.poll_timeout(id);
            if deadline != link.deadline {
                link.deadline = deadline;
                let _ = link.out.try_send(Out::Deadline(deadline));
            }
            if self.broker.is_closed(id) {
                let _ = link.out.try_send(Out::Close);
                self.links.remove(&id);
                self.broker.remove(id, now);
                // Removing may have redelivered queue messages elsewhere.
                self.application(now);
            }
        }
    }
}
