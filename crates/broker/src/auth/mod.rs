//! MQTT 5.0 enhanced authentication (§4.12): pluggable methods chosen by the client's
//! Authentication Method.
//!
//! The rules this module and its users keep:
//!
//! - A CONNECT naming a method the broker does not offer gets CONNACK 0x8C Bad
//!   authentication method and the connection closes [MQTT-4.12.0-1].
//! - While a method needs more data the broker sends AUTH 0x18 Continue authentication
//!   [MQTT-4.12.0-2]; the client must answer with AUTH 0x18 [MQTT-4.12.0-3]. The broker may
//!   refuse at any point with a CONNACK of 0x80 or above [MQTT-4.12.0-4].
//! - Every AUTH and the successful CONNACK carry the CONNECT's method [MQTT-4.12.0-5]; an
//!   AUTH with another method is a Protocol Error.
//! - A client that named no method never gets AUTH nor an Authentication Method in CONNACK
//!   [MQTT-4.12.0-6] and must not send AUTH [MQTT-4.12.0-7].
//! - After CONNACK the client may re-authenticate with AUTH 0x19 and the same method
//!   [MQTT-4.12.1-1]; if that fails the broker sends DISCONNECT and closes [MQTT-4.12.1-2].
//!
//! An [`Authenticator`] is one method; each exchange with a client is a sans-IO
//! [`Exchange`] fed the client's Authentication Data. [`Authenticators`] holds the methods
//! by name. The exchange during CONNECT is run by [`connect`], re-authentication by
//! [`reauth`]. The built-in method is SCRAM-SHA-256 ([`scram`]), with its users in the file
//! read by [`credentials`].
//!
//! A CONNECT that names no method is let in, or not, by [`password`]: its User Name and
//! Password checked against `auth.password_file` (the same file format), and
//! `auth.allow_anonymous`.

pub mod connect;
pub mod credentials;
pub mod password;
pub mod reauth;
pub mod scram;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use tern_codec::ReasonCode;

use crate::config::AuthConfig;

pub use credentials::{CredentialsError, ScramCredentials};
pub use password::Passwords;

/// One authentication method, such as SCRAM-SHA-256.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// The method's name as clients write it in Authentication Method.
    fn method(&self) -> &str;
    /// A new exchange with one client (for a CONNECT or a re-authentication).
    fn start(&self) -> Box<dyn Exchange>;
}

/// One authentication exchange with one client, without I/O.
pub trait Exchange: Send + fmt::Debug {
    /// Takes the client's Authentication Data (from CONNECT or AUTH; `None` when the packet
    /// had none) and says what to answer.
    fn step(&mut self, data: Option<&[u8]>) -> Step;
}

/// What an [`Exchange`] answers to the client's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More is needed: send AUTH 0x18 Continue authentication with this data.
    Continue(Bytes),
    /// The client is authenticated as `user`; the last data, if any, goes in the CONNACK
    /// (or the AUTH 0x00 of a re-authentication).
    Success {
        /// The authenticated user name.
        user: Arc<str>,
        /// Authentication Data for the client.
        data: Option<Bytes>,
    },
    /// The client is refused.
    Failure(Failure),
}

/// Why an exchange refused the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// 0x86 Bad User Name or Password, 0x87 Not authorized, ...
    pub reason: ReasonCode,
    /// What went wrong, for the log and (when the client allows it) the Reason String.
    pub why: &'static str,
}

impl Failure {
    /// A refusal with `reason` because of `why`.
    pub const fn new(reason: ReasonCode, why: &'static str) -> Self {
        Failure { reason, why }
    }
}

/// How clients authenticate: the enhanced authentication methods the broker offers, by
/// name, and the password check of CONNECTs that name none.
#[derive(Clone, Default)]
pub struct Authenticators {
    methods: HashMap<String, Arc<dyn Authenticator>>,
    passwords: Passwords,
}

impl fmt::Debug for Authenticators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticators")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .field("password_file", &self.passwords.has_file())
            .field("allow_anonymous", &self.passwords.allows_anonymous())
            .finish()
    }
}

impl Authenticators {
    /// What the configuration asks for: SCRAM-SHA-256 when `auth.scram_file` is set, CONNECT
    /// passwords checked when `auth.password_file` is set, and `auth.allow_anonymous`.
    pub fn from_config(config: &AuthConfig) -> Result<Self, CredentialsError> {
        let mut methods = Authenticators::default();
        if let Some(path) = &config.scram_file {
            let users = credentials::read_file(path, "auth.scram_file")?;
            methods.register(Arc::new(scram::ScramSha256::new(users)?));
        }
        let users = match &config.password_file {
            Some(path) => {
                let users = credentials::read_file(path, "auth.password_file")?;
                tracing::info!(
                    file = %path.display(),
                    users = users.len(),
                    "CONNECT passwords checked against the password file"
                );
                Some(users)
            }
            None => None,
        };
        let allow_anonymous = config.allow_anonymous();
        if !allow_anonymous {
            tracing::info!("anonymous clients refused (auth.allow_anonymous = false)");
        }
        methods.passwords = Passwords::new(users, allow_anonymous)?;
        Ok(methods)
    }

    /// The password check of CONNECTs that name no method.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// Offers `authenticator` under its method name, replacing one of the same name.
    pub fn register(&mut self, authenticator: Arc<dyn Authenticator>) {
        self.methods
            .insert(authenticator.method().to_owned(), authenticator);
    }

    /// The authenticator of `method`, if the broker offers it.
    pub fn get(&self, method: &str) -> Option<&Arc<dyn Authenticator>> {
        self.methods.get(method)
    }

    /// Whether no method is offered.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }
}
