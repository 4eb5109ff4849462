//! The demo application on `/app`: the chat of the classic deployment.
//!
//! A SEND to `/app/chat-api` carries `{"tid":..., "method":"/chat/sendMessage",
//! "params":{"roomId":..., "content":..., ...}}`. Every subscriber of `/chat/ROOM` gets a
//! MESSAGE whose body has `"type":"MESSAGE"`, and the sender alone gets one whose body has
//! `"type":"RESPONSE"`: on its subscription to the SEND's `reply-to` destination if it names
//! one, else on its subscription to `/chat/ROOM`, else on `/user/queue/responses`. Both carry
//! the request's `tid` and `content-type:application/json;charset=UTF-8`.

use std::time::Instant;

use bytes::Bytes;
use serde_json::{Value, json};
use stomp_broker::{Broker, ConnectionId};
use stomp_session::FrameBuf;

/// Where answers go when the sender is subscribed neither to a `reply-to` nor to the room.
pub(crate) const DEFAULT_REPLY_TO: &str = "/user/queue/responses";

const JSON: [(&str, &str); 1] = [("content-type", "application/json;charset=UTF-8")];

/// Acts on a SEND to an application destination.
pub(crate) fn on_app_message(
    broker: &mut Broker,
    now: Instant,
    connection: ConnectionId,
    destination: &str,
    frame: &FrameBuf,
) {
    let reply_to = frame.header("reply-to").map(|r| r.into_owned());
    let (answer, room) = match (destination, serde_json::from_slice::<Value>(frame.body())) {
        ("/app/chat-api", Ok(request)) => handle(broker, now, &request),
        ("/app/chat-api", Err(e)) => (
            json!({"type": "RESPONSE", "tid": null, "error": format!("invalid JSON: {e}")}),
            None,
        ),
        (other, _) => (
            json!({"type": "RESPONSE", "tid": null, "error": format!("no application at {other}")}),
            None,
        ),
    };
    let body = Bytes::from(answer.to_string());
    let candidates = reply_to
        .into_iter()
        .chain(room.map(|room| format!("/chat/{room}")))
        .chain([DEFAULT_REPLY_TO.to_owned()]);
    for reply_to in candidates {
        if broker.reply(now, connection, &reply_to, &JSON, body.clone()) > 0 {
            return;
        }
    }
    tracing::debug!(
        connection,
        "answer not delivered: no subscription to reply on"
    );
}

/// Carries out one request; returns the answer for its sender, and the room it was about.
fn handle(broker: &mut Broker, now: Instant, request: &Value) -> (Value, Option<String>) {
    let tid = request.get("tid").cloned().unwrap_or(Value::Null);
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    match method {
        "/chat/sendMessage" => {
            let Some(room) = params.get("roomId").and_then(room_name) else {
                let error =
                    json!({"type": "RESPONSE", "tid": tid, "error": "params.roomId is required"});
                return (error, None);
            };
            let message =
                json!({"type": "MESSAGE", "tid": tid, "method": method, "params": params});
            let id = broker.publish(
                now,
                &format!("/chat/{room}"),
                &JSON,
                Bytes::from(message.to_string()),
            );
            let response = json!({"type": "RESPONSE", "tid": tid, "result": {"messageId": id}});
            (response, Some(room))
        }
        other => {
            let error = json!({"type": "RESPONSE", "tid": tid, "error": format!("unknown method {other:?}")});
            (error, None)
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
