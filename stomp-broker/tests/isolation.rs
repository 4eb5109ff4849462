//! No client reads or forges another's messages: user destinations belong to their session,
//! clients may not send to them, patterns are refused on user and queue destinations, the
//! authorizer decides sends, and destinations are bounded in length and segments.

mod common;

use bytes::Bytes;
use common::{Net, bodies};
use stomp_broker::{Authorizer, Broker, BrokerConfig, Refused};
use stomp_session::{AckMode, SendFrame};

fn refused_subscription(destination: &str) -> Option<String> {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let a = net.client("a");
    net.subscribe(a, destination, AckMode::Auto);
    net.refusal(a)
}

fn refused_send(broker: Broker, destination: &str) -> Option<String> {
    let mut net = Net::new(broker);
    let a = net.client("a");
    let now = net.now;
    net.clients[a]
        .1
        .send(now, SendFrame::new(destination, "forged").with_receipt())
        .unwrap();
    net.pump();
    net.refusal(a)
}

#[test]
fn user_destinations_belong_to_their_session() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (alice, bob, eve) = (net.client("alice"), net.client("bob"), net.client("eve"));
    net.subscribe(alice, "/user/queue/responses", AckMode::Auto);
    net.subscribe(bob, "/user/queue/responses", AckMode::Auto);
    // Eve watches everything a pattern may reach.
    net.subscribe(eve, "/topic/**", AckMode::Auto);
    net.subscribe(eve, "/chat/**", AckMode::Auto);
    let now = net.now;
    let alice_connection = net.clients[alice].0;
    let reached = net.broker.reply(
        now,
        alice_connection,
        "/user/queue/responses",
        &[],
        Bytes::from_static(b"for alice"),
    );
    assert_eq!(reached, 1);
    net.pump();
    let got = net.take_messages(alice);
    assert_eq!(bodies(&got), ["for alice"]);
    assert_eq!(
        got[0].destination().as_deref(),
        Some("/user/queue/responses"),
        "the destination as the client subscribed it"
    );
    assert!(net.take_messages(bob).is_empty());
    assert!(net.take_messages(eve).is_empty());
}

#[test]
fn clients_may_not_send_to_user_destinations() {
    assert_eq!(
        refused_send(
            Broker::new(BrokerConfig::default()),
            "/user/queue/responses"
        )
        .as_deref(),
        Some("clients may not send to user destinations: /user/queue/responses")
    );
    assert_eq!(
        refused_send(Broker::new(BrokerConfig::default()), "/user/bob/queue/x").as_deref(),
        Some("clients may not send to user destinations: /user/bob/queue/x")
    );
}

#[test]
fn patterns_and_other_users_destinations_are_refused() {
    for (destination, message) in [
        (
            "/user/**",
            "patterns are not allowed on user destinations: /user/**",
        ),
        (
            "/user/*/queue/x",
            "patterns are not allowed on user destinations: /user/*/queue/x",
        ),
        (
            "/queue/**",
            "patterns are not allowed on queue destinations: /queue/**",
        ),
        (
            "/queue/*",
            "patterns are not allowed on queue destinations: /queue/*",
        ),
        ("/**", "no such destination: /**"),
        // Another user's destination, in Spring's sending form.
        (
            "/user/bob/queue/x",
            "no such user destination: /user/bob/queue/x",
        ),
    ] {
        assert_eq!(
            refused_subscription(destination).as_deref(),
            Some(message),
            "{destination}"
        );
    }
    // Patterns over topics are what topics are for.
    assert_eq!(refused_subscription("/topic/**"), None);
}

#[test]
fn a_queue_backlog_meant_for_one_consumer_is_not_readable_by_patterns() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (worker, eve) = (net.client("worker"), net.client("eve"));
    let now = net.now;
    net.broker
        .publish(now, "/queue/payroll", &[], Bytes::from_static(b"salary"));
    net.subscribe(eve, "/topic/**", AckMode::Auto);
    net.subscribe(worker, "/queue/payroll", AckMode::Auto);
    assert_eq!(bodies(&net.take_messages(worker)), ["salary"]);
    assert!(net.take_messages(eve).is_empty());
}

#[test]
fn sends_with_wildcards_are_refused() {
    assert_eq!(
        refused_send(Broker::new(BrokerConfig::default()), "/topic/*").as_deref(),
        Some("a SEND's destination may not hold wildcards: /topic/*")
    );
}

struct ReadOnlyNews;

impl Authorizer for ReadOnlyNews {
    fn send(
        &self,
        login: Option<&str>,
        destination: &str,
        _: &stomp_session::FrameBuf,
    ) -> Result<(), Refused> {
        if destination.starts_with("/topic/news") && login != Some("editor") {
            return Err(format!("{} may not publish news", login.unwrap_or("-")).into());
        }
        Ok(())
    }
}

#[test]
fn the_authorizer_decides_sends_per_destination_knowing_the_login() {
    let broker = || Broker::with_authorizer(BrokerConfig::default(), Box::new(ReadOnlyNews));
    assert_eq!(
        refused_send(broker(), "/topic/news").as_deref(),
        Some("a may not publish news")
    );
    assert_eq!(refused_send(broker(), "/topic/chat"), None);
    let mut net = Net::new(broker());
    let (editor, reader) = (net.client("editor"), net.client("reader"));
    net.subscribe(reader, "/topic/news", AckMode::Auto);
    net.send(editor, "/topic/news", "extra");
    assert_eq!(bodies(&net.take_messages(reader)), ["extra"]);
}

#[test]
fn destinations_are_bounded_in_length_and_segments() {
    let long = format!("/topic/{}", "x".repeat(1100));
    assert_eq!(
        refused_subscription(&long).as_deref(),
        Some("destination longer than 1024 octets")
    );
    let deep = format!("/topic{}", "/a".repeat(70));
    assert_eq!(
        refused_send(Broker::new(BrokerConfig::default()), &deep).as_deref(),
        Some("destination of more than 64 segments")
    );
    // Segments are what `/` separates, the empty one before the first `/` included: 65 are
    // one too many, 64 are fine.
    let deeper = format!("/topic{}", "/a".repeat(63));
    assert_eq!(
        refused_send(Broker::new(BrokerConfig::default()), &deeper).as_deref(),
        Some("destination of more than 64 segments")
    );
    let deepest = format!("/topic{}", "/a".repeat(62));
    assert_eq!(
        refused_send(Broker::new(BrokerConfig::default()), &deepest),
        None
    );
    // At the limits, fine.
    let longest = format!("/topic/{}", "x".repeat(1024 - 7));
    assert_eq!(refused_subscription(&longest), None);
}

#[test]
fn a_user_is_reached_in_every_session_and_nobody_else_is() {
    let mut net = Net::new(Broker::new(BrokerConfig::default()));
    let (phone, laptop, bob) = (net.client("alice"), net.client("alice"), net.client("bob"));
    for who in [phone, laptop, bob] {
        net.subscribe(who, "/user/queue/notifications", AckMode::Auto);
    }
    // A second destination of Alice's that this message is not for.
    net.subscribe(phone, "/user/queue/other", AckMode::Auto);
    let now = net.now;
    let reached = net.broker.send_to_user(
        now,
        "alice",
        "/queue/notifications",
        &[],
        Bytes::from_static(b"for alice"),
    );
    assert_eq!(reached, 2);
    net.pump();
    for who in [phone, laptop] {
        let got = net.take_messages(who);
        assert_eq!(bodies(&got), ["for alice"]);
        assert_eq!(
            got[0].destination().as_deref(),
            Some("/user/queue/notifications")
        );
    }
    assert!(net.take_messages(bob).is_empty());
    assert_eq!(net.broker.stats().users, 2);
    // Nothing is kept for users who left.
    for who in [phone, laptop] {
        let connection = net.clients[who].0;
        net.broker.handle_eof(connection, now);
    }
    net.pump();
    assert_eq!(net.broker.stats().users, 1);
    let reached = net
        .broker
        .send_to_user(now, "alice", "/queue/notifications", &[], Bytes::new());
    assert_eq!(reached, 0);
}
