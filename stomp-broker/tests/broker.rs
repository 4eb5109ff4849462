//! The broker with client sessions attached, on virtual time: topics, queues with round-robin
//! and redelivery, patterns, refused subscriptions, an authorizer, application messages and
//! replies, unique message ids, and shared bodies.

use std::time::Duration;

use bytes::Bytes;
mod common;

use common::{Net, bodies};
use stomp_broker::{Authorizer, Broker, BrokerConfig, BrokerEvent, Refused};
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, ClientSession, CloseReason, ConnectRequest,
    SendFrame,
};

#[test]
fn topics_reach_every_subscriber_with_unique_message_ids() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (a, b, c) = (net.client("a"), net.client("b"), net.client("c"));
    net.subscribe(a, "/topic/news", AckMode::Auto);
    net.subscribe(b, "/topic/news", AckMode::Auto);
    net.send(c, "/topic/news", "one");
    net.send(c, "/topic/news", "two");
    let (got_a, got_b) = (net.take_messages(a), net.take_messages(b));
    assert_eq!(bodies(&got_a), ["one", "two"]);
    assert_eq!(bodies(&got_b), ["one", "two"]);
    assert!(
        net.take_messages(c).is_empty(),
        "the sender did not subscribe"
    );
    let ids: Vec<_> = got_a
        .iter()
        .map(|m| m.message_id().unwrap().into_owned())
        .collect();
    assert_ne!(ids[0], ids[1]);
    // Both subscribers see the same message under the same id.
    assert_eq!(got_b[0].message_id(), got_a[0].message_id());
}

#[test]
fn user_headers_pass_through_and_framing_headers_do_not() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (a, b) = (net.client("a"), net.client("b"));
    net.subscribe(a, "/topic/t", AckMode::Auto);
    let now = net.now;
    let send = SendFrame::new("/topic/t", "x")
        .header("x-trace", "42")
        .with_receipt();
    net.clients[b].1.send(now, send).unwrap();
    net.pump();
    let message = &net.take_messages(a)[0];
    assert_eq!(message.frame().header("x-trace").as_deref(), Some("42"));
    assert_eq!(
        message.frame().header("receipt"),
        None,
        "a SEND's receipt is its own"
    );
}

#[test]
fn patterns_match_one_or_many_segments() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (one, many, sender) = (net.client("one"), net.client("many"), net.client("s"));
    net.subscribe(one, "/topic/prices/*", AckMode::Auto);
    net.subscribe(many, "/topic/**", AckMode::Auto);
    net.send(sender, "/topic/prices/eu", "eu");
    net.send(sender, "/topic/prices/eu/de", "de");
    assert_eq!(bodies(&net.take_messages(one)), ["eu"]);
    assert_eq!(bodies(&net.take_messages(many)), ["eu", "de"]);
}

#[test]
fn queues_deliver_each_message_to_one_consumer_round_robin() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (a, b, sender) = (net.client("a"), net.client("b"), net.client("s"));
    net.subscribe(a, "/queue/work", AckMode::Auto);
    net.subscribe(b, "/queue/work", AckMode::Auto);
    for body in ["1", "2", "3", "4"] {
        net.send(sender, "/queue/work", body);
    }
    let (got_a, got_b) = (bodies(&net.take_messages(a)), bodies(&net.take_messages(b)));
    assert_eq!(got_a.len(), 2);
    assert_eq!(got_b.len(), 2);
    let mut all = [got_a, got_b].concat();
    all.sort();
    assert_eq!(all, ["1", "2", "3", "4"]);
}

#[test]
fn queues_hold_messages_until_a_consumer_comes() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (sender, late) = (net.client("s"), net.client("late"));
    net.send(sender, "/queue/later", "kept");
    net.subscribe(late, "/queue/later", AckMode::Auto);
    assert_eq!(bodies(&net.take_messages(late)), ["kept"]);
}

#[test]
fn a_nacked_queue_message_is_redelivered() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (a, sender) = (net.client("a"), net.client("s"));
    net.subscribe(a, "/queue/jobs", AckMode::ClientIndividual);
    net.send(sender, "/queue/jobs", "job");
    let first = net.take_messages(a).remove(0);
    assert_eq!(first.frame().header("redelivered"), None);
    let now = net.now;
    net.clients[a]
        .1
        .nack(now, &first, None, AskReceipt::No)
        .unwrap();
    net.pump();
    let again = net.take_messages(a);
    assert_eq!(bodies(&again), ["job"]);
    assert_eq!(
        again[0].frame().header("redelivered").as_deref(),
        Some("true")
    );
    assert_eq!(again[0].message_id(), first.message_id());
    // Acknowledged, it is gone for good.
    net.clients[a]
        .1
        .ack(now, &again[0], None, AskReceipt::No)
        .unwrap();
    net.pump();
    net.subscribe(a, "/queue/jobs", AckMode::Auto);
    assert!(net.take_messages(a).is_empty());
}

#[test]
fn unacknowledged_queue_messages_go_to_another_consumer_when_theirs_leaves() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (leaver, stayer, sender) = (net.client("l"), net.client("st"), net.client("s"));
    net.subscribe(leaver, "/queue/jobs", AckMode::Client);
    net.send(sender, "/queue/jobs", "job");
    assert_eq!(bodies(&net.take_messages(leaver)), ["job"]);
    net.subscribe(stayer, "/queue/jobs", AckMode::Auto);
    assert!(
        net.take_messages(stayer).is_empty(),
        "taken, not yet abandoned"
    );
    // The consumer drops without acknowledging.
    let connection = net.clients[leaver].0;
    let now = net.now;
    net.broker.handle_eof(connection, now);
    net.pump();
    assert_eq!(bodies(&net.take_messages(stayer)), ["job"]);
}

#[test]
fn subscriptions_outside_the_broker_prefixes_are_refused_with_an_error() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let a = net.client("a");
    let now = net.now;
    net.clients[a]
        .1
        .subscribe(now, "/secret/things", AckMode::Auto, AskReceipt::Yes)
        .unwrap();
    net.pump();
    let error = net.clients[a].2.iter().find_map(|e| match e {
        ClientEvent::Error(frame) => Some(frame.header("message").unwrap().into_owned()),
        _ => None,
    });
    assert_eq!(
        error.as_deref(),
        Some("no such destination: /secret/things")
    );
    assert!(matches!(
        net.closed_reason(a),
        Some(CloseReason::ErrorFrame(_))
    ));
    // No RECEIPT came for the refused SUBSCRIBE.
    assert!(
        !net.clients[a]
            .2
            .iter()
            .any(|e| matches!(e, ClientEvent::Receipt { .. }))
    );
}

struct OnlyAdmins;

impl Authorizer for OnlyAdmins {
    fn connect(&self, request: &ConnectRequest) -> Result<Option<String>, Refused> {
        match request.passcode.as_ref().map(|p| p.expose()) {
            Some("secret") => Ok(request.login.clone()),
            _ => Err("bad login".into()),
        }
    }

    fn subscribe(
        &self,
        login: Option<&str>,
        destination: &str,
        _: &stomp_session::FrameBuf,
    ) -> Result<(), Refused> {
        if destination.starts_with("/topic/admin") && login != Some("admin") {
            return Err(format!(
                "{} may not read {destination}",
                login.unwrap_or("anonymous")
            )
            .into());
        }
        Ok(())
    }
}

#[test]
fn an_authorizer_refuses_logins_and_subscriptions() {
    let mut net = Net::new(Broker::with_authorizer(
        BrokerConfig::default(),
        Box::new(OnlyAdmins),
    ));
    let (admin, user) = (net.client("admin"), net.client("user"));
    net.subscribe(admin, "/topic/admin/audit", AckMode::Auto);
    assert!(net.closed_reason(admin).is_none());
    net.subscribe(user, "/topic/admin/audit", AckMode::Auto);
    assert_eq!(
        net.closed_reason(user),
        Some(&CloseReason::ErrorFrame(Some(
            "user may not read /topic/admin/audit".into()
        )))
    );
    // A wrong passcode is refused at CONNECT.
    let connection = net.broker.open(net.now);
    let config = ClientConfig::new("/").with_login("eve", "guess");
    net.clients
        .push((connection, ClientSession::new(config, net.now), Vec::new()));
    net.pump();
    // A failed login costs time: the ERROR comes after the login failure delay, not before.
    net.advance(Duration::from_millis(999));
    assert_eq!(net.closed_reason(2), None);
    net.advance(Duration::from_millis(1));
    assert_eq!(
        net.closed_reason(2),
        Some(&CloseReason::ErrorFrame(Some("bad login".into())))
    );
}

#[test]
fn app_messages_go_to_application_code_which_replies_and_publishes() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (asker, listener) = (net.client("asker"), net.client("listener"));
    net.subscribe(asker, "/user/queue/replies", AckMode::Auto);
    net.subscribe(listener, "/chat/room1", AckMode::Auto);
    net.send(asker, "/app/chat", "{\"hello\":1}");
    let (connection, frame) = net
        .events
        .iter()
        .find_map(|e| match e {
            BrokerEvent::AppMessage {
                connection,
                destination,
                frame,
            } if destination == "/app/chat" => Some((*connection, frame.clone())),
            _ => None,
        })
        .expect("an application message");
    assert_eq!(&frame.body()[..], b"{\"hello\":1}");
    let now = net.now;
    let reached = net.broker.reply(
        now,
        connection,
        "/user/queue/replies",
        &[],
        Bytes::from_static(b"answer"),
    );
    assert_eq!(reached, 1);
    net.broker.publish(
        now,
        "/chat/room1",
        &[("content-type", "application/json")],
        Bytes::from_static(b"news"),
    );
    net.pump();
    assert_eq!(bodies(&net.take_messages(asker)), ["answer"]);
    let news = net.take_messages(listener);
    assert_eq!(bodies(&news), ["news"]);
    assert_eq!(
        news[0].frame().header("content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn sends_to_unserved_destinations_are_refused_before_their_receipt() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let a = net.client("a");
    let now = net.now;
    let send = SendFrame::new("/nowhere", "x").with_receipt();
    net.clients[a].1.send(now, send).unwrap();
    net.pump();
    assert_eq!(
        net.error_message(a).as_deref(),
        Some("no such destination: /nowhere")
    );
    assert!(!net.got_receipt(a));
}

#[test]
fn sends_to_unserved_destinations_can_be_dropped_and_reported_instead() {
    let config = BrokerConfig::default().with_drop_unserved_sends(true);
    let mut net = Net::new(Broker::new(config));
    let a = net.client("a");
    net.send(a, "/nowhere", "x");
    assert!(net.events.iter().any(
        |e| matches!(e, BrokerEvent::Dropped { destination, .. } if destination == "/nowhere")
    ));
    assert_eq!(net.closed_reason(a), None);
}

#[test]
fn one_body_is_shared_by_every_subscriber() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let subscribers: Vec<usize> = (0..5).map(|n| net.client(&format!("c{n}"))).collect();
    for &s in &subscribers {
        net.subscribe(s, "/topic/big", AckMode::Auto);
    }
    net.wrote.clear();
    let body = Bytes::from(vec![b'x'; 64 * 1024]);
    let now = net.now;
    net.broker.publish(now, "/topic/big", &[], body.clone());
    net.pump();
    // Each connection was handed the very buffer that was published: no copy per subscriber.
    let shared = net
        .wrote
        .iter()
        .filter(|(_, b)| b.as_ptr() == body.as_ptr())
        .count();
    assert_eq!(shared, subscribers.len());
    for &s in &subscribers {
        assert_eq!(net.take_messages(s)[0].body().len(), 64 * 1024);
    }
}

#[test]
fn shutdown_closes_every_connection_with_an_error() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (a, b) = (net.client("a"), net.client("b"));
    let now = net.now;
    net.broker.shut_down(now, "server shutting down");
    net.pump();
    for who in [a, b] {
        assert_eq!(
            net.closed_reason(who),
            Some(&CloseReason::ErrorFrame(Some(
                "server shutting down".into()
            )))
        );
    }
    assert_eq!(net.broker.stats().connections, 0);
}

#[test]
fn connected_names_the_session_and_the_user() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let alice = net.client("alice");
    let connection = net.clients[alice].0;
    let connected = net
        .wrote
        .iter()
        .find(|(c, _)| *c == connection)
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .unwrap();
    assert!(connected.starts_with("CONNECTED\n"), "{connected}");
    assert!(
        connected.contains(&format!("\nsession:session-{connection}\n")),
        "{connected}"
    );
    assert!(connected.contains("\nuser-name:alice\n"), "{connected}");
}

#[test]
fn a_subscribe_to_an_application_destination_is_the_applications_to_answer() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (a, b) = (net.client("a"), net.client("b"));
    let id = net.subscribe(a, "/app/rooms", AckMode::Auto);
    net.subscribe(b, "/app/rooms", AckMode::Auto);
    let subscribed: Vec<(stomp_broker::ConnectionId, stomp_session::SubscriptionId)> = net
        .events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::AppSubscribe {
                connection,
                id,
                destination,
                ..
            } if destination == "/app/rooms" => Some((*connection, id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(subscribed.len(), 2);
    let (connection, event_id) = subscribed[0].clone();
    assert_eq!(event_id, id);
    // An answer reaches that subscriber alone; a publish to the destination reaches nobody.
    let now = net.now;
    let body = Bytes::from_static(b"[\"lobby\"]");
    assert_eq!(
        net.broker
            .reply(now, connection, "/app/rooms", &[], body.clone()),
        1
    );
    net.broker.publish(now, "/app/rooms", &[], body);
    net.pump();
    assert_eq!(bodies(&net.take_messages(a)), ["[\"lobby\"]"]);
    assert!(net.take_messages(b).is_empty());
    assert_eq!(net.broker.stats().topics, 0);
    // Patterns are refused there, as on queues.
    net.subscribe(b, "/app/*", AckMode::Auto);
    assert_eq!(
        net.error_message(b).as_deref(),
        Some("patterns are not allowed on application destinations: /app/*")
    );
}

#[test]
fn held_input_is_not_read_and_its_silence_does_not_count() {
    let mut broker = Broker::new(BrokerConfig::default());
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    let mut now = std::time::Instant::now();
    let connection = broker.open(now);
    // The client promises a heart-beat at least every 10 s (the server's wish), then falls
    // silent: 20 s of silence (margin 2) would close it.
    broker.handle_input(
        connection,
        now,
        b"CONNECT\naccept-version:1.2\nheart-beat:10000,10000\n\n\0",
    );
    let mut run_for = |broker: &mut Broker, seconds: u64| {
        for _ in 0..seconds {
            now += Duration::from_secs(1);
            if broker.poll_timeout(connection).is_some_and(|at| at <= now) {
                broker.handle_timeout(connection, now);
            }
        }
        now
    };
    let at = run_for(&mut broker, 5);
    broker.hold_input(connection, at);
    assert!(!broker.wants_input(connection));
    run_for(&mut broker, 120);
    assert!(!broker.is_closed(connection), "closed while held");
    let at = run_for(&mut broker, 0);
    broker.release_input(connection, at);
    assert!(broker.wants_input(connection));
    run_for(&mut broker, 15);
    assert!(
        !broker.is_closed(connection),
        "the silence counts from the resume"
    );
    run_for(&mut broker, 10);
    assert!(
        broker.is_closed(connection),
        "silent for 25 s since the resume"
    );
}

#[test]
fn stats_count_sessions_frames_and_deliveries() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (a, b) = (net.client("a"), net.client("b"));
    net.subscribe(a, "/topic/t", AckMode::Auto);
    net.send(b, "/topic/t", "1");
    net.send(b, "/topic/t", "2");
    let stats = net.broker.stats();
    assert_eq!((stats.opened, stats.closed, stats.deliveries), (2, 0, 2));
    // CONNECT x2, SUBSCRIBE, SEND x2 in; CONNECTED x2, RECEIPT for the SUBSCRIBE, MESSAGE x2 out.
    assert_eq!(stats.frames_received, 5);
    assert_eq!(stats.frames_sent, 5);
    let connection = net.clients[b].0;
    let now = net.now;
    net.broker.close_with_error(connection, now, "bye");
    net.pump();
    let stats = net.broker.stats();
    assert_eq!((stats.closed, stats.closed_abnormally), (1, 1));
}
