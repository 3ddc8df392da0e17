//! `tern bench`: a load generator in the manner of emqtt-bench and `mqttx bench`.
//!
//! - `tern bench conn`: many clients connect and stay idle (connect rate, handshake latency).
//! - `tern bench pub`: publishers, with publish-to-acknowledgement latency; with
//!   `--subscribers N` subscribers in the same process too (exact loss and duplicates,
//!   end-to-end latency without clock sync: fan-in, fan-out and pairs in one command).
//! - `tern bench sub`: subscribers, with receive rate, end-to-end latency, and per-publisher
//!   loss and duplicates of what `tern bench pub` sends.
//!
//! It speaks MQTT through tern-codec directly rather than through tern-client: one task per
//! connection owns its socket, packets are encoded into and cut from reused buffers, and
//! nothing is allocated per message. A progress line shows on stderr once a second; the
//! summary (or `--json`) comes at the end. Usage errors exit with status 2, a run that
//! could not connect its clients with 1.
//!
//! # Layout
//!
//! - `options`: the flags every job shares, their checks, `-V`/`-q` parsers.
//! - `link`: one connection: TCP or TLS, CONNECT/CONNACK, SUBSCRIBE/SUBACK, its halves.
//! - `launch`: connecting `-c` clients at `-i` intervals; the `Stop` signal.
//! - `pattern`: `%i` and `%c` in topic patterns; the filter matching a pattern.
//! - `payload`: the stamp at the start of each payload (publisher, sequence, send time)
//!   and the clock.
//! - `publisher`, `subscriber`: the loop of one publishing or subscribing connection.
//! - `tracker`: per-publisher sequence accounting (loss, duplicates).
//! - `stats`: counters and latency histograms the tasks share.
//! - `progress`: the once-a-second line; `report`: the summary and `--json`.
//! - `conn_job`, `pub_job`, `sub_job`: the three jobs.

mod conn_job;
mod launch;
mod link;
mod options;
mod pattern;
mod payload;
mod progress;
mod pub_job;
mod publisher;
mod report;
mod stats;
mod sub_job;
mod subscriber;
mod tracker;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tern_codec::ProtocolVersion;

/// Options of `tern bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    job: Job,
}

#[derive(Debug, Subcommand)]
enum Job {
    /// Connect many clients and hold them idle: connect rate, handshake latency.
    Conn(conn_job::ConnArgs),
    /// Publish: rate, publish-to-ack latency; --subscribers N adds receivers in-process.
    Pub(pub_job::PubArgs),
    /// Subscribe: receive rate, end-to-end latency, loss and duplicates per publisher.
    Sub(sub_job::SubArgs),
}

/// Why a job ended without its results.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A command-line mistake (exit status 2).
    Usage(String),
    /// The run itself failed (exit status 1).
    Run(anyhow::Error),
}

impl From<options::Usage> for Failure {
    fn from(usage: options::Usage) -> Self {
        Failure::Usage(usage.0)
    }
}

/// The version as `-V` writes it in reports.
pub(crate) fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5",
    }
}

/// Runs a `tern bench` job on a runtime of `-T` threads.
pub(crate) fn run(args: BenchArgs) -> ExitCode {
    let (name, threads) = match &args.job {
        Job::Conn(a) => ("conn", a.threads()),
        Job::Pub(a) => ("pub", a.threads()),
        Job::Sub(a) => ("sub", a.threads()),
    };
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tern bench {name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.job {
            Job::Conn(a) => conn_job::run(a).await,
            Job::Pub(a) => pub_job::run(a).await,
            Job::Sub(a) => sub_job::run(a).await,
        }
    });
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("tern bench {name}: error: {message}\n(see tern bench {name} --help)");
            ExitCode::from(2)
        }
        Err(Failure::Run(error)) => {
            eprintln!("tern bench {name}: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
