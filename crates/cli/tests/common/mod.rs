//! Harness for the tests that run the `tern` binary and real MQTT peers against it.
//!
//! - [`Tern`] starts `tern broker` on `127.0.0.1` with an OS-assigned port, reads the port from
//!   its `listening for MQTT on` log line, keeps collecting its log, and stops it with SIGTERM
//!   when dropped, so a failing test leaves no broker behind.
//! - [`Peer`] is any other child process (mosquitto_sub, paho scripts): its output is collected
//!   line by line, every wait has a deadline, and it is killed with SIGKILL when dropped.
//! - [`Sub`] and [`mosquitto_pub`] wrap Debian's `mosquitto_sub` and `mosquitto_pub`.
//!
//! Processes are signalled with the `kill` command, so the tests need neither `libc` nor `nix`.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single wait (broker start, SUBACK, a peer's exit) may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// Lines written by a child process, shared with the thread that reads them.
type Lines = Arc<Mutex<Vec<String>>>;

/// Reads `source` line by line into `lines` until it closes, dropping ANSI colour codes.
fn collect<R: Read + Send + 'static>(source: R, lines: Lines) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            lines
                .lock()
                .expect("output lock poisoned")
                .push(strip_ansi(&line));
        }
    })
}

/// Removes `ESC [ ... letter` sequences (tracing colours its output unless NO_COLOR is set).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Sends `signal` (such as `TERM` or `KILL`) to a process with the `kill` command.
pub(crate) fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// A child process with its stdout and stderr collected; killed with SIGKILL when dropped.
pub(crate) struct Peer {
    name: String,
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
}

/// How a [`Peer`] ended and what it wrote.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// Its standard output, one entry per line.
    pub(crate) stdout: Vec<String>,
    /// Its standard error, one entry per line.
    pub(crate) stderr: Vec<String>,
}

impl Peer {
    /// Spawns `command` with stdin closed and stdout and stderr collected.
    pub(crate) fn spawn(mut command: Command) -> Peer {
        let name = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        let stdout = Lines::default();
        let stderr = Lines::default();
        let readers = vec![
            collect(child.stdout.take().expect("stdout piped"), stdout.clone()),
            collect(child.stderr.take().expect("stderr piped"), stderr.clone()),
        ];
        Peer {
            name,
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// The stdout lines collected so far.
    pub(crate) fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("output lock poisoned").clone()
    }

    /// Waits until a stdout line contains `needle` and returns it; panics if the process
    /// exits without writing one, or after `timeout`.
    pub(crate) fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let find = |peer: &Peer| peer.stdout().into_iter().find(|l| l.contains(needle));
        loop {
            if let Some(line) = find(self) {
                return line;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                // The readers may still hold the last lines of a process that just exited.
                self.readers.drain(..).for_each(|r| drop(r.join()));
                if let Some(line) = find(self) {
                    return line;
                }
                panic!(
                    "{}: no line containing {needle:?} ({}).\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    if exited { "it exited" } else { "timed out" },
                    self.stdout().join("\n"),
                    self.stderr.lock().expect("output lock poisoned").join("\n"),
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` to the process.
    pub(crate) fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// Waits for the process to exit and returns its status and output; kills it and panics
    /// after `timeout`.
    pub(crate) fn finish(&mut self, timeout: Duration) -> Finished {
        let status = wait_until(&mut self.child, Instant::now() + timeout);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.readers.drain(..).for_each(|r| drop(r.join()));
        let finished = Finished {
            status: status.unwrap_or_default(),
            stdout: self.stdout(),
            stderr: self.stderr.lock().expect("output lock poisoned").clone(),
        };
        assert!(
            status.is_some(),
            "{} did not exit within {timeout:?}; killed.\n{finished:#?}",
            self.name
        );
        finished
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A running `tern broker`; stopped with SIGTERM (then SIGKILL) when dropped.
pub(crate) struct Tern {
    peer: Peer,
    /// The port the broker listens on.
    pub(crate) port: u16,
}

impl Tern {
    /// `tern broker -p 0 --bind 127.0.0.1` with `extra` arguments appended.
    pub(crate) fn start(extra: &[&str]) -> Tern {
        let mut args = vec!["broker", "-p", "0", "--bind", "127.0.0.1", "--in-memory"];
        args.extend_from_slice(extra);
        Tern::spawn(&args)
    }

    /// `tern` with exactly `args`, which must make it listen on one port.
    pub(crate) fn spawn(args: &[&str]) -> Tern {
        let mut command = tern();
        command.args(args);
        let mut peer = Peer::spawn(command);
        let line = peer.wait_for_line("listening for MQTT on ", TIMEOUT);
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Tern { peer, port }
    }

    /// The log lines written so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.peer.stdout()
    }

    /// Waits until a log line contains `needle` and returns it; panics after [`TIMEOUT`].
    pub(crate) fn wait_for_log(&mut self, needle: &str) -> String {
        self.peer.wait_for_line(needle, TIMEOUT)
    }

    /// Sends `sig` (such as `TERM` or `INT`) to the broker.
    pub(crate) fn signal(&self, sig: &str) {
        self.peer.signal(sig);
    }

    /// Waits for the broker to exit and returns its status and whole log; panics if it does
    /// not exit within [`TIMEOUT`].
    pub(crate) fn finish(&mut self) -> Finished {
        self.peer.finish(TIMEOUT)
    }

    /// Sends SIGTERM and waits for the broker to exit, as [`Tern::finish`] does.
    pub(crate) fn terminate(&mut self) -> Finished {
        self.signal("TERM");
        self.finish()
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        if let Ok(None) = self.peer.child.try_wait() {
            self.peer.signal("TERM");
            let _ = wait_until(
                &mut self.peer.child,
                Instant::now() + Duration::from_secs(5),
            );
        }
        // Peer's own Drop kills it if SIGTERM was not enough.
    }
}

/// A command running the `tern` binary built for these tests.
pub(crate) fn tern() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command.env("NO_COLOR", "1").env_remove("RUST_LOG");
    command
}

/// The workspace root (two levels above this crate).
pub(crate) fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A message printed by `mosquitto_sub -F '%r %q %t %p'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The RETAIN flag of the PUBLISH the subscriber received.
    pub(crate) retain: bool,
    /// The QoS of that PUBLISH.
    pub(crate) qos: u8,
    /// The topic name.
    pub(crate) topic: String,
    /// The payload, as text.
    pub(crate) payload: String,
}

impl Message {
    /// A message with these fields.
    pub(crate) fn new(retain: bool, qos: u8, topic: &str, payload: &str) -> Message {
        Message {
            retain,
            qos,
            topic: topic.to_owned(),
            payload: payload.to_owned(),
        }
    }

    fn parse(line: &str) -> Option<Message> {
        let mut parts = line.splitn(4, ' ');
        let retain = match parts.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let qos = parts.next()?.parse().ok().filter(|q| *q <= 2)?;
        Some(Message {
            retain,
            qos,
            topic: parts.next()?.to_owned(),
            payload: parts.next().unwrap_or("").to_owned(),
        })
    }
}

/// Arguments every mosquitto client gets: host, port, protocol version, debug output.
fn mosquitto_args(command: &mut Command, port: u16, version: &str) {
    command.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-V",
        version,
        "-d",
    ]);
}

/// A running `mosquitto_sub`, started with `-d` (debug lines on stdout) and
/// `-F '%r %q %t %p'` (one line per message: retain flag, QoS, topic, payload).
pub(crate) struct Sub {
    peer: Peer,
}

/// What a [`Sub`] received.
#[derive(Debug)]
pub(crate) struct SubOutput {
    /// The messages, in order.
    pub(crate) messages: Vec<Message>,
    /// The debug lines (`Client ... received PUBLISH ...`), for checking the packet flow.
    pub(crate) debug: Vec<String>,
    /// The exit status: 0 after `-C` messages, 27 after the `-W` timeout.
    pub(crate) status: ExitStatus,
}

impl Sub {
    /// Starts `mosquitto_sub` with `args` (topics, QoS, `-C`, `-W`, ...) and waits for its
    /// SUBACK, so that a message published afterwards reaches it.
    pub(crate) fn start(port: u16, version: &str, args: &[&str]) -> Sub {
        let mut sub = Sub::spawn(port, version, args);
        sub.peer.wait_for_line("received SUBACK", TIMEOUT);
        sub
    }

    /// Starts `mosquitto_sub` without waiting for anything.
    pub(crate) fn spawn(port: u16, version: &str, args: &[&str]) -> Sub {
        // mosquitto_sub flushes stdout after each message but not after its debug lines;
        // stdbuf (coreutils) makes them line-buffered so the SUBACK line is seen at once.
        let mut command = Command::new("stdbuf");
        command.args(["-oL", "mosquitto_sub"]);
        mosquitto_args(&mut command, port, version);
        command.args(["-F", "%r %q %t %p"]).args(args);
        Sub {
            peer: Peer::spawn(command),
        }
    }

    /// The underlying process.
    pub(crate) fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// Waits for the subscriber to exit (it must have `-C` or `-W`) and splits its output.
    pub(crate) fn finish(mut self) -> SubOutput {
        let finished = self.peer.finish(TIMEOUT);
        let mut messages = Vec::new();
        let mut debug = Vec::new();
        for line in finished.stdout {
            if line.starts_with("Client ") || line.starts_with("Subscribed ") {
                debug.push(line);
            } else if let Some(message) = Message::parse(&line) {
                messages.push(message);
            } else {
                panic!("unexpected mosquitto_sub output {line:?}");
            }
        }
        SubOutput {
            messages,
            debug,
            status: finished.status,
        }
    }

    /// Waits for exit, checks that it received its `-C` count (exit 0) and returns the
    /// messages.
    pub(crate) fn messages(self) -> Vec<Message> {
        let out = self.finish();
        assert!(out.status.success(), "mosquitto_sub failed: {out:#?}");
        out.messages
    }
}

/// Runs `mosquitto_pub` with `args` to completion and returns its debug lines; panics if it
/// fails or takes longer than [`TIMEOUT`].
pub(crate) fn mosquitto_pub(port: u16, version: &str, args: &[&str]) -> Vec<String> {
    let mut command = Command::new("mosquitto_pub");
    mosquitto_args(&mut command, port, version);
    command.args(args);
    let finished = Peer::spawn(command).finish(TIMEOUT);
    assert!(
        finished.status.success(),
        "mosquitto_pub {args:?} failed: {finished:#?}"
    );
    finished.stdout
}

/// True if some line contains `needle`.
pub(crate) fn has_line(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}
