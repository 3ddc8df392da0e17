//! Debian's mosquitto started by a test: on a free port (mosquitto cannot listen on port 0,
//! so a port is found free by binding port 0 and tried again if another test takes it
//! first), with configuration lines of the test's, killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A mosquitto process, killed when dropped.
pub struct Mosquitto {
    child: Child,
    /// The port of its listener on 127.0.0.1.
    pub port: u16,
}

impl Mosquitto {
    /// Starts mosquitto with `listener PORT 127.0.0.1`, `allow_anonymous true` and `config`,
    /// writing its configuration into `dir`; returns once it accepts TCP connections.
    pub fn start(dir: &Path, config: &str) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: install Debian's mosquitto (scripts/test does)"
        );
        std::fs::create_dir_all(dir).expect("create the mosquitto directory");
        for _ in 0..5 {
            if let Some(mosquitto) = Mosquitto::try_start(dir, config) {
                return mosquitto;
            }
        }
        panic!("mosquitto did not start on any of 5 free ports");
    }

    fn try_start(dir: &Path, config: &str) -> Option<Mosquitto> {
        let port = free_port();
        let path = dir.join(format!("mosquitto-{port}.conf"));
        let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\n{config}\n");
        std::fs::write(&path, text).expect("write mosquitto.conf");
        let mut child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Mosquitto { child, port })
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A fresh directory for one test's files under the target directory.
pub fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tern-client")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}
