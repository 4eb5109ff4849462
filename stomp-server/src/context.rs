//! [`Context`]: who sent what a handler is handling, the application's state, and how to
//! answer.

use std::fmt;
use std::sync::Arc;

use axum::http::Extensions;

use stomp_broker::ConnectionId;

use crate::error::{PublishError, Stopped};
use crate::handle::Handle;
use crate::message::Payload;
use crate::route::Params;

/// The header a request's id travels in, and its answer's.
const CORRELATION: &str = "correlation-id";

/// What a handler knows besides the message: the session and user it came from, the data the
/// login gave the session, the destination's parameters, the application's state `S`
/// ([`App::with_state`](crate::App::with_state)) and the way back to the broker.
///
/// Cheap to clone: what it knows of the message's origin is shared.
#[derive(Clone)]
pub struct Context<S = ()> {
    pub(crate) source: Arc<Source>,
    pub(crate) state: S,
}

/// Where a message comes from, and where answers go.
pub(crate) struct Source {
    pub(crate) handle: Handle,
    pub(crate) connection: ConnectionId,
    pub(crate) session: Arc<str>,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) extensions: Arc<Extensions>,
    pub(crate) params: Params,
    /// Where [`Context::reply`] answers.
    pub(crate) reply_to: String,
    /// The SEND's `correlation-id`, which answers carry back.
    pub(crate) correlation: Option<String>,
}

impl<S> fmt::Debug for Context<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = &self.source;
        f.debug_struct("Context")
            .field("session", &source.session)
            .field("user", &source.user)
            .field("params", &source.params)
            .field("reply_to", &source.reply_to)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The context of a message from `source`.
    pub(crate) fn new(source: Source) -> Context {
        Context {
            source: Arc::new(source),
            state: (),
        }
    }

    /// The same context with the application's state.
    pub(crate) fn with_state<S>(self, state: S) -> Context<S> {
        Context {
            source: self.source,
            state,
        }
    }
}

impl<S> Context<S> {
    /// The application's state, as [`App::with_state`](crate::App::with_state) gave it.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// What the login put in the session ([`Admit::extension`](crate::Admit::extension)),
    /// the same for every handler of the session.
    pub fn extensions(&self) -> &Extensions {
        &self.source.extensions
    }

    /// The session's id, as CONNECTED gave it to the client (`session` header).
    pub fn session_id(&self) -> &str {
        &self.source.session
    }

    /// The user the session acts as (see [`App::authenticate`](crate::App::authenticate)), if
    /// any.
    pub fn user(&self) -> Option<&str> {
        self.source.user.as_deref()
    }

    /// The value the destination gave parameter `name` of the handler's template: for
    /// `/app/chat/{room}` and `/app/chat/lobby`, `param("room")` is `Some("lobby")`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.source
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The way to the broker, to keep or hand on.
    pub fn handle(&self) -> &Handle {
        &self.source.handle
    }

    /// Where [`reply`](Self::reply) answers: the SEND's `reply-to` header if it has one, else
    /// the application's reply destination ([`App::reply_destination`](crate::App::reply_destination));
    /// for a subscription handler, the subscription's own destination.
    pub fn reply_destination(&self) -> &str {
        &self.source.reply_to
    }

    /// Answers the sender alone on its subscriptions to [`reply_destination`](Self::reply_destination);
    /// returns how many it reached (0 when it holds none there).
    pub async fn reply(&self, payload: impl Into<Payload>) -> Result<usize, Stopped> {
        self.reply_on(self.source.reply_to.clone(), payload).await
    }

    /// Answers the sender alone on its own subscriptions to `destination`, such as the
    /// `/chat/lobby` it subscribed to or a `/user/queue/replies` of its own, leaving every other
    /// subscriber of that destination out; returns how many subscriptions it reached. The
    /// answer carries the SEND's `correlation-id`, if it had one (request and reply).
    pub async fn reply_on(
        &self,
        destination: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Result<usize, Stopped> {
        let mut payload = payload.into();
        if let Some(correlation) = &self.source.correlation {
            if !payload.headers().iter().any(|(n, _)| n == CORRELATION) {
                payload = payload.header(CORRELATION, correlation.as_str());
            }
        }
        self.source
            .handle
            .reply(self.source.connection, destination.into(), payload)
            .await
    }

    /// Publishes to a broker destination; see [`Handle::publish`].
    pub async fn publish(
        &self,
        destination: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Result<String, PublishError> {
        self.source.handle.publish(destination, payload).await
    }

    /// Sends to every session of `user`; see [`Handle::send_to_user`].
    pub async fn send_to_user(
        &self,
        user: impl Into<String>,
        destination: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Result<usize, PublishError> {
        self.source
            .handle
            .send_to_user(user, destination, payload)
            .await
    }
}
