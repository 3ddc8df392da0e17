//! One publisher connection of `tern bench pub`: writes stamped PUBLISH packets as fast as
//! its in-flight window, `--rate` and TCP allow, and times each one to its PUBACK (QoS 1)
//! or PUBCOMP (QoS 2).
//!
//! Rules:
//! - One task owns the socket: reads, writes and timers in one `select!` loop. Packets are
//!   encoded into a write buffer (at most [`WRITE_AHEAD`] bytes ahead of the socket) and
//!   written in batches.
//! - No allocation per message: the PUBLISH is one tern-codec packet, reused with a new
//!   packet identifier; its payload is a shared zero buffer, and the [`Stamp`] is written
//!   over the encoded payload's first bytes in the write buffer. Acknowledgements are cut
//!   from the read buffer by the codec without copying.
//! - QoS 1/2: at most `--inflight` messages unacknowledged (fewer if the broker's Receive
//!   Maximum says so); identifiers come from a free list of the window's size, each with
//!   the time it was written. QoS 2 answers PUBREC with PUBREL.
//! - Rate: publisher k of n sends message m no earlier than m / (rate / n) seconds after
//!   the common start; behind schedule, it catches up at once.
//! - End: at the limit, the deadline or the stop signal, publishing stops; the loop then
//!   waits up to the drain time for the acknowledgements still due (those missing count as
//!   errors) and sends DISCONNECT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use bytes::{Buf, Bytes, BytesMut};
use tern_codec::{
    decode, Disconnect, Packet, PacketId, PubResponse, Publish, QoS, ReasonCode, TopicName,
    MAX_PACKET_SIZE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::launch::Stop;
use super::link::{write_or_flush, Link};
use super::payload::{now_ns, Stamp, STAMP_LEN};
use super::stats::{LatencyBatch, Stats};

/// Bytes encoded ahead of the socket before the loop waits for the socket.
pub(crate) const WRITE_AHEAD: usize = 16 * 1024;

/// What one publisher does.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Publisher id written into every stamp.
    pub(crate) publisher: u32,
    /// Topic of every message.
    pub(crate) topic: TopicName,
    /// QoS of every message.
    pub(crate) qos: QoS,
    /// Payload bytes (at least [`STAMP_LEN`]).
    pub(crate) size: usize,
    /// Messages to send, if bounded by count.
    pub(crate) limit: Option<u64>,
    /// When to stop publishing, if bounded by time.
    pub(crate) deadline: Option<Instant>,
    /// This publisher's messages per second (0: unlimited).
    pub(crate) rate: f64,
    /// QoS 1/2 window.
    pub(crate) inflight: usize,
    /// How long to wait for acknowledgements after publishing stops.
    pub(crate) drain: Duration,
    /// The common start of all publishers.
    pub(crate) start: Instant,
    /// Keep alive of the connection, seconds (0: off).
    pub(crate) keep_alive: u16,
}

/// What one publisher did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Messages written.
    pub(crate) sent: u64,
    /// Messages acknowledged (QoS 1/2).
    pub(crate) acked: u64,
    /// When publishing stopped.
    pub(crate) stopped: Instant,
}

/// Packet identifiers of the window: free ones, and the write time and state of those in
/// flight.
struct InFlight {
    free: Vec<u16>,
    /// Indexed by packet identifier: (write time, 0 free / 1 awaiting PUBACK or PUBREC /
    /// 2 awaiting PUBCOMP).
    slots: Vec<(u64, u8)>,
}

impl InFlight {
    fn new(window: usize) -> InFlight {
        let window = window.min(u16::MAX as usize) as u16;
        InFlight {
            free: (1..=window).rev().collect(),
            slots: vec![(0, 0); usize::from(window) + 1],
        }
    }

    fn count(&self) -> usize {
        self.slots.len() - 1 - self.free.len()
    }

    fn room(&self) -> usize {
        self.free.len()
    }

    fn take(&mut self, now: u64) -> Option<PacketId> {
        let id = self.free.pop()?;
        self.slots[usize::from(id)] = (now, 1);
        PacketId::new(id)
    }

    /// Moves `id` from `state` to the next one; returns its write time, or `None` if it
    /// was not in that state.
    fn advance(&mut self, id: PacketId, state: u8, last: bool) -> Option<u64> {
        let slot = self.slots.get_mut(usize::from(id.get()))?;
        if slot.1 != state {
            return None;
        }
        if last {
            slot.1 = 0;
            self.free.push(id.get());
        } else {
            slot.1 = state + 1;
        }
        Some(slot.0)
    }
}

/// Runs one publisher until its plan is done.
pub(crate) async fn run(
    mut link: Link,
    plan: Plan,
    stats: Arc<Stats>,
    mut stop: Stop,
) -> anyhow::Result<Outcome> {
    let version = link.version;
    let qos = plan.qos;
    let window = match qos {
        QoS::AtMostOnce => usize::MAX,
        _ => plan.inflight.min(usize::from(link.receive_maximum)).max(1),
    };
    let mut ids = InFlight::new(if qos == QoS::AtMostOnce { 0 } else { window });
    let mut publish = Publish::new(plan.topic.clone(), Bytes::from(vec![0u8; plan.size]));
    publish.qos = qos;
    let mut packet = Packet::Publish(publish);
    let packet_len = packet.encoded_len(version);
    let batch = (WRITE_AHEAD / packet_len).max(1) as u64;
    let limit = plan.limit.unwrap_or(u64::MAX);
    let ping_every = Duration::from_millis(u64::from(plan.keep_alive) * 750);

    let ((mut rd, mut wr), read) = link.halves();
    let mut w = BytesMut::with_capacity(WRITE_AHEAD + packet_len);
    let mut latencies = LatencyBatch::default();
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut stopped: Option<Instant> = None;
    let mut unflushed = false;
    let mut last_write = Instant::now();
    loop {
        let now = Instant::now();
        let done = stopped.is_some()
            || sent >= limit
            || plan.deadline.is_some_and(|d| now >= d)
            || stop.is_set();
        if done {
            let at = *stopped.get_or_insert(now);
            if ids.count() == 0 && w.is_empty() {
                break;
            }
            if now.duration_since(at) > plan.drain {
                let missing = ids.count() as u64;
                if missing > 0 {
                    stats.error(|| {
                        format!("{missing} acknowledgements missing after the drain time")
                    });
                    stats.errors.add(missing - 1);
                }
                break;
            }
        }
        let mut rate_wait = None;
        if !done && w.len() < WRITE_AHEAD {
            let mut n = (limit - sent).min(batch);
            if qos != QoS::AtMostOnce {
                n = n.min(ids.room() as u64);
            }
            if plan.rate > 0.0 {
                let due = (now.duration_since(plan.start).as_secs_f64() * plan.rate) as u64 + 1;
                if due <= sent {
                    let next = Duration::from_secs_f64(sent as f64 / plan.rate);
                    rate_wait = Some(plan.start + next);
                }
                n = n.min(due.saturating_sub(sent));
            }
            if n > 0 {
                let sent_ns = now_ns();
                for _ in 0..n {
                    if let Packet::Publish(p) = &mut packet {
                        if qos != QoS::AtMostOnce {
                            p.packet_id = ids.take(sent_ns);
                        }
                    }
                    packet.encode(version, &mut w)?;
                    let start = w.len() - plan.size;
                    let stamp = Stamp {
                        publisher: plan.publisher,
                        seq: sent,
                        sent_ns,
                    };
                    stamp.write(&mut w[start..start + STAMP_LEN]);
                    sent += 1;
                }
                stats.sent.add(n);
            }
        }
        if read.capacity() - read.len() < 4096 {
            read.reserve(16 * 1024);
        }
        tokio::select! {
            r = rd.read_buf(read) => {
                if r? == 0 {
                    bail!("the broker closed a publisher's connection");
                }
                let now_ns = now_ns();
                let before = acked;
                while let Some(packet) = decode(read, version, MAX_PACKET_SIZE)? {
                    match (packet, qos) {
                        (Packet::PubAck(ack), QoS::AtLeastOnce) => {
                            let Some(at) = ids.advance(ack.packet_id, 1, true) else {
                                stats.error(|| format!("PUBACK for packet id {} not in flight", ack.packet_id.get()));
                                continue;
                            };
                            latencies.push(now_ns.saturating_sub(at), &stats.ack_latency);
                            acked += 1;
                            if ack.reason_code.is_error() {
                                stats.error(|| format!("PUBACK with reason code {:?}", ack.reason_code));
                            }
                        }
                        (Packet::PubRec(rec), QoS::ExactlyOnce) => {
                            if rec.reason_code.is_error() {
                                stats.error(|| format!("PUBREC with reason code {:?}", rec.reason_code));
                                ids.advance(rec.packet_id, 1, true);
                            } else if ids.advance(rec.packet_id, 1, false).is_some() {
                                Packet::PubRel(PubResponse::new(rec.packet_id)).encode(version, &mut w)?;
                            } else {
                                stats.error(|| format!("PUBREC for packet id {} not in flight", rec.packet_id.get()));
                            }
                        }
                        (Packet::PubComp(comp), QoS::ExactlyOnce) => {
                            let Some(at) = ids.advance(comp.packet_id, 2, true) else {
                                stats.error(|| format!("PUBCOMP for packet id {} not awaited", comp.packet_id.get()));
                                continue;
                            };
                            latencies.push(now_ns.saturating_sub(at), &stats.ack_latency);
                            acked += 1;
                        }
                        (Packet::PingResp, _) => {}
                        (Packet::Disconnect(d), _) => {
                            bail!("the broker sent a publisher DISCONNECT ({:?})", d.reason_code)
                        }
                        (other, _) => {
                            stats.error(|| format!("unexpected {:?} to a publisher", other.packet_type()));
                        }
                    }
                }
                stats.acked.add(acked - before);
                latencies.flush(&stats.ack_latency);
            }
            r = write_or_flush(&mut wr, &w), if !w.is_empty() || unflushed => {
                if w.is_empty() {
                    r?;
                    unflushed = false;
                } else {
                    w.advance(r?);
                    if w.is_empty() {
                        w.clear();
                        unflushed = true;
                    }
                    last_write = Instant::now();
                }
            }
            _ = sleep_until(rate_wait.unwrap_or(now)), if rate_wait.is_some() && w.is_empty() => {}
            _ = sleep_until(last_write + ping_every), if !ping_every.is_zero() && w.is_empty() => {
                Packet::PingReq.encode(version, &mut w)?;
            }
            _ = stop.wait(), if !done => {}
            _ = sleep(Duration::from_millis(20)), if done => {}
        }
    }
    let stopped = stopped.unwrap_or_else(Instant::now);
    let mut bye = BytesMut::new();
    Packet::Disconnect(Disconnect::new(ReasonCode::Success)).encode(version, &mut bye)?;
    let _ = timeout(Duration::from_secs(1), async {
        wr.write_all(&bye).await?;
        wr.flush().await
    })
    .await;
    Ok(Outcome {
        sent,
        acked,
        stopped,
    })
}
