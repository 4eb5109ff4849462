//! The messages between the server's tasks: what connection tasks, handler workers, the relay
//! and the application's [`Handle`](crate::Handle) send a broker task ([`ToHub`]), and what a
//! broker task sends each connection ([`Out`], [`Control`]).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::http::Extensions;
use bytes::Bytes;
use stomp_broker::ConnectionId;
use stomp_session::{Refused, SubscriptionId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::budget::Stamp;
use crate::error::PublishError;
use crate::login::{Admit, Remote};
use crate::message::Payload;
use crate::peers::FromPeer;
use crate::stats::Stats;
use crate::watchdog::Work;

/// What a connection task tells the broker task.
#[derive(Debug)]
pub(crate) enum ToHub {
    Open {
        client: Client,
        accepted_at: Instant,
        reply: oneshot::Sender<ConnectionId>,
    },
    /// What a read brought, and when it returned.
    Input(ConnectionId, Bytes, Stamp),
    Eof(ConnectionId),
    /// The transport refused the client's input (a WebSocket message over the limits): the
    /// client gets an ERROR saying so.
    Fail(ConnectionId, Refused),
    Timeout(ConnectionId),
    /// Octets written so far, answering [`Out::Report`].
    Written(ConnectionId, u64),
    /// The transport is closed, after writing this many octets.
    Gone(ConnectionId, u64),
    /// The application asks the broker something ([`Handle`]).
    Command(Command),
    /// A session's worker finished a job while its input was held.
    Worked(ConnectionId),
    /// A session's worker ended, its last job done.
    WorkerEnded(ConnectionId),
    /// A session's worker has done this many jobs and waited a while for another: it may end.
    WorkerIdle(ConnectionId, u64),
    /// The application's login decided the session's CONNECT.
    LoggedIn(ConnectionId, Result<Admit, Refused>),
    /// SIGINT or SIGTERM: every client gets an ERROR and a close.
    Shutdown,
    /// What another shard sent.
    Peer(FromPeer),
    /// How far the journal is synced, or why it could not be written.
    Journaled(Result<u64, String>),
    /// Relay mode: the other broker's side.
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    Relay(FromRelay),
}

/// What the application asks of the broker task, with where the answer goes.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        destination: String,
        payload: Payload,
        done: oneshot::Sender<Result<String, PublishError>>,
    },
    SendToUser {
        user: String,
        destination: String,
        payload: Payload,
        done: oneshot::Sender<Result<usize, PublishError>>,
    },
    RelayAvailable {
        done: oneshot::Sender<Option<bool>>,
    },
    Reply {
        connection: ConnectionId,
        destination: String,
        payload: Payload,
        done: oneshot::Sender<usize>,
    },
    Fail {
        connection: ConnectionId,
        message: String,
    },
    Stats {
        done: oneshot::Sender<Stats>,
    },
    /// What the application asks of the sessions ([`Handle::sessions`](crate::Handle)).
    Sessions(SessionCommand),
}

/// What the application asks of the sessions of one shard: each shard answers for its own.
#[derive(Debug)]
pub(crate) enum SessionCommand {
    /// Users with sessions here, and how many each has.
    Users {
        done: oneshot::Sender<Vec<(String, usize)>>,
    },
    /// The sessions of a user here.
    SessionsOf {
        user: String,
        done: oneshot::Sender<Vec<String>>,
    },
    /// A session's subscriptions, if it is here.
    SubscriptionsOf {
        session: String,
        done: oneshot::Sender<Option<Vec<(String, String)>>>,
    },
    /// Subscriptions to a destination here: session and subscription id.
    SubscribersOf {
        destination: String,
        done: oneshot::Sender<Vec<(String, String)>>,
    },
    /// Sends to a session's own subscriptions to `destination`, if it is here.
    SendTo {
        session: String,
        destination: String,
        payload: Payload,
        done: oneshot::Sender<Option<usize>>,
    },
    /// Closes sessions here with an ERROR carrying `message`: one, or every one of a user.
    Close {
        whom: Whom,
        message: String,
        done: oneshot::Sender<usize>,
    },
}

/// Which sessions to close.
#[derive(Debug, Clone)]
pub(crate) enum Whom {
    Session(String),
    User(String),
}

impl ToHub {
    /// What serving it is, for the watchdog.
    pub(crate) fn work(&self) -> Work {
        match self {
            ToHub::Open { .. } => Work::Open,
            ToHub::Input(..) => Work::Input,
            ToHub::Eof(_) => Work::Eof,
            ToHub::Fail(..) => Work::Fail,
            ToHub::Timeout(_) => Work::Timeout,
            ToHub::Written(..) => Work::Written,
            ToHub::Gone(..) => Work::Gone,
            ToHub::Command(_) => Work::Command,
            ToHub::Worked(_) | ToHub::WorkerEnded(_) | ToHub::WorkerIdle(..) => Work::Worked,
            ToHub::LoggedIn(..) => Work::Input,
            ToHub::Shutdown => Work::Shutdown,
            ToHub::Peer(_) => Work::Peer,
            ToHub::Relay(_) => Work::Relay,
            ToHub::Journaled(_) => Work::Journal,
        }
    }

    pub(crate) fn connection(&self) -> Option<ConnectionId> {
        match self {
            ToHub::Input(id, ..)
            | ToHub::Eof(id)
            | ToHub::Fail(id, _)
            | ToHub::Timeout(id)
            | ToHub::Written(id, _)
            | ToHub::Gone(id, _)
            | ToHub::Worked(id)
            | ToHub::WorkerEnded(id)
            | ToHub::WorkerIdle(id, _)
            | ToHub::LoggedIn(id, _)
            | ToHub::Command(Command::Reply { connection: id, .. })
            | ToHub::Command(Command::Fail { connection: id, .. }) => Some(*id),
            ToHub::Relay(from) => from.connection(),
            ToHub::Open { .. }
            | ToHub::Command(_)
            | ToHub::Shutdown
            | ToHub::Peer(_)
            | ToHub::Journaled(_) => None,
        }
    }
}

/// What the broker task tells a connection's writer, in order.
#[derive(Debug)]
pub(crate) enum Out {
    /// Octets to write, and when they were handed out.
    Write(Bytes, Stamp),
    /// Once everything before is written, say how much was ([`ToHub::Written`]).
    Report,
    /// Everything is written: close the connection.
    Close,
}

/// What a connection's reader follows: when to report a timeout, and whether to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) deadline: Option<Instant>,
    /// Flow control: the connection's input is not read.
    pub(crate) paused: bool,
    /// The peer is gone or dead (heart-beats): drop the transport now, without writing what
    /// is still queued for it.
    pub(crate) abort: bool,
    /// The client is let in: before, no more than one head's worth is read of it.
    pub(crate) connected: bool,
}

/// What the relay tells the broker task.
#[derive(Debug)]
#[cfg_attr(not(feature = "relay"), allow(dead_code))]
pub(crate) enum FromRelay {
    /// The other broker's answer to a relayed SUBSCRIBE.
    Subscribed {
        connection: ConnectionId,
        id: SubscriptionId,
        outcome: Result<(), Refused>,
    },
    /// A message for a relayed subscription.
    Deliver {
        connection: ConnectionId,
        id: SubscriptionId,
        /// Which subscription of that session and id (the relay's `is_current`).
        serial: u64,
        destination: String,
        message_id: String,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// The broker took one of the session's SENDs: the RECEIPT it asked for, if one, goes out.
    Sent {
        connection: ConnectionId,
        receipt: Option<String>,
    },
    /// The session's relayed traffic failed: it is closed with an ERROR carrying `message`.
    Lost {
        connection: ConnectionId,
        message: String,
    },
    /// The other broker's answer to the SUBSCRIBE of a topic subscription the node's
    /// sessions share (`auto` subscriptions to the same topic).
    TopicSubscribed {
        topic: u64,
        outcome: Result<(), Refused>,
    },
    /// A message for every session sharing topic subscription `topic`.
    TopicDeliver {
        topic: u64,
        destination: String,
        message_id: String,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// The shared topic subscription failed: each of its sessions is closed with an ERROR
    /// carrying `message`.
    TopicLost { topic: u64, message: String },
    /// Another node sent `user` a message.
    ToUser {
        user: String,
        destination: String,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
}

impl FromRelay {
    /// The connection the message is about, if one.
    pub(crate) fn connection(&self) -> Option<ConnectionId> {
        match self {
            FromRelay::Subscribed { connection, .. }
            | FromRelay::Deliver { connection, .. }
            | FromRelay::Sent { connection, .. }
            | FromRelay::Lost { connection, .. } => Some(*connection),
            FromRelay::TopicSubscribed { .. }
            | FromRelay::TopicDeliver { .. }
            | FromRelay::TopicLost { .. }
            | FromRelay::ToUser { .. } => None,
        }
    }
}

/// Octets of one connection, shared between the broker task and the writer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Handed to the writer and not yet written.
    pub(crate) unwritten: AtomicU64,
    /// Written, in whole buffers.
    pub(crate) written: AtomicU64,
}

/// The broker task's end of one connection.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) out: mpsc::Sender<Out>,
    pub(crate) control: watch::Sender<Control>,
    pub(crate) counters: Arc<Counters>,
    /// Told to close; waiting for the transport to be gone.
    pub(crate) closing: bool,
    /// The user the session acts as, once connected.
    pub(crate) user: Option<Arc<str>>,
    /// Its `session` id.
    pub(crate) session: Arc<str>,
    /// Where it comes from.
    pub(crate) remote: Remote,
    /// What the login put in the session.
    pub(crate) extensions: Arc<Extensions>,
    /// The application closed it, saying this.
    pub(crate) kicked: Option<String>,
    /// It was let in: the application hears of its end.
    pub(crate) connected: bool,
}

impl Client {
    pub(crate) fn new(
        out: mpsc::Sender<Out>,
        control: watch::Sender<Control>,
        counters: Arc<Counters>,
        remote: Remote,
    ) -> Client {
        Client {
            out,
            control,
            counters,
            closing: false,
            user: None,
            session: Arc::from(""),
            remote,
            extensions: Arc::default(),
            kicked: None,
            connected: false,
        }
    }
}
