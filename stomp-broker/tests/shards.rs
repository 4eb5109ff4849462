//! Shards: one server's brokers side by side, each with its own connections. Every subscriber
//! of a destination gets its messages in one order, in which each publisher's keep the order
//! they were sent in; patterns match across shards; a queue owned by one shard serves
//! consumers on every shard exactly once, takes back what a vanished consumer held, and
//! flow-controls publishers on other shards; ids are unique across shards.

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use common::Net;
use stomp_broker::{Broker, BrokerConfig, BrokerEvent, owner_of};
use stomp_session::{AckMode, AskReceipt, ClientEvent, Message, SendFrame};

/// Brokers as shards of one server, the messages between them carried in order.
struct Shards {
    nets: Vec<Net>,
}

impl Shards {
    fn new(count: usize, config: impl Fn() -> BrokerConfig) -> Shards {
        let nets = (0..count)
            .map(|i| Net::new(Broker::new(config().with_shard(i, count))))
            .collect();
        Shards { nets }
    }

    /// Runs every shard and carries what they tell each other until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for from in 0..self.nets.len() {
                self.nets[from].pump();
                let events = std::mem::take(&mut self.nets[from].events);
                for event in events {
                    match event {
                        BrokerEvent::ToShard { shard, message } => {
                            let to = &mut self.nets[shard];
                            let now = to.now;
                            to.broker.handle_shard(now, from, message);
                            moved = true;
                        }
                        other => self.nets[from].events.push(other),
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn client(&mut self, shard: usize, login: &str) -> usize {
        let who = self.nets[shard].client(login);
        self.pump();
        who
    }

    fn subscribe(&mut self, (shard, who): (usize, usize), destination: &str, ack: AckMode) {
        let now = self.nets[shard].now;
        self.nets[shard].clients[who]
            .1
            .subscribe(now, destination, ack, AskReceipt::Yes)
            .unwrap();
        self.pump();
    }

    fn send(&mut self, (shard, who): (usize, usize), destination: &str, body: String) {
        let now = self.nets[shard].now;
        self.nets[shard].clients[who]
            .1
            .send(now, SendFrame::new(destination, body))
            .unwrap();
        self.pump();
    }

    fn take(&mut self, (shard, who): (usize, usize)) -> Vec<Message> {
        self.nets[shard].take_messages(who)
    }
}

/// A destination under `prefix` that shard `owner` of `count` owns.
fn owned_by(prefix: &str, owner: usize, count: usize) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|d| owner_of(d, count) == owner)
        .unwrap()
}

fn bodies(messages: &[Message]) -> Vec<String> {
    common::bodies(messages)
}

#[test]
fn every_subscriber_sees_one_order_per_destination_and_each_publishers_own() {
    let mut shards = Shards::new(3, BrokerConfig::default);
    // The topic's owner is shard 2: both publishers' messages go through it.
    let topic = owned_by("/topic/t", 2, 3);
    let subscribers: Vec<(usize, usize)> = (0..3)
        .map(|shard| (shard, shards.client(shard, "sub")))
        .collect();
    for s in &subscribers {
        shards.subscribe(*s, &topic, AckMode::Auto);
    }
    let a = (0, shards.client(0, "a"));
    let b = (1, shards.client(1, "b"));
    // Sent without carrying in between, so that the two publishers' messages race.
    for n in 0..50 {
        for (who, name) in [(a, "a"), (b, "b")] {
            let now = shards.nets[who.0].now;
            shards.nets[who.0].clients[who.1]
                .1
                .send(now, SendFrame::new(topic.as_str(), format!("{name}{n}")))
                .unwrap();
        }
        if n % 7 == 0 {
            shards.pump();
        }
    }
    shards.pump();
    let seen: Vec<Vec<String>> = subscribers
        .iter()
        .map(|s| bodies(&shards.take(*s)))
        .collect();
    assert_eq!(seen[0].len(), 100, "each message once");
    assert_eq!(seen[0], seen[1], "one order for every subscriber");
    assert_eq!(seen[0], seen[2], "one order for every subscriber");
    for name in ["a", "b"] {
        let own: Vec<String> = seen[0]
            .iter()
            .filter(|b| b.starts_with(name))
            .cloned()
            .collect();
        let sent: Vec<String> = (0..50).map(|n| format!("{name}{n}")).collect();
        assert_eq!(own, sent, "each publisher's order");
    }
}

#[test]
fn patterns_match_messages_sent_on_other_shards() {
    let mut shards = Shards::new(2, BrokerConfig::default);
    let watcher = (1, shards.client(1, "w"));
    shards.subscribe(watcher, "/topic/prices/**", AckMode::Auto);
    let publisher = (0, shards.client(0, "p"));
    for n in 0..20 {
        shards.send(publisher, &format!("/topic/prices/{n}"), format!("{n}"));
    }
    let got = bodies(&shards.take(watcher));
    assert_eq!(got.len(), 20, "{got:?}");
}

#[test]
fn a_message_between_shards_counts_the_octets_of_the_message_it_carries() {
    let mut shards = Shards::new(2, BrokerConfig::default);
    let topic = owned_by("/topic/o", 1, 2);
    let watcher = (1, shards.client(1, "w"));
    shards.subscribe(watcher, &topic, AckMode::Auto);
    let publisher = (0, shards.client(0, "p"));
    let now = shards.nets[0].now;
    shards.nets[0].clients[publisher.1]
        .1
        .send(
            now,
            SendFrame::new(topic.as_str(), "0123456789").header("k", "v"),
        )
        .unwrap();
    shards.nets[0].pump();
    let carried: Vec<usize> = shards.nets[0]
        .events
        .iter()
        .filter_map(|event| match event {
            BrokerEvent::ToShard { message, .. } => Some(message.octets()),
            _ => None,
        })
        .collect();
    // The destination, the body and the application's header ("k:v" and its line end): the
    // headers the broker adds (content-length and the like) are the broker's, not the
    // client's, so some octets beyond those are allowed but never fewer.
    let least = topic.len() + 10 + "k".len() + "v".len() + 2;
    assert_eq!(carried.len(), 1, "one publish to the owner");
    assert!(carried[0] >= least, "{} < {least}", carried[0]);
    assert!(
        carried[0] < least + 64,
        "{} is far more than the message",
        carried[0]
    );
    shards.pump();
    assert_eq!(bodies(&shards.take(watcher)), ["0123456789"]);
}

#[test]
fn ids_are_unique_across_shards() {
    let mut shards = Shards::new(2, BrokerConfig::default);
    let mut connections = HashSet::new();
    for shard in 0..2 {
        for _ in 0..5 {
            let who = shards.client(shard, "x");
            assert!(connections.insert(shards.nets[shard].clients[who].0));
        }
    }
    let sub = (1, 0);
    shards.subscribe(sub, "/topic/ids", AckMode::Auto);
    // Published by each shard's application: each shard numbers its own messages.
    for shard in 0..2 {
        let now = shards.nets[shard].now;
        for _ in 0..5 {
            shards.nets[shard]
                .broker
                .publish(now, "/topic/ids", &[], Bytes::from_static(b"x"));
        }
    }
    shards.pump();
    let ids: HashSet<String> = shards
        .take(sub)
        .iter()
        .map(|m| m.frame().header("message-id").unwrap().into_owned())
        .collect();
    assert_eq!(ids.len(), 10, "{ids:?}");
}

#[test]
fn a_queue_serves_consumers_on_every_shard_exactly_once_and_takes_back_a_lost_ones() {
    let mut shards = Shards::new(2, BrokerConfig::default);
    let queue = owned_by("/queue/work", 0, 2);
    let here = (0, shards.client(0, "here"));
    let there = (1, shards.client(1, "there"));
    shards.subscribe(here, &queue, AckMode::ClientIndividual);
    shards.subscribe(there, &queue, AckMode::ClientIndividual);
    let publisher = (1, shards.client(1, "p"));
    for n in 0..10 {
        shards.send(publisher, &queue, format!("{n}"));
    }
    let (mine, theirs) = (shards.take(here), shards.take(there));
    assert_eq!(mine.len() + theirs.len(), 10);
    assert!(!theirs.is_empty(), "round-robin reaches the other shard");
    // The consumer on the other shard acknowledges one and vanishes: the rest come back to
    // the consumer left, marked redelivered.
    let now = shards.nets[1].now;
    shards.nets[1].clients[there.1]
        .1
        .ack(now, &theirs[0], None, AskReceipt::No)
        .unwrap();
    shards.pump();
    let connection = shards.nets[1].clients[there.1].0;
    shards.nets[1].broker.remove(connection, now);
    shards.pump();
    let again = shards.take(here);
    assert_eq!(again.len(), theirs.len() - 1);
    for m in &again {
        assert_eq!(m.frame().header("redelivered").as_deref(), Some("true"));
    }
    let mut all: Vec<String> = bodies(&mine);
    all.extend(bodies(&theirs[..1]));
    all.extend(bodies(&again));
    all.sort_by_key(|b| b.parse::<usize>().unwrap());
    let sent: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(all, sent, "every message, none twice");
    // Acknowledged where it is held: the queue ends empty.
    let now = shards.nets[0].now;
    for m in mine.iter().chain(&again) {
        shards.nets[0].clients[here.1]
            .1
            .ack(now, m, None, AskReceipt::No)
            .unwrap();
    }
    shards.pump();
    assert_eq!(shards.nets[0].broker.stats().queued_bytes, 0);
    // Counted once, by the shard of the subscriber.
    assert_eq!(shards.nets[0].broker.stats().subscriptions, 1);
    assert_eq!(shards.nets[1].broker.stats().subscriptions, 0);
}

#[test]
fn an_auto_ack_backlog_drains_to_a_consumer_on_another_shard() {
    let mut shards = Shards::new(2, BrokerConfig::default);
    let queue = owned_by("/queue/backlog", 0, 2);
    let now = shards.nets[0].now;
    for n in 0..1000 {
        let body = Bytes::from(format!("{n}"));
        shards.nets[0].broker.publish(now, &queue, &[], body);
    }
    assert_eq!(shards.nets[0].broker.queue_depth(&queue), 1000);
    let consumer = (1, shards.client(1, "c"));
    shards.subscribe(consumer, &queue, AckMode::Auto);
    let got = bodies(&shards.take(consumer));
    let sent: Vec<String> = (0..1000).map(|n| n.to_string()).collect();
    assert_eq!(got, sent, "each once, in order");
    assert_eq!(
        shards.nets[0].broker.stats().queued_bytes,
        0,
        "written is done"
    );
}

#[test]
fn a_publisher_on_another_shard_past_a_queue_limit_is_paused() {
    let config = || BrokerConfig::default().with_max_queue_bytes(64 * 1024);
    let mut shards = Shards::new(2, config);
    let queue = owned_by("/queue/flood", 0, 2);
    let publisher = (1, shards.client(1, "p"));
    let connection = shards.nets[1].clients[publisher.1].0;
    let body = "y".repeat(1024);
    for n in 0..200 {
        shards.send(publisher, &queue, format!("{n}\n{body}"));
    }
    assert!(!shards.nets[1].broker.wants_input(connection));
    let stats = shards.nets[0].broker.stats();
    assert!(stats.queued_bytes <= 64 * 1024 + 2048, "{stats:?}");
    // A consumer drains the queue; the publisher goes on, and every message arrives once.
    let consumer = (0, shards.client(0, "c"));
    shards.subscribe(consumer, &queue, AckMode::Auto);
    assert!(shards.nets[1].broker.wants_input(connection));
    let got: Vec<usize> = shards
        .take(consumer)
        .iter()
        .map(|m| {
            let body = String::from_utf8_lossy(m.body()).into_owned();
            body.split('\n').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    assert!(
        !shards.nets[1].clients[publisher.1]
            .2
            .iter()
            .any(|e| matches!(e, ClientEvent::Error(_)))
    );
}

#[test]
fn a_paused_publisher_on_another_shard_that_leaves_is_forgotten_by_the_owner() {
    let config = || BrokerConfig::default().with_max_queue_bytes(16 * 1024);
    let mut shards = Shards::new(2, config);
    let queue = owned_by("/queue/full", 0, 2);
    let body = "y".repeat(1024);
    // Publishers come, fill the queue until paused, and leave, again and again: the owner
    // keeps nothing for them.
    for _ in 0..20 {
        let publisher = (1, shards.client(1, "p"));
        let connection = shards.nets[1].clients[publisher.1].0;
        for n in 0..40 {
            shards.send(publisher, &queue, format!("{n}\n{body}"));
        }
        assert!(!shards.nets[1].broker.wants_input(connection));
        assert_eq!(shards.nets[0].broker.stats().paused_publishers, 1);
        let now = shards.nets[1].now;
        shards.nets[1].broker.remove(connection, now);
        shards.pump();
        assert_eq!(shards.nets[0].broker.stats().paused_publishers, 0);
    }
}

/// Appends what shard `shard` wrote to its journal to `disk`, syncs it, and carries what
/// follows.
fn sync(shards: &mut Shards, shard: usize, disk: &mut Vec<u8>) {
    while let Some(bytes) = shards.nets[shard].broker.poll_journal() {
        disk.extend_from_slice(&bytes);
    }
    shards.nets[shard]
        .broker
        .handle_journaled(disk.len() as u64);
    shards.pump();
}

#[test]
fn with_journals_a_client_waits_for_the_journal_of_the_shard_that_owns_the_queue() {
    let config = || BrokerConfig::default().with_persistence(stomp_broker::Persistence::Marked);
    let mut shards = Shards::new(2, config);
    let queue = owned_by("/queue/q", 1, 2);
    let (mut disk0, mut disk1) = (Vec::new(), Vec::new());
    // The publisher is on shard 0, the queue on shard 1.
    let publisher = (0, shards.client(0, "p"));
    let now = shards.nets[0].now;
    let send = SendFrame::new(queue.as_str(), "kept")
        .header("persistent", "true")
        .with_receipt();
    shards.nets[0].clients[publisher.1]
        .1
        .send(now, send)
        .unwrap();
    shards.pump();
    sync(&mut shards, 0, &mut disk0);
    assert_eq!(
        shards.nets[0].receipts(publisher.1),
        0,
        "shard 1 has not synced"
    );
    sync(&mut shards, 1, &mut disk1);
    assert_eq!(shards.nets[0].receipts(publisher.1), 1);
    // A consumer on shard 0 gets the MESSAGE once shard 1 has the record of its delivery, and
    // the RECEIPT of its ACK once shard 1 has the record of its removal.
    let consumer = (0, shards.client(0, "c"));
    shards.subscribe(consumer, &queue, AckMode::ClientIndividual);
    sync(&mut shards, 0, &mut disk0);
    assert!(shards.take(consumer).is_empty(), "not synced on shard 1");
    sync(&mut shards, 1, &mut disk1);
    let got = shards.take(consumer);
    assert_eq!(bodies(&got), ["kept"]);
    let receipts = shards.nets[0].receipts(consumer.1);
    let now = shards.nets[0].now;
    (shards.nets[0].clients[consumer.1].1)
        .ack(now, &got[0], None, AskReceipt::Yes)
        .unwrap();
    shards.pump();
    sync(&mut shards, 0, &mut disk0);
    assert_eq!(
        shards.nets[0].receipts(consumer.1),
        receipts,
        "its removal is not on disk"
    );
    sync(&mut shards, 1, &mut disk1);
    assert_eq!(shards.nets[0].receipts(consumer.1), receipts + 1);
}

#[test]
fn a_queue_numbers_what_other_shards_publish_to_it_so_that_their_restarts_reuse_no_key() {
    let config = || BrokerConfig::default().with_persistence(stomp_broker::Persistence::Marked);
    let mut shards = Shards::new(2, config);
    let queue = owned_by("/queue/q", 1, 2);
    let send = |shards: &mut Shards, body: &str| {
        // A publisher on shard 0, the queue on shard 1, as in a server's first run.
        let publisher = shards.client(0, "p");
        let now = shards.nets[0].now;
        let frame = SendFrame::new(queue.as_str(), body.to_owned()).header("persistent", "true");
        shards.nets[0].clients[publisher]
            .1
            .send(now, frame)
            .unwrap();
        shards.pump();
    };
    send(&mut shards, "before");
    // Shard 0 starts again: its journal holds none of the queue's messages, so it numbers
    // from the start.
    shards.nets[0] = Net::new(Broker::new(config().with_shard(0, 2)));
    send(&mut shards, "after");
    let mut disk = Vec::new();
    sync(&mut shards, 1, &mut disk);

    let consumer = (1, shards.client(1, "c"));
    shards.subscribe(consumer, &queue, AckMode::ClientIndividual);
    // The MESSAGEs leave once the journal has the records of their delivery.
    sync(&mut shards, 1, &mut disk);
    let got = shards.take(consumer);
    assert_eq!(bodies(&got), ["before", "after"]);
    let ids: HashSet<String> = got
        .iter()
        .map(|m| m.frame().header("message-id").unwrap().into_owned())
        .collect();
    assert_eq!(ids.len(), 2, "one message id for two messages: {ids:?}");
    // The queue's journal restores both, in the order they were taken.
    let mut restarted = Broker::new(config().with_shard(1, 2));
    for record in stomp_broker::journal::Reader::new(&disk) {
        restarted.restore(record);
    }
    assert_eq!(restarted.restored(shards.nets[1].now), 2);
}
