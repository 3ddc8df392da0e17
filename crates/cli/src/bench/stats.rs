//! Counters and latency histograms that every client task of a job feeds and the progress
//! line and the summary read.
//!
//! Rules: a task adds to the shared counters once per batch (one socket read or one filled
//! write buffer), never per message; latencies go through a [`LatencyBatch`] that holds a few
//! hundred values and takes the histogram's lock once per batch. Each [`Latency`] keeps two
//! histograms: the whole run's, and the one since the progress line last looked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use hdrhistogram::Histogram;

/// Values a [`LatencyBatch`] holds before it takes the lock.
const BATCH: usize = 256;

/// A histogram of nanoseconds, 1 ns to one hour, three significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant bounds are valid")
}

#[derive(Debug)]
struct Pair {
    total: Histogram<u64>,
    window: Histogram<u64>,
}

/// One kind of latency (publish to acknowledgement, end to end, handshake).
#[derive(Debug)]
pub(crate) struct Latency(Mutex<Pair>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Mutex::new(Pair {
            total: histogram(),
            window: histogram(),
        }))
    }
}

impl Latency {
    fn lock(&self) -> MutexGuard<'_, Pair> {
        // Recording cannot leave a histogram half-updated in a way that matters here.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records nanosecond values.
    pub(crate) fn record(&self, values: &[u64]) {
        let mut pair = self.lock();
        for &v in values {
            pair.total.saturating_record(v.max(1));
            pair.window.saturating_record(v.max(1));
        }
    }

    /// The values recorded since the last call (for the progress line).
    pub(crate) fn take_window(&self) -> Histogram<u64> {
        let mut pair = self.lock();
        let window = pair.window.clone();
        pair.window.reset();
        window
    }

    /// Everything recorded.
    pub(crate) fn total(&self) -> Histogram<u64> {
        self.lock().total.clone()
    }
}

/// A task's latencies on their way to a shared [`Latency`].
#[derive(Debug)]
pub(crate) struct LatencyBatch(Vec<u64>);

impl Default for LatencyBatch {
    fn default() -> Self {
        LatencyBatch(Vec::with_capacity(BATCH))
    }
}

impl LatencyBatch {
    /// Adds a value, handing the batch over when it is full.
    pub(crate) fn push(&mut self, nanos: u64, to: &Latency) {
        self.0.push(nanos);
        if self.0.len() >= BATCH {
            self.flush(to);
        }
    }

    /// Hands the values held over.
    pub(crate) fn flush(&mut self, to: &Latency) {
        if !self.0.is_empty() {
            to.record(&self.0);
            self.0.clear();
        }
    }
}

/// A counter shared by the tasks of a job.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (nothing when 0).
    pub(crate) fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything a job counts while it runs.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Clients connected (and subscribed, for subscribers).
    pub(crate) connected: Counter,
    /// Clients that could not connect.
    pub(crate) failed: Counter,
    /// Connections the broker closed.
    pub(crate) dropped: Counter,
    /// PUBLISH packets written.
    pub(crate) sent: Counter,
    /// PUBACK / PUBCOMP received for them.
    pub(crate) acked: Counter,
    /// Distinct messages received by subscribers.
    pub(crate) received: Counter,
    /// Messages received again.
    pub(crate) dups: Counter,
    /// Unexpected packets, refused acknowledgements, acknowledgements missing at the end.
    pub(crate) errors: Counter,
    /// Publish to PUBACK (QoS 1) or PUBCOMP (QoS 2).
    pub(crate) ack_latency: Latency,
    /// Send time in the payload to receipt by a subscriber.
    pub(crate) e2e_latency: Latency,
    /// TCP connect (and TLS) to CONNACK.
    pub(crate) handshake: Latency,
    first_error: Mutex<Option<String>>,
}

impl Stats {
    /// Counts an error and keeps the first one's text for the summary.
    pub(crate) fn error(&self, message: impl FnOnce() -> String) {
        self.errors.add(1);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(message());
        }
    }

    /// The first error's text.
    pub(crate) fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_reach_both_histograms() {
        let latency = Latency::default();
        let mut batch = LatencyBatch::default();
        for v in 1..=300 {
            batch.push(v * 1000, &latency);
        }
        assert_eq!(
            latency.total().len(),
            BATCH as u64,
            "one full batch handed over"
        );
        batch.flush(&latency);
        assert_eq!(latency.take_window().len(), 300);
        assert_eq!(latency.take_window().len(), 0, "the window starts again");
        assert_eq!(latency.total().len(), 300);
        assert!((300_000..301_000).contains(&latency.total().max()));
    }
}
