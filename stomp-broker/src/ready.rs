//! The connections the driver should look at next: each named once, in the order they became
//! ready. A fan-out makes every subscriber ready once per message, so adding one must cost
//! next to nothing (a hash-set probe and a push, where an ordered set would rebalance a tree).

use std::collections::VecDeque;

use rustc_hash::FxHashSet;

use crate::ids::ConnectionId;

#[derive(Debug, Default)]
pub(crate) struct Ready {
    /// In the order they became ready; may hold ids removed since, skipped when popped.
    order: VecDeque<ConnectionId>,
    /// Ids the broker hands out itself: a fast hash is safe.
    members: FxHashSet<ConnectionId>,
}

impl Ready {
    pub(crate) fn insert(&mut self, connection: ConnectionId) {
        if self.members.insert(connection) {
            self.order.push_back(connection);
        }
    }

    pub(crate) fn remove(&mut self, connection: ConnectionId) {
        self.members.remove(&connection);
    }

    pub(crate) fn pop(&mut self) -> Option<ConnectionId> {
        while let Some(connection) = self.order.pop_front() {
            if self.members.remove(&connection) {
                return Some(connection);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_comes_out_once_in_the_order_it_became_ready() {
        let mut ready = Ready::default();
        for id in [3, 1, 3, 2, 1] {
            ready.insert(ConnectionId(id));
        }
        let out: Vec<_> = std::iter::from_fn(|| ready.pop()).collect();
        assert_eq!(out, [ConnectionId(3), ConnectionId(1), ConnectionId(2)]);
        assert_eq!(ready.pop(), None);
    }

    #[test]
    fn a_removed_connection_is_skipped_and_may_become_ready_again() {
        let mut ready = Ready::default();
        ready.insert(ConnectionId(1));
        ready.insert(ConnectionId(2));
        ready.remove(ConnectionId(1));
        assert_eq!(ready.pop(), Some(ConnectionId(2)));
        assert_eq!(ready.pop(), None);
        ready.insert(ConnectionId(2));
        ready.remove(ConnectionId(2));
        ready.insert(ConnectionId(2));
        assert_eq!(ready.pop(), Some(ConnectionId(2)));
        assert_eq!(ready.pop(), None);
        assert!(ready.order.is_empty());
    }
}
