//! The Tern MQTT broker as a library: MQTT 3.1, 3.1.1 and 5.0 over TCP, on every core.
//!
//! ```no_run
//! use tern_broker::{Broker, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::default();
//! config.listeners[0].port = 0; // let the system choose
//! let broker = Broker::start(config).await?;
//! println!("MQTT on {}", broker.local_addr());
//! broker.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! The path of a PUBLISH: [`listener`] accepts and spawns a [`connection`] task, which runs
//! the [`handshake`] and then feeds packets to the sans-IO [`session`]; the session's
//! messages go through the [`hub`] to the [`router`] (and [`retain`]), which pushes one
//! [`message::Delivery`] into each subscriber's [`mailbox`].
//!
//! - [`server`]: start, addresses, graceful shutdown.
//! - [`config`]: the TOML configuration and its limits.
//! - [`auth`]: who may connect: CONNECT passwords against a password file, anonymous clients,
//!   and MQTT 5.0 enhanced authentication (SCRAM-SHA-256) at CONNECT and after.
//! - [`problem`]: Reason Strings on refusals, as the client's CONNECT allows.
//! - [`registry`]: sessions by client identifier; takeover, resumption, expiry.
//! - [`sys`]: `$SYS/broker/...` topics; [`metrics`]: the counters behind them.
//! - [`clock`]: the one place the broker reads the time; [`descriptors`]: the descriptor
//!   table grown at start.

pub mod auth;
pub mod clock;
pub mod config;
pub mod connection;
pub mod descriptors;
pub mod handshake;
pub mod hub;
pub mod listener;
pub mod mailbox;
pub mod message;
pub mod metrics;
pub mod outbox;
pub mod parking;
pub mod problem;
pub mod registry;
pub mod retain;
pub mod router;
pub mod server;
pub mod session;
pub mod store;
pub mod sys;

pub use config::{Config, ConfigError, Limits, ListenerConfig};
pub use server::{Broker, BrokerHandle, StartError};
