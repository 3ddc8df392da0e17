//! Malformed packets and protocol errors over real sockets (MQTT 5.0 §4.13, §2, §3.3, §3.8).
//!
//! Each case sends bytes that break one rule after a good CONNECT. The offender must be
//! disconnected, MQTT 5.0 clients with a DISCONNECT carrying the reason code the codec gives
//! for the error (`DecodeError::reason_code`: 0x81 Malformed Packet, 0x82 Protocol Error or a
//! more precise one) [MQTT-4.13.1-1]; and a bystander connected to the same broker keeps
//! publishing and receiving as before.

#[macro_use]
mod common;

use bytes::BytesMut;
use common::*;
use tern_codec::{ProtocolVersion, QoS, ReasonCode};

/// A packet with a one byte remaining length.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut packet = vec![first, body.len() as u8];
    packet.extend_from_slice(body);
    packet
}

/// A PUBLISH written byte by byte: `flags` are the fixed header's low nibble; `properties`
/// are the 5.0 property bytes (their length is added); the payload is "payload".
fn raw_publish(
    version: ProtocolVersion,
    flags: u8,
    topic: &[u8],
    packet_id: Option<u16>,
    properties: &[u8],
) -> Vec<u8> {
    let mut body = vec![0, topic.len() as u8];
    body.extend_from_slice(topic);
    if let Some(id) = packet_id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if version.is_v5() {
        body.push(properties.len() as u8);
        body.extend_from_slice(properties);
    }
    body.extend_from_slice(b"payload");
    frame(0x30 | flags, &body)
}

/// A SUBSCRIBE (packet identifier 1) with raw filter and options bytes after the header.
fn raw_subscribe(version: ProtocolVersion, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1];
    if version.is_v5() {
        body.push(0); // no properties
    }
    body.extend_from_slice(payload);
    frame(0x82, &body)
}

/// Sends `bytes` from a fresh client and checks that it alone is disconnected, with
/// `reason` for 5.0, while a bystander keeps working.
async fn only_the_offender_is_disconnected(
    version: ProtocolVersion,
    rule: &str,
    bytes: &[u8],
    reason: ReasonCode,
) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut bystander =
        Client::subscriber(addr, version, "bystander", &[("ok/t", QoS::AtLeastOnce)]).await;
    let mut offender = Client::connect(addr, version, "offender").await;
    offender.send_raw(bytes).await;
    offender.expect_disconnect(reason, rule).await;

    let mut publisher = Client::connect(addr, version, "publisher").await;
    publisher
        .publish_simple("ok/t", "still fine", QoS::AtLeastOnce)
        .await;
    bystander
        .expect_message(
            "ok/t",
            "still fine",
            &format!("{rule}: bystander unaffected"),
        )
        .await;
    bystander
        .publish_simple("ok/t", "me too", QoS::AtLeastOnce)
        .await;
}

/// As [`only_the_offender_is_disconnected`], with the reason code the codec reports for
/// `bytes`, which must not decode.
async fn malformed(version: ProtocolVersion, rule: &str, bytes: &[u8]) {
    let error = tern_codec::decode(&mut BytesMut::from(bytes), version, 1 << 20)
        .expect_err("the test bytes must be malformed");
    let reason = error.reason_code();
    assert!(reason.is_error(), "{rule}: {error} maps to a failure code");
    only_the_offender_is_disconnected(version, &format!("{rule} ({error})"), bytes, reason).await;
}

/// [MQTT-1.5.5-1]: a remaining length of more than four bytes.
async fn remaining_length_over_four_bytes_mqtt_1_5_5_1(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-1.5.5-1]",
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
    )
    .await;
}

/// §2.1.4: a remaining length too short for the fields it announces.
async fn remaining_length_too_short(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-1.5] field beyond the packet",
        &[0x30, 0x02, 0x00, 0x05],
    )
    .await;
}

/// [MQTT-2.1.3-1]: reserved fixed header flags (PINGREQ with flags 1, PUBREL with flags 0).
async fn reserved_header_flags_mqtt_2_1_3_1(version: ProtocolVersion) {
    malformed(version, "[MQTT-2.1.3-1] PINGREQ", &[0xC1, 0x00]).await;
    malformed(version, "[MQTT-3.6.1-1] PUBREL", &[0x60, 0x02, 0x00, 0x01]).await;
}

/// §2.1.2: packet type 0 is reserved (and 15, AUTH, before 5.0).
async fn reserved_packet_type(version: ProtocolVersion) {
    malformed(version, "[MQTT-2.1.2] type 0", &[0x00, 0x00]).await;
    if !version.is_v5() {
        malformed(version, "[MQTT-2.1.2] type 15 in 3.1.1", &[0xF0, 0x00]).await;
    }
}

/// [MQTT-3.3.1-4]: a PUBLISH with both QoS bits set.
async fn publish_with_qos_3_mqtt_3_3_1_4(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-3.3.1-4]",
        &raw_publish(version, 0x06, b"t", Some(1), &[]),
    )
    .await;
}

/// [MQTT-3.3.1-2]: DUP set on a QoS 0 PUBLISH.
async fn dup_on_qos_0_mqtt_3_3_1_2(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-3.3.1-2]",
        &raw_publish(version, 0x08, b"t", None, &[]),
    )
    .await;
}

/// [MQTT-3.3.2-2]: a wildcard in a topic name (5.0: 0x90 Topic Name invalid).
async fn wildcard_in_topic_name_mqtt_3_3_2_2(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-3.3.2-2] +",
        &raw_publish(version, 0, b"a/+", None, &[]),
    )
    .await;
    malformed(
        version,
        "[MQTT-3.3.2-2] #",
        &raw_publish(version, 0, b"a/#", None, &[]),
    )
    .await;
}

/// [MQTT-1.5.4-1]: a topic that is not well-formed UTF-8 (an unpaired surrogate too).
async fn invalid_utf8_mqtt_1_5_4_1(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-1.5.4-1]",
        &raw_publish(version, 0, &[0xC3, 0x28], None, &[]),
    )
    .await;
    let surrogate = raw_publish(version, 0, &[0xED, 0xA0, 0x80], None, &[]);
    malformed(version, "[MQTT-1.5.4-1] surrogate", &surrogate).await;
}

/// [MQTT-1.5.4-2, MQTT-4.7.3-2]: U+0000 in a topic name.
async fn null_character_in_topic_mqtt_4_7_3_2(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-4.7.3-2]",
        &raw_publish(version, 0, b"a\0b", None, &[]),
    )
    .await;
}

/// [MQTT-2.2.1-3]: a QoS 1 PUBLISH with packet identifier 0.
async fn zero_packet_id_mqtt_2_2_1_3(version: ProtocolVersion) {
    malformed(
        version,
        "[MQTT-2.2.1-3]",
        &raw_publish(version, 0x02, b"t", Some(0), &[]),
    )
    .await;
}

/// [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3]): a SUBSCRIBE without any topic filter.
async fn empty_subscribe_mqtt_3_8_3_2(version: ProtocolVersion) {
    malformed(version, "[MQTT-3.8.3-2]", &raw_subscribe(version, &[])).await;
}

/// [MQTT-4.7.1-1]: `#` not last in a topic filter; [MQTT-3.8.3-5]: reserved bits set in
/// the subscription options.
async fn invalid_subscribe_payload_mqtt_4_7_1_1(version: ProtocolVersion) {
    let bad_filter = raw_subscribe(version, &[0, 5, b'a', b'/', b'#', b'/', b'b', 0]);
    malformed(version, "[MQTT-4.7.1-1]", &bad_filter).await;
    let bad_options = raw_subscribe(version, &[0, 1, b't', 0xC0]);
    malformed(version, "[MQTT-3.8.3-5]", &bad_options).await;
}

/// (5.0) [MQTT-2.2.2.2]: a property PUBLISH may not carry (Session Expiry Interval), an
/// unknown property identifier, a property given twice.
#[tokio::test]
async fn bad_properties_in_5_0() {
    let v = ProtocolVersion::V5;
    let not_allowed = raw_publish(v, 0, b"t", None, &[0x11, 0, 0, 0, 1]);
    malformed(v, "[MQTT-2.2.2.2] property not allowed", &not_allowed).await;
    let unknown = raw_publish(v, 0, b"t", None, &[0x7F, 0]);
    malformed(v, "[MQTT-2.2.2.2] unknown property", &unknown).await;
    let twice = raw_publish(v, 0, b"t", None, &[0x01, 0x01, 0x01, 0x01]);
    malformed(v, "[MQTT-2.2.2.2] duplicate property", &twice).await;
    let zero_alias = raw_publish(v, 0, b"t", None, &[0x23, 0, 0]);
    malformed(v, "[MQTT-3.3.2-8] topic alias 0", &zero_alias).await;
}

/// (5.0) [MQTT-4.12.0-7]: AUTH from a client that did not use an authentication method is
/// a protocol error (0x82).
#[tokio::test]
async fn auth_without_authentication_method_mqtt_4_12_0_7() {
    let v = ProtocolVersion::V5;
    let auth = [0xF0, 0x02, 0x18, 0x00];
    only_the_offender_is_disconnected(v, "[MQTT-4.12.0-7]", &auth, ReasonCode::ProtocolError).await;
}

/// (5.0) [MQTT-3.3.2-9]: a Topic Alias above the broker's Topic Alias Maximum (0x94).
#[tokio::test]
async fn topic_alias_above_maximum_mqtt_3_3_2_9() {
    let v = ProtocolVersion::V5;
    let alias = raw_publish(v, 0, b"t", None, &[0x23, 0xFF, 0xFF]);
    let rule = "[MQTT-3.3.2-9]";
    only_the_offender_is_disconnected(v, rule, &alias, ReasonCode::TopicAliasInvalid).await;
}

per_version!(
    remaining_length_over_four_bytes_mqtt_1_5_5_1,
    remaining_length_too_short,
    reserved_header_flags_mqtt_2_1_3_1,
    reserved_packet_type,
    publish_with_qos_3_mqtt_3_3_1_4,
    dup_on_qos_0_mqtt_3_3_1_2,
    wildcard_in_topic_name_mqtt_3_3_2_2,
    invalid_utf8_mqtt_1_5_4_1,
    null_character_in_topic_mqtt_4_7_3_2,
    zero_packet_id_mqtt_2_2_1_3,
    empty_subscribe_mqtt_3_8_3_2,
    invalid_subscribe_payload_mqtt_4_7_1_1,
);
