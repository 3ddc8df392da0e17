//! The `tern broker` command itself: its options, configuration errors (exit code 1 with a
//! message naming the problem), starting from a configuration file, and graceful shutdown on
//! SIGTERM and SIGINT (exit code 0, MQTT 5.0 clients told 0x8B, wills published).

mod common;

use std::path::PathBuf;

use common::{has_line, mosquitto_pub, tern, Finished, Message, Peer, Sub, Tern, TIMEOUT};

/// Writes `text` to a configuration file private to the calling test.
fn config_file(test: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("broker_cli");
    std::fs::create_dir_all(&dir).expect("create the test's temporary directory");
    let path = dir.join(format!("{test}.toml"));
    std::fs::write(&path, text).expect("write the test's config file");
    path
}

/// Runs `tern` with `args` to completion.
fn run(args: &[&str]) -> Finished {
    let mut command = tern();
    command.args(args);
    Peer::spawn(command).finish(TIMEOUT)
}

/// Runs `tern` with `args`, which must make it fail at start-up, and returns its error
/// message after checking the exit code is 1.
fn start_error(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(1), "tern {args:?}: {out:#?}");
    let stderr = out.stderr.join("\n");
    assert!(stderr.starts_with("tern: error: "), "{stderr}");
    stderr
}

#[test]
fn help_lists_config_port_bind_and_log_level() {
    let out = run(&["broker", "--help"]);
    assert!(out.status.success(), "{out:#?}");
    for option in [
        "-c, --config <FILE>",
        "-p, --port <PORT>",
        "--bind <ADDR>",
        "--log-level <FILTER>",
        "--data-dir <DIR>",
        "--in-memory",
        "--check-store",
    ] {
        assert!(has_line(&out.stdout, option), "no {option}: {out:#?}");
    }
    let out = run(&["--help"]);
    assert!(has_line(&out.stdout, "broker"), "{out:#?}");
}

#[test]
fn version_is_the_crate_version() {
    let out = run(&["--version"]);
    assert!(out.status.success(), "{out:#?}");
    assert_eq!(out.stdout, [format!("tern {}", env!("CARGO_PKG_VERSION"))]);
}

#[test]
fn unknown_option_is_a_usage_error() {
    let out = run(&["broker", "--no-such-option"]);
    assert_eq!(out.status.code(), Some(2), "{out:#?}");
    assert!(has_line(&out.stderr, "--no-such-option"), "{out:#?}");
}

#[test]
fn unknown_config_key_fails_naming_the_key_and_file() {
    let path = config_file("unknown_key", "[limits]\nmax_inflite = 5\n");
    let path = path.to_str().expect("UTF-8 path");
    let error = start_error(&["broker", "-c", path, "-p", "0", "--bind", "127.0.0.1"]);
    assert!(error.contains("max_inflite"), "{error}");
    assert!(error.contains(path), "{error}");
}

#[test]
fn out_of_range_config_value_fails_naming_the_key() {
    let path = config_file("out_of_range", "[limits]\nmax_inflight = 0\n");
    let path = path.to_str().expect("UTF-8 path");
    let error = start_error(&["broker", "-c", path, "-p", "0", "--bind", "127.0.0.1"]);
    assert!(error.contains("limits.max_inflight"), "{error}");
}

#[test]
fn missing_config_file_fails() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("broker_cli/does-not-exist.toml");
    let path = path.to_str().expect("UTF-8 path");
    let error = start_error(&["broker", "-c", path]);
    assert!(error.contains("cannot read config file"), "{error}");
}

#[test]
fn invalid_log_filter_fails() {
    let error = start_error(&[
        "broker",
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "--log-level",
        "[[[=",
    ]);
    assert!(error.contains("invalid log filter"), "{error}");
}

#[test]
fn port_in_use_fails_naming_the_address() {
    let first = Tern::start(&[]);
    let port = first.port.to_string();
    let error = start_error(&["broker", "-p", &port, "--bind", "127.0.0.1"]);
    assert!(
        error.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{error}"
    );
}

/// A configuration file alone sets the listener and the log level: the broker listens where
/// the file says, serves a client and logs at debug level.
#[test]
fn config_file_with_listener_starts_and_serves() {
    let path = config_file(
        "valid",
        "sys_interval = 0\npersistence = false\n\n[[listeners]]\nbind = \"127.0.0.1\"\nport = 0\n\n\
         [limits]\nmax_inflight = 8\n\n[log]\nlevel = \"debug\"\n",
    );
    let mut tern = Tern::spawn(&["broker", "-c", path.to_str().expect("UTF-8 path")]);
    mosquitto_pub(tern.port, "mqttv311", &["-t", "cli/config", "-m", "up"]);
    tern.wait_for_log("connected");
    let out = tern.terminate();
    assert!(out.status.success(), "{out:#?}");
}

/// SIGTERM shuts the broker down gracefully: MQTT 5.0 clients get DISCONNECT with reason
/// 0x8B Server shutting down (5.0 section 3.14.2.1), the wills of connected clients are
/// published since their connections close without DISCONNECT ([MQTT-3.1.2-8]), and the
/// process exits 0 after logging `stopped`.
///
/// Whether a subscriber still receives those wills is a race with its own connection being
/// closed, so the will is checked in the broker's debug log instead.
#[test]
fn sigterm_disconnects_v5_clients_with_0x8b_publishes_wills_and_exits_0() {
    let mut tern = Tern::start(&["--log-level", "debug"]);
    let mut v5 = Sub::start(
        tern.port,
        "mqttv5",
        &["-t", "cli/none", "-W", "10", "--will-topic", "cli/will/v5"],
    );
    let _v311 = Sub::start(
        tern.port,
        "mqttv311",
        &[
            "-t",
            "cli/none",
            "-W",
            "10",
            "--will-topic",
            "cli/will/v311",
        ],
    );

    let out = tern.terminate();
    assert!(out.status.success(), "{out:#?}");
    v5.peer()
        .wait_for_line("Received DISCONNECT (139)", TIMEOUT);

    let position = |needle: &str| {
        out.stdout
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?}: {:#?}", out.stdout))
    };
    let shutting_down = position("shutting down");
    let stopped = position("stopped");
    for topic in ["cli/will/v5", "cli/will/v311"] {
        let will = position(&format!("publishing will topic={topic}"));
        assert!(shutting_down < will && will < stopped, "{:#?}", out.stdout);
    }
}

/// SIGINT (Ctrl-C) stops the broker as SIGTERM does.
#[test]
fn sigint_exits_0() {
    let mut tern = Tern::start(&[]);
    tern.signal("INT");
    let out = tern.finish();
    assert!(out.status.success(), "{out:#?}");
    assert!(has_line(&out.stdout, "stopped"), "{out:#?}");
}

/// A fresh directory for one test's store.
fn store_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-cli-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `--data-dir` keeps the store there: a retained message survives a restart, and
/// `--check-store` reports it without starting a broker.
#[test]
fn data_dir_keeps_retained_messages_across_restarts_and_check_store_reports() {
    let dir = store_dir("retained");
    let path = dir.to_str().expect("UTF-8 path");
    let mut tern = Tern::spawn(&[
        "broker",
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "--data-dir",
        path,
    ]);
    mosquitto_pub(
        tern.port,
        "mqttv311",
        &["-t", "cli/kept", "-m", "21.5", "-r", "-q", "1"],
    );
    assert!(tern.terminate().status.success());

    let out = run(&["broker", "--check-store", "--data-dir", path]);
    assert!(out.status.success(), "{out:#?}");
    assert!(has_line(&out.stdout, "retained messages:  1"), "{out:#?}");
    assert!(has_line(&out.stdout, "format:             1"), "{out:#?}");
    assert!(
        has_line(
            &out.stdout,
            "journal:            0 operations not yet in the database"
        ),
        "a clean stop folds the journal into the database: {out:#?}"
    );

    let tern = Tern::spawn(&[
        "broker",
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "--data-dir",
        path,
    ]);
    let messages = Sub::start(tern.port, "mqttv311", &["-t", "cli/kept", "-C", "1"]).messages();
    assert_eq!(messages, [Message::new(true, 0, "cli/kept", "21.5")]);
}

/// `--in-memory` writes nothing: the directory a store would go to stays absent.
#[test]
fn in_memory_writes_nothing() {
    let dir = store_dir("memory");
    let config = config_file(
        "memory",
        &format!("data_dir = {:?}\n", dir.to_str().expect("UTF-8 path")),
    );
    let config = config.to_str().expect("UTF-8 path");
    let mut tern = Tern::spawn(&[
        "broker",
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "-c",
        config,
        "--in-memory",
    ]);
    mosquitto_pub(
        tern.port,
        "mqttv311",
        &["-t", "cli/x", "-m", "1", "-r", "-q", "1"],
    );
    assert!(tern.terminate().status.success());
    assert!(!dir.exists(), "{} was created", dir.display());
}

/// A damaged store stops the broker with exit 1 and a message naming the file; the file is
/// left as it was.
#[test]
fn damaged_store_fails_naming_the_file() {
    let dir = store_dir("damaged");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tern.redb");
    std::fs::write(&file, b"not a store").expect("write");
    let path = dir.to_str().expect("UTF-8 path");
    let error = start_error(&[
        "broker",
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "--data-dir",
        path,
    ]);
    assert!(error.contains(&*file.to_string_lossy()), "{error}");
    assert!(error.contains("move the file away"), "{error}");
    assert_eq!(std::fs::read(&file).expect("read"), b"not a store");
}
