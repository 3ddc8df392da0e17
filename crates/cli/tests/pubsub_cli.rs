//! The flags of `tern pub` and `tern sub` one by one, their exit codes, and sessions and
//! wills, run as a user types them against `tern broker` (and mosquitto where the broker
//! must refuse a connection); results are checked with mosquitto's clients where that makes
//! the check independent of tern-client.

mod common;
mod tools;

use tools::{
    mosquitto_output, mosquitto_pub, mosquitto_sub, tern, tern_bare, tern_pub, tern_pub_ok,
    tern_sub, Broker, Client, Mosquitto, TIMEOUT,
};

#[test]
fn usage_errors_exit_1_and_say_what_to_do() {
    let cases: &[(&[&str], &str)] = &[
        (&["pub", "-t", "a"], "give -m MESSAGE"),
        (&["pub", "-m", "x"], "-t TOPIC"),
        (
            &["pub", "-t", "a/+", "-m", "x"],
            "does it contain '+' or '#'",
        ),
        (&["pub", "-t", "a", "-m", "x", "-n"], "cannot be used with"),
        (
            &["pub", "-t", "a", "-m", "x", "-P", "secret"],
            "add -u USER",
        ),
        (&["pub", "-t", "a", "-m", "x", "-q", "3"], "use 0, 1 or 2"),
        (&["pub", "-t", "a", "-m", "x", "-k", "2"], "-k"),
        (&["pub", "-t", "a", "-m", "x", "-c"], "client id (-i)"),
        (&["pub", "-t", "a", "-m", "x", "-V", "6"], "mqttv311"),
        (
            &["pub", "-t", "a", "-m", "x", "-D", "publish", "foo", "1"],
            "invalid property name",
        ),
        (
            &[
                "pub",
                "-t",
                "a",
                "-m",
                "x",
                "-V",
                "311",
                "-D",
                "connect",
                "receive-maximum",
                "1",
            ],
            "-V mqttv5",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "--will-retain"],
            "no will topic",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "--cert", "c", "--key", "k"],
            "is a TLS option",
        ),
        (
            &["pub", "-L", "ws://h/t", "-m", "x"],
            "WebSockets is not supported",
        ),
        (&["pub", "-L", "mqtt://h", "-m", "x"], "topic missing"),
        (&["sub"], "you must specify a topic"),
        (&["sub", "-t", "a/#/b"], "wildcards"),
        (
            &["sub", "-t", "a", "-F", "%z"],
            "Invalid format specifier 'z'",
        ),
        (&["sub", "-t", "a", "-C", "0"], "-C"),
        (
            &["sub", "-t", "a", "-R", "--retained-only"],
            "cannot be used with",
        ),
        (
            &[
                "sub",
                "-t",
                "a",
                "-D",
                "subscribe",
                "user-property",
                "k",
                "v",
            ],
            "SUBSCRIBE",
        ),
        (&["sub", "-t", "a", "--no-such-flag"], "--no-such-flag"),
    ];
    for (args, needle) in cases {
        let out = tern_bare(args);
        assert_eq!(out.code(), Some(1), "tern {args:?}: {out:#?}");
        assert!(
            out.errors().contains(needle),
            "tern {args:?}: no {needle:?} in {out:#?}"
        );
    }
}

#[test]
fn help_is_mosquitto_style_and_h_is_the_host() {
    for (command, lines) in [
        (
            "pub",
            &[
                " -h : mqtt host to connect to",
                " -l : read messages from stdin",
                " -D : define MQTT v5",
            ][..],
        ),
        (
            "sub",
            &[
                " -F : output format",
                " -W : Specifies a timeout",
                " %j JSON of the message",
                " -U : unsubscribe",
            ][..],
        ),
    ] {
        let out = tern_bare(&[command, "--help"]);
        assert_eq!(out.code(), Some(0), "{out:#?}");
        for line in lines {
            assert!(
                out.text().contains(line),
                "tern {command} --help lacks {line:?}"
            );
        }
        // -h takes a value: it is the host, not help.
        let out = tern_bare(&[command, "-h"]);
        assert_eq!(out.code(), Some(1), "{out:#?}");
        assert!(out.errors().contains("--host <HOST>"), "{out:#?}");
    }
}

#[test]
fn connection_failures_exit_like_mosquitto() {
    let port = tools::free_port();
    let out = tern_pub(port, &["-t", "a", "-m", "x"], None);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(
        out.errors().contains("cannot connect to 127.0.0.1"),
        "{out:#?}"
    );
    assert!(out.errors().contains("-p PORT"), "{out:#?}");

    // A CONNACK refusal exits with its code: 5 (3.1.1) and 0x87 = 135 (5.0), as mosquitto's.
    let closed = Mosquitto::start("allow_anonymous false\n");
    for (version, code) in [("mqttv311", 5), ("mqttv5", 135)] {
        let out = tern_pub(closed.port, &["-V", version, "-t", "a", "-m", "x"], None);
        assert_eq!(out.code(), Some(code), "{out:#?}");
        assert!(out.errors().contains("NotAuthorized"), "{out:#?}");
        let mut command = tern(closed.port, &["sub", "-V", version, "-t", "a"]);
        command.arg("-W").arg("5");
        let out = Client::spawn(command, None).finish(TIMEOUT);
        assert_eq!(out.code(), Some(code), "{out:#?}");
        let mut theirs = std::process::Command::new("mosquitto_pub");
        theirs.args([
            "-p",
            &closed.port.to_string(),
            "-V",
            version,
            "-t",
            "a",
            "-m",
            "x",
        ]);
        assert_eq!(
            Client::spawn(theirs, None).finish(TIMEOUT).code(),
            Some(code)
        );
    }
    let out = tern_pub(closed.port, &["-t", "a", "-m", "x", "--quiet"], None);
    assert_eq!((out.code(), out.stderr.len()), (Some(5), 0), "{out:#?}");
}

#[test]
fn count_filter_out_no_eol_and_exit_after_subscribe() {
    let broker = Broker::tern();
    let port = broker.port();
    let sub = tern_sub(
        port,
        &["-t", "c/#", "-T", "c/skip/#", "-N", "-C", "3", "-W", "10"],
    );
    for (topic, payload) in [
        ("c/a", "1"),
        ("c/skip/x", "no"),
        ("c/b", "2"),
        ("c/c", "3"),
        ("c/d", "4"),
    ] {
        mosquitto_pub(port, &["-t", topic, "-m", payload]);
    }
    let out = sub.finish(TIMEOUT);
    assert_eq!(
        (out.code(), out.text().as_str()),
        (Some(0), "123"),
        "{out:#?}"
    );

    let out = Client::spawn(tern(port, &["sub", "-t", "c/#", "-E"]), None).finish(TIMEOUT);
    assert_eq!((out.code(), out.stdout.len()), (Some(0), 0), "{out:#?}");
}

#[test]
fn json_output_and_url() {
    let broker = Broker::tern();
    let port = broker.port();
    let url = format!("mqtt://127.0.0.1:{port}/j/#");
    let mut command = common::tern();
    command.args([
        "sub", "-d", "-L", &url, "--json", "-q", "1", "-C", "2", "-W", "10",
    ]);
    let mut sub = Client::spawn(command, None);
    sub.wait_for_stderr("Subscribed to 'j/#'");
    let mut command = common::tern();
    command.args([
        "pub",
        "-L",
        &format!("mqtt://127.0.0.1:{port}/j/text"),
        "-m",
        "héllo",
        "-q",
        "1",
        "-r",
        "--json",
    ]);
    let out = Client::spawn(command, None).finish(TIMEOUT);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pub --json");
    assert_eq!(reply["reason"], "Success");
    assert_eq!(reply["qos"], 1);
    tern_pub_ok(port, &["-t", "j/bin", "-s"], Some(&[0xff, 0xfe, 0x00]));
    let out = sub.finish(TIMEOUT);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{out:#?}");
    assert_eq!(
        (&lines[0]["topic"], &lines[0]["payload"]),
        (&"j/text".into(), &"héllo".into())
    );
    assert_eq!(
        (&lines[0]["qos"], &lines[0]["retain"]),
        (&1.into(), &false.into())
    );
    assert!(
        lines[0]["tst"].as_str().is_some_and(|t| t.len() >= 26),
        "{lines:?}"
    );
    assert_eq!(lines[1]["payload_base64"], "//4A");
    assert_eq!(lines[1]["payloadlen"], 3);
}

#[test]
fn repeat_publishes_again() {
    let broker = Broker::tern();
    let port = broker.port();
    let sub = mosquitto_sub(port, &["-t", "rep", "-C", "3", "-W", "10"]);
    tern_pub_ok(
        port,
        &[
            "-t",
            "rep",
            "-m",
            "again",
            "--repeat",
            "3",
            "--repeat-delay",
            "0.01",
        ],
        None,
    );
    assert_eq!(mosquitto_output(sub).text(), "again\nagain\nagain\n");
}

// One PUBLISH matching two -t filters is printed as many times as mosquitto_sub prints it.
#[test]
fn overlapping_filters_print_as_mosquitto_sub() {
    for broker in [Broker::tern(), Broker::mosquitto()] {
        let port = broker.port();
        for version in ["mqttv311", "mqttv5"] {
            let args = ["-V", version, "-t", "o/#", "-t", "o/a", "-v", "-W", "2"];
            let theirs = mosquitto_sub(port, &args);
            let ours = tern_sub(port, &args);
            mosquitto_pub(port, &["-t", "o/a", "-m", "1"]);
            mosquitto_pub(port, &["-t", "o/b", "-m", "2"]);
            let (theirs, ours) = (mosquitto_output(theirs), ours.finish(TIMEOUT));
            assert_eq!(ours.code(), Some(27));
            assert_eq!(ours.text(), theirs.text(), "{version} on port {port}");
        }
    }
}

// -c keeps the session (3.1.1: Clean Session 0; 5.0: session expiry "never"), and -U removes
// a subscription from it; mosquitto_sub resumes the session to see what was kept.
#[test]
fn persistent_session_and_unsubscribe() {
    let broker = Broker::tern();
    let port = broker.port();
    for (version, id) in [("mqttv311", "keeper-311"), ("mqttv5", "keeper-5")] {
        let out = Client::spawn(
            tern(
                port,
                &[
                    "sub", "-V", version, "-c", "-i", id, "-q", "1", "-t", "keep/a", "-t",
                    "keep/b", "-E",
                ],
            ),
            None,
        )
        .finish(TIMEOUT);
        assert_eq!(out.code(), Some(0), "{out:#?}");
        let out = Client::spawn(
            tern(
                port,
                &["sub", "-V", version, "-c", "-i", id, "-U", "keep/a", "-E"],
            ),
            None,
        )
        .finish(TIMEOUT);
        assert_eq!(out.code(), Some(0), "{out:#?}");
        mosquitto_pub(port, &["-q", "1", "-t", "keep/a", "-m", "unsubscribed"]);
        mosquitto_pub(port, &["-q", "1", "-t", "keep/b", "-m", "kept"]);
        let resumed = mosquitto_sub(
            port,
            &[
                "-V",
                version,
                "-c",
                "-i",
                id,
                "-q",
                "1",
                "-t",
                "keep/none",
                "-v",
                "-W",
                "2",
            ],
        );
        let out = mosquitto_output(resumed);
        assert_eq!(out.text(), "keep/b kept\n", "{version}: {out:#?}");
    }
}

// A resumed session's queued messages are printed: they arrive before tern sub has subscribed
// again, and tern-client keeps them for the subscription ([MQTT-3.2.2-2], §4.4).
#[test]
fn resumed_session_prints_what_was_queued() {
    let broker = Broker::tern();
    let port = broker.port();
    for (version, id) in [("mqttv311", "resume-311"), ("mqttv5", "resume-5")] {
        let args = [
            "sub", "-V", version, "-c", "-i", id, "-q", "1", "-t", "resume/#",
        ];
        let out = Client::spawn(tern(port, &[&args[..], &["-E"]].concat()), None).finish(TIMEOUT);
        assert_eq!(out.code(), Some(0), "{out:#?}");
        for n in 0..3 {
            mosquitto_pub(
                port,
                &["-q", "1", "-t", "resume/t", "-m", &format!("queued {n}")],
            );
        }
        let out = Client::spawn(
            tern(port, &[&args[..], &["-v", "-C", "3", "-W", "10"]].concat()),
            None,
        )
        .finish(TIMEOUT);
        assert_eq!(out.code(), Some(0), "{out:#?}");
        assert_eq!(
            out.text(),
            "resume/t queued 0\nresume/t queued 1\nresume/t queued 2\n",
            "{version}"
        );
        assert!(out.stderr.is_empty(), "no warning: {out:#?}");
    }
}

// The will is published when tern sub dies without DISCONNECT; Ctrl-C/SIGTERM disconnects
// cleanly (no will) and exits 0.
#[test]
fn will_and_clean_exit() {
    let broker = Broker::tern();
    let port = broker.port();
    let watcher = mosquitto_sub(port, &["-t", "wills/#", "-v", "-C", "1", "-W", "10"]);
    let args = [
        "-t",
        "x",
        "--will-topic",
        "wills/clean",
        "--will-payload",
        "clean",
    ];
    let clean = tern_sub(port, &args);
    clean.signal("TERM");
    assert_eq!(clean.finish(TIMEOUT).code(), Some(0));
    let dying = tern_sub(
        port,
        &[
            "-V",
            "mqttv5",
            "-t",
            "x",
            "--will-topic",
            "wills/dead",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    );
    dying.signal("KILL");
    assert_eq!(mosquitto_output(watcher).text(), "wills/dead gone\n");
}

// --retained-only prints retained messages until the first live one; --remove-retained
// clears each one printed.
#[test]
fn retained_only_and_remove_retained() {
    let broker = Broker::tern();
    let port = broker.port();
    mosquitto_pub(port, &["-t", "r/a", "-m", "A", "-r"]);
    mosquitto_pub(port, &["-t", "r/b", "-m", "B", "-r"]);
    let mut sub = tern_sub(
        port,
        &[
            "-t",
            "r/#",
            "--retained-only",
            "--remove-retained",
            "-v",
            "-W",
            "10",
        ],
    );
    sub.wait_for_stdout("r/b B\n");
    mosquitto_pub(port, &["-t", "r/live", "-m", "live"]);
    let out = sub.finish(TIMEOUT);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let mut lines = out.lines();
    lines.sort();
    assert_eq!(lines, ["r/a A", "r/b B"]);
    let left = mosquitto_output(mosquitto_sub(port, &["-t", "r/#", "-v", "-W", "1"]));
    assert_eq!(
        (left.code(), left.text()),
        (Some(27), String::new()),
        "{left:#?}"
    );
}
