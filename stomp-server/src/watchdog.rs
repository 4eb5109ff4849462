//! Whether each broker task keeps coming back to its loop. A broker task that does not (a
//! handler or hook that blocks it, a bug) would otherwise wedge its shard in silence: every
//! client of the shard waits, and nothing says why. Each task says what it serves and since
//! when; a thread of its own (it must not need the runtime, whose workers a stuck task may
//! hold) checks, logs an error naming the shard and what it was serving once the task has
//! been away longer than the stall timeout, and again when it is back.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use stomp_broker::ConnectionId;

/// What a broker task can be busy with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Work {
    Open,
    Input,
    Eof,
    Fail,
    Timeout,
    Written,
    Gone,
    Command,
    Worked,
    Shutdown,
    Peer,
    Relay,
    /// The journal's progress.
    Journal,
    /// The sweep for expired messages.
    Expiry,
    /// Handing the connections their output.
    Output,
    Summary,
}

impl Work {
    const ALL: [Work; 16] = [
        Work::Open,
        Work::Input,
        Work::Eof,
        Work::Fail,
        Work::Timeout,
        Work::Written,
        Work::Gone,
        Work::Command,
        Work::Worked,
        Work::Shutdown,
        Work::Peer,
        Work::Relay,
        Work::Journal,
        Work::Expiry,
        Work::Output,
        Work::Summary,
    ];

    fn name(self) -> &'static str {
        match self {
            Work::Open => "a new connection",
            Work::Input => "a client's input",
            Work::Eof => "a client's close",
            Work::Fail => "a transport's failure",
            Work::Timeout => "a connection's deadline",
            Work::Written => "a write report",
            Work::Gone => "a connection's end",
            Work::Command => "an application's command",
            Work::Worked => "a handler's end",
            Work::Shutdown => "the shutdown",
            Work::Peer => "another shard's messages",
            Work::Relay => "the relay",
            Work::Journal => "the journal's progress",
            Work::Expiry => "the sweep for expired messages",
            Work::Output => "the connections' output",
            Work::Summary => "the summary",
        }
    }
}

/// One broker task's progress, shared with the watchdog.
#[derive(Debug)]
pub(crate) struct Progress {
    origin: Instant,
    /// Milliseconds from `origin`, plus one, at which the task left its loop for work; 0 while
    /// it waits for some.
    busy_since: AtomicU64,
    /// The connection being served, 0 for none.
    connection: AtomicU64,
    /// What is being served, as its place in [`Work::ALL`].
    work: AtomicU8,
    /// Away longer than the stall timeout now.
    stalled: AtomicBool,
    /// Times it was, since the start.
    stalls: AtomicU64,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress {
            origin: Instant::now(),
            busy_since: AtomicU64::new(0),
            connection: AtomicU64::new(0),
            work: AtomicU8::new(0),
            stalled: AtomicBool::new(false),
            stalls: AtomicU64::new(0),
        }
    }

    /// The task leaves its loop for work at `now`.
    pub(crate) fn busy(&self, now: Instant) {
        let since = now.saturating_duration_since(self.origin).as_millis() as u64 + 1;
        self.busy_since.store(since, Ordering::Relaxed);
    }

    /// What the task serves now.
    pub(crate) fn serving(&self, work: Work, connection: Option<ConnectionId>) {
        self.work.store(work as u8, Ordering::Relaxed);
        let connection = connection.map_or(0, ConnectionId::get);
        self.connection.store(connection, Ordering::Relaxed);
    }

    /// The task is back in its loop, waiting for work.
    pub(crate) fn idle(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }

    /// Whether the task has been away longer than the stall timeout.
    pub(crate) fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// Times the task was away longer than the stall timeout, since the start.
    pub(crate) fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// How long the task has been away from its loop, at `now`.
    fn away(&self, now: Instant) -> Option<Duration> {
        match self.busy_since.load(Ordering::Relaxed) {
            0 => None,
            since => {
                let since = self.origin + Duration::from_millis(since - 1);
                Some(now.saturating_duration_since(since))
            }
        }
    }

    /// Compares with the limit at `now`, logging when the task stalls and when it is back.
    fn check(&self, shard: usize, limit: Duration, now: Instant) {
        let away = self.away(now).filter(|away| *away > limit);
        let was = self.stalled.load(Ordering::Relaxed);
        match (away, was) {
            (Some(away), false) => {
                self.stalled.store(true, Ordering::Relaxed);
                self.stalls.fetch_add(1, Ordering::Relaxed);
                let work = Work::ALL
                    .get(usize::from(self.work.load(Ordering::Relaxed)))
                    .map_or("?", |w| w.name());
                let connection = self.connection.load(Ordering::Relaxed);
                tracing::error!(
                    shard,
                    serving = work,
                    connection,
                    away_ms = away.as_millis() as u64,
                    "broker task stalled: not back to its loop within {limit:?}; its clients wait"
                );
            }
            (None, true) => {
                self.stalled.store(false, Ordering::Relaxed);
                tracing::warn!(shard, "broker task back to its loop after a stall");
            }
            _ => {}
        }
    }
}

/// Starts the watchdog of `tasks` (by shard) on a thread of its own; it ends with the last
/// of them.
pub(crate) fn start(tasks: &[Arc<Progress>], limit: Duration) {
    let tasks: Vec<Weak<Progress>> = tasks.iter().map(Arc::downgrade).collect();
    // Often enough that a stall is seen soon after the limit, rarely enough to cost nothing.
    let every = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let watch = move || {
        loop {
            std::thread::sleep(every);
            let now = Instant::now();
            let mut alive = false;
            for (shard, task) in tasks.iter().enumerate() {
                if let Some(task) = task.upgrade() {
                    alive = true;
                    task.check(shard, limit, now);
                }
            }
            if !alive {
                return;
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("stomp-watchdog".into())
        .spawn(watch)
    {
        tracing::warn!(error = %e, "cannot start the watchdog of the broker tasks");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_away_past_the_limit_is_stalled_until_it_is_back() {
        let progress = Progress::new();
        let start = Instant::now();
        let limit = Duration::from_millis(100);
        progress.busy(start);
        progress.serving(Work::Input, None);
        progress.check(0, limit, start + Duration::from_millis(50));
        assert!(!progress.is_stalled());
        progress.check(0, limit, start + Duration::from_millis(500));
        assert!(progress.is_stalled());
        progress.check(0, limit, start + Duration::from_millis(900));
        assert_eq!(progress.stalls(), 1, "one stall, counted once");
        progress.idle();
        progress.check(0, limit, start + Duration::from_millis(1000));
        assert!(!progress.is_stalled());
        assert_eq!(progress.stalls(), 1);
    }
}
