//! The accept loop of one TCP listener.
//!
//! Each accepted socket gets its own task at once; the CONNECT handshake runs inside it, under
//! the connect timeout, so a slow client never holds up the loop. A semaphore bounds open
//! connections: past the limit a socket is closed as soon as it is accepted. Accept errors
//! (such as running out of file descriptors) back off instead of spinning. Every socket has
//! Nagle's algorithm off (`TCP_NODELAY`): MQTT packets are small and answered at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::connection;
use crate::hub::Hub;

/// Accepts connections until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    hub: Arc<Hub>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let mut backoff = Duration::from_millis(5);
    let inherited = inherits_nodelay(&listener);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(5);
                pair
            }
            Err(e) => {
                warn!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(slot) = Slot::take(&permits) else {
            debug!(%peer, "connection limit reached; closing");
            drop(socket);
            continue;
        };
        if !inherited {
            let _ = socket.set_nodelay(true);
        }
        // The slot and the tracker's token live as long as the connection, in its
        // boxed state; the task itself is only the connection's future.
        let held = (slot, tasks.token());
        tokio::spawn(connection::serve(socket, peer, hub.clone(), held));
    }
}

/// A listening socket on `addr` (`SO_REUSEADDR` on Unix, as tokio's `TcpListener::bind`),
/// with `TCP_NODELAY` set before it listens: on Linux the sockets it accepts inherit it, which
/// saves a system call on every connection. (Set after `listen`, a connection whose handshake
/// completed in between would keep Nagle's algorithm.)
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    // Not every system takes it on a listening socket; `run` then sets it on each.
    let _ = socket.set_nodelay(true);
    socket.bind(addr)?;
    socket.listen(1024)
}

/// True where the sockets `listener` accepts come with `TCP_NODELAY` already (Linux, when
/// [`bind`] could set it).
fn inherits_nodelay(listener: &TcpListener) -> bool {
    cfg!(target_os = "linux") && rustix::net::sockopt::tcp_nodelay(listener).unwrap_or(false)
}

/// A connection's place under the connection limit, given back when it is dropped: what
/// tokio's `OwnedSemaphorePermit` does, in one word instead of two (every parked connection
/// holds one).
struct Slot(Arc<Semaphore>);

impl Slot {
    /// A place, if the limit leaves one.
    fn take(permits: &Arc<Semaphore>) -> Option<Slot> {
        permits.try_acquire().ok()?.forget();
        Some(Slot(permits.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

#[cfg(test)]
mod tests {
    /// A socket accepted from a listener made by `bind` has `TCP_NODELAY`, also when its
    /// client connected before anything else was done with the listener.
    #[tokio::test]
    async fn accepted_sockets_have_nodelay() {
        let listener = super::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let address = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        assert_eq!(
            super::inherits_nodelay(&listener),
            cfg!(target_os = "linux")
        );
        let (accepted, _) = listener.accept().await.expect("accept");
        if cfg!(target_os = "linux") {
            assert!(accepted.nodelay().expect("TCP_NODELAY"), "not inherited");
        }
    }

    /// A connection's slot under the limit is one word: every parked connection holds one,
    /// and `Resting` fits its 256-byte allocation only so (tokio's permit takes two).
    #[test]
    fn a_slot_is_one_word() {
        assert_eq!(
            std::mem::size_of::<super::Slot>(),
            std::mem::size_of::<usize>()
        );
    }
}
