//! The shell's commands and their options, as one table: the parser reads it to accept a
//! line, `help` to describe it, and the completer to offer names.

/// One option of a command.
#[derive(Debug)]
pub(crate) struct OptionSpec {
    /// The long name, without `--`.
    pub(crate) long: &'static str,
    /// The short name, without `-`.
    pub(crate) short: Option<char>,
    /// The name of its value (`TOPIC`), or `None` for a flag.
    pub(crate) value: Option<&'static str>,
    /// Whether the command fails without it.
    pub(crate) required: bool,
    /// Whether its value is a topic or filter (for completion).
    pub(crate) topic: bool,
    /// One line of help.
    pub(crate) help: &'static str,
}

/// The words a command takes after its options (`MESSAGE`, `URL`).
#[derive(Debug)]
pub(crate) struct Operand {
    /// Its name in help texts.
    pub(crate) name: &'static str,
    /// Whether the command fails without it.
    pub(crate) required: bool,
    /// One line of help.
    pub(crate) help: &'static str,
}

/// One command of the shell.
#[derive(Debug)]
pub(crate) struct CommandSpec {
    /// Its name.
    pub(crate) name: &'static str,
    /// Other names accepted for it (HiveMQ's `mqtt sh` short forms).
    pub(crate) aliases: &'static [&'static str],
    /// What it does, one line.
    pub(crate) summary: &'static str,
    /// More about it, printed by `help COMMAND`.
    pub(crate) details: &'static str,
    /// The words after the options, if it takes any.
    pub(crate) operand: Option<Operand>,
    /// Its options.
    pub(crate) options: &'static [OptionSpec],
}

impl CommandSpec {
    /// The option named `--long`.
    pub(crate) fn long(&self, long: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.long == long)
    }

    /// The option named `-short`.
    pub(crate) fn short(&self, short: char) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.short == Some(short))
    }

    /// `publish [options] MESSAGE`: the usage line.
    pub(crate) fn usage(&self) -> String {
        let mut usage = self.name.to_owned();
        for option in self.options.iter().filter(|o| o.required) {
            usage.push(' ');
            usage.push_str(&option.display());
        }
        if self.options.iter().any(|o| !o.required) {
            usage.push_str(" [options]");
        }
        if let Some(operand) = &self.operand {
            if operand.required {
                usage.push_str(&format!(" {}", operand.name));
            } else {
                usage.push_str(&format!(" [{}]", operand.name));
            }
        }
        usage
    }
}

impl OptionSpec {
    /// `--topic TOPIC` (or `--retained`).
    pub(crate) fn display(&self) -> String {
        match self.value {
            Some(value) => format!("--{} {value}", self.long),
            None => format!("--{}", self.long),
        }
    }

    /// `-t, --topic TOPIC`, for help lists.
    pub(crate) fn display_both(&self) -> String {
        match self.short {
            Some(short) => format!("-{short}, {}", self.display()),
            None => format!("    {}", self.display()),
        }
    }
}

const QOS: OptionSpec = OptionSpec {
    long: "qos",
    short: Some('q'),
    value: Some("QOS"),
    required: false,
    topic: false,
    help: "quality of service: 0, 1 or 2 (default 0)",
};

/// Every command, in the order `help` lists them.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "connect",
        aliases: &["con"],
        summary: "connect to a broker",
        details: "Connects to URL (mqtt://[user[:password]@]host[:port], or just host[:port]). \
                  Options not given keep the values of the previous connect, or of the \
                  command line; the first defaults are localhost:1883 and MQTT 5.0. An open \
                  connection is closed first.",
        operand: Some(Operand {
            name: "URL",
            required: false,
            help: "mqtt://[user[:password]@]host[:port]",
        }),
        options: &[
            OptionSpec {
                long: "host",
                short: Some('h'),
                value: Some("HOST"),
                required: false,
                topic: false,
                help: "broker host name or address",
            },
            OptionSpec {
                long: "port",
                short: Some('p'),
                value: Some("PORT"),
                required: false,
                topic: false,
                help: "broker port (default 1883)",
            },
            OptionSpec {
                long: "user",
                short: Some('u'),
                value: Some("USER"),
                required: false,
                topic: false,
                help: "user name",
            },
            OptionSpec {
                long: "password",
                short: Some('P'),
                value: Some("PASSWORD"),
                required: false,
                topic: false,
                help: "password (needs a user name)",
            },
            OptionSpec {
                long: "id",
                short: Some('i'),
                value: Some("ID"),
                required: false,
                topic: false,
                help: "client identifier (default: tern- and random digits)",
            },
            OptionSpec {
                long: "protocol-version",
                short: Some('V'),
                value: Some("VERSION"),
                required: false,
                topic: false,
                help: "MQTT version: 5 (default), 311 or 31 (also mqttv5, 3.1.1, ...)",
            },
            OptionSpec {
                long: "keepalive",
                short: Some('k'),
                value: Some("SECONDS"),
                required: false,
                topic: false,
                help: "keep alive interval (default 60; 0 turns it off)",
            },
        ],
    },
    CommandSpec {
        name: "disconnect",
        aliases: &["dis"],
        summary: "disconnect from the broker (sends DISCONNECT)",
        details: "Sends DISCONNECT and closes the connection; the subscriptions end with it.",
        operand: None,
        options: &[],
    },
    CommandSpec {
        name: "publish",
        aliases: &["pub"],
        summary: "publish a message",
        details: "Publishes MESSAGE (the rest of the line; quote it to keep its spacing, \
                  '' for an empty message) and waits until it is delivered as its QoS \
                  promises: QoS 1 until PUBACK, QoS 2 until PUBCOMP.",
        operand: Some(Operand {
            name: "MESSAGE",
            required: true,
            help: "the payload",
        }),
        options: &[
            OptionSpec {
                long: "topic",
                short: Some('t'),
                value: Some("TOPIC"),
                required: true,
                topic: true,
                help: "topic to publish to",
            },
            QOS,
            OptionSpec {
                long: "retained",
                short: Some('r'),
                value: None,
                required: false,
                topic: false,
                help: "ask the broker to retain the message",
            },
        ],
    },
    CommandSpec {
        name: "subscribe",
        aliases: &["sub"],
        summary: "subscribe to a topic filter; its messages are printed as they arrive",
        details: "Subscribes to FILTER ('+' matches one level, '#' the rest). Messages are \
                  printed as 'topic payload' lines above the prompt. Subscribing to the same \
                  filter again replaces the subscription.",
        operand: None,
        options: &[
            OptionSpec {
                long: "topic",
                short: Some('t'),
                value: Some("FILTER"),
                required: true,
                topic: true,
                help: "topic filter to subscribe to",
            },
            QOS,
        ],
    },
    CommandSpec {
        name: "subscriptions",
        aliases: &["subs"],
        summary: "list the subscriptions and their granted QoS",
        details: "Lists the filters subscribed in this connection with the QoS the broker \
                  granted.",
        operand: None,
        options: &[],
    },
    CommandSpec {
        name: "unsubscribe",
        aliases: &["unsub"],
        summary: "unsubscribe from a topic filter",
        details: "Ends the subscription to FILTER (sends UNSUBSCRIBE); 'subscriptions' lists \
                  the filters.",
        operand: None,
        options: &[OptionSpec {
            long: "topic",
            short: Some('t'),
            value: Some("FILTER"),
            required: true,
            topic: true,
            help: "topic filter to unsubscribe from",
        }],
    },
    CommandSpec {
        name: "wait",
        aliases: &[],
        summary: "wait for messages to arrive (for scripts)",
        details: "Waits until COUNT messages have been printed that no earlier 'wait' \
                  counted, printing them as they come; fails after the timeout. Makes scripts \
                  deterministic: 'subscribe', 'publish', then 'wait' for the message.",
        operand: None,
        options: &[
            OptionSpec {
                long: "count",
                short: Some('c'),
                value: Some("COUNT"),
                required: false,
                topic: false,
                help: "messages to wait for (default 1)",
            },
            OptionSpec {
                long: "timeout",
                short: Some('w'),
                value: Some("SECONDS"),
                required: false,
                topic: false,
                help: "how long to wait at most (default 10)",
            },
        ],
    },
    CommandSpec {
        name: "help",
        aliases: &["?"],
        summary: "list the commands, or describe one",
        details: "'help' lists the commands; 'help COMMAND' (or 'COMMAND --help') shows its \
                  options.",
        operand: Some(Operand {
            name: "COMMAND",
            required: false,
            help: "the command to describe",
        }),
        options: &[],
    },
    CommandSpec {
        name: "exit",
        aliases: &["quit"],
        summary: "disconnect and leave the shell (also Ctrl-D)",
        details: "Sends DISCONNECT when connected and ends the shell.",
        operand: None,
        options: &[],
    },
];

/// The command named `name` (or one of its aliases).
pub(crate) fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}
