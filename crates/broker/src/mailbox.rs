//! [`Mailbox`]: the bounded queue of deliveries waiting for one session.
//!
//! Publishers push, the session's connection task pops. The queue outlives connections: a
//! persistent session keeps its mailbox in the registry while its client is away.
//!
//! Overflow policy, when a push would exceed `max_queued_messages` or `max_queued_bytes`:
//! a QoS 1/2 delivery first evicts the oldest queued QoS 0 delivery, if there is one.
//! Otherwise, while the client is online, [`Mailbox::try_push`] gives the delivery back
//! and the publisher waits for room ([`Mailbox::wait_for_room`]): its acknowledgement waits
//! with it and its connection is not read, so a slow subscriber slows publishers down
//! instead of losing what they were told was delivered, and a flood is not accepted only to
//! be thrown away. While the client is offline, or once a publisher waited
//! `limits.publish_wait` seconds without the subscriber taking anything, the delivery is
//! dropped. Every drop is counted. While the client is offline QoS 0 deliveries are not
//! queued at all (as mosquitto does by default).
//!
//! The mailbox of a persistent session logs every QoS 1/2 delivery it queues to the store,
//! under its lock, so the store sees a delivery queued before anyone can complete it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use tern_codec::QoS;
use tokio::sync::Notify;

use crate::message::Delivery;
use crate::parking::Ticket;
use crate::store::{Op, SessionStore};

/// Bounds of one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Most deliveries queued.
    pub max_messages: usize,
    /// Most payload and topic bytes queued.
    pub max_bytes: usize,
}

/// What became of a pushed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued after evicting an older QoS 0 delivery, which is lost.
    QueuedEvicting,
    /// Not queued: the queue is full (or the client offline and the delivery QoS 0).
    Dropped,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Delivery>,
    bytes: usize,
    online: bool,
    /// Who waits for the next delivery or signal, while someone does.
    waiter: Option<Waiter>,
    /// Set when there was something to wake the consumer for while it was not waiting.
    permit: bool,
    /// Wakes publishers waiting for room; made when one first waits (most mailboxes never
    /// fill, and every connection has a mailbox).
    room: Option<Arc<Notify>>,
}

impl Queue {
    /// Wakes the consumer and leaves a permit for its next [`Mailbox::park`]: whoever
    /// parks next (the connection, or the parking taking its place) learns that something
    /// came since the last look. The waiter is returned, to be woken once the lock is
    /// released.
    fn wake(&mut self) -> Option<Waiter> {
        self.permit = true;
        self.waiter.take()
    }
}

/// The consumer waiting for a mailbox: its connection's task, or the parking holding the
/// connection in its place (which costs no allocation, where a waker would).
#[derive(Debug)]
enum Waiter {
    Task(Waker),
    Parked(Ticket),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Task(waker) => waker.wake(),
            Waiter::Parked(ticket) => ticket.wake(),
        }
    }
}

/// Where a persistent session's deliveries are stored.
#[derive(Debug)]
struct Journal {
    session: SessionStore,
    /// Position of the next stored delivery in the session's stored queue (changed only
    /// under the queue's lock).
    next_seq: AtomicU64,
}

/// Signals for the connection that consumes a mailbox (see [`Mailbox::signal`]).
pub mod signal {
    /// Another connection took the session over [MQTT-3.1.4-3].
    pub const TAKEN_OVER: u8 = 1;
    /// The broker is shutting down.
    pub const SHUTDOWN: u8 = 2;
    /// The connection was idle for a whole sweep: it may park (see [`crate::parking`]).
    pub const PARK: u8 = 4;
}

/// [`Mailbox::touch`] was called since the last [`Mailbox::sweep`].
const ACTIVE: u8 = 1;
/// The connection is parked.
const PARKED: u8 = 2;

/// A session's bounded queue of deliveries, with a wake-up for its connection task.
///
/// The connection waits by leaving its waker here ([`Mailbox::park`]): a delivery into an
/// empty queue or a [`signal`] wakes it. An idle connection thus waits for its mailbox
/// without a stored future.
#[derive(Debug, Default)]
pub struct Mailbox {
    queue: Mutex<Queue>,
    /// [`signal`] bits for the connection, cleared when a connection claims the session.
    signals: AtomicU8,
    /// Whether the connection was active since the last sweep, or is parked.
    activity: AtomicU8,
    /// Mirrors `Queue::online` for readers that must not take the lock (shared groups).
    online: AtomicBool,
    /// The store, for a persistent session's mailbox (boxed: most sessions have none, and
    /// every connection has a mailbox).
    journal: Option<Box<Journal>>,
    /// Set while a publisher waits for room, so that consumers only notify then.
    waiting: AtomicBool,
    /// Set when a publisher gave up waiting for room: until the consumer takes something,
    /// deliveries that find the queue full are dropped at once.
    stalled: AtomicBool,
}

impl Mailbox {
    /// An empty mailbox whose client is online.
    pub fn new() -> Self {
        let mailbox = Mailbox {
            activity: AtomicU8::new(ACTIVE),
            ..Mailbox::default()
        };
        mailbox.set_online(true);
        mailbox
    }

    /// An empty mailbox of a persistent session, whose QoS 1/2 deliveries are stored.
    pub fn persistent(journal: SessionStore) -> Self {
        Mailbox {
            journal: Some(Box::new(Journal {
                session: journal,
                next_seq: AtomicU64::new(0),
            })),
            ..Mailbox::new()
        }
    }

    /// The mailbox of a persistent session read back from the store, offline, holding
    /// `deliveries` (already stored) in order; new ones are stored from `next_seq` on.
    pub fn restored(journal: SessionStore, deliveries: Vec<Delivery>, next_seq: u64) -> Self {
        let mailbox = Mailbox::persistent(journal);
        {
            let mut q = mailbox.lock();
            q.bytes = deliveries.iter().map(Delivery::size).sum();
            q.items = deliveries.into();
        }
        if let Some(journal) = &mailbox.journal {
            journal.next_seq.store(next_seq, Ordering::Relaxed);
        }
        mailbox.set_online(false);
        mailbox
    }

    /// Where a persistent session is stored, if the broker has a store.
    pub fn journal(&self) -> Option<&SessionStore> {
        self.journal.as_ref().map(|journal| &journal.session)
    }

    /// Whether QoS 1/2 deliveries pushed here are stored (the session is persistent and the
    /// broker has a store).
    pub fn is_persistent(&self) -> bool {
        self.journal.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // mutation is a single push or pop), so a poisoned lock is used as it is.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a delivery under `limits` and wakes the consumer; a full queue drops it.
    pub fn push(&self, delivery: Delivery, limits: QueueLimits) -> Pushed {
        self.try_push(delivery, limits).unwrap_or(Pushed::Dropped)
    }

    /// Queues a delivery under `limits` and wakes the consumer. A delivery that finds the
    /// queue of an online client full (and no QoS 0 delivery to evict, for QoS 1/2) is
    /// given back (`Err`): the caller waits for room and tries again, or drops it.
    pub fn try_push(
        &self,
        mut delivery: Delivery,
        limits: QueueLimits,
    ) -> Result<Pushed, Delivery> {
        let mut q = self.lock();
        if !q.online && delivery.qos == QoS::AtMostOnce {
            return Ok(Pushed::Dropped);
        }
        let size = delivery.size();
        let mut outcome = Pushed::Queued;
        if q.items.len() >= limits.max_messages || q.bytes + size > limits.max_bytes {
            let stalled = self.stalled.load(Ordering::Relaxed);
            if delivery.qos == QoS::AtMostOnce {
                if stalled || size > limits.max_bytes {
                    return Ok(Pushed::Dropped);
                }
                self.waiting.store(true, Ordering::SeqCst);
                return Err(delivery);
            }
            match q.items.iter().position(|d| d.qos == QoS::AtMostOnce) {
                Some(pos) if q.bytes - q.items[pos].size() + size <= limits.max_bytes => {
                    if let Some(evicted) = q.items.remove(pos) {
                        q.bytes -= evicted.size();
                    }
                    outcome = Pushed::QueuedEvicting;
                }
                // Larger than the whole byte limit: it can never fit.
                _ if size > limits.max_bytes || !q.online || stalled => return Ok(Pushed::Dropped),
                _ => {
                    self.waiting.store(true, Ordering::SeqCst);
                    return Err(delivery);
                }
            }
        }
        if let (Some(journal), false) = (&self.journal, delivery.qos == QoS::AtMostOnce) {
            // Under the queue's lock: the store sees deliveries in the queue's order.
            let seq = journal.next_seq.fetch_add(1, Ordering::Relaxed);
            delivery.stored = Some(seq);
            journal.session.log(Op::Enqueue {
                uid: journal.session.uid,
                seq,
                delivery: delivery.clone(),
                stage: crate::store::EntryStage::Queued,
            });
        }
        q.bytes += size;
        let was_empty = q.items.is_empty();
        q.items.push_back(delivery);
        let waiter = if was_empty { q.wake() } else { None };
        drop(q);
        // The consumer takes all it has room for whenever it wakes, and sleeps with
        // deliveries queued only while its in-flight window or write buffer is full (an
        // acknowledgement or a finished write wakes it then): only the delivery into an
        // empty queue needs to wake it (a permit is kept if it is not waiting yet). Waking
        // it for every delivery cost a cross-thread wake-up per message in fan-out.
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        Ok(outcome)
    }

    /// Waits until a consumer has taken something since the last full [`try_push`]
    /// (or at most `limit`): then a retry may succeed.
    ///
    /// [`try_push`]: Mailbox::try_push
    pub async fn wait_for_room(&self, limit: std::time::Duration) {
        let room = self.lock().room.get_or_insert_with(Arc::default).clone();
        let notified = room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        self.waiting.store(true, Ordering::SeqCst);
        let full = {
            let q = self.lock();
            q.online && !q.items.is_empty()
        };
        if full {
            let _ = tokio::time::timeout(limit, notified).await;
        }
    }

    /// Marks the consumer as stuck: a publisher waited `limits.publish_wait` for room in
    /// vain. Full-queue deliveries are dropped until the consumer takes something.
    pub fn mark_stalled(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// Wakes publishers waiting for room, if any.
    fn made_room(&self) {
        self.stalled.store(false, Ordering::Relaxed);
        if self.waiting.swap(false, Ordering::SeqCst) {
            let room = self.lock().room.clone();
            if let Some(room) = room {
                room.notify_waiters();
            }
        }
    }

    /// Takes the oldest delivery.
    pub fn pop(&self) -> Option<Delivery> {
        let mut q = self.lock();
        let delivery = q.items.pop_front()?;
        q.bytes -= delivery.size();
        drop(q);
        self.made_room();
        Some(delivery)
    }

    /// Moves up to `max` deliveries into `out`, oldest first, under one lock.
    pub fn pop_into(&self, max: usize, out: &mut Vec<Delivery>) {
        let mut guard = self.lock();
        let q = &mut *guard;
        let n = max.min(q.items.len());
        out.reserve(n);
        for delivery in q.items.drain(..n) {
            q.bytes -= delivery.size();
            out.push(delivery);
        }
        drop(guard);
        if n > 0 {
            self.made_room();
        }
    }

    /// Takes the oldest delivery only if it is QoS 0.
    pub fn pop_qos0(&self) -> Option<Delivery> {
        let mut q = self.lock();
        if q.items.front()?.qos != QoS::AtMostOnce {
            return None;
        }
        let delivery = q.items.pop_front()?;
        q.bytes -= delivery.size();
        drop(q);
        self.made_room();
        Some(delivery)
    }

    /// Number of queued deliveries.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the client online (QoS 0 queued) or offline (QoS 0 dropped, and those
    /// already queued discarded).
    pub fn set_online(&self, online: bool) {
        let mut q = self.lock();
        q.online = online;
        self.online.store(online, Ordering::Relaxed);
        if !online {
            q.items.retain(|d| d.qos != QoS::AtMostOnce);
            q.bytes = q.items.iter().map(Delivery::size).sum();
        }
        drop(q);
        // Publishers waiting for an online client's queue now drop what does not fit.
        self.made_room();
    }

    /// Whether the session's client is connected.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// Takes every queued delivery.
    pub fn drain(&self) -> Vec<Delivery> {
        let mut q = self.lock();
        q.bytes = 0;
        let items = q.items.drain(..).collect();
        drop(q);
        self.made_room();
        items
    }

    /// Leaves `waker` to be woken by the next delivery into an empty queue or the next
    /// signal. Returns true instead, without waiting, if one came since the last `park`.
    pub fn park(&self, waker: &Waker) -> bool {
        let mut q = self.lock();
        if std::mem::take(&mut q.permit) {
            return true;
        }
        match &mut q.waiter {
            Some(Waiter::Task(parked)) => parked.clone_from(waker),
            other => *other = Some(Waiter::Task(waker.clone())),
        }
        false
    }

    /// As [`Mailbox::park`], for the parking in the place of the connection's task: the
    /// ticket is handed back, without waiting, if something came since the last `park`.
    pub(crate) fn park_ticket(&self, ticket: Ticket) -> Result<(), Ticket> {
        let mut q = self.lock();
        if std::mem::take(&mut q.permit) {
            return Err(ticket);
        }
        q.waiter = Some(Waiter::Parked(ticket));
        Ok(())
    }

    /// Sets `bits` (from [`signal`]) for the consuming connection and wakes it.
    pub fn signal(&self, bits: u8) {
        self.signals.fetch_or(bits, Ordering::SeqCst);
        // A permit only if nobody waits: the bits themselves tell the next one to look.
        let waiter = {
            let mut q = self.lock();
            let waiter = q.waiter.take();
            q.permit |= waiter.is_none();
            waiter
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// The [`signal`] bits set for the consuming connection.
    pub fn signals(&self) -> u8 {
        self.signals.load(Ordering::SeqCst)
    }

    /// Clears signal `bits` the connection has handled.
    pub fn clear_signal(&self, bits: u8) {
        self.signals.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Notes that the connection is running (and not parked).
    pub fn touch(&self) {
        if self.activity.load(Ordering::Relaxed) != ACTIVE {
            self.activity.store(ACTIVE, Ordering::Relaxed);
        }
    }

    /// Notes that the connection is parked.
    pub fn set_parked(&self) {
        self.activity.store(PARKED, Ordering::Relaxed);
    }

    /// For the idle sweep: true if the connection neither ran since the last sweep nor is
    /// parked; starts the next period.
    pub fn sweep(&self) -> bool {
        match self.activity.load(Ordering::Relaxed) {
            0 => true,
            ACTIVE => {
                let _ =
                    self.activity
                        .compare_exchange(ACTIVE, 0, Ordering::Relaxed, Ordering::Relaxed);
                false
            }
            _ => false,
        }
    }

    /// Clears the signals and the waker of a previous connection, for a connection that
    /// claims the session.
    pub fn reset_signals(&self) {
        self.signals.store(0, Ordering::SeqCst);
        self.activity.store(ACTIVE, Ordering::Relaxed);
        let mut q = self.lock();
        q.waiter = None;
        q.permit = false;
    }
}

#[cfg(test)]
mod tests;
