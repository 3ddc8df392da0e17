//! UNSUBSCRIBE and UNSUBACK (§3.10, §3.11).

use bytes::BufMut;

use crate::error::DecodeError;
use crate::packet::{read_packet_id, read_reason_code};
use crate::properties::{AckProperties, UnsubscribeProperties};
use crate::property::PropertySet;
use crate::qos::PacketId;
use crate::reason::ReasonCode;
use crate::topic::TopicFilter;
use crate::version::ProtocolVersion;
use crate::wire::{binary_len, put_binary, Reader};

/// An UNSUBSCRIBE packet: at least one topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Identifier echoed in the UNSUBACK.
    pub packet_id: PacketId,
    /// Properties (5.0).
    pub properties: UnsubscribeProperties,
    /// The filters to remove; never empty when decoded [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if version.is_v5() {
            UnsubscribeProperties::decode(r)?
        } else {
            Default::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(TopicFilter::new(r.string()?)?);
        }
        if filters.is_empty() {
            return Err(DecodeError::EmptyUnsubscribe);
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        let properties = if version.is_v5() {
            self.properties.encoded_len()
        } else {
            0
        };
        2 + properties
            + self
                .filters
                .iter()
                .map(|f| binary_len(f.as_bytes()))
                .sum::<usize>()
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
        }
        for filter in &self.filters {
            put_binary(buf, filter.as_bytes());
        }
    }
}

/// An UNSUBACK packet. MQTT 3.x UNSUBACK carries only the packet identifier, so
/// `reason_codes` is empty there; in 5.0 it has one code per filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnsubAck {
    /// The UNSUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// Properties (5.0).
    pub properties: AckProperties,
    /// One outcome per filter (5.0).
    pub reason_codes: Vec<ReasonCode>,
}

impl UnsubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let mut ack = UnsubAck {
            packet_id,
            ..Default::default()
        };
        if version.is_v5() {
            ack.properties = AckProperties::decode(r)?;
            while !r.is_empty() {
                ack.reason_codes.push(read_reason_code(r)?);
            }
        }
        Ok(ack)
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            2 + self.properties.encoded_len() + self.reason_codes.len()
        } else {
            2
        }
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
            for &code in &self.reason_codes {
                buf.put_u8(code.into());
            }
        }
    }
}
