//! Heart-beats on virtual time (1.2 "Heart-beating"): the MAX rule, an EOL after each idle
//! period and not before, any octet re-arming the receive deadline, and a silent peer declared
//! dead exactly at its margin.

mod common;

use std::time::Duration;

use common::{BOTH, Pair};
use stomp_session::{
    ClientConfig, ClientEvent, CloseReason, HeartBeat, SendFrame, ServerConfig, ServerEvent,
    Version,
};

const MS: Duration = Duration::from_millis(1);

fn config(client: HeartBeat, server: HeartBeat) -> (ClientConfig, ServerConfig) {
    (
        ClientConfig::new("/").with_heart_beat(client),
        ServerConfig::default().with_heart_beat(server),
    )
}

/// The times (ms since the start) of the lone EOLs a side wrote.
fn eols(writes: &[(Duration, Vec<u8>)]) -> Vec<u128> {
    writes
        .iter()
        .filter(|(_, bytes)| bytes == b"\n")
        .map(|(at, _)| at.as_millis())
        .collect()
}

#[test]
fn periods_follow_the_max_rule_on_both_sides() {
    let (client, server) = config(
        HeartBeat::from_millis(1000, 5000),
        HeartBeat::from_millis(2000, 500),
    );
    let pair = Pair::connected(client, server, false);
    let client_periods = pair.client.heart_beat();
    let server_periods = pair.server.heart_beat();
    assert_eq!(client_periods.send, Some(1000 * MS)); // max(cx 1000, sy 500)
    assert_eq!(client_periods.receive, Some(5000 * MS)); // max(sx 2000, cy 5000)
    assert_eq!(server_periods.send, client_periods.receive);
    assert_eq!(server_periods.receive, client_periods.send);
}

#[test]
fn idle_sides_send_an_eol_every_period_for_many_periods() {
    for bytewise in BOTH {
        let (client, server) = config(
            HeartBeat::from_millis(1000, 1000),
            HeartBeat::from_millis(1000, 1000),
        );
        let mut pair = Pair::connected(client, server, bytewise);
        pair.advance(30_000 * MS);
        let expected: Vec<u128> = (1..=30).map(|n| n * 1000).collect();
        assert_eq!(eols(&pair.to_server), expected);
        assert_eq!(eols(&pair.to_client), expected);
        assert!(pair.client.is_connected() && pair.server.is_connected());
        // Heart-beats never reach the application.
        assert!(pair.client_events.is_empty(), "{:?}", pair.client_events);
        assert!(pair.server_events.is_empty(), "{:?}", pair.server_events);
    }
}

#[test]
fn a_frame_sent_postpones_the_next_heart_beat() {
    let (client, server) = config(
        HeartBeat::from_millis(1000, 0),
        HeartBeat::from_millis(0, 1000),
    );
    let mut pair = Pair::connected(client, server, false);
    pair.advance(600 * MS);
    let now = pair.now;
    pair.client.send(now, SendFrame::new("/q", "x")).unwrap();
    pair.advance(3000 * MS);
    // The SEND at 600 ms counts as sending: EOLs follow at 1600, 2600, 3600.
    assert_eq!(eols(&pair.to_server), [1600, 2600, 3600]);
    assert!(
        eols(&pair.to_client).is_empty(),
        "the server sends none: the client wants none"
    );
}

#[test]
fn heart_beats_hold_on_v10_too() {
    let (client, server) = config(
        HeartBeat::from_millis(500, 500),
        HeartBeat::from_millis(500, 500),
    );
    let mut pair = Pair::connected(client.with_versions(&[Version::V1_0]), server, true);
    pair.advance(5000 * MS);
    assert_eq!(eols(&pair.to_server).len(), 10);
    assert!(pair.client.is_connected() && pair.server.is_connected());
}

#[test]
fn a_silent_server_is_declared_dead_at_the_margin() {
    for (margin, dead_at) in [(2.0, 2000), (1.5, 1500), (3.0, 3000)] {
        let (client, server) = config(
            HeartBeat::from_millis(0, 1000),
            HeartBeat::from_millis(1000, 0),
        );
        let client = client.with_heart_beat_margin(margin);
        let mut pair = Pair::connected(client, server, false);
        pair.mute_server = true;
        pair.advance((dead_at - 1) * MS);
        assert!(
            pair.client_closed_reason().is_none(),
            "margin {margin}: too early"
        );
        pair.advance(MS);
        assert_eq!(
            pair.client_closed_reason(),
            Some(&CloseReason::HeartBeatTimedOut),
            "margin {margin}"
        );
    }
}

#[test]
fn by_default_a_server_may_leave_two_periods_between_its_frames() {
    // ActiveMQ's heart-beat comes when a periodic check finds that nothing was written in the
    // last period: its first EOL two periods after CONNECTED (seen at 4.01 s for 2000 ms).
    let (client, server) = config(
        HeartBeat::from_millis(0, 1000),
        HeartBeat::from_millis(1000, 0),
    );
    let mut pair = Pair::connected(client, server, false);
    pair.mute_server = true;
    pair.advance(2010 * MS);
    assert!(pair.client_closed_reason().is_none(), "dead at two periods");
    pair.advance(989 * MS);
    assert!(pair.client_closed_reason().is_none(), "dead before three");
    pair.advance(MS);
    assert_eq!(
        pair.client_closed_reason(),
        Some(&CloseReason::HeartBeatTimedOut)
    );
}

#[test]
fn any_octet_rearms_the_receive_deadline() {
    let (client, server) = config(
        HeartBeat::from_millis(0, 1000),
        HeartBeat::from_millis(1000, 0),
    );
    let mut pair = Pair::connected(client.with_heart_beat_margin(2.0), server, false);
    pair.mute_server = true;
    pair.advance(1900 * MS);
    // One octet of a frame, not even a complete one, proves the server alive.
    let now = pair.now;
    pair.client.handle_input(now, b"M");
    pair.advance(1900 * MS);
    assert!(pair.client_closed_reason().is_none());
    pair.advance(100 * MS);
    assert_eq!(
        pair.client_closed_reason(),
        Some(&CloseReason::HeartBeatTimedOut)
    );
}

#[test]
fn a_silent_client_is_dropped_without_an_error_frame() {
    let (client, server) = config(
        HeartBeat::from_millis(1000, 0),
        HeartBeat::from_millis(0, 1000),
    );
    let mut pair = Pair::connected(client, server, false);
    pair.mute_client = true;
    pair.advance(1999 * MS);
    assert!(pair.server_closed_reason().is_none());
    pair.advance(MS);
    assert_eq!(
        pair.server_closed_reason(),
        Some(&CloseReason::HeartBeatTimedOut)
    );
    assert!(
        !pair.server_wrote().contains("ERROR"),
        "brokers close silently"
    );
    // The client sees the connection go.
    assert_eq!(pair.client_closed_reason(), Some(&CloseReason::PeerClosed));
}

#[test]
fn deadlines_are_never_in_the_past_after_handle_timeout() {
    let (client, server) = config(
        HeartBeat::from_millis(700, 300),
        HeartBeat::from_millis(300, 700),
    );
    let mut pair = Pair::connected(client, server, false);
    for _ in 0..200 {
        pair.advance(37 * MS);
        for deadline in [pair.client.poll_timeout(), pair.server.poll_timeout()]
            .into_iter()
            .flatten()
        {
            assert!(deadline > pair.now);
        }
    }
    assert!(pair.client.is_connected());
    assert!(
        !pair
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Closed { .. }))
    );
    assert!(
        !pair
            .server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::Closed { .. }))
    );
}
