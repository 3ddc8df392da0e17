//! PUBLISH (§3.3): an application message on its way.

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::packet::{read_packet_id, PacketType};
use crate::properties::PublishProperties;
use crate::property::PropertySet;
use crate::qos::{PacketId, QoS};
use crate::topic::TopicName;
use crate::version::ProtocolVersion;
use crate::wire::{binary_len, put_binary, put_variable_integer, Reader, MAX_VARIABLE_INTEGER};

const RETAIN: u8 = 0x01;
const QOS_SHIFT: u8 = 1;
const DUP: u8 = 0x08;

/// A PUBLISH packet. The payload is shared, never copied: decoding cuts it from the frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publish {
    /// Set when this is a redelivery of a QoS 1 or 2 message.
    pub dup: bool,
    /// The quality of service.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// The topic; empty only in MQTT 5.0 when a Topic Alias stands for it.
    pub topic: TopicName,
    /// Present exactly when `qos` is 1 or 2; [`Publish::encode`] writes 0 for a missing one,
    /// which a receiver rejects.
    pub packet_id: Option<PacketId>,
    /// PUBLISH properties (5.0).
    pub properties: PublishProperties,
    /// The application message.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 message, not retained, without properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Publish {
            topic,
            payload: payload.into(),
            ..Default::default()
        }
    }

    pub(crate) fn flags(&self) -> u8 {
        let mut flags = u8::from(self.qos) << QOS_SHIFT;
        if self.dup {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    pub(crate) fn decode(
        flags: u8,
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_u8((flags >> QOS_SHIFT) & 0x03)?;
        let dup = flags & DUP != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::DupOnQoS0);
        }
        let topic = TopicName::new_or_empty(r.string()?)?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(read_packet_id(r)?)
        };
        let properties = if version.is_v5() {
            PublishProperties::decode(r)?
        } else {
            Default::default()
        };
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopic);
        }
        Ok(Publish {
            dup,
            qos,
            retain: flags & RETAIN != 0,
            topic,
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    /// Exact encoded size of this PUBLISH, fixed header included, without building a
    /// [`Packet`](crate::Packet) around it.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        let body = self.body_len(version);
        1 + crate::wire::variable_integer_len(body) + body
    }

    /// Appends this PUBLISH, encoded for `version`, to `buf`: what
    /// [`Packet::encode`](crate::Packet::encode) writes for it, without moving it into a
    /// [`Packet`](crate::Packet) first. Fails, and writes nothing, when a property cannot be
    /// represented (a Subscription Identifier over 268,435,455, Binary Data over 65,535
    /// bytes) or the body is over the largest remaining length.
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        if version.is_v5() {
            self.properties.check_encodable()?;
        }
        let body = self.body_len(version);
        if body > MAX_VARIABLE_INTEGER as usize {
            return Err(EncodeError::TooLarge(body));
        }
        buf.put_u8((PacketType::Publish as u8) << 4 | self.flags());
        put_variable_integer(buf, body);
        self.encode_body(version, buf);
        Ok(())
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        let mut len = binary_len(self.topic.as_bytes()) + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            len += 2;
        }
        if version.is_v5() {
            len += self.properties.encoded_len();
        }
        len
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        put_binary(buf, self.topic.as_bytes());
        if self.qos != QoS::AtMostOnce {
            buf.put_u16(self.packet_id.map_or(0, PacketId::get));
        }
        if version.is_v5() {
            self.properties.encode(buf);
        }
        buf.put_slice(&self.payload);
    }
}
