//! Durable topic subscriptions in RabbitMQ's headers (`durable:true`, `auto-delete:false`,
//! named by `id`) and ActiveMQ's (`client-id` on CONNECT, `activemq.subscriptionName`):
//! messages published while the subscriber is away wait for it, a plain UNSUBSCRIBE or a
//! disconnect keeps the subscription, the convention's UNSUBSCRIBE ends it, no other user
//! reaches it, and with a journal it outlives the broker.

mod common;

use bytes::Bytes;
use common::{Net, bodies};
use stomp_broker::journal::Reader;
use stomp_broker::{Broker, BrokerConfig, Persistence};
use stomp_session::{AckMode, AskReceipt, ClientConfig, ClientSession};

const RABBITMQ: &[(&str, &str)] = &[("durable", "true"), ("auto-delete", "false")];
const ACTIVEMQ: &[(&str, &str)] = &[("activemq.subscriptionName", "news-reader")];

/// Connects `login` with `client-id` `client`; returns its index.
fn client_with_id(net: &mut Net, login: &str, client: &str) -> usize {
    let connection = net.broker.open(net.now);
    let config = ClientConfig::new("/")
        .with_login(login, "secret")
        .with_connect_header("client-id", client);
    net.clients
        .push((connection, ClientSession::new(config, net.now), Vec::new()));
    net.pump();
    net.clients.len() - 1
}

fn subscribe(net: &mut Net, who: usize, headers: &[(&str, &str)]) -> stomp_session::SubscriptionId {
    // The same id each time, as a client restoring its subscriptions uses: RabbitMQ's
    // convention names the durable subscription by it.
    let now = net.now;
    let id = stomp_session::SubscriptionId::from("news");
    (net.clients[who].1)
        .subscribe_as(
            now,
            &id,
            "/topic/news",
            AckMode::ClientIndividual,
            headers,
            AskReceipt::Yes,
        )
        .unwrap();
    net.pump();
    id
}

fn unsubscribe(
    net: &mut Net,
    who: usize,
    id: &stomp_session::SubscriptionId,
    headers: &[(&str, &str)],
) {
    let now = net.now;
    net.clients[who]
        .1
        .unsubscribe_with_headers(now, id, headers, AskReceipt::No)
        .unwrap();
    net.pump();
}

fn publish(net: &mut Net, body: &'static str) {
    let now = net.now;
    net.broker
        .publish(now, "/topic/news", &[], Bytes::from_static(body.as_bytes()));
    net.pump();
}

fn ack_all(net: &mut Net, who: usize) -> Vec<String> {
    let got = net.take_messages(who);
    for m in &got {
        let now = net.now;
        net.clients[who]
            .1
            .ack(now, m, None, AskReceipt::No)
            .unwrap();
        assert_eq!(
            m.destination().as_deref(),
            Some("/topic/news"),
            "shown as the topic"
        );
    }
    net.pump();
    bodies(&got)
}

#[test]
fn messages_published_while_away_wait_in_either_convention() {
    for headers in [RABBITMQ, ACTIVEMQ] {
        let mut net = Net::new(Broker::new(BrokerConfig::default()));
        let reader = client_with_id(&mut net, "ann", "ann-laptop");
        subscribe(&mut net, reader, headers);
        publish(&mut net, "one");
        assert_eq!(ack_all(&mut net, reader), ["one"]);
        // Away: its connection ends without an UNSUBSCRIBE.
        let (connection, now) = (net.clients[reader].0, net.now);
        net.broker.remove(connection, now);
        publish(&mut net, "two");
        publish(&mut net, "three");
        assert_eq!(net.broker.stats().durable_subscriptions, 1, "{headers:?}");
        let back = client_with_id(&mut net, "ann", "ann-laptop");
        subscribe(&mut net, back, headers);
        assert_eq!(ack_all(&mut net, back), ["two", "three"], "{headers:?}");
        // A plain subscriber of the topic saw nothing of that.
        let plain = net.client("bob");
        let now = net.now;
        net.clients[plain]
            .1
            .subscribe(now, "/topic/news", AckMode::Auto, AskReceipt::No)
            .unwrap();
        net.pump();
        publish(&mut net, "four");
        assert_eq!(bodies(&net.take_messages(plain)), ["four"]);
        assert_eq!(ack_all(&mut net, back), ["four"]);
    }
}

#[test]
fn a_plain_unsubscribe_keeps_it_and_the_conventions_unsubscribe_ends_it() {
    for headers in [RABBITMQ, ACTIVEMQ] {
        let mut net = Net::new(Broker::new(BrokerConfig::default()));
        let reader = client_with_id(&mut net, "ann", "ann-laptop");
        let id = subscribe(&mut net, reader, headers);
        unsubscribe(&mut net, reader, &id, &[]);
        publish(&mut net, "kept");
        let id = subscribe(&mut net, reader, headers);
        assert_eq!(ack_all(&mut net, reader), ["kept"]);
        let ending: &[(&str, &str)] = if headers == RABBITMQ {
            &[("durable", "true")]
        } else {
            ACTIVEMQ
        };
        unsubscribe(&mut net, reader, &id, ending);
        assert_eq!(net.broker.stats().durable_subscriptions, 0, "{headers:?}");
        publish(&mut net, "gone");
        subscribe(&mut net, reader, headers);
        assert!(net.take_messages(reader).is_empty(), "{headers:?}");
    }
}

#[test]
fn another_user_with_the_same_names_reaches_a_subscription_of_its_own() {
    for headers in [RABBITMQ, ACTIVEMQ] {
        let mut net = Net::new(Broker::new(BrokerConfig::default()));
        let ann = client_with_id(&mut net, "ann", "same-client");
        subscribe(&mut net, ann, headers);
        let (connection, now) = (net.clients[ann].0, net.now);
        net.broker.remove(connection, now);
        publish(&mut net, "for ann");
        let mallory = client_with_id(&mut net, "mallory", "same-client");
        subscribe(&mut net, mallory, headers);
        assert!(net.take_messages(mallory).is_empty(), "{headers:?}");
        assert_eq!(net.broker.stats().durable_subscriptions, 2);
    }
}

#[test]
fn activemq_names_need_a_client_id() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let reader = net.client("ann");
    subscribe(&mut net, reader, ACTIVEMQ);
    assert_eq!(
        net.broker.stats().durable_subscriptions,
        0,
        "a plain subscription"
    );
}

#[test]
fn with_a_journal_a_durable_subscription_and_what_waits_for_it_outlive_the_broker() {
    let config = BrokerConfig::default().with_persistence(Persistence::Marked);
    let mut net = Net::new(Broker::new(config.clone()));
    let reader = client_with_id(&mut net, "ann", "ann-laptop");
    subscribe(&mut net, reader, RABBITMQ);
    let mut journal = Vec::new();
    let sync = |net: &mut Net, journal: &mut Vec<u8>| {
        while let Some(bytes) = net.broker.poll_journal() {
            journal.extend_from_slice(&bytes);
        }
        net.broker.handle_journaled(journal.len() as u64);
        net.pump();
    };
    sync(&mut net, &mut journal);
    let (connection, now) = (net.clients[reader].0, net.now);
    net.broker.remove(connection, now);
    publish(&mut net, "while away");
    sync(&mut net, &mut journal);

    let mut net = Net::new(Broker::new(config));
    for record in Reader::new(&journal) {
        net.broker.restore(record);
    }
    let now = net.now;
    assert_eq!(net.broker.restored(now), 1);
    // Published after the restart, before the subscriber is back: kept too.
    publish(&mut net, "after the restart");
    let back = client_with_id(&mut net, "ann", "ann-laptop");
    subscribe(&mut net, back, RABBITMQ);
    let mut after = Vec::new();
    sync(&mut net, &mut after);
    assert_eq!(ack_all(&mut net, back), ["while away", "after the restart"]);
}

#[test]
fn an_absent_subscriber_holds_at_most_its_queue_limit_and_never_holds_up_the_topic() {
    let config = BrokerConfig::default().with_max_queue_bytes(10_000);
    let mut net = Net::new(Broker::new(config));
    let reader = client_with_id(&mut net, "ann", "ann-laptop");
    subscribe(&mut net, reader, RABBITMQ);
    let (connection, now) = (net.clients[reader].0, net.now);
    net.broker.remove(connection, now);
    // A publisher over the topic: what the absent subscriber cannot keep is dropped and
    // counted, and the publisher is never paused.
    let publisher = net.client("p");
    for _ in 0..100 {
        let now = net.now;
        let send = stomp_session::SendFrame::new("/topic/news", "x".repeat(500));
        net.clients[publisher].1.send(now, send).unwrap();
    }
    net.pump();
    let stats = net.broker.stats();
    assert!(stats.queued_bytes <= 10_000 + 1_000, "{stats:?}");
    assert!(stats.durable_dropped > 50, "{stats:?}");
    assert_eq!(stats.paused_publishers, 0);
    assert!(net.broker.wants_input(net.clients[publisher].0));
    // What was kept waits for it, oldest first.
    let back = client_with_id(&mut net, "ann", "ann-laptop");
    subscribe(&mut net, back, RABBITMQ);
    let kept = ack_all(&mut net, back).len() as u64;
    assert_eq!(kept + stats.durable_dropped, 100);
}
