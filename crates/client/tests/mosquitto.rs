//! Interoperability with Debian's mosquitto: connect, subscribe, and QoS 0/1/2 round trips
//! in MQTT 3.1.1 and 5.0. Needs `/usr/sbin/mosquitto`, which `scripts/test` installs.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::within;
use tern_client::{Client, ConnectOptions, ProtocolVersion, QoS};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A mosquitto process, killed when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        assert!(
            std::path::Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: install Debian's mosquitto (scripts/test does)"
        );
        // A free port: bind port 0, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(MOSQUITTO)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        Mosquitto { child, port }
    }

    async fn wait_ready(&self) {
        within("mosquitto listening", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn round_trips_with_mosquitto() {
    let mosquitto = Mosquitto::start();
    mosquitto.wait_ready().await;
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let options = ConnectOptions::from_url(&format!("mqtt://127.0.0.1:{}", mosquitto.port))
            .expect("url")
            .protocol(version);
        let client = within("connect", Client::connect(options))
            .await
            .expect("connects");
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let topic = format!("interop/{version}/{}", u8::from(qos));
            let mut stream = within("subscribe", client.subscribe(&topic, qos))
                .await
                .expect("subscribed");
            assert_eq!(stream.granted_qos(), qos);
            within("publish", client.publish(&topic, "hello", qos, false))
                .await
                .expect("published");
            let message = within("message", stream.recv()).await.expect("a message");
            assert_eq!(
                (message.topic.as_str(), message.payload_str(), message.qos),
                (topic.as_str(), Some("hello"), qos)
            );
        }
        client.disconnect().await;
    }
}
