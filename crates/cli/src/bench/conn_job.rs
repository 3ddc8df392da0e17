//! `tern bench conn`: `-c` clients connect (one every `-i` ms, `--concurrency` handshakes at
//! once), then stay connected and idle, sending PINGREQ at three quarters of the keep alive,
//! for `-d` seconds or until Ctrl-C; then DISCONNECT.
//!
//! Figures: clients connected and failed, connections the broker dropped while held,
//! `conns_per_s` (connected / first connect to last CONNACK), and handshake latency (TCP
//! connect, TLS, CONNECT to CONNACK) percentiles. Idle connections keep no read buffer.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use clap::Args;
use tern_codec::{decode, Disconnect, Packet, ReasonCode, MAX_PACKET_SIZE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, timeout, Instant};

use super::launch::{launch, Stop};
use super::link::Link;
use super::options::CommonArgs;
use super::progress::{self, Shows};
use super::report::Report;
use super::stats::Stats;
use super::{version_name, Failure};

/// Options of `tern bench conn`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = "Example:\n  tern bench conn -c 10000 -i 0 --concurrency 200 -d 30 -k 60"
)]
pub(crate) struct ConnArgs {
    #[command(flatten)]
    common: CommonArgs,
}

impl ConnArgs {
    /// `-T`: runtime threads (0: one per CPU).
    pub(crate) fn threads(&self) -> usize {
        self.common.threads
    }
}

/// Runs `tern bench conn`.
pub(crate) async fn run(args: ConnArgs) -> Result<(), Failure> {
    let (dialer, options) = args.common.resolve(1000).await?;
    // Connecting must not wait for the kernel to grow the descriptor table on the way
    // (it waits for an RCU grace period at each doubling in a multi-threaded process).
    let _ = tern_broker::descriptors::reserve(options.count);
    let dialer = Arc::new(dialer);
    let keep_alive = dialer.session.keep_alive;
    let stats = Arc::new(Stats::default());
    let mut stop = Stop::on_ctrl_c();
    let ticker = options
        .progress
        .then(|| progress::spawn(stats.clone(), Shows::Connections));
    let start = Instant::now();
    let outcomes = launch(&options, &stop, |i| {
        let (dialer, stats, stop) = (dialer.clone(), stats.clone(), stop.clone());
        let id = format!("{}c{i}", options.prefix);
        async move {
            let began = Instant::now();
            match dialer.connect(&id).await {
                Ok(link) => {
                    let done = Instant::now();
                    stats
                        .handshake
                        .record(&[done.duration_since(began).as_nanos() as u64]);
                    stats.connected.add(1);
                    tokio::spawn(idle(link, keep_alive, stats, stop));
                    Some(done)
                }
                Err(e) => {
                    stats.failed.add(1);
                    stats.error(|| format!("client {id}: {e:#}"));
                    None
                }
            }
        }
    })
    .await;
    let last = outcomes.iter().flatten().max().copied();
    let connect_secs = last.map_or(0.0, |l| l.duration_since(start).as_secs_f64());
    eprintln!(
        "tern bench conn: {} of {} client(s) connected, holding",
        stats.connected.get(),
        options.count
    );
    if let Some(hold) = options.duration {
        tokio::select! {
            _ = sleep(hold) => {}
            _ = stop.wait() => {}
        }
    } else {
        stop.wait().await;
    }
    let dropped = stats.dropped.get();
    stop.set();
    // Give the idle tasks a moment to send DISCONNECT.
    sleep(Duration::from_millis(200)).await;
    if let Some(ticker) = ticker {
        progress::finish(ticker);
    }

    let connected = stats.connected.get();
    let version = version_name(dialer.session.version);
    let mut report = Report::new(format!(
        "tern bench conn: {} client(s), MQTT {version}",
        options.count
    ));
    report.text("job", "conn");
    report.text("mqtt_version", version);
    report.int("clients", options.count as u64);
    report.int("connected", connected);
    report.int("failed", stats.failed.get());
    report.int("dropped", dropped);
    report.secs("connect_secs", connect_secs);
    report.float(
        "conns_per_s",
        if connect_secs > 0.0 {
            connected as f64 / connect_secs
        } else {
            0.0
        },
    );
    report.latency("hs", &stats.handshake.total());
    report.int("errors", stats.errors.get());
    if let Some(error) = stats.first_error() {
        report.text("first_error", &error);
    }
    report.print(options.json);
    if connected < options.count as u64 && !stop_was_ctrl_c(&outcomes, options.count) {
        return Err(Failure::Run(anyhow::anyhow!(
            "{} of {} clients could not connect",
            options.count as u64 - connected,
            options.count
        )));
    }
    Ok(())
}

/// Whether fewer clients were started than asked (Ctrl-C during the connects), so that
/// missing ones are not failures.
fn stop_was_ctrl_c(outcomes: &[Option<Instant>], count: usize) -> bool {
    outcomes.len() < count
}

/// Holds one connection: PINGREQ when due, counts a drop, DISCONNECT at the stop signal.
async fn idle(mut link: Link, keep_alive: u16, stats: Arc<Stats>, mut stop: Stop) {
    link.shrink();
    let version = link.version;
    let ping_every = Duration::from_millis(u64::from(keep_alive.max(1)) * 750);
    let ((mut rd, mut wr), read) = link.halves();
    let mut out = BytesMut::new();
    loop {
        tokio::select! {
            r = rd.read_buf(read) => {
                if !matches!(r, Ok(n) if n > 0) {
                    stats.dropped.add(1);
                    return;
                }
                loop {
                    match decode(read, version, MAX_PACKET_SIZE) {
                        Ok(Some(Packet::PingResp)) => {}
                        Ok(Some(other)) => {
                            stats.error(|| format!("unexpected {:?} to an idle client", other.packet_type()));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            stats.error(|| format!("idle client: {e}"));
                            return;
                        }
                    }
                }
                if read.is_empty() {
                    *read = BytesMut::new();
                }
            }
            _ = sleep(ping_every), if keep_alive > 0 => {
                out.clear();
                if Packet::PingReq.encode(version, &mut out).is_ok() && wr.write_all(&out).await.is_err() {
                    stats.dropped.add(1);
                    return;
                }
                let _ = wr.flush().await;
            }
            _ = stop.wait() => {
                out.clear();
                if Packet::Disconnect(Disconnect::new(ReasonCode::Success)).encode(version, &mut out).is_ok() {
                    let _ = timeout(Duration::from_secs(1), async {
                        wr.write_all(&out).await?;
                        wr.flush().await
                    })
                    .await;
                }
                return;
            }
        }
    }
}
