//! [`Parking`]: where idle connections wait without a task.
//!
//! A connection that stayed idle through a whole sweep ([`Registry::park_idle`], every
//! `limits.park_idle_ms`) hands its socket and its link here: the socket leaves tokio's
//! reactor for one broker-wide epoll instance (a [`mio::Poll`], itself watched by the
//! parking's task through an [`AsyncFd`]), and the connection's task ends. The link is
//! resumed, its socket back in tokio and a new task spawned, when the socket is readable
//! (or closed), when its mailbox wakes it (a delivery, a takeover, the shutdown), or at its
//! keep-alive deadline. A parked connection costs its link and its session: no task, no
//! socket registration in tokio, no timer. Going in and out costs a few system calls, which
//! a connection idle for a sweep does not notice (EMQX hibernates idle connection processes
//! for the same reason).
//!
//! [`Registry::park_idle`]: crate::registry::Registry::park_idle

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::now;
use crate::hub::Hub;
use crate::mailbox::{signal, Mailbox};

/// Readiness events taken from the epoll instance at once.
const EVENTS: usize = 256;

/// A parked connection, resumed with its socket.
pub(crate) trait Parked: Send {
    /// Puts the socket back into tokio and runs the connection again.
    fn resume(self: Box<Self>, stream: std::net::TcpStream);
}

/// A slot's place and the generation of its occupant, so that a stale wake-up or deadline
/// for a slot used again since is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    fn token(self) -> mio::Token {
        mio::Token((u64::from(self.generation) << 32 | u64::from(self.index)) as usize)
    }

    fn of(token: mio::Token) -> Key {
        let token = token.0 as u64;
        Key {
            index: token as u32,
            generation: (token >> 32) as u32,
        }
    }
}

struct Slot {
    link: Box<dyn Parked>,
    stream: std::net::TcpStream,
    generation: u32,
}

#[derive(Default)]
struct Slots {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    generation: u32,
    parked: usize,
    /// Keep-alive deadlines of parked connections, in milliseconds from `epoch` (16 bytes
    /// an entry, where an `Instant` alone takes 16); stale entries are skipped.
    deadlines: BinaryHeap<Reverse<(u64, Key)>>,
    /// Slots whose mailbox woke them.
    woken: Vec<Key>,
}

impl Slots {
    fn insert(&mut self, link: Box<dyn Parked>, stream: std::net::TcpStream) -> Key {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let slot = Some(Slot {
            link,
            stream,
            generation,
        });
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.parked += 1;
        Key { index, generation }
    }

    fn take(&mut self, key: Key) -> Option<Slot> {
        let place = self.slots.get_mut(key.index as usize)?;
        if place.as_ref()?.generation != key.generation {
            return None;
        }
        let slot = place.take();
        self.free.push(key.index);
        self.parked -= 1;
        slot
    }
}

/// The broker's parked connections.
pub struct Parking {
    registry: mio::Registry,
    slots: Mutex<Slots>,
    /// Where deadlines are counted from.
    epoch: Instant,
    /// Wakes the parking's task: a mailbox woke a slot, or a deadline came first.
    wake: Notify,
}

impl std::fmt::Debug for Parking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parking")
            .field("parked", &self.len())
            .finish_non_exhaustive()
    }
}

/// What a parked connection leaves with its mailbox to be woken by: its slot in the
/// parking. (A [`std::task::Waker`] would cost an allocation for every parked connection.)
pub(crate) struct Ticket {
    parking: Arc<Parking>,
    key: Key,
}

impl Ticket {
    /// Resumes the connection (on the parking's task); nothing if it already left.
    pub(crate) fn wake(self) {
        self.parking.lock().woken.push(self.key);
        self.parking.wake.notify_one();
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("key", &self.key).finish()
    }
}

impl Parking {
    /// A parking and the epoll instance its task (see [`run`]) watches.
    pub fn new() -> std::io::Result<(Arc<Parking>, mio::Poll)> {
        let poll = mio::Poll::new()?;
        let parking = Parking {
            registry: poll.registry().try_clone()?,
            slots: Mutex::default(),
            epoch: now(),
            wake: Notify::new(),
        };
        Ok((Arc::new(parking), poll))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // Every change under this lock is a single insert or take: a panic cannot leave it
        // half done, so a poisoned lock is used as it is.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections parked now.
    pub fn len(&self) -> usize {
        self.lock().parked
    }

    /// True when no connection is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parks `link` with its socket until the socket is readable, `mailbox` wakes it or
    /// `deadline` passes.
    pub(crate) fn park(
        self: &Arc<Self>,
        link: Box<dyn Parked>,
        stream: std::net::TcpStream,
        mailbox: &Mailbox,
        deadline: Option<Instant>,
    ) {
        let fd = stream.as_raw_fd();
        let key = self.lock().insert(link, stream);
        // Registered after the slot exists: bytes that came before are reported at once.
        if let Err(e) =
            self.registry
                .register(&mut SourceFd(&fd), key.token(), mio::Interest::READABLE)
        {
            tracing::warn!("could not park an idle connection ({e}); it stays in its task");
            self.resume(key);
            return;
        }
        if let Some(deadline) = deadline {
            let at = self.millis(deadline);
            let mut slots = self.lock();
            // The task sleeps until the earliest deadline: it needs waking only for an
            // earlier one (keep-alive deadlines mostly come in order).
            let earlier = slots
                .deadlines
                .peek()
                .is_none_or(|Reverse((first, _))| at < *first);
            slots.deadlines.push(Reverse((at, key)));
            drop(slots);
            if earlier {
                self.wake.notify_one();
            }
        }
        let ticket = Ticket {
            parking: self.clone(),
            key,
        };
        // Something came between the link's last look and now: go back at once. (A signal
        // sets its bits before it looks for a waiter, so one that missed this ticket is seen
        // here.)
        if mailbox.park_ticket(ticket).is_err() || mailbox.signals() & !signal::PARK != 0 {
            self.resume(key);
        }
    }

    /// `at` in milliseconds from the parking's epoch, rounded up: a deadline is never
    /// resumed early.
    fn millis(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        let millis = since.as_millis() + u128::from(since.subsec_nanos() % 1_000_000 != 0);
        u64::try_from(millis).unwrap_or(u64::MAX)
    }

    /// Takes a slot out and runs its connection again (nothing if it already left).
    fn resume(&self, key: Key) {
        let Some(Slot { link, stream, .. }) = self.lock().take(key) else {
            return;
        };
        let _ = self.registry.deregister(&mut SourceFd(&stream.as_raw_fd()));
        link.resume(stream);
    }

    /// Resumes the slots whose mailbox woke them and those whose deadline passed; returns
    /// the next deadline.
    fn resume_due(&self, now: Instant) -> Option<Instant> {
        let now = now.saturating_duration_since(self.epoch).as_millis();
        let (woken, due, next) = {
            let mut slots = self.lock();
            let woken = std::mem::take(&mut slots.woken);
            let mut due = Vec::new();
            while let Some(Reverse((deadline, key))) = slots.deadlines.peek().copied() {
                if u128::from(deadline) > now {
                    break;
                }
                slots.deadlines.pop();
                due.push(key);
            }
            let next = slots
                .deadlines
                .peek()
                .map(|Reverse((deadline, _))| self.epoch + Duration::from_millis(*deadline));
            (woken, due, next)
        };
        for key in woken.into_iter().chain(due) {
            self.resume(key);
        }
        next
    }
}

/// The parking's task: resumes parked connections when their socket is readable, their
/// mailbox wakes them or their deadline passes, and every `limits.park_idle_ms` asks the
/// connections idle since the last time to park. Ends at shutdown, once no connection is
/// parked.
pub async fn run(
    hub: Arc<Hub>,
    parking: Arc<Parking>,
    poll: mio::Poll,
    shutdown: CancellationToken,
) {
    // `AsyncFd::with_interest` is deprecated because a `T` that hands out a descriptor it
    // does not own could have it closed while registered; `mio::Poll` owns its epoll
    // descriptor, which lives exactly as long as the `AsyncFd` (the safe replacement is an
    // `unsafe fn`, and this crate forbids unsafe code).
    #[allow(deprecated)]
    let registered = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE);
    let mut poll = match registered {
        Ok(poll) => poll,
        Err(e) => {
            tracing::warn!("idle connections are not parked: {e}");
            return;
        }
    };
    let mut events = mio::Events::with_capacity(EVENTS);
    let period = Duration::from_millis(hub.config.limits.park_idle_ms.max(1));
    let mut sweep = tokio::time::interval(period);
    let mut closing = false;
    let mut next: Option<Instant> = None;
    loop {
        let deadline = next.map(tokio::time::Instant::from_std);
        tokio::select! {
            ready = poll.readable_mut() => {
                let Ok(mut ready) = ready else { return };
                loop {
                    if ready.get_inner_mut().poll(&mut events, Some(Duration::ZERO)).is_err() {
                        break;
                    }
                    let taken: Vec<Key> = events.iter().map(|e| Key::of(e.token())).collect();
                    for key in &taken {
                        parking.resume(*key);
                    }
                    if taken.len() < EVENTS {
                        break;
                    }
                }
                ready.clear_ready();
            }
            _ = parking.wake.notified() => {}
            _ = sleep_until(deadline), if deadline.is_some() => {}
            _ = sweep.tick(), if !closing => hub.registry.park_idle(),
            _ = shutdown.cancelled(), if !closing => closing = true,
        }
        next = parking.resume_due(now());
        if closing && parking.is_empty() {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}
