//! Byte-literal tests for every MQTT 3.1.1 control packet, in both directions: the bytes,
//! derived by hand from the OASIS MQTT 3.1.1 standard, decode to the expected value, and the
//! value encodes to exactly those bytes.

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use bytes::{Bytes, BytesMut};
use tern_codec::{
    decode, ConnAck, Connect, Disconnect, EncodeError, Packet, PacketId, PacketType,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, Will, MAX_PACKET_SIZE,
};

const V: ProtocolVersion = ProtocolVersion::V3_1_1;

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

/// Encodes only: for values whose MQTT 5.0 fields 3.1.1 cannot carry.
fn encodes_to(packet: Packet, bytes: &[u8]) {
    let mut out = BytesMut::new();
    packet.encode(V, &mut out).unwrap();
    assert_eq!(&out[..], bytes, "encoding {packet:?}");
    assert_eq!(packet.encoded_len(V), bytes.len());
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

fn connect() -> Connect {
    Connect {
        protocol: V,
        ..Default::default()
    }
}

#[test]
fn connect_minimal_clean_session_3_1() {
    // Protocol name "MQTT", level 4, flags: Clean Session only, keep alive 60, empty client
    // identifier (allowed with Clean Session = 1 [MQTT-3.1.3-7]).
    let bytes = [
        0x10, 0x0C, // CONNECT, remaining length 12
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name [MQTT-3.1.2-1]
        0x04, // protocol level 4 [MQTT-3.1.2-2]
        0x02, // Clean Session
        0x00, 0x3C, // keep alive 60 s
        0x00, 0x00, // client identifier ""
    ];
    let packet = Connect {
        clean_start: true,
        keep_alive: 60,
        ..connect()
    };
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connect_variable_header_example_3_1_2_10() {
    // The standard's non-normative variable header example (figure 3.9/3.10): flags 0xCE =
    // user name, password, will QoS 1, will flag, clean session; keep alive 10. The payload
    // fields follow in the order of [MQTT-3.1.3-1]: client id, will topic, will message,
    // user name, password.
    let bytes = [
        0x10, 0x22, // CONNECT, remaining length 34
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, // protocol name and level
        0xCE, // 1100 1110
        0x00, 0x0A, // keep alive 10
        0x00, 0x02, b'c', b'1', // client identifier
        0x00, 0x03, b'w', b'/', b't', // will topic
        0x00, 0x03, b'b', b'y', b'e', // will message
        0x00, 0x04, b'u', b's', b'e', b'r', // user name
        0x00, 0x02, b'p', b'w', // password
    ];
    let packet = Connect {
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
        ..connect()
    };
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connect_flags_will_retain_qos2_3_1_2_3() {
    // Will Retain (bit 5), Will QoS 2 (bits 4-3 = 10), Will Flag (bit 2): 0011 0100; keep
    // alive at its maximum of 65,535 s = 18 h 12 min 15 s (§3.1.2.10).
    let bytes = [
        0x10, 0x16, // remaining length 22
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x34, 0xFF, 0xFF, // variable header
        0x00, 0x01, b'x', // client identifier
        0x00, 0x01, b'w', // will topic
        0x00, 0x04, 0x00, 0xFF, 0x80, 0x7F, // will message: binary, any bytes
    ];
    let packet = Connect {
        keep_alive: u16::MAX,
        client_id: "x".try_into().unwrap(),
        will: Some(Will {
            topic: topic("w"),
            payload: Bytes::from_static(&[0x00, 0xFF, 0x80, 0x7F]),
            qos: QoS::ExactlyOnce,
            retain: true,
            ..Default::default()
        }),
        ..connect()
    };
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connect_user_name_without_password_3_1_2_8() {
    let bytes = [
        0x10, 0x13, // remaining length 19
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x80, 0x00, 0x00, // user name flag only
        0x00, 0x02, b'i', b'd', // client identifier
        0x00, 0x03, b'b', b'o', b'b', // user name
    ];
    let packet = Connect {
        client_id: "id".try_into().unwrap(),
        username: Some("bob".try_into().unwrap()),
        ..connect()
    };
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connack_return_codes_3_2_2_3() {
    // Table 3.1: 0 accepted, 1 unacceptable protocol version, 2 identifier rejected, 3 server
    // unavailable, 4 bad user name or password, 5 not authorized.
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
fn connack_session_present_3_2_2_2() {
    let packet = ConnAck {
        session_present: true,
        ..Default::default()
    };
    both_ways(&[0x20, 0x02, 0x01, 0x00], Packet::ConnAck(packet));
}

#[test]
fn connack_maps_mqtt5_codes_to_return_codes_3_2_2_3() {
    // A 3.1.1 CONNACK has no room for the 5.0 codes; each goes out as its nearest return code.
    let cases = [
        (ReasonCode::Banned, 0x05),
        (ReasonCode::BadAuthenticationMethod, 0x04),
        (ReasonCode::ServerBusy, 0x03),
        (ReasonCode::UnspecifiedError, 0x03),
    ];
    for (reason_code, byte) in cases {
        let packet = ConnAck {
            reason_code,
            ..Default::default()
        };
        encodes_to(Packet::ConnAck(packet), &[0x20, 0x02, 0x00, byte]);
    }
}

#[test]
fn publish_qos0_has_no_packet_identifier_2_3_1() {
    // [MQTT-2.3.1-5]: a QoS 0 PUBLISH carries no packet identifier.
    let bytes = [
        0x30, 0x07, // PUBLISH, QoS 0, remaining length 7
        0x00, 0x03, b'a', b'/', b'b', // topic name
        b'h', b'i', // payload: the rest of the packet
    ];
    let packet = Publish::new(topic("a/b"), "hi");
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn publish_fixed_header_flags_3_3_1() {
    // DUP (bit 3), QoS 1 (bits 2-1 = 01), RETAIN (bit 0): 1011.
    let bytes = [
        0x3B, 0x07, // PUBLISH DUP QoS 1 RETAIN
        0x00, 0x01, b'a', // topic name
        0x00, 0x0A, // packet identifier 10
        b'x', b'y', // payload
    ];
    let packet = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        packet_id: Some(pid(10)),
        ..Publish::new(topic("a"), "xy")
    };
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn publish_qos2_empty_payload_3_3_3() {
    // A zero length payload is valid (§3.3.3); packet identifier 65535.
    let bytes = [0x34, 0x05, 0x00, 0x01, b'a', 0xFF, 0xFF];
    let packet = Publish {
        qos: QoS::ExactlyOnce,
        packet_id: Some(pid(u16::MAX)),
        ..Publish::new(topic("a"), Bytes::new())
    };
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn publish_remaining_length_321_2_2_3() {
    // §2.2.3: 321 = 65 + 2 * 128 is encoded as the two bytes 0xC1 0x02. Topic "t" takes 3
    // bytes, so the payload is 318.
    let payload = vec![0xA5; 318];
    let mut bytes = vec![0x30, 0xC1, 0x02, 0x00, 0x01, b't'];
    bytes.extend_from_slice(&payload);
    let packet = Publish::new(topic("t"), payload);
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn publish_utf8_topic_example_1_5_3() {
    // Figure 1.3: "A\u{2A6D4}" is 0x41 then the four byte sequence F0 AA 9B 94.
    let bytes = [0x30, 0x07, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94];
    let packet = Publish::new(topic("A\u{2A6D4}"), Bytes::new());
    both_ways(&bytes, Packet::Publish(packet));
    // U+FEFF is kept, not stripped [MQTT-1.5.3-3].
    let bytes = [0x30, 0x05, 0x00, 0x03, 0xEF, 0xBB, 0xBF];
    let packet = Publish::new(topic("\u{FEFF}"), Bytes::new());
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn publish_drops_mqtt5_properties_3_3_2() {
    // A 3.1.1 PUBLISH has no property length: the 5.0 fields of the model are not written.
    let mut packet = Publish::new(topic("a"), "p");
    packet.properties.message_expiry_interval = Some(5);
    encodes_to(
        Packet::Publish(packet),
        &[0x30, 0x04, 0x00, 0x01, b'a', b'p'],
    );
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
        &[0x50, 0x02, 0x12, 0x34],
        Packet::PubRec(PubResponse::new(pid(0x1234))),
    );
}

#[test]
fn pubrel_fixed_header_flags_0010_3_6_1() {
    // [MQTT-3.6.1-1]: PUBREL's flags are 0010.
    both_ways(
        &[0x62, 0x02, 0xFF, 0xFF],
        Packet::PubRel(PubResponse::new(pid(u16::MAX))),
    );
}

#[test]
fn pubcomp_3_7() {
    both_ways(
        &[0x70, 0x02, 0x00, 0x07],
        Packet::PubComp(PubResponse::new(pid(7))),
    );
}

#[test]
fn acks_drop_mqtt5_reason_code_3_4_2() {
    let ack = PubResponse {
        reason_code: ReasonCode::NoMatchingSubscribers,
        ..PubResponse::new(pid(1))
    };
    encodes_to(Packet::PubAck(ack), &[0x40, 0x02, 0x00, 0x01]);
}

#[test]
fn subscribe_payload_example_3_8_3_1() {
    // The standard's example: packet identifier 10, "a/b" at QoS 1 and "c/d" at QoS 2; the
    // fixed header flags are 0010 [MQTT-3.8.1-1].
    let bytes = [
        0x82, 0x0E, // SUBSCRIBE, remaining length 14
        0x00, 0x0A, // packet identifier 10
        0x00, 0x03, b'a', b'/', b'b', 0x01, // "a/b", requested QoS 1
        0x00, 0x03, b'c', b'/', b'd', 0x02, // "c/d", requested QoS 2
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
                filter("c/d"),
                SubscriptionOptions::with_qos(QoS::ExactlyOnce),
            ),
        ],
    };
    both_ways(&bytes, Packet::Subscribe(packet));
}

#[test]
fn subscribe_wildcard_filters_4_7_1() {
    let bytes = [
        0x82, 0x0D, 0x00, 0x01, // packet identifier 1
        0x00, 0x01, b'#', 0x00, // "#" at QoS 0
        0x00, 0x04, b'+', b'/', b'+', b'/', 0x01, // "+/+/" at QoS 1
    ];
    let packet = Subscribe {
        packet_id: pid(1),
        properties: Default::default(),
        filters: vec![
            (filter("#"), SubscriptionOptions::default()),
            (
                filter("+/+/"),
                SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            ),
        ],
    };
    both_ways(&bytes, Packet::Subscribe(packet));
}

#[test]
fn suback_payload_example_3_9_3() {
    // The standard's example: Success QoS 0, Success QoS 2, Failure (0x80).
    let bytes = [0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80];
    let packet = SubAck {
        packet_id: pid(10),
        properties: Default::default(),
        reason_codes: vec![
            ReasonCode::GRANTED_QOS0,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ],
    };
    both_ways(&bytes, Packet::SubAck(packet));
}

#[test]
fn suback_sends_every_failure_as_0x80_3_9_3() {
    // [MQTT-3.9.3-2]: 0x00, 0x01, 0x02 and 0x80 are the only return codes in 3.1.1.
    let packet = SubAck {
        packet_id: pid(3),
        properties: Default::default(),
        reason_codes: vec![
            ReasonCode::GrantedQoS1,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
        ],
    };
    encodes_to(
        Packet::SubAck(packet),
        &[0x90, 0x05, 0x00, 0x03, 0x01, 0x80, 0x80],
    );
}

#[test]
fn unsubscribe_payload_example_3_10_3() {
    // The standard's example: "a/b" and "c/d"; the fixed header flags are 0010
    // [MQTT-3.10.1-1].
    let bytes = [
        0xA2, 0x0C, 0x00, 0x0A, // packet identifier 10
        0x00, 0x03, b'a', b'/', b'b', // "a/b"
        0x00, 0x03, b'c', b'/', b'd', // "c/d"
    ];
    let packet = Unsubscribe {
        packet_id: pid(10),
        properties: Default::default(),
        filters: vec![filter("a/b"), filter("c/d")],
    };
    both_ways(&bytes, Packet::Unsubscribe(packet));
}

#[test]
fn unsuback_has_no_payload_3_11() {
    let packet = UnsubAck {
        packet_id: pid(10),
        ..Default::default()
    };
    both_ways(&[0xB0, 0x02, 0x00, 0x0A], Packet::UnsubAck(packet));
    // Reason codes are MQTT 5.0 only and are not written.
    let packet = UnsubAck {
        packet_id: pid(10),
        reason_codes: vec![ReasonCode::NoSubscriptionExisted],
        ..Default::default()
    };
    encodes_to(Packet::UnsubAck(packet), &[0xB0, 0x02, 0x00, 0x0A]);
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
    // A 5.0 reason code has no place in a 3.1.1 DISCONNECT.
    encodes_to(
        Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWill)),
        &[0xE0, 0x00],
    );
}

#[test]
fn auth_does_not_exist_in_3_1_1_2_2_1() {
    // Packet type 15 is reserved in 3.1.1 (table 2.1).
    let mut out = BytesMut::new();
    let auth = Packet::Auth(Default::default());
    assert_eq!(
        auth.encode(V, &mut out),
        Err(EncodeError::NotInVersion(PacketType::Auth))
    );
    assert!(out.is_empty(), "nothing written on error");
}

#[test]
fn several_packets_in_one_buffer_decode_in_order_2_2_3() {
    let mut buf = BytesMut::from(
        &[
            0x30, 0x04, 0x00, 0x01, b'a', b'1', // PUBLISH "a" "1"
            0xC0, 0x00, // PINGREQ
            0x40, 0x02, 0x00, 0x05, // PUBACK 5
            0xE0, // first byte of a DISCONNECT
        ][..],
    );
    let expected = [
        Packet::Publish(Publish::new(topic("a"), "1")),
        Packet::PingReq,
        Packet::PubAck(PubResponse::new(pid(5))),
    ];
    for packet in expected {
        assert_eq!(decode(&mut buf, V, MAX_PACKET_SIZE), Ok(Some(packet)));
    }
    assert_eq!(decode(&mut buf, V, MAX_PACKET_SIZE), Ok(None));
    assert_eq!(&buf[..], &[0xE0], "the partial packet stays in the buffer");
    buf.extend_from_slice(&[0x00]);
    assert_eq!(
        decode(&mut buf, V, MAX_PACKET_SIZE),
        Ok(Some(Packet::Disconnect(Disconnect::default())))
    );
}
