//! The classic chat, as an application on the `stomp-server` library's API alone: what the
//! `stomp-server` binary runs on `/app/`, with its browser page at `/`.
//!
//! A client subscribed to `/chat/ROOM` SENDs `{"tid":..., "method":"/chat/sendMessage",
//! "params":{"roomId":"ROOM", ...}}` to `/app/chat-api`. Every subscriber of `/chat/ROOM` gets
//! a MESSAGE whose body has `"type":"MESSAGE"`, and the sender alone gets one whose body has
//! `"type":"RESPONSE"` (with the published message's id as `result.messageId`, or an `error`):
//! on its subscription to the SEND's `reply-to` destination if it names one, else on its
//! subscription to `/chat/ROOM`, else on `/user/queue/responses`. Both carry the request's
//! `tid` and `content-type:application/json;charset=UTF-8`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use stomp_server::{App, Context, Failure, Message, Payload};

mod presence;
pub use presence::Rooms;

/// Where the RESPONSE goes when the sender is subscribed neither to a `reply-to` nor to the
/// room.
pub const REPLY_DESTINATION: &str = "/user/queue/responses";

/// The stompjs bundle the page loads when the server is not given one to serve.
pub const STOMPJS_CDN: &str =
    "https://cdn.jsdelivr.net/npm/@stomp/stompjs@7.5.0/bundles/stomp.umd.min.js";

/// The chat: its one handler on `/app/chat-api`, and the rooms' members
/// (`/chat/ROOM.members`, see [`Rooms`]).
pub fn app() -> App<Rooms> {
    App::with_state(Rooms::default())
        .reply_destination(REPLY_DESTINATION)
        .message("/app/chat-api", chat_api)
        .on_session(presence::follow)
}

/// A request, as the classic deployment's clients send it.
#[derive(Debug, Deserialize)]
struct Request {
    #[serde(default)]
    tid: Value,
    #[serde(default)]
    method: String,
    #[serde(default)]
    params: Value,
}

async fn chat_api(ctx: Context<Rooms>, message: Message) -> Result<(), Failure> {
    let request: Request = match message.json() {
        Ok(request) => request,
        Err(e) => {
            let answer = json!({"type": "RESPONSE", "tid": null, "error": e.message()});
            return respond(&ctx, &message, None, answer).await;
        }
    };
    let tid = request.tid;
    if request.method != "/chat/sendMessage" {
        let error = format!("unknown method {:?}", request.method);
        let answer = json!({"type": "RESPONSE", "tid": tid, "error": error});
        return respond(&ctx, &message, None, answer).await;
    }
    let Some(room) = request.params.get("roomId").and_then(room_name) else {
        let answer = json!({"type": "RESPONSE", "tid": tid, "error": "params.roomId is required"});
        return respond(&ctx, &message, None, answer).await;
    };
    let broadcast = json!({
        "type": "MESSAGE",
        "tid": tid,
        "method": request.method,
        "params": request.params,
    });
    let destination = format!("/chat/{room}");
    let id = ctx
        .publish(destination.clone(), Payload::json(&broadcast)?)
        .await?;
    let answer = json!({"type": "RESPONSE", "tid": tid, "result": {"messageId": id}});
    respond(&ctx, &message, Some(&destination), answer).await
}

/// Answers the sender: at its `reply-to`, else in the room, else at the reply destination.
async fn respond(
    ctx: &Context<Rooms>,
    message: &Message,
    room: Option<&str>,
    answer: Value,
) -> Result<(), Failure> {
    let payload = Payload::json(&answer)?;
    let reply_to = message.header("reply-to").map(|r| r.into_owned());
    let candidates = reply_to
        .into_iter()
        .chain(room.map(str::to_owned))
        .chain([ctx.reply_destination().to_owned()]);
    for destination in candidates {
        if ctx.reply_on(destination, payload.clone()).await? > 0 {
            return Ok(());
        }
    }
    tracing::debug!(
        session = ctx.session_id(),
        "answer not delivered: no subscription to reply on"
    );
    Ok(())
}

/// A room id as a destination segment: a string or a number, without `/`.
fn room_name(value: &Value) -> Option<String> {
    let name = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!name.is_empty() && !name.contains(['/', '*'])).then_some(name)
}

/// What the chat page may load and reach: its own script and style, stompjs (from this server,
/// or from the CDN it redirects to, checked against its integrity hash either way), and STOMP
/// over WebSocket on its own host. Nothing inline, nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' https://cdn.jsdelivr.net; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The chat page at `/` (with `chat.js` and `chat.css`), which connects to `/stomp` on the same
/// host, and the stompjs bundle it loads at `/vendor/stomp.umd.min.js`: read from `stompjs`, a
/// directory holding stompjs 7.5.0's `stomp.umd.min.js` (such as
/// `node_modules/@stomp/stompjs/bundles`), or else a redirect to the public CDN. The page
/// carries the bundle's integrity hash and a Content-Security-Policy that allows nothing else.
pub fn page(stompjs: Option<PathBuf>) -> Router {
    let csp = [(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)];
    Router::new()
        .route(
            "/",
            get(move || async move { (csp, Html(include_str!("chat.html"))) }),
        )
        .route(
            "/chat.js",
            get(|| async { asset("text/javascript", include_str!("chat.js")) }),
        )
        .route(
            "/chat.css",
            get(|| async { asset("text/css", include_str!("chat.css")) }),
        )
        .route(
            "/vendor/stomp.umd.min.js",
            get(move || bundle(stompjs.clone())),
        )
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

async fn bundle(directory: Option<PathBuf>) -> Response {
    let Some(directory) = directory else {
        return Redirect::temporary(STOMPJS_CDN).into_response();
    };
    match tokio::fs::read(directory.join("stomp.umd.min.js")).await {
        Ok(script) => ([(header::CONTENT_TYPE, "text/javascript")], script).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("stomp.umd.min.js: {e}")).into_response(),
    }
}
