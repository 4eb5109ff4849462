//! One axum server for a REST route and STOMP over WebSocket: `cargo run -p stomp-server
//! --example axum_app`, then connect a STOMP client to ws://127.0.0.1:8080/stomp with the
//! CONNECT header `Authorization: Bearer ann-token`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use stomp_server::{
    Admit, App, Context, Failure, Json, Login, Path, Refused, Server, SessionEvent,
};

/// What every handler and hook shares: who each token logs in.
#[derive(Clone)]
pub(crate) struct Accounts {
    tokens: Arc<HashMap<String, String>>,
}

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

/// Async login from the CONNECT's `Authorization: Bearer` header (a database or JWKS lookup
/// would go here: it runs apart from the broker).
async fn login(login: Login<Accounts>) -> Result<Admit, Refused> {
    let token = login.bearer_token().unwrap_or_default();
    match login.state().tokens.get(token) {
        Some(user) => Ok(Admit::user(user.clone())),
        None => Err("unknown token".into()),
    }
}

/// SEND to /app/rooms/{room}/say: the room's topic hears it, the sender gets an answer.
async fn say(
    ctx: Context<Accounts>,
    Path(room): Path<String>,
    Json(say): Json<Say>,
) -> Result<Json<&'static str>, Failure> {
    let who = ctx.user().unwrap_or("someone");
    ctx.publish(format!("/topic/{room}"), format!("{who}: {}", say.text))
        .await?;
    Ok(Json("said"))
}

/// Presence: everyone subscribed to /topic/presence hears who comes and goes.
async fn presence(ctx: Context<Accounts>, event: SessionEvent) {
    let who = ctx.user().unwrap_or("someone").to_owned();
    let news = match event {
        SessionEvent::Connected => format!("{who} is online"),
        SessionEvent::Disconnected(_) => format!("{who} is offline"),
        _ => return,
    };
    let _ = ctx.publish("/topic/presence", news).await;
}

/// The STOMP server and its application.
pub(crate) fn server() -> Server {
    let tokens = [("ann-token", "ann"), ("bob-token", "bob")];
    let tokens = tokens.map(|(t, u)| (t.to_owned(), u.to_owned()));
    let accounts = Accounts {
        tokens: Arc::new(HashMap::from(tokens)),
    };
    let app = App::with_state(accounts)
        .authenticate(login)
        .message("/app/rooms/{room}/say", say)
        .on_session(presence);
    Server::builder().app(app).start()
}

/// REST and STOMP side by side: POST /api/news publishes to /topic/news.
pub(crate) fn router(server: &Server) -> Router {
    let handle = server.handle();
    let news = post(move |text: String| async move {
        match handle.publish("/topic/news", text).await {
            Ok(id) => (StatusCode::ACCEPTED, id),
            Err(stopped) => (StatusCode::SERVICE_UNAVAILABLE, stopped.to_string()),
        }
    });
    Router::new()
        .route("/api/news", news)
        .route("/stomp", server.endpoint())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let server = server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, router(&server)).await
}
