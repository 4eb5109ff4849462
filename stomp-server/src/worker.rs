//! Where handlers and lifecycle hooks run: one task per session that has sent to the
//! application (or whose life the application follows), taking its jobs one at a time in
//! order, apart from the broker task and from other sessions. A session's queue is bounded;
//! past it, the broker task holds the session's input until the handlers catch up. A handler
//! that panics fails its message, not the server. A worker with nothing to do for
//! [`RETIRE_AFTER`] ends, once the broker task agrees that nothing was given it since: an
//! idle session (a browser that only listens) keeps no task, and its next job starts another.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use stomp_broker::ConnectionId;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::app::{Failures, Hook, Route};
use crate::channel::ToHub;
use crate::context::Context;
use crate::lifecycle::SessionEvent;
use crate::message::Message;

/// How long a worker waits for a job before it offers to end.
const RETIRE_AFTER: Duration = Duration::from_secs(5);

/// One job of a session's worker.
pub(crate) enum Job {
    /// One message for one handler.
    Handle {
        route: Route<()>,
        context: Context,
        message: Message,
    },
    /// One step of the session's life for the application's hook.
    Tell {
        hook: Hook<()>,
        context: Context,
        event: SessionEvent,
    },
}

/// One session's worker, as the broker task sees it.
struct Worker {
    /// Boxed: a queue's first block of slots is allocated with it, for every session with a
    /// worker, and a job inline would make that block several KiB.
    jobs: mpsc::Sender<Box<Job>>,
    /// Jobs that found the queue full, in order; the session's input is held meanwhile. At
    /// most what one read of input held.
    backlog: VecDeque<Box<Job>>,
    /// Set while there is a backlog: the worker reports each job done ([`ToHub::Worked`]).
    wanted: Arc<AtomicBool>,
    /// Jobs put in the queue so far: the worker may end once it has done as many.
    queued: u64,
}

/// Every session's worker.
pub(crate) struct Workers {
    by_connection: HashMap<ConnectionId, Worker>,
    /// Workers started and not yet ended (those of closed sessions finishing their jobs
    /// included).
    running: usize,
    queue: usize,
    failures: Failures,
    hub: mpsc::Sender<ToHub>,
}

impl Workers {
    pub(crate) fn new(queue: usize, failures: Failures, hub: mpsc::Sender<ToHub>) -> Workers {
        Workers {
            by_connection: HashMap::new(),
            running: 0,
            queue,
            failures,
            hub,
        }
    }

    /// Queues a job for `connection`'s worker, starting it if need be; whether the session's
    /// input must now be held.
    pub(crate) fn submit(&mut self, connection: ConnectionId, job: Job) -> bool {
        let running = &mut self.running;
        let worker = self.by_connection.entry(connection).or_insert_with(|| {
            *running += 1;
            let (jobs, inbox) = mpsc::channel(self.queue);
            let wanted = Arc::new(AtomicBool::new(false));
            let run = run(
                inbox,
                connection,
                self.failures,
                wanted.clone(),
                self.hub.clone(),
            );
            tokio::spawn(run);
            Worker {
                jobs,
                backlog: VecDeque::new(),
                wanted,
                queued: 0,
            }
        });
        worker.backlog.push_back(Box::new(job));
        worker.drain()
    }

    /// `connection`'s worker finished a job; whether its input must still be held.
    pub(crate) fn worked(&mut self, connection: ConnectionId) -> bool {
        self.by_connection
            .get_mut(&connection)
            .is_some_and(Worker::drain)
    }

    /// `connection`'s worker has done `done` jobs and waited [`RETIRE_AFTER`] for another: it
    /// ends (its queue is dropped) if that is every job it was given. The broker task is the
    /// queue's only sender, so a worker that was given no more stays idle until it ends, and
    /// the session's next job starts a worker after it: one job at a time, in order.
    pub(crate) fn retire(&mut self, connection: ConnectionId, done: u64) {
        let idle = self
            .by_connection
            .get(&connection)
            .is_some_and(|w| w.backlog.is_empty() && w.queued == done);
        if idle {
            self.by_connection.remove(&connection);
        }
    }

    /// Whether `connection`'s input is held for jobs its worker has no room for yet.
    pub(crate) fn holds(&self, connection: ConnectionId) -> bool {
        self.by_connection
            .get(&connection)
            .is_some_and(|w| !w.backlog.is_empty())
    }

    /// The session is over: its worker finishes what it has and ends.
    pub(crate) fn remove(&mut self, connection: ConnectionId) {
        self.by_connection.remove(&connection);
    }

    /// A worker ended.
    pub(crate) fn ended(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// Whether no worker runs: every job of every session is done.
    pub(crate) fn idle(&self) -> bool {
        self.running == 0
    }
}

impl Worker {
    /// Moves the backlog into the queue while there is room; whether some is left.
    fn drain(&mut self) -> bool {
        while let Some(job) = self.backlog.pop_front() {
            match self.jobs.try_send(job) {
                Ok(()) => self.queued += 1,
                Err(TrySendError::Full(job)) => {
                    self.backlog.push_front(job);
                    // The queue is full, so the worker has a job ahead and will see this.
                    self.wanted.store(true, Ordering::Release);
                    return true;
                }
                // The worker ended (the runtime is shutting down): nothing more runs.
                Err(TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    return false;
                }
            }
        }
        false
    }
}

/// Runs one session's jobs in order until the broker task forgets the session or agrees that
/// it ends idle ([`ToHub::WorkerIdle`]), then says so.
async fn run(
    mut inbox: mpsc::Receiver<Box<Job>>,
    connection: ConnectionId,
    failures: Failures,
    wanted: Arc<AtomicBool>,
    hub: mpsc::Sender<ToHub>,
) {
    let mut done = 0u64;
    loop {
        let job = match tokio::time::timeout(RETIRE_AFTER, inbox.recv()).await {
            Ok(job) => job,
            Err(_) => {
                // Idle: offer to end, then wait for the answer: the queue dropped, or a job
                // given meanwhile.
                if hub.send(ToHub::WorkerIdle(connection, done)).await.is_err() {
                    return;
                }
                inbox.recv().await
            }
        };
        let Some(job) = job else { break };
        match *job {
            Job::Handle {
                route,
                context,
                message,
            } => handle(route, context, message, connection, failures).await,
            Job::Tell {
                hook,
                context,
                event,
            } => {
                let call = AssertUnwindSafe(hook(context, event));
                if call.catch_unwind().await.is_err() {
                    tracing::error!(%connection, "session hook panicked");
                }
            }
        }
        done += 1;
        if wanted.swap(false, Ordering::AcqRel)
            && hub.send(ToHub::Worked(connection)).await.is_err()
        {
            return;
        }
    }
    let _ = hub.send(ToHub::WorkerEnded(connection)).await;
}

/// Runs one handler, and answers or closes as its failure asks: the route's choice, else an
/// answer for bad input, else the application's.
async fn handle(
    route: Route<()>,
    context: Context,
    message: Message,
    connection: ConnectionId,
    failures: Failures,
) {
    let destination = message.destination().to_owned();
    let call = AssertUnwindSafe((route.handler)(context.clone(), message));
    match call.catch_unwind().await {
        Ok(Ok(Some(answer))) => {
            let _ = context.reply(answer).await;
        }
        Ok(Ok(None)) => {}
        Ok(Err(failure)) => {
            tracing::debug!(%connection, %destination, %failure, "handler failed");
            let by_default = if failure.is_bad_input() {
                Failures::Reply
            } else {
                failures
            };
            let chosen = route.failures.unwrap_or(by_default);
            match chosen {
                Failures::Reply => {
                    let _ = context.reply(failure.into_reply()).await;
                }
                Failures::Error => {
                    let message = failure.message().to_owned();
                    context.source.handle.fail(connection, message).await;
                }
            }
        }
        Err(_) => {
            tracing::error!(%connection, %destination, "handler panicked: closing its session");
            let message = "internal server error".to_owned();
            context.source.handle.fail(connection, message).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use stomp_broker::connection_named;

    use super::*;
    use crate::context::Source;
    use crate::handle::Handle;

    /// A job telling the application that the session connected, which records `n` in `seen`.
    fn tell(hub: &mpsc::Sender<ToHub>, seen: &Arc<Mutex<Vec<u32>>>, n: u32) -> Job {
        let seen = seen.clone();
        let hook: Hook<()> = Arc::new(move |_, _| {
            let seen = seen.clone();
            Box::pin(async move { seen.lock().unwrap().push(n) })
        });
        let source = Source {
            handle: Handle::new(Arc::from([hub.clone()]), false, Arc::from([])),
            connection: connection_named("session-1").unwrap(),
            session: Arc::from("session-1"),
            user: None,
            extensions: Arc::default(),
            params: Vec::new(),
            reply_to: String::new(),
            correlation: None,
        };
        Job::Tell {
            hook,
            context: Context::new(source),
            event: SessionEvent::Connected,
        }
    }

    /// What the workers tell the broker task next; a worker that says nothing for a minute of
    /// (paused) time fails the test rather than hanging it.
    async fn next(inbox: &mut mpsc::Receiver<ToHub>) -> Option<ToHub> {
        let waited = tokio::time::timeout(Duration::from_secs(60), inbox.recv()).await;
        waited.expect("nothing from the worker for a minute")
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_ends_when_the_broker_task_agrees_and_the_next_job_starts_another() {
        let (hub, mut inbox) = mpsc::channel(16);
        let mut workers = Workers::new(4, Failures::Reply, hub.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let session = connection_named("session-1").unwrap();
        workers.submit(session, tell(&hub, &seen, 1));
        // Done, and idle for a while: the worker offers to end.
        let offer = next(&mut inbox).await;
        assert!(matches!(offer, Some(ToHub::WorkerIdle(_, 1))), "{offer:?}");
        // A job given before the offer is answered: declined, and the same worker runs it.
        workers.submit(session, tell(&hub, &seen, 2));
        workers.retire(session, 1);
        let offer = next(&mut inbox).await;
        assert!(matches!(offer, Some(ToHub::WorkerIdle(_, 2))), "{offer:?}");
        workers.retire(session, 2);
        let ended = next(&mut inbox).await;
        assert!(matches!(ended, Some(ToHub::WorkerEnded(_))), "{ended:?}");
        workers.ended();
        assert!(workers.idle());
        // The session's next job starts a worker of its own, after the first's.
        workers.submit(session, tell(&hub, &seen, 3));
        let offer = next(&mut inbox).await;
        assert!(matches!(offer, Some(ToHub::WorkerIdle(_, 1))), "{offer:?}");
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
    }
}
