//! The MQTT wire format for MQTT 3.1, 3.1.1 and 5.0: one packet model for all three, decoded
//! incrementally and without copying, encoded with an exact length known in advance.
//!
//! Tern's broker and client both speak through this crate; it does no I/O.
//!
//! ```
//! use bytes::BytesMut;
//! use tern_codec::{decode, Packet, ProtocolVersion, Publish, QoS, TopicName, PacketId};
//!
//! let mut publish = Publish::new(TopicName::try_from("sensors/1/temp")?, "21.5");
//! publish.qos = QoS::AtLeastOnce;
//! publish.packet_id = PacketId::new(7);
//! let packet = Packet::Publish(publish);
//!
//! let mut buf = BytesMut::new();
//! packet.encode(ProtocolVersion::V5, &mut buf)?;
//! assert_eq!(buf.len(), packet.encoded_len(ProtocolVersion::V5));
//!
//! let decoded = decode(&mut buf, ProtocolVersion::V5, 1 << 20)?;
//! assert_eq!(decoded, Some(packet));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - [`frame`]: cuts packets off a read buffer, size checked before the body is buffered.
//! - [`packet`]: the fifteen control packets and the fixed header.
//! - [`properties`]: the typed MQTT 5.0 property set of each packet; [`property`] the
//!   identifiers and wire handling they share.
//! - [`reason`]: reason codes and MQTT 3.x return codes.
//! - [`topic`]: topic names, topic filters, `$share` parsing and matching.
//! - [`string`], [`client_id`], [`qos`], [`version`]: validated values.
//! - [`wire`]: integers, variable byte integers, strings and binary data.
//! - [`error`]: decode errors, each naming its normative statement and reason code.

pub mod client_id;
pub mod error;
pub mod frame;
pub mod packet;
pub mod properties;
pub mod property;
pub mod qos;
pub mod reason;
pub mod string;
pub mod topic;
pub mod version;
pub mod wire;

pub use client_id::ClientId;
pub use error::{DecodeError, EncodeError};
pub use frame::{decode, MAX_PACKET_SIZE};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketType, PubResponse, Publish, RetainHandling,
    SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UnsubscribeProperties, WillProperties,
};
pub use property::UserProperty;
pub use qos::{PacketId, QoS};
pub use reason::ReasonCode;
pub use string::MqttString;
pub use topic::{TopicFilter, TopicName};
pub use version::ProtocolVersion;
