//! A server with several broker tasks (`shards`), end to end over TCP: connections are dealt
//! to the shards in turn, and nothing a client sees changes. Every subscriber of a topic gets
//! its messages in one order with each publisher's kept; a queue serves consumers on every
//! shard exactly once and takes back what a vanished one held; user destinations, replies,
//! session ids, figures and the `--shards` flag work across shards.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::peer::{Peer, body};
use stomp_server::{App, Context, Failure, Message, Server};
use tokio::net::TcpListener;

/// Starts `app` on `shards` broker tasks with STOMP over TCP on a free port.
async fn start(app: App, shards: usize) -> (Server, String) {
    let server = Server::builder().app(app).shards(shards).start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_tcp(listener));
    (server, address)
}

/// `count` connections, dealt to the shards in turn.
async fn peers(address: &str, count: usize, login: &str) -> Vec<Peer> {
    let mut peers = Vec::new();
    for _ in 0..count {
        peers.push(Peer::connect(address, &format!("login:{login}\n")).await.0);
    }
    peers
}

/// The next `count` MESSAGE bodies `peer` receives.
async fn bodies(peer: &mut Peer, count: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let frame = peer.frame().await;
        assert_eq!(frame.command().as_str(), "MESSAGE", "{frame:?}");
        got.push(body(&frame));
    }
    got
}

#[tokio::test]
async fn every_subscriber_of_a_topic_sees_one_order_with_each_publishers_kept() {
    let (_server, address) = start(App::new(), 2).await;
    let mut subscribers = peers(&address, 4, "sub").await;
    for peer in &mut subscribers {
        peer.subscribe("0", "/topic/race").await;
    }
    let mut publishers = peers(&address, 2, "pub").await;
    const EACH: usize = 300;
    // Both publishers write at once, each in its own task, so that their messages race.
    let tasks: Vec<_> = publishers
        .drain(..)
        .enumerate()
        .map(|(p, mut peer)| {
            tokio::spawn(async move {
                for n in 0..EACH {
                    let frame = format!("SEND\ndestination:/topic/race\n\np{p}-{n}\0");
                    peer.send(&frame).await;
                }
                peer
            })
        })
        .collect();
    let mut seen = Vec::new();
    for peer in &mut subscribers {
        seen.push(bodies(peer, 2 * EACH).await);
    }
    for task in tasks {
        task.await.unwrap();
    }
    for other in &seen[1..] {
        assert_eq!(&seen[0], other, "one order for every subscriber");
    }
    for p in 0..2 {
        let own: Vec<&String> = seen[0]
            .iter()
            .filter(|b| b.starts_with(&format!("p{p}-")))
            .collect();
        let sent: Vec<String> = (0..EACH).map(|n| format!("p{p}-{n}")).collect();
        assert_eq!(
            own,
            sent.iter().collect::<Vec<_>>(),
            "each publisher's order"
        );
    }
}

#[tokio::test]
async fn a_queue_serves_consumers_on_every_shard_once_and_takes_back_what_a_lost_one_held() {
    let (_server, address) = start(App::new(), 2).await;
    let mut consumers = peers(&address, 2, "worker").await;
    for peer in &mut consumers {
        peer.send(
            "SUBSCRIBE\nid:0\ndestination:/queue/jobs\nack:client-individual\nreceipt:r\n\n\0",
        )
        .await;
        assert_eq!(peer.frame().await.command().as_str(), "RECEIPT");
    }
    let (mut publisher, _) = Peer::connect(&address, "login:p\n").await;
    for n in 0..20 {
        publisher
            .send(&format!("SEND\ndestination:/queue/jobs\n\n{n}\0"))
            .await;
    }
    // Each consumer gets its share; the second leaves without acknowledging anything.
    let mut got = Vec::new();
    let mut kept = Vec::new();
    let mut lost = 0;
    for (i, peer) in consumers.iter_mut().enumerate() {
        while let Some(frame) = peer.frame_within(Duration::from_millis(500)).await {
            match i {
                0 => kept.push(frame),
                _ => lost += 1,
            }
        }
    }
    assert_eq!(kept.len() + lost, 20, "each message handed out once");
    assert!(lost > 0 && !kept.is_empty(), "both consumers served");
    drop(consumers.pop());
    let mut first = consumers.pop().unwrap();
    let again = bodies(&mut first, lost).await;
    got.extend(kept.iter().map(body));
    got.extend(again);
    let mut numbers: Vec<usize> = got.iter().map(|b| b.parse().unwrap()).collect();
    numbers.sort();
    assert_eq!(
        numbers,
        (0..20).collect::<Vec<_>>(),
        "none lost, none twice"
    );
}

#[tokio::test]
async fn users_replies_session_ids_and_figures_span_the_shards() {
    let app = App::new().message("/app/echo", |_: Context, m: Message| async move {
        Ok::<_, Failure>(m.text()?.to_owned())
    });
    let (server, address) = start(app, 2).await;
    // Two sessions of alice, on different shards.
    let mut sessions = HashSet::new();
    let mut alice = Vec::new();
    for _ in 0..2 {
        let (mut peer, connected) = Peer::connect(&address, "login:alice\n").await;
        assert!(sessions.insert(connected.header("session").unwrap().into_owned()));
        peer.subscribe("dm", "/user/queue/dm").await;
        peer.subscribe("replies", "/user/queue/replies").await;
        alice.push(peer);
    }
    let reached = server
        .handle()
        .send_to_user("alice", "/queue/dm", "hello")
        .await
        .unwrap();
    assert_eq!(reached, 2);
    for peer in &mut alice {
        assert_eq!(bodies(peer, 1).await, ["hello"]);
        // A handler's answer goes to the sender alone, on its own shard.
        peer.send("SEND\ndestination:/app/echo\n\nping\0").await;
        assert_eq!(bodies(peer, 1).await, ["ping"]);
    }
    let stats = server.handle().stats().await.unwrap();
    assert_eq!(stats.broker.connections, 2);
    assert_eq!(stats.broker.subscriptions, 4);
}

#[test]
fn the_shards_flag_runs_the_server_on_several_broker_tasks() {
    let server = common::Server::start(&["--shards", "3"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut subscribers = peers(&server.tcp, 3, "s").await;
        for peer in &mut subscribers {
            peer.subscribe("0", "/topic/flag").await;
        }
        let (mut publisher, _) = Peer::connect(&server.tcp, "login:p\n").await;
        publisher
            .send("SEND\ndestination:/topic/flag\n\nhi\0")
            .await;
        for peer in &mut subscribers {
            assert_eq!(bodies(peer, 1).await, ["hi"]);
        }
    });
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_stomp-server"))
        .args(["--shards", "0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}
