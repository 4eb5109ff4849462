//! What both sides share: bytes in through the codec, frames out through the outbox, and the
//! heart-beat clock (1.2 "Heart-beating").

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use stomp_codec::{Command, Config, Decoder, EncodeError, Encoder, Item, Version};

use crate::heartbeat::Periods;
use crate::outbox::Outbox;

#[derive(Debug)]
pub(crate) struct Link {
    decoder: Decoder,
    inbox: BytesMut,
    encoder: Encoder,
    outbox: Outbox,
    periods: Periods,
    /// How many receive periods of silence make the peer dead.
    margin: f64,
    last_sent: Instant,
    last_received: Instant,
    /// The driver has stopped reading the peer (flow control): its silence does not count.
    input_paused: bool,
    /// Frames decoded, heart-beats aside.
    frames_received: u64,
    /// Frames queued for writing, heart-beats aside.
    frames_sent: u64,
}

impl Link {
    pub(crate) fn new(config: Config, margin: f64, now: Instant) -> Link {
        Link {
            decoder: Decoder::new(config),
            inbox: BytesMut::new(),
            // content-length on every frame with a body: receivers need not scan for the NUL,
            // and the sender never scans a body for NULs to decide (RabbitMQ and stompjs do the
            // same).
            encoder: Encoder::new(config.version()).always_content_length(true),
            outbox: Outbox::default(),
            periods: Periods::default(),
            margin: sane_margin(margin),
            last_sent: now,
            last_received: now,
            input_paused: false,
            frames_received: 0,
            frames_sent: 0,
        }
    }

    pub(crate) fn version(&self) -> Version {
        self.encoder.version()
    }

    /// Both directions follow `version` from now on.
    pub(crate) fn set_version(&mut self, version: Version) {
        self.decoder.set_version(version);
        self.encoder.set_version(version);
    }

    /// Takes received bytes. Any octet proves the peer alive, a heart-beat or not.
    pub(crate) fn receive(&mut self, now: Instant, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.last_received = now;
            self.inbox.extend_from_slice(bytes);
        }
    }

    /// Octets received and not yet decoded.
    pub(crate) fn buffered(&self) -> usize {
        self.inbox.len()
    }

    /// The command of the frame being received, once its command line is in.
    pub(crate) fn command_in_progress(&self) -> Option<Command> {
        self.decoder.command_in_progress()
    }

    /// The next decoded item of what was received.
    pub(crate) fn next_item(&mut self) -> Result<Option<Item>, stomp_codec::Error> {
        let item = self.decoder.decode(&mut self.inbox)?;
        if let Some(Item::Frame(_)) = item {
            self.frames_received += 1;
        }
        Ok(item)
    }

    /// Frames decoded and queued for writing so far, heart-beats aside.
    pub(crate) fn frame_counts(&self) -> (u64, u64) {
        (self.frames_received, self.frames_sent)
    }

    /// Queues a frame; it counts as sending for the heart-beat clock.
    pub(crate) fn send<'h, I>(
        &mut self,
        now: Instant,
        command: Command,
        headers: I,
        body: &Bytes,
    ) -> Result<(), EncodeError>
    where
        I: IntoIterator<Item = (&'h str, &'h str)>,
        I::IntoIter: Clone,
    {
        self.outbox
            .push_frame(&self.encoder, command, headers, body)?;
        self.last_sent = now;
        self.frames_sent += 1;
        Ok(())
    }

    /// Queues a frame whose head is already encoded.
    pub(crate) fn send_encoded(&mut self, now: Instant, head: &[u8], body: &Bytes) {
        self.outbox.push_encoded(head, body);
        self.last_sent = now;
        self.frames_sent += 1;
    }

    /// The encoder frames are written with.
    pub(crate) fn encoder(&self) -> Encoder {
        self.encoder
    }

    /// Starts heart-beating with the negotiated periods.
    pub(crate) fn start_heart_beats(&mut self, now: Instant, periods: Periods) {
        self.periods = periods;
        self.last_sent = now;
        self.last_received = now;
    }

    /// Stops heart-beating both ways, as after DISCONNECT or a close.
    pub(crate) fn stop_heart_beats(&mut self) {
        self.periods = Periods::default();
    }

    pub(crate) fn periods(&self) -> Periods {
        self.periods
    }

    /// When an EOL is due if nothing else is sent first.
    fn send_deadline(&self) -> Option<Instant> {
        self.periods.send.map(|period| self.last_sent + period)
    }

    /// When the peer counts as dead if nothing arrives first; none while its input is paused.
    fn receive_deadline(&self) -> Option<Instant> {
        if self.input_paused {
            return None;
        }
        self.periods
            .receive
            .and_then(|period| self.last_received.checked_add(self.silence_allowed(period)))
    }

    /// The driver stops or resumes reading the peer. Silence while paused is the driver's
    /// doing, so the peer's clock starts afresh when reading resumes.
    pub(crate) fn pause_input(&mut self, now: Instant, paused: bool) {
        if self.input_paused && !paused {
            self.last_received = now;
        }
        self.input_paused = paused;
    }

    /// Octets ever queued for writing, handed out or not.
    pub(crate) fn octets_queued(&self) -> u64 {
        self.outbox.octets_queued()
    }

    /// The earlier of the two heart-beat deadlines.
    pub(crate) fn heart_beat_deadline(&self) -> Option<Instant> {
        [self.send_deadline(), self.receive_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn silence_allowed(&self, period: Duration) -> Duration {
        // The margin is finite and at least 1 (`sane_margin`); a product too large for a
        // Duration means "never".
        Duration::try_from_secs_f64(period.as_secs_f64() * self.margin).unwrap_or(Duration::MAX)
    }

    /// Sends an EOL if one is due. Returns whether the peer has been silent too long.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> bool {
        if self.send_deadline().is_some_and(|due| now >= due) {
            self.outbox.push_raw(b"\n");
            self.last_sent = now;
        }
        self.receive_deadline().is_some_and(|due| now >= due)
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outbox.pop()
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Forgets unsent output and unread input, as when the connection is gone.
    pub(crate) fn discard(&mut self) {
        self.outbox.clear();
        self.inbox.clear();
        self.stop_heart_beats();
    }

    /// Forgets unread input, as after a fatal error: nothing more is read.
    pub(crate) fn discard_input(&mut self) {
        self.inbox.clear();
        self.stop_heart_beats();
    }
}

/// A margin of silence in periods: at least one period, and a number. A configured NaN,
/// infinity or value below 1 would otherwise close live peers or never close dead ones.
fn sane_margin(margin: f64) -> f64 {
    if margin.is_finite() {
        margin.max(1.0)
    } else {
        1.0
    }
}
