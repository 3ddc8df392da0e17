//! Broker configuration: listeners, limits, `$SYS` and logging, read from TOML.
//!
//! Every limit has a finite default. Unknown keys are an error that names the key
//! (`deny_unknown_fields`), and [`Config::validate`] rejects values that cannot work.
//! `docs/configuration.md` lists every key; keep the two in step.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole broker configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where clients connect. Default: one MQTT listener on 0.0.0.0:1883.
    pub listeners: Vec<ListenerConfig>,
    /// Resource limits.
    pub limits: Limits,
    /// Protocol features offered to clients (advertised to MQTT 5.0 clients in CONNACK).
    pub mqtt: Features,
    /// Seconds between `$SYS/broker/...` updates; 0 turns `$SYS` off.
    pub sys_interval: u64,
    /// Whether sessions, queued messages and retained messages are kept on disk
    /// (`docs/persistence.md`). Default true; `tern broker --in-memory` turns it off.
    pub persistence: bool,
    /// Directory of the store. Default `data`, relative to the working directory.
    pub data_dir: PathBuf,
    /// Longest time, in milliseconds, between checkpoints of the store's journal into its
    /// database while anything waits for one. Default 10,000.
    pub checkpoint_interval_ms: u64,
    /// Enhanced authentication (MQTT 5.0 §4.12).
    pub auth: AuthConfig,
    /// Logging, applied by the `tern` binary.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![ListenerConfig::default()],
            limits: Limits::default(),
            mqtt: Features::default(),
            sys_interval: 10,
            persistence: true,
            data_dir: PathBuf::from("data"),
            checkpoint_interval_ms: 10_000,
            auth: AuthConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// One TCP listener for MQTT.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// Address to bind. Default 0.0.0.0.
    pub bind: IpAddr,
    /// Port; 0 lets the operating system choose. Default 1883.
    pub port: u16,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 1883,
        }
    }
}

impl ListenerConfig {
    /// The socket address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

/// Limits that keep one client, or many, from exhausting the broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections open at once; more are closed at accept.
    pub max_connections: usize,
    /// Largest packet accepted, fixed header included (bytes). Larger: disconnected (0x95).
    pub max_packet_size: u32,
    /// Seconds a new connection has to complete CONNECT.
    pub connect_timeout: u64,
    /// Unacknowledged QoS 1/2 messages sent to one client at once (capped further by the
    /// client's Receive Maximum). 128 by default: a subscriber's window has to cover the time
    /// its acknowledgements take to come back while every other connection on the core has
    /// its turn; with 32 (EMQX's default) a fast subscriber got about 16 messages per write
    /// and fan-out ran at 60 % of what 128 gives (docs/PERFORMANCE.md).
    pub max_inflight: u16,
    /// QoS 1/2 messages the broker accepts from one client before it acknowledges earlier
    /// ones (the broker's Receive Maximum).
    pub receive_maximum: u16,
    /// Messages queued for one client beyond its in-flight window, online or offline.
    pub max_queued_messages: usize,
    /// Payload bytes queued for one client.
    pub max_queued_bytes: usize,
    /// Longest topic name or filter in bytes.
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Longest client identifier in bytes.
    pub max_client_id_length: usize,
    /// Largest keep alive a client may ask for, in seconds; larger requests are capped and
    /// MQTT 5.0 clients told so with Server Keep Alive. 0: no cap.
    pub max_keep_alive: u16,
    /// Longest a persistent session is kept after its client leaves (seconds).
    pub max_session_expiry: u32,
    /// Longest a publisher waits (seconds) for an online subscriber with a full queue to take
    /// something before the message for that subscriber is dropped and counted; meanwhile
    /// the publisher's acknowledgement waits and its connection is not read. 0: drop at once.
    pub publish_wait: u64,
    /// How often (milliseconds) connections idle since the last look are parked: their
    /// socket leaves the runtime for a shared epoll instance and their task ends, until a
    /// packet, a delivery or their keep-alive deadline brings them back. An idle connection
    /// then costs about half the memory; going in and out costs a few system calls. 0: never.
    pub park_idle_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_packet_size: 1024 * 1024,
            connect_timeout: 10,
            max_inflight: 128,
            receive_maximum: 1024,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            max_topic_length: 1024,
            max_topic_levels: 64,
            max_client_id_length: 256,
            max_keep_alive: 0,
            max_session_expiry: 7 * 24 * 3600,
            publish_wait: 10,
            park_idle_ms: 250,
        }
    }
}

impl Limits {
    /// The connect timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }
}

/// How a shared subscription group picks the member that receives a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedStrategy {
    /// Members in turn.
    #[default]
    RoundRobin,
    /// A member chosen at random for each message.
    Random,
}

/// Protocol features the broker offers. Turning one off is advertised to MQTT 5.0 clients in
/// CONNACK and enforced for every client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Features {
    /// Highest QoS accepted from and granted to clients (0, 1 or 2).
    pub maximum_qos: u8,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Whether subscriptions may use `+` and `#`.
    pub wildcard_subscriptions: bool,
    /// Whether MQTT 5.0 Subscription Identifiers are supported.
    pub subscription_identifiers: bool,
    /// Whether `$share/{group}/{filter}` subscriptions are supported.
    pub shared_subscriptions: bool,
    /// How a shared group picks its member.
    pub shared_strategy: SharedStrategy,
    /// Highest Topic Alias an MQTT 5.0 client may use (0: none).
    pub topic_alias_maximum: u16,
    /// Response Information for clients that request it; `{client_id}` is replaced by the
    /// client's identifier. Empty: none is given.
    pub response_information: String,
    /// Refuse (0x99) PUBLISHes whose Payload Format Indicator says UTF-8 but whose payload is
    /// not valid UTF-8.
    pub check_payload_format: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            maximum_qos: 2,
            retain_available: true,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
            shared_strategy: SharedStrategy::RoundRobin,
            topic_alias_maximum: 32,
            response_information: String::new(),
            check_payload_format: true,
        }
    }
}

impl Features {
    /// The maximum QoS as a [`tern_codec::QoS`].
    pub fn maximum_qos(&self) -> tern_codec::QoS {
        tern_codec::QoS::from_u8(self.maximum_qos.min(2)).unwrap_or(tern_codec::QoS::ExactlyOnce)
    }
}

/// Who may connect: CONNECT passwords, anonymous clients, and the enhanced authentication
/// methods offered to MQTT 5.0 clients (§4.12).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// File of SCRAM-SHA-256 credentials, one `<user>:SCRAM-SHA-256$...` line a user
    /// (`docs/configuration.md`). When set, the method `SCRAM-SHA-256` is offered.
    pub scram_file: Option<PathBuf>,
    /// File the User Name and Password of a CONNECT are checked against, in the same format
    /// (`tern passwd` writes it); may be the same file as `scram_file`.
    pub password_file: Option<PathBuf>,
    /// Whether clients that do not authenticate may connect. Unset: true without
    /// `password_file`, false with one (as in mosquitto 2).
    pub allow_anonymous: Option<bool>,
}

impl AuthConfig {
    /// Whether clients that do not authenticate may connect, the default applied.
    pub fn allow_anonymous(&self) -> bool {
        self.allow_anonymous.unwrap_or(self.password_file.is_none())
    }
}

/// Logging settings (the library only emits `tracing` events; the binary installs them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `tern_broker=trace,info`, ...
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid config{}: {message}", path.as_deref().map(|p| format!(" in {p}")).unwrap_or_default())]
    Parse {
        /// The file, when read from one.
        path: Option<String>,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config value `{key}`: {reason}")]
    Invalid {
        /// The key, as written in TOML.
        key: &'static str,
        /// What is wrong and what would be right.
        reason: &'static str,
    },
}

impl Config {
    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: None,
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(display),
                message,
            },
            other => other,
        })
    }

    /// Checks that every value can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason| Err(ConfigError::Invalid { key, reason });
        let l = &self.limits;
        if self.listeners.is_empty() {
            return invalid("listeners", "at least one listener is needed");
        }
        if !(10..=3_600_000).contains(&self.checkpoint_interval_ms) {
            return invalid(
                "checkpoint_interval_ms",
                "must be between 10 and 3600000 milliseconds",
            );
        }
        if l.max_connections == 0 {
            return invalid("limits.max_connections", "must be at least 1");
        }
        if l.max_packet_size < 64 || l.max_packet_size > tern_codec::MAX_PACKET_SIZE as u32 {
            return invalid(
                "limits.max_packet_size",
                "must be between 64 and 268435460 bytes",
            );
        }
        if l.connect_timeout == 0 {
            return invalid("limits.connect_timeout", "must be at least 1 second");
        }
        if l.max_inflight == 0 {
            return invalid("limits.max_inflight", "must be at least 1");
        }
        if l.receive_maximum == 0 {
            return invalid("limits.receive_maximum", "must be between 1 and 65535");
        }
        if l.max_queued_messages == 0 || l.max_queued_bytes == 0 {
            return invalid(
                "limits.max_queued_messages",
                "queue limits must be at least 1",
            );
        }
        if l.max_topic_length == 0 || l.max_topic_levels == 0 {
            return invalid("limits.max_topic_length", "topic limits must be at least 1");
        }
        if self.mqtt.maximum_qos > 2 {
            return invalid("mqtt.maximum_qos", "must be 0, 1 or 2");
        }
        if l.max_client_id_length < 23 {
            return invalid(
                "limits.max_client_id_length",
                "must be at least 23, the length every server must accept [MQTT-3.1.3-5]",
            );
        }
        let auth = &self.auth;
        if !auth.allow_anonymous() && auth.password_file.is_none() && auth.scram_file.is_none() {
            return invalid(
                "auth.allow_anonymous",
                "false refuses every client unless auth.password_file or auth.scram_file is set; set one of them (tern passwd makes the file)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_finite_and_valid() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.listeners[0].port, 1883);
        assert_eq!(Config::from_toml("").unwrap(), config);
    }

    #[test]
    fn reads_listeners_and_limits() {
        let config = Config::from_toml(
            "sys_interval = 0\n[[listeners]]\nbind = \"127.0.0.1\"\nport = 0\n\
             [limits]\nmax_inflight = 5\n[log]\nlevel = \"debug\"\n",
        )
        .unwrap();
        assert_eq!(config.listeners[0].addr(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.limits.max_inflight, 5);
        assert_eq!(config.limits.max_queued_messages, 1000);
        assert_eq!(config.sys_interval, 0);
        assert_eq!(config.log.level, "debug");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("[limits]\nmax_inflite = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_inflite"), "{err}");
        let err = Config::from_toml("colour = 1\n").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        let err = Config::from_toml("[limits]\nmax_inflight = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_inflight"), "{err}");
        let err = Config::from_toml("listeners = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listeners"), "{err}");
        let err = Config::from_toml("checkpoint_interval_ms = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkpoint_interval_ms"), "{err}");
    }

    #[test]
    fn reads_the_auth_section() {
        assert_eq!(Config::default().auth.scram_file, None);
        let config = Config::from_toml("[auth]\nscram_file = \"/etc/tern/scram\"\n").unwrap();
        assert_eq!(
            config.auth.scram_file.as_deref(),
            Some(Path::new("/etc/tern/scram"))
        );
        assert!(
            config.auth.allow_anonymous(),
            "no password file: anonymous allowed"
        );
        let config = Config::from_toml("[auth]\npassword_file = \"/etc/tern/passwd\"\n").unwrap();
        assert!(
            !config.auth.allow_anonymous(),
            "a password file: anonymous refused"
        );
        let config = Config::from_toml(
            "[auth]\npassword_file = \"/etc/tern/passwd\"\nallow_anonymous = true\n",
        )
        .unwrap();
        assert!(config.auth.allow_anonymous());
        let err = Config::from_toml("[auth]\nallow_anonymous = false\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.allow_anonymous"), "{err}");
        let config =
            Config::from_toml("[auth]\nscram_file = \"s\"\nallow_anonymous = false\n").unwrap();
        assert!(!config.auth.allow_anonymous());
        let err = Config::from_toml("[auth]\npasswords = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("passwords"), "{err}");
    }

    #[test]
    fn reads_mqtt_features() {
        let config = Config::from_toml(
            "[mqtt]\nmaximum_qos = 1\nshared_strategy = \"random\"\ntopic_alias_maximum = 0\n",
        )
        .unwrap();
        assert_eq!(config.mqtt.maximum_qos(), tern_codec::QoS::AtLeastOnce);
        assert_eq!(config.mqtt.shared_strategy, SharedStrategy::Random);
        assert!(config.mqtt.retain_available);
        let err = Config::from_toml("[mqtt]\nmaximum_qos = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mqtt.maximum_qos"), "{err}");
        let err = Config::from_toml("[mqtt]\nshared_strategy = \"fair\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fair"), "{err}");
    }
}
