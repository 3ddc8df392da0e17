//! The byte layout of what the store keeps. Every record starts with its layout version, so
//! a later Tern can read what this one wrote, and this one refuses what it cannot read.
//!
//! Messages are kept as MQTT 5.0 PUBLISH packets (the codec is the one definition of a
//! message's fields), behind a small header of what a PUBLISH does not carry.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tern_codec::{
    Packet, PacketId, ProtocolVersion, Publish, PublishProperties, QoS, SubscriptionOptions,
    TopicFilter, Will, WillProperties,
};

use crate::message::Message;

/// Layout version of every record this code writes. Layout 2 marks an optional string with
/// a presence byte; layout 1 marked a missing one by the length 65,535, which a string of
/// exactly that length (a client identifier or a `$share` filter may be one) could not be
/// told from.
const LAYOUT: u8 = 2;

/// The oldest layout this code reads.
const OLDEST: u8 = 1;

/// A record that cannot be read back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unreadable {what} record: {why}")]
pub(super) struct RecordError {
    what: &'static str,
    why: String,
}

pub(super) fn bad(what: &'static str, why: impl ToString) -> RecordError {
    RecordError {
        what,
        why: why.to_string(),
    }
}

/// Milliseconds since the Unix epoch, the store's clock (an `Instant` means nothing after a
/// restart).
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The wall-clock time `instant` stands for, given the two clocks read together now.
pub(super) fn wall_time(
    instant: std::time::Instant,
    now: std::time::Instant,
    wall: SystemTime,
) -> u64 {
    unix_millis(wall).saturating_sub(now.saturating_duration_since(instant).as_millis() as u64)
}

/// The `Instant` of a stored wall-clock time, given the two clocks read together now. Times
/// from before the process could represent are clamped to `now`.
pub(super) fn instant_of(
    millis: u64,
    now: std::time::Instant,
    wall: SystemTime,
) -> std::time::Instant {
    let ago = Duration::from_millis(unix_millis(wall).saturating_sub(millis));
    now.checked_sub(ago).unwrap_or(now)
}

fn publish_bytes(publish: Publish, out: &mut BytesMut) {
    let packet = Packet::Publish(publish);
    out.put_u32(packet.encoded_len(ProtocolVersion::V5) as u32);
    // A message the broker accepted always encodes: it was decoded from the same format.
    let _ = packet.encode(ProtocolVersion::V5, out);
}

fn read_publish(what: &'static str, buf: &mut Bytes) -> Result<Publish, RecordError> {
    if buf.remaining() < 4 {
        return Err(bad(what, "truncated"));
    }
    let len = buf.get_u32() as usize;
    if buf.remaining() < len {
        return Err(bad(what, "truncated packet"));
    }
    let mut frame = BytesMut::from(&buf.split_to(len)[..]);
    match tern_codec::decode(&mut frame, ProtocolVersion::V5, usize::MAX) {
        Ok(Some(Packet::Publish(publish))) => Ok(publish),
        Ok(_) => Err(bad(what, "not a PUBLISH")),
        Err(e) => Err(bad(what, e)),
    }
}

/// Reads a record's layout version: one this code reads, or an error naming it.
fn version(what: &'static str, buf: &mut Bytes) -> Result<u8, RecordError> {
    match buf.has_remaining().then(|| buf.get_u8()) {
        Some(v) if (OLDEST..=LAYOUT).contains(&v) => Ok(v),
        Some(v) => Err(bad(
            what,
            format!("layout {v}, this Tern reads {OLDEST} to {LAYOUT}"),
        )),
        None => Err(bad(what, "empty")),
    }
}

pub(super) fn need(what: &'static str, buf: &Bytes, n: usize) -> Result<(), RecordError> {
    if buf.remaining() < n {
        return Err(bad(what, "truncated"));
    }
    Ok(())
}

/// Appends an optional string of at most 65,535 bytes (an MQTT string): a presence byte,
/// then its length and bytes.
pub(super) fn put_str(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            out.put_u8(1);
            out.put_u16(s.len() as u16);
            out.put_slice(s.as_bytes());
        }
        None => out.put_u8(0),
    }
}

/// Reads an optional string written by [`put_str`] in a record of `layout`.
pub(super) fn get_str(
    what: &'static str,
    buf: &mut Bytes,
    layout: u8,
) -> Result<Option<String>, RecordError> {
    if layout >= 2 {
        need(what, buf, 1)?;
        match buf.get_u8() {
            0 => return Ok(None),
            1 => {}
            _ => return Err(bad(what, "bad string mark")),
        }
    }
    need(what, buf, 2)?;
    let len = buf.get_u16();
    if layout == 1 && len == u16::MAX {
        return Ok(None);
    }
    need(what, buf, usize::from(len))?;
    let bytes = buf.split_to(usize::from(len));
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|e| bad(what, e))
}

/// A message and what the store adds to it.
pub(super) fn encode_message(message: &Message, received_wall: u64) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(32 + message.topic.len() + message.payload.len());
    put_message(&mut out, message, received_wall);
    out.to_vec()
}

/// Appends a message record (as [`encode_message`] makes it) to `out`.
pub(super) fn put_message(out: &mut BytesMut, message: &Message, received_wall: u64) {
    out.put_u8(LAYOUT);
    out.put_u64(message.id);
    out.put_u64(received_wall);
    put_str(out, message.origin.as_deref());
    let publish = Publish {
        dup: false,
        qos: message.qos,
        retain: message.retain,
        topic: message.topic.clone(),
        packet_id: (message.qos != QoS::AtMostOnce).then(PacketId::default),
        properties: message.properties.clone(),
        payload: message.payload.clone(),
    };
    publish_bytes(publish, out);
}

/// A message read back, with its receive time on the wall clock.
pub(super) fn decode_message(bytes: &[u8]) -> Result<(Message, u64), RecordError> {
    const WHAT: &str = "message";
    let mut buf = Bytes::copy_from_slice(bytes);
    let layout = version(WHAT, &mut buf)?;
    need(WHAT, &buf, 16)?;
    let id = buf.get_u64();
    let received = buf.get_u64();
    let origin = get_str(WHAT, &mut buf, layout)?.map(Arc::from);
    let publish = read_publish(WHAT, &mut buf)?;
    let mut message = Message::detached(
        &publish.topic,
        &publish.payload,
        publish.qos,
        publish.retain,
        publish.properties,
        origin,
        crate::clock::now(),
    );
    message.id = id;
    Ok((message, received))
}

/// Where a stored delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStage {
    /// Queued, not sent (or sent at QoS 1, which is simply sent again).
    Queued,
    /// QoS 2 PUBLISH sent with this packet identifier, PUBREC not yet received.
    Published(PacketId),
    /// QoS 2 PUBREL sent for this packet identifier, PUBCOMP not yet received.
    Released(PacketId),
}

/// One delivery of a message to a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The stored message it delivers.
    pub message: u64,
    /// QoS to deliver with.
    pub qos: QoS,
    /// Retain flag to deliver with.
    pub retain: bool,
    /// Subscription Identifiers to deliver with.
    pub subscription_ids: Vec<NonZeroU32>,
    /// The `$share/...` filter it came through, if any.
    pub shared: Option<String>,
    /// How far it got.
    pub stage: EntryStage,
}

/// An entry as bytes.
pub(super) fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(24 + 4 * entry.subscription_ids.len());
    put_entry(
        &mut out,
        entry.message,
        &Delivered {
            qos: entry.qos,
            retain: entry.retain,
            subscription_ids: &entry.subscription_ids,
            shared: entry.shared.as_deref(),
        },
        entry.stage,
    );
    out.to_vec()
}

/// How a delivery is made, borrowed from an [`Entry`] or a [`crate::message::Delivery`].
pub(super) struct Delivered<'a> {
    /// QoS to deliver with.
    pub qos: QoS,
    /// Retain flag to deliver with.
    pub retain: bool,
    /// Subscription Identifiers to deliver with.
    pub subscription_ids: &'a [NonZeroU32],
    /// The `$share/...` filter it came through, if any.
    pub shared: Option<&'a str>,
}

/// Appends an entry record (as [`encode_entry`] makes it) to `out`.
pub(super) fn put_entry(out: &mut BytesMut, message: u64, how: &Delivered<'_>, stage: EntryStage) {
    out.put_u8(LAYOUT);
    out.put_u64(message);
    out.put_u8(u8::from(how.qos) | u8::from(how.retain) << 2);
    put_stage(out, stage);
    out.put_u16(how.subscription_ids.len() as u16);
    for id in how.subscription_ids {
        out.put_u32(id.get());
    }
    put_str(out, how.shared);
}

/// Appends a stage: its kind and packet identifier (3 bytes).
pub(super) fn put_stage(out: &mut BytesMut, stage: EntryStage) {
    let (kind, packet_id) = match stage {
        EntryStage::Queued => (0, 0),
        EntryStage::Published(id) => (1, id.get()),
        EntryStage::Released(id) => (2, id.get()),
    };
    out.put_u8(kind);
    out.put_u16(packet_id);
}

/// Reads a stage written by [`put_stage`].
pub(super) fn get_stage(what: &'static str, buf: &mut Bytes) -> Result<EntryStage, RecordError> {
    need(what, buf, 3)?;
    let kind = buf.get_u8();
    match (kind, PacketId::new(buf.get_u16())) {
        (0, _) => Ok(EntryStage::Queued),
        (1, Some(id)) => Ok(EntryStage::Published(id)),
        (2, Some(id)) => Ok(EntryStage::Released(id)),
        _ => Err(bad(what, "unknown stage")),
    }
}

/// An entry read back.
pub(super) fn decode_entry(bytes: &[u8]) -> Result<Entry, RecordError> {
    get_entry(&mut Bytes::copy_from_slice(bytes))
}

/// Reads an entry record from the front of `buf`.
pub(super) fn get_entry(buf: &mut Bytes) -> Result<Entry, RecordError> {
    const WHAT: &str = "queued delivery";
    let layout = version(WHAT, buf)?;
    need(WHAT, buf, 14)?;
    let message = buf.get_u64();
    let flags = buf.get_u8();
    let qos = QoS::from_u8(flags & 0x03).map_err(|e| bad(WHAT, e))?;
    let stage = get_stage(WHAT, buf)?;
    let n = usize::from(buf.get_u16());
    need(WHAT, buf, 4 * n)?;
    let subscription_ids = (0..n)
        .filter_map(|_| NonZeroU32::new(buf.get_u32()))
        .collect();
    let shared = get_str(WHAT, buf, layout)?;
    Ok(Entry {
        message,
        qos,
        retain: flags & 0x04 != 0,
        subscription_ids,
        shared,
        stage,
    })
}

/// A subscription's options and identifier as bytes.
pub fn encode_subscription(options: SubscriptionOptions, id: Option<NonZeroU32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(6);
    out.push(LAYOUT);
    out.push(options.to_byte());
    out.extend_from_slice(&id.map_or(0, NonZeroU32::get).to_be_bytes());
    out
}

/// A subscription read back.
pub(super) fn decode_subscription(
    filter: &str,
    bytes: &[u8],
) -> Result<(TopicFilter, SubscriptionOptions, Option<NonZeroU32>), RecordError> {
    const WHAT: &str = "subscription";
    let mut buf = Bytes::copy_from_slice(bytes);
    version(WHAT, &mut buf)?;
    need(WHAT, &buf, 5)?;
    let options = SubscriptionOptions::from_byte(buf.get_u8()).map_err(|e| bad(WHAT, e))?;
    let id = NonZeroU32::new(buf.get_u32());
    let filter = TopicFilter::try_from(filter).map_err(|e| bad(WHAT, e))?;
    Ok((filter, options, id))
}

/// What the store keeps of a session besides its subscriptions and deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's store identifier: the key of its subscriptions and deliveries.
    pub uid: u64,
    /// Session Expiry Interval in seconds.
    pub expiry_interval: u32,
    /// When its client went away (wall clock, ms), `None` while connected.
    pub disconnected_at: Option<u64>,
    /// A will waiting for its Will Delay Interval, and when it is due (wall clock, ms).
    pub will: Option<(Will, u64)>,
}

/// A session record as bytes.
pub(super) fn encode_session(record: &SessionRecord) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(LAYOUT);
    out.put_u64(record.uid);
    out.put_u32(record.expiry_interval);
    out.put_u64(record.disconnected_at.map_or(u64::MAX, |t| t));
    match &record.will {
        None => out.put_u8(0),
        Some((will, due)) => {
            out.put_u8(1);
            out.put_u64(*due);
            let p = &will.properties;
            let properties = PublishProperties {
                payload_format_indicator: p.payload_format_indicator,
                message_expiry_interval: p.message_expiry_interval,
                content_type: p.content_type.clone(),
                response_topic: p.response_topic.clone(),
                correlation_data: p.correlation_data.clone(),
                user_properties: p.user_properties.clone(),
                ..Default::default()
            };
            let publish = Publish {
                dup: false,
                qos: will.qos,
                retain: will.retain,
                topic: will.topic.clone(),
                packet_id: (will.qos != QoS::AtMostOnce).then(PacketId::default),
                properties,
                payload: will.payload.clone(),
            };
            publish_bytes(publish, &mut out);
        }
    }
    out.to_vec()
}

/// A session record read back.
pub(super) fn decode_session(bytes: &[u8]) -> Result<SessionRecord, RecordError> {
    const WHAT: &str = "session";
    let mut buf = Bytes::copy_from_slice(bytes);
    version(WHAT, &mut buf)?;
    need(WHAT, &buf, 21)?;
    let uid = buf.get_u64();
    let expiry_interval = buf.get_u32();
    let disconnected_at = Some(buf.get_u64()).filter(|&t| t != u64::MAX);
    let will = match buf.get_u8() {
        0 => None,
        _ => {
            need(WHAT, &buf, 8)?;
            let due = buf.get_u64();
            let p = read_publish(WHAT, &mut buf)?;
            let properties = WillProperties {
                payload_format_indicator: p.properties.payload_format_indicator,
                message_expiry_interval: p.properties.message_expiry_interval,
                content_type: p.properties.content_type,
                response_topic: p.properties.response_topic,
                correlation_data: p.properties.correlation_data,
                user_properties: p.properties.user_properties,
                ..Default::default()
            };
            let will = Will {
                topic: p.topic,
                payload: p.payload,
                qos: p.qos,
                retain: p.retain,
                properties,
            };
            Some((will, due))
        }
    };
    Ok(SessionRecord {
        uid,
        expiry_interval,
        disconnected_at,
        will,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_written() {
        let mut properties = PublishProperties {
            message_expiry_interval: Some(30),
            ..Default::default()
        };
        properties
            .user_properties
            .push(tern_codec::UserProperty::new("k", "v").unwrap());
        let mut message = Message::detached(
            &"a/b".try_into().unwrap(),
            b"payload",
            QoS::ExactlyOnce,
            true,
            properties,
            Some("origin".into()),
            crate::clock::now(),
        );
        message.id = 42;
        let (back, received) = decode_message(&encode_message(&message, 1234)).unwrap();
        assert_eq!(received, 1234);
        assert_eq!(back.id, 42);
        assert_eq!(back.topic, message.topic);
        assert_eq!(back.payload, message.payload);
        assert_eq!(back.properties, message.properties);
        assert_eq!(back.origin, message.origin);
        assert!(back.retain && back.qos == QoS::ExactlyOnce);
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let entry = Entry {
            message: 7,
            qos: QoS::ExactlyOnce,
            retain: true,
            subscription_ids: vec![NonZeroU32::new(3).unwrap(), NonZeroU32::new(9).unwrap()],
            shared: Some("$share/g/t".into()),
            stage: EntryStage::Released(PacketId::new(12).unwrap()),
        };
        assert_eq!(decode_entry(&encode_entry(&entry)).unwrap(), entry);
    }

    #[test]
    fn a_session_reads_back_as_written() {
        let mut will = Will {
            topic: "w".try_into().unwrap(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
            ..Default::default()
        };
        will.properties.content_type = Some("text/plain".try_into().unwrap());
        let record = SessionRecord {
            uid: 5,
            expiry_interval: 3600,
            disconnected_at: Some(99),
            will: Some((will, 1000)),
        };
        assert_eq!(decode_session(&encode_session(&record)).unwrap(), record);
    }

    #[test]
    fn a_newer_layout_is_refused_with_a_reason() {
        let mut bytes = encode_subscription(SubscriptionOptions::default(), None);
        bytes[0] = LAYOUT + 1;
        let error = decode_subscription("t", &bytes).unwrap_err();
        let newer = format!("layout {}", LAYOUT + 1);
        assert!(error.to_string().contains(&newer), "{error}");
        assert!(decode_entry(&[]).is_err());
        assert!(decode_message(&[LAYOUT, 0, 0]).is_err());
    }

    /// An optional string of exactly 65,535 bytes (the longest MQTT string) reads back as
    /// itself: in layout 1 its length was the mark of a missing one.
    #[test]
    fn a_string_of_65535_bytes_reads_back_as_itself() {
        let longest = "s".repeat(usize::from(u16::MAX));
        let mut message = Message::detached(
            &"t".try_into().unwrap(),
            b"p",
            QoS::AtLeastOnce,
            false,
            Default::default(),
            Some(longest.as_str().into()),
            crate::clock::now(),
        );
        message.id = 1;
        let (back, _) = decode_message(&encode_message(&message, 0)).unwrap();
        assert_eq!(back.origin.as_deref(), Some(longest.as_str()));
        let entry = Entry {
            message: 1,
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: vec![],
            shared: Some(longest.clone()),
            stage: EntryStage::Queued,
        };
        assert_eq!(decode_entry(&encode_entry(&entry)).unwrap(), entry);
        let none = Entry {
            shared: None,
            ..entry
        };
        assert_eq!(decode_entry(&encode_entry(&none)).unwrap(), none);
    }

    /// Records a Tern of layout 1 wrote read back: a missing string was the length 65,535.
    #[test]
    fn layout_1_records_read_back() {
        let mut old = BytesMut::new();
        old.put_u8(1);
        old.put_u64(7); // message
        old.put_u8(u8::from(QoS::AtLeastOnce));
        old.put_u8(1); // stage: published, packet identifier 5
        old.put_u16(5);
        old.put_u16(0); // no subscription identifiers
        old.put_u16(u16::MAX); // no `$share` filter
        let entry = decode_entry(&old).unwrap();
        assert_eq!(entry.message, 7);
        assert_eq!(entry.shared, None);
        assert_eq!(
            entry.stage,
            EntryStage::Published(PacketId::new(5).unwrap())
        );
        let mut shared = old.clone();
        shared.truncate(shared.len() - 2);
        shared.put_u16(3);
        shared.put_slice(b"$sh");
        assert_eq!(
            decode_entry(&shared).unwrap().shared.as_deref(),
            Some("$sh")
        );
    }
}
