//! Quality of service levels (§4.3) and packet identifiers (§2.2.1).

use std::num::NonZeroU16;

use crate::error::DecodeError;

/// A quality of service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: at most once.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: at least once.
    AtLeastOnce = 1,
    /// QoS 2: exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The level for 0, 1 or 2; QoS 3 does not exist [MQTT-3.3.1-4].
    pub fn from_u8(value: u8) -> Result<Self, DecodeError> {
        match value {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            _ => Err(DecodeError::InvalidQoS),
        }
    }
}

impl From<QoS> for u8 {
    fn from(qos: QoS) -> u8 {
        qos as u8
    }
}

/// A packet identifier: never 0 [MQTT-2.2.1-3].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The identifier for a non-zero value.
    pub fn new(value: u16) -> Option<Self> {
        NonZeroU16::new(value).map(PacketId)
    }

    /// The numeric value.
    pub fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier after this one, wrapping from 65,535 to 1.
    pub fn next(self) -> Self {
        PacketId(NonZeroU16::new(self.get().wrapping_add(1)).unwrap_or(NonZeroU16::MIN))
    }
}

impl Default for PacketId {
    fn default() -> Self {
        PacketId(NonZeroU16::MIN)
    }
}

impl std::fmt::Display for PacketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_wrap_past_zero() {
        assert_eq!(PacketId::new(0), None);
        assert_eq!(PacketId::new(65535).unwrap().next().get(), 1);
        assert_eq!(PacketId::new(7).unwrap().next().get(), 8);
    }

    #[test]
    fn qos_three_is_rejected_3_3_1_4() {
        assert_eq!(QoS::from_u8(3), Err(DecodeError::InvalidQoS));
        assert_eq!(QoS::from_u8(2), Ok(QoS::ExactlyOnce));
    }
}
