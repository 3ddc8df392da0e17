//! Password authentication at CONNECT: the User Name and Password of a CONNECT that names
//! no Authentication Method, checked against `auth.password_file`, and whether clients
//! without one may connect (`auth.allow_anonymous`).
//!
//! The rules this module keeps:
//!
//! - The password file has the format of [`super::credentials`] (the one `tern passwd`
//!   writes): per user a salt, an iteration count, StoredKey and ServerKey, never a
//!   password. A password is checked by deriving StoredKey from it (PBKDF2-HMAC-SHA-256 with
//!   the user's salt and iterations, then RFC 5802's `H(HMAC(SaltedPassword, "Client Key"))`)
//!   and comparing it with the stored one in constant time. So one file can serve both
//!   CONNECT passwords and SCRAM-SHA-256.
//! - A user the file does not list costs the same work: the password is derived with a salt
//!   made up at start and the iteration count most users have, then refused. How long the
//!   answer takes does not tell whether a user exists.
//! - PBKDF2 never runs on the runtime's threads: it runs on tokio's blocking threads, at most
//!   [`Passwords::slots`] derivations at once (half the cores, at least one), so connected
//!   clients keep the rest of the machine. A CONNECT waits for a slot in arrival order, under
//!   the connect timeout; one that cannot get its answer in time gets CONNACK 0x89 Server busy
//!   (3.x: 0x03 Server unavailable).
//! - A wrong password, a user not in the file, or a User Name without a Password: CONNACK
//!   0x86 Bad User Name or Password (3.x: 0x04) [MQTT-3.1.4-2].
//! - A client that is not authenticated (no User Name, or a User Name with no password file
//!   to check it against) is anonymous; when anonymous clients are not allowed it gets CONNACK
//!   0x87 Not authorized (3.x: 0x05). `allow_anonymous` defaults to true without a password
//!   file and to false with one, as in mosquitto 2.
//! - Clients that name an Authentication Method are authenticated by that method
//!   ([`super::connect`]), not here.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use subtle::ConstantTimeEq;
use tern_codec::{Connect, ReasonCode};
use tokio::sync::Semaphore;
use tracing::debug;

use super::credentials::{CredentialsError, ScramCredentials, DEFAULT_ITERATIONS, SALT_BYTES};
use super::Failure;

const WRONG: Failure = Failure::new(
    ReasonCode::BadUserNameOrPassword,
    "[MQTT-3.1.4-2] unknown user or wrong password (auth.password_file)",
);
const NO_PASSWORD: Failure = Failure::new(
    ReasonCode::BadUserNameOrPassword,
    "[MQTT-3.1.4-2] a User Name without a Password; this server checks both (auth.password_file)",
);
const ANONYMOUS: Failure = Failure::new(
    ReasonCode::NotAuthorized,
    "[MQTT-3.1.4-2] no User Name, and this server does not allow anonymous clients (auth.allow_anonymous = false)",
);
const NOTHING_TO_CHECK: Failure = Failure::new(
    ReasonCode::NotAuthorized,
    "[MQTT-3.1.4-2] this server has no password file to check the User Name against and does not allow anonymous clients (auth.allow_anonymous = false)",
);
const BUSY: Failure = Failure::new(
    ReasonCode::ServerBusy,
    "the server could not check the password within the connect timeout; try again",
);

/// How CONNECTs without an Authentication Method are let in.
#[derive(Debug, Clone)]
pub struct Passwords {
    file: Option<Arc<PasswordFile>>,
    allow_anonymous: bool,
    /// One permit per PBKDF2 derivation allowed at once.
    slots: Arc<Semaphore>,
}

impl Default for Passwords {
    /// No password file; anonymous clients allowed.
    fn default() -> Self {
        Passwords {
            file: None,
            allow_anonymous: true,
            slots: Arc::new(Semaphore::new(Passwords::slots())),
        }
    }
}

/// What a CONNECT without an Authentication Method needs, decided without I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it in.
    Accept,
    /// Refuse it with this CONNACK.
    Refuse(Failure),
    /// Check this password of this user against the file.
    Verify {
        /// The User Name.
        user: String,
        /// The Password.
        password: Bytes,
    },
}

impl Passwords {
    /// Checks CONNECT passwords against `users` (from `auth.password_file`; `None`: no file)
    /// and lets clients without one in when `allow_anonymous`.
    pub fn new(
        users: Option<HashMap<String, ScramCredentials>>,
        allow_anonymous: bool,
    ) -> Result<Self, CredentialsError> {
        let file = match users {
            Some(users) => Some(Arc::new(PasswordFile::new(users)?)),
            None => None,
        };
        Ok(Passwords {
            file,
            allow_anonymous,
            ..Passwords::default()
        })
    }

    /// PBKDF2 derivations run at once: half the cores, at least one.
    pub fn slots() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .max(1)
    }

    /// Whether a password file is in use.
    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// Whether clients that do not authenticate may connect.
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// What `connect` (which names no Authentication Method) needs.
    pub fn decide(&self, connect: &Connect) -> Decision {
        let anonymous = |failure| match self.allow_anonymous {
            true => Decision::Accept,
            false => Decision::Refuse(failure),
        };
        let Some(user) = &connect.username else {
            return anonymous(ANONYMOUS);
        };
        if self.file.is_none() {
            return anonymous(NOTHING_TO_CHECK);
        }
        match &connect.password {
            Some(password) => Decision::Verify {
                user: user.as_str().to_owned(),
                password: password.clone(),
            },
            None => Decision::Refuse(NO_PASSWORD),
        }
    }

    /// Decides on `connect` and, when it carries a user and password, checks them on a
    /// blocking thread before `deadline`. `Err` is the refusing CONNACK's reason and why.
    pub async fn check(
        &self,
        connect: &Connect,
        deadline: tokio::time::Instant,
    ) -> Result<(), Failure> {
        let (user, password) = match self.decide(connect) {
            Decision::Accept => return Ok(()),
            Decision::Refuse(failure) => return Err(failure),
            Decision::Verify { user, password } => (user, password),
        };
        let Some(file) = self.file.clone() else {
            return Err(WRONG);
        };
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await
        else {
            debug!(%user, "no PBKDF2 slot before the connect timeout");
            return Err(BUSY);
        };
        let name = user.clone();
        let derivation = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            file.verify(&name, &password)
        });
        match tokio::time::timeout_at(deadline, derivation).await {
            Ok(Ok(true)) => {
                debug!(%user, "password accepted");
                Ok(())
            }
            Ok(Ok(false)) => {
                debug!(%user, "password refused");
                Err(WRONG)
            }
            Ok(Err(_)) | Err(_) => Err(BUSY),
        }
    }
}

/// The users of the password file, and the made-up credentials checked for anyone else.
#[derive(Debug)]
pub struct PasswordFile {
    users: HashMap<String, ScramCredentials>,
    /// A random salt, a random StoredKey, and the iteration count most users have.
    unknown: ScramCredentials,
}

impl PasswordFile {
    /// The file's users, with credentials made up for users it does not list.
    pub fn new(users: HashMap<String, ScramCredentials>) -> Result<Self, CredentialsError> {
        let mut salt = [0u8; SALT_BYTES];
        let mut key = [0u8; 32];
        getrandom::fill(&mut salt).map_err(CredentialsError::Random)?;
        getrandom::fill(&mut key).map_err(CredentialsError::Random)?;
        let unknown = ScramCredentials {
            salt: salt.to_vec(),
            iterations: usual_iterations(&users),
            stored_key: key,
            server_key: key,
        };
        Ok(PasswordFile { users, unknown })
    }

    /// Whether `password` is `user`'s. Runs PBKDF2 whether the user is known or not: call it
    /// on a blocking thread.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        let (credentials, known) = match self.users.get(user) {
            Some(credentials) => (credentials, true),
            None => (&self.unknown, false),
        };
        let derived = ScramCredentials::derive_from_bytes(
            password,
            &credentials.salt,
            credentials.iterations,
        );
        bool::from(derived.stored_key.ct_eq(&credentials.stored_key)) & known
    }

    /// The credentials a user not in the file is checked against.
    pub fn unknown_user(&self) -> &ScramCredentials {
        &self.unknown
    }
}

/// The iteration count most users have (the larger on a tie); the default for no users.
fn usual_iterations(users: &HashMap<String, ScramCredentials>) -> u32 {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for credentials in users.values() {
        *counts.entry(credentials.iterations).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(iterations, count)| (count, iterations))
        .map_or(DEFAULT_ITERATIONS, |(iterations, _)| iterations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_codec::{MqttString, ProtocolVersion};

    fn users(list: &[(&str, &str, u32)]) -> HashMap<String, ScramCredentials> {
        list.iter()
            .map(|&(user, password, iterations)| {
                let salt = format!("salt-of-{user:<8}");
                let credentials = ScramCredentials::derive(password, salt.as_bytes(), iterations);
                (user.to_owned(), credentials)
            })
            .collect()
    }

    fn connect(user: Option<&str>, password: Option<&str>) -> Connect {
        Connect {
            protocol: ProtocolVersion::V3_1_1,
            clean_start: true,
            username: user.map(|u| MqttString::try_from(u).unwrap()),
            password: password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
            ..Default::default()
        }
    }

    #[test]
    fn the_right_password_only() {
        let file = PasswordFile::new(users(&[("alice", "wonderland", 4096)])).unwrap();
        assert!(file.verify("alice", b"wonderland"));
        assert!(!file.verify("alice", b"Wonderland"));
        assert!(!file.verify("alice", b""));
        assert!(!file.verify("bob", b"wonderland"));
    }

    /// The Python recipe of docs/configuration.md and `tern passwd` write the same keys, so
    /// RFC 7677's line accepts its password `pencil`.
    #[test]
    fn a_scram_line_checks_its_password() {
        let text = "user:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
                    WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
                    wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
        let file = PasswordFile::new(super::super::credentials::parse_file(text).unwrap()).unwrap();
        assert!(file.verify("user", b"pencil"));
        assert!(!file.verify("user", b"pen"));
    }

    /// An unknown user is checked against made-up credentials with the iteration count most
    /// users have, so it costs a known user's time.
    #[test]
    fn unknown_users_cost_the_usual_iterations() {
        let file = PasswordFile::new(users(&[
            ("a", "x", 4096),
            ("b", "x", 5000),
            ("c", "x", 5000),
        ]))
        .unwrap();
        assert_eq!(file.unknown_user().iterations, 5000);
        assert_eq!(file.unknown_user().salt.len(), SALT_BYTES);
        let empty = PasswordFile::new(HashMap::new()).unwrap();
        assert_eq!(empty.unknown_user().iterations, DEFAULT_ITERATIONS);
    }

    /// Timing: an unknown user's check runs PBKDF2 as a known user's does. Without the
    /// made-up derivation it would take microseconds, not a large part of a known user's
    /// time, so the bound below holds even on a loaded machine.
    #[test]
    fn an_unknown_user_takes_as_long_as_a_known_one() {
        let file = PasswordFile::new(users(&[("known", "secret", 50_000)])).unwrap();
        let time = |user: &str| {
            let started = std::time::Instant::now();
            assert!(!file.verify(user, b"wrong"));
            started.elapsed()
        };
        let known = time("known");
        let unknown = time("unknown");
        assert!(
            unknown * 4 > known,
            "unknown user {unknown:?}, known user {known:?}"
        );
    }

    #[test]
    fn decisions() {
        let with_file = |anonymous| Passwords::new(Some(users(&[])), anonymous).unwrap();
        let no_file = |anonymous| Passwords::new(None, anonymous).unwrap();
        let verify = Decision::Verify {
            user: "u".into(),
            password: Bytes::from_static(b"p"),
        };
        // A password file: the pair is checked, a name alone is refused with 0x86.
        assert_eq!(
            with_file(false).decide(&connect(Some("u"), Some("p"))),
            verify
        );
        assert_eq!(
            with_file(true).decide(&connect(Some("u"), Some("p"))),
            verify
        );
        assert_eq!(
            with_file(true).decide(&connect(Some("u"), None)),
            Decision::Refuse(NO_PASSWORD)
        );
        // No User Name: anonymous.
        assert_eq!(
            with_file(false).decide(&connect(None, None)),
            Decision::Refuse(ANONYMOUS)
        );
        assert_eq!(
            with_file(true).decide(&connect(None, None)),
            Decision::Accept
        );
        // No file: a User Name is not checked, so the client counts as anonymous.
        assert_eq!(
            no_file(true).decide(&connect(Some("u"), Some("p"))),
            Decision::Accept
        );
        assert_eq!(
            no_file(false).decide(&connect(Some("u"), Some("p"))),
            Decision::Refuse(NOTHING_TO_CHECK)
        );
        assert_eq!(
            Passwords::default().decide(&connect(None, None)),
            Decision::Accept
        );
    }
}
