//! CONNECT and CONNACK over real sockets (MQTT 5.0 §3.1, §3.2; 3.1.1 §3.1, §3.2; 3.1).
//!
//! Rule ids are MQTT 5.0's unless marked otherwise; 3.1.1 ids are given where they differ.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use tern_codec::{Packet, ProtocolVersion, QoS, ReasonCode};

/// A CONNECT with any protocol name and level, written byte by byte: Clean Session, keep
/// alive 60, no will.
fn raw_connect(name: &str, level: u8, flags: u8, client_id: &str) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&[level, flags, 0, 60]);
    if level >= 5 {
        body.push(0); // property length
    }
    body.extend_from_slice(&[0, client_id.len() as u8]);
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

/// [MQTT-3.1.4-5]: an acceptable CONNECT gets CONNACK Success, Session Present 0 with Clean
/// Start [MQTT-3.2.2-2] (3.1.1: [MQTT-3.2.2-1]).
async fn connack_success_mqtt_3_1_4_5(version: ProtocolVersion) {
    let broker = broker().await;
    let mut client = Client::open(broker.local_addr(), version).await;
    client
        .send(Packet::Connect(Box::new(connect_packet(
            version, "c1", true,
        ))))
        .await;
    if version.is_v5() {
        let connack = client.recv_connack().await;
        assert_eq!(connack.reason_code, ReasonCode::Success, "[MQTT-3.1.4-5]");
        assert!(!connack.session_present, "[MQTT-3.2.2-2] Clean Start 1");
        assert!(connack.properties.receive_maximum.is_some());
        assert!(connack.properties.assigned_client_identifier.is_none());
    } else {
        client
            .expect_bytes(
                &[0x20, 0x02, 0x00, 0x00],
                "[MQTT-3.1.4-4] (3.1.1) CONNACK 0",
            )
            .await;
    }
    client.ping().await;
}

/// MQTT 3.1 (`MQIsdp`, level 3) is accepted with a two byte CONNACK.
#[tokio::test]
async fn mqtt_3_1_connect_is_accepted() {
    let broker = broker().await;
    let mut client = Client::open(broker.local_addr(), ProtocolVersion::V3_1).await;
    client
        .send_raw(&raw_connect("MQIsdp", 3, 0x02, "c31"))
        .await;
    client
        .expect_bytes(&[0x20, 0x02, 0x00, 0x00], "MQTT 3.1 CONNACK accepted")
        .await;
    client.ping().await;
}

/// MQTT 3.1 has no Session Present flag: byte 1 of its CONNACK is reserved, so a resumed
/// session is still answered with 0x00 there.
#[tokio::test]
async fn mqtt_3_1_connack_has_no_session_present() {
    let broker = broker().await;
    let connect = || raw_connect("MQIsdp", 3, 0x00, "p31");
    let mut client = Client::open(broker.local_addr(), ProtocolVersion::V3_1).await;
    client.send_raw(&connect()).await;
    client
        .expect_bytes(&[0x20, 0x02, 0x00, 0x00], "3.1 CONNACK")
        .await;
    client.subscribe("t/31", QoS::AtLeastOnce).await;
    client.disconnect().await;
    let mut client = Client::open(broker.local_addr(), ProtocolVersion::V3_1).await;
    client.send_raw(&connect()).await;
    client
        .expect_bytes(&[0x20, 0x02, 0x00, 0x00], "3.1 CONNACK byte 1 is reserved")
        .await;
}

/// MQTT 3.1 requires a client identifier of 1 to 23 characters: an empty one is refused
/// with return code 2 (Identifier rejected).
#[tokio::test]
async fn mqtt_3_1_empty_client_id_is_rejected() {
    let broker = broker().await;
    let mut client = Client::open(broker.local_addr(), ProtocolVersion::V3_1).await;
    client.send_raw(&raw_connect("MQIsdp", 3, 0x02, "")).await;
    client
        .expect_bytes(&[0x20, 0x02, 0x00, 0x02], "3.1 identifier rejected")
        .await;
    client.expect_closed("3.1 identifier rejected").await;
}

/// [MQTT-3.1.2-2]: an unsupported protocol level gets CONNACK 0x01 (3.1.1) or 0x84 (5.0),
/// then the connection is closed.
async fn unsupported_protocol_level_is_refused_mqtt_3_1_2_2(version: ProtocolVersion) {
    let broker = broker().await;
    let (connect, connack): (_, &[u8]) = if version.is_v5() {
        (
            raw_connect("MQTT", 6, 0x02, "c"),
            &[0x20, 0x03, 0x00, 0x84, 0x00],
        )
    } else {
        (raw_connect("MQTT", 3, 0x02, "c"), &[0x20, 0x02, 0x00, 0x01])
    };
    let mut client = Client::open(broker.local_addr(), version).await;
    client.send_raw(&connect).await;
    client.expect_bytes(connack, "[MQTT-3.1.2-2] CONNACK").await;
    client
        .expect_closed("[MQTT-3.1.2-2] closed after CONNACK")
        .await;
}

/// [MQTT-3.1.2-3]: the reserved CONNECT flag must be 0; otherwise the connection closes.
async fn reserved_connect_flag_closes_mqtt_3_1_2_3(version: ProtocolVersion) {
    let broker = broker().await;
    let mut client = Client::open(broker.local_addr(), version).await;
    client
        .send_raw(&raw_connect("MQTT", version.level(), 0x03, "c"))
        .await;
    client
        .expect_closed("[MQTT-3.1.2-3] reserved flag set")
        .await;
}

/// [MQTT-3.1.0-1]: the first packet must be CONNECT; anything else closes the connection.
async fn first_packet_must_be_connect_mqtt_3_1_0_1(version: ProtocolVersion) {
    let broker = broker().await;
    let firsts: [&[u8]; 3] = [
        &[0xC0, 0x00],                                     // PINGREQ
        &[0x30, 0x05, 0x00, 0x01, b't', b'h', b'i'],       // PUBLISH (3.x framing)
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b't', 0x00], // SUBSCRIBE (3.x framing)
    ];
    for first in firsts {
        let mut client = Client::open(broker.local_addr(), version).await;
        client.send_raw(first).await;
        client
            .expect_closed(&format!("[MQTT-3.1.0-1] first packet {first:02x?}"))
            .await;
    }
}

/// [MQTT-3.1.0-2]: a second CONNECT is a protocol error: 5.0 clients get DISCONNECT 0x82,
/// then the connection closes.
async fn second_connect_is_a_protocol_error_mqtt_3_1_0_2(version: ProtocolVersion) {
    let broker = broker().await;
    let mut client = Client::connect(broker.local_addr(), version, "twice").await;
    client
        .send(Packet::Connect(Box::new(connect_packet(
            version, "twice", true,
        ))))
        .await;
    client
        .expect_disconnect(ReasonCode::ProtocolError, "[MQTT-3.1.0-2]")
        .await;
}

/// [MQTT-3.1.3-6]: an empty client identifier with Clean Start is given a unique one; 5.0
/// clients are told it in Assigned Client Identifier [MQTT-3.1.3-7, MQTT-3.2.2-16].
async fn empty_client_id_is_assigned_one_mqtt_3_1_3_6(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let (mut first, connack1) = Client::connect_with(addr, connect_packet(version, "", true)).await;
    let (mut second, connack2) =
        Client::connect_with(addr, connect_packet(version, "", true)).await;
    for connack in [&connack1, &connack2] {
        assert_eq!(connack.reason_code, ReasonCode::Success, "[MQTT-3.1.3-6]");
    }
    if version.is_v5() {
        let id1 = connack1.properties.assigned_client_identifier.clone();
        let id2 = connack2.properties.assigned_client_identifier.clone();
        let (id1, id2) = (id1.expect("[MQTT-3.1.3-7]"), id2.expect("[MQTT-3.1.3-7]"));
        assert!(!id1.is_empty(), "[MQTT-3.2.2-16] assigned id is not empty");
        assert_ne!(id1, id2, "[MQTT-3.2.2-16] assigned ids are unique");
    } else {
        assert!(connack1.properties.assigned_client_identifier.is_none());
    }
    // Both stay connected: neither took the other's session over.
    first.subscribe("anon/t", QoS::AtMostOnce).await;
    second.publish_simple("anon/t", "hi", QoS::AtMostOnce).await;
    first
        .expect_message("anon/t", "hi", "[MQTT-3.1.3-6] unique ids")
        .await;
}

/// [MQTT-3.2.2-16] (5.0): an Assigned Client Identifier is not used by any other session,
/// not even one whose client chose, by chance or not, the identifier the broker would
/// assign next.
#[tokio::test]
async fn assigned_client_id_is_not_in_use_mqtt_3_2_2_16() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let (_first, connack) = Client::connect_with(addr, connect_packet(version, "", true)).await;
    let first_id = connack
        .properties
        .assigned_client_identifier
        .expect("[MQTT-3.1.3-7]");
    // The broker numbers connections; guess the identifier of the connection after next
    // and take it with the next one.
    let guess = first_id.as_str().replacen('1', "3", 1);
    assert_ne!(
        guess,
        first_id.as_str(),
        "identifier {first_id} has a connection number"
    );
    let mut holder = Client::connect(addr, version, &guess).await;
    let (_anon, connack) = Client::connect_with(addr, connect_packet(version, "", true)).await;
    let assigned = connack
        .properties
        .assigned_client_identifier
        .expect("[MQTT-3.1.3-7]");
    assert_ne!(
        assigned.as_str(),
        guess,
        "[MQTT-3.2.2-16] {assigned} is in use"
    );
    holder.ping().await;
}

/// An empty client identifier without Clean Session: 3.1.1 refuses it with CONNACK 0x02 and
/// closes [MQTT-3.1.3-8 (3.1.1)]; 5.0 may accept it and assigns one [MQTT-3.1.3-6].
async fn empty_client_id_without_clean_session_mqtt_3_1_3_8(version: ProtocolVersion) {
    let broker = broker().await;
    let mut client = Client::open(broker.local_addr(), version).await;
    client
        .send(Packet::Connect(Box::new(persistent(version, "", false))))
        .await;
    if version.is_v5() {
        let connack = client.recv_connack().await;
        assert_eq!(connack.reason_code, ReasonCode::Success, "[MQTT-3.1.3-6]");
        assert!(
            !connack.session_present,
            "[MQTT-3.2.2-3] no session existed"
        );
        assert!(
            connack.properties.assigned_client_identifier.is_some(),
            "[MQTT-3.1.3-7]"
        );
    } else {
        client
            .expect_bytes(
                &[0x20, 0x02, 0x00, 0x02],
                "[MQTT-3.1.3-8] (3.1.1) identifier rejected",
            )
            .await;
        client.expect_closed("[MQTT-3.1.3-8] (3.1.1)").await;
    }
}

/// [MQTT-3.1.4-3] (3.1.1: [MQTT-3.1.4-2]): a second connection with the same client
/// identifier takes the session over; the first is closed (5.0: DISCONNECT 0x8E first), and
/// its will is published because it did not disconnect normally [MQTT-3.1.2-8].
async fn session_takeover_closes_the_old_connection_mqtt_3_1_4_3(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = Client::connect(addr, version, "watcher").await;
    watcher.subscribe("will/takeover", QoS::AtMostOnce).await;

    let mut connect = connect_packet(version, "twin", true);
    connect.will = Some(will(
        "will/takeover",
        "old one gone",
        QoS::AtMostOnce,
        false,
    ));
    let (mut old, connack) = Client::connect_with(addr, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);

    let (mut new, connack) =
        Client::connect_with(addr, connect_packet(version, "twin", true)).await;
    assert_eq!(
        connack.reason_code,
        ReasonCode::Success,
        "[MQTT-3.1.4-3] takeover accepted"
    );
    old.expect_disconnect(ReasonCode::SessionTakenOver, "[MQTT-3.1.4-3]")
        .await;
    watcher
        .expect_message(
            "will/takeover",
            "old one gone",
            "[MQTT-3.1.2-8] will on takeover",
        )
        .await;
    new.ping().await;
}

/// The connect timeout: a socket that sends nothing, or only part of a CONNECT, is closed
/// once `limits.connect_timeout` (1 s here) has passed, and not long before.
#[tokio::test]
async fn connect_timeout_closes_idle_and_half_connected_sockets() {
    let mut config = config();
    config.limits.connect_timeout = 1;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let started = Instant::now();
    let silent = async {
        let mut client = Client::open(addr, ProtocolVersion::V3_1_1).await;
        client.expect_closed("connect timeout, nothing sent").await;
        started.elapsed()
    };
    let half = |version: ProtocolVersion| async move {
        let mut client = Client::open(addr, version).await;
        let bytes = encode(
            &Packet::Connect(Box::new(connect_packet(version, "half", true))),
            version,
        );
        client.send_raw(&bytes[..bytes.len() / 2]).await;
        client
            .expect_closed("connect timeout, half a CONNECT sent")
            .await;
        started.elapsed()
    };
    let (a, b, c) = tokio::join!(
        silent,
        half(ProtocolVersion::V3_1_1),
        half(ProtocolVersion::V5)
    );
    for elapsed in [a, b, c] {
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
            "closed after {elapsed:?}, expected about 1 s"
        );
    }
}

per_version!(
    connack_success_mqtt_3_1_4_5,
    unsupported_protocol_level_is_refused_mqtt_3_1_2_2,
    reserved_connect_flag_closes_mqtt_3_1_2_3,
    first_packet_must_be_connect_mqtt_3_1_0_1,
    second_connect_is_a_protocol_error_mqtt_3_1_0_2,
    empty_client_id_is_assigned_one_mqtt_3_1_3_6,
    empty_client_id_without_clean_session_mqtt_3_1_3_8,
    session_takeover_closes_the_old_connection_mqtt_3_1_4_3,
);
