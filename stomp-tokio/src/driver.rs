//! The task that owns the connection: it opens the transport, feeds the session what the
//! transport reads and the time, writes what the session queues, runs the application's
//! commands, and hands each MESSAGE to its subscription. When a subscription's buffer is full
//! it stops reading the transport (backpressure) until the consumer takes a message: nothing
//! is dropped, and memory stays bounded by the buffers.
//!
//! With a reconnect policy, a lost connection is followed by attempts over the endpoints in
//! turn; on the new connection the subscriptions are restored under their ids before the SENDs
//! still awaiting a RECEIPT go out again, and only then are queued commands read. What awaited
//! its answer when the server's ERROR ended the connection is not made again (the ERROR may
//! be its refusal), nor what [`MAX_TRIES`] connections ended before answering it: a frame the
//! server refuses costs one connection, or a few, never a reconnect loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, ClientSession, CloseReason, ReceiptId,
    SendFrame, SessionError, SubscriptionId, TransactionId,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout};
use tokio_rustls::TlsConnector;

use crate::Error;
use crate::command::{Command, Control, Ending, Verdict};
use crate::endpoint::Endpoint;
use crate::events::{ConnectionEvent, ConnectionInfo, Shared};
use crate::message::Message;
use crate::reconnect::Reconnect;
use crate::request::{self, Requests};
use crate::tls::Trust;
use crate::transport::{Stream, Transport};

/// Commands processed in a row before what they queued is written.
const BATCH: usize = 64;

/// Connections a SEND or SUBSCRIBE awaiting its RECEIPT is made on at most: one that each of
/// them ended before its answer may be what ends them (ActiveMQ drops a connection without a
/// word over a header it cannot read), and is given up.
const MAX_TRIES: u32 = 3;

/// Where a command that answers with nothing but success is told its outcome.
type Done = oneshot::Sender<Result<(), Error>>;

/// Who waits for a RECEIPT.
enum Waiter {
    /// A SEND outside any transaction: kept across a reconnect and sent again; with the
    /// connections it was made on.
    Sent(SendFrame, Done, u32),
    /// An acknowledgement, a transaction's end, or a SEND within a transaction.
    Done(oneshot::Sender<Result<(), Error>>),
    Subscribed(
        SubscriptionId,
        oneshot::Sender<Result<SubscriptionId, Error>>,
    ),
    Began(TransactionId, oneshot::Sender<Result<TransactionId, Error>>),
    /// A subscription restored on a new connection.
    Restored(SubscriptionId),
}

impl Waiter {
    /// The server's RECEIPT came.
    fn confirm(self) {
        match self {
            Waiter::Sent(_, done, _) | Waiter::Done(done) => {
                let _ = done.send(Ok(()));
            }
            Waiter::Subscribed(id, done) => {
                let _ = done.send(Ok(id));
            }
            Waiter::Began(id, done) => {
                let _ = done.send(Ok(id));
            }
            Waiter::Restored(_) => {}
        }
    }

    fn refuse(self, error: Error) {
        match self {
            Waiter::Sent(_, done, _) | Waiter::Done(done) => {
                let _ = done.send(Err(error));
            }
            Waiter::Subscribed(_, done) => {
                let _ = done.send(Err(error));
            }
            Waiter::Began(_, done) => {
                let _ = done.send(Err(error));
            }
            Waiter::Restored(_) => {}
        }
    }

    fn fail(self, reason: &CloseReason) {
        self.refuse(Error::Closed(reason.clone()));
    }
}

/// A live subscription, as it is restored after a reconnect.
struct Subscription {
    destination: String,
    ack: AckMode,
    headers: Vec<(String, String)>,
    messages: mpsc::Sender<Message>,
    /// The `position` of the last message it got, for a topic that keeps a history: on a
    /// new connection it asks for what came after.
    position: Option<String>,
    /// Connections lost in a row while its SUBSCRIBE awaited the RECEIPT.
    unanswered: u32,
}

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for CONNECTED.
    Connecting,
    /// Connected again, waiting for the RECEIPTs of this many restored subscriptions.
    Restoring(usize),
    /// Taking commands.
    Ready,
}

/// How one connection ended.
enum Ended {
    /// For good: a graceful DISCONNECT, or every handle gone.
    Finished(CloseReason),
    /// Before it was ready (refused, unreachable, lost while restoring).
    Failed(Error),
    /// After it was ready.
    Lost(CloseReason),
}

/// How the driver is set up, from the builder.
pub(crate) struct Setup {
    pub(crate) config: ClientConfig,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) trust: Trust,
    pub(crate) reconnect: Option<Reconnect>,
    /// How long a write may make no progress before the connection counts as lost.
    pub(crate) write_timeout: Duration,
    /// Further headers of the WebSocket handshake.
    pub(crate) ws_headers: Vec<(String, String)>,
    /// A stream the application opened, for the first connection instead of an endpoint.
    pub(crate) given: Option<Stream>,
}

pub(crate) struct Driver {
    setup: Setup,
    tls: Option<TlsConnector>,
    commands: mpsc::Receiver<Command>,
    control: mpsc::UnboundedReceiver<Control>,
    /// Told once, when the first connection is up or every endpoint failed.
    first: Option<oneshot::Sender<Result<(), Error>>>,
    /// Why the client closed, once it has for good.
    closed: watch::Sender<Option<CloseReason>>,
    shared: Arc<Shared>,
    /// The current connection's number, from 1.
    connection: u64,
    endpoint: usize,
    phase: Phase,
    info: Option<ConnectionInfo>,
    subscriptions: HashMap<SubscriptionId, Subscription>,
    receipts: HashMap<ReceiptId, Waiter>,
    /// A message whose subscription's buffer was full: input waits until it is taken.
    blocked: Option<(mpsc::Sender<Message>, Message)>,
    /// Kept from a lost connection: SENDs to send again, subscriptions to confirm once
    /// restored.
    resend: Vec<(SendFrame, Done, u32)>,
    unconfirmed: Vec<(
        SubscriptionId,
        oneshot::Sender<Result<SubscriptionId, Error>>,
    )>,
    disconnecting: Option<oneshot::Sender<Result<(), Error>>>,
    /// Every handle is gone.
    abandoned: bool,
    /// Requests waiting for their reply.
    requests: Requests,
    /// The subscription replies come on, once a request needed one.
    replies: Option<SubscriptionId>,
}

impl Driver {
    pub(crate) fn new(
        setup: Setup,
        commands: mpsc::Receiver<Command>,
        control: mpsc::UnboundedReceiver<Control>,
        first: oneshot::Sender<Result<(), Error>>,
        closed: watch::Sender<Option<CloseReason>>,
        shared: Arc<Shared>,
    ) -> Driver {
        Driver {
            setup,
            tls: None,
            commands,
            control,
            first: Some(first),
            closed,
            shared,
            connection: 0,
            endpoint: 0,
            phase: Phase::Connecting,
            info: None,
            subscriptions: HashMap::new(),
            receipts: HashMap::new(),
            blocked: None,
            resend: Vec::new(),
            unconfirmed: Vec::new(),
            disconnecting: None,
            abandoned: false,
            requests: Requests::default(),
            replies: None,
        }
    }

    pub(crate) async fn run(mut self) {
        // The first connection: each endpoint once, in order; the last failure is the answer.
        let mut lost = loop {
            match self.attempt().await {
                Ended::Lost(reason) => break reason,
                Ended::Finished(reason) => return self.finish(reason).await,
                Ended::Failed(e) => {
                    self.endpoint += 1;
                    if self.endpoint == self.setup.endpoints.len() {
                        if let Some(first) = self.first.take() {
                            let _ = first.send(Err(e));
                        }
                        return;
                    }
                }
            }
        };
        let reason = 'outage: loop {
            let Some(policy) = self.setup.reconnect.clone() else {
                break lost;
            };
            self.shared
                .publish(ConnectionEvent::Disconnected(lost.clone()));
            let mut attempt = 0;
            loop {
                if !policy.allows(attempt) {
                    break 'outage lost;
                }
                self.endpoint = (self.endpoint + 1) % self.setup.endpoints.len();
                let delay = policy.delay(attempt, fastrand::f64());
                attempt += 1;
                let endpoint = self.setup.endpoints[self.endpoint].text.clone();
                self.shared.publish(ConnectionEvent::Reconnecting {
                    attempt,
                    endpoint: endpoint.clone(),
                    delay,
                });
                if let Some(reason) = self.pause(delay).await {
                    break 'outage reason;
                }
                match self.attempt().await {
                    Ended::Failed(error) => {
                        self.shared.publish(ConnectionEvent::AttemptFailed {
                            attempt,
                            endpoint,
                            error: Arc::new(error),
                        });
                    }
                    Ended::Lost(reason) => {
                        lost = reason;
                        continue 'outage;
                    }
                    Ended::Finished(reason) => break 'outage reason,
                }
            }
        };
        self.finish(reason).await;
    }

    /// Waits `delay` between attempts, and after it as long as a message waits for room in
    /// its subscription: reading a new connection would have to wait for it anyway. Dropped
    /// subscriptions are forgotten meanwhile. `Some` when the client is to stop.
    async fn pause(&mut self, delay: Duration) -> Option<CloseReason> {
        let until = tokio::time::Instant::now() + delay;
        let mut slept = false;
        loop {
            if slept && self.blocked.is_none() {
                return None;
            }
            let blocked = self.blocked.as_ref().map(|(tx, _)| tx.clone());
            tokio::select! {
                () = sleep_until(until), if !slept => slept = true,
                () = room(blocked), if self.blocked.is_some() => self.unblock(),
                control = self.control.recv() => match control {
                    Some(Control::Unsubscribe(id)) => {
                        self.subscriptions.remove(&id);
                    }
                    Some(Control::Disconnect(done)) => {
                        self.disconnecting = Some(done);
                        return Some(CloseReason::Disconnected);
                    }
                    None => {
                        self.abandoned = true;
                        return Some(CloseReason::Local("every handle was dropped".into()));
                    }
                },
            }
        }
    }

    /// One connection to the current endpoint, from opening it until it ends.
    async fn attempt(&mut self) -> Ended {
        let endpoint = self.setup.endpoints[self.endpoint].clone();
        if endpoint.is_secure() && self.tls.is_none() {
            match self.setup.trust.connector() {
                Ok(connector) => self.tls = Some(connector),
                Err(e) => return Ended::Failed(Error::Tls(e)),
            }
        }
        let limits = self.setup.config.limits();
        let max_message = limits
            .max_head_bytes()
            .saturating_add(limits.max_body())
            .saturating_add(2);
        let opened = match self.setup.given.take() {
            Some(stream) => Ok(Ok(Transport::over(stream))),
            None => {
                let headers = &self.setup.ws_headers;
                let open = Transport::open(&endpoint, self.tls.as_ref(), max_message, headers);
                timeout(self.setup.config.connect_timeout(), open).await
            }
        };
        let mut transport = match opened {
            Ok(Ok(transport)) => transport,
            Ok(Err(e)) => return Ended::Failed(e),
            Err(_) => return Ended::Failed(Error::TimedOut),
        };
        self.connection += 1;
        self.phase = Phase::Connecting;
        let session = ClientSession::new(self.setup.config.clone(), Instant::now());
        let ended = self.serve(&mut transport, session, &endpoint).await;
        transport.close().await;
        ended
    }

    /// Drives one session on `transport` until it closes.
    async fn serve(
        &mut self,
        transport: &mut Transport,
        mut session: ClientSession,
        endpoint: &Endpoint,
    ) -> Ended {
        let mut buffer = BytesMut::new();
        let mut reading = true;
        let mut closed = None;
        loop {
            self.dispatch(&mut session, endpoint, &mut closed);
            // A write that fails, or stalls because the server stopped reading, ends the
            // connection as the server closing it would.
            let written = timeout(self.setup.write_timeout, transport.send_all(&mut session));
            if !matches!(written.await, Ok(Ok(()))) {
                session.handle_eof(Instant::now());
                self.dispatch(&mut session, endpoint, &mut closed);
            }
            if session.is_closed() {
                break;
            }
            let deadline = session.poll_timeout();
            let blocked = self.blocked.as_ref().map(|(tx, _)| tx.clone());
            let ready = self.phase == Phase::Ready && !self.abandoned;
            tokio::select! {
                () = room(blocked), if self.blocked.is_some() => {
                    self.unblock();
                    if self.blocked.is_none() {
                        session.resume_input(Instant::now());
                    }
                }
                command = self.commands.recv(), if ready => match command {
                    Some(command) => {
                        // One reading of the clock for the whole batch.
                        let now = Instant::now();
                        self.command(command, &mut session, now);
                        for _ in 1..BATCH {
                            match self.commands.try_recv() {
                                Ok(command) => self.command(command, &mut session, now),
                                Err(_) => break,
                            }
                        }
                    }
                    // Every handle is gone: leave gracefully.
                    None => {
                        self.abandoned = true;
                        let _ = session.disconnect(Instant::now());
                    }
                },
                Some(control) = self.control.recv() => match control {
                    Control::Unsubscribe(id) => {
                        // What was queued before the subscription was dropped (its ACKs, say)
                        // goes out before its UNSUBSCRIBE: a broker answers an ACK for a
                        // subscription it no longer has with an ERROR (RabbitMQ's
                        // "Subscription not found") and closes the connection.
                        if ready {
                            let now = Instant::now();
                            for _ in 0..self.commands.len() {
                                match self.commands.try_recv() {
                                    Ok(command) => self.command(command, &mut session, now),
                                    Err(_) => break,
                                }
                            }
                        }
                        if self.subscriptions.remove(&id).is_some() && session.is_connected() {
                            let _ = session.unsubscribe(Instant::now(), &id, AskReceipt::No);
                        }
                    }
                    Control::Disconnect(done) => {
                        if self.phase != Phase::Ready {
                            // Not connected yet: there is nothing to leave gracefully.
                            self.disconnecting = Some(done);
                            return Ended::Finished(CloseReason::Disconnected);
                        }
                        // What was queued before goes out first.
                        let now = Instant::now();
                        while let Ok(command) = self.commands.try_recv() {
                            self.command(command, &mut session, now);
                        }
                        match session.disconnect(Instant::now()) {
                            Ok(()) => self.disconnecting = Some(done),
                            Err(e) => {
                                let _ = done.send(Err(e.into()));
                            }
                        }
                    }
                },
                received = transport.receive(&mut buffer), if reading && self.blocked.is_none() => {
                    let now = Instant::now();
                    match received {
                        Ok(Some(_)) => {
                            session.handle_input(now, &buffer);
                            buffer.clear();
                        }
                        Ok(None) | Err(_) => {
                            reading = false;
                            session.handle_eof(now);
                        }
                    }
                }
                () = wait_until(deadline) => session.handle_timeout(Instant::now()),
            }
        }
        let (reason, refusal) = closed.unwrap_or((CloseReason::PeerClosed, None));
        let finished = matches!(
            reason,
            CloseReason::Disconnected | CloseReason::DisconnectTimedOut
        ) || self.abandoned;
        if finished {
            Ended::Finished(reason)
        } else if self.phase == Phase::Ready {
            Ended::Lost(reason)
        } else {
            Ended::Failed(match (refusal, reason) {
                (Some(message), _) => Error::Refused(message),
                (None, reason) => Error::Closed(reason),
            })
        }
    }

    /// Hands the held message over, now that its subscription has room (or is gone).
    fn unblock(&mut self) {
        if let Some((tx, message)) = self.blocked.take() {
            if let Err(mpsc::error::TrySendError::Full(message)) = tx.try_send(message) {
                self.blocked = Some((tx, message));
            }
        }
    }

    fn command(&mut self, command: Command, session: &mut ClientSession, now: Instant) {
        match command {
            Command::Send { frame, done } => self.send(session, frame, done, now),
            Command::Request {
                frame,
                correlation,
                reply_to,
                reply,
            } => {
                if self.replies.is_none() && !request::needs_no_subscription(&reply_to) {
                    self.subscribe_replies(session, reply_to, now);
                }
                self.requests.expect(correlation, reply);
                self.send(session, frame, None, now);
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
                match session.subscribe_with_headers(
                    now,
                    &destination,
                    ack,
                    &pairs,
                    AskReceipt::Yes,
                ) {
                    Ok(subscribed) => {
                        let subscription = Subscription {
                            destination,
                            ack,
                            headers,
                            messages,
                            position: None,
                            unanswered: 0,
                        };
                        self.subscriptions
                            .insert(subscribed.id.clone(), subscription);
                        let waiter = Waiter::Subscribed(subscribed.id, done);
                        self.await_receipt(Ok(subscribed.receipt), waiter);
                    }
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                    }
                }
            }
            Command::Acknowledge {
                message,
                verdict,
                transaction,
                done,
            } => {
                if message.connection() != self.connection {
                    if let Some(done) = done {
                        let _ = done.send(Err(Error::StaleMessage));
                    }
                    return;
                }
                let tx = transaction.as_ref();
                let inner = message.as_session_message();
                let receipt = if done.is_some() {
                    AskReceipt::Yes
                } else {
                    AskReceipt::No
                };
                let sent = match verdict {
                    Verdict::Ack => session.ack(now, inner, tx, receipt),
                    Verdict::Nack => session.nack(now, inner, tx, receipt),
                };
                match done {
                    Some(done) => self.await_receipt(sent, Waiter::Done(done)),
                    // Queued is all that was asked.
                    None => drop(sent),
                }
            }
            Command::Begin { done } => match session.begin(now, AskReceipt::Yes) {
                Ok(transaction) => {
                    let waiter = Waiter::Began(transaction.id, done);
                    self.await_receipt(Ok(transaction.receipt), waiter);
                }
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            },
            Command::End { id, ending, done } => {
                let receipt = if done.is_some() {
                    AskReceipt::Yes
                } else {
                    AskReceipt::No
                };
                let ended = match ending {
                    Ending::Commit => session.commit(now, &id, receipt),
                    Ending::Abort => session.abort(now, &id, receipt),
                };
                if let Some(done) = done {
                    self.await_receipt(ended, Waiter::Done(done));
                }
            }
        }
    }

    fn send(
        &mut self,
        session: &mut ClientSession,
        frame: SendFrame,
        done: Option<oneshot::Sender<Result<(), Error>>>,
        now: Instant,
    ) {
        self.send_again(session, frame, done, 0, now);
    }

    /// Sends what `tries` connections already carried without its RECEIPT.
    fn send_again(
        &mut self,
        session: &mut ClientSession,
        frame: SendFrame,
        done: Option<oneshot::Sender<Result<(), Error>>>,
        tries: u32,
        now: Instant,
    ) {
        let Some(done) = done else {
            // Queued is all that was asked; a refusal has nobody to tell.
            let _ = session.send(now, frame);
            return;
        };
        // Only a SEND outside a transaction can be sent again on another connection.
        let waiter = match frame.transaction() {
            None => Waiter::Sent(frame.clone(), done, tries + 1),
            Some(_) => Waiter::Done(done),
        };
        let sent = session.send(now, frame.with_receipt());
        self.await_receipt(sent, waiter);
    }

    /// `waiter` is answered at the RECEIPT of what was sent, at once if none was asked for, or
    /// with the session's refusal.
    fn await_receipt(&mut self, sent: Result<Option<ReceiptId>, SessionError>, waiter: Waiter) {
        match sent {
            Ok(Some(receipt)) => {
                self.receipts.insert(receipt, waiter);
            }
            Ok(None) => waiter.confirm(),
            Err(e) => waiter.refuse(e.into()),
        }
    }

    /// Hands out the session's events, until a subscription's buffer is full. A close is
    /// noted in `closed`, with the refusal's message when the server refused CONNECT.
    fn dispatch(
        &mut self,
        session: &mut ClientSession,
        endpoint: &Endpoint,
        closed: &mut Option<(CloseReason, Option<Option<String>>)>,
    ) {
        let mut refusal = None;
        while self.blocked.is_none() {
            let Some(event) = session.poll_event() else {
                return;
            };
            match event {
                ClientEvent::Connected {
                    version,
                    server,
                    session: id,
                    ..
                } => {
                    let info = ConnectionInfo {
                        endpoint: endpoint.text.clone(),
                        number: self.connection,
                        version,
                        server,
                        session: id,
                    };
                    if let Some(first) = self.first.take() {
                        self.phase = Phase::Ready;
                        let _ = first.send(Ok(()));
                        self.shared.publish(ConnectionEvent::Connected(info));
                    } else {
                        self.info = Some(info);
                        self.restore(session);
                    }
                }
                ClientEvent::Message(message) => self.deliver(session, message),
                ClientEvent::Receipt { receipt, frame, .. } => match self.receipts.remove(&receipt)
                {
                    Some(Waiter::Restored(id)) => {
                        if let Some(subscription) = self.subscriptions.get_mut(&id) {
                            subscription.unanswered = 0;
                        }
                        if frame.header("recovered").as_deref() == Some("false") {
                            self.shared.publish(ConnectionEvent::NotRecovered(id));
                        }
                        if let Phase::Restoring(waiting) = self.phase {
                            self.phase = Phase::Restoring(waiting - 1);
                            if waiting == 1 {
                                self.restored(session);
                            }
                        }
                    }
                    Some(waiter) => waiter.confirm(),
                    None => {}
                },
                ClientEvent::Error(frame) if self.phase == Phase::Connecting => {
                    refusal = Some(frame.header("message").map(|m| m.into_owned()));
                }
                ClientEvent::Error(frame) => {
                    // An ERROR that names a command's receipt is that command's answer (1.2
                    // "ERROR": the server SHOULD set `receipt-id`): the command is refused,
                    // and not made again on the next connection, where it would only be
                    // refused again.
                    let named = frame.header("receipt-id");
                    if let Some(waiter) = named.and_then(|r| self.receipts.remove(r.as_ref())) {
                        let message = frame.header("message").map(|m| m.into_owned());
                        self.refused(waiter, message);
                    }
                }
                ClientEvent::Closed { reason, .. } => {
                    self.cut(&reason);
                    *closed = Some((reason, refusal.take()));
                }
                _ => {}
            }
        }
    }

    /// The server refused a command with an ERROR: its caller is told, and a subscription it
    /// made (or restored) is over, its stream ended.
    fn refused(&mut self, waiter: Waiter, message: Option<String>) {
        match &waiter {
            Waiter::Subscribed(id, _) | Waiter::Restored(id) => {
                self.subscriptions.remove(id);
            }
            _ => {}
        }
        waiter.refuse(Error::Rejected(message));
    }

    /// Subscribes to where replies come, with no stream of its own: the replies go to their
    /// requests, and what answers none (a reply too late) is dropped. It is restored on
    /// reconnect as the application's subscriptions are; it is sent before the request, so
    /// the server has it when the request arrives.
    fn subscribe_replies(
        &mut self,
        session: &mut ClientSession,
        destination: String,
        now: Instant,
    ) {
        let ack = AckMode::Auto;
        let Ok(subscribed) =
            session.subscribe_with_headers(now, &destination, ack, &[], AskReceipt::No)
        else {
            return;
        };
        // A sender whose receiver is gone: nothing but requests takes these messages.
        let (messages, _) = mpsc::channel(1);
        let subscription = Subscription {
            destination,
            ack,
            headers: Vec::new(),
            messages,
            position: None,
            unanswered: 0,
        };
        self.subscriptions
            .insert(subscribed.id.clone(), subscription);
        self.replies = Some(subscribed.id);
    }

    fn deliver(&mut self, session: &mut ClientSession, message: stomp_session::Message) {
        let Some(message) = self.requests.answer(Message::new(message, self.connection)) else {
            return;
        };
        // A message for a subscription the application dropped goes nowhere; unacknowledged,
        // the broker redelivers it.
        let subscription = match message.frame().header("subscription") {
            Some(id) => self.subscriptions.get_mut(id.as_ref()),
            None => None,
        };
        let Some(subscription) = subscription else {
            return;
        };
        if let Some(position) = message.frame().header("position") {
            subscription.position = Some(position.into_owned());
        }
        match subscription.messages.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                self.blocked = Some((subscription.messages.clone(), message));
                session.pause_input(Instant::now());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Connected again: every live subscription is subscribed anew under its id, with a
    /// receipt; the connection is ready when they have all come.
    fn restore(&mut self, session: &mut ClientSession) {
        let now = Instant::now();
        let mut waiting = 0;
        for (id, subscription) in &self.subscriptions {
            let mut headers: Vec<(&str, &str)> = subscription
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            // What it missed meanwhile, from the topic's history.
            if let Some(position) = &subscription.position {
                headers.push(("after-position", position));
            }
            let restored = session.subscribe_as(
                now,
                id,
                &subscription.destination,
                subscription.ack,
                &headers,
                AskReceipt::Yes,
            );
            if let Ok(Some(receipt)) = restored {
                self.receipts.insert(receipt, Waiter::Restored(id.clone()));
                waiting += 1;
            }
        }
        self.phase = Phase::Restoring(waiting);
        if waiting == 0 {
            self.restored(session);
        }
    }

    /// The subscriptions are back: the SENDs that had no RECEIPT go out again, then queued
    /// commands are read.
    fn restored(&mut self, session: &mut ClientSession) {
        self.phase = Phase::Ready;
        for (id, done) in self.unconfirmed.drain(..) {
            let _ = done.send(Ok(id));
        }
        let now = Instant::now();
        for (frame, done, tries) in std::mem::take(&mut self.resend) {
            self.send_again(session, frame, Some(done), tries, now);
        }
        if let Some(info) = self.info.take() {
            self.shared.publish(ConnectionEvent::Reconnected(info));
        }
    }

    /// The connection closed: what can outlive it is kept for the next one, the rest is told.
    fn cut(&mut self, reason: &CloseReason) {
        // After the server's ERROR nothing that awaited an answer is made again: the ERROR
        // may be its refusal without naming it (RabbitMQ's name no receipt), and made again
        // it would be refused again, and end the next connection too.
        let refused = matches!(reason, CloseReason::ErrorFrame(_));
        let waiting: Vec<Waiter> = self.receipts.drain().map(|(_, waiter)| waiter).collect();
        for waiter in waiting {
            match waiter {
                Waiter::Sent(frame, done, tries) if !refused && tries < MAX_TRIES => {
                    self.resend.push((frame, done, tries));
                }
                Waiter::Subscribed(id, done) => match self.give_up(&id, refused, reason) {
                    false => self.unconfirmed.push((id, done)),
                    true => Waiter::Subscribed(id, done).fail(reason),
                },
                Waiter::Restored(id) => {
                    self.give_up(&id, refused, reason);
                }
                other => other.fail(reason),
            }
        }
        if let Some(done) = self.disconnecting.take() {
            let outcome = match reason {
                CloseReason::Disconnected => Ok(()),
                CloseReason::DisconnectTimedOut => Err(Error::TimedOut),
                other => Err(Error::Closed(other.clone())),
            };
            let _ = done.send(outcome);
            // A DISCONNECT ends the client whatever became of it.
            self.abandoned = true;
        }
    }

    /// Subscription `id` awaited its RECEIPT when the connection ended: it ends (its stream
    /// closes, and a caller still waiting for it hears `reason`) if the server's ERROR ended
    /// the connection or if that was the last of [`MAX_TRIES`] in a row; `true` if it did.
    fn give_up(&mut self, id: &SubscriptionId, refused: bool, reason: &CloseReason) -> bool {
        let Some(subscription) = self.subscriptions.get_mut(id) else {
            return true;
        };
        subscription.unanswered += 1;
        if !refused && subscription.unanswered < MAX_TRIES {
            return false;
        }
        self.subscriptions.remove(id);
        if let Some(at) = self
            .unconfirmed
            .iter()
            .position(|(waiting, _)| waiting == id)
        {
            let (_, done) = self.unconfirmed.swap_remove(at);
            let _ = done.send(Err(Error::Closed(reason.clone())));
        }
        true
    }

    /// The client is over: everything still waiting is told why, subscriptions end once their
    /// consumers have taken what they hold.
    async fn finish(mut self, reason: CloseReason) {
        for (_, done, _) in self.resend.drain(..) {
            let _ = done.send(Err(Error::Closed(reason.clone())));
        }
        for (_, done) in self.unconfirmed.drain(..) {
            let _ = done.send(Err(Error::Closed(reason.clone())));
        }
        for (_, waiter) in self.receipts.drain() {
            waiter.fail(&reason);
        }
        if let Some(done) = self.disconnecting.take() {
            let _ = done.send(Ok(()));
        }
        self.subscriptions.clear();
        self.closed.send_replace(Some(reason.clone()));
        self.shared.publish(ConnectionEvent::Closed(reason));
        // A message held back by a full buffer was received: it is still handed over.
        if let Some((messages, message)) = self.blocked.take() {
            drop(self.commands);
            let _ = messages.send(message).await;
        }
    }
}

/// Resolves once a full subscription buffer is half empty again (or the subscription is
/// dropped): resuming for every message the consumer takes would cost a wake-up each.
async fn room(blocked: Option<mpsc::Sender<Message>>) {
    match blocked {
        Some(tx) => {
            let half = (tx.max_capacity() / 2).max(1);
            // The permits go back at once; the room stays, as only this task sends.
            let _ = tx.reserve_many(half).await;
        }
        None => std::future::pending().await,
    }
}

async fn wait_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
