//! `help` and `help COMMAND`, written from the command table, and the `--help` text of
//! `tern shell` itself.

use super::commands::{self, COMMANDS};

/// What `tern shell --help` adds after the options.
pub(crate) const AFTER_HELP: &str = "\
Commands (type 'help' in the shell, or 'help COMMAND' for its options):
  connect [URL] [options]     connect to a broker (-h -p -u -P -i -V -k as above)
  disconnect                  disconnect from the broker (sends DISCONNECT)
  publish --topic TOPIC [--qos N] [--retained] MESSAGE
  subscribe --topic FILTER [--qos N]
  subscriptions               list the subscriptions and their granted QoS
  unsubscribe --topic FILTER
  wait [--count N] [--timeout SECONDS]   wait for messages (for scripts)
  help [COMMAND]              list the commands, or describe one
  exit                        disconnect and leave (also Ctrl-D)

At a terminal: line editing, history (in --history FILE, by default
$XDG_DATA_HOME/tern/shell_history or ~/.local/share/tern/shell_history; lines with
a password are not kept), Tab completes commands, options and topics seen, and
messages are printed as 'topic payload' above the line being typed. Ctrl-C drops
the line being typed, or stops a command that waits.

When stdin or stdout is not a terminal (a script: 'tern shell < commands.txt'):
no prompt and no escape codes; one command per line, '#' starts a comment;
results and messages ('topic payload', payload as received) on stdout, errors on
stderr with the line number. A failed command does not stop the script (unless
--exit-on-error); the exit status is 1 if any command failed, else 0. The end of
the input disconnects, as 'exit' does; SIGINT or SIGTERM disconnects and exits
with 130 or 143. Use 'wait' to see messages that are still on their way.";

/// The text of `help` (no topic) or `help COMMAND`.
pub(crate) fn render(topic: Option<&str>) -> String {
    match topic.and_then(commands::find) {
        None => overview(),
        Some(spec) => {
            let mut text = format!("usage: {}\n  {}", spec.usage(), spec.summary);
            text.push_str(&format!("\n\n{}", wrap(spec.details, 78)));
            if let Some(operand) = &spec.operand {
                text.push_str(&format!("\n\n  {:<28}{}", operand.name, operand.help));
            }
            if !spec.options.is_empty() {
                text.push_str("\n\noptions:");
                for option in spec.options {
                    let required = if option.required { " (required)" } else { "" };
                    text.push_str(&format!(
                        "\n  {:<28}{}{required}",
                        option.display_both(),
                        option.help
                    ));
                }
            }
            if !spec.aliases.is_empty() {
                text.push_str(&format!("\n\nalso: {}", spec.aliases.join(", ")));
            }
            text
        }
    }
}

fn overview() -> String {
    let mut text = String::from("commands:");
    for spec in COMMANDS {
        text.push_str(&format!("\n  {:<16}{}", spec.name, spec.summary));
    }
    text.push_str(
        "\n\n'help COMMAND' or 'COMMAND --help' shows a command's options. Tab completes \
         commands, options and topics; Ctrl-D leaves.",
    );
    text
}

/// Breaks `text` into lines of at most `width` characters (words are not split).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command_and_option() {
        let overview = render(None);
        for spec in COMMANDS {
            assert!(overview.contains(spec.name), "{} missing", spec.name);
            assert!(
                AFTER_HELP.contains(spec.name),
                "{} missing in --help",
                spec.name
            );
            let text = render(Some(spec.name));
            assert!(text.starts_with(&format!("usage: {}", spec.name)), "{text}");
            for option in spec.options {
                assert!(text.contains(&format!("--{}", option.long)), "{text}");
                if let Some(short) = option.short {
                    assert!(text.contains(&format!("-{short}, --")), "{text}");
                }
            }
        }
        let publish = render(Some("pub"));
        assert!(publish.starts_with("usage: publish --topic TOPIC [options] MESSAGE"));
        assert!(publish.contains("(required)"));
        assert!(publish.contains("also: pub"));
    }

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(wrap("", 7), "");
    }
}
