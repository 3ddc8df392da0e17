//! CONNACK (§3.2): the server's answer to CONNECT.

use bytes::BufMut;

use crate::error::DecodeError;
use crate::packet::{read_reason_code, PacketType};
use crate::properties::ConnAckProperties;
use crate::property::PropertySet;
use crate::reason::ReasonCode;
use crate::version::ProtocolVersion;
use crate::wire::Reader;

/// A CONNACK packet. For MQTT 3.x the reason code maps to a return code 0-5
/// ([`ReasonCode::to_v3_connack`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck {
    /// Whether the server resumed a session it held for this client. Always false in MQTT
    /// 3.1, which has no such flag.
    pub session_present: bool,
    /// How the connection attempt ended.
    pub reason_code: ReasonCode,
    /// CONNACK properties (5.0).
    pub properties: ConnAckProperties,
}

impl ConnAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        // MQTT 3.1 does not use this byte ("Reserved values. Not used.") and has no Session
        // Present flag: it is ignored, as `encode_body` writes it as 0. Later versions use
        // bit 0 and reserve bits 7-1 [MQTT-3.2.2-1].
        let session_present = match version {
            ProtocolVersion::V3_1 => false,
            _ if flags & 0xFE != 0 => return Err(DecodeError::ConnAckReservedFlags),
            _ => flags & 1 != 0,
        };
        let (reason_code, properties) = if version.is_v5() {
            (read_reason_code(r)?, ConnAckProperties::decode(r)?)
        } else {
            let code = r.u8()?;
            let reason =
                ReasonCode::from_v3_connack(code).ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::ConnAck,
                    code,
                })?;
            (reason, ConnAckProperties::default())
        };
        Ok(ConnAck {
            session_present,
            reason_code,
            properties,
        })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            2 + self.properties.encoded_len()
        } else {
            2
        }
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        // MQTT 3.1 has no Session Present flag: the byte is reserved and sent as 0.
        let session_present = self.session_present && version != ProtocolVersion::V3_1;
        buf.put_u8(u8::from(session_present));
        if version.is_v5() {
            buf.put_u8(self.reason_code.into());
            self.properties.encode(buf);
        } else {
            buf.put_u8(self.reason_code.to_v3_connack());
        }
    }
}
