//! [`Link`]: a connection between its handshake and its end, as one hand-written future.
//!
//! Each time it is polled it does all the work it can: reads and decodes what the socket
//! has, pulls deliveries from the mailbox while the window has room, carries out the
//! session's actions and writes what they produced. When nothing more can be done it
//! leaves its waker where the next event will find it: with the socket (tokio's
//! registration, by polling the read and the write), with the mailbox
//! ([`Mailbox::park`](crate::mailbox::Mailbox::park): deliveries, takeover and shutdown
//! signals), with the keep alive timer, and with the store or a full queue when it waits
//! for one. None of these waits is a stored future, and an idle connection holds no buffer,
//! so an idle connection costs little more than its session. When it has nothing to do after
//! its CONNACK, or the idle sweep signals it, it asks its task to hand it to the
//! [parking](crate::parking) instead of waiting (`park`), and costs less still.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::steps::{work, Connection, WRITE_HIGH_WATER};
use super::End;
use crate::clock::now;
use crate::mailbox::signal;
use crate::metrics::Metrics;
use crate::outbox::Opened;
use crate::session::Session;

/// Read buffer growth step at first.
const READ_CHUNK: usize = 4096;
/// The largest growth step. Reads that fill the buffer double the step up to this, so that a
/// client streaming large messages is read in few system calls (a 1 KiB publisher with 64
/// messages in flight: 64 KiB a read rather than 4).
const READ_CHUNK_MAX: usize = 64 * 1024;
/// A read this small that leaves nothing undecoded gives the read buffer back: an idle
/// connection holds no buffer between its packets (a busy one keeps its buffer).
const SMALL_READ: usize = 256;
/// Reads without a buffer go through this much stack.
const STACK_READ: usize = 512;
/// Rounds of work in one poll before the task yields to others.
const ROUNDS: usize = 32;

/// A connection whose CONNECT was accepted, from its CONNACK to its end.
pub(super) struct Link<S, H> {
    /// The socket; taken out while the connection is parked.
    pub(super) stream: Option<S>,
    pub(super) conn: Connection,
    pub(super) session: Session,
    /// Set once the bytes that came with the CONNECT were decoded.
    started: bool,
    /// Set when bytes were written since the stream was last flushed.
    unflushed: bool,
    /// Set when the link returned `Pending` to be parked rather than to wait in its task.
    pub(super) park: bool,
    /// Set until the first time the link has nothing to do: a connection that says nothing
    /// after its CONNACK parks then, without waiting for a sweep.
    fresh: bool,
    /// The keep alive timer. It is not moved on each packet: when it fires early it is
    /// set again to the session's deadline.
    keep_alive: Option<Pin<Box<Sleep>>>,
    /// The connection's number in the registry.
    pub(super) connection: u64,
    /// Held for the connection's life (its slot under the connection limit).
    pub(super) held: H,
}

impl<S, H> Link<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// A link over `stream` whose handshake left `rbuf` undecoded.
    pub(super) fn new(
        stream: S,
        rbuf: BytesMut,
        session: Session,
        mut conn: Connection,
        connection: u64,
        held: H,
    ) -> Self {
        // The handshake's buffer is kept only if it holds bytes.
        if !rbuf.is_empty() {
            work(&mut conn.work).rbuf = rbuf;
        }
        Link {
            stream: Some(stream),
            conn,
            session,
            started: false,
            unflushed: false,
            park: false,
            fresh: true,
            keep_alive: None,
            connection,
            held,
        }
    }

    /// A parked link resumed over `stream` (`None`: its socket failed on the way back),
    /// with `conn` holding no work.
    pub(super) fn resumed(
        stream: Option<S>,
        conn: Connection,
        session: Session,
        connection: u64,
        held: H,
    ) -> Self {
        Link {
            stream,
            conn,
            session,
            started: true,
            unflushed: false,
            park: false,
            fresh: false,
            keep_alive: None,
            connection,
            held,
        }
    }

    /// Does all the work there is; `Ready` with the reason the connection ends, or
    /// `Pending` with the waker left with everything that can bring more.
    fn poll_link(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let max_packet_size = self.conn.hub.config.limits.max_packet_size as usize;
        self.session.state().mailbox.touch();
        if !self.started {
            self.started = true;
            // Packets that arrived together with the CONNECT.
            if let Err(end) = self.decode(max_packet_size) {
                return Poll::Ready(end);
            }
        }
        for _ in 0..ROUNDS {
            let signals = self.session.state().mailbox.signals();
            if signals & signal::TAKEN_OVER != 0 {
                return Poll::Ready(End::TakenOver);
            }
            if signals & signal::SHUTDOWN != 0 {
                return Poll::Ready(End::Shutdown);
            }
            if let Some(end) = self.conn.step(&mut self.session) {
                return Poll::Ready(end);
            }
            let mut progress = false;
            match self.poll_write(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(End::Socket(Some(e))),
                Poll::Ready(Ok(())) => progress = true,
                Poll::Pending => {}
            }
            if let Some(work) = self.conn.work.as_mut() {
                if work.out.waits_for_store() {
                    match work.out.poll_opened(cx) {
                        Poll::Ready(Opened::StoreFailed) => return Poll::Ready(End::Store),
                        Poll::Ready(Opened::Open) => progress = true,
                        Poll::Pending => {}
                    }
                }
            }
            // A publisher whose messages wait for room is not read: that is the back
            // pressure a full subscriber queue puts on it.
            let can_read = self.conn.pending_out() < WRITE_HIGH_WATER && !self.conn.is_waiting();
            if can_read {
                match self.poll_read(cx) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(End::Socket(None)),
                    Poll::Ready(Ok(n)) => {
                        if let Err(end) = self.decode(max_packet_size) {
                            return Poll::Ready(end);
                        }
                        self.release_read_buffer(n);
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(End::Socket(Some(e))),
                    Poll::Pending => {}
                }
            }
            progress |= self.poll_room(cx);
            if !progress && (signals & signal::PARK != 0 || std::mem::take(&mut self.fresh)) {
                self.session.state().mailbox.clear_signal(signal::PARK);
                self.conn.rest();
                if self.may_park() {
                    // The caller parks it; the mailbox gets the parking's waker instead.
                    self.park = true;
                    self.keep_alive = None;
                    return Poll::Pending;
                }
            }
            // The timer is looked at only before waiting: a connection that parks at once
            // never makes one.
            if !progress {
                progress = self.poll_keep_alive(cx);
            }
            if !progress
                && self.conn.pending_out() < WRITE_HIGH_WATER
                && self.session.state().mailbox.park(cx.waker())
            {
                progress = true;
            }
            if !progress {
                self.conn.rest();
                return Poll::Pending;
            }
        }
        // Busy: let other connections run, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Whether the connection holds nothing but its session, so that it can wait parked.
    fn may_park(&self) -> bool {
        self.conn.hub.parking.is_some()
            && self.conn.work.is_none()
            && !self.unflushed
            && self.started
            && !self.session.is_closed()
            && !self.session.has_actions()
    }

    /// Decodes every complete packet read into the session.
    fn decode(&mut self, max_packet_size: usize) -> Result<(), End> {
        let Some(state) = self.conn.work.as_mut() else {
            return Ok(());
        };
        let mut rbuf = std::mem::take(&mut state.rbuf);
        let decoded = self
            .conn
            .decode_all(&mut rbuf, &mut self.session, max_packet_size);
        work(&mut self.conn.work).rbuf = rbuf;
        decoded
    }

    /// Writes what is ready to go. `Ready(Ok)` when it wrote something.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let (Some(work), Some(stream)) = (self.conn.work.as_mut(), self.stream.as_mut()) else {
            return Poll::Pending;
        };
        if work.sending.is_empty() {
            work.sending = work.out.take_writable();
        }
        let mut wrote = false;
        while !work.sending.is_empty() {
            match Pin::new(&mut *stream).poll_write(cx, &work.sending) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    work.sending.advance(n);
                    Metrics::add(&self.conn.hub.metrics.bytes_sent, n as u64);
                    wrote = true;
                    self.unflushed = true;
                    if work.sending.is_empty() {
                        work.sending = work.out.take_writable();
                        if work.sending.is_empty() {
                            // All written: an idle connection keeps no write buffer.
                            work.sending = BytesMut::new();
                            work.out.release_if_empty();
                        }
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if work.sending.is_empty() && self.unflushed {
            // A TLS or WebSocket stream may hold bytes until flushed; TCP holds none.
            match Pin::new(&mut *stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if wrote {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// Reads once into the read buffer. A connection without a buffer reads into the
    /// stack and allocates only for what came.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Pending;
        };
        let has_buffer = self
            .conn
            .work
            .as_ref()
            .is_some_and(|work| work.rbuf.capacity() > 0);
        let n = if !has_buffer {
            let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
            let mut buf = ReadBuf::uninit(&mut stack);
            std::task::ready!(Pin::new(&mut *stream).poll_read(cx, &mut buf))?;
            let filled = buf.filled();
            if !filled.is_empty() {
                let work = work(&mut self.conn.work);
                work.read_more = filled.len() == STACK_READ;
                if work.read_more {
                    work.rbuf.reserve(READ_CHUNK);
                }
                work.rbuf.extend_from_slice(filled);
            }
            filled.len()
        } else {
            let work = work(&mut self.conn.work);
            let chunk = work.read_chunk.max(READ_CHUNK);
            let rbuf = &mut work.rbuf;
            // The buffer grows while reads fill it or a packet is partly read.
            if rbuf.capacity() - rbuf.len() < chunk / 4 {
                rbuf.reserve(chunk);
            }
            let n = std::task::ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut *stream),
                cx,
                rbuf
            ))?;
            work.read_more = n > 0 && rbuf.len() == rbuf.capacity();
            if work.read_more {
                work.read_chunk = (chunk * 2).min(READ_CHUNK_MAX);
            }
            n
        };
        Metrics::add(&self.conn.hub.metrics.bytes_received, n as u64);
        Poll::Ready(Ok(n))
    }

    /// Called after the read bytes were decoded: gives back a buffer a small read left
    /// empty, and a grown one that a read used less than a quarter of (the next read
    /// allocates half the step).
    fn release_read_buffer(&mut self, n: usize) {
        if let Some(work) = self.conn.work.as_mut() {
            if !work.rbuf.is_empty() || work.read_more {
                return;
            }
            if n < SMALL_READ {
                work.rbuf = BytesMut::new();
                work.read_chunk = READ_CHUNK;
            } else if work.read_chunk > READ_CHUNK && n < work.read_chunk / 4 {
                work.rbuf = BytesMut::new();
                work.read_chunk /= 2;
            }
        }
    }

    /// Waits for room in the full queue the first waiting delivery is for. True when the
    /// wait ended (the queue may have room).
    fn poll_room(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(work) = self.conn.work.as_mut() else {
            return false;
        };
        let Some((mailbox, _)) = work.waiting.front() else {
            work.room = None;
            return false;
        };
        let room = work.room.get_or_insert_with(|| {
            let mailbox = mailbox.clone();
            Box::pin(async move {
                mailbox
                    .wait_for_room(std::time::Duration::from_millis(100))
                    .await;
            })
        });
        match room.as_mut().poll(cx) {
            Poll::Ready(()) => {
                work.room = None;
                true
            }
            Poll::Pending => false,
        }
    }

    /// Runs the keep alive timer. True when it fired and the session was told.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.session.next_timeout() else {
            self.keep_alive = None;
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        let timer = self
            .keep_alive
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if now() >= deadline.into_std() {
                self.keep_alive = None;
                self.session.handle_timeout(now());
                return true;
            }
            // Packets came since it was set: set it again, to the deadline they moved.
            timer.as_mut().reset(deadline);
        }
    }
}

impl<S, H> Future for Link<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Unpin,
{
    type Output = End;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End> {
        self.get_mut().poll_link(cx)
    }
}
