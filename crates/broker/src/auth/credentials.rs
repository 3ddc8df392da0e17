//! SCRAM-SHA-256 credentials: what the broker keeps per user instead of a password, and the
//! file they are read from.
//!
//! A user's credentials are RFC 5802's salt, iteration count, StoredKey and ServerKey,
//! written as PostgreSQL and RFC 5803 write them:
//! `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
//! The file has one user a line, `<user name>:<credentials>`; blank lines and lines that
//! start with `#` are skipped. The password cannot be recovered from the file; a client that
//! learns a line can still pose as that user only by breaking SHA-256, but can impersonate
//! the *server* to that user, so keep the file private.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The name that opens every credentials value.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Fewest PBKDF2 iterations accepted (RFC 7677 §4: at least 4096).
pub const MIN_ITERATIONS: u32 = 4096;

/// The iterations `tern passwd` uses unless told otherwise.
pub const DEFAULT_ITERATIONS: u32 = MIN_ITERATIONS;

/// Bytes of random salt `tern passwd` gives each password.
pub const SALT_BYTES: usize = 16;

/// One user's SCRAM-SHA-256 credentials (RFC 5802 §3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt PBKDF2 was given.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`: checks the client's proof.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's answer.
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA-256 of `data` under `key`.
pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC-SHA-256 takes keys of any length (RFC 2104)");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl ScramCredentials {
    /// Derives the credentials of `password` (RFC 5802 §3). This runs PBKDF2 `iterations`
    /// times: call it when creating credentials, never while serving a connection.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        Self::derive_from_bytes(password.as_bytes(), salt, iterations)
    }

    /// [`ScramCredentials::derive`] for a password that is any bytes, as the Password of an
    /// MQTT CONNECT may be (SCRAM itself needs UTF-8; for such passwords both agree).
    pub fn derive_from_bytes(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
        Self::from_salted_password(&salted, salt, iterations)
    }

    /// The credentials of an already salted password.
    pub fn from_salted_password(salted: &[u8; 32], salt: &[u8], iterations: u32) -> Self {
        let client_key = hmac(salted, b"Client Key");
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(salted, b"Server Key"),
        }
    }

    /// Parses `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let rest = text
            .strip_prefix(SCRAM_SHA_256)
            .and_then(|rest| rest.strip_prefix('$'))
            .ok_or("credentials must start with SCRAM-SHA-256$")?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or("expected <iterations>:<salt>$<StoredKey>:<ServerKey>")?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or("expected <iterations>:<salt> after SCRAM-SHA-256$")?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or("expected <StoredKey>:<ServerKey> after the second $")?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| "the iteration count is not a number")?;
        if iterations < MIN_ITERATIONS {
            return Err("the iteration count must be at least 4096 (RFC 7677)");
        }
        let salt = BASE64.decode(salt).map_err(|_| "the salt is not base64")?;
        if salt.is_empty() {
            return Err("the salt is empty");
        }
        let key = |text: &str, what: &'static str| -> Result<[u8; 32], &'static str> {
            BASE64
                .decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or(what)
        };
        Ok(ScramCredentials {
            salt,
            iterations,
            stored_key: key(stored, "the StoredKey is not 32 bytes of base64")?,
            server_key: key(server, "the ServerKey is not 32 bytes of base64")?,
        })
    }
}

impl std::fmt::Display for ScramCredentials {
    /// The form [`ScramCredentials::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{SCRAM_SHA_256}${}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }
}

/// Why the credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("cannot read {key} {path}: {source}")]
    Read {
        /// The configuration key that named the file (`auth.scram_file`, `auth.password_file`).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `<user>:SCRAM-SHA-256$...`.
    #[error(
        "{path}:{line}: {reason}; each line must be <user>:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, as `tern passwd` writes them ({key}, see docs/configuration.md)"
    )]
    Line {
        /// The configuration key that named the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The system's random number generator failed.
    #[error("cannot read random bytes from the system: {0}")]
    Random(getrandom::Error),
}

/// Reads a credentials file, named by the configuration key `key`: user name to
/// credentials.
pub fn read_file(
    path: &Path,
    key: &'static str,
) -> Result<HashMap<String, ScramCredentials>, CredentialsError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
        key,
        path: path.to_owned(),
        source,
    })?;
    parse_file(&text).map_err(|(line, reason)| CredentialsError::Line {
        key,
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Parses the text of a credentials file; `Err` names the line (from 1) and the fault.
pub fn parse_file(text: &str) -> Result<HashMap<String, ScramCredentials>, (usize, &'static str)> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let Some((user, credentials)) = parse_line(line).map_err(|e| (n + 1, e))? else {
            continue;
        };
        if users.insert(user.to_owned(), credentials).is_some() {
            return Err((n + 1, DUPLICATE_USER));
        }
    }
    Ok(users)
}

/// What [`parse_file`] says of a user's second line.
pub const DUPLICATE_USER: &str = "the user is listed twice";

/// Parses one line of a credentials file (without its `\n`; a `\r` before it is ignored):
/// `Ok(None)` for a blank line or a `#` comment, else the user name and credentials.
pub fn parse_line(line: &str) -> Result<Option<(&str, ScramCredentials)>, &'static str> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let at = line
        .find(MARKER)
        .ok_or("no :SCRAM-SHA-256$ after the user name")?;
    let (user, credentials) = (&line[..at], &line[at + 1..]);
    if user.is_empty() {
        return Err("the user name is empty");
    }
    Ok(Some((user, ScramCredentials::parse(credentials)?)))
}

/// What ends the user name on a line.
pub const MARKER: &str = ":SCRAM-SHA-256$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_through_text() {
        let credentials = ScramCredentials::derive("pencil", b"salt-of-16-bytes", 4096);
        let text = credentials.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:c2FsdC1vZi0xNi1ieXRlcw==$"));
        assert_eq!(ScramCredentials::parse(&text).unwrap(), credentials);
    }

    /// The line docs/configuration.md's Python recipe prints for RFC 7677's user.
    #[test]
    fn the_documented_recipe_matches_derive() {
        let line = "user:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
                    WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
                    wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
        let users = parse_file(line).unwrap();
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        assert_eq!(
            users["user"],
            ScramCredentials::derive("pencil", &salt, 4096)
        );
    }

    #[test]
    fn file_lines_name_their_faults() {
        let good = ScramCredentials::derive("pencil", b"0123456789abcdef", 4096).to_string();
        let users = parse_file(&format!("# users\n\nuser:{good}\na:b:{good}\n")).unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.contains_key("a:b"), "user names may hold ':'");
        assert_eq!(
            parse_file("user:plain-password\n").unwrap_err(),
            (1, "no :SCRAM-SHA-256$ after the user name")
        );
        let low = good.replace("$4096:", "$1000:");
        assert_eq!(parse_file(&format!("\nu:{low}")).unwrap_err().0, 2);
        assert_eq!(
            parse_file(&format!("u:{good}\nu:{good}")).unwrap_err(),
            (2, "the user is listed twice")
        );
        let short = "u:SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA";
        assert_eq!(
            parse_file(short).unwrap_err(),
            (1, "the StoredKey is not 32 bytes of base64")
        );
    }
}
