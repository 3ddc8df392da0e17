//! `$SYS/broker/...` over real sockets: the topics mosquitto names, published retained every
//! `sys_interval` seconds (1 here), and not matched by `#` [MQTT-4.7.2-1].
//!
//! The tests run on tokio's paused clock, so a `$SYS` interval passes without waiting.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use tern_broker::BrokerHandle;
use tern_codec::{ProtocolVersion, QoS};

/// A broker publishing `$SYS` every second, once its first round is in the retained store.
async fn sys_broker() -> BrokerHandle {
    let mut config = config();
    config.sys_interval = 1;
    let broker = start(config).await;
    let count = tern_broker::sys::snapshot(broker.hub()).len();
    let retained = &broker.hub().retained;
    wait_until("the first $SYS round is retained", || {
        retained.len() >= count
    })
    .await;
    broker
}

/// Receives one round of `$SYS/broker/#` (as many messages as there are topics) as a map
/// of topic to payload, checking every retain flag against `retain`.
async fn sys_round(client: &mut Client, topics: usize, retain: bool) -> BTreeMap<String, String> {
    let mut round = BTreeMap::new();
    while round.len() < topics {
        let p = client.recv_publish().await;
        assert_eq!(p.retain, retain, "RETAIN on {}", p.topic.as_str());
        round.insert(p.topic.as_str().to_owned(), text(&p).to_owned());
    }
    round
}

fn number(round: &BTreeMap<String, String>, topic: &str) -> u64 {
    let value = round
        .get(topic)
        .unwrap_or_else(|| panic!("{topic} missing"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{topic} = {value:?} is not a number"))
}

/// A new subscriber to `$SYS/broker/#` gets every topic retained [MQTT-3.3.1-9], then a
/// fresh round each interval with the retain flag cleared [MQTT-3.3.1-12], whose counters
/// count this client.
async fn sys_topics_are_published_retained(version: ProtocolVersion) {
    tokio::time::pause();
    let broker = sys_broker().await;
    let topics = tern_broker::sys::snapshot(broker.hub()).len();
    let mut client = Client::connect(broker.local_addr(), version, "sys").await;
    client.subscribe("$SYS/broker/#", QoS::AtMostOnce).await;

    let first = sys_round(&mut client, topics, true).await;
    assert_eq!(
        first["$SYS/broker/version"],
        format!("tern version {}", env!("CARGO_PKG_VERSION"))
    );
    let uptime = &first["$SYS/broker/uptime"];
    assert!(
        uptime
            .strip_suffix(" seconds")
            .is_some_and(|n| n.parse::<u64>().is_ok()),
        "uptime {uptime:?}"
    );
    for topic in [
        "messages/received",
        "messages/sent",
        "bytes/received",
        "clients/total",
    ] {
        number(&first, &format!("$SYS/broker/{topic}"));
    }

    client
        .publish_simple("counted", "x", QoS::AtLeastOnce)
        .await;
    // A round may already have been on its way; the one after the PUBLISH counts it.
    let mut next = sys_round(&mut client, topics, false).await;
    if number(&next, "$SYS/broker/publish/messages/received") == 0 {
        next = sys_round(&mut client, topics, false).await;
    }
    assert_eq!(number(&next, "$SYS/broker/clients/connected"), 1);
    assert_eq!(number(&next, "$SYS/broker/subscriptions/count"), 1);
    assert!(number(&next, "$SYS/broker/publish/messages/received") >= 1);
    assert!(
        number(&next, "$SYS/broker/messages/received")
            > number(&first, "$SYS/broker/messages/received"),
        "messages/received grows"
    );
    let later: u64 = next["$SYS/broker/uptime"]
        .trim_end_matches(" seconds")
        .parse()
        .expect("uptime in seconds");
    assert!(later >= 1, "uptime advances");
}

/// [MQTT-4.7.2-1]: `#` does not match `$SYS` topics, so a catch-all subscriber sees none of
/// them.
async fn hash_does_not_match_sys_mqtt_4_7_2_1(version: ProtocolVersion) {
    tokio::time::pause();
    let broker = sys_broker().await;
    let mut client = Client::connect(broker.local_addr(), version, "all").await;
    client.subscribe("#", QoS::AtMostOnce).await;
    client.subscribe("+/broker/#", QoS::AtMostOnce).await;
    client
        .expect_nothing_for(
            Duration::from_millis(2500),
            "[MQTT-4.7.2-1] no $SYS for # or +",
        )
        .await;
}

/// `sys_interval = 0` turns `$SYS` off.
#[tokio::test(start_paused = true)]
async fn sys_interval_zero_publishes_nothing() {
    let broker = broker().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(broker.hub().retained.is_empty(), "no $SYS retained");
}

per_version!(
    sys_topics_are_published_retained,
    hash_does_not_match_sys_mqtt_4_7_2_1,
);
