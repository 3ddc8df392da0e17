//! Reason Strings on the broker's refusals: when they may be sent and how large.
//!
//! The rules:
//!
//! - A refusing CONNACK and a DISCONNECT from the broker carry a Reason String saying what
//!   went wrong and which rule, only for MQTT 5.0 clients that left Request Problem
//!   Information at 1. With 0 the standard still allows one on CONNACK and DISCONNECT
//!   [MQTT-3.1.2-29]; Tern sends none, as the client asked.
//! - A Reason String is left out when it would make the packet larger than the client's
//!   Maximum Packet Size (CONNACK [MQTT-3.2.2-19], DISCONNECT [MQTT-3.14.2-3]).
//! - No other packet gets a Reason String or User Property from the broker.

use tern_codec::{ConnAck, Connect, Disconnect, MqttString, Packet, ProtocolVersion, ReasonCode};

/// Whether, and how large, Reason Strings may be sent to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Problems {
    /// The client is MQTT 5.0 and did not set Request Problem Information to 0.
    pub allowed: bool,
    /// The client's Maximum Packet Size, if it set one.
    pub max_packet_size: Option<u32>,
}

impl Problems {
    /// What `connect` allows.
    pub fn of(connect: &Connect) -> Self {
        Problems {
            allowed: connect.protocol.is_v5()
                && connect.properties.request_problem_information != Some(false),
            max_packet_size: connect.properties.maximum_packet_size.map(|m| m.get()),
        }
    }

    /// A DISCONNECT with `reason`, and `why` as its Reason String when allowed.
    pub fn disconnect(&self, reason: ReasonCode, why: &str) -> Packet {
        let mut disconnect = Disconnect::new(reason);
        if self.allowed {
            disconnect.properties.reason_string = MqttString::try_from(why).ok();
        }
        self.fit(Packet::Disconnect(disconnect))
    }

    /// A refusing CONNACK with `reason`, and `why` as its Reason String when allowed.
    pub fn refusal(&self, reason: ReasonCode, why: &str) -> Packet {
        let mut connack = ConnAck {
            reason_code: reason,
            ..Default::default()
        };
        if self.allowed {
            connack.properties.reason_string = MqttString::try_from(why).ok();
        }
        self.fit(Packet::ConnAck(connack))
    }

    /// Drops the Reason String when the packet would exceed the client's maximum.
    fn fit(&self, mut packet: Packet) -> Packet {
        let Some(max) = self.max_packet_size else {
            return packet;
        };
        if packet.encoded_len(ProtocolVersion::V5) as u64 > u64::from(max) {
            match &mut packet {
                Packet::Disconnect(d) => d.properties.reason_string = None,
                Packet::ConnAck(c) => c.properties.reason_string = None,
                _ => {}
            }
        }
        packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_string(packet: &Packet) -> Option<&str> {
        match packet {
            Packet::Disconnect(d) => d.properties.reason_string.as_ref().map(|s| s.as_str()),
            Packet::ConnAck(c) => c.properties.reason_string.as_ref().map(|s| s.as_str()),
            _ => None,
        }
    }

    #[test]
    fn reason_strings_follow_request_problem_information_3_1_2_29() {
        let mut connect = Connect {
            protocol: ProtocolVersion::V5,
            ..Default::default()
        };
        let allowed = Problems::of(&connect);
        let packet = allowed.disconnect(ReasonCode::ProtocolError, "[MQTT-x] why");
        assert_eq!(reason_string(&packet), Some("[MQTT-x] why"));
        connect.properties.request_problem_information = Some(false);
        let refused = Problems::of(&connect);
        assert_eq!(
            reason_string(&refused.refusal(ReasonCode::NotAuthorized, "w")),
            None
        );
        connect.protocol = ProtocolVersion::V3_1_1;
        connect.properties.request_problem_information = None;
        assert!(!Problems::of(&connect).allowed);
    }

    #[test]
    fn reason_strings_never_exceed_the_maximum_packet_size_3_2_2_19() {
        let why = "x".repeat(100);
        let problems = Problems {
            allowed: true,
            max_packet_size: Some(50),
        };
        let packet = problems.refusal(ReasonCode::NotAuthorized, &why);
        assert_eq!(reason_string(&packet), None);
        assert!(packet.encoded_len(ProtocolVersion::V5) <= 50);
        let packet = problems.disconnect(ReasonCode::ProtocolError, &why);
        assert_eq!(reason_string(&packet), None, "[MQTT-3.14.2-3]");
        let packet = problems.disconnect(ReasonCode::ProtocolError, "short");
        assert_eq!(reason_string(&packet), Some("short"));
    }
}
