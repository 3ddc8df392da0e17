//! `tern pub`: publishes one message (or one per line of stdin) and exits, with
//! mosquitto_pub's flags and exit codes.
//!
//! Rules:
//! - Exactly one message source: `-m`, `-f`, `-s`, `-l` or `-n`; a topic from `-t` or `-L`.
//! - Each publish completes as its QoS promises (QoS 1: PUBACK, QoS 2: PUBCOMP) before the
//!   next; then DISCONNECT. A lost connection is not re-established: the publish fails.
//! - `-l` sends each line without its newline (a `\r` stays), empty lines as empty
//!   messages, and the last line even without a newline.

use std::io::{BufRead, Read};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use tern_client::{Client, Publication, PublishProperties, QoS, ReasonCode, TopicName};

use crate::help;
use crate::json::Value;
use crate::mqtt_args::{parse_qos, ConnArgs, Failure};

/// Options of `tern pub`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    override_help = help::PUB,
    override_usage = help::PUB_USAGE
)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to publish to.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    topic: Option<String>,
    /// Message payload.
    #[arg(
        short = 'm',
        long = "message",
        value_name = "MESSAGE",
        group = "source"
    )]
    message: Option<String>,
    /// Send the contents of a file.
    #[arg(short = 'f', long = "file", value_name = "FILE", group = "source")]
    file: Option<std::path::PathBuf>,
    /// Send all of stdin as one message.
    #[arg(short = 's', long = "stdin-file", group = "source")]
    stdin_file: bool,
    /// Send each line of stdin as a message.
    #[arg(short = 'l', long = "stdin-line", group = "source")]
    stdin_line: bool,
    /// Send a zero length message.
    #[arg(short = 'n', long = "null-message", group = "source")]
    null_message: bool,
    /// QoS of the messages.
    #[arg(short = 'q', long = "qos", value_name = "QOS", value_parser = parse_qos)]
    qos: Option<QoS>,
    /// Retain the messages.
    #[arg(short = 'r', long = "retain")]
    retain: bool,
    /// Publish the message this many times.
    #[arg(long = "repeat", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// Seconds between repeated publishes.
    #[arg(long = "repeat-delay", value_name = "SECONDS", value_parser = parse_delay)]
    repeat_delay: Option<Duration>,
    /// One JSON object per published message on stdout.
    #[arg(long = "json")]
    json: bool,
    /// Print this help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Where the messages come from.
enum Source {
    /// One payload (`-m`, `-f`, `-s`, `-n`), sent `--repeat` times.
    Fixed(Bytes),
    /// One message per line of stdin.
    Lines,
}

/// Runs `tern pub`.
pub(crate) fn run(args: PubArgs) -> ExitCode {
    let quiet = args.conn.quiet;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return Failure::runtime(format!("cannot start the async runtime: {e}"))
                .report("pub", quiet)
        }
    };
    match runtime.block_on(publish(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report("pub", quiet),
    }
}

async fn publish(args: PubArgs) -> Result<(), Failure> {
    let connection = args.conn.resolve(true)?;
    let topic = match (&args.topic, &connection.url_topic) {
        (Some(topic), _) | (None, Some(topic)) => topic.clone(),
        (None, None) => {
            return Err(Failure::usage(
                "both topic and message must be supplied (-t TOPIC -m MESSAGE).",
            ))
        }
    };
    if TopicName::try_from(topic.as_str()).is_err() {
        return Err(Failure::usage(format!(
            "invalid publish topic '{topic}', does it contain '+' or '#'?"
        )));
    }
    let source = source(&args)?;
    if args.repeat > 1 && matches!(source, Source::Lines) {
        return Err(Failure::usage(
            "--repeat works with -m, -f, -n or -s, not with -l.",
        ));
    }
    crate::mqtt_args::init_debug(args.conn.debug);

    let options = connection.options.clone().reconnect(None);
    let client = Client::connect(options)
        .await
        .map_err(|e| Failure::connect(&e, &connection.server, connection.version))?;
    if args.conn.debug {
        eprintln!(
            "Connected to {} as {} (MQTT {})",
            connection.server,
            client.client_id(),
            crate::mqtt_args::version_name(connection.version)
        );
    }
    let sender = Sender {
        client: &client,
        topic,
        qos: args.qos.unwrap_or(QoS::AtMostOnce),
        retain: args.retain,
        properties: connection.properties.publish.clone(),
        json: args.json,
        debug: args.conn.debug,
    };
    let result = match source {
        Source::Fixed(payload) => {
            let mut result = Ok(());
            for i in 0..args.repeat {
                if i > 0 {
                    if let Some(delay) = args.repeat_delay {
                        tokio::time::sleep(delay).await;
                    }
                }
                result = sender.send(payload.clone()).await;
                if result.is_err() {
                    break;
                }
            }
            result
        }
        Source::Lines => send_lines(&sender).await,
    };
    client.disconnect().await;
    result
}

/// The message source the flags choose; reads `-f` and `-s` at once.
fn source(args: &PubArgs) -> Result<Source, Failure> {
    if let Some(message) = &args.message {
        return Ok(Source::Fixed(Bytes::from(message.clone())));
    }
    if let Some(path) = &args.file {
        let contents = std::fs::read(path).map_err(|e| {
            Failure::runtime(format!("unable to read file \"{}\": {e}.", path.display()))
        })?;
        return Ok(Source::Fixed(contents.into()));
    }
    if args.stdin_file {
        let mut contents = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut contents)
            .map_err(|e| Failure::runtime(format!("cannot read stdin: {e}")))?;
        return Ok(Source::Fixed(contents.into()));
    }
    if args.null_message {
        return Ok(Source::Fixed(Bytes::new()));
    }
    if args.stdin_line {
        return Ok(Source::Lines);
    }
    Err(Failure::usage(
        "both topic and message must be supplied: give -m MESSAGE, -f FILE, -s, -l or -n.",
    ))
}

/// Publishes with the common settings and reports each result.
struct Sender<'a> {
    client: &'a Client,
    topic: String,
    qos: QoS,
    retain: bool,
    properties: PublishProperties,
    json: bool,
    debug: bool,
}

impl Sender<'_> {
    async fn send(&self, payload: Bytes) -> Result<(), Failure> {
        let len = payload.len();
        let publication = Publication::new(self.topic.as_str(), payload)
            .qos(self.qos)
            .retain(self.retain)
            .properties(self.properties.clone());
        let topic = &self.topic;
        let reason = self
            .client
            .publish_with(publication)
            .await
            .map_err(|e| Failure::runtime(format!("publish to '{topic}' failed: {e}.")))?;
        if self.debug {
            eprintln!("Published {len} bytes to '{topic}': {reason:?}");
        }
        if self.json {
            println!("{}", self.json_line(len, reason));
        }
        Ok(())
    }

    /// `{"topic":..,"qos":..,"retain":..,"payloadlen":..,"reason_code":..,"reason":..}`
    fn json_line(&self, len: usize, reason: ReasonCode) -> String {
        let mut out = Vec::new();
        let value = Value::Object(vec![
            ("topic".into(), Value::Str(self.topic.as_bytes().to_vec())),
            ("qos".into(), Value::Int(u8::from(self.qos).into())),
            ("retain".into(), Value::Bool(self.retain)),
            ("payloadlen".into(), Value::Int(len as i64)),
            ("reason_code".into(), Value::Int(u8::from(reason).into())),
            (
                "reason".into(),
                Value::Str(format!("{reason:?}").into_bytes()),
            ),
        ]);
        value.write(&mut out, false);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Publishes each line of stdin, read on a thread so the connection keeps running.
async fn send_lines(sender: &Sender<'_>) -> Result<(), Failure> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let read = stdin.read_until(b'\n', &mut line);
            let done = matches!(read, Ok(0) | Err(_));
            if let Ok(0) = read {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if tx.blocking_send(read.map(|_| line)).is_err() || done {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let line = line.map_err(|e| Failure::runtime(format!("cannot read stdin: {e}")))?;
        sender.send(line.into()).await?;
    }
    Ok(())
}

/// `--repeat-delay`: seconds, fractions allowed.
fn parse_delay(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "--repeat-delay must be a number of seconds, 0 or more".into())
}
