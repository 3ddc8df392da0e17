//! Harness for the tests of `tern pub` and `tern sub`: a broker to talk to (`tern broker`
//! through `common::Tern`, or Debian's `mosquitto` on a free port), and client processes
//! (`tern pub`, `tern sub`, `mosquitto_pub`, `mosquitto_sub`) with stdin fed, stdout kept as
//! raw bytes, stderr as lines, every wait bounded, and SIGKILL when dropped.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::{self, Tern};

/// How long any single wait may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The broker a test talks to.
pub(crate) enum Broker {
    /// `tern broker`.
    Tern(Tern),
    /// `/usr/sbin/mosquitto`.
    Mosquitto(Mosquitto),
}

impl Broker {
    /// `tern broker` on 127.0.0.1 and a free port.
    pub(crate) fn tern() -> Broker {
        Broker::Tern(Tern::start(&[]))
    }

    /// Debian's mosquitto on 127.0.0.1 and a free port, anonymous clients allowed.
    pub(crate) fn mosquitto() -> Broker {
        Broker::Mosquitto(Mosquitto::start("allow_anonymous true\n"))
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        match self {
            Broker::Tern(tern) => tern.port,
            Broker::Mosquitto(mosquitto) => mosquitto.port,
        }
    }
}

/// A running mosquitto broker; killed when dropped.
pub(crate) struct Mosquitto {
    child: Client,
    /// The port it listens on.
    pub(crate) port: u16,
}

impl Mosquitto {
    /// Starts mosquitto with a listener on 127.0.0.1 and `config` appended to its
    /// configuration, and waits until it accepts connections. The port is found free by
    /// binding port 0; should another test take it first, mosquitto exits and a new port is
    /// tried.
    pub(crate) fn start(config: &str) -> Mosquitto {
        for _ in 0..5 {
            if let Some(mosquitto) = Mosquitto::try_start(config) {
                return mosquitto;
            }
        }
        panic!("mosquitto did not start on any of 5 free ports");
    }

    fn try_start(config: &str) -> Option<Mosquitto> {
        let port = free_port();
        let dir = temp_dir("mosquitto");
        let path = dir.join(format!("{port}.conf"));
        std::fs::write(&path, format!("listener {port} 127.0.0.1\n{config}"))
            .expect("write mosquitto.conf");
        let mut command = Command::new("/usr/sbin/mosquitto");
        command.arg("-c").arg(&path);
        // Killed when dropped, like every Client.
        let mut child = Client::spawn(command, None);
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if matches!(child.child.try_wait(), Ok(Some(_))) {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}: {:?}",
                child.stderr_lines()
            );
            thread::sleep(Duration::from_millis(20));
        }
        Some(Mosquitto { child, port })
    }
}

/// A port that was free a moment ago (the OS picks it; mosquitto cannot listen on port 0).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A directory for this test run's files under the target directory.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pubsub-{name}"));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// How a client process ended.
#[derive(Debug)]
pub(crate) struct Output {
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// Everything it wrote to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Its stderr, one entry per line.
    pub(crate) stderr: Vec<String>,
}

impl Output {
    /// The exit code (`None` if killed by a signal).
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stdout lines.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }

    /// All of stderr in one string.
    pub(crate) fn errors(&self) -> String {
        self.stderr.join("\n")
    }
}

/// A client process: stdout collected as bytes, stderr as lines; killed when dropped.
pub(crate) struct Client {
    name: String,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Client {
    /// Spawns `command`; `stdin` is written and closed (None: stdin is empty).
    pub(crate) fn spawn(mut command: Command, stdin: Option<&[u8]>) -> Client {
        let name = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        let mut input = child.stdin.take().expect("stdin piped");
        let data = stdin.unwrap_or_default().to_vec();
        // Written on a thread so that a child that reads slowly cannot block the test.
        thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().expect("stdout piped");
        let err = child.stderr.take().expect("stderr piped");
        let (out_buf, err_lines) = (stdout.clone(), stderr.clone());
        let readers = vec![
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = out.read(&mut chunk) {
                    out_buf
                        .lock()
                        .expect("stdout lock")
                        .extend_from_slice(&chunk[..n]);
                }
            }),
            thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    err_lines.lock().expect("stderr lock").push(line);
                }
            }),
        ];
        Client {
            name,
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// The stderr lines so far.
    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The stdout bytes so far.
    pub(crate) fn stdout_bytes(&self) -> Vec<u8> {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Waits until `ready` holds for (stdout, stderr lines); panics after [`TIMEOUT`] or if
    /// the process exits without everything it wrote making `ready` hold.
    pub(crate) fn wait_until(&mut self, what: &str, ready: impl Fn(&[u8], &[String]) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if ready(&self.stdout_bytes(), &self.stderr_lines()) {
                return;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited {
                // Its last writes may still be in the pipes: read them to the end first.
                self.readers.drain(..).for_each(|r| drop(r.join()));
                if ready(&self.stdout_bytes(), &self.stderr_lines()) {
                    return;
                }
            }
            if exited || Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{}: no {what} ({}).\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    if exited { "it exited" } else { "timed out" },
                    String::from_utf8_lossy(&self.stdout_bytes()),
                    self.stderr_lines().join("\n"),
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a stderr line contains `needle`.
    pub(crate) fn wait_for_stderr(&mut self, needle: &str) {
        self.wait_until(needle, |_, err| err.iter().any(|l| l.contains(needle)));
    }

    /// Waits until stdout contains `needle`.
    pub(crate) fn wait_for_stdout(&mut self, needle: &str) {
        let n = needle.as_bytes().to_vec();
        self.wait_until(needle, move |out, _| out.windows(n.len()).any(|w| w == n));
    }

    /// Sends `signal` (TERM, KILL, INT) with the `kill` command.
    pub(crate) fn signal(&self, signal: &str) {
        common::signal(self.child.id(), signal);
    }

    /// Waits for the exit (killing the process and panicking after `timeout`).
    pub(crate) fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => break None,
            }
        };
        if status.is_none() {
            self.kill();
        }
        self.readers.drain(..).for_each(|r| drop(r.join()));
        let output = Output {
            status: status.unwrap_or_default(),
            stdout: self.stdout_bytes(),
            stderr: self.stderr_lines(),
        };
        assert!(
            status.is_some(),
            "{} did not exit within {timeout:?}; killed.\n{output:#?}\nstdout: {}",
            self.name,
            output.text()
        );
        output
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `tern pub` or `tern sub` (the first of `args`) against `port`.
pub(crate) fn tern(port: u16, args: &[&str]) -> Command {
    let mut command = common::tern();
    let (sub, rest) = args.split_first().expect("a subcommand");
    command
        .arg(sub)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(rest);
    command
}

/// Runs `tern` with `args` (no host or port added) to the end.
pub(crate) fn tern_bare(args: &[&str]) -> Output {
    let mut command = common::tern();
    command.args(args);
    Client::spawn(command, None).finish(TIMEOUT)
}

/// Runs `tern pub ARGS` against `port` to the end, with `stdin`.
pub(crate) fn tern_pub(port: u16, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut all = vec!["pub"];
    all.extend_from_slice(args);
    Client::spawn(tern(port, &all), stdin).finish(TIMEOUT)
}

/// Like [`tern_pub`], and checks that it succeeded.
pub(crate) fn tern_pub_ok(port: u16, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let out = tern_pub(port, args, stdin);
    assert_eq!(out.code(), Some(0), "tern pub {args:?}: {out:#?}");
    out
}

/// Starts `tern sub -d ARGS` against `port` and waits until every `-t` is subscribed.
pub(crate) fn tern_sub(port: u16, args: &[&str]) -> Client {
    let mut all = vec!["sub", "-d"];
    all.extend_from_slice(args);
    let topics = args.iter().filter(|a| **a == "-t").count();
    let mut client = Client::spawn(tern(port, &all), None);
    client.wait_until("SUBACK", move |_, err| {
        err.iter()
            .filter(|l| l.starts_with("Subscribed to "))
            .count()
            >= topics
    });
    client
}

/// Starts `mosquitto_sub ARGS` against `port` and waits for its SUBACK (seen through `-d`,
/// whose lines on stdout start with `Client ` and are left out of [`Output::stdout`] by
/// [`mosquitto_output`]).
pub(crate) fn mosquitto_sub(port: u16, args: &[&str]) -> Client {
    let mut command = Command::new("stdbuf");
    command
        .args([
            "-oL",
            "mosquitto_sub",
            "-d",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args(args);
    let mut client = Client::spawn(command, None);
    client.wait_for_stdout("received SUBACK");
    client
}

/// A finished `mosquitto_sub -d`, without its debug lines.
pub(crate) fn mosquitto_output(client: Client) -> Output {
    let mut out = client.finish(TIMEOUT);
    let text = out.stdout.split_inclusive(|&b| b == b'\n');
    out.stdout = text
        .filter(|line| !line.starts_with(b"Client ") && !line.starts_with(b"Subscribed (mid"))
        .flatten()
        .copied()
        .collect();
    out
}

/// Runs `mosquitto_pub ARGS` against `port` and checks that it succeeded.
pub(crate) fn mosquitto_pub(port: u16, args: &[&str]) {
    let mut command = Command::new("mosquitto_pub");
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    let out = Client::spawn(command, None).finish(TIMEOUT);
    assert_eq!(out.code(), Some(0), "mosquitto_pub {args:?}: {out:#?}");
}
