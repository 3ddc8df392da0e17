//! [`Session`]: the connection, its subscriptions, and what each command does to them.
//!
//! Rules:
//! - One connection at a time; `connect` while connected disconnects first. The client
//!   does not reconnect: a lost connection is reported and ends the subscriptions.
//! - One subscription per filter. Subscribing again to a filter replaces its stream (the new
//!   one is made before the old one is dropped, so the filter is never unsubscribed between).
//! - tern-client hands one PUBLISH to every stream it is routed to; overlapping filters
//!   would print it twice. A message is printed once per PUBLISH, by the rule `tern sub`
//!   uses: a stream skips a message an earlier stream also got (same filter; or, unless the
//!   message carries exactly one Subscription Identifier, an earlier filter matching it).
//! - Messages are counted for `wait` as they are printed.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_core::Stream;
use tern_client::{
    Client, ConnectError, ConnectErrorKind, ConnectionState, Message, ProtocolVersion,
    PublishErrorKind, QoS, ReasonCode, SubscribeErrorKind, Subscription,
};
use tokio::sync::watch;

use super::complete::SharedKnown;
use super::help;
use super::output::Output;
use super::parse::{Command, ConnectArgs};
use super::target::Target;

/// Whether the shell goes on after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Read the next command.
    Continue,
    /// Leave the shell.
    Exit,
}

/// Something that happened on the connection between commands.
#[derive(Debug)]
pub(crate) enum Event {
    /// A message arrived (boxed: a message with properties is large).
    Message(Box<Message>),
    /// The connection ended; the text says how.
    Lost(String),
}

/// The shell's MQTT state.
pub(crate) struct Session {
    /// What the next `connect` starts from.
    target: Target,
    link: Option<Link>,
    known: SharedKnown,
    /// Messages printed that no `wait` has counted yet.
    unwaited: u64,
}

/// An open connection.
struct Link {
    client: Client,
    target: Target,
    state: watch::Receiver<ConnectionState>,
    subscriptions: Vec<Subscribed>,
    /// The stream polled first next time, so that a busy one cannot starve the others.
    next: usize,
}

struct Subscribed {
    filter: String,
    stream: Subscription,
}

impl Session {
    /// A disconnected session; `connect` starts from `target`.
    pub(crate) fn new(target: Target, known: SharedKnown) -> Session {
        Session {
            target,
            link: None,
            known,
            unwaited: 0,
        }
    }

    /// `client-id@host>` when connected (the port shown unless 1883), `tern>` otherwise.
    pub(crate) fn prompt(&self) -> String {
        match &self.link {
            Some(link) => format!(
                "{}@{}> ",
                link.client.client_id(),
                link.target.short_server()
            ),
            None => "tern> ".to_owned(),
        }
    }

    /// The next message or the end of the connection; never resolves while disconnected.
    pub(crate) async fn next_event(&mut self) -> Event {
        let Some(link) = &mut self.link else {
            return std::future::pending().await;
        };
        loop {
            let Link {
                state,
                subscriptions,
                next,
                target,
                ..
            } = link;
            // Messages first: those that arrived before the connection ended are printed
            // before the end is reported (no new ones come after it).
            tokio::select! {
                biased;
                Some((index, message)) = next_message(subscriptions, next) => {
                    if !is_copy(subscriptions, index, &message) {
                        return Event::Message(Box::new(message));
                    }
                }
                changed = state.changed() => {
                    let current = *state.borrow_and_update();
                    if changed.is_err() || current == ConnectionState::Closed {
                        return Event::Lost(format!(
                            "connection to {} lost; type 'connect' to connect again",
                            target.server()
                        ));
                    }
                }
            }
        }
    }

    /// Prints an event and updates the state it changes.
    pub(crate) fn handle_event(&mut self, event: Event, out: &mut Output) {
        match event {
            Event::Message(message) => {
                self.remember(message.topic.as_str());
                self.unwaited += 1;
                out.message(&message);
            }
            Event::Lost(text) => {
                self.link = None;
                self.update_subscriptions();
                out.notice(&text);
            }
        }
    }

    /// Runs one command.
    pub(crate) async fn execute(
        &mut self,
        command: Command,
        out: &mut Output,
    ) -> Result<Flow, String> {
        match command {
            Command::Connect(args) => self.connect(&args, out).await?,
            Command::Disconnect => {
                if self.link.is_none() {
                    return Err("not connected".into());
                }
                self.close(out).await;
            }
            Command::Publish {
                topic,
                qos,
                retain,
                message,
            } => self.publish(&topic, qos, retain, message, out).await?,
            Command::Subscribe { filter, qos } => self.subscribe(filter, qos, out).await?,
            Command::Unsubscribe { filter } => self.unsubscribe(&filter, out).await?,
            Command::Subscriptions => self.list(out)?,
            Command::Wait { count, timeout } => self.wait(count, timeout, out).await?,
            Command::Help(topic) => out.info(&help::render(topic.as_deref())),
            Command::Exit => return Ok(Flow::Exit),
        }
        Ok(Flow::Continue)
    }

    /// Sends DISCONNECT and forgets the connection, if there is one.
    pub(crate) async fn close(&mut self, out: &mut Output) {
        if let Some(link) = self.link.take() {
            link.client.disconnect().await;
            // Dropped after the client closed, so they send nothing.
            drop(link.subscriptions);
            self.update_subscriptions();
            out.info(&format!("disconnected from {}", link.target.server()));
        }
    }

    fn link(&self) -> Result<&Link, String> {
        self.link.as_ref().ok_or_else(not_connected)
    }

    async fn connect(&mut self, args: &ConnectArgs, out: &mut Output) -> Result<(), String> {
        let target = self.target.apply(args)?;
        self.close(out).await;
        let client = Client::connect(target.options())
            .await
            .map_err(|e| connect_error(&e, &target))?;
        out.info(&format!(
            "connected to {} as {} (MQTT {})",
            target.server(),
            client.client_id(),
            version_name(target.version)
        ));
        let state = client.state();
        self.link = Some(Link {
            client,
            target: target.clone(),
            state,
            subscriptions: Vec::new(),
            next: 0,
        });
        self.target = target;
        Ok(())
    }

    async fn publish(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        message: String,
        out: &mut Output,
    ) -> Result<(), String> {
        let link = self.link()?;
        let reason = link
            .client
            .publish(topic, message, qos, retain)
            .await
            .map_err(|e| {
                let hint = match e.kind() {
                    PublishErrorKind::InvalidTopic => {
                        "; a topic name is not empty and has no '+' or '#'"
                    }
                    PublishErrorKind::QoSNotSupported => "; try a lower --qos",
                    PublishErrorKind::RetainNotSupported => "; leave out --retained",
                    _ => "",
                };
                format!("publish to '{topic}' failed: {e}{hint}")
            })?;
        self.remember(topic);
        let note = if reason == ReasonCode::NoMatchingSubscribers {
            "; the broker says no one is subscribed"
        } else {
            ""
        };
        out.info(&format!(
            "published to '{topic}' (QoS {}{}{note})",
            u8::from(qos),
            if retain { ", retained" } else { "" }
        ));
        Ok(())
    }

    async fn subscribe(
        &mut self,
        filter: String,
        qos: QoS,
        out: &mut Output,
    ) -> Result<(), String> {
        let link = self.link()?;
        let stream = link.client.subscribe(&filter, qos).await.map_err(|e| {
            let hint = match e.kind() {
                SubscribeErrorKind::InvalidFilter => {
                    "; '#' may only end a filter and '+' fills a whole level"
                }
                SubscribeErrorKind::Rejected(_) => "; the broker may not allow this filter",
                _ => "",
            };
            format!("subscribe to '{filter}' failed: {e}{hint}")
        })?;
        let granted = stream.granted_qos();
        if let Some(link) = &mut self.link {
            let subscribed = Subscribed {
                filter: filter.clone(),
                stream,
            };
            match link.subscriptions.iter_mut().find(|s| s.filter == filter) {
                Some(old) => *old = subscribed,
                None => link.subscriptions.push(subscribed),
            }
        }
        self.remember(&filter);
        self.update_subscriptions();
        out.info(&format!(
            "subscribed to '{filter}' (granted QoS {})",
            u8::from(granted)
        ));
        Ok(())
    }

    async fn unsubscribe(&mut self, filter: &str, out: &mut Output) -> Result<(), String> {
        let link = self.link.as_mut().ok_or_else(not_connected)?;
        let Some(index) = link.subscriptions.iter().position(|s| s.filter == filter) else {
            return Err(format!(
                "not subscribed to '{filter}'; 'subscriptions' lists the filters"
            ));
        };
        // Dropping the stream sends UNSUBSCRIBE.
        drop(link.subscriptions.remove(index));
        link.next = 0;
        // Let the connection task take the release before the next command (DISCONNECT
        // included) reaches it.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.update_subscriptions();
        out.info(&format!("unsubscribed from '{filter}'"));
        Ok(())
    }

    fn list(&self, out: &mut Output) -> Result<(), String> {
        let link = self.link()?;
        if link.subscriptions.is_empty() {
            out.info("no subscriptions");
        }
        for s in &link.subscriptions {
            out.info(&format!(
                "{} (QoS {})",
                s.filter,
                u8::from(s.stream.granted_qos())
            ));
        }
        Ok(())
    }

    async fn wait(
        &mut self,
        count: u64,
        timeout: Duration,
        out: &mut Output,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.unwaited < count {
            if self.link.is_none() {
                return Err(format!(
                    "wait: {} of {count} messages arrived, and no more can: not connected",
                    self.unwaited
                ));
            }
            match tokio::time::timeout_at(deadline, self.next_event()).await {
                Ok(event) => self.handle_event(event, out),
                Err(_) => {
                    return Err(format!(
                        "wait: {} of {count} messages arrived within {} s",
                        self.unwaited,
                        timeout.as_secs_f64()
                    ))
                }
            }
        }
        self.unwaited -= count;
        Ok(())
    }

    fn remember(&self, topic: &str) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add_topic(topic);
    }

    fn update_subscriptions(&self) {
        let filters = self
            .link
            .iter()
            .flat_map(|l| l.subscriptions.iter().map(|s| s.filter.as_str()));
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set_subscriptions(filters);
    }
}

/// The next message of any stream, taking them in turn from `next`; pending while there is
/// none (and forever when every stream has ended: the state change reports that).
async fn next_message(
    subscriptions: &mut [Subscribed],
    next: &mut usize,
) -> Option<(usize, Message)> {
    poll_fn(|cx| {
        let n = subscriptions.len();
        for k in 0..n {
            let i = (*next + k) % n;
            if let Poll::Ready(Some(message)) = Pin::new(&mut subscriptions[i].stream).poll_next(cx)
            {
                *next = (i + 1) % n;
                return Poll::Ready(Some((i, message)));
            }
        }
        Poll::Pending
    })
    .await
}

/// Whether `message`, received on stream `index`, is a copy of a PUBLISH an earlier stream
/// also received (see the module rules).
fn is_copy(subscriptions: &[Subscribed], index: usize, message: &Message) -> bool {
    let earlier = &subscriptions[..index];
    let own = subscriptions[index].stream.filter();
    if earlier.iter().any(|s| s.stream.filter() == own) {
        return true;
    }
    if message.properties.subscription_identifiers.len() == 1 {
        return false;
    }
    earlier
        .iter()
        .any(|s| s.stream.filter().matches(&message.topic))
}

fn not_connected() -> String {
    "not connected; use 'connect [URL]' first".to_owned()
}

/// "3.1", "3.1.1" or "5.0".
fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

/// What to tell the user when a connect fails.
fn connect_error(err: &ConnectError, target: &Target) -> String {
    let server = target.server();
    let detail = std::error::Error::source(err)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    match err.kind() {
        ConnectErrorKind::Refused(code) => {
            let hint = match code {
                ReasonCode::UnsupportedProtocolVersion => {
                    "; try another version, e.g. 'connect -V 311'"
                }
                ReasonCode::ClientIdentifierNotValid => "; choose another client id with --id",
                ReasonCode::BadUserNameOrPassword | ReasonCode::NotAuthorized => {
                    "; check --user and --password"
                }
                ReasonCode::ServerUnavailable | ReasonCode::ServerBusy => "; try again later",
                _ => "",
            };
            format!("connection refused by {server}: {code:?}{hint}")
        }
        ConnectErrorKind::Io => format!(
            "cannot connect to {server}{detail}; is a broker running there? 'connect HOST:PORT' \
             tries another"
        ),
        ConnectErrorKind::TimedOut => format!(
            "no answer from {server}{detail}; check host and port, and that it is an MQTT \
             listener"
        ),
        ConnectErrorKind::InvalidOptions => format!("cannot connect: {err}"),
        _ => format!("connecting to {server} failed: {err}"),
    }
}
