//! One subscriber connection of `tern bench sub` (and of `tern bench pub --subscribers`):
//! receives, acknowledges, and accounts for every message.
//!
//! Rules:
//! - One task owns the socket; acknowledgements (PUBACK for QoS 1, PUBREC then PUBCOMP for
//!   QoS 2) are encoded into a write buffer and written in batches.
//! - The receive time is read once per socket read; a message's end-to-end latency is that
//!   time minus the send time in its [`Stamp`]. Messages without a stamp (shorter than
//!   one) are counted as foreign and not timed.
//! - Each message is recorded in the [`Tracker`] by publisher id and sequence: a
//!   duplicate is counted and not timed again.
//! - End: at the stop signal, or once `-L` distinct messages arrived; then DISCONNECT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use bytes::{Buf, BytesMut};
use tern_codec::{
    decode, Disconnect, Packet, ProtocolVersion, PubResponse, QoS, ReasonCode, MAX_PACKET_SIZE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep_until, timeout, Instant};

use super::launch::Stop;
use super::link::{write_or_flush, Link};
use super::payload::{now_ns, Stamp};
use super::stats::{LatencyBatch, Stats};
use super::tracker::Tracker;

/// What one subscriber does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Distinct messages after which it stops, if bounded by count.
    pub(crate) limit: Option<u64>,
    /// Keep alive of the connection, seconds (0: off).
    pub(crate) keep_alive: u16,
}

/// What one subscriber received.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Stamped messages by publisher and sequence.
    pub(crate) tracker: Tracker,
    /// Messages without a stamp.
    pub(crate) foreign: u64,
    /// Receive time ([`now_ns`]) of the first message.
    pub(crate) first_ns: Option<u64>,
    /// Receive time of the last new message.
    pub(crate) last_ns: Option<u64>,
    /// Whether the broker closed the connection.
    pub(crate) closed: bool,
}

/// The receiving side of one subscriber: accounting and acknowledgements.
struct Receiver<'a> {
    out: Outcome,
    stats: &'a Stats,
    latencies: LatencyBatch,
    /// New and duplicate messages since the last [`Receiver::settle`].
    new: u64,
    dups: u64,
}

impl Receiver<'_> {
    /// Handles one packet received at `now`; acknowledgements go into `w`.
    fn handle(
        &mut self,
        packet: Packet,
        now: u64,
        version: ProtocolVersion,
        w: &mut BytesMut,
    ) -> anyhow::Result<()> {
        let stats = self.stats;
        match packet {
            Packet::Publish(p) => {
                match Stamp::read(&p.payload) {
                    Some(s) if self.out.tracker.record(s.publisher, s.seq) => {
                        self.new += 1;
                        self.latencies
                            .push(now.saturating_sub(s.sent_ns), &stats.e2e_latency);
                    }
                    Some(_) => self.dups += 1,
                    None => {
                        self.new += 1;
                        self.out.foreign += 1;
                    }
                }
                match (p.qos, p.packet_id) {
                    (QoS::AtMostOnce, _) => {}
                    (QoS::AtLeastOnce, Some(id)) => {
                        Packet::PubAck(PubResponse::new(id)).encode(version, w)?;
                    }
                    (QoS::ExactlyOnce, Some(id)) => {
                        Packet::PubRec(PubResponse::new(id)).encode(version, w)?;
                    }
                    (_, None) => stats.error(|| "QoS 1/2 PUBLISH without packet id".into()),
                }
            }
            Packet::PubRel(rel) => {
                Packet::PubComp(PubResponse::new(rel.packet_id)).encode(version, w)?;
            }
            Packet::PingResp => {}
            Packet::Disconnect(d) => {
                bail!(
                    "the broker sent a subscriber DISCONNECT ({:?})",
                    d.reason_code
                )
            }
            other => {
                stats.error(|| format!("unexpected {:?} to a subscriber", other.packet_type()))
            }
        }
        Ok(())
    }

    /// Hands the counts since the last call to the shared stats; returns the new messages.
    fn settle(&mut self, now: u64) -> u64 {
        let new = std::mem::take(&mut self.new);
        if new > 0 {
            self.out.first_ns.get_or_insert(now);
            self.out.last_ns = Some(now);
        }
        self.stats.received.add(new);
        self.stats.dups.add(std::mem::take(&mut self.dups));
        self.latencies.flush(&self.stats.e2e_latency);
        new
    }
}

/// Runs one subscriber until the stop signal or its limit.
pub(crate) async fn run(
    mut link: Link,
    plan: Plan,
    stats: Arc<Stats>,
    mut stop: Stop,
) -> anyhow::Result<Outcome> {
    let version = link.version;
    let ping_every = Duration::from_millis(u64::from(plan.keep_alive) * 750);
    let limit = plan.limit.unwrap_or(u64::MAX);
    let early = std::mem::take(&mut link.early);
    let ((mut rd, mut wr), read) = link.halves();
    let mut w = BytesMut::with_capacity(4096);
    let mut rx = Receiver {
        out: Outcome::default(),
        stats: &stats,
        latencies: LatencyBatch::default(),
        new: 0,
        dups: 0,
    };
    let now = now_ns();
    for packet in early {
        rx.handle(packet, now, version, &mut w)?;
    }
    let mut received = rx.settle(now);
    let mut unflushed = false;
    let mut last_write = Instant::now();
    while received < limit || !w.is_empty() {
        if read.capacity() - read.len() < 16 * 1024 {
            read.reserve(64 * 1024);
        }
        tokio::select! {
            r = rd.read_buf(read), if received < limit => {
                if r? == 0 {
                    rx.out.closed = true;
                    stats.dropped.add(1);
                    break;
                }
                let now = now_ns();
                while let Some(packet) = decode(read, version, MAX_PACKET_SIZE)? {
                    rx.handle(packet, now, version, &mut w)?;
                }
                received += rx.settle(now);
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
            _ = sleep_until(last_write + ping_every), if !ping_every.is_zero() && w.is_empty() => {
                Packet::PingReq.encode(version, &mut w)?;
            }
            _ = stop.wait() => break,
        }
    }
    let out = rx.out;
    if !out.closed {
        Packet::Disconnect(Disconnect::new(ReasonCode::Success)).encode(version, &mut w)?;
        let _ = timeout(Duration::from_secs(1), async {
            wr.write_all(&w).await?;
            wr.flush().await
        })
        .await;
    }
    Ok(out)
}
