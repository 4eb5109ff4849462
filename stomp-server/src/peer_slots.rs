//! Connections per peer address: so that one address cannot take every connection slot
//! ([`ServerBuilder::max_connections_per_peer`](crate::ServerBuilder::max_connections_per_peer)).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections by peer address, within a bound; an address with none holds nothing.
#[derive(Debug)]
pub(crate) struct PeerSlots {
    open: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

/// One connection's place among its address's: given back when dropped.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    slots: Arc<PeerSlots>,
    address: IpAddr,
}

impl PeerSlots {
    pub(crate) fn new(max: usize) -> PeerSlots {
        PeerSlots {
            open: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    /// A place for one more connection from `address`, or the refusal's message.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Result<PeerSlot, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_insert(0);
        if *count >= self.max {
            return Err(format!(
                "too many connections from {address}: at most {} per address",
                self.max
            ));
        }
        *count += 1;
        Ok(PeerSlot {
            slots: self.clone(),
            address,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = (self.slots.open.lock()).unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_bound_and_its_places_back() {
        let slots = Arc::new(PeerSlots::new(2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.admit(a).unwrap();
        let _second = slots.admit(a).unwrap();
        assert!(
            slots
                .admit(a)
                .unwrap_err()
                .contains("at most 2 per address")
        );
        let _other = slots.admit(b).unwrap();
        drop(first);
        let _again = slots.admit(a).unwrap();
    }
}
