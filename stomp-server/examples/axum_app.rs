//! One axum server for a REST route and STOMP over WebSocket: `cargo run -p stomp-server
//! --example axum_app`, then connect a STOMP client to ws://127.0.0.1:8080/stomp.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use stomp_server::{App, Context, Failure, Json, Message, Server};

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

/// SEND to /app/rooms/{room}/say: the room's topic hears it, the sender gets an answer.
async fn say(ctx: Context, message: Message) -> Result<Json<&'static str>, Failure> {
    let say: Say = message.json()?;
    let room = ctx.param("room").unwrap_or_default();
    let who = ctx.user().unwrap_or("someone");
    ctx.publish(format!("/topic/{room}"), format!("{who}: {}", say.text))
        .await?;
    Ok(Json("said"))
}

/// The STOMP server and its application.
pub(crate) fn server() -> Server {
    let app = App::new().message("/app/rooms/{room}/say", say);
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
