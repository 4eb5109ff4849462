//! The broker task's bridge to the application: a SEND or SUBSCRIBE to an application
//! destination becomes a job for its session's worker, with the [`Context`] its handler gets.

use std::sync::Arc;

use stomp_broker::ConnectionId;
use stomp_session::FrameBuf;

use crate::app::App;
use crate::channel::Client;
use crate::context::Context;
use crate::handle::Handle;
use crate::message::Message;
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
}

impl AppBridge {
    /// A bridge to `app`, its workers reporting to `handle`'s shard.
    pub(crate) fn new(app: Arc<App>, handle: Handle) -> AppBridge {
        let workers = Workers::new(app.queue_size(), app.failure_mode(), handle.inbox());
        AppBridge {
            app,
            workers,
            handle,
        }
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
        let Some((handler, params)) = found else {
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
        let context = Context {
            handle: self.handle.clone(),
            connection,
            session: client.session.clone(),
            user: client.user.clone(),
            params,
            reply_to,
        };
        let message = Message::new(frame, destination);
        let job = Job {
            handler,
            context,
            message,
        };
        self.workers.submit(connection, job)
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
