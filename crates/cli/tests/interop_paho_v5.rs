//! MQTT 5.0 features with PyPI's paho-mqtt 2.x MQTT 5 client as a real peer of the
//! `tern broker` binary: one test per feature of `docs/mqtt5.md`.
//!
//! `tests/paho/v5_features.py PORT FEATURE` drives the clients and prints what they saw as
//! JSON; the assertions, each naming the rule it proves (MQTT 5.0 ids), are here. Each test
//! starts its own broker. The interpreter is found as in `interop_paho.rs`.

mod common;
mod paho;

use std::path::PathBuf;

use common::Tern;
use serde_json::{json, Value};
use tern_broker::auth::ScramCredentials;

/// Runs one feature of `v5_features.py` against a fresh `tern broker` started with `extra`.
fn feature(name: &str, extra: &[&str]) -> Value {
    let tern = Tern::start(extra);
    paho::run_script("v5_features", &[name], &tern)
}

/// A file in this test binary's scratch directory holding `text`.
fn scratch_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("paho-v5-{name}-{}", std::process::id()));
    std::fs::write(&path, text).expect("write a scratch file");
    path
}

/// [MQTT-3.2.2-3] / [MQTT-4.1.0-2]: a session resumed before it expires is present, with its
/// subscription and the QoS 1 message queued meanwhile ([MQTT-3.1.2-23]); after a Session
/// Expiry Interval of 1 s has passed it is gone (Session Present 0).
#[test]
fn session_expiry_and_resume_mqtt_4_1_0_2() {
    let out = feature("session_expiry", &[]);
    assert_eq!(out["first_present"], json!(false), "{out:#}");
    assert_eq!(out["resumed_present"], json!(true), "{out:#}");
    assert_eq!(out["queued"]["payload"], json!("while away"), "{out:#}");
    assert_eq!(out["after_expiry_present"], json!(false), "{out:#}");
}

/// [MQTT-3.3.2-5]: a queued message whose expiry passed is not delivered; [MQTT-3.3.2-6]: the
/// other arrives with the interval lowered by the time it waited.
#[test]
fn message_expiry_mqtt_3_3_2_5() {
    let out = feature("message_expiry", &[]);
    assert_eq!(
        out["delivered"]["topic"],
        json!("v5/expiry/long"),
        "{out:#}"
    );
    let left = out["delivered"]["MessageExpiryInterval"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        (55..=58).contains(&left),
        "[MQTT-3.3.2-6] remaining {left}: {out:#}"
    );
    assert_eq!(out["more"], json!([]), "[MQTT-3.3.2-5] {out:#}");
}

/// [MQTT-3.3.2-12]: the broker accepts the publisher's Topic Alias and resolves it for every
/// subscriber; towards a client that allows aliases it sends the topic once and then only the
/// alias, within the client's maximum [MQTT-3.3.2-11] (paho hands over the empty topic as it
/// is); a client that allows none gets none [MQTT-3.1.2-27].
#[test]
fn topic_alias_both_ways_mqtt_3_3_2_12() {
    let out = feature("topic_alias", &[]);
    assert_eq!(out["broker_topic_alias_maximum"], json!(32), "{out:#}");
    let topics =
        |who: &str| -> Vec<Value> { (0..2).map(|n| out[who][n]["topic"].clone()).collect() };
    assert_eq!(
        topics("plain"),
        [json!("v5/alias/topic"), json!("v5/alias/topic")]
    );
    assert_eq!(
        out["plain"][0].get("TopicAlias"),
        None,
        "[MQTT-3.1.2-27] {out:#}"
    );
    assert_eq!(
        topics("aliased"),
        [json!("v5/alias/topic"), json!("")],
        "{out:#}"
    );
    let alias = &out["aliased"][0]["TopicAlias"];
    assert!(
        alias.as_u64().is_some_and(|a| (1..=5).contains(&a)),
        "[MQTT-3.3.2-11] {out:#}"
    );
    assert_eq!(&out["aliased"][1]["TopicAlias"], alias, "{out:#}");
    assert_eq!(out["aliased"][1]["payload"], json!("two"), "{out:#}");
}

/// [MQTT-3.3.4-3], [MQTT-3.3.4-4]: a message matching overlapping subscriptions is sent as
/// one copy carrying the identifiers of all of them.
#[test]
fn subscription_identifiers_mqtt_3_3_4_4() {
    let out = feature("subscription_identifiers", &[]);
    let mut ids: Vec<u64> = out["message"]["SubscriptionIdentifier"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    assert_eq!(ids, [7, 9], "{out:#}");
    assert_eq!(out["more"], json!([]), "one copy: {out:#}");
}

/// [MQTT-3.8.3-3]: with No Local the client's own message is not sent back to it.
#[test]
fn no_local_mqtt_3_8_3_3() {
    let out = feature("no_local", &[]);
    assert_eq!(out["first"]["payload"], json!("theirs"), "{out:#}");
    assert_eq!(out["more"], json!([]), "{out:#}");
}

/// [MQTT-3.3.1-12], [MQTT-3.3.1-13]: a live retained message reaches a Retain As Published
/// subscription with RETAIN 1 and others with RETAIN 0.
#[test]
fn retain_as_published_mqtt_3_3_1_13() {
    let out = feature("retain_as_published", &[]);
    assert_eq!(out["as_published"]["retain"], json!(true), "{out:#}");
    assert_eq!(
        out["default"]["retain"],
        json!(false),
        "[MQTT-3.3.1-12] {out:#}"
    );
}

/// Retain Handling: 0 sends the retained message on every SUBSCRIBE [MQTT-3.3.1-9], 1 only
/// for a new subscription [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11].
#[test]
fn retain_handling_0_1_2_mqtt_3_3_1_10() {
    let out = feature("retain_handling", &[]);
    assert_eq!(out["handling_0"], json!([1, 1]), "[MQTT-3.3.1-9] {out:#}");
    assert_eq!(out["handling_1"], json!([1, 0]), "[MQTT-3.3.1-10] {out:#}");
    assert_eq!(out["handling_2"], json!([0, 0]), "[MQTT-3.3.1-11] {out:#}");
}

/// §4.8.2: each message to a shared group goes to exactly one member (round robin: both get
/// some); an ordinary subscription to the same topics gets every message.
#[test]
fn shared_subscriptions_one_member_per_message_4_8_2() {
    let out = feature("shared_subscriptions", &[]);
    let all: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(out["all"], json!(all), "{out:#}");
    let members: Vec<Vec<String>> =
        serde_json::from_value(out["members"].clone()).unwrap_or_default();
    assert!(
        members.iter().all(|m| !m.is_empty()),
        "both members served: {out:#}"
    );
    let mut together: Vec<String> = members.concat();
    together.sort();
    assert_eq!(together, all, "each message to exactly one member: {out:#}");
}

/// [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-20], [MQTT-3.3.2-4]: Response Topic,
/// Correlation Data, Content Type and Payload Format Indicator reach the responder unchanged,
/// and the response to the Response Topic reaches the requester with the Correlation Data.
#[test]
fn request_response_properties_mqtt_3_3_2_15() {
    let out = feature("request_response", &[]);
    let request = &out["request"];
    assert_eq!(
        request["ResponseTopic"],
        json!("v5/reply/requester"),
        "{out:#}"
    );
    assert_eq!(request["CorrelationData"], json!("corr-42"), "{out:#}");
    assert_eq!(request["ContentType"], json!("application/json"), "{out:#}");
    assert_eq!(request["PayloadFormatIndicator"], json!(1), "{out:#}");
    assert_eq!(out["response"]["payload"], json!("{\"a\":2}"), "{out:#}");
    assert_eq!(
        out["response"]["CorrelationData"],
        json!("corr-42"),
        "{out:#}"
    );
}

/// [MQTT-3.3.2-18]: User Properties are forwarded in the order sent, repeated names kept.
#[test]
fn user_properties_keep_their_order_mqtt_3_3_2_18() {
    let out = feature("user_properties_order", &[]);
    assert_eq!(
        out["message"]["UserProperty"],
        json!([["b", "1"], ["a", "2"], ["b", "3"]]),
        "{out:#}"
    );
}

/// [MQTT-3.1.2-8]: a will with a Will Delay Interval of 2 s is published once the interval
/// has passed after the connection was lost, not before.
#[test]
fn will_delay_mqtt_3_1_2_8() {
    let out = feature("will_delay", &[]);
    assert_eq!(out["early"], json!([]), "{out:#}");
    assert_eq!(out["will"]["payload"], json!("late"), "{out:#}");
    let after = out["after_seconds"].as_f64().unwrap_or(0.0);
    assert!(
        (1.5..=4.0).contains(&after),
        "published after {after} s: {out:#}"
    );
}

/// [MQTT-3.1.3-9]: resuming the session before the Will Delay Interval ends means the will is
/// not published.
#[test]
fn will_delay_cancelled_by_resumption_mqtt_3_1_3_9() {
    let out = feature("will_delay_cancelled", &[]);
    assert_eq!(out["resumed_present"], json!(true), "{out:#}");
    assert_eq!(out["wills"], json!([]), "{out:#}");
}

/// [MQTT-3.3.4-9]: the broker never has more unacknowledged QoS 1 messages at a client than
/// its Receive Maximum (2 here); each PUBACK lets one more go. The CONNACK announces the
/// broker's own Receive Maximum (limits.receive_maximum).
#[test]
fn receive_maximum_is_respected_mqtt_3_3_4_9() {
    let out = feature("receive_maximum", &[]);
    assert_eq!(out["broker_receive_maximum"], json!(1024), "{out:#}");
    assert_eq!(out["first"], json!(["0", "1"]), "{out:#}");
    assert_eq!(out["before_ack"], json!([]), "[MQTT-3.3.4-9] {out:#}");
    assert_eq!(out["after_ack"], json!("2"), "{out:#}");
    assert_eq!(out["still_held"], json!([]), "[MQTT-3.3.4-9] {out:#}");
}

/// §3.3.2.3.2 (a MAY, without a rule id): a PUBLISH marked UTF-8 whose payload is not valid
/// UTF-8 is refused with PUBACK 0x99 Payload format invalid and not delivered
/// (`mqtt.check_payload_format`).
#[test]
fn payload_format_invalid_gets_0x99() {
    let out = feature("payload_format", &[]);
    assert_eq!(out["invalid"], json!(0x99), "{out:#}");
    assert_eq!(out["valid"], json!(0), "{out:#}");
    assert_eq!(out["delivered"]["payload"], json!("text"), "{out:#}");
    assert_eq!(out["more"], json!([]), "{out:#}");
}

/// SUBACK reason codes from a broker that limits features: granted QoS lowered to Maximum
/// QoS 1 [MQTT-3.2.2-9]; 0xA2 wildcards not supported; 0x9E shared subscriptions not
/// supported; 0x8F a filter deeper than limits.max_topic_levels; 0xA1 subscription
/// identifiers not supported. UNSUBACK: one code per filter in order [MQTT-3.11.3-1], 0x00,
/// and 0x11 for a filter never subscribed.
#[test]
fn suback_and_unsuback_reason_codes_mqtt_3_11_3_1() {
    let config = scratch_file(
        "codes.toml",
        "[mqtt]\nmaximum_qos = 1\nwildcard_subscriptions = false\nshared_subscriptions = false\n\
         subscription_identifiers = false\n[limits]\nmax_topic_levels = 4\n",
    );
    let config = config.to_string_lossy().into_owned();
    let out = feature("suback_unsuback_codes", &["-c", &config]);
    assert_eq!(out["maximum_qos"], json!(1), "{out:#}");
    assert_eq!(out["granted"], json!([1]), "[MQTT-3.2.2-9] {out:#}");
    assert_eq!(out["wildcard"], json!([0xA2]), "{out:#}");
    assert_eq!(out["shared"], json!([0x9E]), "{out:#}");
    assert_eq!(out["too_deep"], json!([0x8F]), "{out:#}");
    assert_eq!(out["identifier"], json!([0xA1]), "{out:#}");
    assert_eq!(out["unsuback"], json!([0x00, 0x11]), "{out:#}");
}

/// Enhanced authentication with paho-mqtt against `tern broker -c` with `auth.scram_file`:
/// an Authentication Method the broker does not offer gets CONNACK 0x8C [MQTT-4.12.0-1] with
/// a Reason String naming the rule, and none when Request Problem Information is 0
/// [MQTT-3.1.2-29]. SCRAM-SHA-256 makes the broker answer AUTH 0x18 [MQTT-4.12.0-2], which
/// paho-mqtt 2.x cannot handle (it has no AUTH support: "Unrecognised command 240"), so the
/// SCRAM exchange itself is tested with raw bytes in crates/broker/tests/auth.rs.
#[test]
fn enhanced_auth_unknown_method_0x8c_and_auth_sent_mqtt_4_12_0_1() {
    let credentials = ScramCredentials::derive("pencil", b"paho-test-salt!!", 4096);
    let users = scratch_file("users.scram", &format!("user:{credentials}\n"));
    let config = scratch_file(
        "auth.toml",
        &format!("[auth]\nscram_file = {:?}\n", users.to_string_lossy()),
    );
    let config = config.to_string_lossy().into_owned();
    let out = feature("enhanced_auth", &["-c", &config]);
    assert_eq!(out["unknown"]["reason"], json!(0x8C), "{out:#}");
    let why = out["unknown"]["reason_string"].as_str().unwrap_or("");
    assert!(why.contains("[MQTT-4.12.0-1]"), "{out:#}");
    assert_eq!(out["unknown_quiet"]["reason"], json!(0x8C), "{out:#}");
    assert_eq!(
        out["unknown_quiet"]["reason_string"],
        Value::Null,
        "{out:#}"
    );
    assert_eq!(out["scram_connack"], json!(false), "{out:#}");
    assert_eq!(
        out["scram_log"],
        json!(["Error: Unrecognised command 240"]),
        "the broker sent AUTH (0xF0): {out:#}"
    );
}
