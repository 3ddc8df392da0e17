//! The connection task: owns one client's socket for its whole life.
//!
//! It runs the CONNECT handshake, then loops: read and decode packets into the
//! [`Session`], pull deliveries from the mailbox while the in-flight window has room,
//! carry out the session's [`Action`]s, and write everything produced in one wake-up as one
//! batch. Reading pauses while the write buffer is over its high-water mark, so a client that
//! does not read cannot make the broker buffer without bound. When the connection ends it
//! publishes the will when the standard says so and hands the session back to the registry.
//!
//! With a store, bytes queued after a change that must be durable (a QoS 1/2 message queued
//! for a persistent session, a QoS 2 state change, a subscription) are held behind
//! a gate until the store's barrier says the change is on disk; the bytes before the gate
//! go out meanwhile. A store that fails ends the connection without the held bytes, so no
//! acknowledgement is ever sent for what was not stored.

use std::sync::Arc;
use std::time::Instant;

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};
use tern_codec::{Connect, DecodeError, Packet, ProtocolVersion, ReasonCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::auth;
use crate::auth::connect::Authenticated;
use crate::auth::reauth::Reauth;
use crate::clock::now;
use crate::handshake::{self, Accepted, HandshakeError};
use crate::hub::{Hub, Waiting};
use crate::metrics::Metrics;
use crate::outbox::{Opened, Outbox};
use crate::problem::Problems;
use crate::registry::Claim;
use crate::session::{Action, Session};

/// Stop reading while this much is waiting to be written.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Deliveries taken from the mailbox under one lock.
const MAILBOX_BATCH: usize = 64;
/// Read buffer growth step, and the write buffer's first allocation.
const READ_CHUNK: usize = 4096;
/// A read this small that leaves nothing undecoded gives the read buffer back: an idle
/// connection holds no buffer between its packets (a busy one keeps its buffer).
const SMALL_READ: usize = 256;

/// Why the main loop ended.
enum End {
    /// The session closed the connection (DISCONNECT received, or a violation it queued).
    Session {
        reason: ReasonCode,
        rule: Option<&'static str>,
        publish_will: bool,
    },
    /// The client closed the socket or it failed: the will is published [MQTT-3.1.2-8].
    Socket(Option<std::io::Error>),
    /// The client sent bytes that are not a valid packet.
    Malformed(DecodeError),
    /// Another connection took the session over [MQTT-3.1.4-3].
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
    /// The store could not make a change durable.
    Store,
}

/// Serves one client connection until it ends.
pub async fn serve<S>(
    mut stream: S,
    peer: std::net::SocketAddr,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &hub.config.limits;
    // CONNECT and any authentication exchange after it share the connect timeout.
    let deadline = tokio::time::Instant::now() + limits.connect_timeout();
    let mut rbuf = BytesMut::new();
    let connect = match handshake::read_connect(&mut stream, &mut rbuf, limits, deadline).await {
        Ok(connect) => connect,
        Err(HandshakeError::Io(_)) => return,
        Err(e) => {
            info!(%peer, "connection refused: {e}");
            return;
        }
    };
    let connection = hub.next_connection_id();
    let mut accepted = match handshake::accept(&connect, &hub.config, connection) {
        Ok(accepted) => accepted,
        Err(failure) => {
            info!(%peer, client_id = %connect.client_id, reason = ?failure.reason, "CONNECT refused: {}", failure.why);
            handshake::refuse(&mut stream, &connect, failure).await;
            return;
        }
    };
    let max_packet_size = limits.max_packet_size as usize;
    let authenticated = match auth::connect::authenticate(
        &mut stream,
        &mut rbuf,
        &connect,
        &hub.auth,
        deadline,
        max_packet_size,
    )
    .await
    {
        Ok(authenticated) => authenticated,
        Err(e) => {
            info!(%peer, client_id = %connect.client_id, "authentication ended: {e}");
            return;
        }
    };
    // [MQTT-3.2.2-16]: an assigned identifier is one no session has.
    while accepted.assigned && hub.registry.contains(&accepted.client_id) {
        accepted.client_id = handshake::assigned_id(hub.next_connection_id());
    }
    // At debug level only: a span lives as long as its connection and costs about 400
    // bytes of an idle connection's memory. Events above debug name the client themselves.
    let span = tracing::debug_span!("connection", %peer, client_id = %accepted.client_id);
    let hello = Box::new(Hello {
        connect,
        accepted,
        authenticated,
        connection,
        peer,
    });
    connected(stream, rbuf, hub, hello, shutdown)
        .instrument(span)
        .await;
}

/// What the handshake settled, boxed so that the connection task does not carry it: an
/// idle connection's memory is mostly its task.
struct Hello {
    connect: Box<Connect>,
    accepted: Accepted,
    authenticated: Option<Authenticated>,
    connection: u64,
    peer: std::net::SocketAddr,
}

/// A claimed session, ready to run.
struct Started<'a> {
    session: Session,
    conn: Connection<'a>,
    /// Cancelled when another connection takes the session over.
    kick: CancellationToken,
    client_id: Arc<str>,
    problems: Problems,
    connection: u64,
}

/// Serves a client whose CONNECT was accepted: claims its session, answers CONNACK, runs the
/// main loop, and at the end publishes the will and releases the session.
async fn connected<S>(
    stream: S,
    mut rbuf: BytesMut,
    hub: Arc<Hub>,
    hello: Box<Hello>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let claim = hub
        .registry
        .claim(
            hello.accepted.client_id.clone(),
            hello.connect.clean_start,
            hello.accepted.expiry_interval,
            hello.connection,
        )
        .await;
    let Started {
        mut session,
        mut conn,
        kick,
        client_id,
        problems,
        connection,
    } = start(&hub, hello, claim);
    let version = conn.version;
    if rbuf.is_empty() {
        // The handshake's buffer is not kept: the main loop allocates when bytes arrive.
        rbuf = BytesMut::new();
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let end = conn
        .run(
            &mut reader,
            &mut writer,
            &mut rbuf,
            &mut session,
            &kick,
            &shutdown,
        )
        .await;
    drop(rbuf);

    let publish_will = match &end {
        End::Session {
            reason,
            rule,
            publish_will,
        } => {
            match rule {
                Some(rule) => {
                    warn!(client_id = %conn.client_id, peer = %conn.peer, ?reason, "disconnecting: {rule}")
                }
                None => debug!(?reason, "client disconnected"),
            }
            *publish_will
        }
        End::Socket(error) => {
            debug!(?error, "socket closed");
            true
        }
        End::Malformed(error) => {
            warn!(client_id = %conn.client_id, peer = %conn.peer, "disconnecting: {error}");
            if version.is_v5() {
                conn.queue(&problems.disconnect(error.reason_code(), &error.to_string()));
            }
            true
        }
        End::TakenOver => {
            info!(client_id = %conn.client_id, peer = %conn.peer, "session taken over by a new connection");
            if version.is_v5() {
                conn.queue(&problems.disconnect(
                    ReasonCode::SessionTakenOver,
                    "[MQTT-3.1.4-3] another connection took this session over",
                ));
            }
            true
        }
        End::Shutdown => {
            if version.is_v5() {
                conn.queue(&problems.disconnect(
                    ReasonCode::ServerShuttingDown,
                    "the server is shutting down",
                ));
            }
            true
        }
        End::Store => {
            warn!(
                client_id = %conn.client_id,
                "disconnecting: the store failed, nothing more can be acknowledged"
            );
            if version.is_v5() {
                conn.queue(&problems.disconnect(
                    ReasonCode::UnspecifiedError,
                    "the server's store failed; nothing more can be acknowledged",
                ));
            }
            true
        }
    };
    conn.stop_waiting();
    if !matches!(end, End::Socket(_)) {
        conn.end_step(&mut session);
        conn.flush(&mut writer).await;
    }
    let _ = writer.shutdown().await;
    hub.metrics.client_disconnected();

    let will = session.take_will().filter(|_| publish_will);
    let released = hub
        .registry
        .release(connection, session.into_state(), will, now());
    if let Some(will) = released.will {
        debug!(topic = %will.topic, "publishing will");
        hub.publish_will(&client_id, will);
    }
    if let Some(ended) = released.ended {
        hub.end_session(ended);
    }
}

/// Sets a claimed session up: publishes what the claim left to publish, builds the session
/// and queues the CONNACK. Not async, so that nothing here stays in the connection's task.
#[expect(
    clippy::boxed_local,
    reason = "the box is freed here, not when the connection ends: moved out of in the \
              caller, it would stay allocated for the connection's life"
)]
fn start(hub: &Hub, hello: Box<Hello>, claim: Claim) -> Started<'_> {
    let Hello {
        connect,
        accepted,
        authenticated,
        connection,
        peer,
    } = *hello;
    let version = connect.protocol;
    let client_id = accepted.client_id.clone();
    if let Some(will) = claim.will {
        hub.publish_will(&client_id, will);
    }
    if let Some(discarded) = claim.discarded {
        hub.end_session(discarded);
    }
    let mut properties = Default::default();
    if version.is_v5() {
        properties =
            handshake::connack_properties(&connect, &accepted, authenticated.as_ref(), &hub.config);
    }
    let session_limits = handshake::session_limits(&connect, &hub.config);
    let problems = Problems::of(&connect);
    let clean_start = connect.clean_start;
    let mut session = Session::new(
        claim.state,
        version,
        accepted.keep_alive,
        connect.will,
        session_limits,
        now(),
    );
    debug!(
        ?version,
        clean_start,
        session_present = claim.session_present,
        "connected"
    );
    hub.metrics.client_connected();
    Metrics::add(&hub.metrics.messages_received, 1);
    let mut conn = Connection {
        hub,
        client_id: client_id.clone(),
        peer,
        version,
        out: Outbox::default(),
        sending: BytesMut::new(),
        waiting: VecDeque::new(),
        waiting_since: now(),
        durable: false,
        reauth: authenticated.as_ref().map(Reauth::new),
        sent: (0, 0),
    };
    conn.queue(&Packet::ConnAck(tern_codec::ConnAck {
        session_present: claim.session_present,
        reason_code: ReasonCode::Success,
        properties,
    }));
    if claim.session_present {
        session.resume(now());
    }
    Started {
        session,
        conn,
        kick: claim.kick,
        client_id,
        problems,
        connection,
    }
}

/// The parts of a connection the main loop needs besides the socket.
struct Connection<'a> {
    hub: &'a Hub,
    /// Who, for log events.
    client_id: Arc<str>,
    /// Where from, for log events.
    peer: std::net::SocketAddr,
    version: ProtocolVersion,
    /// What goes to the client, with its held parts.
    out: Outbox,
    /// Bytes taken from `out` that are being written.
    sending: BytesMut,
    /// Routed deliveries waiting for room in full subscriber queues, in order.
    waiting: VecDeque<Waiting>,
    /// When the first waiting delivery last made progress.
    waiting_since: Instant,
    /// Set when a routed message gave the store something to make durable.
    durable: bool,
    /// Re-authentication, when the client authenticated with a method at CONNECT.
    reauth: Option<Reauth>,
    /// Packets and PUBLISHes queued in this step, added to the shared counters at its end.
    sent: (u64, u64),
}

impl Connection<'_> {
    /// Bytes queued for the client and not yet written.
    fn pending_out(&self) -> usize {
        self.out.len() + self.sending.len()
    }

    /// Encodes a packet into the write buffer.
    fn queue(&mut self, packet: &Packet) {
        let buf = self.out.buf_mut();
        // One allocation for a batch of small packets, not one growth step per packet.
        if buf.capacity() - buf.len() < READ_CHUNK / 16 {
            buf.reserve(READ_CHUNK);
        }
        if packet.encode(self.version, buf).is_ok() {
            self.sent.0 += 1;
            if matches!(packet, Packet::Publish(_)) {
                self.sent.1 += 1;
            }
        }
    }

    /// Ends a processing step: what it queued waits behind a store barrier if it logged a
    /// change its acknowledgements promise, and behind the routing gate while deliveries
    /// wait for room.
    fn end_step(&mut self, session: &mut Session) {
        let (packets, publishes) = std::mem::take(&mut self.sent);
        Metrics::add(&self.hub.metrics.messages_sent, packets);
        Metrics::add(&self.hub.metrics.publish_sent, publishes);
        let durable = session.take_durable() | std::mem::take(&mut self.durable);
        let barrier = match (durable, &self.hub.store) {
            (true, Some(store)) => Some(store.barrier()),
            _ => None,
        };
        self.out.end_step(barrier, !self.waiting.is_empty());
    }

    /// Queues waiting deliveries while their subscribers have room; once none waits, the
    /// routing gate opens (behind a store barrier if they went to persistent sessions). A
    /// delivery that has waited `limits.publish_wait` is dropped and counted.
    fn retry_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let before = self.waiting.len();
        let mut stored = self.hub.retry(&mut self.waiting);
        let wait = std::time::Duration::from_secs(self.hub.config.limits.publish_wait);
        if self.waiting.len() < before {
            self.waiting_since = now();
        } else if now().saturating_duration_since(self.waiting_since) >= wait {
            warn!(
                client_id = %self.client_id,
                "a subscriber's queue stayed full for {wait:?}: dropping its copy"
            );
            self.hub.give_up(&mut self.waiting);
            stored |= self.hub.retry(&mut self.waiting);
            self.waiting_since = now();
        }
        if self.waiting.is_empty() {
            let barrier = match (stored, &self.hub.store) {
                (true, Some(store)) => Some(store.barrier()),
                _ => None,
            };
            self.out.routed(barrier);
        } else {
            self.durable |= stored;
        }
    }

    /// As the connection ends, queues what still waits without waiting more (dropping
    /// what does not fit): the messages were routed before the publisher went away.
    fn stop_waiting(&mut self) {
        let limits = self.hub.queue_limits();
        let mut stored = false;
        for (mailbox, delivery) in self.waiting.drain(..) {
            let persistent = mailbox.is_persistent() && delivery.qos != tern_codec::QoS::AtMostOnce;
            match mailbox.push(delivery, limits) {
                crate::mailbox::Pushed::Dropped => {
                    Metrics::add(&self.hub.metrics.publish_dropped, 1)
                }
                _ => stored |= persistent,
            }
        }
        self.durable |= stored;
    }

    /// Writes out the write buffer, best effort, on the way out: held bytes only once their
    /// barriers answer.
    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) {
        let limit = std::time::Duration::from_secs(1);
        self.out.settle(limit).await;
        let rest = self.out.take_writable();
        let write = async {
            stream.write_all(&self.sending).await?;
            stream.write_all(&rest).await?;
            stream.flush().await
        };
        if tokio::time::timeout(limit, write).await.is_ok() {
            let n = self.sending.len() + rest.len();
            Metrics::add(&self.hub.metrics.bytes_sent, n as u64);
        }
        self.sending.clear();
        self.out.clear();
    }

    /// Carries out the session's actions. Returns the end if one of them closes.
    fn run_actions(&mut self, session: &mut Session) -> Option<End> {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Send(packet) => self.queue(&packet),
                Action::Publish(message) => {
                    if self.waiting.is_empty() {
                        self.waiting_since = now();
                    }
                    self.durable |= self.hub.route(message, &mut self.waiting);
                }
                Action::Subscribe {
                    subscription,
                    existed,
                } => self.hub.subscribe(session.state(), &subscription, existed),
                Action::Unsubscribe(filter) => {
                    let state = session.state();
                    self.hub
                        .router
                        .unsubscribe(&filter, &state.client_id, &state.mailbox);
                }
                Action::Close {
                    reason,
                    rule,
                    publish_will,
                } => {
                    return Some(End::Session {
                        reason,
                        rule,
                        publish_will,
                    });
                }
            }
        }
        None
    }

    /// Hands one delivery to the session, counting it if the session drops it.
    fn deliver(&self, session: &mut Session, delivery: crate::message::Delivery, now: Instant) {
        if !session.deliver(now, delivery) {
            Metrics::add(&self.hub.metrics.publish_dropped, 1);
        }
    }

    /// Moves deliveries from the mailbox into the session while the window and the write
    /// buffer have room.
    fn pull_mailbox(&mut self, session: &mut Session) {
        let mailbox = session.state().mailbox.clone();
        let now = now();
        // Allocated only when the mailbox has something for the session.
        let mut batch = Vec::new();
        while self.pending_out() < WRITE_HIGH_WATER {
            let free = session.window_free();
            if free == 0 {
                match mailbox.pop_qos0() {
                    Some(delivery) => self.deliver(session, delivery, now),
                    None => break,
                }
                continue;
            }
            mailbox.pop_into(free.min(MAILBOX_BATCH), &mut batch);
            if batch.is_empty() {
                break;
            }
            for delivery in batch.drain(..) {
                self.deliver(session, delivery, now);
            }
            if self.run_actions(session).is_some() {
                break;
            }
        }
    }

    async fn run<R, W>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        rbuf: &mut BytesMut,
        session: &mut Session,
        kick: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> End
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let max_packet_size = self.hub.config.limits.max_packet_size as usize;
        let mailbox = session.state().mailbox.clone();
        // Set when the last read filled the read buffer: more is probably waiting.
        let mut read_more = false;
        // Packets that arrived together with the CONNECT.
        if let Err(end) = self.decode_all(rbuf, session, max_packet_size) {
            return end;
        }
        loop {
            if let Some(end) = self.run_actions(session) {
                return end;
            }
            self.pull_mailbox(session);
            if let Some(end) = self.run_actions(session) {
                return end;
            }
            self.retry_waiting();
            self.end_step(session);
            if self.sending.is_empty() {
                self.sending = self.out.take_writable();
            }
            let deadline = session.next_timeout();
            // A publisher whose messages wait for room is not read: that is the back
            // pressure a full subscriber queue puts on it.
            let can_read = self.pending_out() < WRITE_HIGH_WATER && self.waiting.is_empty();
            // Boxed: only a publisher held back by a full queue needs it, and the task
            // would otherwise carry its room in every connection.
            let room = self
                .waiting
                .front()
                .map(|(mailbox, _)| Box::pin(wait_for_room(mailbox.clone())));
            let waits_for_room = room.is_some();
            // The buffer grows while reads fill it or a packet is partly read; a released
            // one gets only the 64 bytes `read_buf` takes until then.
            if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 && (read_more || !rbuf.is_empty()) {
                rbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                read = reader.read_buf(rbuf), if can_read => match read {
                    Ok(0) => return End::Socket(None),
                    Ok(n) => {
                        Metrics::add(&self.hub.metrics.bytes_received, n as u64);
                        read_more = rbuf.len() == rbuf.capacity();
                        if let Err(end) = self.decode_all(rbuf, session, max_packet_size) {
                            return end;
                        }
                        if rbuf.is_empty() && !read_more && n < SMALL_READ {
                            *rbuf = BytesMut::new();
                        }
                    }
                    Err(e) => return End::Socket(Some(e)),
                },
                written = writer.write(&self.sending), if !self.sending.is_empty() => match written {
                    Ok(n) => {
                        self.sending.advance(n);
                        Metrics::add(&self.hub.metrics.bytes_sent, n as u64);
                        if self.sending.is_empty() {
                            // All written: an idle connection keeps no write buffer.
                            self.sending = BytesMut::new();
                            self.out.release_if_empty();
                        }
                    }
                    Err(e) => return End::Socket(Some(e)),
                },
                opened = self.out.next_opened(), if self.out.waits_for_store() => {
                    if opened == Opened::StoreFailed {
                        return End::Store;
                    }
                }
                _ = either_pending(room), if waits_for_room => {}
                _ = mailbox.notified(), if self.pending_out() < WRITE_HIGH_WATER => {}
                _ = sleep_until(deadline), if deadline.is_some() => {
                    session.handle_timeout(now());
                }
                _ = kick.cancelled() => return End::TakenOver,
                _ = shutdown.cancelled() => return End::Shutdown,
            }
        }
    }

    /// Decodes every complete packet in the read buffer into the session.
    fn decode_all(
        &mut self,
        rbuf: &mut BytesMut,
        session: &mut Session,
        max: usize,
    ) -> Result<(), End> {
        // One clock read and one update of the shared counters per batch, not per packet.
        let now = now();
        let (mut packets, mut publishes) = (0, 0);
        let result = loop {
            match tern_codec::decode(rbuf, self.version, max) {
                Ok(Some(packet)) => {
                    packets += 1;
                    if matches!(packet, Packet::Publish(_)) {
                        publishes += 1;
                    }
                    match (packet, &mut self.reauth) {
                        (Packet::Auth(auth), Some(reauth)) => {
                            session.received(now);
                            match reauth.handle(auth) {
                                Ok(reply) => self.queue(&Packet::Auth(reply)),
                                Err(failure) => session.fail(failure.reason, failure.why),
                            }
                        }
                        (packet, _) => session.handle_packet(now, packet),
                    }
                    if session.is_closed() {
                        break Ok(());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(End::Malformed(e)),
            }
        };
        Metrics::add(&self.hub.metrics.messages_received, packets);
        Metrics::add(&self.hub.metrics.publish_received, publishes);
        result
    }
}

/// Waits until the full queue a delivery waits for may have room.
async fn wait_for_room(mailbox: Arc<crate::mailbox::Mailbox>) {
    mailbox
        .wait_for_room(std::time::Duration::from_millis(100))
        .await;
}

/// The future's output, or never when there is none.
async fn either_pending<F: std::future::Future>(future: Option<F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;

    use crate::config::Config;
    use crate::hub::Hub;

    /// Every idle connection is one task: its future is most of what an idle connection
    /// costs, so it is kept small (large parts are boxed, a CONNECT is not kept).
    #[tokio::test]
    async fn a_connection_task_is_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (stream, peer) = listener.accept().await.expect("accept");
        let hub = Arc::new(Hub::new(Config::default()));
        let task = super::serve(stream, peer, hub, CancellationToken::new());
        let size = std::mem::size_of_val(&task);
        // 2,080 bytes when written (it was 4,400 with the CONNECT and the setup's locals
        // kept in the task); docs/PERFORMANCE.md has the whole per-connection figure.
        assert!(size <= 2_400, "a connection's task takes {size} bytes");
    }
}
