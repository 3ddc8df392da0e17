//! Parked idle connections (`crates/broker/src/parking.rs`): a connection idle for a whole
//! sweep leaves its task and tokio's reactor, and comes back for a packet, a delivery, a
//! takeover, the shutdown, its keep-alive deadline or its socket closing. The standard says
//! nothing of parking; the rules named are those that must still hold for a parked
//! connection. Each test first waits until the connection is parked, so it fails if
//! connections stop parking as well as if they come back wrong.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tern_broker::config::Config;
use tern_broker::server::BrokerHandle;
use tern_codec::{ProtocolVersion, QoS, ReasonCode};
use tokio::time::Instant;

/// The test configuration with a 20 ms sweep: an idle connection parks within 40 ms.
fn parking_config() -> Config {
    let mut config = config();
    config.limits.park_idle_ms = 20;
    config
}

/// Waits until `n` connections are parked.
async fn wait_parked(broker: &BrokerHandle, n: usize) {
    let parking = broker.hub().parking.clone().expect("the broker parks");
    wait_until(&format!("{n} connection(s) are parked"), || {
        parking.len() == n
    })
    .await;
}

/// [MQTT-3.12.4-1]: a parked connection answers PINGREQ, and parks again after it.
async fn a_parked_connection_answers_pingreq_mqtt_3_12_4_1(version: ProtocolVersion) {
    let broker = start(parking_config()).await;
    let mut client = Client::connect(broker.local_addr(), version, "idle").await;
    for _ in 0..3 {
        wait_parked(&broker, 1).await;
        client.send_raw(&[0xC0, 0x00]).await;
        client
            .expect_bytes(
                &[0xD0, 0x00],
                "[MQTT-3.12.4-1] PINGRESP from a parked connection",
            )
            .await;
    }
}

/// [MQTT-4.6.0-6]: a parked subscriber gets what is published to it, in order, and the
/// publisher its acknowledgements [MQTT-4.3.2-4].
async fn a_parked_subscriber_gets_its_messages_in_order_mqtt_4_6_0_6(version: ProtocolVersion) {
    let broker = start(parking_config()).await;
    let addr = broker.local_addr();
    let mut subscriber =
        Client::subscriber(addr, version, "parked-sub", &[("park/t", QoS::AtLeastOnce)]).await;
    let mut publisher = Client::connect(addr, version, "parked-pub").await;
    wait_parked(&broker, 2).await;
    for round in 0..2 {
        for i in 0..5 {
            publisher
                .publish_simple("park/t", &format!("m{round}-{i}"), QoS::AtLeastOnce)
                .await;
        }
        for i in 0..5 {
            let got = subscriber.recv_publish().await;
            assert_eq!(text(&got), format!("m{round}-{i}"), "[MQTT-4.6.0-6] order");
            subscriber.ack(&got).await;
        }
        wait_parked(&broker, 2).await;
    }
}

/// [MQTT-3.1.4-3]: a parked connection whose session is taken over is closed (5.0: with
/// DISCONNECT 0x8E), and the new connection gets the session.
async fn a_parked_connection_is_taken_over_mqtt_3_1_4_3(version: ProtocolVersion) {
    let broker = start(parking_config()).await;
    let addr = broker.local_addr();
    let mut first = Client::connect(addr, version, "twin").await;
    wait_parked(&broker, 1).await;
    let _second = Client::connect(addr, version, "twin").await;
    first
        .expect_disconnect(ReasonCode::SessionTakenOver, "[MQTT-3.1.4-3]")
        .await;
    wait_online(&broker, 1).await;
}

/// [MQTT-3.1.2-24]: the keep alive of a parked connection still expires at one and a
/// half times its value (1 s here), not before.
async fn a_parked_connection_keep_alive_expires_mqtt_3_1_2_24(version: ProtocolVersion) {
    let broker = start(parking_config()).await;
    let mut connect = connect_packet(version, "sleepy", true);
    connect.keep_alive = 1;
    let started = Instant::now();
    let (mut client, _) = Client::connect_with(broker.local_addr(), connect).await;
    wait_parked(&broker, 1).await;
    client
        .expect_disconnect(ReasonCode::KeepAliveTimeout, "[MQTT-3.1.2-24]")
        .await;
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_millis(2500),
        "[MQTT-3.1.2-24] disconnected after {after:?}, expected 1.5 s"
    );
}

/// [MQTT-3.1.2-8]: a parked client whose socket closes has its will published, and its
/// session is released.
async fn a_parked_connection_that_drops_publishes_its_will_mqtt_3_1_2_8(version: ProtocolVersion) {
    let broker = start(parking_config()).await;
    let addr = broker.local_addr();
    let mut watcher =
        Client::subscriber(addr, version, "watcher", &[("park/will", QoS::AtMostOnce)]).await;
    let mut connect = connect_packet(version, "dropper", true);
    connect.will = Some(will("park/will", "gone", QoS::AtMostOnce, false));
    let (client, _) = Client::connect_with(addr, connect).await;
    wait_parked(&broker, 2).await;
    drop(client);
    watcher
        .expect_message(
            "park/will",
            "gone",
            "[MQTT-3.1.2-8] socket closed while parked",
        )
        .await;
    wait_online(&broker, 1).await;
}

/// A parked MQTT 5.0 client hears that the server shuts down (DISCONNECT 0x8B), and the
/// broker's shutdown does not wait for parked connections to wake by themselves.
#[tokio::test]
async fn a_parked_connection_hears_the_shutdown() {
    let broker = start(parking_config()).await;
    let mut client = Client::connect(broker.local_addr(), ProtocolVersion::V5, "stay").await;
    wait_parked(&broker, 1).await;
    let shutdown = tokio::spawn(broker.shutdown());
    client
        .expect_disconnect(ReasonCode::ServerShuttingDown, "shutdown while parked")
        .await;
    tokio::time::timeout(TIMEOUT, shutdown)
        .await
        .expect("the broker shuts down")
        .expect("shutdown task");
}

/// A connection that says nothing after its CONNACK parks at once, without waiting for a
/// sweep (here a minute away), and answers PINGREQ from there [MQTT-3.12.4-1].
#[tokio::test]
async fn a_connection_quiet_after_connack_parks_without_a_sweep_mqtt_3_12_4_1() {
    let mut config = config();
    config.limits.park_idle_ms = 60_000;
    let broker = start(config).await;
    let mut client = Client::connect(broker.local_addr(), ProtocolVersion::V5, "quiet").await;
    wait_parked(&broker, 1).await;
    client.send_raw(&[0xC0, 0x00]).await;
    client
        .expect_bytes(
            &[0xD0, 0x00],
            "[MQTT-3.12.4-1] PINGRESP from a parked connection",
        )
        .await;
}

/// `limits.park_idle_ms = 0`: the broker never parks.
#[tokio::test]
async fn park_idle_ms_zero_never_parks() {
    let mut config = config();
    config.limits.park_idle_ms = 0;
    let broker = start(config).await;
    assert!(broker.hub().parking.is_none());
    let mut client = Client::connect(broker.local_addr(), ProtocolVersion::V5, "awake").await;
    client.ping().await;
}

per_version!(
    a_parked_connection_answers_pingreq_mqtt_3_12_4_1,
    a_parked_subscriber_gets_its_messages_in_order_mqtt_4_6_0_6,
    a_parked_connection_is_taken_over_mqtt_3_1_4_3,
    a_parked_connection_keep_alive_expires_mqtt_3_1_2_24,
    a_parked_connection_that_drops_publishes_its_will_mqtt_3_1_2_8,
);
