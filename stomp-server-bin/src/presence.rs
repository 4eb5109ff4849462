//! Who is in each room of the chat, built on the application's session hook alone: a session
//! that subscribes to `/chat/ROOM` joins the room under its user's name (its login, or its
//! session id without one), and leaves when it unsubscribes or its session ends (DISCONNECT,
//! a closed tab, heart-beats lost). Each change publishes the room's members to
//! `/chat/ROOM.members` as `{"type":"MEMBERS","room":ROOM,"members":[names, sorted]}`: a page
//! that subscribes there before it subscribes to the room hears the list its own arrival
//! makes. (A dot, not a slash: relayed, it is RabbitMQ's topic `chat.ROOM.members`, and a
//! room's subscribers do not get it. So a room whose name ends in `.members` has no list.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::json;
use stomp_server::{Context, Payload, SessionEvent};
use tokio::sync::Mutex;

/// Every room's members, by session.
#[derive(Clone, Debug, Default)]
pub struct Rooms {
    inner: Arc<Mutex<Members>>,
}

#[derive(Debug, Default)]
struct Members {
    /// Each room's sessions and the name each shows.
    rooms: HashMap<String, BTreeMap<String, String>>,
    /// The rooms each session is in.
    sessions: HashMap<String, BTreeSet<String>>,
}

impl Members {
    fn join(&mut self, room: &str, session: &str, name: &str) {
        let members = self.rooms.entry(room.to_owned()).or_default();
        members.insert(session.to_owned(), name.to_owned());
        let rooms = self.sessions.entry(session.to_owned()).or_default();
        rooms.insert(room.to_owned());
    }

    fn leave(&mut self, room: &str, session: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(session);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
        if let Some(rooms) = self.sessions.get_mut(session) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.sessions.remove(session);
            }
        }
    }

    /// The names in `room`, each once, sorted.
    fn names(&self, room: &str) -> Vec<String> {
        let names: BTreeSet<&String> = self
            .rooms
            .get(room)
            .into_iter()
            .flat_map(|m| m.values())
            .collect();
        names.into_iter().cloned().collect()
    }
}

/// The room a destination is, if it is `/chat/ROOM` itself.
fn room_of(destination: &str) -> Option<&str> {
    let room = destination.strip_prefix("/chat/")?;
    let members = room.ends_with(MEMBERS);
    (!room.is_empty() && !room.contains('/') && !members).then_some(room)
}

/// What the members' destination adds to the room's.
const MEMBERS: &str = ".members";

/// The session hook: keeps the rooms' members and publishes each change.
pub(crate) async fn follow(ctx: Context<Rooms>, event: SessionEvent) {
    let session = ctx.session_id().to_owned();
    let name = ctx.user().unwrap_or(&session).to_owned();
    // Held while the lists go out, so that every subscriber hears the changes in order.
    let mut members = ctx.state().inner.lock().await;
    let changed: Vec<String> = match event {
        SessionEvent::Subscribed { destination, .. } => room_of(&destination)
            .map(|room| {
                members.join(room, &session, &name);
                room.to_owned()
            })
            .into_iter()
            .collect(),
        SessionEvent::Unsubscribed { destination, .. } => room_of(&destination)
            .map(|room| {
                members.leave(room, &session);
                room.to_owned()
            })
            .into_iter()
            .collect(),
        SessionEvent::Disconnected(_) => {
            let rooms: Vec<String> = members
                .sessions
                .get(&session)
                .map(|r| r.iter().cloned().collect())
                .unwrap_or_default();
            for room in &rooms {
                members.leave(room, &session);
            }
            rooms
        }
        _ => Vec::new(),
    };
    for room in changed {
        let list = json!({"type": "MEMBERS", "room": room, "members": members.names(&room)});
        let Ok(payload) = Payload::json(&list) else {
            continue;
        };
        if let Err(e) = ctx.publish(format!("/chat/{room}{MEMBERS}"), payload).await {
            tracing::debug!(%room, error = %e, "members not published");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_join_and_leave_and_show_once_per_name() {
        let mut members = Members::default();
        members.join("lobby", "s1", "alice");
        members.join("lobby", "s2", "bob");
        members.join("lobby", "s3", "alice");
        members.join("rust", "s2", "bob");
        assert_eq!(members.names("lobby"), ["alice", "bob"]);
        members.leave("lobby", "s1");
        assert_eq!(members.names("lobby"), ["alice", "bob"]);
        members.leave("lobby", "s3");
        assert_eq!(members.names("lobby"), ["bob"]);
        members.leave("lobby", "s2");
        assert!(!members.rooms.contains_key("lobby"));
        assert_eq!(members.names("rust"), ["bob"]);
        assert_eq!(room_of("/chat/lobby"), Some("lobby"));
        assert_eq!(room_of("/chat/lobby.members"), None);
        assert_eq!(room_of("/chat/lobby/x"), None);
        assert_eq!(room_of("/topic/lobby"), None);
    }
}
