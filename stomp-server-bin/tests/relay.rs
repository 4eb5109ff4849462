//! Relay mode against real brokers: two stomp-server nodes in this process share RabbitMQ
//! (STOMP on 127.0.0.1:61633), and the core of it against ActiveMQ (127.0.0.1:61623), both
//! started by `scripts/brokers.sh`. Clients are stomp-tokio's, each on one node.
//!
//! These need the brokers, so plain `cargo test` lists them as ignored; `scripts/test` starts
//! the brokers and runs them with `--include-ignored`, and there a missing broker fails.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::BytesMut;

use common::relay::{available, rabbitmqctl};
use stomp_chat as chat;
use stomp_server::{App, BrokerConfig, Context, Failure, Message, RelayConfig, Server};
use stomp_session::stomp_codec::{Command, Decoder, Item};
use stomp_tokio::{AckMode, Client, HeartBeat, SendFrame, Subscription};
use tokio::net::TcpListener;

const RABBITMQ: &str = "stomp://guest:guest@127.0.0.1:61633/";
const ACTIVEMQ: &str = "stomp://guest:guest@127.0.0.1:61623/localhost";
const WAIT: Duration = Duration::from_secs(10);
/// More than a relayed subscription's prefetch (64): the broker sends the rest only as the
/// relay settles what the client took.
const ROOM_MESSAGES: usize = 150;
const QUEUE_MESSAGES: usize = 200;

/// A node relaying to `broker`, running `app`; the server and its TCP address, once its
/// broker connections are up.
async fn node<S: Clone + Send + Sync + 'static>(broker: &str, app: App<S>) -> (Server, String) {
    node_with(RelayConfig::parse(broker).unwrap(), app).await
}

async fn node_with<S: Clone + Send + Sync + 'static>(
    relay: RelayConfig,
    app: App<S>,
) -> (Server, String) {
    node_on_shards(relay, app, 1).await
}

/// A node as [`node_with`], on `shards` broker tasks, each a node of the relay.
async fn node_on_shards<S: Clone + Send + Sync + 'static>(
    relay: RelayConfig,
    app: App<S>,
    shards: usize,
) -> (Server, String) {
    let config = BrokerConfig::default().with_login_failure_delay(Duration::from_millis(10));
    let server = Server::builder()
        .config(config)
        .app(app)
        .relay(relay)
        .shards(shards)
        .start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_tcp(listener));
    available(&server, WAIT).await;
    (server, address)
}

async fn client(address: &str, login: &str) -> Client {
    Client::builder(address)
        .login(login, "x")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{login} at {address}: {e}"))
}

/// A name no other run uses.
fn unique(what: &str) -> String {
    format!("{what}-{}-{}", std::process::id(), fastrand::u32(..))
}

fn text(message: &stomp_tokio::Message) -> String {
    String::from_utf8_lossy(message.body()).into_owned()
}

async fn next(subscription: &mut Subscription) -> stomp_tokio::Message {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("no message in time")
        .expect("subscription ended")
}

/// Nothing more arrives within a short while.
async fn quiet(subscription: &mut Subscription) -> bool {
    tokio::time::timeout(Duration::from_millis(300), subscription.next())
        .await
        .is_err()
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_two_nodes_each_subscriber_gets_every_room_message_once_by_its_own_name() {
    two_nodes_share_a_room(RABBITMQ).await;
}

#[tokio::test]
#[ignore = "needs ActiveMQ (scripts/test starts it)"]
async fn activemq_two_nodes_each_subscriber_gets_every_room_message_once_by_its_own_name() {
    two_nodes_share_a_room(ACTIVEMQ).await;
}

async fn two_nodes_share_a_room(broker: &str) {
    let (_a, address_a) = node(broker, App::new()).await;
    let (_b, address_b) = node(broker, App::new()).await;
    let room = format!("/chat/{}", unique("lobby"));
    let (ann, bob) = (
        client(&address_a, "ann").await,
        client(&address_b, "bob").await,
    );
    let mut on_a = ann.subscribe(&room, AckMode::Auto).await.unwrap();
    let mut on_b = bob
        .subscribe(&room, AckMode::ClientIndividual)
        .await
        .unwrap();
    // Publishers of their own, one per node, each SEND's RECEIPT awaited (given once the
    // broker took it, so the order is global); the subscribers read only afterwards, their
    // nodes holding them back meanwhile by the prefetch.
    let (pub_a, pub_b) = (
        client(&address_a, "pub-a").await,
        client(&address_b, "pub-b").await,
    );
    for n in 0..ROOM_MESSAGES {
        let (sender, who) = if n % 2 == 0 {
            (&pub_a, "a")
        } else {
            (&pub_b, "b")
        };
        let frame = SendFrame::new(room.as_str(), format!("{who}{n}")).header("x-n", n.to_string());
        sender.send_with_receipt(frame).await.unwrap();
    }
    for subscription in [&mut on_a, &mut on_b] {
        for n in 0..ROOM_MESSAGES {
            let message = next(subscription).await;
            let who = if n % 2 == 0 { "a" } else { "b" };
            assert_eq!(text(&message), format!("{who}{n}"));
            assert_eq!(message.destination().as_deref(), Some(room.as_str()));
            assert_eq!(
                message.header("x-n").as_deref(),
                Some(n.to_string().as_str())
            );
            if message.ack_mode() == Some(AckMode::ClientIndividual) {
                subscription.ack(&message).await.unwrap();
            }
        }
        assert!(quiet(subscription).await, "a message came twice");
    }
    ann.disconnect().await.unwrap();
    bob.disconnect().await.unwrap();
}

/// The consumers RabbitMQ counts on queue `name`, once it has one by that name.
fn consumers_of(name: &str) -> Option<usize> {
    rabbitmqctl(&[
        "list_queues",
        "--quiet",
        "--no-table-headers",
        "name",
        "consumers",
    ])
    .lines()
    .filter_map(|line| line.split_once('\t'))
    .find(|(queue, _)| *queue == name)
    .and_then(|(_, consumers)| consumers.trim().parse().ok())
}

#[tokio::test]
#[ignore = "needs RabbitMQ and rabbitmqctl (scripts/test starts it)"]
async fn rabbitmq_auto_subscribers_of_a_room_on_one_node_share_one_broker_subscription() {
    let (_node, address) = node(RABBITMQ, App::new()).await;
    let room = format!("/chat/{}", unique("shared"));
    // The queue RabbitMQ makes for the subscription is named by the client (`x-queue-name`
    // passes on): one subscription per session would be three consumers on it, each given
    // some of the messages, or refused as it is exclusive to another connection.
    let queue = unique("shared-room");
    let named = [("x-queue-name", queue.as_str())];
    let mut clients = Vec::new();
    let mut subscriptions = Vec::new();
    for n in 0..3 {
        let client = client(&address, &format!("reader-{n}")).await;
        let subscription = client
            .subscribe_with_headers(&room, AckMode::Auto, &named)
            .await
            .unwrap();
        clients.push(client);
        subscriptions.push(subscription);
    }
    assert_eq!(consumers_of(&queue), Some(1));
    let publisher = client(&address, "publisher").await;
    let messages = 2 * ROOM_MESSAGES;
    for n in 0..messages {
        let frame = SendFrame::new(room.as_str(), format!("m{n}"));
        publisher.send_with_receipt(frame).await.unwrap();
    }
    for subscription in &mut subscriptions {
        for n in 0..messages {
            assert_eq!(text(&next(subscription).await), format!("m{n}"));
        }
        assert!(quiet(subscription).await, "a message came twice");
    }
    // One leaves: the others still share the subscription; the last one's leaving ends it.
    let leaving = clients.pop().unwrap();
    subscriptions.pop();
    leaving.disconnect().await.unwrap();
    publisher
        .send_with_receipt(SendFrame::new(room.as_str(), "after"))
        .await
        .unwrap();
    for subscription in &mut subscriptions {
        assert_eq!(text(&next(subscription).await), "after");
    }
    assert_eq!(consumers_of(&queue), Some(1));
    for client in clients {
        client.disconnect().await.unwrap();
    }
    let deadline = std::time::Instant::now() + WAIT;
    while consumers_of(&queue).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the shared subscription outlived its last subscriber"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_subscriptions_of_every_ack_mode_to_one_room_settle_only_their_own_messages() {
    // One broker connection for the shared subscriptions: at RabbitMQ the subscriptions of
    // a connection share a channel, where a cumulative ACK would settle the others'
    // messages as well.
    let relay = RelayConfig::parse(RABBITMQ).unwrap().connections(1);
    let (_node, address) = node_with(relay, App::new()).await;
    let room = format!("/chat/{}", unique("shared"));
    let modes = [
        AckMode::Auto,
        AckMode::Auto,
        AckMode::Client,
        AckMode::ClientIndividual,
    ];
    let mut readers = Vec::new();
    for (n, mode) in modes.into_iter().enumerate() {
        let reader = client(&address, &format!("reader-{n}")).await;
        let subscription = reader.subscribe(&room, mode).await.unwrap();
        readers.push((reader, subscription));
    }
    let publisher = client(&address, "publisher").await;
    for n in 0..ROOM_MESSAGES {
        let frame = SendFrame::new(room.as_str(), format!("m{n}"));
        publisher.send_with_receipt(frame).await.unwrap();
    }
    for (reader, subscription) in &mut readers {
        for n in 0..ROOM_MESSAGES {
            let message = next(subscription).await;
            assert_eq!(text(&message), format!("m{n}"));
            match message.ack_mode() {
                Some(AckMode::ClientIndividual) => subscription.ack(&message).await.unwrap(),
                // Cumulative: every tenth settles the ten before it.
                Some(AckMode::Client) if n % 10 == 9 => subscription.ack(&message).await.unwrap(),
                _ => {}
            }
        }
        assert!(quiet(subscription).await, "a message came twice");
        assert_eq!(reader.close_reason(), None, "a reader was closed");
    }
    for (reader, _) in readers {
        reader.disconnect().await.unwrap();
    }
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_a_queue_message_is_consumed_once_across_both_nodes() {
    a_queue_is_consumed_once(RABBITMQ).await;
}

#[tokio::test]
#[ignore = "needs ActiveMQ (scripts/test starts it)"]
async fn activemq_a_queue_message_is_consumed_once_across_both_nodes() {
    a_queue_is_consumed_once(ACTIVEMQ).await;
}

async fn a_queue_is_consumed_once(broker: &str) {
    let (_a, address_a) = node(broker, App::new()).await;
    let (_b, address_b) = node(broker, App::new()).await;
    let queue = format!("/queue/{}", unique("jobs"));
    let (ann, bob) = (
        client(&address_a, "ann").await,
        client(&address_b, "bob").await,
    );
    // One consumer acknowledges each message, the other takes them under auto ack.
    let mut on_a = ann.subscribe(&queue, AckMode::Auto).await.unwrap();
    let mut on_b = bob
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    // A publisher of its own: the consumers read only once everything is sent.
    let publisher = client(&address_a, "pub").await;
    for n in 0..QUEUE_MESSAGES {
        let frame = SendFrame::new(queue.as_str(), n.to_string());
        publisher.send_with_receipt(frame).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut from = HashSet::new();
    while seen.len() < QUEUE_MESSAGES {
        let (message, node) = tokio::select! {
            m = next(&mut on_a) => (m, "a"),
            m = next(&mut on_b) => (m, "b"),
        };
        assert_eq!(message.destination().as_deref(), Some(queue.as_str()));
        if node == "b" {
            on_b.ack(&message).await.unwrap();
        }
        seen.push(text(&message));
        from.insert(node);
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        QUEUE_MESSAGES,
        "a message consumed twice: {seen:?}"
    );
    assert!(quiet(&mut on_a).await && quiet(&mut on_b).await);
    assert_eq!(from.len(), 2, "both nodes' consumers share the queue");
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_the_chat_handler_on_either_node_answers_its_sender_and_reaches_both_nodes() {
    let (_a, address_a) = node(RABBITMQ, chat::app()).await;
    let (_b, address_b) = node(RABBITMQ, chat::app()).await;
    let room = unique("room");
    let destination = format!("/chat/{room}");
    let (ann, bob) = (
        client(&address_a, "ann").await,
        client(&address_b, "bob").await,
    );
    let mut ann_room = ann.subscribe(&destination, AckMode::Auto).await.unwrap();
    let mut bob_room = bob.subscribe(&destination, AckMode::Auto).await.unwrap();
    for (sender, tid) in [(&ann, "from-a"), (&bob, "from-b")] {
        let body = format!(
            r#"{{"tid":"{tid}","method":"/chat/sendMessage","params":{{"roomId":"{room}","text":"hi"}}}}"#
        );
        let frame = SendFrame::new("/app/chat-api", body).content_type("application/json");
        sender.send_with_receipt(frame).await.unwrap();
        // The sender: its RESPONSE (answered on its own node) and the room's MESSAGE (through
        // the broker), in either order; the other: the MESSAGE alone.
        let (own, other) = match tid {
            "from-a" => (&mut ann_room, &mut bob_room),
            _ => (&mut bob_room, &mut ann_room),
        };
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let message = next(own).await;
            assert_eq!(message.destination().as_deref(), Some(destination.as_str()));
            let body: serde_json::Value = serde_json::from_slice(message.body()).unwrap();
            assert_eq!(body["tid"], tid);
            kinds.push(body["type"].as_str().unwrap().to_owned());
        }
        kinds.sort();
        assert_eq!(kinds, ["MESSAGE", "RESPONSE"]);
        let message = next(other).await;
        let body: serde_json::Value = serde_json::from_slice(message.body()).unwrap();
        assert_eq!(
            (body["type"].as_str(), body["tid"].as_str()),
            (Some("MESSAGE"), Some(tid))
        );
        assert!(quiet(other).await);
    }
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_a_message_to_a_user_sent_from_one_node_reaches_her_sessions_on_the_other_alone() {
    let dm = |ctx: Context, m: Message| async move {
        let to = ctx.param("user").unwrap_or_default().to_owned();
        let reached = ctx
            .send_to_user(to, "/queue/dm", m.text()?.to_owned())
            .await?;
        Ok::<_, Failure>(format!("reached {reached} here"))
    };
    let app = || App::new().message("/app/dm/{user}", dm);
    let (_a, address_a) = node(RABBITMQ, app()).await;
    let (b, address_b) = node(RABBITMQ, app()).await;
    let alice_name = unique("alice");
    let alice = client(&address_a, &alice_name).await;
    let eve = client(&address_a, &unique("eve")).await;
    let mut alice_dm = alice
        .subscribe("/user/queue/dm", AckMode::Auto)
        .await
        .unwrap();
    let mut eve_dm = eve
        .subscribe("/user/queue/dm", AckMode::Auto)
        .await
        .unwrap();
    // Node A watches alice's destination at the broker once her session is there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reached = b
        .handle()
        .send_to_user(alice_name.as_str(), "/queue/dm", "from node b")
        .await
        .unwrap();
    assert_eq!(reached, 0, "alice has no session on node b");
    let message = next(&mut alice_dm).await;
    assert_eq!(text(&message), "from node b");
    assert_eq!(message.destination().as_deref(), Some("/user/queue/dm"));
    assert!(message.header("x-stomp-node").is_none());
    // A client on B through the application: alice hears it once, eve never.
    let bob = client(&address_b, "bob").await;
    let frame = SendFrame::new(format!("/app/dm/{alice_name}"), "from bob");
    bob.send_with_receipt(frame).await.unwrap();
    assert_eq!(text(&next(&mut alice_dm).await), "from bob");
    assert!(quiet(&mut alice_dm).await);
    assert!(quiet(&mut eve_dm).await, "eve got alice's message");
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_a_publish_the_broker_refuses_leaves_the_watches_of_the_users_in_place() {
    let (a, address_a) = node(RABBITMQ, App::new()).await;
    let (b, _) = node(RABBITMQ, App::new()).await;
    let alice_name = unique("alice");
    let alice = client(&address_a, &alice_name).await;
    let mut alice_dm = alice
        .subscribe("/user/queue/dm", AckMode::Auto)
        .await
        .unwrap();
    // Node A watches alice's destination at the broker once her session is there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A room name RabbitMQ finds no valid topic, as an application might take it from a
    // client: the broker refuses the publish and ends the connection it came on.
    let room = format!("/chat/{}/b", unique("refused"));
    let refused = a.handle().publish(room, "x").await;
    assert_eq!(refused, Err(stomp_server::PublishError::BrokerUnavailable));
    // At once, while that connection comes back: alice's watch was on another.
    b.handle()
        .send_to_user(alice_name.as_str(), "/queue/dm", "right after")
        .await
        .unwrap();
    assert_eq!(text(&next(&mut alice_dm).await), "right after");
    assert_eq!(alice.close_reason(), None);
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_a_publish_the_broker_refuses_leaves_the_relay_available_to_the_sessions() {
    let (a, address) = node(RABBITMQ, App::new()).await;
    let bob = client(&address, &unique("bob")).await;
    let handle = a.handle();
    let room = format!("/chat/{}/b", unique("refused"));
    let refused = handle.publish(room, "x").await;
    assert_eq!(refused, Err(stomp_server::PublishError::BrokerUnavailable));
    // While the system connection comes back, the relay stays available: asked every 5 ms
    // for half a second, the time its reconnection takes many times over.
    let watcher = handle.clone();
    let watched = tokio::spawn(async move {
        let mut unavailable = 0;
        for _ in 0..100 {
            if watcher.relay_available().await.unwrap() != Some(true) {
                unavailable += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        unavailable
    });
    // At once, a session subscribes to a room new to the node and sends to it.
    let room = format!("/chat/{}", unique("after"));
    let mut messages = bob.subscribe(room.as_str(), AckMode::Auto).await.unwrap();
    bob.send_with_receipt(SendFrame::new(room.as_str(), "right after"))
        .await
        .unwrap();
    assert_eq!(text(&next(&mut messages).await), "right after");
    assert_eq!(watched.await.unwrap(), 0, "times the relay was unavailable");
    // The publishes work again once their connection is back.
    let room = format!("/chat/{}", unique("later"));
    let mut later = bob.subscribe(room.as_str(), AckMode::Auto).await.unwrap();
    handle.publish(room.as_str(), "later").await.unwrap();
    assert_eq!(text(&next(&mut later).await), "later");
    assert_eq!(bob.close_reason(), None);
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_a_client_that_only_sends_to_the_application_outlives_three_heart_beat_periods() {
    let echo = |_: Context, m: Message| async move { Ok::<_, Failure>(m.text()?.to_owned()) };
    let (server, address) = node(RABBITMQ, App::new().message("/app/echo", echo)).await;
    let client = Client::builder(address.as_str())
        .heart_beat(HeartBeat::from_millis(1000, 1000))
        .connect()
        .await
        .unwrap();
    let mut replies = client
        .subscribe("/user/queue/replies", AckMode::Auto)
        .await
        .unwrap();
    for n in 0..7 {
        client.send("/app/echo", n.to_string()).await.unwrap();
        assert_eq!(text(&next(&mut replies).await), n.to_string());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        client.close_reason().is_none(),
        "{:?}",
        client.close_reason()
    );
    assert_eq!(server.handle().relay_available().await.unwrap(), Some(true));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn while_the_broker_is_away_relayed_subscribes_are_refused_and_publishes_fail_fast() {
    // A node whose broker does not answer: nothing listens on this port.
    let idle = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = idle.local_addr().unwrap().port();
    drop(idle);
    let relay = RelayConfig::parse(&format!("stomp://127.0.0.1:{port}/")).unwrap();
    let server = Server::builder().relay(relay).start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_tcp(listener));
    let handle = server.handle();
    assert_eq!(handle.relay_available().await.unwrap(), Some(false));
    let published = handle.publish("/topic/news", "x").await;
    assert_eq!(
        published,
        Err(stomp_server::PublishError::BrokerUnavailable)
    );
    let client = client(&address, "ann").await;
    let refused = client.subscribe("/topic/news", AckMode::Auto).await;
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("broker unavailable"), "{error}");
    let stats = handle.stats().await.unwrap();
    assert_eq!(stats.relay_available, Some(false));
}

/// A frame one client chose that the broker refuses: a SEND with this header, a queue
/// subscription passing it on, a room subscription passing it on (one the node's `auto`
/// subscribers of that room would share), or one to a room whose name ends so.
enum Refusal {
    Send(&'static str, &'static str),
    Queue(&'static str, &'static str),
    Room(&'static str, &'static str),
    RoomNamed(&'static str),
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_a_frame_the_broker_refuses_closes_its_sender_alone() {
    let refusals = [
        // "user_id property set to 'mallory' but authenticated user was 'guest'"
        Refusal::Send("user-id", "mallory"),
        Refusal::Send("expiration", "-5"),
        Refusal::Send("persistent", "maybe"),
        Refusal::Queue("x-max-length", "many"),
        Refusal::Room("x-queue-type", "bogus"),
        // "'/chat.….b' is not a valid topic destination"
        Refusal::RoomNamed("/b"),
    ];
    refusals_cost_the_others_nothing(RABBITMQ, &refusals).await;
}

#[tokio::test]
#[ignore = "needs ActiveMQ (scripts/test starts it)"]
async fn activemq_a_frame_the_broker_refuses_closes_its_sender_alone() {
    let refusals = [
        // ActiveMQ drops the connection without a word over a header it cannot read.
        Refusal::Send("expires", "99999999999999999999"),
        Refusal::Send("JMSXGroupSeq", "first"),
        Refusal::Queue("selector", "a = "),
        Refusal::Room("selector", "b = "),
    ];
    refusals_cost_the_others_nothing(ACTIVEMQ, &refusals).await;
}

/// The broker ends a whole connection over one frame it refuses (RabbitMQ after any ERROR,
/// ActiveMQ over a header it cannot read): each of `refusals`, from a client of its own,
/// closes that client, while another client of the node, subscribed to a queue and to a room
/// over the same single broker connection the node's shared subscriptions use, keeps both
/// and misses nothing sent to them.
async fn refusals_cost_the_others_nothing(broker: &str, refusals: &[Refusal]) {
    let relay = RelayConfig::parse(broker).unwrap().connections(1);
    let (_node, address) = node_with(relay, App::new()).await;
    let queue = format!("/queue/{}", unique("calm"));
    let room = format!("/chat/{}", unique("calm"));
    let calm = client(&address, "calm").await;
    let mut in_queue = calm
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    let mut in_room = calm.subscribe(&room, AckMode::Auto).await.unwrap();
    let publisher = client(&address, "publisher").await;
    for (n, refusal) in refusals.iter().enumerate() {
        let rogue = client(&address, &format!("rogue-{n}")).await;
        let refused = match *refusal {
            Refusal::Send(name, value) => {
                let frame = SendFrame::new(queue.as_str(), "bad").header(name, value);
                rogue.send_with_receipt(frame).await.map(drop)
            }
            Refusal::Queue(name, value) => {
                let queue = format!("/queue/{}", unique("refused"));
                let headers = [(name, value)];
                let subscribed = rogue.subscribe_with_headers(&queue, AckMode::Auto, &headers);
                subscribed.await.map(drop)
            }
            Refusal::Room(name, value) => {
                let room = format!("/chat/{}", unique("refused"));
                let headers = [(name, value)];
                let subscribed = rogue.subscribe_with_headers(&room, AckMode::Auto, &headers);
                subscribed.await.map(drop)
            }
            Refusal::RoomNamed(end) => {
                let room = format!("/chat/{}{end}", unique("refused"));
                rogue.subscribe(&room, AckMode::Auto).await.map(drop)
            }
        };
        assert!(refused.is_err(), "refusal {n} was taken");
        for destination in [&queue, &room] {
            let frame = SendFrame::new(destination.as_str(), format!("after {n}"));
            publisher.send_with_receipt(frame).await.unwrap();
        }
        let message = next(&mut in_queue).await;
        assert_eq!(text(&message), format!("after {n}"));
        in_queue.ack(&message).await.unwrap();
        assert_eq!(text(&next(&mut in_room).await), format!("after {n}"));
        assert_eq!(
            calm.close_reason(),
            None,
            "refusal {n} closed another client"
        );
        assert_eq!(
            publisher.close_reason(),
            None,
            "refusal {n} closed another client"
        );
    }
    assert!(quiet(&mut in_queue).await && quiet(&mut in_room).await);
    calm.disconnect().await.unwrap();
    publisher.disconnect().await.unwrap();
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_publishes_through_a_handle_wait_for_the_broker_and_keep_their_order() {
    let (a, _) = node(RABBITMQ, App::new()).await;
    let (_b, address_b) = node(RABBITMQ, App::new()).await;
    let topic = format!("/topic/{}", unique("ticks"));
    let reader = client(&address_b, "reader").await;
    let mut ticks = reader.subscribe(&topic, AckMode::Auto).await.unwrap();
    let handle = a.handle();
    for n in 0..ROOM_MESSAGES {
        let id = handle.publish(topic.as_str(), n.to_string()).await.unwrap();
        assert!(!id.is_empty());
    }
    for n in 0..ROOM_MESSAGES {
        assert_eq!(text(&next(&mut ticks).await), n.to_string());
    }
    assert!(quiet(&mut ticks).await);
}

#[tokio::test]
#[ignore = "needs RabbitMQ (scripts/test starts it)"]
async fn rabbitmq_a_node_on_two_shards_relays_rooms_queues_and_users_once_each() {
    let relay = RelayConfig::parse(RABBITMQ).unwrap();
    let (server, address) = node_on_shards(relay, App::new(), 2).await;
    // Connections are dealt to the shards in turn: each pair below spans both.
    let alice_name = unique("alice");
    let (alice1, alice2) = (
        client(&address, &alice_name).await,
        client(&address, &alice_name).await,
    );
    let room = format!("/chat/{}", unique("lobby"));
    let mut rooms = Vec::new();
    let mut dms = Vec::new();
    for alice in [&alice1, &alice2] {
        rooms.push(alice.subscribe(&room, AckMode::Auto).await.unwrap());
        dms.push(
            alice
                .subscribe("/user/queue/dm", AckMode::Auto)
                .await
                .unwrap(),
        );
    }
    let (pub1, pub2) = (client(&address, "p1").await, client(&address, "p2").await);
    for n in 0..ROOM_MESSAGES {
        let sender = if n % 2 == 0 { &pub1 } else { &pub2 };
        let frame = SendFrame::new(room.as_str(), n.to_string());
        sender.send_with_receipt(frame).await.unwrap();
    }
    for subscription in &mut rooms {
        for n in 0..ROOM_MESSAGES {
            assert_eq!(text(&next(subscription).await), n.to_string());
        }
        assert!(quiet(subscription).await, "a room message came twice");
    }
    // Her sessions on both shards hear a message to her once each.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server
        .handle()
        .send_to_user(alice_name.as_str(), "/queue/dm", "hi")
        .await
        .unwrap();
    for dm in &mut dms {
        assert_eq!(text(&next(dm).await), "hi");
        assert!(quiet(dm).await, "a message to her came twice");
    }
    // A queue's consumers on both shards share it, each message once.
    let queue = format!("/queue/{}", unique("jobs"));
    let mut consumers = Vec::new();
    for alice in [&alice1, &alice2] {
        consumers.push(alice.subscribe(&queue, AckMode::Auto).await.unwrap());
    }
    for n in 0..QUEUE_MESSAGES {
        let frame = SendFrame::new(queue.as_str(), n.to_string());
        pub1.send_with_receipt(frame).await.unwrap();
    }
    let mut seen = HashSet::new();
    let (mut first, mut second) = (consumers.remove(0), consumers.remove(0));
    while seen.len() < QUEUE_MESSAGES {
        let message = tokio::select! {
            m = next(&mut first) => m,
            m = next(&mut second) => m,
        };
        assert!(seen.insert(text(&message)), "a queue message came twice");
    }
    assert!(quiet(&mut first).await && quiet(&mut second).await);
}

#[test]
fn the_binary_refuses_a_relay_address_it_cannot_read_and_never_shows_its_passcode() {
    let binary = env!("CARGO_BIN_EXE_stomp-server");
    for (url, expected) in [
        ("tcp://127.0.0.1:61613", "stomp://"),
        ("stomp://guest:s3cret@127.0.0.1", "host and port"),
    ] {
        let refused = std::process::Command::new(binary)
            .args([
                "--tcp",
                "127.0.0.1:0",
                "--ws",
                "127.0.0.1:0",
                "--relay",
                url,
            ])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
        assert!(refused.stdout.is_empty(), "nothing listened");
    }
}

/// A broker that answers each SUBSCRIBE's receipt only after `hold`, and counts the
/// connections open at once: the most it saw. A connection counts as closed from its
/// DISCONNECT on, before the RECEIPT that lets the client go on, so that the count never
/// lags behind the client's.
async fn slow_broker(hold: Duration) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = most.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let open = open.clone();
            tokio::spawn(async move {
                let (mut input, mut decoder) = (BytesMut::new(), Decoder::default());
                loop {
                    let frame = match decoder.decode(&mut input) {
                        Ok(Some(Item::Frame(frame))) => frame,
                        Ok(Some(Item::HeartBeat)) => continue,
                        Ok(None) => match socket.read_buf(&mut input).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => continue,
                        },
                        Err(_) => break,
                    };
                    let answer = match (frame.command(), frame.header("receipt")) {
                        (Command::Connect | Command::Stomp, _) => {
                            "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0".to_owned()
                        }
                        (Command::Subscribe, Some(receipt)) => {
                            tokio::time::sleep(hold).await;
                            format!("RECEIPT\nreceipt-id:{receipt}\n\n\0")
                        }
                        (Command::Disconnect, receipt) => {
                            open.fetch_sub(1, Ordering::SeqCst);
                            if let Some(receipt) = receipt {
                                let answer = format!("RECEIPT\nreceipt-id:{receipt}\n\n\0");
                                let _ = socket.write_all(answer.as_bytes()).await;
                            }
                            return;
                        }
                        (_, Some(receipt)) => format!("RECEIPT\nreceipt-id:{receipt}\n\n\0"),
                        (_, None) => continue,
                    };
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (address, seen)
}

#[tokio::test]
async fn sessions_asking_for_many_new_rooms_at_once_cost_the_broker_a_bounded_number_of_connections()
 {
    let (broker, most) = slow_broker(Duration::from_millis(100)).await;
    let relay = RelayConfig::parse(&format!("stomp://{broker}/")).unwrap();
    let (_node, address) = node_with(relay, App::new()).await;
    // Each session's first room is new to the node: it is tried on a broker connection of
    // its own first, at most 16 at once, beside the relay's 4 (2 for rooms, the system's and
    // the users').
    let sessions = 40;
    let subscribed = (0..sessions).map(|n| {
        let address = address.clone();
        async move {
            let reader = client(&address, &format!("reader-{n}")).await;
            let room = format!("/chat/room-{n}");
            let subscription = reader.subscribe(&room, AckMode::Auto).await.unwrap();
            (reader, subscription)
        }
    });
    let readers = futures_util::future::join_all(subscribed).await;
    assert_eq!(readers.len(), sessions);
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= 4 + 16, "{most} broker connections at once");
    assert!(most > 4, "no room was tried on a connection of its own");
}
