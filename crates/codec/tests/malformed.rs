//! Negative tests: for every [`DecodeError`] that bytes on the wire can cause, packets that
//! break the rule, the exact variant they decode to, a message that names the rule
//! (`[MQTT-...]`), and the MQTT 5.0 reason code a server would close the connection with.
//!
//! `DecodeError::StringTooLong` cannot come from the wire: a two byte length prefix cannot
//! describe more than 65,535 bytes.

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use bytes::BytesMut;
use tern_codec::{decode, DecodeError, PacketType, ProtocolVersion, ReasonCode};

use DecodeError::*;
use ProtocolVersion::{V3_1, V3_1_1, V5};

const ALL: &[ProtocolVersion] = &[V3_1, V3_1_1, V5];
const V3: &[ProtocolVersion] = &[V3_1, V3_1_1];
const ONLY_V5: &[ProtocolVersion] = &[V5];
const MALFORMED: ReasonCode = ReasonCode::MalformedPacket;
const PROTOCOL_ERROR: ReasonCode = ReasonCode::ProtocolError;

/// Asserts that `bytes` fail to decode with `expected` in each of `versions`, and that the
/// message names a rule. (The reason code is a function of the variant; each test checks it
/// once.)
fn rejects(versions: &[ProtocolVersion], bytes: &[u8], expected: DecodeError) {
    for &version in versions {
        let mut buf = BytesMut::from(bytes);
        let err = match decode(&mut buf, version, 1 << 20) {
            Err(err) => err,
            Ok(other) => panic!("{version}: {bytes:02X?} decoded to {other:?}"),
        };
        assert_eq!(err, expected, "{version}: {bytes:02X?}");
        let message = err.to_string();
        assert!(message.contains("[MQTT-"), "no rule named in {message:?}");
    }
}

/// A whole packet: the first byte, a one byte remaining length, then the body parts.
fn frame(first: u8, body: &[&[u8]]) -> Vec<u8> {
    let body = body.concat();
    assert!(body.len() < 128, "fixture too long for a one byte length");
    [&[first, body.len() as u8][..], &body].concat()
}

/// The CONNECT variable header up to and including the keep alive.
fn connect_header(name: &[u8], level: u8, flags: u8) -> Vec<u8> {
    [&[0x00, name.len() as u8], name, &[level, flags, 0x00, 0x3C]].concat()
}

/// A 3.1.1 CONNECT with these flags and payload.
fn connect_v311(flags: u8, payload: &[&[u8]]) -> Vec<u8> {
    frame(
        0x10,
        &[&[&connect_header(b"MQTT", 4, flags)[..]], payload].concat(),
    )
}

/// A 5.0 CONNECT with these properties and an empty client identifier.
fn connect_v5_with_properties(properties: &[u8]) -> Vec<u8> {
    let header = connect_header(b"MQTT", 5, 0x02);
    frame(
        0x10,
        &[&header, &[properties.len() as u8], properties, &[0, 0]],
    )
}

/// A 5.0 QoS 0 PUBLISH to "a" with these properties and no payload.
fn publish_v5_with_properties(properties: &[u8]) -> Vec<u8> {
    frame(
        0x30,
        &[&[0x00, 0x01, b'a', properties.len() as u8], properties],
    )
}

/// A 5.0 PUBACK for packet 1 with reason code 0 and these properties.
fn puback_v5_with_properties(properties: &[u8]) -> Vec<u8> {
    frame(
        0x40,
        &[&[0x00, 0x01, 0x00, properties.len() as u8], properties],
    )
}

/// A SUBSCRIBE for packet 1 with one filter and options byte (and no properties in 5.0).
fn subscribe(version: ProtocolVersion, filter: &[u8], options: u8) -> Vec<u8> {
    let properties: &[u8] = if version.is_v5() { &[0x00] } else { &[] };
    let len = [0x00, filter.len() as u8];
    frame(0x82, &[&[0x00, 0x01], properties, &len, filter, &[options]])
}

#[test]
fn variable_byte_integer_of_five_bytes_1_5_5_1() {
    let bytes = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    rejects(ALL, &bytes, MalformedVariableInteger);
    // Four bytes that all say "more follows" are enough to know.
    let bytes = [0x30, 0x80, 0x80, 0x80, 0x80];
    rejects(ALL, &bytes, MalformedVariableInteger);
    // The same rule inside the body: a property length, a subscription identifier.
    let publish = frame(0x30, &[&[0x00, 0x01, b'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]]);
    rejects(ONLY_V5, &publish, MalformedVariableInteger);
    let publish = publish_v5_with_properties(&[0x0B, 0x80, 0x80, 0x80, 0x80, 0x01]);
    rejects(ONLY_V5, &publish, MalformedVariableInteger);
    assert_eq!(MalformedVariableInteger.reason_code(), MALFORMED);
}

#[test]
fn packet_too_large_is_refused_before_the_body_arrives_3_1_2_11_4() {
    // Remaining length 65,535 (FF FF 03) announced, only the fixed header received.
    let (size, max) = (1 + 3 + 65_535, 1024);
    for &version in ALL {
        let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0x03][..]);
        let err = decode(&mut buf, version, max).unwrap_err();
        assert_eq!(err, PacketTooLarge { size, max });
        assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
        assert!(err.to_string().contains("[MQTT-"));
        assert_eq!(buf.len(), 4, "nothing consumed");
    }
    // The limit counts the whole packet: 1 + 1 + 127 = 129 bytes is allowed at 129.
    let mut buf = BytesMut::from(&[0x30, 0x7F][..]);
    assert_eq!(decode(&mut buf, V5, 129), Ok(None));
    let (size, max) = (129, 128);
    assert_eq!(decode(&mut buf, V5, max), Err(PacketTooLarge { size, max }));
}

#[test]
fn reserved_packet_types_2_1_2() {
    rejects(ALL, &[0x00, 0x00], ReservedPacketType(0));
    // Refused as soon as the first byte is there.
    rejects(ALL, &[0x00], ReservedPacketType(0));
    // 15 is AUTH in 5.0 and reserved before.
    rejects(V3, &[0xF0, 0x00], ReservedPacketType(15));
    rejects(V3, &[0xF0], ReservedPacketType(15));
    assert_eq!(ReservedPacketType(0).reason_code(), MALFORMED);
}

#[test]
fn reserved_fixed_header_flags_2_1_3_1() {
    use PacketType::*;
    let fixed = [
        (Connect, 0b0000),
        (ConnAck, 0b0000),
        (PubAck, 0b0000),
        (PubRec, 0b0000),
        (PubRel, 0b0010),
        (PubComp, 0b0000),
        (Subscribe, 0b0010),
        (SubAck, 0b0000),
        (Unsubscribe, 0b0010),
        (UnsubAck, 0b0000),
        (PingReq, 0b0000),
        (PingResp, 0b0000),
        (Disconnect, 0b0000),
        (Auth, 0b0000),
    ];
    for (packet, required) in fixed {
        let versions = if packet == Auth { ONLY_V5 } else { ALL };
        for flags in (0..16).filter(|&f| f != required) {
            let first = (packet as u8) << 4 | flags;
            rejects(versions, &[first, 0x00], ReservedFlags { packet, flags });
            rejects(versions, &[first], ReservedFlags { packet, flags });
        }
    }
    let err = ReservedFlags {
        packet: PingReq,
        flags: 1,
    };
    assert_eq!(err.reason_code(), MALFORMED);
}

#[test]
fn publish_with_qos_3_3_3_1_4() {
    rejects(ALL, &[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01], InvalidQoS);
    assert_eq!(InvalidQoS.reason_code(), MALFORMED);
}

#[test]
fn dup_on_qos0_publish_3_3_1_2() {
    rejects(V3, &[0x38, 0x03, 0x00, 0x01, b'a'], DupOnQoS0);
    rejects(ONLY_V5, &[0x38, 0x04, 0x00, 0x01, b'a', 0x00], DupOnQoS0);
    assert_eq!(DupOnQoS0.reason_code(), MALFORMED);
}

#[test]
fn zero_packet_identifier_2_2_1_3() {
    use PacketType::*;
    let bytes = [0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00];
    rejects(V3, &bytes, ZeroPacketId(Publish));
    let publish = [0x32, 0x06, 0x00, 0x01, b'a', 0x00, 0x00, 0x00];
    rejects(ONLY_V5, &publish, ZeroPacketId(Publish));
    rejects(ALL, &[0x40, 0x02, 0x00, 0x00], ZeroPacketId(PubAck));
    rejects(ALL, &[0x50, 0x02, 0x00, 0x00], ZeroPacketId(PubRec));
    rejects(ALL, &[0x62, 0x02, 0x00, 0x00], ZeroPacketId(PubRel));
    rejects(ALL, &[0x70, 0x02, 0x00, 0x00], ZeroPacketId(PubComp));
    let subscribe = [0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'#', 0x00];
    rejects(V3, &subscribe, ZeroPacketId(Subscribe));
    let subscribe = [0x82, 0x07, 0x00, 0x00, 0x00, 0x00, 0x01, b'#', 0x00];
    rejects(ONLY_V5, &subscribe, ZeroPacketId(Subscribe));
    rejects(V3, &[0x90, 0x03, 0x00, 0x00, 0x00], ZeroPacketId(SubAck));
    let bytes = [0x90, 0x04, 0x00, 0x00, 0x00, 0x00];
    rejects(ONLY_V5, &bytes, ZeroPacketId(SubAck));
    let unsubscribe = [0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'#'];
    rejects(V3, &unsubscribe, ZeroPacketId(Unsubscribe));
    let unsubscribe = [0xA2, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, b'#'];
    rejects(ONLY_V5, &unsubscribe, ZeroPacketId(Unsubscribe));
    rejects(V3, &[0xB0, 0x02, 0x00, 0x00], ZeroPacketId(UnsubAck));
    let bytes = [0xB0, 0x04, 0x00, 0x00, 0x00, 0x00];
    rejects(ONLY_V5, &bytes, ZeroPacketId(UnsubAck));
    assert_eq!(ZeroPacketId(PubAck).reason_code(), MALFORMED);
}

#[test]
fn body_shorter_than_its_fields_1_5() {
    use PacketType::*;
    rejects(ALL, &[0x40, 0x01, 0x00], UnexpectedEnd(PubAck));
    rejects(ALL, &[0x20, 0x01, 0x00], UnexpectedEnd(ConnAck));
    rejects(ALL, &[0x10, 0x03, 0x00, 0x04, b'M'], UnexpectedEnd(Connect));
    // A topic length of 5 with 1 byte left.
    rejects(ALL, &[0x30, 0x03, 0x00, 0x05, b'a'], UnexpectedEnd(Publish));
    // A filter without its options byte.
    let subscribe = [0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'#'];
    rejects(V3, &subscribe, UnexpectedEnd(Subscribe));
    // The will flag is set but the will topic and payload are missing.
    let connect = connect_v311(0x06, &[&[0x00, 0x00]]);
    rejects(ALL, &connect, UnexpectedEnd(Connect));
    // A property length of 9 with 2 bytes left; a string property cut short.
    let puback = frame(0x40, &[&[0x00, 0x01, 0x87, 0x09, 0x1F, 0x00]]);
    rejects(ONLY_V5, &puback, UnexpectedEnd(PubAck));
    let puback = puback_v5_with_properties(&[0x1F, 0x00, 0x05, b'a']);
    rejects(ONLY_V5, &puback, UnexpectedEnd(PubAck));
    // A 5.0 CONNACK without its property length.
    rejects(ONLY_V5, &[0x20, 0x02, 0x00, 0x00], UnexpectedEnd(ConnAck));
    assert_eq!(UnexpectedEnd(PubAck).reason_code(), MALFORMED);
}

#[test]
fn bytes_beyond_the_last_field_2_1_4() {
    use PacketType::*;
    rejects(ALL, &[0xC0, 0x01, 0x00], TrailingBytes(PingReq));
    rejects(ALL, &[0xD0, 0x01, 0x00], TrailingBytes(PingResp));
    rejects(V3, &[0x40, 0x03, 0x00, 0x01, 0x00], TrailingBytes(PubAck));
    rejects(V3, &[0xB0, 0x03, 0x00, 0x01, 0x00], TrailingBytes(UnsubAck));
    rejects(V3, &[0xE0, 0x01, 0x00], TrailingBytes(Disconnect));
    rejects(V3, &[0x20, 0x03, 0x00, 0x00, 0x00], TrailingBytes(ConnAck));
    let bytes = [0x20, 0x04, 0x00, 0x00, 0x00, 0xFF];
    rejects(ONLY_V5, &bytes, TrailingBytes(ConnAck));
    let puback = [0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0xFF];
    rejects(ONLY_V5, &puback, TrailingBytes(PubAck));
    let bytes = [0xE0, 0x03, 0x00, 0x00, 0xFF];
    rejects(ONLY_V5, &bytes, TrailingBytes(Disconnect));
    let bytes = [0xF0, 0x03, 0x00, 0x00, 0xFF];
    rejects(ONLY_V5, &bytes, TrailingBytes(Auth));
    // A byte after the last field CONNECT's flags announce.
    let connect = connect_v311(0x02, &[&[0x00, 0x00, 0xFF]]);
    rejects(ALL, &connect, TrailingBytes(Connect));
    assert_eq!(TrailingBytes(PubAck).reason_code(), MALFORMED);
}

#[test]
fn invalid_utf8_and_surrogates_1_5_4_1() {
    for bad in [
        &[0xC3, 0x28][..],
        &[0xED, 0xA0, 0x80],
        &[0xC0, 0xAF],
        &[0xFF],
    ] {
        let publish = frame(0x30, &[&[0x00, bad.len() as u8], bad]);
        rejects(V3, &publish, InvalidUtf8);
        // In a user property: both strings of a pair must be valid [MQTT-1.5.7-1].
        let pair = [&[0x26, 0x00, 0x01, b'k', 0x00, bad.len() as u8][..], bad].concat();
        rejects(ONLY_V5, &puback_v5_with_properties(&pair), InvalidUtf8);
    }
    // In the client identifier.
    let connect = connect_v311(0x02, &[&[0x00, 0x01, 0x80]]);
    rejects(ALL, &connect, InvalidUtf8);
    assert_eq!(InvalidUtf8.reason_code(), MALFORMED);
}

#[test]
fn null_character_in_a_string_1_5_4_2() {
    let publish = frame(0x30, &[&[0x00, 0x03, b'a', 0x00, b'b']]);
    rejects(V3, &publish, NullCharacter);
    let pair = [0x26, 0x00, 0x01, 0x00, 0x00, 0x01, b'v'];
    rejects(ONLY_V5, &puback_v5_with_properties(&pair), NullCharacter);
    assert_eq!(NullCharacter.reason_code(), MALFORMED);
}

#[test]
fn unknown_property_identifier_2_2_2_2() {
    for id in [0x00, 0x04, 0x0A, 0x14, 0x2B, 0x7F] {
        let puback = puback_v5_with_properties(&[id, 0x00]);
        rejects(ONLY_V5, &puback, UnknownProperty(id));
    }
    assert_eq!(UnknownProperty(0).reason_code(), MALFORMED);
}

#[test]
fn duplicated_property_2_2_2_2() {
    let publish = publish_v5_with_properties(&[0x01, 0x00, 0x01, 0x01]);
    rejects(ONLY_V5, &publish, DuplicateProperty(0x01));
    let connack = [
        0x20, 0x09, 0x00, 0x00, 0x06, 0x21, 0x00, 0x01, 0x21, 0x00, 0x02,
    ];
    rejects(ONLY_V5, &connack, DuplicateProperty(0x21));
    // Subscription Identifier repeats in PUBLISH only, not in SUBSCRIBE.
    let properties = [0x04, 0x0B, 0x01, 0x0B, 0x02];
    let filter = [0x00, 0x01, b'#', 0x00];
    let subscribe = frame(0x82, &[&[0x00, 0x01], &properties, &filter]);
    rejects(ONLY_V5, &subscribe, DuplicateProperty(0x0B));
    let puback = puback_v5_with_properties(&[0x1F, 0x00, 0x00, 0x1F, 0x00, 0x00]);
    rejects(ONLY_V5, &puback, DuplicateProperty(0x1F));
    assert_eq!(DuplicateProperty(0x01).reason_code(), PROTOCOL_ERROR);
}

#[test]
fn property_not_allowed_in_the_packet_2_2_2_2() {
    use PacketType::*;
    let cases: [(Vec<u8>, u8, PacketType); 6] = [
        (
            connect_v5_with_properties(&[0x23, 0x00, 0x01]),
            0x23,
            Connect,
        ),
        (
            publish_v5_with_properties(&[0x11, 0, 0, 0, 1]),
            0x11,
            Publish,
        ),
        (puback_v5_with_properties(&[0x0B, 0x01]), 0x0B, PubAck),
        (
            vec![0xE0, 0x05, 0x00, 0x03, 0x21, 0x00, 0x01],
            0x21,
            Disconnect,
        ),
        (vec![0xF0, 0x05, 0x18, 0x03, 0x23, 0x00, 0x01], 0x23, Auth),
        (
            vec![0x20, 0x05, 0x00, 0x00, 0x02, 0x17, 0x01],
            0x17,
            ConnAck,
        ),
    ];
    for (bytes, id, packet) in cases {
        rejects(ONLY_V5, &bytes, PropertyNotAllowed { id, packet });
    }
    // Will properties are their own set: Session Expiry Interval is not one of them.
    let header = connect_header(b"MQTT", 5, 0x06);
    let will = [
        0x05, 0x11, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, b'w', 0x00, 0x00,
    ];
    let connect = frame(0x10, &[&header, &[0x00, 0x00, 0x00], &will]);
    let (id, packet) = (0x11, Connect);
    rejects(ONLY_V5, &connect, PropertyNotAllowed { id, packet });
    assert_eq!(PropertyNotAllowed { id, packet }.reason_code(), MALFORMED);
}

#[test]
fn property_values_out_of_range_2_2_2_2() {
    let subscribe_with = |id: &[u8]| frame(0x82, &[&[0, 1, 2], id, &[0, 1, b'#', 0]]);
    let cases: [(Vec<u8>, u8); 7] = [
        // Request Problem Information 2 (§3.1.2.11.7).
        (connect_v5_with_properties(&[0x17, 0x02]), 0x17),
        // Receive Maximum 0 (§3.1.2.11.3).
        (connect_v5_with_properties(&[0x21, 0x00, 0x00]), 0x21),
        // Maximum Packet Size 0 (§3.1.2.11.4).
        (connect_v5_with_properties(&[0x27, 0, 0, 0, 0]), 0x27),
        // Payload Format Indicator 2 (§3.3.2.3.2).
        (publish_v5_with_properties(&[0x01, 0x02]), 0x01),
        // Maximum QoS 2 (§3.2.2.3.4: 0 or 1 only).
        (vec![0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02], 0x24),
        // Subscription Identifier 0 (§3.8.2.1.2, §3.3.2.3.8).
        (subscribe_with(&[0x0B, 0x00]), 0x0B),
        (publish_v5_with_properties(&[0x0B, 0x00]), 0x0B),
    ];
    for (bytes, id) in cases {
        rejects(ONLY_V5, &bytes, InvalidPropertyValue(id));
    }
    assert_eq!(InvalidPropertyValue(0x21).reason_code(), PROTOCOL_ERROR);
}

#[test]
fn topic_alias_zero_3_3_2_8() {
    let publish = publish_v5_with_properties(&[0x23, 0x00, 0x00]);
    rejects(ONLY_V5, &publish, ZeroTopicAlias);
    assert_eq!(ZeroTopicAlias.reason_code(), ReasonCode::TopicAliasInvalid);
}

#[test]
fn wildcard_in_topic_name_3_3_2_2() {
    for name in [&b"a/+"[..], b"#", b"a/#", b"+"] {
        let publish = frame(0x30, &[&[0x00, name.len() as u8], name]);
        rejects(V3, &publish, WildcardInTopicName);
    }
    // The will topic and the Response Topic are topic names too [MQTT-3.1.3-11, 3.3.2-14].
    let will = [0x00, 0x03, b'a', b'/', b'#', 0x00, 0x00];
    let connect = connect_v311(0x06, &[&[0x00, 0x00], &will]);
    rejects(ALL, &connect, WildcardInTopicName);
    let publish = publish_v5_with_properties(&[0x08, 0x00, 0x03, b'r', b'/', b'+']);
    rejects(ONLY_V5, &publish, WildcardInTopicName);
    let invalid = ReasonCode::TopicNameInvalid;
    assert_eq!(WildcardInTopicName.reason_code(), invalid);
}

#[test]
fn empty_topic_without_alias_3_3_2_1() {
    rejects(V3, &[0x30, 0x02, 0x00, 0x00], EmptyTopic);
    rejects(ONLY_V5, &[0x30, 0x03, 0x00, 0x00, 0x00], EmptyTopic);
    // Topic filters and will topics are at least one character long [MQTT-4.7.3-1].
    for &version in ALL {
        rejects(&[version], &subscribe(version, b"", 0x00), EmptyTopic);
    }
    let connect = connect_v311(0x06, &[&[0; 6]]);
    rejects(ALL, &connect, EmptyTopic);
    // §3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is no
    // Topic Alias."
    assert_eq!(EmptyTopic.reason_code(), PROTOCOL_ERROR);
}

#[test]
fn misplaced_wildcards_in_filters_4_7_1() {
    for &version in ALL {
        for filter in [&b"a/#/b"[..], b"a#", b"#/"] {
            let subscribe = subscribe(version, filter, 0x00);
            rejects(&[version], &subscribe, MisplacedMultiLevelWildcard);
        }
        for filter in [&b"a+"[..], b"+a/b", b"a/b+/c"] {
            let subscribe = subscribe(version, filter, 0x00);
            rejects(&[version], &subscribe, MisplacedSingleLevelWildcard);
        }
    }
    let unsubscribe = [0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, b'#', b'a'];
    rejects(V3, &unsubscribe, MisplacedMultiLevelWildcard);
    assert_eq!(MisplacedMultiLevelWildcard.reason_code(), MALFORMED);
    assert_eq!(MisplacedSingleLevelWildcard.reason_code(), MALFORMED);
}

#[test]
fn bad_share_names_4_8_2_1() {
    let filters = [
        &b"$share//a"[..],
        b"$share/g",
        b"$share/g/",
        b"$share/a+/b",
        b"$share/#/b",
    ];
    for filter in filters {
        let subscribe = subscribe(V5, filter, 0x00);
        rejects(ONLY_V5, &subscribe, InvalidSharedSubscription);
    }
    assert_eq!(InvalidSharedSubscription.reason_code(), MALFORMED);
}

#[test]
fn subscribe_without_filters_3_8_3_2() {
    rejects(V3, &[0x82, 0x02, 0x00, 0x01], EmptySubscribe);
    rejects(ONLY_V5, &[0x82, 0x03, 0x00, 0x01, 0x00], EmptySubscribe);
    // §3.8.3: "A SUBSCRIBE packet with no Payload is a Protocol Error."
    assert_eq!(EmptySubscribe.reason_code(), PROTOCOL_ERROR);
}

#[test]
fn unsubscribe_without_filters_3_10_3_2() {
    rejects(V3, &[0xA2, 0x02, 0x00, 0x01], EmptyUnsubscribe);
    rejects(ONLY_V5, &[0xA2, 0x03, 0x00, 0x01, 0x00], EmptyUnsubscribe);
    // §3.10.3: "An UNSUBSCRIBE packet with no Payload is a Protocol Error."
    assert_eq!(EmptyUnsubscribe.reason_code(), PROTOCOL_ERROR);
}

#[test]
fn subscription_options_3_8_3_1() {
    // Reserved bits 7-6 in 5.0 [MQTT-3.8.3-5]; in 3.x everything above the QoS is reserved.
    for options in [0x40, 0x80, 0xC1] {
        let err = ReservedSubscriptionOptions(options);
        rejects(ONLY_V5, &subscribe(V5, b"a", options), err);
    }
    for version in [V3_1, V3_1_1] {
        for options in [0x04, 0x08, 0x10, 0x80] {
            let err = ReservedSubscriptionOptions(options);
            rejects(&[version], &subscribe(version, b"a", options), err);
        }
        let qos3 = subscribe(version, b"a", 0x03);
        rejects(&[version], &qos3, InvalidSubscriptionOptions);
    }
    // Retain Handling 3 and QoS 3 are Protocol Errors in 5.0.
    for options in [0x30, 0x03, 0x33] {
        let subscribe = subscribe(V5, b"a", options);
        rejects(ONLY_V5, &subscribe, InvalidSubscriptionOptions);
    }
    assert_eq!(ReservedSubscriptionOptions(0x40).reason_code(), MALFORMED);
    assert_eq!(InvalidSubscriptionOptions.reason_code(), PROTOCOL_ERROR);
}

#[test]
fn no_local_on_shared_subscription_3_8_3_4() {
    let subscribe = subscribe(V5, b"$share/g/a", 0x04);
    rejects(ONLY_V5, &subscribe, NoLocalOnSharedSubscription);
    assert_eq!(NoLocalOnSharedSubscription.reason_code(), PROTOCOL_ERROR);
}

#[test]
fn bad_protocol_name_3_1_2_1() {
    for name in [&b"MQTX"[..], b"mqtt", b"MQIsdpX", b""] {
        let connect = frame(0x10, &[&connect_header(name, 4, 0x02), &[0x00, 0x00]]);
        rejects(ALL, &connect, InvalidProtocolName);
    }
    let unsupported = ReasonCode::UnsupportedProtocolVersion;
    assert_eq!(InvalidProtocolName.reason_code(), unsupported);
}

#[test]
fn unsupported_protocol_level_3_1_2_2() {
    for (name, level) in [
        (&b"MQTT"[..], 6),
        (b"MQTT", 3),
        (b"MQTT", 0),
        (b"MQIsdp", 4),
    ] {
        let connect = frame(0x10, &[&connect_header(name, level, 0x02), &[0x00, 0x00]]);
        rejects(ALL, &connect, UnsupportedProtocolVersion(level));
    }
    let unsupported = ReasonCode::UnsupportedProtocolVersion;
    assert_eq!(UnsupportedProtocolVersion(6).reason_code(), unsupported);
}

#[test]
fn connect_reserved_flag_3_1_2_3() {
    for (level, rest) in [(4, &[0x00, 0x00][..]), (5, &[0x00, 0x00, 0x00])] {
        let connect = frame(0x10, &[&connect_header(b"MQTT", level, 0x03), rest]);
        rejects(ALL, &connect, ConnectReservedFlag);
    }
    // §3.1.2.3: "If the reserved flag is not 0 it is a Malformed Packet."
    assert_eq!(ConnectReservedFlag.reason_code(), MALFORMED);
}

#[test]
fn will_qos_or_retain_without_will_flag_3_1_2_11() {
    // Will QoS 1 (0x08), Will QoS 2 (0x10) or Will Retain (0x20) with the Will Flag clear.
    for flags in [0x0A, 0x12, 0x22] {
        let connect = connect_v311(flags, &[&[0x00, 0x00]]);
        rejects(ALL, &connect, WillFlagsWithoutWill);
    }
    assert_eq!(WillFlagsWithoutWill.reason_code(), PROTOCOL_ERROR);
}

#[test]
fn will_qos_3_3_1_2_12() {
    let will = [0x00, 0x01, b'w', 0x00, 0x00];
    let connect = connect_v311(0x1E, &[&[0x00, 0x00], &will]);
    rejects(ALL, &connect, InvalidWillQoS);
    // §3.1.2.6: "A value of 3 (0x03) is a Malformed Packet."
    assert_eq!(InvalidWillQoS.reason_code(), MALFORMED);
}

#[test]
fn password_without_user_name_before_5_0_3_1_2_22() {
    let password = [0x00, 0x00, 0x00, 0x02, b'p', b'w'];
    for (name, level) in [(&b"MQIsdp"[..], 3), (b"MQTT", 4)] {
        let connect = frame(0x10, &[&connect_header(name, level, 0x42), &password]);
        rejects(ALL, &connect, PasswordWithoutUsername);
    }
    assert_eq!(PasswordWithoutUsername.reason_code(), PROTOCOL_ERROR);
}

#[test]
fn connack_reserved_flags_3_2_2_1() {
    // 3.1 does not use the byte at all: see fuzz_regressions.rs.
    for flags in [0x02, 0x80, 0xFF] {
        rejects(&[V3_1_1], &[0x20, 0x02, flags, 0x00], ConnAckReservedFlags);
        let bytes = [0x20, 0x03, flags, 0x00, 0x00];
        rejects(ONLY_V5, &bytes, ConnAckReservedFlags);
    }
    assert_eq!(ConnAckReservedFlags.reason_code(), MALFORMED);
}

#[test]
fn reason_code_not_valid_for_the_packet_2_4() {
    use PacketType::*;
    let invalid = |packet, code| InvalidReasonCode { packet, code };
    let v5: [(&[u8], PacketType, u8); 10] = [
        (&[0x20, 0x03, 0x00, 0x04, 0x00], ConnAck, 0x04),
        (&[0x20, 0x03, 0x00, 0x8B, 0x00], ConnAck, 0x8B), // Server shutting down
        (&[0x40, 0x03, 0x00, 0x01, 0x01], PubAck, 0x01),
        (&[0x50, 0x03, 0x00, 0x01, 0x92], PubRec, 0x92),
        (&[0x62, 0x03, 0x00, 0x01, 0x10], PubRel, 0x10),
        (&[0x70, 0x03, 0x00, 0x01, 0x80], PubComp, 0x80),
        (&[0x90, 0x04, 0x00, 0x01, 0x00, 0x03], SubAck, 0x03), // no such code
        (&[0xB0, 0x04, 0x00, 0x01, 0x00, 0x01], UnsubAck, 0x01),
        (&[0xE0, 0x01, 0x85], Disconnect, 0x85), // Client Identifier not valid
        (&[0xF0, 0x01, 0x80], Auth, 0x80),
    ];
    for (bytes, packet, code) in v5 {
        rejects(ONLY_V5, bytes, invalid(packet, code));
    }
    // 3.x CONNACK return codes stop at 5; 3.x SUBACK has 0x00-0x02 and 0x80 only.
    rejects(V3, &[0x20, 0x02, 0x00, 0x06], invalid(ConnAck, 0x06));
    rejects(V3, &[0x20, 0x02, 0x00, 0x80], invalid(ConnAck, 0x80));
    rejects(V3, &[0x90, 0x03, 0x00, 0x01, 0x87], invalid(SubAck, 0x87));
    rejects(V3, &[0x90, 0x03, 0x00, 0x01, 0x03], invalid(SubAck, 0x03));
    assert_eq!(invalid(Auth, 0x80).reason_code(), MALFORMED);
}
