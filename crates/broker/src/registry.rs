//! The session registry: every session by client identifier, online or not.
//!
//! - A connection *claims* its client's session when its CONNECT is accepted. If another
//!   connection holds it, that one is told to close (session takeover, [MQTT-3.1.4-3]) and
//!   the claim waits until it has handed the session back.
//! - Clean Start discards any existing session [MQTT-3.1.2-4]; otherwise the existing one is
//!   resumed and Session Present is set [MQTT-3.2.2-2].
//! - A connection *releases* its session when it ends: a session whose expiry interval is 0
//!   ends with it, any other stays here, offline, until it expires [MQTT-4.1.0-2].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::session::SessionState;

enum Entry {
    Online {
        connection: u64,
        kick: CancellationToken,
        released: Arc<Notify>,
    },
    Offline {
        state: SessionState,
        expires_at: Option<Instant>,
    },
}

/// A session handed to a connection.
#[derive(Debug)]
pub struct Claim {
    /// The session to use.
    pub state: SessionState,
    /// True if an existing session was resumed.
    pub session_present: bool,
    /// Cancelled when another connection takes the session over.
    pub kick: CancellationToken,
    /// A previous session that Clean Start discarded, for the caller to clean up.
    pub discarded: Option<SessionState>,
}

/// Every session by client identifier.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<Arc<str>, Entry>>,
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
            let released = {
                let mut entries = self.lock();
                match entries.remove(&client_id) {
                    Some(Entry::Online {
                        connection: other,
                        kick,
                        released,
                    }) => {
                        kick.cancel();
                        let wait = released.clone();
                        entries.insert(
                            client_id.clone(),
                            Entry::Online {
                                connection: other,
                                kick,
                                released,
                            },
                        );
                        wait
                    }
                    previous => {
                        let kick = CancellationToken::new();
                        entries.insert(
                            client_id.clone(),
                            Entry::Online {
                                connection,
                                kick: kick.clone(),
                                released: Arc::new(Notify::new()),
                            },
                        );
                        let previous = match previous {
                            Some(Entry::Offline { state, .. }) => Some(state),
                            _ => None,
                        };
                        return match previous {
                            Some(mut state) if !clean_start => {
                                state.expiry_interval = expiry_interval;
                                state.mailbox.set_online(true);
                                Claim {
                                    state,
                                    session_present: true,
                                    kick,
                                    discarded: None,
                                }
                            }
                            discarded => Claim {
                                state: SessionState::new(client_id, expiry_interval),
                                session_present: false,
                                kick,
                                discarded,
                            },
                        };
                    }
                }
            };
            // The old connection notifies once it has released; the timeout only guards
            // against a missed wake-up, after which the loop looks again.
            let _ = tokio::time::timeout(Duration::from_millis(200), released.notified()).await;
        }
    }

    /// Gives back a session as its connection ends. Returns the session if it ended (expiry
    /// interval 0), for the caller to clean up.
    pub fn release(
        &self,
        connection: u64,
        state: SessionState,
        now: Instant,
    ) -> Option<SessionState> {
        let mut entries = self.lock();
        let held = matches!(entries.get(&state.client_id),
            Some(Entry::Online { connection: c, .. }) if *c == connection);
        if !held {
            return Some(state);
        }
        let released = match entries.remove(&state.client_id) {
            Some(Entry::Online { released, .. }) => released,
            _ => return Some(state),
        };
        let ended = if state.expiry_interval == 0 {
            Some(state)
        } else {
            state.mailbox.set_online(false);
            let expires_at = (state.expiry_interval != u32::MAX)
                .then(|| now + Duration::from_secs(u64::from(state.expiry_interval)));
            entries.insert(
                state.client_id.clone(),
                Entry::Offline { state, expires_at },
            );
            None
        };
        drop(entries);
        released.notify_one();
        ended
    }

    /// Removes and returns the offline sessions that have expired by `now`.
    pub fn take_expired(&self, now: Instant) -> Vec<SessionState> {
        let mut entries = self.lock();
        let expired: Vec<Arc<str>> = entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Offline { expires_at: Some(t), .. } if *t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| match entries.remove(&k) {
                Some(Entry::Offline { state, .. }) => Some(state),
                _ => None,
            })
            .collect()
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
