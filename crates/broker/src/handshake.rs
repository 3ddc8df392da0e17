//! The CONNECT handshake: read the first packet under the connect timeout, check it, and
//! decide the CONNACK (MQTT 5.0 §3.1.4, 3.1.1 §3.1.4).

use std::sync::Arc;

use bytes::BytesMut;
use tern_codec::{
    ConnAck, ConnAckProperties, Connect, DecodeError, MqttString, Packet, ProtocolVersion, QoS,
    ReasonCode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::auth::connect::Authenticated;
use crate::auth::Failure;
use crate::config::{Config, Limits};
use crate::problem::Problems;
use crate::session::SessionLimits;

/// Why a connection ended before its CONNECT was accepted.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// No complete CONNECT within the connect timeout.
    #[error("no CONNECT within the connect timeout")]
    Timeout,
    /// The socket closed or failed.
    #[error("connection closed before CONNECT: {0}")]
    Io(#[from] std::io::Error),
    /// The first packet was not a CONNECT [MQTT-3.1.0-1].
    #[error("[MQTT-3.1.0-1] first packet was {0:?}, not CONNECT")]
    NotConnect(tern_codec::PacketType),
    /// The CONNECT was malformed.
    #[error("malformed CONNECT: {0}")]
    Decode(#[from] DecodeError),
    /// The CONNECT was refused with this CONNACK.
    #[error("CONNECT refused: {0:?}")]
    Refused(ReasonCode),
    /// Enhanced authentication refused the client with this CONNACK.
    #[error("authentication failed ({reason:?}): {why}")]
    AuthFailed {
        /// The CONNACK reason code.
        reason: ReasonCode,
        /// What went wrong.
        why: &'static str,
    },
}

/// Reads the first packet, which must be a CONNECT, before `deadline` (the connect
/// timeout). Unsupported protocol levels are answered with the CONNACK the standard asks for
/// before the error is returned.
pub async fn read_connect<S>(
    stream: &mut S,
    buf: &mut BytesMut,
    limits: &Limits,
    deadline: tokio::time::Instant,
) -> Result<Box<Connect>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match read_packet(stream, buf, deadline, limits.max_packet_size as usize).await {
        Ok(Packet::Connect(connect)) => Ok(connect),
        Ok(other) => Err(HandshakeError::NotConnect(other.packet_type())),
        Err(HandshakeError::Decode(DecodeError::UnsupportedProtocolVersion(level))) => {
            refuse_version(stream, level).await;
            Err(DecodeError::UnsupportedProtocolVersion(level).into())
        }
        Err(e) => Err(e),
    }
}

/// Reads one MQTT 5.0 packet before `deadline`: the CONNECT, or an AUTH of the exchange
/// that follows it.
pub async fn read_packet<S>(
    stream: &mut S,
    buf: &mut BytesMut,
    deadline: tokio::time::Instant,
    max_packet_size: usize,
) -> Result<Packet, HandshakeError>
where
    S: AsyncRead + Unpin,
{
    let read = async {
        loop {
            if let Some(packet) = tern_codec::decode(buf, ProtocolVersion::V5, max_packet_size)? {
                return Ok(packet);
            }
            buf.reserve(1024);
            if stream.read_buf(buf).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or(Err(HandshakeError::Timeout))
}

/// [MQTT-3.1.2-2]: an unsupported protocol level gets CONNACK 0x01 (3.x) or 0x84 (5.0),
/// then the connection closes.
async fn refuse_version<S: AsyncWrite + Unpin>(stream: &mut S, level: u8) {
    let version = if level >= 5 {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    };
    let connack = ConnAck {
        reason_code: ReasonCode::UnsupportedProtocolVersion,
        ..Default::default()
    };
    send(stream, version, Packet::ConnAck(connack)).await;
}

/// Writes one packet, ignoring failure (used on the way out).
pub async fn send<S: AsyncWrite + Unpin>(stream: &mut S, version: ProtocolVersion, packet: Packet) {
    let mut out = BytesMut::with_capacity(packet.encoded_len(version));
    if packet.encode(version, &mut out).is_ok() {
        let _ = stream.write_all(&out).await;
        let _ = stream.flush().await;
    }
}

/// The decisions taken on an acceptable CONNECT.
#[derive(Debug)]
pub struct Accepted {
    /// The client identifier, assigned if the client sent none.
    pub client_id: Arc<str>,
    /// Whether the identifier was assigned by the broker.
    pub assigned: bool,
    /// Keep alive in force, after the broker's cap.
    pub keep_alive: u16,
    /// Session expiry interval in force.
    pub expiry_interval: u32,
}

/// The identifier given to a client that sent an empty one [MQTT-3.1.3-6], from a number
/// the broker never gives twice. The caller makes sure no session already has it (a client
/// may have chosen it) [MQTT-3.2.2-16].
pub fn assigned_id(n: u64) -> Arc<str> {
    format!("tern-{n:x}-{:x}", std::process::id()).into()
}

/// Checks a CONNECT against the standard and the limits. `Err` is the refusing CONNACK's
/// reason code and why. (The Authentication Method is checked afterwards, by
/// [`crate::auth::connect::authenticate`].)
pub fn accept(connect: &Connect, config: &Config, connection: u64) -> Result<Accepted, Failure> {
    let limits = &config.limits;
    let v5 = connect.protocol.is_v5();
    let refuse = |reason, why| Err(Failure::new(reason, why));
    if let Some(will) = &connect.will {
        // [MQTT-3.2.2-12], [MQTT-3.2.2-13]: a will the server cannot honour is refused.
        if will.qos > config.mqtt.maximum_qos() {
            return refuse(
                ReasonCode::QoSNotSupported,
                "[MQTT-3.2.2-12] the Will QoS is above the server's Maximum QoS",
            );
        }
        if will.retain && !config.mqtt.retain_available {
            return refuse(
                ReasonCode::RetainNotSupported,
                "[MQTT-3.2.2-13] Will Retain is set but the server does not support retained messages",
            );
        }
        if will.topic.len() > limits.max_topic_length
            || will.topic.levels() > limits.max_topic_levels
        {
            return refuse(
                ReasonCode::TopicNameInvalid,
                "the Will Topic is longer or deeper than the server allows (limits.max_topic_length, limits.max_topic_levels)",
            );
        }
    }
    let mut assigned = false;
    let client_id: Arc<str> = if connect.client_id.is_empty() {
        // [MQTT-3.1.3-8] (3.1.1): an empty identifier needs Clean Session; 3.1 never allows
        // one. 5.0 always assigns one [MQTT-3.1.3-6].
        if !v5 && (!connect.clean_start || connect.protocol == ProtocolVersion::V3_1) {
            return refuse(
                ReasonCode::ClientIdentifierNotValid,
                "[MQTT-3.1.3-8] an empty Client Identifier needs Clean Session",
            );
        }
        assigned = true;
        assigned_id(connection)
    } else {
        connect.client_id.as_str().into()
    };
    if client_id.len() > limits.max_client_id_length {
        return refuse(
            ReasonCode::ClientIdentifierNotValid,
            "the Client Identifier is longer than the server allows (limits.max_client_id_length)",
        );
    }
    let mut keep_alive = connect.keep_alive;
    if limits.max_keep_alive > 0 && (keep_alive == 0 || keep_alive > limits.max_keep_alive) {
        keep_alive = limits.max_keep_alive;
    }
    let requested = if v5 {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX
    };
    let expiry_interval = requested.min(limits.max_session_expiry);
    Ok(Accepted {
        client_id,
        assigned,
        keep_alive,
        expiry_interval,
    })
}

/// What the session enforces and offers, from the configuration and the CONNECT.
pub fn session_limits(connect: &Connect, config: &Config) -> SessionLimits {
    let limits = &config.limits;
    let features = &config.mqtt;
    let v5 = connect.protocol.is_v5();
    let client_receive_maximum = connect
        .properties
        .receive_maximum
        .map_or(usize::from(u16::MAX), |r| usize::from(r.get()));
    SessionLimits {
        max_topic_length: limits.max_topic_length,
        max_topic_levels: limits.max_topic_levels,
        send_window: usize::from(limits.max_inflight).min(client_receive_maximum),
        receive_maximum: if v5 { limits.receive_maximum } else { u16::MAX },
        topic_alias_maximum: if v5 { features.topic_alias_maximum } else { 0 },
        client_topic_alias_maximum: connect.properties.topic_alias_maximum.unwrap_or(0),
        client_maximum_packet_size: connect.properties.maximum_packet_size.map(|m| m.get()),
        maximum_qos: features.maximum_qos(),
        retain_available: features.retain_available,
        wildcard_subscriptions: features.wildcard_subscriptions,
        subscription_identifiers: features.subscription_identifiers,
        shared_subscriptions: features.shared_subscriptions,
        check_payload_format: features.check_payload_format,
        problems: Problems::of(connect),
    }
}

/// The CONNACK properties an MQTT 5.0 client is told: every limit, and every feature that
/// differs from the standard's default (an absent property means "supported", §3.2.2.3).
///
/// After enhanced authentication it repeats the method [MQTT-4.12.0-5] and carries the
/// method's last data; without it, neither [MQTT-4.12.0-6].
pub fn connack_properties(
    connect: &Connect,
    accepted: &Accepted,
    authenticated: Option<&Authenticated>,
    config: &Config,
) -> ConnAckProperties {
    let limits = &config.limits;
    let features = &config.mqtt;
    let maximum_qos = features.maximum_qos();
    let mut properties = ConnAckProperties {
        receive_maximum: std::num::NonZeroU16::new(limits.receive_maximum),
        maximum_packet_size: std::num::NonZeroU32::new(limits.max_packet_size),
        topic_alias_maximum: (features.topic_alias_maximum > 0)
            .then_some(features.topic_alias_maximum),
        maximum_qos: (maximum_qos < QoS::ExactlyOnce).then_some(maximum_qos),
        retain_available: (!features.retain_available).then_some(false),
        wildcard_subscription_available: (!features.wildcard_subscriptions).then_some(false),
        subscription_identifiers_available: (!features.subscription_identifiers).then_some(false),
        shared_subscription_available: (!features.shared_subscriptions).then_some(false),
        ..Default::default()
    };
    if connect.properties.request_response_information == Some(true)
        && !features.response_information.is_empty()
    {
        let info = features
            .response_information
            .replace("{client_id}", &accepted.client_id);
        properties.response_information = MqttString::try_from(info).ok();
    }
    if accepted.assigned {
        properties.assigned_client_identifier = MqttString::try_from(&*accepted.client_id).ok();
    }
    if accepted.keep_alive != connect.keep_alive {
        properties.server_keep_alive = Some(accepted.keep_alive);
    }
    if connect.properties.session_expiry_interval.unwrap_or(0) != accepted.expiry_interval {
        properties.session_expiry_interval = Some(accepted.expiry_interval);
    }
    if let Some(authenticated) = authenticated {
        properties.authentication_method = Some(authenticated.method.clone());
        properties.authentication_data = authenticated.data.clone();
    }
    properties
}

/// Refuses `connect` [MQTT-3.2.2-6: session present 0 on refusal], with a Reason String
/// saying why when the client allows it [MQTT-3.1.2-29].
pub async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, connect: &Connect, failure: Failure) {
    let connack = Problems::of(connect).refusal(failure.reason, failure.why);
    send(stream, connect.protocol, connack).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(version: ProtocolVersion) -> Connect {
        Connect {
            protocol: version,
            clean_start: true,
            ..Default::default()
        }
    }

    #[test]
    fn empty_client_id_needs_clean_session_in_3_1_1_3_1_3_8() {
        let config = Config::default();
        let mut c = connect(ProtocolVersion::V3_1_1);
        assert!(accept(&c, &config, 1).unwrap().assigned);
        c.clean_start = false;
        assert_eq!(
            accept(&c, &config, 1).unwrap_err().reason,
            ReasonCode::ClientIdentifierNotValid
        );
        let mut v5 = connect(ProtocolVersion::V5);
        v5.clean_start = false;
        assert!(accept(&v5, &config, 1).unwrap().assigned, "[MQTT-3.1.3-6]");
    }

    #[test]
    fn a_will_the_server_cannot_honour_is_refused_3_2_2_12() {
        let mut config = Config::default();
        config.mqtt.maximum_qos = 1;
        config.mqtt.retain_available = false;
        let mut c = connect(ProtocolVersion::V5);
        c.will = Some(tern_codec::Will {
            topic: "w".try_into().unwrap(),
            qos: QoS::ExactlyOnce,
            ..Default::default()
        });
        assert_eq!(
            accept(&c, &config, 1).unwrap_err().reason,
            ReasonCode::QoSNotSupported
        );
        c.will = Some(tern_codec::Will {
            topic: "w".try_into().unwrap(),
            retain: true,
            ..Default::default()
        });
        assert_eq!(
            accept(&c, &config, 1).unwrap_err().reason,
            ReasonCode::RetainNotSupported
        );
    }

    #[test]
    fn keep_alive_is_capped_and_announced_3_2_2_21() {
        let mut config = Config::default();
        config.limits.max_keep_alive = 30;
        let mut c = connect(ProtocolVersion::V5);
        c.keep_alive = 600;
        let accepted = accept(&c, &config, 1).unwrap();
        assert_eq!(accepted.keep_alive, 30);
        let properties = connack_properties(&c, &accepted, None, &config);
        assert_eq!(properties.server_keep_alive, Some(30));
        assert_eq!(properties.topic_alias_maximum, Some(32));
        assert!(properties.assigned_client_identifier.is_some());
        assert_eq!(properties.retain_available, None, "absent means available");
    }

    #[test]
    fn response_information_only_when_asked_and_configured() {
        let mut config = Config::default();
        config.mqtt.response_information = "reply/{client_id}".into();
        let mut c = connect(ProtocolVersion::V5);
        c.client_id = tern_codec::ClientId::try_from("dev1").unwrap();
        let accepted = accept(&c, &config, 1).unwrap();
        assert_eq!(
            connack_properties(&c, &accepted, None, &config).response_information,
            None
        );
        c.properties.request_response_information = Some(true);
        let info = connack_properties(&c, &accepted, None, &config).response_information;
        assert_eq!(info.unwrap().as_str(), "reply/dev1");
    }
}
