//! The session registry: every session by client identifier, online or not.
//!
//! - A connection *claims* its client's session when its CONNECT is accepted. If another
//!   connection holds it, that one is told to close (session takeover, [MQTT-3.1.4-3]) and
//!   the claim waits until it has handed the session back.
//! - Clean Start discards any existing session [MQTT-3.1.2-4]; otherwise the existing one is
//!   resumed and Session Present is set [MQTT-3.2.2-2].
//! - A connection *releases* its session when it ends: a session whose expiry interval is 0
//!   ends with it, any other stays here, offline, until it expires [MQTT-4.1.0-2].
//! - A will with a Will Delay Interval waits here with the offline session. It is published
//!   when the delay passes or the session ends, whichever comes first, and dropped if a
//!   connection resumes the session before then [MQTT-3.1.2-26].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tern_codec::Will;
use tokio::sync::Notify;

use crate::mailbox::{signal, Mailbox};
use crate::session::SessionState;
use crate::store::{Op, SessionRecord, SessionStore, Store};

enum Entry {
    /// Held by `connection`, which is signalled through the session's mailbox.
    Online {
        connection: u64,
        mailbox: Arc<Mailbox>,
    },
    Offline(Box<Offline>),
}

/// A session whose client is away.
struct Offline {
    state: SessionState,
    expires_at: Option<Instant>,
    /// A will waiting for its Will Delay Interval, and when it is due.
    will: Option<(Will, Instant)>,
}

/// A session handed to a connection.
#[derive(Debug)]
pub struct Claim {
    /// The session to use.
    pub state: SessionState,
    /// True if an existing session was resumed.
    pub session_present: bool,
    /// A previous session that Clean Start discarded, for the caller to clean up.
    pub discarded: Option<SessionState>,
    /// The delayed will of a discarded session, due now that the session has ended.
    pub will: Option<Will>,
}

/// What a connection's end leaves to do.
#[derive(Debug, Default)]
pub struct Released {
    /// The session, if it ended with the connection, for the caller to clean up.
    pub ended: Option<SessionState>,
    /// A will to publish now.
    pub will: Option<Will>,
}

/// Offline sessions and delayed wills whose time has come.
#[derive(Debug, Default)]
pub struct Due {
    /// Sessions that expired.
    pub expired: Vec<SessionState>,
    /// Wills to publish, with their client identifiers.
    pub wills: Vec<(Arc<str>, Will)>,
}

/// Every session by client identifier.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<Arc<str>, Entry>>,
    /// Set (under the `entries` lock) once the broker shuts down: sessions claimed after
    /// that are signalled at once.
    shut_down: AtomicBool,
    /// Wakes connections waiting for a session to be released by the connection they took
    /// it over from.
    released: Notify,
    /// Where persistent sessions are written, if anywhere.
    store: Option<Store>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// An empty registry whose persistent sessions are written to `store`.
    pub fn with_store(store: Option<Store>) -> Self {
        Registry {
            store,
            ..Registry::default()
        }
    }

    /// A new session: stored if it outlives its connection and there is a store.
    fn new_session(&self, client_id: Arc<str>, expiry_interval: u32) -> SessionState {
        match &self.store {
            Some(store) if expiry_interval > 0 => {
                let journal = SessionStore {
                    store: store.clone(),
                    uid: store.next_uid(),
                };
                let state = SessionState::persistent(client_id, expiry_interval, journal);
                save(&state, None, None);
                state
            }
            _ => SessionState::new(client_id, expiry_interval),
        }
    }

    /// Puts back a session read from the store, offline.
    pub fn restore(
        &self,
        state: SessionState,
        expires_at: Option<Instant>,
        will: Option<(Will, Instant)>,
    ) {
        let client_id = state.client_id.clone();
        let offline = Offline {
            state,
            expires_at,
            will,
        };
        self.lock()
            .insert(client_id, Entry::Offline(Box::new(offline)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `client_id`'s session for `connection`, taking it over from another
    /// connection if need be.
    pub async fn claim(
        &self,
        client_id: Arc<str>,
        clean_start: bool,
        expiry_interval: u32,
        connection: u64,
    ) -> Claim {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut entries = self.lock();
                if let Some(Entry::Online { mailbox, .. }) = entries.get(&client_id) {
                    mailbox.signal(signal::TAKEN_OVER);
                } else {
                    let previous = entries.remove(&client_id);
                    let (previous, will) = match previous {
                        Some(Entry::Offline(offline)) => {
                            let Offline {
                                state,
                                will,
                                expires_at,
                            } = *offline;
                            // Expired but not yet swept: the session is over [MQTT-4.1.0-2].
                            let expired = expires_at.is_some_and(|t| t <= crate::clock::now());
                            (Some((state, expired)), will.map(|(will, _)| will))
                        }
                        _ => (None, None),
                    };
                    let claim = match previous {
                        // Resumed in time: the delayed will is not sent [MQTT-3.1.2-26].
                        Some((mut state, false)) if !clean_start => {
                            state.expiry_interval = expiry_interval;
                            state.mailbox.reset_signals();
                            state.mailbox.set_online(true);
                            save(&state, None, None);
                            Claim {
                                state,
                                session_present: true,
                                discarded: None,
                                will: None,
                            }
                        }
                        discarded => Claim {
                            state: self.new_session(client_id.clone(), expiry_interval),
                            session_present: false,
                            discarded: discarded.map(|(state, _)| state),
                            will,
                        },
                    };
                    let mailbox = claim.state.mailbox.clone();
                    if self.shut_down.load(Ordering::SeqCst) {
                        mailbox.signal(signal::SHUTDOWN);
                    }
                    entries.insert(
                        client_id,
                        Entry::Online {
                            connection,
                            mailbox,
                        },
                    );
                    return claim;
                }
            }
            // The old connection notifies once it has released; the timeout only guards
            // against a missed wake-up, after which the loop looks again.
            let _ = tokio::time::timeout(Duration::from_millis(200), released).await;
        }
    }

    /// Asks the connections that were idle since the last call, and are not parked yet,
    /// to park (see [`crate::parking`]).
    pub fn park_idle(&self) {
        for entry in self.lock().values() {
            if let Entry::Online { mailbox, .. } = entry {
                if mailbox.sweep() {
                    mailbox.signal(signal::PARK);
                }
            }
        }
    }

    /// Signals every connected session's connection that the broker is shutting down, and
    /// those that connect from now on.
    pub fn shut_down(&self) {
        let entries = self.lock();
        self.shut_down.store(true, Ordering::SeqCst);
        for entry in entries.values() {
            if let Entry::Online { mailbox, .. } = entry {
                mailbox.signal(signal::SHUTDOWN);
            }
        }
    }

    /// Gives back a session as its connection ends, with the will if the standard says it
    /// is to be published.
    pub fn release(
        &self,
        connection: u64,
        state: SessionState,
        will: Option<Will>,
        now: Instant,
    ) -> Released {
        let mut entries = self.lock();
        match entries.get(&state.client_id) {
            Some(Entry::Online { connection: c, .. }) if *c == connection => {}
            _ => {
                return Released {
                    ended: Some(state),
                    will,
                }
            }
        };
        entries.remove(&state.client_id);
        let outcome = if state.expiry_interval == 0 {
            Released {
                ended: Some(state),
                will,
            }
        } else {
            state.mailbox.set_online(false);
            let expires_at = (state.expiry_interval != u32::MAX)
                .then(|| now + Duration::from_secs(u64::from(state.expiry_interval)));
            let delay = will
                .as_ref()
                .and_then(|w| w.properties.will_delay_interval)
                .map_or(0, |d| d.min(state.expiry_interval));
            let (now_will, delayed) = match will {
                Some(will) if delay > 0 => (
                    None,
                    Some((will, now + Duration::from_secs(u64::from(delay)))),
                ),
                will => (will, None),
            };
            let wall = SystemTime::now();
            let will_due = delayed.as_ref().map(|(will, due)| {
                let left = due.saturating_duration_since(now);
                (will, crate::store::unix_millis(wall + left))
            });
            save(&state, Some(crate::store::unix_millis(wall)), will_due);
            let client_id = state.client_id.clone();
            let offline = Offline {
                state,
                expires_at,
                will: delayed,
            };
            entries.insert(client_id, Entry::Offline(Box::new(offline)));
            Released {
                ended: None,
                will: now_will,
            }
        };
        drop(entries);
        self.released.notify_waiters();
        outcome
    }

    /// Removes and returns the offline sessions that have expired by `now`, and the delayed
    /// wills that are due (including those of the expired sessions).
    pub fn take_due(&self, now: Instant) -> Due {
        let mut entries = self.lock();
        let mut due = Due::default();
        let mut expired = Vec::new();
        for (client_id, entry) in entries.iter_mut() {
            if let Entry::Offline(offline) = entry {
                let session_over = offline.expires_at.is_some_and(|t| t <= now);
                if offline.will.as_ref().is_some_and(|(_, t)| *t <= now) || session_over {
                    if let Some((will, _)) = offline.will.take() {
                        due.wills.push((client_id.clone(), will));
                        if !session_over {
                            // Published: not to be published again after a restart.
                            let disconnected = crate::store::unix_millis(SystemTime::now());
                            save(&offline.state, Some(disconnected), None);
                        }
                    }
                }
                if session_over {
                    expired.push(client_id.clone());
                }
            }
        }
        for client_id in expired {
            if let Some(Entry::Offline(offline)) = entries.remove(&client_id) {
                due.expired.push(offline.state);
            }
        }
        due
    }

    /// Whether a session, online or offline, has this client identifier.
    pub fn contains(&self, client_id: &str) -> bool {
        self.lock().contains_key(client_id)
    }

    /// Numbers of online and offline sessions.
    pub fn counts(&self) -> (usize, usize) {
        let entries = self.lock();
        let online = entries
            .values()
            .filter(|e| matches!(e, Entry::Online { .. }))
            .count();
        (online, entries.len() - online)
    }
}

/// Writes a stored session's record: its expiry, when its client left (`None` while
/// connected) and a will waiting for its delay.
fn save(state: &SessionState, disconnected_at: Option<u64>, will: Option<(&Will, u64)>) {
    state.log(|uid| Op::Session {
        client: state.client_id.clone(),
        record: Box::new(SessionRecord {
            uid,
            expiry_interval: state.expiry_interval,
            disconnected_at,
            will: will.map(|(will, due)| (will.clone(), due)),
        }),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn will(delay: u32) -> Will {
        let mut will = Will {
            topic: "will/t".try_into().unwrap(),
            ..Default::default()
        };
        will.properties.will_delay_interval = Some(delay);
        will
    }

    async fn online(registry: &Registry, clean: bool, expiry: u32, conn: u64) -> Claim {
        registry.claim("c".into(), clean, expiry, conn).await
    }

    #[tokio::test]
    async fn delayed_will_waits_for_its_interval_3_1_3_9() {
        let registry = Registry::new();
        let now = Instant::now();
        let claim = online(&registry, true, 60, 1).await;
        let released = registry.release(1, claim.state, Some(will(5)), now);
        assert!(released.will.is_none() && released.ended.is_none());
        assert!(registry
            .take_due(now + Duration::from_secs(4))
            .wills
            .is_empty());
        let due = registry.take_due(now + Duration::from_secs(5));
        assert_eq!(due.wills.len(), 1);
        assert!(due.expired.is_empty());
    }

    #[tokio::test]
    async fn resuming_in_time_cancels_the_delayed_will_3_1_3_9() {
        let registry = Registry::new();
        let now = Instant::now();
        let claim = online(&registry, true, 60, 1).await;
        registry.release(1, claim.state, Some(will(5)), now);
        let resumed = online(&registry, false, 60, 2).await;
        assert!(resumed.session_present && resumed.will.is_none());
        assert!(registry
            .take_due(now + Duration::from_secs(10))
            .wills
            .is_empty());
    }

    #[tokio::test]
    async fn will_is_sent_at_session_end_at_the_latest_3_1_2_8() {
        let registry = Registry::new();
        let now = Instant::now();
        // Delay longer than the session: the will goes when the session expires.
        let claim = online(&registry, true, 3, 1).await;
        registry.release(1, claim.state, Some(will(100)), now);
        let due = registry.take_due(now + Duration::from_secs(3));
        assert_eq!((due.wills.len(), due.expired.len()), (1, 1));
        // Session that ends with the connection: the will goes at once.
        let claim = online(&registry, true, 0, 2).await;
        let released = registry.release(2, claim.state, Some(will(100)), now);
        assert!(released.will.is_some() && released.ended.is_some());
        // Clean Start ends the old session: its delayed will is due.
        let claim = online(&registry, true, 60, 3).await;
        registry.release(3, claim.state, Some(will(100)), now);
        let fresh = online(&registry, true, 60, 4).await;
        assert!(!fresh.session_present && fresh.will.is_some() && fresh.discarded.is_some());
    }
}
