//! The byte layout of an [`Op`] in the journal.
//!
//! Each operation is a tag byte and its fields; variable-length fields carry a 32-bit length.
//! The records of the database tables ([`super::record`]) are reused inside: a queued
//! delivery is its queue entry, a retained or queued message its message record. A message
//! queued for several sessions is written once per journal file: later deliveries of it name
//! its id, and [`Decoder`] keeps what it has read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tern_codec::{PacketId, TopicFilter};

use super::key_hasher::KeyHashing;
use super::record::{self, bad, need, Delivered, RecordError};
use super::Op;
use crate::message::{Delivery, Message};

const SESSION: u8 = 1;
const END_SESSION: u8 = 2;
const SUBSCRIBE: u8 = 3;
const UNSUBSCRIBE: u8 = 4;
const ENQUEUE: u8 = 5;
const STAGE: u8 = 6;
const DONE: u8 = 7;
const AWAITING_PUBREL: u8 = 8;
const RETAIN: u8 = 9;

const WHAT: &str = "journal";

/// Slots of the encoder's cache of written messages (a power of two).
const RECENT: usize = 4096;

/// Writes operations, a message body once per journal file for deliveries close together
/// (one encoder per file).
///
/// Which bodies the file holds is remembered in a small direct-mapped cache, not a set of
/// every message in the file: a set that large missed the processor's caches on every
/// lookup (8 % of the writer thread under load). A delivery whose message was pushed out
/// of the cache writes the body again, which the [`Decoder`] reads as the same message; a
/// delivery written without its body always names one written earlier in the same file.
#[derive(Debug)]
pub(super) struct Encoder {
    /// Message ids whose body this journal file holds, at `id % RECENT`; 0 for none (the
    /// broker's message ids start at 1).
    recent: Box<[u64; RECENT]>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            recent: Box::new([0; RECENT]),
        }
    }
}

impl Encoder {
    /// Appends `op` to `out`. Barriers and closes are not operations on the data and write
    /// nothing.
    pub(super) fn put(&mut self, out: &mut BytesMut, op: &Op, now: Instant, wall: SystemTime) {
        match op {
            Op::Session { client, record } => {
                out.put_u8(SESSION);
                put_bytes(out, client.as_bytes());
                put_bytes(out, &record::encode_session(record));
            }
            Op::EndSession { client, uid } => {
                out.put_u8(END_SESSION);
                put_bytes(out, client.as_bytes());
                out.put_u64(*uid);
            }
            Op::Subscribe { uid, filter, value } => {
                out.put_u8(SUBSCRIBE);
                out.put_u64(*uid);
                put_bytes(out, filter.as_bytes());
                put_bytes(out, value);
            }
            Op::Unsubscribe { uid, filter } => {
                out.put_u8(UNSUBSCRIBE);
                out.put_u64(*uid);
                put_bytes(out, filter.as_bytes());
            }
            Op::Enqueue {
                uid,
                seq,
                delivery,
                stage,
            } => {
                let message = &delivery.message;
                out.put_u8(ENQUEUE);
                out.put_u64(*uid);
                out.put_u64(*seq);
                let how = Delivered {
                    qos: delivery.qos,
                    retain: delivery.retain,
                    subscription_ids: &delivery.subscription_ids,
                    shared: delivery.shared.as_ref().map(TopicFilter::as_str),
                };
                record::put_entry(out, message.id, &how, *stage);
                let slot = &mut self.recent[(message.id % RECENT as u64) as usize];
                if *slot == message.id && message.id != 0 {
                    out.put_u8(0);
                } else {
                    *slot = message.id;
                    out.put_u8(1);
                    put_message(out, message, now, wall);
                }
            }
            Op::Stage { uid, seq, stage } => {
                out.put_u8(STAGE);
                out.put_u64(*uid);
                out.put_u64(*seq);
                record::put_stage(out, *stage);
            }
            Op::Done { uid, seq, message } => {
                out.put_u8(DONE);
                out.put_u64(*uid);
                out.put_u64(*seq);
                out.put_u64(*message);
            }
            Op::AwaitingPubRel {
                uid,
                packet_id,
                present,
            } => {
                out.put_u8(AWAITING_PUBREL);
                out.put_u64(*uid);
                out.put_u16(*packet_id);
                out.put_u8(u8::from(*present));
            }
            Op::Retain(message) => {
                out.put_u8(RETAIN);
                put_message(out, message, now, wall);
            }
            Op::Barrier(_) | Op::Close(_) => {}
        }
    }
}

/// Reads operations back, resolving deliveries to the messages written before them.
#[derive(Debug)]
pub(super) struct Decoder {
    messages: HashMap<u64, Arc<Message>, KeyHashing>,
    now: Instant,
    wall: SystemTime,
}

impl Decoder {
    /// A decoder for one journal file, with the two clocks read together now.
    pub(super) fn new(now: Instant, wall: SystemTime) -> Self {
        Decoder {
            messages: HashMap::default(),
            now,
            wall,
        }
    }

    /// Reads every operation in `buf` (one frame's payload).
    pub(super) fn read_all(
        &mut self,
        mut buf: Bytes,
        out: &mut Vec<Op>,
    ) -> Result<(), RecordError> {
        while buf.has_remaining() {
            out.push(self.read(&mut buf)?);
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut Bytes) -> Result<Op, RecordError> {
        let tag = buf.get_u8();
        Ok(match tag {
            SESSION => {
                let client = get_string(buf)?;
                let record = record::decode_session(&get_bytes(buf)?)?;
                Op::Session {
                    client: client.into(),
                    record: Box::new(record),
                }
            }
            END_SESSION => {
                let client = get_string(buf)?;
                need(WHAT, buf, 8)?;
                Op::EndSession {
                    client: client.into(),
                    uid: buf.get_u64(),
                }
            }
            SUBSCRIBE => {
                need(WHAT, buf, 8)?;
                let uid = buf.get_u64();
                let filter = get_string(buf)?.into_boxed_str();
                let value = get_bytes(buf)?.to_vec();
                Op::Subscribe { uid, filter, value }
            }
            UNSUBSCRIBE => {
                need(WHAT, buf, 8)?;
                let uid = buf.get_u64();
                let filter = get_string(buf)?.into_boxed_str();
                Op::Unsubscribe { uid, filter }
            }
            ENQUEUE => self.read_enqueue(buf)?,
            STAGE => {
                need(WHAT, buf, 16)?;
                let uid = buf.get_u64();
                let seq = buf.get_u64();
                let stage = record::get_stage(WHAT, buf)?;
                Op::Stage { uid, seq, stage }
            }
            DONE => {
                need(WHAT, buf, 24)?;
                Op::Done {
                    uid: buf.get_u64(),
                    seq: buf.get_u64(),
                    message: buf.get_u64(),
                }
            }
            AWAITING_PUBREL => {
                need(WHAT, buf, 11)?;
                let uid = buf.get_u64();
                let packet_id = buf.get_u16();
                if PacketId::new(packet_id).is_none() {
                    return Err(bad(WHAT, "packet identifier 0"));
                }
                Op::AwaitingPubRel {
                    uid,
                    packet_id,
                    present: buf.get_u8() != 0,
                }
            }
            RETAIN => Op::Retain(self.read_message(buf)?),
            other => return Err(bad(WHAT, format!("unknown operation {other}"))),
        })
    }

    fn read_enqueue(&mut self, buf: &mut Bytes) -> Result<Op, RecordError> {
        need(WHAT, buf, 16)?;
        let uid = buf.get_u64();
        let seq = buf.get_u64();
        let entry = record::get_entry(buf)?;
        need(WHAT, buf, 1)?;
        let message = if buf.get_u8() == 1 {
            self.read_message(buf)?
        } else {
            self.messages.get(&entry.message).cloned().ok_or_else(|| {
                bad(
                    WHAT,
                    format!(
                        "a delivery names message {} not written before it",
                        entry.message
                    ),
                )
            })?
        };
        let shared = match entry.shared {
            Some(filter) => Some(TopicFilter::try_from(filter.as_str()).map_err(|e| bad(WHAT, e))?),
            None => None,
        };
        Ok(Op::Enqueue {
            uid,
            seq,
            delivery: Delivery {
                message,
                qos: entry.qos,
                retain: entry.retain,
                subscription_ids: entry.subscription_ids,
                shared,
                stored: Some(seq),
            },
            stage: entry.stage,
        })
    }

    fn read_message(&mut self, buf: &mut Bytes) -> Result<Arc<Message>, RecordError> {
        let (mut message, received) = record::decode_message(&get_bytes(buf)?)?;
        message.received_at = record::instant_of(received, self.now, self.wall);
        let message = Arc::new(message);
        self.messages.insert(message.id, message.clone());
        Ok(message)
    }
}

fn put_message(out: &mut BytesMut, message: &Message, now: Instant, wall: SystemTime) {
    let at = out.len();
    out.put_u32(0);
    record::put_message(
        out,
        message,
        record::wall_time(message.received_at, now, wall),
    );
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32(bytes.len() as u32);
    out.put_slice(bytes);
}

fn get_bytes(buf: &mut Bytes) -> Result<Bytes, RecordError> {
    need(WHAT, buf, 4)?;
    let len = buf.get_u32() as usize;
    need(WHAT, buf, len)?;
    Ok(buf.split_to(len))
}

fn get_string(buf: &mut Bytes) -> Result<String, RecordError> {
    String::from_utf8(get_bytes(buf)?.to_vec()).map_err(|e| bad(WHAT, e))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::{Instant, SystemTime};

    use bytes::BytesMut;
    use tern_codec::{PacketId, QoS, TopicFilter, TopicName};

    use super::{Decoder, Encoder, RECENT};
    use crate::message::{Delivery, Message};
    use crate::store::{EntryStage, Op, SessionRecord};

    fn message(id: u64) -> std::sync::Arc<Message> {
        let mut message = Message::detached(
            &TopicName::try_from("a/b").unwrap(),
            b"payload",
            QoS::ExactlyOnce,
            false,
            Default::default(),
            Some("origin".into()),
            Instant::now(),
        );
        message.id = id;
        std::sync::Arc::new(message)
    }

    fn enqueue(uid: u64, seq: u64, id: u64) -> Op {
        Op::Enqueue {
            uid,
            seq,
            delivery: Delivery {
                message: message(id),
                qos: QoS::AtLeastOnce,
                retain: true,
                subscription_ids: vec![NonZeroU32::new(4).unwrap()],
                shared: Some(TopicFilter::try_from("$share/g/a/#").unwrap()),
                stored: Some(seq),
            },
            stage: EntryStage::Released(PacketId::new(9).unwrap()),
        }
    }

    #[test]
    fn every_operation_reads_back_as_written() {
        let ops = vec![
            Op::Session {
                client: "c".into(),
                record: Box::new(SessionRecord {
                    uid: 3,
                    expiry_interval: 60,
                    disconnected_at: Some(5),
                    will: None,
                }),
            },
            Op::Subscribe {
                uid: 3,
                filter: "a/#".into(),
                value: vec![1, 2, 3],
            },
            Op::Unsubscribe {
                uid: 3,
                filter: "a/#".into(),
            },
            enqueue(3, 10, 77),
            enqueue(4, 11, 77),
            Op::Stage {
                uid: 3,
                seq: 10,
                stage: EntryStage::Published(PacketId::new(2).unwrap()),
            },
            Op::Done {
                uid: 3,
                seq: 10,
                message: 77,
            },
            Op::AwaitingPubRel {
                uid: 3,
                packet_id: 8,
                present: true,
            },
            Op::Retain(message(78)),
            Op::EndSession {
                client: "c".into(),
                uid: 3,
            },
        ];
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut out = BytesMut::new();
        let mut encoder = Encoder::default();
        for op in &ops {
            encoder.put(&mut out, op, now, wall);
        }
        let mut back = Vec::new();
        Decoder::new(now, wall)
            .read_all(out.freeze(), &mut back)
            .unwrap();
        assert_eq!(format!("{back:?}").len(), format!("{ops:?}").len());
        for (a, b) in ops.iter().zip(&back) {
            match (a, b) {
                (
                    Op::Enqueue {
                        delivery: d, stage, ..
                    },
                    Op::Enqueue {
                        delivery: e,
                        stage: f,
                        ..
                    },
                ) => {
                    assert_eq!(stage, f);
                    assert_eq!(d.message.id, e.message.id);
                    assert_eq!(d.message.payload, e.message.payload);
                    assert_eq!(d.message.origin, e.message.origin);
                    assert_eq!((d.qos, d.retain), (e.qos, e.retain));
                    assert_eq!(d.subscription_ids, e.subscription_ids);
                    assert_eq!(d.shared, e.shared);
                }
                (Op::Retain(m), Op::Retain(n)) => {
                    assert_eq!((m.id, &m.topic, &m.payload), (n.id, &n.topic, &n.payload));
                }
                (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
            }
        }
    }

    #[test]
    fn a_message_queued_twice_is_written_once() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut encoder = Encoder::default();
        let mut once = BytesMut::new();
        encoder.put(&mut once, &enqueue(1, 1, 5), now, wall);
        let mut twice = BytesMut::new();
        encoder.put(&mut twice, &enqueue(2, 1, 5), now, wall);
        assert!(twice.len() + b"payload".len() < once.len());
        // The next file has its own encoder.
        let mut again = BytesMut::new();
        Encoder::default().put(&mut again, &enqueue(2, 1, 5), now, wall);
        assert_eq!(
            again.len(),
            once.len(),
            "a new file holds the message again"
        );
    }

    #[test]
    fn a_message_pushed_out_of_the_cache_is_written_again_and_reads_back() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let other = 5 + RECENT as u64; // the same slot as message 5
        let order = [(1, 5), (2, other), (3, 5), (4, 5)];
        let mut encoder = Encoder::default();
        let mut lens = Vec::new();
        let mut buf = BytesMut::new();
        for (uid, message) in order {
            let before = buf.len();
            encoder.put(&mut buf, &enqueue(uid, 1, message), now, wall);
            lens.push(buf.len() - before);
        }
        // 5 written, pushed out by the other, written again, then named.
        assert_eq!(lens[0], lens[2], "the body of 5 is written again");
        assert!(lens[3] < lens[2], "then it is named, not written");
        let mut ops = Vec::new();
        Decoder::new(now, wall)
            .read_all(buf.freeze(), &mut ops)
            .unwrap();
        let read: Vec<(u64, u64)> = ops
            .iter()
            .map(|op| match op {
                Op::Enqueue { uid, delivery, .. } => (*uid, delivery.message.id),
                op => panic!("{op:?}"),
            })
            .collect();
        assert_eq!(read, order);
    }

    #[test]
    fn a_delivery_of_an_unknown_message_is_refused() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut encoder = Encoder::default();
        let mut first = BytesMut::new();
        encoder.put(&mut first, &enqueue(1, 1, 5), now, wall);
        let mut second = BytesMut::new();
        encoder.put(&mut second, &enqueue(2, 1, 5), now, wall);
        let error = Decoder::new(now, wall)
            .read_all(second.freeze(), &mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("message 5"), "{error}");
        let mut truncated = first.freeze();
        truncated.truncate(truncated.len() - 3);
        assert!(Decoder::new(now, wall)
            .read_all(truncated, &mut Vec::new())
            .is_err());
    }
}
