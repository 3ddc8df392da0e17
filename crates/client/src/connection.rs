//! The connection task: the thin async shell around [`Protocol`].
//!
//! One task per client owns the socket, the timers and the channels. Each turn it waits for
//! one input (a command from a [`Client`](crate::Client), a dropped
//! [`Subscription`](crate::Subscription), bytes from the server, the dial finishing, the
//! reconnect delay, room in a full subscription stream or a protocol deadline), feeds it to
//! the protocol core, hands outcomes and messages to their waiters (releasing the
//! acknowledgements of messages placed), and writes everything the core wants written in one
//! batch. A lost connection is redialed after the [`Delays`] backoff.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use tern_codec::{Publish, QoS, ReasonCode, SubscriptionOptions, TopicFilter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Sleep;

use crate::backoff::Delays;
use crate::delivery::Deliveries;
use crate::error::{ConnectError, LinkError, PublishError, SubscribeError};
use crate::protocol::{Event, Protocol, SubKey, Token};
use crate::state::ConnectionState;
use crate::store::Store;
use crate::subscription::Sink;
use crate::transport::{self, TlsSetup, Transport};

/// A request from a client handle.
#[derive(Debug)]
pub(crate) enum Command {
    /// Publish; answered when done as the QoS promises.
    Publish {
        publish: Publish,
        reply: oneshot::Sender<Result<ReasonCode, PublishError>>,
    },
    /// Subscribe stream `key`; answered with the granted QoS.
    Subscribe {
        key: SubKey,
        filter: TopicFilter,
        options: SubscriptionOptions,
        sink: Sink,
        reply: oneshot::Sender<Result<QoS, SubscribeError>>,
    },
    /// Close the client; answered once DISCONNECT is written.
    Disconnect { reply: oneshot::Sender<()> },
}

/// Where to connect and the timeouts of the shell.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) connect_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_incoming_packet_size: usize,
    /// TLS configuration, when TLS is on.
    pub(crate) tls: Option<TlsSetup>,
    /// Messages kept for a subscription not made yet.
    pub(crate) unrouted_buffer: usize,
}

type DialFuture = Pin<Box<dyn Future<Output = Result<Transport, LinkError>> + Send>>;

/// The network side of the connection.
enum Link {
    /// Waiting out the reconnect delay.
    Waiting(Pin<Box<Sleep>>),
    /// Opening a TCP connection (and the TLS handshake).
    Dialing(DialFuture),
    /// Connected (CONNACK may still be awaited).
    Open {
        stream: Transport,
        read_buf: BytesMut,
    },
    /// Nothing more will be dialed.
    Closed,
}

/// One thing that happened.
enum Input {
    Command(Option<Command>),
    Release(Option<SubKey>),
    Dialed(Result<Transport, LinkError>),
    RetryDue,
    Read(std::io::Result<usize>),
    Timeout,
    /// A full stream has room again.
    Room,
}

/// The state of the connection task.
pub(crate) struct Connection {
    settings: Settings,
    protocol: Protocol,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    releases: mpsc::UnboundedReceiver<SubKey>,
    state: watch::Sender<ConnectionState>,
    first: Option<oneshot::Sender<Result<(), ConnectError>>>,
    delays: Option<Delays>,
    publishes: HashMap<Token, oneshot::Sender<Result<ReasonCode, PublishError>>>,
    subscribes: HashMap<Token, (SubKey, oneshot::Sender<Result<QoS, SubscribeError>>)>,
    deliveries: Deliveries,
    closed_replies: Vec<oneshot::Sender<()>>,
    next_token: u64,
    write_buf: BytesMut,
    store: Option<Store>,
}

/// The current time, from tokio's clock so that tests can pause it.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Connection {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        settings: Settings,
        protocol: Protocol,
        commands: mpsc::Receiver<Command>,
        releases: mpsc::UnboundedReceiver<SubKey>,
        state: watch::Sender<ConnectionState>,
        first: oneshot::Sender<Result<(), ConnectError>>,
        delays: Option<Delays>,
        store: Option<Store>,
    ) -> Self {
        Connection {
            deliveries: Deliveries::new(settings.unrouted_buffer),
            settings,
            protocol,
            commands,
            commands_open: true,
            releases,
            state,
            first: Some(first),
            delays,
            publishes: HashMap::new(),
            subscribes: HashMap::new(),
            closed_replies: Vec::new(),
            next_token: 0,
            write_buf: BytesMut::new(),
            store,
        }
    }

    /// Runs until the client is closed.
    pub(crate) async fn run(mut self) {
        let mut link = self.dial();
        loop {
            let input = self.next_input(&mut link).await;
            let result = self.handle(input, &mut link);
            // Messages placed release their acknowledgements, written by this flush.
            self.dispatch_events();
            let result = result.and(self.flush(&mut link).await);
            self.dispatch_events();
            if let Err(err) = result {
                link = self.link_lost(err);
                self.dispatch_events();
            }
            if self.protocol.is_closed() || matches!(link, Link::Closed) {
                if let Link::Open { mut stream, .. } = link {
                    let _ = stream.shutdown().await;
                }
                self.finish();
                return;
            }
        }
    }

    async fn next_input(&mut self, link: &mut Link) -> Input {
        // Backpressure is the server's in-flight window; reading stops (but for CONNACK)
        // only when far too many messages wait for room.
        let paused = self.deliveries.should_pause();
        self.protocol.set_reading_paused(paused);
        let reading = !paused || !self.protocol.is_connected();
        let waiting = self.deliveries.is_waiting();
        let room = self.deliveries.room();
        let deadline = self.protocol.poll_timeout();
        let commands_open = self.commands_open;
        tokio::select! {
            input = link_input(link), if reading => input,
            () = room, if waiting => Input::Room,
            command = self.commands.recv(), if commands_open => Input::Command(command),
            key = self.releases.recv() => Input::Release(key),
            () = sleep_until(deadline) => Input::Timeout,
        }
    }

    fn handle(&mut self, input: Input, link: &mut Link) -> Result<(), LinkError> {
        match input {
            Input::Command(Some(command)) => self.on_command(command),
            Input::Command(None) => self.commands_open = false,
            Input::Release(Some(key)) => {
                self.deliveries.remove_stream(key);
                self.subscribes.retain(|_, (k, _)| *k != key);
                self.protocol.unsubscribe(key);
            }
            Input::Release(None) => {
                tracing::debug!("every handle dropped: disconnecting");
                self.protocol.disconnect();
            }
            Input::Dialed(Ok(stream)) => {
                *link = Link::Open {
                    stream,
                    read_buf: BytesMut::with_capacity(8192),
                };
                self.protocol.start_connection(now());
            }
            Input::Dialed(Err(err)) => return Err(err),
            Input::RetryDue => *link = self.dial(),
            Input::Read(Ok(0)) => return Err(LinkError::Eof),
            Input::Read(Ok(_)) => return self.decode_packets(link),
            Input::Read(Err(err)) => return Err(err.into()),
            Input::Timeout => return self.protocol.handle_timeout(now()),
            Input::Room => {}
        }
        Ok(())
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { publish, reply } => {
                let token = self.token();
                self.publishes.insert(token, reply);
                self.protocol.publish(token, publish);
            }
            Command::Subscribe {
                key,
                filter,
                options,
                sink,
                reply,
            } => {
                let token = self.token();
                self.subscribes.insert(token, (key, reply));
                self.deliveries.add_stream(key, &filter, sink);
                self.protocol.subscribe(token, key, filter, options);
            }
            Command::Disconnect { reply } => {
                self.closed_replies.push(reply);
                self.protocol.disconnect();
            }
        }
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn decode_packets(&mut self, link: &mut Link) -> Result<(), LinkError> {
        let Link::Open { read_buf, .. } = link else {
            return Ok(());
        };
        let version = self.protocol.version();
        let max = self.settings.max_incoming_packet_size;
        loop {
            let packet = match tern_codec::decode(read_buf, version, max) {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(()),
                Err(err) => return Err(self.protocol.malformed(err)),
            };
            tracing::trace!(packet = ?packet.packet_type(), "received");
            self.protocol.handle_packet(now(), packet)?;
        }
    }

    /// Commits what the protocol recorded for the in-flight store, if there is one. A
    /// failing store is logged; the client goes on without the guarantee.
    fn commit_store(&mut self) {
        let Some(store) = &self.store else {
            return;
        };
        let ops = self.protocol.take_store_ops();
        if ops.is_empty() {
            return;
        }
        if let Err(err) = store.apply(&ops) {
            tracing::error!(error = %err, "in-flight store not updated: messages in flight may not survive a restart");
        }
    }

    /// Writes, in one batch, every packet the protocol has for the link, after committing
    /// the store changes they depend on.
    async fn flush(&mut self, link: &mut Link) -> Result<(), LinkError> {
        self.commit_store();
        let Link::Open { stream, .. } = link else {
            return Ok(());
        };
        let version = self.protocol.version();
        let now = now();
        while let Some(packet) = self.protocol.poll_transmit(now) {
            tracing::trace!(packet = ?packet.packet_type(), "sending");
            if let Err(err) = packet.encode(version, &mut self.write_buf) {
                tracing::warn!(error = %err, packet = ?packet.packet_type(), "packet cannot be encoded; not sent");
            }
        }
        self.commit_store();
        if self.write_buf.is_empty() {
            return Ok(());
        }
        // TLS buffers what it encrypts: flush pushes it to the socket.
        let write = async {
            stream.write_all(&self.write_buf).await?;
            stream.flush().await
        };
        let written = tokio::time::timeout(self.settings.write_timeout, write).await;
        self.write_buf.clear();
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err.into()),
            Err(_) => Err(LinkError::WriteTimeout),
        }
    }

    fn dispatch_events(&mut self) {
        while let Some(event) = self.protocol.poll_event() {
            match event {
                Event::Connected { session_present } => {
                    tracing::info!(session_present, "connected");
                    self.state
                        .send_replace(ConnectionState::Connected { session_present });
                    if let Some(delays) = &mut self.delays {
                        delays.reset();
                    }
                    if let Some(first) = self.first.take() {
                        let _ = first.send(Ok(()));
                    }
                }
                Event::Published((token, result)) => {
                    if let Some(reply) = self.publishes.remove(&token) {
                        let _ = reply.send(result);
                    }
                }
                Event::Subscribed((token, result)) => {
                    if let Some((key, reply)) = self.subscribes.remove(&token) {
                        if result.is_ok() {
                            self.deliveries.confirm(key);
                        } else {
                            self.deliveries.remove_stream(key);
                        }
                        let _ = reply.send(result);
                    }
                }
                Event::Message {
                    targets,
                    message,
                    ack,
                } => self.deliveries.push(targets, message.map(|m| *m), ack),
            }
        }
        for ack in self.deliveries.pump() {
            self.protocol.release_ack(ack);
        }
    }

    /// The connection failed: report it, then close or wait to reconnect.
    fn link_lost(&mut self, err: LinkError) -> Link {
        self.protocol.connection_lost();
        if let Some(first) = self.first.take() {
            tracing::debug!(error = %err, "first connection failed");
            let _ = first.send(Err(err.into_connect_error()));
            self.protocol.disconnect();
            return Link::Closed;
        }
        if self.protocol.is_closed() {
            return Link::Closed;
        }
        match &mut self.delays {
            Some(delays) => {
                let delay = delays.next();
                tracing::warn!(error = %err, ?delay, "connection lost; reconnecting");
                self.state.send_replace(ConnectionState::Disconnected);
                Link::Waiting(Box::pin(tokio::time::sleep(delay)))
            }
            None => {
                tracing::warn!(error = %err, "connection lost; reconnecting is off");
                self.protocol.disconnect();
                Link::Closed
            }
        }
    }

    fn dial(&self) -> Link {
        self.state.send_replace(ConnectionState::Connecting);
        let host = self.settings.host.clone();
        let port = self.settings.port;
        let timeout = self.settings.connect_timeout;
        let tls = self.settings.tls.clone();
        Link::Dialing(Box::pin(async move {
            transport::dial(&host, port, tls.as_ref(), timeout).await
        }))
    }

    /// The client is closed: every waiter and stream learns it.
    fn finish(&mut self) {
        if !self.protocol.is_closed() {
            self.protocol.disconnect();
        }
        self.dispatch_events();
        self.deliveries.close();
        // Committed and closed before anyone learns the client is closed, so that a new
        // client can open the store at once.
        self.commit_store();
        self.store = None;
        self.state.send_replace(ConnectionState::Closed);
        for reply in self.closed_replies.drain(..) {
            let _ = reply.send(());
        }
        tracing::debug!("client closed");
    }
}

/// The next input from the network side.
async fn link_input(link: &mut Link) -> Input {
    match link {
        Link::Waiting(sleep) => {
            sleep.as_mut().await;
            Input::RetryDue
        }
        Link::Dialing(dial) => Input::Dialed(dial.as_mut().await),
        Link::Open { stream, read_buf } => {
            if read_buf.capacity() - read_buf.len() < 1024 {
                read_buf.reserve(8192);
            }
            Input::Read(stream.read_buf(read_buf).await)
        }
        Link::Closed => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
