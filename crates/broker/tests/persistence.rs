//! The durable store across restarts (`docs/persistence.md`): what a broker acknowledged is
//! there after it stops and starts again on the same data directory; what is not its to
//! keep is not stored; a store it cannot read stops it with a message naming the file.
//!
//! Each test has its own data directory. Restarts here are graceful; the crash tests
//! (SIGKILL at random moments) are in `crates/cli/tests/crash.rs`.

#[macro_use]
mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use common::*;
use tern_broker::store::{Store, StoreError};
use tern_broker::{BrokerHandle, Config, StartError};
use tern_codec::{Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};

/// A fresh, empty data directory for one test.
fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The test configuration with the store on, in `dir`.
fn stored(dir: &std::path::Path) -> Config {
    let mut config = config();
    config.persistence = true;
    config.data_dir = dir.to_path_buf();
    config
}

/// Stops the broker gracefully and starts another on the same configuration.
async fn restart(broker: BrokerHandle, config: &Config) -> BrokerHandle {
    broker.shutdown().await;
    start(config.clone()).await
}

async fn reconnect(
    addr: std::net::SocketAddr,
    version: ProtocolVersion,
    id: &str,
    present: bool,
) -> Client {
    let (client, connack) = Client::connect_with(addr, persistent(version, id, false)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(
        connack.session_present, present,
        "[MQTT-3.2.2-2] Session Present after a restart"
    );
    client
}

/// [MQTT-3.3.1-5]: the retained message is stored by the server; it still answers a new
/// subscription [MQTT-3.3.1-9] after a restart, and a deletion [MQTT-3.3.1-6] is kept too.
async fn retained_messages_survive_a_restart_mqtt_3_3_1_5(version: ProtocolVersion) {
    let dir = data_dir(&format!("retained-{version:?}"));
    let config = stored(&dir);
    let broker = start(config.clone()).await;
    let mut publisher = Client::connect(broker.local_addr(), version, "pub").await;
    let mut kept = publish("r/kept", "21.5", QoS::AtLeastOnce, 1);
    kept.retain = true;
    publisher.publish(kept).await;
    let mut gone = publish("r/gone", "x", QoS::AtLeastOnce, 2);
    gone.retain = true;
    publisher.publish(gone).await;
    let mut delete = publish("r/gone", "", QoS::AtLeastOnce, 3);
    delete.retain = true;
    publisher.publish(delete).await;

    let broker = restart(broker, &config).await;
    let mut subscriber = Client::connect(broker.local_addr(), version, "sub").await;
    subscriber.subscribe("r/#", QoS::AtLeastOnce).await;
    let message = subscriber
        .expect_message("r/kept", "21.5", "[MQTT-3.3.1-9] retained after restart")
        .await;
    assert!(message.retain, "[MQTT-3.3.1-9] retain flag set");
    subscriber
        .expect_nothing("[MQTT-3.3.1-6] a deleted retained message stays deleted")
        .await;
    broker.shutdown().await;
}

/// [MQTT-4.1.0-1]: a persistent session (subscriptions included) outlives a restart:
/// Session Present is 1 [MQTT-3.2.2-2] and messages published after the restart arrive
/// without a new SUBSCRIBE.
async fn persistent_sessions_survive_a_restart_mqtt_4_1_0_1(version: ProtocolVersion) {
    let dir = data_dir(&format!("session-{version:?}"));
    let config = stored(&dir);
    let broker = start(config.clone()).await;
    let mut client = reconnect(broker.local_addr(), version, "keeper", false).await;
    client.subscribe("s/+", QoS::ExactlyOnce).await;
    client.disconnect().await;

    let broker = restart(broker, &config).await;
    let mut client = reconnect(broker.local_addr(), version, "keeper", true).await;
    let mut publisher = Client::connect(broker.local_addr(), version, "pub").await;
    publisher
        .publish_simple("s/1", "after", QoS::ExactlyOnce)
        .await;
    let message = client
        .expect_message("s/1", "after", "[MQTT-4.1.0-1] subscription kept")
        .await;
    assert_eq!(message.qos, QoS::ExactlyOnce);
    client.settle().await;
    broker.shutdown().await;
}

/// [MQTT-4.4.0-1]/[MQTT-4.6.0-6]: QoS 1 and 2 messages queued for an offline session are
/// stored and delivered after a restart, in the order they were published.
async fn queued_messages_survive_a_restart_in_order_mqtt_4_6_0_6(version: ProtocolVersion) {
    let dir = data_dir(&format!("queued-{version:?}"));
    let config = stored(&dir);
    let broker = start(config.clone()).await;
    let mut client = reconnect(broker.local_addr(), version, "away", false).await;
    client.subscribe("q/t", QoS::ExactlyOnce).await;
    client.disconnect().await;
    let mut publisher = Client::connect(broker.local_addr(), version, "pub").await;
    for i in 0..10u16 {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        publisher
            .publish(publish("q/t", &format!("m{i}"), qos, i + 1))
            .await;
    }
    // Also a QoS 0 message: not kept for an offline session.
    publisher
        .publish_simple("q/t", "qos0", QoS::AtMostOnce)
        .await;

    let broker = restart(broker, &config).await;
    let mut client = reconnect(broker.local_addr(), version, "away", true).await;
    let received = client.receive_messages(10).await;
    let payloads: Vec<&str> = received.iter().map(text).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads, expected, "[MQTT-4.6.0-6] stored, in order");
    for (i, message) in received.iter().enumerate() {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        assert_eq!(message.qos, qos, "QoS kept");
    }
    client.expect_nothing("nothing more, no QoS 0").await;
    broker.shutdown().await;
}

/// [MQTT-4.4.0-1]: PUBLISHes sent but unacknowledged when the broker stopped are resent
/// after the restart with DUP set [MQTT-3.3.1-1] and their original packet identifiers; a
/// QoS 2 message whose PUBREL was sent gets its PUBREL again, never its PUBLISH
/// [MQTT-4.3.3-6].
async fn in_flight_messages_resent_with_original_ids_after_restart_mqtt_4_4_0_1(
    version: ProtocolVersion,
) {
    let dir = data_dir(&format!("inflight-{version:?}"));
    let config = stored(&dir);
    let broker = start(config.clone()).await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, version, "slow", false).await;
    client.subscribe("f/#", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(addr, version, "pub").await;
    publisher
        .publish_simple("f/released", "r", QoS::ExactlyOnce)
        .await;
    publisher
        .publish_simple("f/published", "p", QoS::ExactlyOnce)
        .await;
    publisher
        .publish_simple("f/one", "1", QoS::AtLeastOnce)
        .await;
    let released = client.recv_publish().await;
    client
        .send(Packet::PubRec(PubResponse::new(
            released.packet_id.expect("QoS 2 has an id"),
        )))
        .await;
    // The PUBREL and the two other PUBLISHes, in whatever order they come.
    let (mut rel_id, mut published, mut one) = (None, None, None);
    for _ in 0..3 {
        match client.recv().await {
            Packet::PubRel(rel) => rel_id = Some(rel.packet_id),
            Packet::Publish(p) if text(&p) == "p" => published = Some(p),
            Packet::Publish(p) if text(&p) == "1" => one = Some(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    let rel_id = rel_id.expect("[MQTT-4.3.3-4] PUBREL");
    let published = published.expect("the second PUBLISH");
    let one = one.expect("the QoS 1 PUBLISH");
    // Neither PUBCOMP nor PUBREC nor PUBACK: the broker stops with all three in flight.

    let broker = restart(broker, &config).await;
    let mut client = reconnect(broker.local_addr(), version, "slow", true).await;
    match client.recv().await {
        Packet::PubRel(rel) => assert_eq!(rel.packet_id, rel_id, "[MQTT-4.4.0-1] PUBREL"),
        other => panic!("[MQTT-4.3.3-6] expected the PUBREL again, got {other:?}"),
    }
    let again = client.recv_publish().await;
    assert!(again.dup, "[MQTT-3.3.1-1] DUP on a resent PUBLISH");
    assert_eq!(
        again.packet_id, published.packet_id,
        "[MQTT-4.4.0-1] same id"
    );
    assert_eq!(text(&again), "p");
    let again_one = client.recv_publish().await;
    assert!(again_one.dup, "[MQTT-3.3.1-1] DUP on a resent PUBLISH");
    assert_eq!(again_one.packet_id, one.packet_id, "[MQTT-4.4.0-1] same id");
    client.send(Packet::PubComp(PubResponse::new(rel_id))).await;
    client.ack(&again).await;
    client.ack(&again_one).await;
    client.settle().await;
    client
        .expect_nothing("each message once, the released one not again")
        .await;
    broker.shutdown().await;
}

/// [MQTT-4.3.3-10]: a QoS 2 packet identifier awaiting PUBREL is stored, so a PUBLISH sent
/// again after a restart is acknowledged but not delivered twice; the PUBREL then completes
/// it (PUBCOMP 0x00, not 0x92).
async fn inbound_qos2_awaiting_pubrel_survives_a_restart_mqtt_4_3_3_10(version: ProtocolVersion) {
    let dir = data_dir(&format!("awaiting-{version:?}"));
    let config = stored(&dir);
    let broker = start(config.clone()).await;
    let mut subscriber = reconnect(broker.local_addr(), version, "sub", false).await;
    subscriber.subscribe("a/t", QoS::AtLeastOnce).await;
    subscriber.disconnect().await;
    let mut publisher = reconnect(broker.local_addr(), version, "pub", false).await;
    let message = publish("a/t", "once", QoS::ExactlyOnce, 7);
    publisher.send(Packet::Publish(message.clone())).await;
    match publisher.recv().await {
        Packet::PubRec(rec) => assert_eq!(rec.packet_id, pid(7)),
        other => panic!("expected PUBREC, got {other:?}"),
    }

    let broker = restart(broker, &config).await;
    let mut publisher = reconnect(broker.local_addr(), version, "pub", true).await;
    let mut again = message;
    again.dup = true;
    publisher.send(Packet::Publish(again)).await;
    match publisher.recv().await {
        Packet::PubRec(rec) => assert_eq!(rec.packet_id, pid(7), "[MQTT-4.3.3-10] PUBREC"),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    publisher
        .send(Packet::PubRel(PubResponse::new(pid(7))))
        .await;
    match publisher.recv().await {
        Packet::PubComp(comp) => {
            assert_eq!(comp.packet_id, pid(7));
            assert_eq!(comp.reason_code, ReasonCode::Success, "[MQTT-4.3.3-11]");
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    let mut subscriber = reconnect(broker.local_addr(), version, "sub", true).await;
    subscriber
        .expect_message("a/t", "once", "delivered once")
        .await;
    subscriber
        .expect_nothing("[MQTT-4.3.3-10] no duplicate")
        .await;
    broker.shutdown().await;
}

per_version!(
    retained_messages_survive_a_restart_mqtt_3_3_1_5,
    persistent_sessions_survive_a_restart_mqtt_4_1_0_1,
    queued_messages_survive_a_restart_in_order_mqtt_4_6_0_6,
    in_flight_messages_resent_with_original_ids_after_restart_mqtt_4_4_0_1,
    inbound_qos2_awaiting_pubrel_survives_a_restart_mqtt_4_3_3_10,
);

/// [MQTT-3.1.2-4], [MQTT-4.1.0-2]: sessions that end with their connection (3.1.1 clean
/// session, 5.0 expiry 0) are never written; one whose expiry passes while the broker is
/// down is gone after the restart, from memory and disk.
#[tokio::test]
async fn clean_and_expired_sessions_leave_nothing_on_disk() {
    let dir = data_dir("clean");
    let config = stored(&dir);
    let broker = start(config.clone()).await;
    let addr = broker.local_addr();
    let mut clean = Client::connect(addr, ProtocolVersion::V3_1_1, "clean311").await;
    clean.subscribe("c/t", QoS::AtLeastOnce).await;
    let mut zero = Client::connect(addr, ProtocolVersion::V5, "clean5").await;
    zero.subscribe("c/t", QoS::AtLeastOnce).await;
    let mut brief = connect_packet(ProtocolVersion::V5, "brief", false);
    brief.properties.session_expiry_interval = Some(1);
    let (mut short, _) = Client::connect_with(addr, brief.clone()).await;
    short.subscribe("c/t", QoS::AtLeastOnce).await;
    short.disconnect().await;
    broker.shutdown().await;
    let summary = Store::check(&dir).expect("the store reads");
    assert_eq!(summary.sessions, 1, "only the expiring session: {summary}");

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let broker = start(config.clone()).await;
    let (_, connack) = Client::connect_with(broker.local_addr(), brief).await;
    assert!(
        !connack.session_present,
        "[MQTT-4.1.0-2] the session expired while the broker was down"
    );
    broker.shutdown().await;
    let summary = Store::check(&dir).expect("the store reads");
    assert_eq!(summary.subscriptions, 0, "{summary}");
}

/// The PUBACK of a QoS 1 message queued for a persistent session leaves only once the
/// store has committed it (`docs/persistence.md`).
#[tokio::test]
async fn puback_waits_for_the_commit() {
    let dir = data_dir("puback");
    let broker = start(stored(&dir)).await;
    let addr = broker.local_addr();
    let mut subscriber = reconnect(addr, ProtocolVersion::V5, "durable", false).await;
    subscriber.subscribe("d/t", QoS::AtLeastOnce).await;
    subscriber.disconnect().await;
    let store = broker.hub().store.clone().expect("a store");
    let before = store.stats().ops.load(Ordering::SeqCst);
    let mut publisher = Client::connect(addr, ProtocolVersion::V5, "pub").await;
    publisher.publish_simple("d/t", "m", QoS::AtLeastOnce).await;
    let after = store.stats().ops.load(Ordering::SeqCst);
    assert!(
        after > before,
        "PUBACK arrived before the queued message was committed ({before} -> {after})"
    );
    broker.shutdown().await;
}

/// Group commit: under load from several publishers one commit holds many operations.
#[tokio::test]
async fn many_messages_per_commit_under_load() {
    const PUBLISHERS: u16 = 4;
    const EACH: u16 = 250;
    let dir = data_dir("group");
    let mut config = stored(&dir);
    config.limits.max_queued_messages = 10_000;
    let broker = start(config).await;
    let addr = broker.local_addr();
    let mut subscriber = reconnect(addr, ProtocolVersion::V3_1_1, "sink", false).await;
    subscriber.subscribe("g/#", QoS::AtLeastOnce).await;
    subscriber.disconnect().await;
    let store = broker.hub().store.clone().expect("a store");
    let commits_before = store.stats().commits.load(Ordering::SeqCst);
    let ops_before = store.stats().ops.load(Ordering::SeqCst);

    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        tasks.push(tokio::spawn(async move {
            let id = format!("p{p}");
            let mut client = Client::connect(addr, ProtocolVersion::V3_1_1, &id).await;
            // Pipelined: every PUBLISH sent before the first PUBACK is read.
            for i in 1..=EACH {
                let message = publish(&format!("g/{p}"), "x", QoS::AtLeastOnce, i);
                client.send(Packet::Publish(message)).await;
            }
            for _ in 1..=EACH {
                match client.recv().await {
                    Packet::PubAck(_) => {}
                    other => panic!("expected PUBACK, got {other:?}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("publisher");
    }
    let commits = store.stats().commits.load(Ordering::SeqCst) - commits_before;
    let ops = store.stats().ops.load(Ordering::SeqCst) - ops_before;
    let messages = u64::from(PUBLISHERS * EACH);
    assert!(ops >= messages, "every message stored: {ops} ops");
    assert!(
        commits * 4 <= messages,
        "group commit: {messages} messages in {commits} commits"
    );
    eprintln!("{messages} messages, {ops} operations in {commits} commits");
    broker.shutdown().await;
}

/// Checkpoints fold the journal into the database while the broker runs, in a thread of
/// their own: deliveries acknowledged between two checkpoints never reach the database,
/// those still queued do, and survive a restart in order [MQTT-4.6.0-6].
#[tokio::test]
async fn checkpoints_fold_the_journal_while_the_broker_runs() {
    let dir = data_dir("checkpoint");
    let mut config = stored(&dir);
    config.checkpoint_interval_ms = 20;
    let broker = start(config.clone()).await;
    let addr = broker.local_addr();
    let mut away = reconnect(addr, ProtocolVersion::V5, "cp-away", false).await;
    away.subscribe("cp/#", QoS::AtLeastOnce).await;
    away.disconnect().await;
    let mut online = reconnect(addr, ProtocolVersion::V5, "cp-online", false).await;
    online.subscribe("cp/t", QoS::AtLeastOnce).await;
    let store = broker.hub().store.clone().expect("a store");
    let mut publisher = Client::connect(addr, ProtocolVersion::V5, "cp-pub").await;
    for i in 0..40u16 {
        publisher
            .publish(publish("cp/t", &format!("m{i}"), QoS::AtLeastOnce, i + 1))
            .await;
        assert_eq!(text(&online.receive_messages(1).await[0]), format!("m{i}"));
        if i % 10 == 9 {
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.stats().checkpoints.load(Ordering::SeqCst) < 3 {
        assert!(std::time::Instant::now() < deadline, "no checkpoints");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        store.stats().absorbed.load(Ordering::SeqCst) > 0,
        "deliveries acknowledged before their checkpoint never reach the database"
    );
    online.disconnect().await;
    broker.shutdown().await;
    let summary = Store::check(&dir).expect("the store reads");
    assert_eq!(
        summary.deliveries, 40,
        "the offline session's queue: {summary}"
    );
    assert_eq!(summary.journal, 0, "a clean stop leaves nothing to replay");
    for name in tern_broker::store::JOURNAL_FILES {
        let len = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        assert_eq!(len, 24, "{name} is cut down to its header at a clean stop");
    }

    let broker = start(config).await;
    let mut away = reconnect(broker.local_addr(), ProtocolVersion::V5, "cp-away", true).await;
    let payloads: Vec<String> = away
        .receive_messages(40)
        .await
        .iter()
        .map(|m| text(m).to_owned())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads, expected, "[MQTT-4.6.0-6] stored, in order");
    broker.shutdown().await;
}

/// The writer's counters are in `$SYS` (Tern's own topics) when the broker has a store,
/// and absent without one.
#[tokio::test]
async fn store_counters_are_published_in_sys() {
    let dir = data_dir("sys");
    let broker = start(stored(&dir)).await;
    let addr = broker.local_addr();
    let mut client = reconnect(addr, ProtocolVersion::V5, "sys-store", false).await;
    client.subscribe("s/#", QoS::AtLeastOnce).await;
    client.disconnect().await;
    let store = broker.hub().store.clone().expect("a store");
    let topics: std::collections::BTreeMap<_, _> = tern_broker::sys::snapshot(broker.hub())
        .into_iter()
        .collect();
    let commits = store.stats().commits.load(Ordering::SeqCst);
    assert!(commits > 0, "the subscription was committed");
    assert_eq!(topics["$SYS/broker/store/commits"], commits.to_string());
    for topic in [
        "$SYS/broker/store/operations",
        "$SYS/broker/store/checkpoints",
        "$SYS/broker/store/operations absorbed",
        "$SYS/broker/store/failures",
    ] {
        assert!(topics.contains_key(topic), "{topic} missing: {topics:?}");
    }
    broker.shutdown().await;

    let broker = start(config()).await;
    let topics = tern_broker::sys::snapshot(broker.hub());
    assert!(topics
        .iter()
        .all(|(t, _)| !t.starts_with("$SYS/broker/store/")));
    broker.shutdown().await;
}

/// A file that is not a store, and a store of an unknown format, stop the broker with a
/// message naming the file and what to do; the file is left as it was.
#[tokio::test]
async fn unreadable_stores_stop_the_broker_and_are_left_alone() {
    let dir = data_dir("damaged");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tern.redb");
    std::fs::write(&file, b"this is not a database, but somebody's data").unwrap();
    let error = match tern_broker::Broker::start(stored(&dir)).await {
        Err(StartError::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    };
    assert!(matches!(error, StoreError::Damaged { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&*file.to_string_lossy()), "{message}");
    assert!(message.contains("Nothing was changed"), "{message}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"this is not a database, but somebody's data"
    );

    // A redb database of another program.
    std::fs::remove_file(&file).unwrap();
    {
        let db = redb::Database::create(&file).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            table.insert("magic", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let error = match tern_broker::Broker::start(stored(&dir)).await {
        Err(StartError::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    };
    assert!(matches!(error, StoreError::Format { .. }), "{error}");
    assert!(error.to_string().contains("Move it away"), "{error}");
}

/// Two brokers on one data directory: the second refuses to start, naming the file.
#[tokio::test]
async fn a_store_in_use_is_refused() {
    let dir = data_dir("locked");
    let first = start(stored(&dir)).await;
    let error = match tern_broker::Broker::start(stored(&dir)).await {
        Err(StartError::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    };
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    first.shutdown().await;
}
