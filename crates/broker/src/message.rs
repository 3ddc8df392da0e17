//! [`Message`]: one published application message, shared by every delivery of it, and
//! [`Delivery`]: one subscriber's handle to it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tern_codec::{PublishProperties, QoS, TopicFilter, TopicName};

/// A message as the router holds it. Topic and payload own their memory (copied once out of
/// the read buffer), so a message kept long pins nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its identifier, unique in this process and in the store (see [`reserve_ids_through`]).
    pub id: u64,
    /// The topic it was published to.
    pub topic: TopicName,
    /// The payload, shared by all deliveries.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// Retain flag as published.
    pub retain: bool,
    /// MQTT 5.0 properties forwarded to subscribers (no Topic Alias, no Subscription
    /// Identifiers: those belong to one connection).
    pub properties: PublishProperties,
    /// Client identifier of the publisher, for No Local; `None` for the broker's own
    /// messages (`$SYS`, wills are published under their client's identifier).
    pub origin: Option<Arc<str>>,
    /// When the broker received it.
    pub received_at: Instant,
}

impl Message {
    /// Builds a message whose topic and payload are copied into one fresh allocation.
    pub fn detached(
        topic: &TopicName,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        properties: PublishProperties,
        origin: Option<Arc<str>>,
        received_at: Instant,
    ) -> Message {
        let mut buf = BytesMut::with_capacity(topic.len() + payload.len());
        buf.extend_from_slice(topic.as_bytes());
        buf.extend_from_slice(payload);
        let mut all = buf.freeze();
        let payload = all.split_off(topic.len());
        let topic = tern_codec::MqttString::from_bytes(all)
            .ok()
            .and_then(|s| TopicName::new(s).ok())
            .unwrap_or_else(|| topic.detached());
        Message {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            topic,
            payload,
            qos,
            retain,
            properties,
            origin,
            received_at,
        }
    }
}

/// The next message identifier.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Makes sure no message created from now on has an identifier up to `max` (the highest one
/// the store holds).
pub fn reserve_ids_through(max: u64) {
    NEXT_ID.fetch_max(max.saturating_add(1), Ordering::Relaxed);
}

/// One subscriber's copy of a message: a shared pointer and the few things that differ per
/// subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// QoS to deliver with: the lower of published and granted.
    pub qos: QoS,
    /// Retain flag to deliver with.
    pub retain: bool,
    /// MQTT 5.0 Subscription Identifiers of every matching subscription.
    pub subscription_ids: Vec<NonZeroU32>,
    /// The `$share/...` filter, when this delivery went to one member of a shared group.
    pub shared: Option<TopicFilter>,
    /// Its position in its session's stored queue, when the store holds it.
    pub stored: Option<u64>,
}

#[cfg(test)]
impl Delivery {
    /// For tests: a QoS 1 delivery of a fresh QoS 1 message with `payload` to `topic`.
    pub(crate) fn at_least_once(topic: &str, payload: &[u8], stored: Option<u64>) -> Delivery {
        let topic = TopicName::try_from(topic).expect("a valid topic name");
        let message = Message::detached(
            &topic,
            payload,
            QoS::AtLeastOnce,
            false,
            Default::default(),
            None,
            crate::clock::now(),
        );
        Delivery {
            message: Arc::new(message),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Vec::new(),
            shared: None,
            stored,
        }
    }
}

impl Delivery {
    /// Bytes this delivery counts against a queue's byte limit.
    pub fn size(&self) -> usize {
        self.message.payload.len() + self.message.topic.len()
    }
}
