//! Persistence: the journal records of persistent queue messages, output that waits for
//! them, and queues rebuilt from them on start. See [`Broker`](super::Broker#persistence).

use std::time::Instant;

use bytes::Bytes;

use crate::config::Persistence;
use crate::ids::ConnectionId;
use crate::journal::{Record, Writer};
use crate::queue::Stored;
use crate::shard::Inner;

use super::durable::durable_queue;
use super::{Broker, Connection};

impl Broker {
    /// The journal records written since the last call, to append to the journal in order.
    /// Once they are on disk (synced), say how far with
    /// [`handle_journaled`](Self::handle_journaled): until then, the RECEIPTs, MESSAGEs and
    /// acknowledgements' RECEIPTs that depend on them are not handed out.
    #[must_use]
    pub fn poll_journal(&mut self) -> Option<Bytes> {
        self.journal.take()
    }

    /// The first `octets` of everything [`poll_journal`](Self::poll_journal) handed out (a
    /// running total) are on disk: output that waited for them may go.
    pub fn handle_journaled(&mut self, octets: u64) {
        self.journal.synced = self.journal.synced.max(octets);
        let synced = self.journal.synced;
        let connections = &self.connections;
        let ready = &mut self.ready;
        self.gated.retain(|id| match connections.get(id) {
            Some(c) if c.gate > synced => true,
            Some(_) => {
                ready.insert(*id);
                false
            }
            None => false,
        });
        self.release_afar();
    }

    /// With a journal and several shards: `connection`, here, waits for a record of another
    /// shard's journal, which that shard confirms; returns it, for the confirmation to name.
    pub(super) fn wait_afar(&mut self, connection: ConnectionId) -> Option<ConnectionId> {
        if self.config.persistence == Persistence::Off {
            return None;
        }
        let c = self.connections.get_mut(&connection)?;
        c.waits_afar += 1;
        Some(connection)
    }

    /// As the owner: `connection`, on shard `shard`, waits for everything written here so far.
    pub(super) fn confirm_afar(&mut self, shard: usize, connection: ConnectionId) {
        self.afar
            .push_back((self.journal.written, shard, connection));
        self.release_afar();
    }

    /// Tells the shards of connections waiting for records now synced.
    fn release_afar(&mut self) {
        while let Some(&(position, shard, connection)) = self.afar.front() {
            if position > self.journal.synced {
                break;
            }
            self.afar.pop_front();
            self.tell(shard, Inner::Synced { connection });
        }
    }

    /// A record `connection` waited for on another shard is on disk.
    pub(super) fn synced_afar(&mut self, connection: ConnectionId) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.waits_afar = c.waits_afar.saturating_sub(1);
            if c.waits_afar == 0 {
                self.ready.insert(connection);
            }
        }
    }

    /// The journal holds `bytes` on disk, against a limit of `limit`: at the limit, a
    /// connection that sends a persistent message is flow-controlled (its message is kept,
    /// its input not read) until the journal is back under it, as for a full queue; nothing
    /// is dropped. [`BrokerStats`](crate::BrokerStats) shows both.
    pub fn set_journal_usage(&mut self, now: Instant, bytes: u64, limit: u64) {
        let full = bytes >= limit;
        let was_full = std::mem::replace(&mut self.journal_usage.full, full);
        self.journal_usage.bytes = bytes;
        if was_full && !full {
            self.resume_publishers(now);
        }
    }

    /// The journal could not be written or synced (a full disk, a failed sync): every
    /// connection whose output waits for it is closed with an ERROR saying that what it sent
    /// was not stored, and gets none of the RECEIPTs that waited.
    pub fn handle_journal_failed(&mut self, now: Instant, error: &str) {
        let message = format!("not stored: the journal could not be written ({error})");
        for id in std::mem::take(&mut self.gated) {
            self.close_with_error(id, now, &message);
            // The ERROR itself waits for nothing.
            if let Some(c) = self.connections.get_mut(&id) {
                c.gate = 0;
            }
        }
    }

    /// Every persistent message the broker holds, as journal records that rebuild them on
    /// their own: to start a new journal from, so that the files before it can be deleted.
    /// Call it after [`poll_journal`](Self::poll_journal) has handed out everything, and write
    /// what `poll_journal` gives next after it.
    #[must_use]
    pub fn journal_snapshot(&self) -> Bytes {
        let mut snapshot = Writer::default();
        for (name, durable) in &self.durables {
            snapshot.durable(name, &durable.destination);
        }
        let in_flight = self.subscribers.values().flat_map(|s| s.unacked.values());
        let unwritten = (self.connections.values()).flat_map(|c| c.unwritten.iter());
        let held = in_flight
            .map(|(_, m)| m)
            .chain(unwritten.map(|u| &u.message))
            .chain(self.queues.waiting());
        for m in held {
            if let Some(key) = m.journaled {
                snapshot.put(m, key);
                // One record per delivery, so that the count towards the redelivery limit
                // survives too.
                for _ in 0..m.deliveries {
                    snapshot.delivered(key);
                }
            }
        }
        snapshot.take().unwrap_or_default()
    }

    /// Takes one record read back from the journal, in the order it was written, before any
    /// connection is opened. Call [`restored`](Self::restored) after the last.
    pub fn restore(&mut self, record: Record) {
        match record {
            Record::Put {
                key,
                destination,
                message_id,
                headers,
                body,
                origin,
            } => {
                let expires = super::dead_letter::expires_header(&headers);
                let message = Stored {
                    destination,
                    message_id,
                    headers,
                    body,
                    redelivered: false,
                    journaled: Some(key),
                    deliveries: 0,
                    expires,
                    origin,
                };
                self.restoring.insert(key, message);
            }
            Record::Delivered { key } => {
                if let Some(m) = self.restoring.get_mut(&key) {
                    m.redelivered = true;
                    m.deliveries += 1;
                }
            }
            Record::Removed { key } => {
                self.restoring.remove(&key);
            }
            Record::Durable { name, destination } => self.make_durable(&name, &destination),
            Record::DurableEnded { name } => {
                self.restoring
                    .retain(|_, m| m.destination != durable_queue(&name));
                self.end_durable(&name);
            }
        }
    }

    /// Puts the messages [`restore`](Self::restore) read back into their queues, in the order
    /// they were first taken, those delivered before marked `redelivered`; new messages get
    /// keys and ids after theirs. Returns how many there are.
    pub fn restored(&mut self, now: Instant) -> usize {
        let restored = std::mem::take(&mut self.restoring);
        let count = restored.len();
        let shard = self.config.shard;
        if let Some(last) = restored.keys().next_back() {
            // The `n` whose id is past every restored key.
            let n = (last.saturating_sub(1)) / shard.count as u64 + 1;
            self.next_message = self.next_message.max(n);
        }
        let mut queues = std::collections::BTreeSet::new();
        for message in restored.into_values() {
            queues.insert(message.destination.clone());
            self.queues.push(message);
        }
        for queue in queues {
            self.dispatch(now, &queue);
        }
        count
    }

    /// Holds `connection`'s output until the journal is synced past everything written so
    /// far.
    pub(super) fn hold_for_journal(&mut self, connection: ConnectionId) {
        if let Some(c) = self.connections.get_mut(&connection) {
            hold(c, &mut self.gated, connection, &self.journal);
        }
    }
}

/// Holds `c`'s output until `journal` is synced past everything written so far. A connection
/// is in `gated` exactly while its gate is past what is synced.
pub(super) fn hold(
    c: &mut Connection,
    gated: &mut Vec<ConnectionId>,
    id: ConnectionId,
    journal: &Writer,
) {
    if journal.written <= journal.synced {
        return;
    }
    if c.gate <= journal.synced {
        gated.push(id);
    }
    c.gate = journal.written;
}
