//! Relay mode while RabbitMQ (127.0.0.1:61633, from `scripts/brokers.sh`) is stopped and
//! started again, and what is left on it once the clients leave. Its own test binary, one
//! test: stopping the broker must not disturb other tests.
//!
//! Needs RabbitMQ and `rabbitmqctl`, so plain `cargo test` lists it as ignored; `scripts/test`
//! runs it with `--include-ignored`, and there a missing broker fails.

mod common;

use std::time::{Duration, Instant};

use common::relay::{available, queues, rabbitmqctl};
use stomp_server::{App, RelayConfig, Server};
use stomp_tokio::{AckMode, Client, CloseReason, SendFrame, Subscription};
use tokio::net::{TcpListener, TcpStream};

const RABBITMQ: &str = "stomp://guest:guest@127.0.0.1:61633/";
const WAIT: Duration = Duration::from_secs(20);

async fn node(relay: RelayConfig) -> (Server, String) {
    let server = Server::builder().app(App::new()).relay(relay).start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_tcp(listener));
    (server, address)
}

async fn next(subscription: &mut Subscription) -> stomp_tokio::Message {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("no message in time")
        .expect("subscription ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs RabbitMQ and rabbitmqctl (scripts/test starts it)"]
async fn rabbitmq_restarted_the_relay_is_back_within_5_s_and_leaves_no_queue_behind() {
    let relay = || RelayConfig::parse(RABBITMQ).unwrap();
    let (closing, closing_address) = node(relay()).await;
    let (restoring, restoring_address) = node(relay().restore_subscriptions(true)).await;
    available(&closing, WAIT).await;
    available(&restoring, WAIT).await;
    let room = format!("/chat/restart-{}", std::process::id());
    let queue = format!("/queue/restart-{}", std::process::id());

    let ann = Client::builder(closing_address.as_str())
        .connect()
        .await
        .unwrap();
    let _ann_room = ann.subscribe(&room, AckMode::Auto).await.unwrap();
    let bob_name = format!("bob-{}", std::process::id());
    let bob = Client::builder(restoring_address.as_str())
        .login(bob_name.as_str(), "x")
        .connect()
        .await
        .unwrap();
    let mut bob_room = bob.subscribe(&room, AckMode::Auto).await.unwrap();
    let mut bob_jobs = bob
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    let bob_dm = bob
        .subscribe("/user/queue/dm", AckMode::Auto)
        .await
        .unwrap();
    bob.send_with_receipt(SendFrame::new(room.as_str(), "before"))
        .await
        .unwrap();
    assert_eq!(&next(&mut bob_room).await.body()[..], b"before");

    rabbitmqctl(&["stop_app"]);
    // The default: the session with a subscription on the lost connection gets an ERROR.
    let reason = tokio::time::timeout(WAIT, ann.closed())
        .await
        .expect("ann kept");
    match &reason {
        CloseReason::ErrorFrame(Some(message)) => {
            assert!(message.contains("broker connection"), "{reason:?}");
        }
        other => panic!("expected an ERROR, got {other:?}"),
    }
    // While the broker is away, publishing fails at once.
    let published = closing.handle().publish(room.as_str(), "while away").await;
    assert_eq!(
        published,
        Err(stomp_server::PublishError::BrokerUnavailable)
    );

    rabbitmqctl(&["start_app"]);
    let port_open = Instant::now();
    while TcpStream::connect("127.0.0.1:61633").await.is_err() {
        assert!(port_open.elapsed() < WAIT, "RabbitMQ did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let back = available(&closing, WAIT).await;
    assert!(back < Duration::from_secs(5), "the relay took {back:?}");
    available(&restoring, WAIT).await;

    // Opted in: bob's session outlived the restart and its subscriptions were restored.
    assert!(bob.close_reason().is_none(), "{:?}", bob.close_reason());
    let deadline = Instant::now() + WAIT;
    let restored = loop {
        assert!(
            Instant::now() < deadline,
            "bob's subscription was not restored"
        );
        let _ = closing.handle().publish(room.as_str(), "after").await;
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(200), bob_room.next()).await
        {
            break message;
        }
    };
    assert_eq!(&restored.body()[..], b"after");
    let job = SendFrame::new(queue.as_str(), "job");
    bob.send_with_receipt(job).await.unwrap();
    let job = next(&mut bob_jobs).await;
    bob_jobs.ack(&job).await.unwrap();

    // Per subscription and per user, RabbitMQ holds an exclusive queue while they last.
    let per_session = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .filter(|name| name.starts_with("stomp-subscription-"))
            .collect()
    };
    let held = per_session(queues());
    assert!(held.len() >= 2, "bob's room and bob's user queue: {held:?}");

    // Everyone leaves: nothing of theirs stays on the broker but the durable queue a
    // `/queue/` destination is (deleted here by the test).
    drop((bob_room, bob_jobs, bob_dm));
    bob.disconnect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let leftover = loop {
        let leftover = per_session(queues());
        if leftover.is_empty() || Instant::now() > deadline {
            break leftover;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(leftover.is_empty(), "left on RabbitMQ: {leftover:?}");
    let name = queue.trim_start_matches("/queue/");
    assert!(queues().iter().any(|q| q == name));
    rabbitmqctl(&["delete_queue", name]);
}
