//! Where command lines come from: rustyline at a terminal, or stdin read line by line.
//!
//! rustyline blocks while a line is edited, so it runs on its own thread. The session asks
//! for a line by sending the prompt and awaits the answer; between the two it prints the
//! messages that arrive through rustyline's external printer, which redraws the line being
//! typed below them. The thread starts reading only when asked, so command output is never
//! mixed into a line being edited.
//!
//! History: every line read at the terminal is added and appended to the history file at
//! once (nothing is lost if the shell is killed), except lines that carry a password
//! (`--password`, `-P`, or a URL with `user:password@`).

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Editor, ExternalPrinter};
use tokio::sync::mpsc;

use super::complete::{SharedKnown, ShellHelper};
use super::parse::split_words;

/// Lines kept in the history.
const HISTORY_SIZE: usize = 1000;

/// What reading a line gave.
#[derive(Debug)]
pub(crate) enum Read {
    /// A line, without its end.
    Line(String),
    /// Ctrl-C while editing: the line is dropped.
    Interrupted,
    /// End of input (Ctrl-D, or the end of the script).
    Eof,
    /// Input failed.
    Error(String),
}

/// The source of command lines.
pub(crate) enum Input {
    /// rustyline on a thread.
    Terminal(Terminal),
    /// stdin, one command per line.
    Script {
        /// stdin's lines, from a thread that reads them.
        lines: mpsc::Receiver<Read>,
        /// Lines read so far.
        number: u64,
    },
}

/// The terminal side: prompts go to the editor thread, lines come back.
pub(crate) struct Terminal {
    prompts: std_mpsc::Sender<String>,
    lines: mpsc::Receiver<Read>,
    /// A prompt was sent and its line not yet received.
    asked: bool,
}

impl Input {
    /// Reads stdin as a script, on a thread of its own (a blocking read there never holds
    /// up the exit).
    pub(crate) fn script() -> Input {
        let (tx, rx) = mpsc::channel(16);
        let report = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("tern-shell-stdin".into())
            .spawn(move || read_stdin(&tx));
        if let Err(e) = spawned {
            let _ = report.try_send(Read::Error(format!("cannot read stdin: {e}")));
        }
        Input::Script {
            lines: rx,
            number: 0,
        }
    }

    /// Starts the line editor with completion from `known` and the history file (if any);
    /// returns its external printer too.
    pub(crate) fn terminal(
        known: SharedKnown,
        history: Option<PathBuf>,
    ) -> Result<(Input, Box<dyn ExternalPrinter + Send>), String> {
        let (prompts_tx, prompts_rx) = std_mpsc::channel::<String>();
        let (lines_tx, lines_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("tern-shell-editor".into())
            .spawn(move || {
                let mut editor = match editor(known, history.as_deref()) {
                    Ok(editor) => editor,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                match editor.create_external_printer() {
                    Ok(printer) => {
                        let printer: Box<dyn ExternalPrinter + Send> = Box::new(printer);
                        let _ = ready_tx.send(Ok(printer));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot use the terminal: {e}")));
                        return;
                    }
                }
                while let Ok(prompt) = prompts_rx.recv() {
                    let read = match editor.readline(&prompt) {
                        Ok(line) => {
                            remember(&mut editor, &line, history.as_deref());
                            Read::Line(line)
                        }
                        Err(ReadlineError::Interrupted) => Read::Interrupted,
                        Err(ReadlineError::Eof) => Read::Eof,
                        Err(e) => Read::Error(format!("cannot read the terminal: {e}")),
                    };
                    let last = matches!(read, Read::Eof | Read::Error(_));
                    if lines_tx.blocking_send(read).is_err() || last {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start the line editor: {e}"))?;
        let printer = ready_rx
            .recv()
            .map_err(|_| "the line editor stopped".to_owned())??;
        let terminal = Terminal {
            prompts: prompts_tx,
            lines: lines_rx,
            asked: false,
        };
        Ok((Input::Terminal(terminal), printer))
    }

    /// The next line; shows `prompt` at a terminal. Cancel-safe: dropped before a line
    /// came, the next call waits for the same line.
    pub(crate) async fn next(&mut self, prompt: &str) -> Read {
        match self {
            Input::Terminal(terminal) => {
                if !terminal.asked {
                    if terminal.prompts.send(prompt.to_owned()).is_err() {
                        return Read::Eof;
                    }
                    terminal.asked = true;
                }
                let read = terminal.lines.recv().await.unwrap_or(Read::Eof);
                terminal.asked = false;
                read
            }
            Input::Script { lines, number } => {
                let read = lines.recv().await.unwrap_or(Read::Eof);
                if let Read::Line(_) = read {
                    *number += 1;
                }
                read
            }
        }
    }

    /// The number of the last line read (scripts; 0 at a terminal).
    pub(crate) fn line_number(&self) -> u64 {
        match self {
            Input::Terminal(_) => 0,
            Input::Script { number, .. } => *number,
        }
    }
}

/// Sends stdin's lines (without `\n` or `\r\n`) to `tx` until its end.
fn read_stdin(tx: &mpsc::Sender<Read>) {
    use std::io::BufRead;
    let mut stdin = std::io::stdin().lock();
    let mut number = 0u64;
    loop {
        let mut line = Vec::new();
        let read = match stdin.read_until(b'\n', &mut line) {
            Ok(0) => Read::Eof,
            Ok(_) => {
                number += 1;
                if line.ends_with(b"\n") {
                    line.pop();
                    if line.ends_with(b"\r") {
                        line.pop();
                    }
                }
                match String::from_utf8(line) {
                    Ok(line) => Read::Line(line),
                    Err(_) => Read::Error(format!("line {number} is not UTF-8 text")),
                }
            }
            Err(e) => Read::Error(format!("cannot read stdin: {e}")),
        };
        let last = matches!(read, Read::Eof | Read::Error(_));
        if tx.blocking_send(read).is_err() || last {
            return;
        }
    }
}

fn editor(
    known: SharedKnown,
    history: Option<&Path>,
) -> Result<Editor<ShellHelper, FileHistory>, String> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)
        .and_then(|c| c.history_ignore_dups(true))
        .map_err(|e| format!("cannot configure the line editor: {e}"))?
        .history_ignore_space(true)
        .auto_add_history(false)
        .build();
    let mut editor =
        Editor::with_config(config).map_err(|e| format!("cannot start the line editor: {e}"))?;
    editor.set_helper(Some(ShellHelper { known }));
    if let Some(path) = history {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "Warning: cannot read the history file {}: {e}; use --history FILE or \
                 --no-history",
                path.display()
            ),
        }
    }
    Ok(editor)
}

/// Adds `line` to the history (and its file), unless it is empty or holds a password.
fn remember(editor: &mut Editor<ShellHelper, FileHistory>, line: &str, file: Option<&Path>) {
    if line.trim().is_empty() || has_password(line) {
        return;
    }
    if let Ok(true) = editor.add_history_entry(line) {
        if let Some(path) = file {
            if let Err(e) = editor.append_history(path) {
                eprintln!(
                    "Warning: cannot write the history file {}: {e}",
                    path.display()
                );
            }
        }
    }
}

/// Whether a line carries a password: `-P`, `--password`, or `user:password@` in a URL.
pub(crate) fn has_password(line: &str) -> bool {
    let words = split_words(line).unwrap_or_else(|_| vec![line.to_owned()]);
    words.iter().any(|w| {
        w == "-P"
            || w.starts_with("--password")
            || w.split_once("://")
                .and_then(|(_, rest)| rest.split('/').next())
                .and_then(|authority| authority.rsplit_once('@'))
                .is_some_and(|(info, _)| info.contains(':'))
    })
}

/// The default history file: `$XDG_DATA_HOME/tern/shell_history`, else
/// `~/.local/share/tern/shell_history`; `None` without a home directory.
pub(crate) fn default_history_file() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(data.join("tern").join("shell_history"))
}

#[cfg(test)]
mod tests {
    use super::has_password;

    #[test]
    fn lines_with_passwords_stay_out_of_the_history() {
        assert!(has_password("connect -u a -P secret"));
        assert!(has_password("connect --password=secret -u a"));
        assert!(has_password("connect mqtt://alice:secret@host"));
        assert!(!has_password("connect mqtt://alice@host:1883"));
        assert!(!has_password("publish -t a/b 'x:y@z'"));
    }
}
