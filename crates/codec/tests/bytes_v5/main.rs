//! Byte-literal tests for every MQTT 5.0 control packet and their properties, in both
//! directions: the bytes, derived by hand from the OASIS MQTT 5.0 standard, decode to the
//! expected value, and the value encodes to exactly those bytes. Properties are written in the
//! codec's fixed order (the standard allows any order; `properties_in_any_order_2_2_2` shows
//! that decoding accepts it).

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use tern_codec::{
    decode, Auth, ConnAck, Connect, Disconnect, MqttString, Packet, PacketId, PacketType,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscriptionOptions, TopicFilter, TopicName, UnsubAck, Unsubscribe, UserProperty, Will,
    MAX_PACKET_SIZE,
};

/// PUBACK to AUTH: the acknowledgements, subscriptions, PINGREQ, DISCONNECT and AUTH.
mod acks_to_auth;

const V: ProtocolVersion = ProtocolVersion::V5;

/// Decodes `bytes` to `packet` (consuming all of them), encodes `packet` back to `bytes`, and
/// checks that `encoded_len` predicts the length.
fn both_ways(bytes: &[u8], packet: Packet) {
    decodes_to(bytes, packet.clone());
    let mut out = BytesMut::new();
    packet.encode(V, &mut out).unwrap();
    assert_eq!(&out[..], bytes, "encoding {packet:?}");
    assert_eq!(
        packet.encoded_len(V),
        bytes.len(),
        "encoded_len of {packet:?}"
    );
}

/// Decodes only: for the long forms the standard lets a sender shorten.
fn decodes_to(bytes: &[u8], packet: Packet) {
    let mut buf = BytesMut::from(bytes);
    let decoded = decode(&mut buf, V, MAX_PACKET_SIZE).unwrap();
    assert_eq!(decoded, Some(packet), "decoding {bytes:02X?}");
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
}

fn s(text: &str) -> MqttString {
    MqttString::try_from(text).unwrap()
}

fn user(name: &str, value: &str) -> UserProperty {
    UserProperty::new(name, value).unwrap()
}

fn topic(text: &str) -> TopicName {
    TopicName::try_from(text).unwrap()
}

fn filter(text: &str) -> TopicFilter {
    TopicFilter::try_from(text).unwrap()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn ack(id: u16, code: u8) -> PubResponse {
    PubResponse {
        reason_code: ReasonCode::from_u8(code).unwrap(),
        ..PubResponse::new(pid(id))
    }
}

fn codes(bytes: &[u8]) -> Vec<ReasonCode> {
    bytes
        .iter()
        .map(|&b| ReasonCode::from_u8(b).unwrap())
        .collect()
}

/// A `Packet` variant constructor for one of the acknowledgement types.
type MakePacket = fn(PubResponse) -> Packet;

fn nz16(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

fn nz32(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn connect_variable_header_example_3_1_2_11() {
    // The standard's variable header example (figure 3-7): "MQTT", version 5, flags 0xCE
    // (user name, password, will QoS 1, will flag, clean start), keep alive 10, then the
    // properties: length 5, Session Expiry Interval (17) = 10.
    let bytes = [
        0x10, 0x29, // CONNECT, remaining length 41
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xCE, 0x00, 0x0A, // variable header
        0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, // properties
        0x00, 0x02, b'c', b'1', // client identifier
        0x00, // will properties: none
        0x00, 0x03, b'w', b'/', b't', // will topic
        0x00, 0x03, b'b', b'y', b'e', // will payload
        0x00, 0x04, b'u', b's', b'e', b'r', // user name
        0x00, 0x02, b'p', b'w', // password
    ];
    let mut packet = Connect {
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
        username: Some(s("user")),
        password: Some(Bytes::from_static(b"pw")),
        ..Default::default()
    };
    packet.properties.session_expiry_interval = Some(10);
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connect_and_will_properties_3_1_2_11_and_3_1_3_2() {
    let bytes = [
        0x10, 0x82, 0x01, // CONNECT, remaining length 130
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, // protocol name and version
        0xAE, // user name, will retain, will QoS 1, will flag, clean start: 1010 1110
        0x00, 0x3C, // keep alive 60
        0x28, // property length 40
        0x11, 0x00, 0x00, 0x0E, 0x10, 0x21, 0x00, 0x14, // session expiry 3600, receive max 20
        0x27, 0x00, 0x10, 0x00, 0x00, 0x22, 0x00, 0x0A, // max packet size 1 MiB, alias max 10
        0x19, 0x01, 0x17, 0x00, // request response information 1, problem information 0
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        0x16, 0x00, 0x02, 0x01, 0x02, // authentication data
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
        0x00, 0x05, b'd', b'e', b'v', b'-', b'1', // client identifier
        0x2D, // will property length 45
        0x18, 0x00, 0x00, 0x00, 0x05, 0x01, 0x01, // will delay 5, payload format: UTF-8
        0x02, 0x00, 0x00, 0x00, 0x3C, // message expiry interval 60
        0x03, 0x00, 0x0A, // content type, 10 bytes:
        b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n', // "text/plain"
        0x08, 0x00, 0x05, b'r', b'e', b'p', b'l', b'y', // response topic
        0x09, 0x00, 0x02, 0xAB, 0xCD, // correlation data
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b', // user property a=b
        0x00, 0x0C, b'd', b'e', b'v', b'/', b'1', b'/', b's', b't', b'a', b't', b'u',
        b's', // topic
        0x00, 0x07, b'o', b'f', b'f', b'l', b'i', b'n', b'e', // will payload
        0x00, 0x01, b'u', // user name
    ];
    let mut will = Will {
        topic: topic("dev/1/status"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        ..Default::default()
    };
    will.properties.will_delay_interval = Some(5);
    will.properties.payload_format_indicator = Some(true);
    will.properties.message_expiry_interval = Some(60);
    will.properties.content_type = Some(s("text/plain"));
    will.properties.response_topic = Some(topic("reply"));
    will.properties.correlation_data = Some(Bytes::from_static(&[0xAB, 0xCD]));
    will.properties.user_properties = vec![user("a", "b")];
    let mut packet = Connect {
        protocol: V,
        clean_start: true,
        keep_alive: 60,
        client_id: "dev-1".try_into().unwrap(),
        will: Some(will),
        username: Some(s("u")),
        ..Default::default()
    };
    let p = &mut packet.properties;
    p.session_expiry_interval = Some(3600);
    p.receive_maximum = Some(nz16(20));
    p.maximum_packet_size = Some(nz32(1 << 20));
    p.topic_alias_maximum = Some(10);
    p.request_response_information = Some(true);
    p.request_problem_information = Some(false);
    p.authentication_method = Some(s("SCRAM"));
    p.authentication_data = Some(Bytes::from_static(&[1, 2]));
    p.user_properties = vec![user("k", "v")];
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn connect_password_without_user_name_3_1_2_9() {
    // 5.0 dropped the 3.1.1 rule [MQTT-3.1.2-22]: a password may come without a user name.
    let bytes = [
        0x10, 0x12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, // remaining length 18, "MQTT" 5
        0x42, 0x00, 0x00, 0x00, // password flag, clean start; keep alive 0; no properties
        0x00, 0x00, 0x00, 0x03, b'p', b'w', b'd', // empty client identifier, password
    ];
    let packet = Connect {
        protocol: V,
        clean_start: true,
        password: Some(Bytes::from_static(b"pwd")),
        ..Default::default()
    };
    both_ways(&bytes, Packet::Connect(Box::new(packet)));
}

#[test]
fn properties_in_any_order_2_2_2() {
    // Request Problem Information sent before Session Expiry Interval decodes to the same
    // value; the codec writes its own fixed order.
    let header = [
        0x10, 0x14, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x00,
    ];
    let sent = [0x07, 0x17, 0x01, 0x11, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    let canonical = [0x07, 0x11, 0x00, 0x00, 0x00, 0x01, 0x17, 0x01, 0x00, 0x00];
    let mut packet = Connect {
        protocol: V,
        clean_start: true,
        ..Default::default()
    };
    packet.properties.request_problem_information = Some(true);
    packet.properties.session_expiry_interval = Some(1);
    let packet = Packet::Connect(Box::new(packet));
    decodes_to(&[&header[..], &sent].concat(), packet.clone());
    both_ways(&[&header[..], &canonical].concat(), packet);
}

#[test]
fn connack_minimal_3_2() {
    both_ways(
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        Packet::ConnAck(ConnAck::default()),
    );
    let packet = ConnAck {
        session_present: true,
        ..Default::default()
    };
    both_ways(&[0x20, 0x03, 0x01, 0x00, 0x00], Packet::ConnAck(packet));
}

#[test]
fn connack_reason_codes_3_2_2_2() {
    // Table 3-1: 0x00 and the listed failures 0x80-0x9F.
    let expected = [
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
        0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    let valid: Vec<u8> = ReasonCode::ALL
        .iter()
        .filter(|code| code.is_valid_for(PacketType::ConnAck))
        .map(|&code| u8::from(code))
        .collect();
    assert_eq!(valid, expected);
    for byte in expected {
        let packet = ConnAck {
            reason_code: ReasonCode::from_u8(byte).unwrap(),
            ..Default::default()
        };
        both_ways(&[0x20, 0x03, 0x00, byte, 0x00], Packet::ConnAck(packet));
    }
}

#[test]
fn connack_properties_3_2_2_3() {
    let bytes = [
        0x20, 0x4C, // CONNACK, remaining length 76
        0x00, 0x00, // no session, Success
        0x49, // property length 73
        0x11, 0x00, 0x00, 0x00, 0x78, 0x21, 0x00, 0x0A, // session expiry 120, receive max 10
        0x24, 0x01, 0x25, 0x00, // maximum QoS 1, retain available 0
        0x27, 0x00, 0x00, 0xFF, 0xFF, // maximum packet size 65535
        0x12, 0x00, 0x04, b'a', b'u', b't', b'o', // assigned client identifier
        0x22, 0x00, 0x05, 0x1F, 0x00, 0x02, b'o',
        b'k', // topic alias maximum 5, reason string
        0x28, 0x01, 0x29, 0x00, 0x2A, 0x01, // wildcard yes, subscription ids no, shared yes
        0x13, 0x00, 0x1E, // server keep alive 30
        0x1A, 0x00, 0x04, b'r', b'e', b's', b'p', // response information
        0x1C, 0x00, 0x03, b's', b'r', b'v', // server reference
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        0x16, 0x00, 0x01, 0xFF, // authentication data
        0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'y', // user property
    ];
    let mut packet = ConnAck::default();
    let p = &mut packet.properties;
    p.session_expiry_interval = Some(120);
    p.receive_maximum = Some(nz16(10));
    p.maximum_qos = Some(QoS::AtLeastOnce);
    p.retain_available = Some(false);
    p.maximum_packet_size = Some(nz32(65535));
    p.assigned_client_identifier = Some(s("auto"));
    p.topic_alias_maximum = Some(5);
    p.reason_string = Some(s("ok"));
    p.wildcard_subscription_available = Some(true);
    p.subscription_identifiers_available = Some(false);
    p.shared_subscription_available = Some(true);
    p.server_keep_alive = Some(30);
    p.response_information = Some(s("resp"));
    p.server_reference = Some(s("srv"));
    p.authentication_method = Some(s("SCRAM"));
    p.authentication_data = Some(Bytes::from_static(&[0xFF]));
    p.user_properties = vec![user("x", "y")];
    both_ways(&bytes, Packet::ConnAck(packet));
}

#[test]
fn publish_without_properties_3_3_2_3() {
    // The property length is always present in a 5.0 PUBLISH, here 0.
    let bytes = [0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, b'h', b'i'];
    both_ways(&bytes, Packet::Publish(Publish::new(topic("a/b"), "hi")));
}

#[test]
fn publish_topic_alias_3_3_2_3_4() {
    // Setting up alias 1 for "a", then using alias 5 with a zero length topic name.
    let bytes = [0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x01];
    let mut packet = Publish::new(topic("a"), Bytes::new());
    packet.properties.topic_alias = Some(nz16(1));
    both_ways(&bytes, Packet::Publish(packet));

    let bytes = [
        0x32, 0x09, // PUBLISH QoS 1
        0x00, 0x00, // zero length topic name
        0x00, 0x01, // packet identifier 1
        0x03, 0x23, 0x00, 0x05, // topic alias 5
        b'x',
    ];
    let mut packet = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: Some(pid(1)),
        ..Publish::new(TopicName::default(), "x")
    };
    packet.properties.topic_alias = Some(nz16(5));
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn publish_properties_3_3_2_3() {
    let bytes = [
        0x35, 0x41, // PUBLISH QoS 2 RETAIN, remaining length 65
        0x00, 0x03, b't', b'/', b'1', // topic name
        0x12, 0x34, // packet identifier
        0x37, // property length 55
        0x01, 0x01, 0x02, 0x00, 0x00, 0x01, 0x2C, // payload format UTF-8, message expiry 300
        0x23, 0x00, 0x01, // topic alias 1
        0x08, 0x00, 0x05, b'r', b'e', b'p', b'l', b'y', // response topic
        0x09, 0x00, 0x03, 0x01, 0x02, 0x03, // correlation data
        0x03, 0x00, 0x04, b'j', b's', b'o', b'n', // content type
        0x0B, 0x01, 0x0B, 0x80, 0x01, // subscription identifiers 1 and 128
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F, // subscription identifier 268,435,455
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'1', // user property a=1
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'2', // user property a=2, order kept
        b'{', b'}', // payload
    ];
    let mut packet = Publish {
        qos: QoS::ExactlyOnce,
        retain: true,
        packet_id: Some(pid(0x1234)),
        ..Publish::new(topic("t/1"), "{}")
    };
    let p = &mut packet.properties;
    p.payload_format_indicator = Some(true);
    p.message_expiry_interval = Some(300);
    p.topic_alias = Some(nz16(1));
    p.response_topic = Some(topic("reply"));
    p.correlation_data = Some(Bytes::from_static(&[1, 2, 3]));
    p.content_type = Some(s("json"));
    p.subscription_identifiers = vec![nz32(1), nz32(128), nz32(268_435_455)];
    p.user_properties = vec![user("a", "1"), user("a", "2")];
    both_ways(&bytes, Packet::Publish(packet));
}

#[test]
fn utf8_string_example_1_5_4() {
    // Figure 1-1: "A\u{2A6D4}" is 00 05 41 F0 AA 9B 94, here as topic name and user property.
    let bytes = [
        0x30, 0x17, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94, // topic name
        0x0F, 0x26, // property length 15, user property
        0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94, // name
        0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94, // value
    ];
    let mut packet = Publish::new(topic("A\u{2A6D4}"), Bytes::new());
    packet.properties.user_properties = vec![user("A\u{2A6D4}", "A\u{2A6D4}")];
    both_ways(&bytes, Packet::Publish(packet));
}
