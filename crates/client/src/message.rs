//! [`Message`]: an application message received on a subscription, and [`Publication`]:
//! one to send with MQTT 5.0 properties.

use bytes::Bytes;
use tern_codec::{PacketId, Publish, PublishProperties, QoS, TopicName};

/// A message delivered to a [`Subscription`](crate::Subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to (resolved from a Topic Alias when the server used one).
    pub topic: TopicName,
    /// The application payload, shared rather than copied.
    pub payload: Bytes,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// The packet identifier the server sent it with (QoS 1 and 2; `None` for QoS 0). The
    /// server reuses an identifier once its flow is done: it names this delivery, not the
    /// message (mosquitto_sub's `%m`).
    pub packet_id: Option<PacketId>,
    /// Set for a retained message sent because of a new subscription (or, with Retain As
    /// Published, as published).
    pub retain: bool,
    /// MQTT 5.0 properties: content type, response topic, correlation data, user
    /// properties, the subscription identifiers that matched.
    pub properties: PublishProperties,
}

impl Message {
    /// The payload as UTF-8 text, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    pub(crate) fn from_publish(publish: Publish) -> Self {
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            packet_id: publish.packet_id,
            retain: publish.retain,
            properties: publish.properties,
        }
    }
}

/// A message to publish with options beyond topic, payload, QoS and retain; sent by
/// [`Client::publish_with`](crate::Client::publish_with).
///
/// ```
/// use tern_client::{Publication, QoS};
///
/// let request = Publication::new("service/echo", "ping")
///     .qos(QoS::AtLeastOnce)
///     .response_topic("replies/7")
///     .correlation_data("req-1");
/// assert_eq!(request.topic(), "service/echo");
/// ```
#[derive(Debug, Clone)]
pub struct Publication {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) properties: PublishProperties,
    pub(crate) response_topic: Option<String>,
}

impl Publication {
    /// A QoS 0 message, not retained, without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Publication {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: PublishProperties::default(),
            response_topic: None,
        }
    }

    /// The topic it goes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sets the QoS.
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Sets the retain flag.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the MQTT 5.0 properties (ignored for 3.1.1). A Topic Alias set here is removed:
    /// the client does not alias outgoing topics.
    pub fn properties(mut self, properties: PublishProperties) -> Self {
        self.properties = properties;
        self
    }

    /// Sets the Response Topic (5.0), checked as a topic name when published.
    pub fn response_topic(mut self, topic: impl Into<String>) -> Self {
        self.response_topic = Some(topic.into());
        self
    }

    /// Sets the Correlation Data (5.0).
    pub fn correlation_data(mut self, data: impl Into<Bytes>) -> Self {
        self.properties.correlation_data = Some(data.into());
        self
    }
}
