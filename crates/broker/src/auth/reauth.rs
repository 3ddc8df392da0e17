//! Re-authentication after CONNACK (§4.12.1), without I/O: the connection task hands each
//! AUTH from the client to [`Reauth::handle`] and writes the answer, or ends the connection
//! with DISCONNECT on an error [MQTT-4.12.1-2]. Other packets keep flowing meanwhile.

use std::sync::Arc;

use bytes::Bytes;
use tern_codec::{Auth, AuthProperties, MqttString, PacketType, ReasonCode};

use super::connect::Authenticated;
use super::{Authenticator, Exchange, Failure, Step};

/// The re-authentication state of one connection that authenticated with a method.
#[derive(Debug)]
pub struct Reauth {
    method: MqttString,
    user: Arc<str>,
    authenticator: Arc<dyn Authenticator>,
    /// The exchange in progress, between AUTH 0x19 and its end.
    exchange: Option<Box<dyn Exchange>>,
}

impl Reauth {
    /// Re-authentication for a client authenticated at CONNECT.
    pub fn new(authenticated: &Authenticated) -> Self {
        Reauth {
            method: authenticated.method.clone(),
            user: authenticated.user.clone(),
            authenticator: authenticated.authenticator.clone(),
            exchange: None,
        }
    }

    /// Whether an exchange is in progress.
    pub fn in_progress(&self) -> bool {
        self.exchange.is_some()
    }

    /// Handles one AUTH from the client: `Ok` is the AUTH to answer with (0x18 to go on,
    /// 0x00 when done); `Err` ends the connection with a DISCONNECT of its reason code.
    pub fn handle(&mut self, auth: Auth) -> Result<Auth, Failure> {
        let protocol = |why| Failure::new(ReasonCode::ProtocolError, why);
        if auth.properties.authentication_method.as_ref() != Some(&self.method) {
            return Err(protocol(
                "[MQTT-4.12.1-1] re-authentication must use the Authentication Method of the CONNECT",
            ));
        }
        match (auth.reason_code, self.exchange.is_some()) {
            (ReasonCode::ReAuthenticate, false) => {
                self.exchange = Some(self.authenticator.start());
            }
            (ReasonCode::ContinueAuthentication, true) => {}
            (ReasonCode::ReAuthenticate, true) => {
                return Err(protocol(
                    "AUTH 0x19 while a re-authentication is in progress (MQTT 5.0 §4.12.1)",
                ))
            }
            (ReasonCode::ContinueAuthentication, false) => {
                return Err(protocol(
                    "AUTH 0x18 without an authentication exchange in progress (MQTT 5.0 §4.12)",
                ))
            }
            _ => {
                return Err(protocol(
                    "a client sends AUTH only with 0x18 Continue authentication or 0x19 Re-authenticate (MQTT 5.0 §3.15.2.1)",
                ))
            }
        }
        let data = auth.properties.authentication_data.as_deref();
        let step = match &mut self.exchange {
            Some(exchange) => exchange.step(data),
            None => return Err(protocol("no authentication exchange in progress")),
        };
        match step {
            Step::Continue(data) => Ok(self.auth(ReasonCode::ContinueAuthentication, Some(data))),
            Step::Success { user, data } => {
                self.exchange = None;
                if user != self.user {
                    return Err(Failure::new(
                        ReasonCode::NotAuthorized,
                        "re-authentication must be as the same user",
                    ));
                }
                Ok(self.auth(ReasonCode::Success, data))
            }
            Step::Failure(failure) => {
                self.exchange = None;
                // 0x86 is a CONNACK code only: a DISCONNECT says 0x87 Not authorized.
                let reason = match failure.reason.is_valid_for(PacketType::Disconnect) {
                    true => failure.reason,
                    false => ReasonCode::NotAuthorized,
                };
                Err(Failure::new(reason, failure.why))
            }
        }
    }

    /// An AUTH with the connection's method [MQTT-4.12.0-5].
    fn auth(&self, reason_code: ReasonCode, data: Option<Bytes>) -> Auth {
        Auth {
            reason_code,
            properties: AuthProperties {
                authentication_method: Some(self.method.clone()),
                authentication_data: data,
                ..Default::default()
            },
        }
    }
}
