//! Helpers shared by the integration tests: an in-process broker on 127.0.0.1 and a
//! time limit for every wait.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tern_broker::{Broker, BrokerHandle, Config};
use tern_client::{ConnectOptions, ProtocolVersion};

/// Every wait in a test is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Starts a broker on 127.0.0.1, on `port` (0: any free port).
pub async fn broker_on(port: u16) -> BrokerHandle {
    let mut config = Config::default();
    config.listeners[0].bind = "127.0.0.1".parse().expect("an address");
    config.listeners[0].port = port;
    config.sys_interval = 0;
    config.persistence = false;
    Broker::start(config).await.expect("broker starts")
}

/// Starts a broker on a free port.
pub async fn broker() -> BrokerHandle {
    broker_on(0).await
}

/// Options for the broker at `addr`, speaking `version`.
pub fn options(addr: SocketAddr, version: ProtocolVersion) -> ConnectOptions {
    ConnectOptions::new(addr.ip().to_string(), addr.port()).protocol(version)
}

/// Awaits `future`, failing the test after [`LIMIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out: {what}"),
    }
}
