//! MQTT 5.0 properties (§2.2.2): identifiers, data types, and the machinery that reads and
//! writes a property set.
//!
//! Each packet has its own typed set (see [`crate::properties`]); they share the wire handling
//! here. Decoding enforces the rules common to all of them: a known identifier, a value of the
//! right type and range, no duplicates except User Property (and Subscription Identifier in
//! PUBLISH), and only the properties the packet may carry.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::qos::QoS;
use crate::string::MqttString;
use crate::topic::TopicName;
use crate::wire::MAX_VARIABLE_INTEGER;
use crate::wire::{
    binary_len, check_binary, put_binary, put_variable_integer, variable_integer_len, Reader,
};

/// Property identifiers (MQTT 5.0 table 2-4).
pub mod id {
    /// Payload Format Indicator: byte, PUBLISH and will.
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// Message Expiry Interval: four byte integer, PUBLISH and will.
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// Content Type: string, PUBLISH and will.
    pub const CONTENT_TYPE: u8 = 0x03;
    /// Response Topic: string, PUBLISH and will.
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Correlation Data: binary, PUBLISH and will.
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Subscription Identifier: variable byte integer, PUBLISH and SUBSCRIBE.
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// Session Expiry Interval: four byte integer, CONNECT, CONNACK, DISCONNECT.
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// Assigned Client Identifier: string, CONNACK.
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// Server Keep Alive: two byte integer, CONNACK.
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// Authentication Method: string, CONNECT, CONNACK, AUTH.
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// Authentication Data: binary, CONNECT, CONNACK, AUTH.
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// Request Problem Information: byte, CONNECT.
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// Will Delay Interval: four byte integer, will.
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// Request Response Information: byte, CONNECT.
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// Response Information: string, CONNACK.
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// Server Reference: string, CONNACK and DISCONNECT.
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// Reason String: string, every acknowledgement, DISCONNECT and AUTH.
    pub const REASON_STRING: u8 = 0x1F;
    /// Receive Maximum: two byte integer, CONNECT and CONNACK.
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Topic Alias Maximum: two byte integer, CONNECT and CONNACK.
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Topic Alias: two byte integer, PUBLISH.
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Maximum QoS: byte, CONNACK.
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Retain Available: byte, CONNACK.
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// User Property: string pair, every packet that has properties.
    pub const USER_PROPERTY: u8 = 0x26;
    /// Maximum Packet Size: four byte integer, CONNECT and CONNACK.
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Wildcard Subscription Available: byte, CONNACK.
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// Subscription Identifier Available: byte, CONNACK.
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// Shared Subscription Available: byte, CONNACK.
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The data type of a property (§2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Byte,
    TwoByte,
    FourByte,
    VariableInteger,
    String,
    Binary,
    Pair,
}

/// The data type of a known property identifier.
pub(crate) fn kind(property: u8) -> Option<Kind> {
    use id::*;
    Some(match property {
        PAYLOAD_FORMAT_INDICATOR
        | REQUEST_PROBLEM_INFORMATION
        | REQUEST_RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => Kind::Byte,
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => Kind::TwoByte,
        MESSAGE_EXPIRY_INTERVAL
        | SESSION_EXPIRY_INTERVAL
        | WILL_DELAY_INTERVAL
        | MAXIMUM_PACKET_SIZE => Kind::FourByte,
        SUBSCRIPTION_IDENTIFIER => Kind::VariableInteger,
        CONTENT_TYPE
        | RESPONSE_TOPIC
        | ASSIGNED_CLIENT_IDENTIFIER
        | AUTHENTICATION_METHOD
        | RESPONSE_INFORMATION
        | SERVER_REFERENCE
        | REASON_STRING => Kind::String,
        CORRELATION_DATA | AUTHENTICATION_DATA => Kind::Binary,
        USER_PROPERTY => Kind::Pair,
        _ => return None,
    })
}

/// A property value as read from the wire, before it is given its field's type.
#[derive(Debug)]
pub(crate) enum Value {
    Int(u32),
    String(MqttString),
    Binary(Bytes),
    Pair(MqttString, MqttString),
}

/// A property value borrowed for writing.
pub(crate) enum ValueRef<'a> {
    Int(u32),
    Bytes(&'a [u8]),
    Pair(&'a [u8], &'a [u8]),
}

/// A field type that holds a property value.
pub(crate) trait PropertyValue: Sized {
    /// Converts a decoded value, checking its range.
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError>;
    /// The value to encode.
    fn to_value(&self) -> ValueRef<'_>;
}

fn int(id: u8, value: Value) -> Result<u32, DecodeError> {
    match value {
        Value::Int(v) => Ok(v),
        _ => Err(DecodeError::InvalidPropertyValue(id)),
    }
}

impl PropertyValue for u32 {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        int(id, value)
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Int(*self)
    }
}

impl PropertyValue for u16 {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        u16::try_from(int(id, value)?).map_err(|_| DecodeError::InvalidPropertyValue(id))
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Int(u32::from(*self))
    }
}

impl PropertyValue for NonZeroU16 {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        let v = u16::from_value(id, value)?;
        NonZeroU16::new(v).ok_or(if id == id::TOPIC_ALIAS {
            DecodeError::ZeroTopicAlias
        } else {
            DecodeError::InvalidPropertyValue(id)
        })
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Int(u32::from(self.get()))
    }
}

impl PropertyValue for NonZeroU32 {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        NonZeroU32::new(int(id, value)?).ok_or(DecodeError::InvalidPropertyValue(id))
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Int(self.get())
    }
}

/// Byte properties that are booleans: 0 or 1, anything else is a Protocol Error.
impl PropertyValue for bool {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        match int(id, value)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Int(u32::from(*self))
    }
}

/// Maximum QoS: 0 or 1 only (§3.2.2.3.4).
impl PropertyValue for QoS {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        match int(id, value)? {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Int(u32::from(u8::from(*self)))
    }
}

impl PropertyValue for MqttString {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        match value {
            Value::String(s) => Ok(s),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Bytes(self.as_bytes())
    }
}

/// Response Topic is a topic name: no wildcards [MQTT-3.3.2-14].
impl PropertyValue for TopicName {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        TopicName::new(MqttString::from_value(id, value)?)
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Bytes(self.as_mqtt_str().as_bytes())
    }
}

impl PropertyValue for Bytes {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        match value {
            Value::Binary(b) => Ok(b),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Bytes(self)
    }
}

/// A User Property: a name and value pair, which may repeat and whose order is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserProperty {
    /// The name.
    pub name: MqttString,
    /// The value.
    pub value: MqttString,
}

impl UserProperty {
    /// A pair from two strings, validated as MQTT strings.
    pub fn new(name: &str, value: &str) -> Result<Self, DecodeError> {
        Ok(UserProperty {
            name: name.try_into()?,
            value: value.try_into()?,
        })
    }
}

impl PropertyValue for UserProperty {
    fn from_value(id: u8, value: Value) -> Result<Self, DecodeError> {
        match value {
            Value::Pair(name, value) => Ok(UserProperty { name, value }),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Pair(self.name.as_bytes(), self.value.as_bytes())
    }
}

/// Reads one value of the given kind.
fn read_value(r: &mut Reader, kind: Kind) -> Result<Value, DecodeError> {
    Ok(match kind {
        Kind::Byte => Value::Int(u32::from(r.u8()?)),
        Kind::TwoByte => Value::Int(u32::from(r.u16()?)),
        Kind::FourByte => Value::Int(r.u32()?),
        Kind::VariableInteger => Value::Int(r.variable_integer()?),
        Kind::String => Value::String(r.string()?),
        Kind::Binary => Value::Binary(r.binary()?),
        Kind::Pair => Value::Pair(r.string()?, r.string()?),
    })
}

/// Encoded length of one property: identifier and value.
pub(crate) fn property_len(id: u8, value: ValueRef<'_>) -> usize {
    1 + match (kind(id), value) {
        (Some(Kind::Byte), _) => 1,
        (Some(Kind::TwoByte), _) => 2,
        (Some(Kind::FourByte), _) => 4,
        (_, ValueRef::Int(v)) => variable_integer_len(v as usize),
        (_, ValueRef::Bytes(b)) => binary_len(b),
        (_, ValueRef::Pair(k, v)) => binary_len(k) + binary_len(v),
    }
}

/// Writes one property: identifier and value.
pub(crate) fn put_property(buf: &mut impl BufMut, id: u8, value: ValueRef<'_>) {
    buf.put_u8(id);
    match (kind(id), value) {
        (Some(Kind::Byte), ValueRef::Int(v)) => buf.put_u8(v as u8),
        (Some(Kind::TwoByte), ValueRef::Int(v)) => buf.put_u16(v as u16),
        (Some(Kind::FourByte), ValueRef::Int(v)) => buf.put_u32(v),
        (_, ValueRef::Int(v)) => put_variable_integer(buf, v as usize),
        (_, ValueRef::Bytes(b)) => put_binary(buf, b),
        (_, ValueRef::Pair(k, v)) => {
            put_binary(buf, k);
            put_binary(buf, v);
        }
    }
}

/// Checks that one value fits its wire form: Binary Data up to 65,535 bytes, a variable byte
/// integer up to 268,435,455. (Strings were checked when they were built.)
fn check_value(id: u8, value: ValueRef<'_>) -> Result<(), EncodeError> {
    match (kind(id), value) {
        (Some(Kind::VariableInteger), ValueRef::Int(v)) if v > MAX_VARIABLE_INTEGER => {
            Err(EncodeError::VariableIntegerTooLarge(v))
        }
        (_, ValueRef::Bytes(data)) => check_binary(data),
        _ => Ok(()),
    }
}

/// A packet's typed property set.
pub(crate) trait PropertySet: Default {
    /// Bit `n` set: property `n` may appear more than once.
    const REPEATABLE: u64 = 1 << id::USER_PROPERTY;

    /// Stores one decoded property, or reports it as not allowed in `packet`.
    fn accept(&mut self, id: u8, value: Value, packet: PacketType) -> Result<(), DecodeError>;

    /// Calls `f` with every property to encode, in order.
    fn for_each(&self, f: &mut dyn FnMut(u8, ValueRef<'_>));

    /// Length of the properties without their length prefix.
    fn body_len(&self) -> usize {
        let mut len = 0;
        self.for_each(&mut |id, value| len += property_len(id, value));
        len
    }

    /// Length including the variable byte integer length prefix.
    fn encoded_len(&self) -> usize {
        let len = self.body_len();
        variable_integer_len(len) + len
    }

    /// Checks what the field types do not bound before anything is written (see
    /// [`check_value`]).
    fn check_encodable(&self) -> Result<(), EncodeError> {
        let mut result = Ok(());
        self.for_each(&mut |id, value| {
            if result.is_ok() {
                result = check_value(id, value);
            }
        });
        result
    }

    /// Writes the length prefix and the properties.
    fn encode(&self, buf: &mut impl BufMut) {
        put_variable_integer(buf, self.body_len());
        self.for_each(&mut |id, value| put_property(&mut *buf, id, value));
    }

    /// Reads a length-prefixed property set from `r`.
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let len = r.variable_integer()? as usize;
        let mut r = r.split(len)?;
        let packet = r.packet();
        let mut set = Self::default();
        let mut seen = 0u64;
        while !r.is_empty() {
            let id = r.variable_integer()?;
            let id = u8::try_from(id).map_err(|_| DecodeError::UnknownProperty(0xFF))?;
            let kind = kind(id).ok_or(DecodeError::UnknownProperty(id))?;
            let bit = 1u64 << id;
            if seen & bit != 0 && Self::REPEATABLE & bit == 0 {
                return Err(DecodeError::DuplicateProperty(id));
            }
            seen |= bit;
            let value = read_value(&mut r, kind)?;
            if let Value::Int(v) = value {
                if kind == Kind::VariableInteger && (v == 0 || v > MAX_VARIABLE_INTEGER) {
                    return Err(DecodeError::InvalidPropertyValue(id));
                }
            }
            set.accept(id, value, packet)?;
        }
        Ok(set)
    }
}

/// Defines a packet's property set: one `Option` field per property it may carry, plus
/// `user_properties`, and optionally one repeatable property held in a `Vec`.
macro_rules! property_set {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty = $pid:ident, )*
        }
        $( repeated { $(#[$rmeta:meta])* $rfield:ident: $rty:ty = $rid:ident } )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
            $( $(#[$rmeta])* pub $rfield: Vec<$rty>, )?
            /// User Properties, in the order they were sent [MQTT-3.3.2-18].
            pub user_properties: Vec<$crate::property::UserProperty>,
        }

        impl $crate::property::PropertySet for $name {
            const REPEATABLE: u64 = (1 << $crate::property::id::USER_PROPERTY)
                $( | (1 << $crate::property::id::$rid) )?;

            fn accept(
                &mut self,
                id: u8,
                value: $crate::property::Value,
                packet: $crate::packet::PacketType,
            ) -> Result<(), $crate::error::DecodeError> {
                use $crate::property::PropertyValue;
                match id {
                    $( $crate::property::id::$pid => {
                        self.$field = Some(<$ty>::from_value(id, value)?);
                    } )*
                    $( $crate::property::id::$rid => {
                        self.$rfield.push(<$rty>::from_value(id, value)?);
                    } )?
                    $crate::property::id::USER_PROPERTY => {
                        self.user_properties
                            .push($crate::property::UserProperty::from_value(id, value)?);
                    }
                    _ => return Err($crate::error::DecodeError::PropertyNotAllowed { id, packet }),
                }
                Ok(())
            }

            fn for_each(&self, f: &mut dyn FnMut(u8, $crate::property::ValueRef<'_>)) {
                use $crate::property::PropertyValue;
                $( if let Some(v) = &self.$field {
                    f($crate::property::id::$pid, v.to_value());
                } )*
                $( for v in &self.$rfield {
                    f($crate::property::id::$rid, v.to_value());
                } )?
                for p in &self.user_properties {
                    f($crate::property::id::USER_PROPERTY, p.to_value());
                }
            }
        }

        impl $name {
            /// True when no property is set.
            pub fn is_empty(&self) -> bool {
                *self == Self::default()
            }
        }
    };
}

pub(crate) use property_set;
