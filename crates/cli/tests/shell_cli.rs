//! `tern shell` run as users and scripts run it: scripted sessions on stdin against
//! `tern broker` and mosquitto, messages from mosquitto_pub arriving in the shell, and errors
//! that do not end the session. At a real pseudo-terminal: `shell_terminal.rs`.

mod common;
mod tools;

use std::thread;
use std::time::{Duration, Instant};

use common::Tern;
use tools::{free_port, mosquitto_pub, temp_dir, tern, tern_bare, Client, Mosquitto, TIMEOUT};

/// Runs `tern shell -h 127.0.0.1 -p PORT ARGS` with `script` on stdin, to the end.
fn run_script(port: u16, args: &[&str], script: &str) -> tools::Output {
    let mut all = vec!["shell"];
    all.extend_from_slice(args);
    Client::spawn(tern(port, &all), Some(script.as_bytes())).finish(TIMEOUT)
}

/// Asserts that `lines` holds each of `expected` in this order (other lines between).
fn assert_in_order(lines: &[String], expected: &[&str]) {
    let mut rest = lines.iter();
    for want in expected {
        assert!(
            rest.any(|line| line == want),
            "no line {want:?} (in order) in:\n{}",
            lines.join("\n")
        );
    }
}

/// The script both brokers run: every command of the shell, once as a user would type it.
fn session_script() -> String {
    [
        "# a comment, then an empty line",
        "",
        "subscribe --topic shell/# --qos 1",
        "publish --topic shell/a --qos 1 hello from the shell",
        "wait",
        "subscriptions",
        "publish hello",
        "unsubscribe --topic shell/#",
        "subscriptions",
        "subscribe -t marker -q 2",
        "publish -t shell/a -q 1 after unsubscribe",
        "publish -t marker -q 2 'the  marker'",
        "wait --count 1 --timeout 10",
        "disconnect",
        "exit",
        "publish -t never -m read",
    ]
    .join("\n")
}

/// Checks the transcript of [`session_script`].
fn check_session(out: &tools::Output, server: &str, id: &str, version: &str) {
    let lines = out.lines();
    assert_in_order(
        &lines,
        &[
            &format!("connected to {server} as {id} (MQTT {version})"),
            // [MQTT-3.8.4-1] SUBACK answers SUBSCRIBE, with the granted QoS.
            "subscribed to 'shell/#' (granted QoS 1)",
            // [MQTT-3.3.4-1] PUBACK completes the QoS 1 publish.
            "published to 'shell/a' (QoS 1)",
            "shell/a hello from the shell",
            "shell/# (QoS 1)",
            "unsubscribed from 'shell/#'",
            "no subscriptions",
            "subscribed to 'marker' (granted QoS 2)",
            "published to 'shell/a' (QoS 1)",
            // [MQTT-3.3.4-1] PUBCOMP completes the QoS 2 publish.
            "published to 'marker' (QoS 2)",
            "marker the  marker",
            &format!("disconnected from {server}"),
        ],
    );
    // Nothing is printed for shell/# after unsubscribe: the marker came, this did not.
    assert!(
        !lines.iter().any(|l| l == "shell/a after unsubscribe"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("never")),
        "read after exit"
    );
    // The missing option is named, with the script's line number; the session went on.
    assert!(
        out.errors().contains(
            "Error: line 7: publish: missing required option --topic TOPIC (see 'help publish')"
        ),
        "{}",
        out.errors()
    );
    assert_eq!(out.code(), Some(1), "a command failed: exit status 1");
}

#[test]
fn scripted_session_against_tern_broker() {
    let mut broker = Tern::start(&["--log-level", "debug"]);
    let out = run_script(
        broker.port,
        &["-i", "shell-tern", "-V", "5"],
        &session_script(),
    );
    check_session(
        &out,
        &format!("127.0.0.1:{}", broker.port),
        "shell-tern",
        "5.0",
    );
    // [MQTT-3.14.4-1] [MQTT-3.14.4-2]: disconnect sends DISCONNECT, then closes; the broker
    // saw a DISCONNECT (not a dropped socket) from this client.
    broker.wait_for_log("client_id=shell-tern}: client disconnected reason=Success");
    assert!(
        !broker
            .log()
            .iter()
            .any(|l| l.contains("shell-tern") && l.contains("socket closed")),
        "{:#?}",
        broker.log()
    );
}

#[test]
fn scripted_session_against_mosquitto() {
    // mosquitto started as root opens its log after switching to the mosquitto user.
    let dir = temp_dir("shell-mosquitto-log");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod the log directory");
    let log = dir.join(format!("mosquitto-{}.log", free_port()));
    let _ = std::fs::remove_file(&log);
    let mosquitto = Mosquitto::start(&format!(
        "allow_anonymous true\nlog_dest file {}\nlog_type all\n",
        log.display()
    ));
    let out = run_script(
        mosquitto.port,
        &["-i", "shell-mosquitto", "-V", "311"],
        &session_script(),
    );
    check_session(
        &out,
        &format!("127.0.0.1:{}", mosquitto.port),
        "shell-mosquitto",
        "3.1.1",
    );
    // [MQTT-3.14.4-1] [MQTT-3.14.4-2] (3.1.1: [MQTT-3.14.4-2] [MQTT-3.14.4-1]): DISCONNECT,
    // then the connection closed.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Received DISCONNECT from shell-mosquitto") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no DISCONNECT in mosquitto's log:\n{text}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn message_from_mosquitto_pub_arrives_in_the_shell() {
    let mut broker = Tern::start(&["--log-level", "debug"]);
    let all = ["shell", "-i", "shell-news"];
    let script = "subscribe -t news/# -q 1\nwait -w 10\nexit\n";
    let mut shell = Client::spawn(tern(broker.port, &all), Some(script.as_bytes()));
    shell.wait_for_stdout("subscribed to 'news/#' (granted QoS 1)");
    mosquitto_pub(
        broker.port,
        &["-t", "news/today", "-m", "from mosquitto", "-q", "1"],
    );
    let out = shell.finish(TIMEOUT);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert_in_order(
        &out.lines(),
        &[
            "subscribed to 'news/#' (granted QoS 1)",
            "news/today from mosquitto",
            &format!("disconnected from 127.0.0.1:{}", broker.port),
        ],
    );
    // [MQTT-3.14.4-1] [MQTT-3.14.4-2]: exit sends DISCONNECT before closing.
    broker.wait_for_log("client_id=shell-news}: client disconnected reason=Success");
}

#[test]
fn overlapping_subscriptions_print_a_publish_once() {
    let broker = Tern::start(&[]);
    let script = "subscribe -t over/#\n\
                  subscribe -t over/+ -q 1\n\
                  publish -t over/x -q 1 both\n\
                  subscribe -t marker\n\
                  publish -t marker end\n\
                  wait -c 2\n";
    let out = run_script(broker.port, &["-V", "311"], script);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    let lines = out.lines();
    // 3.1.1 [MQTT-3.3.5-1]: one PUBLISH for overlapping subscriptions, at the highest QoS;
    // tern-client hands it to both streams, and the shell prints it once.
    assert_eq!(
        lines.iter().filter(|l| *l == "over/x both").count(),
        1,
        "{lines:#?}"
    );
    assert!(lines.contains(&"marker end".to_owned()), "{lines:#?}");
}

#[test]
fn retained_messages_and_reconnecting() {
    let broker = Tern::start(&[]);
    let port = broker.port.to_string();
    let script = format!(
        "publish -t shell/kept -q 1 --retained kept\n\
         disconnect\n\
         connect mqtt://127.0.0.1:{port} --id second -V 311\n\
         subscribe -t shell/kept\n\
         wait\n\
         publish -t shell/kept -r ''\n"
    );
    let out = run_script(broker.port, &["-i", "first"], &script);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert_in_order(
        &out.lines(),
        &[
            &format!("connected to 127.0.0.1:{port} as first (MQTT 5.0)"),
            "published to 'shell/kept' (QoS 1, retained)",
            &format!("disconnected from 127.0.0.1:{port}"),
            &format!("connected to 127.0.0.1:{port} as second (MQTT 3.1.1)"),
            // [MQTT-3.3.1-5]: the retained message is kept and sent to a new subscription.
            "subscribed to 'shell/kept' (granted QoS 0)",
            "shell/kept kept",
            "published to 'shell/kept' (QoS 0, retained)",
        ],
    );
}

#[test]
fn lost_connection_is_reported_and_the_shell_goes_on() {
    let mut broker = Tern::start(&[]);
    let port = broker.port;
    let script = "subscribe -t lost/#\nwait --timeout 20\npublish -t lost/a x\nsubscriptions\n";
    let mut shell = Client::spawn(tern(port, &["shell"]), Some(script.as_bytes()));
    shell.wait_for_stdout("subscribed to 'lost/#'");
    broker.terminate();
    let out = shell.finish(TIMEOUT);
    let errors = out.errors();
    for expected in [
        &format!("connection to 127.0.0.1:{port} lost; type 'connect' to connect again") as &str,
        "Error: line 2: wait: 0 of 1 messages arrived, and no more can: not connected",
        "Error: line 3: not connected; use 'connect [URL]' first",
        "Error: line 4: not connected",
    ] {
        assert!(errors.contains(expected), "no {expected:?} in:\n{errors}");
    }
    assert_eq!(out.code(), Some(1));
}

#[test]
fn failed_commands_do_not_end_the_session_and_set_the_status() {
    let closed = free_port();
    let script = format!(
        "connect 127.0.0.1:{closed}\n\
         publish -t a x\n\
         frobnicate\n\
         subscribe -t a/#/b\n\
         connect mqtts://127.0.0.1\n\
         help unsubscribe\n"
    );
    let mut command = common::tern();
    command.args(["shell", "--no-history"]);
    let out = Client::spawn(command, Some(script.as_bytes())).finish(TIMEOUT);
    let errors = out.errors();
    for expected in [
        &format!("Error: line 1: cannot connect to 127.0.0.1:{closed}") as &str,
        "is a broker running there?",
        "Error: line 2: not connected; use 'connect [URL]' first",
        "Error: line 3: unknown command 'frobnicate'; type 'help' to list the commands",
        "Error: line 4: not connected",
        "Error: line 5: invalid URL 'mqtts://127.0.0.1'",
    ] {
        assert!(errors.contains(expected), "no {expected:?} in:\n{errors}");
    }
    assert!(
        out.text().contains("usage: unsubscribe --topic FILTER"),
        "{out:#?}"
    );
    assert_eq!(out.code(), Some(1));
    // No escape codes and no prompt when stdin is not a terminal.
    assert!(!out.text().contains('\u{1b}') && !out.text().contains("tern>"));

    // --exit-on-error stops at the first failure.
    let mut command = common::tern();
    command.args(["shell", "-e"]);
    let out = Client::spawn(command, Some(b"bogus\nhelp\n")).finish(TIMEOUT);
    assert_eq!(out.code(), Some(1));
    assert!(out.errors().contains("line 1: unknown command 'bogus'"));
    assert!(
        !out.text().contains("commands:"),
        "help ran after the failure"
    );
}

#[test]
fn invalid_filter_is_explained_when_connected() {
    let broker = Tern::start(&[]);
    let out = run_script(
        broker.port,
        &[],
        "subscribe -t a/#/b\npublish -t a/+ x\nsubscriptions\n",
    );
    let errors = out.errors();
    assert!(
        errors.contains("line 1: subscribe to 'a/#/b' failed"),
        "{errors}"
    );
    assert!(errors.contains("'#' may only end a filter"), "{errors}");
    assert!(
        errors.contains("line 2: publish to 'a/+' failed"),
        "{errors}"
    );
    assert!(
        out.lines().contains(&"no subscriptions".to_owned()),
        "{out:#?}"
    );
    assert_eq!(out.code(), Some(1));
}

#[test]
fn help_flag_describes_commands_and_script_mode() {
    let out = tern_bare(&["shell", "--help"]);
    assert_eq!(out.code(), Some(0));
    let text = out.text();
    for needle in [
        "connect [URL]",
        "disconnect",
        "publish --topic TOPIC [--qos N] [--retained] MESSAGE",
        "subscribe --topic FILTER [--qos N]",
        "subscriptions",
        "unsubscribe --topic FILTER",
        "wait [--count N]",
        "exit",
        "--history <FILE>",
        "--no-history",
        "--exit-on-error",
        "the exit status is 1 if any command failed",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let out = tern_bare(&["shell", "--history", "x", "--no-history"]);
    assert_eq!(out.code(), Some(2), "{out:#?}");
}
