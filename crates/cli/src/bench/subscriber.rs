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
use tern_codec::{decode, Disconnect, Packet, PubResponse, QoS, ReasonCode, MAX_PACKET_SIZE};
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
    let ((mut rd, mut wr), read) = link.halves();
    let mut w = BytesMut::with_capacity(4096);
    let mut out = Outcome::default();
    let mut received = 0u64;
    let mut latencies = LatencyBatch::default();
    let mut unflushed = false;
    let mut last_write = Instant::now();
    while received < limit {
        if read.capacity() - read.len() < 16 * 1024 {
            read.reserve(64 * 1024);
        }
        tokio::select! {
            r = rd.read_buf(read) => {
                if r? == 0 {
                    out.closed = true;
                    stats.dropped.add(1);
                    break;
                }
                let now = now_ns();
                let (mut new, mut dups) = (0u64, 0u64);
                while let Some(packet) = decode(read, version, MAX_PACKET_SIZE)? {
                    match packet {
                        Packet::Publish(p) => {
                            match Stamp::read(&p.payload) {
                                Some(s) if out.tracker.record(s.publisher, s.seq) => {
                                    new += 1;
                                    latencies.push(now.saturating_sub(s.sent_ns), &stats.e2e_latency);
                                }
                                Some(_) => dups += 1,
                                None => {
                                    new += 1;
                                    out.foreign += 1;
                                }
                            }
                            match (p.qos, p.packet_id) {
                                (QoS::AtMostOnce, _) => {}
                                (QoS::AtLeastOnce, Some(id)) => {
                                    Packet::PubAck(PubResponse::new(id)).encode(version, &mut w)?;
                                }
                                (QoS::ExactlyOnce, Some(id)) => {
                                    Packet::PubRec(PubResponse::new(id)).encode(version, &mut w)?;
                                }
                                (_, None) => stats.error(|| "QoS 1/2 PUBLISH without packet id".into()),
                            }
                        }
                        Packet::PubRel(rel) => {
                            Packet::PubComp(PubResponse::new(rel.packet_id)).encode(version, &mut w)?;
                        }
                        Packet::PingResp => {}
                        Packet::Disconnect(d) => {
                            bail!("the broker sent a subscriber DISCONNECT ({:?})", d.reason_code)
                        }
                        other => stats.error(|| format!("unexpected {:?} to a subscriber", other.packet_type())),
                    }
                }
                if new > 0 {
                    out.first_ns.get_or_insert(now);
                    out.last_ns = Some(now);
                    received += new;
                }
                stats.received.add(new);
                stats.dups.add(dups);
                latencies.flush(&stats.e2e_latency);
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
