//! Frames pipelined in one input, in the orders where the broker's view of a connection's
//! subscriptions could fall behind its session's: every call returns within a bounded number
//! of steps, every queue message is delivered to one live consumer at a time and never lost,
//! and the next client is served at once. On one shard and on two (a queue's consumer on the
//! shard that does not own it).

mod common;

use std::time::Duration;

use common::wire::{Wire, ends_within};
use stomp_broker::{BrokerConfig, ConnectionId, owner_of};
use stomp_session::stomp_codec::Version;

const LIMIT: Duration = Duration::from_secs(20);

/// A queue owned by shard 0 of `shards`.
fn queue(name: &str, shards: usize) -> String {
    (0..)
        .map(|n| format!("/queue/{name}{n}"))
        .find(|d| owner_of(d, shards) == 0)
        .unwrap()
}

/// The shard a consumer sits on: the one that does not own the queue, when there are two.
fn far(shards: usize) -> usize {
    shards - 1
}

/// Every message id delivered to `connections`, with how many times.
fn deliveries(wire: &Wire, connections: &[ConnectionId]) -> Vec<String> {
    let mut ids: Vec<String> = connections
        .iter()
        .flat_map(|c| wire.frames_of(*c, "MESSAGE"))
        .filter_map(|m| m.header("message-id").map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[test]
fn subscribe_send_unsubscribe_in_one_input_in_every_version_leaves_the_broker_serving() {
    ends_within(LIMIT, || {
        for shards in [1, 2] {
            for version in Version::ALL {
                let mut wire = Wire::new(shards, BrokerConfig::default);
                let q = queue("testfile", shards);
                let client = wire.connect(far(shards), version);
                let three = format!(
                    "SUBSCRIBE\nid:1\ndestination:{q}\nack:auto\n\n\0\
                     SEND\ndestination:{q}\n\nthis is a test\0\
                     UNSUBSCRIBE\nid:1\ndestination:{q}\n\n\0"
                );
                wire.input(client, three.as_bytes());
                wire.serves_a_fresh_client();
                // Delivered before the UNSUBSCRIBE took effect, or still in the queue for the
                // next consumer: once, either way.
                let got = wire.bodies(client);
                let later = wire.connect(0, Version::V1_2);
                let subscribe = format!("SUBSCRIBE\nid:9\ndestination:{q}\n\n\0");
                wire.input(later, subscribe.as_bytes());
                let mut all = got.clone();
                all.extend(wire.bodies(later));
                assert_eq!(all, ["this is a test"], "{version} on {shards} shards");
                assert!(wire.frames_of(client, "ERROR").is_empty(), "{version}");
                // On one shard the session had the subscription when the SEND was routed.
                if shards == 1 {
                    assert_eq!(got, ["this is a test"], "{version}");
                }
            }
        }
    });
}

#[test]
fn subscribe_and_unsubscribe_in_one_input_with_messages_waiting() {
    ends_within(LIMIT, || {
        for shards in [1, 2] {
            let mut wire = Wire::new(shards, BrokerConfig::default);
            let q = queue("waiting", shards);
            let publisher = wire.connect(0, Version::V1_2);
            for n in 0..5 {
                let send = format!("SEND\ndestination:{q}\n\nm{n}\0");
                wire.input(publisher, send.as_bytes());
            }
            let client = wire.connect(far(shards), Version::V1_2);
            let both = format!(
                "SUBSCRIBE\nid:1\ndestination:{q}\nack:client-individual\n\n\0\
                 UNSUBSCRIBE\nid:1\n\n\0"
            );
            wire.input(client, both.as_bytes());
            wire.serves_a_fresh_client();
            let got = wire.bodies(client).len();
            let later = wire.connect(0, Version::V1_2);
            let subscribe = format!("SUBSCRIBE\nid:9\ndestination:{q}\nprefetch-count:10\n\n\0");
            wire.input(later, subscribe.as_bytes());
            // What the first consumer was handed went back when it unsubscribed.
            assert_eq!(
                wire.bodies(later).len(),
                5,
                "{shards} shards, first got {got}"
            );
        }
    });
}

#[test]
fn a_nack_and_an_unsubscribe_in_one_input_put_the_message_back_once() {
    ends_within(LIMIT, || {
        for shards in [1, 2] {
            let mut wire = Wire::new(shards, BrokerConfig::default);
            let q = queue("nack", shards);
            let client = wire.connect(far(shards), Version::V1_2);
            let subscribe =
                format!("SUBSCRIBE\nid:1\ndestination:{q}\nack:client-individual\n\n\0");
            wire.input(client, subscribe.as_bytes());
            let publisher = wire.connect(0, Version::V1_2);
            wire.input(
                publisher,
                format!("SEND\ndestination:{q}\n\nonce\0").as_bytes(),
            );
            let message = wire.frames_of(client, "MESSAGE").remove(0);
            let ack = message.header("ack").unwrap().to_owned();
            let both = format!("NACK\nid:{ack}\n\n\0UNSUBSCRIBE\nid:1\n\n\0");
            wire.input(client, both.as_bytes());
            wire.serves_a_fresh_client();
            // Redelivered after the NACK, to the subscription that still existed (one shard),
            // then back again when it ended.
            let expected: &[&str] = if shards == 1 {
                &["once", "once"]
            } else {
                &["once"]
            };
            assert_eq!(wire.bodies(client), expected, "{shards} shards");
            let later = wire.connect(0, Version::V1_2);
            wire.input(
                later,
                format!("SUBSCRIBE\nid:9\ndestination:{q}\n\n\0").as_bytes(),
            );
            let again = wire.frames_of(later, "MESSAGE");
            assert_eq!(again.len(), 1, "{shards} shards");
            assert_eq!(again[0].header("redelivered"), Some("true"));
        }
    });
}

/// A consumer with a window of one holds `m0` of three messages, then writes what `settle`
/// makes of its ack id (an ACK that makes room, and the UNSUBSCRIBE) in one input: the broker
/// hands it `m1` before the UNSUBSCRIBE takes effect, which puts `m1` back; nothing is lost
/// and the next consumer is served.
fn ack_and_unsubscribe(name: &str, ack: &str, settle: impl Fn(&str) -> String) {
    for shards in [1, 2] {
        let mut wire = Wire::new(shards, BrokerConfig::default);
        let q = queue(name, shards);
        let client = wire.connect(far(shards), Version::V1_2);
        let subscribe =
            format!("SUBSCRIBE\nid:1\ndestination:{q}\nack:{ack}\nprefetch-count:1\n\n\0");
        wire.input(client, subscribe.as_bytes());
        let publisher = wire.connect(0, Version::V1_2);
        for n in 0..3 {
            wire.input(
                publisher,
                format!("SEND\ndestination:{q}\n\nm{n}\0").as_bytes(),
            );
        }
        // The window is full: one message handed out, two waiting.
        assert_eq!(wire.bodies(client), ["m0"]);
        let ack_id = wire.frames_of(client, "MESSAGE")[0]
            .header("ack")
            .unwrap()
            .to_owned();
        wire.input(client, settle(&ack_id).as_bytes());
        wire.serves_a_fresh_client();
        let later = wire.connect(0, Version::V1_2);
        let subscribe = format!("SUBSCRIBE\nid:9\ndestination:{q}\nprefetch-count:10\n\n\0");
        wire.input(later, subscribe.as_bytes());
        // What the client acknowledged is done with; what it was handed after, and never
        // acknowledged, went back when it unsubscribed.
        assert_eq!(wire.bodies(later), ["m1", "m2"], "{shards} shards");
        assert_eq!(wire.bodies(client)[0], "m0");
        // A message that may have reached a client before says so.
        let redelivered = wire.frames_of(later, "MESSAGE")[0]
            .header("redelivered")
            .is_some();
        assert!(
            redelivered || wire.bodies(client).len() == 1,
            "{shards} shards"
        );
    }
}

#[test]
fn an_ack_that_makes_room_and_an_unsubscribe_in_one_input() {
    ends_within(LIMIT, || {
        ack_and_unsubscribe("ack", "client", |ack| {
            format!("ACK\nid:{ack}\n\n\0UNSUBSCRIBE\nid:1\n\n\0")
        });
    });
}

#[test]
fn an_ack_committed_and_an_unsubscribe_in_one_input() {
    ends_within(LIMIT, || {
        ack_and_unsubscribe("tx", "client-individual", |ack| {
            format!(
                "BEGIN\ntransaction:t\n\n\0ACK\nid:{ack}\ntransaction:t\n\n\0\
                 COMMIT\ntransaction:t\n\n\0UNSUBSCRIBE\nid:1\n\n\0"
            )
        });
    });
}

#[test]
fn an_ack_and_a_disconnect_in_one_input_give_the_rest_to_another_consumer() {
    ends_within(LIMIT, || {
        for shards in [1, 2] {
            let mut wire = Wire::new(shards, BrokerConfig::default);
            let q = queue("bye", shards);
            let client = wire.connect(far(shards), Version::V1_1);
            let subscribe = format!(
                "SUBSCRIBE\nid:1\ndestination:{q}\nack:client-individual\nprefetch-count:2\n\n\0"
            );
            wire.input(client, subscribe.as_bytes());
            let other = wire.connect(0, Version::V1_2);
            let publisher = wire.connect(0, Version::V1_2);
            for n in 0..4 {
                wire.input(
                    publisher,
                    format!("SEND\ndestination:{q}\n\nm{n}\0").as_bytes(),
                );
            }
            let first = wire.frames_of(client, "MESSAGE").remove(0);
            let id = first.header("message-id").unwrap();
            let frames =
                format!("ACK\nmessage-id:{id}\nsubscription:1\n\n\0DISCONNECT\nreceipt:bye\n\n\0");
            wire.input(client, frames.as_bytes());
            wire.drop_connection(client);
            let subscribe = format!("SUBSCRIBE\nid:9\ndestination:{q}\nprefetch-count:10\n\n\0");
            wire.input(other, subscribe.as_bytes());
            wire.serves_a_fresh_client();
            let acked = String::from_utf8_lossy(&first.body).into_owned();
            let mut all = vec![acked];
            all.extend(wire.bodies(other));
            all.sort();
            assert_eq!(all, ["m0", "m1", "m2", "m3"], "{shards} shards");
            assert_eq!(wire.held().0, 0);
        }
    });
}

/// A consumer on the shard that does not own its queue unsubscribes and subscribes again with
/// the same id while a message for its first subscription is on its way between the shards:
/// that message is not delivered to the second subscription, and is delivered once.
#[test]
fn a_reused_subscription_id_does_not_take_a_message_meant_for_the_first() {
    ends_within(LIMIT, || {
        let mut wire = Wire::new(2, BrokerConfig::default);
        let q = queue("reuse", 2);
        let client = wire.connect(1, Version::V1_2);
        let subscribe = format!("SUBSCRIBE\nid:1\ndestination:{q}\nack:client-individual\n\n\0");
        wire.input(client, subscribe.as_bytes());
        let publisher = wire.connect(0, Version::V1_2);
        wire.holding = true;
        wire.input(
            publisher,
            format!("SEND\ndestination:{q}\n\nm\0").as_bytes(),
        );
        // The owner has handed the message to the consumer; the word is not carried yet.
        let again = format!("UNSUBSCRIBE\nid:1\n\n\0{subscribe}");
        wire.input(client, again.as_bytes());
        wire.carry();
        wire.serves_a_fresh_client();
        let ids = deliveries(&wire, &[client]);
        assert_eq!(ids.len(), 1, "delivered once: {ids:?}");
        let message = wire.frames_of(client, "MESSAGE").remove(0);
        // Delivered after the second SUBSCRIBE, from the queue: marked as handed out before.
        assert_eq!(message.header("redelivered"), Some("true"));
        let ack = message.header("ack").unwrap();
        wire.input(client, format!("ACK\nid:{ack}\n\n\0").as_bytes());
        assert_eq!(wire.held(), (0, 0), "acknowledged: nothing held");
    });
}

/// Under auto ack, a message handed to a client whose output is not written yet stays that
/// client's when it unsubscribes: it is not given to another consumer as well. Once written it
/// is done with; had the connection ended first, it would have gone back.
#[test]
fn auto_ack_messages_on_their_way_to_a_client_that_unsubscribes_are_not_given_twice() {
    ends_within(LIMIT, || {
        for shards in [1, 2] {
            for written in [true, false] {
                let mut wire = Wire::new(shards, BrokerConfig::default);
                let q = queue("handed", shards);
                let client = wire.connect(far(shards), Version::V1_2);
                let other = wire.connect(0, Version::V1_2);
                wire.input(
                    client,
                    format!("SUBSCRIBE\nid:1\ndestination:{q}\n\n\0").as_bytes(),
                );
                wire.stalled.insert(client);
                let publisher = wire.connect(0, Version::V1_2);
                wire.input(
                    publisher,
                    format!("SEND\ndestination:{q}\n\nm\0").as_bytes(),
                );
                wire.input(client, b"UNSUBSCRIBE\nid:1\n\n\0");
                wire.input(
                    other,
                    format!("SUBSCRIBE\nid:2\ndestination:{q}\n\n\0").as_bytes(),
                );
                assert!(
                    wire.bodies(other).is_empty(),
                    "{shards} shards: given twice"
                );
                if written {
                    wire.unstall(client);
                    assert_eq!(wire.bodies(client), ["m"], "{shards} shards");
                    assert!(wire.bodies(other).is_empty(), "{shards} shards");
                } else {
                    wire.drop_connection(client);
                    assert_eq!(wire.bodies(other), ["m"], "{shards} shards: lost");
                }
                assert_eq!(wire.held(), (0, 0), "{shards} shards, written {written}");
                wire.serves_a_fresh_client();
            }
        }
    });
}

/// A consumer too slow for a topic is closed with an ERROR, and what it had not been handed
/// yet is dropped: a queue message under auto ack among it, held by the queue's owner on
/// another shard, goes back to the queue for another consumer, not counted as written.
#[test]
fn a_queue_message_dropped_with_a_slow_consumers_output_goes_back() {
    ends_within(LIMIT, || {
        for shards in [1, 2] {
            let mut wire = Wire::new(shards, BrokerConfig::default);
            let q = queue("dropped", shards);
            let slow = wire.connect(far(shards), Version::V1_2);
            let subscribe = format!(
                "SUBSCRIBE\nid:1\ndestination:{q}\n\n\0\
                 SUBSCRIBE\nid:2\ndestination:/topic/busy\nack:client\nprefetch-count:1\n\n\0"
            );
            wire.input(slow, subscribe.as_bytes());
            wire.stalled.insert(slow);
            let publisher = wire.connect(0, Version::V1_2);
            wire.input(
                publisher,
                format!("SEND\ndestination:{q}\n\nkept\0").as_bytes(),
            );
            for n in 0..3 {
                let send = format!("SEND\ndestination:/topic/busy\n\nt{n}\0");
                wire.input(publisher, send.as_bytes());
            }
            // Closed as too slow; its transport writes again and is gone.
            wire.unstall(slow);
            assert_eq!(wire.frames_of(slow, "ERROR").len(), 1, "{shards} shards");
            assert!(wire.bodies(slow).iter().all(|b| b != "kept"));
            wire.drop_connection(slow);
            let other = wire.connect(0, Version::V1_2);
            wire.input(
                other,
                format!("SUBSCRIBE\nid:9\ndestination:{q}\n\n\0").as_bytes(),
            );
            assert_eq!(wire.bodies(other), ["kept"], "{shards} shards: lost");
            assert_eq!(wire.held(), (0, 0));
        }
    });
}

/// A publisher on another shard that is gone by the time its message fills the queue is not
/// kept as a paused publisher until the queue drains.
#[test]
fn a_publisher_gone_before_its_message_fills_the_queue_is_not_kept_paused() {
    ends_within(LIMIT, || {
        let config = || BrokerConfig::default().with_max_queue_bytes(300);
        let mut wire = Wire::new(2, config);
        let q = queue("full", 2);
        let publisher = wire.connect(1, Version::V1_2);
        wire.holding = true;
        let body = "x".repeat(400);
        wire.input(
            publisher,
            format!("SEND\ndestination:{q}\n\n{body}\0").as_bytes(),
        );
        wire.drop_connection(publisher);
        wire.carry();
        let paused: usize = wire
            .brokers
            .iter()
            .map(|b| b.stats().paused_publishers)
            .sum();
        assert_eq!(paused, 0);
        wire.serves_a_fresh_client();
    });
}
