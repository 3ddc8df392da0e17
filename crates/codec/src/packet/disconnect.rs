//! DISCONNECT (§3.14).

use bytes::BufMut;

use crate::error::DecodeError;
use crate::packet::read_reason_code;
use crate::properties::DisconnectProperties;
use crate::property::PropertySet;
use crate::reason::ReasonCode;
use crate::version::ProtocolVersion;
use crate::wire::Reader;

/// A DISCONNECT packet. MQTT 3.x DISCONNECT is empty; in 5.0 either side may send it with a
/// reason code, left out on the wire when it is Normal disconnection without properties.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Why the connection ends (5.0).
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with this reason code and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Disconnect {
            reason_code,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut disconnect = Disconnect::default();
        if version.is_v5() && !r.is_empty() {
            disconnect.reason_code = read_reason_code(r)?;
            if !r.is_empty() {
                disconnect.properties = DisconnectProperties::decode(r)?;
            }
        }
        Ok(disconnect)
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        if !version.is_v5() {
            return 0;
        }
        match (self.reason_code, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 0,
            (_, true) => 1,
            (_, false) => 1 + self.properties.encoded_len(),
        }
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        let len = self.body_len(version);
        if len > 0 {
            buf.put_u8(self.reason_code.into());
        }
        if len > 1 {
            self.properties.encode(buf);
        }
    }
}
