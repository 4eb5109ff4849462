//! Recovery for reconnecting clients: a topic with a history numbers its messages
//! (`position`), keeps the last ones within count, age and octets, and replays those after a
//! position to a SUBSCRIBE with `after-position`, whose RECEIPT says whether that was all
//! (`recovered`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Net, bodies};
use stomp_broker::{Broker, BrokerConfig};
use stomp_session::{AckMode, AskReceipt, ClientEvent, Message};

fn history(count: usize) -> Broker {
    let config =
        BrokerConfig::default().with_topic_history("/topic/chat/*", count, Duration::from_secs(60));
    Broker::new(config)
}

fn publish(net: &mut Net, topic: &str, body: &str) {
    let now = net.now;
    net.broker
        .publish(now, topic, &[], Bytes::from(body.to_owned()));
    net.pump();
}

fn position(message: &Message) -> u64 {
    message.frame().header("position").unwrap().parse().unwrap()
}

/// Subscribes with `after-position`, receipt asked; what the RECEIPT said of `recovered`.
fn subscribe_after(net: &mut Net, who: usize, topic: &str, after: &str) -> Option<String> {
    let now = net.now;
    net.clients[who]
        .1
        .subscribe_with_headers(
            now,
            topic,
            AckMode::Auto,
            &[("after-position", after)],
            AskReceipt::Yes,
        )
        .unwrap();
    net.pump();
    net.clients[who].2.iter().rev().find_map(|e| match e {
        ClientEvent::Receipt { frame, .. } => frame.header("recovered").map(|v| v.into_owned()),
        _ => None,
    })
}

#[test]
fn a_client_back_after_a_disconnect_gets_what_it_missed_in_order_then_the_rest() {
    let mut net = Net::new(history(100));
    let reader = net.client("ann");
    net.subscribe(reader, "/topic/chat/lobby", AckMode::Auto);
    publish(&mut net, "/topic/chat/lobby", "one");
    let seen = net.take_messages(reader);
    let last = position(&seen[0]);
    // Ann drops; two messages pass meanwhile.
    let (connection, now) = (net.clients[reader].0, net.now);
    net.broker.remove(connection, now);
    publish(&mut net, "/topic/chat/lobby", "two");
    publish(&mut net, "/topic/chat/lobby", "three");
    let back = net.client("ann");
    let recovered = subscribe_after(&mut net, back, "/topic/chat/lobby", &last.to_string());
    assert_eq!(recovered.as_deref(), Some("true"));
    publish(&mut net, "/topic/chat/lobby", "four");
    let got = net.take_messages(back);
    assert_eq!(bodies(&got), ["two", "three", "four"]);
    let positions: Vec<u64> = got.iter().map(position).collect();
    assert_eq!(positions, [last + 1, last + 2, last + 3], "one by one");
}

#[test]
fn a_history_that_no_longer_reaches_back_says_so_and_gives_what_it_kept() {
    let mut net = Net::new(history(2));
    let reader = net.client("ann");
    net.subscribe(reader, "/topic/chat/lobby", AckMode::Auto);
    publish(&mut net, "/topic/chat/lobby", "one");
    let last = position(&net.take_messages(reader)[0]);
    for body in ["two", "three", "four"] {
        publish(&mut net, "/topic/chat/lobby", body);
    }
    let back = net.client("ann");
    let recovered = subscribe_after(&mut net, back, "/topic/chat/lobby", &last.to_string());
    assert_eq!(recovered.as_deref(), Some("false"), "two fell out");
    assert_eq!(bodies(&net.take_messages(back)), ["three", "four"]);
    // A position it cannot place, and a topic without history, are not recovered either.
    let other = net.client("bob");
    assert_eq!(
        subscribe_after(&mut net, other, "/topic/chat/lobby", "junk").as_deref(),
        Some("false")
    );
    assert_eq!(
        subscribe_after(&mut net, other, "/topic/plain", "1").as_deref(),
        Some("false")
    );
}

#[test]
fn nothing_missed_is_a_recovery_and_topics_without_history_carry_no_position() {
    let mut net = Net::new(history(10));
    let reader = net.client("ann");
    net.subscribe(reader, "/topic/chat/lobby", AckMode::Auto);
    net.subscribe(reader, "/topic/plain", AckMode::Auto);
    publish(&mut net, "/topic/chat/lobby", "one");
    publish(&mut net, "/topic/plain", "plain");
    let got = net.take_messages(reader);
    let last = position(&got[0]);
    assert!(got[1].frame().header("position").is_none());
    let back = net.client("ann");
    let recovered = subscribe_after(&mut net, back, "/topic/chat/lobby", &last.to_string());
    assert_eq!(recovered.as_deref(), Some("true"));
    assert!(net.take_messages(back).is_empty());
}

#[test]
fn histories_stay_within_their_octets_and_their_age() {
    let config = BrokerConfig::default()
        .with_topic_history("/topic/chat/*", 1000, Duration::from_secs(10))
        .with_max_history_bytes(10_000);
    let mut net = Net::new(Broker::new(config));
    let body = "x".repeat(1000);
    for room in 0..20 {
        publish(&mut net, &format!("/topic/chat/r{room}"), &body);
    }
    assert!(
        net.broker.stats().history_bytes <= 10_000,
        "{}",
        net.broker.stats().history_bytes
    );
    net.advance(Duration::from_secs(11));
    let reader = net.client("ann");
    assert_eq!(
        subscribe_after(&mut net, reader, "/topic/chat/r19", "1").as_deref(),
        Some("false")
    );
    assert!(net.take_messages(reader).is_empty(), "too old to replay");
}
