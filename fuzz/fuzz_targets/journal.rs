//! The journal read back from any bytes, as a crash, a bad disk or a stranger's file may
//! leave it: reading never panics and stops within the input (a cut or corrupt record ends
//! it); a broker restored from what was read starts, and the snapshot it writes reads back
//! whole, giving the same broker.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use stomp_broker::journal::Reader;
use stomp_broker::{Broker, BrokerConfig, Persistence};

fn restored(records: impl Iterator<Item = stomp_broker::journal::Record>) -> Broker {
    let config = BrokerConfig::default().with_persistence(Persistence::Every);
    let mut broker = Broker::new(config);
    for record in records {
        broker.restore(record);
    }
    #[allow(clippy::disallowed_methods)] // the origin of the broker's time
    broker.restored(Instant::now());
    broker
}

fuzz_target!(|bytes: &[u8]| {
    let mut reader = Reader::new(bytes);
    let records: Vec<_> = reader.by_ref().collect();
    assert!(reader.valid_len() <= bytes.len());
    assert_eq!(reader.is_torn(), reader.valid_len() < bytes.len());
    let broker = restored(records.into_iter());
    let snapshot = broker.journal_snapshot();
    let mut again = Reader::new(&snapshot);
    let copy = restored(again.by_ref());
    assert!(!again.is_torn(), "a snapshot reads back whole");
    assert_eq!(copy.stats().queued_messages, broker.stats().queued_messages);
    assert_eq!(
        copy.stats().durable_subscriptions,
        broker.stats().durable_subscriptions
    );
    assert_eq!(
        copy.journal_snapshot(),
        snapshot,
        "and gives the same broker"
    );
});
