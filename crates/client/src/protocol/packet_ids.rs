//! Packet identifier allocation (§2.2.1).
//!
//! Rules: an identifier is never 0 [MQTT-2.2.1-3]; one in use by an unacknowledged PUBLISH,
//! SUBSCRIBE or UNSUBSCRIBE is not given out again until its acknowledgement frees it
//! [MQTT-2.2.1-2]. Allocation goes round from the last one given, so a freed identifier is
//! not reused at once (which helps reading traces).

use tern_codec::PacketId;

const WORDS: usize = 65536 / 64;

/// The set of identifiers in use, as a bitmap.
#[derive(Debug)]
pub(crate) struct PacketIds {
    used: Box<[u64; WORDS]>,
    in_use: usize,
    last: u16,
}

impl PacketIds {
    pub(crate) fn new() -> Self {
        PacketIds {
            used: Box::new([0; WORDS]),
            in_use: 0,
            last: 0,
        }
    }

    /// A free identifier, now in use; `None` when all 65,535 are taken.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use == usize::from(u16::MAX) {
            return None;
        }
        let mut candidate = self.last;
        loop {
            candidate = candidate.wrapping_add(1);
            if candidate == 0 {
                continue;
            }
            if !self.is_used(candidate) {
                self.mark(candidate);
                self.last = candidate;
                return PacketId::new(candidate);
            }
        }
    }

    /// Marks `id` as in use (restored from a store); marking it twice does nothing.
    pub(crate) fn reserve(&mut self, id: PacketId) {
        if !self.is_used(id.get()) {
            self.mark(id.get());
        }
    }

    /// Frees `id`; freeing a free identifier does nothing.
    pub(crate) fn release(&mut self, id: PacketId) {
        let n = id.get();
        if self.is_used(n) {
            self.used[usize::from(n) / 64] &= !(1 << (n % 64));
            self.in_use -= 1;
        }
    }

    fn is_used(&self, n: u16) -> bool {
        self.used[usize::from(n) / 64] & (1 << (n % 64)) != 0
    }

    fn mark(&mut self, n: u16) {
        self.used[usize::from(n) / 64] |= 1 << (n % 64);
        self.in_use += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn allocates_in_order_and_skips_ids_in_use_2_2_1_2() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate(), Some(id(1)));
        assert_eq!(ids.allocate(), Some(id(2)));
        assert_eq!(ids.allocate(), Some(id(3)));
        ids.release(id(1));
        assert_eq!(
            ids.allocate(),
            Some(id(4)),
            "freed ids are not reused at once"
        );
    }

    #[test]
    fn wraps_past_zero_and_runs_out_2_2_1_3() {
        let mut ids = PacketIds::new();
        for n in 1..=u16::MAX {
            assert_eq!(ids.allocate(), Some(id(n)));
        }
        assert_eq!(ids.allocate(), None);
        ids.release(id(7));
        assert_eq!(ids.allocate(), Some(id(7)));
        ids.release(id(7));
        ids.release(id(7));
        assert_eq!(ids.in_use, usize::from(u16::MAX) - 1);
    }
}
