//! Reconnecting against stomp-server in the same process: the server stopped and started
//! again on the same port, connections cut and frozen by a proxy in between, failover over a
//! list of addresses, a policy that gives up, and what happens to commands meanwhile.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

mod common;

use bytes::BytesMut;
use common::Proxy;
use stomp_codec::{Command, Decoder, Item};
use stomp_server::{BrokerConfig, Server, ServerConfig};
use stomp_tokio::{
    AckMode, Client, CloseReason, ConnectionEvent, Error, Events, HeartBeat, Reconnect, SendFrame,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// A quick policy, so that tests do not wait on backoff.
fn quick() -> Reconnect {
    Reconnect::new()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200))
}

/// A stomp-server listening on `address` over TCP, with its listener's task.
struct Running {
    server: Server,
    listener: JoinHandle<()>,
}

impl Running {
    async fn start(address: SocketAddr) -> Running {
        Running::start_with(address, BrokerConfig::default()).await
    }

    async fn start_with(address: SocketAddr, config: BrokerConfig) -> Running {
        // The port of a server just stopped may take a moment to be free again.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(address).await {
                Ok(listener) => break listener,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot bind {address}: {e}"),
            }
        };
        let server = Server::builder().config(config).start();
        let listener = tokio::spawn(server.serve_tcp(listener));
        Running { server, listener }
    }

    /// Stops the server: every client gets an ERROR, and the port is let go.
    async fn stop(self) {
        self.listener.abort();
        let _ = self.listener.await;
        self.server.shutdown(Duration::from_secs(5)).await;
    }
}

async fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Waits for the first event that `wanted` picks, failing after `WAIT`.
async fn until<T>(events: &mut Events, mut wanted: impl FnMut(&ConnectionEvent) -> Option<T>) -> T {
    timeout(WAIT, async {
        loop {
            let event = events.next().await.expect("the events ended");
            if let Some(found) = wanted(&event) {
                return found;
            }
        }
    })
    .await
    .expect("no such event in time")
}

async fn disconnected(events: &mut Events) -> CloseReason {
    until(events, |e| match e {
        ConnectionEvent::Disconnected(reason) => Some(reason.clone()),
        _ => None,
    })
    .await
}

async fn reconnected(events: &mut Events) -> u64 {
    until(events, |e| match e {
        ConnectionEvent::Reconnected(info) => Some(info.number),
        _ => None,
    })
    .await
}

fn text(message: &stomp_tokio::Message) -> String {
    String::from_utf8_lossy(message.body()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gets_the_subscriptions_back_and_no_receipted_message_is_lost() {
    let address = free_address().await;
    let running = Running::start(address).await;
    let endpoint = address.to_string();
    let consumer = Client::builder(endpoint.as_str())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut consumer_events = consumer.events();
    let mut work = consumer
        .subscribe("/queue/work", AckMode::Auto)
        .await
        .unwrap();
    let producer = Client::builder(endpoint.as_str())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut producer_events = producer.events();
    // The first item says where the connection stands.
    assert!(matches!(
        producer_events.next().await,
        Some(ConnectionEvent::Connected(info)) if info.number == 1
    ));

    // The producer sends 1..=400 one after another, each awaiting its RECEIPT, through the
    // stop and the start; a send answered Ok was taken by a server.
    let (confirmed_tx, confirmed) = watch::channel(0usize);
    let sending = tokio::spawn({
        let producer = producer.clone();
        async move {
            let mut taken = Vec::new();
            for i in 1..=400usize {
                let frame = SendFrame::new("/queue/work", i.to_string());
                match producer.send_with_receipt(frame).await {
                    Ok(()) => taken.push(i),
                    Err(e) => panic!("send {i}: {e}"),
                }
                confirmed_tx.send_replace(i);
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            taken
        }
    });
    // The consumer takes every message as it comes, so that it never holds the connection
    // back while the test watches the events.
    let (received_tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = work.next().await {
            let number: usize = text(&message).parse().unwrap();
            let _ = received_tx.send((number, message.connection()));
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 100 {
        seen.push(timeout(WAIT, received.recv()).await.unwrap().unwrap());
    }
    running.stop().await;
    let reason = disconnected(&mut consumer_events).await;
    assert_eq!(
        reason,
        CloseReason::ErrorFrame(Some("server shutting down".into()))
    );
    // Attempts fail while nothing listens.
    until(&mut consumer_events, |e| {
        matches!(e, ConnectionEvent::AttemptFailed { .. }).then_some(())
    })
    .await;
    let stalled_at = *confirmed.borrow();
    let running = Running::start(address).await;
    assert!(reconnected(&mut consumer_events).await >= 2);
    assert!(reconnected(&mut producer_events).await >= 2);
    let taken = timeout(WAIT * 3, sending).await.unwrap().unwrap();
    assert_eq!(taken.len(), 400);
    // Every message a server took is received, on the restored subscription once the server
    // is back; the SEND in flight at the stop was sent again, so it may come twice (at least
    // once). Each connection's messages are in order.
    while !(1..=400).all(|i| seen.iter().any(|(n, _)| *n == i)) {
        match timeout(WAIT, received.recv()).await {
            Ok(Some(message)) => seen.push(message),
            _ => {
                let missing: Vec<usize> = (1..=400)
                    .filter(|i| !seen.iter().any(|(n, _)| n == i))
                    .collect();
                panic!("missing {missing:?} (the server stopped after {stalled_at} were sent)");
            }
        }
    }
    let unique: HashSet<usize> = seen.iter().map(|(n, _)| *n).collect();
    assert!(seen.len() - unique.len() <= 1, "duplicates: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "out of order: {seen:?}"
    );
    assert!(seen.last().unwrap().1 >= 2, "{seen:?}");
    consumer.disconnect().await.unwrap();
    producer.disconnect().await.unwrap();
    running.stop().await;
}

async fn server_on_free_port() -> (Running, SocketAddr) {
    let address = free_address().await;
    (Running::start(address).await, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_restored_unacked_messages_come_again_and_stale_acks_are_refused() {
    let (running, address) = server_on_free_port().await;
    let proxy = Proxy::start(address).await;
    let consumer = Client::builder(proxy.address.to_string())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut events = consumer.events();
    let mut jobs = consumer
        .subscribe_with_headers(
            "/queue/jobs",
            AckMode::ClientIndividual,
            &[("x-kept", "yes")],
        )
        .await
        .unwrap();
    let id = jobs.id().clone();
    let producer = Client::builder(address.to_string())
        .connect()
        .await
        .unwrap();
    for job in ["job 1", "job 2"] {
        producer
            .send_with_receipt(SendFrame::new("/queue/jobs", job))
            .await
            .unwrap();
    }
    let first = timeout(WAIT, jobs.next()).await.unwrap().unwrap();
    assert_eq!((text(&first).as_str(), first.connection()), ("job 1", 1));
    jobs.ack(&first).await.unwrap();
    let second = timeout(WAIT, jobs.next()).await.unwrap().unwrap();
    assert_eq!(text(&second), "job 2");

    proxy.cut();
    assert!(matches!(
        disconnected(&mut events).await,
        CloseReason::PeerClosed
    ));
    let number = reconnected(&mut events).await;
    assert_eq!(number, 2);
    // The broker saw the old connection go, and gives job 2, never acknowledged, again to the
    // restored subscription, which kept its id.
    let again = timeout(WAIT, jobs.next()).await.unwrap().unwrap();
    assert_eq!(text(&again), "job 2");
    assert_eq!(again.header("redelivered").as_deref(), Some("true"));
    assert_eq!(again.subscription().as_ref(), Some(&id));
    assert_eq!(again.connection(), 2);
    match jobs.ack(&second).await {
        Err(Error::StaleMessage) => {}
        other => panic!("an ack from the first connection: {other:?}"),
    }
    jobs.ack(&again).await.unwrap();
    producer
        .send_with_receipt(SendFrame::new("/queue/jobs", "job 3"))
        .await
        .unwrap();
    assert_eq!(
        text(&timeout(WAIT, jobs.next()).await.unwrap().unwrap()),
        "job 3"
    );
    let stats = running.server.handle().stats().await.unwrap();
    assert_eq!(stats.broker.subscriptions, 1, "{stats:?}");
    consumer.disconnect().await.unwrap();
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_left_at_the_heart_beat_deadline_and_replaced() {
    let address = free_address().await;
    let session = ServerConfig::default().with_heart_beat(HeartBeat::from_millis(100, 100));
    let config = BrokerConfig::default().with_session(session);
    let running = Running::start_with(address, config).await;
    let proxy = Proxy::start(address).await;
    let client = Client::builder(proxy.address.to_string())
        .heart_beat(HeartBeat::from_millis(100, 100))
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let mut news = client
        .subscribe("/topic/news", AckMode::Auto)
        .await
        .unwrap();
    // The server's heart-beats stop reaching the client.
    proxy.freeze(true);
    let reason = disconnected(&mut events).await;
    assert_eq!(reason, CloseReason::HeartBeatTimedOut);
    proxy.cut();
    proxy.freeze(false);
    reconnected(&mut events).await;
    let producer = Client::builder(address.to_string())
        .connect()
        .await
        .unwrap();
    producer
        .send_with_receipt(SendFrame::new("/topic/news", "still here"))
        .await
        .unwrap();
    assert_eq!(
        text(&timeout(WAIT, news.next()).await.unwrap().unwrap()),
        "still here"
    );
    running.stop().await;
}

#[tokio::test]
async fn connect_tries_each_address_and_reconnect_goes_round_them() {
    let dead = free_address().await;
    let (first, first_address) = server_on_free_port().await;
    let (_second, second_address) = server_on_free_port().await;
    let client = Client::builder(dead.to_string())
        .failover(first_address.to_string())
        .failover(second_address.to_string())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let connected = until(&mut events, |e| match e {
        ConnectionEvent::Connected(info) => Some(info.endpoint.clone()),
        _ => None,
    })
    .await;
    assert_eq!(connected, first_address.to_string());
    let mut news = client
        .subscribe("/topic/news", AckMode::Auto)
        .await
        .unwrap();
    first.stop().await;
    let endpoint = until(&mut events, |e| match e {
        ConnectionEvent::Reconnected(info) => Some(info.endpoint.clone()),
        _ => None,
    })
    .await;
    assert_eq!(endpoint, second_address.to_string());
    client
        .send_with_receipt(SendFrame::new("/topic/news", "on the second"))
        .await
        .unwrap();
    assert_eq!(
        text(&timeout(WAIT, news.next()).await.unwrap().unwrap()),
        "on the second"
    );
}

#[tokio::test]
async fn without_a_policy_or_past_its_attempts_the_client_closes_and_says_why() {
    let (running, address) = server_on_free_port().await;
    let once = Client::builder(address.to_string())
        .connect()
        .await
        .unwrap();
    let bounded = Client::builder(address.to_string())
        .reconnect(quick().with_max_attempts(3))
        .connect()
        .await
        .unwrap();
    let mut events = bounded.events();
    let mut news = bounded
        .subscribe("/topic/news", AckMode::Auto)
        .await
        .unwrap();
    running.stop().await;
    let shutting_down = CloseReason::ErrorFrame(Some("server shutting down".into()));
    assert_eq!(timeout(WAIT, once.closed()).await.unwrap(), shutting_down);
    let mut failures = 0;
    let reason = until(&mut events, |e| match e {
        ConnectionEvent::AttemptFailed { attempt, error, .. } => {
            failures += 1;
            assert_eq!(*attempt, failures);
            assert!(matches!(**error, Error::Io(_)), "{error:?}");
            None
        }
        ConnectionEvent::Closed(reason) => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(failures, 3);
    assert_eq!(reason, shutting_down);
    assert_eq!(bounded.closed().await, shutting_down);
    assert!(timeout(WAIT, news.next()).await.unwrap().is_none());
    assert!(events.next().await.is_none(), "the events end after Closed");
    match bounded.send("/topic/news", "late").await {
        Err(Error::Closed(reason)) => assert_eq!(reason, shutting_down),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn while_reconnecting_commands_wait_in_the_bounded_queue_and_disconnect_ends_at_once() {
    let (running, address) = server_on_free_port().await;
    let client = Client::builder(address.to_string())
        .command_queue(4)
        .reconnect(
            Reconnect::new()
                .with_initial_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(1)),
        )
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    running.stop().await;
    until(&mut events, |e| {
        matches!(e, ConnectionEvent::Disconnected(_)).then_some(())
    })
    .await;
    let mut queued = 0;
    loop {
        match client.try_send(SendFrame::new("/topic/t", "waiting")) {
            Ok(()) => queued += 1,
            Err(Error::QueueFull) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(queued <= 4, "the queue holds four");
    }
    assert_eq!(queued, 4);
    let started = std::time::Instant::now();
    timeout(Duration::from_millis(500), client.clone().disconnect())
        .await
        .expect("disconnect waits for no reconnect")
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(client.closed().await, CloseReason::Disconnected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_awaiting_its_receipt_when_the_connection_is_cut_is_sent_again() {
    let (running, address) = server_on_free_port().await;
    let consumer = Client::builder(address.to_string())
        .connect()
        .await
        .unwrap();
    let mut orders = consumer
        .subscribe("/queue/orders", AckMode::Auto)
        .await
        .unwrap();
    let proxy = Proxy::start(address).await;
    let producer = Client::builder(proxy.address.to_string())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut events = producer.events();
    // The SEND is written but never reaches the server; then the connection is cut.
    proxy.freeze(true);
    let sending = tokio::spawn({
        let producer = producer.clone();
        async move {
            producer
                .send_with_receipt(SendFrame::new("/queue/orders", "order 1"))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sending.is_finished(), "no RECEIPT can have come");
    assert!(
        timeout(Duration::from_millis(100), orders.next())
            .await
            .is_err(),
        "nothing reached the server"
    );
    proxy.cut();
    proxy.freeze(false);
    reconnected(&mut events).await;
    timeout(WAIT, sending).await.unwrap().unwrap().unwrap();
    let order = timeout(WAIT, orders.next()).await.unwrap().unwrap();
    assert_eq!(text(&order), "order 1");
    assert!(
        timeout(Duration::from_millis(200), orders.next())
            .await
            .is_err(),
        "exactly once"
    );
    running.stop().await;
}

/// A server whose `/topic/news/*` topics keep their last `count` messages.
async fn server_with_history(count: usize) -> (Running, SocketAddr) {
    let address = free_address().await;
    let config =
        BrokerConfig::default().with_topic_history("/topic/news/*", count, Duration::from_secs(60));
    (Running::start_with(address, config).await, address)
}

/// Publishes `bodies` to `topic`, each with a receipt, straight to the server.
async fn publish(address: SocketAddr, topic: &str, bodies: &[&str]) {
    let producer = Client::builder(address.to_string())
        .connect()
        .await
        .unwrap();
    for body in bodies {
        producer
            .send_with_receipt(SendFrame::new(topic, body.to_string()))
            .await
            .unwrap();
    }
    producer.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_subscriber_loses_nothing_across_a_short_disconnect() {
    let (running, address) = server_with_history(100).await;
    let proxy = Proxy::start(address).await;
    let reader = Client::builder(proxy.address.to_string())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut events = reader.events();
    let mut news = reader
        .subscribe("/topic/news/eu", AckMode::Auto)
        .await
        .unwrap();
    publish(address, "/topic/news/eu", &["one"]).await;
    assert_eq!(
        text(&timeout(WAIT, news.next()).await.unwrap().unwrap()),
        "one"
    );
    // What is published while the connection is stuck, then cut, never reaches the reader
    // on it.
    proxy.freeze(true);
    publish(address, "/topic/news/eu", &["two", "three"]).await;
    proxy.cut();
    proxy.freeze(false);
    reconnected(&mut events).await;
    publish(address, "/topic/news/eu", &["four"]).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(text(&timeout(WAIT, news.next()).await.unwrap().unwrap()));
    }
    assert_eq!(got, ["two", "three", "four"], "each once, in order");
    assert!(
        timeout(Duration::from_millis(200), news.next())
            .await
            .is_err()
    );
    reader.disconnect().await.unwrap();
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_past_the_history_is_told() {
    let (running, address) = server_with_history(1).await;
    let proxy = Proxy::start(address).await;
    let reader = Client::builder(proxy.address.to_string())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut events = reader.events();
    let mut news = reader
        .subscribe("/topic/news/eu", AckMode::Auto)
        .await
        .unwrap();
    let id = news.id().clone();
    publish(address, "/topic/news/eu", &["one"]).await;
    timeout(WAIT, news.next()).await.unwrap().unwrap();
    proxy.freeze(true);
    publish(address, "/topic/news/eu", &["two", "three"]).await;
    proxy.cut();
    proxy.freeze(false);
    let told = until(&mut events, |e| match e {
        ConnectionEvent::NotRecovered(id) => Some(id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(told, id);
    assert_eq!(
        text(&timeout(WAIT, news.next()).await.unwrap().unwrap()),
        "three",
        "what was kept"
    );
    reader.disconnect().await.unwrap();
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_the_server_refuses_fails_and_is_not_made_again_on_the_next_connection() {
    let (running, address) = server_on_free_port().await;
    let client = Client::builder(address.to_string())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let mut room = client
        .subscribe("/topic/room", AckMode::Auto)
        .await
        .unwrap();
    // Outside the destinations the server serves: it answers with an ERROR that names the
    // SUBSCRIBE's receipt, and closes the connection.
    let refused = timeout(WAIT, client.subscribe("/nowhere/x", AckMode::Auto)).await;
    match refused.expect("an answer in time") {
        Err(Error::Rejected(Some(message))) => assert!(!message.is_empty()),
        other => panic!("a refused SUBSCRIBE: {other:?}"),
    }
    disconnected(&mut events).await;
    assert_eq!(reconnected(&mut events).await, 2);
    // The subscription that was taken is back, and the refused one was not made again: the
    // connection stays up, and a message sent now arrives.
    client
        .send_with_receipt(SendFrame::new("/topic/room", "after"))
        .await
        .unwrap();
    let message = timeout(WAIT, room.next()).await.unwrap().unwrap();
    assert_eq!(
        (text(&message).as_str(), message.connection()),
        ("after", 2)
    );
    let stats = running.server.handle().stats().await.unwrap();
    assert_eq!(stats.broker.subscriptions, 1, "{stats:?}");
    let more = timeout(Duration::from_millis(300), events.next()).await;
    assert!(
        !matches!(more, Ok(Some(ConnectionEvent::Disconnected(_)))),
        "{more:?}"
    );
    client.disconnect().await.unwrap();
    running.stop().await;
}

/// How the scripted server of [`poisoned_server`] meets a frame with a `poison` header.
#[derive(Clone, Copy)]
enum Poisoned {
    /// With an ERROR that names no receipt (as RabbitMQ's), then the close.
    Error,
    /// By dropping the connection without a word (as ActiveMQ over a header it cannot read).
    Drop,
}

/// A server that takes any CONNECT, answers every receipt but that of a frame with a
/// `poison` header, which ends the connection as `how` says; the number of such frames it
/// got, by command.
async fn poisoned_server(how: Poisoned) -> (SocketAddr, watch::Receiver<(usize, usize)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (seen, seen_rx) = watch::channel((0, 0));
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (mut input, mut decoder) = (BytesMut::new(), Decoder::default());
                loop {
                    let frame = match decoder.decode(&mut input) {
                        Ok(Some(Item::Frame(frame))) => frame,
                        Ok(Some(Item::HeartBeat)) => continue,
                        Ok(None) => match socket.read_buf(&mut input).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => continue,
                        },
                        Err(_) => return,
                    };
                    let answer = match frame.command() {
                        Command::Connect | Command::Stomp => {
                            "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0".to_owned()
                        }
                        command if frame.header("poison").is_some() => {
                            seen.send_modify(|(sends, subscribes)| match command {
                                Command::Send => *sends += 1,
                                _ => *subscribes += 1,
                            });
                            if let Poisoned::Error = how {
                                let error = "ERROR\nmessage:precondition_failed\n\n\0";
                                let _ = socket.write_all(error.as_bytes()).await;
                            }
                            return;
                        }
                        _ => match frame.header("receipt") {
                            Some(receipt) => format!("RECEIPT\nreceipt-id:{receipt}\n\n\0"),
                            None => continue,
                        },
                    };
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, seen_rx)
}

#[tokio::test]
async fn a_frame_an_error_ended_the_connection_over_is_not_made_again() {
    refused_frames_are_given_up(Poisoned::Error, 1).await;
}

#[tokio::test]
async fn a_frame_each_connection_ends_over_without_a_word_is_given_up_after_three() {
    refused_frames_are_given_up(Poisoned::Drop, 3).await;
}

/// A SEND and a SUBSCRIBE that the server refuses as `how` says are each made on `tries`
/// connections, then their callers hear why; the client goes on with what the server takes.
async fn refused_frames_are_given_up(how: Poisoned, tries: usize) {
    let (address, seen) = poisoned_server(how).await;
    let client = Client::builder(address.to_string())
        .reconnect(quick())
        .connect()
        .await
        .unwrap();
    let poisoned = SendFrame::new("/queue/a", "x").header("poison", "1");
    let sent = timeout(WAIT, client.send_with_receipt(poisoned)).await;
    assert!(
        matches!(sent, Ok(Err(Error::Closed(_)))),
        "a refused SEND: {sent:?}"
    );
    assert_eq!(seen.borrow().0, tries, "SENDs made");
    let headers = [("poison", "1")];
    let subscribed = client.subscribe_with_headers("/queue/b", AckMode::Auto, &headers);
    let subscribed = timeout(WAIT, subscribed).await;
    assert!(
        matches!(subscribed, Ok(Err(Error::Closed(_)))),
        "a refused SUBSCRIBE: {subscribed:?}"
    );
    assert_eq!(seen.borrow().1, tries, "SUBSCRIBEs made");
    // Nothing of them is made again; what the server takes is taken.
    let sent = timeout(
        WAIT,
        client.send_with_receipt(SendFrame::new("/queue/a", "y")),
    )
    .await;
    assert!(matches!(sent, Ok(Ok(()))), "{sent:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*seen.borrow(), (tries, tries));
    client.disconnect().await.unwrap();
}
