//! Where the shell writes, and how a received message looks.
//!
//! Rules:
//! - Command results go to stdout, errors to stderr (`Error: ...`; in a script with the
//!   line number).
//! - A received message is one line, `topic payload`, as `mosquitto_sub -v` prints it. At a
//!   terminal it goes through rustyline's external printer, which prints it above the prompt
//!   and redraws the line being typed; control characters in topic and payload are shown
//!   escaped (`\n`, `\x1b`), so a message cannot move the cursor or change the terminal. In a
//!   script the payload is written as received, byte for byte.
//! - Write errors (a closed pipe) are ignored: the shell goes on reading commands.

use std::io::Write;

use rustyline::ExternalPrinter;
use tern_client::Message;

/// The shell's output, for a terminal or a script.
pub(crate) enum Output {
    /// Interactive: messages and notices above the prompt.
    Terminal {
        /// rustyline's printer, usable while a line is being edited.
        printer: Box<dyn ExternalPrinter + Send>,
    },
    /// A script on stdin: plain lines.
    Script {
        /// The input line being run, for error messages.
        line: u64,
    },
}

impl Output {
    /// Sets the input line number reported with errors (scripts only).
    pub(crate) fn set_line(&mut self, number: u64) {
        if let Output::Script { line } = self {
            *line = number;
        }
    }

    /// Prints a command's result.
    pub(crate) fn info(&mut self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    }

    /// Prints a command's error.
    pub(crate) fn error(&mut self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = match self {
            Output::Terminal { .. } => writeln!(stderr, "Error: {text}"),
            Output::Script { line } => writeln!(stderr, "Error: line {line}: {text}"),
        };
    }

    /// Prints something that happened between commands (a lost connection).
    pub(crate) fn notice(&mut self, text: &str) {
        match self {
            Output::Terminal { printer } => {
                let _ = printer.print(format!("{text}\n"));
            }
            Output::Script { .. } => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    /// Prints a received message.
    pub(crate) fn message(&mut self, message: &Message) {
        match self {
            Output::Terminal { printer } => {
                let line = format!(
                    "{} {}\n",
                    escape(message.topic.as_str()),
                    escape(&String::from_utf8_lossy(&message.payload))
                );
                let _ = printer.print(line);
            }
            Output::Script { .. } => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout
                    .write_all(message.topic.as_bytes())
                    .and_then(|()| stdout.write_all(b" "))
                    .and_then(|()| stdout.write_all(&message.payload))
                    .and_then(|()| stdout.write_all(b"\n"))
                    .and_then(|()| stdout.flush());
            }
        }
    }
}

/// Control characters as escapes: `\n`, `\r`, `\t`, `\x1b`, `\u{85}`.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("21.5 °C"), "21.5 °C");
        assert_eq!(escape("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(escape("\u{1b}[2J\u{7f}"), "\\x1b[2J\\x7f");
        assert_eq!(escape("\u{85}"), "\\u{85}");
    }
}
