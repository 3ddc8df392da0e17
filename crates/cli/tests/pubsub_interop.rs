//! `tern pub` and `tern sub` side by side with mosquitto_pub and mosquitto_sub, against
//! `tern broker` and against Debian's mosquitto broker: `tern pub` to `mosquitto_sub`,
//! `mosquitto_pub` to `tern sub`, and the output of `tern sub -F` compared byte for byte
//! with what `mosquitto_sub -F` prints for the same messages.
//!
//! Every subscriber has `-C` and `-W`, and every process is killed when its guard drops, so
//! no test can hang or leave a process behind.

mod common;
mod tools;

use tools::{
    mosquitto_output, mosquitto_pub, mosquitto_sub, tern_pub_ok, tern_sub, Broker, TIMEOUT,
};

/// Declares one test per broker for `$body(broker)`.
macro_rules! on_both_brokers {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn tern_broker() {
                super::$body(super::Broker::tern());
            }

            #[test]
            fn mosquitto_broker() {
                super::$body(super::Broker::mosquitto());
            }
        }
    };
}

// tern pub -> mosquitto_sub -v, at each QoS and in each protocol version.
fn tern_pub_to_mosquitto_sub(broker: Broker) {
    let port = broker.port();
    for (version, qos) in [("mqttv311", "0"), ("mqttv5", "1"), ("mqttv31", "2")] {
        let topic = format!("interop/{version}");
        let sub = mosquitto_sub(
            port,
            &[
                "-V", version, "-q", "2", "-t", &topic, "-v", "-C", "1", "-W", "10",
            ],
        );
        tern_pub_ok(
            port,
            &["-V", version, "-q", qos, "-t", &topic, "-m", "21.5"],
            None,
        );
        let out = mosquitto_output(sub);
        assert_eq!(out.code(), Some(0), "{out:#?}");
        assert_eq!(out.text(), format!("{topic} 21.5\n"), "{version}");
    }
}
on_both_brokers!(tern_pub_to_mosquitto_sub_v, tern_pub_to_mosquitto_sub);

// mosquitto_pub -> tern sub -v; an empty message prints `(null)`, as mosquitto_sub does.
fn mosquitto_pub_to_tern_sub(broker: Broker) {
    let port = broker.port();
    for version in ["mqttv311", "mqttv5", "mqttv31"] {
        let sub = tern_sub(
            port,
            &[
                "-V",
                version,
                "-q",
                "1",
                "-t",
                "greenhouse/#",
                "-v",
                "-C",
                "2",
                "-W",
                "10",
            ],
        );
        mosquitto_pub(
            port,
            &[
                "-V",
                version,
                "-q",
                "1",
                "-t",
                "greenhouse/temp",
                "-m",
                "21.5",
            ],
        );
        mosquitto_pub(port, &["-V", version, "-t", "greenhouse/door", "-n"]);
        let out = sub.finish(TIMEOUT);
        assert_eq!(out.code(), Some(0), "{out:#?}");
        assert_eq!(
            out.text(),
            "greenhouse/temp 21.5\ngreenhouse/door (null)\n",
            "{version}"
        );
    }
}
on_both_brokers!(mosquitto_pub_to_tern_sub_v, mosquitto_pub_to_tern_sub);

/// The format strings compared with mosquitto_sub (no time: it differs between the two).
const FORMATS: &[&str] = &[
    "%t %p",
    "[%5p][%20p][%-20p][%020p][%020x][%5x][%5X][%.3p][%10.3t][%-10.3t]",
    "[%5l][%-5l|][%05q][%5r][%l][%q][%r][%x][%X]%%",
    "%C|%D|%E|%F|%P|%R|[%5C][%05E][%-5F|][%5A][%5R][%5D][%5P]",
    "\\t@@\\\\%t\\e[0m",
    "[%m][%5m][%-5m|][%05m] %q %p",
];

/// Runs `mosquitto_sub` and `tern sub` with the same `-F` while `publish` sends `count`
/// messages, and checks that both print the same bytes.
fn same_output(broker: &Broker, version: &str, format: &str, count: usize, publish: &dyn Fn(u16)) {
    let port = broker.port();
    let count_arg = count.to_string();
    let args = [
        "-V", version, "-q", "2", "-t", "fmt/#", "-F", format, "-C", &count_arg, "-W", "10",
    ];
    let theirs = mosquitto_sub(port, &args);
    let ours = tern_sub(port, &args);
    publish(port);
    let theirs = mosquitto_output(theirs);
    let ours = ours.finish(TIMEOUT);
    assert_eq!(
        (ours.code(), theirs.code()),
        (Some(0), Some(0)),
        "{ours:#?}\n{theirs:#?}"
    );
    assert_eq!(ours.text(), theirs.text(), "-V {version} -F {format:?}");
    assert_eq!(ours.stdout, theirs.stdout, "-V {version} -F {format:?}");
}

/// Three messages: text with MQTT 5.0 properties, a retained binary one, an empty one.
fn publish_samples(port: u16) {
    mosquitto_pub(
        port,
        &[
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            "fmt/one",
            "-m",
            "hello world",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
            "-D",
            "publish",
            "message-expiry-interval",
            "3600",
            "-D",
            "publish",
            "response-topic",
            "fmt/reply",
            "-D",
            "publish",
            "correlation-data",
            "req-7",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "user-property",
            "k",
            "v2",
        ],
    );
    let binary = "bin\u{1}\u{7f}é";
    // QoS 1, not 2: libmosquitto hands a QoS 2 message over only at PUBREL, which would
    // let the next message overtake it.
    mosquitto_pub(port, &["-q", "1", "-t", "fmt/two", "-m", binary]);
    mosquitto_pub(port, &["-t", "fmt/three", "-n"]);
}

fn format_strings_match_mosquitto_sub(broker: Broker) {
    for version in ["mqttv311", "mqttv5"] {
        for format in FORMATS {
            same_output(&broker, version, format, 3, &publish_samples);
        }
    }
}
on_both_brokers!(
    format_strings_match_mosquitto_sub,
    format_strings_match_mosquitto_sub
);

/// `%j` and `%J` (compact and `--pretty`): the same bytes as mosquitto_sub once the receive
/// time (`tst`) is cut out. In MQTT 3.1.1 there are no properties; in 5.0 tern sub also shows
/// the Subscription Identifier its client sent, so 5.0 is compared as parsed JSON without it.
fn json_matches_mosquitto_sub(broker: Broker) {
    let port = broker.port();
    let json_payload = |port| {
        mosquitto_pub(
            port,
            &[
                "-t",
                "fmt/json",
                "-m",
                r#"{"temperature": 21.5, "ok": [true, null], "s": "\u00e9"}"#,
            ],
        );
        mosquitto_pub(port, &["-t", "fmt/text", "-m", "not json"]);
    };
    for pretty in [false, true] {
        let mut args = vec![
            "-V", "mqttv311", "-t", "fmt/#", "-F", "%j", "-C", "3", "-W", "10",
        ];
        if pretty {
            args.push("--pretty");
        }
        let theirs = mosquitto_sub(port, &args);
        let ours = tern_sub(port, &args);
        publish_samples(port);
        let (theirs, ours) = (mosquitto_output(theirs), ours.finish(TIMEOUT));
        assert_eq!(
            without_tst(&ours.text()),
            without_tst(&theirs.text()),
            "pretty {pretty}"
        );

        args[5] = "%J";
        let theirs = mosquitto_sub(port, &args);
        let ours = tern_sub(port, &args);
        json_payload(port);
        mosquitto_pub(port, &["-t", "fmt/json", "-m", "[1, 2.5]"]);
        let (theirs, ours) = (mosquitto_output(theirs), ours.finish(TIMEOUT));
        assert_eq!(
            without_tst(&ours.text()),
            without_tst(&theirs.text()),
            "%J pretty {pretty}"
        );
        assert!(
            ours.errors()
                .contains("Message payload is not valid JSON on topic fmt/text."),
            "{ours:#?}"
        );
    }

    let args = [
        "-V", "mqttv5", "-t", "fmt/#", "-F", "%j", "-C", "3", "-W", "10",
    ];
    let theirs = mosquitto_sub(port, &args);
    let ours = tern_sub(port, &args);
    publish_samples(port);
    let (theirs, ours) = (mosquitto_output(theirs), ours.finish(TIMEOUT));
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                v.as_object_mut().expect("object").remove("tst");
                let object = v.as_object_mut().expect("object");
                if let Some(props) = object.get_mut("properties").and_then(|p| p.as_object_mut()) {
                    props.remove("subscription-identifier");
                    if props.is_empty() {
                        object.remove("properties");
                    }
                }
                v
            })
            .collect()
    };
    assert_eq!(parse(&ours.text()), parse(&theirs.text()));
    assert!(
        ours.text()
            .contains(r#""user-properties":{"k":"v","k":"v2"}"#),
        "{}",
        ours.text()
    );
}
on_both_brokers!(json_matches_mosquitto_sub, json_matches_mosquitto_sub);

/// `%j` of QoS 1 deliveries carries `mid`, the packet identifier, where mosquitto_sub puts
/// it (after `payloadlen`), and `%m` prints it.
fn json_mid_matches_mosquitto_sub(broker: Broker) {
    let port = broker.port();
    for format in ["%j", "%m %q %p"] {
        let args = [
            "-V", "mqttv311", "-q", "1", "-t", "fmt/#", "-F", format, "-C", "3", "-W", "10",
        ];
        let theirs = mosquitto_sub(port, &args);
        let ours = tern_sub(port, &args);
        publish_samples(port);
        let (theirs, ours) = (mosquitto_output(theirs), ours.finish(TIMEOUT));
        assert!(theirs.text().contains("1 1 ") || theirs.text().contains("\"mid\":1"));
        assert_eq!(
            without_tst(&ours.text()),
            without_tst(&theirs.text()),
            "{format}"
        );
    }
}
on_both_brokers!(
    json_mid_matches_mosquitto_sub,
    json_mid_matches_mosquitto_sub
);

/// The JSON with `"tst":"..."` removed.
fn without_tst(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("\"tst\":") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after.find(',').expect("a field after tst");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

// tern pub's message sources and flags, seen by mosquitto_sub: -l (lines as mosquitto_pub
// sends them), -n, -s, -f, -r and MQTT 5.0 properties with -D.
fn tern_pub_sources(broker: Broker) {
    let port = broker.port();
    // MQTT orders messages per publisher only: each tern pub's messages are awaited before
    // the next one starts, so that the output has one order to compare with.
    let mut sub = mosquitto_sub(
        port,
        &["-t", "src/#", "-F", "%t [%p] %l", "-C", "7", "-W", "10"],
    );
    tern_pub_ok(
        port,
        &["-t", "src/lines", "-l"],
        Some(b"one\n\ntwo\r\nthree"),
    );
    sub.wait_for_stdout("src/lines [three] 5");
    tern_pub_ok(port, &["-t", "src/null", "-n"], None);
    sub.wait_for_stdout("src/null [] 0");
    tern_pub_ok(port, &["-t", "src/stdin", "-s"], Some(b"all\nof it"));
    sub.wait_for_stdout("of it] 9");
    let file = tools::temp_dir("sources").join("message.txt");
    std::fs::write(&file, "from a file").expect("write message file");
    tern_pub_ok(
        port,
        &["-t", "src/file", "-f", file.to_str().expect("UTF-8 path")],
        None,
    );
    let out = mosquitto_output(sub);
    assert_eq!(
        out.text(),
        "src/lines [one] 3\nsrc/lines [] 0\nsrc/lines [two\r] 4\nsrc/lines [three] 5\n\
         src/null [] 0\nsrc/stdin [all\nof it] 9\nsrc/file [from a file] 11\n"
    );

    tern_pub_ok(
        port,
        &["-t", "src/retained", "-m", "kept", "-r", "-q", "1"],
        None,
    );
    let sub = mosquitto_sub(
        port,
        &[
            "-t",
            "src/retained",
            "-F",
            "%r %q %p",
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    assert_eq!(mosquitto_output(sub).text(), "1 0 kept\n");

    let sub = mosquitto_sub(
        port,
        &[
            "-V",
            "mqttv5",
            "-t",
            "src/props",
            "-F",
            "%P|%C|%R|%D|%E|%F|%p",
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    tern_pub_ok(
        port,
        &[
            "-V",
            "mqttv5",
            "-t",
            "src/props",
            "-m",
            "x",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "user-property",
            "k2",
            "v2",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "src/reply",
            "-D",
            "publish",
            "correlation-data",
            "abc",
            "-D",
            "publish",
            "message-expiry-interval",
            "100",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
        ],
        None,
    );
    let text = mosquitto_output(sub).text();
    // The broker may count the expiry down by a second before forwarding.
    let expected = ["100", "99"].map(|e| format!("k:v k2:v2|text/plain|src/reply|abc|{e}|1|x\n"));
    assert!(expected.contains(&text), "{text:?}");
}
on_both_brokers!(tern_pub_sources, tern_pub_sources);

// -R leaves out retained messages; without it they are printed with the retain flag.
fn tern_sub_retained(broker: Broker) {
    let port = broker.port();
    mosquitto_pub(port, &["-t", "ret/a", "-m", "old", "-r"]);
    let all = tern_sub(port, &["-t", "ret/#", "-F", "%r %p", "-C", "2", "-W", "10"]);
    let fresh = tern_sub(
        port,
        &["-t", "ret/#", "-F", "%r %p", "-C", "1", "-W", "10", "-R"],
    );
    mosquitto_pub(port, &["-t", "ret/a", "-m", "new"]);
    assert_eq!(all.finish(TIMEOUT).text(), "1 old\n0 new\n");
    assert_eq!(fresh.finish(TIMEOUT).text(), "0 new\n");
}
on_both_brokers!(tern_sub_retained, tern_sub_retained);

// -W: no message within the time exits 27 with "Timed out", as mosquitto_sub does.
fn tern_sub_timeout(broker: Broker) {
    let port = broker.port();
    let start = std::time::Instant::now();
    let out = tools::Client::spawn(
        tools::tern(port, &["sub", "-t", "quiet/#", "-W", "1"]),
        None,
    )
    .finish(TIMEOUT);
    assert_eq!(out.code(), Some(27), "{out:#?}");
    assert_eq!(out.stderr, ["Timed out"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    let theirs = mosquitto_sub(port, &["-t", "quiet/#", "-W", "1"]).finish(TIMEOUT);
    assert_eq!(theirs.code(), Some(27));
}
on_both_brokers!(tern_sub_timeout, tern_sub_timeout);
