//! The accept loop of one TCP listener.
//!
//! Each accepted socket gets its own task at once; the CONNECT handshake runs inside it, under
//! the connect timeout, so a slow client never holds up the loop. A semaphore bounds open
//! connections: past the limit a socket is closed as soon as it is accepted. Accept errors
//! (such as running out of file descriptors) back off instead of spinning. Every socket has
//! Nagle's algorithm off (`TCP_NODELAY`): MQTT packets are small and answered at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
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
    let inherited = inherit_nodelay(&listener);
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

/// Sets `TCP_NODELAY` on the listening socket; true where the sockets it accepts inherit
/// it (Linux), which saves a system call on every connection.
fn inherit_nodelay(listener: &TcpListener) -> bool {
    cfg!(target_os = "linux") && rustix::net::sockopt::set_tcp_nodelay(listener, true).is_ok()
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
    /// A socket accepted from a listener with `TCP_NODELAY` has it too, without its own
    /// system call (on Linux).
    #[tokio::test]
    async fn accepted_sockets_inherit_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        assert_eq!(super::inherit_nodelay(&listener), cfg!(target_os = "linux"));
        let address = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        if cfg!(target_os = "linux") {
            assert!(accepted.nodelay().expect("TCP_NODELAY"), "not inherited");
        }
    }
}
