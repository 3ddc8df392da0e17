//! Putting what the store held back into a starting broker: retained messages into the
//! retained store, persistent sessions offline into the registry with their subscriptions in
//! the router, their queued deliveries in their mailboxes and their QoS 2 exchanges in
//! flight, their expiry and delayed will timers going on from where they were.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::record::{unix_millis, EntryStage};
use super::{Loaded, LoadedSession, SessionStore, Store};
use crate::hub::Hub;
use crate::mailbox::Mailbox;
use crate::router::Subscriber;
use crate::session::{Inflight, SessionState, Stage};

/// Puts everything in `loaded` into `hub`.
pub fn restore(hub: &Hub, store: &Store, loaded: Loaded) {
    for message in loaded.retained {
        hub.retained.set(message);
    }
    let now = crate::clock::now();
    let wall = SystemTime::now();
    for session in loaded.sessions {
        restore_session(hub, store, session, now, wall);
    }
}

fn restore_session(
    hub: &Hub,
    store: &Store,
    session: LoadedSession,
    now: std::time::Instant,
    wall: SystemTime,
) {
    let record = session.record;
    let journal = SessionStore {
        store: store.clone(),
        uid: record.uid,
    };
    let next_seq = session.deliveries.last().map_or(0, |(seq, _, _)| seq + 1);
    let mut inflight = VecDeque::new();
    let mut queued = Vec::new();
    for (_, delivery, stage) in session.deliveries {
        match stage {
            EntryStage::Queued => queued.push(delivery),
            EntryStage::Published(packet_id) => inflight.push_back(Inflight {
                packet_id,
                delivery,
                stage: Stage::Published,
            }),
            EntryStage::Released(packet_id) => inflight.push_back(Inflight {
                packet_id,
                delivery,
                stage: Stage::Released,
            }),
        }
    }
    let mailbox = Arc::new(Mailbox::restored(journal, queued, next_seq));
    // A new state knows of no free packet identifiers, so the restored window is looked
    // through before the first one is handed out.
    let mut state = SessionState::new(session.client_id, record.expiry_interval);
    state.inflight = inflight;
    state.awaiting_pubrel = session.awaiting_pubrel;
    state.mailbox = mailbox;
    for subscription in session.subscriptions {
        hub.router.subscribe(
            &subscription.filter,
            Subscriber {
                client: state.client_id.clone(),
                mailbox: state.mailbox.clone(),
                options: subscription.options,
                id: subscription.id,
            },
        );
        state
            .subscriptions
            .insert(subscription.filter.as_str().into(), subscription);
    }
    // A session whose client was connected when the broker stopped counts as gone from now.
    let left = record.disconnected_at.unwrap_or_else(|| unix_millis(wall));
    let expires_at = (record.expiry_interval != u32::MAX).then(|| {
        let end = left.saturating_add(u64::from(record.expiry_interval) * 1000);
        let remaining = end.saturating_sub(unix_millis(wall));
        now + Duration::from_millis(remaining)
    });
    let will = record.will.map(|(will, due)| {
        let remaining = due.saturating_sub(unix_millis(wall));
        (will, now + Duration::from_millis(remaining))
    });
    hub.registry.restore(state, expires_at, will);
}
