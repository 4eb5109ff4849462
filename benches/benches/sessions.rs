//! (f) the sessions end to end in one process, and (g) fan-out of one message.

use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, ClientSession, Delivery, SendFrame,
    ServerConfig, ServerEvent, ServerSession, SharedDelivery, SubscriptionId,
};

use crate::report::{self, Table};

const BATCH: usize = 100;

/// A connected client and server session, the client subscribed to `/topic/bench`.
fn connected_pair(now: Instant) -> (ClientSession, ServerSession, SubscriptionId) {
    let mut client = ClientSession::new(ClientConfig::new("/"), now);
    let mut server = ServerSession::new(ServerConfig::default(), now);
    pump(&mut client, &mut server, now);
    let sub = client
        .subscribe(now, "/topic/bench", AckMode::Auto, AskReceipt::No)
        .unwrap();
    pump(&mut client, &mut server, now);
    (client, server, sub.id)
}

/// Passes bytes both ways; the server accepts every CONNECT and delivers each SEND to the one
/// subscription. Returns the messages the client received.
fn pump(client: &mut ClientSession, server: &mut ServerSession, now: Instant) -> usize {
    // Once per batch, not per message.
    let subscription = SubscriptionId::from("sub-1");
    let mut received = 0;
    loop {
        let mut progressed = false;
        while let Some(bytes) = client.poll_transmit() {
            server.handle_input(now, &bytes);
            progressed = true;
        }
        while let Some(event) = server.poll_event() {
            progressed = true;
            match event {
                ServerEvent::Connect(_) => server.accept(now).unwrap(),
                ServerEvent::Send(frame) => {
                    let delivery = Delivery::new("/topic/bench", "m", frame.body());
                    server.deliver(now, &subscription, delivery).unwrap();
                }
                _ => {}
            }
        }
        while let Some(bytes) = server.poll_transmit() {
            client.handle_input(now, &bytes);
            progressed = true;
        }
        while let Some(event) = client.poll_event() {
            progressed = true;
            received += usize::from(matches!(event, ClientEvent::Message(_)));
        }
        if !progressed {
            return received;
        }
    }
}

/// (f) A client SEND, through a server session, to a MESSAGE for a subscribed client session,
/// to its event.
pub fn end_to_end(c: &mut Criterion, table: &mut Table) {
    let now = Instant::now();
    let (mut client, mut server, sub) = connected_pair(now);
    assert_eq!(sub, "sub-1");
    let body = Bytes::from_static(b"{\"symbol\":\"ACME\",\"price\":101.25}");
    let mut g = c.benchmark_group("f_sessions");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("end_to_end", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                client
                    .send(now, SendFrame::new("/topic/bench", body.clone()))
                    .unwrap();
            }
            assert_eq!(pump(&mut client, &mut server, now), BATCH);
        })
    });
    g.finish();
    report::session_note(table, "f_sessions", "end_to_end", |ns| {
        format!(
            "(f) sessions end to end (client SEND -> server session -> MESSAGE -> client event): {:.2} M messages/s",
            BATCH as f64 / ns * 1e3
        )
    });
}

/// A server session for one subscriber of `/topic/fan`, connected and subscribed.
fn subscriber(now: Instant) -> ServerSession {
    let mut server = ServerSession::new(ServerConfig::default(), now);
    server.handle_input(now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0");
    let _ = server.poll_event();
    server.accept(now).unwrap();
    server.handle_input(now, b"SUBSCRIBE\nid:0\ndestination:/topic/fan\n\n\0");
    while server.poll_event().is_some() {}
    while server.poll_transmit().is_some() {}
    server
}

/// (g) One message to 1, 10 and 1000 subscribers: the body is shared, so the cost per
/// subscriber does not grow with its size; and the same through `deliver_shared`, which
/// encodes the MESSAGE once for all of them (they share a subscription id, as browsers do).
pub fn fan_out(c: &mut Criterion, table: &mut Table) {
    let now = Instant::now();
    let mut g = c.benchmark_group("g_fan_out");
    for subscribers in [1usize, 10, 1000] {
        let mut sessions: Vec<ServerSession> = (0..subscribers).map(|_| subscriber(now)).collect();
        g.throughput(Throughput::Elements(subscribers as u64));
        for (label, size) in [("256 B", 256usize), ("64 KiB", 64 * 1024)] {
            let body = Bytes::from(vec![b'x'; size]);
            let subscription = SubscriptionId::from("0");
            for shared in [false, true] {
                let id = format!(
                    "{subscribers}_subscribers_{}{}",
                    crate::estimates::slug(label),
                    if shared { "_shared" } else { "" }
                );
                g.bench_function(id.as_str(), |b| {
                    b.iter(|| {
                        let delivery = Delivery::new("/topic/fan", "m-1", &body)
                            .with_headers(&[("content-type", "text/plain")]);
                        // Announced, as the broker announces a topic's subscribers.
                        let mut once = SharedDelivery::new(delivery).expecting(subscribers);
                        for session in &mut sessions {
                            if shared {
                                session.deliver_shared(now, &subscription, &mut once)
                            } else {
                                session.deliver(now, &subscription, delivery)
                            }
                            .unwrap();
                            while let Some(bytes) = session.poll_transmit() {
                                std::hint::black_box(bytes);
                            }
                        }
                    })
                });
                let how = if shared {
                    ", encoded once (deliver_shared)"
                } else {
                    ""
                };
                report::session_note(table, "g_fan_out", &id, |ns| {
                    format!(
                        "(g) fan-out of one {label} message to {subscribers} subscribers{how}: {:.0} ns per subscriber",
                        ns / subscribers as f64
                    )
                });
            }
        }
    }
    g.finish();
}
