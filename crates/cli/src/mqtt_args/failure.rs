//! [`Failure`]: how `tern pub` and `tern sub` report an error and choose their exit code
//! (a refused connection exits with its CONNACK code, as mosquitto's clients do; any other
//! failure 1).

use std::process::ExitCode;

use tern_client::{ConnectError, ConnectErrorKind, ProtocolVersion, ReasonCode};

/// How a command failed: what to tell the user and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The process exit code.
    pub(crate) code: u8,
    /// The message, printed after `Error: `.
    pub(crate) message: String,
    /// Whether to point at `--help`.
    pub(crate) usage: bool,
}

/// mosquitto_sub's exit code when `-W` runs out.
pub(crate) const TIMED_OUT: u8 = 27;

impl Failure {
    /// A usage error (exit 1, with a pointer to `--help`).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
            usage: true,
        }
    }

    /// A run-time error with exit code 1.
    pub(crate) fn runtime(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
            usage: false,
        }
    }

    /// `-W` ran out: exit 27 with mosquitto_sub's message.
    pub(crate) fn timed_out() -> Self {
        Failure {
            code: TIMED_OUT,
            message: "Timed out".into(),
            usage: false,
        }
    }

    /// The failure of the first connection, with mosquitto's exit code: the CONNACK code
    /// when the broker refused, else 1.
    pub(crate) fn connect(err: &ConnectError, server: &str, version: ProtocolVersion) -> Self {
        let detail = std::error::Error::source(err)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        match err.kind() {
            ConnectErrorKind::Refused(code) => {
                let exit = if version == ProtocolVersion::V5 {
                    u8::from(code)
                } else {
                    code.to_v3_connack()
                };
                Failure {
                    code: exit,
                    message: format!(
                        "connection refused by {server}: {code:?} (code {exit}). {}",
                        refusal_hint(code, version)
                    ),
                    usage: false,
                }
            }
            ConnectErrorKind::Io => Failure::runtime(format!(
                "cannot connect to {server}{detail}. Is a broker running there? Use -h HOST \
                 and -p PORT to choose another."
            )),
            ConnectErrorKind::Tls => Failure::runtime(format!(
                "TLS with {server} failed{detail}. Check that --cafile or --capath holds the CA \
                 that signed the broker's certificate, that -h is a name in that certificate \
                 (--insecure skips the name check), and --cert/--key if the broker requires a \
                 client certificate."
            )),
            ConnectErrorKind::TimedOut => Failure::runtime(format!(
                "no answer from {server} within 10 s{detail}. Check -h and -p, and that the \
                 port is an MQTT listener."
            )),
            ConnectErrorKind::InvalidOptions => Failure::usage(format!("{err}")),
            _ => Failure::runtime(format!("connecting to {server} failed: {err}")),
        }
    }

    /// Prints the message (unless `quiet`) and returns the exit code; `command` names the
    /// subcommand for the pointer to its help.
    pub(crate) fn report(&self, command: &str, quiet: bool) -> ExitCode {
        if !quiet && self.code == TIMED_OUT {
            eprintln!("{}", self.message);
        } else if !quiet {
            eprintln!("Error: {}", self.message);
            if self.usage {
                eprintln!("\nUse 'tern {command} --help' to see usage.");
            }
        }
        ExitCode::from(self.code)
    }
}

/// What to do about a refused connection.
fn refusal_hint(code: ReasonCode, version: ProtocolVersion) -> &'static str {
    match code {
        ReasonCode::UnsupportedProtocolVersion if version == ProtocolVersion::V5 => {
            "The broker does not speak MQTT 5.0: try -V mqttv311."
        }
        ReasonCode::UnsupportedProtocolVersion => "Try another -V (mqttv5, mqttv311, mqttv31).",
        ReasonCode::ClientIdentifierNotValid => "Choose another client id with -i.",
        ReasonCode::BadUserNameOrPassword => "Check the user name (-u) and password (-P).",
        ReasonCode::NotAuthorized => {
            "Check the user name (-u) and password (-P) and the broker's access rules."
        }
        ReasonCode::ServerUnavailable | ReasonCode::ServerBusy => "Try again later.",
        ReasonCode::Banned => "This client is banned by the broker.",
        _ => "",
    }
}
