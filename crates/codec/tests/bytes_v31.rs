//! Byte-literal tests for every MQTT 3.1 control packet (protocol name `MQIsdp`, level 3), in
//! both directions: the bytes, derived by hand from the IBM/Eurotech MQTT V3.1 specification,
//! decode to the expected value, and the value encodes to exactly those bytes.
//!
//! 3.1 differs from 3.1.1 on the wire only in CONNECT (protocol name and level) and in the
//! first CONNACK byte, which 3.1 reserves and 3.1.1 uses for Session Present.

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use bytes::{Bytes, BytesMut};
use tern_codec::{
    decode, ConnAck, Connect, DecodeError, Disconnect, EncodeError, Packet, PacketId, PacketType,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, Will, MAX_PACKET_SIZE,
};

const V: ProtocolVersion = ProtocolVersion::V3_1;

/// Decodes `bytes` to `packet` (consuming all of them), encodes `packet` back to `bytes`, and
/// checks that `encoded_len` predicts the length.
fn both_ways(bytes: &[u8], packet: Packet) {
    let mut buf = BytesMut::from(bytes);
    let decoded = decode(&mut buf, V, MAX_PACKET_SIZE).unwrap();
    assert_eq!(decoded, Some(packet.clone()), "decoding {bytes:02X?}");
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    let mut out = BytesMut::new();
    packet.encode(V, &mut out).unwrap();
    assert_eq!(&out[..], bytes, "encoding {packet:?}");
    assert_eq!(
        packet.encoded_len(V),
        bytes.len(),
        "encoded_len of {packet:?}"
    );
}

fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).unwrap()
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

#[test]
fn connect_variable_header_example_3_1() {
    // The CONNECT example of the 3.1 specification: protocol name "MQIsdp", version 3, flags
    // 0xCE (user name, password, will QoS 1, will flag, clean session), keep alive 10.
    let bytes = [
        0x10, 0x24, // CONNECT, remaining length 36
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', // protocol name
        0x03, // protocol version 3
        0xCE, // 1100 1110
        0x00, 0x0A, // keep alive 10
        0x00, 0x02, b'c', b'1', // client identifier
        0x00, 0x03, b'w', b'/', b't', // will topic
        0x00, 0x03, b'b', b'y', b'e', // will message
        0x00, 0x04, b'u', b's', b'e', b'r', // user name
        0x00, 0x02, b'p', b'w', // password
    ];
    let packet = Connect {
        protocol: V,
        clean_start: true,
        keep_alive: 10,
        client_id: "c1".try_into().unwrap(),
        will: Some(Will {
            topic: topic("w/t"),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            ..Default::default()
        }),
        username: Some("user".try_into().unwrap()),
        password: Some(Bytes::from_static(b"pw")),
        ..Default::default()
    };
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connect_minimal_3_1() {
    // No clean session, keep alive 0 (off), a 23 character client identifier: the longest
    // 3.1 guarantees.
    let id = "abcdefghijklmnopqrstuvw";
    let mut bytes = vec![
        0x10, 0x25, // remaining length 37
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x00, 0x00, 0x00, // header
        0x00, 0x17, // client identifier length 23
    ];
    bytes.extend_from_slice(id.as_bytes());
    let packet = Connect {
        protocol: V,
        client_id: id.try_into().unwrap(),
        ..Default::default()
    };
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connect_is_decoded_whatever_the_connection_version_3_1() {
    // A server learns the version from CONNECT: 3.1 bytes decode as 3.1 even when the
    // connection's version is not known yet.
    let bytes = [
        0x10, 0x0E, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x00,
    ];
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let mut buf = BytesMut::from(&bytes[..]);
        let Some(Packet::Connect(connect)) = decode(&mut buf, version, MAX_PACKET_SIZE).unwrap()
        else {
            panic!("not a CONNECT");
        };
        assert_eq!(connect.protocol, V);
        assert!(connect.clean_start);
        assert_eq!(connect.keep_alive, 60);
    }
}

#[test]
fn connack_return_codes_3_2() {
    // The first byte is reserved in 3.1; the return codes are those of 3.1.1.
    let codes = [
        (0x00, ReasonCode::Success),
        (0x01, ReasonCode::UnsupportedProtocolVersion),
        (0x02, ReasonCode::ClientIdentifierNotValid),
        (0x03, ReasonCode::ServerUnavailable),
        (0x04, ReasonCode::BadUserNameOrPassword),
        (0x05, ReasonCode::NotAuthorized),
    ];
    for (byte, reason_code) in codes {
        let packet = ConnAck {
            reason_code,
            ..Default::default()
        };
        both_ways(&[0x20, 0x02, 0x00, byte], Packet::ConnAck(packet));
    }
}

#[test]
fn publish_qos0_3_3() {
    let bytes = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    both_ways(&bytes, Packet::Publish(Publish::new(topic("a/b"), "hi")));
}

#[test]
fn publish_qos2_dup_retain_3_3() {
    // DUP, QoS 2, RETAIN: 1101; message identifier 0x0102.
    let bytes = [0x3D, 0x06, 0x00, 0x01, b'a', 0x01, 0x02, 0x00];
    let packet = Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: true,
        packet_id: Some(pid(0x0102)),
        ..Publish::new(topic("a"), Bytes::from_static(&[0x00]))
    };
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn puback_3_4() {
    both_ways(
        &[0x40, 0x02, 0x00, 0x01],
        Packet::PubAck(PubResponse::new(pid(1))),
    );
}

#[test]
fn pubrec_3_5() {
    both_ways(
        &[0x50, 0x02, 0x00, 0x02],
        Packet::PubRec(PubResponse::new(pid(2))),
    );
}

#[test]
fn pubrel_has_qos_1_in_its_fixed_header_3_6() {
    both_ways(
        &[0x62, 0x02, 0x00, 0x03],
        Packet::PubRel(PubResponse::new(pid(3))),
    );
}

#[test]
fn pubcomp_3_7() {
    both_ways(
        &[0x70, 0x02, 0x00, 0x04],
        Packet::PubComp(PubResponse::new(pid(4))),
    );
}

#[test]
fn subscribe_has_qos_1_in_its_fixed_header_3_8() {
    let bytes = [
        0x82, 0x0E, 0x00, 0x0A, // message identifier 10
        0x00, 0x03, b'a', b'/', b'b', 0x01, // "a/b" QoS 1
        0x00, 0x03, b'c', b'/', b'#', 0x02, // "c/#" QoS 2
    ];
    let packet = Subscribe {
        packet_id: pid(10),
        properties: Default::default(),
        filters: vec![
            (
                filter("a/b"),
                SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            ),
            (
                filter("c/#"),
                SubscriptionOptions::with_qos(QoS::ExactlyOnce),
            ),
        ],
    };
    both_ways(&bytes, Packet::Subscribe(packet));
}

#[test]
fn suback_granted_qos_3_9() {
    let bytes = [0x90, 0x05, 0x00, 0x0A, 0x01, 0x02, 0x00];
    let packet = SubAck {
        packet_id: pid(10),
        properties: Default::default(),
        reason_codes: vec![
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::GRANTED_QOS0,
        ],
    };
    both_ways(&bytes, Packet::SubAck(packet));
}

#[test]
fn unsubscribe_has_qos_1_in_its_fixed_header_3_10() {
    let bytes = [0xA2, 0x07, 0x00, 0x0B, 0x00, 0x03, b'a', b'/', b'+'];
    let packet = Unsubscribe {
        packet_id: pid(11),
        properties: Default::default(),
        filters: vec![filter("a/+")],
    };
    both_ways(&bytes, Packet::Unsubscribe(packet));
}

#[test]
fn unsuback_3_11() {
    let packet = UnsubAck {
        packet_id: pid(11),
        ..Default::default()
    };
    both_ways(&[0xB0, 0x02, 0x00, 0x0B], Packet::UnsubAck(packet));
}

#[test]
fn pingreq_3_12() {
    both_ways(&[0xC0, 0x00], Packet::PingReq);
}

#[test]
fn pingresp_3_13() {
    both_ways(&[0xD0, 0x00], Packet::PingResp);
}

#[test]
fn disconnect_3_14() {
    both_ways(&[0xE0, 0x00], Packet::Disconnect(Disconnect::default()));
}

#[test]
fn auth_does_not_exist_in_3_1() {
    // Type 15 is reserved before 5.0 in both directions.
    let mut out = BytesMut::new();
    assert_eq!(
        Packet::Auth(Default::default()).encode(V, &mut out),
        Err(EncodeError::NotInVersion(PacketType::Auth))
    );
    let mut buf = BytesMut::from(&[0xF0, 0x00][..]);
    assert_eq!(
        decode(&mut buf, V, MAX_PACKET_SIZE),
        Err(DecodeError::ReservedPacketType(15))
    );
}

#[test]
fn connack_has_no_session_present_flag_in_3_1() {
    // MQTT 3.1 reserves the first CONNACK byte: a session present flag is not sent.
    let packet = Packet::ConnAck(ConnAck {
        session_present: true,
        ..Default::default()
    });
    let mut buf = BytesMut::new();
    packet.encode(V, &mut buf).unwrap();
    assert_eq!(&buf[..], [0x20, 0x02, 0x00, 0x00]);
}
