//! What happens to the connection itself, as a stream: [`Events`] of [`ConnectionEvent`]s.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use stomp_session::{CloseReason, SubscriptionId, Version};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::Error;

/// A connection the client made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The endpoint, as given to the builder.
    pub endpoint: String,
    /// 1 for the first connection, one more after each reconnect.
    pub number: u64,
    /// The version the server chose.
    pub version: Version,
    /// The CONNECTED frame's `server` header.
    pub server: Option<String>,
    /// The CONNECTED frame's `session` header.
    pub session: Option<String>,
}

/// A change in the client's connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The first connection is up.
    Connected(ConnectionInfo),
    /// The connection was lost, for this reason. With a reconnect policy, attempts follow.
    Disconnected(CloseReason),
    /// An attempt to reconnect is about to be made, after `delay`.
    Reconnecting {
        /// 1 for the first attempt after the loss.
        attempt: u32,
        /// The endpoint it tries.
        endpoint: String,
        /// The pause before it.
        delay: Duration,
    },
    /// An attempt failed; another follows unless the policy's attempts are spent.
    AttemptFailed {
        /// Which attempt.
        attempt: u32,
        /// The endpoint it tried.
        endpoint: String,
        /// Why it failed.
        error: Arc<Error>,
    },
    /// Connected again, with every subscription restored.
    Reconnected(ConnectionInfo),
    /// A subscription restored after a reconnect asked the server for the messages it
    /// missed (after the `position` of the last one it got, for a topic that keeps a
    /// history), and the server's history no longer reached back that far: what came is
    /// what was kept, and some messages are lost to this subscriber.
    NotRecovered(SubscriptionId),
    /// The client is closed for good: disconnected, refused past its policy, or left by every
    /// handle.
    Closed(CloseReason),
    /// This stream fell this many events behind and they are gone (it keeps the 64 newest
    /// while it is not read); what it yields next is current.
    Lagged(u64),
}

impl ConnectionEvent {
    /// Whether the event says where the connection stands, so that a stream opened later
    /// starts with it.
    fn is_state(&self) -> bool {
        matches!(
            self,
            ConnectionEvent::Connected(_)
                | ConnectionEvent::Disconnected(_)
                | ConnectionEvent::Reconnected(_)
                | ConnectionEvent::Closed(_)
        )
    }
}

/// Events kept for a stream that is read slowly, before it lags.
const CAPACITY: usize = 64;

/// The client's side of the events: every handle's [`Events`] stream subscribes here.
pub(crate) struct Shared {
    sender: broadcast::Sender<ConnectionEvent>,
    /// The latest event that says where the connection stands. Held while an event is sent,
    /// so that a new stream gets it and then exactly what follows it.
    latest: Mutex<Option<ConnectionEvent>>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            sender: broadcast::channel(CAPACITY).0,
            latest: Mutex::new(None),
        }
    }

    pub(crate) fn publish(&self, event: ConnectionEvent) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if event.is_state() {
            *latest = Some(event.clone());
        }
        // No stream open is no error.
        let _ = self.sender.send(event);
    }

    pub(crate) fn subscribe(&self) -> Events {
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        Events {
            first: latest.clone(),
            receiver: BroadcastStream::new(self.sender.subscribe()),
            closed: false,
        }
    }
}

/// The connection's events, from where it stands when the stream was opened: the first item
/// is the latest state ([`ConnectionEvent::Connected`], `Disconnected`, `Reconnected` or
/// `Closed`), then every change in order. It is a [`Stream`]; [`next`](Self::next) is the same
/// as an inherent method, and cancel-safe. It ends after `Closed`.
pub struct Events {
    first: Option<ConnectionEvent>,
    receiver: BroadcastStream<ConnectionEvent>,
    closed: bool,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// The next event; `None` after the client closed.
    pub async fn next(&mut self) -> Option<ConnectionEvent> {
        StreamExt::next(self).await
    }
}

impl Stream for Events {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
        if self.closed {
            return Poll::Ready(None);
        }
        let next = match self.first.take() {
            Some(first) => Some(first),
            None => match ready!(Pin::new(&mut self.receiver).poll_next(cx)) {
                Some(Ok(event)) => Some(event),
                Some(Err(BroadcastStreamRecvError::Lagged(missed))) => {
                    Some(ConnectionEvent::Lagged(missed))
                }
                None => None,
            },
        };
        self.closed = matches!(next, None | Some(ConnectionEvent::Closed(_)));
        Poll::Ready(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(attempt: u32) -> ConnectionEvent {
        ConnectionEvent::AttemptFailed {
            attempt,
            endpoint: "127.0.0.1:1".into(),
            error: Arc::new(Error::TimedOut),
        }
    }

    #[tokio::test]
    async fn a_stream_starts_where_the_connection_stands_and_a_slow_one_is_told_what_it_missed() {
        let shared = Shared::new();
        shared.publish(ConnectionEvent::Disconnected(CloseReason::PeerClosed));
        let mut events = shared.subscribe();
        // More than the stream keeps while nobody reads it.
        for attempt in 1..=(CAPACITY as u32 + 10) {
            shared.publish(failed(attempt));
        }
        shared.publish(ConnectionEvent::Closed(CloseReason::PeerClosed));
        assert!(matches!(
            events.next().await,
            Some(ConnectionEvent::Disconnected(CloseReason::PeerClosed))
        ));
        assert!(matches!(
            events.next().await,
            Some(ConnectionEvent::Lagged(11))
        ));
        // What is left is the newest, in order, up to the close; then the stream ends.
        let mut attempts = Vec::new();
        loop {
            match events.next().await {
                Some(ConnectionEvent::AttemptFailed { attempt, .. }) => attempts.push(attempt),
                Some(ConnectionEvent::Closed(_)) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(attempts, (12..=CAPACITY as u32 + 10).collect::<Vec<_>>());
        assert!(events.next().await.is_none());
    }
}
