//! Sessions across connections over real sockets (MQTT 5.0 §4.1, §4.4, §3.1.2.4, §3.2.2.1;
//! 3.1.1 §3.1.2.4, §4.4).
//!
//! "Persistent" is Clean Session 0 in 3.1.1 and Clean Start 0 with a Session Expiry
//! Interval in 5.0. Rule ids are MQTT 5.0's, with 3.1.1's where they differ.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tern_codec::{Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};

/// Connects with `connect` and checks CONNACK Success with this Session Present.
async fn reconnect(
    addr: std::net::SocketAddr,
    connect: tern_codec::Connect,
    present: bool,
    rule: &str,
) -> Client {
    let (client, connack) = Client::connect_with(addr, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::Success, "{rule}");
    assert_eq!(connack.session_present, present, "{rule}: Session Present");
    client
}

/// [MQTT-3.1.2-4] (3.1.1: [MQTT-3.1.2-6]): Clean Start discards the stored session: Session
/// Present is 0 [MQTT-3.2.2-2] and the old subscriptions are gone. A 3.1.1 clean session,
/// and a 5.0 session without expiry, also end with their connection.
async fn clean_start_discards_the_session_mqtt_3_1_2_4(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, persistent(version, "c", false), false, "first").await;
    client.subscribe("cs/t", QoS::AtLeastOnce).await;
    client.disconnect().await;
    wait_online(&broker, 0).await;

    let mut client = reconnect(
        addr,
        connect_packet(version, "c", true),
        false,
        "[MQTT-3.2.2-2]",
    )
    .await;
    client.subscribe("cs/marker", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("cs/t", "old subscription", QoS::AtLeastOnce)
        .await;
    publisher
        .publish_simple("cs/marker", "marker", QoS::AtLeastOnce)
        .await;
    client
        .expect_message(
            "cs/marker",
            "marker",
            "[MQTT-3.1.2-4] subscriptions discarded",
        )
        .await;
    client.disconnect().await;
    wait_online(&broker, 1).await;

    // The clean session ended with its connection: nothing to resume [MQTT-3.1.2-6].
    reconnect(
        addr,
        persistent(version, "c", false),
        false,
        "[MQTT-3.2.2-3] no session",
    )
    .await;
}

/// [MQTT-3.1.2-5, MQTT-3.2.2-3] (3.1.1: [MQTT-3.1.2-4, MQTT-3.2.2-2]): a persistent session
/// keeps its subscriptions and queues QoS 1 and 2 messages while its client is away
/// [MQTT-4.5.0-1]; they are delivered, in order, when it resumes with Session Present 1.
async fn persistent_session_queues_while_offline_mqtt_3_2_2_3(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let filters = [("ps/1", QoS::AtLeastOnce), ("ps/2", QoS::ExactlyOnce)];
    let mut client = reconnect(addr, persistent(version, "p", false), false, "first").await;
    for (filter, qos) in filters {
        client.subscribe(filter, qos).await;
    }
    client.disconnect().await;
    wait_online(&broker, 0).await;

    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("ps/1", "a", QoS::AtLeastOnce)
        .await;
    publisher
        .publish_simple("ps/2", "b", QoS::ExactlyOnce)
        .await;
    publisher
        .publish_simple("ps/1", "c", QoS::ExactlyOnce)
        .await;

    let mut client = reconnect(
        addr,
        persistent(version, "p", false),
        true,
        "[MQTT-3.2.2-3]",
    )
    .await;
    let got = client.receive_messages(3).await;
    let summary: Vec<(&str, QoS)> = got.iter().map(|p| (text(p), p.qos)).collect();
    assert_eq!(
        summary,
        [
            ("a", QoS::AtLeastOnce),
            ("b", QoS::ExactlyOnce),
            ("c", QoS::AtLeastOnce)
        ],
        "[MQTT-4.5.0-1] queued while offline, in order"
    );
    publisher
        .publish_simple("ps/2", "online", QoS::AtLeastOnce)
        .await;
    client
        .expect_message("ps/2", "online", "[MQTT-3.1.2-5] subscriptions kept")
        .await;
}

/// [MQTT-4.4.0-1]: PUBLISHes sent but not acknowledged when the connection dropped are sent
/// again on resumption, with their packet identifiers, DUP set [MQTT-3.3.1-1], in their
/// original order [MQTT-4.6.0-1]; once acknowledged they are not sent again.
async fn unacknowledged_publishes_are_resent_mqtt_4_4_0_1(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, persistent(version, "r", false), false, "first").await;
    client.subscribe("re/t", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for (payload, qos) in [
        ("1", QoS::AtLeastOnce),
        ("2", QoS::ExactlyOnce),
        ("3", QoS::AtLeastOnce),
    ] {
        publisher.publish_simple("re/t", payload, qos).await;
    }
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(client.recv_publish().await);
    }
    drop(client); // no acknowledgement, no DISCONNECT
    wait_online(&broker, 1).await;

    let mut client = reconnect(
        addr,
        persistent(version, "r", false),
        true,
        "[MQTT-3.2.2-3]",
    )
    .await;
    let again = client.receive_messages(3).await;
    for (old, new) in first.iter().zip(&again) {
        assert!(!old.dup, "[MQTT-4.3.2-2] DUP 0 the first time");
        assert!(new.dup, "[MQTT-3.3.1-1] DUP 1 when resent");
        assert_eq!(
            new.packet_id, old.packet_id,
            "[MQTT-4.4.0-1] original packet identifier"
        );
        assert_eq!(
            (new.qos, text(new)),
            (old.qos, text(old)),
            "[MQTT-4.6.0-1] same order"
        );
    }
    client
        .expect_nothing("[MQTT-4.4.0-1] no resend once acknowledged")
        .await;
}

/// [MQTT-4.4.0-1]: a QoS 2 message whose PUBREC arrived is resumed with PUBREL, not with the
/// PUBLISH [MQTT-4.3.3-6].
async fn pubrel_is_resent_mqtt_4_4_0_1(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, persistent(version, "q2", false), false, "first").await;
    client.subscribe("rel/t", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("rel/t", "x", QoS::ExactlyOnce)
        .await;
    let got = client.recv_publish().await;
    let id = got.packet_id.expect("QoS 2");
    client.send(Packet::PubRec(PubResponse::new(id))).await;
    match client.recv().await {
        Packet::PubRel(rel) => assert_eq!(rel.packet_id, id, "[MQTT-4.3.3-4]"),
        other => panic!("[MQTT-4.3.3-4] expected PUBREL, got {other:?}"),
    }
    drop(client); // no PUBCOMP
    wait_online(&broker, 1).await;

    let mut client = reconnect(
        addr,
        persistent(version, "q2", false),
        true,
        "[MQTT-3.2.2-3]",
    )
    .await;
    match client.recv().await {
        Packet::PubRel(rel) => assert_eq!(rel.packet_id, id, "[MQTT-4.4.0-1] PUBREL resent"),
        other => panic!("[MQTT-4.3.3-6] expected PUBREL, not {other:?}"),
    }
    client.send(Packet::PubComp(PubResponse::new(id))).await;
    client
        .expect_nothing("[MQTT-4.3.3-6] the PUBLISH is not resent")
        .await;
}

/// [MQTT-3.1.4-3, MQTT-3.1.2-5]: a connection that takes a persistent session over from
/// a live one resumes it, Session Present 1, with the old connection's unacknowledged
/// PUBLISHes resent [MQTT-4.4.0-1].
async fn takeover_resumes_the_session_mqtt_3_1_4_3(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut old = reconnect(addr, persistent(version, "t", false), false, "first").await;
    old.subscribe("to/t", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("to/t", "pending", QoS::AtLeastOnce)
        .await;
    let first = old.recv_publish().await;

    let mut new = reconnect(
        addr,
        persistent(version, "t", false),
        true,
        "[MQTT-3.2.2-3]",
    )
    .await;
    old.expect_disconnect(ReasonCode::SessionTakenOver, "[MQTT-3.1.4-3]")
        .await;
    let again = new
        .expect_message("to/t", "pending", "[MQTT-4.4.0-1] resent after takeover")
        .await;
    assert!(again.dup, "[MQTT-3.3.1-1]");
    assert_eq!(again.packet_id, first.packet_id, "[MQTT-4.4.0-1]");
    publisher
        .publish_simple("to/t", "next", QoS::AtLeastOnce)
        .await;
    new.expect_message("to/t", "next", "[MQTT-3.1.2-5] subscription kept")
        .await;
}

/// [MQTT-4.3.3-10] across connections: a QoS 2 message whose PUBREC the client got but
/// whose PUBREL it never sent is not forwarded again when the client, resuming, sends the
/// PUBLISH again with DUP [MQTT-4.4.0-1]; the PUBREL then completes it.
async fn inbound_qos2_state_survives_reconnect_mqtt_4_3_3_10(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("in2/t", QoS::AtMostOnce)]).await;
    let mut client = reconnect(addr, persistent(version, "in2", false), false, "first").await;
    let mut p = publish("in2/t", "once", QoS::ExactlyOnce, 5);
    client.send(Packet::Publish(p.clone())).await;
    assert!(matches!(client.recv().await, Packet::PubRec(r) if r.packet_id == pid(5)));
    drop(client);
    wait_online(&broker, 1).await;

    let mut client = reconnect(addr, persistent(version, "in2", false), true, "resume").await;
    p.dup = true;
    client.send(Packet::Publish(p)).await;
    assert!(
        matches!(client.recv().await, Packet::PubRec(r) if r.packet_id == pid(5)),
        "[MQTT-4.3.3-10] PUBREC again"
    );
    client.send(Packet::PubRel(PubResponse::new(pid(5)))).await;
    assert!(matches!(client.recv().await, Packet::PubComp(c) if c.packet_id == pid(5)));
    client
        .publish_simple("in2/t", "marker", QoS::AtMostOnce)
        .await;
    sub.expect_message("in2/t", "once", "first delivery").await;
    sub.expect_message("in2/t", "marker", "[MQTT-4.3.3-10] not forwarded twice")
        .await;
}

/// (5.0) §3.14.2.2.2: the Session Expiry Interval can be changed on DISCONNECT: set to 0 the
/// session ends with the connection; set above 0 when CONNECT had 0 it is a protocol error
/// (0x82).
#[tokio::test]
async fn session_expiry_on_disconnect() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, persistent(version, "d", false), false, "first").await;
    let mut disconnect = tern_codec::Disconnect::default();
    disconnect.properties.session_expiry_interval = Some(0);
    client.send(Packet::Disconnect(disconnect.clone())).await;
    client.expect_closed("DISCONNECT").await;
    wait_online(&broker, 0).await;
    let mut client = reconnect(addr, persistent(version, "d", false), false, "ended at 0").await;
    client.send(Packet::Disconnect(Default::default())).await;
    client.expect_closed("DISCONNECT").await;

    let mut client = reconnect(
        addr,
        connect_packet(version, "d0", true),
        false,
        "no expiry",
    )
    .await;
    disconnect.properties.session_expiry_interval = Some(60);
    client.send(Packet::Disconnect(disconnect)).await;
    client
        .expect_disconnect(ReasonCode::ProtocolError, "§3.14.2.2.2 expiry after 0")
        .await;
}

/// [MQTT-4.1.0-2, MQTT-3.1.2-25] (5.0): a session is kept for its Session Expiry Interval
/// after the connection closes and discarded after it. The registry sweeps every second;
/// the test runs on tokio's paused clock.
#[tokio::test(start_paused = true)]
async fn session_expires_after_its_interval_mqtt_4_1_0_2() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut connect = connect_packet(version, "e", false);
    connect.properties.session_expiry_interval = Some(2);
    let mut client = reconnect(addr, connect.clone(), false, "first").await;
    client.subscribe("exp/t", QoS::AtLeastOnce).await;
    client.disconnect().await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = reconnect(addr, connect.clone(), true, "[MQTT-3.1.2-25] kept 1 s of 2").await;
    client.disconnect().await;
    wait_online(&broker, 0).await;
    assert_eq!(broker.hub().registry.counts(), (0, 1));

    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        broker.hub().registry.counts(),
        (0, 0),
        "[MQTT-4.1.0-2] expired"
    );
    let mut client = reconnect(addr, connect, false, "[MQTT-4.1.0-2] gone after 2 s").await;
    client.subscribe("exp/marker", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("exp/t", "old", QoS::AtLeastOnce)
        .await;
    publisher
        .publish_simple("exp/marker", "marker", QoS::AtLeastOnce)
        .await;
    client
        .expect_message(
            "exp/marker",
            "marker",
            "[MQTT-4.1.0-2] subscriptions gone too",
        )
        .await;
}

/// [MQTT-3.3.2-6] (5.0): a PUBLISH resent on resumption carries the Message Expiry
/// Interval less all the time the message has waited, the time offline included.
#[tokio::test(start_paused = true)]
async fn resent_publish_counts_the_time_waited_mqtt_3_3_2_6() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, persistent(version, "rx", false), false, "first").await;
    client.subscribe("rx/t", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    let mut p = publish("rx/t", "m", QoS::AtLeastOnce, 1);
    p.properties.message_expiry_interval = Some(10);
    publisher.publish(p).await;
    let first = client.recv_publish().await;
    assert_eq!(first.properties.message_expiry_interval, Some(10));
    drop(client);
    wait_online(&broker, 1).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut client = reconnect(addr, persistent(version, "rx", false), true, "resume").await;
    let again = client.expect_message("rx/t", "m", "[MQTT-4.4.0-1]").await;
    assert!(again.dup, "[MQTT-3.3.1-1]");
    let left = again.properties.message_expiry_interval;
    assert!(
        matches!(left, Some(6..=7)),
        "[MQTT-3.3.2-6] 10 s less 3 s waited, got {left:?}"
    );
}

/// [MQTT-4.9.0-2] (5.0) on resumption: the resent PUBLISHes count against the new
/// connection's Receive Maximum; the rest follow, in order and with their packet
/// identifiers, as acknowledgements free the window [MQTT-4.4.0-1, MQTT-4.6.0-1].
#[tokio::test]
async fn resend_respects_the_new_receive_maximum_mqtt_4_9_0_2() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, persistent(version, "rm", false), false, "first").await;
    client.subscribe("rm/t", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for i in 1..=4 {
        publisher
            .publish_simple("rm/t", &i.to_string(), QoS::AtLeastOnce)
            .await;
    }
    let mut first = Vec::new();
    for _ in 0..4 {
        first.push(client.recv_publish().await);
    }
    drop(client);
    wait_online(&broker, 1).await;

    let mut connect = persistent(version, "rm", false);
    connect.properties.receive_maximum = std::num::NonZeroU16::new(2);
    let mut client = reconnect(addr, connect, true, "resume").await;
    let a = client.recv_publish().await;
    let b = client.recv_publish().await;
    client
        .expect_nothing("[MQTT-4.9.0-2] two unacknowledged at most")
        .await;
    client.ack(&a).await;
    let c = client.recv_publish().await;
    client.expect_nothing("[MQTT-4.9.0-2] still two").await;
    client.ack(&b).await;
    client.ack(&c).await;
    let d = client.recv_publish().await;
    client.ack(&d).await;
    for (old, new) in first.iter().zip([&a, &b, &c, &d]) {
        assert_eq!(
            (text(new), new.packet_id),
            (text(old), old.packet_id),
            "[MQTT-4.4.0-1]"
        );
        assert!(new.dup, "[MQTT-3.3.1-1]");
    }
    publisher
        .publish_simple("rm/t", "5", QoS::AtLeastOnce)
        .await;
    client
        .expect_message("rm/t", "5", "new messages after")
        .await;
}

/// (5.0) Clean Start 0 without a Session Expiry Interval: the session ends with the
/// connection (§3.1.2.11.2), so the next connection finds none.
#[tokio::test]
async fn session_without_expiry_ends_with_connection() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let connect = connect_packet(version, "z", false);
    let mut client = reconnect(addr, connect.clone(), false, "first").await;
    client.subscribe("z/t", QoS::AtLeastOnce).await;
    client.disconnect().await;
    wait_online(&broker, 0).await;
    reconnect(addr, connect, false, "[MQTT-3.2.2-3] no session kept").await;
}

/// [MQTT-3.3.2-5, MQTT-3.3.2-6] (5.0): a queued message whose Message Expiry Interval
/// passes while its client is away is not delivered; one still alive carries the interval
/// less the time it waited.
#[tokio::test(start_paused = true)]
async fn queued_messages_expire_mqtt_3_3_2_5() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, persistent(version, "x", false), false, "first").await;
    client.subscribe("mx/t", QoS::AtLeastOnce).await;
    client.disconnect().await;
    wait_online(&broker, 0).await;

    let mut publisher = Client::connect(addr, version, "pub").await;
    for (payload, expiry) in [("short", 1), ("long", 10)] {
        let mut p = publish("mx/t", payload, QoS::AtLeastOnce, 1);
        p.properties.message_expiry_interval = Some(expiry);
        publisher.publish(p).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut client = reconnect(addr, persistent(version, "x", false), true, "resume").await;
    let got = client
        .expect_message(
            "mx/t",
            "long",
            "[MQTT-3.3.2-5] the expired message is dropped",
        )
        .await;
    let left = got.properties.message_expiry_interval;
    assert!(
        matches!(left, Some(6..=7)),
        "[MQTT-3.3.2-6] 10 s less the 3 s waited, got {left:?}"
    );
}

per_version!(
    clean_start_discards_the_session_mqtt_3_1_2_4,
    persistent_session_queues_while_offline_mqtt_3_2_2_3,
    unacknowledged_publishes_are_resent_mqtt_4_4_0_1,
    pubrel_is_resent_mqtt_4_4_0_1,
    takeover_resumes_the_session_mqtt_3_1_4_3,
    inbound_qos2_state_survives_reconnect_mqtt_4_3_3_10,
);
