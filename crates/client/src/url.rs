//! Parsing of `mqtt://user:password@host:port` (and `mqtts://`) URLs for
//! [`ConnectOptions::from_url`](crate::ConnectOptions::from_url).

/// The parts of a broker URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BrokerUrl {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    /// `mqtts://`, `ssl://` or `tls://`.
    pub(crate) tls: bool,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    #[error("URL has no scheme (expected mqtt://host:port)")]
    NoScheme,
    #[error("scheme {0:?} is not supported (use mqtt://, tcp://, mqtts:// or ssl://)")]
    UnsupportedScheme(String),
    #[error("URL has no host")]
    NoHost,
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    #[error("invalid percent-encoding in the user information")]
    InvalidEncoding,
}

/// Parses `scheme://[user[:password]@]host[:port][/]`.
pub(crate) fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::NoScheme)?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" | "tls" => true,
        other => return Err(UrlError::UnsupportedScheme(other.to_owned())),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, pass)) => (Some(decode(user)?), Some(decode(pass)?)),
            None => (Some(decode(info)?), None),
        },
        None => (None, None),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = split_host_port(hostport, default_port)?;
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    Ok(BrokerUrl {
        host: host.to_owned(),
        port,
        username,
        password,
        tls,
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(hostport: &str, default_port: u16) -> Result<(&str, u16), UrlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::NoHost)?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse().map_err(|_| UrlError::InvalidPort(p.to_owned()))?,
    };
    Ok((host, port))
}

/// Decodes `%XX` escapes.
fn decode(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(UrlError::InvalidEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::InvalidEncoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::InvalidEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let url = parse("mqtt://user:p%40ss@broker.example:1884/").unwrap();
        assert_eq!(
            url,
            BrokerUrl {
                host: "broker.example".into(),
                port: 1884,
                username: Some("user".into()),
                password: Some("p@ss".into()),
                tls: false,
            }
        );
    }

    #[test]
    fn defaults_and_ipv6() {
        let url = parse("tcp://localhost").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.username),
            ("localhost", 1883, None)
        );
        let url = parse("mqtt://[::1]:2000").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 2000));
        let url = parse("mqtt://bob@h").unwrap();
        assert_eq!((url.username.as_deref(), url.password), (Some("bob"), None));
    }

    #[test]
    fn tls_schemes_default_to_8883() {
        let url = parse("mqtts://broker.example").unwrap();
        assert_eq!((url.port, url.tls), (8883, true));
        let url = parse("ssl://h:9000").unwrap();
        assert_eq!((url.port, url.tls), (9000, true));
        assert!(!parse("mqtt://h").unwrap().tls);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("localhost:1883"), Err(UrlError::NoScheme));
        assert!(matches!(
            parse("ws://h"),
            Err(UrlError::UnsupportedScheme(_))
        ));
        assert_eq!(parse("mqtt://:1883"), Err(UrlError::NoHost));
        assert!(matches!(parse("mqtt://h:x"), Err(UrlError::InvalidPort(_))));
        assert_eq!(parse("mqtt://a%4@h"), Err(UrlError::InvalidEncoding));
    }
}
