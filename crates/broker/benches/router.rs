//! Topic matching in a subscription tree of 100,000 filters, mixed as a fleet of devices
//! would subscribe: 70 % exact filters, 20 % with one `+` level, 10 % ending in `#`.
//!
//! The tree has 500 sites of 50 devices with four metrics each: 100,000 cells
//! `site/S/dev/D/M`, each with one filter of the cell's shape: `site/S/dev/D/M` (exact),
//! `site/S/+/D/M` (`+`) or `site/S/dev/D/M/#` (`#`). 25,000 clients hold four filters
//! each. Three topics are matched:
//!
//! - `hit`: a device's metric, matched by its cell's filter (walking the `dev` and `+`
//!   branches of its site, and the `#` child of the metric level);
//! - `miss`: a topic under a known site and device that no filter matches;
//! - `root-miss`: a first level no filter has (the walk stops at the root).
//!
//! Run with `cargo bench -p tern-broker --bench router`; figures are in docs/PERFORMANCE.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use tern_broker::mailbox::Mailbox;
use tern_broker::router::{Router, Subscriber};
use tern_codec::{QoS, SubscriptionOptions, TopicFilter};

const SITES: usize = 500;
const DEVICES: usize = 50;
const METRICS: [&str; 4] = ["temp", "humidity", "power", "status"];
const FILTERS: usize = SITES * DEVICES * METRICS.len();

/// The `n`-th filter: cell `n` of the module docs in the shape `n % 10` picks (7 exact,
/// 2 `+`, 1 `#`), so the 100,000 filters are all different.
fn filter(n: usize) -> String {
    let site = n / (DEVICES * METRICS.len());
    let device = n / METRICS.len() % DEVICES;
    let metric = METRICS[n % METRICS.len()];
    match n % 10 {
        0 => format!("site/{site}/dev/{device}/{metric}/#"),
        1 | 2 => format!("site/{site}/+/{device}/{metric}"),
        _ => format!("site/{site}/dev/{device}/{metric}"),
    }
}

/// A tree of [`FILTERS`] subscriptions held by a quarter as many clients.
fn tree() -> Router {
    let router = Router::new();
    let mailboxes: Vec<Arc<Mailbox>> = (0..FILTERS / 4).map(|_| Arc::new(Mailbox::new())).collect();
    for n in 0..FILTERS {
        let filter = TopicFilter::try_from(filter(n).as_str()).expect("valid filter");
        let client = n % mailboxes.len();
        router.subscribe(
            &filter,
            Subscriber {
                client: format!("client-{client}").into(),
                mailbox: mailboxes[client].clone(),
                options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
                id: None,
            },
        );
    }
    router
}

fn match_topics(c: &mut Criterion) {
    let router = tree();
    let topics = [
        ("hit", "site/7/dev/3/temp"),
        ("miss", "site/7/dev/3/unknown"),
        ("root-miss", "elsewhere/7/dev/3/temp"),
    ];
    // The tree must hold what the docs say, or the figures measure something else.
    assert_eq!(router.len(), FILTERS);
    assert_eq!(router.matches(topics[0].1).len(), 1);
    assert!(router.matches(topics[1].1).is_empty());
    assert!(router.matches(topics[2].1).is_empty());
    let mut group = c.benchmark_group("router/match-100k");
    group.throughput(Throughput::Elements(1));
    for (name, topic) in topics {
        group.bench_with_input(BenchmarkId::from_parameter(name), topic, |b, topic| {
            b.iter(|| black_box(router.matches(black_box(topic))).len())
        });
    }
    group.finish();
}

/// The group `criterion_group!` would generate, written out so that it can carry a doc comment
/// (the workspace denies missing docs).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    match_topics(&mut criterion);
}

criterion_main!(benches);
