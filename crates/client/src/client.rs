//! [`Client`]: the handle applications hold. Cheap to clone; every clone talks to the same
//! connection task.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tern_codec::{
    ClientId, Connect, MqttString, ProtocolVersion, Publish, QoS, ReasonCode, SubscriptionOptions,
    TopicFilter, TopicName, MAX_PACKET_SIZE,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::backoff::Delays;
use crate::connection::{Command, Connection, Settings};
use crate::error::{
    ConnectError, ConnectErrorKind, PublishError, PublishErrorKind, SubscribeError,
    SubscribeErrorKind,
};
use crate::message::Publication;
use crate::options::ConnectOptions;
use crate::protocol::{self, Protocol, SubKey};
use crate::state::ConnectionState;
use crate::store::Store;
use crate::subscription::Subscription;
use crate::transport::TlsSetup;

/// Commands waiting for the connection task; senders wait when it is this far behind.
const COMMAND_CAPACITY: usize = 128;

/// A connected MQTT client. Cloning it is cheap and every clone uses the same connection;
/// the connection task runs by itself, so nothing needs polling.
///
/// The client closes when [`Client::disconnect`] is called or when every `Client` and
/// [`Subscription`] is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    commands: mpsc::Sender<Command>,
    releases: mpsc::UnboundedSender<SubKey>,
    state: watch::Receiver<ConnectionState>,
    next_key: AtomicU64,
    version: ProtocolVersion,
    client_id: String,
    subscription_capacity: usize,
}

impl Client {
    /// Connects, and returns once the server has accepted the connection (CONNACK).
    ///
    /// The first connection attempt is not retried: its failure is the error. Once
    /// connected, a lost connection is re-established in the background with the options'
    /// [`Backoff`](crate::Backoff). Must be called inside a tokio runtime.
    pub async fn connect(options: ConnectOptions) -> Result<Client, ConnectError> {
        let (store, client_id, restored) = match &options.store {
            Some(path) => {
                let failed = |e| ConnectError::with_source(ConnectErrorKind::Store, e);
                let (store, stored_id, restored) =
                    Store::open(path, options.client_id.as_deref()).map_err(failed)?;
                let client_id = stored_id.unwrap_or_else(generated_client_id);
                store.set_client_id(&client_id).map_err(failed)?;
                (Some(store), client_id, Some(restored))
            }
            None => {
                let client_id = options
                    .client_id
                    .clone()
                    .unwrap_or_else(generated_client_id);
                (None, client_id, None)
            }
        };
        let connect = connect_packet(&options, &client_id)?;
        let config = protocol::Config {
            connect,
            keep_alive: std::time::Duration::from_secs(options.keep_alive.as_secs()),
            ping_timeout: options.ping_timeout,
            connect_timeout: options.connect_timeout,
            offline_buffer: options.offline_buffer,
            topic_aliases: options.topic_aliases,
            persist: store.is_some(),
        };
        let tls = match &options.tls {
            Some(tls) => {
                let (config, server_name) = tls
                    .build(&options.host)
                    .map_err(|e| ConnectError::with_source(ConnectErrorKind::InvalidOptions, e))?;
                Some(TlsSetup {
                    config,
                    server_name,
                })
            }
            None => None,
        };
        let now = tokio::time::Instant::now().into_std();
        let mut protocol = Protocol::new(config, now);
        if let Some(restored) = restored {
            protocol.restore(restored);
        }
        let settings = Settings {
            host: options.host.clone(),
            port: options.port,
            connect_timeout: options.connect_timeout,
            write_timeout: options.write_timeout,
            max_incoming_packet_size: options.max_incoming_packet_size,
            tls,
            unrouted_buffer: options.unrouted_buffer,
        };
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (releases_tx, releases_rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let (first_tx, first_rx) = oneshot::channel();
        let connection = Connection::new(
            settings,
            protocol,
            commands_rx,
            releases_rx,
            state_tx,
            first_tx,
            options.reconnect.map(Delays::new),
            store,
        );
        let span = tracing::info_span!(
            "mqtt_client",
            client_id = %client_id,
            server = %format_args!("{}:{}", options.host, options.port),
        );
        tokio::spawn(connection.run().instrument(span));
        match first_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(_) => return Err(ConnectError::new(ConnectErrorKind::Io)),
        }
        Ok(Client {
            shared: Arc::new(Shared {
                commands: commands_tx,
                releases: releases_tx,
                state: state_rx,
                next_key: AtomicU64::new(1),
                version: options.protocol,
                client_id,
                subscription_capacity: options.subscription_capacity,
            }),
        })
    }

    /// Publishes `payload` to `topic`, and resolves when the message is delivered as its QoS
    /// promises: QoS 0 once written, QoS 1 at PUBACK, QoS 2 at PUBCOMP. Returns the server's
    /// reason code (MQTT 5.0: Success or No matching subscribers; 3.1.1: Success).
    ///
    /// While disconnected the publish waits in the offline buffer and goes out after the
    /// reconnect; when the buffer is full it fails at once with
    /// [`PublishErrorKind::BufferFull`].
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<ReasonCode, PublishError> {
        self.publish_with(Publication::new(topic, payload).qos(qos).retain(retain))
            .await
    }

    /// Publishes a [`Publication`] (MQTT 5.0 properties included); see [`Client::publish`].
    pub async fn publish_with(&self, publication: Publication) -> Result<ReasonCode, PublishError> {
        let publish = self.check_publication(publication)?;
        let (reply, outcome) = oneshot::channel();
        self.send(Command::Publish { publish, reply })
            .await
            .map_err(|_| PublishError::new(PublishErrorKind::Closed))?;
        outcome
            .await
            .unwrap_or_else(|_| Err(PublishError::new(PublishErrorKind::Closed)))
    }

    fn check_publication(&self, publication: Publication) -> Result<Publish, PublishError> {
        let invalid_topic = |e| PublishError::with_source(PublishErrorKind::InvalidTopic, e);
        let topic = TopicName::try_from(publication.topic.as_str()).map_err(invalid_topic)?;
        let mut publish = Publish::new(topic, publication.payload);
        publish.qos = publication.qos;
        publish.retain = publication.retain;
        publish.properties = publication.properties;
        publish.properties.topic_alias = None;
        if let Some(response) = publication.response_topic {
            let response = TopicName::try_from(response.as_str()).map_err(invalid_topic)?;
            publish.properties.response_topic = Some(response);
        }
        let invalid = PublishError::new(PublishErrorKind::InvalidMessage);
        if !publish.properties.subscription_identifiers.is_empty() {
            return Err(invalid);
        }
        if publish
            .properties
            .correlation_data
            .as_ref()
            .is_some_and(|d| d.len() > usize::from(u16::MAX))
        {
            return Err(invalid);
        }
        if publish.encoded_len(self.shared.version) > MAX_PACKET_SIZE {
            return Err(PublishError::new(PublishErrorKind::PacketTooLarge));
        }
        Ok(publish)
    }

    /// Subscribes to `filter` and returns the stream of its messages once the server has
    /// acknowledged (SUBACK). Made while disconnected, the subscription is sent, and this
    /// call resolves, after the reconnect.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<Subscription, SubscribeError> {
        self.subscribe_with(filter, SubscriptionOptions::with_qos(qos))
            .await
    }

    /// Subscribes with MQTT 5.0 options (No Local, Retain As Published, Retain Handling);
    /// see [`Client::subscribe`].
    pub async fn subscribe_with(
        &self,
        filter: &str,
        options: SubscriptionOptions,
    ) -> Result<Subscription, SubscribeError> {
        let filter = MqttString::try_from(filter)
            .and_then(TopicFilter::new)
            .map_err(|e| SubscribeError::with_source(SubscribeErrorKind::InvalidFilter, e))?;
        let key = SubKey(self.shared.next_key.fetch_add(1, Ordering::Relaxed));
        // Made before the request is sent, so that a cancelled call still releases the key.
        let (mut subscription, sink) = Subscription::new(
            key,
            filter.clone(),
            self.shared.subscription_capacity,
            self.shared.releases.clone(),
        );
        let (reply, outcome) = oneshot::channel();
        let command = Command::Subscribe {
            key,
            filter,
            options,
            sink,
            reply,
        };
        let closed = || SubscribeError::new(SubscribeErrorKind::Closed);
        self.send(command).await.map_err(|_| closed())?;
        let granted = outcome.await.unwrap_or_else(|_| Err(closed()))?;
        subscription.set_granted(granted);
        Ok(subscription)
    }

    async fn send(&self, command: Command) -> Result<(), mpsc::error::SendError<Command>> {
        self.shared.commands.send(command).await
    }

    /// The connection state, as a `watch` receiver: `borrow()` for now, `changed()` to wait.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.clone()
    }

    /// The client identifier sent in CONNECT.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// The protocol version spoken.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.shared.version
    }

    /// Sends DISCONNECT (when connected) and closes the client: waiting publishes and
    /// subscribes fail with `Closed`, streams end, no reconnect follows. Resolves once done.
    pub async fn disconnect(&self) {
        let (reply, done) = oneshot::channel();
        if self.send(Command::Disconnect { reply }).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// The CONNECT packet the options describe.
fn connect_packet(options: &ConnectOptions, client_id: &str) -> Result<Connect, ConnectError> {
    let invalid = |e| ConnectError::with_source(ConnectErrorKind::InvalidOptions, e);
    let client_id = ClientId::try_from(client_id).map_err(invalid)?;
    let username = options
        .username
        .as_deref()
        .map(MqttString::try_from)
        .transpose()
        .map_err(invalid)?;
    let mut properties = options.properties.clone();
    if properties.maximum_packet_size.is_none() {
        properties.maximum_packet_size = u32::try_from(options.max_incoming_packet_size)
            .ok()
            .and_then(std::num::NonZeroU32::new);
    }
    let keep_alive = u16::try_from(options.keep_alive.as_secs()).unwrap_or(u16::MAX);
    Ok(Connect {
        protocol: options.protocol,
        clean_start: options.clean_start,
        keep_alive,
        properties,
        client_id,
        will: options.will.clone(),
        username,
        password: options.password.clone(),
    })
}

/// `tern-` and 16 hex digits, random per client.
fn generated_client_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    format!("tern-{:016x}", hasher.finish())
}
