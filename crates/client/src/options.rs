//! [`ConnectOptions`]: where to connect and how the session behaves, by builder or from a URL.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tern_codec::{ConnectProperties, ProtocolVersion, Will};

use crate::error::{ConnectError, ConnectErrorKind};
use crate::tls::TlsOptions;

/// How to reach the server and what to ask of it.
///
/// ```
/// use std::time::Duration;
/// use tern_client::{ConnectOptions, ProtocolVersion};
///
/// let options = ConnectOptions::new("broker.example", 1883)
///     .client_id("greenhouse-7")
///     .protocol(ProtocolVersion::V3_1_1)
///     .keep_alive(Duration::from_secs(30))
///     .credentials("alice", "secret");
/// assert_eq!(options.port(), 1883);
///
/// let options = ConnectOptions::from_url("mqtt://alice:secret@broker.example:1884")?;
/// assert_eq!((options.host(), options.port()), ("broker.example", 1884));
/// assert!(!format!("{options:?}").contains("secret"), "Debug hides the password");
/// # Ok::<(), tern_client::ConnectError>(())
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) client_id: Option<String>,
    pub(crate) clean_start: bool,
    pub(crate) keep_alive: Duration,
    pub(crate) ping_timeout: Option<Duration>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    pub(crate) will: Option<Will>,
    pub(crate) protocol: ProtocolVersion,
    pub(crate) properties: ConnectProperties,
    pub(crate) connect_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) reconnect: Option<Backoff>,
    pub(crate) offline_buffer: usize,
    pub(crate) subscription_capacity: usize,
    pub(crate) unrouted_buffer: usize,
    pub(crate) max_incoming_packet_size: usize,
    pub(crate) topic_aliases: bool,
    pub(crate) tls: Option<TlsOptions>,
    pub(crate) store: Option<PathBuf>,
}

/// Delays between reconnect attempts: doubled after each failure from `initial` up to
/// `max`, each one drawn at random from its upper half (jitter), reset after a connection
/// succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first reconnect attempt.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Everything but the password, which must not reach a log.
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("ping_timeout", &self.ping_timeout)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("will", &self.will)
            .field("protocol", &self.protocol)
            .field("properties", &self.properties)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("reconnect", &self.reconnect)
            .field("offline_buffer", &self.offline_buffer)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("unrouted_buffer", &self.unrouted_buffer)
            .field("max_incoming_packet_size", &self.max_incoming_packet_size)
            .field("topic_aliases", &self.topic_aliases)
            .field("tls", &self.tls)
            .field("store", &self.store)
            .finish()
    }
}

impl ConnectOptions {
    /// Options for `host:port` with the defaults: a generated client id, clean start, MQTT
    /// 5.0, 60 s keep alive, reconnect with [`Backoff::default`], an offline buffer of
    /// 1,000 publishes.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            client_id: None,
            clean_start: true,
            keep_alive: Duration::from_secs(60),
            ping_timeout: None,
            username: None,
            password: None,
            will: None,
            protocol: ProtocolVersion::V5,
            properties: ConnectProperties::default(),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            reconnect: Some(Backoff::default()),
            offline_buffer: 1000,
            subscription_capacity: 1024,
            unrouted_buffer: 1024,
            max_incoming_packet_size: 1 << 20,
            topic_aliases: true,
            tls: None,
            store: None,
        }
    }

    /// Options from a URL: `mqtt://[user[:password]@]host[:port]` (`tcp://` is the same;
    /// the port defaults to 1883), or `mqtts://` (`ssl://`, `tls://`) for TLS with
    /// [`TlsOptions::new`]'s defaults (the port defaults to 8883; change the TLS settings
    /// with [`ConnectOptions::tls`]). User and password may be percent-encoded.
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let parsed = crate::url::parse(url)
            .map_err(|e| ConnectError::with_source(ConnectErrorKind::InvalidOptions, e))?;
        let mut options = ConnectOptions::new(parsed.host, parsed.port);
        options.username = parsed.username;
        options.password = parsed.password.map(Bytes::from);
        if parsed.tls {
            options.tls = Some(TlsOptions::new());
        }
        Ok(options)
    }

    /// Connects with TLS, with these settings (see [`TlsOptions`]). The port is not
    /// changed: give 8883 (or the server's TLS port) with [`ConnectOptions::new`] or
    /// [`ConnectOptions::with_port`].
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Keeps QoS 1 and 2 messages in flight in a redb file at `path`, so that they survive
    /// the process: outgoing ones from `publish` until done (PUBLISH sent, PUBREL sent), and
    /// the packet identifiers of incoming QoS 2 messages until PUBREL. A client opened later
    /// on the same file (with the same client id, or none: the store remembers it) sends
    /// them again, with DUP, and does not deliver a QoS 2 message twice.
    ///
    /// Pair it with a session the server keeps ([`clean_start`](Self::clean_start)`(false)`
    /// and a [`session_expiry`](Self::session_expiry)) for exactly-once across restarts.
    /// Each change is committed to disk (fsync) before the packet that depends on it is
    /// written, which costs throughput. One file serves one client at a time.
    pub fn store(mut self, path: impl Into<PathBuf>) -> Self {
        self.store = Some(path.into());
        self
    }

    /// Connects without TLS (undoes [`ConnectOptions::tls`] or an `mqtts://` URL).
    pub fn no_tls(mut self) -> Self {
        self.tls = None;
        self
    }

    /// The TLS settings, when TLS is on.
    pub fn tls_options(&self) -> Option<&TlsOptions> {
        self.tls.as_ref()
    }

    /// The host to connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets the host.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The client identifier. Without one the client makes up `tern-` and 16 hex digits,
    /// the same for every reconnect of this client.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Clean Start (5.0) / Clean Session (3.1.1) for the first connection. Default true.
    ///
    /// MQTT 5.0 reconnects always ask to resume (Clean Start 0), so a session with a
    /// [`session_expiry`](Self::session_expiry) survives a dropped connection; MQTT 3.1.1
    /// reconnects repeat this flag, since a 3.1.1 session without Clean Session never ends.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.clean_start = clean;
        self
    }

    /// How long the server keeps the session after the connection ends (5.0; rounded down
    /// to seconds). Default 0: the session ends with the connection.
    pub fn session_expiry(mut self, expiry: Duration) -> Self {
        let secs = u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX);
        self.properties.session_expiry_interval = (secs > 0).then_some(secs);
        self
    }

    /// Keep alive: a PINGREQ is sent after this long without sending anything, and the
    /// connection is declared dead when no answer follows within the ping timeout. Rounded
    /// down to seconds, at most 65,535; zero turns keep alive off. Default 60 s.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive.min(Duration::from_secs(u64::from(u16::MAX)));
        self
    }

    /// How long to wait for any packet after a PINGREQ before the connection is declared
    /// dead. Default: the keep alive interval.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = Some(timeout);
        self
    }

    /// User name and password.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<Bytes>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// User name without a password.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The will message, published by the server if the connection ends without DISCONNECT.
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(will);
        self
    }

    /// Protocol version: [`ProtocolVersion::V5`] (default), [`ProtocolVersion::V3_1_1`]
    /// or [`ProtocolVersion::V3_1`].
    pub fn protocol(mut self, version: ProtocolVersion) -> Self {
        self.protocol = version;
        self
    }

    /// MQTT 5.0 CONNECT properties (Receive Maximum, Maximum Packet Size, Topic Alias
    /// Maximum, user properties, ...). The session expiry set here and by
    /// [`session_expiry`](Self::session_expiry) is the same field.
    pub fn properties(mut self, properties: ConnectProperties) -> Self {
        self.properties = properties;
        self
    }

    /// Time allowed for the TCP connect, and again for CONNACK. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one batch of writes before the connection is given up. Default 30 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Reconnect delays; `None` turns reconnecting off (the client closes when its
    /// connection is lost). Default [`Backoff::default`].
    pub fn reconnect(mut self, backoff: Option<Backoff>) -> Self {
        self.reconnect = backoff;
        self
    }

    /// Most publishes held while disconnected or waiting for a slot in the server's
    /// Receive Maximum; one more fails at once with
    /// [`PublishErrorKind::BufferFull`](crate::PublishErrorKind::BufferFull). Default 1,000.
    pub fn offline_buffer(mut self, publishes: usize) -> Self {
        self.offline_buffer = publishes;
        self
    }

    /// Messages each [`Subscription`](crate::Subscription) holds for its reader. When it is
    /// full, QoS 0 messages for it are dropped (and counted in
    /// [`Subscription::dropped`](crate::Subscription::dropped)); a QoS 1 or 2 message waits,
    /// unacknowledged, with the QoS 1/2 messages after it, until the reader makes room: the
    /// server's in-flight window holds back the rest, while acknowledgements of the client's
    /// own publishes still arrive. Default 1,024.
    pub fn subscription_capacity(mut self, messages: usize) -> Self {
        self.subscription_capacity = messages.max(1);
        self
    }

    /// QoS 1 and 2 messages kept, acknowledged, while no subscription wants them: a resumed
    /// session (Session Present) delivers what the server queued as soon as it reconnects,
    /// before the application has subscribed again. The next
    /// [`subscribe`](crate::Client::subscribe) whose filter matches takes them. When the
    /// buffer is full, further QoS 1/2 messages wait unacknowledged until a subscription
    /// takes some (the server's in-flight window fills and it stops sending), so subscribe
    /// to what your persistent session holds. Default 1,024.
    pub fn unrouted_buffer(mut self, messages: usize) -> Self {
        self.unrouted_buffer = messages;
        self
    }

    /// Whether outgoing messages use Topic Aliases when the server accepts them (5.0): the
    /// first topics of a connection, up to the server's Topic Alias Maximum, are sent in
    /// full once and then as a number. Default true. (Aliases *from* the server are
    /// accepted up to the Topic Alias Maximum set in [`properties`](Self::properties).)
    pub fn topic_aliases(mut self, use_aliases: bool) -> Self {
        self.topic_aliases = use_aliases;
        self
    }

    /// Largest packet accepted from the server; a larger one ends the connection. Sent to
    /// MQTT 5.0 servers as Maximum Packet Size unless the properties set one. Default 1 MiB.
    pub fn max_incoming_packet_size(mut self, bytes: usize) -> Self {
        self.max_incoming_packet_size = bytes.max(2);
        self
    }
}
