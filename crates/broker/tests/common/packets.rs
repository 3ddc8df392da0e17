//! Packets the tests send, and what they read from the packets they get.

use bytes::{Bytes, BytesMut};
use tern_codec::{
    ClientId, Connect, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, TopicFilter, TopicName, Will,
};

/// A CONNECT with keep alive 60 and no will.
pub(crate) fn connect_packet(version: ProtocolVersion, client_id: &str, clean: bool) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive: 60,
        client_id: ClientId::try_from(client_id).expect("valid client id"),
        ..Default::default()
    }
}

/// A CONNECT that keeps its session: Clean Session 0 (3.x), or Clean Start 0 with a Session
/// Expiry Interval of 300 s (5.0).
pub(crate) fn persistent(version: ProtocolVersion, client_id: &str, clean: bool) -> Connect {
    let mut connect = connect_packet(version, client_id, clean);
    if version.is_v5() {
        connect.properties.session_expiry_interval = Some(300);
    }
    connect
}

/// A will message.
pub(crate) fn will(topic: &str, payload: &str, qos: QoS, retain: bool) -> Will {
    Will {
        topic: topic_name(topic),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
        ..Default::default()
    }
}

/// A topic name.
pub(crate) fn topic_name(topic: &str) -> TopicName {
    TopicName::try_from(topic).expect("valid topic name")
}

/// A packet identifier.
pub(crate) fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id")
}

/// A PUBLISH; `packet_id` is used for QoS 1 and 2 only.
pub(crate) fn publish(topic: &str, payload: &str, qos: QoS, packet_id: u16) -> Publish {
    let mut publish = Publish::new(
        topic_name(topic),
        Bytes::copy_from_slice(payload.as_bytes()),
    );
    publish.qos = qos;
    if qos != QoS::AtMostOnce {
        publish.packet_id = Some(pid(packet_id));
    }
    publish
}

/// A SUBSCRIBE for one filter.
pub(crate) fn subscribe_packet(
    packet_id: u16,
    filter: &str,
    options: SubscriptionOptions,
) -> Subscribe {
    Subscribe {
        packet_id: pid(packet_id),
        properties: Default::default(),
        filters: vec![(
            TopicFilter::try_from(filter).expect("valid filter"),
            options,
        )],
    }
}

/// The SUBACK code granting `qos`.
pub(crate) fn granted(qos: QoS) -> ReasonCode {
    match qos {
        QoS::AtMostOnce => ReasonCode::Success,
        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
    }
}

/// The payload of a PUBLISH as text.
pub(crate) fn text(publish: &Publish) -> &str {
    std::str::from_utf8(&publish.payload).expect("UTF-8 payload")
}

/// Encodes a packet for `version`.
pub(crate) fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.encode(version, &mut buf).expect("packet encodes");
    buf.to_vec()
}
