//! The flags every `tern bench` job shares (where to connect, how many clients, how fast,
//! TLS, output), their parsers, and the checks that turn them into a [`Dialer`] and a
//! [`RunOptions`]. A bad value is a [`Usage`] error: `tern bench` prints it and exits 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tern_client::TlsOptions;
use tern_codec::{ProtocolVersion, QoS};

use super::link::{Dialer, Session};

/// A command-line mistake, reported with exit status 2.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

/// Connection and run flags of `tern bench conn | pub | sub`.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Broker host name or address.
    #[arg(short = 'h', long, default_value = "127.0.0.1", value_name = "HOST")]
    host: String,
    /// Broker port (default 1883, or 8883 with TLS).
    #[arg(short = 'p', long, value_name = "PORT")]
    port: Option<u16>,
    /// MQTT version: 3 or 311 (3.1.1), 31 (3.1), 5; also mqttv311, mqttv31, mqttv5.
    #[arg(short = 'V', long = "mqtt-version", default_value = "5", value_parser = parse_version, value_name = "VERSION")]
    pub(crate) version: ProtocolVersion,
    /// Number of clients (default: conn 1000, pub 1, sub 1).
    #[arg(short = 'c', long, value_name = "N")]
    pub(crate) count: Option<usize>,
    /// Milliseconds between two clients' connects (0: as fast as --concurrency allows).
    #[arg(short = 'i', long, default_value_t = 0, value_name = "MS")]
    interval: u64,
    /// Handshakes (TCP, TLS, CONNECT/CONNACK) in progress at once.
    #[arg(long, default_value_t = 100, value_name = "N")]
    concurrency: usize,
    /// User name.
    #[arg(short = 'u', long, value_name = "USER")]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long, value_name = "PASSWORD")]
    password: Option<String>,
    /// Keep alive in seconds (0: off); idle clients send PINGREQ at three quarters of it.
    #[arg(short = 'k', long, default_value_t = 60, value_name = "SECS")]
    keepalive: u16,
    /// Clean session / clean start: false makes persistent sessions (with -x for MQTT 5).
    #[arg(short = 'C', long, default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set, value_name = "BOOL")]
    clean: bool,
    /// MQTT 5 Session Expiry Interval in seconds sent in CONNECT.
    #[arg(
        short = 'x',
        long = "session-expiry",
        default_value_t = 0,
        value_name = "SECS"
    )]
    session_expiry: u32,
    /// Client identifier prefix: client N of a job is PREFIX + p|s|c + N (default: tb and a
    /// random tag, so that two runs never take over each other's sessions).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// Connect with TLS (implied by --cafile, --cert, --insecure).
    #[arg(long)]
    tls: bool,
    /// CA certificate(s) to trust, PEM (default: the Mozilla root set).
    #[arg(long, value_name = "FILE")]
    cafile: Option<PathBuf>,
    /// Client certificate, PEM (with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Client private key, PEM (with --cert).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Do not check the server's certificate at all.
    #[arg(long)]
    insecure: bool,
    /// Run for this many seconds (pub: publishing time; sub: after all subscribed; conn:
    /// holding the connections). Without it, and without -L, until Ctrl-C.
    #[arg(short = 'd', long, value_name = "SECS")]
    duration: Option<f64>,
    /// Runtime threads (0: one per CPU). Use 1 when the generator is pinned to one CPU.
    #[arg(short = 'T', long, default_value_t = 0, value_name = "N")]
    pub(crate) threads: usize,
    /// Print one JSON object at the end instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print the progress line on stderr every second even when stderr is not a terminal.
    #[arg(long)]
    pub(crate) progress: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// What a job needs from the common flags, checked.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// Clients to start.
    pub(crate) count: usize,
    /// Pause between two connects.
    pub(crate) interval: Duration,
    /// Handshakes at once.
    pub(crate) concurrency: usize,
    /// How long the job runs, if bounded by time.
    pub(crate) duration: Option<Duration>,
    /// Client identifier prefix.
    pub(crate) prefix: String,
    /// Print the progress line.
    pub(crate) progress: bool,
    /// JSON output.
    pub(crate) json: bool,
}

impl RunOptions {
    /// The same options for `count` clients (the subscribers of `tern bench pub`).
    pub(crate) fn with_count(&self, count: usize) -> RunOptions {
        RunOptions {
            count,
            ..self.clone()
        }
    }
}

impl CommonArgs {
    /// The dialer and run options these flags describe; `default_count` is the job's `-c`.
    pub(crate) async fn resolve(
        &self,
        default_count: usize,
    ) -> Result<(Dialer, RunOptions), Usage> {
        let count = self.count.unwrap_or(default_count);
        if count == 0 {
            return Err(Usage("-c/--count must be at least 1".into()));
        }
        if self.concurrency == 0 {
            return Err(Usage("--concurrency must be at least 1".into()));
        }
        let duration = match self.duration {
            Some(d) if !(d.is_finite() && d > 0.0) => {
                return Err(Usage(format!(
                    "-d/--duration must be a positive number of seconds, not {d}"
                )));
            }
            Some(d) => Some(Duration::from_secs_f64(d)),
            None => None,
        };
        if self.session_expiry > 0 && self.version != ProtocolVersion::V5 {
            return Err(Usage(
                "-x/--session-expiry needs MQTT 5 (-V 5); with 3.1.1, -C false alone keeps the session".into(),
            ));
        }
        if self.password.is_some() && self.username.is_none() && self.version != ProtocolVersion::V5
        {
            return Err(Usage(
                "-P/--password needs -u/--username before MQTT 5".into(),
            ));
        }
        let tls_on = self.tls || self.cafile.is_some() || self.cert.is_some() || self.insecure;
        let tls = if tls_on {
            let mut options = TlsOptions::new().insecure(self.insecure);
            if let Some(ca) = &self.cafile {
                options = options.ca_file(ca);
            }
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                options = options.client_cert(cert, key);
            }
            let (config, name) = options
                .rustls_config(&self.host)
                .map_err(|e| Usage(format!("TLS: {e}")))?;
            Some((config, name))
        } else {
            None
        };
        let port = self.port.unwrap_or(if tls_on { 8883 } else { 1883 });
        let session = Session {
            version: self.version,
            keep_alive: self.keepalive,
            clean: self.clean,
            session_expiry: self.session_expiry,
            username: self.username.clone(),
            password: self.password.clone(),
        };
        let dialer = Dialer::new(&self.host, port, tls, session)
            .await
            .map_err(|e| Usage(format!("{}:{port}: {e}", self.host)))?;
        let prefix = match &self.prefix {
            Some(prefix) => prefix.clone(),
            None => format!("tb{:06x}", super::payload::random_u32() & 0xFF_FFFF),
        };
        let progress = self.progress || std::io::IsTerminal::is_terminal(&std::io::stderr());
        Ok((
            dialer,
            RunOptions {
                count,
                interval: Duration::from_millis(self.interval),
                concurrency: self.concurrency,
                duration,
                prefix,
                progress,
                json: self.json,
            },
        ))
    }
}

/// `-V`: 3, 311, 3.1.1, mqttv311 (3.1.1); 31, 3.1, mqttv31 (3.1); 5, mqttv5 (5.0).
pub(crate) fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "3" | "4" | "311" | "3.1.1" | "mqttv311" => Ok(ProtocolVersion::V3_1_1),
        "31" | "3.1" | "mqttv31" => Ok(ProtocolVersion::V3_1),
        "5" | "5.0" | "mqttv5" => Ok(ProtocolVersion::V5),
        _ => Err("use 3 or 311 (3.1.1), 31 (3.1) or 5 (also mqttv311, mqttv31, mqttv5)".into()),
    }
}

/// `-q`: 0, 1 or 2.
pub(crate) fn parse_qos(s: &str) -> Result<QoS, String> {
    match s {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err("QoS is 0, 1 or 2".into()),
    }
}

/// `-C`: true or false.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("use true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_every_spelling() {
        for s in ["3", "311", "mqttv311", "3.1.1"] {
            assert_eq!(parse_version(s), Ok(ProtocolVersion::V3_1_1));
        }
        assert_eq!(parse_version("mqttv5"), Ok(ProtocolVersion::V5));
        assert_eq!(parse_version("mqttv31"), Ok(ProtocolVersion::V3_1));
        assert!(parse_version("6").is_err());
        assert!(parse_qos("3").is_err());
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }
}
