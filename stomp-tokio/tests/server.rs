//! stomp-tokio against stomp-server in the same process, over TCP and WebSocket: connect,
//! receipts, subscriptions, acks, backpressure, cancel safety, refused logins and heart-beat
//! loss.

use std::time::Duration;

use stomp_server::{App, BrokerConfig, Server};
use stomp_tokio::{AckMode, Client, CloseReason, Error, HeartBeat, SendFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on free ports; its TCP address and WebSocket URL.
async fn server_with(app: App) -> (Server, String, String) {
    let config = BrokerConfig::default().with_login_failure_delay(Duration::from_millis(10));
    let server = Server::builder().config(config).app(app).start();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_address = tcp.local_addr().unwrap().to_string();
    let ws = format!("ws://{}/stomp", http.local_addr().unwrap());
    tokio::spawn(server.serve_tcp(tcp));
    tokio::spawn(server.serve_http(http, server.router()));
    (server, tcp_address, ws)
}

async fn server() -> (Server, String, String) {
    server_with(App::new()).await
}

fn text(message: &stomp_tokio::Message) -> String {
    String::from_utf8_lossy(message.body()).into_owned()
}

#[tokio::test]
async fn subscribe_send_with_receipt_receive_and_disconnect_over_tcp_and_websocket() {
    let (_server, tcp, ws) = server().await;
    for endpoint in [tcp.clone(), format!("tcp://{tcp}"), ws] {
        let client = Client::builder(endpoint.as_str()).connect().await.unwrap();
        let mut news = client
            .subscribe("/topic/news", AckMode::Auto)
            .await
            .unwrap();
        let frame = SendFrame::new("/topic/news", "hello").header("priority", "9");
        client.send_with_receipt(frame).await.unwrap();
        client.send("/topic/news", "again").await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), news.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text(&first), "hello", "{endpoint}");
        assert_eq!(first.frame().header("priority").as_deref(), Some("9"));
        assert_eq!(text(&news.next().await.unwrap()), "again");
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn a_refused_login_is_a_typed_error_with_the_servers_message() {
    let app = App::new().authenticate(|_| async { Err("who are you?".into()) });
    let (_server, tcp, _) = server_with(app).await;
    let refused = Client::builder(tcp).login("eve", "guess").connect().await;
    match refused {
        Err(Error::Refused(Some(message))) => assert_eq!(message, "who are you?"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn client_acks_and_nacks_by_the_versions_rules() {
    let (_server, tcp, _) = server().await;
    let client = Client::builder(tcp).connect().await.unwrap();
    let mut jobs = client
        .subscribe("/queue/jobs", AckMode::Client)
        .await
        .unwrap();
    client
        .send_with_receipt(SendFrame::new("/queue/jobs", "job 1"))
        .await
        .unwrap();
    let first = jobs.next().await.unwrap();
    jobs.nack(&first).await.unwrap();
    // A NACKed queue message comes back, marked as redelivered.
    let again = jobs.next().await.unwrap();
    assert_eq!(text(&again), "job 1");
    assert_eq!(again.frame().header("redelivered").as_deref(), Some("true"));
    jobs.ack(&again).await.unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_slow_consumer_holds_the_connection_back_and_loses_nothing() {
    let (server, tcp, _) = server().await;
    let consumer = Client::builder(tcp.as_str())
        .subscription_buffer(2)
        .connect()
        .await
        .unwrap();
    let mut slow = consumer
        .subscribe("/queue/work", AckMode::Auto)
        .await
        .unwrap();
    let producer = Client::builder(tcp.as_str()).connect().await.unwrap();
    // 32 MiB in all: more than the socket buffers and the server's outbound allowance hold.
    let body = |i: usize| {
        let mut body = format!("{i}\n").into_bytes();
        body.resize(16 * 1024, b'x');
        body
    };
    const COUNT: usize = 2000;
    for i in 0..COUNT {
        producer.send("/queue/work", body(i)).await.unwrap();
    }
    producer
        .send_with_receipt(SendFrame::new("/queue/work", "last"))
        .await
        .unwrap();
    // The consumer has taken nothing: it holds two messages and one read; the rest waits in
    // the broker's queue, not in the consumer's memory.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = server.handle().stats().await.unwrap();
    assert!(stats.broker.queued_messages > 500, "{stats:?}");
    for i in 0..COUNT {
        let message = slow.next().await.unwrap();
        assert_eq!(message.body().len(), 16 * 1024);
        assert!(text(&message).starts_with(&format!("{i}\n")), "message {i}");
    }
    assert_eq!(text(&slow.next().await.unwrap()), "last");
}

#[tokio::test]
async fn receiving_is_cancel_safe() {
    let (_server, tcp, _) = server().await;
    let client = Client::builder(tcp).connect().await.unwrap();
    let mut ticks = client
        .subscribe("/topic/ticks", AckMode::Auto)
        .await
        .unwrap();
    let sender = client.clone();
    tokio::spawn(async move {
        for i in 0..300 {
            sender.send("/topic/ticks", format!("{i}")).await.unwrap();
            if i % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut received = Vec::new();
    while received.len() < 300 {
        // A timer that often wins the race drops the `next()` future half the time.
        tokio::select! {
            message = ticks.next() => received.push(text(&message.unwrap())),
            () = tokio::time::sleep(Duration::from_micros(50)) => {}
        }
    }
    let expected: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    assert_eq!(received, expected);
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let (server, tcp, _) = server().await;
    let client = Client::builder(tcp).connect().await.unwrap();
    let subscription = client.subscribe("/topic/a", AckMode::Auto).await.unwrap();
    assert_eq!(
        server.handle().stats().await.unwrap().broker.subscriptions,
        1
    );
    drop(subscription);
    client
        .send_with_receipt(SendFrame::new("/topic/a", "sync"))
        .await
        .unwrap();
    assert_eq!(
        server.handle().stats().await.unwrap().broker.subscriptions,
        0
    );
}

#[tokio::test]
async fn a_silent_server_ends_the_connection_with_a_typed_reason() {
    // A server that accepts, promises heart-beats every 100 ms, and says nothing more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = [0; 1024];
        let _ = socket.read(&mut buffer).await.unwrap();
        socket
            .write_all(b"CONNECTED\nversion:1.2\nheart-beat:100,100\n\n\0")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let client = Client::builder(address)
        .heart_beat(HeartBeat::from_millis(100, 100))
        .connect()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let reason = tokio::time::timeout(Duration::from_secs(5), client.closed())
        .await
        .unwrap();
    assert_eq!(reason, CloseReason::HeartBeatTimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    match client.send("/topic/x", "late").await {
        Err(Error::Closed(CloseReason::HeartBeatTimedOut)) => {}
        other => panic!("expected the close reason, got {other:?}"),
    }
}

#[tokio::test]
async fn a_transaction_takes_effect_at_commit_and_not_at_all_when_aborted_or_dropped() {
    let (_server, tcp, _) = server().await;
    let client = Client::builder(tcp).connect().await.unwrap();
    let mut orders = client
        .subscribe("/topic/orders", AckMode::Auto)
        .await
        .unwrap();

    let aborted = client.begin().await.unwrap();
    aborted
        .send(SendFrame::new("/topic/orders", "never"))
        .await
        .unwrap();
    aborted.abort().await.unwrap();
    let dropped = client.begin().await.unwrap();
    dropped
        .send(SendFrame::new("/topic/orders", "nor this"))
        .await
        .unwrap();
    drop(dropped);
    assert!(quiet(&mut orders).await);

    let tx = client.begin().await.unwrap();
    tx.send(SendFrame::new("/topic/orders", "one"))
        .await
        .unwrap();
    tx.send(SendFrame::new("/topic/orders", "two"))
        .await
        .unwrap();
    assert!(quiet(&mut orders).await, "nothing before the COMMIT");
    tx.commit().await.unwrap();
    assert_eq!(text(&orders.next().await.unwrap()), "one");
    assert_eq!(text(&orders.next().await.unwrap()), "two");
    client.disconnect().await.unwrap();
}

/// Whether no message arrives within 200 ms.
async fn quiet(subscription: &mut stomp_tokio::Subscription) -> bool {
    tokio::time::timeout(Duration::from_millis(200), subscription.next())
        .await
        .is_err()
}

#[tokio::test]
async fn try_send_never_waits_and_says_when_the_queue_is_full() {
    let (_server, tcp, _) = server().await;
    let client = Client::builder(tcp)
        .command_queue(1)
        .connect()
        .await
        .unwrap();
    // On a current-thread runtime the connection task cannot run between these calls, so
    // the one-command queue fills at once.
    let first = client.try_send(SendFrame::new("/topic/t", "1"));
    let second = client.try_send(SendFrame::new("/topic/t", "2"));
    assert!(first.is_ok(), "{first:?}");
    assert!(matches!(second, Err(Error::QueueFull)), "{second:?}");
}

#[test]
fn the_handles_can_be_shared_and_moved_across_tasks() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    fn moved<T: Send + 'static>() {}
    shared::<Client>();
    moved::<stomp_tokio::Subscription>();
    moved::<stomp_tokio::Transaction>();
    moved::<stomp_tokio::Events>();
    moved::<stomp_tokio::Message>();
    shared::<stomp_tokio::Reconnect>();
}

#[tokio::test]
async fn tracked_sends_and_acks_stay_in_flight_together_and_each_receipt_resolves() {
    let (_server, tcp, _) = server().await;
    let client = Client::builder(tcp).connect().await.unwrap();
    let mut jobs = client
        .subscribe("/queue/tracked", AckMode::ClientIndividual)
        .await
        .unwrap();
    // Every SEND queued before any RECEIPT is awaited: in order, and each one confirmed.
    let mut receipts = Vec::new();
    for n in 0..100 {
        let frame = SendFrame::new("/queue/tracked", n.to_string());
        receipts.push(client.send_tracked(frame).await.unwrap());
    }
    for receipt in receipts {
        receipt.await.unwrap();
    }
    let mut acks = Vec::new();
    for n in 0..100 {
        let message = jobs.next().await.unwrap();
        assert_eq!(text(&message), n.to_string());
        acks.push(jobs.ack_tracked(&message).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    // A NACK tracked the same way; once the client is closed, queuing is a typed error.
    client.send("/queue/tracked", "last").await.unwrap();
    let message = jobs.next().await.unwrap();
    let pending = jobs.nack_tracked(&message).await.unwrap();
    pending.await.unwrap();
    // Redelivered after the NACK, and acknowledged without a RECEIPT: it does not come back.
    let again = jobs.next().await.unwrap();
    assert_eq!(text(&again), "last");
    jobs.ack_unconfirmed(&again).await.unwrap();
    assert!(quiet(&mut jobs).await, "acknowledged, yet redelivered");
    client.disconnect().await.unwrap();
    let late = jobs.ack_tracked(&message).await;
    assert!(matches!(late, Err(Error::Closed(_))), "{late:?}");
}

/// A broker that answers CONNECT and each SUBSCRIBE (with its RECEIPT and one message to
/// acknowledge), and reports every ACK and UNSUBSCRIBE as it reads them, by subscription.
async fn recording_broker(listener: TcpListener, seen: tokio::sync::mpsc::UnboundedSender<String>) {
    use stomp_codec::{Config, Decoder, Item};
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut decoder = Decoder::new(Config::default());
    let mut buffer = bytes::BytesMut::new();
    loop {
        while let Some(item) = decoder.decode(&mut buffer).unwrap() {
            let Item::Frame(frame) = item else { continue };
            let header = |name: &str| {
                frame
                    .header(name)
                    .map(|v| v.into_owned())
                    .unwrap_or_default()
            };
            let reply = match frame.command().as_str() {
                "CONNECT" | "STOMP" => "CONNECTED\nversion:1.2\n\n\0".to_owned(),
                "SUBSCRIBE" => {
                    let id = header("id");
                    format!(
                        "RECEIPT\nreceipt-id:{}\n\n\0MESSAGE\nsubscription:{id}\nmessage-id:m-{id}\ndestination:/queue/q\nack:ack-{id}\n\nhi\0",
                        header("receipt")
                    )
                }
                "ACK" => {
                    let _ = seen.send(format!("ACK {}", header("id").trim_start_matches("ack-")));
                    continue;
                }
                "UNSUBSCRIBE" => {
                    let _ = seen.send(format!("UNSUBSCRIBE {}", header("id")));
                    continue;
                }
                _ => continue,
            };
            stream.write_all(reply.as_bytes()).await.unwrap();
        }
        if stream.read_buf(&mut buffer).await.unwrap() == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn an_ack_queued_before_its_subscription_is_dropped_goes_out_before_the_unsubscribe() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(recording_broker(listener, seen_tx));
    let client = Client::builder(address).connect().await.unwrap();
    const SUBSCRIPTIONS: usize = 30;
    for _ in 0..SUBSCRIPTIONS {
        let mut subscription = client
            .subscribe("/queue/q", AckMode::ClientIndividual)
            .await
            .unwrap();
        let message = tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .unwrap()
            .unwrap();
        subscription.ack_unconfirmed(&message).await.unwrap();
        drop(subscription);
    }
    let mut order = Vec::new();
    while order.len() < 2 * SUBSCRIPTIONS {
        order.push(
            tokio::time::timeout(Duration::from_secs(5), seen.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    for line in order.iter().filter(|l| l.starts_with("UNSUBSCRIBE ")) {
        let id = line.trim_start_matches("UNSUBSCRIBE ");
        let acked = order.iter().position(|l| *l == format!("ACK {id}"));
        let unsubscribed = order.iter().position(|l| l == line);
        assert!(acked < unsubscribed && acked.is_some(), "{order:?}");
    }
}
