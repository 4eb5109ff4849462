//! The three frames that once froze the whole server, written in one go after CONNECTED, as
//! stomp.py's `run` of a file with `subscribe`, `send` and `unsubscribe` lines writes them:
//! in every version, on one shard and two, over TCP and WebSocket, the client gets its MESSAGE
//! or not as the protocol allows, and the next client is served at once.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::transport::Transport;

/// Reads until `until` is in what arrived, or `limit` passes; what arrived.
async fn read_until(transport: &mut Transport, until: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains(until) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match transport.read(left).await {
            Some(bytes) => got.extend_from_slice(&bytes),
            None => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_send_unsubscribe_in_one_write_leaves_the_server_serving() {
    for shards in ["1", "2"] {
        let server = Server::start(&["--shards", shards]);
        for websocket in [false, true] {
            for accept in ["", "accept-version:1.1\n", "accept-version:1.2\n"] {
                let case = format!("{shards} shards, websocket {websocket}, {accept:?}");
                let mut client = Transport::open(&server, websocket).await.unwrap();
                let connect = format!("CONNECT\n{accept}host:/\n\n\0");
                assert!(client.write(connect.as_bytes()).await);
                let connected = read_until(&mut client, "\0", Duration::from_secs(5)).await;
                assert!(
                    connected.starts_with("CONNECTED\n"),
                    "{case}: {connected:?}"
                );
                let three = "SUBSCRIBE\nid:1\ndestination:/queue/testfile\nack:auto\n\n\0\
                    SEND\ndestination:/queue/testfile\n\nthis is a test\0\
                    UNSUBSCRIBE\nid:1\ndestination:/queue/testfile\n\n\0";
                assert!(client.write(three.as_bytes()).await);
                let mut got =
                    read_until(&mut client, "this is a test", Duration::from_millis(500)).await;
                assert!(!got.contains("ERROR"), "{case}: {got:?}");

                // The next client, over the other transport, at once.
                let started = Instant::now();
                let mut next = Transport::open(&server, !websocket).await.unwrap();
                let frames = "CONNECT\naccept-version:1.2\nhost:/\n\n\0\
                    SUBSCRIBE\nid:9\ndestination:/queue/testfile\nreceipt:r\n\n\0";
                assert!(next.write(frames.as_bytes()).await);
                let answer = read_until(&mut next, "receipt-id:r", Duration::from_secs(1)).await;
                assert!(answer.starts_with("CONNECTED\n"), "{case}: {answer:?}");
                assert!(answer.contains("receipt-id:r"), "{case}: {answer:?}");
                assert!(started.elapsed() < Duration::from_secs(1), "{case}");

                // Delivered before the UNSUBSCRIBE took effect, or still queued for the next
                // consumer: once, either way. On one shard the SEND is routed while the
                // subscription exists, so the client gets it.
                let mut later = match answer.contains("this is a test") {
                    true => answer,
                    false => {
                        read_until(&mut next, "this is a test", Duration::from_millis(500)).await
                    }
                };
                // Neither has it yet: on a busy machine the first client's MESSAGE, or the
                // message's way back to the queue, can take longer than the windows above.
                // Waiting on both tells late from lost.
                if !got.contains("this is a test") && !later.contains("this is a test") {
                    got += &read_until(&mut client, "this is a test", Duration::from_secs(3)).await;
                    later += &read_until(&mut next, "this is a test", Duration::from_secs(1)).await;
                }
                let copies = [&got, &later]
                    .iter()
                    .filter(|text| text.contains("this is a test"))
                    .count();
                assert_eq!(copies, 1, "{case}: {got:?} then {later:?}");
                if shards == "1" {
                    assert!(got.contains("MESSAGE\n"), "{case}: {got:?}");
                }
                // The next client's subscription ends before the next round's SEND: a
                // consumer whose connection is only closing could be handed that message, and
                // under auto ack a MESSAGE written to a socket its client has dropped is gone.
                assert!(next.write(b"UNSUBSCRIBE\nid:9\nreceipt:u\n\n\0").await);
                let ended = read_until(&mut next, "receipt-id:u", Duration::from_secs(5)).await;
                assert!(ended.contains("receipt-id:u"), "{case}: {ended:?}");
            }
        }
    }
}
