//! PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4-§3.7): one shape, four packet types.

use bytes::BufMut;

use crate::error::DecodeError;
use crate::packet::{read_packet_id, read_reason_code};
use crate::properties::AckProperties;
use crate::property::PropertySet;
use crate::qos::PacketId;
use crate::reason::ReasonCode;
use crate::version::ProtocolVersion;
use crate::wire::Reader;

/// The body of PUBACK, PUBREC, PUBREL and PUBCOMP: a packet identifier and, in MQTT 5.0, a
/// reason code and properties. The reason code and properties are left out on the wire when
/// they are Success and empty (§3.4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubResponse {
    /// The identifier of the PUBLISH (or PUBREL) this answers.
    pub packet_id: PacketId,
    /// The outcome (5.0).
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: AckProperties,
}

impl PubResponse {
    /// A successful response for `packet_id`.
    pub fn new(packet_id: PacketId) -> Self {
        PubResponse {
            packet_id,
            ..Default::default()
        }
    }

    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let mut response = PubResponse::new(packet_id);
        if version.is_v5() && !r.is_empty() {
            response.reason_code = read_reason_code(r)?;
            if !r.is_empty() {
                response.properties = AckProperties::decode(r)?;
            }
        }
        Ok(response)
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        if !version.is_v5() {
            return 2;
        }
        match (self.reason_code, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 2,
            (_, true) => 3,
            (_, false) => 3 + self.properties.encoded_len(),
        }
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        let len = self.body_len(version);
        if len > 2 {
            buf.put_u8(self.reason_code.into());
        }
        if len > 3 {
            self.properties.encode(buf);
        }
    }
}
