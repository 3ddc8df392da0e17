//! Shared subscriptions (`$share/{group}/{filter}`) over real sockets (MQTT 5.0 §4.8.2;
//! Tern accepts them from 3.1.1 clients too, as mosquitto does).

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::*;
use tern_codec::{Packet, ProtocolVersion, Publish, QoS};

/// Reads PUBLISHes, acknowledging them, until one on `sh/end`; returns the others.
async fn until_end(client: &mut Client) -> Vec<Publish> {
    let mut got = Vec::new();
    loop {
        let p = client.recv_publish().await;
        client.ack(&p).await;
        if p.topic.as_str() == "sh/end" {
            return got;
        }
        got.push(p);
    }
}

/// §4.8.2: each message matching a shared subscription goes to one member of the group;
/// an ordinary subscription to the same topic still gets every message. Each member gets
/// it at its own granted QoS [MQTT-4.8.2-3].
async fn each_message_goes_to_one_member_mqtt_4_8_2_3(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let end = ("sh/end", QoS::AtMostOnce);
    let mut a = Client::subscriber(
        addr,
        version,
        "a",
        &[("$share/g/sh/t", QoS::AtMostOnce), end],
    )
    .await;
    let mut b = Client::subscriber(
        addr,
        version,
        "b",
        &[("$share/g/sh/t", QoS::ExactlyOnce), end],
    )
    .await;
    let mut plain =
        Client::subscriber(addr, version, "plain", &[("sh/t", QoS::AtLeastOnce), end]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for i in 0..6 {
        publisher
            .publish_simple("sh/t", &i.to_string(), QoS::ExactlyOnce)
            .await;
    }
    publisher
        .publish_simple("sh/end", "", QoS::AtMostOnce)
        .await;

    let (got_a, got_b) = (until_end(&mut a).await, until_end(&mut b).await);
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members get messages"
    );
    assert!(
        got_a.iter().all(|p| p.qos == QoS::AtMostOnce),
        "[MQTT-4.8.2-3] a: QoS 0"
    );
    assert!(
        got_b.iter().all(|p| p.qos == QoS::ExactlyOnce),
        "[MQTT-4.8.2-3] b: QoS 2"
    );
    let shared: Vec<&str> = got_a.iter().chain(&got_b).map(text).collect();
    let distinct: BTreeSet<&str> = shared.iter().copied().collect();
    assert_eq!(shared.len(), 6, "§4.8.2 one member each: {shared:?}");
    assert_eq!(distinct.len(), 6, "§4.8.2 no message twice: {shared:?}");
    assert_eq!(
        until_end(&mut plain).await.len(),
        6,
        "the ordinary subscription gets all"
    );
}

/// §4.8.2: retained messages are not sent for a new shared subscription.
async fn no_retained_messages_for_shared_subscriptions(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut publisher = Client::connect(addr, version, "pub").await;
    let mut kept = publish("sh/r", "kept", QoS::AtMostOnce, 0);
    kept.retain = true;
    publisher.publish(kept).await;
    let mut member =
        Client::subscriber(addr, version, "m", &[("$share/g/sh/r", QoS::AtMostOnce)]).await;
    publisher
        .publish_simple("sh/r", "marker", QoS::AtMostOnce)
        .await;
    member
        .expect_message("sh/r", "marker", "§4.8.2 no retained message")
        .await;
}

/// A member that leaves with a message it has not acknowledged, ending its session: at QoS
/// 1 the message goes to another member (§4.8.2, SHOULD); at QoS 2, once sent, it must not
/// [MQTT-4.8.2-5].
async fn leaving_member(version: ProtocolVersion, qos: QoS) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let filter = [("$share/g/sh/l", QoS::ExactlyOnce)];
    let mut first = Client::subscriber(addr, version, "first", &filter).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("sh/l", "unacknowledged", qos)
        .await;
    let got = first.recv_publish().await;
    assert_eq!(got.qos, qos);
    let mut second = Client::subscriber(addr, version, "second", &filter).await;
    drop(first); // its clean session ends with the connection
    wait_online(&broker, 2).await;
    publisher
        .publish_simple("sh/l", "marker", QoS::AtLeastOnce)
        .await;
    if qos == QoS::AtLeastOnce {
        second
            .expect_message(
                "sh/l",
                "unacknowledged",
                "§4.8.2 QoS 1 goes to another member",
            )
            .await;
    }
    second
        .expect_message(
            "sh/l",
            "marker",
            "[MQTT-4.8.2-5] QoS 2 goes to no other member",
        )
        .await;
}

/// §4.8.2: an unacknowledged QoS 1 message of a member whose session ends goes to another.
async fn unacknowledged_qos1_goes_to_another_member(version: ProtocolVersion) {
    leaving_member(version, QoS::AtLeastOnce).await;
}

/// [MQTT-4.8.2-5]: a QoS 2 message sent to a member whose session ends before it completes
/// is not sent to any other member.
async fn unacknowledged_qos2_goes_to_no_other_member_mqtt_4_8_2_5(version: ProtocolVersion) {
    leaving_member(version, QoS::ExactlyOnce).await;
}

/// [MQTT-3.8.3-4] (5.0): No Local on a shared subscription is a protocol error.
#[tokio::test]
async fn no_local_on_shared_subscription_is_a_protocol_error_mqtt_3_8_3_4() {
    let broker = broker().await;
    let mut client = Client::connect(broker.local_addr(), ProtocolVersion::V5, "c").await;
    let options = tern_codec::SubscriptionOptions {
        no_local: true,
        ..Default::default()
    };
    client
        .send(Packet::Subscribe(subscribe_packet(
            1,
            "$share/g/t",
            options,
        )))
        .await;
    client
        .expect_disconnect(tern_codec::ReasonCode::ProtocolError, "[MQTT-3.8.3-4]")
        .await;
}

per_version!(
    each_message_goes_to_one_member_mqtt_4_8_2_3,
    no_retained_messages_for_shared_subscriptions,
    unacknowledged_qos1_goes_to_another_member,
    unacknowledged_qos2_goes_to_no_other_member_mqtt_4_8_2_5,
);
