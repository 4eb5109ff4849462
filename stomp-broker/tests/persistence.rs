//! Persistent queues: nothing a client is told (a SEND's RECEIPT, a MESSAGE, an ACK's
//! RECEIPT) leaves ahead of the journal records it depends on, and a broker rebuilt from the
//! journal holds exactly the messages taken and not acknowledged, in order, those delivered
//! before marked redelivered.

mod common;

use bytes::Bytes;
use common::{Net, bodies};
use stomp_broker::journal::{Reader, Record};
use stomp_broker::{Broker, BrokerConfig, Persistence};
use stomp_session::{AckMode, AskReceipt, ClientEvent, SendFrame};

fn persistent(persistence: Persistence) -> Broker {
    Broker::new(BrokerConfig::default().with_persistence(persistence))
}

/// The journal as a driver keeps it: appended to, and synced when the test says.
#[derive(Default)]
struct Disk {
    bytes: Vec<u8>,
}

impl Disk {
    /// Appends what the broker wrote, without syncing it.
    fn append(&mut self, net: &mut Net) {
        while let Some(bytes) = net.broker.poll_journal() {
            self.bytes.extend_from_slice(&bytes);
        }
    }

    /// Appends and syncs what the broker wrote, and lets waiting output go.
    fn sync(&mut self, net: &mut Net) {
        self.append(net);
        net.broker.handle_journaled(self.bytes.len() as u64);
        net.pump();
    }

    /// A broker restarted from what is on disk.
    fn restart(&self, persistence: Persistence) -> Net {
        let mut net = Net::new(persistent(persistence));
        for record in Reader::new(&self.bytes) {
            net.broker.restore(record);
        }
        let now = net.now;
        net.broker.restored(now);
        net
    }
}

fn send_persistent(net: &mut Net, who: usize, queue: &str, body: &'static str) {
    let now = net.now;
    let send = SendFrame::new(queue, body)
        .header("persistent", "true")
        .with_receipt();
    net.clients[who].1.send(now, send).unwrap();
    net.pump();
}

#[test]
fn a_receipt_waits_until_the_message_is_synced() {
    let mut net = Net::new(persistent(Persistence::Marked));
    let mut disk = Disk::default();
    let publisher = net.client("p");
    send_persistent(&mut net, publisher, "/queue/q", "one");
    assert_eq!(net.receipts(publisher), 0, "not on disk yet");
    disk.append(&mut net);
    net.pump();
    assert_eq!(net.receipts(publisher), 0, "written but not synced");
    disk.sync(&mut net);
    assert_eq!(net.receipts(publisher), 1);
    let records: Vec<Record> = Reader::new(&disk.bytes).collect();
    assert!(
        matches!(&records[..], [Record::Put { destination, body, .. }]
        if destination == "/queue/q" && &body[..] == b"one")
    );
}

#[test]
fn only_marked_queue_messages_are_journaled_unless_every_one_is_asked_for() {
    for (persistence, expected) in [(Persistence::Marked, 1), (Persistence::Every, 2)] {
        let mut net = Net::new(persistent(persistence));
        let mut disk = Disk::default();
        let publisher = net.client("p");
        send_persistent(&mut net, publisher, "/queue/q", "kept");
        net.send(publisher, "/queue/q", "plain");
        net.send(publisher, "/topic/t", "never");
        disk.sync(&mut net);
        let puts = Reader::new(&disk.bytes)
            .filter(|r| matches!(r, Record::Put { .. }))
            .count();
        assert_eq!(puts, expected, "{persistence:?}");
    }
    let mut net = Net::new(persistent(Persistence::Off));
    let publisher = net.client("p");
    send_persistent(&mut net, publisher, "/queue/q", "memory only");
    assert_eq!(net.receipts(publisher), 1, "no journal: answered at once");
    assert_eq!(net.broker.poll_journal(), None);
}

#[test]
fn a_message_leaves_for_its_consumer_only_once_its_delivery_is_synced() {
    let mut net = Net::new(persistent(Persistence::Marked));
    let mut disk = Disk::default();
    let publisher = net.client("p");
    let consumer = net.client("c");
    net.subscribe(consumer, "/queue/q", AckMode::Client);
    send_persistent(&mut net, publisher, "/queue/q", "one");
    disk.append(&mut net);
    net.pump();
    assert!(net.take_messages(consumer).is_empty());
    disk.sync(&mut net);
    assert_eq!(bodies(&net.take_messages(consumer)), ["one"]);
}

#[test]
fn a_restart_rebuilds_what_was_taken_and_not_acknowledged_in_order() {
    let mut net = Net::new(persistent(Persistence::Marked));
    let mut disk = Disk::default();
    let publisher = net.client("p");
    for body in ["0", "1", "2", "3", "4"] {
        send_persistent(&mut net, publisher, "/queue/q", body);
    }
    net.send(publisher, "/queue/q", "not persistent");
    disk.sync(&mut net);
    assert_eq!(net.receipts(publisher), 5);
    // A consumer with a window of two takes 0 and 1, and acknowledges 0 (with a receipt,
    // which waits for the journal too).
    let consumer = net.client("c");
    let now = net.now;
    net.clients[consumer]
        .1
        .subscribe_with_headers(
            now,
            "/queue/q",
            AckMode::ClientIndividual,
            &[("prefetch-count", "2")],
            AskReceipt::No,
        )
        .unwrap();
    net.pump();
    disk.sync(&mut net);
    let got = net.take_messages(consumer);
    assert_eq!(bodies(&got), ["0", "1"]);
    let now = net.now;
    net.clients[consumer]
        .1
        .ack(now, &got[0], None, AskReceipt::Yes)
        .unwrap();
    net.pump();
    assert_eq!(net.receipts(consumer), 0, "the ACK is not on disk yet");
    disk.sync(&mut net);
    assert_eq!(net.receipts(consumer), 1);

    // The broker dies. A new one rebuilt from the journal has 1 and 2 (delivered, the second
    // once 0 was acknowledged: marked), then 3 and 4; 0 was acknowledged and the plain
    // message was never kept.
    let mut net = disk.restart(Persistence::Marked);
    let mut disk = Disk::default();
    assert_eq!(net.broker.queue_depth("/queue/q"), 4);
    let consumer = net.client("c");
    net.subscribe(consumer, "/queue/q", AckMode::Auto);
    disk.sync(&mut net);
    let got = net.take_messages(consumer);
    assert_eq!(bodies(&got), ["1", "2", "3", "4"]);
    let redelivered: Vec<bool> = got
        .iter()
        .map(|m| m.frame().header("redelivered").as_deref() == Some("true"))
        .collect();
    assert_eq!(redelivered, [true, true, false, false]);
    // New messages get ids of their own, past the restored ones.
    let ids: Vec<String> = got.iter().map(|m| m.message_id().unwrap().into()).collect();
    let publisher = net.client("p");
    send_persistent(&mut net, publisher, "/queue/q", "5");
    disk.sync(&mut net);
    let fresh = net.take_messages(consumer);
    assert_eq!(bodies(&fresh), ["5"]);
    assert!(!ids.contains(&fresh[0].message_id().unwrap().into_owned()));
}

#[test]
fn a_snapshot_alone_rebuilds_the_queues() {
    let mut net = Net::new(persistent(Persistence::Every));
    let mut disk = Disk::default();
    let publisher = net.client("p");
    for n in 0..100 {
        let now = net.now;
        let body = Bytes::from(format!("{n}"));
        net.clients[publisher]
            .1
            .send(now, SendFrame::new("/queue/q", body))
            .unwrap();
    }
    net.pump();
    let consumer = net.client("c");
    net.subscribe(consumer, "/queue/q", AckMode::ClientIndividual);
    disk.sync(&mut net);
    // The window (64) is out; acknowledge the first 10.
    let got = net.take_messages(consumer);
    assert_eq!(got.len(), 64);
    for m in &got[..10] {
        let now = net.now;
        net.clients[consumer]
            .1
            .ack(now, m, None, AskReceipt::No)
            .unwrap();
    }
    net.pump();
    disk.sync(&mut net);
    // A new journal starts from the snapshot; then one more message is acknowledged.
    let mut compacted = Disk {
        bytes: net.broker.journal_snapshot().to_vec(),
    };
    assert!(compacted.bytes.len() < disk.bytes.len());
    let now = net.now;
    net.clients[consumer]
        .1
        .ack(now, &got[10], None, AskReceipt::No)
        .unwrap();
    net.pump();
    compacted.sync(&mut net);
    let mut net = compacted.restart(Persistence::Every);
    let consumer = net.client("c");
    net.subscribe(consumer, "/queue/q", AckMode::Auto);
    Disk::default().sync(&mut net);
    let got = net.take_messages(consumer);
    let expected: Vec<String> = (11..100).map(|n| n.to_string()).collect();
    assert_eq!(bodies(&got), expected);
    let marked = got
        .iter()
        .filter(|m| m.frame().header("redelivered").is_some())
        .count();
    // 11 to 74 were out: the window of 64 after the first 11 were acknowledged.
    assert_eq!(marked, 64, "those delivered before");
    assert!(
        net.clients[consumer]
            .2
            .iter()
            .all(|e| !matches!(e, ClientEvent::Error(_)))
    );
}

#[test]
fn a_journal_that_cannot_be_written_is_an_error_to_the_publisher_never_a_receipt() {
    let mut net = Net::new(persistent(Persistence::Marked));
    let mut disk = Disk::default();
    let publisher = net.client("p");
    let bystander = net.client("b");
    send_persistent(&mut net, publisher, "/queue/q", "lost");
    disk.append(&mut net);
    // The sync failed (a full disk): the publisher learns its message was not stored.
    let now = net.now;
    net.broker
        .handle_journal_failed(now, "No space left on device");
    net.pump();
    assert_eq!(net.receipts(publisher), 0);
    let error = net.error_message(publisher).unwrap();
    assert!(
        error.contains("not stored") && error.contains("No space left"),
        "{error}"
    );
    // Whoever waited for nothing goes on.
    assert_eq!(net.error_message(bystander), None);
    net.send(bystander, "/topic/t", "still here");
    assert_eq!(net.closed_reason(bystander), None);
}
