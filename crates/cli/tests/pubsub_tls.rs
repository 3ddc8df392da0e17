//! `tern pub` and `tern sub` over TLS against Debian's mosquitto with a TLS listener and
//! certificates made by the test (rcgen), cross-checked with mosquitto_pub and
//! mosquitto_sub: `--cafile`, `--capath`, `-L mqtts://`, `--cert`/`--key` for a listener that
//! requires a client certificate, and the errors when trust or TLS is missing.

mod common;
mod tools;

// The certificate maker of tern-client's tests, shared rather than copied.
#[allow(dead_code, unreachable_pub)]
#[path = "../../client/tests/common/certs.rs"]
mod certs;

use std::path::Path;

use certs::TestPki;
use tools::{mosquitto_output, temp_dir, tern_pub, tern_pub_ok, tern_sub, Client, Mosquitto};

/// mosquitto with a TLS listener; `require_certificate` asks clients for one.
fn tls_mosquitto(name: &str, require_certificate: bool) -> (Mosquitto, TestPki) {
    let pki = certs::generate(&temp_dir(&format!("tls-{name}")));
    let config = format!(
        "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_certificate}\n",
        pki.path("ca.crt").display(),
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
    );
    (Mosquitto::start(&config), pki)
}

fn path(pki: &TestPki, name: &str) -> String {
    pki.path(name).display().to_string()
}

/// `mosquitto_sub -d ARGS` on the TLS listener, waiting for its SUBACK.
fn mosquitto_sub_tls(port: u16, pki: &TestPki, args: &[&str]) -> Client {
    let mut command = std::process::Command::new("stdbuf");
    command
        .args(["-oL", "mosquitto_sub", "-d", "-h", "localhost"])
        .args(["-p", &port.to_string(), "--cafile", &path(pki, "ca.crt")])
        .args(args);
    let mut client = Client::spawn(command, None);
    client.wait_for_stdout("received SUBACK");
    client
}

#[test]
fn tern_pub_over_tls_reaches_mosquitto_sub() {
    let (mosquitto, pki) = tls_mosquitto("pub", false);
    let sub = mosquitto_sub_tls(
        mosquitto.port,
        &pki,
        &["-t", "tls/pub", "-q", "1", "-v", "-C", "2", "-W", "10"],
    );
    let ca = path(&pki, "ca.crt");
    for version in ["mqttv311", "mqttv5"] {
        tern_pub_ok(
            mosquitto.port,
            &[
                "--cafile", &ca, "-V", version, "-q", "1", "-t", "tls/pub", "-m", version,
            ],
            None,
        );
    }
    let out = mosquitto_output(sub);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert_eq!(out.text(), "tls/pub mqttv311\ntls/pub mqttv5\n");
}

#[test]
fn mosquitto_pub_over_tls_reaches_tern_sub_with_capath() {
    let (mosquitto, pki) = tls_mosquitto("sub", false);
    let capath = temp_dir("tls-sub-capath");
    std::fs::copy(pki.path("ca.crt"), capath.join("ca.pem")).expect("copy the CA");
    let sub = tern_sub(
        mosquitto.port,
        &[
            "--capath",
            &capath.display().to_string(),
            "-t",
            "tls/sub",
            "-q",
            "1",
            "-v",
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    let port = mosquitto.port.to_string();
    let out = Client::spawn(
        {
            let mut c = std::process::Command::new("mosquitto_pub");
            c.args([
                "-h",
                "localhost",
                "-p",
                &port,
                "--cafile",
                &path(&pki, "ca.crt"),
            ])
            .args(["-q", "1", "-t", "tls/sub", "-m", "21.5"]);
            c
        },
        None,
    )
    .finish(tools::TIMEOUT);
    assert_eq!(out.code(), Some(0), "mosquitto_pub: {out:#?}");
    let out = sub.finish(tools::TIMEOUT);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert_eq!(out.text(), "tls/sub 21.5\n");
}

#[test]
fn mqtts_url_with_cafile() {
    let (mosquitto, pki) = tls_mosquitto("url", false);
    let sub = mosquitto_sub_tls(
        mosquitto.port,
        &pki,
        &["-t", "tls/url", "-v", "-C", "1", "-W", "10"],
    );
    let url = format!("mqtts://127.0.0.1:{}/tls/url", mosquitto.port);
    let mut command = common::tern();
    command.args([
        "pub",
        "-L",
        &url,
        "--cafile",
        &path(&pki, "ca.crt"),
        "-m",
        "via URL",
    ]);
    let out = Client::spawn(command, None).finish(tools::TIMEOUT);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let out = mosquitto_output(sub);
    assert_eq!(out.text(), "tls/url via URL\n", "{out:#?}");
}

#[test]
fn a_required_client_certificate_is_sent_with_cert_and_key() {
    let (mosquitto, pki) = tls_mosquitto("client-cert", true);
    let ca = path(&pki, "ca.crt");
    let (cert, key) = (path(&pki, "client.crt"), path(&pki, "client.key"));
    let tls_args = ["--cafile", &ca, "--cert", &cert, "--key", &key];
    let sub = tern_sub(
        mosquitto.port,
        &[
            &tls_args[..],
            &["-t", "tls/cert", "-v", "-C", "1", "-W", "10"],
        ]
        .concat(),
    );
    tern_pub_ok(
        mosquitto.port,
        &[&tls_args[..], &["-t", "tls/cert", "-m", "signed"]].concat(),
        None,
    );
    let out = sub.finish(tools::TIMEOUT);
    assert_eq!(out.text(), "tls/cert signed\n", "{out:#?}");

    let out = tern_pub(
        mosquitto.port,
        &["--cafile", &ca, "-t", "tls/cert", "-m", "unsigned"],
        None,
    );
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(out.errors().contains("--cert/--key"), "{out:#?}");
}

#[test]
fn untrusted_server_and_tls_flags_without_tls_are_errors() {
    let (mosquitto, _pki) = tls_mosquitto("untrusted", false);
    // The built-in roots do not hold the test's CA.
    let out = tern_pub(
        mosquitto.port,
        &["--tls-use-os-certs", "-t", "a", "-m", "x"],
        None,
    );
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(out.errors().contains("TLS with 127.0.0.1"), "{out:#?}");
    assert!(out.errors().contains("--cafile"), "{out:#?}");

    let out = tern_pub(mosquitto.port, &["--insecure", "-t", "a", "-m", "x"], None);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(out.errors().contains("is a TLS option"), "{out:#?}");

    let missing = Path::new("/nonexistent/ca.crt");
    let out = tern_pub(
        mosquitto.port,
        &[
            "--cafile",
            &missing.display().to_string(),
            "-t",
            "a",
            "-m",
            "x",
        ],
        None,
    );
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(out.errors().contains("/nonexistent/ca.crt"), "{out:#?}");
}
