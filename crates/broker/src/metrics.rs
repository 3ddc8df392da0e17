//! Broker-wide counters, read by `$SYS` and (later) the metrics endpoint. Relaxed atomics:
//! each counter is exact, the set is not a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections open now (CONNECT accepted).
    pub clients_connected: AtomicU64,
    /// Most connections open at once.
    pub clients_maximum: AtomicU64,
    /// MQTT packets received, of any type.
    pub messages_received: AtomicU64,
    /// MQTT packets sent, of any type.
    pub messages_sent: AtomicU64,
    /// PUBLISH packets received.
    pub publish_received: AtomicU64,
    /// PUBLISH packets sent.
    pub publish_sent: AtomicU64,
    /// Deliveries dropped because a queue was full (or its client offline at QoS 0).
    pub publish_dropped: AtomicU64,
    /// Bytes read from clients.
    pub bytes_received: AtomicU64,
    /// Bytes written to clients.
    pub bytes_sent: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts a new connection and updates the maximum.
    pub fn client_connected(&self) {
        let now = self.clients_connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts a connection gone.
    pub fn client_disconnected(&self) {
        self.clients_connected.fetch_sub(1, Ordering::Relaxed);
    }
}
