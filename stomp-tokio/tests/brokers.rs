//! stomp-tokio against real brokers: RabbitMQ (STOMP on 127.0.0.1:61633, Web-STOMP on
//! ws://127.0.0.1:15684/ws) and ActiveMQ (127.0.0.1:61623), started by `scripts/brokers.sh`.
//!
//! These tests need the brokers, so plain `cargo test` lists them as ignored; `scripts/test`
//! starts the brokers and runs them with `--include-ignored`, and there a missing broker fails
//! the run.

use std::time::Duration;

use stomp_tokio::{AckMode, Client, HeartBeat, SendFrame, Version};

#[derive(Clone, Copy, Debug)]
struct Broker {
    name: &'static str,
    endpoint: &'static str,
    /// RabbitMQ's virtual host is `/`; ActiveMQ takes any host.
    host: &'static str,
}

const RABBITMQ: Broker = Broker {
    name: "rabbitmq",
    endpoint: "127.0.0.1:61633",
    host: "/",
};
const RABBITMQ_WEB_STOMP: Broker = Broker {
    name: "rabbitmq-web-stomp",
    endpoint: "ws://127.0.0.1:15684/ws",
    host: "/",
};
const ACTIVEMQ: Broker = Broker {
    name: "activemq",
    endpoint: "127.0.0.1:61623",
    host: "localhost",
};

const WAIT: Duration = Duration::from_secs(10);

async fn connect(broker: Broker, version: Version) -> Client {
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
fn queue(broker: Broker, version: Version, what: &str) -> String {
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
async fn exercise(broker: Broker, version: Version) {
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
    } else if broker.name == ACTIVEMQ.name {
        // ActiveMQ takes a NACK as a poison acknowledgement: the message leaves the queue
        // for its dead-letter queue instead of coming back.
        work.nack(&first).await.unwrap();
        assert!(
            quiet(&mut work).await,
            "{broker:?} {version}: not redelivered"
        );
    } else {
        // RabbitMQ requeues a NACKed message and redelivers it.
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
#[ignore = "needs RabbitMQ on 127.0.0.1:61633 (scripts/brokers.sh)"]
async fn rabbitmq_in_every_version() {
    for version in Version::ALL {
        exercise(RABBITMQ, version).await;
    }
}

#[tokio::test]
#[ignore = "needs ActiveMQ on 127.0.0.1:61623 (scripts/brokers.sh)"]
async fn activemq_in_every_version() {
    for version in Version::ALL {
        exercise(ACTIVEMQ, version).await;
    }
}

#[tokio::test]
#[ignore = "needs RabbitMQ's Web-STOMP on 127.0.0.1:15684 (scripts/brokers.sh)"]
async fn rabbitmq_over_websocket() {
    exercise(RABBITMQ_WEB_STOMP, Version::V1_2).await;
}

/// Whether no message arrives within 500 ms.
async fn quiet(subscription: &mut stomp_tokio::Subscription) -> bool {
    tokio::time::timeout(Duration::from_millis(500), subscription.next())
        .await
        .is_err()
}
