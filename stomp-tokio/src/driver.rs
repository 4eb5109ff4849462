//! The task that owns the connection: it feeds the session what the transport reads and the
//! time, writes what the session queues, runs the application's commands, and hands each
//! MESSAGE to its subscription. When a subscription's buffer is full it stops reading the
//! transport (backpressure) until the consumer takes a message: nothing is dropped, and
//! memory stays bounded by the buffers.

use std::collections::HashMap;
use std::time::Instant;

use bytes::BytesMut;
use stomp_session::{
    AckMode, ClientEvent, ClientSession, CloseReason, Message, ReceiptId, SendFrame,
    SubscriptionId, TransactionId,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::sleep_until;

use crate::Error;
use crate::transport::Transport;

/// What the application asks of the connection.
pub(crate) enum Command {
    Send {
        frame: SendFrame,
        /// Answered at the RECEIPT when there is one, else once the frame is queued.
        done: Option<oneshot::Sender<Result<(), Error>>>,
    },
    Subscribe {
        destination: String,
        ack: AckMode,
        headers: Vec<(String, String)>,
        messages: mpsc::Sender<Message>,
        /// Answered at the SUBSCRIBE's RECEIPT: the subscription is active at the server.
        done: oneshot::Sender<Result<SubscriptionId, Error>>,
    },
    Acknowledge {
        message: Box<Message>,
        nack: bool,
        transaction: Option<TransactionId>,
        done: oneshot::Sender<Result<(), Error>>,
    },
    Begin {
        /// Answered at the BEGIN's RECEIPT.
        done: oneshot::Sender<Result<TransactionId, Error>>,
    },
    End {
        id: TransactionId,
        commit: bool,
        /// Answered at the RECEIPT; none for an abort on drop.
        done: Option<oneshot::Sender<Result<(), Error>>>,
    },
    Disconnect {
        done: oneshot::Sender<Result<(), Error>>,
    },
}

/// Who waits for a RECEIPT.
enum Waiter {
    Done(oneshot::Sender<Result<(), Error>>),
    Subscribed(
        SubscriptionId,
        oneshot::Sender<Result<SubscriptionId, Error>>,
    ),
    Began(TransactionId, oneshot::Sender<Result<TransactionId, Error>>),
}

impl Waiter {
    fn fail(self, reason: &CloseReason) {
        match self {
            Waiter::Done(done) => {
                let _ = done.send(Err(Error::Closed(reason.clone())));
            }
            Waiter::Subscribed(_, done) => {
                let _ = done.send(Err(Error::Closed(reason.clone())));
            }
            Waiter::Began(_, done) => {
                let _ = done.send(Err(Error::Closed(reason.clone())));
            }
        }
    }
}

pub(crate) struct Driver {
    pub(crate) session: ClientSession,
    pub(crate) transport: Transport,
    pub(crate) commands: mpsc::Receiver<Command>,
    /// Unsubscribes from dropped subscriptions: unbounded, but one per subscription at most.
    pub(crate) control: mpsc::UnboundedReceiver<SubscriptionId>,
    /// Told once, when the server accepts the connection or the attempt fails.
    pub(crate) connected: Option<oneshot::Sender<Result<(), Error>>>,
    /// Why the connection closed, once it has.
    pub(crate) closed: watch::Sender<Option<CloseReason>>,
}

/// The driver's own state besides what it was given.
#[derive(Default)]
struct Routing {
    subscriptions: HashMap<SubscriptionId, mpsc::Sender<Message>>,
    receipts: HashMap<ReceiptId, Waiter>,
    /// A message whose subscription's buffer was full: input waits until it is taken.
    blocked: Option<(mpsc::Sender<Message>, Message)>,
    disconnecting: Option<oneshot::Sender<Result<(), Error>>>,
}

impl Driver {
    pub(crate) async fn run(mut self) {
        let mut routing = Routing::default();
        let mut buffer = BytesMut::new();
        let mut reading = true;
        let mut commands_open = true;
        loop {
            self.dispatch(&mut routing);
            // A write that fails ends the connection as the server closing it would.
            if self.flush().await.is_err() {
                self.session.handle_eof(Instant::now());
                self.dispatch(&mut routing);
            }
            if self.session.is_closed() {
                break;
            }
            let deadline = self.session.poll_timeout();
            let blocked = routing.blocked.as_ref().map(|(tx, _)| tx.clone());
            tokio::select! {
                permit = reserve(blocked), if routing.blocked.is_some() => {
                    if let Some((_, message)) = routing.blocked.take() {
                        if let Some(permit) = permit {
                            permit.send(message);
                        }
                    }
                    self.session.pause_input(Instant::now(), false);
                }
                command = self.commands.recv(), if commands_open => match command {
                    Some(command) => self.command(command, &mut routing),
                    // Every handle is gone: leave gracefully.
                    None => {
                        commands_open = false;
                        let _ = self.session.disconnect(Instant::now());
                    }
                },
                Some(id) = self.control.recv() => {
                    if routing.subscriptions.remove(&id).is_some() {
                        let _ = self.session.unsubscribe(Instant::now(), &id, false);
                    }
                }
                received = self.transport.receive(&mut buffer), if reading && routing.blocked.is_none() => {
                    let now = Instant::now();
                    match received {
                        Ok(Some(bytes)) => self.session.handle_input(now, &bytes),
                        Ok(None) | Err(_) => {
                            reading = false;
                            self.session.handle_eof(now);
                        }
                    }
                }
                () = wait_until(deadline) => self.session.handle_timeout(Instant::now()),
            }
        }
        self.transport.close().await;
    }

    /// Writes everything the session has queued.
    async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.transport.send(bytes).await?;
        }
        Ok(())
    }

    fn command(&mut self, command: Command, routing: &mut Routing) {
        let now = Instant::now();
        match command {
            Command::Send { frame, done } => {
                let frame = if done.is_some() {
                    frame.with_receipt()
                } else {
                    frame
                };
                match (self.session.send(now, frame), done) {
                    (Ok(Some(receipt)), Some(done)) => {
                        routing.receipts.insert(receipt, Waiter::Done(done));
                    }
                    (Ok(_), _) => {}
                    (Err(e), Some(done)) => {
                        let _ = done.send(Err(e.into()));
                    }
                    (Err(_), None) => {}
                }
            }
            Command::Subscribe {
                destination,
                ack,
                headers,
                messages,
                done,
            } => {
                let pairs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                match self
                    .session
                    .subscribe_with_headers(now, &destination, ack, &pairs, true)
                {
                    Ok(subscribed) => {
                        routing
                            .subscriptions
                            .insert(subscribed.id.clone(), messages);
                        if let Some(receipt) = subscribed.receipt {
                            let waiter = Waiter::Subscribed(subscribed.id, done);
                            routing.receipts.insert(receipt, waiter);
                        }
                    }
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                    }
                }
            }
            Command::Acknowledge {
                message,
                nack,
                transaction,
                done,
            } => {
                let tx = transaction.as_ref();
                let sent = match nack {
                    false => self.session.ack(now, &message, tx, true),
                    true => self.session.nack(now, &message, tx, true),
                };
                match sent {
                    Ok(Some(receipt)) => {
                        routing.receipts.insert(receipt, Waiter::Done(done));
                    }
                    Ok(None) => {
                        let _ = done.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                    }
                }
            }
            Command::Begin { done } => match self.session.begin(now, true) {
                Ok(transaction) => {
                    if let Some(receipt) = transaction.receipt {
                        let waiter = Waiter::Began(transaction.id, done);
                        routing.receipts.insert(receipt, waiter);
                    }
                }
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            },
            Command::End { id, commit, done } => {
                let receipt = done.is_some();
                let ended = match commit {
                    true => self.session.commit(now, &id, receipt),
                    false => self.session.abort(now, &id, receipt),
                };
                match (ended, done) {
                    (Ok(Some(receipt)), Some(done)) => {
                        routing.receipts.insert(receipt, Waiter::Done(done));
                    }
                    (Err(e), Some(done)) => {
                        let _ = done.send(Err(e.into()));
                    }
                    _ => {}
                }
            }
            Command::Disconnect { done } => match self.session.disconnect(now) {
                Ok(()) => routing.disconnecting = Some(done),
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            },
        }
    }

    /// Hands out the session's events, until a subscription's buffer is full.
    fn dispatch(&mut self, routing: &mut Routing) {
        while routing.blocked.is_none() {
            let Some(event) = self.session.poll_event() else {
                return;
            };
            match event {
                ClientEvent::Connected { .. } => {
                    if let Some(connected) = self.connected.take() {
                        let _ = connected.send(Ok(()));
                    }
                }
                ClientEvent::Message(message) => {
                    let Some(id) = message.subscription() else {
                        continue;
                    };
                    // A message for a subscription the application dropped goes nowhere;
                    // unacknowledged, the broker redelivers it.
                    let Some(tx) = routing.subscriptions.get(&id) else {
                        continue;
                    };
                    match tx.try_send(message) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(message)) => {
                            routing.blocked = Some((tx.clone(), message));
                            self.session.pause_input(Instant::now(), true);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {}
                    }
                }
                ClientEvent::Receipt { receipt, .. } => match routing.receipts.remove(&receipt) {
                    Some(Waiter::Done(done)) => {
                        let _ = done.send(Ok(()));
                    }
                    Some(Waiter::Subscribed(id, done)) => {
                        let _ = done.send(Ok(id));
                    }
                    Some(Waiter::Began(id, done)) => {
                        let _ = done.send(Ok(id));
                    }
                    None => {}
                },
                ClientEvent::Error(frame) => {
                    if let Some(connected) = self.connected.take() {
                        let message = frame.header("message").map(|m| m.into_owned());
                        let _ = connected.send(Err(Error::Refused(message)));
                    }
                }
                ClientEvent::Closed { reason, .. } => {
                    if let Some(connected) = self.connected.take() {
                        let _ = connected.send(Err(Error::Closed(reason.clone())));
                    }
                    for (_, waiter) in routing.receipts.drain() {
                        waiter.fail(&reason);
                    }
                    // The subscriptions' streams end once what they hold is taken.
                    routing.subscriptions.clear();
                    if let Some(done) = routing.disconnecting.take() {
                        let outcome = match &reason {
                            CloseReason::Disconnected => Ok(()),
                            CloseReason::DisconnectTimedOut => Err(Error::TimedOut),
                            other => Err(Error::Closed(other.clone())),
                        };
                        let _ = done.send(outcome);
                    }
                    self.closed.send_replace(Some(reason));
                }
                _ => {}
            }
        }
    }
}

/// Room in a full subscription buffer, once the consumer takes a message; `None` if the
/// subscription was dropped.
async fn reserve(blocked: Option<mpsc::Sender<Message>>) -> Option<mpsc::OwnedPermit<Message>> {
    match blocked {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

async fn wait_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
