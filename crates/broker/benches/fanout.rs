//! One message routed to 1,000 sessions: the broker's publish path from the router match to
//! one delivery pushed into each subscriber's mailbox ([`Hub::route`]), QoS 1, 64 B payload.
//!
//! The 1,000 subscribers are online, in-memory sessions subscribed to the exact topic; half
//! of them through `+` filters, so the match walks two branches. Each measured routing is
//! followed, outside the timing, by emptying the mailboxes, so that queue limits never drop
//! or hold back a delivery. Throughput counts deliveries (1,000 per routed message).
//!
//! Run with `cargo bench -p tern-broker --bench fanout`; figures are in docs/PERFORMANCE.md.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion, Throughput};
use tern_broker::hub::Hub;
use tern_broker::mailbox::Mailbox;
use tern_broker::message::Message;
use tern_broker::router::Subscriber;
use tern_broker::Config;
use tern_codec::{PublishProperties, QoS, SubscriptionOptions, TopicFilter, TopicName};

const SUBSCRIBERS: usize = 1_000;
const TOPIC: &str = "fleet/telemetry/engine";

/// A hub with [`SUBSCRIBERS`] online sessions on [`TOPIC`], and their mailboxes.
fn hub() -> (Hub, Vec<Arc<Mailbox>>) {
    let hub = Hub::new(Config::default());
    let exact = TopicFilter::try_from(TOPIC).expect("valid filter");
    let plus = TopicFilter::try_from("fleet/+/engine").expect("valid filter");
    let mailboxes: Vec<Arc<Mailbox>> = (0..SUBSCRIBERS)
        .map(|i| {
            let mailbox = Arc::new(Mailbox::new());
            let filter = if i % 2 == 0 { &exact } else { &plus };
            hub.router.subscribe(
                filter,
                Subscriber {
                    client: format!("subscriber-{i}").into(),
                    mailbox: mailbox.clone(),
                    options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
                    id: None,
                },
            );
            mailbox
        })
        .collect();
    (hub, mailboxes)
}

fn message() -> Arc<Message> {
    let topic = TopicName::try_from(TOPIC).expect("valid topic");
    Arc::new(Message::detached(
        &topic,
        &[0x5A; 64],
        QoS::AtLeastOnce,
        false,
        PublishProperties::default(),
        Some("publisher".into()),
        Instant::now(),
    ))
}

fn route_to_1000(c: &mut Criterion) {
    let (hub, mailboxes) = hub();
    let message = message();
    let mut waiting = VecDeque::new();
    // Every subscriber must get the message, or the figure measures something else.
    hub.route(message.clone(), &mut waiting);
    assert!(waiting.is_empty());
    assert!(mailboxes.iter().all(|m| m.pop().is_some() && m.is_empty()));

    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("route-1000-mailboxes", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let start = Instant::now();
                hub.route(message.clone(), &mut waiting);
                total += start.elapsed();
                for mailbox in &mailboxes {
                    mailbox.pop();
                }
            }
            total
        })
    });
    group.finish();
}

/// The group `criterion_group!` would generate, written out so that it can carry a doc comment
/// (the workspace denies missing docs).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    route_to_1000(&mut criterion);
}

criterion_main!(benches);
