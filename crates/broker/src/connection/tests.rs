//! The connection task's sizes, and how it reads.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

use super::Transport;
use crate::config::Config;
use crate::hub::Hub;

/// Every connection is one task, and tokio rounds a task up to 128 bytes at a time: the
/// future stays a few words for the task to stay at 128 (its phases are boxed).
#[tokio::test]
async fn a_connection_task_is_small() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let _client = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (stream, peer) = listener.accept().await.expect("accept");
    let hub = Arc::new(Hub::new(Config::default()));
    let task = super::serve(stream, peer, hub, ());
    let size = std::mem::size_of_val(&task);
    // 2,080 bytes before the phases were boxed (4,400 before that); docs/PERFORMANCE.md
    // has the whole per-connection figure.
    assert!(size <= 24, "a connection's task takes {size} bytes");
}

/// A running connection's link and its session, in its task.
#[test]
fn an_idle_link_is_small() {
    let size = std::mem::size_of::<super::Link<tokio::net::TcpStream, ()>>();
    // 832 bytes before the work state, the topic aliases and re-authentication were
    // boxed, and the peer address and a second copy of the problem settings dropped;
    // 336 when written.
    assert!(size <= 344, "a link takes {size} bytes");
}

/// What a parked connection keeps besides its mailbox and its place in the parking:
/// its session, and what its link gets back. glibc serves 248 bytes from a 256-byte
/// chunk and 249 from a 272-byte one, so every byte past 248 costs 16 per parked
/// connection. docs/PERFORMANCE.md has the whole figure.
#[test]
fn a_resting_link_fits_a_256_byte_chunk() {
    // What the TCP listener holds for a connection: its slot under the limit and the
    // tracker's token, a word each.
    type Held = (Arc<()>, Arc<()>);
    let size = std::mem::size_of::<super::Resting<tokio::net::TcpStream, Held>>();
    // 320 bytes (the whole link, in a 336-byte chunk) before it had its own type.
    assert!(size <= 248, "a resting link takes {size} bytes");
}

/// A client's end of an in-memory stream that counts the reads which returned bytes.
struct Counted {
    inner: DuplexStream,
    reads: Arc<AtomicUsize>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Never parked: the hub of these tests has no parking.
impl Transport for Counted {
    fn into_std(self) -> std::io::Result<std::net::TcpStream> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn from_std(_: std::net::TcpStream) -> std::io::Result<Self> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(([127, 0, 0, 1], 1883).into())
    }
}

/// A client that streams large messages is read in few system calls: each read that fills
/// the buffer doubles its growth step, up to 64 KiB. 256 PUBLISHes of 1 KiB waiting at once
/// took 257 reads with the fixed 4 KiB step (the buffer grew only when under 1 KiB was free,
/// so with a part of a packet at its end each read brought about one packet); now 9.
#[tokio::test]
async fn a_streaming_client_is_read_in_growing_chunks() {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let reads = Arc::new(AtomicUsize::new(0));
    let stream = Counted {
        inner: server,
        reads: reads.clone(),
    };
    // CONNECT (3.1.1, clean session, keep alive 60 s, client "a"), 256 QoS 0 PUBLISHes to
    // "t" with 1,024-byte payloads, and a PINGREQ whose answer says all was read.
    let mut bytes = vec![
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'a',
    ];
    for _ in 0..256 {
        // Remaining length 2 + 1 + 1,024 = 1,027: 0x83 0x08 as a variable byte integer.
        bytes.extend_from_slice(&[0x30, 0x83, 0x08, 0, 1, b't']);
        bytes.extend_from_slice(&[0; 1024]);
    }
    bytes.extend_from_slice(&[0xC0, 0]);
    client.write_all(&bytes).await.expect("write");

    let hub = Arc::new(Hub::new(Config::default()));
    tokio::spawn(super::serve(stream, ([127, 0, 0, 1], 1883).into(), hub, ()));
    let mut answer = [0; 6];
    client
        .read_exact(&mut answer)
        .await
        .expect("CONNACK and PINGRESP");
    assert_eq!(answer, [0x20, 2, 0, 0, 0xD0, 0], "CONNACK, then PINGRESP");

    let reads = reads.load(Ordering::Relaxed);
    assert!(
        reads <= 12,
        "{} bytes took {reads} reads (257 with a fixed 4 KiB step)",
        bytes.len()
    );
}
