//! `tern sub`: subscribes and prints messages, with mosquitto_sub's flags, output formats
//! and exit codes.
//!
//! Rules:
//! - `-U` filters are unsubscribed first (tern-client unsubscribes a filter by dropping its
//!   stream, so each is subscribed without retained messages and dropped at once), then every
//!   `-t` filter is subscribed at `-q`.
//! - A message is printed unless retained with `-R`, not retained with `--retained-only`
//!   (which then ends the run), or matching a `-T` filter. `-C` counts printed messages.
//! - One PUBLISH that tern-client hands to several streams (overlapping `-t` filters) is
//!   printed once, so that tern sub prints what mosquitto_sub prints: once per PUBLISH.
//! - `-W` bounds the whole run (connect included) and exits 27; Ctrl-C or SIGTERM
//!   disconnects and exits 0. A lost connection is re-established, and the subscriptions
//!   with it.

use std::io::Write;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::Poll;
use std::time::Duration;

use clap::Args;
use futures_core::Stream;
use tern_client::{
    Client, ConnectOptions, Message, ProtocolVersion, QoS, RetainHandling, Subscription,
    SubscriptionOptions, TopicFilter,
};

use crate::format::{Format, Printer, Style};
use crate::help;
use crate::mqtt_args::{init_debug, parse_qos, ConnArgs, Failure};

/// Options of `tern sub`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    override_help = help::SUB,
    override_usage = help::SUB_USAGE
)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic filter to subscribe to; repeatable.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// Topic filter whose messages are not printed; repeatable.
    #[arg(short = 'T', long = "filter-out", value_name = "FILTER")]
    filter_out: Vec<String>,
    /// Topic filter to unsubscribe from; repeatable.
    #[arg(short = 'U', long = "unsubscribe", value_name = "TOPIC")]
    unsubscribe: Vec<String>,
    /// QoS of the subscriptions.
    #[arg(short = 'q', long = "qos", value_name = "QOS", value_parser = parse_qos)]
    qos: Option<QoS>,
    /// Exit after this many messages.
    #[arg(short = 'C', value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Exit with status 27 after this many seconds.
    #[arg(short = 'W', value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// Exit once subscribed.
    #[arg(short = 'E')]
    exit_after_subscribe: bool,
    /// Do not print retained messages.
    #[arg(short = 'R', conflicts_with = "retained_only")]
    no_retained: bool,
    /// Print only retained messages; exit at the first other one.
    #[arg(long = "retained-only")]
    retained_only: bool,
    /// Clear each retained message received.
    #[arg(long = "remove-retained")]
    remove_retained: bool,
    /// Keep the retain flag as published (MQTT 5.0).
    #[arg(long = "retain-as-published")]
    retain_as_published: bool,
    /// Output format.
    #[arg(short = 'F', value_name = "FORMAT", value_parser = Format::parse, conflicts_with = "json")]
    format: Option<Format>,
    /// One JSON object per message.
    #[arg(long = "json")]
    json: bool,
    /// Pretty JSON.
    #[arg(long = "pretty")]
    pretty: bool,
    /// Print the topic before the payload.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// No newline after each message.
    #[arg(short = 'N')]
    no_eol: bool,
    /// Print only this percentage of messages.
    #[arg(long = "random-filter", value_name = "PERCENT", value_parser = parse_percent)]
    random_filter: Option<f64>,
    /// Print this help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Runs `tern sub`.
pub(crate) fn run(args: SubArgs) -> ExitCode {
    let quiet = args.conn.quiet;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return Failure::runtime(format!("cannot start the async runtime: {e}"))
                .report("sub", quiet)
        }
    };
    match runtime.block_on(subscribe(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report("sub", quiet),
    }
}

/// Everything the flags decide, checked.
struct Plan {
    options: ConnectOptions,
    server: String,
    version: ProtocolVersion,
    topics: Vec<String>,
    unsubscribe: Vec<String>,
    filter_out: Vec<String>,
    subscription: SubscriptionOptions,
    printer: Printer,
    args: SubArgs,
}

fn plan(args: SubArgs) -> Result<Plan, Failure> {
    let connection = args.conn.resolve(false)?;
    let mut topics = args.topics.clone();
    if let Some(topic) = &connection.url_topic {
        topics.insert(0, topic.clone());
    }
    if topics.is_empty() && args.unsubscribe.is_empty() {
        return Err(Failure::usage(
            "you must specify a topic to subscribe to (-t) or unsubscribe from (-U).",
        ));
    }
    for (flag, filters) in [
        ("subscription", &topics),
        ("unsubscribe", &args.unsubscribe),
        ("filter", &args.filter_out),
    ] {
        if let Some(bad) = filters
            .iter()
            .find(|f| TopicFilter::try_from(f.as_str()).is_err())
        {
            return Err(Failure::usage(format!(
                "invalid {flag} topic '{bad}', are all '+' and '#' wildcards correct?"
            )));
        }
    }
    let mut subscription = SubscriptionOptions::with_qos(args.qos.unwrap_or(QoS::AtMostOnce));
    if args.no_retained {
        subscription.retain_handling = RetainHandling::DoNotSend;
    }
    subscription.retain_as_published = args.retain_as_published;

    let mut options = connection.options.clone();
    // As mosquitto_sub: a small -C is also the Receive Maximum, so that no more QoS 1/2
    // messages arrive (and are acknowledged) than will be printed.
    let mut props = connection.connect_properties.clone();
    if let Some(count) = args.count.filter(|&c| c < 20) {
        if connection.version == ProtocolVersion::V5 && props.receive_maximum.is_none() {
            props.receive_maximum = u16::try_from(count)
                .ok()
                .and_then(std::num::NonZeroU16::new);
            options = options.properties(props);
        }
    }
    let style = match (&args.format, args.json, args.verbose) {
        (Some(format), _, _) => Style::Format(format.clone()),
        (None, true, _) => Style::Json,
        (None, false, true) => Style::Verbose,
        (None, false, false) => Style::Payload,
    };
    let printer = Printer {
        style,
        eol: !args.no_eol,
        pretty: args.pretty,
    };
    Ok(Plan {
        options,
        server: connection.server,
        version: connection.version,
        topics,
        unsubscribe: args.unsubscribe.clone(),
        filter_out: args.filter_out.clone(),
        subscription,
        printer,
        args,
    })
}

async fn subscribe(args: SubArgs) -> Result<(), Failure> {
    let plan = plan(args)?;
    init_debug(plan.args.conn.debug);
    let deadline = plan
        .args
        .timeout
        .map(|secs| tokio::time::Instant::now() + Duration::from_secs(secs));
    let mut held = Held::default();
    let outcome = tokio::select! {
        outcome = session(&plan, &mut held) => outcome,
        () = sleep_until(deadline) => Err(Failure::timed_out()),
        () = shutdown_signal() => Ok(()),
    };
    if let Some(client) = held.client.take() {
        client.disconnect().await;
    }
    // Only now: with the client closed, dropping them sends nothing.
    drop(held.subscriptions);
    outcome
}

/// The client and its subscriptions, kept by the caller however the session ends, so that
/// the client disconnects before the subscriptions are dropped: dropping one sends
/// UNSUBSCRIBE, which would empty a session kept with `-c`.
#[derive(Default)]
struct Held {
    client: Option<Client>,
    subscriptions: Vec<Subscription>,
}

/// Connects, subscribes and prints until done.
async fn session(plan: &Plan, held: &mut Held) -> Result<(), Failure> {
    let client = Client::connect(plan.options.clone())
        .await
        .map_err(|e| Failure::connect(&e, &plan.server, plan.version))?;
    let Held {
        client: slot,
        subscriptions,
    } = held;
    let client = slot.insert(client);
    let debug = plan.args.conn.debug;
    if debug {
        eprintln!(
            "Connected to {} as {} (MQTT {})",
            plan.server,
            client.client_id(),
            crate::mqtt_args::version_name(plan.version)
        );
    }
    for filter in &plan.unsubscribe {
        let mut options = SubscriptionOptions::with_qos(QoS::AtMostOnce);
        options.retain_handling = RetainHandling::DoNotSend;
        let subscription = client
            .subscribe_with(filter, options)
            .await
            .map_err(|e| Failure::runtime(format!("unsubscribing from '{filter}' failed: {e}")))?;
        drop(subscription);
        // Let the connection task take the release (and send UNSUBSCRIBE) before anything
        // that follows, DISCONNECT included.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        if debug {
            eprintln!("Unsubscribed from '{filter}'");
        }
    }
    for topic in &plan.topics {
        let subscription = client
            .subscribe_with(topic, plan.subscription)
            .await
            .map_err(|e| Failure::runtime(format!("subscribing to '{topic}' failed: {e}")))?;
        if debug {
            eprintln!(
                "Subscribed to '{topic}' (granted QoS {})",
                u8::from(subscription.granted_qos())
            );
        }
        subscriptions.push(subscription);
    }
    if plan.args.exit_after_subscribe || subscriptions.is_empty() {
        return Ok(());
    }
    print_messages(plan, client, subscriptions).await
}

async fn print_messages(
    plan: &Plan,
    client: &Client,
    subscriptions: &mut [Subscription],
) -> Result<(), Failure> {
    let mut printed = 0u64;
    let mut next = 0usize;
    let mut random = Random::new();
    let stdout = std::io::stdout();
    loop {
        let Some((index, message)) = next_message(subscriptions, &mut next).await else {
            return Err(Failure::runtime("the connection to the broker was closed."));
        };
        if is_copy(subscriptions, index, &message) {
            continue;
        }
        if plan.args.retained_only && !message.retain {
            return Ok(());
        }
        if message.retain && plan.args.no_retained {
            continue;
        }
        let topic = message.topic.as_str();
        if plan
            .filter_out
            .iter()
            .any(|f| tern_codec::topic::matches(f, topic))
        {
            continue;
        }
        if plan.args.remove_retained && message.retain {
            client
                .publish(topic, "", QoS::AtLeastOnce, true)
                .await
                .map_err(|e| {
                    Failure::runtime(format!(
                        "removing the retained message of '{topic}' failed: {e}"
                    ))
                })?;
        }
        if let Some(percent) = plan.args.random_filter {
            if random.percent() >= percent {
                continue;
            }
        }
        let mut warnings = Vec::new();
        let now = chrono::Local::now();
        let bytes = plan.printer.render(&message, &now, &mut warnings);
        if !plan.args.conn.quiet {
            for warning in warnings {
                eprintln!("Error: {warning}");
            }
        }
        let mut out = stdout.lock();
        if let Err(e) = out.write_all(&bytes).and_then(|()| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure::runtime(format!("cannot write to stdout: {e}")));
        }
        printed += 1;
        if plan.args.count == Some(printed) {
            return Ok(());
        }
    }
}

/// Whether `message`, received on stream `index`, is a copy of a PUBLISH that an earlier
/// stream also received (tern-client hands one PUBLISH to every stream it is routed to):
/// - streams on the same filter share one subscription, and each gets every message;
/// - a PUBLISH with one Subscription Identifier goes to that subscription only;
/// - otherwise (MQTT 3.1.1, or several identifiers) it goes to every subscription whose
///   filter matches its topic.
fn is_copy(subscriptions: &[Subscription], index: usize, message: &Message) -> bool {
    let earlier = &subscriptions[..index];
    let own = subscriptions[index].filter();
    if earlier.iter().any(|s| s.filter() == own) {
        return true;
    }
    if message.properties.subscription_identifiers.len() == 1 {
        return false;
    }
    earlier.iter().any(|s| s.filter().matches(&message.topic))
}

/// The next message of any subscription, taking them in turn; `None` once all have ended.
async fn next_message(
    subscriptions: &mut [Subscription],
    next: &mut usize,
) -> Option<(usize, Message)> {
    std::future::poll_fn(|cx| {
        let n = subscriptions.len();
        let mut ended = 0;
        for k in 0..n {
            let i = (*next + k) % n;
            match Pin::new(&mut subscriptions[i]).poll_next(cx) {
                Poll::Ready(Some(message)) => {
                    *next = (i + 1) % n;
                    return Poll::Ready(Some((i, message)));
                }
                Poll::Ready(None) => ended += 1,
                Poll::Pending => {}
            }
        }
        if ended == n {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Resolves at SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `--random-filter`: a percentage above 0 and at most 100.
fn parse_percent(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|p| *p > 0.0 && *p <= 100.0)
        .ok_or_else(|| "--random-filter chance must be between 0.1-100.0".into())
}

/// A small xorshift generator for `--random-filter`, seeded from the standard library's
/// random hasher keys.
struct Random(u64);

impl Random {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Random(hasher.finish() | 1)
    }

    /// A number in [0, 100).
    fn percent(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f64 / 10_000.0
    }
}
