//! Decode and encode errors.
//!
//! Every way a packet can be malformed or break a protocol rule is its own [`DecodeError`]
//! variant. Its message names the normative statement it breaks, MQTT 5.0 numbering first
//! (`[MQTT-3.3.1-4]`), or the section where the standard states the rule without a number;
//! [`DecodeError::reason_code`] gives the MQTT 5.0 reason code a server sends in its
//! DISCONNECT (or CONNACK) before closing the connection.

use crate::packet::PacketType;
use crate::reason::ReasonCode;

/// Why a packet could not be decoded. Small and `Copy`, so it is cheap to log and return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A variable byte integer used more than four bytes.
    #[error("[MQTT-1.5.5-1] variable byte integer is longer than 4 bytes")]
    MalformedVariableInteger,
    /// The whole packet is larger than the receiver's Maximum Packet Size.
    #[error("[MQTT-3.2.2-15] packet of {size} bytes exceeds the maximum packet size of {max}")]
    PacketTooLarge {
        /// Size of the packet: fixed header plus remaining length.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The packet type nibble is 0, or 15 before MQTT 5.0.
    #[error("[MQTT-2.1.2] reserved control packet type {0}")]
    ReservedPacketType(u8),
    /// Reserved flag bits of the fixed header are not the value the standard lists.
    #[error("[MQTT-2.1.3-1] reserved fixed header flags {flags:#06b} on {packet:?}")]
    ReservedFlags {
        /// The packet whose flags are wrong.
        packet: PacketType,
        /// The four flag bits received.
        flags: u8,
    },
    /// A PUBLISH with both QoS bits set.
    #[error("[MQTT-3.3.1-4] PUBLISH with QoS 3")]
    InvalidQoS,
    /// A QoS 0 PUBLISH with the DUP flag set.
    #[error("[MQTT-3.3.1-2] DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A packet identifier of 0 where one is required.
    #[error("[MQTT-2.2.1-3] packet identifier 0 on {0:?} (3.1.1: [MQTT-2.3.1-1])")]
    ZeroPacketId(PacketType),
    /// The packet ended before a field it announced.
    #[error("[MQTT-1.5] {0:?} ends inside a field: remaining length too short")]
    UnexpectedEnd(PacketType),
    /// Bytes are left over after the last field.
    #[error("[MQTT-2.1.4] {0:?} has bytes beyond its last field: remaining length too long")]
    TrailingBytes(PacketType),
    /// A UTF-8 string field is not well-formed UTF-8 (this includes surrogates).
    #[error("[MQTT-1.5.4-1] string is not well-formed UTF-8")]
    InvalidUtf8,
    /// A string or binary field longer than its two byte length prefix can describe.
    #[error("[MQTT-1.5.4] string or binary data of {0} bytes exceeds 65,535")]
    StringTooLong(usize),
    /// A UTF-8 string field contains U+0000.
    #[error("[MQTT-1.5.4-2] string contains the null character U+0000")]
    NullCharacter,
    /// A property identifier the standard does not define.
    #[error("[MQTT-2.2.2.2] unknown property identifier {0:#04x}")]
    UnknownProperty(u8),
    /// A property that may appear once appeared twice.
    #[error("[MQTT-2.2.2.2] property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    /// A property that this packet may not carry.
    #[error("[MQTT-2.2.2.2] property {id:#04x} is not allowed in {packet:?}")]
    PropertyNotAllowed {
        /// The property identifier.
        id: u8,
        /// The packet it was found in.
        packet: PacketType,
    },
    /// A property value outside its allowed range (a boolean that is not 0 or 1, a Receive
    /// Maximum or Maximum Packet Size of 0, a Subscription Identifier of 0).
    #[error("[MQTT-2.2.2.2] property {0:#04x} has a value outside its allowed range")]
    InvalidPropertyValue(u8),
    /// A Topic Alias of 0.
    #[error("[MQTT-3.3.2-8] topic alias 0")]
    ZeroTopicAlias,
    /// A topic name containing `+` or `#`.
    #[error("[MQTT-3.3.2-2] topic name contains a wildcard")]
    WildcardInTopicName,
    /// A topic name or filter of zero length where one is required.
    #[error("[MQTT-4.7.3-1] topic is empty")]
    EmptyTopic,
    /// `#` somewhere but alone as the last level of a filter.
    #[error("[MQTT-4.7.1-1] '#' must be the last character and a whole level")]
    MisplacedMultiLevelWildcard,
    /// `+` sharing a level with other characters.
    #[error("[MQTT-4.7.1-2] '+' must occupy a whole level")]
    MisplacedSingleLevelWildcard,
    /// A `$share/` filter with an empty or invalid share name, or no filter after it.
    #[error(
        "[MQTT-4.8.2-1] shared subscription needs a share name without wildcards and a filter"
    )]
    InvalidSharedSubscription,
    /// A SUBSCRIBE with no topic filter.
    #[error("[MQTT-3.8.3-2] SUBSCRIBE carries no topic filter (3.1.1: [MQTT-3.8.3-3])")]
    EmptySubscribe,
    /// An UNSUBSCRIBE with no topic filter.
    #[error("[MQTT-3.10.3-2] UNSUBSCRIBE carries no topic filter")]
    EmptyUnsubscribe,
    /// Reserved bits of the subscription options byte are set.
    #[error("[MQTT-3.8.3-5] reserved bits set in subscription options {0:#04x}")]
    ReservedSubscriptionOptions(u8),
    /// Retain Handling 3, or a requested QoS of 3.
    #[error("[MQTT-3.8.3.1] retain handling or QoS of 3 in subscription options")]
    InvalidSubscriptionOptions,
    /// No Local on a shared subscription.
    #[error("[MQTT-3.8.3-4] No Local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// The CONNECT protocol name is neither `MQTT` nor `MQIsdp`.
    #[error("[MQTT-3.1.2-1] unknown protocol name")]
    InvalidProtocolName,
    /// The CONNECT protocol level is not 3, 4 or 5 (or does not fit the protocol name).
    #[error("[MQTT-3.1.2-2] unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// The reserved bit of the CONNECT flags is set.
    #[error("[MQTT-3.1.2-3] reserved CONNECT flag is set")]
    ConnectReservedFlag,
    /// Will QoS or Will Retain set without the Will Flag.
    #[error("[MQTT-3.1.2-11] will QoS or will retain set without the will flag")]
    WillFlagsWithoutWill,
    /// Will QoS 3.
    #[error("[MQTT-3.1.2-12] will QoS 3")]
    InvalidWillQoS,
    /// An MQTT 3.x password without a user name.
    #[error("[MQTT-3.1.2-22] password flag set without the user name flag")]
    PasswordWithoutUsername,
    /// Reserved bits of the CONNACK acknowledge flags are set.
    #[error("[MQTT-3.2.2-1] reserved CONNACK acknowledge flags are set")]
    ConnAckReservedFlags,
    /// A reason code this packet may not carry.
    #[error("[MQTT-2.4] reason code {code:#04x} is not valid in {packet:?}")]
    InvalidReasonCode {
        /// The packet.
        packet: PacketType,
        /// The code received.
        code: u8,
    },
}

impl DecodeError {
    /// The MQTT 5.0 reason code a server reports before closing the connection for this error:
    /// 0x81 Malformed Packet, 0x82 Protocol Error, or a more precise code where one exists.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            UnsupportedProtocolVersion(_) | InvalidProtocolName => {
                ReasonCode::UnsupportedProtocolVersion
            }
            WildcardInTopicName => ReasonCode::TopicNameInvalid,
            ZeroTopicAlias => ReasonCode::TopicAliasInvalid,
            // §3.3.2.1 "zero length and there is no Topic Alias", §3.8.3 and §3.10.3 "with
            // no Payload": the standard calls these Protocol Errors, not Malformed Packets.
            DuplicateProperty(_)
            | InvalidPropertyValue(_)
            | InvalidSubscriptionOptions
            | NoLocalOnSharedSubscription
            | EmptyTopic
            | EmptySubscribe
            | EmptyUnsubscribe
            | WillFlagsWithoutWill
            | PasswordWithoutUsername => ReasonCode::ProtocolError,
            // Includes Will QoS 3: "A value of 3 (0x03) is a Malformed Packet" (§3.1.2.6).
            _ => ReasonCode::MalformedPacket,
        }
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The remaining length would exceed 268,435,455, the largest variable byte integer.
    #[error("[MQTT-2.1.4] packet body of {0} bytes exceeds the largest remaining length")]
    TooLarge(usize),
    /// Binary Data (a password, a will payload, Correlation Data, Authentication Data) longer
    /// than the 65,535 bytes its two byte length prefix can describe.
    #[error("[MQTT-1.5.6] binary data of {0} bytes exceeds 65,535")]
    BinaryTooLong(usize),
    /// A variable byte integer property (a Subscription Identifier) above 268,435,455.
    #[error("[MQTT-1.5.5] {0} exceeds 268,435,455, the largest variable byte integer")]
    VariableIntegerTooLarge(u32),
    /// The packet does not exist in the protocol version it is encoded for (AUTH before 5.0).
    #[error("{0:?} does not exist before MQTT 5.0")]
    NotInVersion(PacketType),
}
