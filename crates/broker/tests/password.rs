//! Password authentication at CONNECT (`auth.password_file`, `auth.allow_anonymous`) over
//! real sockets, with CONNECTs written byte by byte and CONNACKs checked byte by byte, in
//! MQTT 3.1.1 and 5.0.
//!
//! The rules the refusals keep: 3.1.1 §3.1.4 lets the server "perform authentication and
//! authorization checks" and answer a failure with a non-zero CONNACK; a non-zero CONNACK has
//! Session Present 0 [MQTT-3.2.2-4] and the server then closes the connection
//! [MQTT-3.2.2-5]; 0x04 is "bad user name or password", 0x05 "not authorized". In 5.0 a
//! failed authentication check closes the connection [MQTT-3.1.4-2], after a CONNACK with
//! Session Present 0 [MQTT-3.2.2-6] and a reason code of 0x80 or more [MQTT-3.2.2-7]: 0x86
//! Bad User Name or Password, 0x87 Not authorized.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tern_broker::auth::ScramCredentials;
use tern_broker::{BrokerHandle, Config};
use tern_codec::{Packet, ProtocolVersion, ReasonCode};

/// A CONNECT written byte by byte: Clean Session/Start, keep alive 60, client id `client_id`,
/// and the User Name and Password given. MQTT 5.0 CONNECTs set Request Problem Information
/// to 0 (property 0x17), so a refusing CONNACK carries no Reason String and its bytes are
/// fixed; `problems` leaves the property out (Reason Strings allowed).
fn raw_connect(
    version: ProtocolVersion,
    client_id: &str,
    user: Option<&str>,
    password: Option<&str>,
    problems: bool,
) -> Vec<u8> {
    let v5 = version.is_v5();
    let mut flags = 0x02;
    flags |= if user.is_some() { 0x80 } else { 0 };
    flags |= if password.is_some() { 0x40 } else { 0 };
    let mut body = vec![
        0,
        4,
        b'M',
        b'Q',
        b'T',
        b'T',
        if v5 { 5 } else { 4 },
        flags,
        0,
        60,
    ];
    if v5 {
        match problems {
            true => body.push(0),
            false => body.extend_from_slice(&[2, 0x17, 0]),
        }
    }
    for field in [Some(client_id), user, password].into_iter().flatten() {
        body.extend_from_slice(&[0, field.len() as u8]);
        body.extend_from_slice(field.as_bytes());
    }
    assert!(body.len() < 128, "one byte of Remaining Length");
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

/// The refusing CONNACK's bytes: Session Present 0, and in 5.0 an empty property list.
fn refusal(version: ProtocolVersion, v3_code: u8, v5_code: u8) -> Vec<u8> {
    match version.is_v5() {
        true => vec![0x20, 0x03, 0x00, v5_code, 0x00],
        false => vec![0x20, 0x02, 0x00, v3_code],
    }
}

/// Writes `users` (name, password) as a password file (4096 iterations, as `tern passwd`).
fn password_file(name: &str, users: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("password-{name}-{}.passwd", std::process::id()));
    let mut text = String::from("# made by crates/broker/tests/password.rs\n");
    for (i, (user, password)) in users.iter().enumerate() {
        let salt = format!("salt-{i:011}");
        let credentials = ScramCredentials::derive(password, salt.as_bytes(), 4096);
        text.push_str(&format!("{user}:{credentials}\n"));
    }
    std::fs::write(&file, text).expect("write the password file");
    file
}

/// A broker checking passwords against alice/wonderland and bob/builder.
async fn password_broker(name: &str, tweak: impl FnOnce(&mut Config)) -> BrokerHandle {
    let mut config = config();
    let users = [("alice", "wonderland"), ("bob", "builder")];
    config.auth.password_file = Some(password_file(name, &users));
    tweak(&mut config);
    start(config).await
}

/// Sends the raw CONNECT and expects exactly `expected` back, then the close.
async fn expect_refused(
    broker: &BrokerHandle,
    version: ProtocolVersion,
    connect: &[u8],
    expected: &[u8],
    rule: &str,
) {
    let mut client = Client::open(broker.local_addr(), version).await;
    client.send_raw(connect).await;
    client.expect_bytes(expected, rule).await;
    client.expect_closed(rule).await;
}

/// Sends the raw CONNECT and expects CONNACK Success, then a working connection.
async fn expect_accepted(broker: &BrokerHandle, version: ProtocolVersion, connect: &[u8]) {
    let mut client = Client::open(broker.local_addr(), version).await;
    client.send_raw(connect).await;
    if version.is_v5() {
        let connack = client.recv_connack().await;
        assert_eq!(connack.reason_code, ReasonCode::Success, "[MQTT-3.1.4-5]");
    } else {
        client
            .expect_bytes(&[0x20, 0x02, 0x00, 0x00], "[MQTT-3.1.4-4] (3.1.1)")
            .await;
    }
    client.ping().await;
}

/// The right password connects (3.1.1 [MQTT-3.1.4-4], 5.0 [MQTT-3.1.4-5]); so does each
/// user's own, not another's.
async fn right_password_connects(version: ProtocolVersion) {
    let broker = password_broker(&format!("right-{version}"), |_| {}).await;
    let alice = raw_connect(version, "p1", Some("alice"), Some("wonderland"), false);
    expect_accepted(&broker, version, &alice).await;
    let bob = raw_connect(version, "p2", Some("bob"), Some("builder"), false);
    expect_accepted(&broker, version, &bob).await;
    let crossed = raw_connect(version, "p3", Some("bob"), Some("wonderland"), false);
    let rule = "0x04 / 0x86 for another user's password";
    expect_refused(&broker, version, &crossed, &refusal(version, 4, 0x86), rule).await;
}

/// A wrong password: CONNACK 0x04 (3.1.1; Session Present 0 [MQTT-3.2.2-4], then closed
/// [MQTT-3.2.2-5]) or 0x86 (5.0; [MQTT-3.1.4-2], Session Present 0 [MQTT-3.2.2-6], closed
/// [MQTT-3.2.2-7]).
async fn wrong_password_is_refused_mqtt_3_1_4_2(version: ProtocolVersion) {
    let broker = password_broker(&format!("wrong-{version}"), |_| {}).await;
    let connect = raw_connect(version, "p4", Some("alice"), Some("Wonderland"), false);
    let rule = "[MQTT-3.1.4-2] [MQTT-3.2.2-4/6] [MQTT-3.2.2-5/7] wrong password";
    expect_refused(&broker, version, &connect, &refusal(version, 4, 0x86), rule).await;
}

/// A user the file does not list is refused exactly as a wrong password is: 0x04 / 0x86
/// ([MQTT-3.1.4-2]; 3.1.1 [MQTT-3.2.2-4], [MQTT-3.2.2-5]; 5.0 [MQTT-3.2.2-6],
/// [MQTT-3.2.2-7]).
async fn unknown_user_is_refused_mqtt_3_1_4_2(version: ProtocolVersion) {
    let broker = password_broker(&format!("unknown-{version}"), |_| {}).await;
    let connect = raw_connect(version, "p5", Some("carol"), Some("wonderland"), false);
    let rule = "[MQTT-3.1.4-2] unknown user";
    expect_refused(&broker, version, &connect, &refusal(version, 4, 0x86), rule).await;
}

/// A User Name without a Password, when a password file is set: 0x04 / 0x86 ([MQTT-3.1.4-2];
/// 3.1.1 [MQTT-3.2.2-4], [MQTT-3.2.2-5]; 5.0 [MQTT-3.2.2-6], [MQTT-3.2.2-7]).
async fn user_name_without_password_is_refused_mqtt_3_1_4_2(version: ProtocolVersion) {
    let broker = password_broker(&format!("no-password-{version}"), |_| {}).await;
    let connect = raw_connect(version, "p6", Some("alice"), None, false);
    let rule = "[MQTT-3.1.4-2] User Name without Password";
    expect_refused(&broker, version, &connect, &refusal(version, 4, 0x86), rule).await;
}

/// With a password file, anonymous clients are refused by default (as in mosquitto 2): no
/// User Name gets 0x05 Not authorized (3.1.1; [MQTT-3.2.2-4], [MQTT-3.2.2-5]) or 0x87 (5.0;
/// [MQTT-3.1.4-2], [MQTT-3.2.2-6], [MQTT-3.2.2-7]).
async fn anonymous_is_refused_with_a_password_file_mqtt_3_1_4_2(version: ProtocolVersion) {
    let broker = password_broker(&format!("anonymous-{version}"), |_| {}).await;
    let connect = raw_connect(version, "p7", None, None, false);
    let rule = "[MQTT-3.1.4-2] anonymous client, allow_anonymous unset";
    expect_refused(&broker, version, &connect, &refusal(version, 5, 0x87), rule).await;
}

/// `allow_anonymous = true` with a password file: clients without a User Name connect, but
/// a User Name given is still checked (0x04 / 0x86 [MQTT-3.1.4-2] for a wrong password).
async fn allow_anonymous_still_checks_given_passwords(version: ProtocolVersion) {
    let name = format!("allow-anonymous-{version}");
    let broker = password_broker(&name, |c| c.auth.allow_anonymous = Some(true)).await;
    expect_accepted(
        &broker,
        version,
        &raw_connect(version, "p8", None, None, false),
    )
    .await;
    let wrong = raw_connect(version, "p9", Some("alice"), Some("x"), false);
    let rule = "[MQTT-3.1.4-2] wrong password with allow_anonymous";
    expect_refused(&broker, version, &wrong, &refusal(version, 4, 0x86), rule).await;
}

/// `allow_anonymous = false` with SCRAM but no password file: nothing can check a CONNECT's
/// User Name, so the client is anonymous and refused with 0x05 / 0x87 ([MQTT-3.1.4-2]; 3.1.1
/// [MQTT-3.2.2-4], [MQTT-3.2.2-5]; 5.0 [MQTT-3.2.2-6], [MQTT-3.2.2-7]).
async fn no_password_file_and_no_anonymous_refuses_user_names_mqtt_3_1_4_2(
    version: ProtocolVersion,
) {
    let mut config = config();
    let name = format!("scram-only-{version}");
    config.auth.scram_file = Some(password_file(&name, &[("alice", "wonderland")]));
    config.auth.allow_anonymous = Some(false);
    let broker = start(config).await;
    let connect = raw_connect(version, "p10", Some("alice"), Some("wonderland"), false);
    let rule = "[MQTT-3.1.4-2] no password file, anonymous not allowed";
    expect_refused(&broker, version, &connect, &refusal(version, 5, 0x87), rule).await;
}

per_version!(
    right_password_connects,
    wrong_password_is_refused_mqtt_3_1_4_2,
    unknown_user_is_refused_mqtt_3_1_4_2,
    user_name_without_password_is_refused_mqtt_3_1_4_2,
    anonymous_is_refused_with_a_password_file_mqtt_3_1_4_2,
    allow_anonymous_still_checks_given_passwords,
    no_password_file_and_no_anonymous_refuses_user_names_mqtt_3_1_4_2,
);

/// Without `[auth]` nothing changes: any User Name and Password, or none, connects.
#[tokio::test]
async fn without_auth_config_every_client_connects() {
    let broker = broker().await;
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let any = raw_connect(version, "p11", Some("anyone"), Some("anything"), false);
        expect_accepted(&broker, version, &any).await;
        expect_accepted(
            &broker,
            version,
            &raw_connect(version, "p12", None, None, false),
        )
        .await;
    }
}

/// MQTT 5.0 refusals carry a Reason String naming the rule and the config key when the
/// client allows it [MQTT-3.1.2-29], and the same text for a wrong password and an unknown
/// user (nothing tells which users exist).
#[tokio::test]
async fn v5_refusals_say_why_mqtt_3_1_2_29() {
    let v5 = ProtocolVersion::V5;
    let broker = password_broker("reason-strings", |_| {}).await;
    let mut reasons = Vec::new();
    for (user, password) in [
        (Some("alice"), Some("nope")),
        (Some("nobody"), Some("nope")),
        (None, None),
    ] {
        let mut client = Client::open(broker.local_addr(), v5).await;
        client
            .send_raw(&raw_connect(v5, "p13", user, password, true))
            .await;
        let connack = client.recv_connack().await;
        assert!(!connack.session_present, "[MQTT-3.2.2-6]");
        let why = connack.properties.reason_string.expect("a Reason String");
        reasons.push((connack.reason_code, why.as_str().to_owned()));
        client.expect_closed("[MQTT-3.2.2-7]").await;
    }
    assert_eq!(reasons[0], reasons[1], "wrong password = unknown user");
    assert_eq!(reasons[0].0, ReasonCode::BadUserNameOrPassword);
    assert!(reasons[0].1.contains("auth.password_file"), "{reasons:?}");
    assert_eq!(reasons[2].0, ReasonCode::NotAuthorized);
    assert!(reasons[2].1.contains("auth.allow_anonymous"), "{reasons:?}");
    assert!(reasons
        .iter()
        .all(|(_, why)| why.contains("[MQTT-3.1.4-2]")));
}

/// PBKDF2 runs off the runtime: while a password with a costly iteration count is being
/// checked, a connected client is answered at once. This test runs the broker on
/// `#[tokio::test]`'s single thread, so a derivation on that thread would hold the PINGRESP
/// back until the refusing CONNACK had been sent.
#[tokio::test]
async fn password_checks_do_not_stall_connected_clients() {
    let v5 = ProtocolVersion::V5;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("password-costly-{}.passwd", std::process::id()));
    // Keys that no password matches, at a count that takes about a second (PBKDF2 is some
    // twenty times faster optimized).
    let costly = ScramCredentials {
        salt: b"a costly salt!!!".to_vec(),
        iterations: if cfg!(debug_assertions) {
            100_000
        } else {
            2_000_000
        },
        stored_key: [7; 32],
        server_key: [7; 32],
    };
    std::fs::write(&file, format!("slow:{costly}\n")).unwrap();
    let mut config = config();
    config.auth.password_file = Some(file);
    config.auth.allow_anonymous = Some(true);
    let broker = start(config).await;
    let mut connected = Client::connect(broker.local_addr(), v5, "p14").await;
    let mut waiting = Client::open(broker.local_addr(), v5).await;
    waiting
        .send_raw(&raw_connect(v5, "p15", Some("slow"), Some("guess"), false))
        .await;
    // Let the broker read the CONNECT and start the derivation.
    tokio::time::sleep(Duration::from_millis(100)).await;
    connected.ping().await;
    waiting
        .expect_nothing_for(Duration::from_millis(50), "the derivation is still running")
        .await;
    match waiting.recv_within(Duration::from_secs(30)).await {
        Some(Packet::ConnAck(connack)) => {
            assert_eq!(connack.reason_code, ReasonCode::BadUserNameOrPassword)
        }
        other => panic!("expected CONNACK 0x86, got {other:?}"),
    }
}
