//! A client session against a server session on virtual time: connecting in every version
//! pair, messaging in every ack mode, transactions, receipts, and both kinds of disconnect.
//! Every test runs with bytes passed whole and one octet at a time.

mod common;

use common::{BOTH, Pair};
use stomp_session::{
    AckMode, AskReceipt, ClientConfig, ClientEvent, CloseReason, Command, Message, MessageSet,
    SendFrame, ServerConfig, ServerEvent, SessionError, SubscriptionId, Version,
};

fn client() -> ClientConfig {
    ClientConfig::new("/").with_login("guest", "guest")
}

fn messages(pair: &Pair) -> Vec<Message> {
    pair.client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn acks(pair: &Pair) -> Vec<ServerEvent> {
    pair.server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::Ack(_) | ServerEvent::Nack(_)))
        .cloned()
        .collect()
}

fn set(subscription: &str, ids: &[&str]) -> MessageSet {
    MessageSet::new(subscription, ids.iter().copied())
}

fn subsets(versions: &[Version]) -> Vec<Vec<Version>> {
    (1..1u8 << versions.len())
        .map(|mask| {
            versions
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, v)| *v)
                .collect()
        })
        .collect()
}

#[test]
fn connect_in_every_version_pair() {
    for bytewise in BOTH {
        for offered in subsets(&Version::ALL) {
            for supported in subsets(&Version::ALL) {
                let server = ServerConfig::default().with_versions(&supported);
                let mut pair = Pair::new(client().with_versions(&offered), server, bytewise);
                pair.drive();
                let common = offered.iter().filter(|v| supported.contains(v)).max();
                match common {
                    Some(&version) => {
                        assert!(pair.client.is_connected(), "{offered:?} / {supported:?}");
                        assert_eq!(pair.client.version(), version);
                        assert_eq!(pair.server.version(), version);
                        assert!(matches!(
                            pair.client_events[0],
                            ClientEvent::Connected { version: v, .. } if v == version
                        ));
                    }
                    None => {
                        // ERROR with a version header listing what the server speaks, then close.
                        let wrote = pair.server_wrote();
                        let list: Vec<&str> = supported.iter().map(|v| v.as_str()).collect();
                        assert!(wrote.starts_with("ERROR\n"), "{wrote}");
                        assert!(
                            wrote.contains(&format!("\nversion:{}\n", list.join(","))),
                            "{wrote}"
                        );
                        assert!(matches!(pair.client_events[0], ClientEvent::Error(_)));
                        assert!(matches!(
                            pair.client_closed_reason(),
                            Some(CloseReason::ErrorFrame(Some(_)))
                        ));
                        assert!(pair.server.is_closed() && pair.client.is_closed());
                    }
                }
            }
        }
    }
}

#[test]
fn connect_sends_host_login_and_heart_beat_and_stomp_when_asked() {
    let config = client()
        .with_use_stomp_command(true)
        .with_heart_beat(stomp_session::HeartBeat::from_millis(1000, 2000));
    let mut pair = Pair::new(config, ServerConfig::default(), false);
    pair.drive();
    let wrote = pair.client_wrote();
    assert!(wrote.starts_with(
        "STOMP\naccept-version:1.0,1.1,1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:1000,2000\n\n\0"
    ), "{wrote:?}");
    let Some(ServerEvent::Connect(request)) = pair.server_events.first() else {
        panic!()
    };
    assert_eq!(request.login.as_deref(), Some("guest"));
    assert_eq!(request.passcode.as_ref().map(|p| p.expose()), Some("guest"));
    assert!(!format!("{request:?} {:?}", pair.client).contains("passcode: Some(\"guest"));
}

#[test]
fn subscribe_send_and_receive_in_every_version() {
    for bytewise in BOTH {
        for version in Version::ALL {
            let config = client().with_versions(&[version]);
            let mut pair = Pair::connected(config, ServerConfig::default(), bytewise);
            let now = pair.now;
            let sub = pair
                .client
                .subscribe(now, "/topic/news", AckMode::Auto, AskReceipt::No)
                .unwrap();
            pair.drive();
            let send =
                SendFrame::new("/topic/news", "hello:world\0binary").header("x-note", "a:b\\c");
            pair.client.send(now, send).unwrap();
            pair.drive();
            let received = messages(&pair);
            assert_eq!(received.len(), 1, "{version}");
            let message = &received[0];
            assert_eq!(message.subscription().as_ref(), Some(&sub.id));
            assert_eq!(message.destination().as_deref(), Some("/topic/news"));
            assert_eq!(message.message_id().as_deref(), Some("m-1"));
            assert_eq!(&message.body()[..], b"hello:world\0binary");
            // The server saw the SEND's own header, decoded for the version.
            let Some(ServerEvent::Send(frame)) = pair
                .server_events
                .iter()
                .find(|e| matches!(e, ServerEvent::Send(_)))
            else {
                panic!()
            };
            assert_eq!(
                frame.header("x-note").as_deref(),
                Some("a:b\\c"),
                "{version}"
            );
        }
    }
}

#[test]
fn a_subscription_restored_under_its_earlier_id_keeps_it_and_the_id_is_not_handed_out_again() {
    for bytewise in BOTH {
        let mut pair = Pair::connected(client(), ServerConfig::default(), bytewise);
        let now = pair.now;
        let restored = SubscriptionId::from("sub-2");
        let headers = [("prefetch-count", "5")];
        pair.client
            .subscribe_as(
                now,
                &restored,
                "/queue/jobs",
                AckMode::Client,
                &headers,
                AskReceipt::No,
            )
            .unwrap();
        assert_eq!(
            pair.client.subscribe_as(
                now,
                &restored,
                "/queue/other",
                AckMode::Auto,
                &[],
                AskReceipt::No
            ),
            Err(SessionError::DuplicateSubscription(restored.clone()))
        );
        // New subscriptions get fresh ids around the restored one.
        let first = pair
            .client
            .subscribe(now, "/topic/a", AckMode::Auto, AskReceipt::No)
            .unwrap();
        let second = pair
            .client
            .subscribe(now, "/topic/b", AckMode::Auto, AskReceipt::No)
            .unwrap();
        assert_eq!(first.id.as_str(), "sub-1");
        assert_eq!(second.id.as_str(), "sub-3");
        pair.drive();
        assert!(
            pair.client_wrote().contains(
                "SUBSCRIBE\nid:sub-2\ndestination:/queue/jobs\nack:client\nprefetch-count:5\n"
            ),
            "{}",
            pair.client_wrote()
        );
        pair.client
            .send(now, SendFrame::new("/queue/jobs", "job"))
            .unwrap();
        pair.drive();
        let received = messages(&pair);
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].subscription().as_ref(), Some(&restored));
        assert_eq!(received[0].ack_mode(), Some(AckMode::Client));
    }
}

#[test]
fn client_individual_acks_one_by_one_in_every_version() {
    for bytewise in BOTH {
        for version in Version::ALL {
            let config = client().with_versions(&[version]);
            let mut pair = Pair::connected(config, ServerConfig::default(), bytewise);
            let now = pair.now;
            let sub = pair
                .client
                .subscribe(now, "/queue/q", AckMode::ClientIndividual, AskReceipt::No)
                .unwrap();
            for n in 0..3 {
                pair.client
                    .send(now, SendFrame::new("/queue/q", format!("m{n}")))
                    .unwrap();
            }
            pair.drive();
            let received = messages(&pair);
            assert_eq!(received.len(), 3);
            // 1.2 messages carry an ack header; earlier versions ack by message-id.
            assert_eq!(
                received[0].frame().header("ack").is_some(),
                version == Version::V1_2
            );
            pair.client
                .ack(now, &received[1], None, AskReceipt::No)
                .unwrap();
            pair.drive();
            assert_eq!(
                acks(&pair),
                [ServerEvent::Ack(set(sub.id.as_str(), &["m-2"]))],
                "{version}"
            );
            let wrote = pair.client_wrote();
            let ack_frame = &wrote[wrote.rfind("ACK\n").unwrap()..];
            match version {
                Version::V1_0 => assert!(ack_frame.starts_with("ACK\nmessage-id:m-2\n\n")),
                Version::V1_1 => assert!(
                    ack_frame
                        .starts_with(&format!("ACK\nmessage-id:m-2\nsubscription:{}\n\n", sub.id))
                ),
                Version::V1_2 => assert!(ack_frame.starts_with("ACK\nid:")),
            }
            // Acking the same message again is a protocol error.
            pair.client
                .ack(now, &received[1], None, AskReceipt::No)
                .unwrap();
            pair.drive();
            assert!(
                pair.server_wrote()
                    .contains("ERROR\nmessage:ACK of a message that awaits no acknowledgement")
            );
        }
    }
}

#[test]
fn client_mode_acks_cumulatively() {
    for bytewise in BOTH {
        let mut pair = Pair::connected(client(), ServerConfig::default(), bytewise);
        let now = pair.now;
        let sub = pair
            .client
            .subscribe(now, "/queue/q", AckMode::Client, AskReceipt::No)
            .unwrap();
        for n in 0..4 {
            pair.client
                .send(now, SendFrame::new("/queue/q", format!("m{n}")))
                .unwrap();
        }
        pair.drive();
        let received = messages(&pair);
        pair.client
            .ack(now, &received[2], None, AskReceipt::No)
            .unwrap();
        pair.drive();
        assert_eq!(
            acks(&pair),
            [ServerEvent::Ack(set(
                sub.id.as_str(),
                &["m-1", "m-2", "m-3"]
            ))]
        );
        // The last one is still unacknowledged, and is reported when the client goes away.
        pair.client.disconnect(now).unwrap();
        pair.drive();
        let Some(ServerEvent::Closed { reason, unacked }) = pair.server_events.last() else {
            panic!()
        };
        assert_eq!(*reason, CloseReason::Disconnected);
        assert_eq!(*unacked, [set(sub.id.as_str(), &["m-4"])]);
    }
}

#[test]
fn nack_refuses_messages_and_is_not_in_v10() {
    for bytewise in BOTH {
        let mut pair = Pair::connected(client(), ServerConfig::default(), bytewise);
        let now = pair.now;
        let sub = pair
            .client
            .subscribe(now, "/queue/q", AckMode::ClientIndividual, AskReceipt::No)
            .unwrap();
        pair.client
            .send(now, SendFrame::new("/queue/q", "x"))
            .unwrap();
        pair.drive();
        let received = messages(&pair);
        pair.client
            .nack(now, &received[0], None, AskReceipt::No)
            .unwrap();
        pair.drive();
        assert_eq!(
            acks(&pair),
            [ServerEvent::Nack(set(sub.id.as_str(), &["m-1"]))]
        );
        assert!(pair.client_wrote().contains("NACK\nid:"));
    }
    let mut old = Pair::connected(
        client().with_versions(&[Version::V1_0]),
        ServerConfig::default(),
        false,
    );
    let now = old.now;
    old.client
        .subscribe(now, "/queue/q", AckMode::Client, AskReceipt::No)
        .unwrap();
    old.client
        .send(now, SendFrame::new("/queue/q", "x"))
        .unwrap();
    old.drive();
    let received = messages(&old);
    assert_eq!(
        old.client.nack(now, &received[0], None, AskReceipt::No),
        Err(stomp_session::SessionError::Unsupported {
            command: Command::Nack,
            version: Version::V1_0
        })
    );
}

#[test]
fn transactions_deliver_at_commit_and_drop_at_abort() {
    for bytewise in BOTH {
        let mut pair = Pair::connected(client(), ServerConfig::default(), bytewise);
        let now = pair.now;
        pair.client
            .subscribe(now, "/queue/q", AckMode::ClientIndividual, AskReceipt::No)
            .unwrap();
        pair.client
            .send(now, SendFrame::new("/queue/q", "first"))
            .unwrap();
        pair.drive();
        let first = messages(&pair).remove(0);

        let tx = pair.client.begin(now, AskReceipt::No).unwrap();
        pair.client
            .send(
                now,
                SendFrame::new("/queue/q", "in-tx").in_transaction(&tx.id),
            )
            .unwrap();
        pair.client
            .ack(now, &first, Some(&tx.id), AskReceipt::No)
            .unwrap();
        pair.drive();
        assert_eq!(
            messages(&pair).len(),
            1,
            "nothing is delivered before COMMIT"
        );
        assert!(
            acks(&pair).is_empty(),
            "nothing is acknowledged before COMMIT"
        );
        let receipt = pair
            .client
            .commit(now, &tx.id, AskReceipt::Yes)
            .unwrap()
            .unwrap();
        pair.drive();
        assert_eq!(&messages(&pair)[1].body()[..], b"in-tx");
        assert_eq!(acks(&pair).len(), 1);
        assert!(pair.client_events.iter().any(|e| matches!(e,
            ClientEvent::Receipt { receipt: r, command: Command::Commit, .. } if *r == receipt)));

        let tx = pair.client.begin(now, AskReceipt::No).unwrap();
        pair.client
            .send(
                now,
                SendFrame::new("/queue/q", "dropped").in_transaction(&tx.id),
            )
            .unwrap();
        pair.client.abort(now, &tx.id, AskReceipt::No).unwrap();
        pair.drive();
        assert_eq!(messages(&pair).len(), 2, "an aborted SEND is dropped");
        // An ended transaction is unknown to the client afterwards.
        assert!(
            pair.client
                .send(now, SendFrame::new("/q", "x").in_transaction(&tx.id))
                .is_err()
        );
    }
}

#[test]
fn open_transactions_are_dropped_at_disconnect_and_connection_loss() {
    for graceful in [true, false] {
        let mut pair = Pair::connected(client(), ServerConfig::default(), false);
        let now = pair.now;
        pair.client
            .subscribe(now, "/queue/q", AckMode::Auto, AskReceipt::No)
            .unwrap();
        let tx = pair.client.begin(now, AskReceipt::No).unwrap();
        pair.client
            .send(
                now,
                SendFrame::new("/queue/q", "never").in_transaction(&tx.id),
            )
            .unwrap();
        pair.drive();
        if graceful {
            pair.client.disconnect(now).unwrap();
        } else {
            pair.server.handle_eof(now);
        }
        pair.drive();
        assert!(
            !pair
                .server_events
                .iter()
                .any(|e| matches!(e, ServerEvent::Send(_)))
        );
        assert!(pair.server.is_closed());
    }
}

#[test]
fn receipts_match_the_commands_that_asked() {
    for bytewise in BOTH {
        let mut pair = Pair::connected(client(), ServerConfig::default(), bytewise);
        let now = pair.now;
        let sub = pair
            .client
            .subscribe(now, "/queue/q", AckMode::Auto, AskReceipt::Yes)
            .unwrap();
        let sent = pair
            .client
            .send(now, SendFrame::new("/queue/other", "x").with_receipt())
            .unwrap();
        let unsub = pair
            .client
            .unsubscribe(now, &sub.id, AskReceipt::Yes)
            .unwrap();
        pair.drive();
        let receipts: Vec<_> = pair
            .client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Receipt {
                    receipt, command, ..
                } => Some((receipt.clone(), *command)),
                _ => None,
            })
            .collect();
        assert_eq!(
            receipts,
            [
                (sub.receipt.unwrap(), Command::Subscribe),
                (sent.unwrap(), Command::Send),
                (unsub.unwrap(), Command::Unsubscribe),
            ]
        );
    }
}

#[test]
fn graceful_disconnect_waits_for_its_receipt() {
    for bytewise in BOTH {
        let mut pair = Pair::connected(client(), ServerConfig::default(), bytewise);
        let now = pair.now;
        pair.client.disconnect(now).unwrap();
        pair.drive();
        assert!(pair.client_wrote().contains("DISCONNECT\nreceipt:"));
        assert!(pair.server_wrote().contains("RECEIPT\nreceipt-id:"));
        assert_eq!(
            pair.client_closed_reason(),
            Some(&CloseReason::Disconnected)
        );
        assert_eq!(
            pair.server_closed_reason(),
            Some(&CloseReason::Disconnected)
        );
        assert!(pair.client.is_closed() && pair.server.is_closed());
        // Nothing may follow DISCONNECT.
        assert_eq!(
            pair.client.send(now, SendFrame::new("/q", "late")),
            Err(stomp_session::SessionError::Closed)
        );
    }
}

#[test]
fn disconnect_wait_is_bounded_when_no_receipt_comes() {
    let mut pair = Pair::connected(client(), ServerConfig::default(), false);
    pair.mute_client = true; // the DISCONNECT never reaches the server, which stays silent
    let now = pair.now;
    pair.client.disconnect(now).unwrap();
    assert_eq!(
        pair.client.send(now, SendFrame::new("/q", "x")),
        Err(stomp_session::SessionError::Disconnecting)
    );
    pair.advance(std::time::Duration::from_millis(4999));
    assert!(pair.client_closed_reason().is_none());
    pair.advance(std::time::Duration::from_millis(1));
    assert_eq!(
        pair.client_closed_reason(),
        Some(&CloseReason::DisconnectTimedOut)
    );
}

#[test]
fn abrupt_disconnect_is_reported_once_on_each_side() {
    let mut pair = Pair::connected(client(), ServerConfig::default(), false);
    let now = pair.now;
    let receipt = pair
        .client
        .send(now, SendFrame::new("/q", "x").with_receipt())
        .unwrap()
        .unwrap();
    // The connection drops before anything is passed on.
    pair.client.handle_eof(now);
    pair.client.handle_eof(now);
    pair.server.handle_eof(now);
    pair.drive();
    let closed: Vec<_> = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Closed { .. }))
        .collect();
    assert_eq!(
        closed,
        [&ClientEvent::Closed {
            reason: CloseReason::PeerClosed,
            unanswered_receipts: vec![receipt]
        }]
    );
    assert_eq!(pair.server_closed_reason(), Some(&CloseReason::PeerClosed));
    assert!(
        pair.client.poll_transmit().is_none(),
        "nothing is written after the close"
    );
}

#[test]
fn server_error_frame_closes_the_client() {
    let mut pair = Pair::connected(client(), ServerConfig::default(), false);
    let now = pair.now;
    pair.server.close_with_error(now, "shutting down");
    pair.drive();
    assert!(matches!(pair.client_events[0], ClientEvent::Error(_)));
    assert_eq!(
        pair.client_closed_reason(),
        Some(&CloseReason::ErrorFrame(Some("shutting down".into())))
    );
    assert!(pair.client.is_closed());
}

#[test]
fn commands_before_connected_are_refused() {
    let mut pair = Pair::new(client(), ServerConfig::default(), false);
    let now = pair.now;
    assert_eq!(
        pair.client
            .subscribe(now, "/q", AckMode::Auto, AskReceipt::No),
        Err(stomp_session::SessionError::NotConnected)
    );
    pair.auto_accept = false;
    pair.drive();
    pair.server.reject(now, "bad login").unwrap();
    pair.drive();
    assert_eq!(
        pair.server_closed_reason(),
        Some(&CloseReason::Rejected("bad login".into()))
    );
    assert!(
        pair.server_wrote()
            .starts_with("ERROR\nmessage:bad login\n")
    );
    assert!(pair.client.is_closed());
}
