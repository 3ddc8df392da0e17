//! [`ClientId`]: the client identifier of CONNECT (§3.1.3.1).

use std::fmt;

use crate::error::DecodeError;
use crate::string::MqttString;

/// A client identifier: any MQTT string, possibly empty (the server then assigns one).
///
/// Every server must accept 1 to 23 characters of `0-9a-zA-Z` [MQTT-3.1.3-5]; Tern accepts
/// any valid string up to the broker's configured length, and [`ClientId::is_portable`]
/// tells whether an identifier stays within the guaranteed set.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClientId(MqttString);

impl ClientId {
    /// Wraps a validated string.
    pub fn new(id: MqttString) -> Self {
        ClientId(id)
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The identifier as a string value.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty identifier, which asks the server to assign one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when 1 to 23 bytes of `0-9a-zA-Z`, which every server must accept [MQTT-3.1.3-5].
    pub fn is_portable(&self) -> bool {
        (1..=23).contains(&self.len()) && self.0.as_bytes().iter().all(u8::is_ascii_alphanumeric)
    }

    /// A copy that owns exactly its bytes (see [`MqttString::detached`]).
    pub fn detached(&self) -> Self {
        ClientId(self.0.detached())
    }
}

impl TryFrom<&str> for ClientId {
    type Error = DecodeError;

    fn try_from(s: &str) -> Result<Self, DecodeError> {
        Ok(ClientId(MqttString::try_from(s)?))
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
