//! `tern shell` run as users and scripts run it: scripted sessions on stdin against
//! `tern broker` and mosquitto, messages from mosquitto_pub arriving in the shell, errors
//! that do not end the session, and a session at a real pseudo-terminal (util-linux
//! `script`) where a message arrives while a line is half typed.

mod common;
mod tools;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
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

/// A process at a pseudo-terminal made by util-linux `script`: its input written as typed,
/// everything the terminal shows collected.
struct Pty {
    child: Child,
    input: ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(command_line: &str, history: &std::path::Path) -> Pty {
        // `script` runs the line with $SHELL (sh when unset, as on CI): `exec` leaves no shell
        // in between, which would take the test's Ctrl-C as well (dash then exits with 130
        // after the program) and would be the process signalled instead of the program.
        let mut child = Command::new("script")
            .args([
                "-q",
                "-f",
                "-e",
                "-c",
                &format!("exec {command_line}"),
                "/dev/null",
            ])
            .env("SHELL", "/bin/sh")
            .env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .env("XDG_DATA_HOME", history)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("util-linux script runs");
        let input = child.stdin.take().expect("stdin piped");
        let mut output = child.stdout.take().expect("stdout piped");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = output.read(&mut chunk) {
                sink.lock()
                    .expect("screen lock")
                    .extend_from_slice(&chunk[..n]);
            }
        });
        Pty {
            child,
            input,
            screen,
        }
    }

    /// The process id of the program `script` runs (its only child).
    fn shell_pid(&self) -> u32 {
        let parent = self.child.id();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
                    .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                return pid.parse().expect("a process id");
            }
            assert!(Instant::now() < deadline, "script started no program");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_text(&mut self, text: &str) {
        self.input.write_all(text.as_bytes()).expect("type");
        self.input.flush().expect("flush");
    }

    /// The screen output as written, escape sequences included.
    fn raw(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().expect("screen lock")).into_owned()
    }

    /// The screen output without escape sequences.
    fn text(&self) -> String {
        strip_escapes(&self.raw())
    }

    /// Waits until the text after byte `from` contains `needle`; returns where it ends.
    fn wait_for(&self, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.text();
            if let Some(at) = text.get(from..).and_then(|t| t.find(needle)) {
                return from + at + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} after byte {from} on the terminal:\n{text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Removes `ESC [ ... letter` and `ESC ] ... BEL` sequences and carriage returns.
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() || c == '~' {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\u{7}' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn ctrl_c_before_the_first_command_does_not_kill_the_shell_at_a_terminal() {
    // A server that accepts the TCP connection and never answers: the shell is busy with
    // its connect at start, before any command ran.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("address").port();
    let data = temp_dir(&format!("shell-sigint-{port}"));
    let tern_path = env!("CARGO_BIN_EXE_tern");
    let mut pty = Pty::spawn(
        &format!("{tern_path} shell -h 127.0.0.1 -p {port} -i sigint"),
        &data,
    );
    pty.wait_for(0, "type 'help' for the commands");
    let killed = Command::new("kill")
        .args(["-INT", &pty.shell_pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "{killed:?}");
    thread::sleep(Duration::from_millis(500));
    // `script -e` ends with the program it runs.
    assert!(
        matches!(pty.child.try_wait(), Ok(None)),
        "SIGINT ended the shell:\n{}",
        pty.text()
    );
}

#[test]
fn message_appears_above_a_half_typed_line_at_a_terminal() {
    let broker = Tern::start(&[]);
    let port = broker.port;
    let data = temp_dir(&format!("shell-pty-{port}"));
    let tern_path = env!("CARGO_BIN_EXE_tern");
    let mut pty = Pty::spawn(
        &format!("{tern_path} shell -h 127.0.0.1 -p {port} -i pty-user"),
        &data,
    );
    // The prompt says who and where.
    let prompt = format!("pty-user@127.0.0.1:{port}> ");
    let mut at = pty.wait_for(0, &prompt);

    // A SIGINT before any command ran (as a Ctrl-C in the moment between a line typed and
    // its command starting) neither ends the shell nor interrupts the next command.
    let shell = pty.shell_pid();
    let killed = Command::new("kill")
        .args(["-INT", &shell.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "{killed:?}");
    thread::sleep(Duration::from_millis(200));
    pty.type_text("subscriptions\r");
    at = pty.wait_for(at, "no subscriptions");
    at = pty.wait_for(at, &prompt);
    assert!(!pty.text()[..at].contains("interrupted"), "{}", pty.text());

    pty.type_text("subscribe -t pty/#\r");
    at = pty.wait_for(at, "subscribed to 'pty/#' (granted QoS 0)");
    at = pty.wait_for(at, &prompt);
    pty.type_text("publish -t pty/typed half");
    at = pty.wait_for(at, "publish -t pty/typed half");

    mosquitto_pub(port, &["-t", "pty/news", "-m", "incoming"]);
    // The message is printed on its own line, and the prompt with the half-typed line is
    // drawn again below it.
    at = pty.wait_for(at, "pty/news incoming\n");
    at = pty.wait_for(at, &format!("{prompt}publish -t pty/typed half"));
    // Before the message, the half-typed row was cleared (carriage return, erase), not
    // continued: nothing printable lies between the typed text and the message.
    let raw = pty.raw();
    let message = raw.find("pty/news incoming").expect("message on screen");
    let typed = raw[..message].rfind("half").expect("typed text before it") + "half".len();
    let between = &raw[typed..message];
    assert!(
        between.contains('\r') && between.contains("\u{1b}[") && strip_escapes(between).is_empty(),
        "{between:?}"
    );

    // Typing goes on where it stopped; the finished line is one command.
    pty.type_text(" done\r");
    at = pty.wait_for(at, "published to 'pty/typed' (QoS 0)");
    pty.wait_for(at, "pty/typed half done");

    // Tab completes a command name, and a topic seen in a message received.
    pty.type_text("subscr\t");
    pty.wait_for(at, &format!("{prompt}subscri"));
    pty.type_text("\u{15}"); // Ctrl-U clears the line.
    pty.type_text("publish -t pty/n\t");
    at = pty.wait_for(at, "publish -t pty/news");
    pty.type_text("\u{15}");

    // Ctrl-C stops a command that waits, and the shell goes on.
    pty.type_text("wait --count 100 --timeout 60\r");
    at = pty.wait_for(at, "wait --count 100 --timeout 60\n");
    // Sent again until it lands: one sent before the command started is not a signal yet.
    let deadline = Instant::now() + TIMEOUT;
    while !pty.text()[at..].contains("Error: interrupted") {
        assert!(
            Instant::now() < deadline,
            "Ctrl-C did not stop wait:\n{}",
            pty.text()
        );
        pty.type_text("\u{3}");
        thread::sleep(Duration::from_millis(300));
    }
    at = pty.wait_for(at, "Error: interrupted");
    at = pty.wait_for(at, &prompt);

    // Ctrl-D leaves, after DISCONNECT.
    pty.type_text("\u{4}");
    pty.wait_for(at, &format!("disconnected from 127.0.0.1:{port}"));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Ok(Some(status)) = pty.child.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "tern shell did not exit:\n{}",
            pty.text()
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}\n{}", pty.text());
    // The history file holds the commands typed.
    let history = std::fs::read_to_string(data.join("tern/shell_history")).expect("history");
    assert!(history.contains("subscribe -t pty/#"), "{history}");
    assert!(
        history.contains("publish -t pty/typed half done"),
        "{history}"
    );
}
