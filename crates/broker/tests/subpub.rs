//! Subscribe and publish over real sockets: QoS flows, topic matching, SUBACK, UNSUBACK
//! (MQTT 5.0 §3.3, §3.8-3.11, §4.3-4.7; 3.1.1 likewise).
//!
//! Rule ids are MQTT 5.0's unless marked otherwise. Where a test shows that something was
//! *not* delivered, it publishes a marker afterwards and checks that the marker is the next
//! thing the subscriber sees: deliveries from one publisher keep their order, so nothing
//! needs to be waited for.

#[macro_use]
mod common;

use std::num::NonZeroU32;

use common::*;
use tern_codec::{
    Packet, ProtocolVersion, PubResponse, QoS, ReasonCode, Subscribe, SubscriptionOptions,
    TopicFilter,
};

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// QoS 0, 1 and 2 in both directions [MQTT-4.3.1-1, MQTT-4.3.2-1..5, MQTT-4.3.3-1..12]:
/// the publisher gets PUBACK, or PUBREC then PUBCOMP, with its packet identifier; the
/// subscriber gets each message at its QoS with a packet identifier only for QoS 1 and 2
/// [MQTT-2.2.1-2], DUP 0 [MQTT-4.3.2-2, MQTT-4.3.3-2], and PUBREL after its PUBREC
/// [MQTT-4.3.3-4]. Completed messages are not sent again [MQTT-4.4.0-1].
async fn qos_flows_in_both_directions_mqtt_4_3(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("q/t", QoS::ExactlyOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for qos in QOS {
        let payload = format!("qos {}", qos as u8);
        publisher
            .publish(publish("q/t", &payload, qos, 10 + qos as u16))
            .await;
        let got = sub.recv_publish().await;
        assert_eq!(
            got.qos, qos,
            "[MQTT-3.8.4-8] delivered at the published QoS"
        );
        assert_eq!(text(&got), payload);
        assert!(!got.dup, "[MQTT-4.3.2-2] DUP 0 on first delivery");
        assert!(!got.retain, "[MQTT-3.3.1-12] not retained");
        assert_eq!(
            got.packet_id.is_some(),
            qos != QoS::AtMostOnce,
            "[MQTT-2.2.1-2] packet identifier only for QoS > 0"
        );
        sub.ack(&got).await;
        sub.settle().await;
    }
    sub.expect_nothing("[MQTT-4.4.0-1] acknowledged messages are not resent")
        .await;
    publisher.expect_nothing("no stray acknowledgements").await;
}

/// [MQTT-2.2.1-4]: messages in flight to one client at the same time carry distinct
/// packet identifiers.
async fn inflight_messages_have_distinct_packet_ids_mqtt_2_2_1_4(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("ids/#", QoS::ExactlyOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for (i, qos) in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce]
        .iter()
        .enumerate()
    {
        publisher
            .publish(publish(&format!("ids/{i}"), "x", *qos, 1))
            .await;
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(sub.recv_publish().await.packet_id.expect("QoS > 0"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        3,
        "[MQTT-2.2.1-4] unused packet identifiers: {ids:?}"
    );
}

/// [MQTT-3.8.4-8]: delivered QoS is the lower of the published QoS and the granted QoS.
async fn delivered_qos_is_min_of_published_and_granted_mqtt_3_8_4_8(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut subs = Vec::new();
    for granted in QOS {
        let id = format!("sub{}", granted as u8);
        subs.push((
            granted,
            Client::subscriber(addr, version, &id, &[("min/t", granted)]).await,
        ));
    }
    let mut publisher = Client::connect(addr, version, "pub").await;
    for qos in QOS {
        publisher
            .publish(publish("min/t", &format!("{}", qos as u8), qos, 1))
            .await;
    }
    for (granted, sub) in &mut subs {
        let received = sub.receive_messages(3).await;
        for (published, got) in QOS.iter().zip(&received) {
            assert_eq!(text(got), format!("{}", *published as u8), "order");
            assert_eq!(
                got.qos,
                (*published).min(*granted),
                "[MQTT-3.8.4-8] published {published:?}, granted {granted:?}"
            );
        }
    }
}

/// [MQTT-4.3.3-10]: a QoS 2 PUBLISH repeated before its PUBREL is acknowledged with PUBREC
/// again but not forwarded again; after PUBCOMP the identifier is free for a new message
/// [MQTT-4.3.3-12].
async fn qos2_duplicate_before_pubrel_is_not_forwarded_mqtt_4_3_3_10(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("dup/t", QoS::AtMostOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    let id = pid(7);
    let mut first = publish("dup/t", "once", QoS::ExactlyOnce, 7);
    for dup in [false, true] {
        first.dup = dup;
        publisher.send(Packet::Publish(first.clone())).await;
        match publisher.recv().await {
            Packet::PubRec(rec) => assert_eq!(rec.packet_id, id, "[MQTT-4.3.3-8]"),
            other => panic!("[MQTT-4.3.3-10] expected PUBREC, got {other:?}"),
        }
    }
    publisher.send(Packet::PubRel(PubResponse::new(id))).await;
    match publisher.recv().await {
        Packet::PubComp(comp) => assert_eq!(comp.packet_id, id, "[MQTT-4.3.3-11]"),
        other => panic!("[MQTT-4.3.3-11] expected PUBCOMP, got {other:?}"),
    }
    publisher
        .publish(publish("dup/t", "again", QoS::ExactlyOnce, 7))
        .await;
    sub.expect_message("dup/t", "once", "[MQTT-4.3.3-10]").await;
    sub.expect_message(
        "dup/t",
        "again",
        "[MQTT-4.3.3-10] no duplicate; [MQTT-4.3.3-12] new message",
    )
    .await;
}

/// [MQTT-4.6.0-5] (3.1.1: [MQTT-4.6.0-6]): messages of one topic and QoS reach subscribers
/// in the order the publisher sent them, through a full in-flight window; the broker
/// acknowledges in order too [MQTT-4.6.0-2, MQTT-4.6.0-3].
async fn order_is_kept_per_topic_mqtt_4_6_0_5(version: ProtocolVersion) {
    const N: u16 = 50; // more than the default in-flight window of 32
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("order/t", QoS::ExactlyOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for qos in QOS {
        for i in 1..=N {
            let p = publish("order/t", &i.to_string(), qos, i);
            publisher.send(Packet::Publish(p)).await;
        }
        if qos != QoS::AtMostOnce {
            for i in 1..=N {
                match (qos, publisher.recv().await) {
                    (QoS::AtLeastOnce, Packet::PubAck(a)) if a.packet_id == pid(i) => {}
                    (QoS::ExactlyOnce, Packet::PubRec(r)) if r.packet_id == pid(i) => {}
                    (_, other) => {
                        panic!("[MQTT-4.6.0-2/3] acknowledgement {i} out of order: {other:?}")
                    }
                }
            }
        }
        if qos == QoS::ExactlyOnce {
            for i in 1..=N {
                publisher
                    .send(Packet::PubRel(PubResponse::new(pid(i))))
                    .await;
            }
            for i in 1..=N {
                match publisher.recv().await {
                    Packet::PubComp(c) if c.packet_id == pid(i) => {}
                    other => panic!("PUBCOMP {i} out of order: {other:?}"),
                }
            }
        }
        let received = sub.receive_messages(usize::from(N)).await;
        let payloads: Vec<&str> = received.iter().map(text).collect();
        let expected: Vec<String> = (1..=N).map(|i| i.to_string()).collect();
        assert_eq!(payloads, expected, "[MQTT-4.6.0-5] order at {qos:?}");
        assert!(received.iter().all(|p| p.qos == qos));
    }
}

/// [MQTT-3.3.4-2] (3.1.1: [MQTT-3.3.5-1]): overlapping subscriptions of one client give one
/// copy at the highest granted QoS; 5.0 clients get every matching Subscription Identifier
/// in it [MQTT-3.3.4-3, MQTT-3.3.4-4].
async fn overlapping_subscriptions_give_one_copy_mqtt_3_3_4_2(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::connect(addr, version, "sub").await;
    let ids = version.is_v5().then_some((1, 2));
    sub.subscribe_id("o/+", QoS::AtMostOnce, ids.map(|i| i.0))
        .await;
    sub.subscribe_id("o/#", QoS::ExactlyOnce, ids.map(|i| i.1))
        .await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("o/x", "one", QoS::ExactlyOnce)
        .await;
    publisher
        .publish_simple("o/x", "marker", QoS::AtMostOnce)
        .await;

    let got = sub.expect_message("o/x", "one", "[MQTT-3.3.4-2]").await;
    assert_eq!(
        got.qos,
        QoS::ExactlyOnce,
        "[MQTT-3.3.4-2] highest granted QoS"
    );
    let mut sub_ids: Vec<u32> = got
        .properties
        .subscription_identifiers
        .iter()
        .map(|id| id.get())
        .collect();
    sub_ids.sort();
    let expected: &[u32] = if version.is_v5() { &[1, 2] } else { &[] };
    assert_eq!(
        sub_ids, expected,
        "[MQTT-3.3.4-4] every subscription identifier"
    );
    sub.expect_message("o/x", "marker", "[MQTT-3.3.4-2] one copy only")
        .await;
}

/// Wildcards as §4.7 defines them: `+` one level, `#` any number including the parent, and
/// neither at the start of a filter matches a topic beginning with `$` [MQTT-4.7.2-1].
async fn wildcards_and_dollar_topics_mqtt_4_7_2_1(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let filters = ["w/+/c", "w/#", "#", "+/x", "$test/#", "+/+"];
    let mut subs = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let id = format!("sub{i}");
        let end = (
            if filter.starts_with('$') {
                "$test/end"
            } else {
                "end"
            },
            QoS::AtMostOnce,
        );
        subs.push(Client::subscriber(addr, version, &id, &[(filter, QoS::AtMostOnce), end]).await);
    }
    let mut publisher = Client::connect(addr, version, "pub").await;
    for topic in ["w/b/c", "w/b/d", "w", "$test/x", "a/x", "end", "$test/end"] {
        publisher.publish_simple(topic, "m", QoS::AtMostOnce).await;
    }
    let expected: [&[&str]; 6] = [
        &["w/b/c"],
        &["w/b/c", "w/b/d", "w"],
        &["w/b/c", "w/b/d", "w", "a/x"], // not $test/x
        &["a/x"],                        // not $test/x
        &["$test/x"],
        &["a/x"], // w/b/c has three levels, $test/x starts with $
    ];
    for ((sub, filter), expected) in subs.iter_mut().zip(filters).zip(expected) {
        let mut topics = Vec::new();
        loop {
            let got = sub.recv_publish().await;
            if got.topic.as_str().ends_with("end") {
                break;
            }
            topics.push(got.topic.as_str().to_owned());
        }
        assert_eq!(
            topics, expected,
            "[MQTT-4.7.2-1] topics matched by {filter}"
        );
    }
}

/// [MQTT-3.8.4-6, MQTT-3.9.3-1]: one SUBACK code per filter, in order; a filter over the
/// configured topic limits fails (5.0: 0x8F Topic Filter invalid, 3.1.1: 0x80) while the
/// others in the same SUBSCRIBE are granted [MQTT-3.8.4-5].
async fn suback_has_one_code_per_filter_mqtt_3_8_4_6(version: ProtocolVersion) {
    let mut config = config();
    config.limits.max_topic_levels = 4;
    config.limits.max_topic_length = 32;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let mut sub = Client::connect(addr, version, "sub").await;
    let long = format!("s/{}", "x".repeat(40));
    let filters = [
        ("s/a", QoS::AtLeastOnce),
        ("s/a/b/c/d", QoS::AtMostOnce),
        (long.as_str(), QoS::ExactlyOnce),
        ("s/#", QoS::ExactlyOnce),
    ];
    let subscribe = Subscribe {
        packet_id: pid(42),
        properties: Default::default(),
        filters: filters
            .iter()
            .map(|(f, q)| {
                (
                    TopicFilter::try_from(*f).expect("valid filter"),
                    SubscriptionOptions::with_qos(*q),
                )
            })
            .collect(),
    };
    let suback = sub.subscribe_with(subscribe).await;
    let failure = if version.is_v5() {
        ReasonCode::TopicFilterInvalid
    } else {
        ReasonCode::UnspecifiedError
    };
    assert_eq!(
        suback.reason_codes,
        [
            ReasonCode::GrantedQoS1,
            failure,
            failure,
            ReasonCode::GrantedQoS2
        ],
        "[MQTT-3.8.4-6, MQTT-3.9.3-1]"
    );
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("s/a", "ok", QoS::AtLeastOnce)
        .await;
    let got = sub
        .expect_message("s/a", "ok", "[MQTT-3.8.4-5] granted filters work")
        .await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
}

/// [MQTT-3.8.4-3]: subscribing again to the same filter replaces the subscription: the new
/// QoS applies and there is still one copy.
async fn resubscribe_replaces_mqtt_3_8_4_3(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(addr, version, "sub", &[("r/t", QoS::ExactlyOnce)]).await;
    sub.subscribe("r/t", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("r/t", "one", QoS::ExactlyOnce)
        .await;
    publisher
        .publish_simple("r/t", "marker", QoS::AtMostOnce)
        .await;
    let got = sub.expect_message("r/t", "one", "[MQTT-3.8.4-3]").await;
    assert_eq!(
        got.qos,
        QoS::AtMostOnce,
        "[MQTT-3.8.4-3] the new QoS applies"
    );
    sub.expect_message("r/t", "marker", "[MQTT-3.8.4-3] one subscription, one copy")
        .await;
}

/// [MQTT-3.10.4-1, MQTT-3.10.4-2]: UNSUBSCRIBE deletes the subscription and nothing more is
/// delivered for it; UNSUBACK comes even for a filter with no subscription
/// [MQTT-3.10.4-5], and in 5.0 says 0x11 for it [MQTT-3.11.3-1].
async fn unsubscribe_stops_delivery_mqtt_3_10_4_1(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let filters = [("u/1", QoS::AtLeastOnce), ("u/2", QoS::AtLeastOnce)];
    let mut sub = Client::subscriber(addr, version, "sub", &filters).await;
    let unsuback = sub.unsubscribe(9, &["u/1", "u/none"]).await;
    let expected: &[ReasonCode] = if version.is_v5() {
        &[ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
    } else {
        &[]
    };
    assert_eq!(unsuback.reason_codes, expected, "[MQTT-3.11.3-1]");
    let unsuback = sub.unsubscribe(10, &["never/subscribed"]).await;
    if version.is_v5() {
        assert_eq!(unsuback.reason_codes, [ReasonCode::NoSubscriptionExisted]);
    }
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("u/1", "gone", QoS::AtLeastOnce)
        .await;
    publisher
        .publish_simple("u/2", "kept", QoS::AtLeastOnce)
        .await;
    sub.expect_message(
        "u/2",
        "kept",
        "[MQTT-3.10.4-2] nothing for u/1 after UNSUBSCRIBE",
    )
    .await;
}

/// [MQTT-3.8.3-3] (5.0): with No Local a client does not receive its own messages, but
/// still receives everyone else's.
#[tokio::test]
async fn no_local_skips_own_messages_mqtt_3_8_3_3() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut client = Client::connect(addr, ProtocolVersion::V5, "self").await;
    let options = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::with_qos(QoS::AtLeastOnce)
    };
    client
        .subscribe_with(subscribe_packet(1, "nl/t", options))
        .await;
    client
        .publish_simple("nl/t", "mine", QoS::AtLeastOnce)
        .await;
    let mut other = Client::connect(addr, ProtocolVersion::V5, "other").await;
    other
        .publish_simple("nl/t", "theirs", QoS::AtLeastOnce)
        .await;
    client
        .expect_message("nl/t", "theirs", "[MQTT-3.8.3-3] own message not forwarded")
        .await;
}

/// [MQTT-3.3.4-6]: a Subscription Identifier in a PUBLISH from a client is a protocol error.
#[tokio::test]
async fn subscription_identifier_from_client_is_a_protocol_error_mqtt_3_3_4_6() {
    let broker = broker().await;
    let mut client = Client::connect(broker.local_addr(), ProtocolVersion::V5, "c").await;
    let mut p = publish("t", "x", QoS::AtMostOnce, 0);
    p.properties.subscription_identifiers = vec![NonZeroU32::MIN];
    client.send(Packet::Publish(p)).await;
    client
        .expect_disconnect(ReasonCode::ProtocolError, "[MQTT-3.3.4-6]")
        .await;
}

/// [MQTT-3.3.4-9] (5.0): the broker never has more unacknowledged QoS 1/2 PUBLISHes out to
/// a client than the client's Receive Maximum; each acknowledgement lets one more go.
#[tokio::test]
async fn client_receive_maximum_is_respected_mqtt_3_3_4_9() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut connect = connect_packet(version, "narrow", true);
    connect.properties.receive_maximum = std::num::NonZeroU16::new(2);
    let (mut sub, _) = Client::connect_with(addr, connect).await;
    sub.subscribe("rm/t", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for i in 1..=5 {
        publisher
            .publish_simple("rm/t", &i.to_string(), QoS::AtLeastOnce)
            .await;
    }
    let first = sub.recv_publish().await;
    let second = sub.recv_publish().await;
    sub.expect_nothing("[MQTT-3.3.4-9] two in flight at most")
        .await;
    sub.ack(&first).await;
    let third = sub.recv_publish().await;
    assert_eq!(text(&third), "3", "[MQTT-4.6.0-5]");
    sub.expect_nothing("[MQTT-3.3.4-9] still two in flight")
        .await;
    sub.ack(&second).await;
    sub.ack(&third).await;
    let rest: Vec<String> = sub
        .receive_messages(2)
        .await
        .iter()
        .map(|p| text(p).to_owned())
        .collect();
    assert_eq!(rest, ["4", "5"]);
}

/// (5.0) Topic aliases both ways: a client may set an alias with a topic and then publish
/// with the alias alone [MQTT-3.3.2-12]; to a client that allows aliases (its Topic Alias
/// Maximum) the broker sends the topic once with an alias, then the alias alone, never above
/// that maximum [MQTT-3.3.2-11].
#[tokio::test]
async fn topic_aliases_both_ways_mqtt_3_3_2_12() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut connect = connect_packet(version, "aliased", true);
    connect.properties.topic_alias_maximum = Some(1);
    let (mut sub, _) = Client::connect_with(addr, connect).await;
    sub.subscribe("alias/#", QoS::AtMostOnce).await;
    let (mut publisher, connack) =
        Client::connect_with(addr, connect_packet(version, "p", true)).await;
    let maximum = connack.properties.topic_alias_maximum.unwrap_or(0);
    assert!(maximum >= 1, "the broker accepts topic aliases");

    let mut set = publish("alias/a", "1", QoS::AtMostOnce, 0);
    set.properties.topic_alias = std::num::NonZeroU16::new(1);
    let mut used = set.clone();
    used.topic = Default::default();
    used.payload = "2".into();
    publisher.publish(set).await;
    publisher.publish(used).await;
    publisher
        .publish_simple("alias/b", "3", QoS::AtMostOnce)
        .await;

    let got: Vec<_> = sub.receive_messages(3).await;
    let alias = |i: usize| got[i].properties.topic_alias.map(|a| a.get());
    assert_eq!(
        (got[0].topic.as_str(), text(&got[0]), alias(0)),
        ("alias/a", "1", Some(1))
    );
    assert_eq!(
        (got[1].topic.as_str(), text(&got[1]), alias(1)),
        ("", "2", Some(1))
    );
    assert_eq!(
        (got[2].topic.as_str(), text(&got[2]), alias(2)),
        ("alias/b", "3", None),
        "[MQTT-3.3.2-11] no alias above the client's maximum of 1"
    );
}

per_version!(
    qos_flows_in_both_directions_mqtt_4_3,
    inflight_messages_have_distinct_packet_ids_mqtt_2_2_1_4,
    delivered_qos_is_min_of_published_and_granted_mqtt_3_8_4_8,
    qos2_duplicate_before_pubrel_is_not_forwarded_mqtt_4_3_3_10,
    order_is_kept_per_topic_mqtt_4_6_0_5,
    overlapping_subscriptions_give_one_copy_mqtt_3_3_4_2,
    wildcards_and_dollar_topics_mqtt_4_7_2_1,
    suback_has_one_code_per_filter_mqtt_3_8_4_6,
    resubscribe_replaces_mqtt_3_8_4_3,
    unsubscribe_stops_delivery_mqtt_3_10_4_1,
);
