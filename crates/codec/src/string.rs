//! [`MqttString`]: a UTF-8 Encoded String (§1.5.4) validated once, held as shared [`Bytes`].

use std::fmt;

use bytes::Bytes;

use crate::error::DecodeError;

/// The longest string the two byte length prefix can describe.
pub const MAX_STRING_LEN: usize = 65_535;

/// A UTF-8 Encoded String as MQTT defines it: well-formed UTF-8 (so no surrogates), no U+0000,
/// at most 65,535 bytes. Cloning it shares the bytes; decoding cuts it from the frame.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttString(Bytes);

impl MqttString {
    /// Validates `bytes` against [MQTT-1.5.4-1] and [MQTT-1.5.4-2].
    pub fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        Self::check(&bytes)?;
        Ok(MqttString(bytes))
    }

    /// Checks the rules of §1.5.4 on raw bytes.
    pub fn check(bytes: &[u8]) -> Result<(), DecodeError> {
        if bytes.len() > MAX_STRING_LEN {
            return Err(DecodeError::StringTooLong(bytes.len()));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        if s.contains('\0') {
            return Err(DecodeError::NullCharacter);
        }
        Ok(())
    }

    /// Builds a string from static text (for constants and tests).
    pub fn from_static(s: &'static str) -> Result<Self, DecodeError> {
        Self::from_bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The text. Validated at construction, so this never fails.
    pub fn as_str(&self) -> &str {
        // The bytes were checked to be UTF-8 when this value was built and `Bytes` is
        // immutable, so the error branch is unreachable; it returns "" rather than panic.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The encoded bytes, without the length prefix.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared buffer holding the text.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy that owns exactly its bytes, so that keeping it does not pin a larger frame.
    pub fn detached(&self) -> Self {
        MqttString(Bytes::copy_from_slice(&self.0))
    }
}

impl TryFrom<&str> for MqttString {
    type Error = DecodeError;

    fn try_from(s: &str) -> Result<Self, DecodeError> {
        Self::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<String> for MqttString {
    type Error = DecodeError;

    fn try_from(s: String) -> Result<Self, DecodeError> {
        Self::from_bytes(Bytes::from(s))
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_standards_example() {
        // MQTT 5.0 §1.5.4 figure 1-1: "A\u{2A6D4}" encodes as 00 05 41 F0 AA 9B 94.
        let s =
            MqttString::from_bytes(Bytes::from_static(&[0x41, 0xF0, 0xAA, 0x9B, 0x94])).unwrap();
        assert_eq!(s.as_str(), "A\u{2A6D4}");
    }

    #[test]
    fn rejects_null_and_surrogates() {
        assert_eq!(
            MqttString::try_from("a\0b"),
            Err(DecodeError::NullCharacter)
        );
        // U+D800 encoded as if it were a scalar value: ED A0 80.
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(&[0xED, 0xA0, 0x80])),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(&[0xC3, 0x28])),
            Err(DecodeError::InvalidUtf8)
        );
    }
}
