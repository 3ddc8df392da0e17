//! The steps of a connection's work between its handshake and its end: [`Connection`]
//! decodes packets into the session, pulls deliveries from the mailbox while the in-flight
//! window has room, carries out the session's actions, and queues what one wake-up produced
//! as one batch, holding bytes behind the store's and the routing's gates (see the parent
//! module). [`Link`](super::link::Link) does the waiting and the I/O around them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tern_codec::{EncodeError, Packet, ProtocolVersion, Publish};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::warn;

use super::End;
use crate::auth::reauth::Reauth;
use crate::clock::now;
use crate::hub::{Hub, Waiting};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::session::{Action, Session};

/// Stop reading while this much is waiting to be written.
pub(super) const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Deliveries taken from the mailbox under one lock.
const MAILBOX_BATCH: usize = 64;
/// The write buffer's allocation for a batch of packets.
const WRITE_CHUNK: usize = 4096;

/// The parts of a connection its steps need besides the session and the socket.
pub(super) struct Connection {
    pub(super) hub: Arc<Hub>,
    pub(super) version: ProtocolVersion,
    /// Re-authentication, when the client authenticated with a method at CONNECT.
    pub(super) reauth: Option<Box<Reauth>>,
    /// What the connection holds only while it has work; `None` while it is idle.
    pub(super) work: Option<Box<Work>>,
}

/// The state of a connection's work in progress: buffers, gates and waits. An idle
/// connection has none of it ([`Connection::rest`]).
#[derive(Default)]
pub(super) struct Work {
    /// What goes to the client, with its held parts.
    pub(super) out: Outbox,
    /// Bytes taken from `out` that are being written.
    pub(super) sending: BytesMut,
    /// Bytes read and not yet decoded.
    pub(super) rbuf: BytesMut,
    /// Set when the last read filled the read buffer: more is probably waiting.
    pub(super) read_more: bool,
    /// How much the read buffer grows by when it runs short (0: the first step); doubled
    /// by reads that fill it, halved by reads that use little of it.
    pub(super) read_chunk: usize,
    /// Routed deliveries waiting for room in full subscriber queues, in order.
    pub(super) waiting: VecDeque<Waiting>,
    /// When the first waiting delivery last made progress.
    pub(super) waiting_since: Option<Instant>,
    /// The wait for room in the full queue of the first waiting delivery.
    pub(super) room: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Set when a routed message gave the store something to make durable.
    pub(super) durable: bool,
    /// Packets and PUBLISHes queued in this step, added to the shared counters at its end.
    pub(super) sent: (u64, u64),
}

impl Work {
    /// True when nothing is held: no buffer, gate, wait or count.
    fn is_idle(&self) -> bool {
        self.out.is_idle()
            && self.sending.capacity() == 0
            && self.rbuf.capacity() == 0
            && self.waiting.is_empty()
            && self.room.is_none()
            && !self.durable
            && self.sent == (0, 0)
    }
}

/// The work state in `slot`, made if there is none.
pub(super) fn work(slot: &mut Option<Box<Work>>) -> &mut Work {
    slot.get_or_insert_with(Box::default)
}

impl Connection {
    /// Bytes queued for the client and not yet written.
    pub(super) fn pending_out(&self) -> usize {
        self.work
            .as_ref()
            .map_or(0, |work| work.out.len() + work.sending.len())
    }

    /// Whether routed deliveries wait for room.
    pub(super) fn is_waiting(&self) -> bool {
        self.work
            .as_ref()
            .is_some_and(|work| !work.waiting.is_empty())
    }

    /// Gives back the work state once it holds nothing: an idle connection keeps none.
    pub(super) fn rest(&mut self) {
        if self.work.as_ref().is_some_and(|work| work.is_idle()) {
            self.work = None;
        }
    }

    /// Encodes a packet into the write buffer.
    pub(super) fn queue(&mut self, packet: &Packet) {
        let version = self.version;
        let publishes = u64::from(matches!(packet, Packet::Publish(_)));
        self.queue_with(publishes, |buf| packet.encode(version, buf));
    }

    /// Encodes a PUBLISH into the write buffer (a delivery, not wrapped in a [`Packet`]).
    fn queue_publish(&mut self, publish: &Publish) {
        let version = self.version;
        self.queue_with(1, |buf| publish.encode(version, buf));
    }

    /// Runs `encode` on the write buffer and counts the packet (and `publishes`) once it
    /// succeeded.
    fn queue_with(
        &mut self,
        publishes: u64,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) {
        let work = work(&mut self.work);
        let buf = work.out.buf_mut();
        // One allocation for a batch of small packets, not one growth step per packet.
        if buf.capacity() - buf.len() < WRITE_CHUNK / 16 {
            buf.reserve(WRITE_CHUNK);
        }
        if encode(buf).is_ok() {
            work.sent.0 += 1;
            work.sent.1 += publishes;
        }
    }

    /// Ends a processing step: what it queued waits behind a store barrier if it logged a
    /// change its acknowledgements promise, and behind the routing gate while deliveries
    /// wait for room.
    pub(super) fn end_step(&mut self, session: &mut Session) {
        let durable = session.take_durable();
        if self.work.is_none() && !durable {
            // Nothing was queued, routed or logged.
            return;
        }
        let work = work(&mut self.work);
        let (packets, publishes) = std::mem::take(&mut work.sent);
        Metrics::add(&self.hub.metrics.messages_sent, packets);
        Metrics::add(&self.hub.metrics.publish_sent, publishes);
        let durable = durable | std::mem::take(&mut work.durable);
        let barrier = match (durable, &self.hub.store) {
            (true, Some(store)) => Some(store.barrier()),
            _ => None,
        };
        work.out.end_step(barrier, !work.waiting.is_empty());
    }

    /// Queues waiting deliveries while their subscribers have room; once none waits, the
    /// routing gate opens (behind a store barrier if they went to persistent sessions). A
    /// delivery that has waited `limits.publish_wait` is dropped and counted.
    fn retry_waiting(&mut self, client_id: &str) {
        let Some(work) = self.work.as_mut().filter(|work| !work.waiting.is_empty()) else {
            return;
        };
        let before = work.waiting.len();
        let mut stored = self.hub.retry(&mut work.waiting);
        let wait = std::time::Duration::from_secs(self.hub.config.limits.publish_wait);
        let since = *work.waiting_since.get_or_insert_with(now);
        if work.waiting.len() < before {
            work.waiting_since = Some(now());
            work.room = None;
        } else if now().saturating_duration_since(since) >= wait {
            warn!(
                %client_id,
                "a subscriber's queue stayed full for {wait:?}: dropping its copy"
            );
            self.hub.give_up(&mut work.waiting);
            stored |= self.hub.retry(&mut work.waiting);
            work.waiting_since = Some(now());
            work.room = None;
        }
        if work.waiting.is_empty() {
            let barrier = match (stored, &self.hub.store) {
                (true, Some(store)) => Some(store.barrier()),
                _ => None,
            };
            work.out.routed(barrier);
            work.waiting_since = None;
        } else {
            work.durable |= stored;
        }
    }

    /// As the connection ends, queues what still waits as its subscribers make room, under
    /// the same `limits.publish_wait` as while it ran: the messages came before the client
    /// went away (its DISCONNECT read in the same batch as its last PUBLISHes, say), so
    /// they are delivered, not dropped because the connection ended.
    pub(super) async fn finish_waiting(&mut self, client_id: &str) {
        loop {
            self.retry_waiting(client_id);
            let Some((mailbox, _)) = self.work.as_ref().and_then(|work| work.waiting.front())
            else {
                return;
            };
            let mailbox = mailbox.clone();
            mailbox
                .wait_for_room(std::time::Duration::from_millis(100))
                .await;
        }
    }

    /// As the broker shuts down, queues what still waits without waiting more (dropping
    /// what does not fit): the messages were routed before the connection ended.
    pub(super) fn stop_waiting(&mut self) {
        let Some(work) = self.work.as_mut() else {
            return;
        };
        let limits = self.hub.queue_limits();
        let mut stored = false;
        for (mailbox, delivery) in work.waiting.drain(..) {
            let persistent = mailbox.is_persistent() && delivery.qos != tern_codec::QoS::AtMostOnce;
            match mailbox.push(delivery, limits) {
                crate::mailbox::Pushed::Dropped => {
                    Metrics::add(&self.hub.metrics.publish_dropped, 1)
                }
                _ => stored |= persistent,
            }
        }
        work.durable |= stored;
    }

    /// Writes out the write buffer, best effort, on the way out: held bytes only once their
    /// barriers answer.
    pub(super) async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) {
        let Some(work) = self.work.as_mut() else {
            return;
        };
        let limit = std::time::Duration::from_secs(1);
        work.out.settle(limit).await;
        let rest = work.out.take_writable();
        let sending = &work.sending;
        let write = async {
            stream.write_all(sending).await?;
            stream.write_all(&rest).await?;
            stream.flush().await
        };
        if tokio::time::timeout(limit, write).await.is_ok() {
            let n = work.sending.len() + rest.len();
            Metrics::add(&self.hub.metrics.bytes_sent, n as u64);
        }
        work.sending.clear();
        work.out.clear();
    }

    /// One round of work on what was decoded and what the mailbox holds: carries out the
    /// session's actions, pulls deliveries, retries deliveries waiting for room and ends
    /// the step. Returns the end if an action closes the connection.
    pub(super) fn step(&mut self, session: &mut Session) -> Option<End> {
        if let Some(end) = self.run_actions(session) {
            return Some(end);
        }
        self.pull_mailbox(session);
        if let Some(end) = self.run_actions(session) {
            return Some(end);
        }
        self.retry_waiting(&session.state().client_id);
        self.end_step(session);
        None
    }

    /// Carries out the session's actions. Returns the end if one of them closes.
    fn run_actions(&mut self, session: &mut Session) -> Option<End> {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Send(packet) => self.queue(&packet),
                Action::Publish(message) => {
                    let work = work(&mut self.work);
                    if work.waiting.is_empty() {
                        work.waiting_since = Some(now());
                    }
                    work.durable |= self.hub.route(message, &mut work.waiting);
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

    /// Hands one delivery to the session and encodes the PUBLISH it gives back, or counts
    /// the delivery as dropped.
    fn deliver(&mut self, session: &mut Session, delivery: crate::message::Delivery, now: Instant) {
        match session.deliver(now, delivery) {
            Some(publish) => self.queue_publish(&publish),
            None => Metrics::add(&self.hub.metrics.publish_dropped, 1),
        }
    }

    /// Moves deliveries from the mailbox into the session while the window and the write
    /// buffer have room.
    fn pull_mailbox(&mut self, session: &mut Session) {
        // Each PUBLISH is encoded as the session hands it back: nothing may be queued
        // before it in the session's actions.
        debug_assert!(!session.has_actions());
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
        }
    }

    /// Decodes every complete packet in the read buffer into the session.
    pub(super) fn decode_all(
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
