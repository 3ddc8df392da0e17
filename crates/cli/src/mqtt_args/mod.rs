//! The connection flags `tern pub` and `tern sub` share, spelled as mosquitto_pub and
//! mosquitto_sub spell them (`-h` is the host), and what they become: [`ConnectOptions`].
//! Also [`Failure`], how both commands report an error and choose their exit code.
//!
//! Rules taken from mosquitto's clients:
//! - Defaults: host `localhost`, port 1883, MQTT 3.1.1, keep alive 60 s, clean session.
//! - `-D` selects MQTT 5.0 when `-V` is not given.
//! - `-c` needs a client id (`-i`); with MQTT 5.0 it also means a session that never
//!   expires unless `-x` says otherwise. `-x` applies to MQTT 5.0 only.
//! - `-L mqtt://user:pass@host:port/topic` sets host, port, credentials and the topic;
//!   `-h`, `-p`, `-u` and `-P` given as well take precedence.
//! - TLS is on with `--cafile`, `--capath`, `--tls-use-os-certs` or an `mqtts://` URL; the
//!   port then defaults to 8883. `--cert` and `--key` go together; `--insecure` turns the
//!   server name check off (the certificate chain is still checked), as mosquitto's does.
//!   `--cert`, `--key`, `--insecure`, `--tls-alpn` and `--tls-version` without TLS on are
//!   usage errors rather than silently ignored.
//! - A refused connection exits with the CONNACK code (3.1.1: 1-5; 5.0: 0x80 and up); any
//!   other failure exits 1.

use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use tern_client::{ConnectOptions, ConnectProperties, ProtocolVersion, QoS, TopicName, Will};

use crate::mqtt_props::Properties;
use crate::url_userinfo::userinfo;

mod failure;
mod tls;

pub(crate) use failure::Failure;
use tls::TlsArgs;

/// Connection flags common to `tern pub` and `tern sub`.
#[derive(Debug, Args)]
pub(crate) struct ConnArgs {
    /// MQTT host to connect to (default localhost).
    #[arg(short = 'h', long = "host", value_name = "HOST")]
    host: Option<String>,
    /// Network port to connect to (default 1883).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// `mqtt://[username[:password]@]host[:port]/topic`
    #[arg(short = 'L', long = "url", value_name = "URL")]
    url: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username", value_name = "USER")]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw", value_name = "PASSWORD")]
    password: Option<String>,
    /// Client id.
    #[arg(
        short = 'i',
        long = "id",
        value_name = "ID",
        conflicts_with = "id_prefix"
    )]
    id: Option<String>,
    /// Client id prefix; the process id is appended.
    #[arg(short = 'I', long = "id-prefix", value_name = "PREFIX")]
    id_prefix: Option<String>,
    /// Keep alive in seconds.
    #[arg(short = 'k', long = "keepalive", value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u16).range(5..))]
    keepalive: u16,
    /// Protocol version: mqttv31, mqttv311 or mqttv5 (31, 311, 5).
    #[arg(short = 'V', long = "protocol-version", value_name = "VERSION", value_parser = parse_version)]
    version: Option<ProtocolVersion>,
    /// Disable clean session.
    #[arg(short = 'c', long = "disable-clean-session")]
    no_clean: bool,
    /// Session expiry interval in seconds (MQTT 5.0); -1 or ∞ for never.
    #[arg(short = 'x', value_name = "SECONDS", value_parser = parse_expiry, allow_hyphen_values = true)]
    session_expiry: Option<u32>,
    /// Debug messages on stderr.
    #[arg(short = 'd', long = "debug")]
    pub(crate) debug: bool,
    /// Print no error messages.
    #[arg(long = "quiet")]
    pub(crate) quiet: bool,
    /// Will topic.
    #[arg(long = "will-topic", value_name = "TOPIC")]
    will_topic: Option<String>,
    /// Will payload.
    #[arg(long = "will-payload", value_name = "PAYLOAD")]
    will_payload: Option<String>,
    /// Will QoS.
    #[arg(long = "will-qos", value_name = "QOS", value_parser = parse_qos)]
    will_qos: Option<QoS>,
    /// Retain the will.
    #[arg(long = "will-retain")]
    will_retain: bool,
    /// MQTT 5.0 property: command, name, value (user-property: name and value).
    /// (All occurrences' values in one list; [`Properties::parse`] splits them again.)
    #[arg(short = 'D', long = "property", num_args = 3..=4, action = clap::ArgAction::Append,
          value_names = ["COMMAND", "PROPERTY", "VALUE"])]
    properties: Vec<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

/// What the connection flags resolve to.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The options for [`tern_client::Client::connect`].
    pub(crate) options: ConnectOptions,
    /// The protocol spoken.
    pub(crate) version: ProtocolVersion,
    /// The topic from `-L`, if any.
    pub(crate) url_topic: Option<String>,
    /// `-D` properties (the PUBLISH ones are for `tern pub`).
    pub(crate) properties: Properties,
    /// `host:port`, for messages.
    pub(crate) server: String,
    /// The CONNECT properties in `options` (MQTT 5.0), for adjusting them.
    pub(crate) connect_properties: ConnectProperties,
}

impl ConnArgs {
    /// Checks the flags and builds the connect options; `is_pub` allows `-D publish`.
    pub(crate) fn resolve(&self, is_pub: bool) -> Result<Connection, Failure> {
        let properties = Properties::parse(&self.properties, is_pub).map_err(Failure::usage)?;
        let version = match self.version {
            Some(v) if properties.any && v != ProtocolVersion::V5 => {
                return Err(Failure::usage(
                    "-D/--property sets MQTT 5.0 properties; use -V mqttv5 (or leave -V out).",
                ))
            }
            Some(v) => v,
            None if properties.any => ProtocolVersion::V5,
            None => ProtocolVersion::V3_1_1,
        };
        let (mut host, mut port, mut username, mut password, mut url_topic, mut url_tls) =
            ("localhost".to_owned(), None, None, None, None, false);
        if let Some(url) = &self.url {
            let parsed = parse_url(url)?;
            host = parsed.host().to_owned();
            port = Some(parsed.port());
            url_tls = parsed.options.tls_options().is_some();
            url_topic = Some(parsed.topic);
            username = parsed.username;
            password = parsed.password;
        }
        let tls = self.tls.options(url_tls)?;
        host = self.host.clone().unwrap_or(host);
        let default_port = if tls.is_some() { 8883 } else { 1883 };
        let port = self.port.or(port).unwrap_or(default_port);
        if self.username.is_some() {
            username = self.username.clone();
        }
        if self.password.is_some() {
            password = self.password.clone();
        }
        let client_id = match (&self.id, &self.id_prefix) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(prefix)) => Some(format!("{prefix}{}", std::process::id())),
            (None, None) => None,
        };

        let mut options = ConnectOptions::new(host.clone(), port)
            .protocol(version)
            .keep_alive(Duration::from_secs(self.keepalive.into()))
            .clean_start(!self.no_clean);
        if let Some(id) = &client_id {
            options = options.client_id(id.clone());
        }
        if let Some(tls) = tls {
            options = options.tls(tls);
        }
        let mut connect_props = properties.connect.clone();
        if version == ProtocolVersion::V5 {
            let expiry = match self.session_expiry {
                Some(secs) => Some(secs),
                None if self.no_clean => Some(u32::MAX),
                None => connect_props.session_expiry_interval,
            };
            if expiry == Some(u32::MAX) && self.id.is_none() {
                return Err(Failure::usage(
                    "you must provide a client id (-i) if you are using an infinite session \
                     expiry interval (-c or -x -1).",
                ));
            }
            connect_props.session_expiry_interval = expiry.filter(|&s| s > 0);
            options = options.properties(connect_props.clone());
        } else if self.no_clean && self.id.is_none() {
            return Err(Failure::usage(
                "you must provide a client id (-i) if you are using the -c option.",
            ));
        }
        options = match (username, password) {
            (Some(user), Some(pass)) => options.credentials(user, pass),
            (Some(user), None) => options.username(user),
            (None, Some(_)) => {
                return Err(Failure::usage(
                    "a password (-P) is sent only with a user name; add -u USER.",
                ))
            }
            (None, None) => options,
        };
        if let Some(will) = self.will(&properties)? {
            options = options.will(will);
        }
        Ok(Connection {
            options,
            version,
            url_topic,
            properties,
            server: format!("{host}:{port}"),
            connect_properties: connect_props,
        })
    }

    fn will(&self, properties: &Properties) -> Result<Option<Will>, Failure> {
        let Some(topic) = &self.will_topic else {
            if self.will_payload.is_some() {
                return Err(Failure::usage(
                    "will payload given, but no will topic given.",
                ));
            }
            if self.will_retain {
                return Err(Failure::usage(
                    "will retain given, but no will topic given.",
                ));
            }
            if self.will_qos.is_some() {
                return Err(Failure::usage("will QoS given, but no will topic given."));
            }
            if properties.any_will {
                return Err(Failure::usage(
                    "will properties given, but no will topic given.",
                ));
            }
            return Ok(None);
        };
        let topic = TopicName::try_from(topic.as_str()).map_err(|_| {
            Failure::usage(format!(
                "invalid will topic '{topic}', does it contain '+' or '#'?"
            ))
        })?;
        Ok(Some(Will {
            topic,
            payload: Bytes::from(self.will_payload.clone().unwrap_or_default()),
            qos: self.will_qos.unwrap_or(QoS::AtMostOnce),
            retain: self.will_retain,
            properties: properties.will.clone(),
        }))
    }
}

/// A `-L` URL taken apart.
struct ParsedUrl {
    options: ConnectOptions,
    topic: String,
    username: Option<String>,
    password: Option<String>,
}

impl ParsedUrl {
    fn host(&self) -> &str {
        self.options.host()
    }

    fn port(&self) -> u16 {
        self.options.port()
    }
}

/// `mqtt://[user[:password]@]host[:port]/topic` (or `mqtts://`, port 8883 by default); the
/// topic is everything after the first `/` following the host, as mosquitto reads it.
fn parse_url(url: &str) -> Result<ParsedUrl, Failure> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Failure::usage(
            "unsupported URL scheme in -L; use mqtt://[user[:password]@]host[:port]/topic.",
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "mqtt" | "mqtts" => {}
        "ws" | "wss" => {
            return Err(Failure::usage(
                "MQTT over WebSockets is not supported; use mqtt:// or mqtts://.",
            ))
        }
        _ => {
            return Err(Failure::usage(
                "unsupported URL scheme in -L; use mqtt://[user[:password]@]host[:port]/topic.",
            ))
        }
    }
    let Some((authority, topic)) = rest.split_once('/') else {
        return Err(Failure::usage(
            "invalid URL for -L argument specified - topic missing.",
        ));
    };
    let options = ConnectOptions::from_url(&format!("{scheme}://{authority}"))
        .map_err(|e| Failure::usage(format!("invalid URL {url:?} for -L: {e}")))?;
    let (username, password) = userinfo(authority);
    Ok(ParsedUrl {
        options,
        topic: topic.to_owned(),
        username,
        password,
    })
}

/// `-V`: the names and numbers mosquitto accepts.
fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "mqttv31" | "31" => Ok(ProtocolVersion::V3_1),
        "mqttv311" | "311" => Ok(ProtocolVersion::V3_1_1),
        "mqttv5" | "5" => Ok(ProtocolVersion::V5),
        _ => Err("invalid protocol version; use mqttv31, mqttv311 or mqttv5".into()),
    }
}

/// "3.1", "3.1.1" or "5.0", for messages.
pub(crate) fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

/// `-q` and `--will-qos`: 0, 1 or 2.
pub(crate) fn parse_qos(s: &str) -> Result<QoS, String> {
    match s {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err(format!("invalid QoS {s:?}; use 0, 1 or 2")),
    }
}

/// `-x`: seconds, or -1 / 4294967295 / ∞ for a session that does not expire.
fn parse_expiry(s: &str) -> Result<u32, String> {
    match s {
        "∞" | "-1" => Ok(u32::MAX),
        _ => s.parse().map_err(|_| {
            "session-expiry-interval must be 0-4294967295, or -1 or ∞ for never".into()
        }),
    }
}

/// `-d`: the client's log (every packet sent and received) on stderr.
pub(crate) fn init_debug(debug: bool) {
    if debug {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("tern_client=trace"))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .with_target(false)
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(disable_help_flag = true)]
    struct Test {
        #[command(flatten)]
        conn: ConnArgs,
    }

    fn resolve(args: &[&str]) -> Result<Connection, Failure> {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        Test::try_parse_from(argv)
            .expect("parses")
            .conn
            .resolve(true)
    }

    #[test]
    fn defaults_are_mosquittos() {
        let c = resolve(&[]).expect("valid");
        assert_eq!(c.server, "localhost:1883");
        assert_eq!(c.version, ProtocolVersion::V3_1_1);
        assert!(c.url_topic.is_none());
    }

    #[test]
    fn url_then_explicit_flags() {
        let c = resolve(&["-L", "mqtt://al%40ice:pw@example.org:1999/a/b"]).expect("valid");
        assert_eq!(c.server, "example.org:1999");
        assert_eq!(c.url_topic.as_deref(), Some("a/b"));
        assert!(format!("{:?}", c.options).contains("al@ice"));
        let c = resolve(&["-L", "mqtt://h/t", "-p", "2000"]).expect("valid");
        assert_eq!(c.server, "h:2000");
        assert!(resolve(&["-L", "mqtt://h"]).is_err(), "topic missing");
        let c = resolve(&["-L", "mqtts://h/t"]).expect("TLS by URL");
        assert_eq!(c.server, "h:8883");
        assert!(c.options.tls_options().is_some());
    }

    #[test]
    fn tls_flags_turn_tls_on_and_move_the_port() {
        let c = resolve(&["--cafile", "ca.crt"]).expect("valid");
        assert_eq!(c.server, "localhost:8883");
        assert!(c.options.tls_options().is_some());
        let c = resolve(&["--tls-use-os-certs", "-p", "1884"]).expect("valid");
        assert_eq!(c.server, "localhost:1884");
        let c = resolve(&[
            "--capath",
            "/etc/ssl/certs",
            "--insecure",
            "--tls-alpn",
            "mqtt",
        ]);
        assert!(c.expect("valid").options.tls_options().is_some());
        assert!(resolve(&[]).expect("valid").options.tls_options().is_none());
        let err = resolve(&["--insecure"]).expect_err("TLS is off");
        assert!(err.message.contains("--cafile"), "{}", err.message);
        let err = resolve(&["--tls-version", "tlsv1.2"]).expect_err("TLS is off");
        assert!(err.message.contains("--tls-version"), "{}", err.message);
        let mut argv = vec!["test", "--cafile", "c", "--cert", "c.crt"];
        assert!(Test::try_parse_from(&argv).is_err(), "--cert needs --key");
        argv.extend(["--key", "c.key"]);
        assert!(Test::try_parse_from(&argv).is_ok());
        let argv = ["test", "--cafile", "c", "--tls-version", "tlsv1.1"];
        assert!(Test::try_parse_from(argv).is_err());
    }

    #[test]
    fn property_selects_v5_and_checks() {
        let c = resolve(&["-D", "connect", "receive-maximum", "3"]).expect("valid");
        assert_eq!(c.version, ProtocolVersion::V5);
        assert!(resolve(&["-V", "311", "-D", "connect", "receive-maximum", "3"]).is_err());
        assert!(resolve(&["-c"]).is_err(), "-c needs -i");
        assert!(resolve(&["-c", "-i", "x"]).is_ok());
        assert!(
            resolve(&["-V", "5", "-x", "-1"]).is_err(),
            "infinite expiry needs -i"
        );
        assert!(resolve(&["--will-payload", "x"]).is_err());
        assert!(resolve(&["-P", "secret"]).is_err());
        assert!(resolve(&["--will-topic", "a/+"]).is_err());
    }
}
