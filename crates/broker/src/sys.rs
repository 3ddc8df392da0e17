//! `$SYS/broker/...` topics, named as mosquitto names them, published retained every
//! `sys_interval` seconds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tern_codec::{QoS, TopicName};
use tokio_util::sync::CancellationToken;

use crate::clock::now;
use crate::hub::Hub;
use crate::message::Message;
use crate::metrics::Metrics;

/// The `$SYS` topics and their current values.
pub fn snapshot(hub: &Hub) -> Vec<(&'static str, String)> {
    let m = &hub.metrics;
    let (online, offline) = hub.registry.counts();
    let uptime = now().saturating_duration_since(hub.started).as_secs();
    let mut topics = vec![
        (
            "$SYS/broker/version",
            format!("tern version {}", env!("CARGO_PKG_VERSION")),
        ),
        ("$SYS/broker/uptime", format!("{uptime} seconds")),
        ("$SYS/broker/clients/connected", online.to_string()),
        ("$SYS/broker/clients/active", online.to_string()),
        ("$SYS/broker/clients/disconnected", offline.to_string()),
        ("$SYS/broker/clients/inactive", offline.to_string()),
        ("$SYS/broker/clients/total", (online + offline).to_string()),
        (
            "$SYS/broker/clients/maximum",
            Metrics::get(&m.clients_maximum).to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            Metrics::get(&m.messages_received).to_string(),
        ),
        (
            "$SYS/broker/messages/sent",
            Metrics::get(&m.messages_sent).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/received",
            Metrics::get(&m.publish_received).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/sent",
            Metrics::get(&m.publish_sent).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/dropped",
            Metrics::get(&m.publish_dropped).to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            Metrics::get(&m.bytes_received).to_string(),
        ),
        (
            "$SYS/broker/bytes/sent",
            Metrics::get(&m.bytes_sent).to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            hub.router.len().to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            hub.retained.len().to_string(),
        ),
    ];
    if let Some(store) = &hub.store {
        // Tern's own: the durable store's group commit at work.
        let stats = store.stats();
        let read = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed).to_string();
        topics.extend([
            ("$SYS/broker/store/commits", read(&stats.commits)),
            ("$SYS/broker/store/operations", read(&stats.ops)),
            ("$SYS/broker/store/checkpoints", read(&stats.checkpoints)),
            (
                "$SYS/broker/store/operations absorbed",
                read(&stats.absorbed),
            ),
            ("$SYS/broker/store/failures", read(&stats.failures)),
        ]);
    }
    topics
}

/// Publishes every `$SYS` topic now, retained, at QoS 0.
pub fn publish(hub: &Hub) {
    for (topic, value) in snapshot(hub) {
        let Ok(topic) = TopicName::try_from(topic) else {
            continue;
        };
        let message = Message::detached(
            &topic,
            value.as_bytes(),
            QoS::AtMostOnce,
            true,
            Default::default(),
            None,
            now(),
        );
        hub.publish(Arc::new(message));
    }
}

/// Publishes `$SYS` every `interval` and sweeps expired sessions every second, until
/// `shutdown`.
pub async fn run(hub: Arc<Hub>, interval: Option<Duration>, shutdown: CancellationToken) {
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    let mut sys = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = sweep.tick() => hub.expire_sessions(now()),
            _ = sys.tick(), if interval.is_some() => publish(&hub),
            _ = shutdown.cancelled() => return,
        }
    }
}
