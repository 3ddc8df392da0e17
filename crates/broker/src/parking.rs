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
use std::task::{Wake, Waker};
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
    /// Keep-alive deadlines of parked connections; stale entries are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, Key)>>,
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

/// Wakes a parked connection from its mailbox.
struct SlotWaker {
    parking: Arc<Parking>,
    key: Key,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.parking.lock().woken.push(self.key);
        self.parking.wake.notify_one();
    }
}

impl Parking {
    /// A parking and the epoll instance its task (see [`run`]) watches.
    pub fn new() -> std::io::Result<(Arc<Parking>, mio::Poll)> {
        let poll = mio::Poll::new()?;
        let parking = Parking {
            registry: poll.registry().try_clone()?,
            slots: Mutex::default(),
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
            self.lock().deadlines.push(Reverse((deadline, key)));
            self.wake.notify_one();
        }
        let waker = Waker::from(Arc::new(SlotWaker {
            parking: self.clone(),
            key,
        }));
        // Something came between the link's last look and now: go back at once. (A signal
        // sets its bits before it looks for a waker, so one that missed this waker is seen
        // here.)
        if mailbox.park(&waker) || mailbox.signals() & !signal::PARK != 0 {
            self.resume(key);
        }
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
        let (woken, due, next) = {
            let mut slots = self.lock();
            let woken = std::mem::take(&mut slots.woken);
            let mut due = Vec::new();
            while let Some(Reverse((deadline, key))) = slots.deadlines.peek().copied() {
                if deadline > now {
                    break;
                }
                slots.deadlines.pop();
                due.push(key);
            }
            let next = slots
                .deadlines
                .peek()
                .map(|Reverse((deadline, _))| *deadline);
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
