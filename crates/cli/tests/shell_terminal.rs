//! `tern shell` at a real pseudo-terminal (util-linux `script`): Ctrl-C before the first
//! command, and a message arriving while a line is half typed.

mod common;
mod tools;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::Tern;
use tools::{mosquitto_pub, temp_dir, TIMEOUT};

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
