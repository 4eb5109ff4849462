//! The demo application on `/app`: the chat of the classic deployment.
//!
//! A SEND to `/app/chat-api` carries `{"tid":..., "method":"/chat/sendMessage",
//! "params":{"roomId":..., "content":..., ...}}`. The sender gets a MESSAGE whose body has
//! `"type":"RESPONSE"` on its subscription to the SEND's `reply-to` destination (by default
//! `/user/queue/responses`), and every subscriber of `/chat/ROOM` gets one whose body has
//! `"type":"MESSAGE"`; both carry the request's `tid`.

use std::time::Instant;

use bytes::Bytes;
use serde_json::{Value, json};
use stomp_broker::{Broker, ConnectionId};
use stomp_session::FrameBuf;

/// Where answers go unless the SEND names a `reply-to`.
pub(crate) const DEFAULT_REPLY_TO: &str = "/user/queue/responses";

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

/// Acts on a SEND to an application destination.
pub(crate) fn on_app_message(
    broker: &mut Broker,
    now: Instant,
    connection: ConnectionId,
    destination: &str,
    frame: &FrameBuf,
) {
    let reply_to = frame
        .header("reply-to")
        .map(|r| r.into_owned())
        .unwrap_or_else(|| DEFAULT_REPLY_TO.to_owned());
    let answer = match (destination, serde_json::from_slice::<Value>(frame.body())) {
        ("/app/chat-api", Ok(request)) => handle(broker, now, &request),
        ("/app/chat-api", Err(e)) => {
            json!({"type": "RESPONSE", "tid": null, "error": format!("invalid JSON: {e}")})
        }
        (other, _) => {
            json!({"type": "RESPONSE", "tid": null, "error": format!("no application at {other}")})
        }
    };
    let reached = broker.reply(
        now,
        connection,
        &reply_to,
        &JSON,
        Bytes::from(answer.to_string()),
    );
    if reached == 0 {
        tracing::debug!(connection, %reply_to, "answer not delivered: no subscription to the reply destination");
    }
}

/// Carries out one request and returns the answer for its sender.
fn handle(broker: &mut Broker, now: Instant, request: &Value) -> Value {
    let tid = request.get("tid").cloned().unwrap_or(Value::Null);
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    match method {
        "/chat/sendMessage" => {
            let Some(room) = params.get("roomId").and_then(room_name) else {
                return json!({"type": "RESPONSE", "tid": tid, "error": "params.roomId is required"});
            };
            let message =
                json!({"type": "MESSAGE", "tid": tid, "method": method, "params": params});
            let id = broker.publish(
                now,
                &format!("/chat/{room}"),
                &JSON,
                Bytes::from(message.to_string()),
            );
            json!({"type": "RESPONSE", "tid": tid, "result": {"messageId": id}})
        }
        other => {
            json!({"type": "RESPONSE", "tid": tid, "error": format!("unknown method {other:?}")})
        }
    }
}

/// A room id as a destination segment: a string or a number, without `/`.
fn room_name(value: &Value) -> Option<String> {
    let name = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!name.is_empty() && !name.contains('/')).then_some(name)
}
