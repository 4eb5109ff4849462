//! A client session and a server session driven together by an arbitrary sequence of client
//! commands, server deliveries, chunk sizes and clock advances: no panic; every requested
//! receipt is answered or its loss reported; every MESSAGE reaches the subscription it was
//! meant for, once.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, ClientSession, Delivery, HeartBeat, Message,
    ReceiptId, SendFrame, ServerConfig, ServerEvent, ServerSession, SubscriptionId, TransactionId,
    Version,
};

#[derive(Arbitrary, Debug)]
enum Op {
    Subscribe {
        destination: u8,
        ack: u8,
        receipt: bool,
    },
    Unsubscribe {
        which: u8,
        receipt: bool,
    },
    Send {
        destination: u8,
        body: Vec<u8>,
        receipt: bool,
        in_transaction: bool,
    },
    Ack {
        which: u8,
        nack: bool,
        receipt: bool,
    },
    Begin,
    Commit {
        receipt: bool,
    },
    Abort {
        receipt: bool,
    },
    Disconnect,
    /// The server application sends to a destination by itself.
    Publish {
        destination: u8,
    },
    Advance {
        millis: u16,
    },
    Pump {
        chunk: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    versions: u8,
    heart_beat: (u8, u8),
    ops: Vec<Op>,
}

struct World {
    now: Instant,
    client: ClientSession,
    server: ServerSession,
    /// Server side: subscription id to destination.
    subscriptions: BTreeMap<SubscriptionId, String>,
    next_message: u32,
    /// (subscription, message-id) delivered by the server, and received by the client.
    delivered: Vec<(SubscriptionId, String)>,
    received: Vec<(SubscriptionId, String)>,
    messages: Vec<Message>,
    requested: BTreeSet<ReceiptId>,
    answered: BTreeSet<ReceiptId>,
    lost: BTreeSet<ReceiptId>,
    client_closed: bool,
    server_closed: bool,
    transaction: Option<TransactionId>,
}

fn destination(n: u8) -> String {
    format!("/topic/{}", n % 3)
}

impl World {
    fn publish(&mut self, destination: &str, body: &bytes::Bytes) {
        let targets: Vec<SubscriptionId> = self
            .subscriptions
            .iter()
            .filter(|(_, d)| *d == destination)
            .map(|(id, _)| id.clone())
            .collect();
        for id in targets {
            self.next_message += 1;
            let message_id = format!("m-{}", self.next_message);
            let delivery = Delivery::new(destination, &message_id, body);
            if self.server.deliver(self.now, &id, delivery).is_ok() {
                self.delivered.push((id, message_id));
            }
        }
    }

    /// Passes bytes both ways in pieces of `chunk` octets until both sides are quiet.
    fn pump(&mut self, chunk: usize) {
        for _ in 0..1000 {
            let mut progressed = false;
            while let Some(bytes) = self.client.poll_transmit() {
                progressed = true;
                if !self.client_closed {
                    for piece in bytes.chunks(chunk) {
                        self.server.handle_input(self.now, piece);
                    }
                }
            }
            while let Some(event) = self.server.poll_event() {
                progressed = true;
                match event {
                    ServerEvent::Connect(_) => self.server.accept(self.now).unwrap(),
                    ServerEvent::Subscribe {
                        id, destination, ..
                    } => {
                        self.subscriptions.insert(id, destination);
                    }
                    ServerEvent::Unsubscribe { id, .. } => {
                        self.subscriptions.remove(&id);
                    }
                    ServerEvent::Send(frame) => {
                        let destination = frame.header("destination").unwrap().into_owned();
                        self.publish(&destination, frame.body());
                    }
                    ServerEvent::Closed { .. } => self.subscriptions.clear(),
                    _ => {}
                }
            }
            while let Some(bytes) = self.server.poll_transmit() {
                progressed = true;
                if !self.server_closed {
                    for piece in bytes.chunks(chunk) {
                        self.client.handle_input(self.now, piece);
                    }
                }
            }
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                match event {
                    ClientEvent::Message(message) => {
                        let id = message.message_id().unwrap_or_default().into_owned();
                        self.received
                            .push((message.subscription().unwrap_or_default(), id));
                        self.messages.push(message);
                    }
                    ClientEvent::Receipt { receipt, .. } => {
                        assert!(self.answered.insert(receipt), "receipt answered twice");
                    }
                    ClientEvent::Closed {
                        unanswered_receipts,
                        ..
                    } => {
                        self.lost.extend(unanswered_receipts);
                    }
                    _ => {}
                }
            }
            if self.server.is_closed() && !self.server_closed {
                self.server_closed = true;
                self.client.handle_eof(self.now);
                progressed = true;
            }
            if self.client.is_closed() && !self.client_closed {
                self.client_closed = true;
                self.server.handle_eof(self.now);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
        panic!("the sessions never fell quiet");
    }

    fn note_receipt(&mut self, receipt: Option<ReceiptId>) {
        if let Some(receipt) = receipt {
            self.requested.insert(receipt);
        }
    }
}

fuzz_target!(|input: Input| {
    let versions: Vec<Version> = Version::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| input.versions & (1 << i) != 0)
        .map(|(_, v)| v)
        .collect();
    let versions = if versions.is_empty() {
        Version::ALL.to_vec()
    } else {
        versions
    };
    let heart_beat = HeartBeat::from_millis(
        u64::from(input.heart_beat.0) * 10,
        u64::from(input.heart_beat.1) * 10,
    );
    let start = Instant::now();
    let client = ClientConfig::new("/")
        .with_versions(&versions)
        .with_heart_beat(heart_beat);
    let server = ServerConfig::default().with_heart_beat(heart_beat);
    let mut world = World {
        now: start,
        client: ClientSession::new(client, start),
        server: ServerSession::new(server, start),
        subscriptions: BTreeMap::new(),
        next_message: 0,
        delivered: Vec::new(),
        received: Vec::new(),
        messages: Vec::new(),
        requested: BTreeSet::new(),
        answered: BTreeSet::new(),
        lost: BTreeSet::new(),
        client_closed: false,
        server_closed: false,
        transaction: None,
    };
    world.pump(usize::MAX);
    let mut client_subscriptions: Vec<SubscriptionId> = Vec::new();
    for op in input.ops.into_iter().take(200) {
        let now = world.now;
        match op {
            Op::Subscribe {
                destination: d,
                ack,
                receipt,
            } => {
                let ack = [AckMode::Auto, AckMode::Client, AckMode::ClientIndividual]
                    [usize::from(ack % 3)];
                if let Ok(sub) = world
                    .client
                    .subscribe(now, &destination(d), ack, ask(receipt))
                {
                    client_subscriptions.push(sub.id);
                    world.note_receipt(sub.receipt);
                }
            }
            Op::Unsubscribe { which, receipt } => {
                if client_subscriptions.is_empty() {
                    continue;
                }
                let id =
                    client_subscriptions.remove(usize::from(which) % client_subscriptions.len());
                if let Ok(r) = world.client.unsubscribe(now, &id, ask(receipt)) {
                    world.note_receipt(r);
                }
            }
            Op::Send {
                destination: d,
                body,
                receipt,
                in_transaction,
            } => {
                let mut send = SendFrame::new(destination(d), body);
                if receipt {
                    send = send.with_receipt();
                }
                if let (true, Some(tx)) = (in_transaction, &world.transaction) {
                    send = send.in_transaction(tx);
                }
                if let Ok(r) = world.client.send(now, send) {
                    world.note_receipt(r);
                }
            }
            Op::Ack {
                which,
                nack,
                receipt,
            } => {
                if world.messages.is_empty() {
                    continue;
                }
                let message = world.messages[usize::from(which) % world.messages.len()].clone();
                let result = if nack {
                    world.client.nack(now, &message, None, ask(receipt))
                } else {
                    world.client.ack(now, &message, None, ask(receipt))
                };
                if let Ok(r) = result {
                    world.note_receipt(r);
                }
            }
            Op::Begin => {
                if let Ok(tx) = world.client.begin(now, AskReceipt::No) {
                    world.transaction = Some(tx.id);
                }
            }
            Op::Commit { receipt } | Op::Abort { receipt } => {
                let Some(tx) = world.transaction.take() else {
                    continue;
                };
                let result = if matches!(op, Op::Commit { .. }) {
                    world.client.commit(now, &tx, ask(receipt))
                } else {
                    world.client.abort(now, &tx, ask(receipt))
                };
                if let Ok(r) = result {
                    world.note_receipt(r);
                }
            }
            Op::Disconnect => {
                let _ = world.client.disconnect(now);
            }
            Op::Publish { destination: d } => {
                world.publish(&destination(d), &bytes::Bytes::from_static(b"published"));
            }
            Op::Advance { millis } => {
                world.now += Duration::from_millis(u64::from(millis));
                world.client.handle_timeout(world.now);
                world.server.handle_timeout(world.now);
                for deadline in [world.client.poll_timeout(), world.server.poll_timeout()]
                    .into_iter()
                    .flatten()
                {
                    assert!(deadline > world.now);
                }
            }
            Op::Pump { chunk } => world.pump(usize::from(chunk) + 1),
        }
    }
    world.pump(usize::MAX);

    // Every MESSAGE reached the subscription it was meant for, once.
    let mut seen = BTreeSet::new();
    for message in &world.received {
        assert!(seen.insert(message.clone()), "delivered twice: {message:?}");
        assert!(
            world.delivered.contains(message),
            "never delivered: {message:?}"
        );
    }
    let connected = !world.client_closed && !world.server_closed;
    if connected {
        assert_eq!(
            world.received.len(),
            world.delivered.len(),
            "messages lost on an open connection"
        );
    }
    // Every requested receipt was answered, or its loss reported at the close.
    for receipt in &world.requested {
        assert!(
            world.answered.contains(receipt) || world.lost.contains(receipt),
            "receipt {receipt} neither answered nor reported lost"
        );
    }
});

/// The receipt an operation asks for, as the session's API takes it.
fn ask(receipt: bool) -> AskReceipt {
    if receipt {
        AskReceipt::Yes
    } else {
        AskReceipt::No
    }
}
