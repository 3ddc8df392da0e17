//! Loss and duplicate accounting of a subscriber: which sequence numbers of each publisher
//! arrived.
//!
//! Rules:
//! - Per publisher id, a bitset of sequence numbers seen. Its words below the first gap are
//!   dropped as soon as they fill, so messages that arrive in order (as MQTT delivers one
//!   publisher's messages on one subscription) keep memory constant; a gap keeps the bits
//!   after it until the run ends.
//! - A sequence number seen before is a duplicate, counted and not timed again.
//! - Gaps: for each publisher, the sequence numbers below the highest one seen that never
//!   arrived. Losses at the very end of a publisher's sequence are invisible here; the
//!   combined mode of `tern bench pub` knows what was sent and counts them exactly.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// The sequence numbers seen from one publisher.
#[derive(Debug, Default)]
struct Sequences {
    /// Every sequence number below this was seen.
    base: u64,
    /// Bits for `base..`, 64 per word.
    words: VecDeque<u64>,
    /// Distinct sequence numbers seen.
    unique: u64,
    /// The highest seen, plus one (0: none yet).
    end: u64,
}

impl Sequences {
    /// Records `seq`; true if it is new.
    fn record(&mut self, seq: u64) -> bool {
        if seq < self.base {
            return false;
        }
        let offset = seq - self.base;
        let word = (offset / 64) as usize;
        let bit = 1u64 << (offset % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & bit != 0 {
            return false;
        }
        self.words[word] |= bit;
        self.unique += 1;
        self.end = self.end.max(seq + 1);
        while self.words.front() == Some(&u64::MAX) {
            self.words.pop_front();
            self.base += 64;
        }
        true
    }
}

/// Publisher ids are already well spread (a random base plus an index): hash them as they
/// are rather than through SipHash on every message.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0 << 8 | u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

/// Counts of one subscriber, or of many added up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Distinct messages received.
    pub(crate) unique: u64,
    /// Messages received again.
    pub(crate) dups: u64,
    /// Sequence numbers skipped (see the module docs).
    pub(crate) gaps: u64,
    /// Distinct publishers heard from.
    pub(crate) publishers: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.unique += other.unique;
        self.dups += other.dups;
        self.gaps += other.gaps;
        self.publishers += other.publishers;
    }
}

/// Sequence numbers seen per publisher, for one subscriber.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    publishers: HashMap<u32, Sequences, BuildHasherDefault<IdHasher>>,
    dups: u64,
}

impl Tracker {
    /// Records a message; true if it is new (not a duplicate).
    pub(crate) fn record(&mut self, publisher: u32, seq: u64) -> bool {
        let new = self.publishers.entry(publisher).or_default().record(seq);
        if !new {
            self.dups += 1;
        }
        new
    }

    /// Distinct messages received from `publisher`.
    pub(crate) fn unique_from(&self, publisher: u32) -> u64 {
        self.publishers.get(&publisher).map_or(0, |s| s.unique)
    }

    /// The counts so far.
    pub(crate) fn tally(&self) -> Tally {
        let unique = self.publishers.values().map(|s| s.unique).sum();
        let gaps = self.publishers.values().map(|s| s.end - s.unique).sum();
        Tally {
            unique,
            dups: self.dups,
            gaps,
            publishers: self.publishers.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_keeps_no_words() {
        let mut t = Tracker::default();
        for seq in 0..10_000 {
            assert!(t.record(7, seq));
        }
        assert!(t.publishers[&7].words.len() <= 1);
        assert_eq!(
            t.tally(),
            Tally {
                unique: 10_000,
                dups: 0,
                gaps: 0,
                publishers: 1
            }
        );
    }

    #[test]
    fn duplicates_and_gaps_are_counted_per_publisher() {
        let mut t = Tracker::default();
        for seq in [0, 1, 2, 5, 6] {
            t.record(1, seq);
        }
        assert!(!t.record(1, 1), "below the base: a duplicate");
        assert!(!t.record(1, 6), "above the base: a duplicate");
        assert!(t.record(2, 0));
        assert!(t.record(1, 3), "a late message fills its gap");
        let tally = t.tally();
        assert_eq!((tally.unique, tally.dups, tally.gaps), (7, 2, 1));
        assert_eq!(tally.publishers, 2);
        assert_eq!(t.unique_from(1), 6);
        assert_eq!(t.unique_from(9), 0);
    }
}
