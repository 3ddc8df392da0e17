//! `tern bench conn | pub | sub` against `tern broker --in-memory` on a free port, and over
//! TLS against mosquitto with rcgen certificates: runs complete, `--json` parses and its
//! counts add up (nothing lost or duplicated at QoS 1/2), persistent subscribers get what
//! was queued while they were away, bad flags exit 2 with a clear message. Small counts;
//! nothing is timed.

mod common;
mod tools;

// The certificate maker of tern-client's tests, shared rather than copied.
#[allow(dead_code, unreachable_pub)]
#[path = "../../client/tests/common/certs.rs"]
mod certs;

use std::time::Duration;

use common::Tern;
use serde_json::Value;
use tools::{free_port, temp_dir, Client, Mosquitto, Output};

/// Longest a bench run of these tests may take.
const RUN: Duration = Duration::from_secs(60);

/// `tern bench ARGS` as a running process.
fn bench(args: &[&str]) -> Client {
    let mut command = common::tern();
    command.arg("bench").args(args);
    Client::spawn(command, None)
}

/// Runs `tern bench ARGS --json` to the end; checks exit 0 and returns the JSON object.
fn bench_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = bench(&all).finish(RUN);
    assert_eq!(out.code(), Some(0), "tern bench {args:?}: {out:#?}");
    json(&out)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", out.text()))
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

/// Asserts a combined run delivered each message exactly once to each matching subscriber.
fn assert_exact(v: &Value, sent: u64, expected: u64) {
    assert_eq!(n(v, "sent"), sent, "{v}");
    assert_eq!(n(v, "expected"), expected, "{v}");
    assert_eq!(n(v, "received"), expected, "{v}");
    assert_eq!(n(v, "lost"), 0, "{v}");
    assert_eq!(n(v, "dups"), 0, "{v}");
    assert_eq!(n(v, "errors"), 0, "{v}");
}

#[test]
fn fan_in_qos1_and_qos2_nothing_lost_or_duplicated() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    for (version, qos) in [("3", "1"), ("5", "1"), ("311", "2"), ("mqttv5", "2")] {
        let v = bench_json(&[
            "pub",
            "-p",
            &port,
            "-V",
            version,
            "-q",
            qos,
            "-c",
            "3",
            "--subscribers",
            "2",
            "-L",
            "400",
            "-T",
            "1",
        ]);
        assert_exact(&v, 1200, 2400);
        assert_eq!(n(&v, "acked"), 1200, "{v}");
        assert_eq!(n(&v, "qos"), qos.parse::<u64>().unwrap());
        assert!(
            v["ack_p99_us"].as_f64().is_some() && v["lat_p50_us"].as_f64().is_some(),
            "{v}"
        );
    }
}

#[test]
fn pairs_and_fan_out_count_only_matching_subscribers() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    // Pairs: subscriber i gets publisher i's messages only.
    let v = bench_json(&[
        "pub",
        "-p",
        &port,
        "-q",
        "1",
        "-c",
        "4",
        "--subscribers",
        "4",
        "-t",
        "pairs/%i",
        "--sub-topic",
        "pairs/%i",
        "-L",
        "250",
    ]);
    assert_exact(&v, 1000, 1000);
    // Fan-out: one publisher, five subscribers on its exact topic; 100 B payloads.
    let v = bench_json(&[
        "pub",
        "-p",
        &port,
        "-q",
        "1",
        "-c",
        "1",
        "--subscribers",
        "5",
        "-t",
        "fanout/one",
        "-s",
        "100",
        "-L",
        "300",
        "-T",
        "2",
    ]);
    assert_exact(&v, 300, 1500);
    // A rate and a duration instead of a limit: whatever was sent arrives.
    let v = bench_json(&[
        "pub",
        "-p",
        &port,
        "-q",
        "1",
        "-c",
        "2",
        "--subscribers",
        "1",
        "-I",
        "400",
        "-d",
        "0.5",
    ]);
    let sent = n(&v, "sent");
    assert!(sent > 0 && sent <= 202 + 2, "{v}");
    assert_exact(&v, sent, sent);
}

#[test]
fn sub_counts_what_a_separate_pub_sends() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    let mut sub = bench(&[
        "sub", "-p", &port, "-c", "2", "-t", "split/#", "-q", "1", "-L", "600", "--json",
    ]);
    sub.wait_for_stderr("2 subscriber(s) ready");
    let v = bench_json(&[
        "pub", "-p", &port, "-c", "2", "-t", "split/%i", "-q", "1", "-L", "300",
    ]);
    assert_eq!((n(&v, "sent"), n(&v, "acked")), (600, 600), "{v}");
    let out = sub.finish(RUN);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let v = json(&out);
    assert_eq!(n(&v, "received"), 1200, "{v}");
    assert_eq!(n(&v, "dups"), 0, "{v}");
    assert_eq!(n(&v, "lost"), 0, "{v}");
    assert_eq!(n(&v, "foreign"), 0, "{v}");
    assert_eq!(n(&v, "publishers_seen"), 2, "{v}");
    assert!(v["lat_p99_us"].as_f64().is_some(), "{v}");
}

#[test]
fn persistent_subscribers_get_what_was_queued_while_away() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    for (version, expiry, prefix) in [("5", "300", "persist5-"), ("3", "0", "persist3-")] {
        let session = [
            "-C", "false", "-x", expiry, "--prefix", prefix, "-V", version,
        ];
        // Subscribe once, then leave with the session kept.
        let v = bench_json(
            &[
                &["sub", "-p", &port, "-t", "queued/#", "-q", "1", "-d", "0.2"],
                &session[..],
            ]
            .concat(),
        );
        assert_eq!(n(&v, "received"), 0, "{v}");
        let v = bench_json(&["pub", "-p", &port, "-t", "queued/x", "-q", "1", "-L", "150"]);
        assert_eq!(n(&v, "acked"), 150, "{v}");
        // Back: the queue arrives without subscribing again being needed.
        let v = bench_json(
            &[
                &["sub", "-p", &port, "-t", "queued/#", "-q", "1", "-L", "150"],
                &session[..],
            ]
            .concat(),
        );
        assert_eq!(
            (n(&v, "received"), n(&v, "lost"), n(&v, "dups")),
            (150, 0, 0),
            "{v}"
        );
    }
}

#[test]
fn conn_connects_holds_and_reports() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    let v = bench_json(&[
        "conn", "-p", &port, "-c", "40", "-i", "1", "-d", "0.3", "-V", "3",
    ]);
    assert_eq!((n(&v, "connected"), n(&v, "failed")), (40, 0), "{v}");
    assert_eq!(n(&v, "dropped"), 0, "{v}");
    assert!(v["conns_per_s"].as_f64().is_some_and(|r| r > 0.0), "{v}");
    assert!(v["hs_p50_us"].as_f64().is_some(), "{v}");
}

#[test]
fn summary_and_progress_lines() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    let out = bench(&[
        "pub",
        "-p",
        &port,
        "-c",
        "1",
        "--subscribers",
        "1",
        "-q",
        "1",
        "-I",
        "200",
        "-d",
        "1.5",
        "--progress",
    ])
    .finish(RUN);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let text = out.text();
    assert!(
        text.starts_with("tern bench pub: 1 publisher(s) -> 1 subscriber(s), QoS 1"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("lost ") && l.ends_with(" 0")),
        "{text}"
    );
    let progress: Vec<_> = out.stderr.iter().filter(|l| l.contains(" msg/s")).collect();
    assert!(!progress.is_empty(), "no progress line: {:?}", out.stderr);
    assert!(
        progress[0].contains("ack latency") && progress[0].contains("errors 0"),
        "{progress:?}"
    );
}

#[test]
fn bad_flags_exit_2_with_the_reason() {
    let cases: [(&[&str], &str); 7] = [
        (&["pub", "-s", "10"], "-s/--size must be at least 20"),
        (&["pub", "-q", "3"], "QoS is 0, 1 or 2"),
        (&["pub", "-t", "a/#"], "gives topic \"a/#\""),
        (
            &["pub", "--subscribers", "1", "--sub-topic", "a/#/b"],
            "gives filter",
        ),
        (
            &["sub", "-V", "3", "-x", "60"],
            "-x/--session-expiry needs MQTT 5",
        ),
        (&["conn", "-V", "6"], "use 3 or 311"),
        (&["pub", "-c", "0"], "-c/--count must be at least 1"),
    ];
    for (args, reason) in cases {
        let out = bench(args).finish(RUN);
        assert_eq!(out.code(), Some(2), "tern bench {args:?}: {out:#?}");
        assert!(
            out.errors().contains(reason),
            "tern bench {args:?}: {}",
            out.errors()
        );
        assert!(out.stdout.is_empty(), "{out:#?}");
    }
    let out = bench(&["pub", "--help"]).finish(RUN);
    assert_eq!(out.code(), Some(0));
    for flag in [
        "--host",
        "--subscribers",
        "--inflight",
        "--rate",
        "--cafile",
        "--json",
    ] {
        assert!(
            out.text().contains(flag),
            "--help lacks {flag}: {}",
            out.text()
        );
    }
}

#[test]
fn no_broker_is_a_run_failure_exit_1() {
    let port = free_port().to_string();
    let out = bench(&["pub", "-p", &port, "-L", "1"]).finish(RUN);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(
        out.errors().contains("could not connect"),
        "{}",
        out.errors()
    );
}

/// mosquitto with a TLS listener on certificates made by the test.
fn tls_mosquitto(name: &str, require_certificate: bool) -> (Mosquitto, certs::TestPki) {
    let pki = certs::generate(&temp_dir(&format!("bench-tls-{name}")));
    let config = format!(
        "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_certificate}\n",
        pki.path("ca.crt").display(),
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
    );
    (Mosquitto::start(&config), pki)
}

#[test]
fn tls_against_mosquitto() {
    let (mosquitto, pki) = tls_mosquitto("plain", false);
    let port = mosquitto.port.to_string();
    let ca = pki.path("ca.crt").display().to_string();
    for version in ["3", "5"] {
        let v = bench_json(&[
            "pub",
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-V",
            version,
            "-q",
            "1",
            "-c",
            "2",
            "--subscribers",
            "1",
            "-L",
            "200",
        ]);
        assert_exact(&v, 400, 400);
    }
    let v = bench_json(&[
        "conn",
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &ca,
        "-c",
        "5",
        "-d",
        "0.2",
    ]);
    assert_eq!(n(&v, "connected"), 5, "{v}");
    // An unknown CA is refused; --insecure accepts it.
    let out = bench(&["pub", "-h", "localhost", "-p", &port, "--tls", "-L", "1"]).finish(RUN);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(out.errors().contains("TLS"), "{}", out.errors());
    let v = bench_json(&[
        "pub",
        "-h",
        "localhost",
        "-p",
        &port,
        "--insecure",
        "-q",
        "1",
        "-L",
        "10",
    ]);
    assert_eq!(n(&v, "acked"), 10, "{v}");
}

#[test]
fn tls_client_certificate_against_mosquitto() {
    let (mosquitto, pki) = tls_mosquitto("client-cert", true);
    let port = mosquitto.port.to_string();
    let path = |name: &str| pki.path(name).display().to_string();
    let (ca, cert, key) = (path("ca.crt"), path("client.crt"), path("client.key"));
    let v = bench_json(&[
        "pub",
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "-q",
        "2",
        "--subscribers",
        "1",
        "-L",
        "100",
    ]);
    assert_exact(&v, 100, 100);
    let out = bench(&[
        "pub",
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &ca,
        "-L",
        "1",
    ])
    .finish(RUN);
    assert_eq!(
        out.code(),
        Some(1),
        "without a client certificate: {out:#?}"
    );
}

#[test]
fn ctrl_c_ends_an_unbounded_run_with_its_summary() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    let mut run = bench(&[
        "pub",
        "-p",
        &port,
        "-q",
        "1",
        "-c",
        "2",
        "--subscribers",
        "1",
        "-I",
        "500",
        "--json",
    ]);
    run.wait_for_stderr("ready, publishing");
    // Some messages go out before the signal; how many does not matter.
    std::thread::sleep(Duration::from_millis(300));
    run.signal("INT");
    let out = run.finish(RUN);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let v = json(&out);
    let sent = n(&v, "sent");
    assert!(sent > 0, "{v}");
    assert_exact(&v, sent, sent);
    assert_eq!(n(&v, "acked"), sent, "{v}");
}
