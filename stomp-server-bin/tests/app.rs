//! Applications on the library, in-process (clients in memory where no socket is needed):
//! handlers by destination, user destinations, subscription handlers, the CONNECT hook,
//! interceptors, failures, slow and panicking handlers, the per-session queue, and `/metrics`
//! after known traffic.

mod common;

use std::time::{Duration, Instant};

use common::peer::{Peer, body};
use stomp_server::{Admit, App, Context, Failure, Failures, Json, Login, Message, Payload, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Starts `app`, its clients connecting in memory.
fn start(app: App) -> Server {
    Server::builder().app(app).start()
}

/// Starts `app` with STOMP over TCP on a free port; the server and its address.
async fn start_tcp(app: App) -> (Server, String) {
    let server = Server::builder().app(app).start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_tcp(listener));
    (server, address)
}

fn echo() -> App {
    App::new().message("/app/echo", |_: Context, m: Message| async move {
        Ok::<_, Failure>(m.text()?.to_owned())
    })
}

#[tokio::test]
async fn user_destinations_reach_every_session_of_the_user_and_nobody_else() {
    let app = App::new().message("/app/dm/{user}", |ctx: Context, m: Message| async move {
        let to = ctx.param("user").unwrap_or_default().to_owned();
        let from = ctx.user().unwrap_or("anonymous").to_owned();
        let text = format!("{from}: {}", m.text()?);
        let reached = ctx.send_to_user(to, "/queue/dm", text).await?;
        Ok::<_, Failure>(format!("reached {reached}"))
    });
    let server = start(app);
    let (mut alice1, connected) = Peer::local(&server, "login:alice\n").await;
    assert_eq!(connected.header("user-name").as_deref(), Some("alice"));
    assert!(
        connected
            .header("session")
            .is_some_and(|s| s.starts_with("session-"))
    );
    let (mut alice2, _) = Peer::local(&server, "login:alice\n").await;
    let (mut bob, _) = Peer::local(&server, "login:bob\n").await;
    for peer in [&mut alice1, &mut alice2, &mut bob] {
        peer.subscribe("dm", "/user/queue/dm").await;
    }
    bob.subscribe("replies", "/user/queue/replies").await;

    // From the application's handle...
    let reached = server
        .handle()
        .send_to_user("alice", "/queue/dm", "from the server")
        .await
        .unwrap();
    assert_eq!(reached, 2);
    for alice in [&mut alice1, &mut alice2] {
        let message = alice.frame().await;
        assert_eq!(message.command().as_str(), "MESSAGE");
        assert_eq!(message.header("subscription").as_deref(), Some("dm"));
        assert_eq!(
            message.header("destination").as_deref(),
            Some("/user/queue/dm")
        );
        assert_eq!(body(&message), "from the server");
    }
    // ...and from a handler, for another user.
    bob.send("SEND\ndestination:/app/dm/alice\n\nhello\0").await;
    let answer = bob.frame().await;
    assert_eq!(answer.header("subscription").as_deref(), Some("replies"));
    assert_eq!(body(&answer), "reached 2");
    for alice in [&mut alice1, &mut alice2] {
        assert_eq!(body(&alice.frame().await), "bob: hello");
    }
    // Bob, subscribed to the same user destination, got none of alice's messages.
    assert!(bob.frame_within(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_subscription_handler_answers_the_subscriber_alone() {
    let app = App::new().subscribe("/app/rooms", |_: Context, m: Message| async move {
        let id = m.header("id").unwrap_or_default().into_owned();
        Ok::<_, Failure>(Json(
            serde_json::json!({"rooms": ["lobby", "rust"], "for": id}),
        ))
    });
    let server = start(app);
    let (mut ann, _) = Peer::local(&server, "").await;
    let (mut ben, _) = Peer::local(&server, "").await;
    ben.subscribe("b", "/app/rooms").await;
    let _ = ben.frame().await;
    ann.subscribe("a", "/app/rooms").await;
    let answer = ann.frame().await;
    assert_eq!(answer.command().as_str(), "MESSAGE");
    assert_eq!(answer.header("subscription").as_deref(), Some("a"));
    assert_eq!(answer.header("destination").as_deref(), Some("/app/rooms"));
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(body(&answer), r#"{"rooms":["lobby","rust"],"for":"a"}"#);
    assert!(ben.frame_within(Duration::from_millis(300)).await.is_none());

    // An application destination nobody answers is refused before the RECEIPT.
    ann.send("SUBSCRIBE\nid:x\ndestination:/app/nothing\nreceipt:r\n\n\0")
        .await;
    let error = ann.frame().await;
    assert_eq!(error.command().as_str(), "ERROR");
    assert_eq!(
        error.header("message").as_deref(),
        Some("no such destination: /app/nothing")
    );
}

#[tokio::test]
async fn a_slow_or_panicking_handler_holds_up_only_its_own_session() {
    let app = echo()
        .message("/app/slow", |_: Context, _: Message| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, Failure>("slow done")
        })
        .message("/app/boom", |_: Context, _: Message| async {
            if true {
                panic!("a bug in a handler");
            }
            Ok::<_, Failure>(())
        });
    let server = start(app);
    let (mut slow, _) = Peer::local(&server, "").await;
    let (mut other, _) = Peer::local(&server, "").await;
    let (mut buggy, _) = Peer::local(&server, "").await;
    for peer in [&mut slow, &mut other] {
        peer.subscribe("r", "/user/queue/replies").await;
    }
    slow.send("SEND\ndestination:/app/slow\n\n\0").await;
    buggy.send("SEND\ndestination:/app/boom\n\n\0").await;
    let error = buggy.frame().await;
    assert_eq!(error.command().as_str(), "ERROR");
    assert_eq!(
        error.header("message").as_deref(),
        Some("internal server error")
    );

    // While the slow handler sleeps and after the panic, another session's round trip is quick.
    for round in 0..3 {
        let started = Instant::now();
        other
            .send(&format!("SEND\ndestination:/app/echo\n\nround {round}\0"))
            .await;
        assert_eq!(body(&other.frame().await), format!("round {round}"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(body(&slow.frame().await), "slow done");
}

#[tokio::test]
async fn a_full_session_queue_holds_the_input_and_loses_nothing() {
    let app =
        App::new()
            .session_queue(1)
            .message("/app/count", |_: Context, m: Message| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, Failure>(m.text()?.to_owned())
            });
    let server = start(app);
    let (mut peer, _) = Peer::local(&server, "").await;
    peer.subscribe("r", "/user/queue/replies").await;
    let frames: String = (0..30)
        .map(|i| format!("SEND\ndestination:/app/count\n\n{i}\0"))
        .collect();
    peer.send(&frames).await;
    for i in 0..30 {
        assert_eq!(body(&peer.frame().await), i.to_string());
    }
}

#[tokio::test]
async fn failures_are_errors_or_replies_as_configured() {
    let fail = |_: Context, _: Message| async { Err::<(), _>(Failure::new("no stock left")) };
    let errors = start(App::new().message("/app/buy", fail));
    let (mut peer, _) = Peer::local(&errors, "").await;
    peer.send("SEND\ndestination:/app/buy\n\n\0").await;
    let error = peer.frame().await;
    assert_eq!(error.command().as_str(), "ERROR");
    assert_eq!(error.header("message").as_deref(), Some("no stock left"));

    let app = App::new()
        .failures(Failures::Reply)
        .message("/app/buy", fail)
        .message("/app/json", |_: Context, m: Message| async move {
            let _: Vec<u32> = m.json()?;
            Ok::<_, Failure>(())
        });
    let replies = start(app);
    let (mut peer, _) = Peer::local(&replies, "").await;
    peer.subscribe("r", "/user/queue/replies").await;
    peer.send("SEND\ndestination:/app/buy\n\n\0").await;
    assert_eq!(body(&peer.frame().await), r#"{"error":"no stock left"}"#);
    // A custom reply-to, and a body that is not the JSON the handler wants.
    peer.subscribe("mine", "/user/queue/mine").await;
    peer.send("SEND\ndestination:/app/json\nreply-to:/user/queue/mine\n\n{}\0")
        .await;
    let answer = peer.frame().await;
    assert_eq!(answer.header("subscription").as_deref(), Some("mine"));
    assert!(body(&answer).starts_with(r#"{"error":"invalid JSON: invalid type: map"#));
}

#[tokio::test]
async fn the_connect_hook_names_the_user_and_interceptors_refuse_before_the_receipt() {
    let app = echo()
        .authenticate(|connect: Login| async move {
            match (connect.login(), connect.passcode()) {
                (Some(login), Some("open sesame")) => Ok(Admit::user(format!("user-{login}"))),
                _ => Err("who are you?".into()),
            }
        })
        .intercept(|inbound| match inbound.frame.header("x-forbidden") {
            Some(_) => Err(format!("{} may not do that", inbound.user.unwrap_or("-")).into()),
            None => Ok(()),
        });
    let server = Server::builder()
        .config(
            stomp_server::BrokerConfig::default()
                .with_login_failure_delay(Duration::from_millis(10)),
        )
        .app(app)
        .start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_tcp(listener));

    let (_, refused) = Peer::connect(&address, "login:ann\npasscode:guess\n").await;
    assert_eq!(refused.command().as_str(), "ERROR");
    assert_eq!(refused.header("message").as_deref(), Some("who are you?"));

    let (mut ann, connected) = Peer::connect(&address, "login:ann\npasscode:open sesame\n").await;
    assert_eq!(connected.header("user-name").as_deref(), Some("user-ann"));
    ann.send("SEND\ndestination:/topic/t\nx-forbidden:1\nreceipt:7\n\n\0")
        .await;
    let error = ann.frame().await;
    assert_eq!(error.command().as_str(), "ERROR");
    assert_eq!(
        error.header("message").as_deref(),
        Some("user-ann may not do that")
    );
    assert_eq!(error.header("receipt-id").as_deref(), Some("7"));
}

/// Reads an HTTP/1.1 response to a GET of `path` on `address`.
async fn get(address: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let (server, address) = start_tcp(App::new()).await;
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_address = http.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_http(http, server.router().merge(server.metrics_router())));

    let (mut reader, _) = Peer::connect(&address, "").await;
    reader.subscribe("0", "/topic/t").await;
    let (mut writer, _) = Peer::connect(&address, "").await;
    writer
        .send("SEND\ndestination:/topic/t\n\n1\0SEND\ndestination:/topic/t\n\n2\0SEND\ndestination:/topic/t\n\n3\0")
        .await;
    writer
        .send("SEND\ndestination:/queue/q\nreceipt:done\n\nwaiting\0")
        .await;
    assert_eq!(writer.frame().await.command().as_str(), "RECEIPT");
    for _ in 0..3 {
        reader.frame().await;
    }
    let (mut leaver, _) = Peer::connect(&address, "").await;
    leaver.send("DISCONNECT\nreceipt:bye\n\n\0").await;
    leaver.frame().await;
    drop(leaver);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let response = get(&http_address, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    for line in [
        "stomp_sessions 2\n",
        "stomp_sessions_opened_total 3\n",
        "stomp_sessions_closed_total 1\n",
        "stomp_sessions_closed_abnormally_total 0\n",
        "stomp_subscriptions 1\n",
        "stomp_deliveries_total 3\n",
        // CONNECT x3, SUBSCRIBE, SEND x4, DISCONNECT.
        "stomp_frames_received_total 9\n",
        // CONNECTED x3, RECEIPT x3, MESSAGE x3.
        "stomp_frames_sent_total 9\n",
        "stomp_queued_messages 1\n",
        "stomp_queue_depth{queue=\"/queue/q\"} 1\n",
        "# TYPE stomp_slow_consumers_closed_total counter\nstomp_slow_consumers_closed_total 0\n",
    ] {
        assert!(response.contains(line), "no {line:?} in {response}");
    }
}

#[tokio::test]
async fn a_handle_publishes_from_outside_any_handler() {
    let server = start(App::new());
    let (mut peer, _) = Peer::local(&server, "").await;
    peer.subscribe("0", "/topic/clock").await;
    let handle = server.handle();
    let id = tokio::spawn(async move {
        handle
            .publish("/topic/clock", Payload::text("tick").header("n", "1"))
            .await
    })
    .await
    .unwrap()
    .unwrap();
    let message = peer.frame().await;
    assert_eq!(message.header("message-id").as_deref(), Some(id.as_str()));
    assert_eq!(message.header("n").as_deref(), Some("1"));
    assert_eq!(
        message.header("content-type").as_deref(),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(body(&message), "tick");
    server.shutdown(Duration::from_secs(1)).await;
    let error = peer.frame().await;
    assert_eq!(
        error.header("message").as_deref(),
        Some("server shutting down")
    );
}
