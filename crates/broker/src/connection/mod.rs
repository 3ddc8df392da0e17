//! The connection task: owns one client's socket for its whole life.
//!
//! It runs the CONNECT handshake, then loops: read and decode packets into the
//! [`Session`], pull deliveries from the mailbox while the in-flight window has room,
//! carry out the session's [`Action`](crate::session::Action)s, and write everything produced in one wake-up as one
//! batch. Reading pauses while the write buffer is over its high-water mark, so a client that
//! does not read cannot make the broker buffer without bound. When the connection ends it
//! publishes the will when the standard says so and hands the session back to the registry.
//!
//! With a store, bytes queued after a change that must be durable (a QoS 1/2 message queued
//! for a persistent session, a QoS 2 state change, a subscription) are held behind
//! a gate until the store's barrier says the change is on disk; the bytes before the gate
//! go out meanwhile. A store that fails ends the connection without the held bytes, so no
//! acknowledgement is ever sent for what was not stored.
//!
//! This module has the connection's life (handshake, session claim, end, will, release);
//! `main_loop` has the loop in between.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use tern_codec::{Connect, DecodeError, Packet, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::auth;
use crate::auth::connect::Authenticated;
use crate::auth::reauth::Reauth;
use crate::clock::now;
use crate::handshake::{self, Accepted, HandshakeError};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::problem::Problems;
use crate::registry::Claim;
use crate::session::Session;

mod main_loop;
use main_loop::Connection;

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
