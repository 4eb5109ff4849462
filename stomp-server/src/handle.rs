//! [`Handle`]: the application's way to the broker from anywhere (a handler, a REST route, a
//! timer task), as Spring's `SimpMessagingTemplate` is.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use stomp_broker::{ConnectionId, owner_of};
use tokio::sync::{mpsc, oneshot};

use crate::channel::{Command, SessionCommand, ToHub, Whom};
use crate::error::{PublishError, Stopped};
use crate::message::Payload;
use crate::stats::{Refusals, Stats};
use crate::watchdog::Progress;

/// How long [`Handle::stats`] waits for a broker task: one that is stuck is reported as such
/// (`stalled_shards`) rather than waited for.
const STATS_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Publishes to broker destinations and sends to users. Cheap to clone, `Send + Sync`; every
/// clone reaches the same server. Each call waits for the broker to have taken the message
/// (with [shards](crate::ServerBuilder::shards), the destination's owner), so messages sent
/// through one handle are delivered in the order they were sent.
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
    /// Every shard's broker task.
    hubs: Arc<[mpsc::Sender<ToHub>]>,
    /// The shard whose connections this handle answers ([`reply`](Self::reply)).
    home: usize,
    /// Relay mode: each shard is a node of the relay, and one of them reaches a user's
    /// sessions on all of them.
    relayed: bool,
    /// Each broker task's progress, as the watchdog sees it.
    progress: Arc<[Arc<Progress>]>,
    /// What the endpoint refused.
    refusals: Arc<Refusals>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// The inbox of the handle's own shard.
    pub(crate) fn inbox(&self) -> mpsc::Sender<ToHub> {
        self.hubs[self.home].clone()
    }

    pub(crate) fn new(
        hubs: Arc<[mpsc::Sender<ToHub>]>,
        relayed: bool,
        progress: Arc<[Arc<Progress>]>,
    ) -> Handle {
        Handle {
            hubs,
            home: 0,
            relayed,
            progress,
            refusals: Arc::default(),
        }
    }

    /// Counts, for its figures, what the endpoint refuses.
    pub(crate) fn with_refusals(mut self, refusals: Arc<Refusals>) -> Handle {
        self.refusals = refusals;
        self
    }

    /// The same handle, answering the connections of shard `home`.
    pub(crate) fn at(&self, home: usize) -> Handle {
        Handle {
            home,
            ..self.clone()
        }
    }

    /// Asks broker task `shard` something and waits for the answer.
    async fn ask<T>(
        &self,
        shard: usize,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Stopped> {
        let (done, answer) = oneshot::channel();
        self.hubs[shard]
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
        let owner = owner_of(&destination, self.hubs.len());
        self.ask(owner, |done| Command::Publish {
            destination,
            payload,
            done,
        })
        .await?
    }

    /// Sends to every session of `user` subscribed to its user destination for `destination`:
    /// `send_to_user("alice", "/queue/x", ..)` reaches alice's subscriptions to
    /// `/user/queue/x`, and nobody else. Returns how many subscriptions it reached on this
    /// node (in relay mode, on the handle's shard, which reaches the node's other shards as it
    /// does other nodes); in relay mode her sessions on other nodes get it too, through the other broker
    /// (and while that is away it fails with [`PublishError::BrokerUnavailable`]).
    pub async fn send_to_user(
        &self,
        user: impl Into<String>,
        destination: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Result<usize, PublishError> {
        let (user, destination, payload) = (user.into(), destination.into(), payload.into());
        // Her sessions may be on any shard; in relay mode, one shard reaches the others
        // through the other broker.
        let shards = if self.relayed {
            self.home..self.home + 1
        } else {
            0..self.hubs.len()
        };
        let mut reached = 0;
        for shard in shards {
            let (user, destination, payload) = (user.clone(), destination.clone(), payload.clone());
            reached += self
                .ask(shard, |done| Command::SendToUser {
                    user,
                    destination,
                    payload,
                    done,
                })
                .await??;
        }
        Ok(reached)
    }

    /// Relay mode: whether the relay's connections to the other broker are up now (`None`
    /// without a relay): those of the shared topic subscriptions and of the users' watches,
    /// and the system connection of the publishes until it first connects. A publish the
    /// broker refuses ends the system connection for a moment without making the relay
    /// unavailable: only the publishes fail meanwhile.
    pub async fn relay_available(&self) -> Result<Option<bool>, Stopped> {
        let mut available = None;
        for shard in 0..self.hubs.len() {
            let here = self
                .ask(shard, |done| Command::RelayAvailable { done })
                .await?;
            available = all_up(available, here);
        }
        Ok(available)
    }

    /// What the server holds now and has done since it started (with shards, the sum of
    /// theirs).
    ///
    /// A shard whose broker task is stuck is not waited for (more than a second): it is
    /// named in [`Stats::stalled_shards`] and its figures are left out.
    pub async fn stats(&self) -> Result<Stats, Stopped> {
        let mut stats = Stats::default();
        for shard in 0..self.hubs.len() {
            let progress = self.progress.get(shard);
            stats.stalls += progress.map_or(0, |p| p.stalls());
            let stalled = progress.is_some_and(|p| p.is_stalled());
            let ask = self.ask(shard, |done| Command::Stats { done });
            let answer = if stalled {
                None
            } else {
                tokio::time::timeout(STATS_WAIT, ask).await.ok()
            };
            let Some(answer) = answer else {
                stats.stalled_shards.push(shard);
                continue;
            };
            let Stats {
                broker,
                queues,
                relay_available,
                ..
            } = answer?;
            stats.broker += broker;
            stats.queues.extend(queues);
            stats.relay_available = all_up(stats.relay_available, relay_available);
        }
        stats.queues.sort();
        stats.origins_refused = self.refusals.origin.load(Ordering::Relaxed);
        stats.peers_refused = self.refusals.peer.load(Ordering::Relaxed);
        Ok(stats)
    }

    /// Asks every shard about its sessions, and gathers the answers.
    async fn ask_sessions<T>(
        &self,
        command: impl Fn(oneshot::Sender<T>) -> SessionCommand,
    ) -> Result<Vec<T>, Stopped> {
        let mut answers = Vec::with_capacity(self.hubs.len());
        for shard in 0..self.hubs.len() {
            answers.push(
                self.ask(shard, |done| Command::Sessions(command(done)))
                    .await?,
            );
        }
        Ok(answers)
    }

    /// Every user with a session on this server, and how many sessions each has, by name.
    pub async fn users(&self) -> Result<Vec<(String, usize)>, Stopped> {
        let mut users: Vec<(String, usize)> = Vec::new();
        for shard in self
            .ask_sessions(|done| SessionCommand::Users { done })
            .await?
        {
            users.extend(shard);
        }
        users.sort();
        // A user's sessions may be on several shards.
        users.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1 += later.1;
            }
            same
        });
        Ok(users)
    }

    /// The ids of `user`'s sessions (as CONNECTED's `session` header gave them).
    pub async fn sessions_of(&self, user: &str) -> Result<Vec<String>, Stopped> {
        let answers = self
            .ask_sessions(|done| SessionCommand::SessionsOf {
                user: user.to_owned(),
                done,
            })
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// The subscriptions of session `session` (subscription id and destination), or `None`
    /// when no such session is open.
    pub async fn subscriptions_of(
        &self,
        session: &str,
    ) -> Result<Option<Vec<(String, String)>>, Stopped> {
        let answers = self
            .ask_sessions(|done| SessionCommand::SubscriptionsOf {
                session: session.to_owned(),
                done,
            })
            .await?;
        Ok(answers.into_iter().flatten().next())
    }

    /// The subscriptions to `destination` as subscribed (a pattern counts under its
    /// pattern), as session and subscription id, on every shard; its length is the count.
    pub async fn subscribers_of(
        &self,
        destination: &str,
    ) -> Result<Vec<(String, String)>, Stopped> {
        let answers = self
            .ask_sessions(|done| SessionCommand::SubscribersOf {
                destination: destination.to_owned(),
                done,
            })
            .await?;
        let mut all: Vec<(String, String)> = answers.into_iter().flatten().collect();
        all.sort();
        Ok(all)
    }

    /// Sends to session `session` alone, on its own subscriptions to `destination` (a
    /// `/user/queue/...` of its own, or any destination it subscribed to); how many
    /// subscriptions it reached (0 when the session is not open or holds none there).
    pub async fn send_to_session(
        &self,
        session: &str,
        destination: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Result<usize, Stopped> {
        let (destination, payload) = (destination.into(), payload.into());
        let answers = self
            .ask_sessions(|done| SessionCommand::SendTo {
                session: session.to_owned(),
                destination: destination.clone(),
                payload: payload.clone(),
                done,
            })
            .await?;
        Ok(answers.into_iter().flatten().sum())
    }

    /// Closes session `session` with an ERROR carrying `message` (its hook hears
    /// [`Ending::Kicked`](crate::Ending::Kicked)); whether it was open.
    pub async fn close_session(&self, session: &str, message: &str) -> Result<bool, Stopped> {
        let whom = Whom::Session(session.to_owned());
        Ok(self.close(whom, message).await? > 0)
    }

    /// Closes every session of `user` with an ERROR carrying `message` (log out
    /// everywhere); how many it closed.
    pub async fn close_user(&self, user: &str, message: &str) -> Result<usize, Stopped> {
        self.close(Whom::User(user.to_owned()), message).await
    }

    async fn close(&self, whom: Whom, message: &str) -> Result<usize, Stopped> {
        let answers = self
            .ask_sessions(|done| SessionCommand::Close {
                whom: whom.clone(),
                message: message.to_owned(),
                done,
            })
            .await?;
        Ok(answers.into_iter().sum())
    }

    /// Sends to `connection`'s own subscriptions to `destination`; how many it reached.
    pub(crate) async fn reply(
        &self,
        connection: ConnectionId,
        destination: String,
        payload: Payload,
    ) -> Result<usize, Stopped> {
        self.ask(self.home, |done| Command::Reply {
            connection,
            destination,
            payload,
            done,
        })
        .await
    }

    /// Closes `connection` with an ERROR carrying `message`.
    pub(crate) async fn fail(&self, connection: ConnectionId, message: String) {
        let _ = self.hubs[self.home]
            .send(ToHub::Command(Command::Fail {
                connection,
                message,
            }))
            .await;
    }
}

/// Whether every shard's relay is up, from what is known so far and one more shard's answer
/// (`None`: no relay).
fn all_up(so_far: Option<bool>, shard: Option<bool>) -> Option<bool> {
    shard.map(|up| up && so_far.unwrap_or(true))
}
