//! Without the `relay` feature there is no relay: this [`RelayConfig`] has no value, so no
//! broker task has a [`RelayBridge`], and neither the STOMP client of the relay nor its
//! WebSocket and TLS stacks are built.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use stomp_broker::{Broker, ConnectionId, RelayEvent};
use tokio::sync::{mpsc, oneshot};

use crate::channel::{FromRelay, ToHub};
use crate::error::PublishError;

/// No relay configuration can exist.
#[derive(Clone, Debug)]
pub(crate) enum RelayConfig {}

/// No relay can exist: every method is unreachable.
pub(crate) enum RelayBridge {}

impl RelayBridge {
    pub(crate) fn start(config: RelayConfig, _inbox: mpsc::Sender<ToHub>) -> RelayBridge {
        match config {}
    }

    pub(crate) fn available(&self) -> bool {
        match *self {}
    }

    pub(crate) fn holds(&self, _connection: ConnectionId) -> bool {
        match *self {}
    }

    pub(crate) fn publish(
        &mut self,
        _broker: &mut Broker,
        _now: Instant,
        _destination: &str,
        _headers: &[(&str, &str)],
        _body: Bytes,
        _done: oneshot::Sender<Result<String, PublishError>>,
    ) {
        match *self {}
    }

    pub(crate) fn send_to_user(
        &mut self,
        _broker: &mut Broker,
        _now: Instant,
        _to: (&str, &str),
        _headers: &[(&str, &str)],
        _body: Bytes,
        _done: oneshot::Sender<Result<usize, PublishError>>,
    ) {
        match *self {}
    }

    pub(crate) fn user_joined(&mut self, _user: &Arc<str>) {
        match *self {}
    }

    pub(crate) fn closed(&mut self, _connection: ConnectionId, _user: Option<&Arc<str>>) {
        match *self {}
    }

    pub(crate) fn take_in(
        &mut self,
        _broker: &mut Broker,
        _from: FromRelay,
        _now: Instant,
        _held_by_worker: impl Fn(ConnectionId) -> bool,
    ) {
        match *self {}
    }

    pub(crate) fn carry_out(&mut self, _broker: &mut Broker, _event: RelayEvent, _now: Instant) {
        match *self {}
    }
}
