//! Relay mode: broker destinations are another broker's. SUBSCRIBE waits for the relay's
//! answer before its RECEIPT, SENDs and publishes go out as events, deliveries come back in,
//! and acknowledgements (the client's, or under auto ack the write to it) go out again.
//! Application and user destinations stay local.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Net, bodies};
use stomp_broker::{
    Broker, BrokerConfig, BrokerEvent, ConnectionId, Refused, RelayEvent, Settlement,
};
use stomp_session::{AckMode, AskReceipt, Delivery, SendFrame, SubscriptionId};

fn relay() -> Net {
    Net::new(Broker::new(BrokerConfig::default().with_relay(true)))
}

fn connection(net: &Net, who: usize) -> ConnectionId {
    net.clients[who].0
}

/// Subscribes `who` with a receipt and returns the id and the relay's request.
fn subscribe(net: &mut Net, who: usize, destination: &str, ack: AckMode) -> SubscriptionId {
    let now = net.now;
    let headers = [("prefetch-count", "10")];
    let sub = net.clients[who]
        .1
        .subscribe_with_headers(now, destination, ack, &headers, AskReceipt::Yes)
        .unwrap();
    net.pump();
    sub.id
}

/// The relay's answer to `who`'s waiting SUBSCRIBE `id`.
fn answer(net: &mut Net, who: usize, id: &SubscriptionId, outcome: Result<(), &str>) {
    let connection = connection(net, who);
    let now = net.now;
    net.broker
        .relay_subscribed(connection, now, id, outcome.map_err(Refused::new));
    net.pump();
}

/// A relayed subscription the relay confirmed, with the events so far taken.
fn subscribed(net: &mut Net, who: usize, destination: &str, ack: AckMode) -> SubscriptionId {
    let id = subscribe(net, who, destination, ack);
    answer(net, who, &id, Ok(()));
    take_events(net);
    id
}

fn take_events(net: &mut Net) -> Vec<BrokerEvent> {
    std::mem::take(&mut net.events)
}

fn deliver(net: &mut Net, who: usize, id: &SubscriptionId, message_id: &str, body: &'static str) {
    let body = Bytes::from_static(body.as_bytes());
    let headers = [("x-origin", "relay")];
    let delivery = Delivery::new("/topic/news", message_id, &body).with_headers(&headers);
    let now = net.now;
    let connection = connection(net, who);
    assert!(net.broker.relay_deliver(connection, now, id, delivery));
    net.pump();
}

#[test]
fn a_relayed_subscribe_waits_for_the_relay_and_holds_what_follows() {
    let mut net = relay();
    let alice = net.client("alice");
    take_events(&mut net);
    let id = subscribe(&mut net, alice, "/topic/news", AckMode::Auto);
    // Pipelined behind the SUBSCRIBE: acted on only once the relay answered.
    let now = net.now;
    net.clients[alice]
        .1
        .send(now, SendFrame::new("/topic/news", "after").with_receipt())
        .unwrap();
    net.pump();
    let events = take_events(&mut net);
    assert!(
        matches!(
            &events[..],
            [BrokerEvent::Relay(RelayEvent::Subscribe { id: got, destination, ack: AckMode::Auto, frame, .. })]
                if *got == id && destination == "/topic/news"
                    && frame.header("prefetch-count").as_deref() == Some("10")
        ),
        "{events:?}"
    );
    assert!(
        !net.got_receipt(alice),
        "no RECEIPT before the relay answers"
    );
    assert_eq!(net.broker.stats().subscriptions, 1);

    answer(&mut net, alice, &id, Ok(()));
    assert_eq!(net.receipts(alice), 1, "the SUBSCRIBE's RECEIPT alone");
    // The subscription is reported once the other broker took it. The SEND went to the
    // relay, not to any local subscriber; its RECEIPT waits for the other broker's.
    let events = take_events(&mut net);
    let receipt = match &events[..] {
        [
            BrokerEvent::Subscribed {
                destination: subscribed,
                ..
            },
            BrokerEvent::Relay(RelayEvent::Send {
                destination, frame, ..
            }),
        ] if subscribed == "/topic/news"
            && destination == "/topic/news"
            && &frame.body()[..] == b"after" =>
        {
            frame.header("receipt").unwrap().into_owned()
        }
        _ => panic!("{events:?}"),
    };
    assert!(net.take_messages(alice).is_empty());
    let (connection, now) = (connection(&net, alice), net.now);
    net.broker.relay_sent(connection, now, &receipt);
    net.pump();
    assert_eq!(net.receipts(alice), 2, "then the SEND's, once relayed");
}

#[test]
fn a_refused_relayed_subscribe_is_an_error_without_a_receipt() {
    let mut net = relay();
    let alice = net.client("alice");
    let id = subscribe(&mut net, alice, "/queue/forbidden", AckMode::Auto);
    answer(&mut net, alice, &id, Err("access refused"));
    assert_eq!(net.refusal(alice).as_deref(), Some("access refused"));
    assert_eq!(net.broker.stats().subscriptions, 0);
}

#[test]
fn auto_ack_deliveries_are_acknowledged_to_the_relay_once_written() {
    let mut net = relay();
    let alice = net.client("alice");
    let id = subscribed(&mut net, alice, "/topic/news", AckMode::Auto);
    deliver(&mut net, alice, &id, "rabbit-1", "one");
    deliver(&mut net, alice, &id, "rabbit-2", "two");
    let messages = net.take_messages(alice);
    assert_eq!(bodies(&messages), ["one", "two"]);
    assert_eq!(messages[0].message_id().as_deref(), Some("rabbit-1"));
    assert_eq!(
        messages[0].frame().header("x-origin").as_deref(),
        Some("relay")
    );
    assert_eq!(messages[0].subscription().as_ref(), Some(&id));
    // The test driver writes at once and reports it: each write is an acknowledgement.
    let acked: Vec<String> = take_events(&mut net)
        .into_iter()
        .flat_map(|e| match e {
            BrokerEvent::Relay(RelayEvent::Settle {
                id: got,
                message_ids,
                settlement: Settlement::Ack,
                ..
            }) if got == id => message_ids,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(acked, ["rabbit-1", "rabbit-2"]);
}

#[test]
fn a_stalled_auto_ack_client_acknowledges_nothing_so_the_relay_sends_no_more() {
    let mut net = relay();
    let alice = net.client("alice");
    let id = subscribed(&mut net, alice, "/queue/work", AckMode::Auto);
    let connection = connection(&net, alice);
    net.stalled.push(connection);
    deliver(&mut net, alice, &id, "m-1", "held");
    assert!(
        take_events(&mut net).is_empty(),
        "not written, not acknowledged"
    );
    // The client goes: the subscription ends, and what was not acknowledged is the other
    // broker's to redeliver.
    net.stalled.clear();
    let now = net.now;
    net.broker.remove(connection, now);
    net.pump();
    let events = take_events(&mut net);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Relay(RelayEvent::Unsubscribe { id: got, .. }) if *got == id)),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Relay(RelayEvent::Settle { .. }))),
        "{events:?}"
    );
}

/// An UNSUBSCRIBE while auto-ack messages are on their way to the client: they will still be
/// written, so the other broker is told they are done with before the subscription ends (left
/// unacknowledged, it would redeliver them to another consumer as well).
#[test]
fn auto_ack_messages_on_their_way_when_the_client_unsubscribes_are_settled_first() {
    let mut net = relay();
    let alice = net.client("alice");
    let id = subscribed(&mut net, alice, "/queue/work", AckMode::Auto);
    let connection = connection(&net, alice);
    net.stalled.push(connection);
    deliver(&mut net, alice, &id, "m-1", "on its way");
    let now = net.now;
    net.clients[alice]
        .1
        .unsubscribe(now, &id, AskReceipt::No)
        .unwrap();
    net.pump();
    let events = take_events(&mut net);
    let acked = events.iter().position(|e| {
        matches!(e, BrokerEvent::Relay(RelayEvent::Settle { id: got, message_ids, settlement: Settlement::Ack, .. })
            if *got == id && message_ids == &["m-1"])
    });
    let ended = events.iter().position(
        |e| matches!(e, BrokerEvent::Relay(RelayEvent::Unsubscribe { id: got, .. }) if *got == id),
    );
    assert!(
        matches!((acked, ended), (Some(a), Some(u)) if a < u),
        "{events:?}"
    );
    // Written later (a write report makes the driver look at it again): nothing more to
    // settle.
    net.stalled.clear();
    net.broker.handle_written(connection, now, 0);
    net.pump();
    assert!(take_events(&mut net).is_empty());
    assert_eq!(bodies(&net.take_messages(alice)), ["on its way"]);
}

#[test]
fn client_acks_and_nacks_go_to_the_relay_with_the_messages_they_cover() {
    let mut net = relay();
    let alice = net.client("alice");
    let cumulative = subscribe(&mut net, alice, "/queue/a", AckMode::Client);
    let connection = connection(&net, alice);
    let now = net.now;
    net.broker
        .relay_subscribed(connection, now, &cumulative, Ok(()));
    net.pump();
    let single = subscribe(&mut net, alice, "/queue/b", AckMode::ClientIndividual);
    net.broker
        .relay_subscribed(connection, now, &single, Ok(()));
    net.pump();
    take_events(&mut net);
    deliver(&mut net, alice, &cumulative, "a-1", "1");
    deliver(&mut net, alice, &cumulative, "a-2", "2");
    deliver(&mut net, alice, &single, "b-1", "3");
    assert!(
        take_events(&mut net).is_empty(),
        "written, but not acknowledged"
    );
    let messages = net.take_messages(alice);
    let now = net.now;
    // ACK of the second covers both under `client`; NACK of one under `client-individual`.
    net.clients[alice]
        .1
        .ack(now, &messages[1], None, AskReceipt::No)
        .unwrap();
    net.clients[alice]
        .1
        .nack(now, &messages[2], None, AskReceipt::No)
        .unwrap();
    net.pump();
    let events = take_events(&mut net);
    assert!(
        matches!(
            &events[..],
            [
                BrokerEvent::Relay(RelayEvent::Settle { id: a, message_ids: ack_ids, settlement: Settlement::Ack, .. }),
                BrokerEvent::Relay(RelayEvent::Settle { id: b, message_ids: nack_ids, settlement: Settlement::Nack, .. }),
            ] if *a == cumulative && ack_ids == &["a-1", "a-2"] && *b == single && nack_ids == &["b-1"]
        ),
        "{events:?}"
    );
}

#[test]
fn application_and_user_destinations_stay_local_and_publishes_go_to_the_relay() {
    let mut net = relay();
    let alice = net.client("alice");
    let replies = net.subscribe(alice, "/user/queue/replies", AckMode::Auto);
    take_events(&mut net);
    net.send(alice, "/app/hello", "hi");
    let events = take_events(&mut net);
    assert!(
        matches!(&events[..], [BrokerEvent::AppMessage { destination, .. }] if destination == "/app/hello"),
        "{events:?}"
    );
    let now = net.now;
    let reached = net.broker.send_to_user(
        now,
        "alice",
        "/queue/replies",
        &[],
        Bytes::from_static(b"yours"),
    );
    net.pump();
    assert_eq!(reached, 1);
    let messages = net.take_messages(alice);
    assert_eq!(bodies(&messages), ["yours"]);
    assert_eq!(messages[0].subscription().as_ref(), Some(&replies));

    let now = net.now;
    net.broker.publish(
        now,
        "/topic/news",
        &[("x-kind", "news")],
        Bytes::from_static(b"out"),
    );
    net.pump();
    let events = take_events(&mut net);
    assert!(
        matches!(
            &events[..],
            [BrokerEvent::Relay(RelayEvent::Publish { destination, headers, body })]
                if destination == "/topic/news"
                    && headers == &[("x-kind".to_owned(), "news".to_owned())]
                    && &body[..] == b"out"
        ),
        "{events:?}"
    );
    // Nothing of the relay's is held here.
    assert_eq!(net.broker.stats().queues, 0);
    assert_eq!(net.broker.stats().topics, 0);
}

#[test]
fn deliveries_for_what_is_gone_are_not_taken_and_late_answers_are_ignored() {
    let mut net = relay();
    let alice = net.client("alice");
    let id = subscribe(&mut net, alice, "/topic/news", AckMode::Auto);
    let connection = connection(&net, alice);
    let now = net.now;
    let body = Bytes::from_static(b"x");
    // Not confirmed yet: a delivery would come before the RECEIPT; still, the session takes
    // it only for a subscription it knows.
    assert!(!net.broker.relay_deliver(
        connection,
        now,
        &id,
        Delivery::new("/topic/news", "m", &body)
    ));
    net.broker.relay_subscribed(connection, now, &id, Ok(()));
    net.pump();
    net.clients[alice]
        .1
        .unsubscribe(now, &id, AskReceipt::No)
        .unwrap();
    net.pump();
    assert!(!net.broker.relay_deliver(
        connection,
        now,
        &id,
        Delivery::new("/topic/news", "m", &body)
    ));
    net.broker.relay_subscribed(connection, now, &id, Ok(()));
    net.advance(Duration::from_millis(10));
    assert!(net.closed_reason(alice).is_none(), "nothing broke");
}

#[test]
fn only_a_relayed_send_outside_a_transaction_waits_for_the_relay_to_be_receipted() {
    let mut net = relay();
    let alice = net.client("alice");
    let now = net.now;
    let client = &mut net.clients[alice].1;
    client
        .send(
            now,
            SendFrame::new("/app/orders", "to the application").with_receipt(),
        )
        .unwrap();
    let tx = client.begin(now, AskReceipt::No).unwrap().id;
    let in_tx = SendFrame::new("/topic/news", "in a transaction").in_transaction(&tx);
    client.send(now, in_tx.with_receipt()).unwrap();
    net.pump();
    assert_eq!(
        net.receipts(alice),
        2,
        "the application's SEND and the transaction's, at once"
    );
    let now = net.now;
    net.clients[alice]
        .1
        .commit(now, &tx, AskReceipt::No)
        .unwrap();
    net.pump();
    // At COMMIT the relay gets the SEND, already answered.
    let events = take_events(&mut net);
    assert!(
        events.iter().any(
            |e| matches!(e, BrokerEvent::Relay(RelayEvent::Send { frame, .. })
            if &frame.body()[..] == b"in a transaction")
        ),
        "{events:?}"
    );
    assert_eq!(net.receipts(alice), 2);
}
