//! The connection task: owns one client's socket for its whole life.
//!
//! It runs the CONNECT handshake, then, each time it wakes: reads and decodes packets into
//! the [`Session`], pulls deliveries from the mailbox while the in-flight window has room,
//! carries out the session's [`Action`](crate::session::Action)s, and writes everything
//! produced in one wake-up as one batch. Reading pauses while the write buffer is over its high-water mark, so a client that
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
//! `link` has the waiting and the I/O in between, `steps` the work each wake-up does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tern_codec::{Connect, DecodeError, Packet, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn, Instrument};

use crate::auth;
use crate::auth::connect::Authenticated;
use crate::auth::reauth::Reauth;
use crate::clock::now;
use crate::handshake::{self, Accepted, HandshakeError};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::parking::Parked;
use crate::registry::Claim;
use crate::session::Session;

mod link;
mod resting;
mod steps;
use link::Link;
use resting::Resting;
use steps::Connection;

/// Why a connection's link ended.
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

/// A boxed phase of a connection's life.
type Phase<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A stream a connection can run over. A parked connection's socket leaves tokio while it
/// waits (see [`crate::parking`]).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sized + 'static {
    /// The socket out of tokio's reactor, to be parked.
    fn into_std(self) -> std::io::Result<std::net::TcpStream>;
    /// The socket back in tokio's reactor (on the runtime's thread).
    fn from_std(stream: std::net::TcpStream) -> std::io::Result<Self>;
    /// The client's address, for log events.
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr>;
}

impl Transport for tokio::net::TcpStream {
    fn into_std(self) -> std::io::Result<std::net::TcpStream> {
        tokio::net::TcpStream::into_std(self)
    }

    fn from_std(stream: std::net::TcpStream) -> std::io::Result<Self> {
        tokio::net::TcpStream::from_std(stream)
    }

    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        tokio::net::TcpStream::peer_addr(self)
    }
}

/// Serves one client connection until it ends. `held` (the connection's slot under the
/// connection limit, say) is dropped when it ends.
///
/// The future is a few words: each phase is boxed and freed when it ends, and the long
/// middle one is a `Link` whose waits are not stored futures (see its module), so an
/// idle connection costs its session, its link and tokio's task and socket registration.
pub fn serve<S, H>(
    stream: S,
    peer: std::net::SocketAddr,
    hub: Arc<Hub>,
    held: H,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Transport,
    H: Send + Unpin + 'static,
{
    // At debug level only: a span costs memory while it lives, so only the short
    // handshake has one. Events after it name the client themselves.
    let span = tracing::debug_span!("connection", %peer);
    Served::Handshake(Box::pin(
        handshake(stream, peer, hub, held).instrument(span),
    ))
}

/// The connection task's future: which phase the connection is in.
enum Served<S, H> {
    Handshake(Phase<Option<Box<Link<S, H>>>>),
    Linked(Box<Link<S, H>>),
    Ending(Phase<()>),
    Done,
}

impl<S, H> Future for Served<S, H>
where
    S: Transport,
    H: Send + Unpin + 'static,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            *self = match std::mem::replace(&mut *self, Served::Done) {
                Served::Handshake(mut handshake) => match handshake.as_mut().poll(cx) {
                    Poll::Ready(Some(link)) => Served::Linked(link),
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => {
                        *self = Served::Handshake(handshake);
                        return Poll::Pending;
                    }
                },
                Served::Linked(mut link) => match Pin::new(&mut *link).poll(cx) {
                    Poll::Ready(end) => Served::Ending(ending(link, end)),
                    // Parked: the task ends, the parking spawns the link again.
                    Poll::Pending if link.park => match park(link) {
                        Ok(()) => return Poll::Ready(()),
                        Err((link, end)) => Served::Ending(ending(link, end)),
                    },
                    Poll::Pending => {
                        *self = Served::Linked(link);
                        return Poll::Pending;
                    }
                },
                Served::Ending(mut end) => match end.as_mut().poll(cx) {
                    Poll::Ready(()) => return Poll::Ready(()),
                    Poll::Pending => {
                        *self = Served::Ending(end);
                        return Poll::Pending;
                    }
                },
                Served::Done => return Poll::Ready(()),
            };
        }
    }
}

/// Hands an idle link to the parking: its socket leaves tokio and its task ends. The link
/// and the reason to end it if its socket could not be taken out of tokio.
#[allow(clippy::result_large_err)]
fn park<S, H>(mut link: Box<Link<S, H>>) -> Result<(), (Box<Link<S, H>>, End)>
where
    S: Transport,
    H: Send + Unpin + 'static,
{
    link.park = false;
    let (Some(parking), Some(stream)) = (link.conn.hub.parking.clone(), link.stream.take()) else {
        return Err((link, End::Socket(None)));
    };
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(e) => return Err((link, End::Socket(Some(e)))),
    };
    let mailbox = link.session.state().mailbox.clone();
    let deadline = link.session.next_timeout();
    mailbox.set_parked();
    parking.park(
        Box::new(Resting::from_link(*link)),
        stream,
        &mailbox,
        deadline,
    );
    Ok(())
}

impl<S, H> Parked for Resting<S, H>
where
    S: Transport,
    H: Send + Unpin + 'static,
{
    fn resume(self: Box<Self>, stream: std::net::TcpStream) {
        let served = match S::from_std(stream) {
            Ok(stream) => Served::Linked(Box::new(self.into_link(Some(stream)))),
            Err(e) => {
                let link = Box::new(self.into_link(None));
                Served::Ending(ending(link, End::Socket(Some(e))))
            }
        };
        tokio::spawn(served);
    }
}

/// Reads and answers the CONNECT, authenticates, claims the session and queues the
/// CONNACK: the link, or `None` if the connection ended here.
async fn handshake<S, H>(
    mut stream: S,
    peer: std::net::SocketAddr,
    hub: Arc<Hub>,
    held: H,
) -> Option<Box<Link<S, H>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &hub.config.limits;
    // CONNECT and any authentication exchange after it share the connect timeout.
    let deadline = tokio::time::Instant::now() + limits.connect_timeout();
    let mut rbuf = BytesMut::new();
    let connect = match handshake::read_connect(&mut stream, &mut rbuf, limits, deadline).await {
        Ok(connect) => connect,
        Err(HandshakeError::Io(_)) => return None,
        Err(e) => {
            info!(%peer, "connection refused: {e}");
            return None;
        }
    };
    let connection = hub.next_connection_id();
    let mut accepted = match handshake::accept(&connect, &hub.config, connection) {
        Ok(accepted) => accepted,
        Err(failure) => {
            info!(%peer, client_id = %connect.client_id, reason = ?failure.reason, "CONNECT refused: {}", failure.why);
            handshake::refuse(&mut stream, &connect, failure).await;
            return None;
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
            return None;
        }
    };
    // [MQTT-3.2.2-16]: an assigned identifier is one no session has.
    while accepted.assigned && hub.registry.contains(&accepted.client_id) {
        accepted.client_id = handshake::assigned_id(hub.next_connection_id());
    }
    let claim = hub
        .registry
        .claim(
            accepted.client_id.clone(),
            connect.clean_start,
            accepted.expiry_interval,
            connection,
        )
        .await;
    let hello = Hello {
        connect,
        accepted,
        authenticated,
    };
    let (session, conn) = start(hub, hello, claim);
    Some(Box::new(Link::new(
        stream, rbuf, session, conn, connection, held,
    )))
}

/// What the handshake settled.
struct Hello {
    connect: Box<Connect>,
    accepted: Accepted,
    authenticated: Option<Authenticated>,
}

/// The end of a connection as a boxed phase, in a debug-level span naming the client (the
/// span lives only as long as the end: an idle connection does not keep one).
fn ending<S, H>(link: Box<Link<S, H>>, end: End) -> Phase<()>
where
    S: Transport,
    H: Send + 'static,
{
    let peer = link.stream.as_ref().and_then(|s| s.peer_addr().ok());
    let peer = peer.map_or_else(|| "?".to_string(), |peer| peer.to_string());
    let client_id = link.session.state().client_id.clone();
    let span = tracing::debug_span!("connection", %peer, %client_id);
    Box::pin(finish(link, end, peer).instrument(span))
}

/// Ends a connection: tells the client why when the standard lets it, writes out what may
/// still go, publishes the will when the standard says so, and releases the session.
async fn finish<S, H>(mut link: Box<Link<S, H>>, end: End, peer: String)
where
    S: Transport,
{
    let Link {
        stream,
        conn,
        session,
        connection,
        ..
    } = &mut *link;
    let problems = session.problems();
    let version = conn.version;
    let client_id = session.state().client_id.clone();
    let publish_will = match &end {
        End::Session {
            reason,
            rule,
            publish_will,
        } => {
            match rule {
                Some(rule) => {
                    warn!(%client_id, %peer, ?reason, "disconnecting: {rule}")
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
            warn!(%client_id, %peer, "disconnecting: {error}");
            if version.is_v5() {
                conn.queue(&problems.disconnect(error.reason_code(), &error.to_string()));
            }
            true
        }
        End::TakenOver => {
            info!(%client_id, %peer, "session taken over by a new connection");
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
                %client_id,
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
    match end {
        End::Shutdown => conn.stop_waiting(),
        _ => conn.finish_waiting(&client_id).await,
    }
    if let Some(stream) = stream {
        if !matches!(end, End::Socket(_)) {
            conn.end_step(session);
            conn.flush(stream).await;
        }
        let _ = stream.shutdown().await;
    }
    let hub = conn.hub.clone();
    let connection = *connection;
    hub.metrics.client_disconnected();

    let Link { mut session, .. } = *link;
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
/// and queues the CONNACK.
fn start(hub: Arc<Hub>, hello: Hello, claim: Claim) -> (Session, Connection) {
    let Hello {
        connect,
        accepted,
        authenticated,
    } = hello;
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
        %client_id,
        ?version,
        clean_start,
        session_present = claim.session_present,
        "connected"
    );
    hub.metrics.client_connected();
    Metrics::add(&hub.metrics.messages_received, 1);
    let mut conn = Connection {
        hub,
        version,
        reauth: authenticated.as_ref().map(|a| Box::new(Reauth::new(a))),
        work: None,
    };
    conn.queue(&Packet::ConnAck(tern_codec::ConnAck {
        session_present: claim.session_present,
        reason_code: ReasonCode::Success,
        properties,
    }));
    if claim.session_present {
        session.resume(now());
    }
    (session, conn)
}

#[cfg(test)]
mod tests;
