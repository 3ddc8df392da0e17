//! Will messages over real sockets (MQTT 5.0 §3.1.2.5, §3.1.3.2-3, §3.14; 3.1.1 §3.1.2.5).
//!
//! The will is published whenever the connection ends other than by a normal DISCONNECT
//! [MQTT-3.1.2-8]: socket closed, keep alive expired, protocol error, session taken over,
//! broker shut down; and with its own QoS and retain flag [MQTT-3.1.2-16, MQTT-3.1.2-17].

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tern_codec::{Disconnect, Packet, ProtocolVersion, QoS, ReasonCode};

/// Connects `id` with a will on `topic`: QoS 1, not retained.
async fn with_will(addr: SocketAddr, version: ProtocolVersion, id: &str, topic: &str) -> Client {
    let mut connect = connect_packet(version, id, true);
    connect.will = Some(will(
        topic,
        &format!("{id} is gone"),
        QoS::AtLeastOnce,
        false,
    ));
    let (client, connack) = Client::connect_with(addr, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    client
}

/// A watcher subscribed to `will/#` at QoS 2.
async fn watcher(addr: SocketAddr, version: ProtocolVersion) -> Client {
    Client::subscriber(addr, version, "watcher", &[("will/#", QoS::ExactlyOnce)]).await
}

/// [MQTT-3.1.2-8]: the socket closes without DISCONNECT: the will is published, at its QoS
/// [MQTT-3.1.2-14], not retained [MQTT-3.1.2-16].
async fn will_on_socket_close_mqtt_3_1_2_8(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, version).await;
    let client = with_will(addr, version, "dropper", "will/drop").await;
    drop(client);
    let got = watcher
        .expect_message(
            "will/drop",
            "dropper is gone",
            "[MQTT-3.1.2-8] socket closed",
        )
        .await;
    assert_eq!(got.qos, QoS::AtLeastOnce, "[MQTT-3.1.2-14] will QoS");
    assert!(!got.retain, "[MQTT-3.1.2-16] not retained");
}

/// [MQTT-3.1.2-8]: a protocol error closes the connection and publishes the will.
async fn will_on_protocol_error_mqtt_3_1_2_8(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, version).await;
    let mut client = with_will(addr, version, "offender", "will/error").await;
    client.send_raw(&[0x36, 0x03, 0x00, 0x01, b't']).await; // PUBLISH with QoS 3
    client
        .expect_disconnect(ReasonCode::MalformedPacket, "[MQTT-3.3.1-4]")
        .await;
    watcher
        .expect_message(
            "will/error",
            "offender is gone",
            "[MQTT-3.1.2-8] protocol error",
        )
        .await;
}

/// [MQTT-3.1.2-8, MQTT-3.1.2-24]: keep alive expiry closes the connection as if the
/// network had failed, so the will is published. Runs on tokio's paused clock.
async fn will_on_keep_alive_expiry_mqtt_3_1_2_8(version: ProtocolVersion) {
    tokio::time::pause();
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, version).await;
    let mut connect = connect_packet(version, "sleeper", true);
    connect.keep_alive = 1;
    connect.will = Some(will("will/ka", "sleeper is gone", QoS::AtMostOnce, false));
    let (mut sleeper, _) = Client::connect_with(addr, connect).await;
    watcher
        .expect_message(
            "will/ka",
            "sleeper is gone",
            "[MQTT-3.1.2-24] keep alive expired",
        )
        .await;
    sleeper
        .expect_disconnect(ReasonCode::KeepAliveTimeout, "[MQTT-3.1.2-24]")
        .await;
}

/// [MQTT-3.1.2-8]: a session taken over by a new connection publishes the old one's will,
/// here with QoS 2 and retained [MQTT-3.1.2-17].
async fn will_on_takeover_mqtt_3_1_4_3(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, version).await;
    let mut connect = connect_packet(version, "twin", true);
    connect.will = Some(will("will/twin", "replaced", QoS::ExactlyOnce, true));
    let (mut old, _) = Client::connect_with(addr, connect).await;
    let mut new = Client::connect(addr, version, "twin").await;
    old.expect_disconnect(ReasonCode::SessionTakenOver, "[MQTT-3.1.4-3]")
        .await;
    let got = watcher
        .expect_message("will/twin", "replaced", "[MQTT-3.1.2-8] takeover")
        .await;
    assert_eq!(got.qos, QoS::ExactlyOnce, "[MQTT-3.1.2-14] will QoS");
    assert!(
        !got.retain,
        "[MQTT-3.3.1-12] forwarded to an existing subscription"
    );
    new.subscribe("will/twin", QoS::ExactlyOnce).await;
    let got = new
        .expect_message("will/twin", "replaced", "[MQTT-3.1.2-17] retained will")
        .await;
    assert!(got.retain, "[MQTT-3.1.2-17] the will was retained");
}

/// [MQTT-3.1.2-10, MQTT-3.14.4-3]: a normal DISCONNECT discards the will.
async fn no_will_on_normal_disconnect_mqtt_3_1_2_10(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, version).await;
    let client = with_will(addr, version, "polite", "will/polite").await;
    client.disconnect().await;
    wait_online(&broker, 1).await; // the polite session is handed back: the will is decided
    let mut other = Client::connect(addr, version, "other").await;
    other
        .publish_simple("will/polite", "marker", QoS::AtMostOnce)
        .await;
    watcher
        .expect_message(
            "will/polite",
            "marker",
            "[MQTT-3.1.2-10] no will after DISCONNECT",
        )
        .await;
}

/// MQTT 5.0 DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will
/// (§3.14.2.1, [MQTT-3.1.2-8]).
#[tokio::test]
async fn disconnect_with_will_message_publishes_it_mqtt_3_1_2_8() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, version).await;
    let mut client = with_will(addr, version, "leaver", "will/leave").await;
    client
        .send(Packet::Disconnect(Disconnect::new(
            ReasonCode::DisconnectWithWill,
        )))
        .await;
    client.expect_closed("DISCONNECT 0x04").await;
    watcher
        .expect_message(
            "will/leave",
            "leaver is gone",
            "[MQTT-3.1.2-8] DISCONNECT 0x04",
        )
        .await;
}

/// [MQTT-3.1.2-8]: shutting the broker down ends every connection without a DISCONNECT from
/// the client, so wills are published (here retained, so the store shows it afterwards);
/// MQTT 5.0 clients are told 0x8B Server shutting down first.
async fn will_on_broker_shutdown_mqtt_3_1_2_8(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut connect = connect_packet(version, "stayer", true);
    connect.will = Some(will("will/shutdown", "broker gone", QoS::AtLeastOnce, true));
    let (mut client, _) = Client::connect_with(addr, connect).await;
    let hub = broker.hub().clone();
    assert!(hub.retained.is_empty());
    tokio::join!(broker.shutdown(), async {
        client
            .expect_disconnect(ReasonCode::ServerShuttingDown, "shutdown")
            .await
    });
    let stored = hub
        .retained
        .matching(&"will/shutdown".try_into().expect("valid filter"));
    assert_eq!(
        stored.len(),
        1,
        "[MQTT-3.1.2-8, MQTT-3.1.2-17] will published at shutdown"
    );
    assert_eq!(&stored[0].payload[..], b"broker gone");
}

/// A 5.0 client "late" with Session Expiry `expiry` and a will on `will/late` delayed by
/// `delay` seconds.
async fn with_delayed_will(
    addr: SocketAddr,
    clean: bool,
    expiry: u32,
    delay: u32,
) -> (Client, bool) {
    let mut connect = connect_packet(ProtocolVersion::V5, "late", clean);
    connect.properties.session_expiry_interval = Some(expiry);
    let mut late = will("will/late", "late is gone", QoS::AtMostOnce, false);
    late.properties.will_delay_interval = Some(delay);
    connect.will = Some(late);
    let (client, connack) = Client::connect_with(addr, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    (client, connack.session_present)
}

/// [MQTT-3.1.2-8] (5.0): a will with a Will Delay Interval is published once the delay has
/// passed, not before (paused clock; expired delays are swept every second).
#[tokio::test(start_paused = true)]
async fn delayed_will_waits_for_its_interval_mqtt_3_1_2_8() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, ProtocolVersion::V5).await;
    let (client, _) = with_delayed_will(addr, true, 60, 2).await;
    drop(client);
    let closed = tokio::time::Instant::now();
    watcher
        .expect_nothing_for(
            Duration::from_millis(1900),
            "[MQTT-3.1.2-8] not before the delay",
        )
        .await;
    watcher
        .expect_message(
            "will/late",
            "late is gone",
            "[MQTT-3.1.2-8] after the delay",
        )
        .await;
    let after = closed.elapsed();
    assert!(
        after >= Duration::from_secs(2) && after <= Duration::from_millis(3100),
        "{after:?}"
    );
}

/// [MQTT-3.1.2-26] (5.0): a new connection to the session before the Will Delay Interval
/// has passed cancels the will.
#[tokio::test(start_paused = true)]
async fn resuming_before_the_delay_cancels_the_will_mqtt_3_1_2_26() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, ProtocolVersion::V5).await;
    let (client, _) = with_delayed_will(addr, true, 60, 2).await;
    drop(client);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_back, present) = with_delayed_will(addr, false, 60, 2).await;
    assert!(present, "[MQTT-3.2.2-3]");
    watcher
        .expect_nothing_for(Duration::from_secs(4), "[MQTT-3.1.2-26] will cancelled")
        .await;
}

/// [MQTT-3.1.2-8] (5.0): the will is published when the session ends, even if its delay is
/// longer: at once for a session that ends with the connection, at expiry otherwise.
#[tokio::test(start_paused = true)]
async fn delayed_will_is_sent_when_the_session_ends_first_mqtt_3_1_2_8() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut watcher = watcher(addr, ProtocolVersion::V5).await;
    for (expiry, expected) in [(0, Duration::ZERO), (2, Duration::from_secs(2))] {
        let (client, _) = with_delayed_will(addr, true, expiry, 60).await;
        drop(client);
        let closed = tokio::time::Instant::now();
        watcher
            .expect_message("will/late", "late is gone", "[MQTT-3.1.2-8] session ended")
            .await;
        let after = closed.elapsed();
        assert!(
            after >= expected && after <= expected + Duration::from_millis(1100),
            "session expiry {expiry}: will after {after:?}"
        );
    }
}

per_version!(
    will_on_socket_close_mqtt_3_1_2_8,
    will_on_protocol_error_mqtt_3_1_2_8,
    will_on_keep_alive_expiry_mqtt_3_1_2_8,
    will_on_takeover_mqtt_3_1_4_3,
    no_will_on_normal_disconnect_mqtt_3_1_2_10,
    will_on_broker_shutdown_mqtt_3_1_2_8,
);
