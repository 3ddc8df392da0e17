//! Errors per operation: [`ConnectError`], [`PublishError`], [`SubscribeError`].
//!
//! Each is an [`Error`] over its own kind enum, in the manner of async-nats: `kind()` says
//! what went wrong in a form a program can match on, and [`std::error::Error::source`] leads
//! to the underlying cause (an I/O error, a decode error, the reason a connection was lost).

use std::fmt;

use tern_codec::{DecodeError, ReasonCode};

/// An error of one operation, with a kind to match on and an optional cause.
pub struct Error<K> {
    kind: K,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl<K: Copy> Error<K> {
    /// An error of this kind without a cause.
    pub(crate) fn new(kind: K) -> Self {
        Error { kind, source: None }
    }

    /// An error of this kind caused by `source`.
    pub(crate) fn with_source(
        kind: K,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error {
            kind,
            source: Some(source.into()),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> K {
        self.kind
    }
}

impl<K: fmt::Display> fmt::Display for Error<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {}", self.kind, source),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for Error<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl<K: fmt::Debug + fmt::Display> std::error::Error for Error<K> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

/// Why [`Client::connect`](crate::Client::connect) failed.
pub type ConnectError = Error<ConnectErrorKind>;

/// The kinds of [`ConnectError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The options cannot work: a bad URL, client identifier or will topic.
    InvalidOptions,
    /// The TCP connection could not be made, or broke during the handshake.
    Io,
    /// TLS failed: the server's certificate was not trusted (unknown CA, wrong name,
    /// expired), the server refused the client's certificate (or its absence), or no
    /// protocol version or ALPN protocol was shared. The source says which.
    Tls,
    /// No CONNACK (or no TCP connection) within the connect timeout.
    TimedOut,
    /// The server answered CONNACK with this failure reason code.
    Refused(ReasonCode),
    /// The server broke the protocol during the handshake.
    Protocol,
    /// The in-flight store cannot be opened: locked by another client, damaged, or kept
    /// for another client identifier. The source says which.
    Store,
}

impl fmt::Display for ConnectErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectErrorKind::InvalidOptions => f.write_str("invalid connect options"),
            ConnectErrorKind::Io => f.write_str("connection failed"),
            ConnectErrorKind::Tls => f.write_str("TLS failed"),
            ConnectErrorKind::TimedOut => f.write_str("connect timed out"),
            ConnectErrorKind::Refused(code) => write!(f, "connection refused: {code:?}"),
            ConnectErrorKind::Protocol => f.write_str("protocol error during connect"),
            ConnectErrorKind::Store => f.write_str("in-flight store unusable"),
        }
    }
}

/// Why a publish failed.
pub type PublishError = Error<PublishErrorKind>;

/// The kinds of [`PublishError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishErrorKind {
    /// The topic is not a valid topic name (empty, or with `+` or `#`).
    InvalidTopic,
    /// A field cannot be encoded (Correlation Data over 65,535 bytes, a Subscription
    /// Identifier, which only servers send).
    InvalidMessage,
    /// The packet is larger than the server's Maximum Packet Size.
    PacketTooLarge,
    /// The QoS is above the server's Maximum QoS.
    QoSNotSupported,
    /// The message is retained and the server does not support retained messages.
    RetainNotSupported,
    /// The offline buffer is full: the client is disconnected (or the server's Receive
    /// Maximum is reached) and already holds as many publishes as it may.
    BufferFull,
    /// The server answered PUBACK, PUBREC or PUBCOMP with this failure reason code.
    Rejected(ReasonCode),
    /// The client was closed before the publish completed.
    Closed,
}

impl fmt::Display for PublishErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishErrorKind::InvalidTopic => f.write_str("invalid topic name"),
            PublishErrorKind::InvalidMessage => f.write_str("message cannot be encoded"),
            PublishErrorKind::PacketTooLarge => {
                f.write_str("packet exceeds the server's maximum packet size")
            }
            PublishErrorKind::QoSNotSupported => f.write_str("QoS above the server's maximum"),
            PublishErrorKind::RetainNotSupported => {
                f.write_str("the server does not support retained messages")
            }
            PublishErrorKind::BufferFull => f.write_str("offline buffer full"),
            PublishErrorKind::Rejected(code) => write!(f, "publish rejected: {code:?}"),
            PublishErrorKind::Closed => f.write_str("client closed"),
        }
    }
}

/// Why a subscribe failed.
pub type SubscribeError = Error<SubscribeErrorKind>;

/// The kinds of [`SubscribeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeErrorKind {
    /// The filter is not a valid topic filter.
    InvalidFilter,
    /// The server answered SUBACK with this failure reason code.
    Rejected(ReasonCode),
    /// The client was closed before the SUBACK arrived.
    Closed,
}

impl fmt::Display for SubscribeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeErrorKind::InvalidFilter => f.write_str("invalid topic filter"),
            SubscribeErrorKind::Rejected(code) => write!(f, "subscription rejected: {code:?}"),
            SubscribeErrorKind::Closed => f.write_str("client closed"),
        }
    }
}

/// Why a connection ended: the cause behind a [`ConnectError`] and what the log says
/// when the client reconnects.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// Reading, writing or dialing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake failed.
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    /// The server sent bytes that are not a valid packet.
    #[error("bad packet from the server: {0}")]
    Decode(#[from] DecodeError),
    /// The server sent a valid packet that breaks the protocol.
    #[error("protocol violation by the server: {0}")]
    Protocol(&'static str),
    /// CONNACK with a failure reason code.
    #[error("CONNACK refused: {0:?}")]
    Refused(ReasonCode),
    /// No CONNACK, or no TCP connection, within the connect timeout.
    #[error("no CONNACK within the connect timeout")]
    ConnectTimeout,
    /// No answer to PINGREQ in time: the connection is dead.
    #[error("no answer to PINGREQ: the connection is dead")]
    KeepAliveTimeout,
    /// Writing did not finish within the write timeout.
    #[error("write timed out")]
    WriteTimeout,
    /// The server sent DISCONNECT.
    #[error("server sent DISCONNECT: {0:?}")]
    ServerDisconnect(ReasonCode),
    /// The server closed the TCP connection.
    #[error("server closed the connection")]
    Eof,
}

impl LinkError {
    /// The [`ConnectError`] this failure means when it ends the first connection attempt.
    pub(crate) fn into_connect_error(self) -> ConnectError {
        let kind = match &self {
            LinkError::Tls(_) => ConnectErrorKind::Tls,
            // A TLS 1.3 server checks the client's certificate after the client's side of
            // the handshake is done: its refusal arrives as an alert on the first read.
            LinkError::Io(e) if e.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
                ConnectErrorKind::Tls
            }
            LinkError::Io(_) | LinkError::Eof | LinkError::WriteTimeout => ConnectErrorKind::Io,
            LinkError::Refused(code) => ConnectErrorKind::Refused(*code),
            LinkError::ConnectTimeout | LinkError::KeepAliveTimeout => ConnectErrorKind::TimedOut,
            LinkError::Decode(_) | LinkError::Protocol(_) | LinkError::ServerDisconnect(_) => {
                ConnectErrorKind::Protocol
            }
        };
        ConnectError::with_source(kind, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kind_display_and_source_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = LinkError::Io(io).into_connect_error();
        assert_eq!(err.kind(), ConnectErrorKind::Io);
        assert_eq!(err.to_string(), "connection failed: i/o: refused");
        let link = err.source().expect("a source");
        assert!(link.source().is_some(), "the io::Error is reachable");

        let err = PublishError::new(PublishErrorKind::BufferFull);
        assert_eq!(err.to_string(), "offline buffer full");
        assert!(err.source().is_none());
    }
}
