//! The enhanced authentication exchange between CONNECT and CONNACK (§4.12), run by the
//! connection task under the same deadline as the CONNECT itself.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tern_codec::{Auth, AuthProperties, Connect, MqttString, Packet, ProtocolVersion, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use super::{Authenticator, Authenticators, Exchange, Failure, Step};
use crate::handshake::{self, HandshakeError};
use crate::problem::Problems;

/// Most AUTH round trips one exchange may take before the client is refused.
const MAX_ROUNDS: usize = 8;

/// A client that passed enhanced authentication.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The method, as the CONNECT named it: repeated in CONNACK and every AUTH
    /// [MQTT-4.12.0-5].
    pub method: MqttString,
    /// The authenticated user.
    pub user: Arc<str>,
    /// Authentication Data for the CONNACK (SCRAM's server-final message).
    pub data: Option<Bytes>,
    /// The method's authenticator, for re-authentication.
    pub authenticator: Arc<dyn Authenticator>,
}

/// Runs the exchange a CONNECT asks for. `Ok(None)`: the CONNECT named no method, and its
/// User Name and Password passed the password check ([`super::password`]). On a refusal the
/// CONNACK has been sent when the error is returned.
pub async fn authenticate<S>(
    stream: &mut S,
    buf: &mut BytesMut,
    connect: &Connect,
    authenticators: &Authenticators,
    deadline: tokio::time::Instant,
    max_packet_size: usize,
) -> Result<Option<Authenticated>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(method) = &connect.properties.authentication_method else {
        return match authenticators.passwords().check(connect, deadline).await {
            Ok(()) => Ok(None),
            Err(failure) => {
                handshake::refuse(stream, connect, failure).await;
                Err(HandshakeError::AuthFailed {
                    reason: failure.reason,
                    why: failure.why,
                })
            }
        };
    };
    let problems = Problems::of(connect);
    let Some(authenticator) = authenticators.get(method.as_str()) else {
        let why = "[MQTT-4.12.0-1] the Authentication Method is not offered by this server";
        return Err(refuse(
            stream,
            problems,
            Failure::new(ReasonCode::BadAuthenticationMethod, why),
        )
        .await);
    };
    let mut exchange: Box<dyn Exchange> = authenticator.start();
    let mut data = connect.properties.authentication_data.clone();
    for _ in 0..MAX_ROUNDS {
        match exchange.step(data.as_deref()) {
            Step::Success { user, data } => {
                // A User Name in the CONNECT must name the user the method authenticated.
                if connect
                    .username
                    .as_ref()
                    .is_some_and(|name| name.as_str() != &*user)
                {
                    let why = "the CONNECT's User Name differs from the user the Authentication Method authenticated";
                    let failure = Failure::new(ReasonCode::NotAuthorized, why);
                    return Err(refuse(stream, problems, failure).await);
                }
                debug!(%user, method = %method, "authenticated");
                return Ok(Some(Authenticated {
                    method: method.clone(),
                    user,
                    data,
                    authenticator: authenticator.clone(),
                }));
            }
            Step::Failure(failure) => return Err(refuse(stream, problems, failure).await),
            Step::Continue(out) => {
                // [MQTT-4.12.0-2]: AUTH 0x18 with the CONNECT's method [MQTT-4.12.0-5].
                let auth = Auth {
                    reason_code: ReasonCode::ContinueAuthentication,
                    properties: AuthProperties {
                        authentication_method: Some(method.clone()),
                        authentication_data: Some(out),
                        ..Default::default()
                    },
                };
                handshake::send(stream, ProtocolVersion::V5, Packet::Auth(auth)).await;
                let packet = handshake::read_packet(stream, buf, deadline, max_packet_size).await?;
                data = match answer(packet, method) {
                    Ok(data) => data,
                    Err(Some(failure)) => return Err(refuse(stream, problems, failure).await),
                    Err(None) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "the client sent DISCONNECT during authentication",
                        )
                        .into())
                    }
                };
            }
        }
    }
    let why = "too many AUTH round trips for one authentication";
    Err(refuse(
        stream,
        problems,
        Failure::new(ReasonCode::NotAuthorized, why),
    )
    .await)
}

/// Checks the client's answer to AUTH 0x18; `Ok` is its Authentication Data, `Err(None)` a
/// DISCONNECT.
fn answer(packet: Packet, method: &MqttString) -> Result<Option<Bytes>, Option<Failure>> {
    let protocol = |why| Some(Failure::new(ReasonCode::ProtocolError, why));
    match packet {
        Packet::Auth(auth) => {
            if auth.reason_code != ReasonCode::ContinueAuthentication {
                return Err(protocol(
                    "[MQTT-4.12.0-3] the answer to AUTH 0x18 must be AUTH 0x18 Continue authentication",
                ));
            }
            if auth.properties.authentication_method.as_ref() != Some(method) {
                return Err(protocol(
                    "[MQTT-4.12.0-5] AUTH must carry the Authentication Method of the CONNECT",
                ));
            }
            Ok(auth.properties.authentication_data)
        }
        Packet::Disconnect(_) => Err(None),
        _ => Err(protocol(
            "[MQTT-3.1.2-30] a client that named an Authentication Method sends only AUTH or DISCONNECT before CONNACK",
        )),
    }
}

/// Sends the refusing CONNACK [MQTT-4.12.0-4] and says why the handshake ended.
async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    problems: Problems,
    failure: Failure,
) -> HandshakeError {
    let packet = problems.refusal(failure.reason, failure.why);
    handshake::send(stream, ProtocolVersion::V5, packet).await;
    HandshakeError::AuthFailed {
        reason: failure.reason,
        why: failure.why,
    }
}
