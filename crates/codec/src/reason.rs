//! Reason codes (MQTT 5.0 §2.4) and their MQTT 3.x counterparts.
//!
//! MQTT 5.0 gives one byte to say how an operation ended. Several names share a value
//! (0x00 is Success, Normal disconnection and Granted QoS 0); [`ReasonCode`] keeps one variant
//! per value and documents the other names. Which codes a packet may carry is decided by
//! [`ReasonCode::is_valid_for`], following the tables of §3.2.2.2, §3.4.2.1 and so on.
//!
//! MQTT 3.1 and 3.1.1 have CONNACK return codes 0-5 and SUBACK return codes 0x00-0x02 and
//! 0x80; [`ReasonCode::to_v3_connack`] and [`ReasonCode::from_v3_connack`] translate.

use crate::packet::PacketType;

macro_rules! reason_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, )*) => {
        /// An MQTT 5.0 reason code (§2.4), also used for MQTT 3.x return codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(u8)]
        pub enum ReasonCode {
            $( $(#[$doc])* $name = $value, )*
        }

        impl ReasonCode {
            /// Every reason code, in ascending order of value.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$name,)*];

            /// The reason code with this value, if the standard defines one.
            pub fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $( $value => Some(ReasonCode::$name), )*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    /// 0x00: Success; also Normal disconnection (DISCONNECT) and Granted QoS 0 (SUBACK).
    #[default]
    Success = 0x00,
    /// 0x01: Granted QoS 1 (SUBACK).
    GrantedQoS1 = 0x01,
    /// 0x02: Granted QoS 2 (SUBACK).
    GrantedQoS2 = 0x02,
    /// 0x04: Disconnect with Will Message (DISCONNECT from the client).
    DisconnectWithWill = 0x04,
    /// 0x10: No matching subscribers (PUBACK, PUBREC).
    NoMatchingSubscribers = 0x10,
    /// 0x11: No subscription existed (UNSUBACK).
    NoSubscriptionExisted = 0x11,
    /// 0x18: Continue authentication (AUTH).
    ContinueAuthentication = 0x18,
    /// 0x19: Re-authenticate (AUTH from the client).
    ReAuthenticate = 0x19,
    /// 0x80: Unspecified error.
    UnspecifiedError = 0x80,
    /// 0x81: Malformed Packet.
    MalformedPacket = 0x81,
    /// 0x82: Protocol Error.
    ProtocolError = 0x82,
    /// 0x83: Implementation specific error.
    ImplementationSpecificError = 0x83,
    /// 0x84: Unsupported Protocol Version (CONNACK).
    UnsupportedProtocolVersion = 0x84,
    /// 0x85: Client Identifier not valid (CONNACK).
    ClientIdentifierNotValid = 0x85,
    /// 0x86: Bad User Name or Password (CONNACK).
    BadUserNameOrPassword = 0x86,
    /// 0x87: Not authorized.
    NotAuthorized = 0x87,
    /// 0x88: Server unavailable (CONNACK).
    ServerUnavailable = 0x88,
    /// 0x89: Server busy.
    ServerBusy = 0x89,
    /// 0x8A: Banned (CONNACK).
    Banned = 0x8A,
    /// 0x8B: Server shutting down (DISCONNECT).
    ServerShuttingDown = 0x8B,
    /// 0x8C: Bad authentication method.
    BadAuthenticationMethod = 0x8C,
    /// 0x8D: Keep Alive timeout (DISCONNECT).
    KeepAliveTimeout = 0x8D,
    /// 0x8E: Session taken over (DISCONNECT).
    SessionTakenOver = 0x8E,
    /// 0x8F: Topic Filter invalid.
    TopicFilterInvalid = 0x8F,
    /// 0x90: Topic Name invalid.
    TopicNameInvalid = 0x90,
    /// 0x91: Packet Identifier in use.
    PacketIdentifierInUse = 0x91,
    /// 0x92: Packet Identifier not found.
    PacketIdentifierNotFound = 0x92,
    /// 0x93: Receive Maximum exceeded (DISCONNECT).
    ReceiveMaximumExceeded = 0x93,
    /// 0x94: Topic Alias invalid (DISCONNECT).
    TopicAliasInvalid = 0x94,
    /// 0x95: Packet too large.
    PacketTooLarge = 0x95,
    /// 0x96: Message rate too high (DISCONNECT).
    MessageRateTooHigh = 0x96,
    /// 0x97: Quota exceeded.
    QuotaExceeded = 0x97,
    /// 0x98: Administrative action (DISCONNECT).
    AdministrativeAction = 0x98,
    /// 0x99: Payload format invalid.
    PayloadFormatInvalid = 0x99,
    /// 0x9A: Retain not supported.
    RetainNotSupported = 0x9A,
    /// 0x9B: QoS not supported.
    QoSNotSupported = 0x9B,
    /// 0x9C: Use another server.
    UseAnotherServer = 0x9C,
    /// 0x9D: Server moved.
    ServerMoved = 0x9D,
    /// 0x9E: Shared Subscriptions not supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// 0x9F: Connection rate exceeded.
    ConnectionRateExceeded = 0x9F,
    /// 0xA0: Maximum connect time (DISCONNECT).
    MaximumConnectTime = 0xA0,
    /// 0xA1: Subscription Identifiers not supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// 0xA2: Wildcard Subscriptions not supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// DISCONNECT's name for 0x00.
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode::Success;
    /// SUBACK's name for 0x00.
    pub const GRANTED_QOS0: ReasonCode = ReasonCode::Success;

    /// True for codes of 0x80 and above, which report a failure.
    pub fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// Whether the standard allows this code in a packet of the given type (MQTT 5.0 tables
    /// in §3.2.2.2 CONNACK, §3.4.2.1 PUBACK, §3.5.2.1 PUBREC, §3.6.2.1 PUBREL, §3.7.2.1
    /// PUBCOMP, §3.9.3 SUBACK, §3.11.3 UNSUBACK, §3.14.2.1 DISCONNECT, §3.15.2.1 AUTH).
    pub fn is_valid_for(self, packet: PacketType) -> bool {
        use ReasonCode::*;
        let v = self as u8;
        match packet {
            PacketType::ConnAck => {
                matches!(self, Success) || ((0x80..=0x9F).contains(&v) && !self.connack_excluded())
            }
            PacketType::PubAck | PacketType::PubRec => matches!(
                self,
                Success
                    | NoMatchingSubscribers
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicNameInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | PayloadFormatInvalid
            ),
            PacketType::PubRel | PacketType::PubComp => {
                matches!(self, Success | PacketIdentifierNotFound)
            }
            PacketType::SubAck => matches!(
                self,
                Success
                    | GrantedQoS1
                    | GrantedQoS2
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | SharedSubscriptionsNotSupported
                    | SubscriptionIdentifiersNotSupported
                    | WildcardSubscriptionsNotSupported
            ),
            PacketType::UnsubAck => matches!(
                self,
                Success
                    | NoSubscriptionExisted
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
            ),
            PacketType::Disconnect => {
                matches!(self, Success | DisconnectWithWill)
                    || (v >= 0x80
                        && !matches!(
                            self,
                            UnsupportedProtocolVersion
                                | ClientIdentifierNotValid
                                | BadUserNameOrPassword
                                | ServerUnavailable
                                | Banned
                                | BadAuthenticationMethod
                                | PacketIdentifierInUse
                                | PacketIdentifierNotFound
                        ))
            }
            PacketType::Auth => matches!(self, Success | ContinueAuthentication | ReAuthenticate),
            _ => false,
        }
    }

    /// Codes between 0x80 and 0x9F that CONNACK may not carry.
    fn connack_excluded(self) -> bool {
        use ReasonCode::*;
        matches!(
            self,
            ServerShuttingDown
                | KeepAliveTimeout
                | SessionTakenOver
                | TopicFilterInvalid
                | PacketIdentifierInUse
                | PacketIdentifierNotFound
                | ReceiveMaximumExceeded
                | TopicAliasInvalid
                | MessageRateTooHigh
                | AdministrativeAction
                | SharedSubscriptionsNotSupported
        )
    }

    /// The MQTT 3.1 / 3.1.1 CONNACK return code (§3.2.2.3 of 3.1.1) closest to this code.
    pub fn to_v3_connack(self) -> u8 {
        use ReasonCode::*;
        match self {
            Success => 0,
            UnsupportedProtocolVersion => 1,
            ClientIdentifierNotValid => 2,
            BadUserNameOrPassword | BadAuthenticationMethod => 4,
            NotAuthorized | Banned => 5,
            _ => 3,
        }
    }

    /// The reason code for an MQTT 3.1 / 3.1.1 CONNACK return code, if it is defined.
    pub fn from_v3_connack(code: u8) -> Option<Self> {
        use ReasonCode::*;
        Some(match code {
            0 => Success,
            1 => UnsupportedProtocolVersion,
            2 => ClientIdentifierNotValid,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }
}

impl From<ReasonCode> for u8 {
    fn from(code: ReasonCode) -> u8 {
        code as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for &code in ReasonCode::ALL {
            assert_eq!(ReasonCode::from_u8(code as u8), Some(code));
        }
        assert_eq!(ReasonCode::ALL.len(), 43);
        assert_eq!(ReasonCode::from_u8(0x03), None);
        assert_eq!(ReasonCode::from_u8(0xA3), None);
    }

    #[test]
    fn v3_connack_codes_round_trip() {
        for code in 0..=5u8 {
            let reason = ReasonCode::from_v3_connack(code).unwrap();
            assert_eq!(reason.to_v3_connack(), code);
        }
        assert_eq!(ReasonCode::from_v3_connack(6), None);
    }

    #[test]
    fn per_packet_tables() {
        use ReasonCode::*;
        assert!(Banned.is_valid_for(PacketType::ConnAck));
        assert!(!SessionTakenOver.is_valid_for(PacketType::ConnAck));
        assert!(SessionTakenOver.is_valid_for(PacketType::Disconnect));
        assert!(!Banned.is_valid_for(PacketType::Disconnect));
        assert!(NoMatchingSubscribers.is_valid_for(PacketType::PubAck));
        assert!(!NoMatchingSubscribers.is_valid_for(PacketType::PubRel));
        assert!(GrantedQoS2.is_valid_for(PacketType::SubAck));
        assert!(NoSubscriptionExisted.is_valid_for(PacketType::UnsubAck));
        assert!(ReAuthenticate.is_valid_for(PacketType::Auth));
        assert!(!ProtocolError.is_valid_for(PacketType::Auth));
    }
}
