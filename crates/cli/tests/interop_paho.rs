//! Interoperability with PyPI's paho-mqtt 2.x as a real peer of the `tern broker` binary, in
//! MQTT 3.1.1 and 5.0: QoS 0/1/2 round trips, retained messages, wills on an abrupt close
//! and persistent sessions.
//!
//! The scripts in `tests/paho/` drive the clients and print what they observed as JSON; the
//! assertions, each with the rule it proves, are here. The interpreter is `$TERN_TEST_PYTHON`
//! or else `target/test-venv/bin/python`; `scripts/test` creates that venv. Without paho the
//! tests fail: a missing peer must not pass as a green run.

mod common;
mod paho;

use common::Tern;
use serde_json::{json, Value};

const V311: &str = "3.1.1";
const V5: &str = "5";

/// Runs `tests/paho/{script}.py PORT VERSION` against a fresh broker and returns its JSON.
fn run(script: &str, version: &str) -> Value {
    let tern = Tern::start(&[]);
    paho::run_script(script, &[version], &tern)
}

/// A received message as the scripts report it; MQTT 5.0 adds the properties.
fn message(version: &str, topic: &str, payload: &str, qos: u8, retain: bool) -> Value {
    let mut message = json!({"topic": topic, "payload": payload, "qos": qos, "retain": retain});
    if version == V5 {
        message["user_properties"] = json!([]);
        message["content_type"] = Value::Null;
    }
    message
}

/// The same message with MQTT 5.0 properties.
fn with_properties(mut message: Value, user: &[(&str, &str)], content_type: &str) -> Value {
    message["user_properties"] = json!(user);
    message["content_type"] = json!(content_type);
    message
}

/// Sorts messages by topic: paho hands QoS 2 messages over on PUBREL, out of wire order.
fn by_topic(messages: &Value) -> Vec<Value> {
    let mut messages = messages.as_array().cloned().unwrap_or_default();
    messages.sort_by_key(|m| m["topic"].as_str().unwrap_or("").to_owned());
    messages
}

/// QoS 0, 1 and 2 each arrive once (sections 4.3.1-4.3.3) at the lower of the published
/// and granted QoS ([MQTT-3.8.4-8] in 5.0): a QoS 2 message reaches a QoS 1 subscription at
/// QoS 1. The SUBACKs grant the QoS asked for.
/// In 5.0 user properties and the content type are forwarded unaltered ([MQTT-3.3.2-17],
/// [MQTT-3.3.2-20]).
fn round_trip(version: &str) {
    let out = run("roundtrip", version);
    assert_eq!(out["granted"], json!([2, 1]), "{out:#}");
    let sent = |topic: &str, payload: &str, qos| {
        let message = message(version, topic, payload, qos, false);
        if version == V5 {
            with_properties(message, &[("origin", "paho")], "text/plain")
        } else {
            message
        }
    };
    assert_eq!(
        by_topic(&out["messages"]),
        [
            message(version, "paho/marker", "end", 2, false),
            sent("paho/qos0", "payload at qos 0", 0),
            sent("paho/qos1", "payload at qos 1", 1),
            sent("paho/qos2", "payload at qos 2", 2),
        ],
        "{out:#}"
    );
    assert_eq!(
        out["downgraded"],
        sent("paho/qos2", "payload at qos 2", 1),
        "{out:#}"
    );
}

#[test]
fn qos0_1_2_round_trips_and_downgrade_v311() {
    round_trip(V311);
}

#[test]
fn qos0_1_2_round_trips_and_downgrade_and_properties_v5() {
    round_trip(V5);
}

/// Retained messages: a live subscriber gets RETAIN 0 (3.1.1: [MQTT-3.3.1-9]) or, with
/// Retain As Published, RETAIN 1 (5.0: [MQTT-3.3.1-13]); the newest retained message replaces
/// the older [MQTT-3.3.1-5] and reaches a later subscriber with RETAIN 1 (3.1.1:
/// [MQTT-3.3.1-6] [MQTT-3.3.1-8]; 5.0: [MQTT-3.3.1-9]); Retain Handling 2 sends none (5.0:
/// [MQTT-3.3.1-11]); an empty retained message removes it (3.1.1: [MQTT-3.3.1-10]; 5.0:
/// [MQTT-3.3.1-6]), so the next subscriber's first message is the live marker.
fn retained(version: &str) {
    let out = run("retained", version);
    let topic = "paho/retained/lamp";
    let live_retain = version == V5;
    assert_eq!(
        out["live"],
        json!([
            message(version, topic, "off", 1, live_retain),
            message(version, topic, "on", 1, live_retain),
        ]),
        "{out:#}"
    );
    assert_eq!(
        out["later"],
        message(version, topic, "on", 1, true),
        "{out:#}"
    );
    let marker = message(version, topic, "marker", 1, false);
    if version == V5 {
        assert_eq!(out["retain_handling_2_first"], marker, "{out:#}");
    }
    assert_eq!(out["after_removal_first"], marker, "{out:#}");
}

#[test]
fn retained_live_later_replaced_and_removed_v311() {
    retained(V311);
}

#[test]
fn retained_live_later_retain_handling_replaced_and_removed_v5() {
    retained(V5);
}

/// [MQTT-3.1.2-8]: the will is published when the connection closes without DISCONNECT;
/// a normal DISCONNECT discards it (3.1.1: [MQTT-3.1.2-10]; 5.0: [MQTT-3.14.4-3]), so the
/// first will seen is the abrupt client's. In 5.0 the will's properties travel with it, user
/// properties in order ([MQTT-3.1.3-10]).
fn will(version: &str) {
    let out = run("will", version);
    let mut expected = message(version, "paho/will/abrupt", "gone", 1, false);
    if version == V5 {
        expected = with_properties(expected, &[("first", "1"), ("second", "2")], "text/plain");
    }
    assert_eq!(out["first_will"], expected, "{out:#}");
}

#[test]
fn will_published_on_abrupt_close_not_after_disconnect_v311() {
    will(V311);
}

#[test]
fn will_published_on_abrupt_close_not_after_disconnect_v5() {
    will(V5);
}

/// Persistent sessions: the first connection finds no session (Session Present 0: 3.1.1
/// [MQTT-3.2.2-3]; 5.0 [MQTT-3.2.2-3]); QoS 1 and 2 messages published while the client is
/// away are stored (3.1.1: [MQTT-3.1.2-5]; 5.0: [MQTT-3.1.2-23]) and delivered when it
/// resumes the session, with Session Present 1 (3.1.1: [MQTT-3.2.2-2]; 5.0: [MQTT-3.2.2-3]);
/// a clean connection discards the session and says so with Session Present 0 (3.1.1:
/// [MQTT-3.2.2-1]; 5.0: [MQTT-3.2.2-2]).
fn persistent_session(version: &str) {
    let out = run("session", version);
    assert_eq!(out["first_session_present"], json!(false), "{out:#}");
    assert_eq!(out["granted"], json!([2]), "{out:#}");
    assert_eq!(out["resumed_session_present"], json!(true), "{out:#}");
    assert_eq!(
        by_topic(&out["messages"]),
        [
            message(version, "paho/session/one", "away at qos 1", 1, false),
            message(version, "paho/session/two", "away at qos 2", 2, false),
        ],
        "{out:#}"
    );
    assert_eq!(out["clean_session_present"], json!(false), "{out:#}");
}

#[test]
fn persistent_session_resumed_with_messages_then_cleaned_v311() {
    persistent_session(V311);
}

#[test]
fn persistent_session_resumed_with_messages_then_cleaned_v5() {
    persistent_session(V5);
}
