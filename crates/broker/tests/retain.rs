//! Retained messages over real sockets (MQTT 5.0 §3.3.1.3, §3.8.3.1; 3.1.1 §3.3.1.3).
//!
//! Rule ids are MQTT 5.0's; 3.1.1 numbers the same rules [MQTT-3.3.1-5..12] differently and
//! is named where it helps.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tern_codec::{ProtocolVersion, Publish, QoS, RetainHandling, SubscriptionOptions};

/// A retained PUBLISH.
fn retained(topic: &str, payload: &str, qos: QoS) -> Publish {
    let mut p = publish(topic, payload, qos, 1);
    p.retain = true;
    p
}

/// [MQTT-3.3.1-5]: the last retained message of a topic is kept, and a new subscription
/// receives it with the retain flag set [MQTT-3.3.1-9] (3.1.1: [MQTT-3.3.1-6, -8]), at the
/// lower of its QoS and the granted QoS [MQTT-3.8.4-8].
async fn last_retained_is_sent_on_subscribe_mqtt_3_3_1_9(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish(retained("r/a", "first", QoS::AtLeastOnce))
        .await;
    publisher
        .publish(retained("r/a", "second", QoS::AtLeastOnce))
        .await;
    publisher
        .publish(retained("r/b", "b", QoS::ExactlyOnce))
        .await;
    publisher
        .publish(retained("other", "o", QoS::AtMostOnce))
        .await;

    let mut sub = Client::connect(addr, version, "sub").await;
    sub.subscribe("r/+", QoS::AtLeastOnce).await;
    let mut got = sub.receive_messages(2).await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let summary: Vec<(&str, &str, QoS, bool)> = got
        .iter()
        .map(|p| (p.topic.as_str(), text(p), p.qos, p.retain))
        .collect();
    assert_eq!(
        summary,
        [
            ("r/a", "second", QoS::AtLeastOnce, true),
            ("r/b", "b", QoS::AtLeastOnce, true),
        ],
        "[MQTT-3.3.1-5] last one kept; [MQTT-3.3.1-9] sent with RETAIN 1"
    );
    publisher
        .publish_simple("r/a", "marker", QoS::AtMostOnce)
        .await;
    sub.expect_message(
        "r/a",
        "marker",
        "[MQTT-3.3.1-5] one retained message per topic",
    )
    .await;
}

/// [MQTT-3.3.1-6, MQTT-3.3.1-7] (3.1.1: [MQTT-3.3.1-10, -11]): a retained PUBLISH with an
/// empty payload is forwarded as usual and deletes the topic's retained message; later
/// subscribers get none.
async fn empty_retained_payload_deletes_mqtt_3_3_1_6(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut current =
        Client::subscriber(addr, version, "current", &[("d/t", QoS::AtMostOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish(retained("d/t", "x", QoS::AtLeastOnce))
        .await;
    publisher
        .publish(retained("d/t", "", QoS::AtLeastOnce))
        .await;
    current
        .expect_message("d/t", "x", "retained message forwarded")
        .await;
    let deleted = current
        .expect_message("d/t", "", "[MQTT-3.3.1-6] processed normally")
        .await;
    assert!(!deleted.retain, "[MQTT-3.3.1-12]");

    let mut later = Client::subscriber(addr, version, "later", &[("d/t", QoS::AtMostOnce)]).await;
    publisher
        .publish_simple("d/t", "marker", QoS::AtMostOnce)
        .await;
    later
        .expect_message(
            "d/t",
            "marker",
            "[MQTT-3.3.1-6, MQTT-3.3.1-7] no retained message left",
        )
        .await;
}

/// [MQTT-3.3.1-12] (3.1.1: [MQTT-3.3.1-9]): a retained message forwarded to an existing
/// subscription has the retain flag cleared; a non-retained PUBLISH leaves the retained
/// message alone [MQTT-3.3.1-8] (3.1.1: [MQTT-3.3.1-12]).
async fn retain_flag_cleared_when_forwarded_mqtt_3_3_1_12(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("f/t", QoS::AtLeastOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish(retained("f/t", "keep", QoS::AtLeastOnce))
        .await;
    publisher
        .publish_simple("f/t", "transient", QoS::AtLeastOnce)
        .await;
    let got = sub.expect_message("f/t", "keep", "[MQTT-3.3.1-12]").await;
    assert!(
        !got.retain,
        "[MQTT-3.3.1-12] RETAIN 0 on an established subscription"
    );
    let got = sub
        .expect_message("f/t", "transient", "[MQTT-3.3.1-12]")
        .await;
    assert!(!got.retain);

    let mut later = Client::subscriber(addr, version, "later", &[("f/t", QoS::AtLeastOnce)]).await;
    let got = later
        .expect_message(
            "f/t",
            "keep",
            "[MQTT-3.3.1-8] non-retained PUBLISH does not replace",
        )
        .await;
    assert!(got.retain, "[MQTT-3.3.1-9]");
}

/// [MQTT-3.8.4-4] (3.1.1: [MQTT-3.8.4-3]): subscribing again to the same filter re-sends
/// the matching retained messages (Retain Handling 0).
async fn resubscribe_resends_retained_mqtt_3_8_4_4(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish(retained("again/t", "kept", QoS::AtMostOnce))
        .await;
    let mut sub = Client::connect(addr, version, "sub").await;
    for round in 0..2 {
        sub.subscribe("again/#", QoS::AtMostOnce).await;
        let got = sub
            .expect_message(
                "again/t",
                "kept",
                &format!("[MQTT-3.8.4-4] subscription {round}"),
            )
            .await;
        assert!(got.retain, "[MQTT-3.3.1-9]");
    }
}

/// Subscribes with these MQTT 5.0 options and returns nothing but the check of its SUBACK.
async fn subscribe_with_options(client: &mut Client, filter: &str, options: SubscriptionOptions) {
    let suback = client
        .subscribe_with(subscribe_packet(1, filter, options))
        .await;
    assert_eq!(suback.reason_codes, [granted(options.qos)]);
}

/// [MQTT-3.3.1-10]: Retain Handling 1 sends retained messages only when the subscription
/// is new.
#[tokio::test]
async fn retain_handling_1_only_for_new_subscriptions_mqtt_3_3_1_10() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let version = ProtocolVersion::V5;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish(retained("rh1/t", "kept", QoS::AtMostOnce))
        .await;
    let mut sub = Client::connect(addr, version, "sub").await;
    let options = SubscriptionOptions {
        retain_handling: RetainHandling::SendIfNew,
        ..SubscriptionOptions::with_qos(QoS::AtMostOnce)
    };
    subscribe_with_options(&mut sub, "rh1/t", options).await;
    let got = sub
        .expect_message("rh1/t", "kept", "[MQTT-3.3.1-10] new subscription")
        .await;
    assert!(got.retain);
    subscribe_with_options(&mut sub, "rh1/t", options).await;
    publisher
        .publish_simple("rh1/t", "marker", QoS::AtMostOnce)
        .await;
    sub.expect_message(
        "rh1/t",
        "marker",
        "[MQTT-3.3.1-10] not for an existing subscription",
    )
    .await;
}

/// [MQTT-3.3.1-11]: Retain Handling 2 sends no retained messages at subscribe.
#[tokio::test]
async fn retain_handling_2_sends_none_mqtt_3_3_1_11() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let version = ProtocolVersion::V5;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish(retained("rh2/t", "kept", QoS::AtMostOnce))
        .await;
    let mut sub = Client::connect(addr, version, "sub").await;
    let options = SubscriptionOptions {
        retain_handling: RetainHandling::DoNotSend,
        ..SubscriptionOptions::with_qos(QoS::AtMostOnce)
    };
    subscribe_with_options(&mut sub, "rh2/t", options).await;
    publisher
        .publish_simple("rh2/t", "marker", QoS::AtMostOnce)
        .await;
    sub.expect_message("rh2/t", "marker", "[MQTT-3.3.1-11]")
        .await;
}

/// [MQTT-3.3.1-13]: with Retain As Published the forwarded message keeps the retain flag
/// it was published with; without it the flag is cleared [MQTT-3.3.1-12].
#[tokio::test]
async fn retain_as_published_keeps_the_flag_mqtt_3_3_1_13() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let version = ProtocolVersion::V5;
    let mut rap = Client::connect(addr, version, "rap").await;
    let options = SubscriptionOptions {
        retain_as_published: true,
        ..SubscriptionOptions::with_qos(QoS::AtLeastOnce)
    };
    subscribe_with_options(&mut rap, "rap/t", options).await;
    let mut plain =
        Client::subscriber(addr, version, "plain", &[("rap/t", QoS::AtLeastOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish(retained("rap/t", "r", QoS::AtLeastOnce))
        .await;
    publisher
        .publish_simple("rap/t", "n", QoS::AtLeastOnce)
        .await;

    let got = rap.expect_message("rap/t", "r", "[MQTT-3.3.1-13]").await;
    assert!(got.retain, "[MQTT-3.3.1-13] RETAIN as published");
    let got = rap.expect_message("rap/t", "n", "[MQTT-3.3.1-13]").await;
    assert!(!got.retain, "[MQTT-3.3.1-13] RETAIN as published");
    let got = plain.expect_message("rap/t", "r", "[MQTT-3.3.1-12]").await;
    assert!(!got.retain, "[MQTT-3.3.1-12] RETAIN cleared");
}

/// [MQTT-3.3.2-5, MQTT-3.3.2-6] (5.0): a retained message is not sent once its Message
/// Expiry Interval has passed; before that it is sent with the time left.
#[tokio::test(start_paused = true)]
async fn retained_messages_expire_mqtt_3_3_2_5() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let version = ProtocolVersion::V5;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for (topic, expiry) in [("exp/short", 1), ("exp/long", 10)] {
        let mut p = retained(topic, "r", QoS::AtMostOnce);
        p.properties.message_expiry_interval = Some(expiry);
        publisher.publish(p).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut sub = Client::connect(addr, version, "sub").await;
    sub.subscribe("exp/+", QoS::AtMostOnce).await;
    let got = sub
        .expect_message(
            "exp/long",
            "r",
            "[MQTT-3.3.2-5] expired retained message not sent",
        )
        .await;
    let left = got.properties.message_expiry_interval;
    assert!(matches!(left, Some(6..=7)), "[MQTT-3.3.2-6] got {left:?}");
    publisher
        .publish_simple("exp/short", "marker", QoS::AtMostOnce)
        .await;
    sub.expect_message("exp/short", "marker", "[MQTT-3.3.2-5]")
        .await;
}

per_version!(
    last_retained_is_sent_on_subscribe_mqtt_3_3_1_9,
    empty_retained_payload_deletes_mqtt_3_3_1_6,
    retain_flag_cleared_when_forwarded_mqtt_3_3_1_12,
    resubscribe_resends_retained_mqtt_3_8_4_4,
);
