//! [`ConnectionState`]: what [`Client::state`](crate::Client::state) reports.

/// The state of the client's connection, published on a `tokio::sync::watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening a TCP connection or waiting for CONNACK.
    Connecting,
    /// CONNACK accepted the connection.
    Connected {
        /// The server resumed the session it held for this client.
        session_present: bool,
    },
    /// The connection was lost; a reconnect attempt follows after the backoff delay.
    Disconnected,
    /// The client is closed (by [`Client::disconnect`](crate::Client::disconnect), by
    /// dropping every handle, or by a lost connection with reconnecting off). Final.
    Closed,
}

impl ConnectionState {
    /// True when connected.
    pub fn is_connected(self) -> bool {
        matches!(self, ConnectionState::Connected { .. })
    }
}
