//! A message to deliver ([`Delivery`]), and one message delivered to many subscriptions
//! ([`SharedDelivery`]), encoded once for each distinct set of octets.
//!
//! A topic message fans out to every subscriber. The MESSAGE frames differ only in what the
//! subscription puts in them: its id, its protocol version and, for `client` and
//! `client-individual` subscriptions, an `ack` header of its own (1.2 "MESSAGE"). Browsers
//! subscribe with the same ids (stompjs counts `sub-0`, `sub-1`, ...), so a broadcast to
//! thousands of them is a handful of distinct frames: each is encoded once and copied to the
//! others. A head is kept only once a second subscription asks for it, so a message for one
//! subscriber costs what a plain delivery does; a caller that knows the message has several
//! recipients says so ([`SharedDelivery::expecting`]), and each head is kept from the first.

use std::hash::{Hash, Hasher};

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHasher;
use stomp_codec::Encoder;

/// A message to deliver to a subscription: [`Delivery::new`], with
/// [`with_headers`](Delivery::with_headers) for headers of its own.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Delivery<'a> {
    /// The `destination` header: where the message was sent.
    pub destination: &'a str,
    /// The `message-id` header, unique across the server.
    pub message_id: &'a str,
    /// Further headers, after the session's own (which therefore win).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, shared by every delivery of the message.
    pub body: &'a Bytes,
}

impl<'a> Delivery<'a> {
    /// A message from `destination` with id `message_id`, and no further headers.
    pub fn new(destination: &'a str, message_id: &'a str, body: &'a Bytes) -> Delivery<'a> {
        Delivery {
            destination,
            message_id,
            headers: &[],
            body,
        }
    }

    /// The same delivery with further headers.
    #[must_use]
    pub fn with_headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Delivery<'a> {
        self.headers = headers;
        self
    }
}

/// Most heads kept for one message. Subscriptions choose their ids, so a broadcast to
/// thousands of distinct ids would otherwise keep thousands of heads and search them all for
/// each delivery; past this many kinds a delivery is encoded on its own, as `deliver` does.
const MAX_HEADS: usize = 8;

/// A [`Delivery`] about to go to many subscriptions, with the heads it has been encoded into
/// so far. Made for one message and dropped after it, so a head is never written for another
/// message: see [`ServerSession::deliver_shared`](crate::ServerSession::deliver_shared).
#[derive(Debug)]
pub struct SharedDelivery<'a> {
    delivery: Delivery<'a>,
    /// The heads encoded so far, by encoder and subscription id: at most [`MAX_HEADS`].
    heads: Vec<(Encoder, Box<str>, BytesMut)>,
    /// Fingerprints of the last subscriptions delivered to without keeping a head: a second
    /// delivery like one of them keeps its head. Fixed in size, so it never allocates; a
    /// fingerprint overwritten or shared only changes when a head starts being kept.
    seen: [u64; 4],
    next_seen: usize,
    /// Several recipients are expected: every head is kept from its first delivery.
    keep_first: bool,
}

impl<'a> SharedDelivery<'a> {
    /// `delivery`, not yet encoded for anyone.
    pub fn new(delivery: Delivery<'a>) -> SharedDelivery<'a> {
        SharedDelivery {
            delivery,
            heads: Vec::new(),
            seen: [0; 4],
            next_seen: 0,
            keep_first: false,
        }
    }

    /// Tells how many subscriptions the message is about to go to. With two or more, a head
    /// is kept from the first subscription of its kind rather than the second, which saves
    /// encoding it twice; the frames written are the same either way.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use stomp_session::{Delivery, SharedDelivery};
    ///
    /// let body = Bytes::from_static(b"hi");
    /// let shared = SharedDelivery::new(Delivery::new("/topic/news", "m-1", &body)).expecting(1000);
    /// assert_eq!(shared.delivery().destination, "/topic/news");
    /// ```
    #[must_use]
    pub fn expecting(mut self, recipients: usize) -> SharedDelivery<'a> {
        self.keep_first = recipients >= 2;
        self
    }

    /// The message.
    pub fn delivery(&self) -> Delivery<'a> {
        self.delivery
    }

    /// Whether a head for `encoder` and subscription `id` is kept, or is worth keeping now:
    /// unless several recipients are expected, the first delivery of each is encoded on its
    /// own, and noted.
    pub(crate) fn is_shared(&mut self, encoder: Encoder, id: &str) -> bool {
        let room = self.heads.len() < MAX_HEADS;
        // `head` finds the one kept, or keeps a new one while there is room.
        if self.keep_first && room {
            return true;
        }
        if self
            .heads
            .iter()
            .any(|(e, i, _)| *e == encoder && &**i == id)
        {
            return true;
        }
        if !room {
            return false;
        }
        // Only a hint, so the fastest hash will do: a collision, even one a client made, only
        // keeps a head sooner.
        let mut hasher = FxHasher::default();
        (encoder, id).hash(&mut hasher);
        // Zero marks an empty slot.
        let fingerprint = hasher.finish() | 1;
        if self.seen.contains(&fingerprint) {
            return true;
        }
        if let Some(slot) = self.seen.get_mut(self.next_seen % 4) {
            *slot = fingerprint;
        }
        self.next_seen += 1;
        false
    }

    /// The head encoded by `encoder` for subscription `id`: the one kept, or the one `encode`
    /// makes, kept for the next subscription like it.
    pub(crate) fn head<E>(
        &mut self,
        encoder: Encoder,
        id: &str,
        encode: impl FnOnce(&Delivery<'a>) -> Result<BytesMut, E>,
    ) -> Result<&[u8], E> {
        let kept = self
            .heads
            .iter()
            .position(|(e, i, _)| *e == encoder && &**i == id);
        let at = match kept {
            Some(at) => at,
            None => {
                let head = encode(&self.delivery)?;
                self.heads.push((encoder, Box::from(id), head));
                self.heads.len() - 1
            }
        };
        Ok(self.heads.get(at).map_or(&[][..], |(_, _, head)| &head[..]))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use stomp_codec::Version;

    use super::*;

    #[test]
    fn distinct_ids_keep_a_bounded_number_of_heads() {
        let body = Bytes::from_static(b"hi");
        let encoder = Encoder::new(Version::V1_2);
        for mut shared in [
            SharedDelivery::new(Delivery::new("/topic/a", "m-1", &body)).expecting(1000),
            SharedDelivery::new(Delivery::new("/topic/a", "m-1", &body)),
        ] {
            for n in 0..1000 {
                // Each id twice in a row: the second is like the first.
                for _ in 0..2 {
                    let id = format!("sub-{n}");
                    if shared.is_shared(encoder, &id) {
                        let head = shared.head(encoder, &id, |_| {
                            Ok::<_, ()>(BytesMut::from(&b"MESSAGE\n"[..]))
                        });
                        assert_eq!(head, Ok(&b"MESSAGE\n"[..]));
                    }
                }
            }
            assert_eq!(shared.heads.len(), MAX_HEADS);
        }
    }
}
