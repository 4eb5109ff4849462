//! A server with a data directory: persistent queue messages outlive it, plain ones do not,
//! every start compacts the journal to one snapshot and one log, a torn end of the log is cut
//! off, and a journal corrupt before its end stops the start rather than lose messages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stomp_server::Server;
use stomp_tokio::{AckMode, Client, SendFrame};

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stomp-persistence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn client(server: &Server) -> Client {
    Client::builder("memory")
        .connect_with(server.connect_local().unwrap())
        .await
        .unwrap()
}

/// Sends `bodies` to `queue`, persistent, each with a receipt.
async fn send_persistent(server: &Server, queue: &str, bodies: &[&str]) {
    let client = client(server).await;
    for body in bodies {
        let frame = SendFrame::new(queue, body.to_string()).header("persistent", "true");
        client.send_with_receipt(frame).await.unwrap();
    }
    client.disconnect().await.unwrap();
}

/// Takes every message waiting on `queue`, acknowledging each; their bodies and whether each
/// was marked redelivered.
async fn drain(server: &Server, queue: &str) -> Vec<(String, bool)> {
    let client = client(server).await;
    let mut subscription = client
        .subscribe(queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), subscription.next()).await
    {
        let redelivered = message.frame().header("redelivered").as_deref() == Some("true");
        got.push((
            String::from_utf8_lossy(message.body()).into_owned(),
            redelivered,
        ));
        subscription
            .ack_tracked(&message)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    client.disconnect().await.unwrap();
    got
}

/// The journal's files in `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "shards")
        .collect();
    names.sort();
    names
}

fn start(dir: &Path) -> Server {
    Server::builder().data_dir(dir).try_start().unwrap()
}

#[tokio::test]
async fn persistent_messages_outlive_the_server_and_plain_ones_do_not() {
    let dir = data_dir("outlive");
    let server = start(&dir);
    send_persistent(&server, "/queue/jobs", &["one", "two", "three"]).await;
    let plain = client(&server).await;
    plain
        .send_with_receipt(SendFrame::new("/queue/jobs", "memory only"))
        .await
        .unwrap();
    plain.disconnect().await.unwrap();
    // A consumer with a window of one takes "one" and goes away without acknowledging it.
    let consumer = client(&server).await;
    let mut subscription = consumer
        .subscribe_with_headers("/queue/jobs", AckMode::Client, &[("prefetch-count", "1")])
        .await
        .unwrap();
    let first = subscription.next().await.unwrap();
    assert_eq!(first.body().as_ref(), b"one");
    server.shutdown(Duration::from_secs(1)).await;

    let server = start(&dir);
    let got = drain(&server, "/queue/jobs").await;
    assert_eq!(
        got,
        [
            ("one".to_owned(), true),
            ("two".to_owned(), false),
            ("three".to_owned(), false)
        ]
    );
    server.shutdown(Duration::from_secs(1)).await;
    // Acknowledged: gone for good.
    let server = start(&dir);
    assert!(drain(&server, "/queue/jobs").await.is_empty());
    server.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_start_compacts_the_journal_to_one_snapshot_and_one_log() {
    let dir = data_dir("compact");
    for round in 0..3 {
        let server = start(&dir);
        send_persistent(&server, "/queue/q", &["kept"]).await;
        server.shutdown(Duration::from_secs(1)).await;
        let names = files(&dir);
        assert_eq!(names.len(), 2, "round {round}: {names:?}");
        assert!(names[0].ends_with(".log") && names[1].ends_with(".snapshot"));
    }
    let server = start(&dir);
    let got = drain(&server, "/queue/q").await;
    assert_eq!(got.len(), 3);
    server.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_torn_end_of_the_log_is_cut_off_and_a_corrupt_snapshot_stops_the_start() {
    let dir = data_dir("torn");
    let server = start(&dir);
    send_persistent(&server, "/queue/q", &["a", "b"]).await;
    server.shutdown(Duration::from_secs(1)).await;
    // A crash in the middle of a write: half a record at the end of the log.
    let log = dir.join(
        files(&dir)
            .into_iter()
            .find(|n| n.ends_with(".log"))
            .unwrap(),
    );
    let mut bytes = std::fs::read(&log).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 9]);
    std::fs::write(&log, &bytes).unwrap();
    assert!(whole > 0);
    let server = start(&dir);
    server.shutdown(Duration::from_secs(1)).await;
    // Corruption inside the snapshot is not a torn write: the start refuses.
    let snapshot = dir.join(
        files(&dir)
            .into_iter()
            .find(|n| n.ends_with(".snapshot"))
            .unwrap(),
    );
    let mut bytes = std::fs::read(&snapshot).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&snapshot, &bytes).unwrap();
    let error = Server::builder().data_dir(&dir).try_start().err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    assert!(error.to_string().contains("corrupt"), "{error}");
    bytes[10] ^= 0xff;
    std::fs::write(&snapshot, &bytes).unwrap();
    let server = start(&dir);
    let got: Vec<String> = drain(&server, "/queue/q")
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(got, ["a", "b"]);
    server.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_shards_each_keeps_its_queues_and_the_number_of_shards_is_kept() {
    let dir = data_dir("shards");
    let start = |shards| Server::builder().data_dir(&dir).shards(shards).try_start();
    let server = start(2).unwrap();
    // Clients land on both shards; queues are owned by either.
    let queues = ["/queue/a", "/queue/b", "/queue/c", "/queue/d"];
    for queue in queues {
        send_persistent(&server, queue, &["kept"]).await;
    }
    server.shutdown(Duration::from_secs(1)).await;
    let error = start(1).err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("2 shards"), "{error}");
    let server = start(2).unwrap();
    for queue in queues {
        let got: Vec<String> = drain(&server, queue)
            .await
            .into_iter()
            .map(|(b, _)| b)
            .collect();
        assert_eq!(got, ["kept"], "{queue}");
    }
    server.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn dead_letters_of_persistent_messages_are_kept_too() {
    let dir = data_dir("dead");
    let config = stomp_server::BrokerConfig::default().with_max_redeliveries(Some(0));
    let server = Server::builder()
        .config(config.clone())
        .data_dir(&dir)
        .try_start()
        .unwrap();
    // One message refused once; one that expired before anyone came.
    send_persistent(&server, "/queue/orders", &["refused"]).await;
    let stale = client(&server).await;
    let frame = SendFrame::new("/queue/orders", "stale")
        .header("persistent", "true")
        .header("expires", "1");
    stale.send_with_receipt(frame).await.unwrap();
    stale.disconnect().await.unwrap();
    let consumer = client(&server).await;
    let mut subscription = consumer
        .subscribe_with_headers(
            "/queue/orders",
            AckMode::ClientIndividual,
            &[("prefetch-count", "1")],
        )
        .await
        .unwrap();
    let refused = subscription.next().await.unwrap();
    assert_eq!(refused.body().as_ref(), b"refused");
    subscription
        .nack_tracked(&refused)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), subscription.next())
            .await
            .is_err(),
        "neither comes back"
    );
    consumer.disconnect().await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;

    let server = Server::builder()
        .config(config)
        .data_dir(&dir)
        .try_start()
        .unwrap();
    assert!(drain(&server, "/queue/orders").await.is_empty());
    let client = client(&server).await;
    let mut dead = client
        .subscribe("/queue/DLQ.orders", AckMode::Auto)
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for _ in 0..2 {
        let message = dead.next().await.unwrap();
        let frame = message.frame();
        assert_eq!(
            frame.header("dead-letter-from").as_deref(),
            Some("/queue/orders")
        );
        let reason = frame.header("dead-letter-reason").unwrap().into_owned();
        reasons.push((String::from_utf8_lossy(message.body()).into_owned(), reason));
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("refused".to_owned(), "redelivered".to_owned()),
            ("stale".to_owned(), "expired".to_owned())
        ]
    );
    client.disconnect().await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn at_the_journal_limit_publishers_wait_and_nothing_is_dropped() {
    let dir = data_dir("limit");
    let server = Server::builder()
        .data_dir(&dir)
        .max_journal_bytes(100_000)
        .try_start()
        .unwrap();
    let publisher = client(&server).await;
    let body = "x".repeat(1000);
    let sending = tokio::spawn(async move {
        for n in 0..300 {
            let frame =
                SendFrame::new("/queue/big", format!("{n}:{body}")).header("persistent", "true");
            publisher.send_with_receipt(frame).await.unwrap();
        }
        publisher.disconnect().await.unwrap();
    });
    // Nobody consumes: the journal fills, and the publisher waits.
    let mut full = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stats = server.handle().stats().await.unwrap();
        if stats.broker.journal_full == 1 {
            full = true;
            assert!(stats.broker.journal_bytes >= 100_000);
            break;
        }
    }
    assert!(full, "the journal never reached its limit");
    assert!(!sending.is_finished(), "the publisher waits");
    // A consumer takes them all; compaction makes room, and the publisher finishes.
    let consumer = client(&server).await;
    let mut queue = consumer
        .subscribe("/queue/big", AckMode::ClientIndividual)
        .await
        .unwrap();
    for n in 0..300 {
        let message = tokio::time::timeout(Duration::from_secs(10), queue.next())
            .await
            .unwrap()
            .unwrap();
        let body = String::from_utf8_lossy(message.body()).into_owned();
        assert!(body.starts_with(&format!("{n}:")), "in order, none dropped");
        queue.ack(&message).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), sending)
        .await
        .unwrap()
        .unwrap();
    consumer.disconnect().await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
