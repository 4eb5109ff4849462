//! The broker connections: each is a task owning a `stomp_tokio::Client` that reconnects for
//! ever; each relayed subscription and each user watched is a task of its own on one of
//! them, so that one waiting for a RECEIPT holds up no other.
//!
//! The broker ends a whole connection over one refused frame (RabbitMQ after any ERROR,
//! ActiveMQ over a header it cannot read), so what one client chose is tried where a refusal
//! costs nobody else: its SENDs and own subscriptions go on its session's own connection
//! ([`Kind::Own`]), and a new shared topic subscription is made first on a connection of its
//! own, for a moment ([`probe`]), and only once the broker took it there on a shared one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use stomp_broker::{ConnectionId, Settlement};
use stomp_session::{AckMode, Refused, SendFrame, SubscriptionId};
use stomp_tokio::{Client, ConnectionEvent, Message, Subscription};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::config::{NODE_HEADER, RelayConfig, USER_DESTINATION_HEADER};
use crate::channel::{FromRelay, ToHub};
use crate::error::PublishError;

/// What a broker connection's task is asked to do, in order.
pub(crate) enum LinkCommand {
    /// Subscribe there for a session's relayed subscription.
    Subscribe(Box<Relayed>),
    /// A SEND, answered once the broker took it (or not).
    Send { from: Origin, frame: SendFrame },
    /// Receive what is sent to `user` from other nodes, until `stop` is dropped.
    Watch {
        user: Arc<str>,
        destination: String,
        stop: mpsc::UnboundedReceiver<()>,
    },
}

/// Whose a relayed SEND is, and who hears the broker's answer.
pub(crate) enum Origin {
    /// A session's: the hub is told, with the RECEIPT the session waits for.
    Session {
        connection: ConnectionId,
        receipt: Option<String>,
    },
    /// [`Handle::publish`](crate::Handle::publish): answered with the message's id.
    Publish {
        id: String,
        done: oneshot::Sender<Result<String, PublishError>>,
    },
    /// [`Handle::send_to_user`](crate::Handle::send_to_user): answered with the
    /// subscriptions it reached on this node.
    ToUser {
        reached: usize,
        done: oneshot::Sender<Result<usize, PublishError>>,
    },
}

/// Whose a subscription at the other broker is.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// One session's subscription.
    Session {
        connection: ConnectionId,
        id: SubscriptionId,
        /// Tells this subscription from an earlier one of the same session and id.
        serial: u64,
    },
    /// A topic subscription that the node's `auto` subscriptions to it share: the broker
    /// sends each message once, and the hub hands it to each of them.
    Topic(u64),
}

impl Target {
    fn subscribed(&self, outcome: Result<(), Refused>) -> FromRelay {
        match self.clone() {
            Target::Session { connection, id, .. } => FromRelay::Subscribed {
                connection,
                id,
                outcome,
            },
            Target::Topic(topic) => FromRelay::TopicSubscribed { topic, outcome },
        }
    }

    fn lost(&self, message: String) -> FromRelay {
        match *self {
            Target::Session { connection, .. } => FromRelay::Lost {
                connection,
                message,
            },
            Target::Topic(topic) => FromRelay::TopicLost { topic, message },
        }
    }
}

/// One relayed subscription: who it is for and how its names map.
pub(crate) struct Relayed {
    pub(crate) target: Target,
    /// The client's destination, and the other broker's.
    pub(crate) local: String,
    pub(crate) remote: String,
    /// The mapping rule used, to name deliveries as the client knows them.
    pub(crate) rule: Option<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    /// The ack mode at the broker: `auto`, or `client-individual` with an ACK for each
    /// message the client settles.
    pub(crate) broker_ack: AckMode,
    /// ACKs and NACKs from the client (or written auto-ack messages); its end unsubscribes.
    pub(crate) settle: mpsc::UnboundedReceiver<Settle>,
}

/// Whose a broker connection is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The relay's: the watches of the users' destinations and the node's shared topic
    /// subscriptions. The relay is available while all of them are up.
    Relay,
    /// The application's publishes and messages to users, for as long as the relay: part of
    /// its availability until it first connects, and no more after. A publish the broker
    /// refuses (its destination or headers taken from a client) ends this connection until it
    /// reconnects, and that must not make the relay unavailable to every session meanwhile:
    /// only the publishes fail until then.
    Publishes,
    /// One session's: opened when first needed, closed with the session, and no part of the
    /// relay's availability.
    Own,
}

/// Relayed messages the client is done with.
pub(crate) struct Settle {
    pub(crate) message_ids: Vec<String>,
    pub(crate) settlement: Settlement,
}

/// What every task of the relay shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: Arc<RelayConfig>,
    pub(crate) hub: mpsc::Sender<ToHub>,
    /// Broker connections not connected now.
    pub(crate) down: Arc<AtomicUsize>,
    /// This node's name, which what it sends to users carries.
    pub(crate) node: Arc<str>,
    /// Places for trial subscriptions ([`probe`]), [`MAX_PROBES`] in all: a session has one
    /// SUBSCRIBE waiting at most, and they take places in turn, so however many sessions ask
    /// for new topics, the broker sees a bounded number of connections for them and each
    /// session waits its turn.
    pub(crate) probes: Arc<Semaphore>,
}

/// Trial subscriptions at once, each on a broker connection of its own.
pub(crate) const MAX_PROBES: usize = 16;

impl Shared {
    async fn tell(&self, from: FromRelay) {
        let _ = self.hub.send(ToHub::Relay(from)).await;
    }

    /// A broker connection came (`true`) or went; logs when the relay as a whole does.
    fn link_changed(&self, name: &str, up: bool) {
        let before = if up {
            self.down.fetch_sub(1, Ordering::AcqRel)
        } else {
            self.down.fetch_add(1, Ordering::AcqRel)
        };
        match (up, before) {
            (true, 1) => tracing::info!(link = name, "relay: broker available"),
            (false, 0) => tracing::warn!(link = name, "relay: broker unavailable"),
            (true, _) => tracing::info!(link = name, "relay: broker connection up"),
            (false, _) => tracing::warn!(link = name, "relay: broker connection lost"),
        }
    }
}

/// Opens broker connection `name` on the current runtime: the way to its task.
pub(crate) fn open(
    shared: &Shared,
    name: String,
    kind: Kind,
) -> mpsc::UnboundedSender<LinkCommand> {
    let (commands, inbox) = mpsc::unbounded_channel();
    tokio::spawn(run(shared.clone(), name, kind, inbox));
    commands
}

/// Runs broker connection `name`: connects (retrying for ever), then carries out `commands`
/// until they end.
async fn run(
    shared: Shared,
    name: String,
    kind: Kind,
    mut commands: mpsc::UnboundedReceiver<LinkCommand>,
) {
    let Some(client) = connect(&shared, &name, kind, &mut commands).await else {
        return;
    };
    // Each loss of the connection bumps the epoch, with why: subscriptions that do not outlive
    // it end, and their sessions are told why (a broker's ERROR among the reasons).
    let (lost, epoch) = watch::channel(Loss::default());
    tokio::spawn(watch_link(
        shared.clone(),
        name.clone(),
        kind,
        client.clone(),
        lost,
    ));
    let mut receipts = FuturesUnordered::new();
    // A command taken from the queue while gathering SENDs, to be carried out next.
    let mut next = None;
    loop {
        let command = match next.take() {
            Some(command) => Some(command),
            None => tokio::select! {
                command = commands.recv() => command,
                Some((group, outcome)) = receipts.next(), if !receipts.is_empty() => {
                    confirm(&shared, group, outcome).await;
                    continue;
                }
            },
        };
        match command {
            Some(LinkCommand::Subscribe(relayed)) => {
                let forward = forward(shared.clone(), client.clone(), *relayed, epoch.clone());
                tokio::spawn(forward);
            }
            Some(LinkCommand::Watch {
                user,
                destination,
                stop,
            }) => {
                let watch = watch_user(shared.clone(), client.clone(), user, destination, stop);
                tokio::spawn(watch);
            }
            Some(LinkCommand::Send { from, frame }) => {
                // The SENDs already waiting go out together, and only the last asks for a
                // RECEIPT: the broker takes a connection's frames in order, so its RECEIPT
                // says that it has every one before (1.2 "RECEIPT"). One RECEIPT per batch
                // instead of one per message is what the broker spends least on.
                let mut group = vec![from];
                let mut more = Vec::new();
                while group.len() < MAX_SENDS_PER_RECEIPT {
                    match commands.try_recv() {
                        Ok(LinkCommand::Send { from, frame }) => {
                            group.push(from);
                            more.push(frame);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                match send_group(&client, frame, more).await {
                    Ok(receipt) => receipts.push(async move { (group, receipt.await) }),
                    Err(error) => confirm(&shared, group, Err(error)).await,
                }
            }
            None => break,
        }
    }
    while let Some((group, outcome)) = receipts.next().await {
        confirm(&shared, group, outcome).await;
    }
    let _ = client.disconnect().await;
}

/// SENDs per RECEIPT at most: a failed batch fails each of its senders.
const MAX_SENDS_PER_RECEIPT: usize = 64;

/// Sends `first` and then `more` in order, the last of them with a RECEIPT to wait for.
async fn send_group(
    client: &Client,
    first: SendFrame,
    more: Vec<SendFrame>,
) -> Result<stomp_tokio::Receipt, stomp_tokio::Error> {
    let mut last = first;
    for frame in more {
        client
            .send_frame(std::mem::replace(&mut last, frame))
            .await?;
    }
    client.send_tracked(last).await
}

/// The broker's answer to a batch of SENDs, told to each sender.
async fn confirm(shared: &Shared, group: Vec<Origin>, outcome: Result<(), stomp_tokio::Error>) {
    for from in group {
        sent(shared, from, outcome.as_ref().map(|_| ())).await;
    }
}

/// The broker's answer to a SEND: a session may send more (if refused, it is closed); the
/// application's call returns.
async fn sent(shared: &Shared, from: Origin, outcome: Result<(), &stomp_tokio::Error>) {
    match from {
        Origin::Session {
            connection,
            receipt,
        } => match outcome {
            Ok(()) => {
                shared
                    .tell(FromRelay::Sent {
                        connection,
                        receipt,
                    })
                    .await
            }
            Err(error) => {
                let message = format!("broker: message not relayed: {error}");
                shared
                    .tell(FromRelay::Lost {
                        connection,
                        message,
                    })
                    .await;
            }
        },
        Origin::Publish { id, done } => {
            let _ = done.send(outcome.map(|()| id).map_err(not_taken));
        }
        Origin::ToUser { reached, done } => {
            let _ = done.send(outcome.map(|()| reached).map_err(not_taken));
        }
    }
}

/// The application's message was not taken by the broker.
fn not_taken(error: &stomp_tokio::Error) -> PublishError {
    tracing::warn!(%error, "relay: a publish was not taken");
    PublishError::BrokerUnavailable
}

/// Connects, retrying with jittered backoff for ever; `None` if the relay is dropped first.
async fn connect(
    shared: &Shared,
    name: &str,
    kind: Kind,
    commands: &mut mpsc::UnboundedReceiver<LinkCommand>,
) -> Option<Client> {
    let mut attempt = 0;
    loop {
        match shared.config.client().connect().await {
            Ok(client) => {
                if kind != Kind::Own {
                    shared.link_changed(name, true);
                }
                return Some(client);
            }
            Err(error) => {
                let endpoints = shared.config.endpoints().join(",");
                tracing::warn!(link = name, %endpoints, %error, attempt, "relay: cannot reach the broker");
            }
        }
        let pause = shared.config.retry_delay(attempt);
        attempt = attempt.saturating_add(1);
        // Until connected, what is asked is refused as it comes: nothing piles up.
        let deadline = tokio::time::sleep(pause);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                command = commands.recv() => match command {
                    Some(command) => refuse(shared, command).await,
                    None => return None,
                },
            }
        }
    }
}

/// A command for a broker connection that is not up.
async fn refuse(shared: &Shared, command: LinkCommand) {
    let message = "broker unavailable".to_owned();
    match command {
        LinkCommand::Subscribe(relayed) => {
            let outcome = Err(Refused::new(message));
            shared.tell(relayed.target.subscribed(outcome)).await;
        }
        LinkCommand::Send { from, .. } => {
            let error = stomp_tokio::Error::Closed(stomp_session::CloseReason::Local(message));
            sent(shared, from, Err(&error)).await;
        }
        // Watched again when the user's next session comes.
        LinkCommand::Watch { .. } => {}
    }
}

/// How often a broker connection was lost, and why the last time.
#[derive(Clone, Debug, Default)]
struct Loss {
    count: u64,
    reason: String,
}

/// Follows the connection's events: availability, and the epoch of losses.
async fn watch_link(
    shared: Shared,
    name: String,
    kind: Kind,
    client: Client,
    lost: watch::Sender<Loss>,
) {
    let mut events = client.events();
    drop(client);
    while let Some(event) = events.next().await {
        match event {
            ConnectionEvent::Disconnected(reason) => {
                if kind == Kind::Own {
                    tracing::info!(link = %name, %reason, "relay: broker connection ended");
                } else {
                    tracing::warn!(link = %name, %reason, "relay: broker connection ended");
                }
                if kind == Kind::Relay {
                    shared.link_changed(&name, false);
                }
                lost.send_modify(|loss| {
                    loss.count += 1;
                    loss.reason = reason.to_string();
                });
            }
            ConnectionEvent::Reconnected(_) if kind == Kind::Relay => {
                shared.link_changed(&name, true)
            }
            ConnectionEvent::Closed(reason) => {
                // A session's connection closes with the session.
                if kind != Kind::Own {
                    tracing::warn!(link = %name, %reason, "relay: broker connection closed");
                } else {
                    tracing::debug!(link = %name, %reason, "relay: broker connection closed");
                }
                lost.send_modify(|loss| {
                    loss.count += 1;
                    loss.reason = reason.to_string();
                });
                return;
            }
            _ => {}
        }
    }
}

/// Makes a subscription on a broker connection of its own and ends it there: `Err` with why
/// the broker refused it. A subscription the sessions of a node share is tried so first, for
/// its refusal would end the shared connection, and every subscription on it with it.
async fn probe(shared: &Shared, remote: &str, headers: &[(&str, &str)]) -> Result<(), Refused> {
    let Ok(_place) = shared.probes.acquire().await else {
        return Err(Refused::new("broker unavailable"));
    };
    let client = match shared.config.client().connect().await {
        Ok(client) => client,
        Err(error) => return Err(Refused::new(format!("broker unavailable: {error}"))),
    };
    let subscribed = client
        .subscribe_with_headers(remote, AckMode::Auto, headers)
        .await;
    let _ = client.disconnect().await;
    match subscribed {
        Ok(_) => Ok(()),
        Err(error) => Err(Refused::new(format!(
            "broker refused the subscription: {error}"
        ))),
    }
}

/// One relayed subscription: subscribes, answers the session, then hands each message to
/// the hub and settles it at the broker as the client does.
async fn forward(
    shared: Shared,
    client: Client,
    relayed: Relayed,
    mut epoch: watch::Receiver<Loss>,
) {
    let Relayed {
        target,
        local,
        remote,
        rule,
        headers,
        broker_ack,
        mut settle,
    } = relayed;
    // Never `client` at the broker: the subscriptions of a connection share one channel at
    // RabbitMQ, where a cumulative `client` ACK settles every earlier message of the channel,
    // other subscriptions' too, and their own ACKs then fail ("unknown delivery tag").
    epoch.borrow_and_update();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Target::Topic(_) = target {
        if let Err(refused) = probe(&shared, &remote, &pairs).await {
            shared.tell(target.subscribed(Err(refused))).await;
            return;
        }
    }
    let subscribed = client
        .subscribe_with_headers(&remote, broker_ack, &pairs)
        .await;
    let mut subscription = match subscribed {
        Ok(subscription) => subscription,
        Err(error) => {
            let message = format!("broker refused the subscription: {error}");
            shared
                .tell(target.subscribed(Err(Refused::new(message))))
                .await;
            return;
        }
    };
    shared.tell(target.subscribed(Ok(()))).await;
    // The messages the client has not settled yet, by id: at most the prefetch.
    let mut held: HashMap<String, Message> = HashMap::new();
    let restores = shared.config.restores();
    loop {
        tokio::select! {
            message = subscription.next() => {
                let Some(message) = message else {
                    let message = "broker connection closed".to_owned();
                    shared.tell(target.lost(message)).await;
                    return;
                };
                let Some(delivery) = delivery(&target, &local, rule.as_ref(), &message) else {
                    continue;
                };
                // Under `auto` at the broker nothing is settled there: nothing is held.
                if broker_ack != AckMode::Auto {
                    let key = message.message_id().map(|m| m.into_owned()).unwrap_or_default();
                    held.insert(key, message);
                }
                shared.tell(delivery).await;
            }
            settled = settle.recv() => {
                let Some(Settle { message_ids, settlement }) = settled else {
                    // Unsubscribed: dropping the subscription sends the UNSUBSCRIBE, and
                    // what was not acknowledged is the broker's to redeliver.
                    return;
                };
                settle_at_broker(&subscription, &mut held, message_ids, settlement).await;
            }
            changed = epoch.changed(), if !restores => {
                let message = match changed {
                    Ok(()) => format!("broker connection lost: {}", epoch.borrow().reason),
                    Err(_) => "broker connection lost".to_owned(),
                };
                shared.tell(target.lost(message)).await;
                return;
            }
        }
    }
}

/// ACKs or NACKs held messages at the broker, one frame each, asking for no RECEIPT: one that
/// does not arrive was lost with the connection, and the broker redelivers the message.
async fn settle_at_broker(
    subscription: &Subscription,
    held: &mut HashMap<String, Message>,
    message_ids: Vec<String>,
    settlement: Settlement,
) {
    for message in message_ids.iter().filter_map(|id| held.remove(id)) {
        let queued = match settlement {
            Settlement::Ack => subscription.ack_unconfirmed(&message).await,
            Settlement::Nack => subscription.nack_unconfirmed(&message).await,
        };
        if queued.is_err() {
            // The broker connection is closed for good: nothing more to settle.
            return;
        }
    }
}

/// Headers the other broker set that the session sets again for the client.
const FRAMING: [&str; 5] = [
    "destination",
    "message-id",
    "subscription",
    "ack",
    "content-length",
];

/// A message from the broker as a delivery to the client's subscription, named as the
/// client knows it.
fn delivery(
    target: &Target,
    local: &str,
    rule: Option<&(String, String)>,
    message: &Message,
) -> Option<FromRelay> {
    let message_id = message.message_id()?.into_owned();
    let destination = match (message.destination(), rule) {
        (Some(d), Some((l, r))) if d.starts_with(r.as_str()) => format!("{l}{}", &d[r.len()..]),
        (Some(d), None) => d.into_owned(),
        _ => local.to_owned(),
    };
    let headers = own_headers(message, &FRAMING);
    let body = message.body().clone();
    Some(match target.clone() {
        Target::Session {
            connection,
            id,
            serial,
        } => FromRelay::Deliver {
            connection,
            id,
            serial,
            destination,
            message_id,
            headers,
            body,
        },
        Target::Topic(topic) => FromRelay::TopicDeliver {
            topic,
            destination,
            message_id,
            headers,
            body,
        },
    })
}

/// The message's headers but `skip`.
fn own_headers(message: &Message, skip: &[&str]) -> Vec<(String, String)> {
    message
        .frame()
        .headers()
        .iter()
        .map(|h| (h.name().into_owned(), h.value().into_owned()))
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .collect()
}

/// Receives what other nodes send to `user` and hands it to the hub, until `stop` ends.
async fn watch_user(
    shared: Shared,
    client: Client,
    user: Arc<str>,
    destination: String,
    mut stop: mpsc::UnboundedReceiver<()>,
) {
    // Exclusive: RabbitMQ makes it a transient queue that 3.x and 4.x accept and delete
    // with the subscription.
    let headers = [("exclusive", "true")];
    let subscribed = client
        .subscribe_with_headers(&destination, AckMode::Auto, &headers)
        .await;
    let mut subscription = match subscribed {
        Ok(subscription) => subscription,
        Err(error) => {
            tracing::warn!(%user, %error, "relay: cannot receive the user's messages from other nodes");
            return;
        }
    };
    let skip: Vec<&str> = FRAMING
        .into_iter()
        .chain([NODE_HEADER, USER_DESTINATION_HEADER])
        .collect();
    loop {
        tokio::select! {
            message = subscription.next() => {
                let Some(message) = message else { return };
                // What this node sent it delivered itself.
                if message.header(NODE_HEADER).as_deref() == Some(&*shared.node) {
                    continue;
                }
                let Some(to) = message.header(USER_DESTINATION_HEADER) else { continue };
                let to_user = FromRelay::ToUser {
                    user: user.to_string(),
                    destination: to.into_owned(),
                    headers: own_headers(&message, &skip),
                    body: message.body().clone(),
                };
                shared.tell(to_user).await;
            }
            _ = stop.recv() => return,
        }
    }
}
