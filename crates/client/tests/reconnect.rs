//! The broker goes away and comes back on the same port: the client reconnects, renews its
//! subscriptions, sends what was published meanwhile from the offline buffer, and delivers
//! QoS 2 messages once. A full offline buffer is an error at once.

mod common;

use std::time::Duration;

use common::{broker, broker_on, options, within};
use tern_client::{
    Backoff, Client, ConnectionState, ProtocolVersion, PublishErrorKind, QoS, Subscription,
};

fn fast_backoff() -> Option<Backoff> {
    Some(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    })
}

async fn wait_state(client: &Client, what: &str, want: impl Fn(&ConnectionState) -> bool) {
    let mut state = client.state();
    within(what, state.wait_for(want))
        .await
        .expect("the task runs");
}

async fn expect_payloads(stream: &mut Subscription, payloads: &[String]) {
    for payload in payloads {
        let message = within("message", stream.recv()).await.expect("a message");
        assert_eq!(
            message.payload_str(),
            Some(payload.as_str()),
            "on {}",
            stream.filter()
        );
    }
}

async fn restart_mid_stream(version: ProtocolVersion) {
    let first = broker().await;
    let addr = first.local_addr();
    let client = Client::connect(options(addr, version).reconnect(fast_backoff()))
        .await
        .expect("connects");
    let mut at_least_once = client
        .subscribe("restart/1", QoS::AtLeastOnce)
        .await
        .expect("sub");
    let mut exactly_once = client
        .subscribe("restart/2", QoS::ExactlyOnce)
        .await
        .expect("sub");
    let before: Vec<String> = (0..3).map(|n| format!("before-{n}")).collect();
    for payload in &before {
        client
            .publish("restart/1", payload.clone(), QoS::AtLeastOnce, false)
            .await
            .expect("pub");
        client
            .publish("restart/2", payload.clone(), QoS::ExactlyOnce, false)
            .await
            .expect("pub");
    }
    expect_payloads(&mut at_least_once, &before).await;
    expect_payloads(&mut exactly_once, &before).await;

    first.shutdown().await;
    wait_state(&client, "disconnected", |s| !s.is_connected()).await;

    // Published during the outage: they wait in the offline buffer.
    let during: Vec<String> = (0..5).map(|n| format!("during-{n}")).collect();
    let mut pending = Vec::new();
    for payload in &during {
        for (topic, qos) in [
            ("restart/1", QoS::AtLeastOnce),
            ("restart/2", QoS::ExactlyOnce),
        ] {
            let client = client.clone();
            let payload = payload.clone();
            pending.push(tokio::spawn(async move {
                client.publish(topic, payload, qos, false).await
            }));
        }
        // One at a time, so that the buffer keeps the order they were made in.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!client.state().borrow().is_connected(), "still down");

    let second = broker_on(addr.port()).await;
    wait_state(&client, "reconnected", |s| s.is_connected()).await;
    for publish in pending {
        within("buffered publish", publish)
            .await
            .expect("task")
            .expect("delivered");
    }
    expect_payloads(&mut at_least_once, &during).await;
    expect_payloads(&mut exactly_once, &during).await;
    let duplicate = tokio::time::timeout(Duration::from_millis(200), exactly_once.recv()).await;
    assert!(duplicate.is_err(), "no QoS 2 duplicate: {duplicate:?}");

    client.disconnect().await;
    second.shutdown().await;
}

#[tokio::test]
async fn broker_restart_mid_stream_v311() {
    restart_mid_stream(ProtocolVersion::V3_1_1).await;
}

#[tokio::test]
async fn broker_restart_mid_stream_v5() {
    restart_mid_stream(ProtocolVersion::V5).await;
}

#[tokio::test]
async fn a_full_offline_buffer_is_an_error_not_a_hang() {
    let broker = broker().await;
    let options = options(broker.local_addr(), ProtocolVersion::V5)
        .reconnect(fast_backoff())
        .offline_buffer(2);
    let client = Client::connect(options).await.expect("connects");
    broker.shutdown().await;
    wait_state(&client, "disconnected", |s| !s.is_connected()).await;

    let mut waiting = Vec::new();
    for n in 0..2 {
        let client = client.clone();
        waiting.push(tokio::spawn(async move {
            client
                .publish("full", format!("{n}"), QoS::AtLeastOnce, false)
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = within(
        "third publish",
        client.publish("full", "2", QoS::AtMostOnce, false),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), PublishErrorKind::BufferFull);
    assert_eq!(err.to_string(), "offline buffer full");

    client.disconnect().await;
    for publish in waiting {
        let err = within("closed", publish).await.expect("task").unwrap_err();
        assert_eq!(err.kind(), PublishErrorKind::Closed);
    }
    assert_eq!(*client.state().borrow(), ConnectionState::Closed);
}

#[tokio::test]
async fn without_reconnect_a_lost_connection_closes_the_client() {
    let broker = broker().await;
    let options = options(broker.local_addr(), ProtocolVersion::V3_1_1).reconnect(None);
    let client = Client::connect(options).await.expect("connects");
    let mut stream = client.subscribe("x", QoS::AtMostOnce).await.expect("sub");
    broker.shutdown().await;
    wait_state(&client, "closed", |s| *s == ConnectionState::Closed).await;
    assert!(within("stream end", stream.recv()).await.is_none());
    let err = client
        .publish("x", "y", QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PublishErrorKind::Closed);
}
