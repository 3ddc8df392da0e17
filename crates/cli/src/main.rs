//! `tern`: the Tern MQTT broker and the tools that talk to it.
//!
//! # Layout
//!
//! - `broker`: `tern broker`, the MQTT broker.
//! - `bench`: `tern bench conn | pub | sub`, the load generator.
//! - `pub_cmd`: `tern pub`, publish like mosquitto_pub.
//! - `sub_cmd`: `tern sub`, subscribe and print like mosquitto_sub.
//! - `mqtt_args`: the connection flags both share, and how they report errors and exit.
//! - `mqtt_props`: `-D command property value`, MQTT 5.0 properties from the command line.
//! - `format`: how `tern sub` prints a message (`-v`, `-F` format strings).
//! - `json`: JSON output (`-F %j`, `%J`, `--json`, `--pretty`).
//! - `help`: the `--help` texts of `tern pub` and `tern sub`, in mosquitto's layout.
//! - `shell`: `tern shell`, an interactive MQTT session (and scripts on stdin).
//! - `passwd`: `tern passwd`, the broker's password file, as mosquitto_passwd manages
//!   mosquitto's.

mod bench;
mod broker;
mod format;
mod help;
mod json;
mod mqtt_args;
mod mqtt_props;
mod passwd;
mod pub_cmd;
mod shell;
mod sub_cmd;
mod url_userinfo;

use std::process::ExitCode;

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
    /// Publish a message, as mosquitto_pub does (-h is the host; see tern pub --help).
    Pub(pub_cmd::PubArgs),
    /// Subscribe and print messages, as mosquitto_sub does (see tern sub --help).
    Sub(sub_cmd::SubArgs),
    /// Load generator: conn, pub and sub jobs with rates, latency percentiles, --json.
    Bench(bench::BenchArgs),
    /// Interactive MQTT session: connect, publish, subscribe, ... (also runs scripts on stdin).
    Shell(shell::ShellArgs),
    /// Manage the broker's password file, as mosquitto_passwd does (see tern passwd --help).
    Passwd(passwd::PasswdArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let result = match cli.command {
        Command::Broker(args) => broker::run(args),
        Command::Pub(args) => return pub_cmd::run(args),
        Command::Sub(args) => return sub_cmd::run(args),
        Command::Shell(args) => return shell::run(args),
        Command::Passwd(args) => return passwd::run(args),
        Command::Bench(args) => return bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tern: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a command-line error (or the help or version asked for). `tern pub`, `tern sub`
/// and `tern passwd` exit 1 on usage errors, as mosquitto_pub, mosquitto_sub and
/// mosquitto_passwd do; the rest keep clap's 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if !error.use_stderr() {
        return ExitCode::SUCCESS;
    }
    let subcommand = std::env::args().nth(1);
    match subcommand.as_deref() {
        Some("pub" | "sub" | "passwd") => ExitCode::FAILURE,
        _ => ExitCode::from(2),
    }
}
