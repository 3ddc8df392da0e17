//! The property set of each MQTT 5.0 packet, typed (table 2-4 of the standard says which
//! property goes where). Absent properties are `None`; a property not listed in a packet's set
//! is rejected when decoding ([`crate::DecodeError::PropertyNotAllowed`]).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;

use crate::property::property_set;
use crate::qos::QoS;
use crate::string::MqttString;
use crate::topic::TopicName;

property_set! {
    /// CONNECT properties (§3.1.2.11).
    ConnectProperties {
        /// Seconds the session outlives the connection; 0 or absent: ends with it.
        session_expiry_interval: u32 = SESSION_EXPIRY_INTERVAL,
        /// QoS 1/2 PUBLISHes the client will process at once.
        receive_maximum: NonZeroU16 = RECEIVE_MAXIMUM,
        /// Largest packet the client accepts.
        maximum_packet_size: NonZeroU32 = MAXIMUM_PACKET_SIZE,
        /// Highest topic alias the client accepts from the server.
        topic_alias_maximum: u16 = TOPIC_ALIAS_MAXIMUM,
        /// Whether the client wants Response Information in CONNACK.
        request_response_information: bool = REQUEST_RESPONSE_INFORMATION,
        /// Whether the server may send Reason Strings and User Properties on failures.
        request_problem_information: bool = REQUEST_PROBLEM_INFORMATION,
        /// Name of the extended authentication method.
        authentication_method: MqttString = AUTHENTICATION_METHOD,
        /// Data of the extended authentication method.
        authentication_data: Bytes = AUTHENTICATION_DATA,
    }
}

property_set! {
    /// Will properties, in the CONNECT payload (§3.1.3.2).
    WillProperties {
        /// Seconds to wait after the connection ends before publishing the will.
        will_delay_interval: u32 = WILL_DELAY_INTERVAL,
        /// True: the payload is UTF-8 text.
        payload_format_indicator: bool = PAYLOAD_FORMAT_INDICATOR,
        /// Lifetime of the will message in seconds.
        message_expiry_interval: u32 = MESSAGE_EXPIRY_INTERVAL,
        /// MIME type of the payload.
        content_type: MqttString = CONTENT_TYPE,
        /// Topic for a response.
        response_topic: TopicName = RESPONSE_TOPIC,
        /// Data that ties a response to the request.
        correlation_data: Bytes = CORRELATION_DATA,
    }
}

property_set! {
    /// CONNACK properties (§3.2.2.3).
    ConnAckProperties {
        /// The session expiry the server uses, when it differs from the client's.
        session_expiry_interval: u32 = SESSION_EXPIRY_INTERVAL,
        /// QoS 1/2 PUBLISHes the server will process at once.
        receive_maximum: NonZeroU16 = RECEIVE_MAXIMUM,
        /// Highest QoS the server supports, when below 2.
        maximum_qos: QoS = MAXIMUM_QOS,
        /// Whether the server supports retained messages.
        retain_available: bool = RETAIN_AVAILABLE,
        /// Largest packet the server accepts.
        maximum_packet_size: NonZeroU32 = MAXIMUM_PACKET_SIZE,
        /// The client identifier the server assigned to an empty one.
        assigned_client_identifier: MqttString = ASSIGNED_CLIENT_IDENTIFIER,
        /// Highest topic alias the server accepts from the client.
        topic_alias_maximum: u16 = TOPIC_ALIAS_MAXIMUM,
        /// Human readable diagnostic.
        reason_string: MqttString = REASON_STRING,
        /// Whether wildcard subscriptions are supported.
        wildcard_subscription_available: bool = WILDCARD_SUBSCRIPTION_AVAILABLE,
        /// Whether subscription identifiers are supported.
        subscription_identifiers_available: bool = SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        /// Whether shared subscriptions are supported.
        shared_subscription_available: bool = SHARED_SUBSCRIPTION_AVAILABLE,
        /// Keep alive the server imposes instead of the client's.
        server_keep_alive: u16 = SERVER_KEEP_ALIVE,
        /// Basis for response topics, when the client asked for it.
        response_information: MqttString = RESPONSE_INFORMATION,
        /// Another server the client should use.
        server_reference: MqttString = SERVER_REFERENCE,
        /// Name of the extended authentication method.
        authentication_method: MqttString = AUTHENTICATION_METHOD,
        /// Data of the extended authentication method.
        authentication_data: Bytes = AUTHENTICATION_DATA,
    }
}

property_set! {
    /// PUBLISH properties (§3.3.2.3).
    PublishProperties {
        /// True: the payload is UTF-8 text.
        payload_format_indicator: bool = PAYLOAD_FORMAT_INDICATOR,
        /// Lifetime of the message in seconds.
        message_expiry_interval: u32 = MESSAGE_EXPIRY_INTERVAL,
        /// Number standing for the topic name on this connection.
        topic_alias: NonZeroU16 = TOPIC_ALIAS,
        /// Topic for a response.
        response_topic: TopicName = RESPONSE_TOPIC,
        /// Data that ties a response to the request.
        correlation_data: Bytes = CORRELATION_DATA,
        /// MIME type of the payload.
        content_type: MqttString = CONTENT_TYPE,
    }
    repeated {
        /// Identifiers of every subscription of the receiver that matched (server to client).
        subscription_identifiers: NonZeroU32 = SUBSCRIPTION_IDENTIFIER
    }
}

property_set! {
    /// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
    AckProperties {
        /// Human readable diagnostic.
        reason_string: MqttString = REASON_STRING,
    }
}

property_set! {
    /// SUBSCRIBE properties (§3.8.2.1).
    SubscribeProperties {
        /// Identifier delivered with every message these subscriptions match.
        subscription_identifier: NonZeroU32 = SUBSCRIPTION_IDENTIFIER,
    }
}

property_set! {
    /// UNSUBSCRIBE properties (§3.10.2.1): user properties only.
    UnsubscribeProperties {}
}

property_set! {
    /// DISCONNECT properties (§3.14.2.2).
    DisconnectProperties {
        /// New session expiry, sent by the client.
        session_expiry_interval: u32 = SESSION_EXPIRY_INTERVAL,
        /// Human readable diagnostic.
        reason_string: MqttString = REASON_STRING,
        /// Another server the client should use.
        server_reference: MqttString = SERVER_REFERENCE,
    }
}

property_set! {
    /// AUTH properties (§3.15.2.2).
    AuthProperties {
        /// Name of the extended authentication method.
        authentication_method: MqttString = AUTHENTICATION_METHOD,
        /// Data of the extended authentication method.
        authentication_data: Bytes = AUTHENTICATION_DATA,
        /// Human readable diagnostic.
        reason_string: MqttString = REASON_STRING,
    }
}
