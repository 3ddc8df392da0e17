//! Reconnect delays: exponential backoff with jitter.
//!
//! The n-th consecutive failure waits `initial * 2^n`, capped at `max`, and then a random
//! point in the upper half of that (so clients that lost the same server do not all come
//! back at the same instant). A successful connection starts the sequence again.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::options::Backoff;

/// The delay sequence of one client.
#[derive(Debug)]
pub(crate) struct Delays {
    backoff: Backoff,
    failures: u32,
}

impl Delays {
    pub(crate) fn new(backoff: Backoff) -> Self {
        Delays {
            backoff,
            failures: 0,
        }
    }

    /// The connection succeeded: the next failure waits the initial delay again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt, with `random` (any `u64`) as the jitter source.
    pub(crate) fn next_with(&mut self, random: u64) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        let ceiling = self
            .backoff
            .initial
            .saturating_mul(factor)
            .min(self.backoff.max);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        let span = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if span == 0 { 0 } else { random % (span + 1) })
    }

    /// The delay before the next attempt.
    pub(crate) fn next(&mut self) -> Duration {
        self.next_with(random())
    }
}

/// A random number from the standard library's per-process hash keys; good enough for
/// jitter, not for anything secret.
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut delays = Delays::new(Backoff {
            initial: 100 * MS,
            max: 1000 * MS,
        });
        let lows: Vec<_> = (0..6).map(|_| delays.next_with(0)).collect();
        assert_eq!(
            lows,
            [50 * MS, 100 * MS, 200 * MS, 400 * MS, 500 * MS, 500 * MS]
        );
        delays.reset();
        assert_eq!(
            delays.next_with(u64::MAX),
            50 * MS + Duration::from_nanos(u64::MAX % 50_000_001)
        );
        for _ in 0..10 {
            delays.next();
        }
        for _ in 0..100 {
            let d = delays.next();
            assert!(d >= 500 * MS && d <= 1000 * MS, "{d:?}");
        }
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut delays = Delays::new(Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        });
        for _ in 0..200 {
            assert!(delays.next() <= Duration::from_secs(60));
        }
    }
}
