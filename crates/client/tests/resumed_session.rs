//! Nothing acknowledged is dropped: messages a resumed session (Session Present 1) delivers
//! before the application subscribes again wait for that subscription, and a full
//! subscription stream holds QoS 1/2 messages back, unacknowledged, instead of dropping them,
//! without stopping the acknowledgements of the client's own publishes.

mod common;

use std::time::Duration;

use common::{broker, options, within};
use tern_client::{Client, ConnectionState, ProtocolVersion, QoS, Subscription};

async fn keeper(addr: std::net::SocketAddr, version: ProtocolVersion, id: &str) -> Client {
    let options = options(addr, version)
        .client_id(id)
        .clean_start(false)
        .session_expiry(Duration::from_secs(300));
    within("connect", Client::connect(options))
        .await
        .expect("connects")
}

async fn payloads(stream: &mut Subscription, n: usize) -> Vec<(String, QoS)> {
    let mut got = Vec::new();
    for _ in 0..n {
        let message = within("message", stream.recv()).await.expect("a message");
        got.push((message.payload_str().unwrap_or("").to_owned(), message.qos));
    }
    got
}

/// [MQTT-3.2.2-2] a resumed session; [MQTT-4.4.0-1] the server sends what it queued and
/// what was in flight as soon as it accepts the connection, before any SUBSCRIBE.
async fn queued_messages_wait_for_the_subscription(version: ProtocolVersion) {
    let broker = broker().await;
    let addr = broker.local_addr();
    let id = format!("keeper-v5-{}", version.is_v5());
    let first = keeper(addr, version, &id).await;
    let stream = first
        .subscribe("greenhouse/#", QoS::ExactlyOnce)
        .await
        .expect("subscribed");
    // Leave without unsubscribing (the stream outlives the client): the session keeps
    // the subscription.
    first.disconnect().await;
    drop(stream);

    let publisher = within("connect", Client::connect(options(addr, version)))
        .await
        .expect("publisher connects");
    let mut sent = Vec::new();
    for n in 0..20 {
        let qos = if n % 4 == 3 {
            QoS::ExactlyOnce
        } else {
            QoS::AtLeastOnce
        };
        let payload = format!("m{n}");
        publisher
            .publish("greenhouse/temp", payload.clone(), qos, false)
            .await
            .expect("published");
        sent.push((payload, qos));
    }
    publisher.disconnect().await;

    let second = keeper(addr, version, &id).await;
    assert_eq!(
        *second.state().borrow(),
        ConnectionState::Connected {
            session_present: true
        }
    );
    // Let the queued messages arrive, and be acknowledged, before subscribing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stream = second
        .subscribe("greenhouse/#", QoS::ExactlyOnce)
        .await
        .expect("subscribed again");
    assert_eq!(payloads(&mut stream, sent.len()).await, sent);
    // And nothing twice: QoS 2 exactly once, QoS 1 not resent once acknowledged.
    let extra = tokio::time::timeout(Duration::from_millis(300), stream.recv()).await;
    assert!(extra.is_err(), "no duplicate: {extra:?}");
    second.disconnect().await;
}

#[tokio::test]
async fn queued_messages_wait_for_the_subscription_v5() {
    queued_messages_wait_for_the_subscription(ProtocolVersion::V5).await;
}

#[tokio::test]
async fn queued_messages_wait_for_the_subscription_v311() {
    queued_messages_wait_for_the_subscription(ProtocolVersion::V3_1_1).await;
}

/// A reader that falls behind loses no QoS 1/2 message: they wait unacknowledged until the
/// stream has room, and the server's in-flight window holds the rest [MQTT-4.9.0-2].
#[tokio::test]
async fn a_full_stream_holds_qos1_and_qos2_back() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let slow = Client::connect(options(addr, ProtocolVersion::V5).subscription_capacity(2))
        .await
        .expect("connects");
    let mut stream = slow
        .subscribe("flood", QoS::ExactlyOnce)
        .await
        .expect("subscribed");
    let publisher = Client::connect(options(addr, ProtocolVersion::V5))
        .await
        .expect("connects");
    let mut sent = Vec::new();
    for n in 0..60 {
        let qos = if n % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        let payload = format!("f{n}");
        within(
            "publish",
            publisher.publish("flood", payload.clone(), qos, false),
        )
        .await
        .expect("published");
        sent.push((payload, qos));
    }
    // The stream is full long before this; nothing was read yet.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(payloads(&mut stream, sent.len()).await, sent);
    assert_eq!(stream.dropped(), 0);

    // The connection is still usable in both directions.
    within(
        "publish",
        slow.publish("flood", "after", QoS::AtLeastOnce, false),
    )
    .await
    .expect("published");
    assert_eq!(
        payloads(&mut stream, 1).await,
        [("after".to_owned(), QoS::AtLeastOnce)]
    );
}

/// An application that publishes (and waits for PUBACK) before it reads its full stream
/// does not deadlock: the client goes on reading, and only the messages for the full stream
/// wait, unacknowledged.
#[tokio::test]
async fn a_full_stream_does_not_stop_acknowledgements_of_own_publishes() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let app = Client::connect(options(addr, ProtocolVersion::V5).subscription_capacity(1))
        .await
        .expect("connects");
    let mut requests = app
        .subscribe("requests", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let other = Client::connect(options(addr, ProtocolVersion::V5))
        .await
        .expect("connects");
    for n in 0..10 {
        within(
            "publish",
            other.publish("requests", format!("r{n}"), QoS::AtLeastOnce, false),
        )
        .await
        .expect("published");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in 0..3 {
        within(
            "own publish while the stream is full",
            app.publish("replies", format!("p{n}"), QoS::AtLeastOnce, false),
        )
        .await
        .expect("PUBACK arrives");
    }
    let got = payloads(&mut requests, 10).await;
    let want: Vec<(String, QoS)> = (0..10)
        .map(|n| (format!("r{n}"), QoS::AtLeastOnce))
        .collect();
    assert_eq!(got, want);
}

/// QoS 0 is the exception: a full stream drops and counts it rather than stalling.
#[tokio::test]
async fn a_full_stream_drops_and_counts_qos0() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let client = Client::connect(options(addr, ProtocolVersion::V5).subscription_capacity(1))
        .await
        .expect("connects");
    let mut stream = client
        .subscribe("q0", QoS::AtMostOnce)
        .await
        .expect("subscribed");
    for n in 0..5 {
        client
            .publish("q0", format!("{n}"), QoS::AtMostOnce, false)
            .await
            .expect("published");
    }
    // A QoS 1 round trip after them: once it is back, the QoS 0 ones were all handled.
    let mut marker = client
        .subscribe("marker", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    client
        .publish("marker", "m", QoS::AtLeastOnce, false)
        .await
        .expect("published");
    within("marker", marker.recv()).await.expect("marker");
    assert_eq!(stream.dropped(), 4);
    assert_eq!(payloads(&mut stream, 1).await[0].0, "0");
}
