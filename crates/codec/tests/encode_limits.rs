//! Encoding refuses values the wire format cannot carry, instead of writing bytes whose
//! length prefixes lie: Binary Data longer than 65,535 bytes (§1.5.6), a Subscription
//! Identifier above 268,435,455 (§1.5.5), a remaining length above 268,435,455 (§2.1.4).
//! Nothing is written when encoding fails; at the limits, packets round-trip.

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use std::num::NonZeroU32;

use bytes::{Bytes, BytesMut};
use tern_codec::{
    decode, Auth, ConnAck, Connect, EncodeError, Packet, ProtocolVersion, Publish, Subscribe,
    SubscriptionOptions, TopicFilter, TopicName, Will, MAX_PACKET_SIZE,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Bytes of the given length.
fn data(len: usize) -> Bytes {
    Bytes::from(vec![0x5A; len])
}

fn refuses(packet: &Packet, version: ProtocolVersion, expected: EncodeError) {
    let mut buf = BytesMut::from(&b"kept"[..]);
    assert_eq!(packet.encode(version, &mut buf), Err(expected));
    assert_eq!(&buf[..], b"kept", "nothing written on error");
    assert!(expected.to_string().contains("[MQTT-"), "{expected}");
}

fn round_trips(packet: &Packet, version: ProtocolVersion) {
    let mut buf = BytesMut::new();
    packet.encode(version, &mut buf).unwrap();
    assert_eq!(buf.len(), packet.encoded_len(version));
    let decoded = decode(&mut buf, version, MAX_PACKET_SIZE).unwrap();
    assert_eq!(decoded.as_ref(), Some(packet));
}

fn connect(version: ProtocolVersion) -> Connect {
    Connect {
        protocol: version,
        client_id: "c".try_into().unwrap(),
        username: Some("u".try_into().unwrap()),
        ..Default::default()
    }
}

fn will(payload: Bytes) -> Will {
    Will {
        topic: TopicName::try_from("w").unwrap(),
        payload,
        ..Default::default()
    }
}

#[test]
fn password_and_will_payload_are_binary_data_1_5_6() {
    for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1, V5] {
        let at_limit = Connect {
            password: Some(data(65_535)),
            will: Some(will(data(65_535))),
            ..connect(version)
        };
        round_trips(&Packet::Connect(Box::new(at_limit)), version);

        let password = Connect {
            password: Some(data(65_536)),
            ..connect(version)
        };
        let packet = Packet::Connect(Box::new(password));
        refuses(&packet, version, EncodeError::BinaryTooLong(65_536));

        let will = Connect {
            will: Some(will(data(70_000))),
            ..connect(version)
        };
        let packet = Packet::Connect(Box::new(will));
        refuses(&packet, version, EncodeError::BinaryTooLong(70_000));
    }
}

#[test]
fn binary_properties_1_5_6() {
    let mut publish = Publish::new(TopicName::try_from("t").unwrap(), "");
    publish.properties.correlation_data = Some(data(65_535));
    round_trips(&Packet::Publish(publish.clone()), V5);
    publish.properties.correlation_data = Some(data(65_536));
    refuses(
        &Packet::Publish(publish),
        V5,
        EncodeError::BinaryTooLong(65_536),
    );

    let mut will = will(Bytes::new());
    will.properties.correlation_data = Some(data(65_536));
    let with_will = Connect {
        will: Some(will),
        ..connect(V5)
    };
    let packet = Packet::Connect(Box::new(with_will));
    refuses(&packet, V5, EncodeError::BinaryTooLong(65_536));

    let mut with_auth = connect(V5);
    with_auth.properties.authentication_data = Some(data(100_000));
    let packet = Packet::Connect(Box::new(with_auth));
    refuses(&packet, V5, EncodeError::BinaryTooLong(100_000));

    let mut connack = ConnAck::default();
    connack.properties.authentication_data = Some(data(65_536));
    refuses(
        &Packet::ConnAck(connack),
        V5,
        EncodeError::BinaryTooLong(65_536),
    );

    let mut auth = Auth::default();
    auth.properties.authentication_data = Some(data(65_536));
    refuses(&Packet::Auth(auth), V5, EncodeError::BinaryTooLong(65_536));
}

#[test]
fn properties_are_not_checked_where_they_are_not_written_2_2_2() {
    // 3.1.1 has no properties: an oversized 5.0-only field is left out, not refused.
    let mut publish = Publish::new(TopicName::try_from("t").unwrap(), "p");
    publish.properties.correlation_data = Some(data(65_536));
    let mut buf = BytesMut::new();
    let packet = Packet::Publish(publish);
    packet.encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0x30, 0x04, 0x00, 0x01, b't', b'p']);
}

#[test]
fn subscription_identifier_range_3_3_2_3_8() {
    let largest = NonZeroU32::new(268_435_455).unwrap();
    let too_large = NonZeroU32::new(268_435_456).unwrap();

    let mut publish = Publish::new(TopicName::try_from("t").unwrap(), "");
    publish.properties.subscription_identifiers = vec![largest];
    round_trips(&Packet::Publish(publish.clone()), V5);
    publish.properties.subscription_identifiers = vec![largest, too_large];
    let expected = EncodeError::VariableIntegerTooLarge(268_435_456);
    refuses(&Packet::Publish(publish), V5, expected);

    let mut subscribe = Subscribe {
        packet_id: Default::default(),
        properties: Default::default(),
        filters: vec![(
            TopicFilter::try_from("#").unwrap(),
            SubscriptionOptions::default(),
        )],
    };
    subscribe.properties.subscription_identifier = Some(largest);
    round_trips(&Packet::Subscribe(subscribe.clone()), V5);
    subscribe.properties.subscription_identifier = NonZeroU32::new(u32::MAX);
    let expected = EncodeError::VariableIntegerTooLarge(u32::MAX);
    refuses(&Packet::Subscribe(subscribe), V5, expected);
}

#[test]
fn remaining_length_above_268_435_455_2_1_4() {
    // 2 + 1 topic bytes and the payload: one byte over the largest remaining length.
    let payload = Bytes::from(vec![0; 268_435_455 - 3 + 1]);
    let packet = Packet::Publish(Publish::new(TopicName::try_from("t").unwrap(), payload));
    let expected = EncodeError::TooLarge(268_435_456);
    refuses(&packet, ProtocolVersion::V3_1_1, expected);
}
