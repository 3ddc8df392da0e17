//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as an MQTT 5.0 authentication method, server side.
//!
//! The exchange, each message in Authentication Data:
//!
//! 1. CONNECT (or AUTH 0x19): client-first `n,,n=<user>,r=<client nonce>`.
//! 2. AUTH 0x18: server-first `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`.
//! 3. AUTH 0x18: client-final `c=biws,r=<both nonces>,p=<proof>`.
//! 4. CONNACK 0x00 (or AUTH 0x00): server-final `v=<server signature>`; or CONNACK 0x86 when
//!    the proof is wrong.
//!
//! The server keeps only StoredKey and ServerKey (see [`super::credentials`]), so it never
//! runs PBKDF2: each step is a few HMACs. The proof is compared in constant time. An unknown
//! user gets a made-up but stable salt, so the server-first message does not tell whether a
//! user exists (RFC 5802 §5.1). Channel binding is not offered (`n` or `y` GS2 flag), user
//! names are compared byte for byte (no SASLprep), and an authorization identity other than
//! the user is refused.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tern_codec::ReasonCode;

use super::credentials::{hmac, CredentialsError, ScramCredentials, MIN_ITERATIONS};
use super::{Authenticator, Exchange, Failure, Step};

/// The method name clients write in Authentication Method.
pub const METHOD: &str = "SCRAM-SHA-256";

/// Random bytes in the server's part of the nonce.
const NONCE_BYTES: usize = 18;

/// The SCRAM-SHA-256 method with its users.
#[derive(Debug, Clone)]
pub struct ScramSha256 {
    users: Arc<HashMap<String, ScramCredentials>>,
    /// Per broker run: makes the fake salts of unknown users and the nonces unguessable.
    secret: [u8; 32],
}

impl ScramSha256 {
    /// The method for these users (name to credentials).
    pub fn new(users: HashMap<String, ScramCredentials>) -> Result<Self, CredentialsError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(CredentialsError::Random)?;
        Ok(ScramSha256 {
            users: Arc::new(users),
            secret,
        })
    }
}

impl Authenticator for ScramSha256 {
    fn method(&self) -> &str {
        METHOD
    }

    fn start(&self) -> Box<dyn Exchange> {
        Box::new(ScramExchange {
            method: self.clone(),
            state: State::ClientFirst,
            nonce: None,
        })
    }
}

/// Where an exchange is.
#[derive(Debug)]
enum State {
    /// Waiting for client-first.
    ClientFirst,
    /// Server-first sent; waiting for client-final.
    ClientFinal {
        user: Arc<str>,
        /// Whether the user exists (if not, the proof fails whatever it is).
        known: bool,
        credentials: ScramCredentials,
        /// `c=` the client must send: base64 of its GS2 header.
        channel_binding: String,
        /// Client and server nonce.
        nonce: String,
        /// client-first-bare "," server-first, the start of the AuthMessage.
        auth_message: String,
    },
    /// Finished, either way.
    Done,
}

/// One SCRAM-SHA-256 exchange.
#[derive(Debug)]
struct ScramExchange {
    method: ScramSha256,
    state: State,
    /// A fixed server nonce, for the RFC's test vector.
    nonce: Option<String>,
}

const MALFORMED: Failure = Failure::new(
    ReasonCode::NotAuthorized,
    "SCRAM-SHA-256: malformed client message (RFC 5802 §7)",
);
const NO_DATA: Failure = Failure::new(
    ReasonCode::NotAuthorized,
    "SCRAM-SHA-256: the client message must be in Authentication Data",
);
const BAD_PROOF: Failure = Failure::new(
    ReasonCode::BadUserNameOrPassword,
    "SCRAM-SHA-256: unknown user or wrong password (the client proof does not match)",
);

impl Exchange for ScramExchange {
    fn step(&mut self, data: Option<&[u8]>) -> Step {
        let Some(message) = data.and_then(|d| std::str::from_utf8(d).ok()) else {
            self.state = State::Done;
            return Step::Failure(NO_DATA);
        };
        let result = match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => self.client_first(message),
            State::ClientFinal {
                user,
                known,
                credentials,
                channel_binding,
                nonce,
                auth_message,
            } => client_final(
                message,
                &credentials,
                &channel_binding,
                &nonce,
                &auth_message,
            )
            .and_then(|signature| match known {
                true => Ok(Step::Success {
                    user,
                    data: Some(Bytes::from(format!("v={signature}"))),
                }),
                false => Err(BAD_PROOF),
            }),
            State::Done => Err(Failure::new(
                ReasonCode::NotAuthorized,
                "SCRAM-SHA-256: the exchange is already over",
            )),
        };
        result.unwrap_or_else(Step::Failure)
    }
}

impl ScramExchange {
    /// Answers client-first with server-first.
    fn client_first(&mut self, message: &str) -> Result<Step, Failure> {
        // gs2-header: gs2-cbind-flag "," [authzid] ","
        let (flag, rest) = message.split_once(',').ok_or(MALFORMED)?;
        let (authzid, bare) = rest.split_once(',').ok_or(MALFORMED)?;
        if flag.starts_with("p=") {
            return Err(Failure::new(
                ReasonCode::NotAuthorized,
                "SCRAM-SHA-256: channel binding is not offered; use SCRAM-SHA-256 without -PLUS",
            ));
        }
        if flag != "n" && flag != "y" {
            return Err(MALFORMED);
        }
        let gs2_header = &message[..flag.len() + authzid.len() + 2];
        let mut attributes = bare.split(',');
        let user = match attributes.next() {
            Some(name) if name.starts_with("m=") => {
                return Err(Failure::new(
                    ReasonCode::NotAuthorized,
                    "SCRAM-SHA-256: mandatory extensions (m=) are not supported",
                ))
            }
            Some(name) => decode_name(name.strip_prefix("n=").ok_or(MALFORMED)?)?,
            None => return Err(MALFORMED),
        };
        if !authzid.is_empty() && decode_name(authzid.strip_prefix("a=").ok_or(MALFORMED)?)? != user
        {
            return Err(Failure::new(
                ReasonCode::NotAuthorized,
                "SCRAM-SHA-256: acting as another user (a=) is not allowed",
            ));
        }
        let client_nonce = attributes
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .filter(|r| valid_nonce(r))
            .ok_or(MALFORMED)?;
        let server_nonce = match &self.nonce {
            Some(nonce) => nonce.clone(),
            None => {
                let mut random = [0u8; NONCE_BYTES];
                if getrandom::fill(&mut random).is_err() {
                    return Err(Failure::new(
                        ReasonCode::ServerUnavailable,
                        "the server cannot read random bytes for the SCRAM nonce",
                    ));
                }
                BASE64.encode(random)
            }
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let (credentials, known) = match self.method.users.get(&user) {
            Some(credentials) => (credentials.clone(), true),
            None => (self.made_up(&user), false),
        };
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credentials.salt),
            credentials.iterations
        );
        self.state = State::ClientFinal {
            user: user.into(),
            known,
            credentials,
            channel_binding: BASE64.encode(gs2_header),
            nonce,
            auth_message: format!("{bare},{server_first}"),
        };
        Ok(Step::Continue(Bytes::from(server_first)))
    }

    /// Credentials for a user that does not exist: a salt that is the same on every try for
    /// that name, and keys no password matches.
    fn made_up(&self, user: &str) -> ScramCredentials {
        let secret = &self.method.secret;
        let salt = hmac(secret, format!("salt:{user}").as_bytes());
        ScramCredentials {
            salt: salt[..16].to_vec(),
            iterations: MIN_ITERATIONS,
            stored_key: hmac(secret, format!("stored:{user}").as_bytes()),
            server_key: hmac(secret, format!("server:{user}").as_bytes()),
        }
    }
}

/// Checks client-final; `Ok` is the base64 server signature.
fn client_final(
    message: &str,
    credentials: &ScramCredentials,
    channel_binding: &str,
    nonce: &str,
    auth_start: &str,
) -> Result<String, Failure> {
    let (without_proof, proof) = message.rsplit_once(",p=").ok_or(MALFORMED)?;
    let mut attributes = without_proof.split(',');
    if attributes.next().and_then(|c| c.strip_prefix("c=")) != Some(channel_binding) {
        return Err(Failure::new(
            ReasonCode::NotAuthorized,
            "SCRAM-SHA-256: the channel binding (c=) differs from the client-first GS2 header",
        ));
    }
    if attributes.next().and_then(|r| r.strip_prefix("r=")) != Some(nonce) {
        return Err(Failure::new(
            ReasonCode::NotAuthorized,
            "SCRAM-SHA-256: the nonce (r=) differs from the one the server sent",
        ));
    }
    let proof = BASE64
        .decode(proof)
        .ok()
        .and_then(|p| <[u8; 32]>::try_from(p).ok())
        .ok_or(MALFORMED)?;
    let auth_message = format!("{auth_start},{without_proof}");
    let client_signature = hmac(&credentials.stored_key, auth_message.as_bytes());
    let mut client_key = proof;
    for (k, s) in client_key.iter_mut().zip(client_signature) {
        *k ^= s;
    }
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    if !bool::from(stored_key.ct_eq(&credentials.stored_key)) {
        return Err(BAD_PROOF);
    }
    Ok(BASE64.encode(hmac(&credentials.server_key, auth_message.as_bytes())))
}

/// A saslname: `=2C` stands for `,` and `=3D` for `=`; any other `=` is malformed.
fn decode_name(name: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(MALFORMED),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(MALFORMED);
    }
    Ok(out)
}

/// A nonce: printable ASCII except `,` (RFC 5802 §7).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: user "user", password "pencil".
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn method() -> ScramSha256 {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let users = HashMap::from([(
            "user".to_owned(),
            ScramCredentials::derive("pencil", &salt, 4096),
        )]);
        ScramSha256::new(users).unwrap()
    }

    fn exchange(method: &ScramSha256) -> ScramExchange {
        ScramExchange {
            method: method.clone(),
            state: State::ClientFirst,
            nonce: Some(SERVER_NONCE.to_owned()),
        }
    }

    #[test]
    fn rfc_7677_test_vector() {
        let mut exchange = exchange(&method());
        assert_eq!(
            exchange.step(Some(CLIENT_FIRST.as_bytes())),
            Step::Continue(Bytes::from(SERVER_FIRST))
        );
        assert_eq!(
            exchange.step(Some(CLIENT_FINAL.as_bytes())),
            Step::Success {
                user: "user".into(),
                data: Some(Bytes::from(SERVER_FINAL)),
            }
        );
    }

    #[test]
    fn a_wrong_proof_is_refused_with_0x86() {
        let mut exchange = exchange(&method());
        exchange.step(Some(CLIENT_FIRST.as_bytes()));
        let wrong = CLIENT_FINAL.replace("p=dHzb", "p=eHzb");
        assert_eq!(
            exchange.step(Some(wrong.as_bytes())),
            Step::Failure(BAD_PROOF)
        );
    }

    #[test]
    fn an_unknown_user_gets_a_stable_salt_then_0x86() {
        let method = method();
        let first = "n,,n=nobody,r=abc";
        let salts: Vec<_> = (0..2)
            .map(|_| match exchange(&method).step(Some(first.as_bytes())) {
                Step::Continue(data) => data,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(salts[0], salts[1]);
        let mut exchange = exchange(&method);
        exchange.step(Some(first.as_bytes()));
        let last = format!("c=biws,r=abc{SERVER_NONCE},p={}", BASE64.encode([0u8; 32]));
        assert_eq!(
            exchange.step(Some(last.as_bytes())),
            Step::Failure(BAD_PROOF)
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let method = method();
        for first in [
            "n=user,r=abc",
            "x,,n=user,r=abc",
            "n,,r=abc",
            "n,,n=user",
            "n,,n=us=er,r=abc",
            "n,,n=user,r=",
            "p=tls-unique,,n=user,r=abc",
            "n,a=other,n=user,r=abc",
            "n,,m=ext,n=user,r=abc",
        ] {
            let step = exchange(&method).step(Some(first.as_bytes()));
            assert!(matches!(step, Step::Failure(_)), "{first}: {step:?}");
        }
        assert_eq!(exchange(&method).step(None), Step::Failure(NO_DATA));
        let mut bad_nonce = exchange(&method);
        bad_nonce.step(Some(CLIENT_FIRST.as_bytes()));
        let other = CLIENT_FINAL.replace("k0,p=", "k1,p=");
        assert!(matches!(
            bad_nonce.step(Some(other.as_bytes())),
            Step::Failure(Failure {
                reason: ReasonCode::NotAuthorized,
                ..
            })
        ));
    }

    #[test]
    fn escaped_user_names_are_decoded() {
        assert_eq!(decode_name("a=2Cb=3Dc").unwrap(), "a,b=c");
    }
}
