//! What a server session does with each frame its client sends: CONNECT, SEND, SUBSCRIBE,
//! UNSUBSCRIBE, ACK and NACK, transactions and DISCONNECT, each by its version's rules
//! (STOMP 1.2 "Client Frames").

use std::borrow::Cow;
use std::time::Instant;

use bytes::Bytes;
use stomp_codec::{Command, Encoder, FrameBuf, Version};

use crate::error::{CloseReason, Violation};
use crate::heartbeat::HeartBeat;
use crate::subscriptions::AckRef;
use crate::types::{AckMode, Secret};

use super::{
    ConnectRequest, Deferred, PendingSubscription, Refusal, ServerEvent, ServerSession, State,
    Transaction, refuse,
};

impl ServerSession {
    pub(super) fn on_frame(&mut self, now: Instant, frame: FrameBuf) -> Result<(), Refusal> {
        if let State::AwaitingConnect { .. } = self.state {
            return match frame.command() {
                Command::Connect | Command::Stomp => self.on_connect(now, &frame),
                other => Err(refuse(Violation::NotConnected(other))),
            };
        }
        let common = common_headers(&frame);
        let receipt = common.receipt.map(Cow::into_owned);
        let transaction = common.transaction.map(Cow::into_owned);
        let has_destination = common.destination;
        // A refused frame's receipt is echoed as the ERROR's receipt-id.
        self.on_client_frame(now, frame, receipt.as_deref(), transaction, has_destination)
            .map_err(|refusal| Refusal { receipt, ..refusal })
    }

    /// Acts on a frame of an established connection, given the headers most frames need.
    pub(super) fn on_client_frame(
        &mut self,
        now: Instant,
        frame: FrameBuf,
        receipt: Option<&str>,
        transaction: Option<String>,
        has_destination: bool,
    ) -> Result<(), Refusal> {
        if let Some(receipt) = receipt {
            // A RECEIPT echoes it: refuse now what this version could never send back.
            let encoder = Encoder::new(self.version());
            if encoder
                .check_header(Command::Receipt, "receipt-id", receipt)
                .is_err()
            {
                return Err(refuse(Violation::Unechoable {
                    header: "receipt",
                    value: receipt.to_owned(),
                    command: Command::Receipt,
                    version: self.version(),
                }));
            }
        }
        match frame.command() {
            Command::Connect | Command::Stomp => return Err(refuse(Violation::AlreadyConnected)),
            Command::Send => {
                let deferred = self.config.defer_send_receipts && transaction.is_none();
                self.on_send(frame, transaction.as_deref(), has_destination)?;
                if deferred {
                    // The application answers with `send_receipt_for`.
                    return Ok(());
                }
            }
            Command::Subscribe => {
                if self.config.confirm_subscriptions {
                    // The RECEIPT waits for the application's confirmation.
                    return self.on_subscribe(frame, receipt.map(str::to_owned));
                }
                self.on_subscribe(frame, None)?;
            }
            Command::Unsubscribe => self.on_unsubscribe(&frame)?,
            Command::Ack | Command::Nack => self.on_ack(frame)?,
            Command::Begin => self.on_begin(&frame)?,
            Command::Commit => self.on_commit(&frame)?,
            Command::Abort => self.on_abort(&frame)?,
            Command::Disconnect => {
                if let Some(receipt) = receipt {
                    self.send_receipt(now, receipt);
                }
                self.close(CloseReason::Disconnected, false);
                return Ok(());
            }
            server_frame => {
                return Err(refuse(Violation::ServerFrame(server_frame)));
            }
        }
        if let Some(receipt) = receipt {
            self.send_receipt(now, receipt);
        }
        Ok(())
    }

    /// SEND: checked as it arrives (1.2 "SEND"), applied now or at its transaction's COMMIT.
    pub(super) fn on_send(
        &mut self,
        frame: FrameBuf,
        transaction: Option<&str>,
        has_destination: bool,
    ) -> Result<(), Refusal> {
        if !has_destination {
            return Err(refuse(Violation::MissingHeader {
                command: Command::Send,
                header: "destination",
                since: None,
            }));
        }
        if let Some(check) = &self.config.send_check {
            let destination = frame.header("destination").unwrap_or_default();
            check
                .check(self.login.as_deref(), &destination, &frame)
                .map_err(|reason| refuse(Violation::Refused(reason)))?;
        }
        self.defer_or_apply(transaction, Deferred::Send(frame))
    }

    /// BEGIN (1.2 "BEGIN"): a new transaction, within the limit on open ones.
    pub(super) fn on_begin(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        if self.transactions.contains_key(&tx) {
            return Err(refuse(Violation::TransactionOpen(tx.into())));
        }
        if self.transactions.len() >= self.config.max_transactions {
            return Err(refuse(Violation::TooManyTransactions(
                self.config.max_transactions,
            )));
        }
        self.transactions.insert(tx, Transaction::default());
        Ok(())
    }

    /// COMMIT (1.2 "COMMIT"): what the transaction held is applied, in order.
    pub(super) fn on_commit(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        let deferred = self.transactions.remove(&tx).ok_or_else(|| {
            refuse(Violation::UnknownTransaction {
                command: Some(Command::Commit),
                id: tx.as_str().into(),
            })
        })?;
        for frame in deferred.frames {
            self.apply(frame);
        }
        Ok(())
    }

    /// ABORT (1.2 "ABORT"): what the transaction held is dropped.
    pub(super) fn on_abort(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        self.transactions.remove(&tx).ok_or_else(|| {
            refuse(Violation::UnknownTransaction {
                command: Some(Command::Abort),
                id: tx.as_str().into(),
            })
        })?;
        Ok(())
    }

    pub(super) fn on_connect(&mut self, now: Instant, frame: &FrameBuf) -> Result<(), Refusal> {
        // No accept-version: the client speaks 1.0 (1.2 "Protocol Negotiation").
        let offered: Vec<Version> = match frame.header("accept-version") {
            None => vec![Version::V1_0],
            Some(list) => list
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .collect(),
        };
        let Some(version) = offered
            .into_iter()
            .filter(|v| self.config.versions.contains(v))
            .max()
        else {
            self.fail_with_versions(now);
            return Ok(());
        };
        let host = frame.header("host").map(|h| h.into_owned());
        if host.is_none() && version >= Version::V1_1 && self.config.require_host {
            return Err(refuse(Violation::MissingHeader {
                command: Command::Connect,
                header: "host",
                since: Some(Version::V1_1),
            }));
        }
        let offer = match frame.header("heart-beat") {
            None => HeartBeat::NONE,
            Some(h) => h.parse().map_err(|e: crate::InvalidHeartBeat| {
                refuse(Violation::InvalidHeartBeat(e.to_string()))
            })?,
        };
        let heart_beat = self.config.heart_beat.negotiate(offer);
        self.link.set_version(version);
        let deadline = match self.state {
            State::AwaitingConnect { deadline } => deadline,
            _ => now,
        };
        self.state = State::AwaitingAccept {
            deadline,
            periods: heart_beat,
        };
        let login = frame.header("login").map(|l| l.into_owned());
        self.login.clone_from(&login);
        self.events
            .push_back(ServerEvent::Connect(Box::new(ConnectRequest {
                version,
                host,
                login,
                passcode: frame
                    .header("passcode")
                    .map(|p| Secret::new(p.into_owned())),
                heart_beat,
                frame: frame.clone(),
            })));
        Ok(())
    }

    /// No version in common: ERROR with a `version` header listing ours, then the close.
    pub(super) fn fail_with_versions(&mut self, now: Instant) {
        let mut versions = self.config.versions.clone();
        versions.sort();
        let list = versions
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let violation = Violation::NoCommonVersion {
            supported: list.clone(),
        };
        let message = violation.to_string();
        let headers = [
            ("message", message.as_str()),
            ("version", list.as_str()),
            ("content-type", "text/plain"),
        ];
        let _ = self
            .link
            .send(now, Command::Error, headers, &Bytes::from(message.clone()));
        self.close(CloseReason::Protocol(violation), false);
    }

    /// Holds a frame in the transaction it names until COMMIT, within the transaction
    /// limits, or acts on it now when it names none.
    pub(super) fn defer_or_apply(
        &mut self,
        name: Option<&str>,
        frame: Deferred,
    ) -> Result<(), Refusal> {
        let Some(name) = name else {
            self.apply(frame);
            return Ok(());
        };
        let tx = self.transactions.get_mut(name).ok_or_else(|| {
            refuse(Violation::UnknownTransaction {
                command: None,
                id: name.into(),
            })
        })?;
        let size = frame.size();
        if tx.frames.len() >= self.config.max_transaction_frames {
            return Err(refuse(Violation::TransactionFrames {
                id: name.into(),
                limit: self.config.max_transaction_frames,
            }));
        }
        if tx.octets.saturating_add(size) > self.config.max_transaction_bytes {
            return Err(refuse(Violation::TransactionBytes {
                id: name.into(),
                limit: self.config.max_transaction_bytes,
            }));
        }
        tx.octets += size;
        tx.frames.push(frame);
        Ok(())
    }

    /// Takes a SUBSCRIBE; when subscriptions are confirmed, it waits with its `receipt`.
    pub(super) fn on_subscribe(
        &mut self,
        frame: FrameBuf,
        receipt: Option<String>,
    ) -> Result<(), Refusal> {
        let destination = required(&frame, "destination")?;
        // 1.0 makes the id optional; the destination then names the subscription.
        let id = match frame.header("id") {
            Some(id) => id.into_owned(),
            None if self.version() == Version::V1_0 => destination.clone(),
            None => {
                return Err(refuse(Violation::MissingHeader {
                    command: Command::Subscribe,
                    header: "id",
                    since: Some(Version::V1_1),
                }));
            }
        };
        if self.subscriptions.contains(&id) {
            return Err(refuse(Violation::SubscriptionInUse(id.into())));
        }
        if self.subscriptions.len() >= self.config.max_subscriptions {
            return Err(refuse(Violation::TooManySubscriptions(
                self.config.max_subscriptions,
            )));
        }
        // Every MESSAGE echoes these: refuse now what this version could never send back (in
        // 1.0, a value ending in CR).
        let encoder = Encoder::new(self.version());
        for (name, value) in [("subscription", &id), ("destination", &destination)] {
            if encoder.check_header(Command::Message, name, value).is_err() {
                return Err(refuse(Violation::Unechoable {
                    header: name,
                    value: value.clone(),
                    command: Command::Message,
                    version: self.version(),
                }));
            }
        }
        let ack = match frame.header("ack") {
            None => AckMode::Auto,
            Some(mode) => {
                let unknown = || refuse(Violation::UnknownAckMode(mode.to_string()));
                AckMode::parse(&mode).ok_or_else(unknown)?
            }
        };
        if self.config.confirm_subscriptions {
            self.pending_subscription = Some(PendingSubscription {
                id: id.clone(),
                destination: destination.clone(),
                ack,
                receipt,
            });
        } else {
            self.subscriptions.add(id.clone(), destination.clone(), ack);
        }
        self.events.push_back(ServerEvent::Subscribe {
            id: id.into(),
            destination,
            ack,
            frame,
        });
        Ok(())
    }

    pub(super) fn on_unsubscribe(&mut self, frame: &FrameBuf) -> Result<(), Refusal> {
        let id = match frame.header("id") {
            Some(id) => id.into_owned(),
            None if self.version() == Version::V1_0 => required(frame, "destination")?,
            None => {
                return Err(refuse(Violation::MissingHeader {
                    command: Command::Unsubscribe,
                    header: "id",
                    since: None,
                }));
            }
        };
        let (subscription, unacked) = self
            .subscriptions
            .remove(&id)
            .ok_or_else(|| refuse(Violation::UnknownSubscription(id.as_str().into())))?;
        self.events.push_back(ServerEvent::Unsubscribe {
            id: id.into(),
            destination: subscription.destination,
            unacked,
            frame: frame.clone(),
        });
        Ok(())
    }

    pub(super) fn on_ack(&mut self, frame: FrameBuf) -> Result<(), Refusal> {
        let command = frame.command();
        if command == Command::Nack && self.version() == Version::V1_0 {
            return Err(refuse(Violation::Unsupported {
                command: Command::Nack,
                version: Version::V1_0,
            }));
        }
        let pending = {
            let reference = ack_ref(&frame, self.version())?;
            self.subscriptions.is_pending(reference.as_ref())
        };
        if !pending {
            return Err(refuse(Violation::NotPending(command)));
        }
        let deferred = if command == Command::Ack {
            Deferred::Ack(frame.clone())
        } else {
            Deferred::Nack(frame.clone())
        };
        let transaction = frame.header("transaction").map(Cow::into_owned);
        self.defer_or_apply(transaction.as_deref(), deferred)
    }

    /// Acts on a frame now: at once, or at its transaction's COMMIT.
    pub(super) fn apply(&mut self, deferred: Deferred) {
        let version = self.version();
        match deferred {
            Deferred::Send(frame) => self.events.push_back(ServerEvent::Send(frame)),
            Deferred::Ack(frame) | Deferred::Nack(frame) => {
                let Ok(reference) = ack_ref(&frame, version) else {
                    return;
                };
                // Settled meanwhile by a cumulative ACK: nothing left to do.
                let Some(settled) = self.subscriptions.settle(reference.as_ref()) else {
                    return;
                };
                self.events.push_back(if frame.command() == Command::Ack {
                    ServerEvent::Ack(settled)
                } else {
                    ServerEvent::Nack(settled)
                });
            }
        }
    }
}

/// The headers the server reads from most client frames, found in one pass; the first of
/// repeated headers counts. None of these names holds an escapable octet, so raw names compare
/// exactly.
#[derive(Default)]
struct Common<'a> {
    receipt: Option<Cow<'a, str>>,
    transaction: Option<Cow<'a, str>>,
    /// Only whether there is one: its value is read where the frame is routed, and decoding
    /// it here would be work done twice.
    destination: bool,
}

fn common_headers(frame: &FrameBuf) -> Common<'_> {
    let mut common = Common::default();
    for header in frame.headers() {
        let slot = match header.raw_name() {
            b"receipt" => &mut common.receipt,
            b"transaction" => &mut common.transaction,
            b"destination" => {
                common.destination = true;
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(header.value());
        }
    }
    common
}

/// The value of a header the frame must carry.
fn required(frame: &FrameBuf, name: &'static str) -> Result<String, Refusal> {
    frame.header(name).map(|v| v.into_owned()).ok_or_else(|| {
        refuse(Violation::MissingHeader {
            command: frame.command(),
            header: name,
            since: None,
        })
    })
}

/// An owned [`AckRef`].
enum OwnedAckRef {
    AckId(String),
    Subscription {
        message_id: String,
        subscription: String,
    },
    MessageId(String),
}

impl OwnedAckRef {
    fn as_ref(&self) -> AckRef<'_> {
        match self {
            OwnedAckRef::AckId(id) => AckRef::AckId(id),
            OwnedAckRef::Subscription {
                message_id,
                subscription,
            } => AckRef::Subscription {
                message_id,
                subscription,
            },
            OwnedAckRef::MessageId(id) => AckRef::MessageId(id),
        }
    }
}

/// How an ACK or NACK names its message in `version` (1.2 "ACK"): 1.2 `id`; 1.1 `message-id`
/// and `subscription`; 1.0 `message-id`.
fn ack_ref(frame: &FrameBuf, version: Version) -> Result<OwnedAckRef, Refusal> {
    Ok(match version {
        Version::V1_2 => OwnedAckRef::AckId(required(frame, "id")?),
        Version::V1_1 => OwnedAckRef::Subscription {
            message_id: required(frame, "message-id")?,
            subscription: required(frame, "subscription")?,
        },
        Version::V1_0 => OwnedAckRef::MessageId(required(frame, "message-id")?),
    })
}
