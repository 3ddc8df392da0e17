//! CONNECT (§3.1): the first packet of every connection, and the will it may carry.

use bytes::{BufMut, Bytes};

use crate::client_id::ClientId;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{ConnectProperties, WillProperties};
use crate::property::PropertySet;
use crate::qos::QoS;
use crate::topic::TopicName;
use crate::version::ProtocolVersion;
use crate::wire::{binary_len, check_binary, put_binary, Reader};

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

/// A CONNECT packet. It names its own protocol version; decoding it needs no prior state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    /// The protocol version, from the protocol name and level.
    pub protocol: ProtocolVersion,
    /// Clean Start (5.0) / Clean Session (3.x).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns keep alive off.
    pub keep_alive: u16,
    /// CONNECT properties (5.0).
    pub properties: ConnectProperties,
    /// The client identifier; empty asks the server to assign one.
    pub client_id: ClientId,
    /// The will message, published if the connection ends without a normal DISCONNECT.
    pub will: Option<Will>,
    /// User name.
    pub username: Option<crate::MqttString>,
    /// Password (binary data).
    pub password: Option<Bytes>,
}

/// A will message (§3.1.2.5, §3.1.3.2-3.1.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Will {
    /// Topic the will is published to.
    pub topic: TopicName,
    /// The will payload.
    pub payload: Bytes,
    /// QoS to publish it with.
    pub qos: QoS,
    /// Whether it is published as retained.
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: WillProperties,
}

impl Connect {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let name = r.binary()?;
        let level = r.u8()?;
        let protocol = match ProtocolVersion::from_name_and_level(&name, level) {
            Some(protocol) => protocol,
            None if &name[..] == b"MQTT" || &name[..] == b"MQIsdp" => {
                return Err(DecodeError::UnsupportedProtocolVersion(level))
            }
            None => return Err(DecodeError::InvalidProtocolName),
        };
        let flags = r.u8()?;
        if flags & RESERVED != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let will_qos = (flags >> WILL_QOS_SHIFT) & 0x03;
        if flags & WILL == 0 && (will_qos != 0 || flags & WILL_RETAIN != 0) {
            return Err(DecodeError::WillFlagsWithoutWill);
        }
        if will_qos == 3 {
            return Err(DecodeError::InvalidWillQoS);
        }
        if !protocol.is_v5() && flags & PASSWORD != 0 && flags & USERNAME == 0 {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let keep_alive = r.u16()?;
        let properties = if protocol.is_v5() {
            ConnectProperties::decode(r)?
        } else {
            Default::default()
        };
        let client_id = ClientId::new(r.string()?);
        let will = if flags & WILL != 0 {
            let properties = if protocol.is_v5() {
                WillProperties::decode(r)?
            } else {
                Default::default()
            };
            Some(Will {
                properties,
                topic: TopicName::new(r.string()?)?,
                payload: r.binary()?,
                qos: QoS::from_u8(will_qos)?,
                retain: flags & WILL_RETAIN != 0,
            })
        } else {
            None
        };
        let username = if flags & USERNAME != 0 {
            Some(r.string()?)
        } else {
            None
        };
        let password = if flags & PASSWORD != 0 {
            Some(r.binary()?)
        } else {
            None
        };
        Ok(Connect {
            protocol,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | u8::from(will.qos) << WILL_QOS_SHIFT;
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        flags
    }

    /// Checks the fields whose length their types do not bound: the password, the will
    /// payload, and the binary properties of a 5.0 CONNECT.
    pub(crate) fn check_encodable(&self) -> Result<(), EncodeError> {
        let v5 = self.protocol.is_v5();
        if v5 {
            self.properties.check_encodable()?;
        }
        if let Some(will) = &self.will {
            if v5 {
                will.properties.check_encodable()?;
            }
            check_binary(&will.payload)?;
        }
        if let Some(password) = &self.password {
            check_binary(password)?;
        }
        Ok(())
    }

    pub(crate) fn body_len(&self) -> usize {
        let v5 = self.protocol.is_v5();
        let mut len = binary_len(self.protocol.protocol_name().as_bytes()) + 1 + 1 + 2;
        if v5 {
            len += self.properties.encoded_len();
        }
        len += binary_len(self.client_id.as_mqtt_str().as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.encoded_len();
            }
            len += binary_len(will.topic.as_bytes()) + binary_len(&will.payload);
        }
        if let Some(username) = &self.username {
            len += binary_len(username.as_bytes());
        }
        if let Some(password) = &self.password {
            len += binary_len(password);
        }
        len
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        let v5 = self.protocol.is_v5();
        put_binary(buf, self.protocol.protocol_name().as_bytes());
        buf.put_u8(self.protocol.level());
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive);
        if v5 {
            self.properties.encode(buf);
        }
        put_binary(buf, self.client_id.as_mqtt_str().as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                will.properties.encode(buf);
            }
            put_binary(buf, will.topic.as_bytes());
            put_binary(buf, &will.payload);
        }
        if let Some(username) = &self.username {
            put_binary(buf, username.as_bytes());
        }
        if let Some(password) = &self.password {
            put_binary(buf, password);
        }
    }
}
