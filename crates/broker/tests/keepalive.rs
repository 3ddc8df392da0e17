//! Keep alive over real sockets (MQTT 5.0 §3.1.2.10, §3.12; 3.1.1 likewise).
//!
//! The timing tests run on tokio's paused clock: the broker reads time only through tokio
//! (`tern_broker::clock`), and with every task idle tokio jumps straight to the next timer,
//! so "1.5 x keep alive" is checked to the millisecond without waiting for it. Loopback
//! writes are visible to the reader at once, so no I/O is overtaken by a jump.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tern_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use tokio::time::Instant;

/// [MQTT-3.12.4-1]: PINGREQ is answered with PINGRESP (`D0 00`).
async fn pingreq_gets_pingresp_mqtt_3_12_4_1(version: ProtocolVersion) {
    let broker = broker().await;
    let mut client = Client::connect(broker.local_addr(), version, "pinger").await;
    for _ in 0..3 {
        client.send_raw(&[0xC0, 0x00]).await;
        client.expect_bytes(&[0xD0, 0x00], "[MQTT-3.12.4-1]").await;
    }
}

/// [MQTT-3.1.2-24]: a client silent for one and a half times its keep alive (2 s here) is
/// disconnected then, not before (5.0: DISCONNECT 0x8D first), and its will is published
/// [MQTT-3.1.2-8].
async fn silent_client_is_disconnected_at_one_and_a_half_keep_alive_mqtt_3_1_2_24(
    version: ProtocolVersion,
) {
    tokio::time::pause();
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher =
        Client::subscriber(addr, version, "watcher", &[("ka/will", QoS::AtMostOnce)]).await;
    let mut connect = connect_packet(version, "silent", true);
    connect.keep_alive = 2;
    connect.will = Some(will("ka/will", "silent is gone", QoS::AtMostOnce, false));
    let (mut silent, _) = Client::connect_with(addr, connect).await;
    let connected = Instant::now();

    silent
        .expect_nothing_for(
            Duration::from_millis(2900),
            "[MQTT-3.1.2-24] not before 1.5 x 2 s",
        )
        .await;
    silent
        .expect_disconnect(ReasonCode::KeepAliveTimeout, "[MQTT-3.1.2-24]")
        .await;
    let after = connected.elapsed();
    assert!(
        after >= Duration::from_millis(2900) && after <= Duration::from_millis(3100),
        "[MQTT-3.1.2-24] disconnected after {after:?}, expected 3 s"
    );
    watcher
        .expect_message(
            "ka/will",
            "silent is gone",
            "[MQTT-3.1.2-8] will after keep alive expiry",
        )
        .await;
}

/// [MQTT-3.1.2-24]: any control packet restarts the keep alive period: a client that sends
/// something every 2.5 s with keep alive 2 stays connected for as long as it does.
async fn any_packet_restarts_keep_alive_mqtt_3_1_2_24(version: ProtocolVersion) {
    tokio::time::pause();
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut connect = connect_packet(version, "busy", true);
    connect.keep_alive = 2;
    let (mut client, _) = Client::connect_with(addr, connect).await;
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        if round % 2 == 0 {
            client.ping().await;
        } else {
            client
                .publish_simple("ka/busy", "x", QoS::AtLeastOnce)
                .await;
        }
    }
    client.ping().await;
}

/// Keep alive 0 turns the mechanism off: the broker does not disconnect an idle client.
async fn keep_alive_zero_never_expires(version: ProtocolVersion) {
    tokio::time::pause();
    let broker = broker().await;
    let mut connect = connect_packet(version, "idle", true);
    connect.keep_alive = 0;
    let (mut client, _) = Client::connect_with(broker.local_addr(), connect).await;
    client
        .expect_nothing_for(Duration::from_secs(3600), "keep alive 0")
        .await;
    client.ping().await;
}

/// [MQTT-3.2.2-21]: with `limits.max_keep_alive` the broker imposes its own keep alive on
/// a 5.0 client through Server Keep Alive, and then enforces that value.
#[tokio::test(start_paused = true)]
async fn server_keep_alive_is_imposed_and_enforced_mqtt_3_2_2_21() {
    let mut config = config();
    config.limits.max_keep_alive = 10;
    let broker = start(config).await;
    let addr = broker.local_addr();
    for asked in [0, 60] {
        let mut connect = connect_packet(ProtocolVersion::V5, "capped", true);
        connect.keep_alive = asked;
        let (mut client, connack) = Client::connect_with(addr, connect).await;
        assert_eq!(
            connack.properties.server_keep_alive,
            Some(10),
            "[MQTT-3.2.2-21] Server Keep Alive for {asked}"
        );
        let connected = Instant::now();
        client
            .expect_nothing_for(
                Duration::from_millis(14_900),
                "[MQTT-3.2.2-21] not before 15 s",
            )
            .await;
        client
            .expect_disconnect(ReasonCode::KeepAliveTimeout, "[MQTT-3.1.2-24]")
            .await;
        assert_eq!(
            connected.elapsed().as_secs(),
            15,
            "1.5 x the server's keep alive"
        );
    }
}

/// A client whose CONNECT keep alive fits under the cap is told nothing and keeps it.
#[tokio::test]
async fn keep_alive_under_the_cap_is_kept() {
    let mut config = config();
    config.limits.max_keep_alive = 100;
    let broker = start(config).await;
    let mut connect = connect_packet(ProtocolVersion::V5, "ok", true);
    connect.keep_alive = 30;
    let (mut client, connack) = Client::connect_with(broker.local_addr(), connect).await;
    assert_eq!(
        connack.properties.server_keep_alive, None,
        "[MQTT-3.2.2-22]"
    );
    client.send(Packet::PingReq).await;
    assert_eq!(client.recv().await, Packet::PingResp);
}

per_version!(
    pingreq_gets_pingresp_mqtt_3_12_4_1,
    silent_client_is_disconnected_at_one_and_a_half_keep_alive_mqtt_3_1_2_24,
    any_packet_restarts_keep_alive_mqtt_3_1_2_24,
    keep_alive_zero_never_expires,
);
