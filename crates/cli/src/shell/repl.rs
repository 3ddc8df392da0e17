//! The shell's loop: read a line, run its command, and print messages while waiting for
//! the next line.
//!
//! Rules:
//! - A failed command prints its error and the shell goes on; in a script it makes the exit
//!   status 1, and with `--exit-on-error` it ends the script.
//! - `exit`, Ctrl-D or the end of the script sends DISCONNECT (when connected) and leaves.
//! - At a terminal, Ctrl-C while typing drops the line; Ctrl-C while a command runs (a
//!   `wait`, a publish waiting for its acknowledgement) stops that command. In a script,
//!   SIGINT or SIGTERM disconnects and exits with 130 or 143.

use std::path::PathBuf;

use super::complete::SharedKnown;
use super::input::{Input, Read};
use super::output::Output;
use super::parse::{parse_line, Command, ConnectArgs};
use super::session::{Flow, Session};
use super::target::Target;

/// How the shell runs, from its command line.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The connection options given on the command line.
    pub(crate) connect: ConnectArgs,
    /// Whether to connect before the first command.
    pub(crate) connect_at_start: bool,
    /// Whether stdin and stdout are a terminal.
    pub(crate) terminal: bool,
    /// The history file, if any.
    pub(crate) history: Option<PathBuf>,
    /// Stop a script at its first failed command.
    pub(crate) exit_on_error: bool,
}

/// What ended the wait for a line.
enum Step {
    Read(Read),
    /// A signal in a script: exit with this status.
    Signal(u8),
}

/// Runs the shell; returns the exit status.
pub(crate) async fn run(settings: Settings) -> u8 {
    let known = SharedKnown::default();
    let (mut input, mut out) = if settings.terminal {
        match Input::terminal(known.clone(), settings.history.clone()) {
            Ok((input, printer)) => (input, Output::Terminal { printer }),
            Err(e) => {
                eprintln!("Warning: {e}; reading commands as a script.");
                (Input::script(), Output::Script { line: 0 })
            }
        }
    } else {
        (Input::script(), Output::Script { line: 0 })
    };
    let scripted = matches!(out, Output::Script { .. });
    let target = match Target::default().apply(&settings.connect) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("Error: {e}\n\nUse 'tern shell --help' to see usage.");
            return 1;
        }
    };
    let mut session = Session::new(target, known);
    let mut signals = Signals::new(scripted);
    let stop_on_error = scripted && settings.exit_on_error;
    let mut failed = false;
    if !scripted {
        out.info("tern shell: type 'help' for the commands, Tab to complete, Ctrl-D to leave.");
    }
    if settings.connect_at_start {
        let connect = Command::Connect(ConnectArgs::default());
        if let Err(e) = session.execute(connect, &mut out).await {
            out.error(&e);
            failed = true;
        }
    }
    let mut status = None;
    while !(failed && stop_on_error) {
        let prompt = session.prompt();
        let step = loop {
            tokio::select! {
                event = session.next_event() => session.handle_event(event, &mut out),
                read = input.next(&prompt) => break Step::Read(read),
                code = signals.recv() => break Step::Signal(code),
            }
        };
        let line = match step {
            Step::Read(Read::Line(line)) => line,
            Step::Read(Read::Interrupted) => continue,
            Step::Read(Read::Eof) => break,
            Step::Read(Read::Error(e)) => {
                out.error(&e);
                failed = true;
                break;
            }
            Step::Signal(code) => {
                status = Some(code);
                break;
            }
        };
        out.set_line(input.line_number());
        let command = match parse_line(&line) {
            Ok(Some(command)) => command,
            Ok(None) => continue,
            Err(e) => {
                out.error(&e);
                failed = true;
                continue;
            }
        };
        let result = tokio::select! {
            result = session.execute(command, &mut out) => result,
            code = signals.recv() => {
                status = Some(code);
                break;
            }
            () = interrupt(scripted) => Err("interrupted".to_owned()),
        };
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => break,
            Err(e) => {
                out.error(&e);
                failed = true;
            }
        }
    }
    session.close(&mut out).await;
    match status {
        Some(code) => code,
        None if failed && scripted => 1,
        None => 0,
    }
}

/// Ctrl-C at a terminal (while a command runs); never in a script, where [`Signals`]
/// takes SIGINT.
async fn interrupt(scripted: bool) {
    if scripted || tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// SIGINT and SIGTERM, listened for in scripts only. At a terminal only SIGINT's handler is
/// installed, at once, so that a Ctrl-C between two commands cannot kill the shell (and
/// leave the terminal in raw mode); [`interrupt`] listens while a command runs.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new(listen: bool) -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if !listen {
                // tokio never unregisters a handler it installed: from here on SIGINT no
                // longer has its default action (ending the process), also in the moment
                // between a command's start and `interrupt` listening.
                drop(signal(SignalKind::interrupt()));
            }
            let streams = listen
                .then(|| {
                    Some((
                        signal(SignalKind::interrupt()).ok()?,
                        signal(SignalKind::terminate()).ok()?,
                    ))
                })
                .flatten();
            Signals { streams }
        }
        #[cfg(not(unix))]
        {
            let _ = listen;
            Signals {}
        }
    }

    /// The exit status for the next signal: 130 (SIGINT) or 143 (SIGTERM).
    async fn recv(&mut self) -> u8 {
        #[cfg(unix)]
        if let Some((interrupt, terminate)) = &mut self.streams {
            tokio::select! {
                _ = interrupt.recv() => return 130,
                _ = terminate.recv() => return 143,
            }
        }
        std::future::pending().await
    }
}
