//! The broker's limits over real sockets: packet size, topic size, connections, queues,
//! and a subscriber that stops reading.
//!
//! Every limit has a config key (`limits.*`); these tests set small values and check what
//! happens at and past them. Rule ids are MQTT 5.0's.

#[macro_use]
mod common;

use std::num::NonZeroU32;

use common::*;
use tern_broker::metrics::Metrics;
use tern_codec::{Packet, ProtocolVersion, QoS, ReasonCode};

/// A PUBLISH (QoS 0) of exactly `size` bytes on the wire.
fn publish_of_size(version: ProtocolVersion, topic: &str, size: usize) -> Vec<u8> {
    let fixed = 1 + 2; // type byte and a two byte remaining length (128..16383)
    let properties = usize::from(version.is_v5());
    let payload = size - fixed - 2 - topic.len() - properties;
    let bytes = encode(
        &Packet::Publish(publish(topic, &"x".repeat(payload), QoS::AtMostOnce, 0)),
        version,
    );
    assert_eq!(bytes.len(), size);
    bytes
}

/// [MQTT-3.2.2-15]: a packet over the broker's Maximum Packet Size (told to 5.0 clients in
/// CONNACK) ends the connection, with DISCONNECT 0x95 for 5.0 (§4.13); one of exactly that
/// size is accepted. The size is checked from the fixed header, before the body is read.
async fn packet_over_maximum_size_disconnects_mqtt_3_2_2_15(version: ProtocolVersion) {
    let mut config = config();
    config.limits.max_packet_size = 1024;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let (mut client, connack) =
        Client::connect_with(addr, connect_packet(version, "big", true)).await;
    if version.is_v5() {
        assert_eq!(
            connack.properties.maximum_packet_size,
            NonZeroU32::new(1024)
        );
    }
    client
        .send_raw(&publish_of_size(version, "big/t", 1024))
        .await;
    client.ping().await;
    // Only the fixed header of a 2,003 byte PUBLISH: refused before the body arrives.
    client.send_raw(&[0x30, 0xD0, 0x0F]).await;
    client
        .expect_disconnect(ReasonCode::PacketTooLarge, "[MQTT-3.2.2-15]")
        .await;
}

/// [MQTT-3.1.2-27, MQTT-3.1.2-28] (5.0): the broker does not send a client a packet over
/// the client's Maximum Packet Size; it drops that message for that client and goes on.
#[tokio::test]
async fn client_maximum_packet_size_is_respected_mqtt_3_1_2_27() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let mut connect = connect_packet(version, "small", true);
    connect.properties.maximum_packet_size = NonZeroU32::new(64);
    let (mut small, _) = Client::connect_with(addr, connect).await;
    small.subscribe("mps/t", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("mps/t", &"x".repeat(100), QoS::AtLeastOnce)
        .await;
    publisher
        .publish_simple("mps/t", "fits", QoS::AtLeastOnce)
        .await;
    small
        .expect_message(
            "mps/t",
            "fits",
            "[MQTT-3.1.2-28] too large for the client: dropped",
        )
        .await;
}

/// [MQTT-3.1.2-27, MQTT-3.1.2-28] (5.0) on resumption: an unacknowledged PUBLISH too large
/// for the Maximum Packet Size of the new connection is not resent but dropped, as if
/// delivered; the rest of the session carries on.
#[tokio::test]
async fn resent_publish_respects_the_new_maximum_packet_size_mqtt_3_1_2_27() {
    let version = ProtocolVersion::V5;
    let broker = broker().await;
    let addr = broker.local_addr();
    let (mut client, _) = Client::connect_with(addr, persistent(version, "shrink", false)).await;
    client.subscribe("shrink/t", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("shrink/t", &"x".repeat(100), QoS::AtLeastOnce)
        .await;
    client.recv_publish().await; // not acknowledged
    drop(client);
    wait_online(&broker, 1).await;

    let mut connect = persistent(version, "shrink", false);
    connect.properties.maximum_packet_size = NonZeroU32::new(64);
    let (mut client, connack) = Client::connect_with(addr, connect).await;
    assert!(connack.session_present);
    publisher
        .publish_simple("shrink/t", "fits", QoS::AtLeastOnce)
        .await;
    client
        .expect_message(
            "shrink/t",
            "fits",
            "[MQTT-3.1.2-27] the large one is not resent",
        )
        .await;
}

/// (5.0) `limits.receive_maximum` is the broker's Receive Maximum, told in CONNACK: a
/// client with more unreleased QoS 2 PUBLISHes than that breaks [MQTT-3.3.4-7] and is
/// disconnected with 0x93 (§3.3.4).
#[tokio::test]
async fn receive_maximum_exceeded_disconnects_mqtt_3_3_4_7() {
    let mut config = config();
    config.limits.receive_maximum = 2;
    let broker = start(config).await;
    let version = ProtocolVersion::V5;
    let (mut client, connack) =
        Client::connect_with(broker.local_addr(), connect_packet(version, "eager", true)).await;
    assert_eq!(
        connack.properties.receive_maximum,
        std::num::NonZeroU16::new(2)
    );
    for id in 1..=2 {
        client
            .send(Packet::Publish(publish("rx/t", "x", QoS::ExactlyOnce, id)))
            .await;
        assert!(matches!(client.recv().await, Packet::PubRec(r) if r.packet_id == pid(id)));
    }
    client
        .send(Packet::Publish(publish("rx/t", "x", QoS::ExactlyOnce, 3)))
        .await;
    client
        .expect_disconnect(ReasonCode::ReceiveMaximumExceeded, "[MQTT-3.3.4-7]")
        .await;
}

/// Topic names over `limits.max_topic_length` or `limits.max_topic_levels` end the
/// connection (5.0: DISCONNECT 0x90 Topic Name invalid).
async fn topic_over_limits_disconnects(version: ProtocolVersion) {
    let mut config = config();
    config.limits.max_topic_length = 32;
    config.limits.max_topic_levels = 4;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let mut fine = Client::connect(addr, version, "fine").await;
    fine.publish_simple("a/b/c/d", "at the limits", QoS::AtLeastOnce)
        .await;
    fine.publish_simple(&"t".repeat(32), "at the limits", QoS::AtLeastOnce)
        .await;
    for topic in ["a/b/c/d/e".to_owned(), "t".repeat(33)] {
        let mut client = Client::connect(addr, version, "over").await;
        client
            .send(Packet::Publish(publish(&topic, "x", QoS::AtMostOnce, 0)))
            .await;
        client
            .expect_disconnect(ReasonCode::TopicNameInvalid, &format!("topic {topic}"))
            .await;
    }
}

/// A client identifier over `limits.max_client_id_length` is refused: CONNACK 0x85 (5.0)
/// or 0x02 (3.1.1), then the connection closes [MQTT-3.1.3-8].
async fn client_id_over_limit_is_refused_mqtt_3_1_3_8(version: ProtocolVersion) {
    let mut config = config();
    config.limits.max_client_id_length = 23;
    let broker = start(config).await;
    let addr = broker.local_addr();
    Client::connect(addr, version, &"c".repeat(23)).await;
    let connect = connect_packet(version, &"c".repeat(24), true);
    let (mut client, connack) = Client::connect_with(addr, connect).await;
    assert_eq!(
        connack.reason_code,
        ReasonCode::ClientIdentifierNotValid,
        "[MQTT-3.1.3-8]"
    );
    assert!(!connack.session_present, "[MQTT-3.2.2-6]");
    client.expect_closed("[MQTT-3.1.3-8]").await;
}

/// `limits.max_connections`: past the limit a new connection is closed at once; when a
/// client leaves, its place is free again.
async fn max_connections_closes_extra_connections(version: ProtocolVersion) {
    let mut config = config();
    config.limits.max_connections = 2;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let first = Client::connect(addr, version, "one").await;
    let mut second = Client::connect(addr, version, "two").await;
    let mut third = Client::open(addr, version).await;
    third.expect_closed("max_connections reached").await;
    second.ping().await;

    first.disconnect().await;
    let mut attempts = 0;
    let mut fourth = loop {
        attempts += 1;
        match Client::try_connect(addr, connect_packet(version, "four", true)).await {
            Some((client, connack)) => {
                assert_eq!(connack.reason_code, ReasonCode::Success);
                break client;
            }
            None if attempts < 100 => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await
            }
            None => panic!("the place of a departed client never became free"),
        }
    };
    fourth.ping().await;
}

/// `limits.max_queued_messages`: an offline persistent session queues that many QoS 1
/// messages and drops the rest, counting them (`$SYS/broker/publish/messages/dropped`);
/// the queued ones arrive, in order, when the client comes back.
async fn offline_queue_stops_at_its_limit(version: ProtocolVersion) {
    let mut config = config();
    config.limits.max_queued_messages = 5;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let (mut client, _) = Client::connect_with(addr, persistent(version, "away", false)).await;
    client.subscribe("queue/t", QoS::AtLeastOnce).await;
    client.disconnect().await;
    wait_online(&broker, 0).await;

    let mut publisher = Client::connect(addr, version, "pub").await;
    for i in 1..=8 {
        publisher
            .publish_simple("queue/t", &i.to_string(), QoS::AtLeastOnce)
            .await;
    }
    let metrics = &broker.hub().metrics;
    assert_eq!(
        Metrics::get(&metrics.publish_dropped),
        3,
        "8 published, 5 queued"
    );
    let sys = tern_broker::sys::snapshot(broker.hub());
    let dropped = sys
        .iter()
        .find(|(topic, _)| *topic == "$SYS/broker/publish/messages/dropped")
        .map(|(_, value)| value.as_str());
    assert_eq!(dropped, Some("3"));

    let (mut client, connack) =
        Client::connect_with(addr, persistent(version, "away", false)).await;
    assert!(connack.session_present, "[MQTT-3.2.2-3]");
    let got = client.receive_messages(5).await;
    let payloads: Vec<&str> = got.iter().map(text).collect();
    assert_eq!(
        payloads,
        ["1", "2", "3", "4", "5"],
        "the first five, in order"
    );
    publisher
        .publish_simple("queue/t", "marker", QoS::AtLeastOnce)
        .await;
    client
        .expect_message("queue/t", "marker", "nothing past the queue limit")
        .await;
}

/// A subscriber that never reads does not hold up anyone else for long: its socket, write
/// buffer and queue fill, the publisher waits `limits.publish_wait` for room, and past that
/// the slow one's messages are dropped while the publisher's acknowledgements and another
/// subscriber's deliveries keep flowing.
async fn slow_subscriber_does_not_block_others(version: ProtocolVersion) {
    const N: usize = 400;
    let payload = "p".repeat(16 * 1024); // 400 x 16 KiB: far more than the slow one can hold
    let mut config = config();
    config.limits.max_queued_messages = 50;
    config.limits.publish_wait = 1;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let mut slow = Client::open_small(addr, version).await;
    slow.send(Packet::Connect(Box::new(connect_packet(
        version, "slow", true,
    ))))
    .await;
    assert_eq!(slow.recv_connack().await.reason_code, ReasonCode::Success);
    slow.subscribe("slow/t", QoS::AtMostOnce).await;
    let mut fast = Client::subscriber(addr, version, "fast", &[("slow/t", QoS::AtMostOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;

    let publish_all = async {
        for i in 0..N {
            let p = publish("slow/t", &payload, QoS::AtLeastOnce, (i % 1000 + 1) as u16);
            publisher.publish(p).await;
        }
    };
    let (_, received) = tokio::join!(publish_all, fast.receive_messages(N));
    assert_eq!(received.len(), N);
    assert!(received.iter().all(|p| p.payload.len() == payload.len()));
    let dropped = Metrics::get(&broker.hub().metrics.publish_dropped);
    assert!(dropped > 0, "the slow subscriber's queue overflowed");
    drop(slow);
}

/// A QoS 1 subscriber whose queue is full holds its publishers back instead of losing what
/// they were told was delivered [MQTT-4.3.2-4]: the publisher's PUBACKs stop while the
/// subscriber does not read, and once it reads every message arrives, in order
/// [MQTT-4.6.0-6], none dropped.
async fn full_queue_holds_the_publisher_back_and_loses_nothing(version: ProtocolVersion) {
    const N: u16 = 60;
    let mut config = config();
    config.limits.max_queued_messages = 5;
    config.limits.max_inflight = 2;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let mut subscriber =
        Client::subscriber(addr, version, "sub", &[("bp/t", QoS::AtLeastOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for i in 1..=N {
        let message = publish("bp/t", &i.to_string(), QoS::AtLeastOnce, i);
        publisher.send(Packet::Publish(message)).await;
    }
    // The subscriber reads nothing yet: two messages in flight, five queued, and the
    // publisher's acknowledgements wait for room.
    let mut acked = 0;
    while let Some(packet) = publisher.recv_within(QUIET).await {
        assert!(matches!(packet, Packet::PubAck(_)), "{packet:?}");
        acked += 1;
    }
    assert!(
        acked <= 8,
        "{acked} PUBACKs while the subscriber's queue was full"
    );
    let received = subscriber.receive_messages(usize::from(N)).await;
    let payloads: Vec<String> = received.iter().map(|p| text(p).to_owned()).collect();
    let expected: Vec<String> = (1..=N).map(|i| i.to_string()).collect();
    assert_eq!(payloads, expected, "[MQTT-4.6.0-6] all, in order");
    for _ in acked..u32::from(N) {
        match publisher.recv().await {
            Packet::PubAck(_) => {}
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    assert_eq!(Metrics::get(&broker.hub().metrics.publish_dropped), 0);
}

/// A publisher that disconnects while its messages wait for room in a full queue: the
/// messages it sent before its DISCONNECT still reach the subscriber once it reads, in
/// order [MQTT-4.6.0-6], none dropped. (The connection used to end at once and drop what
/// waited, which lost a few QoS 0 messages at the end of every fast fan-in.)
async fn messages_waiting_for_room_outlive_their_publishers_disconnect(version: ProtocolVersion) {
    const N: u16 = 40;
    let mut config = config();
    config.limits.max_queued_messages = 5;
    config.limits.max_inflight = 2;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let mut subscriber =
        Client::subscriber(addr, version, "sub", &[("dw/t", QoS::AtLeastOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    // Every PUBLISH and the DISCONNECT in one write: the broker reads them together.
    let mut bytes = Vec::new();
    for i in 1..=N {
        let message = publish("dw/t", &i.to_string(), QoS::AtLeastOnce, i);
        bytes.extend(encode(&Packet::Publish(message), version));
    }
    bytes.extend(encode(&Packet::Disconnect(Default::default()), version));
    publisher.send_raw(&bytes).await;
    tokio::time::sleep(QUIET).await;
    let received = subscriber.receive_messages(usize::from(N)).await;
    let payloads: Vec<String> = received.iter().map(|p| text(p).to_owned()).collect();
    let expected: Vec<String> = (1..=N).map(|i| i.to_string()).collect();
    assert_eq!(payloads, expected, "[MQTT-4.6.0-6] all, in order");
    assert_eq!(Metrics::get(&broker.hub().metrics.publish_dropped), 0);
}

/// `limits.publish_wait`: a subscriber that never reads holds its publishers back that
/// long, then its copies are dropped and counted, and the publisher goes on.
async fn stuck_subscriber_is_dropped_after_publish_wait(version: ProtocolVersion) {
    const N: u16 = 30;
    let mut config = config();
    config.limits.max_queued_messages = 5;
    config.limits.max_inflight = 2;
    config.limits.publish_wait = 1;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let _stuck = Client::subscriber(addr, version, "stuck", &[("st/t", QoS::AtLeastOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    let started = std::time::Instant::now();
    for i in 1..=N {
        publisher
            .publish(publish("st/t", "x", QoS::AtLeastOnce, i))
            .await;
    }
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "the publisher waited for room first ({waited:?})"
    );
    assert!(
        waited < std::time::Duration::from_secs(3),
        "then the stuck subscriber's copies were dropped at once ({waited:?})"
    );
    let dropped = Metrics::get(&broker.hub().metrics.publish_dropped);
    assert_eq!(
        dropped,
        u64::from(N) - 7,
        "2 in flight, 5 queued, the rest dropped"
    );
}

/// The default outbound window: a subscriber that acknowledges nothing gets
/// `limits.max_inflight` (128) QoS 1 messages, the rest wait in its queue; each PUBACK lets
/// one more go. An MQTT 5.0 client that sends no Receive Maximum allows 65,535 (§3.1.2.11.3),
/// so the broker's window is the smaller; a smaller Receive Maximum would cap it
/// [MQTT-3.3.4-9].
async fn default_window_is_128_unacknowledged_messages(version: ProtocolVersion) {
    const WINDOW: usize = 128;
    let config = config();
    assert_eq!(usize::from(config.limits.max_inflight), WINDOW);
    let broker = start(config).await;
    let addr = broker.local_addr();
    let mut subscriber =
        Client::subscriber(addr, version, "sub", &[("win/t", QoS::AtLeastOnce)]).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    for i in 1..=200u16 {
        let message = publish("win/t", &i.to_string(), QoS::AtLeastOnce, i);
        publisher.send(Packet::Publish(message)).await;
    }
    let mut ids = Vec::new();
    while let Some(packet) = subscriber.recv_within(QUIET).await {
        match packet {
            Packet::Publish(p) => ids.push(p.packet_id.expect("QoS 1")),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    assert_eq!(ids.len(), WINDOW, "the window, and no more, unacknowledged");
    subscriber
        .send(Packet::PubAck(tern_codec::PubResponse::new(ids[0])))
        .await;
    match subscriber.recv().await {
        Packet::Publish(p) => assert_eq!(text(&p), (WINDOW + 1).to_string()),
        other => panic!("expected the next PUBLISH, got {other:?}"),
    }
    subscriber
        .expect_nothing("one PUBACK frees one place")
        .await;
}

per_version!(
    default_window_is_128_unacknowledged_messages,
    full_queue_holds_the_publisher_back_and_loses_nothing,
    messages_waiting_for_room_outlive_their_publishers_disconnect,
    stuck_subscriber_is_dropped_after_publish_wait,
    packet_over_maximum_size_disconnects_mqtt_3_2_2_15,
    topic_over_limits_disconnects,
    client_id_over_limit_is_refused_mqtt_3_1_3_8,
    max_connections_closes_extra_connections,
    offline_queue_stops_at_its_limit,
    slow_subscriber_does_not_block_others,
);

/// Slots in this process's table of file descriptors (`FDSize` in `/proc/self/status`).
fn descriptor_table_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("FDSize:"))
        .and_then(|size| size.trim().parse().ok())
        .expect("FDSize in /proc/self/status")
}

/// `limits.max_connections`: the broker grows the process's descriptor table at start to
/// what its connections need, so that a burst of them never waits for the kernel to grow
/// it (in a multi-threaded process every growth waits for an RCU grace period, which held
/// a burst of 10,000 connections up for a quarter of its time; docs/PERFORMANCE.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_descriptor_table_is_grown_at_start_for_max_connections() {
    let before = descriptor_table_size();
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let connections = before * 4;
    assert!(
        connections + 64 <= limit,
        "the open-file limit ({limit}) leaves no room to see the table ({before} slots) grow"
    );
    let mut config = config();
    config.limits.max_connections = connections as usize;
    let _broker = start(config).await;
    let after = descriptor_table_size();
    assert!(
        after >= connections + 64,
        "{after} descriptor slots after start, for {connections} connections"
    );
}
