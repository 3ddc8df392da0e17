//! Tab completion: command names, their options, option values (QoS, MQTT version) and
//! topics seen in this shell.
//!
//! Rules:
//! - The first word completes to a command name; after `help`, too.
//! - A word starting with `-` (or an empty word where an option may follow) completes to
//!   the command's options not yet given, long form.
//! - After a topic option: `publish` and `subscribe` offer every topic seen (messages
//!   received, topics published to, filters subscribed to); `unsubscribe` offers the current
//!   subscriptions. After `--qos`: 0, 1, 2; after `--protocol-version`: 5, 311, 31.
//! - [`Known`] holds at most [`MAX_TOPICS`] topics, so a busy broker cannot make the shell
//!   grow without end; past that, new topics are not remembered.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::commands::{self, CommandSpec, COMMANDS};
use super::parse::split_words;

/// Most topics remembered for completion.
pub(crate) const MAX_TOPICS: usize = 10_000;

/// What the shell has seen, for completion.
#[derive(Debug, Default)]
pub(crate) struct Known {
    topics: BTreeSet<String>,
    subscriptions: BTreeSet<String>,
}

/// [`Known`], shared by the session (which fills it) and the line editor (which reads it).
pub(crate) type SharedKnown = Arc<Mutex<Known>>;

impl Known {
    /// Remembers a topic (or filter) seen.
    pub(crate) fn add_topic(&mut self, topic: &str) {
        if self.topics.len() < MAX_TOPICS && !self.topics.contains(topic) {
            self.topics.insert(topic.to_owned());
        }
    }

    /// The filters subscribed to now.
    pub(crate) fn set_subscriptions<'a>(&mut self, filters: impl IntoIterator<Item = &'a str>) {
        self.subscriptions = filters.into_iter().map(str::to_owned).collect();
    }
}

/// The completions of `line` with the cursor at byte `pos`: where the replaced word starts,
/// and the candidates (commands and options end with a space).
pub(crate) fn complete(line: &str, pos: usize, known: &Known) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before
        .char_indices()
        .rev()
        .find(|&(i, c)| c.is_whitespace() && !before[..i].ends_with('\\'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    let Ok(words) = split_words(&before[..start]) else {
        return (start, Vec::new());
    };
    let candidates = match words.split_first() {
        None => command_names(word),
        Some((name, rest)) => match commands::find(name) {
            Some(spec) if spec.name == "help" && rest.is_empty() => command_names(word),
            Some(spec) => arguments(spec, rest, word, known),
            None => Vec::new(),
        },
    };
    (start, candidates)
}

fn command_names(prefix: &str) -> Vec<String> {
    COMMANDS
        .iter()
        .filter(|c| c.name.starts_with(prefix))
        .map(|c| format!("{} ", c.name))
        .collect()
}

/// Candidates for `word` after the command's words `given`.
fn arguments(spec: &CommandSpec, given: &[String], word: &str, known: &Known) -> Vec<String> {
    let previous = given.last().and_then(|w| option_of(spec, w));
    if let Some(option) = previous.filter(|o| o.value.is_some()) {
        let values: Vec<String> = if option.topic && spec.name == "unsubscribe" {
            known.subscriptions.iter().cloned().collect()
        } else if option.topic {
            known.topics.iter().cloned().collect()
        } else if option.long == "qos" {
            vec!["0".into(), "1".into(), "2".into()]
        } else if option.long == "protocol-version" {
            vec!["5".into(), "311".into(), "31".into()]
        } else {
            Vec::new()
        };
        return values
            .into_iter()
            .filter(|v| v.starts_with(word))
            .map(|v| escape(&v))
            .collect();
    }
    if !word.is_empty() && !word.starts_with('-') {
        return Vec::new();
    }
    spec.options
        .iter()
        .filter(|o| {
            !given
                .iter()
                .any(|w| option_of(spec, w).is_some_and(|g| g.long == o.long))
        })
        .map(|o| format!("--{} ", o.long))
        .filter(|o| o.starts_with(word))
        .collect()
}

/// The option a word names (`--topic`, `-t`; not `--topic=x`).
fn option_of(spec: &CommandSpec, word: &str) -> Option<&'static commands::OptionSpec> {
    if let Some(long) = word.strip_prefix("--") {
        return spec.long(long);
    }
    let mut chars = word.strip_prefix('-')?.chars();
    let short = chars.next()?;
    chars.next().is_none().then(|| spec.short(short)).flatten()
}

/// Backslashes before the characters the shell's word splitting treats specially.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '\'' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The line editor's helper: completion from [`complete`]; no hints, colours or validation.
pub(crate) struct ShellHelper {
    /// What the session has seen.
    pub(crate) known: SharedKnown,
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(complete(line, pos, &known))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        let mut known = Known::default();
        for topic in [
            "sensors/kitchen/temp",
            "sensors/hall/temp",
            "lights/1",
            "a b",
        ] {
            known.add_topic(topic);
        }
        known.set_subscriptions(["sensors/#", "lights/+"]);
        known
    }

    fn candidates(line: &str) -> Vec<String> {
        let (start, found) = complete(line, line.len(), &known());
        assert!(start <= line.len());
        found.into_iter().map(|c| c.trim_end().to_owned()).collect()
    }

    #[test]
    fn commands_complete_from_the_first_word() {
        assert_eq!(candidates("pu"), ["publish"]);
        assert_eq!(candidates("sub"), ["subscribe", "subscriptions"]);
        assert_eq!(candidates("").len(), COMMANDS.len());
        assert_eq!(candidates("help un"), ["unsubscribe"]);
        assert!(candidates("nosuch --").is_empty());
        let (start, found) = complete("  dis", 5, &known());
        assert_eq!((start, found), (2, vec!["disconnect ".to_owned()]));
    }

    #[test]
    fn options_complete_and_skip_those_given() {
        assert_eq!(candidates("publish --"), ["--topic", "--qos", "--retained"]);
        assert_eq!(candidates("publish -t x --"), ["--qos", "--retained"]);
        assert_eq!(candidates("pub --topic x -q 1 --r"), ["--retained"]);
        assert_eq!(
            candidates("connect --p"),
            ["--port", "--password", "--protocol-version"]
        );
        assert!(candidates("publish -t x hello wor").is_empty());
    }

    #[test]
    fn values_complete_after_their_option() {
        assert_eq!(candidates("publish -q "), ["0", "1", "2"]);
        assert_eq!(candidates("connect -V 3"), ["311", "31"]);
        assert_eq!(
            candidates("publish -t sensors/"),
            ["sensors/hall/temp", "sensors/kitchen/temp"]
        );
        assert_eq!(candidates("sub --topic l"), ["lights/1"]);
        assert_eq!(candidates("unsubscribe -t "), ["lights/+", "sensors/#"]);
        assert_eq!(candidates("pub -t a"), ["a\\ b"]);
    }

    #[test]
    fn topics_seen_are_bounded() {
        let mut known = Known::default();
        for i in 0..MAX_TOPICS + 10 {
            known.add_topic(&format!("t/{i}"));
        }
        assert_eq!(known.topics.len(), MAX_TOPICS);
    }
}
