//! What the shards' broker tasks send each other ([`stomp_broker::ShardMessage`]): one
//! channel into each shard, so that what one shard sends another arrives in the order sent,
//! and a count of what is on its way, shared by all. What a shard has for another while
//! serving a batch of its inbox goes as one message at the end of the batch: the other shard
//! wakes once for it, and hands its connections one buffer for all of it. Past [`MAX_BACKLOG`] messages on their
//! way, every shard stops reading its clients' input until the backlog is down to half:
//! the shards themselves never wait for each other (two waiting on each other's full
//! channels would wait forever), so the bound is kept at the clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use stomp_broker::ShardMessage;
use tokio::sync::mpsc;

use crate::budget::Stamp;

/// Messages on their way between shards past which clients' input is not read.
pub(crate) const MAX_BACKLOG: usize = 65_536;

/// Messages from shard `.0`, in order, sent at `.2`.
pub(crate) type FromPeer = (usize, Vec<ShardMessage>, Stamp);

/// One shard's ends of the channels between shards.
#[derive(Debug)]
pub(crate) struct Peers {
    index: usize,
    senders: Arc<[mpsc::UnboundedSender<FromPeer>]>,
    backlog: Arc<AtomicUsize>,
    /// What is waiting to be sent to each shard.
    waiting: Vec<Vec<ShardMessage>>,
}

impl Peers {
    /// Each of `count` shards' ends, and the receiving end of each one's channel.
    pub(crate) fn new(count: usize) -> (Vec<Peers>, Vec<mpsc::UnboundedReceiver<FromPeer>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..count).map(|_| mpsc::unbounded_channel()).unzip();
        let senders: Arc<[_]> = senders.into();
        let backlog = Arc::new(AtomicUsize::new(0));
        let peers = (0..count)
            .map(|index| Peers {
                index,
                senders: senders.clone(),
                backlog: backlog.clone(),
                waiting: vec![Vec::new(); count],
            })
            .collect();
        (peers, receivers)
    }

    /// This shard's index.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Sends `message` to shard `shard` with the rest of the batch ([`flush`](Self::flush)).
    pub(crate) fn send(&mut self, shard: usize, message: ShardMessage) {
        self.waiting[shard].push(message);
    }

    /// Sends what waits for each shard.
    pub(crate) fn flush(&mut self) {
        for (shard, waiting) in self.waiting.iter_mut().enumerate() {
            if waiting.is_empty() {
                continue;
            }
            let count = waiting.len();
            self.backlog.fetch_add(count, Ordering::Relaxed);
            let batch = std::mem::take(waiting);
            if self.senders[shard]
                .send((self.index, batch, Stamp::now()))
                .is_err()
            {
                // That shard has stopped (shutting down): nothing is on its way.
                self.backlog.fetch_sub(count, Ordering::Relaxed);
            }
        }
    }

    /// `count` messages from another shard were taken off this shard's channel.
    pub(crate) fn received(&self, count: usize) {
        self.backlog.fetch_sub(count, Ordering::Relaxed);
    }

    /// Whether clients' input should stop now, given whether it was stopped.
    pub(crate) fn congested(&self, was: bool) -> bool {
        let backlog = self.backlog.load(Ordering::Relaxed);
        if was {
            backlog > MAX_BACKLOG / 2
        } else {
            backlog > MAX_BACKLOG
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stomp_broker::{Broker, BrokerConfig, BrokerEvent};

    /// A message one shard has for another: a topic message its owner fans out.
    fn fanout() -> ShardMessage {
        let config = BrokerConfig::default().with_shard(0, 2);
        let mut broker = Broker::new(config);
        let now = std::time::Instant::now();
        let topic = (0..)
            .map(|n| format!("/topic/{n}"))
            .find(|t| stomp_broker::owner_of(t, 2) == 0)
            .unwrap_or_default();
        broker.publish(now, &topic, &[], bytes::Bytes::new());
        loop {
            match broker.poll_event() {
                Some(BrokerEvent::ToShard { message, .. }) => return message,
                Some(_) => {}
                None => panic!("no message for the other shard"),
            }
        }
    }

    #[test]
    fn past_the_backlog_bound_input_stops_until_half_of_it_arrived() {
        let (mut peers, mut receivers) = Peers::new(2);
        let message = fanout();
        let [sender, receiver] = &mut peers[..] else {
            panic!("two shards")
        };
        for _ in 0..MAX_BACKLOG {
            sender.send(1, message.clone());
        }
        sender.flush();
        assert!(!sender.congested(false), "at the bound, not past it");
        sender.send(1, message.clone());
        sender.flush();
        assert!(sender.congested(false));
        // Taken off the channel in two batches: input resumes at half the bound.
        let (from, first, _) = receivers[1].try_recv().unwrap_or_else(|_| panic!("empty"));
        assert_eq!((from, first.len()), (0, MAX_BACKLOG));
        receiver.received(MAX_BACKLOG / 2);
        assert!(sender.congested(true), "still above half");
        receiver.received(1);
        assert!(!sender.congested(true));
    }
}
