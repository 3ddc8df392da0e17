//! Reason Strings on the broker's refusals (MQTT 5.0 §3.1.2.11.7, §3.2.2.3.9, §3.14.2.2.3):
//! sent when the client's Request Problem Information allows, never when it is 0, and never
//! when they would make the packet larger than the client's Maximum Packet Size.

#[macro_use]
mod common;

use std::num::NonZeroU32;

use common::*;
use tern_codec::{Connect, Packet, ProtocolVersion, ReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// A CONNECT whose client identifier is longer than the broker allows (0x85).
fn too_long_id(problem_information: Option<bool>, max_packet: Option<u32>) -> Connect {
    let mut connect = connect_packet(V5, &"x".repeat(300), true);
    connect.properties.request_problem_information = problem_information;
    connect.properties.maximum_packet_size = max_packet.and_then(NonZeroU32::new);
    connect
}

/// [MQTT-3.1.2-29]: a refusing CONNACK says why (naming the setting) when the client left
/// Request Problem Information at 1 (absent or explicit); with 0 it carries no Reason String.
#[tokio::test]
async fn connack_refusal_says_why_unless_problem_information_is_0_mqtt_3_1_2_29() {
    let broker = broker().await;
    for allowed in [None, Some(true)] {
        let (_, connack) =
            Client::connect_with(broker.local_addr(), too_long_id(allowed, None)).await;
        assert_eq!(connack.reason_code, ReasonCode::ClientIdentifierNotValid);
        let why = connack.properties.reason_string.expect("a Reason String");
        assert!(
            why.as_str().contains("limits.max_client_id_length"),
            "{}",
            why.as_str()
        );
    }
    let (_, connack) =
        Client::connect_with(broker.local_addr(), too_long_id(Some(false), None)).await;
    assert_eq!(connack.reason_code, ReasonCode::ClientIdentifierNotValid);
    assert_eq!(connack.properties.reason_string, None, "[MQTT-3.1.2-29]");
}

/// [MQTT-3.1.2-29]: the broker's DISCONNECT for a protocol violation names the rule when the
/// client allows Reason Strings, and has none when Request Problem Information is 0.
#[tokio::test]
async fn disconnect_names_the_rule_unless_problem_information_is_0_mqtt_3_1_2_29() {
    let broker = broker().await;
    for allowed in [true, false] {
        let mut connect = connect_packet(V5, "rs1", true);
        connect.properties.request_problem_information = Some(allowed);
        let (mut client, connack) =
            Client::connect_with(broker.local_addr(), connect.clone()).await;
        assert_eq!(connack.reason_code, ReasonCode::Success);
        client.send(Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Packet::Disconnect(d) => {
                assert_eq!(d.reason_code, ReasonCode::ProtocolError);
                let why = d.properties.reason_string.map(|s| s.as_str().to_owned());
                match allowed {
                    true => assert!(why.unwrap().contains("[MQTT-3.1.0-2]")),
                    false => assert_eq!(why, None, "[MQTT-3.1.2-29]"),
                }
            }
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
        client.expect_closed("[MQTT-3.1.0-2]").await;
    }
}

/// A malformed packet's DISCONNECT carries the decoder's message, which names the rule.
#[tokio::test]
async fn malformed_packet_disconnect_says_what_was_wrong() {
    let broker = broker().await;
    let mut client = Client::connect(broker.local_addr(), V5, "rs2").await;
    // PUBLISH QoS 0 to "a/#": a wildcard in a topic name [MQTT-3.3.2-2].
    client
        .send_raw(&[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'#', 0x00])
        .await;
    match client.recv().await {
        Packet::Disconnect(d) => {
            let why = d.properties.reason_string.expect("a Reason String");
            assert!(why.as_str().contains("[MQTT-3.3.2-2]"), "{}", why.as_str());
        }
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}

/// [MQTT-3.2.2-19], [MQTT-3.14.2-3]: a Reason String that would make the CONNACK or the
/// DISCONNECT larger than the client's Maximum Packet Size is left out; the packet is still
/// sent, byte for byte without properties.
#[tokio::test]
async fn reason_strings_never_exceed_the_maximum_packet_size_mqtt_3_2_2_19() {
    let broker = broker().await;
    let mut client = Client::open(broker.local_addr(), V5).await;
    client
        .send(Packet::Connect(Box::new(too_long_id(None, Some(16)))))
        .await;
    // CONNACK, remaining length 3: flags 0, reason 0x85, property length 0.
    client
        .expect_bytes(&[0x20, 0x03, 0x00, 0x85, 0x00], "[MQTT-3.2.2-19]")
        .await;
    client.expect_closed("[MQTT-3.2.2-19]").await;

    let mut connect = connect_packet(V5, "rs3", true);
    connect.properties.maximum_packet_size = NonZeroU32::new(16);
    let mut client = Client::open(broker.local_addr(), V5).await;
    client
        .send(Packet::Connect(Box::new(connect.clone())))
        .await;
    let connack = client.recv_connack().await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    client.send(Packet::Connect(Box::new(connect))).await;
    // DISCONNECT 0x82 with no properties: remaining length 1.
    client
        .expect_bytes(&[0xE0, 0x01, 0x82], "[MQTT-3.14.2-3]")
        .await;
    client.expect_closed("[MQTT-3.14.2-3]").await;
}
