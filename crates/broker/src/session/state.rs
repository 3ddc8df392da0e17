//! [`SessionState`]: everything a session keeps between connections (MQTT 5.0 §4.1): its
//! subscriptions, the QoS 1/2 messages sent but not completed, the QoS 2 packet identifiers
//! received but not released, and its mailbox of queued messages.
//!
//! This is the one place the durable store will write through; while the client is online
//! the connection's [`Session`](super::Session) owns it, while it is away the registry does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;

use tern_codec::{PacketId, SubscriptionOptions, TopicFilter};

use crate::mailbox::Mailbox;
use crate::message::Delivery;
use crate::store::{Op, SessionStore};

/// One subscription of a session.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The filter as subscribed, `$share/...` prefix included.
    pub filter: TopicFilter,
    /// Its options.
    pub options: SubscriptionOptions,
    /// MQTT 5.0 Subscription Identifier.
    pub id: Option<NonZeroU32>,
}

/// Where an outbound QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent; waiting for PUBCOMP.
    Released,
}

/// An outbound QoS 1/2 message not yet completed.
#[derive(Debug, Clone)]
pub struct Inflight {
    /// Its packet identifier on this session.
    pub packet_id: PacketId,
    /// The message.
    pub delivery: Delivery,
    /// How far the exchange got.
    pub stage: Stage,
}

/// The state of one session that outlives its connections.
#[derive(Debug)]
pub struct SessionState {
    /// The client identifier.
    pub client_id: Arc<str>,
    /// Subscriptions by filter text.
    pub subscriptions: BTreeMap<Box<str>, Subscription>,
    /// Outbound QoS 1/2 messages in the order they were first sent.
    pub inflight: VecDeque<Inflight>,
    /// Inbound QoS 2 packet identifiers whose PUBREL has not arrived [MQTT-4.3.3-10].
    pub awaiting_pubrel: BTreeSet<u16>,
    /// The next packet identifier to try. Private: the known-free run below assumes it
    /// moves only in turn, through [`SessionState::allocate_packet_id`].
    next_packet_id: PacketId,
    /// Identifiers from `next_packet_id` up to this one (excluded) are known to be free: no
    /// message in flight had one when they were last looked for, and since then only
    /// [`SessionState::allocate_packet_id`] has added to `inflight`, below them. 0: unknown.
    /// Anything else that fills `inflight` must leave it at 0, as a new state does. (A
    /// `u16`, so 65,535 itself is always looked for: the state stays within its chunk.)
    free_below: u16,
    /// Session Expiry Interval in seconds: 0 ends the session with the connection.
    pub expiry_interval: u32,
    /// Messages waiting to be sent.
    pub mailbox: Arc<Mailbox>,
}

impl SessionState {
    /// A new, empty session.
    pub fn new(client_id: Arc<str>, expiry_interval: u32) -> Self {
        SessionState {
            client_id,
            subscriptions: BTreeMap::new(),
            inflight: VecDeque::new(),
            awaiting_pubrel: BTreeSet::new(),
            next_packet_id: PacketId::default(),
            free_below: 0,
            expiry_interval,
            mailbox: Arc::new(Mailbox::new()),
        }
    }

    /// A new, empty session whose state is written to the store.
    pub fn persistent(client_id: Arc<str>, expiry_interval: u32, store: SessionStore) -> Self {
        SessionState {
            mailbox: Arc::new(Mailbox::persistent(store)),
            ..SessionState::new(client_id, expiry_interval)
        }
    }

    /// Logs a change to the store, if the session is stored. Returns whether it was.
    pub fn log(&self, op: impl FnOnce(u64) -> Op) -> bool {
        match self.mailbox.journal() {
            Some(store) => {
                store.log(op(store.uid));
                true
            }
            None => false,
        }
    }

    /// Logs that a stored delivery is complete or dropped.
    pub fn log_done(&self, delivery: &Delivery) {
        if let Some(seq) = delivery.stored {
            self.log(|uid| Op::Done {
                uid,
                seq,
                message: delivery.message.id,
            });
        }
    }

    /// A packet identifier not used by any in-flight message [MQTT-2.2.1-3]. Identifiers
    /// are handed out in turn, so one look through the window tells which of the next ones
    /// are free too: a full window is looked through once per run of free identifiers, not
    /// once per message.
    pub fn allocate_packet_id(&mut self) -> PacketId {
        loop {
            let id = self.next_packet_id;
            let free = id.get() < self.free_below || self.look_for(id);
            self.next_packet_id = id.next();
            if self.next_packet_id.get() < id.get() {
                // Wrapped round to 1: what lies below was never looked at.
                self.free_below = 0;
            }
            if free {
                return id;
            }
        }
    }

    /// True if no message in flight uses `id`; then also notes the identifiers after it
    /// up to the next one in use as free.
    fn look_for(&mut self, id: PacketId) -> bool {
        let mut next_used = u16::MAX;
        for m in &self.inflight {
            let used = m.packet_id.get();
            if used == id.get() {
                return false;
            }
            if used > id.get() {
                next_used = next_used.min(used);
            }
        }
        self.free_below = next_used;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_flight(state: &mut SessionState, packet_id: u16) {
        state.inflight.push_back(Inflight {
            packet_id: PacketId::new(packet_id).expect("non-zero"),
            delivery: Delivery::at_least_once("t", b"m", None),
            stage: Stage::Published,
        });
    }

    fn next(state: &mut SessionState) -> u16 {
        state.allocate_packet_id().get()
    }

    /// A window restored from the store holds identifiers the counter never handed out: the
    /// first look finds the free run before them, and the next look steps over them
    /// [MQTT-2.2.1-3].
    #[test]
    fn identifiers_in_flight_are_skipped_2_2_1_3() {
        let mut state = SessionState::new("c".into(), 0);
        in_flight(&mut state, 3);
        in_flight(&mut state, 4);
        let handed: Vec<u16> = (0..4).map(|_| next(&mut state)).collect();
        assert_eq!(handed, [1, 2, 5, 6]);
    }

    /// Handed-out identifiers stay in flight while the counter moves on; one freed by its
    /// acknowledgement becomes available again (MQTT 5.0 §2.2.1) but is handed out only
    /// when the counter comes round to it, never while another message holds it
    /// [MQTT-2.2.1-3].
    #[test]
    fn a_freed_identifier_is_reused_in_turn_2_2_1_3() {
        let mut state = SessionState::new("c".into(), 0);
        for expected in 1..=3 {
            let id = next(&mut state);
            assert_eq!(id, expected);
            in_flight(&mut state, id);
        }
        state.inflight.remove(1); // 2 acknowledged
        assert_eq!(next(&mut state), 4);
    }

    /// After 65,535 the counter wraps to 1: identifiers below where it last looked were
    /// never looked at, so a message still in flight under 1 is not handed 1 again.
    #[test]
    fn the_counter_wrapping_round_looks_again_2_2_1_3() {
        let mut state = SessionState::new("c".into(), 0);
        in_flight(&mut state, 1);
        state.next_packet_id = PacketId::new(65_534).expect("non-zero");
        assert_eq!(next(&mut state), 65_534);
        assert_eq!(next(&mut state), 65_535);
        assert_eq!(next(&mut state), 2, "1 is still in flight");
    }
}
