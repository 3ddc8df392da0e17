//! `tern passwd` run as a user runs it: batch mode, a password piped in, a password typed at
//! a pseudo-terminal (util-linux `script`), `-D`, the errors and their exit codes, `--help`;
//! then the file it made used by `tern broker` with Debian's mosquitto_pub, paho-mqtt 2.x and
//! a SCRAM-SHA-256 client, in MQTT 3.1.1 and 5.0.
//!
//! Each test works in its own directory under the target's temporary directory.

mod common;
mod paho;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{tern, Peer, Tern, TIMEOUT};
use serde_json::json;
use tern_broker::auth::credentials::parse_file;
use tern_broker::auth::ScramCredentials;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("passwd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// What one `tern passwd` run did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `tern passwd ARGS` with `stdin` piped in (or closed), to the end.
fn passwd(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = tern()
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tern passwd");
    let mut input = child.stdin.take().expect("stdin piped");
    if let Some(bytes) = stdin {
        input.write_all(bytes).expect("write the password");
    }
    drop(input);
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("wait for tern passwd").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tern passwd {args:?} did not exit within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("tern passwd output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `tern passwd ARGS` and expects success with no output.
fn passwd_ok(args: &[&str], stdin: Option<&[u8]>) {
    let run = passwd(args, stdin);
    assert_eq!(run.code, Some(0), "tern passwd {args:?}: {run:#?}");
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
}

/// Runs `tern passwd ARGS`, expects exit 1 with an `Error:` naming `needle`, and returns
/// stderr.
fn passwd_fails(args: &[&str], stdin: Option<&[u8]>, needle: &str) -> String {
    let run = passwd(args, stdin);
    assert_eq!(run.code, Some(1), "tern passwd {args:?}: {run:#?}");
    assert!(run.stderr.starts_with("Error: "), "{run:#?}");
    assert!(run.stderr.contains(needle), "no {needle:?} in {run:#?}");
    run.stderr
}

/// Whether the file gives `user` this `password`, read as the broker reads it.
fn has_password(file: &Path, user: &str, password: &str) -> bool {
    let text = std::fs::read_to_string(file).expect("read the password file");
    let users = parse_file(&text).expect("the broker accepts the file");
    users.get(user).is_some_and(|c| {
        c.salt.len() == 16 && ScramCredentials::derive(password, &c.salt, c.iterations) == *c
    })
}

fn mode(file: &Path) -> u32 {
    std::fs::metadata(file).expect("stat").permissions().mode() & 0o777
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn batch_mode_creates_adds_updates_and_keeps_other_lines() {
    let dir = scratch("batch");
    let file = dir.join("passwd");
    let f = path_str(&file);
    passwd_ok(&["-c", "-b", f, "alice", "wonderland"], None);
    assert!(has_password(&file, "alice", "wonderland"));
    assert_eq!(mode(&file), 0o600, "readable by its owner only");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("alice:SCRAM-SHA-256$4096:"),
        "4096 iterations by default: {text}"
    );

    // Comments, blank lines and other users stay as they were; the update keeps its place.
    let alice = text.trim_end().to_owned();
    std::fs::write(&file, format!("# plant users\n\n{alice}\n")).unwrap();
    passwd_ok(&["-b", "-I", "5000", f, "bob", "builder"], None);
    let text = std::fs::read_to_string(&file).unwrap();
    let bob = text.lines().last().unwrap().to_owned();
    assert!(bob.starts_with("bob:SCRAM-SHA-256$5000:"), "{text}");
    assert_eq!(text, format!("# plant users\n\n{alice}\n{bob}\n"));
    passwd_ok(&["-b", f, "alice", "looking-glass"], None);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(&lines[..2], ["# plant users", ""]);
    assert!(
        lines[2].starts_with("alice:") && lines[2] != alice,
        "{text}"
    );
    assert_eq!(lines[3], bob, "bob's line is kept byte for byte");
    assert!(has_password(&file, "alice", "looking-glass"));
    assert!(has_password(&file, "bob", "builder"));
    assert!(!has_password(&file, "alice", "wonderland"));

    // -c starts the file again with just this user.
    passwd_ok(&["--iterations", "4096", "-c", "-b", f, "carol", "c"], None);
    let users = parse_file(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(users.keys().collect::<Vec<_>>(), ["carol"]);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left"
    );
}

/// Without -b and with standard input not a terminal, the first line is the password
/// (without its `\n` or `\r\n`); the rest is not read.
#[test]
fn pipe_mode_reads_one_line() {
    let dir = scratch("pipe");
    let file = dir.join("passwd");
    let f = path_str(&file);
    passwd_ok(
        &["-c", f, "alice"],
        Some("pässword 1\nnot this\n".as_bytes()),
    );
    assert!(has_password(&file, "alice", "pässword 1"));
    passwd_ok(&[f, "bob"], Some(b"from windows\r\n"));
    assert!(has_password(&file, "bob", "from windows"));
    passwd_ok(&[f, "carol"], Some(b"no newline"));
    assert!(has_password(&file, "carol", "no newline"));
    passwd_fails(&[f, "dave"], Some(b"\n"), "Empty password.");
    passwd_fails(&[f, "dave"], None, "Empty password.");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("dave:"));
}

#[test]
fn delete_removes_the_user_only() {
    let dir = scratch("delete");
    let file = dir.join("passwd");
    let f = path_str(&file);
    passwd_ok(&["-c", "-b", f, "alice", "a"], None);
    passwd_ok(&["-b", f, "bob", "b"], None);
    passwd_ok(&["-D", f, "alice"], None);
    let users = parse_file(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(users.keys().collect::<Vec<_>>(), ["bob"]);
    assert!(has_password(&file, "bob", "b"));
    let before = std::fs::read(&file).unwrap();
    passwd_fails(&["-D", f, "alice"], None, "user alice is not in");
    assert_eq!(std::fs::read(&file).unwrap(), before, "nothing changed");
}

/// Every error exits 1 (as mosquitto_passwd), starts with `Error:`, says what to do, and
/// leaves the file as it was.
#[test]
fn errors_say_what_to_do_and_exit_1() {
    let dir = scratch("errors");
    let file = dir.join("passwd");
    let f = path_str(&file);
    let missing = passwd_fails(&["-b", f, "alice", "a"], None, "No such file");
    assert!(missing.contains("Use -c to create"), "{missing}");
    assert!(!file.exists());

    passwd_ok(&["-c", "-b", f, "alice", "a"], None);
    let good = std::fs::read_to_string(&file).unwrap();
    let bad = format!("{good}bob:$7$101$L/FMdmy9W7XXyt04$IXrAalejWDeEJxoyWcJJxSXOsg==\n");
    std::fs::write(&file, &bad).unwrap();
    let stderr = passwd_fails(&["-b", f, "carol", "c"], None, &format!("{f}:2: "));
    assert!(stderr.contains("mosquitto_passwd hash"), "{stderr}");
    std::fs::write(&file, format!("{good}carol:plain\n")).unwrap();
    let stderr = passwd_fails(&["-D", f, "alice"], None, &format!("{f}:2: "));
    assert!(stderr.contains("Fix or delete that line"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{good}carol:plain\n")
    );
    std::fs::write(&file, &good).unwrap();

    for (args, needle) in [
        (
            vec!["-c", "-D", f, "alice"],
            "-c and -D cannot be used together",
        ),
        (vec!["-D", "-b", f, "alice", "a"], "-D takes no password"),
        (vec!["-b", f, "alice"], "-b needs the password"),
        (vec![f, "alice", "a"], "needs -b"),
        (vec![f], "a password file and a username are needed"),
        (vec!["-b", "-I", "1000", f, "alice", "a"], "at least 4096"),
        (vec!["-U", f], "nothing to convert"),
        (vec!["-H", "sha512", f, "alice"], "-I"),
    ] {
        let stderr = passwd_fails(&args, None, needle);
        assert!(stderr.contains("Usage: tern passwd"), "{args:?}: {stderr}");
    }
    for (user, needle) in [
        ("#admin", "comments"),
        ("two\nlines", "control characters"),
        ("a:SCRAM-SHA-256$b", "SCRAM-SHA-256$"),
        ("", "empty"),
    ] {
        passwd_fails(&["-b", f, user, "a"], None, needle);
    }
    // A value clap cannot parse: exit 1 as well, as mosquitto_passwd's usage errors.
    let run = passwd(&["-I", "many", "-b", f, "alice", "a"], None);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), good, "untouched");
}

#[test]
fn help_lists_every_option() {
    let run = passwd(&["--help"], None);
    assert_eq!(run.code, Some(0), "{run:#?}");
    let help = run.stdout;
    for needle in [
        "Usage: tern passwd [-I iterations] [-c | -D] passwordfile username",
        "       tern passwd [-I iterations] [-c] -b passwordfile username password",
        " -b : run in batch mode",
        " -c : create a new password file",
        " -D : delete the username",
        " -I : PBKDF2 iterations",
        " --help : display this message.",
        "auth.password_file",
        "mode 0600",
    ] {
        assert!(help.contains(needle), "no {needle:?} in:\n{help}");
    }
    let top = tern().arg("--help").output().expect("tern --help");
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.contains("passwd"), "tern --help lists passwd:\n{top}");
}

/// At a terminal the password is asked twice and never echoed; two different answers are
/// refused and nothing is written.
#[test]
fn terminal_mode_asks_twice_without_echo() {
    let dir = scratch("terminal");
    let file = dir.join("passwd");
    let f = path_str(&file);
    let tern = env!("CARGO_BIN_EXE_tern");
    let typed = |answers: [&str; 2]| {
        let mut pty = Pty::spawn(&format!("exec {tern} passwd -c {f} alice"));
        pty.wait_for("Password: ");
        pty.type_line(answers[0]);
        pty.wait_for("Reenter password: ");
        pty.type_line(answers[1]);
        pty.finish()
    };
    let (code, screen) = typed(["s3cret-one", "s3cret-one"]);
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        !screen.contains("s3cret"),
        "the password was echoed:\n{screen}"
    );
    assert!(has_password(&file, "alice", "s3cret-one"));
    let before = std::fs::read(&file).unwrap();
    let (code, screen) = typed(["s3cret-one", "s3cret-two"]);
    assert_eq!(code, Some(1), "{screen}");
    assert!(
        screen.contains("Error: Passwords do not match."),
        "{screen}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before, "nothing written");
}

/// A program at a pseudo-terminal made by util-linux `script`.
struct Pty {
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of the screen earlier waits have looked at.
    seen: usize,
}

impl Pty {
    fn spawn(command_line: &str) -> Pty {
        let mut child = Command::new("script")
            .args(["-q", "-f", "-e", "-c", command_line, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("util-linux script runs");
        let input = child.stdin.take();
        let mut output = child.stdout.take().expect("stdout piped");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 1024];
            while let Ok(n @ 1..) = output.read(&mut chunk) {
                sink.lock().expect("screen").extend_from_slice(&chunk[..n]);
            }
        });
        Pty {
            child,
            input,
            screen,
            seen: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().expect("screen")).into_owned()
    }

    /// Waits until the screen shows `needle` after what earlier waits saw.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.text();
            if let Some(at) = text.get(self.seen..).and_then(|t| t.find(needle)) {
                self.seen += at + needle.len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on the terminal:\n{text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) {
        let input = self.input.as_mut().expect("terminal input open");
        input
            .write_all(format!("{line}\r").as_bytes())
            .expect("type");
        input.flush().expect("flush");
    }

    /// Waits for the program's exit; its code and the whole screen.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for script") {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit:\n{}", self.text());
            thread::sleep(Duration::from_millis(20));
        };
        drop(self.input.take());
        thread::sleep(Duration::from_millis(50));
        (status.code(), self.text())
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

/// The user and password the interop tests log in with (non-ASCII: passwords are bytes).
const USER: &str = "plant-7";
const PASSWORD: &str = "pässword 1";

/// `tern broker` with a password file made by `tern passwd`, used both as
/// `auth.password_file` and `auth.scram_file`.
fn broker_with_password_file(name: &str) -> Tern {
    let dir = scratch(name);
    let file = dir.join("passwd");
    passwd_ok(&["-c", "-b", path_str(&file), USER, PASSWORD], None);
    let config = dir.join("tern.toml");
    let file = path_str(&file);
    let toml = format!("[auth]\npassword_file = {file:?}\nscram_file = {file:?}\n");
    std::fs::write(&config, toml).expect("write the broker config");
    Tern::start(&["-c", path_str(&config)])
}

/// Runs mosquitto_pub with `credentials` (`-u`, `-P`) and returns its exit status and stderr.
fn mosquitto_pub(port: u16, version: &str, credentials: &[&str]) -> (bool, String) {
    let mut command = Command::new("mosquitto_pub");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version]);
    command
        .args(credentials)
        .args(["-t", "passwd/t", "-m", "hello", "-q", "1"]);
    let finished = Peer::spawn(command).finish(TIMEOUT);
    (finished.status.success(), finished.stderr.join("\n"))
}

/// Debian's mosquitto_pub with `-u -P` against a file made by `tern passwd`: the right
/// password connects and publishes; a wrong one is refused with 3.1.1's return code 4 /
/// 5.0's 0x86 [MQTT-3.1.4-2], and no user name (anonymous clients are refused by default
/// with a password file) with 5 / 0x87.
#[test]
fn mosquitto_pub_logs_in_with_a_file_made_by_tern_passwd() {
    let tern = broker_with_password_file("mosquitto");
    for (version, wrong, anonymous) in [
        (
            "mqttv311",
            "Connection Refused: bad user name or password",
            "Connection Refused: not authorised",
        ),
        ("mqttv5", "Bad User Name or Password", "Not authorized"),
    ] {
        let (ok, stderr) = mosquitto_pub(tern.port, version, &["-u", USER, "-P", PASSWORD]);
        assert!(ok, "{version}: {stderr}\n{}", tern.log().join("\n"));
        let (ok, stderr) = mosquitto_pub(tern.port, version, &["-u", USER, "-P", "pässword 2"]);
        assert!(!ok && stderr.contains(wrong), "{version}: {stderr}");
        let (ok, stderr) = mosquitto_pub(tern.port, version, &[]);
        assert!(!ok && stderr.contains(anonymous), "{version}: {stderr}");
    }
}

/// paho-mqtt 2.x with `username_pw_set` against a file made by `tern passwd`: the right
/// password connects and its client gets its own QoS 1 message; a wrong password and an
/// unknown user get 0x86 (3.1.1: return code 4, which paho reports as 134), no user name
/// 0x87 (3.1.1: 5, reported as 135) [MQTT-3.1.4-2].
fn paho_logs_in(version: &str) {
    let tern = broker_with_password_file(&format!("paho-{version}"));
    let out = paho::run_script("passwd", &[version], &tern);
    assert_eq!(out["right"], json!(0), "{out:#}");
    assert_eq!(out["wrong"], json!(0x86), "{out:#}");
    assert_eq!(out["unknown"], json!(0x86), "{out:#}");
    assert_eq!(out["anonymous"], json!(0x87), "{out:#}");
    assert_eq!(out["granted"], json!([1]), "{out:#}");
    assert_eq!(out["message"]["payload"], json!("logged in"), "{out:#}");
}

#[test]
fn paho_v3_1_1_logs_in_with_a_file_made_by_tern_passwd() {
    paho_logs_in("3.1.1");
}

#[test]
fn paho_v5_logs_in_with_a_file_made_by_tern_passwd() {
    paho_logs_in("5");
}

/// The same file as `auth.scram_file`: SCRAM-SHA-256 (MQTT 5.0 enhanced authentication,
/// [MQTT-4.12.0-2]) authenticates the user, and the broker's server-final message proves it
/// knew the keys `tern passwd` derived; a wrong password gets CONNACK 0x86 [MQTT-4.12.0-4].
#[test]
fn scram_sha_256_works_with_the_same_file_mqtt_4_12_0_2() {
    let tern = broker_with_password_file("scram");
    let out = paho::run_script("scram", &[USER, PASSWORD], &tern);
    assert_eq!(
        out,
        json!({"connack": 0, "server_signature_ok": true, "method": "SCRAM-SHA-256"})
    );
    let out = paho::run_script("scram", &[USER, "pässword 2"], &tern);
    assert_eq!(out["connack"], json!(0x86), "{out:#}");
}
