//! Starting and stopping a broker: [`Broker::start`] binds the listeners and spawns the
//! tasks; the returned [`BrokerHandle`] tells the bound addresses and shuts it down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::auth::{Authenticators, CredentialsError};
use crate::config::{Config, ConfigError};
use crate::hub::Hub;
use crate::parking::{self, Parking};
use crate::store::{Store, StoreError};
use crate::{descriptors, listener, store, sys};

/// Why a broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The authentication credentials could not be read.
    #[error(transparent)]
    Auth(#[from] CredentialsError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The epoll instance for parked connections could not be made.
    #[error("cannot make the epoll instance for idle connections: {0} (set limits.park_idle_ms = 0 to run without it)")]
    Parking(std::io::Error),
    /// A listener could not bind its address.
    #[error("cannot listen on {addr}: {source} (is another broker running there? choose another port with -p)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The broker.
#[derive(Debug)]
pub struct Broker;

impl Broker {
    /// Validates `config`, binds every listener and starts serving on the current tokio
    /// runtime.
    pub async fn start(config: Config) -> Result<BrokerHandle, StartError> {
        config.validate()?;
        let auth = Authenticators::from_config(&config.auth)?;
        let mut bound = Vec::new();
        for listener in &config.listeners {
            let addr = listener.addr();
            let socket =
                crate::listener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
            bound.push(socket);
        }
        // A burst of connections must not wait for the table to grow (see the module).
        match descriptors::reserve(config.limits.max_connections) {
            Ok(slots) => debug!(slots, "descriptor table grown"),
            Err(e) => debug!("descriptor table not grown up front: {e}"),
        }
        let interval = (config.sys_interval > 0).then(|| Duration::from_secs(config.sys_interval));
        let permits = Arc::new(Semaphore::new(config.limits.max_connections));
        let opened = match config.persistence {
            true => Some(Store::open(
                &config.data_dir,
                Duration::from_millis(config.checkpoint_interval_ms),
            )?),
            false => None,
        };
        let parking = match config.limits.park_idle_ms {
            0 => None,
            _ => Some(Parking::new().map_err(StartError::Parking)?),
        };
        let hub = match opened {
            Some((store, loaded)) => {
                let (sessions, retained) = (loaded.sessions.len(), loaded.retained.len());
                let mut hub = Hub::with_store(config, Some(store.clone()));
                hub.auth = auth;
                hub.parking = parking.as_ref().map(|(parking, _)| parking.clone());
                store::restore(&hub, &store, loaded);
                info!(
                    file = %store.file().display(),
                    sessions, retained, "store opened"
                );
                Arc::new(hub)
            }
            None => {
                let mut hub = Hub::new(config);
                hub.auth = auth;
                hub.parking = parking.as_ref().map(|(parking, _)| parking.clone());
                Arc::new(hub)
            }
        };
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut addrs = Vec::new();
        for socket in bound {
            let addr = socket.local_addr().map_err(|source| StartError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            info!("listening for MQTT on {addr}");
            addrs.push(addr);
            tasks.spawn(listener::run(
                socket,
                hub.clone(),
                permits.clone(),
                shutdown.clone(),
                tasks.clone(),
            ));
        }
        tasks.spawn(sys::run(hub.clone(), interval, shutdown.clone()));
        if let Some((parking, poll)) = parking {
            tasks.spawn(parking::run(hub.clone(), parking, poll, shutdown.clone()));
        }
        // Connections learn of the shutdown through their mailboxes (see `Registry::shut_down`).
        let (closing, token) = (hub.clone(), shutdown.clone());
        tasks.spawn(async move {
            token.cancelled().await;
            closing.registry.shut_down();
        });
        Ok(BrokerHandle {
            addrs,
            hub,
            shutdown,
            tasks,
        })
    }
}

/// A running broker.
#[derive(Debug)]
pub struct BrokerHandle {
    addrs: Vec<SocketAddr>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl BrokerHandle {
    /// The address of the first listener (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The addresses of all listeners, in configuration order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The shared state, for inspection (tests, `$SYS`, the dashboard).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// A token that shuts the broker down when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Shuts down gracefully: stops accepting, tells MQTT 5.0 clients the server is shutting
    /// down (0x8B), publishes wills, closes every connection, and waits for all tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the broker has shut down (after the token was cancelled).
    pub async fn wait(&self) {
        self.shutdown.cancelled().await;
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(store) = &self.hub.store {
            let store = store.clone();
            // The last commit waits for the disk: off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || store.close()).await;
        }
    }
}
