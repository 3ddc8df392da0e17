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
    /// The next packet identifier to try.
    pub next_packet_id: PacketId,
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

    /// A packet identifier not used by any in-flight message.
    pub fn allocate_packet_id(&mut self) -> PacketId {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = id.next();
            if !self.inflight.iter().any(|m| m.packet_id == id) {
                return id;
            }
        }
    }
}
