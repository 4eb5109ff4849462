//! The broker task's bridge to the application: a SEND or SUBSCRIBE to an application
//! destination becomes a job for its session's worker, with the [`Context`] its handler gets;
//! a step of a session's life becomes a job for the application's hook; a CONNECT becomes a
//! login task of its own.

use std::sync::Arc;
use std::time::Instant;

use stomp_broker::ConnectionId;
use stomp_session::{ConnectRequest, FrameBuf, Refused};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::channel::{Client, ToHub};
use crate::context::{Context, Source};
use crate::handle::Handle;
use crate::lifecycle::SessionEvent;
use crate::login::Login;
use crate::message::Message;
use crate::route::Params;
use crate::worker::{Job, Workers};

/// Which handlers a frame to an application destination is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mapping {
    /// A SEND: `message` handlers (Spring's `@MessageMapping`).
    Message,
    /// A SUBSCRIBE: `subscribe` handlers (Spring's `@SubscribeMapping`).
    Subscribe,
}

/// The application, and each session's worker running its handlers.
pub(crate) struct AppBridge {
    app: Arc<App>,
    workers: Workers,
    /// The application's way in, given to every handler's context.
    handle: Handle,
    /// One permit per login running, across shards.
    logins: Arc<Semaphore>,
}

impl AppBridge {
    /// A bridge to `app`, its workers reporting to `handle`'s shard, its logins sharing
    /// `logins`.
    pub(crate) fn new(app: Arc<App>, handle: Handle, logins: Arc<Semaphore>) -> AppBridge {
        let workers = Workers::new(app.queue_size(), app.failure_mode(), handle.inbox());
        AppBridge {
            app,
            workers,
            handle,
            logins,
        }
    }

    /// The context of a job of `client`'s.
    fn context(
        &self,
        client: &Client,
        connection: ConnectionId,
        params: Params,
        reply_to: String,
        correlation: Option<String>,
    ) -> Context {
        Context::new(Source {
            handle: self.handle.clone(),
            connection,
            session: client.session.clone(),
            user: client.user.clone(),
            extensions: client.extensions.clone(),
            params,
            reply_to,
            correlation,
        })
    }

    /// Runs the application's login of `request` apart from the broker task, within its
    /// bounds and `deadline`; the verdict comes back as [`ToHub::LoggedIn`].
    pub(crate) fn log_in(
        &self,
        client: &Client,
        connection: ConnectionId,
        request: ConnectRequest,
        deadline: Option<Instant>,
    ) {
        let Some((check, _, timeout)) = self.app.login() else {
            return;
        };
        let login = Login::new(request, client.remote.clone());
        let logins = self.logins.clone();
        let hub = self.handle.inbox();
        let until = tokio::time::Instant::now() + timeout;
        let until = deadline.map_or(until, |d| until.min(d.into()));
        tokio::spawn(async move {
            let decided = tokio::time::timeout_at(until, async move {
                let _permit = logins.acquire_owned().await;
                check(login).await
            });
            let verdict = decided
                .await
                .unwrap_or_else(|_| Err(Refused::new("login not decided in time")));
            let _ = hub.send(ToHub::LoggedIn(connection, verdict)).await;
        });
    }

    /// Tells the application's hook, if any, a step of `client`'s life, on the session's
    /// worker after its jobs so far. True when the worker has a backlog.
    pub(crate) fn tell(
        &mut self,
        client: &Client,
        connection: ConnectionId,
        event: SessionEvent,
    ) -> bool {
        let Some(hook) = self.app.hook() else {
            return false;
        };
        let reply_to = self.app.default_reply_destination().to_owned();
        let context = self.context(client, connection, Params::new(), reply_to, None);
        let job = Job::Tell {
            hook,
            context,
            event,
        };
        self.workers.submit(connection, job)
    }

    /// Whether every worker has ended.
    pub(crate) fn idle(&self) -> bool {
        self.workers.idle()
    }

    /// A worker ended.
    pub(crate) fn ended(&mut self) {
        self.workers.ended();
    }

    /// Hands `frame` to the handler of `destination` on the session's worker. True when the
    /// worker has a backlog, so that the session's input is held until it is worked off.
    pub(crate) fn hand_over(
        &mut self,
        client: &Client,
        connection: ConnectionId,
        destination: String,
        frame: FrameBuf,
        mapping: Mapping,
    ) -> bool {
        let found = match mapping {
            Mapping::Subscribe => self.app.subscribe_handler(&destination),
            Mapping::Message => self.app.message_handler(&destination),
        };
        let Some((route, params)) = found else {
            return false;
        };
        // A subscription is answered on itself; a SEND on its `reply-to`, or the default.
        let reply_to = match mapping {
            Mapping::Subscribe => destination.clone(),
            Mapping::Message => frame
                .header("reply-to")
                .map(|r| r.into_owned())
                .unwrap_or_else(|| self.app.default_reply_destination().to_owned()),
        };
        let correlation = match mapping {
            Mapping::Subscribe => None,
            Mapping::Message => frame.header("correlation-id").map(|c| c.into_owned()),
        };
        let context = self.context(client, connection, params, reply_to, correlation);
        let message = Message::new(frame, destination);
        let job = Job::Handle {
            route,
            context,
            message,
        };
        self.workers.submit(connection, job)
    }

    /// The session's worker, idle after `done` jobs, offers to end.
    pub(crate) fn retire(&mut self, connection: ConnectionId, done: u64) {
        self.workers.retire(connection, done);
    }

    /// A job of the session is done: whether its worker still holds its input.
    pub(crate) fn worked(&mut self, connection: ConnectionId) -> bool {
        self.workers.worked(connection)
    }

    /// Whether the session's worker has a backlog.
    pub(crate) fn holds(&self, connection: ConnectionId) -> bool {
        self.workers.holds(connection)
    }

    /// The session is closed: its worker ends once its jobs are done.
    pub(crate) fn closed(&mut self, connection: ConnectionId) {
        self.workers.remove(connection);
    }
}
