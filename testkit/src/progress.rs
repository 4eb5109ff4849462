//! Progress of the broker: each call must return within a number of steps
//! ([`Broker::steps`]) bounded by what it was given and what the broker holds.

use std::time::Instant;

use stomp_broker::Broker;

/// Most steps one call may take when it carries `frames` frames and the broker may hold
/// `size` things (connections, subscriptions, messages, frames so far): some for the call,
/// and for each frame a number linear in what the broker holds. A loop that retried without
/// bound, or work quadratic in what is held, goes past it.
pub fn step_bound(frames: usize, size: u64) -> u64 {
    200 + 40 * (frames as u64 + 1) * (size + 1)
}

/// Runs `call` on `broker` at `now`, and panics if it took more than
/// [`step_bound`]`(frames, size)` steps.
pub fn bounded<R>(
    broker: &mut Broker,
    now: Instant,
    (frames, size): (usize, u64),
    call: impl FnOnce(&mut Broker, Instant) -> R,
) -> R {
    let bound = step_bound(frames, size);
    let before = broker.steps();
    let result = call(broker, now);
    let taken = broker.steps() - before;
    assert!(
        taken <= bound,
        "no bounded progress: one call took {taken} steps (bound {bound})"
    );
    result
}
