//! Enhanced authentication (MQTT 5.0 §4.12, §3.15) over real sockets: SCRAM-SHA-256 against
//! a SCRAM client written here with the same crates (RFC 5802, RFC 7677), at CONNECT and as
//! re-authentication.

#![allow(
    clippy::unwrap_used,
    reason = "the test SCRAM client panics on a bad server message"
)]

#[macro_use]
mod common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use common::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tern_broker::auth::ScramCredentials;
use tern_broker::{BrokerHandle, Config};
use tern_codec::{
    Auth, AuthProperties, Connect, MqttString, Packet, ProtocolVersion, QoS, ReasonCode,
};

const METHOD: &str = "SCRAM-SHA-256";
const V5: ProtocolVersion = ProtocolVersion::V5;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The client side of SCRAM-SHA-256, as RFC 5802 §3 computes it.
struct ScramClient {
    password: String,
    client_first_bare: String,
    nonce: String,
    /// The server signature the client expects in server-final.
    expected: Option<String>,
}

impl ScramClient {
    fn new(user: &str, password: &str) -> Self {
        let nonce = format!("tern-test-{}", std::process::id());
        ScramClient {
            password: password.to_owned(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce,
            expected: None,
        }
    }

    /// client-first: GS2 header "n,," and client-first-bare.
    fn first(&self) -> Bytes {
        Bytes::from(format!("n,,{}", self.client_first_bare))
    }

    /// client-final for the server-first message; runs PBKDF2 as a real client does.
    fn last(&mut self, server_first: &[u8]) -> Bytes {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let mut parts = server_first.split(',');
        let nonce = parts.next().unwrap().strip_prefix("r=").unwrap();
        assert!(
            nonce.starts_with(&self.nonce),
            "RFC 5802: the server nonce extends ours"
        );
        let salt = BASE64
            .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let iterations: u32 = parts
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected = Some(format!(
            "v={}",
            BASE64.encode(hmac(&server_key, auth_message.as_bytes()))
        ));
        Bytes::from(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks server-final: the server knew the user's keys (RFC 5802 §3).
    fn verify(&self, server_final: Option<&Bytes>) {
        let got = server_final.map(|d| std::str::from_utf8(d).unwrap().to_owned());
        assert_eq!(
            got, self.expected,
            "server-final carries the server signature"
        );
    }
}

/// A broker offering SCRAM-SHA-256 to `user`/`pencil` (and `other`/`pen`).
async fn scram_broker(name: &str, tweak: impl FnOnce(&mut Config)) -> BrokerHandle {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("auth-{name}-{}.scram", std::process::id()));
    let user = ScramCredentials::derive("pencil", b"salt-of-the-user", 4096);
    let other = ScramCredentials::derive("pen", b"salt-of-another!", 4096);
    std::fs::write(&file, format!("# test users\nuser:{user}\nother:{other}\n")).unwrap();
    let mut config = config();
    config.auth.scram_file = Some(file);
    tweak(&mut config);
    start(config).await
}

fn auth(reason: ReasonCode, method: &str, data: Option<Bytes>) -> Packet {
    Packet::Auth(Auth {
        reason_code: reason,
        properties: AuthProperties {
            authentication_method: Some(MqttString::try_from(method).unwrap()),
            authentication_data: data,
            ..Default::default()
        },
    })
}

fn connect_with_method(id: &str, method: &str, data: Option<Bytes>) -> Connect {
    let mut connect = connect_packet(V5, id, true);
    connect.properties.authentication_method = Some(MqttString::try_from(method).unwrap());
    connect.properties.authentication_data = data;
    connect
}

/// Expects AUTH with `reason` and the connection's method [MQTT-4.12.0-5]; returns its data.
async fn expect_auth(client: &mut Client, reason: ReasonCode, rule: &str) -> Option<Bytes> {
    match client.recv().await {
        Packet::Auth(auth) => {
            assert_eq!(auth.reason_code, reason, "{rule}: AUTH reason code");
            assert_eq!(
                auth.properties
                    .authentication_method
                    .as_ref()
                    .map(|m| m.as_str()),
                Some(METHOD),
                "[MQTT-4.12.0-5] AUTH carries the CONNECT's method"
            );
            auth.properties.authentication_data
        }
        other => panic!("{rule}: expected AUTH {reason:?}, got {other:?}"),
    }
}

/// Opens a connection and sends CONNECT with SCRAM's client-first; returns server-first.
async fn begin(broker: &BrokerHandle, scram: &ScramClient, id: &str) -> (Client, Bytes) {
    let mut client = Client::open(broker.local_addr(), V5).await;
    let connect = connect_with_method(id, METHOD, Some(scram.first()));
    client.send(Packet::Connect(Box::new(connect))).await;
    let server_first = expect_auth(
        &mut client,
        ReasonCode::ContinueAuthentication,
        "[MQTT-4.12.0-2]",
    )
    .await
    .expect("server-first in Authentication Data");
    (client, server_first)
}

/// Connects and authenticates as `user`/`pencil`.
async fn authenticated(broker: &BrokerHandle, id: &str) -> Client {
    let mut scram = ScramClient::new("user", "pencil");
    let (mut client, server_first) = begin(broker, &scram, id).await;
    let last = scram.last(&server_first);
    client
        .send(auth(ReasonCode::ContinueAuthentication, METHOD, Some(last)))
        .await;
    let connack = client.recv_connack().await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    scram.verify(connack.properties.authentication_data.as_ref());
    client
}

/// [MQTT-4.12.0-2], [MQTT-4.12.0-3], [MQTT-4.12.0-5]: CONNECT with the method, AUTH 0x18
/// with server-first, AUTH 0x18 with client-final, CONNACK 0x00 with server-final and the
/// same method; then the connection works.
#[tokio::test]
async fn scram_sha_256_exchange_connects_mqtt_4_12_0_2() {
    let broker = scram_broker("connects", |_| {}).await;
    let mut scram = ScramClient::new("user", "pencil");
    let (mut client, server_first) = begin(&broker, &scram, "scram1").await;
    let first = std::str::from_utf8(&server_first).unwrap();
    assert!(
        first.contains(",s=") && first.ends_with(",i=4096"),
        "{first}"
    );
    let last = scram.last(&server_first);
    client
        .send(auth(ReasonCode::ContinueAuthentication, METHOD, Some(last)))
        .await;
    let connack = client.recv_connack().await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(
        connack
            .properties
            .authentication_method
            .as_ref()
            .map(|m| m.as_str()),
        Some(METHOD),
        "[MQTT-4.12.0-5] the successful CONNACK carries the method"
    );
    scram.verify(connack.properties.authentication_data.as_ref());
    client.subscribe("auth/t", QoS::AtLeastOnce).await;
    client
        .publish(publish("auth/t", "hello", QoS::AtMostOnce, 0))
        .await;
    match client.recv().await {
        Packet::Publish(p) => assert_eq!(text(&p), "hello"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// [MQTT-4.12.0-4]: a wrong password is refused with CONNACK 0x86 and the connection closes;
/// the Reason String says why.
#[tokio::test]
async fn wrong_password_is_refused_with_0x86_mqtt_4_12_0_4() {
    let broker = scram_broker("wrong", |_| {}).await;
    let mut scram = ScramClient::new("user", "crayon");
    let (mut client, server_first) = begin(&broker, &scram, "scram2").await;
    let last = scram.last(&server_first);
    client
        .send(auth(ReasonCode::ContinueAuthentication, METHOD, Some(last)))
        .await;
    let connack = client.recv_connack().await;
    assert_eq!(connack.reason_code, ReasonCode::BadUserNameOrPassword);
    assert!(!connack.session_present, "[MQTT-3.2.2-6]");
    let why = connack.properties.reason_string.expect("a Reason String");
    assert!(why.as_str().contains("SCRAM-SHA-256"), "{}", why.as_str());
    client.expect_closed("[MQTT-4.12.0-4]").await;
}

/// A User Name in the CONNECT must be the user SCRAM authenticated: another one is refused
/// with CONNACK 0x87 [MQTT-4.12.0-4]; the same one connects.
#[tokio::test]
async fn a_user_name_other_than_the_scram_user_is_refused_mqtt_4_12_0_4() {
    let broker = scram_broker("user-name", |_| {}).await;
    for (name, expected) in [
        ("other", ReasonCode::NotAuthorized),
        ("user", ReasonCode::Success),
    ] {
        let mut scram = ScramClient::new("user", "pencil");
        let mut client = Client::open(broker.local_addr(), V5).await;
        let mut connect = connect_with_method("scram11", METHOD, Some(scram.first()));
        connect.username = Some(MqttString::try_from(name).unwrap());
        client.send(Packet::Connect(Box::new(connect))).await;
        let server_first = expect_auth(&mut client, ReasonCode::ContinueAuthentication, "AUTH")
            .await
            .unwrap();
        let last = scram.last(&server_first);
        client
            .send(auth(ReasonCode::ContinueAuthentication, METHOD, Some(last)))
            .await;
        let connack = client.recv_connack().await;
        assert_eq!(connack.reason_code, expected, "User Name {name}");
    }
}

/// An unknown user goes through the same exchange (a made-up salt, RFC 5802 §5.1) and is
/// refused like a wrong password, so the broker does not tell which users exist.
#[tokio::test]
async fn unknown_user_is_refused_like_a_wrong_password_mqtt_4_12_0_4() {
    let broker = scram_broker("unknown-user", |_| {}).await;
    let mut scram = ScramClient::new("nobody", "pencil");
    let (mut client, server_first) = begin(&broker, &scram, "scram3").await;
    let last = scram.last(&server_first);
    client
        .send(auth(ReasonCode::ContinueAuthentication, METHOD, Some(last)))
        .await;
    let connack = client.recv_connack().await;
    assert_eq!(connack.reason_code, ReasonCode::BadUserNameOrPassword);
    client.expect_closed("[MQTT-4.12.0-4]").await;
}

/// [MQTT-4.12.0-1]: a method the broker does not offer gets CONNACK 0x8C and the connection
/// closes, whether the broker offers other methods or none.
#[tokio::test]
async fn unknown_method_is_refused_with_0x8c_mqtt_4_12_0_1() {
    for broker in [scram_broker("unknown-method", |_| {}).await, broker().await] {
        let connect =
            connect_with_method("scram4", "SCRAM-SHA-1", Some(Bytes::from("n,,n=user,r=x")));
        let (mut client, connack) = Client::connect_with(broker.local_addr(), connect).await;
        assert_eq!(connack.reason_code, ReasonCode::BadAuthenticationMethod);
        assert_eq!(connack.properties.authentication_method, None);
        client.expect_closed("[MQTT-4.12.0-1]").await;
    }
}

/// [MQTT-4.12.0-5]: an AUTH whose method differs from the CONNECT's is a Protocol Error:
/// CONNACK 0x82 before CONNACK was sent.
#[tokio::test]
async fn auth_with_another_method_is_a_protocol_error_mqtt_4_12_0_5() {
    let broker = scram_broker("other-method", |_| {}).await;
    let mut scram = ScramClient::new("user", "pencil");
    let (mut client, server_first) = begin(&broker, &scram, "scram5").await;
    let last = scram.last(&server_first);
    client
        .send(auth(
            ReasonCode::ContinueAuthentication,
            "PLAIN",
            Some(last),
        ))
        .await;
    let connack = client.recv_connack().await;
    assert_eq!(connack.reason_code, ReasonCode::ProtocolError);
    let why = connack.properties.reason_string.expect("a Reason String");
    assert!(why.as_str().contains("[MQTT-4.12.0-5]"), "{}", why.as_str());
    client.expect_closed("[MQTT-4.12.0-5]").await;
}

/// [MQTT-4.12.0-3]: the client answers AUTH 0x18 with AUTH 0x18; [MQTT-3.1.2-30]: nothing but
/// AUTH or DISCONNECT before CONNACK. Anything else is a Protocol Error (CONNACK 0x82).
#[tokio::test]
async fn only_auth_0x18_answers_the_server_mqtt_4_12_0_3() {
    let broker = scram_broker("answers", |_| {}).await;
    let scram = ScramClient::new("user", "pencil");
    let (mut client, _) = begin(&broker, &scram, "scram6").await;
    client
        .send(auth(ReasonCode::ReAuthenticate, METHOD, None))
        .await;
    let connack = client.recv_connack().await;
    assert_eq!(
        connack.reason_code,
        ReasonCode::ProtocolError,
        "[MQTT-4.12.0-3]"
    );
    client.expect_closed("[MQTT-4.12.0-3]").await;

    let (mut client, _) = begin(&broker, &scram, "scram6").await;
    client.send(Packet::PingReq).await;
    let connack = client.recv_connack().await;
    assert_eq!(
        connack.reason_code,
        ReasonCode::ProtocolError,
        "[MQTT-3.1.2-30]"
    );
    client.expect_closed("[MQTT-3.1.2-30]").await;
}

/// The whole exchange runs under the connect timeout: a client that stops answering AUTH is
/// closed without CONNACK once `limits.connect_timeout` has passed since it connected.
#[tokio::test]
async fn the_exchange_is_under_the_connect_timeout() {
    let broker = scram_broker("timeout", |c| c.limits.connect_timeout = 1).await;
    let scram = ScramClient::new("user", "pencil");
    let started = std::time::Instant::now();
    let (mut client, _) = begin(&broker, &scram, "scram7").await;
    client.expect_closed("connect timeout").await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
        "closed after {waited:?}"
    );
}

/// [MQTT-4.12.0-6]: a client that named no method gets no AUTH and no Authentication
/// Method in CONNACK; [MQTT-4.12.0-7]: its AUTH is a Protocol Error (DISCONNECT 0x82).
#[tokio::test]
async fn no_method_no_auth_mqtt_4_12_0_6() {
    let broker = scram_broker("no-method", |_| {}).await;
    let (mut client, connack) =
        Client::connect_with(broker.local_addr(), connect_packet(V5, "plain1", true)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(
        connack.properties.authentication_method, None,
        "[MQTT-4.12.0-6]"
    );
    assert_eq!(
        connack.properties.authentication_data, None,
        "[MQTT-4.12.0-6]"
    );
    client
        .send(auth(ReasonCode::ReAuthenticate, METHOD, None))
        .await;
    client
        .expect_disconnect(ReasonCode::ProtocolError, "[MQTT-4.12.0-7]")
        .await;
}

/// [MQTT-4.12.1-1]: after CONNACK the client re-authenticates with AUTH 0x19 and the same
/// method; the exchange ends with AUTH 0x00 and server-final. Other packets keep flowing
/// during it, and the connection goes on after it.
#[tokio::test]
async fn reauthentication_succeeds_mqtt_4_12_1_1() {
    let broker = scram_broker("reauth", |_| {}).await;
    let mut client = authenticated(&broker, "scram8").await;
    client.subscribe("auth/r", QoS::AtMostOnce).await;
    let mut scram = ScramClient::new("user", "pencil");
    client
        .send(auth(
            ReasonCode::ReAuthenticate,
            METHOD,
            Some(scram.first()),
        ))
        .await;
    let server_first = expect_auth(
        &mut client,
        ReasonCode::ContinueAuthentication,
        "[MQTT-4.12.1-1]",
    )
    .await
    .expect("server-first");
    client.ping().await;
    let last = scram.last(&server_first);
    client
        .send(auth(ReasonCode::ContinueAuthentication, METHOD, Some(last)))
        .await;
    let server_final = expect_auth(&mut client, ReasonCode::Success, "[MQTT-4.12.1-1]").await;
    scram.verify(server_final.as_ref());
    client
        .publish(publish("auth/r", "after", QoS::AtMostOnce, 0))
        .await;
    match client.recv().await {
        Packet::Publish(p) => assert_eq!(text(&p), "after"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// [MQTT-4.12.1-2]: a failed re-authentication ends with DISCONNECT (0x87 Not authorized)
/// and the connection closes; so does re-authenticating as another user.
#[tokio::test]
async fn failed_reauthentication_disconnects_mqtt_4_12_1_2() {
    let broker = scram_broker("reauth-fails", |_| {}).await;
    for (user, password) in [("user", "crayon"), ("other", "pen")] {
        let mut client = authenticated(&broker, "scram9").await;
        let mut scram = ScramClient::new(user, password);
        client
            .send(auth(
                ReasonCode::ReAuthenticate,
                METHOD,
                Some(scram.first()),
            ))
            .await;
        let server_first = expect_auth(&mut client, ReasonCode::ContinueAuthentication, "re-auth")
            .await
            .expect("server-first");
        let last = scram.last(&server_first);
        client
            .send(auth(ReasonCode::ContinueAuthentication, METHOD, Some(last)))
            .await;
        client
            .expect_disconnect(ReasonCode::NotAuthorized, "[MQTT-4.12.1-2]")
            .await;
    }
}

/// [MQTT-4.12.1-1]: re-authentication with another method, or AUTH 0x18 with no exchange in
/// progress, is a Protocol Error (DISCONNECT 0x82).
#[tokio::test]
async fn reauthentication_with_another_method_is_a_protocol_error_mqtt_4_12_1_1() {
    let broker = scram_broker("reauth-method", |_| {}).await;
    let mut client = authenticated(&broker, "scram10").await;
    client
        .send(auth(ReasonCode::ReAuthenticate, "SCRAM-SHA-1", None))
        .await;
    client
        .expect_disconnect(ReasonCode::ProtocolError, "[MQTT-4.12.1-1]")
        .await;
    let mut client = authenticated(&broker, "scram10").await;
    client
        .send(auth(ReasonCode::ContinueAuthentication, METHOD, None))
        .await;
    client
        .expect_disconnect(ReasonCode::ProtocolError, "AUTH 0x18 out of an exchange")
        .await;
}

/// The credentials file is checked at start: a bad line stops the broker from starting, and
/// the error names the file, the line and the expected form.
#[tokio::test]
async fn a_bad_credentials_file_is_refused_at_start() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("auth-bad-{}.scram", std::process::id()));
    std::fs::write(&file, "user:pencil\n").unwrap();
    let mut config = config();
    config.auth.scram_file = Some(file.clone());
    let err = tern_broker::Broker::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{}:1", file.display())), "{err}");
    assert!(err.contains("SCRAM-SHA-256$<iterations>"), "{err}");
    assert!(err.contains("auth.scram_file"), "{err}");

    // The same for auth.password_file, named as such.
    let mut config = self::config();
    config.auth.password_file = Some(file.clone());
    let err = tern_broker::Broker::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{}:1", file.display())), "{err}");
    assert!(err.contains("auth.password_file"), "{err}");
}

/// One file as both `auth.scram_file` and `auth.password_file`: SCRAM-SHA-256 still
/// authenticates `user`/`pencil` [MQTT-4.12.0-2], and a CONNECT with that User Name and
/// Password, no method, connects too; a wrong Password is refused with 0x86
/// [MQTT-3.1.4-2].
#[tokio::test]
async fn scram_and_connect_passwords_share_one_file_mqtt_4_12_0_2() {
    let broker = scram_broker("shared", |config| {
        config.auth.password_file = config.auth.scram_file.clone();
    })
    .await;
    let mut scram = authenticated(&broker, "shared1").await;
    scram.ping().await;
    let mut connect = connect_packet(V5, "shared2", true);
    connect.username = Some(MqttString::try_from("user").unwrap());
    connect.password = Some(Bytes::from_static(b"pencil"));
    let (mut client, connack) = Client::connect_with(broker.local_addr(), connect.clone()).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(
        connack.properties.authentication_method, None,
        "[MQTT-4.12.0-6]"
    );
    client.ping().await;
    connect.password = Some(Bytes::from_static(b"crayon"));
    let (mut client, connack) = Client::connect_with(broker.local_addr(), connect).await;
    assert_eq!(connack.reason_code, ReasonCode::BadUserNameOrPassword);
    client.expect_closed("[MQTT-3.1.4-2]").await;
    // allow_anonymous defaults to false with a password file; SCRAM users are not anonymous.
    let (mut client, connack) =
        Client::connect_with(broker.local_addr(), connect_packet(V5, "shared3", true)).await;
    assert_eq!(connack.reason_code, ReasonCode::NotAuthorized);
    client.expect_closed("[MQTT-3.1.4-2]").await;
}
