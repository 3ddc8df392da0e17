//! The live progress line: once a second on stderr, the rates, latency percentiles and
//! errors of the last second. At a terminal it rewrites one line (`\r`); otherwise
//! (`--progress` into a file or pipe) it writes one line per second.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::stats::Stats;

/// What a job's line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shows {
    /// Connections and handshake latency (`conn`).
    Connections,
    /// Publish rate and acknowledgement latency, and with subscribers the receive side.
    Publishing {
        /// Whether subscribers run in the same process.
        subscribers: bool,
    },
    /// Receive rate and end-to-end latency (`sub`).
    Receiving,
}

/// Prints the line every second until the returned task is aborted.
pub(crate) fn spawn(stats: Arc<Stats>, shows: Shows) -> JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let start = Instant::now();
        let mut tick = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = (0, 0, 0, start);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let secs = now.duration_since(last.3).as_secs_f64().max(1e-3);
            let (sent, acked, received) =
                (stats.sent.get(), stats.acked.get(), stats.received.get());
            let rate = |now: u64, before: u64| (now - before) as f64 / secs;
            let mut line = format!("[{:>4.0}s] ", now.duration_since(start).as_secs_f64());
            match shows {
                Shows::Connections => {
                    line += &format!(
                        "connected {}  failed {}  dropped {}  handshake {}",
                        stats.connected.get(),
                        stats.failed.get(),
                        stats.dropped.get(),
                        percentiles(&stats.handshake.take_window()),
                    );
                }
                Shows::Publishing { subscribers } => {
                    line += &format!(
                        "pub {:>9.0} msg/s  ack {:>9.0}/s  ack latency {}",
                        rate(sent, last.0),
                        rate(acked, last.1),
                        percentiles(&stats.ack_latency.take_window()),
                    );
                    if subscribers {
                        line += &format!(
                            "  | recv {:>9.0} msg/s  latency {}",
                            rate(received, last.2),
                            percentiles(&stats.e2e_latency.take_window()),
                        );
                    }
                }
                Shows::Receiving => {
                    line += &format!(
                        "recv {:>9.0} msg/s  total {}  dups {}  latency {}",
                        rate(received, last.2),
                        received,
                        stats.dups.get(),
                        percentiles(&stats.e2e_latency.take_window()),
                    );
                }
            }
            line += &format!("  errors {}", stats.errors.get());
            last = (sent, acked, received, now);
            let mut err = std::io::stderr().lock();
            let _ = if terminal {
                write!(err, "\r\x1b[2K{line}")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
        }
    })
}

/// Ends the progress line (at a terminal the cursor is still on it).
pub(crate) fn finish(task: JoinHandle<()>) {
    task.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

/// `p50 312µs p99 1.2ms`, or `-` when nothing was measured.
fn percentiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "-".to_owned();
    }
    format!(
        "p50 {} p99 {}",
        duration(h.value_at_quantile(0.5)),
        duration(h.value_at_quantile(0.99))
    )
}

/// Nanoseconds as µs, ms or s with three significant digits.
fn duration(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.3}ms", us / 1000.0)
    } else {
        format!("{:.3}s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(312_400), "312µs");
        assert_eq!(duration(1_234_000), "1.234ms");
        assert_eq!(duration(2_500_000_000), "2.500s");
        assert_eq!(percentiles(&crate::bench::stats::histogram()), "-");
    }
}
