//! What a server session sends its client unasked: MESSAGE frames, each with the headers its
//! subscription and version call for (STOMP 1.2 "MESSAGE"), encoded once per distinct head when
//! one message goes to many subscriptions.

use std::time::Instant;

use bytes::BytesMut;
use stomp_codec::{Command, Version};

use crate::delivery::{Delivery, SharedDelivery};
use crate::error::SessionError;
use crate::ids::SubscriptionId;
use crate::types::AckMode;

use super::{ServerSession, State};

impl ServerSession {
    /// Delivers a message to subscription `id` as a MESSAGE frame. Messages of `client` and
    /// `client-individual` subscriptions then wait for their ACK or NACK.
    pub fn deliver(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        delivery: Delivery<'_>,
    ) -> Result<(), SessionError> {
        let ack_mode = self.deliverable(id)?;
        self.deliver_with(now, id, delivery, ack_mode)
    }

    /// [`deliver`](Self::deliver), to a subscription known to take messages in `ack_mode`.
    pub(super) fn deliver_with(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        delivery: Delivery<'_>,
        ack_mode: AckMode,
    ) -> Result<(), SessionError> {
        let ack_id = ack_mode.needs_ack().then(|| {
            self.next_ack += 1;
            self.next_ack.to_string()
        });
        // The `ack` header exists from 1.2 (1.2 "MESSAGE").
        let ack = ack_id
            .as_deref()
            .filter(|_| self.version() == Version::V1_2);
        let own = OwnHeaders::new(id, &delivery, ack);
        self.link
            .send(now, Command::Message, own.with(&delivery), delivery.body)?;
        if let Some(ack_id) = ack_id {
            self.subscriptions
                .delivered(id.as_str(), ack_id, delivery.message_id.to_owned());
        }
        Ok(())
    }

    /// Delivers like [`deliver`](Self::deliver) one message that goes to many subscriptions:
    /// a subscription without acknowledgements gets the very octets an earlier one with its id
    /// and protocol version got, encoded once (and kept from the second such subscription on,
    /// so a message for one costs what `deliver` does). A subscription that acknowledges gets
    /// a frame of its own, for its `ack` header.
    ///
    /// ```
    /// use std::time::Instant;
    /// use bytes::Bytes;
    /// use stomp_session::{Delivery, ServerConfig, ServerSession, SharedDelivery, SubscriptionId};
    ///
    /// let now = Instant::now();
    /// let mut sessions: Vec<ServerSession> = (0..3)
    ///     .map(|_| {
    ///         let mut session = ServerSession::new(ServerConfig::default(), now);
    ///         session.handle_input(now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0");
    ///         let _connect = session.poll_event();
    ///         session.accept(now).unwrap();
    ///         session.handle_input(now, b"SUBSCRIBE\nid:sub-0\ndestination:/topic/a\n\n\0");
    ///         while session.poll_event().is_some() {}
    ///         while session.poll_transmit().is_some() {}
    ///         session
    ///     })
    ///     .collect();
    /// let body = Bytes::from_static(b"hello");
    /// let mut shared = SharedDelivery::new(Delivery::new("/topic/a", "m-1", &body));
    /// let id = SubscriptionId::from("sub-0");
    /// for session in &mut sessions {
    ///     session.deliver_shared(now, &id, &mut shared).unwrap();
    /// }
    /// let frames: Vec<Bytes> = sessions.iter_mut().map(|s| s.poll_transmit().unwrap()).collect();
    /// assert!(frames.iter().all(|f| f == &frames[0]));
    /// assert!(frames[0].starts_with(b"MESSAGE\nsubscription:sub-0\nmessage-id:m-1\n"));
    /// ```
    pub fn deliver_shared(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        shared: &mut SharedDelivery<'_>,
    ) -> Result<(), SessionError> {
        let encoder = self.link.encoder();
        let ack_mode = self.deliverable(id)?;
        if ack_mode.needs_ack() || !shared.is_shared(encoder, id.as_str()) {
            return self.deliver_with(now, id, shared.delivery(), ack_mode);
        }
        let body = shared.delivery().body;
        let head = shared.head(encoder, id.as_str(), |delivery| {
            // Sized up front: grown a few octets at a time, the head would be reallocated
            // half a dozen times, which costs more than encoding it.
            let mut head = BytesMut::with_capacity(head_capacity(id, delivery));
            let own = OwnHeaders::new(id, delivery, None);
            encoder
                .encode_head_parts(
                    Command::Message,
                    own.with(delivery),
                    delivery.body,
                    &mut head,
                )
                .map(|()| head)
        })?;
        self.link.send_encoded(now, head, body);
        Ok(())
    }

    /// The ack mode of subscription `id`, when a message can be delivered to it.
    pub(super) fn deliverable(&self, id: &SubscriptionId) -> Result<AckMode, SessionError> {
        match self.state {
            State::Connected => {}
            State::Closing | State::Closed => return Err(SessionError::Closed),
            _ => return Err(SessionError::NotConnected),
        }
        self.subscriptions
            .get(id.as_str())
            .map(|s| s.ack)
            .ok_or_else(|| SessionError::UnknownSubscription(id.clone()))
    }
}

/// Room for a MESSAGE head of `delivery` to `id`, unless escaping lengthens it.
fn head_capacity(id: &SubscriptionId, delivery: &Delivery<'_>) -> usize {
    // The command, the names of the session's own headers, `content-length` and the line ends.
    let fixed = 96;
    let own = id.as_str().len() + delivery.message_id.len() + delivery.destination.len();
    let further: usize = delivery
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum();
    fixed + own + further
}

/// The headers a MESSAGE starts with (1.2 "MESSAGE"), `ack` last where there is one; the
/// message's own follow them. Two slices make a cheaper iterator for the encoder, which walks
/// the headers twice per frame, than a chain of an array, an option and a slice.
struct OwnHeaders<'h> {
    headers: [(&'h str, &'h str); 4],
    len: usize,
}

impl<'h> OwnHeaders<'h> {
    fn new(id: &'h SubscriptionId, delivery: &Delivery<'h>, ack: Option<&'h str>) -> Self {
        let (last, len) = ack.map_or((("", ""), 3), |ack| (("ack", ack), 4));
        OwnHeaders {
            headers: [
                ("subscription", id.as_str()),
                ("message-id", delivery.message_id),
                ("destination", delivery.destination),
                last,
            ],
            len,
        }
    }

    /// Every header of the MESSAGE that carries `delivery`.
    fn with<'a>(
        &'a self,
        delivery: &'a Delivery<'h>,
    ) -> impl Iterator<Item = (&'h str, &'h str)> + Clone + 'a {
        let own = self.headers.get(..self.len).unwrap_or_default();
        own.iter().chain(delivery.headers).copied()
    }
}
