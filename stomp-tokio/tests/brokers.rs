//! stomp-tokio against real brokers: RabbitMQ (STOMP on 127.0.0.1:61633, Web-STOMP on
//! ws://127.0.0.1:15684/ws) and ActiveMQ (127.0.0.1:61623), started by `scripts/brokers.sh`,
//! and stomp-server in this process (TCP and WebSocket), each in every version.
//!
//! The real brokers' tests need them, so plain `cargo test` lists them as ignored;
//! `scripts/test` starts the brokers and runs them with `--include-ignored`, and there a missing
//! broker fails the run.

mod common;

use std::time::Duration;

use common::Proxy;
use futures_util::future::join_all;

use stomp_server::{BrokerConfig, Server, ServerConfig};
use stomp_tokio::{
    AckMode, Client, ConnectionEvent, Error, HeartBeat, Reconnect, SendFrame, Version,
};
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug)]
struct Broker<'a> {
    name: &'a str,
    endpoint: &'a str,
    /// RabbitMQ's virtual host is `/`; ActiveMQ and stomp-server take any host.
    host: &'a str,
    /// Whether a NACKed queue message comes back (RabbitMQ, stomp-server) or goes to a
    /// dead-letter queue (ActiveMQ takes a NACK as a poison acknowledgement).
    nack_redelivers: bool,
}

const RABBITMQ: Broker<'static> = Broker {
    name: "rabbitmq",
    endpoint: "127.0.0.1:61633",
    host: "/",
    nack_redelivers: true,
};
const RABBITMQ_WEB_STOMP: Broker<'static> = Broker {
    name: "rabbitmq-web-stomp",
    endpoint: "ws://127.0.0.1:15684/ws",
    host: "/",
    nack_redelivers: true,
};
const ACTIVEMQ: Broker<'static> = Broker {
    name: "activemq",
    endpoint: "127.0.0.1:61623",
    host: "localhost",
    nack_redelivers: false,
};

const WAIT: Duration = Duration::from_secs(10);

async fn connect(broker: Broker<'_>, version: Version) -> Client {
    Client::builder(broker.endpoint)
        .host(broker.host)
        .login("guest", "guest")
        .versions(&[version])
        .heart_beat(HeartBeat::from_millis(1000, 1000))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{} at {} ({version}): {e}", broker.name, broker.endpoint))
}

/// A queue name no other run or test uses.
fn queue(broker: Broker<'_>, version: Version, what: &str) -> String {
    let pid = std::process::id();
    format!(
        "/queue/stomp-rs-tokio.{}.{version}.{what}.{pid}",
        broker.name
    )
}

fn text(message: &stomp_tokio::Message) -> String {
    String::from_utf8_lossy(message.body()).into_owned()
}

/// Subscribe, send with receipt, receive, ack, nack (1.1+), a committed transaction,
/// heart-beats held for several periods, and a graceful disconnect.
async fn exercise(broker: Broker<'_>, version: Version) {
    let client = connect(broker, version).await;
    let name = queue(broker, version, "work");
    let mut work = client.subscribe(&name, AckMode::Client).await.unwrap();
    client
        .send_with_receipt(SendFrame::new(name.as_str(), "first"))
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, work.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&first), "first", "{broker:?} {version}");
    if version == Version::V1_0 {
        work.ack(&first).await.unwrap();
    } else if !broker.nack_redelivers {
        // ActiveMQ takes a NACK as a poison acknowledgement: the message leaves the queue
        // for its dead-letter queue instead of coming back.
        work.nack(&first).await.unwrap();
        assert!(
            quiet(&mut work).await,
            "{broker:?} {version}: not redelivered"
        );
    } else {
        // RabbitMQ and stomp-server requeue a NACKed message and redeliver it.
        work.nack(&first).await.unwrap();
        let again = tokio::time::timeout(WAIT, work.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text(&again), "first", "{broker:?} {version}: redelivered");
        work.ack(&again).await.unwrap();
    }

    let tx = client.begin().await.unwrap();
    tx.send(SendFrame::new(name.as_str(), "in a transaction"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let committed = tokio::time::timeout(WAIT, work.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&committed), "in a transaction");
    work.ack(&committed).await.unwrap();

    // Heart-beats both ways hold the idle connection for more than three periods.
    if version >= Version::V1_1 {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(client.close_reason(), None, "{broker:?} {version}");
        client
            .send_with_receipt(SendFrame::new(name.as_str(), "still here"))
            .await
            .unwrap();
        let still = tokio::time::timeout(WAIT, work.next())
            .await
            .unwrap()
            .unwrap();
        work.ack(&still).await.unwrap();
    }
    drop(work);
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn stomp_server_in_every_version_over_tcp_and_websocket() {
    // Heart-beats of a second, so that 3.5 s idle spans several periods.
    let session = ServerConfig::default().with_heart_beat(HeartBeat::from_millis(1000, 1000));
    let server = Server::builder()
        .config(BrokerConfig::default().with_session(session))
        .start();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_endpoint = tcp.local_addr().unwrap().to_string();
    let ws_endpoint = format!("ws://{}/stomp", http.local_addr().unwrap());
    tokio::spawn(server.serve_tcp(tcp));
    tokio::spawn(server.serve_http(http, server.router()));
    let brokers = [
        ("stomp-server", &tcp_endpoint),
        ("stomp-server-ws", &ws_endpoint),
    ]
    .map(|(name, endpoint)| Broker {
        name,
        endpoint,
        host: "/",
        nack_redelivers: true,
    });
    let runs = brokers
        .iter()
        .flat_map(|broker| Version::ALL.map(|version| exercise(*broker, version)));
    join_all(runs).await;
}

#[tokio::test]
#[ignore = "needs RabbitMQ on 127.0.0.1:61633 (scripts/brokers.sh)"]
async fn rabbitmq_in_every_version() {
    join_all(Version::ALL.map(|version| exercise(RABBITMQ, version))).await;
}

#[tokio::test]
#[ignore = "needs ActiveMQ on 127.0.0.1:61623 (scripts/brokers.sh)"]
async fn activemq_in_every_version() {
    join_all(Version::ALL.map(|version| exercise(ACTIVEMQ, version))).await;
}

#[tokio::test]
#[ignore = "needs RabbitMQ's Web-STOMP on 127.0.0.1:15684 (scripts/brokers.sh)"]
async fn rabbitmq_over_websocket() {
    exercise(RABBITMQ_WEB_STOMP, Version::V1_2).await;
}

/// A consumer whose connection to the broker is cut (through a proxy) reconnects, gets its
/// subscription back, and is given again what it had not acknowledged, by the broker.
async fn cut_and_redelivered(broker: Broker<'_>) {
    let upstream = broker.endpoint.parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let quick = Reconnect::new()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500));
    let consumer = Client::builder(proxy.address.to_string())
        .host(broker.host)
        .login("guest", "guest")
        .reconnect(quick)
        .connect()
        .await
        .unwrap();
    let mut events = consumer.events();
    let name = queue(broker, Version::V1_2, "cut");
    let mut jobs = consumer
        .subscribe(&name, AckMode::ClientIndividual)
        .await
        .unwrap();
    let producer = connect(broker, Version::V1_2).await;
    for job in ["job 1", "job 2"] {
        producer
            .send_with_receipt(SendFrame::new(name.as_str(), job))
            .await
            .unwrap();
    }
    let first = tokio::time::timeout(WAIT, jobs.next())
        .await
        .unwrap()
        .unwrap();
    jobs.ack(&first).await.unwrap();
    let second = tokio::time::timeout(WAIT, jobs.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&second), "job 2", "{broker:?}");
    proxy.cut();
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if matches!(event, ConnectionEvent::Reconnected(_)) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{broker:?}: not reconnected"));
    let again = tokio::time::timeout(WAIT, jobs.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&again), "job 2", "{broker:?}: redelivered");
    assert_eq!(again.connection(), 2);
    assert!(matches!(jobs.ack(&second).await, Err(Error::StaleMessage)));
    jobs.ack(&again).await.unwrap();
    producer
        .send_with_receipt(SendFrame::new(name.as_str(), "job 3"))
        .await
        .unwrap();
    let third = tokio::time::timeout(WAIT, jobs.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&third), "job 3", "{broker:?}");
    jobs.ack(&third).await.unwrap();
    drop(jobs);
    consumer.disconnect().await.unwrap();
    producer.disconnect().await.unwrap();
}

#[tokio::test]
#[ignore = "needs RabbitMQ and ActiveMQ (scripts/brokers.sh)"]
async fn a_cut_connection_to_rabbitmq_or_activemq_is_restored_and_unacked_messages_come_again() {
    for broker in [RABBITMQ, ACTIVEMQ] {
        cut_and_redelivered(broker).await;
    }
}

/// Whether no message arrives within 500 ms.
async fn quiet(subscription: &mut stomp_tokio::Subscription) -> bool {
    tokio::time::timeout(Duration::from_millis(500), subscription.next())
        .await
        .is_err()
}

/// Request and reply through RabbitMQ: the requester's `reply-to` is a `/temp-queue/`, which
/// RabbitMQ creates and routes back without a SUBSCRIBE; the service answers at the `reply-to`
/// it was handed, copying the `correlation-id`.
#[tokio::test]
#[ignore = "needs RabbitMQ on 127.0.0.1:61633 (scripts/brokers.sh)"]
async fn request_and_reply_through_rabbitmq_temporary_queues() {
    let service = connect(RABBITMQ, Version::V1_2).await;
    let requests = "/queue/stomp-tokio-rpc";
    let mut incoming = service.subscribe(requests, AckMode::Auto).await.unwrap();
    let answering = tokio::spawn(async move {
        for _ in 0..3 {
            let request = incoming.next().await.unwrap();
            let reply_to = request.header("reply-to").unwrap().into_owned();
            let correlation = request.header("correlation-id").unwrap().into_owned();
            let body = format!("re: {}", String::from_utf8_lossy(request.body()));
            let answer = SendFrame::new(reply_to, body).header("correlation-id", correlation);
            service.send_frame(answer).await.unwrap();
        }
    });
    let client = connect(RABBITMQ, Version::V1_2).await;
    for question in ["a", "b", "c"] {
        let reply = client
            .request(SendFrame::new(requests, question), WAIT)
            .await
            .unwrap();
        assert_eq!(reply.body().as_ref(), format!("re: {question}").as_bytes());
    }
    answering.await.unwrap();
}
