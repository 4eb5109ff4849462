//! The journal on disk, for a server with a data directory: the broker's journal records
//! appended to a log file by a thread of their own, synced once for everything that came
//! meanwhile (group commit), and compacted by starting a new log from a snapshot of the live
//! messages and deleting the files before it.
//!
//! Files in the data directory, `N` a sequence number (20 digits, so that names sort):
//! - `N.log`: records appended since snapshot `N`;
//! - `N.snapshot`: the live messages when log `N` began, written whole (as `N.snapshot.tmp`,
//!   synced, then renamed), so that it exists only complete.
//!
//! Recovery reads the newest snapshot and every log from its number on, in order; a record
//! cut short or corrupt at the end of the last log (a write torn by a crash) is cut off, and
//! logged; one anywhere else is an error. Then it writes a new snapshot and starts a new
//! log, so every start also compacts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_broker::Broker;
use stomp_broker::journal::Reader;
use tokio::sync::mpsc;

use crate::channel::ToHub;

/// Journal octets written since the last snapshot past which the server considers one.
const COMPACT_AFTER: u64 = 64 * 1024 * 1024;
/// A snapshot is taken once the log holds this many times what is live.
const COMPACT_RATIO: u64 = 4;

/// What a start found in the data directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recovery {
    /// Records read back.
    pub(crate) records: u64,
    /// Messages back in their queues.
    pub(crate) messages: usize,
    /// Octets of a torn or corrupt end cut off the last log.
    pub(crate) cut: u64,
    /// How long reading, restoring and the first snapshot took.
    pub(crate) took: Duration,
}

/// What the hub hands the journal thread.
enum ToDisk {
    Append(Bytes),
    /// Everything live, as records: the next log starts here.
    Snapshot(Bytes),
}

/// The hub's side of the journal: it hands over records, and learns from its inbox
/// ([`ToHub::Journaled`]) how far they are synced.
#[derive(Debug)]
pub(crate) struct Store {
    to_disk: std_mpsc::Sender<ToDisk>,
    /// Octets handed over since the last snapshot.
    since_snapshot: u64,
    /// Octets of the last snapshot.
    snapshot: u64,
    /// When `since_snapshot` is next compared with what is live.
    next_check: u64,
    /// Most octets the journal may hold on disk.
    limit: u64,
}

impl std::fmt::Debug for ToDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToDisk::Append(b) => write!(f, "Append({})", b.len()),
            ToDisk::Snapshot(b) => write!(f, "Snapshot({})", b.len()),
        }
    }
}

impl Store {
    /// Restores `broker` from the journal in `dir` (created if missing), compacts it, and
    /// starts the thread that writes it on; what it syncs is reported to `hub`.
    pub(crate) fn open(
        dir: &Path,
        limit: u64,
        broker: &mut Broker,
        hub: mpsc::Sender<ToHub>,
    ) -> io::Result<(Store, Recovery)> {
        #[allow(clippy::disallowed_methods)] // how long recovery took, for the log
        let started = Instant::now();
        fs::create_dir_all(dir)?;
        let files = Files::list(dir)?;
        let mut records = 0u64;
        let mut cut = 0u64;
        if let Some(snapshot) = files.snapshot {
            let bytes = fs::read(files.path(snapshot, SNAPSHOT))?;
            let mut reader = Reader::new(&bytes);
            for record in reader.by_ref() {
                broker.restore(record);
                records += 1;
            }
            if reader.is_torn() {
                return Err(corrupt(&files.path(snapshot, SNAPSHOT), reader.valid_len()));
            }
        }
        let logs: Vec<u64> = files.logs_from(files.snapshot.unwrap_or(0));
        for (i, &log) in logs.iter().enumerate() {
            let path = files.path(log, LOG);
            let bytes = fs::read(&path)?;
            let mut reader = Reader::new(&bytes);
            for record in reader.by_ref() {
                broker.restore(record);
                records += 1;
            }
            if reader.is_torn() {
                if i + 1 < logs.len() {
                    return Err(corrupt(&path, reader.valid_len()));
                }
                let torn = bytes.len() - reader.valid_len();
                tracing::warn!(
                    file = %path.display(),
                    at = reader.valid_len(),
                    octets = torn,
                    "the journal ends in a torn or corrupt record: cut off"
                );
                cut = torn as u64;
            }
        }
        #[allow(clippy::disallowed_methods)] // the broker's clock starts here
        let messages = broker.restored(Instant::now());
        // Every start compacts: a snapshot of what is live begins the next log, and
        // everything before it goes.
        let next = files.last().map_or(1, |n| n + 1);
        let snapshot = broker.journal_snapshot();
        write_snapshot(dir, next, &snapshot)?;
        let log = create_log(dir, next)?;
        files.delete_before(next)?;
        let (to_disk, from_hub) = std_mpsc::channel();
        let disk = Disk {
            dir: dir.to_owned(),
            seq: next,
            log,
            synced: 0,
        };
        std::thread::Builder::new()
            .name("stomp-journal".into())
            .spawn(move || disk.run(&from_hub, &hub))?;
        let recovery = Recovery {
            records,
            messages,
            cut,
            took: started.elapsed(),
        };
        let store = Store {
            to_disk,
            since_snapshot: 0,
            snapshot: snapshot.len() as u64,
            next_check: COMPACT_AFTER,
            limit,
        };
        Ok((store, recovery))
    }

    /// Hands the broker's new records to the journal thread, and a snapshot when the log has
    /// grown well past what is live, or when the journal is at its limit and a snapshot would
    /// make room; tells the broker how much the journal holds.
    pub(crate) fn take_from(&mut self, broker: &mut Broker, now: Instant) {
        while let Some(records) = broker.poll_journal() {
            self.since_snapshot += records.len() as u64;
            // A thread that is gone has reported why; the broker keeps holding what waits.
            let _ = self.to_disk.send(ToDisk::Append(records));
        }
        let at_limit = self.disk_bytes() >= self.limit;
        if self.since_snapshot >= self.next_check || at_limit {
            let live = broker.queued_bytes() as u64;
            let ratio = if at_limit { 2 } else { COMPACT_RATIO };
            if self.disk_bytes() > live.saturating_mul(ratio) {
                let snapshot = broker.journal_snapshot();
                self.snapshot = snapshot.len() as u64;
                let _ = self.to_disk.send(ToDisk::Snapshot(snapshot));
                self.since_snapshot = 0;
                self.next_check = COMPACT_AFTER;
            } else {
                self.next_check = self.since_snapshot + COMPACT_AFTER;
            }
        }
        broker.set_journal_usage(now, self.disk_bytes(), self.limit);
    }

    /// Octets the journal holds on disk: the last snapshot and the log after it.
    fn disk_bytes(&self) -> u64 {
        self.snapshot + self.since_snapshot
    }
}

/// Where shard `index` of `count` keeps its journal: `dir` itself for one shard.
pub(crate) fn shard_dir(dir: &Path, index: usize, count: usize) -> PathBuf {
    if count == 1 {
        dir.to_owned()
    } else {
        dir.join(format!("shard-{index}"))
    }
}

/// Records in `dir` the number of shards its journals are for, or checks it against the one
/// recorded: with another, queues would be restored on shards that no longer own them.
pub(crate) fn check_shards(dir: &Path, shards: usize) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let marker = dir.join("shards");
    match fs::read_to_string(&marker) {
        Ok(text) if text.trim() == shards.to_string() => Ok(()),
        Ok(text) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the data directory {} was made with {} shards, not {shards}: start with --shards {}",
                dir.display(),
                text.trim(),
                text.trim()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::write(&marker, format!("{shards}\n"))?;
            sync_dir(dir)
        }
        Err(e) => Err(e),
    }
}

const LOG: &str = "log";
const SNAPSHOT: &str = "snapshot";

/// The journal files found in a data directory.
struct Files {
    dir: PathBuf,
    logs: Vec<u64>,
    snapshots: Vec<u64>,
    /// The newest snapshot.
    snapshot: Option<u64>,
}

impl Files {
    fn list(dir: &Path) -> io::Result<Files> {
        let mut logs = Vec::new();
        let mut snapshots = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
                continue;
            };
            if ext == "tmp" {
                // A snapshot never finished: it was never used.
                fs::remove_file(&path)?;
                continue;
            }
            let Some(seq) = stem.to_str().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            match ext.to_str() {
                Some(LOG) => logs.push(seq),
                Some(SNAPSHOT) => snapshots.push(seq),
                _ => {}
            }
        }
        logs.sort_unstable();
        snapshots.sort_unstable();
        Ok(Files {
            dir: dir.to_owned(),
            snapshot: snapshots.last().copied(),
            logs,
            snapshots,
        })
    }

    fn path(&self, seq: u64, ext: &str) -> PathBuf {
        path(&self.dir, seq, ext)
    }

    fn logs_from(&self, seq: u64) -> Vec<u64> {
        self.logs.iter().copied().filter(|l| *l >= seq).collect()
    }

    fn last(&self) -> Option<u64> {
        self.logs.iter().chain(&self.snapshots).copied().max()
    }

    fn delete_before(&self, seq: u64) -> io::Result<()> {
        delete_before(&self.dir, seq)
    }
}

fn path(dir: &Path, seq: u64, ext: &str) -> PathBuf {
    dir.join(format!("{seq:020}.{ext}"))
}

fn corrupt(path: &Path, at: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "journal file {} is corrupt at octet {at}, before its end: not starting on a journal that would lose messages",
            path.display()
        ),
    )
}

/// Writes snapshot `seq` whole: to a temporary file, synced, then renamed.
fn write_snapshot(dir: &Path, seq: u64, records: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{seq:020}.{SNAPSHOT}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(records)?;
    file.sync_all()?;
    fs::rename(&tmp, path(dir, seq, SNAPSHOT))?;
    sync_dir(dir)
}

fn create_log(dir: &Path, seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(dir, seq, LOG))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Deletes every log and snapshot numbered below `seq`.
fn delete_before(dir: &Path, seq: u64) -> io::Result<()> {
    let files = Files::list(dir)?;
    for log in files.logs.iter().filter(|l| **l < seq) {
        fs::remove_file(path(dir, *log, LOG))?;
    }
    for snapshot in files.snapshots.iter().filter(|s| **s < seq) {
        fs::remove_file(path(dir, *snapshot, SNAPSHOT))?;
    }
    sync_dir(dir)
}

/// Makes a directory's entries (files created, renamed, removed) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The journal thread's side: the log being appended to.
struct Disk {
    dir: PathBuf,
    seq: u64,
    log: File,
    /// Octets of records synced, counted as the broker hands them out.
    synced: u64,
}

impl Disk {
    /// Appends and syncs until the hub is gone: each round takes everything that has come,
    /// writes it, syncs once, and reports how far. After a failure every later round fails
    /// too: records after a lost one must not count as kept.
    fn run(mut self, from_hub: &std_mpsc::Receiver<ToDisk>, hub: &mpsc::Sender<ToHub>) {
        let mut failed: Option<String> = None;
        while let Ok(first) = from_hub.recv() {
            let batch = std::iter::once(first).chain(from_hub.try_iter());
            let outcome = match &failed {
                Some(error) => {
                    batch.for_each(drop);
                    Err(error.clone())
                }
                None => self.write(batch).map_err(|e| e.to_string()),
            };
            if let Err(error) = &outcome {
                if failed.is_none() {
                    tracing::error!(%error, "the journal could not be written: messages that wait for it are refused");
                }
                failed = Some(error.clone());
            }
            if hub.blocking_send(ToHub::Journaled(outcome)).is_err() {
                return;
            }
        }
    }

    /// Writes a batch and syncs it; returns how far the journal is synced.
    fn write(&mut self, batch: impl Iterator<Item = ToDisk>) -> io::Result<u64> {
        let mut written = self.synced;
        for write in batch {
            match write {
                ToDisk::Append(records) => {
                    self.log.write_all(&records)?;
                    written += records.len() as u64;
                }
                ToDisk::Snapshot(records) => {
                    // What came before it is complete before the next log begins.
                    self.log.sync_data()?;
                    self.seq += 1;
                    write_snapshot(&self.dir, self.seq, &records)?;
                    self.log = create_log(&self.dir, self.seq)?;
                    delete_before(&self.dir, self.seq)?;
                }
            }
        }
        self.log.sync_data()?;
        self.synced = written;
        Ok(written)
    }
}
