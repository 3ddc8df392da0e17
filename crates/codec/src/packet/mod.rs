//! The control packets (§3) as one model for MQTT 3.1, 3.1.1 and 5.0, and the fixed header
//! (§2.1) that frames them.
//!
//! MQTT 5.0 is the superset: fields that older versions lack (properties, reason codes on
//! acknowledgements, subscription options beyond QoS) are left at their defaults when decoding
//! 3.x and are not written when encoding 3.x.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod subscribe;
mod unsubscribe;

use bytes::{BufMut, Bytes};

pub use ack::PubResponse;
pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use publish::Publish;
pub use subscribe::{RetainHandling, SubAck, Subscribe, SubscriptionOptions};
pub use unsubscribe::{UnsubAck, Unsubscribe};

use crate::error::{DecodeError, EncodeError};
use crate::property::PropertySet;
use crate::qos::PacketId;
use crate::version::ProtocolVersion;
use crate::wire::{put_variable_integer, variable_integer_len, Reader, MAX_VARIABLE_INTEGER};

/// The control packet types (§2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Client request to connect.
    Connect = 1,
    /// Connect acknowledgement.
    ConnAck = 2,
    /// Publish message.
    Publish = 3,
    /// Publish acknowledgement (QoS 1).
    PubAck = 4,
    /// Publish received (QoS 2, part 1).
    PubRec = 5,
    /// Publish release (QoS 2, part 2).
    PubRel = 6,
    /// Publish complete (QoS 2, part 3).
    PubComp = 7,
    /// Subscribe request.
    Subscribe = 8,
    /// Subscribe acknowledgement.
    SubAck = 9,
    /// Unsubscribe request.
    Unsubscribe = 10,
    /// Unsubscribe acknowledgement.
    UnsubAck = 11,
    /// Ping request.
    PingReq = 12,
    /// Ping response.
    PingResp = 13,
    /// Disconnect notification.
    Disconnect = 14,
    /// Authentication exchange (MQTT 5.0 only).
    Auth = 15,
}

impl PacketType {
    /// The type for the high nibble of the first byte.
    pub fn from_nibble(nibble: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        use PacketType::*;
        Ok(match nibble {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 if version.is_v5() => Auth,
            _ => return Err(DecodeError::ReservedPacketType(nibble)),
        })
    }

    /// The fixed flag bits this type requires; PUBLISH has none fixed.
    fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    /// Checks the first byte of a fixed header: a known type with its required flags.
    pub fn from_header(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet = PacketType::from_nibble(byte >> 4, version)?;
        let flags = byte & 0x0F;
        match packet.required_flags() {
            Some(required) if required != flags => {
                Err(DecodeError::ReservedFlags { packet, flags })
            }
            _ => Ok(packet),
        }
    }
}

/// An MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (boxed: it is large and rare).
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PubResponse),
    /// PUBREC.
    PubRec(PubResponse),
    /// PUBREL.
    PubRel(PubResponse),
    /// PUBCOMP.
    PubComp(PubResponse),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5.0 only).
    Auth(Auth),
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The first byte of the fixed header.
    fn header_byte(&self) -> u8 {
        let flags = match self {
            Packet::Publish(p) => p.flags(),
            other => other.packet_type().required_flags().unwrap_or(0),
        };
        (self.packet_type() as u8) << 4 | flags
    }

    /// Length of everything after the fixed header, encoded for `version`.
    fn body_len(&self, version: ProtocolVersion) -> usize {
        match self {
            Packet::Connect(p) => p.body_len(),
            Packet::ConnAck(p) => p.body_len(version),
            Packet::Publish(p) => p.body_len(version),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.body_len(version)
            }
            Packet::Subscribe(p) => p.body_len(version),
            Packet::SubAck(p) => p.body_len(version),
            Packet::Unsubscribe(p) => p.body_len(version),
            Packet::UnsubAck(p) => p.body_len(version),
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(p) => p.body_len(version),
            Packet::Auth(p) => p.body_len(),
        }
    }

    /// Exact number of bytes [`Packet::encode`] writes for `version`, so a sender can
    /// honour the peer's Maximum Packet Size before encoding.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        let body = self.body_len(version);
        1 + variable_integer_len(body) + body
    }

    /// Appends the packet, encoded for `version`, to `buf`.
    ///
    /// A CONNECT is encoded for its own `protocol` field whatever `version` says. Fails, and
    /// writes nothing, when a field cannot be represented: Binary Data over 65,535 bytes, a
    /// Subscription Identifier over 268,435,455, a body over the largest remaining length,
    /// or AUTH before 5.0.
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        match self {
            Packet::Publish(p) => return p.encode(version, buf),
            Packet::Auth(_) if !version.is_v5() => {
                return Err(EncodeError::NotInVersion(PacketType::Auth))
            }
            _ => {}
        }
        self.check_encodable(version)?;
        let body = self.body_len(version);
        if body > MAX_VARIABLE_INTEGER as usize {
            return Err(EncodeError::TooLarge(body));
        }
        buf.put_u8(self.header_byte());
        put_variable_integer(buf, body);
        match self {
            Packet::Connect(p) => p.encode_body(buf),
            Packet::ConnAck(p) => p.encode_body(version, buf),
            Packet::Publish(p) => p.encode_body(version, buf),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.encode_body(version, buf)
            }
            Packet::Subscribe(p) => p.encode_body(version, buf),
            Packet::SubAck(p) => p.encode_body(version, buf),
            Packet::Unsubscribe(p) => p.encode_body(version, buf),
            Packet::UnsubAck(p) => p.encode_body(version, buf),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(p) => p.encode_body(version, buf),
            Packet::Auth(p) => p.encode_body(buf),
        }
        Ok(())
    }

    /// Checks the values the packet types allow but the wire cannot carry, for the fields
    /// `version` writes.
    fn check_encodable(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(p) => p.check_encodable(),
            _ if !version.is_v5() => Ok(()),
            Packet::ConnAck(p) => p.properties.check_encodable(),
            Packet::Publish(p) => p.properties.check_encodable(),
            Packet::Subscribe(p) => p.properties.check_encodable(),
            Packet::Auth(p) => p.properties.check_encodable(),
            // The other property sets hold only strings, which MqttString bounds.
            _ => Ok(()),
        }
    }

    /// Decodes a packet from its first header byte and its body (exactly the remaining
    /// length). The header byte must have passed [`PacketType::from_header`].
    pub(crate) fn decode_body(
        header: u8,
        body: Bytes,
        version: ProtocolVersion,
    ) -> Result<Packet, DecodeError> {
        let packet_type = PacketType::from_header(header, version)?;
        let mut r = Reader::new(body, packet_type);
        let packet = match packet_type {
            PacketType::Connect => Packet::Connect(Box::new(Connect::decode(&mut r)?)),
            PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(&mut r, version)?),
            PacketType::Publish => {
                Packet::Publish(Publish::decode(header & 0x0F, &mut r, version)?)
            }
            PacketType::PubAck => Packet::PubAck(PubResponse::decode(&mut r, version)?),
            PacketType::PubRec => Packet::PubRec(PubResponse::decode(&mut r, version)?),
            PacketType::PubRel => Packet::PubRel(PubResponse::decode(&mut r, version)?),
            PacketType::PubComp => Packet::PubComp(PubResponse::decode(&mut r, version)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut r, version)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(&mut r, version)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(&mut r, version)?),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(&mut r, version)?),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut r, version)?),
            PacketType::Auth => Packet::Auth(Auth::decode(&mut r)?),
        };
        r.finish()?;
        Ok(packet)
    }
}

/// Reads a packet identifier that must not be 0 [MQTT-2.2.1-3].
pub(crate) fn read_packet_id(r: &mut Reader) -> Result<PacketId, DecodeError> {
    let packet = r.packet();
    PacketId::new(r.u16()?).ok_or(DecodeError::ZeroPacketId(packet))
}

/// Reads a reason code and checks that `packet` may carry it.
pub(crate) fn read_reason_code(r: &mut Reader) -> Result<crate::reason::ReasonCode, DecodeError> {
    let packet = r.packet();
    let code = r.u8()?;
    crate::reason::ReasonCode::from_u8(code)
        .filter(|reason| reason.is_valid_for(packet))
        .ok_or(DecodeError::InvalidReasonCode { packet, code })
}
