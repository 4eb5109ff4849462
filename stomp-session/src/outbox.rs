//! Bytes waiting to be written, in order. Small frames are packed into one buffer; a large
//! body is queued as its own `Bytes`, never copied.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use stomp_codec::{Command, EncodeError, Encoder};

/// Bodies at least this large are handed out apart from their head.
const LARGE_BODY: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Buffers ready to go, oldest first. Every byte here precedes every byte of `pending`.
    ready: VecDeque<Bytes>,
    /// Small frames being packed together.
    pending: BytesMut,
    /// Octets ever queued, handed out or not: the offset just past the last one queued.
    queued: u64,
}

impl Outbox {
    /// Queues one frame. Nothing is queued if it cannot be encoded.
    pub(crate) fn push_frame<'h, I>(
        &mut self,
        encoder: &Encoder,
        command: Command,
        headers: I,
        body: &Bytes,
    ) -> Result<(), EncodeError>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
        I::IntoIter: Clone,
    {
        if body.len() < LARGE_BODY {
            let before = self.pending.len();
            encoder.encode_parts(command, headers, body, &mut self.pending)?;
            self.queued += (self.pending.len() - before) as u64;
            return Ok(());
        }
        let before = self.pending.len();
        encoder.encode_head_parts(command, headers, body, &mut self.pending)?;
        let head = self.pending.len() - before;
        self.ready.push_back(self.pending.split().freeze());
        self.ready.push_back(body.clone());
        self.pending.put_slice(Encoder::FRAME_END);
        self.queued += (head + body.len() + Encoder::FRAME_END.len()) as u64;
        Ok(())
    }

    /// Queues a frame whose head is already encoded: the head, `body` and the NUL.
    pub(crate) fn push_encoded(&mut self, head: &[u8], body: &Bytes) {
        self.pending.put_slice(head);
        if body.len() < LARGE_BODY {
            self.pending.put_slice(body);
        } else {
            self.ready.push_back(self.pending.split().freeze());
            self.ready.push_back(body.clone());
        }
        self.pending.put_slice(Encoder::FRAME_END);
        self.queued += (head.len() + body.len() + Encoder::FRAME_END.len()) as u64;
    }

    /// Queues raw octets, such as a heart-beat EOL.
    pub(crate) fn push_raw(&mut self, octets: &[u8]) {
        self.pending.put_slice(octets);
        self.queued += octets.len() as u64;
    }

    /// Octets ever queued, handed out or not.
    pub(crate) fn octets_queued(&self) -> u64 {
        self.queued
    }

    /// The next buffer to write.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        if let Some(next) = self.ready.pop_front() {
            return Some(next);
        }
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.pending.is_empty()
    }

    /// Forgets everything not yet handed out.
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stomp_codec::Version;

    #[test]
    fn large_bodies_are_not_copied_and_order_is_kept() {
        let encoder = Encoder::new(Version::V1_2);
        let mut out = Outbox::default();
        let big = Bytes::from(vec![b'x'; LARGE_BODY]);
        out.push_frame(
            &encoder,
            Command::Send,
            [("destination", "/a")],
            &Bytes::new(),
        )
        .unwrap();
        out.push_frame(&encoder, Command::Send, [("destination", "/b")], &big)
            .unwrap();
        out.push_raw(b"\n");
        let first = out.pop().unwrap();
        assert_eq!(
            &first[..],
            b"SEND\ndestination:/a\n\n\0SEND\ndestination:/b\n\n"
        );
        let body = out.pop().unwrap();
        assert_eq!(
            body.as_ptr(),
            big.as_ptr(),
            "the body is handed out as it was given"
        );
        assert_eq!(&out.pop().unwrap()[..], b"\0\n");
        assert!(out.pop().is_none() && out.is_empty());
        assert_eq!(
            out.octets_queued(),
            (first.len() + body.len() + 2) as u64,
            "every octet handed out was counted once"
        );
    }
}
