//! A hasher for the integer keys the store's writer looks up per operation: session uids,
//! queue positions and message ids. The broker assigns them all (no client chooses one, so
//! no client can flood a bucket), which makes SipHash's protection moot and its cost (6 %
//! of the writer thread's samples for the pending index, 10 % for the journal's set of
//! written messages, under load) worth saving: a multiply and a rotate per integer.

use std::hash::{BuildHasherDefault, Hasher};

/// Builds [`KeyHasher`]s, for `HashMap`s and `HashSet`s keyed by broker-assigned integers.
pub(super) type KeyHashing = BuildHasherDefault<KeyHasher>;

/// Multiply-rotate hashing of integers (see the module's note on when it is safe).
#[derive(Debug, Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
