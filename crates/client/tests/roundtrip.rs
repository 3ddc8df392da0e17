//! Publish and subscribe round trips through the in-process broker, at every QoS, in MQTT
//! 3.1.1 and 5.0.

mod common;

use common::{broker, options, within};
use tern_client::{Client, ProtocolVersion, QoS, ReasonCode};

async fn round_trip(version: ProtocolVersion, qos: QoS) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let subscriber = within(
        "connect",
        Client::connect(options(addr, version).client_id("sub")),
    )
    .await
    .expect("subscriber connects");
    let publisher = within(
        "connect",
        Client::connect(options(addr, version).client_id("pub")),
    )
    .await
    .expect("publisher connects");
    let mut messages = within("subscribe", subscriber.subscribe("rt/+", qos))
        .await
        .expect("subscribed");
    assert_eq!(messages.granted_qos(), qos);

    for n in 0..3 {
        let code = within(
            "publish",
            publisher.publish("rt/a", format!("m{n}"), qos, false),
        )
        .await
        .expect("published");
        assert_eq!(code, ReasonCode::Success);
    }
    for n in 0..3 {
        let message = within("message", messages.recv()).await.expect("a message");
        assert_eq!(message.topic.as_str(), "rt/a");
        assert_eq!(message.payload_str(), Some(format!("m{n}").as_str()));
        assert_eq!(message.qos, qos);
    }
    publisher.disconnect().await;
    subscriber.disconnect().await;
    assert!(
        messages.recv().await.is_none(),
        "the stream ends with the client"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn qos0_v311() {
    round_trip(ProtocolVersion::V3_1_1, QoS::AtMostOnce).await;
}

#[tokio::test]
async fn qos1_v311() {
    round_trip(ProtocolVersion::V3_1_1, QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn qos2_v311() {
    round_trip(ProtocolVersion::V3_1_1, QoS::ExactlyOnce).await;
}

#[tokio::test]
async fn qos0_v5() {
    round_trip(ProtocolVersion::V5, QoS::AtMostOnce).await;
}

#[tokio::test]
async fn qos1_v5() {
    round_trip(ProtocolVersion::V5, QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn qos2_v5() {
    round_trip(ProtocolVersion::V5, QoS::ExactlyOnce).await;
}

#[tokio::test]
async fn v5_reports_no_matching_subscribers() {
    let broker = broker().await;
    let client = Client::connect(options(broker.local_addr(), ProtocolVersion::V5))
        .await
        .expect("connects");
    let code = within(
        "publish",
        client.publish("nobody/listens", "x", QoS::AtLeastOnce, false),
    )
    .await
    .expect("published");
    assert!(matches!(
        code,
        ReasonCode::Success | ReasonCode::NoMatchingSubscribers
    ));
    client.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn refused_connect_is_an_error_with_a_kind() {
    // Nothing listens on this port once the probe is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let options = tern_client::ConnectOptions::new("127.0.0.1", port);
    let err = within("connect", Client::connect(options))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tern_client::ConnectErrorKind::Io);
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn v5_topic_aliases_both_ways() {
    // The broker accepts 32 aliases from clients and uses up to the client's Topic Alias
    // Maximum towards it: both directions carry aliased PUBLISHes here.
    let broker = broker().await;
    let addr = broker.local_addr();
    let properties = tern_client::ConnectProperties {
        topic_alias_maximum: Some(4),
        ..Default::default()
    };
    let subscriber = Client::connect(options(addr, ProtocolVersion::V5).properties(properties))
        .await
        .expect("connects");
    let publisher = Client::connect(options(addr, ProtocolVersion::V5))
        .await
        .expect("connects");
    let mut stream = subscriber
        .subscribe("alias/#", QoS::AtLeastOnce)
        .await
        .expect("sub");
    let topics = ["alias/a", "alias/b", "alias/a", "alias/a", "alias/b"];
    for topic in topics {
        within(
            "publish",
            publisher.publish(topic, topic, QoS::AtLeastOnce, false),
        )
        .await
        .expect("published");
    }
    for topic in topics {
        let message = within("message", stream.recv()).await.expect("a message");
        assert_eq!(
            (message.topic.as_str(), message.payload_str()),
            (topic, Some(topic))
        );
        assert_eq!(
            message.properties.topic_alias, None,
            "resolved for the reader"
        );
    }
    publisher.disconnect().await;
    subscriber.disconnect().await;
    broker.shutdown().await;
}
