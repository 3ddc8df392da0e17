//! Running the paho-mqtt scripts of this directory: finding a Python that has paho-mqtt 2.x
//! and reading the JSON a script prints. Shared by `interop_paho.rs` and
//! `interop_paho_v5.rs`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{workspace_root, Peer, Tern};

/// How long one script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The first interpreter, of `$TERN_TEST_PYTHON` and the test venv, that has paho-mqtt 2.x.
pub(crate) fn python() -> PathBuf {
    let venv = workspace_root().join("target/test-venv/bin/python");
    let candidates: Vec<PathBuf> = std::env::var_os("TERN_TEST_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv])
        .collect();
    for python in &candidates {
        let mut check = Command::new(python);
        check.args([
            "-c",
            "import sys, paho.mqtt; sys.exit(int(paho.mqtt.__version__.split('.')[0]) < 2)",
        ]);
        if python.exists() && Peer::spawn(check).finish(SCRIPT_TIMEOUT).status.success() {
            return python.clone();
        }
    }
    panic!(
        "paho-mqtt 2.x is not installed for any of {candidates:?}. Run scripts/test, which \
         creates target/test-venv with paho-mqtt, or set TERN_TEST_PYTHON to a Python that has it."
    );
}

/// Runs `tests/paho/{script}.py PORT args...` against `tern` and returns the JSON it prints
/// last; fails the test, with the script's stderr and the broker's log, if the script fails.
pub(crate) fn run_script(script: &str, args: &[&str], tern: &Tern) -> Value {
    let python = python();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/paho/{script}.py"));
    let mut command = Command::new(python);
    command
        .arg(path)
        .arg(tern.port.to_string())
        .args(args)
        // Keep __pycache__ out of the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let finished = Peer::spawn(command).finish(SCRIPT_TIMEOUT);
    assert!(
        finished.status.success(),
        "{script}.py {args:?} failed:\n{}\nbroker log:\n{}",
        finished.stderr.join("\n"),
        tern.log().join("\n"),
    );
    let last = finished.stdout.last().map(String::as_str).unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script}.py printed {last:?}: {e}"))
}
