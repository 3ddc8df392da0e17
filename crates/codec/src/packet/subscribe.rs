//! SUBSCRIBE and SUBACK (§3.8, §3.9).

use bytes::BufMut;

use crate::error::DecodeError;
use crate::packet::{read_packet_id, read_reason_code, PacketType};
use crate::properties::{AckProperties, SubscribeProperties};
use crate::property::PropertySet;
use crate::qos::{PacketId, QoS};
use crate::reason::ReasonCode;
use crate::topic::TopicFilter;
use crate::version::ProtocolVersion;
use crate::wire::{binary_len, put_binary, Reader};

/// Whether retained messages are sent when a subscription is made (§3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe,
    /// 1: send them only if the subscription did not exist before.
    SendIfNew,
    /// 2: do not send them.
    DoNotSend,
}

/// The options byte of each SUBSCRIBE topic filter. MQTT 3.x has only the QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS of messages sent for this subscription.
    pub qos: QoS,
    /// 5.0: do not forward messages this client published itself.
    pub no_local: bool,
    /// 5.0: keep the retain flag of forwarded messages as published.
    pub retain_as_published: bool,
    /// 5.0: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this QoS and every MQTT 5.0 option at its default.
    pub fn with_qos(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            ..Default::default()
        }
    }

    /// The options as the MQTT 5.0 options byte (§3.8.3.1), for storing them.
    pub fn to_byte(&self) -> u8 {
        self.encode(ProtocolVersion::V5)
    }

    /// Options from an MQTT 5.0 options byte; reserved bits set are an error.
    pub fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        Self::decode(byte, ProtocolVersion::V5)
    }

    fn decode(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = if version.is_v5() { 0xC0 } else { 0xFC };
        if byte & reserved != 0 {
            return Err(DecodeError::ReservedSubscriptionOptions(byte));
        }
        let qos = QoS::from_u8(byte & 0x03).map_err(|_| DecodeError::InvalidSubscriptionOptions)?;
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidSubscriptionOptions),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }

    fn encode(&self, version: ProtocolVersion) -> u8 {
        let mut byte = u8::from(self.qos);
        if version.is_v5() {
            byte |= u8::from(self.no_local) << 2 | u8::from(self.retain_as_published) << 3;
            byte |= match self.retain_handling {
                RetainHandling::SendAtSubscribe => 0,
                RetainHandling::SendIfNew => 1 << 4,
                RetainHandling::DoNotSend => 2 << 4,
            };
        }
        byte
    }
}

/// A SUBSCRIBE packet: at least one topic filter with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Identifier echoed in the SUBACK.
    pub packet_id: PacketId,
    /// SUBSCRIBE properties (5.0).
    pub properties: SubscribeProperties,
    /// The filters, in order; never empty when decoded [MQTT-3.8.3-2].
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
}

impl Subscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if version.is_v5() {
            SubscribeProperties::decode(r)?
        } else {
            Default::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = TopicFilter::new(r.string()?)?;
            let options = SubscriptionOptions::decode(r.u8()?, version)?;
            if options.no_local && filter.is_shared() && version.is_v5() {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(DecodeError::EmptySubscribe);
        }
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        let mut len = 2;
        if version.is_v5() {
            len += self.properties.encoded_len();
        }
        for (filter, _) in &self.filters {
            len += binary_len(filter.as_bytes()) + 1;
        }
        len
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
        }
        for (filter, options) in &self.filters {
            put_binary(buf, filter.as_bytes());
            buf.put_u8(options.encode(version));
        }
    }
}

/// A SUBACK packet: one reason code per filter of the SUBSCRIBE, in order.
///
/// MQTT 3.x knows Granted QoS 0/1/2 and Failure (0x80); other failure codes are sent to a
/// 3.x client as 0x80.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubAck {
    /// The SUBSCRIBE's identifier.
    pub packet_id: PacketId,
    /// Properties (5.0).
    pub properties: AckProperties,
    /// Granted QoS or failure, one per filter.
    pub reason_codes: Vec<ReasonCode>,
}

impl SubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if version.is_v5() {
            AckProperties::decode(r)?
        } else {
            Default::default()
        };
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let code = read_reason_code(r)?;
            if !version.is_v5() && code.is_error() && code != ReasonCode::UnspecifiedError {
                return Err(DecodeError::InvalidReasonCode {
                    packet: PacketType::SubAck,
                    code: code.into(),
                });
            }
            reason_codes.push(code);
        }
        Ok(SubAck {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        let properties = if version.is_v5() {
            self.properties.encoded_len()
        } else {
            0
        };
        2 + properties + self.reason_codes.len()
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
        }
        for &code in &self.reason_codes {
            let code = if !version.is_v5() && code.is_error() {
                ReasonCode::UnspecifiedError
            } else {
                code
            };
            buf.put_u8(code.into());
        }
    }
}
