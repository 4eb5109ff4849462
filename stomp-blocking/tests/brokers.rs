//! The sessions against real brokers over TCP, through the blocking driver: RabbitMQ on
//! 127.0.0.1:61633 and ActiveMQ on 127.0.0.1:61623, started by `scripts/brokers.sh`.
//!
//! These tests need the brokers, so plain `cargo test` lists them as ignored; `scripts/test`
//! starts the brokers and runs them with `--include-ignored`, and there a missing broker fails
//! the run.

use std::time::Duration;

use stomp_blocking::Client;
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, CloseReason, HeartBeat, Message, SendFrame,
    Version,
};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
struct Broker {
    name: &'static str,
    addr: &'static str,
    /// RabbitMQ's virtual host is `/`; ActiveMQ takes any host.
    host: &'static str,
}

const RABBITMQ: Broker = Broker {
    name: "rabbitmq",
    addr: "127.0.0.1:61633",
    host: "/",
};
const ACTIVEMQ: Broker = Broker {
    name: "activemq",
    addr: "127.0.0.1:61623",
    host: "localhost",
};

fn connect(broker: Broker, version: Version, heart_beat: HeartBeat) -> Client {
    let config = ClientConfig::new(broker.host)
        .with_login("guest", "guest")
        .with_versions(&[version])
        .with_heart_beat(heart_beat);
    let mut client = Client::connect(broker.addr, config)
        .unwrap_or_else(|e| panic!("{} at {} ({version}): {e}", broker.name, broker.addr));
    assert_eq!(client.session().version(), version, "{}", broker.name);
    client
}

/// A queue name no other run or test uses.
fn queue(broker: Broker, version: Version, what: &str) -> String {
    format!(
        "/queue/stomp-rs.{}.{}.{what}.{}",
        broker.name,
        version,
        std::process::id()
    )
}

/// Waits for the receipt `id`, keeping the other events.
fn await_receipt(
    client: &mut Client,
    id: &stomp_session::ReceiptId,
    others: &mut Vec<ClientEvent>,
) {
    loop {
        match client.next_event(Some(WAIT)).unwrap() {
            Some(ClientEvent::Receipt { receipt, .. }) if receipt == *id => return,
            Some(ClientEvent::Closed { reason, .. }) => panic!("closed waiting for {id}: {reason}"),
            Some(event) => others.push(event),
            None => panic!("no receipt {id}"),
        }
    }
}

/// Waits for a message, keeping the other events.
fn await_message(client: &mut Client, others: &mut Vec<ClientEvent>) -> Message {
    if let Some(at) = others
        .iter()
        .position(|e| matches!(e, ClientEvent::Message(_)))
    {
        if let ClientEvent::Message(message) = others.remove(at) {
            return message;
        }
    }
    loop {
        match client.next_event(Some(WAIT)).unwrap() {
            Some(ClientEvent::Message(message)) => return message,
            Some(ClientEvent::Closed { reason, .. }) => {
                panic!("closed waiting for a message: {reason}")
            }
            Some(event) => others.push(event),
            None => panic!("no message"),
        }
    }
}

fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Connect, subscribe (client-individual, with a receipt), send with a receipt, receive, ack
/// with a receipt, and disconnect gracefully with a receipt.
fn messaging(broker: Broker, version: Version) {
    let mut client = connect(broker, version, HeartBeat::NONE);
    let destination = queue(broker, version, "messaging");
    let mut others = Vec::new();
    let sub = client
        .session()
        .subscribe(
            now(),
            &destination,
            AckMode::ClientIndividual,
            AskReceipt::Yes,
        )
        .unwrap();
    await_receipt(&mut client, &sub.receipt.unwrap(), &mut others);

    let body = "héllo: binary\0 and\nlines";
    let send = SendFrame::new(destination.as_str(), body)
        .header("x-note", "a:b")
        .with_receipt();
    let receipt = client.session().send(now(), send).unwrap().unwrap();
    await_receipt(&mut client, &receipt, &mut others);
    let message = await_message(&mut client, &mut others);
    assert_eq!(message.subscription().as_ref(), Some(&sub.id));
    assert_eq!(&message.body()[..], body.as_bytes());
    assert_eq!(message.destination().as_deref(), Some(destination.as_str()));
    if version != Version::V1_0 {
        // 1.0 has no escapes: brokers differ in what they do with a colon (INDEX.md).
        assert_eq!(message.frame().header("x-note").as_deref(), Some("a:b"));
    }

    let ack = client
        .session()
        .ack(now(), &message, None, AskReceipt::Yes)
        .unwrap()
        .unwrap();
    await_receipt(&mut client, &ack, &mut others);
    let (reason, _) = client.disconnect(WAIT).unwrap();
    assert_eq!(
        reason,
        Some(CloseReason::Disconnected),
        "{} {version}",
        broker.name
    );
    assert!(others.is_empty(), "unexpected events: {others:?}");
}

/// A SEND in a transaction arrives only after COMMIT; an aborted one never.
fn transaction(broker: Broker, version: Version) {
    let mut client = connect(broker, version, HeartBeat::NONE);
    let destination = queue(broker, version, "transaction");
    let mut others = Vec::new();
    let sub = client
        .session()
        .subscribe(now(), &destination, AckMode::Auto, AskReceipt::Yes)
        .unwrap();
    await_receipt(&mut client, &sub.receipt.unwrap(), &mut others);

    let aborted = client.session().begin(now(), AskReceipt::No).unwrap();
    let send = SendFrame::new(destination.as_str(), "aborted").in_transaction(&aborted.id);
    client.session().send(now(), send).unwrap();
    let receipt = client
        .session()
        .abort(now(), &aborted.id, AskReceipt::Yes)
        .unwrap()
        .unwrap();
    await_receipt(&mut client, &receipt, &mut others);

    let tx = client.session().begin(now(), AskReceipt::No).unwrap();
    let send = SendFrame::new(destination.as_str(), "committed").in_transaction(&tx.id);
    client.session().send(now(), send).unwrap();
    others.extend(client.run_for(Duration::from_millis(300)).unwrap());
    assert!(others.is_empty(), "delivered before COMMIT: {others:?}");
    let receipt = client
        .session()
        .commit(now(), &tx.id, AskReceipt::Yes)
        .unwrap()
        .unwrap();
    await_receipt(&mut client, &receipt, &mut others);
    let message = await_message(&mut client, &mut others);
    assert_eq!(&message.body()[..], b"committed");
    others.extend(client.run_for(Duration::from_millis(300)).unwrap());
    assert!(others.is_empty(), "the aborted SEND arrived: {others:?}");
    let (reason, _) = client.disconnect(WAIT).unwrap();
    assert_eq!(reason, Some(CloseReason::Disconnected));
}

/// Heart-beats of 1000,1000 held for 5 s with neither side dropping the other.
fn heart_beats(broker: Broker, version: Version) {
    let mut client = connect(broker, version, HeartBeat::from_millis(1000, 1000));
    let periods = client.session().heart_beat();
    assert_eq!(
        periods.send,
        Some(Duration::from_secs(1)),
        "{} {version}",
        broker.name
    );
    assert_eq!(
        periods.receive,
        Some(Duration::from_secs(1)),
        "{} {version}",
        broker.name
    );
    let events = client.run_for(Duration::from_secs(5)).unwrap();
    assert!(events.is_empty(), "{} {version}: {events:?}", broker.name);
    assert!(client.session().is_connected());
    // Still alive both ways: a receipt comes back.
    let destination = queue(broker, version, "heartbeat");
    let receipt = client
        .session()
        .send(now(), SendFrame::new(destination, "x").with_receipt())
        .unwrap();
    let mut others = Vec::new();
    await_receipt(&mut client, &receipt.unwrap(), &mut others);
    let (reason, _) = client.disconnect(WAIT).unwrap();
    assert_eq!(reason, Some(CloseReason::Disconnected));
}

fn all(broker: Broker) {
    std::thread::scope(|scope| {
        // Heart-beats take 5 s each: hold them side by side.
        let beats: Vec<_> = Version::ALL
            .into_iter()
            .map(|version| scope.spawn(move || heart_beats(broker, version)))
            .collect();
        for version in Version::ALL {
            messaging(broker, version);
            transaction(broker, version);
        }
        for beat in beats {
            beat.join().unwrap();
        }
    });
}

#[test]
#[ignore = "needs RabbitMQ on 127.0.0.1:61633: run scripts/test"]
fn rabbitmq_every_version() {
    all(RABBITMQ);
}

#[test]
#[ignore = "needs ActiveMQ on 127.0.0.1:61623: run scripts/test"]
fn activemq_every_version() {
    all(ACTIVEMQ);
}
