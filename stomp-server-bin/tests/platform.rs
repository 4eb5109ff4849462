//! The application platform through its public API: typed state and extractors, failures per
//! handler, async login from the CONNECT and the WebSocket upgrade, lifecycle hooks, the
//! registry and session control, shutdown with the application, request and reply, and the
//! in-memory test client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use stomp_server::{
    Admit, App, BrokerConfig, Context, Extension, Failure, Failures, Json, Login, Message, Path,
    Server, SessionEvent, State, Transport,
};
use stomp_tokio::{AckMode, Client, Error, SendFrame};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(5);

/// A client of `server` in memory whose requests are answered on `/user/queue/replies`.
async fn local(server: &Server, login: &str) -> Client {
    Client::builder("local")
        .login(login, "")
        .reply_to("/user/queue/replies")
        .connect_with(server.connect_local().unwrap())
        .await
        .unwrap()
}

fn text(message: &stomp_tokio::Message) -> String {
    String::from_utf8_lossy(message.body()).into_owned()
}

async fn ask(client: &Client, destination: &str, body: &str) -> String {
    let reply = client
        .request(SendFrame::new(destination, body.to_owned()), WAIT)
        .await
        .unwrap();
    text(&reply)
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

#[derive(serde::Deserialize)]
struct Seat {
    room: String,
    seat: u32,
}

#[derive(serde::Deserialize)]
struct Order {
    count: u32,
}

async fn count(State(counter): State<Counter>) -> Result<String, Failure> {
    Ok((counter.0.fetch_add(1, Ordering::SeqCst) + 1).to_string())
}

async fn book(
    ctx: Context<Counter>,
    Path(seat): Path<Seat>,
    Json(order): Json<Order>,
) -> Result<Json<serde_json::Value>, Failure> {
    let booked = ctx.state().0.load(Ordering::SeqCst);
    Ok(Json(serde_json::json!({
        "room": seat.room, "seat": seat.seat, "count": order.count, "counter": booked
    })))
}

async fn strict(_: Context<Counter>, _: Message) -> Result<(), Failure> {
    Err(Failure::new("strictly refused"))
}

#[tokio::test]
async fn state_extractors_and_failures_per_handler() {
    let app = App::with_state(Counter::default())
        .message("/app/count", count)
        .message("/app/book/{room}/{seat}", book)
        .message_with("/app/strict", Failures::Error, strict);
    let server = Server::builder().app(app).start();
    let client = local(&server, "ann").await;
    assert_eq!(ask(&client, "/app/count", "").await, "1");
    assert_eq!(ask(&client, "/app/count", "").await, "2");
    let booked = ask(&client, "/app/book/lobby/12", r#"{"count":3}"#).await;
    assert_eq!(
        booked,
        r#"{"room":"lobby","seat":12,"count":3,"counter":2}"#
    );
    // Bad input is answered, and the session goes on.
    let bad_body = ask(&client, "/app/book/lobby/12", "{").await;
    assert!(
        bad_body.starts_with(r#"{"error":"invalid JSON"#),
        "{bad_body}"
    );
    let bad_path = ask(&client, "/app/book/lobby/twelve", r#"{"count":1}"#).await;
    assert!(
        bad_path.contains("/app/book/lobby/twelve") && bad_path.contains("twelve"),
        "{bad_path}"
    );
    assert_eq!(ask(&client, "/app/count", "").await, "3");
    // A handler registered to close on failure does, whatever the application's default.
    client.send("/app/strict", "").await.unwrap();
    let reason = tokio::time::timeout(WAIT, client.closed()).await.unwrap();
    assert!(reason.to_string().contains("strictly refused"), "{reason}");
}

#[derive(Clone)]
struct Tier(&'static str);

/// Who a handler runs for, and the session's tier.
async fn whoami(ctx: Context, Extension(tier): Extension<Tier>) -> Result<String, Failure> {
    Ok(format!("{}:{}", ctx.user().unwrap_or("-"), tier.0))
}

#[derive(Clone, Default)]
struct Logins {
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

/// A login that takes 100 ms for `slow`, reads a bearer token, a cookie, or what an axum
/// layer found, and counts how many run at once.
async fn check(login: Login<Logins>) -> Result<Admit, stomp_server::Refused> {
    let logins = login.state().clone();
    let now = logins.running.fetch_add(1, Ordering::SeqCst) + 1;
    logins.most.fetch_max(now, Ordering::SeqCst);
    if login.login() == Some("slow") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    logins.running.fetch_sub(1, Ordering::SeqCst);
    let found: Option<String> = login
        .upgrade()
        .and_then(|parts| parts.extensions.get::<Found>())
        .map(|found| found.0.clone());
    let user = match (login.bearer_token(), login.cookie("sid"), found) {
        (_, _, Some(user)) => user,
        (Some("t-ann"), _, _) => "ann".to_owned(),
        (_, Some("s-bob"), _) => "bob".to_owned(),
        _ => match login.login() {
            Some("eve") | None => return Err("who are you?".into()),
            Some(other) => other.to_owned(),
        },
    };
    let tier = match login.transport() {
        Transport::WebSocket => "web",
        _ => "gold",
    };
    Ok(Admit::user(user).extension(Tier(tier)))
}

/// What an axum middleware found about the upgrade's user.
#[derive(Clone)]
struct Found(String);

async fn authenticate_upgrade(mut request: Request, next: Next) -> Response {
    if let Some(user) = request.headers().get("x-proxy-user").cloned() {
        let user = user.to_str().unwrap_or_default().to_owned();
        request.extensions_mut().insert(Found(user));
    }
    next.run(request).await
}

#[tokio::test]
async fn async_login_waits_alone_and_sees_the_connect_and_the_upgrade() {
    let logins = Logins::default();
    let app = App::with_state(logins.clone())
        .authenticate(check)
        .logins(2)
        .message("/app/whoami", |ctx: Context<Logins>| async move {
            let tier = ctx.extensions().get::<Tier>().map_or("-", |t| t.0);
            Ok::<_, Failure>(format!("{}:{}", ctx.user().unwrap_or("-"), tier))
        });
    let config = BrokerConfig::default().with_login_failure_delay(Duration::from_millis(10));
    let server = Server::builder().config(config).app(app).start();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_address = tcp.local_addr().unwrap().to_string();
    tokio::spawn(server.serve_tcp(tcp));

    // A bearer token in CONNECT.
    let ann = Client::builder(&tcp_address)
        .connect_header("Authorization", "Bearer t-ann")
        .reply_to("/user/queue/replies")
        .connect()
        .await
        .unwrap();
    assert_eq!(ask(&ann, "/app/whoami", "").await, "ann:gold");

    // Slow logins run apart: ann's round trips stay quick meanwhile, and at most two logins
    // run at once.
    let slow: Vec<_> = (0..6)
        .map(|_| {
            let address = tcp_address.clone();
            tokio::spawn(async move {
                Client::builder(address)
                    .login("slow", "")
                    .connect()
                    .await
                    .unwrap()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(ask(&ann, "/app/whoami", "").await, "ann:gold");
        slowest = slowest.max(start.elapsed());
    }
    let started = Instant::now();
    for task in slow {
        task.await.unwrap();
    }
    assert!(
        slowest < Duration::from_millis(50),
        "a round trip took {slowest:?} while logins ran"
    );
    assert!(logins.most.load(Ordering::SeqCst) <= 2);
    assert!(
        started.elapsed() > Duration::from_millis(100),
        "logins waited their turn"
    );

    // A refusal's message reaches the client.
    match Client::builder(&tcp_address)
        .login("eve", "")
        .connect()
        .await
    {
        Err(Error::Refused(Some(message))) => assert_eq!(message, "who are you?"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A cookie on the upgrade, and the user an axum layer found.
    let router = Router::new()
        .route("/stomp", server.endpoint())
        .layer(middleware::from_fn(authenticate_upgrade));
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws = format!("ws://{}/stomp", http.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(http, router).await });
    let bob = Client::builder(&ws)
        .ws_header("Cookie", "theme=dark; sid=s-bob")
        .reply_to("/user/queue/replies")
        .connect()
        .await
        .unwrap();
    assert_eq!(ask(&bob, "/app/whoami", "").await, "bob:web");
    let carol = Client::builder(&ws)
        .ws_header("x-proxy-user", "carol")
        .reply_to("/user/queue/replies")
        .connect()
        .await
        .unwrap();
    assert_eq!(ask(&carol, "/app/whoami", "").await, "carol:web");
}

#[tokio::test]
async fn the_session_data_reaches_handlers_as_an_argument() {
    let app = App::new()
        .authenticate(|login: Login| async move {
            let user = login.login().unwrap_or("anon").to_owned();
            Ok(Admit::user(user).extension(Tier("gold")))
        })
        .message("/app/whoami", whoami);
    let server = Server::builder().app(app).start();
    let client = local(&server, "dan").await;
    assert_eq!(ask(&client, "/app/whoami", "").await, "dan:gold");
}

/// Every step the hook heard, as `user event`.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<String>>>);

impl Heard {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    async fn wait_for(&self, line: &str) -> Vec<String> {
        self.wait_until(line, |l| l == line).await
    }

    async fn wait_for_prefix(&self, prefix: &str) -> Vec<String> {
        self.wait_until(prefix, |l| l.starts_with(prefix)).await
    }

    async fn wait_until(&self, what: &str, found: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let heard = self.0.lock().unwrap().clone();
            if heard.iter().any(|l| found(l)) {
                return self.take();
            }
            assert!(Instant::now() < deadline, "never heard {what:?}: {heard:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn hear(ctx: Context<Heard>, event: SessionEvent) {
    let who = ctx.user().unwrap_or("-").to_owned();
    let line = match event {
        SessionEvent::Connected => format!("{who} connected"),
        SessionEvent::Subscribed { id, destination } => format!("{who} +{id} {destination}"),
        SessionEvent::Unsubscribed { id, destination } => format!("{who} -{id} {destination}"),
        SessionEvent::Disconnected(ending) => format!("{who} gone {ending:?}"),
        other => format!("{who} {other:?}"),
    };
    ctx.state().0.lock().unwrap().push(line);
}

#[tokio::test]
async fn hooks_registry_and_session_control_across_shards() {
    let heard = Heard::default();
    let app = App::with_state(heard.clone()).on_session(hear);
    let server = Server::builder().shards(2).app(app).start();
    let handle = server.handle();

    // Two sessions of ann and one of bob, dealt to both shards.
    let ann = local(&server, "ann").await;
    let ann2 = local(&server, "ann").await;
    let bob = local(&server, "bob").await;
    let room_a = ann.subscribe("/topic/room", AckMode::Auto).await.unwrap();
    let _room_b = bob.subscribe("/topic/room", AckMode::Auto).await.unwrap();
    let mut mine = ann2
        .subscribe("/user/queue/notes", AckMode::Auto)
        .await
        .unwrap();
    heard.wait_for("ann +sub-1 /user/queue/notes").await;

    assert_eq!(
        handle.users().await.unwrap(),
        [("ann".to_owned(), 2), ("bob".to_owned(), 1)]
    );
    let sessions = handle.sessions_of("ann").await.unwrap();
    assert_eq!(sessions.len(), 2);
    let room = handle.subscribers_of("/topic/room").await.unwrap();
    assert_eq!(room.len(), 2, "{room:?}");
    let bob_session = handle.sessions_of("bob").await.unwrap().remove(0);
    assert_eq!(
        handle.subscriptions_of(&bob_session).await.unwrap(),
        Some(vec![("sub-1".to_owned(), "/topic/room".to_owned())])
    );
    assert_eq!(handle.subscriptions_of("session-999").await.unwrap(), None);

    // One session of ann's, alone.
    let mut reached = 0;
    for session in &sessions {
        reached += handle
            .send_to_session(session, "/user/queue/notes", "just you")
            .await
            .unwrap();
    }
    assert_eq!(reached, 1);
    let note = tokio::time::timeout(WAIT, mine.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&note), "just you");

    // Unsubscribing and leaving are heard in order.
    drop(room_a);
    heard.wait_for("ann -sub-1 /topic/room").await;
    bob.disconnect().await.unwrap();
    heard.wait_for("bob gone Disconnect").await;

    // Kicked: one session, then every session of a user.
    let kicked = handle.close_session(&sessions[0], "bye now").await.unwrap();
    assert!(kicked);
    heard.wait_for("ann gone Kicked(\"bye now\")").await;
    let carl = local(&server, "carl").await;
    let carl2 = local(&server, "carl").await;
    assert_eq!(handle.close_user("carl", "logged out").await.unwrap(), 2);
    for client in [&carl, &carl2] {
        let reason = tokio::time::timeout(WAIT, client.closed()).await.unwrap();
        assert!(reason.to_string().contains("logged out"), "{reason}");
    }
    let heard_now = heard.wait_for("carl gone Kicked(\"logged out\")").await;
    assert!(
        heard_now.iter().all(|l| !l.starts_with("bob")),
        "{heard_now:?}"
    );
}

#[tokio::test]
async fn a_dropped_transport_is_heard_after_the_sessions_earlier_steps() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let heard = Heard::default();
    let app = App::with_state(heard.clone()).on_session(hear);
    let server = Server::builder().app(app).start();
    let mut stream = server.connect_local().unwrap();
    stream
        .write_all(
            b"CONNECT\naccept-version:1.2\nhost:/\nlogin:eve\n\n\0\
              SUBSCRIBE\nid:news\ndestination:/topic/news\nreceipt:r\n\n\0",
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("RECEIPT") {
        let mut buffer = [0; 1024];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buffer[..n]);
    }
    // Gone without DISCONNECT, as a closed tab is.
    drop(stream);
    let heard = heard.wait_for("eve gone TransportClosed").await;
    assert_eq!(
        heard,
        [
            "eve connected",
            "eve +news /topic/news",
            "eve gone TransportClosed"
        ]
    );
}

#[tokio::test]
async fn shutdown_waits_for_running_handlers_and_the_last_hooks() {
    let heard = Heard::default();
    let app = App::with_state(heard.clone()).on_session(hear).message(
        "/app/slow",
        |ctx: Context<Heard>, _: Message| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            ctx.state().0.lock().unwrap().push("slow done".to_owned());
            Ok::<_, Failure>(())
        },
    );
    let server = Server::builder().app(app).start();
    let client = local(&server, "fay").await;
    client
        .send_with_receipt(SendFrame::new("/app/slow", ""))
        .await
        .unwrap();
    heard.wait_for("fay connected").await;
    server.shutdown(Duration::from_secs(5)).await;
    let heard = heard.take();
    assert_eq!(heard, ["slow done", "fay gone Shutdown"]);
}

#[tokio::test]
async fn request_and_reply_carry_the_correlation_id() {
    let app = App::new().message("/app/echo", |_: Context, m: Message| async move {
        Ok::<_, Failure>(format!("echo {}", m.text()?))
    });
    let server = Server::builder().app(app).start();
    let client = local(&server, "gus").await;
    // Several requests in flight at once each get their own answer.
    let answers = futures_util::future::join_all((0..5).map(|i| {
        let client = client.clone();
        async move {
            let reply = client
                .request(SendFrame::new("/app/echo", format!("{i}")), WAIT)
                .await
                .unwrap();
            assert!(reply.header("correlation-id").is_some());
            text(&reply)
        }
    }))
    .await;
    assert_eq!(answers, ["echo 0", "echo 1", "echo 2", "echo 3", "echo 4"]);
    // Nobody answers: the deadline says so.
    let unanswered = client
        .request(
            SendFrame::new("/topic/void", "?"),
            Duration::from_millis(100),
        )
        .await;
    assert!(matches!(unanswered, Err(Error::TimedOut)), "{unanswered:?}");
}

/// Writes `frames` on a fresh in-memory connection and reads until `until` arrives.
async fn raw(server: &Server, frames: &str, until: &str) -> tokio::io::DuplexStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = server.connect_local().unwrap();
    stream.write_all(frames.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains(until) {
        let mut buffer = [0; 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buffer[..n]);
    }
    stream
}

#[tokio::test]
async fn a_silent_client_and_an_error_are_heard_as_such() {
    let heard = Heard::default();
    let app = App::with_state(heard.clone()).on_session(hear);
    let session = stomp_server::ServerConfig::default()
        .with_heart_beat(stomp_tokio::HeartBeat::from_millis(100, 100));
    let config = BrokerConfig::default().with_session(session);
    let server = Server::builder().config(config).app(app).start();
    // Offers heart-beats every 100 ms, then sends nothing.
    let _silent = raw(
        &server,
        "CONNECT\naccept-version:1.2\nhost:/\nlogin:sid\nheart-beat:100,100\n\n\0",
        "CONNECTED",
    )
    .await;
    heard.wait_for("sid gone HeartBeatLost").await;
    // A frame the server refuses: an ERROR, and the session ends saying why.
    let _broken = raw(
        &server,
        "CONNECT\naccept-version:1.2\nhost:/\nlogin:ida\n\n\0ACK\n\n\0",
        "ERROR",
    )
    .await;
    let heard = heard.wait_for_prefix("ida gone Error(").await;
    assert!(
        heard.iter().any(|l| l.contains("ACK without id")),
        "{heard:?}"
    );
}

#[tokio::test]
async fn a_handler_still_running_past_the_grace_period_is_cancelled() {
    let finished = Arc::new(AtomicUsize::new(0));
    let app = App::with_state(finished.clone()).message(
        "/app/forever",
        |State(finished): State<Arc<AtomicUsize>>| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Failure>(())
        },
    );
    let server = Server::builder().app(app).start();
    let client = local(&server, "hal").await;
    client
        .send_with_receipt(SendFrame::new("/app/forever", ""))
        .await
        .unwrap();
    let start = Instant::now();
    server.shutdown(Duration::from_millis(300)).await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the handler was cancelled"
    );
}
