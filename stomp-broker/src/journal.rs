//! The journal of persistent queue messages: what the broker writes ahead of telling a client
//! (a RECEIPT, a MESSAGE, an acknowledgement's RECEIPT) so that a restart finds every message
//! it had taken and not yet seen acknowledged, in order.
//!
//! The broker does no IO: it hands the driver encoded records ([`Broker::poll_journal`]), the
//! driver appends them to its files and syncs them, and says how far ([`Broker::handle_journaled`]);
//! a connection's output waits until every record written on its behalf is synced. On start the
//! driver reads its files back with [`Reader`] and gives the records to [`Broker::restore`].
//!
//! # Record format
//!
//! Each record is `length: u32 LE` (of what follows the checksum), `crc32: u32 LE` (of what
//! follows it), then `kind: u8` and its fields; integers little-endian, strings and bodies as a
//! `u32` length and their octets:
//! - `1` put: key `u64`, queue, message id, header count `u16`, headers (name, value), body,
//!   origin (the topic it was published to, for a durable subscription's queue; else empty):
//!   a message taken into a queue;
//! - `2` delivered: key `u64`: handed to a consumer (it comes back marked `redelivered`);
//! - `3` removed: key `u64`: acknowledged, or written under auto ack: gone for good;
//! - `4` durable: name, destination: a durable topic subscription made (or moved);
//! - `5` durable ended: name: a durable topic subscription ended by its client.
//!
//! A record cut short or whose checksum does not match ends what [`Reader`] reads: a torn
//! write at the end of the log, which the driver cuts off.
//!
//! [`Broker::poll_journal`]: crate::Broker::poll_journal
//! [`Broker::handle_journaled`]: crate::Broker::handle_journaled
//! [`Broker::restore`]: crate::Broker::restore

use bytes::{BufMut, Bytes, BytesMut};

const PUT: u8 = 1;
const DELIVERED: u8 = 2;
const REMOVED: u8 = 3;
const DURABLE: u8 = 4;
const DURABLE_ENDED: u8 = 5;
/// Length and checksum.
const FRAMING: usize = 8;
/// The largest record a reader accepts: a body or header past it is corruption, not data.
const MAX_RECORD: usize = 1 << 30;

/// One journal record, as [`Reader`] reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A message taken into a queue.
    Put {
        /// Its key in the journal, unique for the journal's life.
        key: u64,
        /// The queue.
        destination: String,
        /// Its `message-id`.
        message_id: String,
        /// The headers it is delivered with.
        headers: Vec<(String, String)>,
        /// Its body.
        body: Bytes,
        /// The topic it was published to, when the queue is a durable subscription's.
        origin: Option<String>,
    },
    /// The message was handed to a consumer.
    Delivered {
        /// Its key.
        key: u64,
    },
    /// The message is done with: acknowledged, or written under auto ack.
    Removed {
        /// Its key.
        key: u64,
    },
    /// A durable topic subscription was made, or moved to another destination.
    Durable {
        /// Its name.
        name: String,
        /// The topic (or pattern) it subscribes to.
        destination: String,
    },
    /// A durable topic subscription was ended by its client: its messages are gone.
    DurableEnded {
        /// Its name.
        name: String,
    },
}

/// Records being written: what [`Broker::poll_journal`](crate::Broker::poll_journal) hands out.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pending: BytesMut,
    /// Octets encoded since the start: the position of the end of the journal.
    pub(crate) written: u64,
    /// Octets the driver has reported synced.
    pub(crate) synced: u64,
}

impl Writer {
    pub(crate) fn put(&mut self, m: &crate::queue::Stored, key: u64) {
        let (destination, message_id, headers, body) =
            (&m.destination, &m.message_id, &m.headers, &m.body);
        let origin = m.origin.as_deref().unwrap_or("");
        self.record(|out| {
            out.put_u8(PUT);
            out.put_u64_le(key);
            put_str(out, destination.as_bytes());
            put_str(out, message_id.as_bytes());
            out.put_u16_le(headers.len().min(usize::from(u16::MAX)) as u16);
            for (name, value) in headers.iter().take(usize::from(u16::MAX)) {
                put_str(out, name.as_bytes());
                put_str(out, value.as_bytes());
            }
            put_str(out, body);
            put_str(out, origin.as_bytes());
        });
    }

    pub(crate) fn durable(&mut self, name: &str, destination: &str) {
        self.record(|out| {
            out.put_u8(DURABLE);
            put_str(out, name.as_bytes());
            put_str(out, destination.as_bytes());
        });
    }

    pub(crate) fn durable_ended(&mut self, name: &str) {
        self.record(|out| {
            out.put_u8(DURABLE_ENDED);
            put_str(out, name.as_bytes());
        });
    }

    pub(crate) fn delivered(&mut self, key: u64) {
        self.record(|out| {
            out.put_u8(DELIVERED);
            out.put_u64_le(key);
        });
    }

    pub(crate) fn removed(&mut self, key: u64) {
        self.record(|out| {
            out.put_u8(REMOVED);
            out.put_u64_le(key);
        });
    }

    /// Everything encoded since the last call.
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }

    fn record(&mut self, fill: impl FnOnce(&mut BytesMut)) {
        let start = self.pending.len();
        self.pending.put_bytes(0, FRAMING);
        fill(&mut self.pending);
        let payload = &self.pending[start + FRAMING..];
        let length = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        self.pending[start..start + 4].copy_from_slice(&length.to_le_bytes());
        self.pending[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.written += (self.pending.len() - start) as u64;
    }
}

fn put_str(out: &mut BytesMut, s: &[u8]) {
    out.put_u32_le(s.len() as u32);
    out.put_slice(s);
}

/// Reads records back from the bytes of a journal file, up to the first one that is cut
/// short or corrupt.
///
/// ```
/// use stomp_broker::journal::{Reader, Record};
///
/// let mut reader = Reader::new(&b"\x09\x00\x00\x00"[..]);
/// assert_eq!(reader.next(), None); // cut short
/// assert_eq!(reader.valid_len(), 0);
/// ```
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    torn: bool,
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            at: 0,
            torn: false,
        }
    }

    /// Octets of whole, sound records read so far: where a torn tail begins once
    /// [`next`](Iterator::next) has returned `None`.
    pub fn valid_len(&self) -> usize {
        self.at
    }

    /// Whether reading stopped at a record cut short or corrupt, rather than at the end.
    pub fn is_torn(&self) -> bool {
        self.torn
    }

    fn decode(&self) -> Option<(Record, usize)> {
        let rest = &self.bytes[self.at..];
        let length = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?);
        if length > MAX_RECORD {
            return None;
        }
        let payload = rest.get(FRAMING..FRAMING + length)?;
        if crc32fast::hash(payload) != crc {
            return None;
        }
        let mut fields = Fields(payload);
        let record = match fields.u8()? {
            PUT => {
                let key = fields.u64()?;
                let destination = fields.string()?;
                let message_id = fields.string()?;
                let count = fields.u16()?;
                let mut headers = Vec::with_capacity(usize::from(count).min(64));
                for _ in 0..count {
                    headers.push((fields.string()?, fields.string()?));
                }
                let body = Bytes::copy_from_slice(fields.bytes()?);
                let origin = Some(fields.string()?).filter(|o| !o.is_empty());
                Record::Put {
                    key,
                    destination,
                    message_id,
                    headers,
                    body,
                    origin,
                }
            }
            DURABLE => Record::Durable {
                name: fields.string()?,
                destination: fields.string()?,
            },
            DURABLE_ENDED => Record::DurableEnded {
                name: fields.string()?,
            },
            DELIVERED => Record::Delivered { key: fields.u64()? },
            REMOVED => Record::Removed { key: fields.u64()? },
            _ => return None,
        };
        fields.0.is_empty().then_some((record, FRAMING + length))
    }
}

impl Iterator for Reader<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.torn || self.at == self.bytes.len() {
            return None;
        }
        match self.decode() {
            Some((record, length)) => {
                self.at += length;
                Some(record)
            }
            None => {
                self.torn = true;
                None
            }
        }
    }
}

/// The fields of one record's payload, read front to back.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Writer, Bytes) {
        let mut w = Writer::default();
        let message = crate::queue::Stored {
            destination: "/queue/a".into(),
            message_id: "m-7".into(),
            headers: vec![("persistent".into(), "true".into())],
            body: Bytes::from_static(b"hello"),
            redelivered: false,
            journaled: Some(7),
            deliveries: 0,
            expires: None,
            origin: None,
        };
        w.put(&message, 7);
        w.delivered(7);
        w.removed(7);
        let bytes = w.take().unwrap();
        (w, bytes)
    }

    #[test]
    fn records_read_back_as_written() {
        let (w, bytes) = sample();
        assert_eq!(w.written, bytes.len() as u64);
        let records: Vec<Record> = Reader::new(&bytes).collect();
        assert_eq!(records.len(), 3);
        assert!(
            matches!(&records[0], Record::Put { key: 7, destination, body, .. }
            if destination == "/queue/a" && &body[..] == b"hello")
        );
        assert_eq!(records[1], Record::Delivered { key: 7 });
        assert_eq!(records[2], Record::Removed { key: 7 });
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_reading_at_the_last_sound_record() {
        let (_, bytes) = sample();
        let whole = Reader::new(&bytes).count();
        for cut in 0..bytes.len() {
            let mut reader = Reader::new(&bytes[..cut]);
            let read = reader.by_ref().count();
            assert!(read < whole);
            assert!(reader.valid_len() <= cut);
        }
        let mut flipped = bytes.to_vec();
        flipped[12] ^= 1;
        let mut reader = Reader::new(&flipped);
        assert_eq!(reader.by_ref().count(), 0);
        assert!(reader.is_torn());
        assert_eq!(reader.valid_len(), 0);
    }
}
