//! TLS against Debian's mosquitto with a TLS listener and certificates made by the test
//! (rcgen): a trusted round trip at QoS 1, an untrusted CA refused, `insecure` accepted, a
//! certificate for another name refused unless the name check is off, `mqtts://` URLs, and a
//! listener that requires a client certificate.

mod common;

use common::certs::{self, TestPki};
use common::mosquitto::{test_dir, Mosquitto};
use common::within;
use tern_client::{
    Client, ConnectErrorKind, ConnectOptions, ProtocolVersion, QoS, TlsOptions, TlsVersion,
};

/// mosquitto with a TLS listener using the PKI's server certificate.
fn tls_mosquitto(name: &str, require_certificate: bool) -> (Mosquitto, TestPki) {
    let dir = test_dir(name);
    let pki = certs::generate(&dir.join("pki"));
    let config = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_certificate}\n",
        pki.path("ca.crt").display(),
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
    );
    (Mosquitto::start(&dir, &config), pki)
}

fn options(host: &str, port: u16, tls: TlsOptions) -> ConnectOptions {
    ConnectOptions::new(host, port).tls(tls).reconnect(None)
}

async fn round_trip(client: &Client, topic: &str) {
    let mut stream = within("subscribe", client.subscribe(topic, QoS::AtLeastOnce))
        .await
        .expect("subscribed");
    within(
        "publish",
        client.publish(topic, "over TLS", QoS::AtLeastOnce, false),
    )
    .await
    .expect("PUBACK");
    let message = within("message", stream.recv()).await.expect("a message");
    assert_eq!(
        (message.topic.as_str(), message.payload_str(), message.qos),
        (topic, Some("over TLS"), QoS::AtLeastOnce)
    );
}

#[tokio::test]
async fn qos1_round_trip_over_tls_by_name_and_by_ip() {
    let (mosquitto, pki) = tls_mosquitto("tls-round-trip", false);
    for (host, version) in [
        ("localhost", ProtocolVersion::V5),
        ("127.0.0.1", ProtocolVersion::V3_1_1),
    ] {
        let tls = TlsOptions::new().ca_file(pki.path("ca.crt"));
        let options = options(host, mosquitto.port, tls).protocol(version);
        let client = within("connect", Client::connect(options))
            .await
            .unwrap_or_else(|e| panic!("TLS connect to {host}: {e}"));
        round_trip(&client, &format!("tls/{host}")).await;
        client.disconnect().await;
    }
}

#[tokio::test]
async fn mqtts_url_and_tls_versions() {
    let (mosquitto, pki) = tls_mosquitto("tls-url", false);
    let url = format!("mqtts://localhost:{}", mosquitto.port);
    let parsed = ConnectOptions::from_url(&url).expect("url");
    assert!(parsed.tls_options().is_some(), "mqtts:// turns TLS on");
    assert_eq!(
        ConnectOptions::from_url("mqtts://localhost")
            .expect("url")
            .port(),
        8883
    );
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let tls = TlsOptions::new()
            .ca_pem(pki.ca_pem.clone())
            .version(version);
        let client = within(
            "connect",
            Client::connect(parsed.clone().tls(tls).reconnect(None)),
        )
        .await
        .unwrap_or_else(|e| panic!("{version:?}: {e}"));
        round_trip(&client, "tls/url").await;
        client.disconnect().await;
    }
}

#[tokio::test]
async fn an_untrusted_ca_is_refused_with_a_tls_error() {
    let (mosquitto, _pki) = tls_mosquitto("tls-bad-ca", false);
    let tls = TlsOptions::new().ca_pem(certs::stranger_ca_pem());
    let err = within(
        "connect",
        Client::connect(options("localhost", mosquitto.port, tls)),
    )
    .await
    .expect_err("a certificate from an unknown CA is refused");
    assert_eq!(err.kind(), ConnectErrorKind::Tls, "{err}");
    assert!(
        err.to_string().contains("certificate"),
        "the message says why: {err}"
    );

    // The built-in roots do not know the test CA either.
    let err = within(
        "connect",
        Client::connect(options("localhost", mosquitto.port, TlsOptions::new())),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.kind(), ConnectErrorKind::Tls, "{err}");

    // A plain client on the TLS port gets no CONNACK: an I/O error or timeout, not TLS.
    let plain = ConnectOptions::new("127.0.0.1", mosquitto.port)
        .reconnect(None)
        .connect_timeout(std::time::Duration::from_secs(2));
    let err = within("connect", Client::connect(plain))
        .await
        .expect_err("plain MQTT to a TLS listener fails");
    assert_ne!(err.kind(), ConnectErrorKind::Tls);
}

#[tokio::test]
async fn insecure_accepts_any_certificate() {
    let (mosquitto, _pki) = tls_mosquitto("tls-insecure", false);
    let tls = TlsOptions::new().insecure(true);
    let client = within(
        "connect",
        Client::connect(options("localhost", mosquitto.port, tls)),
    )
    .await
    .expect("insecure skips verification");
    round_trip(&client, "tls/insecure").await;
    client.disconnect().await;
}

#[tokio::test]
async fn the_server_name_is_checked_unless_turned_off() {
    let (mosquitto, pki) = tls_mosquitto("tls-name", false);
    let tls = TlsOptions::new()
        .ca_pem(pki.ca_pem.clone())
        .server_name("broker.example");
    let err = within(
        "connect",
        Client::connect(options("127.0.0.1", mosquitto.port, tls.clone())),
    )
    .await
    .expect_err("the certificate does not name broker.example");
    assert_eq!(err.kind(), ConnectErrorKind::Tls, "{err}");

    let client = within(
        "connect",
        Client::connect(options(
            "127.0.0.1",
            mosquitto.port,
            tls.verify_hostname(false),
        )),
    )
    .await
    .expect("the chain is trusted; the name is not checked");
    client.disconnect().await;
}

#[tokio::test]
async fn a_required_client_certificate_is_presented() {
    let (mosquitto, pki) = tls_mosquitto("tls-client-cert", true);
    let without = TlsOptions::new().ca_file(pki.path("ca.crt"));
    let err = within(
        "connect",
        Client::connect(options("localhost", mosquitto.port, without.clone())),
    )
    .await
    .expect_err("mosquitto requires a client certificate");
    assert_eq!(err.kind(), ConnectErrorKind::Tls, "{err}");

    let with_files = without
        .clone()
        .client_cert(pki.path("client.crt"), pki.path("client.key"));
    let client = within(
        "connect",
        Client::connect(options("localhost", mosquitto.port, with_files)),
    )
    .await
    .expect("the client certificate is accepted");
    round_trip(&client, "tls/client-cert").await;
    client.disconnect().await;

    let with_pem = without.client_cert_pem(pki.client_cert_pem.clone(), pki.client_key_pem.clone());
    let client = within(
        "connect",
        Client::connect(options("localhost", mosquitto.port, with_pem)),
    )
    .await
    .expect("the client certificate from PEM bytes is accepted");
    client.disconnect().await;
}

#[tokio::test]
async fn unreadable_tls_files_are_invalid_options() {
    let tls = TlsOptions::new().ca_file("/nonexistent/ca.crt");
    let err = Client::connect(options("localhost", 1, tls))
        .await
        .expect_err("no such file");
    assert_eq!(err.kind(), ConnectErrorKind::InvalidOptions);
    assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
}
