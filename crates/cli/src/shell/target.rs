//! [`Target`]: the broker and the connect options the shell uses, built from the command
//! line and changed by each `connect`.
//!
//! Rules:
//! - Defaults: `localhost:1883`, MQTT 5.0, keep alive 60 s, clean start, a generated
//!   client id, no user name.
//! - A URL (`mqtt://[user[:password]@]host[:port]`, `tcp://` alike, or a bare
//!   `host[:port]`) sets host, port, user name and password together; the options given
//!   with it (`--host`, `--user`, ...) then take precedence. What is not given keeps its
//!   previous value.
//! - The client does not reconnect by itself: a lost connection is reported and the user
//!   connects again, as mqtt-shell and HiveMQ's shell do.

use std::time::Duration;

use tern_client::{ConnectOptions, ProtocolVersion};

use super::parse::ConnectArgs;
use crate::url_userinfo::userinfo;

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or address.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// User name.
    pub(crate) user: Option<String>,
    /// Password (sent only with a user name).
    pub(crate) password: Option<String>,
    /// Client identifier; `None`: tern-client makes one up.
    pub(crate) id: Option<String>,
    /// Protocol version.
    pub(crate) version: ProtocolVersion,
    /// Keep alive, seconds.
    pub(crate) keepalive: u16,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            host: "localhost".into(),
            port: 1883,
            user: None,
            password: None,
            id: None,
            version: ProtocolVersion::V5,
            keepalive: 60,
        }
    }
}

impl Target {
    /// This target changed by `args`.
    pub(crate) fn apply(&self, args: &ConnectArgs) -> Result<Target, String> {
        let mut next = self.clone();
        if let Some(url) = &args.url {
            let full = if url.contains("://") {
                url.clone()
            } else {
                format!("mqtt://{url}")
            };
            let parsed = ConnectOptions::from_url(&full).map_err(|e| {
                let cause = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.to_string());
                format!("invalid URL '{url}': {cause}; use mqtt://[user[:password]@]host[:port]")
            })?;
            if parsed.tls_options().is_some() {
                // tern-client speaks TLS now, but the shell's target does not carry TLS
                // settings yet: refuse rather than connect in plain text to the TLS port.
                return Err(format!(
                    "invalid URL '{url}': TLS (mqtts://) is not supported by tern shell yet; \
                     use mqtt://[user[:password]@]host[:port]"
                ));
            }
            next.host = parsed.host().to_owned();
            next.port = parsed.port();
            (next.user, next.password) = url_userinfo(&full);
        }
        if let Some(host) = &args.host {
            next.host = host.clone();
        }
        next.port = args.port.unwrap_or(next.port);
        if args.user.is_some() {
            next.user = args.user.clone();
        }
        if args.password.is_some() {
            next.password = args.password.clone();
        }
        if args.id.is_some() {
            next.id = args.id.clone();
        }
        next.version = args.version.unwrap_or(next.version);
        next.keepalive = args.keepalive.unwrap_or(next.keepalive);
        if next.password.is_some() && next.user.is_none() {
            return Err("a password is sent only with a user name; add --user USER".into());
        }
        Ok(next)
    }

    /// The options for [`tern_client::Client::connect`]: no reconnects (the shell reports a
    /// lost connection instead).
    pub(crate) fn options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new(self.host.clone(), self.port)
            .protocol(self.version)
            .keep_alive(Duration::from_secs(self.keepalive.into()))
            .reconnect(None);
        if let Some(id) = &self.id {
            options = options.client_id(id.clone());
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => options.credentials(user.clone(), password.clone()),
            (Some(user), None) => options.username(user.clone()),
            _ => options,
        }
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub(crate) fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host as the prompt shows it: the port only when it is not 1883.
    pub(crate) fn short_server(&self) -> String {
        if self.port == 1883 {
            self.host.clone()
        } else {
            self.server()
        }
    }
}

/// User name and password of `scheme://user:password@host/...`, percent-decoded.
fn url_userinfo(url: &str) -> (Option<String>, Option<String>) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    userinfo(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(target: &Target, args: ConnectArgs) -> Target {
        target.apply(&args).expect("valid")
    }

    #[test]
    fn url_then_options_then_previous_values() {
        let start = Target::default();
        let t = apply(
            &start,
            ConnectArgs {
                url: Some("mqtt://al%40ice:p%3Aw@example.org:1999".into()),
                id: Some("me".into()),
                ..ConnectArgs::default()
            },
        );
        assert_eq!((t.host.as_str(), t.port), ("example.org", 1999));
        assert_eq!(t.user.as_deref(), Some("al@ice"));
        assert_eq!(t.password.as_deref(), Some("p:w"));
        assert_eq!(t.server(), "example.org:1999");
        // Nothing given: everything kept.
        assert_eq!(apply(&t, ConnectArgs::default()), t);
        // Options override the URL.
        let t2 = apply(
            &t,
            ConnectArgs {
                url: Some("other:2000".into()),
                port: Some(2001),
                version: Some(ProtocolVersion::V3_1_1),
                ..ConnectArgs::default()
            },
        );
        assert_eq!((t2.host.as_str(), t2.port), ("other", 2001));
        assert_eq!(t2.user, None, "a URL sets the user name, here none");
        assert_eq!(t2.id.as_deref(), Some("me"));
        assert_eq!(t2.version, ProtocolVersion::V3_1_1);
        assert_eq!(t2.short_server(), "other:2001");
        let t3 = apply(
            &t2,
            ConnectArgs {
                url: Some("tcp://[::1]".into()),
                ..ConnectArgs::default()
            },
        );
        assert_eq!(t3.server(), "[::1]:1883");
        assert_eq!(t3.short_server(), "::1");
    }

    #[test]
    fn bad_urls_and_lone_passwords_are_refused() {
        let start = Target::default();
        let err = start
            .apply(&ConnectArgs {
                url: Some("mqtts://h".into()),
                ..ConnectArgs::default()
            })
            .expect_err("no TLS");
        assert!(err.contains("invalid URL 'mqtts://h'"), "{err}");
        let err = start
            .apply(&ConnectArgs {
                password: Some("secret".into()),
                ..ConnectArgs::default()
            })
            .expect_err("password alone");
        assert!(err.contains("add --user USER"), "{err}");
    }
}
