//! [`Handle`]: the application's way to the broker from anywhere (a handler, a REST route, a
//! timer task), as Spring's `SimpMessagingTemplate` is.

use std::fmt;

use stomp_broker::{BrokerStats, ConnectionId};
use tokio::sync::{mpsc, oneshot};

use crate::hub::{Command, ToHub};
use crate::message::Payload;

/// Publishes to broker destinations and sends to users. Cheap to clone, `Send + Sync`; every
/// clone reaches the same server. Each call waits for the broker to have taken the message,
/// so messages sent through one handle are delivered in the order they were sent.
///
/// ```no_run
/// # async fn example(server: stomp_server::Server) {
/// let handle = server.handle();
/// tokio::spawn(async move {
///     let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
///     loop {
///         tick.tick().await;
///         if handle.publish("/topic/clock", "tick").await.is_err() {
///             break; // the server has stopped
///         }
///     }
/// });
/// # }
/// ```
#[derive(Clone)]
pub struct Handle {
    hub: mpsc::Sender<ToHub>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// The server has stopped: nothing more can be sent through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the STOMP server has stopped")
    }
}

impl std::error::Error for Stopped {}

/// Why a message was not published or sent to a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The server has stopped.
    Stopped,
    /// Relay mode: the other broker is away (the server keeps reconnecting); nothing was
    /// sent, so the caller may retry or report it.
    BrokerUnavailable,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Stopped => Stopped.fmt(f),
            PublishError::BrokerUnavailable => f.write_str("the relayed broker is unavailable"),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<Stopped> for PublishError {
    fn from(_: Stopped) -> PublishError {
        PublishError::Stopped
    }
}

/// What the server holds and has done, from [`Handle::stats`]: the figures `/metrics` serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections, subscriptions, queues, and running totals of sessions, frames and
    /// deliveries.
    pub broker: BrokerStats,
    /// Each queue with messages or consumers, and the messages waiting in it, by name.
    pub queues: Vec<(String, usize)>,
    /// Relay mode: whether every connection to the other broker is up (`None` without a
    /// relay).
    pub relay_available: Option<bool>,
}

impl Handle {
    pub(crate) fn new(hub: mpsc::Sender<ToHub>) -> Handle {
        Handle { hub }
    }

    /// Asks the broker task something and waits for the answer.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Stopped> {
        let (done, answer) = oneshot::channel();
        self.hub
            .send(ToHub::Command(command(done)))
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Publishes to a broker destination (such as `/topic/news` or `/chat/lobby`), as a client's
    /// SEND there would; returns the message's id. In relay mode it returns once the other
    /// broker took the message (its RECEIPT), and fails with
    /// [`PublishError::BrokerUnavailable`] at once while that broker is away, or if it did not
    /// take the message.
    pub async fn publish(
        &self,
        destination: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Result<String, PublishError> {
        let (destination, payload) = (destination.into(), payload.into());
        self.ask(|done| Command::Publish {
            destination,
            payload,
            done,
        })
        .await?
    }

    /// Sends to every session of `user` subscribed to its user destination for `destination`:
    /// `send_to_user("alice", "/queue/x", ..)` reaches alice's subscriptions to
    /// `/user/queue/x`, and nobody else. Returns how many subscriptions it reached on this
    /// node; in relay mode her sessions on other nodes get it too, through the other broker
    /// (and while that is away it fails with [`PublishError::BrokerUnavailable`]).
    pub async fn send_to_user(
        &self,
        user: impl Into<String>,
        destination: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Result<usize, PublishError> {
        let (user, destination, payload) = (user.into(), destination.into(), payload.into());
        self.ask(|done| Command::SendToUser {
            user,
            destination,
            payload,
            done,
        })
        .await?
    }

    /// Relay mode: whether every connection to the other broker is up now (`None` without a
    /// relay).
    pub async fn relay_available(&self) -> Result<Option<bool>, Stopped> {
        self.ask(|done| Command::RelayAvailable { done }).await
    }

    /// What the server holds now and has done since it started.
    pub async fn stats(&self) -> Result<Stats, Stopped> {
        self.ask(|done| Command::Stats { done }).await
    }

    /// Sends to `connection`'s own subscriptions to `destination`; how many it reached.
    pub(crate) async fn reply(
        &self,
        connection: ConnectionId,
        destination: String,
        payload: Payload,
    ) -> Result<usize, Stopped> {
        self.ask(|done| Command::Reply {
            connection,
            destination,
            payload,
            done,
        })
        .await
    }

    /// Closes `connection` with an ERROR carrying `message`.
    pub(crate) async fn fail(&self, connection: ConnectionId, message: String) {
        let _ = self
            .hub
            .send(ToHub::Command(Command::Fail {
                connection,
                message,
            }))
            .await;
    }
}
