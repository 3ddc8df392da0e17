//! Interoperability with Debian's `mosquitto_pub` and `mosquitto_sub` (libmosquitto 2.0) as
//! real peers of the `tern broker` binary: QoS 0/1/2 round trips, retained messages, wills and
//! persistent sessions, each in MQTT 3.1.1 and 5.0, plus a round trip in MQTT 3.1.
//!
//! Every subscriber runs with `-d`, so the tests also check the acknowledgement flow each
//! client saw, and with `-C`/`-W` so none can hang. `scripts/test` installs the clients.

mod common;

use common::{has_line, mosquitto_pub, Message, Sub, Tern, TIMEOUT};

const V31: &str = "mqttv31";
const V311: &str = "mqttv311";
const V5: &str = "mqttv5";

/// Subscribes at `sub_qos`, publishes one message at `pub_qos`, and returns the publisher's
/// debug lines and what the subscriber got.
fn round_trip(version: &str, pub_qos: u8, sub_qos: u8) -> (Vec<String>, common::SubOutput) {
    let tern = Tern::start(&[]);
    let topic = format!("interop/qos{pub_qos}");
    let payload = format!("hello at qos {pub_qos}");
    let sub = Sub::start(
        tern.port,
        version,
        &[
            "-t",
            &topic,
            "-q",
            &sub_qos.to_string(),
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    let publisher = mosquitto_pub(
        tern.port,
        version,
        &["-t", &topic, "-q", &pub_qos.to_string(), "-m", &payload],
    );
    let out = sub.finish();
    assert!(out.status.success(), "{out:#?}");
    // The delivered QoS is the lower of the published QoS and the granted one
    // [MQTT-3.8.4-8] (5.0; 3.1.1 section 3.8.4).
    let qos = pub_qos.min(sub_qos);
    assert_eq!(out.messages, [Message::new(false, qos, &topic, &payload)]);
    (publisher, out)
}

// Section 4.3.1: QoS 0 is delivered at most once, with no acknowledgement.
fn qos0_round_trip(version: &str) {
    let (publisher, out) = round_trip(version, 0, 2);
    assert!(!has_line(&publisher, "PUBACK") && !has_line(&publisher, "PUBREC"));
    assert!(!has_line(&out.debug, "sending PUBACK"));
}

// Section 4.3.2: QoS 1; the broker acknowledges with PUBACK ([MQTT-4.3.2-4] in 5.0) and the
// subscriber acknowledges the broker's PUBLISH with PUBACK.
fn qos1_round_trip(version: &str) {
    let (publisher, out) = round_trip(version, 1, 2);
    assert!(has_line(&publisher, "received PUBACK"), "{publisher:#?}");
    assert!(has_line(&out.debug, "sending PUBACK"), "{out:#?}");
}

// Section 4.3.3: QoS 2, PUBREC / PUBREL / PUBCOMP in both directions (5.0 numbers: [MQTT-4.3.3-8]
// [MQTT-4.3.3-11] broker as receiver, [MQTT-4.3.3-4] [MQTT-4.3.3-5] broker as sender).
fn qos2_round_trip(version: &str) {
    let (publisher, out) = round_trip(version, 2, 2);
    for step in ["received PUBREC", "sending PUBREL", "received PUBCOMP"] {
        assert!(
            has_line(&publisher, step),
            "publisher: no {step}: {publisher:#?}"
        );
    }
    for step in ["sending PUBREC", "received PUBREL", "sending PUBCOMP"] {
        assert!(
            has_line(&out.debug, step),
            "subscriber: no {step}: {out:#?}"
        );
    }
}

#[test]
fn qos0_round_trip_v311() {
    qos0_round_trip(V311);
}

#[test]
fn qos0_round_trip_v5() {
    qos0_round_trip(V5);
}

#[test]
fn qos1_round_trip_v311() {
    qos1_round_trip(V311);
}

#[test]
fn qos1_round_trip_v5() {
    qos1_round_trip(V5);
}

#[test]
fn qos2_round_trip_v311() {
    qos2_round_trip(V311);
}

#[test]
fn qos2_round_trip_v5() {
    qos2_round_trip(V5);
}

/// MQTT 3.1 (protocol name `MQIsdp`, level 3) is still served: a QoS 2 round trip.
#[test]
fn qos2_round_trip_v31() {
    qos2_round_trip(V31);
}

/// [MQTT-3.8.4-8] (5.0): a QoS 2 message is sent to a QoS 1 subscription at QoS 1.
#[test]
fn qos2_publish_is_downgraded_to_the_granted_qos1_v311() {
    let (_, out) = round_trip(V311, 2, 1);
    assert!(!has_line(&out.debug, "PUBREC"), "{out:#?}");
}

/// [MQTT-3.8.4-8] (5.0): a QoS 2 message is sent to a QoS 1 subscription at QoS 1.
#[test]
fn qos2_publish_is_downgraded_to_the_granted_qos1_v5() {
    let (_, out) = round_trip(V5, 2, 1);
    assert!(!has_line(&out.debug, "PUBREC"), "{out:#?}");
}

/// Retained messages, from store to removal:
/// - an existing subscriber gets the message with RETAIN 0 (3.1.1: [MQTT-3.3.1-9]; 5.0 with
///   Retain As Published 0: [MQTT-3.3.1-12]);
/// - the broker stores it [MQTT-3.3.1-5] and a later subscriber gets it with RETAIN 1
///   (3.1.1: [MQTT-3.3.1-6] [MQTT-3.3.1-8]; 5.0: [MQTT-3.3.1-9]);
/// - a newer retained message replaces it [MQTT-3.3.1-5];
/// - a zero-byte retained message removes it (3.1.1: [MQTT-3.3.1-10]; 5.0: [MQTT-3.3.1-6]).
fn retained(version: &str) {
    let tern = Tern::start(&[]);
    let port = tern.port;
    let live = Sub::start(
        port,
        version,
        &["-t", "room/+", "-q", "1", "-C", "2", "-W", "10"],
    );
    mosquitto_pub(
        port,
        version,
        &["-t", "room/lamp", "-q", "1", "-r", "-m", "off"],
    );
    mosquitto_pub(
        port,
        version,
        &["-t", "room/lamp", "-q", "1", "-r", "-m", "on"],
    );
    assert_eq!(
        live.messages(),
        [
            Message::new(false, 1, "room/lamp", "off"),
            Message::new(false, 1, "room/lamp", "on"),
        ]
    );

    let later = Sub::spawn(
        port,
        version,
        &["-t", "room/#", "-q", "1", "-C", "1", "-W", "10"],
    );
    assert_eq!(later.messages(), [Message::new(true, 1, "room/lamp", "on")]);

    mosquitto_pub(port, version, &["-t", "room/lamp", "-q", "1", "-r", "-n"]);
    let after_removal = Sub::spawn(port, version, &["-t", "room/#", "-W", "1"]).finish();
    assert_eq!(after_removal.status.code(), Some(27), "{after_removal:#?}");
    assert_eq!(after_removal.messages, []);
}

#[test]
fn retained_message_stored_sent_to_later_subscriber_and_removed_v311() {
    retained(V311);
}

#[test]
fn retained_message_stored_sent_to_later_subscriber_and_removed_v5() {
    retained(V5);
}

/// [MQTT-3.1.2-8]: the will is published when the network connection closes without a
/// DISCONNECT (the client is killed with SIGKILL), and [MQTT-3.14.4-3] (3.1.1:
/// [MQTT-3.1.2-10]) it is discarded on a normal DISCONNECT. The client that disconnects
/// cleanly goes first, so its will, if wrongly published, would be the first message.
fn will(version: &str) {
    let tern = Tern::start(&[]);
    let port = tern.port;
    let wills = Sub::start(
        port,
        version,
        &["-t", "will/+", "-q", "1", "-C", "1", "-W", "10"],
    );

    let clean = Sub::start(
        port,
        version,
        &[
            "-t",
            "none",
            "-E",
            "--will-topic",
            "will/clean",
            "--will-payload",
            "wrong",
        ],
    );
    let out = clean.finish();
    assert!(out.status.success(), "{out:#?}");

    let mut killed = Sub::start(
        port,
        version,
        &[
            "-t",
            "none",
            "--will-topic",
            "will/killed",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    );
    killed.peer().signal("KILL");
    let _ = killed.peer().finish(TIMEOUT);

    assert_eq!(
        wills.messages(),
        [Message::new(false, 1, "will/killed", "gone")]
    );
}

#[test]
fn will_published_on_abrupt_close_not_on_disconnect_v311() {
    will(V311);
}

#[test]
fn will_published_on_abrupt_close_not_on_disconnect_v5() {
    will(V5);
}

/// A persistent session outlives its connection: QoS 1 and 2 messages published while the
/// client is away are stored (3.1.1: [MQTT-3.1.2-5]; 5.0: [MQTT-3.1.2-23]) and delivered, in
/// order, when it reconnects with Clean Session 0 / Clean Start 0 (3.1.1: [MQTT-3.1.2-4];
/// 5.0: [MQTT-3.1.2-5]) without subscribing again being needed for them to be queued.
fn persistent_session(version: &str) {
    let tern = Tern::start(&[]);
    let port = tern.port;
    let id = format!("tern-persist-{version}");
    let mut session = vec!["-c", "-i", &id, "-q", "1", "-t", "persist/#"];
    if version == V5 {
        session.extend(["-x", "60"]);
    }

    let first = Sub::start(port, version, &[&session[..], &["-E"]].concat()).finish();
    assert!(first.status.success(), "{first:#?}");

    mosquitto_pub(
        port,
        version,
        &["-t", "persist/a", "-q", "1", "-m", "away-1"],
    );
    mosquitto_pub(
        port,
        version,
        &["-t", "persist/b", "-q", "2", "-m", "away-2"],
    );

    let again = Sub::spawn(
        port,
        version,
        &[&session[..], &["-C", "2", "-W", "10"]].concat(),
    );
    assert_eq!(
        again.messages(),
        [
            Message::new(false, 1, "persist/a", "away-1"),
            Message::new(false, 1, "persist/b", "away-2"),
        ]
    );
}

#[test]
fn persistent_session_gets_messages_published_while_away_v311() {
    persistent_session(V311);
}

#[test]
fn persistent_session_gets_messages_published_while_away_v5() {
    persistent_session(V5);
}
