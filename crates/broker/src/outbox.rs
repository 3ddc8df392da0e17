//! [`Outbox`]: a connection's write buffer, whose tail may be held back behind gates.
//!
//! A connection works in steps (a read decoded, the mailbox pulled, timers handled); what a
//! step queues is sent as soon as the socket takes it, unless the step ends with a gate:
//!
//! - a **store gate**, when the step logged a change that its acknowledgements promise:
//!   everything from the start of the step on waits until the store's barrier says the
//!   change is durable;
//! - a **routing gate**, when a message the step routed could not yet be queued for a
//!   subscriber whose queue is full: everything from the start of the step on waits until
//!   it is (the publisher's PUBACK is among it), so a full queue slows the publisher down
//!   instead of losing what was acknowledged.
//!
//! Gates open in order; bytes before the first gate are writable.

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};
use tokio::sync::oneshot;

/// What a gate waits for.
#[derive(Debug)]
enum Wait {
    /// The store: `true` once durable.
    Store(oneshot::Receiver<bool>),
    /// Messages waiting for room in a subscriber's queue.
    Routing,
}

#[derive(Debug)]
struct Gate {
    /// Offset in the buffer where the held bytes start.
    from: usize,
    wait: Wait,
}

/// What the first gate's wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The gate opened.
    Open,
    /// The store could not make the change durable: the held bytes were discarded.
    StoreFailed,
}

/// A write buffer with gates.
#[derive(Debug, Default)]
pub struct Outbox {
    buf: BytesMut,
    gates: VecDeque<Gate>,
    /// Length of the buffer when the current step began.
    step_start: usize,
}

impl Outbox {
    /// An empty outbox with this initial capacity.
    pub fn with_capacity(capacity: usize) -> Self {
        Outbox {
            buf: BytesMut::with_capacity(capacity),
            gates: VecDeque::new(),
            step_start: 0,
        }
    }

    /// Frees the buffer when nothing is queued (the next packet allocates again).
    pub fn release_if_empty(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// The buffer, to encode packets into.
    pub fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes queued and not yet written, held or not.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is queued, held or allocated.
    pub fn is_idle(&self) -> bool {
        self.buf.capacity() == 0 && self.gates.is_empty()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes that may be written now: everything before the first gate.
    pub fn writable(&self) -> &[u8] {
        let end = self.gates.front().map_or(self.buf.len(), |g| g.from);
        &self.buf[..end]
    }

    /// Takes the writable bytes out (no copy), for the caller to write while more is
    /// queued here.
    pub fn take_writable(&mut self) -> BytesMut {
        let n = self.writable().len();
        let taken = self.buf.split_to(n);
        self.step_start -= n;
        for gate in &mut self.gates {
            gate.from -= n;
        }
        taken
    }

    /// Drops `n` written bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.step_start -= n;
        for gate in &mut self.gates {
            gate.from -= n;
        }
    }

    /// Ends a step: what it queued waits for `store` if given, and for routing if
    /// `routing` (unless a routing gate is already closed).
    pub fn end_step(&mut self, store: Option<oneshot::Receiver<bool>>, routing: bool) {
        let from = self.step_start;
        if let Some(barrier) = store {
            self.gates.push_back(Gate {
                from,
                wait: Wait::Store(barrier),
            });
        }
        if routing && !self.has_routing_gate() {
            self.gates.push_back(Gate {
                from,
                wait: Wait::Routing,
            });
        }
        self.step_start = self.buf.len();
    }

    fn has_routing_gate(&self) -> bool {
        self.gates.iter().any(|g| matches!(g.wait, Wait::Routing))
    }

    /// The routed messages are all queued: the routing gate becomes a store gate if their
    /// queuing has to be made durable (`store`), or goes.
    pub fn routed(&mut self, store: Option<oneshot::Receiver<bool>>) {
        let Some(i) = self
            .gates
            .iter()
            .position(|g| matches!(g.wait, Wait::Routing))
        else {
            return;
        };
        match store {
            Some(barrier) => self.gates[i].wait = Wait::Store(barrier),
            None => {
                self.gates.remove(i);
            }
        }
    }

    /// Whether a gate is waiting on the store (the routing gate opens by [`Outbox::routed`]).
    pub fn waits_for_store(&self) -> bool {
        matches!(
            self.gates.front(),
            Some(Gate {
                wait: Wait::Store(_),
                ..
            })
        )
    }

    /// Polls the first gate if it waits on the store, and opens it once the store answers;
    /// stays pending while the first gate waits for routing.
    pub fn poll_opened(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Opened> {
        let durable = match self.gates.front_mut() {
            Some(Gate {
                wait: Wait::Store(barrier),
                ..
            }) => std::task::ready!(std::future::Future::poll(std::pin::Pin::new(barrier), cx))
                .unwrap_or(false),
            _ => return std::task::Poll::Pending,
        };
        std::task::Poll::Ready(self.open_first(durable))
    }

    fn open_first(&mut self, durable: bool) -> Opened {
        let Some(gate) = self.gates.pop_front() else {
            return Opened::Open;
        };
        if durable {
            return Opened::Open;
        }
        self.buf.truncate(gate.from);
        self.step_start = self.buf.len();
        self.gates.clear();
        Opened::StoreFailed
    }

    /// On the way out: waits (at most `limit` each) for the store gates, drops a routing
    /// gate (its messages were queued by the caller), and leaves only what may be sent.
    pub async fn settle(&mut self, limit: std::time::Duration) {
        self.routed(None);
        while let Some(gate) = self.gates.front_mut() {
            let durable = match &mut gate.wait {
                Wait::Store(barrier) => tokio::time::timeout(limit, barrier)
                    .await
                    .is_ok_and(|r| r.unwrap_or(false)),
                Wait::Routing => true,
            };
            if self.open_first(durable) == Opened::StoreFailed {
                break;
            }
        }
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.gates.clear();
        self.step_start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox_with(bytes: &[u8]) -> Outbox {
        let mut outbox = Outbox::with_capacity(64);
        outbox.buf_mut().extend_from_slice(bytes);
        outbox
    }

    #[tokio::test]
    async fn a_store_gate_holds_the_step_until_durable() {
        let mut outbox = outbox_with(b"ab");
        outbox.end_step(None, false);
        outbox.buf_mut().extend_from_slice(b"cd");
        let (tx, rx) = oneshot::channel();
        outbox.end_step(Some(rx), false);
        assert_eq!(outbox.writable(), b"ab");
        outbox.consume(1);
        assert_eq!(outbox.writable(), b"b");
        tx.send(true).unwrap();
        assert_eq!(
            std::future::poll_fn(|cx| outbox.poll_opened(cx)).await,
            Opened::Open
        );
        assert_eq!(outbox.writable(), b"bcd");
    }

    #[tokio::test]
    async fn a_failed_store_discards_what_it_held() {
        let mut outbox = outbox_with(b"ab");
        outbox.end_step(None, false);
        outbox.buf_mut().extend_from_slice(b"cd");
        let (tx, rx) = oneshot::channel();
        outbox.end_step(Some(rx), false);
        drop(tx);
        assert_eq!(
            std::future::poll_fn(|cx| outbox.poll_opened(cx)).await,
            Opened::StoreFailed
        );
        assert_eq!(outbox.writable(), b"ab");
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn a_routing_gate_holds_until_routed_and_may_turn_into_a_store_gate() {
        let mut outbox = outbox_with(b"ab");
        outbox.end_step(None, false);
        outbox.buf_mut().extend_from_slice(b"cd");
        outbox.end_step(None, true);
        outbox.buf_mut().extend_from_slice(b"ef");
        outbox.end_step(None, true);
        assert_eq!(outbox.writable(), b"ab");
        assert!(!outbox.waits_for_store());
        let (_tx, rx) = oneshot::channel();
        outbox.routed(Some(rx));
        assert!(outbox.waits_for_store());
        assert_eq!(outbox.writable(), b"ab");
        let mut plain = outbox_with(b"ab");
        plain.end_step(None, true);
        plain.routed(None);
        assert_eq!(plain.writable(), b"ab");
    }
}
