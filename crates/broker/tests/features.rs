//! The `[mqtt]` feature switches over real sockets: what MQTT 5.0 clients are told in
//! CONNACK (§3.2.2.3) and what happens when a client uses a feature that is off.

#[macro_use]
mod common;

use common::*;
use tern_broker::Config;
use tern_codec::{Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions};

/// A broker with the test configuration changed by `change`.
async fn broker_with(change: impl FnOnce(&mut Config)) -> tern_broker::BrokerHandle {
    let mut config = config();
    change(&mut config);
    start(config).await
}

/// Maximum QoS 1: 5.0 clients are told [MQTT-3.2.2-9]; SUBSCRIBE at QoS 2 is still accepted,
/// granted QoS 1 [MQTT-3.2.2-10]; a will at QoS 2 is refused with 0x9B [MQTT-3.2.2-12]; a
/// QoS 2 PUBLISH ends the connection (5.0: DISCONNECT 0x9B).
async fn maximum_qos_1_mqtt_3_2_2_9(version: ProtocolVersion) {
    let broker = broker_with(|c| c.mqtt.maximum_qos = 1).await;
    let addr = broker.local_addr();
    let (mut client, connack) =
        Client::connect_with(addr, connect_packet(version, "q", true)).await;
    if version.is_v5() {
        assert_eq!(
            connack.properties.maximum_qos,
            Some(QoS::AtLeastOnce),
            "[MQTT-3.2.2-9]"
        );
    }
    let options = SubscriptionOptions::with_qos(QoS::ExactlyOnce);
    let suback = client
        .subscribe_with(subscribe_packet(1, "mq/t", options))
        .await;
    assert_eq!(
        suback.reason_codes,
        [ReasonCode::GrantedQoS1],
        "[MQTT-3.2.2-10]"
    );
    client.publish_simple("mq/t", "one", QoS::AtLeastOnce).await;
    let got = client.expect_message("mq/t", "one", "QoS 1 works").await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    client
        .send(Packet::Publish(publish("mq/t", "two", QoS::ExactlyOnce, 2)))
        .await;
    client
        .expect_disconnect(ReasonCode::QoSNotSupported, "QoS 2 over Maximum QoS")
        .await;

    let mut connect = connect_packet(version, "w", true);
    connect.will = Some(will("mq/will", "w", QoS::ExactlyOnce, false));
    let (mut refused, connack) = Client::connect_with(addr, connect).await;
    if version.is_v5() {
        assert_eq!(
            connack.reason_code,
            ReasonCode::QoSNotSupported,
            "[MQTT-3.2.2-12]"
        );
    } else {
        assert!(connack.reason_code.is_error(), "[MQTT-3.2.2-12] refused");
    }
    assert!(!connack.session_present, "[MQTT-3.2.2-6]");
    refused.expect_closed("[MQTT-3.2.2-12]").await;
}

/// Retain not available: 5.0 clients are told; a will with retain is refused with 0x9A
/// [MQTT-3.2.2-13]; a retained PUBLISH ends the connection (5.0: DISCONNECT 0x9A).
async fn retain_not_available_mqtt_3_2_2_13(version: ProtocolVersion) {
    let broker = broker_with(|c| c.mqtt.retain_available = false).await;
    let addr = broker.local_addr();
    let (mut client, connack) =
        Client::connect_with(addr, connect_packet(version, "r", true)).await;
    if version.is_v5() {
        assert_eq!(connack.properties.retain_available, Some(false));
    }
    let mut retained = publish("nr/t", "r", QoS::AtMostOnce, 0);
    retained.retain = true;
    client.send(Packet::Publish(retained)).await;
    client
        .expect_disconnect(ReasonCode::RetainNotSupported, "retain not available")
        .await;

    let mut connect = connect_packet(version, "w", true);
    connect.will = Some(will("nr/will", "w", QoS::AtMostOnce, true));
    let (mut refused, connack) = Client::connect_with(addr, connect).await;
    if version.is_v5() {
        assert_eq!(
            connack.reason_code,
            ReasonCode::RetainNotSupported,
            "[MQTT-3.2.2-13]"
        );
    } else {
        assert!(connack.reason_code.is_error(), "[MQTT-3.2.2-13] refused");
    }
    refused.expect_closed("[MQTT-3.2.2-13]").await;
    assert!(broker.hub().retained.is_empty());
}

/// Wildcard, shared and identified subscriptions switched off: 5.0 clients are told in
/// CONNACK, and such a filter fails in the SUBACK (5.0: 0xA2, 0x9E, 0xA1; 3.1.1: 0x80)
/// while the others in the same SUBSCRIBE are granted [MQTT-3.8.4-5, MQTT-3.8.4-7].
async fn subscription_features_off_fail_in_suback_mqtt_3_8_4_7(version: ProtocolVersion) {
    let broker = broker_with(|c| {
        c.mqtt.wildcard_subscriptions = false;
        c.mqtt.shared_subscriptions = false;
        c.mqtt.subscription_identifiers = false;
    })
    .await;
    let (mut client, connack) =
        Client::connect_with(broker.local_addr(), connect_packet(version, "s", true)).await;
    let p = &connack.properties;
    if version.is_v5() {
        assert_eq!(p.wildcard_subscription_available, Some(false));
        assert_eq!(p.shared_subscription_available, Some(false));
        assert_eq!(p.subscription_identifiers_available, Some(false));
    }
    let options = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
    let mut subscribe = subscribe_packet(1, "f/plain", options);
    for filter in ["f/+", "$share/g/f/t", "f/#"] {
        subscribe
            .filters
            .push((filter.try_into().expect("valid filter"), options));
    }
    let suback = client.subscribe_with(subscribe).await;
    let (wild, shared) = if version.is_v5() {
        (
            ReasonCode::WildcardSubscriptionsNotSupported,
            ReasonCode::SharedSubscriptionsNotSupported,
        )
    } else {
        (ReasonCode::UnspecifiedError, ReasonCode::UnspecifiedError)
    };
    assert_eq!(
        suback.reason_codes,
        [ReasonCode::GrantedQoS1, wild, shared, wild],
        "[MQTT-3.8.4-7]"
    );
    if version.is_v5() {
        let mut identified = subscribe_packet(2, "f/id", options);
        identified.properties.subscription_identifier = std::num::NonZeroU32::new(7);
        let suback = client.subscribe_with(identified).await;
        assert_eq!(
            suback.reason_codes,
            [ReasonCode::SubscriptionIdentifiersNotSupported]
        );
    }
}

/// [MQTT-3.3.2-4] (5.0): a PUBLISH whose Payload Format Indicator says UTF-8 but whose payload
/// is not is refused with 0x99 in its PUBACK and not forwarded; a valid one is forwarded
/// with the indicator unaltered.
#[tokio::test]
async fn payload_format_is_checked_mqtt_3_3_2_4() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("pf/t", QoS::AtMostOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    let mut bad = publish("pf/t", "", QoS::AtLeastOnce, 1);
    bad.payload = vec![0xC3, 0x28].into();
    bad.properties.payload_format_indicator = Some(true);
    publisher.send(Packet::Publish(bad)).await;
    match publisher.recv().await {
        Packet::PubAck(ack) => assert_eq!(ack.reason_code, ReasonCode::PayloadFormatInvalid),
        other => panic!("expected PUBACK 0x99, got {other:?}"),
    }
    let mut good = publish("pf/t", "text", QoS::AtLeastOnce, 2);
    good.properties.payload_format_indicator = Some(true);
    publisher.publish(good).await;
    let got = sub
        .expect_message(
            "pf/t",
            "text",
            "[MQTT-3.3.2-4] the invalid one is not forwarded",
        )
        .await;
    assert_eq!(
        got.properties.payload_format_indicator,
        Some(true),
        "[MQTT-3.3.2-4]"
    );
}

per_version!(
    maximum_qos_1_mqtt_3_2_2_9,
    retain_not_available_mqtt_3_2_2_13,
    subscription_features_off_fail_in_suback_mqtt_3_8_4_7,
);
