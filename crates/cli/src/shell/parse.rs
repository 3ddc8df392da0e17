//! One line of input to a [`Command`].
//!
//! Rules:
//! - Words are split at white space as a POSIX shell splits them: `'...'` keeps everything,
//!   `"..."` keeps everything but `\"` and `\\`, a backslash outside quotes keeps the next
//!   character. An empty line or one starting with `#` is no command.
//! - The first word names the command (or an alias, see [`commands::COMMANDS`]). Then
//!   `--long VALUE`, `--long=VALUE`, `-s VALUE` and flags, in any order; `--` ends the
//!   options. The other words are the operand, joined by single spaces.
//! - `COMMAND --help` is `help COMMAND`. A missing required option or operand, an unknown or
//!   repeated option, a missing or bad value: an error naming it, as mqtt-shell does.

use std::collections::HashMap;
use std::time::Duration;

use tern_client::{ProtocolVersion, QoS};

use super::commands::{self, CommandSpec, OptionSpec};

/// A command of the shell, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// `connect [URL] [options]`.
    Connect(ConnectArgs),
    /// `disconnect`.
    Disconnect,
    /// `publish --topic TOPIC [--qos N] [--retained] MESSAGE`.
    Publish {
        /// The topic name (checked by the client).
        topic: String,
        /// The QoS.
        qos: QoS,
        /// The retain flag.
        retain: bool,
        /// The payload.
        message: String,
    },
    /// `subscribe --topic FILTER [--qos N]`.
    Subscribe {
        /// The topic filter (checked by the client).
        filter: String,
        /// The QoS asked for.
        qos: QoS,
    },
    /// `unsubscribe --topic FILTER`.
    Unsubscribe {
        /// The topic filter.
        filter: String,
    },
    /// `subscriptions`.
    Subscriptions,
    /// `wait [--count N] [--timeout SECONDS]`.
    Wait {
        /// Messages to wait for.
        count: u64,
        /// How long at most.
        timeout: Duration,
    },
    /// `help [COMMAND]`.
    Help(Option<String>),
    /// `exit`.
    Exit,
}

/// What `connect` (or the command line) says about the connection; `None` leaves the
/// previous value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnectArgs {
    /// `mqtt://[user[:password]@]host[:port]`, or `host[:port]`.
    pub(crate) url: Option<String>,
    /// `--host`.
    pub(crate) host: Option<String>,
    /// `--port`.
    pub(crate) port: Option<u16>,
    /// `--user`.
    pub(crate) user: Option<String>,
    /// `--password`.
    pub(crate) password: Option<String>,
    /// `--id`.
    pub(crate) id: Option<String>,
    /// `--protocol-version`.
    pub(crate) version: Option<ProtocolVersion>,
    /// `--keepalive`, seconds.
    pub(crate) keepalive: Option<u16>,
}

/// Parses one line; `Ok(None)` for an empty line or a comment.
pub(crate) fn parse_line(line: &str) -> Result<Option<Command>, String> {
    let words = split_words(line)?;
    let Some((name, rest)) = words.split_first() else {
        return Ok(None);
    };
    if name.starts_with('#') {
        return Ok(None);
    }
    let Some(spec) = commands::find(name) else {
        return Err(format!(
            "unknown command '{name}'; type 'help' to list the commands"
        ));
    };
    let Some(parsed) = Parsed::new(spec, rest)? else {
        return Ok(Some(Command::Help(Some(spec.name.to_owned()))));
    };
    parsed.into_command().map(Some)
}

/// A command's words sorted into options and operand.
struct Parsed {
    spec: &'static CommandSpec,
    /// Values by long option name; flags have an empty value.
    options: HashMap<&'static str, String>,
    operand: Vec<String>,
}

impl Parsed {
    /// Sorts `words`; `Ok(None)` when they hold `--help`.
    fn new(spec: &'static CommandSpec, words: &[String]) -> Result<Option<Parsed>, String> {
        let name = spec.name;
        let mut options = HashMap::new();
        let mut operand = Vec::new();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            let (option, inline) = if word == "--" {
                operand.extend(words.by_ref().cloned());
                break;
            } else if word == "--help" {
                return Ok(None);
            } else if let Some(long) = word.strip_prefix("--") {
                let (long, inline) = match long.split_once('=') {
                    Some((long, value)) => (long, Some(value.to_owned())),
                    None => (long, None),
                };
                let option = spec.long(long).ok_or_else(|| unknown_option(spec, word))?;
                (option, inline)
            } else if let Some(short) = single_short(word) {
                let option = spec
                    .short(short)
                    .ok_or_else(|| unknown_option(spec, word))?;
                (option, None)
            } else {
                operand.push(word.clone());
                continue;
            };
            let value = match (option.value, inline) {
                (None, Some(_)) => {
                    return Err(format!("{name}: option --{} takes no value", option.long))
                }
                (None, None) => String::new(),
                (Some(_), Some(value)) => value,
                (Some(value_name), None) => words.next().cloned().ok_or_else(|| {
                    format!(
                        "{name}: option --{} needs a value ({value_name})",
                        option.long
                    )
                })?,
            };
            if options.insert(option.long, value).is_some() {
                return Err(format!(
                    "{name}: option --{} given more than once",
                    option.long
                ));
            }
        }
        if let Some(missing) = spec
            .options
            .iter()
            .find(|o| o.required && !options.contains_key(o.long))
        {
            return Err(format!(
                "{name}: missing required option {} (see 'help {name}')",
                missing.display()
            ));
        }
        match &spec.operand {
            None if !operand.is_empty() => {
                return Err(format!(
                    "{name}: unexpected '{}'; options start with - (see 'help {name}')",
                    operand[0]
                ))
            }
            Some(o) if o.required && operand.is_empty() => {
                let hint = if o.name == "MESSAGE" {
                    "; use '' for an empty message"
                } else {
                    ""
                };
                return Err(format!("{name}: missing {}{hint}", o.name));
            }
            _ => {}
        }
        Ok(Some(Parsed {
            spec,
            options,
            operand,
        }))
    }

    fn into_command(self) -> Result<Command, String> {
        let name = self.spec.name;
        let operand = (!self.operand.is_empty()).then(|| self.operand.join(" "));
        let command = match name {
            "connect" => Command::Connect(ConnectArgs {
                url: operand,
                host: self.text("host"),
                port: self.number("port", 0, u16::MAX.into())?.map(|p| p as u16),
                user: self.text("user"),
                password: self.text("password"),
                id: self.text("id"),
                version: self
                    .text("protocol-version")
                    .map(|v| parse_version(&v))
                    .transpose()?,
                keepalive: self
                    .number("keepalive", 0, u16::MAX.into())?
                    .map(|k| k as u16),
            }),
            "disconnect" => Command::Disconnect,
            "publish" => Command::Publish {
                topic: self.required("topic"),
                qos: self.qos()?,
                retain: self.options.contains_key("retained"),
                message: operand.unwrap_or_default(),
            },
            "subscribe" => Command::Subscribe {
                filter: self.required("topic"),
                qos: self.qos()?,
            },
            "unsubscribe" => Command::Unsubscribe {
                filter: self.required("topic"),
            },
            "subscriptions" => Command::Subscriptions,
            "wait" => Command::Wait {
                count: self.number("count", 1, u64::from(u32::MAX))?.unwrap_or(1),
                timeout: self.seconds("timeout")?.unwrap_or(Duration::from_secs(10)),
            },
            "help" => match operand {
                Some(topic) if commands::find(&topic).is_none() => {
                    return Err(format!(
                        "help: unknown command '{topic}'; type 'help' to list the commands"
                    ))
                }
                topic => Command::Help(topic),
            },
            "exit" => Command::Exit,
            other => return Err(format!("{other}: not implemented by this shell")),
        };
        Ok(command)
    }

    fn text(&self, long: &str) -> Option<String> {
        self.options.get(long).cloned()
    }

    fn required(&self, long: &str) -> String {
        // Checked present in `new`.
        self.options.get(long).cloned().unwrap_or_default()
    }

    fn qos(&self) -> Result<QoS, String> {
        match self.options.get("qos").map(String::as_str) {
            None | Some("0") => Ok(QoS::AtMostOnce),
            Some("1") => Ok(QoS::AtLeastOnce),
            Some("2") => Ok(QoS::ExactlyOnce),
            Some(other) => Err(format!(
                "{}: invalid --qos '{other}'; use 0, 1 or 2",
                self.spec.name
            )),
        }
    }

    fn number(&self, long: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        let Some(text) = self.options.get(long) else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{}: invalid --{long} '{text}'; use a number from {min} to {max}",
                self.spec.name
            )),
        }
    }

    fn seconds(&self, long: &str) -> Result<Option<Duration>, String> {
        let Some(text) = self.options.get(long) else {
            return Ok(None);
        };
        text.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or_else(|| {
                format!(
                    "{}: invalid --{long} '{text}'; use seconds above 0 (at most 86400)",
                    self.spec.name
                )
            })
    }
}

/// `-x` (one letter after one dash, not a negative number).
fn single_short(word: &str) -> Option<char> {
    let mut chars = word.strip_prefix('-')?.chars();
    let c = chars.next()?;
    (chars.next().is_none() && c.is_ascii_alphabetic()).then_some(c)
}

fn unknown_option(spec: &CommandSpec, word: &str) -> String {
    let name = spec.name;
    if spec.options.is_empty() {
        return format!("{name}: takes no options, but got '{word}'");
    }
    let known: Vec<String> = spec.options.iter().map(OptionSpec::display).collect();
    format!(
        "{name}: unknown option '{word}'; it takes {} (see 'help {name}')",
        known.join(", ")
    )
}

/// MQTT version names: 5, 5.0, mqttv5, 311, 3.1.1, mqttv311, 31, 3.1, mqttv31.
pub(crate) fn parse_version(text: &str) -> Result<ProtocolVersion, String> {
    match text.to_ascii_lowercase().as_str() {
        "5" | "5.0" | "mqttv5" => Ok(ProtocolVersion::V5),
        "311" | "3.1.1" | "mqttv311" => Ok(ProtocolVersion::V3_1_1),
        "31" | "3.1" | "mqttv31" => Ok(ProtocolVersion::V3_1),
        _ => Err(format!(
            "invalid MQTT version '{text}'; use 5, 311 or 31 (or mqttv5, mqttv311, mqttv31)"
        )),
    }
}

/// Splits a line into words as a POSIX shell does (quotes and backslashes, no expansion).
pub(crate) fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                let current = word.get_or_insert_with(String::new);
                match chars.next() {
                    Some(c) => current.push(c),
                    None => return Err("a backslash ends the line; escape it as \\\\".into()),
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        parse_line(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .expect("a command")
    }

    fn error(line: &str) -> String {
        parse_line(line).expect_err(line)
    }

    #[test]
    fn words_split_like_a_shell() {
        let words = split_words(r#"pub -t 'a b' "c \"d\" \q" e\ f  g"#).expect("valid");
        assert_eq!(words, ["pub", "-t", "a b", r#"c "d" \q"#, "e f", "g"]);
        assert_eq!(split_words("x ''").expect("valid"), ["x", ""]);
        assert!(split_words("pub 'open").is_err());
        assert!(split_words("pub \"open").is_err());
        assert!(split_words("pub end\\").is_err());
    }

    #[test]
    fn empty_lines_and_comments_are_no_command() {
        assert_eq!(parse_line("").expect("ok"), None);
        assert_eq!(parse_line("   \t").expect("ok"), None);
        assert_eq!(parse_line("# a comment").expect("ok"), None);
    }

    #[test]
    fn publish_options_in_any_order() {
        let expected = Command::Publish {
            topic: "a/b".into(),
            qos: QoS::AtLeastOnce,
            retain: true,
            message: "hello world".into(),
        };
        assert_eq!(
            parse("publish --topic a/b --qos 1 --retained hello world"),
            expected
        );
        assert_eq!(parse("pub hello -r -q 1 world -t a/b"), expected);
        assert_eq!(
            parse("publish --topic=a/b --qos=1 -r 'hello world'"),
            expected
        );
        let dash = parse("publish -t a -- -5 degrees");
        assert!(matches!(dash, Command::Publish { message, .. } if message == "-5 degrees"));
        let empty = parse("publish -t a ''");
        assert!(matches!(empty, Command::Publish { message, .. } if message.is_empty()));
        let negative = parse("publish -t a -5");
        assert!(matches!(negative, Command::Publish { message, .. } if message == "-5"));
    }

    #[test]
    fn missing_required_option_is_named() {
        assert_eq!(
            error("publish hello"),
            "publish: missing required option --topic TOPIC (see 'help publish')"
        );
        assert!(error("subscribe -q 1").contains("missing required option --topic FILTER"));
        assert!(error("unsubscribe").contains("missing required option --topic FILTER"));
        assert!(error("publish -t a").contains("missing MESSAGE; use '' for an empty message"));
    }

    #[test]
    fn bad_options_and_values_are_explained() {
        assert!(error("publish -t a -q 3 x").contains("invalid --qos '3'; use 0, 1 or 2"));
        assert!(error("publish -t a -x m").contains("unknown option '-x'"));
        assert!(error("publish -t a --color m").contains("it takes --topic TOPIC"));
        assert!(error("publish -t a -t b m").contains("--topic given more than once"));
        assert!(error("subscribe -t").contains("--topic needs a value (FILTER)"));
        assert!(error("publish -t a --retained=yes m").contains("takes no value"));
        assert!(error("subscriptions extra").contains("unexpected 'extra'"));
        assert!(error("disconnect -f").contains("takes no options"));
        assert!(error("connect -p 70000").contains("invalid --port '70000'"));
        assert!(error("connect -V 4").contains("invalid MQTT version '4'"));
        assert!(error("wait -c 0").contains("invalid --count '0'"));
        assert!(error("wait -w -1").contains("invalid --timeout '-1'"));
        assert!(error("wait --timeout nan").contains("invalid --timeout"));
        assert!(error("pubish -t a m").contains("unknown command 'pubish'"));
        assert!(error("help nope").contains("unknown command 'nope'"));
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(
            parse("connect mqtt://u:p@h:1884 -i me -V 311 -k 30"),
            Command::Connect(ConnectArgs {
                url: Some("mqtt://u:p@h:1884".into()),
                id: Some("me".into()),
                version: Some(ProtocolVersion::V3_1_1),
                keepalive: Some(30),
                ..ConnectArgs::default()
            })
        );
        assert_eq!(
            parse("con -h example.org -p 1999 -u alice -P secret"),
            Command::Connect(ConnectArgs {
                host: Some("example.org".into()),
                port: Some(1999),
                user: Some("alice".into()),
                password: Some("secret".into()),
                ..ConnectArgs::default()
            })
        );
        assert_eq!(parse("disconnect"), Command::Disconnect);
        assert_eq!(
            parse("sub -t 'a/+/c' -q 2"),
            Command::Subscribe {
                filter: "a/+/c".into(),
                qos: QoS::ExactlyOnce
            }
        );
        assert_eq!(
            parse("unsubscribe --topic a/#"),
            Command::Unsubscribe {
                filter: "a/#".into()
            }
        );
        assert_eq!(parse("subscriptions"), Command::Subscriptions);
        assert_eq!(
            parse("wait"),
            Command::Wait {
                count: 1,
                timeout: Duration::from_secs(10)
            }
        );
        assert_eq!(
            parse("wait -c 3 --timeout 0.5"),
            Command::Wait {
                count: 3,
                timeout: Duration::from_millis(500)
            }
        );
        assert_eq!(parse("help"), Command::Help(None));
        assert_eq!(parse("help pub"), Command::Help(Some("pub".into())));
        assert_eq!(
            parse("publish --help"),
            Command::Help(Some("publish".into()))
        );
        assert_eq!(parse("exit"), Command::Exit);
        assert_eq!(parse("quit"), Command::Exit);
    }

    #[test]
    fn versions_by_every_name() {
        for (names, version) in [
            (["5", "5.0", "mqttv5"], ProtocolVersion::V5),
            (["311", "3.1.1", "MQTTv311"], ProtocolVersion::V3_1_1),
            (["31", "3.1", "mqttv31"], ProtocolVersion::V3_1),
        ] {
            for name in names {
                assert_eq!(parse_version(name), Ok(version), "{name}");
            }
        }
    }
}
