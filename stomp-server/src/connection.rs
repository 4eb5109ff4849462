//! One connection, over any transport. Reading and writing run side by side: a write blocked
//! by a client that stopped reading never holds up the connection's timer (heart-beats, the
//! CONNECT deadline) or its input, and a write that makes no progress for the send timeout
//! closes the connection.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_broker::{ConnectionId, Refused};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::sleep_until;

use crate::budget::{Handed, Stage, Stamp};
use crate::channel::{Client, Control, Counters, Out, ToHub};
use crate::gate::Gate;
use crate::login::{Remote, Transport};
use crate::origins::AllowedOrigins;
use crate::peer_slots::{PeerSlot, PeerSlots};
use crate::stats::Refusals;

/// The receiving half of a transport STOMP runs over: TCP, or WebSocket messages.
pub(crate) trait Reader: Send {
    /// The next bytes received; `None` at the end of the stream. Must be cancel-safe.
    fn receive(&mut self) -> impl Future<Output = Result<Option<Bytes>, ReadError>> + Send;
}

/// Why a transport delivers no more of the client's input.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The transport failed (reset, broken): the connection ends.
    Io(io::Error),
    /// The client broke the transport's rules (a WebSocket message over the limits, broken
    /// framing): it is told why in an ERROR.
    Refused(Refused),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> ReadError {
        ReadError::Io(error)
    }
}

/// The sending half of a transport.
pub(crate) trait Writer: Send {
    /// Writes a batch of buffers in order, as few system calls as the transport allows,
    /// failing with `TimedOut` when no progress is made for `stall`.
    fn send(
        &mut self,
        batch: &[Bytes],
        stall: Duration,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes the transport after everything was written.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// What every connection task shares.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Every shard's broker task.
    pub(crate) hubs: Arc<[mpsc::Sender<ToHub>]>,
    /// Connections handed to shards so far: each goes to the next, round-robin.
    pub(crate) opened: Arc<AtomicUsize>,
    /// Buffers waiting to be written to one connection, at most.
    pub(crate) queue: usize,
    pub(crate) send_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// One permit per open STOMP connection, TCP and WebSocket together.
    pub(crate) connections: Arc<Semaphore>,
    /// The largest WebSocket message or frame a client may send.
    pub(crate) max_ws_message: usize,
    /// Octets read of a client before it is let in, at most (one head; one read may go past).
    pub(crate) max_preamble: usize,
    /// The pages that may upgrade to STOMP over WebSocket.
    pub(crate) origins: Arc<AllowedOrigins>,
    /// Upgrades refused, for the figures.
    pub(crate) refusals: Arc<Refusals>,
    /// Connections per peer address.
    pub(crate) peer_slots: Arc<PeerSlots>,
}

/// A socket just accepted.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// Where it comes from.
    pub(crate) remote: Remote,
    /// When it was accepted: the CONNECT deadline counts from here.
    pub(crate) at: Instant,
    /// Its place under the connection limit, given back when it ends.
    pub(crate) permit: OwnedSemaphorePermit,
    /// A WebSocket of the server's own HTTP listener: what lets more than one head be read
    /// once the client is let in.
    pub(crate) gate: Option<Arc<Gate>>,
    /// Its place among its peer address's connections, when taken already (a WebSocket's,
    /// at the upgrade).
    pub(crate) slot: Option<PeerSlot>,
}

/// Serves one connection until either side ends it.
pub(crate) async fn serve<R: Reader, W: Writer + 'static>(
    mut reader: R,
    writer: W,
    accepted: Accepted,
    settings: Settings,
) {
    let Accepted {
        remote,
        at,
        permit: _permit,
        gate,
        slot,
    } = accepted;
    // One address may not take every place: past its bound it is told why, and closed.
    let _slot = match (slot, remote.address) {
        (Some(slot), _) => Some(slot),
        (None, Some(address)) => match settings.peer_slots.admit(address.ip()) {
            Ok(slot) => Some(slot),
            Err(why) => {
                settings.refusals.peer.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %remote.name(), %why, "connection refused");
                let error = format!("ERROR\ncontent-type:text/plain\nmessage:{why}\n\n{why}\0");
                let mut writer = writer;
                let _ = writer
                    .send(&[Bytes::from(error)], settings.send_timeout)
                    .await;
                writer.close().await;
                return;
            }
        },
        (None, None) => None,
    };
    let shard = settings.opened.fetch_add(1, Ordering::Relaxed) % settings.hubs.len();
    let hub = settings.hubs[shard].clone();
    let (out, outbox) = mpsc::channel(settings.queue);
    let (control_tx, mut control) = watch::channel(Control::default());
    let counters = Arc::new(Counters::default());
    let client = Client::new(out, control_tx, counters.clone(), remote);
    let (reply, id) = oneshot::channel();
    let open = ToHub::Open {
        client,
        accepted_at: at,
        reply,
    };
    if hub.send(open).await.is_err() {
        return;
    }
    let Ok(id) = id.await else { return };
    // The writer is a task of its own: a write woken for each delivery must not poll the
    // reader (a WebSocket read zero-fills its buffer each time it is polled) or the timer.
    let mut writing = tokio::spawn(write_loop(
        writer,
        outbox,
        hub.clone(),
        id,
        counters.clone(),
        settings.send_timeout,
    ));
    let mut state = Control::default();
    let (mut reading, mut controlled) = (true, true);
    // Until the client is let in, at most one head is read: the session refuses more, and a
    // client that is not let in costs no more memory than that.
    let mut preamble = 0usize;
    // One timer, moved when the deadline changes.
    let timer = sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    loop {
        tokio::select! {
            _ = &mut writing => break,
            received = reader.receive(),
                if reading && !state.paused && (state.connected || preamble <= settings.max_preamble) =>
            {
                let message = match received {
                    Ok(Some(bytes)) => {
                        if !state.connected {
                            preamble += bytes.len();
                        }
                        ToHub::Input(id, bytes, Stamp::now())
                    }
                    Ok(None) => {
                        reading = false;
                        ToHub::Eof(id)
                    }
                    Err(ReadError::Refused(refused)) => {
                        reading = false;
                        ToHub::Fail(id, refused)
                    }
                    Err(ReadError::Io(error)) => {
                        tracing::debug!(connection = %id, %error, "transport failed");
                        reading = false;
                        ToHub::Eof(id)
                    }
                };
                if hub.send(message).await.is_err() {
                    break;
                }
            }
            changed = control.changed(), if controlled => match changed {
                Ok(()) => {
                    let next = *control.borrow_and_update();
                    if next.abort {
                        break;
                    }
                    if let Some(at) = next.deadline.filter(|_| next.deadline != state.deadline) {
                        timer.as_mut().reset(at.into());
                    }
                    if next.connected && !state.connected {
                        if let Some(gate) = &gate {
                            gate.open();
                        }
                    }
                    state = next;
                }
                Err(_) => controlled = false,
            },
            () = &mut timer, if state.deadline.is_some() => {
                state.deadline = None;
                if hub.send(ToHub::Timeout(id)).await.is_err() {
                    break;
                }
            }
        }
    }
    writing.abort();
    let written = counters.written.load(Ordering::Acquire);
    let _ = hub.send(ToHub::Gone(id, written)).await;
    tracing::debug!(connection = %id, "connection closed");
}

/// Most octets written in one batch: enough to fill a socket buffer in one system call, few
/// enough that a batch is not held back long.
const BATCH_OCTETS: usize = 256 * 1024;
/// Most buffers in one batch (a vectored write takes at most 1024).
pub(crate) const BATCH_BUFFERS: usize = 64;

/// Writes what the broker task hands out until it says close, or a write fails or stalls.
/// Whatever is already waiting is written together: under fan-out a connection gets many
/// small buffers at once, and one system call per buffer would cost more than the messages.
async fn write_loop<W: Writer>(
    mut writer: W,
    mut outbox: mpsc::Receiver<Out>,
    hub: mpsc::Sender<ToHub>,
    id: ConnectionId,
    counters: Arc<Counters>,
    stall: Duration,
) {
    let mut batch: Vec<Bytes> = Vec::new();
    let mut handed = Handed::default();
    // What ended the last batch, to be handled once that batch is written.
    let mut next: Option<Out> = None;
    loop {
        let out = match next.take() {
            Some(out) => out,
            None => match outbox.recv().await {
                Some(out) => out,
                None => return,
            },
        };
        match out {
            Out::Write(bytes, at) => {
                let mut len = bytes.len();
                handed.push(at, len);
                batch.push(bytes);
                while len < BATCH_OCTETS && batch.len() < BATCH_BUFFERS {
                    match outbox.try_recv() {
                        Ok(Out::Write(bytes, at)) => {
                            len += bytes.len();
                            handed.push(at, bytes.len());
                            batch.push(bytes);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let taken = handed.taken();
                let sent = writer.send(&batch, stall).await;
                taken.ended(Stage::Write, Stamp::now(), len);
                batch.clear();
                match sent {
                    Ok(()) => {
                        counters.written.fetch_add(len as u64, Ordering::AcqRel);
                        counters.unwritten.fetch_sub(len as u64, Ordering::AcqRel);
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        tracing::warn!(
                            connection = %id,
                            "no write progress for {stall:?}: closing a client that stopped reading"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(connection = %id, error = %e, "write failed");
                        return;
                    }
                }
            }
            Out::Report => {
                let written = counters.written.load(Ordering::Acquire);
                if hub.send(ToHub::Written(id, written)).await.is_err() {
                    return;
                }
            }
            Out::Close => {
                writer.close().await;
                return;
            }
        }
    }
}

/// Logs a recurring condition at most once a second, with how often it happened meanwhile.
#[derive(Debug, Default)]
struct Occasional {
    last: Option<Instant>,
    count: u64,
}

impl Occasional {
    fn note(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
        {
            log(self.count);
            self.last = Some(now);
            self.count = 0;
        }
    }
}

/// Logs, at most once a second, that a connection was refused at the connection limit.
pub(crate) fn refused(kind: &str) {
    static REFUSALS: Mutex<Occasional> = Mutex::new(Occasional {
        last: None,
        count: 0,
    });
    if let Ok(mut refusals) = REFUSALS.lock() {
        refusals.note(|count| {
            tracing::warn!(
                count,
                "connection limit reached: closing new {kind} connections"
            );
        });
    }
}

/// Accepts connections until the listener fails, handing each, with Nagle off, to `serve`.
/// Past the connection limit, new sockets are closed at once. Accept errors (out of
/// descriptors or memory) back off with growing pauses up to a second, and are logged at most
/// once a second.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    kind: &str,
    transport: Transport,
    connections: Arc<Semaphore>,
    mut serve: impl FnMut(TcpStream, Accepted),
) {
    let mut failures = Occasional::default();
    let mut pause = Duration::ZERO;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                pause = Duration::ZERO;
                let at = Instant::now();
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    refused(kind);
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let remote = Remote::new(transport, Some(peer));
                let gate = None;
                serve(
                    stream,
                    Accepted {
                        remote,
                        at,
                        permit,
                        gate,
                        slot: None,
                    },
                );
            }
            Err(e) => {
                pause = (pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                failures.note(|count| {
                    tracing::warn!(error = %e, count, "accepting {kind} connections failed; backing off");
                });
                tokio::time::sleep(pause).await;
            }
        }
    }
}
