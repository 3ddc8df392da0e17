//! Mixed protocol versions and the MQTT 5.0 request/response properties, over real sockets.
//!
//! A 3.1.1 subscriber receives what a 5.0 publisher sends, with the properties left out (3.1.1
//! has none); a 5.0 subscriber receives from a 3.1.1 publisher. Between 5.0 clients the
//! Payload Format Indicator, Content Type, Response Topic, Correlation Data and every User
//! Property are forwarded unchanged and in order [MQTT-3.3.2-17, MQTT-3.3.2-18].

mod common;

use bytes::Bytes;
use common::*;
use tern_codec::{ProtocolVersion, QoS, UserProperty};

fn request(payload: &str) -> tern_codec::Publish {
    let mut p = publish("req/t", payload, QoS::AtLeastOnce, 7);
    let props = &mut p.properties;
    props.payload_format_indicator = Some(true);
    props.content_type = Some("text/plain".try_into().expect("valid string"));
    props.response_topic = Some(topic_name("reply/me"));
    props.correlation_data = Some(Bytes::from_static(b"\x00\x01corr"));
    props.message_expiry_interval = Some(3600);
    props.user_properties = vec![
        UserProperty::new("b", "2").expect("valid"),
        UserProperty::new("a", "1").expect("valid"),
        UserProperty::new("b", "3").expect("valid"),
    ];
    p
}

/// [MQTT-3.3.2-17], [MQTT-3.3.2-18]: request/response properties reach a 5.0 subscriber
/// unchanged, user properties in their order.
#[tokio::test]
async fn request_response_properties_are_forwarded_unchanged_mqtt_3_3_2_17() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(
        addr,
        ProtocolVersion::V5,
        "sub",
        &[("req/#", QoS::AtLeastOnce)],
    )
    .await;
    let mut publisher = Client::connect(addr, ProtocolVersion::V5, "pub").await;
    let sent = request("ping");
    publisher.publish(sent.clone()).await;
    let got = sub.recv_publish().await;
    let (a, b) = (&got.properties, &sent.properties);
    assert_eq!(
        a.payload_format_indicator, b.payload_format_indicator,
        "[MQTT-3.3.2-4]"
    );
    assert_eq!(a.content_type, b.content_type, "[MQTT-3.3.2-20]");
    assert_eq!(a.response_topic, b.response_topic, "[MQTT-3.3.2-15]");
    assert_eq!(a.correlation_data, b.correlation_data, "[MQTT-3.3.2-16]");
    assert_eq!(
        a.user_properties, b.user_properties,
        "[MQTT-3.3.2-17] [MQTT-3.3.2-18] order kept"
    );
    let expiry = a
        .message_expiry_interval
        .expect("[MQTT-3.3.2-6] expiry forwarded");
    assert!(
        (3599..=3600).contains(&expiry),
        "expiry counted down: {expiry}"
    );
    assert_eq!(text(&got), "ping");
    sub.ack(&got).await;
}

/// A 3.1.1 subscriber receives a 5.0 publisher's message, without properties.
#[tokio::test]
async fn v311_subscriber_gets_a_v5_message_without_properties() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub = Client::subscriber(
        addr,
        ProtocolVersion::V3_1_1,
        "old",
        &[("req/#", QoS::AtLeastOnce)],
    )
    .await;
    let mut publisher = Client::connect(addr, ProtocolVersion::V5, "new").await;
    publisher.publish(request("hello")).await;
    let got = sub.recv_publish().await;
    assert_eq!(text(&got), "hello");
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert!(got.properties.is_empty(), "3.1.1 has no properties");
    sub.ack(&got).await;
}

/// A 5.0 subscriber receives a 3.1.1 publisher's message.
#[tokio::test]
async fn v5_subscriber_gets_a_v311_message() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut sub =
        Client::subscriber(addr, ProtocolVersion::V5, "new", &[("t", QoS::ExactlyOnce)]).await;
    let mut publisher = Client::connect(addr, ProtocolVersion::V3_1_1, "old").await;
    publisher
        .publish(publish("t", "from 3.1.1", QoS::ExactlyOnce, 3))
        .await;
    let got = sub.recv_publish().await;
    assert_eq!((text(&got), got.qos), ("from 3.1.1", QoS::ExactlyOnce));
    sub.ack(&got).await;
}
