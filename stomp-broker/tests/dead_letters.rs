//! Dead letters: a queue message redelivered more often than the limit (NACKs, or consumers
//! that went away holding it) moves to its dead-letter queue with headers saying why and from
//! where; one past its `expires` time (its sender's, or its queue's time to live) moves there
//! too, or is dropped; and a dead-letter queue keeps its messages whatever happens.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Net, bodies};
use stomp_broker::{Broker, BrokerConfig};
use stomp_session::{AckMode, AskReceipt, Message, SendFrame};

fn header(message: &Message, name: &str) -> Option<String> {
    message.frame().header(name).map(|v| v.into_owned())
}

fn nack_all(net: &mut Net, who: usize, messages: &[Message]) {
    for m in messages {
        let now = net.now;
        net.clients[who]
            .1
            .nack(now, m, None, AskReceipt::No)
            .unwrap();
    }
    net.pump();
}

#[test]
fn a_message_nacked_past_the_limit_moves_to_the_dead_letter_queue() {
    let config = BrokerConfig::default().with_max_redeliveries(Some(2));
    let mut net = Net::new(Broker::new(config));
    let publisher = net.client("p");
    let now = net.now;
    let send = SendFrame::new("/queue/orders", "poison").header("kind", "order");
    net.clients[publisher].1.send(now, send).unwrap();
    net.pump();
    let consumer = net.client("c");
    net.subscribe(consumer, "/queue/orders", AckMode::ClientIndividual);
    // Delivered, then redelivered twice: three NACKs in all.
    for delivery in 0..3 {
        let got = net.take_messages(consumer);
        assert_eq!(bodies(&got), ["poison"], "delivery {delivery}");
        nack_all(&mut net, consumer, &got);
    }
    assert!(net.take_messages(consumer).is_empty(), "not a fourth time");
    assert_eq!(net.broker.queue_depth("/queue/orders"), 0);
    assert_eq!(net.broker.queue_depth("/queue/DLQ.orders"), 1);
    let watcher = net.client("w");
    net.subscribe(watcher, "/queue/DLQ.orders", AckMode::ClientIndividual);
    let dead = net.take_messages(watcher);
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(
        header(&dead[0], "dead-letter-reason").as_deref(),
        Some("redelivered")
    );
    assert_eq!(
        header(&dead[0], "dead-letter-from").as_deref(),
        Some("/queue/orders")
    );
    assert_eq!(
        header(&dead[0], "kind").as_deref(),
        Some("order"),
        "its own headers kept"
    );
    // A dead-letter queue keeps its messages: NACKed any number of times, it comes back.
    nack_all(&mut net, watcher, &dead);
    for round in 0..5 {
        let got = net.take_messages(watcher);
        assert_eq!(bodies(&got), ["poison"], "round {round}");
        nack_all(&mut net, watcher, &got);
    }
    assert_eq!(bodies(&net.take_messages(watcher)), ["poison"]);
}

#[test]
fn consumers_that_go_away_holding_a_message_count_towards_the_limit() {
    let config = BrokerConfig::default().with_max_redeliveries(Some(1));
    let mut net = Net::new(Broker::new(config));
    net.broker
        .publish(net.now, "/queue/q", &[], Bytes::from_static(b"hot"));
    for _ in 0..2 {
        let consumer = net.client("c");
        net.subscribe(consumer, "/queue/q", AckMode::Client);
        assert_eq!(bodies(&net.take_messages(consumer)), ["hot"]);
        let (connection, now) = (net.clients[consumer].0, net.now);
        net.broker.remove(connection, now);
        net.pump();
    }
    assert_eq!(net.broker.queue_depth("/queue/q"), 0);
    assert_eq!(net.broker.queue_depth("/queue/DLQ.q"), 1);
}

#[test]
fn expired_messages_are_dead_lettered_or_dropped_and_never_delivered() {
    for dead_letter in [true, false] {
        let config = BrokerConfig::default().with_dead_letter_expired(dead_letter);
        let mut net = Net::new(Broker::new(config));
        let now = net.now;
        net.broker.set_wall_clock(now, 1_000_000);
        let publisher = net.client("p");
        for (body, expires) in [("stale", "999000"), ("fresh", "2000000"), ("never", "0")] {
            let send = SendFrame::new("/queue/q", body).header("expires", expires);
            net.clients[publisher].1.send(now, send).unwrap();
        }
        net.pump();
        let consumer = net.client("c");
        net.subscribe(consumer, "/queue/q", AckMode::Auto);
        assert_eq!(bodies(&net.take_messages(consumer)), ["fresh", "never"]);
        let dead = usize::from(dead_letter);
        assert_eq!(
            net.broker.queue_depth("/queue/DLQ.q"),
            dead,
            "{dead_letter}"
        );
    }
}

#[test]
fn a_queue_time_to_live_sets_expires_and_the_sweep_finds_messages_nobody_consumes() {
    let config = BrokerConfig::default().with_queue_ttl("/queue/short/*", Duration::from_secs(10));
    let mut net = Net::new(Broker::new(config));
    let start = net.now;
    net.broker.set_wall_clock(start, 5_000);
    net.broker
        .publish(start, "/queue/short/lived", &[], Bytes::from_static(b"a"));
    net.broker
        .publish(start, "/queue/long", &[], Bytes::from_static(b"b"));
    let consumer = net.client("c");
    net.subscribe(consumer, "/queue/short/lived", AckMode::Client);
    let got = net.take_messages(consumer);
    assert_eq!(header(&got[0], "expires").as_deref(), Some("15000"));
    nack_all(&mut net, consumer, &got);
    let (connection, now) = (net.clients[consumer].0, net.now);
    net.broker.remove(connection, now);
    net.pump();
    // Nobody consumes the queue; past its time the sweep moves it.
    let later = start + Duration::from_secs(11);
    net.broker.set_wall_clock(later, 16_000);
    net.broker.expire(later);
    assert_eq!(net.broker.queue_depth("/queue/short/lived"), 0);
    assert_eq!(net.broker.queue_depth("/queue/DLQ.short/lived"), 1);
    assert_eq!(
        net.broker.queue_depth("/queue/long"),
        1,
        "no time to live there"
    );
}
