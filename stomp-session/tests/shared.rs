//! One message to many subscriptions through `deliver_shared`: every session gets exactly the
//! octets `deliver` would have given it, whatever its version, subscription id and ack mode.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use stomp_session::{Delivery, ServerConfig, ServerSession, SharedDelivery, SubscriptionId};

/// A session connected with `version` and subscribed as `id` with `ack`.
fn subscribed(now: Instant, version: &str, id: &str, ack: &str) -> ServerSession {
    let mut session = ServerSession::new(ServerConfig::default(), now);
    let connect = format!("CONNECT\naccept-version:{version}\nhost:/\n\n\0");
    session.handle_input(now, connect.as_bytes());
    while session.poll_event().is_some() {}
    session.accept(now).unwrap();
    let subscribe = format!("SUBSCRIBE\nid:{id}\ndestination:/topic/a\nack:{ack}\n\n\0");
    session.handle_input(now, subscribe.as_bytes());
    while session.poll_event().is_some() {}
    written(&mut session);
    session
}

/// Everything the session has to write, joined.
fn written(session: &mut ServerSession) -> Vec<u8> {
    let mut out = BytesMut::new();
    while let Some(bytes) = session.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    out.to_vec()
}

#[test]
fn every_subscription_gets_what_deliver_would_give_it() {
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    let now = Instant::now();
    let kinds = [
        ("1.2", "sub-0", "auto"),
        ("1.2", "sub-0", "auto"),
        ("1.1", "sub-0", "auto"),
        ("1.0", "sub-0", "auto"),
        ("1.2", "sub-1", "auto"),
        ("1.2", "sub-0", "client"),
        ("1.2", "sub-0", "client-individual"),
        ("1.1", "sub-0", "client"),
        ("1.2", "sub-0", "auto"),
    ];
    // A header that needs escaping from 1.1 on, and bodies either side of the size at which
    // a body goes out as a buffer of its own.
    let headers = [("x-url", "http://example.com:8080/a")];
    for size in [5, 64 * 1024] {
        let body = Bytes::from(vec![b'b'; size]);
        let delivery = Delivery::new("/topic/a", "m-1", &body).with_headers(&headers);
        // A head kept from the second subscription like another on, and from the first when
        // several recipients are announced; twice over.
        for mut shared in [
            SharedDelivery::new(delivery),
            SharedDelivery::new(delivery).expecting(2 * kinds.len()),
        ] {
            for (version, id, ack) in kinds.into_iter().chain(kinds) {
                let id_ = SubscriptionId::from(id);
                let mut alone = subscribed(now, version, id, ack);
                let mut sharing = subscribed(now, version, id, ack);
                alone.deliver(now, &id_, delivery).unwrap();
                sharing.deliver_shared(now, &id_, &mut shared).unwrap();
                let expected = written(&mut alone);
                assert_eq!(written(&mut sharing), expected, "{version} {id} {ack}");
                assert!(expected.starts_with(b"MESSAGE\n"));
                assert_eq!(
                    sharing.unacked_count(&id_),
                    alone.unacked_count(&id_),
                    "{version} {id} {ack}"
                );
            }
        }
    }
}

#[test]
fn acknowledging_subscriptions_get_an_ack_of_their_own() {
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    let now = Instant::now();
    let body = Bytes::from_static(b"hi");
    let mut shared = SharedDelivery::new(Delivery::new("/topic/a", "m-1", &body));
    let id = SubscriptionId::from("sub-0");
    let mut first = subscribed(now, "1.2", "sub-0", "client-individual");
    let mut second = subscribed(now, "1.2", "sub-0", "client-individual");
    second
        .deliver(now, &id, Delivery::new("/topic/a", "m-0", &body))
        .unwrap();
    written(&mut second);
    first.deliver_shared(now, &id, &mut shared).unwrap();
    second.deliver_shared(now, &id, &mut shared).unwrap();
    let (first, second) = (written(&mut first), written(&mut second));
    let ack = |frame: &[u8]| {
        String::from_utf8_lossy(frame)
            .lines()
            .find(|line| line.starts_with("ack:"))
            .map(str::to_owned)
    };
    assert_eq!(ack(&first).as_deref(), Some("ack:1"));
    assert_eq!(ack(&second).as_deref(), Some("ack:2"));
}

#[test]
fn a_subscription_that_is_not_there_is_refused() {
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    let now = Instant::now();
    let body = Bytes::from_static(b"hi");
    let mut shared = SharedDelivery::new(Delivery::new("/topic/a", "m-1", &body));
    let mut session = subscribed(now, "1.2", "sub-0", "auto");
    assert!(
        session
            .deliver_shared(now, &SubscriptionId::from("sub-9"), &mut shared)
            .is_err()
    );
    assert!(written(&mut session).is_empty());
}
