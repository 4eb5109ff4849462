//! What the application is told of each session's life ([`SessionEvent`]) and why a session
//! ended ([`Ending`]).

use stomp_session::CloseReason;

/// One step of a session's life, as [`App::on_session`](crate::App::on_session) is told.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The session was let in (CONNECTED sent).
    Connected,
    /// It subscribed to a broker destination.
    Subscribed {
        /// The subscription's id, as the client named it.
        id: String,
        /// Its destination.
        destination: String,
    },
    /// It unsubscribed (UNSUBSCRIBE; a session that ends is told [`Disconnected`] alone).
    ///
    /// [`Disconnected`]: SessionEvent::Disconnected
    Unsubscribed {
        /// The subscription's id.
        id: String,
        /// Its destination.
        destination: String,
    },
    /// The session ended: the last event of it.
    Disconnected(Ending),
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// The client sent DISCONNECT.
    Disconnect,
    /// The server sent an ERROR saying this (a protocol error, a refused frame, a handler's
    /// failure, a slow consumer).
    Error(String),
    /// The client fell silent past its heart-beat period.
    HeartBeatLost,
    /// The transport closed without a DISCONNECT (a closed tab, a dropped network).
    TransportClosed,
    /// The application closed it ([`Handle::close_session`](crate::Handle::close_session),
    /// [`Handle::close_user`](crate::Handle::close_user)) with this message.
    Kicked(String),
    /// The server shut down.
    Shutdown,
}

impl Ending {
    /// Why, from the session's reason, and whether the application or a shutdown closed it.
    pub(crate) fn of(reason: &CloseReason, kicked: Option<&str>, shutting_down: bool) -> Ending {
        match reason {
            CloseReason::Disconnected | CloseReason::DisconnectTimedOut => Ending::Disconnect,
            CloseReason::HeartBeatTimedOut => Ending::HeartBeatLost,
            CloseReason::PeerClosed => Ending::TransportClosed,
            CloseReason::Local(message) => match kicked {
                Some(kick) => Ending::Kicked(kick.to_owned()),
                None if shutting_down => Ending::Shutdown,
                None => Ending::Error(message.clone()),
            },
            other => Ending::Error(other.to_string()),
        }
    }
}
