//! The stamp a `tern bench` publisher writes at the start of every payload, and the clock
//! that times it.
//!
//! Layout, big-endian, [`STAMP_LEN`] bytes, then zeros up to the payload size:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | publisher id: a random base per `tern bench pub` process plus the publisher's index |
//! | 4..12 | sequence number, from 0 per publisher |
//! | 12..20 | send time, nanoseconds since the UNIX epoch by [`now_ns`] |
//!
//! [`now_ns`] reads the monotonic clock and adds the wall-clock time read once at start: it
//! never goes back during a run, and two processes on one machine agree on it to within
//! the wall clock's precision, so `tern bench sub` can time messages that another process
//! sent. Within one process (publishers and subscribers together) no clock sync is needed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bytes of the stamp; payloads are at least this long.
pub(crate) const STAMP_LEN: usize = 20;

/// What a publisher writes into a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Which publisher sent it.
    pub(crate) publisher: u32,
    /// Its position in that publisher's sequence.
    pub(crate) seq: u64,
    /// When it was written into the publisher's send buffer ([`now_ns`]).
    pub(crate) sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `payload` (which must be
    /// that long).
    pub(crate) fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.publisher.to_be_bytes());
        payload[4..12].copy_from_slice(&self.seq.to_be_bytes());
        payload[12..20].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// The stamp at the start of `payload`, or `None` when it is too short to hold one.
    pub(crate) fn read(payload: &[u8]) -> Option<Stamp> {
        let field = |range: std::ops::Range<usize>| payload.get(range);
        Some(Stamp {
            publisher: u32::from_be_bytes(field(0..4)?.try_into().ok()?),
            seq: u64::from_be_bytes(field(4..12)?.try_into().ok()?),
            sent_ns: u64::from_be_bytes(field(12..20)?.try_into().ok()?),
        })
    }
}

/// Nanoseconds since the UNIX epoch: the wall clock read once, advanced by the monotonic
/// clock.
pub(crate) fn now_ns() -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (start, wall) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (Instant::now(), wall)
    });
    wall + start.elapsed().as_nanos() as u64
}

/// A random number (from the standard library's per-process hash keys).
pub(crate) fn random_u32() -> u32 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(now_ns());
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip_and_short_payloads() {
        let stamp = Stamp {
            publisher: 0xDEAD_BEEF,
            seq: 1 << 40,
            sent_ns: 1_700_000_000_000_000_000,
        };
        let mut payload = [0u8; 64];
        stamp.write(&mut payload);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(&payload[0..4], &[0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(Stamp::read(&payload[..19]), None);
    }

    #[test]
    fn clock_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a && a > 1_600_000_000_000_000_000);
    }
}
