//! `tern bench sub`: `-c` subscribers, each on its own connection, receiving what any
//! publishers send (stamped messages from `tern bench pub` are timed and accounted per
//! publisher; others are counted as foreign).
//!
//! Rules:
//! - Subscriber j subscribes to `-t` expanded for j (`%i`, `%c`).
//! - The run lasts `-d` seconds from the moment every subscriber is subscribed, or until
//!   each subscriber received `-L` distinct messages, or until Ctrl-C.
//! - `lost` counts the gaps in each publisher's sequence (losses at the very end of a
//!   sequence cannot be seen from here); the rate is distinct messages over first to last
//!   receipt; latency uses the send time in the stamp (same machine, or synced clocks).

use std::sync::Arc;

use clap::Args;
use tern_codec::{QoS, TopicFilter};

use super::launch::{launch_subscribers, Stop};
use super::options::{parse_qos, CommonArgs, Usage};
use super::pattern::expand;
use super::progress::{self, Shows};
use super::report::Report;
use super::stats::Stats;
use super::tracker::Tally;
use super::{subscriber, version_name, Failure};

/// Options of `tern bench sub`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = "Examples:\n  \
    tern bench sub -c 10 -t 'tern/bench/#' -q 1           (then tern bench pub elsewhere)\n  \
    tern bench sub -c 100 -t 'bench/%i' -C false -x 3600 --prefix load-   (persistent)"
)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Topic filter pattern of each subscriber: %i its index, %c its client id.
    #[arg(
        short = 't',
        long,
        default_value = "tern/bench/#",
        value_name = "FILTER"
    )]
    topic: String,
    /// QoS of the subscriptions.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos, value_name = "QOS")]
    qos: QoS,
    /// Distinct messages per subscriber, after which it stops.
    #[arg(short = 'L', long, value_name = "N")]
    limit: Option<u64>,
}

impl SubArgs {
    /// `-T`: runtime threads (0: one per CPU).
    pub(crate) fn threads(&self) -> usize {
        self.common.threads
    }
}

/// Runs `tern bench sub`.
pub(crate) async fn run(args: SubArgs) -> Result<(), Failure> {
    if args.limit == Some(0) {
        return Err(Usage("-L/--limit must be at least 1".into()).into());
    }
    let (dialer, options) = args.common.resolve(1).await?;
    let dialer = Arc::new(dialer);
    let ids: Vec<String> = (0..options.count)
        .map(|j| format!("{}s{j}", options.prefix))
        .collect();
    let filters = ids
        .iter()
        .enumerate()
        .map(|(j, id)| {
            let filter = expand(&args.topic, j, id);
            TopicFilter::try_from(filter.as_str())
                .map_err(|e| Usage(format!("-t {:?} gives filter {filter:?}: {e}", args.topic)))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let stats = Arc::new(Stats::default());
    let mut stop = Stop::on_ctrl_c();
    let ticker = options
        .progress
        .then(|| progress::spawn(stats.clone(), Shows::Receiving));
    let links =
        launch_subscribers(&options, &stop, &dialer, &stats, (&ids, &filters), args.qos).await?;

    eprintln!("tern bench sub: {} subscriber(s) ready", links.len());
    let plan = subscriber::Plan {
        limit: args.limit,
        keep_alive: dialer.session.keep_alive,
    };
    let tasks: Vec<_> = links
        .into_iter()
        .map(|link| tokio::spawn(subscriber::run(link, plan, stats.clone(), stop.clone())))
        .collect();
    let mut all = tokio::spawn(async move {
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await);
        }
        outcomes
    });
    let timer = async {
        match options.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let outcomes = tokio::select! {
        outcomes = &mut all => outcomes,
        _ = timer => { stop.set(); (&mut all).await }
        _ = stop.wait() => (&mut all).await,
    }
    .map_err(|e| Failure::Run(e.into()))?;
    if let Some(ticker) = ticker {
        progress::finish(ticker);
    }

    let mut tally = Tally::default();
    let (mut foreign, mut first, mut last, mut closed, mut seen) = (0, None::<u64>, None, 0, 0);
    for outcome in outcomes {
        match outcome {
            Ok(Ok(o)) => {
                let t = o.tracker.tally();
                seen = seen.max(t.publishers);
                tally += t;
                foreign += o.foreign;
                first = match (first, o.first_ns) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                last = last.max(o.last_ns);
                closed += u64::from(o.closed);
            }
            Ok(Err(e)) => stats.error(|| format!("subscriber: {e:#}")),
            Err(e) => stats.error(|| format!("subscriber: {e}")),
        }
    }
    let received = tally.unique + foreign;
    let secs = match (first, last) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e9,
        _ => 0.0,
    };
    let version = version_name(dialer.session.version);
    let mut report = Report::new(format!(
        "tern bench sub: {} subscriber(s), QoS {}, MQTT {version}",
        options.count,
        u8::from(args.qos)
    ));
    report.text("job", "sub");
    report.text("mqtt_version", version);
    report.int("qos", u64::from(u8::from(args.qos)));
    report.int("subscribers", options.count as u64);
    report.int("received", received);
    report.int("dups", tally.dups);
    report.int("lost", tally.gaps);
    report.int("foreign", foreign);
    report.int("publishers_seen", seen);
    report.int("subs_closed_by_broker", closed);
    report.secs("secs", secs);
    report.float(
        "recv_msgs_per_s",
        if secs > 0.0 {
            received as f64 / secs
        } else {
            0.0
        },
    );
    report.latency("lat", &stats.e2e_latency.total());
    report.int("errors", stats.errors.get());
    if let Some(error) = stats.first_error() {
        report.text("first_error", &error);
    }
    report.print(options.json);
    Ok(())
}
