//! One message delivered to many subscriptions, encoded once for each distinct set of octets.
//!
//! A topic message fans out to every subscriber. The MESSAGE frames differ only in what the
//! subscription puts in them: its id, its protocol version and, for `client` and
//! `client-individual` subscriptions, an `ack` header of its own (1.2 "MESSAGE"). Browsers
//! subscribe with the same ids (stompjs counts `sub-0`, `sub-1`, ...), so a broadcast to
//! thousands of them is a handful of distinct frames: each is encoded once and copied to the
//! others.

use bytes::BytesMut;
use stomp_codec::Encoder;

use crate::server::Delivery;

/// A [`Delivery`] about to go to many subscriptions, with the heads it has been encoded into
/// so far. Made for one message and dropped after it, so a head is never written for another
/// message: see [`ServerSession::deliver_shared`](crate::ServerSession::deliver_shared).
#[derive(Debug)]
pub struct SharedDelivery<'a> {
    delivery: Delivery<'a>,
    /// The heads encoded so far, by encoder and subscription id. Few: one per distinct id.
    heads: Vec<(Encoder, Box<str>, BytesMut)>,
}

impl<'a> SharedDelivery<'a> {
    /// `delivery`, not yet encoded for anyone.
    pub fn new(delivery: Delivery<'a>) -> SharedDelivery<'a> {
        SharedDelivery {
            delivery,
            heads: Vec::new(),
        }
    }

    /// The message.
    pub fn delivery(&self) -> Delivery<'a> {
        self.delivery
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
