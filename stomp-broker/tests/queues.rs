//! Queues lose nothing: a backlog drains to auto-ack and client-ack consumers exactly once,
//! windows bound what is in flight, messages a vanished consumer held come back at the head
//! marked redelivered, publishers past a queue's limit are flow-controlled, and a destination
//! nobody uses holds nothing.

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use common::Net;
use stomp_broker::{Broker, BrokerConfig, BrokerStats};
use stomp_session::{AckMode, AskReceipt, ClientEvent, Message, SendFrame};

const BACKLOG: usize = 3000;
const BODY: usize = 20 * 1024;

/// Publishes `count` messages of `size` octets to `queue`, numbered in their bodies' first
/// line.
fn publish_numbered(net: &mut Net, queue: &str, count: usize, size: usize) {
    let now = net.now;
    for n in 0..count {
        let mut body = format!("{n}\n").into_bytes();
        body.resize(size, b'x');
        net.broker.publish(now, queue, &[], Bytes::from(body));
    }
}

/// `count` numbered messages waiting on `queue`, which has no consumer.
fn backlog(net: &mut Net, queue: &str, count: usize, size: usize) {
    publish_numbered(net, queue, count, size);
    assert_eq!(net.broker.queue_depth(queue), count);
}

fn number(message: &Message) -> usize {
    let body = message.body();
    let line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(line).unwrap().parse().unwrap()
}

fn subscribe_with(net: &mut Net, who: usize, queue: &str, ack: AckMode, headers: &[(&str, &str)]) {
    let now = net.now;
    net.clients[who]
        .1
        .subscribe_with_headers(now, queue, ack, headers, AskReceipt::Yes)
        .unwrap();
    net.pump();
}

#[test]
fn a_backlog_drains_to_an_auto_ack_consumer_exactly_once() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    backlog(&mut net, "/queue/work", BACKLOG, BODY);
    let consumer = net.client("consumer");
    net.subscribe(consumer, "/queue/work", AckMode::Auto);
    let got: Vec<usize> = net.take_messages(consumer).iter().map(number).collect();
    assert_eq!(got, (0..BACKLOG).collect::<Vec<_>>(), "each once, in order");
    assert_eq!(net.closed_reason(consumer), None, "never closed as slow");
    assert_eq!(net.broker.stats().queued_bytes, 0, "written means done");
}

#[test]
fn a_backlog_drains_to_a_client_individual_consumer_that_acks_everything() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    backlog(&mut net, "/queue/work", BACKLOG, BODY);
    let consumer = net.client("consumer");
    net.subscribe(consumer, "/queue/work", AckMode::ClientIndividual);
    let mut seen = Vec::new();
    loop {
        let messages = net.take_messages(consumer);
        if messages.is_empty() {
            break;
        }
        // The window (64 by default) bounds what is unacknowledged.
        assert!(messages.len() <= 64, "{} in flight", messages.len());
        for message in &messages {
            seen.push(number(message));
            let now = net.now;
            net.clients[consumer]
                .1
                .ack(now, message, None, AskReceipt::No)
                .unwrap();
        }
        net.pump();
    }
    assert_eq!(seen, (0..BACKLOG).collect::<Vec<_>>());
    assert_eq!(net.closed_reason(consumer), None);
    assert_eq!(net.broker.stats().queued_bytes, 0);
}

#[test]
fn prefetch_headers_set_the_window() {
    for header in ["prefetch-count", "activemq.prefetchSize"] {
        let mut net = Net::new(Broker::new(BrokerConfig::default()));
        backlog(&mut net, "/queue/work", 20, 10);
        let consumer = net.client("consumer");
        subscribe_with(
            &mut net,
            consumer,
            "/queue/work",
            AckMode::ClientIndividual,
            &[(header, "5")],
        );
        let first = net.take_messages(consumer);
        assert_eq!(first.len(), 5, "{header}");
        let now = net.now;
        net.clients[consumer]
            .1
            .ack(now, &first[0], None, AskReceipt::No)
            .unwrap();
        net.pump();
        // One acknowledged, one more comes.
        assert_eq!(
            net.take_messages(consumer)
                .iter()
                .map(number)
                .collect::<Vec<_>>(),
            [5]
        );
    }
}

#[test]
fn a_consumer_that_stops_reading_is_fed_only_its_window_and_what_it_held_comes_back() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    backlog(&mut net, "/queue/work", BACKLOG, BODY);
    let stalled = net.client("stalled");
    let connection = net.clients[stalled].0;
    net.stalled.push(connection);
    net.subscribe(stalled, "/queue/work", AckMode::Auto);
    // Nothing is written to it: it is handed no more than its output allows (4 MiB).
    let held = BACKLOG - net.broker.queue_depth("/queue/work");
    assert!(
        held > 0 && held * BODY <= 4 * 1024 * 1024 + BODY,
        "{held} held"
    );
    // It goes away without having written anything: all it held is back, at the head.
    let now = net.now;
    net.broker.remove(connection, now);
    net.stalled.clear();
    assert_eq!(net.broker.queue_depth("/queue/work"), BACKLOG);
    let other = net.client("other");
    net.subscribe(other, "/queue/work", AckMode::Auto);
    let got = net.take_messages(other);
    assert_eq!(
        got.iter().map(number).collect::<Vec<_>>(),
        (0..BACKLOG).collect::<Vec<_>>()
    );
    let redelivered = got
        .iter()
        .filter(|m| m.frame().header("redelivered").as_deref() == Some("true"))
        .count();
    assert_eq!(
        redelivered, held,
        "exactly what it held is marked redelivered"
    );
}

#[test]
fn a_client_ack_consumer_killed_mid_window_has_its_messages_redelivered() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    backlog(&mut net, "/queue/jobs", 10, 10);
    let (first, second) = (net.client("first"), net.client("second"));
    subscribe_with(
        &mut net,
        first,
        "/queue/jobs",
        AckMode::Client,
        &[("prefetch-count", "4")],
    );
    let taken = net.take_messages(first);
    assert_eq!(taken.iter().map(number).collect::<Vec<_>>(), [0, 1, 2, 3]);
    // Cumulative ACK of the second: 0 and 1 are done; 2 and 3 are in flight when it dies.
    let now = net.now;
    net.clients[first]
        .1
        .ack(now, &taken[1], None, AskReceipt::No)
        .unwrap();
    net.pump();
    assert_eq!(
        net.take_messages(first)
            .iter()
            .map(number)
            .collect::<Vec<_>>(),
        [4, 5]
    );
    let connection = net.clients[first].0;
    net.broker.handle_eof(connection, now);
    net.pump();
    net.subscribe(second, "/queue/jobs", AckMode::Auto);
    let got = net.take_messages(second);
    assert_eq!(
        got.iter().map(number).collect::<Vec<_>>(),
        [2, 3, 4, 5, 6, 7, 8, 9]
    );
    for message in &got[..4] {
        assert_eq!(
            message.frame().header("redelivered").as_deref(),
            Some("true")
        );
    }
    assert_eq!(got[4].frame().header("redelivered"), None);
}

#[test]
fn a_publisher_past_a_queue_limit_is_paused_and_nothing_is_lost() {
    let config = BrokerConfig::default().with_max_queue_bytes(64 * 1024);
    let mut net = Net::new(Broker::new(config));
    let (publisher, consumer) = (net.client("publisher"), net.client("consumer"));
    let connection = net.clients[publisher].0;
    let body = "y".repeat(1024);
    let now = net.now;
    for n in 0..200 {
        let send = SendFrame::new("/queue/flood", format!("{n}\n{body}")).with_receipt();
        net.clients[publisher].1.send(now, send).unwrap();
        net.pump();
    }
    // Flow control: the queue holds its limit (and the one message that crossed it); the
    // rest waits unread at the publisher; no RECEIPT was sent for what was not taken.
    assert!(!net.broker.wants_input(connection));
    let stats: BrokerStats = net.broker.stats();
    assert!(stats.queued_bytes <= 64 * 1024 + 2048, "{stats:?}");
    assert_eq!(stats.paused_publishers, 1);
    let receipts = |net: &Net| {
        net.clients[publisher]
            .2
            .iter()
            .filter(|e| matches!(e, ClientEvent::Receipt { .. }))
            .count()
    };
    assert_eq!(receipts(&net), stats.queued_messages);
    assert!(stats.queued_messages < 200);
    // A consumer drains the queue; the publisher goes on, and every message arrives once.
    net.subscribe(consumer, "/queue/flood", AckMode::Auto);
    assert!(net.broker.wants_input(connection));
    let got: Vec<usize> = net.take_messages(consumer).iter().map(number).collect();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    assert_eq!(receipts(&net), 200);
    assert_eq!(net.closed_reason(publisher), None);
}

#[test]
fn a_destination_nobody_uses_holds_nothing() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let a = net.client("a");
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(net.subscribe(a, &format!("/topic/t{n}"), AckMode::Auto));
        ids.push(net.subscribe(a, &format!("/topic/p{n}/**/x"), AckMode::Auto));
        ids.push(net.subscribe(a, &format!("/queue/q{n}"), AckMode::ClientIndividual));
        net.send(a, &format!("/queue/q{n}"), "job");
    }
    let busy = net.broker.stats();
    assert_eq!(
        (busy.topics, busy.queues, busy.subscriptions),
        (50, 50, 150)
    );
    assert!(busy.pattern_nodes >= 150);
    for message in net.take_messages(a) {
        let now = net.now;
        net.clients[a]
            .1
            .ack(now, &message, None, AskReceipt::No)
            .unwrap();
    }
    let now = net.now;
    for id in &ids {
        net.clients[a]
            .1
            .unsubscribe(now, id, AskReceipt::No)
            .unwrap();
    }
    net.pump();
    let idle = net.broker.stats();
    assert_eq!(
        (
            idle.topics,
            idle.pattern_nodes,
            idle.queues,
            idle.subscriptions,
            idle.queued_bytes
        ),
        (0, 0, 0, 0, 0),
        "{idle:?}"
    );
}

#[test]
fn a_topic_subscriber_past_its_unacknowledged_window_is_closed_with_an_error() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (hoarder, other) = (net.client("hoarder"), net.client("other"));
    subscribe_with(
        &mut net,
        hoarder,
        "/topic/busy",
        AckMode::Client,
        &[("prefetch-count", "10")],
    );
    net.subscribe(other, "/topic/busy", AckMode::Auto);
    let now = net.now;
    for n in 0..11 {
        net.broker
            .publish(now, "/topic/busy", &[], Bytes::from(format!("{n}")));
    }
    net.pump();
    let error = net.error_message(hoarder).unwrap_or_default();
    assert!(
        error.starts_with("too slow: more than 10 messages unacknowledged on subscription"),
        "{error}"
    );
    assert_eq!(net.take_messages(other).len(), 11, "others are not held up");
    assert_eq!(net.closed_reason(other), None);
}

#[test]
fn queue_messages_are_not_shared_between_consumers() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let consumers: Vec<usize> = (0..3).map(|n| net.client(&format!("c{n}"))).collect();
    for &c in &consumers {
        net.subscribe(c, "/queue/shared", AckMode::Auto);
    }
    publish_numbered(&mut net, "/queue/shared", 300, 10);
    net.pump();
    let mut all = HashSet::new();
    for &c in &consumers {
        let got = net.take_messages(c);
        assert_eq!(got.len(), 100, "round-robin");
        for message in got {
            assert!(all.insert(number(&message)), "delivered twice");
        }
    }
    assert_eq!(all.len(), 300);
}
