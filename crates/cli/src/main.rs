//! `tern`: the Tern MQTT broker and the tools that talk to it.
//!
//! # Layout
//!
//! - `broker`: `tern broker`, the MQTT broker.

mod broker;

use clap::{Parser, Subcommand};

/// Tern: an MQTT 3.1 / 3.1.1 / 5.0 broker and tools.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MQTT broker (default: 0.0.0.0:1883).
    Broker(broker::BrokerArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Broker(args) => broker::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tern: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
