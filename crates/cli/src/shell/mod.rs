//! `tern shell`: an interactive MQTT session, in the manner of mqtt-shell and HiveMQ's
//! `mqtt sh`: `connect`, `publish`, `subscribe`, `subscriptions`, `unsubscribe`,
//! `disconnect`, `wait`, `help`, `exit`.
//!
//! At a terminal (stdin and stdout both) it is a rustyline line editor with history,
//! completion and messages printed above the prompt; otherwise it runs stdin as a script:
//! one command per line, no prompt, exit status 1 if a command failed.
//!
//! Layout:
//! - `commands`: the table of commands and options that parsing, help and completion share.
//! - `parse`: a line to a [`parse::Command`] (shell-like quoting, errors naming what is
//!   missing).
//! - `target`: where to connect, from the command line and each `connect`.
//! - `session`: the connection, its subscriptions, and what each command does.
//! - `repl`: the loop: read a line, run it, print messages as they arrive.
//! - `input`: lines from rustyline (on its own thread) or from stdin; the history file.
//! - `complete`: Tab completion of commands, options and topics seen.
//! - `output`: where results, errors and messages are written, and how.
//! - `help`: `help`, `help COMMAND` and the `--help` text.

mod commands;
mod complete;
mod help;
mod input;
mod output;
mod parse;
mod repl;
mod session;
mod target;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tern_client::ProtocolVersion;

use parse::ConnectArgs;

/// Options of `tern shell`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = help::AFTER_HELP
)]
pub(crate) struct ShellArgs {
    // The URL's form in the help would read as doc links, so it is given as `help`.
    #[arg(
        value_name = "URL",
        help = "Broker to connect to at start: mqtt://[user[:password]@]host[:port] or \
                host[:port]. Given this or any connection option, the shell connects at once; \
                else type 'connect'."
    )]
    url: Option<String>,
    /// Broker host (default localhost).
    #[arg(short = 'h', long = "host", value_name = "HOST")]
    host: Option<String>,
    /// Broker port (default 1883).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// User name.
    #[arg(
        short = 'u',
        long = "user",
        visible_alias = "username",
        value_name = "USER"
    )]
    user: Option<String>,
    /// Password (needs a user name).
    #[arg(
        short = 'P',
        long = "password",
        visible_alias = "pw",
        value_name = "PASSWORD"
    )]
    password: Option<String>,
    /// Client identifier (default: tern- and 16 random hex digits).
    #[arg(short = 'i', long = "id", value_name = "ID")]
    id: Option<String>,
    /// MQTT version: 5 (default), 311 or 31 (also mqttv5, mqttv311, mqttv31).
    #[arg(short = 'V', long = "protocol-version", value_name = "VERSION",
          value_parser = parse::parse_version)]
    protocol_version: Option<ProtocolVersion>,
    /// Keep alive in seconds (default 60; 0 turns it off).
    #[arg(short = 'k', long = "keepalive", value_name = "SECONDS")]
    keepalive: Option<u16>,
    /// History file (default $XDG_DATA_HOME/tern/shell_history or
    /// ~/.local/share/tern/shell_history).
    #[arg(long = "history", value_name = "FILE", conflicts_with = "no_history")]
    history: Option<PathBuf>,
    /// Keep no history file.
    #[arg(long = "no-history")]
    no_history: bool,
    /// In a script, stop at the first failed command (as sh -e does).
    #[arg(short = 'e', long = "exit-on-error")]
    exit_on_error: bool,
    /// Print this help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl ShellArgs {
    /// The connection options given on the command line.
    fn connect_args(&self) -> ConnectArgs {
        ConnectArgs {
            url: self.url.clone(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            id: self.id.clone(),
            version: self.protocol_version,
            keepalive: self.keepalive,
        }
    }
}

/// Runs `tern shell`.
pub(crate) fn run(args: ShellArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let history = match (&args.history, args.no_history) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => input::default_history_file(),
    };
    let connect = args.connect_args();
    let settings = repl::Settings {
        connect_at_start: connect != ConnectArgs::default(),
        connect,
        terminal,
        history,
        exit_on_error: args.exit_on_error,
    };
    ExitCode::from(runtime.block_on(repl::run(settings)))
}
