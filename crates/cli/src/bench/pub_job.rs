//! `tern bench pub`: `-c` publishers, each on its own connection, publishing stamped
//! messages; with `--subscribers N`, N subscribers in the same process as well, so that
//! end-to-end latency needs no clock sync and loss and duplicates are exact.
//!
//! Rules:
//! - Subscribers connect and subscribe first, then publishers connect; publishing starts
//!   when every client is ready, at one common instant.
//! - Subscriber j subscribes to `--sub-topic` expanded for j, or by default to the filter
//!   that matches every topic `-t` produces (varying levels become `+`): fan-in and fan-out
//!   need no `--sub-topic`; pairs are `-t 'bench/%i' --sub-topic 'bench/%i'`.
//! - Expected deliveries: each publisher's messages sent times the subscribers whose filter
//!   matches its topic. Once publishing ended, the job waits until every expected delivery
//!   arrived, or until none arrived for `--drain` seconds; then lost = expected - received
//!   (distinct, from this run's publishers), duplicates counted apart.
//! - Rates: `pub_msgs_per_s` = sent / publishing time; `recv_msgs_per_s` = received / (start
//!   of publishing to the last delivery), as mqtt-load counts them.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tern_codec::{QoS, TopicFilter, TopicName};
use tokio::time::Instant;

use super::launch::{launch, launch_subscribers, Stop};
use super::link::Link;
use super::options::{parse_qos, CommonArgs, Usage};
use super::pattern::{expand, wildcard};
use super::payload::{now_ns, random_u32, STAMP_LEN};
use super::progress::{self, Shows};
use super::report::Report;
use super::stats::Stats;
use super::{publisher, subscriber, version_name, Failure};

/// Options of `tern bench pub`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = "Examples:\n  \
    fan-in 4 -> 1, QoS 1:   tern bench pub -c 4 --subscribers 1 -q 1 -d 10\n  \
    fan-out 1 -> 50:        tern bench pub -c 1 --subscribers 50 -t bench/one -d 10\n  \
    100 pairs:              tern bench pub -c 100 --subscribers 100 -t 'bench/%i' --sub-topic 'bench/%i' -q 1\n  \
    latency at 10k msg/s:   tern bench pub -c 4 --subscribers 1 -q 1 -I 10000 -d 10\n  \
    for a tern bench sub:   tern bench pub -c 10 -t 'tern/bench/%i' -q 1 -L 100000"
)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Topic pattern of each publisher: %i its index, %c its client id.
    #[arg(
        short = 't',
        long,
        default_value = "tern/bench/%i",
        value_name = "TOPIC"
    )]
    topic: String,
    /// QoS of the messages (and of the subscriptions of --subscribers).
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos, value_name = "QOS")]
    qos: QoS,
    /// Payload bytes (at least 20: publisher id, sequence, send time).
    #[arg(short = 's', long, default_value_t = 64, value_name = "BYTES")]
    size: usize,
    /// Messages per publisher (without it, and without -d, until Ctrl-C).
    #[arg(short = 'L', long, value_name = "N")]
    limit: Option<u64>,
    /// Total messages per second over all publishers (0: as fast as the window allows).
    #[arg(short = 'I', long, default_value_t = 0.0, value_name = "MSG/S")]
    rate: f64,
    /// Unacknowledged QoS 1/2 messages per publisher (also capped by the broker's Receive
    /// Maximum).
    #[arg(long, default_value_t = 64, value_name = "N")]
    inflight: usize,
    /// Also run N subscribers in this process: exact loss, duplicates, end-to-end latency.
    #[arg(long, default_value_t = 0, value_name = "N")]
    subscribers: usize,
    /// Topic filter pattern of the subscribers (%i: subscriber index, %c: its client id;
    /// default: -t with its varying levels as +).
    #[arg(long, value_name = "FILTER")]
    sub_topic: Option<String>,
    /// Seconds to wait for missing acknowledgements and deliveries once publishing ends.
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    drain: f64,
}

/// Checks the publishing flags.
fn check(args: &PubArgs) -> Result<(), Usage> {
    if args.size < STAMP_LEN {
        return Err(Usage(format!(
            "-s/--size must be at least {STAMP_LEN} bytes (publisher id, sequence, send time), not {}",
            args.size
        )));
    }
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return Err(Usage(format!(
            "-I/--rate must be 0 or a positive number, not {}",
            args.rate
        )));
    }
    if args.inflight == 0 || args.inflight > usize::from(u16::MAX) {
        return Err(Usage("--inflight must be between 1 and 65535".into()));
    }
    if !(args.drain.is_finite() && args.drain >= 0.0) {
        return Err(Usage(
            "--drain must be 0 or a positive number of seconds".into(),
        ));
    }
    if args.limit == Some(0) {
        return Err(Usage("-L/--limit must be at least 1".into()));
    }
    Ok(())
}

impl PubArgs {
    /// `-T`: runtime threads (0: one per CPU).
    pub(crate) fn threads(&self) -> usize {
        self.common.threads
    }
}

/// Runs `tern bench pub`.
pub(crate) async fn run(args: PubArgs) -> Result<(), Failure> {
    check(&args)?;
    let (dialer, options) = args.common.resolve(1).await?;
    let dialer = Arc::new(dialer);
    let keep_alive = dialer.session.keep_alive;
    let publishers = options.count;
    // The topics and filters first, so that a bad pattern is a usage error before any
    // connection.
    let pub_ids: Vec<String> = (0..publishers)
        .map(|i| format!("{}p{i}", options.prefix))
        .collect();
    let topics = pub_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let topic = expand(&args.topic, i, id);
            TopicName::try_from(topic.as_str())
                .map_err(|e| Usage(format!("-t {:?} gives topic {topic:?}: {e}", args.topic)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sub_pattern = args
        .sub_topic
        .clone()
        .unwrap_or_else(|| wildcard(&args.topic));
    let sub_ids: Vec<String> = (0..args.subscribers)
        .map(|j| format!("{}s{j}", options.prefix))
        .collect();
    let filters = sub_ids
        .iter()
        .enumerate()
        .map(|(j, id)| {
            let filter = expand(&sub_pattern, j, id);
            TopicFilter::try_from(filter.as_str()).map_err(|e| {
                Usage(format!(
                    "--sub-topic {sub_pattern:?} gives filter {filter:?}: {e}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let matches: Vec<u64> = topics
        .iter()
        .map(|t| filters.iter().filter(|f| f.matches(t)).count() as u64)
        .collect();

    let stats = Arc::new(Stats::default());
    let stop = Stop::on_ctrl_c();
    let sub_stop = Stop::new();

    // Subscribers, connected and subscribed.
    let subs = launch_subscribers(
        &options.with_count(args.subscribers),
        &stop,
        &dialer,
        &stats,
        (&sub_ids, &filters),
        args.qos,
    )
    .await?;
    let sub_plan = subscriber::Plan {
        limit: None,
        keep_alive,
    };
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|link| {
            tokio::spawn(subscriber::run(
                link,
                sub_plan,
                stats.clone(),
                sub_stop.clone(),
            ))
        })
        .collect();

    // Publishers, connected.
    let links = launch(&options, &stop, |i| {
        let (dialer, stats, id) = (dialer.clone(), stats.clone(), pub_ids[i].clone());
        async move {
            let link = dialer.connect(&id).await?;
            stats.connected.add(1);
            anyhow::Ok(link)
        }
    })
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<Link>>>()
    .map_err(|e| Failure::Run(e.context("a publisher could not connect")))?;

    eprintln!(
        "tern bench pub: {} publisher(s) and {} subscriber(s) ready, publishing",
        links.len(),
        args.subscribers
    );
    let ticker = options.progress.then(|| {
        progress::spawn(
            stats.clone(),
            Shows::Publishing {
                subscribers: args.subscribers > 0,
            },
        )
    });
    let base = random_u32();
    let start = Instant::now();
    let start_ns = now_ns();
    let deadline = options.duration.map(|d| start + d);
    let drain = Duration::from_secs_f64(args.drain);
    let pub_tasks: Vec<_> = links
        .into_iter()
        .enumerate()
        .map(|(i, link)| {
            let plan = publisher::Plan {
                publisher: base.wrapping_add(i as u32),
                topic: topics[i].clone(),
                qos: args.qos,
                size: args.size,
                limit: args.limit,
                deadline,
                rate: args.rate / publishers as f64,
                inflight: args.inflight,
                drain,
                start,
                keep_alive,
            };
            tokio::spawn(publisher::run(link, plan, stats.clone(), stop.clone()))
        })
        .collect();

    let mut sent_by = vec![0u64; publishers];
    let (mut sent, mut acked, mut stopped) = (0, 0, start);
    for (i, task) in pub_tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(outcome)) => {
                sent_by[i] = outcome.sent;
                sent += outcome.sent;
                acked += outcome.acked;
                stopped = stopped.max(outcome.stopped);
            }
            Ok(Err(e)) => stats.error(|| format!("publisher {i}: {e:#}")),
            Err(e) => stats.error(|| format!("publisher {i}: {e}")),
        }
    }
    // Publisher i's messages are expected once per matching subscriber.
    let expected: u64 = sent_by.iter().zip(&matches).map(|(s, m)| s * m).sum();
    if args.subscribers > 0 {
        wait_for_deliveries(&stats, expected, drain).await;
    }
    sub_stop.set();
    let mut received = 0;
    let (mut dups, mut last_ns, mut closed) = (0, None, 0);
    for task in sub_tasks {
        match task.await {
            Ok(Ok(outcome)) => {
                received += (0..publishers)
                    .map(|i| outcome.tracker.unique_from(base.wrapping_add(i as u32)))
                    .sum::<u64>();
                dups += outcome.tracker.tally().dups;
                last_ns = last_ns.max(outcome.last_ns);
                closed += u64::from(outcome.closed);
            }
            Ok(Err(e)) => stats.error(|| format!("subscriber: {e:#}")),
            Err(e) => stats.error(|| format!("subscriber: {e}")),
        }
    }
    if let Some(ticker) = ticker {
        progress::finish(ticker);
    }

    let mut report = Report::new(format!(
        "tern bench pub: {publishers} publisher(s){}, QoS {}, {} B, MQTT {}",
        if args.subscribers > 0 {
            format!(" -> {} subscriber(s)", args.subscribers)
        } else {
            String::new()
        },
        u8::from(args.qos),
        args.size,
        version_name(dialer.session.version),
    ));
    report.text("job", "pub");
    report.text("mqtt_version", version_name(dialer.session.version));
    report.int("qos", u64::from(u8::from(args.qos)));
    report.int("size", args.size as u64);
    report.int("publishers", publishers as u64);
    report.int("subscribers", args.subscribers as u64);
    report.int("sent", sent);
    report.int("acked", acked);
    let secs = stopped.duration_since(start).as_secs_f64();
    report.secs("secs", secs);
    report.float("pub_msgs_per_s", sent as f64 / secs.max(1e-9));
    report.latency("ack", &stats.ack_latency.total());
    if args.subscribers > 0 {
        report.int("expected", expected);
        report.int("received", received);
        report.int("lost", expected.saturating_sub(received));
        report.int("dups", dups);
        report.int("subs_closed_by_broker", closed);
        let recv_secs = last_ns.map_or(0.0, |last| last.saturating_sub(start_ns) as f64 / 1e9);
        report.secs("recv_secs", recv_secs);
        report.float("recv_msgs_per_s", received as f64 / recv_secs.max(1e-9));
        report.latency("lat", &stats.e2e_latency.total());
    }
    report.int("errors", stats.errors.get());
    if let Some(error) = stats.first_error() {
        report.text("first_error", &error);
    }
    report.print(options.json);
    Ok(())
}

/// Waits until `expected` deliveries arrived, or none arrived for `drain`.
async fn wait_for_deliveries(stats: &Stats, expected: u64, drain: Duration) {
    let mut last = stats.received.get();
    let mut changed = Instant::now();
    while last < expected && changed.elapsed() < drain {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = stats.received.get();
        if now != last {
            (last, changed) = (now, Instant::now());
        }
    }
}
