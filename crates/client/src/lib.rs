//! tern-client: an async MQTT 3.1.1 and 5.0 client that runs itself.
//!
//! [`Client::connect`] spawns one connection task and returns a [`Client`] handle that is
//! cheap to clone; nothing needs polling. [`Client::publish`] resolves when the message is
//! delivered as its QoS promises; [`Client::subscribe`] returns a [`Subscription`], a
//! `Stream` of the messages for its filter, which unsubscribes when dropped. A lost
//! connection is re-established with exponential backoff and jitter; messages in flight are
//! sent again, publishes made meanwhile wait in a bounded offline buffer, and subscriptions
//! are renewed when the server did not keep the session. [`Client::state`] reports the
//! connection state on a `watch` channel.
//!
//! Nothing acknowledged is dropped: PUBACK and PUBREC go out only once the message is in a
//! stream; a full stream holds QoS 1/2 messages back, unacknowledged, so that the server's
//! in-flight window stops the flow (QoS 0 ones are dropped and counted), and messages a resumed session delivers before the application
//! subscribes again wait for the subscription that matches them. TLS (rustls with aws-lc-rs)
//! is set with [`ConnectOptions::tls`] or an `mqtts://` URL; [`ConnectOptions::store`] keeps
//! QoS 1/2 messages in flight in a redb file so that they survive the process.
//!
//! ```no_run
//! use tern_client::{Client, ConnectOptions, QoS};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect(ConnectOptions::from_url("mqtt://localhost:1883")?).await?;
//! let mut temperatures = client.subscribe("greenhouse/+/temp", QoS::AtLeastOnce).await?;
//! client
//!     .publish("greenhouse/east/temp", "21.5", QoS::AtLeastOnce, false)
//!     .await?;
//! if let Some(message) = temperatures.recv().await {
//!     println!("{}: {:?}", message.topic, message.payload_str());
//! }
//! client.disconnect().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! The handle and its pieces:
//! - [`client`]: [`Client`]: connect, publish, subscribe, state, disconnect.
//! - [`options`]: [`ConnectOptions`] (builder and URL) and [`Backoff`].
//! - [`subscription`]: [`Subscription`], the message stream of one subscribe.
//! - [`message`]: [`Message`] received, [`Publication`] to send with properties.
//! - [`state`]: [`ConnectionState`], what the `watch` channel reports.
//! - [`error`]: [`ConnectError`], [`PublishError`], [`SubscribeError`], each with `kind()`.
//! - [`tls`]: [`TlsOptions`]: CA, client certificate, ALPN, server name (rustls, aws-lc-rs).
//!
//! Inside (not public):
//! - `connection`: the connection task, a thin async shell: socket, timers, channels,
//!   reconnects.
//! - `protocol`: the sans-IO protocol core (`handle_packet`, `handle_timeout`,
//!   `poll_transmit`, `poll_event`), split into `outbound` (offline buffer, QoS 1/2 in
//!   flight under Receive Maximum), `inbound` (QoS 2 deduplication, topic aliases),
//!   `subscriptions` (what is subscribed, routing), `keep_alive` and `packet_ids`.
//! - `delivery`: placing incoming messages into streams in order, acknowledging each once
//!   placed, backpressure, and the buffer of messages no subscription wants yet.
//! - `store`: the optional on-disk in-flight store (redb), see
//!   [`ConnectOptions::store`].
//! - `transport`: the byte stream, TCP or TLS over TCP, and dialing it.
//! - `backoff`: reconnect delays; `url`: `mqtt://` and `mqtts://` URL parsing.

mod backoff;
pub mod client;
mod connection;
mod delivery;
pub mod error;
pub mod message;
pub mod options;
mod protocol;
pub mod state;
mod store;
pub mod subscription;
pub mod tls;
mod transport;
mod url;

pub use client::Client;
pub use error::{
    ConnectError, ConnectErrorKind, Error, PublishError, PublishErrorKind, SubscribeError,
    SubscribeErrorKind,
};
pub use message::{Message, Publication};
pub use options::{Backoff, ConnectOptions};
pub use state::ConnectionState;
pub use subscription::Subscription;
pub use tern_codec::{
    ConnectProperties, PacketId, ProtocolVersion, PublishProperties, QoS, ReasonCode,
    RetainHandling, SubscriptionOptions, TopicFilter, TopicName, UserProperty, Will,
    WillProperties,
};
pub use tls::{TlsOptions, TlsSetupError, TlsVersion};
