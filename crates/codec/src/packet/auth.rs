//! AUTH (§3.15): the extended authentication exchange of MQTT 5.0.

use bytes::BufMut;

use crate::error::DecodeError;
use crate::packet::read_reason_code;
use crate::properties::AuthProperties;
use crate::property::PropertySet;
use crate::reason::ReasonCode;
use crate::wire::Reader;

/// An AUTH packet (MQTT 5.0 only). Empty on the wire when it is Success without properties.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason_code: ReasonCode,
    /// Authentication method and data, reason string, user properties.
    pub properties: AuthProperties,
}

impl Auth {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut auth = Auth::default();
        if !r.is_empty() {
            auth.reason_code = read_reason_code(r)?;
            if !r.is_empty() {
                auth.properties = AuthProperties::decode(r)?;
            }
        }
        Ok(auth)
    }

    pub(crate) fn body_len(&self) -> usize {
        match (self.reason_code, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 0,
            (_, true) => 1,
            (_, false) => 1 + self.properties.encoded_len(),
        }
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        let len = self.body_len();
        if len > 0 {
            buf.put_u8(self.reason_code.into());
        }
        if len > 1 {
            self.properties.encode(buf);
        }
    }
}
