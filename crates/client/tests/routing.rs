//! Messages reach the right streams (by filter, and in 5.0 by Subscription Identifier), and
//! dropping a stream unsubscribes.

mod common;

use std::time::Duration;

use common::{broker, options, within};
use tern_client::{Client, ProtocolVersion, QoS, Subscription};

async fn expect(stream: &mut Subscription, topics: &[&str]) {
    for topic in topics {
        let message = within("message", stream.recv()).await.expect("a message");
        assert_eq!(message.topic.as_str(), *topic, "stream {}", stream.filter());
    }
}

async fn expect_nothing(stream: &mut Subscription) {
    let extra = tokio::time::timeout(Duration::from_millis(100), stream.recv()).await;
    assert!(extra.is_err(), "stream {} got {extra:?}", stream.filter());
}

async fn routed_by_filter(version: ProtocolVersion) {
    let broker = broker().await;
    let client = Client::connect(options(broker.local_addr(), version))
        .await
        .expect("connects");
    let mut plus = client
        .subscribe("r/a/+", QoS::AtLeastOnce)
        .await
        .expect("sub");
    let mut hash = client
        .subscribe("r/#", QoS::AtLeastOnce)
        .await
        .expect("sub");
    let mut exact = client
        .subscribe("r/b", QoS::AtLeastOnce)
        .await
        .expect("sub");
    let mut twin = client.subscribe("r/b", QoS::AtMostOnce).await.expect("sub");

    for topic in ["r/a/x", "r/b", "r/c", "r/end"] {
        within(
            "publish",
            client.publish(topic, "x", QoS::AtLeastOnce, false),
        )
        .await
        .expect("published");
    }
    expect(&mut hash, &["r/a/x", "r/b", "r/c", "r/end"]).await;
    expect(&mut plus, &["r/a/x"]).await;
    expect(&mut exact, &["r/b"]).await;
    expect(&mut twin, &["r/b"]).await;
    for stream in [&mut plus, &mut hash, &mut exact, &mut twin] {
        expect_nothing(stream).await;
    }
    client.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn streams_are_routed_by_filter_v311() {
    routed_by_filter(ProtocolVersion::V3_1_1).await;
}

#[tokio::test]
async fn streams_are_routed_by_subscription_identifier_v5() {
    routed_by_filter(ProtocolVersion::V5).await;
}

async fn wait_for_subscriptions(broker: &tern_broker::BrokerHandle, count: usize) {
    within("subscription count", async {
        while broker.hub().router.len() != count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let broker = broker().await;
        let client = Client::connect(options(broker.local_addr(), version))
            .await
            .expect("connects");
        let first = client.subscribe("u/1", QoS::AtMostOnce).await.expect("sub");
        let mut second = client.subscribe("u/1", QoS::AtMostOnce).await.expect("sub");
        let other = client.subscribe("u/2", QoS::AtMostOnce).await.expect("sub");
        wait_for_subscriptions(&broker, 2).await;

        drop(first);
        client
            .publish("u/1", "still", QoS::AtMostOnce, false)
            .await
            .expect("published");
        expect(&mut second, &["u/1"]).await;
        assert_eq!(
            broker.hub().router.len(),
            2,
            "another stream still uses u/1"
        );

        drop(second);
        wait_for_subscriptions(&broker, 1).await;
        drop(other);
        wait_for_subscriptions(&broker, 0).await;
        client.disconnect().await;
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn invalid_filters_and_topics_are_refused_locally() {
    let broker = broker().await;
    let client = Client::connect(options(broker.local_addr(), ProtocolVersion::V5))
        .await
        .expect("connects");
    let err = client
        .subscribe("a/#/b", QoS::AtMostOnce)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tern_client::SubscribeErrorKind::InvalidFilter);
    let err = client
        .publish("a/+", "x", QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tern_client::PublishErrorKind::InvalidTopic);
    client.disconnect().await;
    let err = client
        .publish("a", "x", QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tern_client::PublishErrorKind::Closed);
    broker.shutdown().await;
}

#[tokio::test]
async fn shared_and_plain_subscriptions_are_told_apart_by_identifier_v5() {
    // The broker sends one copy per subscription; filters alone cannot tell which copy came
    // through which, the Subscription Identifiers can.
    let broker = broker().await;
    let client = Client::connect(options(broker.local_addr(), ProtocolVersion::V5))
        .await
        .expect("connects");
    let mut plain = client
        .subscribe("s/x", QoS::AtLeastOnce)
        .await
        .expect("sub");
    let mut shared = client
        .subscribe("$share/g/s/x", QoS::AtLeastOnce)
        .await
        .expect("sub");
    client
        .publish("s/x", "once", QoS::AtLeastOnce, false)
        .await
        .expect("published");
    expect(&mut plain, &["s/x"]).await;
    expect(&mut shared, &["s/x"]).await;
    expect_nothing(&mut plain).await;
    expect_nothing(&mut shared).await;
    client.disconnect().await;
    broker.shutdown().await;
}
