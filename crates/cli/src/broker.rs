//! `tern broker`: loads the configuration, applies command-line overrides, installs logging,
//! runs the broker until SIGINT or SIGTERM, then shuts it down gracefully.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tern_broker::{Broker, Config};
use tracing_subscriber::EnvFilter;

/// Options of `tern broker`.
#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// Read the configuration from this TOML file (keys: docs/configuration.md).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this port (overrides the first listener's port; 0: any free port).
    #[arg(short = 'p', long, value_name = "PORT")]
    port: Option<u16>,
    /// Listen on this address (overrides the first listener's address).
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// Log filter, such as info, debug or tern_broker=trace (overrides log.level; RUST_LOG
    /// overrides both).
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Keep the store (sessions, queued and retained messages) in this directory (overrides
    /// data_dir; default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep nothing on disk: everything is lost when the broker stops (persistence = false).
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    /// Report what the store holds (sessions, subscriptions, queued, in-flight and retained
    /// messages) and exit, without starting the broker or changing the store.
    #[arg(long)]
    check_store: bool,
}

/// Runs the broker until a shutdown signal.
pub(crate) fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(port) = args.port {
        config.listeners[0].port = port;
    }
    if let Some(bind) = args.bind {
        config.listeners[0].bind = bind;
    }
    if let Some(level) = args.log_level {
        config.log.level = level;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
        config.persistence = true;
    }
    if args.in_memory {
        config.persistence = false;
    }
    if args.check_store {
        let summary = tern_broker::store::Store::check(&config.data_dir)?;
        println!("{summary}");
        return Ok(());
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .with_context(|| format!("invalid log filter `{}`", config.log.level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Watch the signals before the broker logs that it is listening: a signal sent as
        // soon as that line appears must still shut it down gracefully.
        let mut signals = Signals::watch()?;
        let broker = Broker::start(config).await?;
        signals.recv().await?;
        tracing::info!("shutting down");
        broker.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// SIGINT (Ctrl-C) and SIGTERM, caught from [`Signals::watch`] on.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts catching the signals, so that they no longer end the process at once.
    fn watch() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for SIGINT or SIGTERM.
    async fn recv(&mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch Ctrl-C")?;
        Ok(())
    }
}
