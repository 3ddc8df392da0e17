//! The broker's one clock read, from tokio's clock so that tests can pause and advance it.

use std::time::Instant;

/// The current time.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
