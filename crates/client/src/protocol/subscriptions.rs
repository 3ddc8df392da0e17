//! The client's subscriptions: which streams want which filter, what the server has been
//! asked for, and which stream gets an incoming message.
//!
//! Rules:
//! - Streams on the same filter share one server subscription (an *entry*). The entry asks
//!   for the highest QoS any of its streams asked for; the other options are those of the
//!   stream that made the entry. Each new stream sends SUBSCRIBE again, so it receives the
//!   retained messages a fresh subscription would (§3.3.1.3).
//! - An entry is removed, and UNSUBSCRIBE sent, when its last stream is dropped.
//! - With MQTT 5.0 each entry has its own Subscription Identifier (unless the server says it
//!   has none, §3.2.2.3.12). A message carrying identifiers goes to the entries with those
//!   identifiers [MQTT-3.3.4-3]; a message without (3.1.1, or a server without
//!   identifiers) goes to every entry whose filter matches its topic (§4.7).
//! - A message that matches no entry is kept for a later subscribe (a resumed session
//!   delivers what it queued before the application subscribes again), unless its topic
//!   matches a filter the application dropped (being unsubscribed, or one of the last
//!   [`RETIRED`] unsubscribed): those are the server finishing what it had started.
//! - When the server did not keep the session (Session Present 0), every entry is
//!   subscribed again and pending UNSUBSCRIBEs are dropped. SUBSCRIBE and UNSUBSCRIBE still
//!   unanswered when a connection is lost are sent again on the next.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;

use tern_codec::{
    Packet, PacketId, QoS, ReasonCode, SubAck, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, TopicName, Unsubscribe,
};

use super::packet_ids::PacketIds;
use super::{SubKey, Token};
use crate::error::{SubscribeError, SubscribeErrorKind};

/// A subscribe's outcome (the granted QoS), for the caller waiting on `token`.
pub(crate) type SubCompletion = (Token, Result<QoS, SubscribeError>);

/// How many unsubscribed filters are remembered, to drop late messages for them.
const RETIRED: usize = 64;

/// The largest Subscription Identifier (a variable byte integer, §3.8.2.1.2).
const MAX_SUBSCRIPTION_ID: u32 = 268_435_455;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    /// SUBSCRIBE must be sent.
    Unsent,
    /// SUBSCRIBE sent with this identifier; SUBACK awaited.
    Awaiting(PacketId),
    /// Acknowledged.
    Active,
}

#[derive(Debug)]
struct Entry {
    filter: TopicFilter,
    options: SubscriptionOptions,
    id: Option<NonZeroU32>,
    members: Vec<SubKey>,
    waiters: Vec<(Token, SubKey)>,
    state: EntryState,
    /// The server may hold this subscription (SUBSCRIBE sent in this session).
    on_server: bool,
}

/// Every subscription of the client.
#[derive(Debug)]
pub(crate) struct Subscriptions {
    entries: Vec<Entry>,
    unsubscribes: VecDeque<TopicFilter>,
    awaiting_unsuback: HashMap<PacketId, TopicFilter>,
    /// Filters unsubscribed lately (at most [`RETIRED`]).
    retired: VecDeque<TopicFilter>,
    use_ids: bool,
    next_id: u32,
}

impl Subscriptions {
    /// `use_ids`: the protocol version has Subscription Identifiers (5.0).
    pub(crate) fn new(use_ids: bool) -> Self {
        Subscriptions {
            entries: Vec::new(),
            unsubscribes: VecDeque::new(),
            awaiting_unsuback: HashMap::new(),
            retired: VecDeque::new(),
            use_ids,
            next_id: 0,
        }
    }

    /// Adds stream `key` on `filter`; `token` is answered when the server acknowledges.
    pub(crate) fn add(
        &mut self,
        token: Token,
        key: SubKey,
        filter: TopicFilter,
        options: SubscriptionOptions,
    ) {
        let index = match self.entries.iter().position(|e| e.filter == filter) {
            Some(index) => index,
            None => {
                let id = self.allocate_id();
                self.entries.push(Entry {
                    filter,
                    options,
                    id,
                    members: Vec::new(),
                    waiters: Vec::new(),
                    state: EntryState::Unsent,
                    on_server: false,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[index];
        entry.options.qos = entry.options.qos.max(options.qos);
        entry.members.push(key);
        entry.waiters.push((token, key));
        if entry.state == EntryState::Active {
            entry.state = EntryState::Unsent;
        }
    }

    fn allocate_id(&mut self) -> Option<NonZeroU32> {
        if !self.use_ids {
            return None;
        }
        self.next_id = self.next_id % MAX_SUBSCRIPTION_ID + 1;
        NonZeroU32::new(self.next_id)
    }

    /// Stream `key` is gone; the last stream of an entry unsubscribes it.
    pub(crate) fn remove(&mut self, key: SubKey) {
        let Some(index) = self.entries.iter().position(|e| e.members.contains(&key)) else {
            return;
        };
        let entry = &mut self.entries[index];
        entry.members.retain(|&k| k != key);
        entry.waiters.retain(|&(_, k)| k != key);
        if entry.members.is_empty() {
            let entry = self.entries.swap_remove(index);
            if self.retired.len() == RETIRED {
                self.retired.pop_front();
            }
            self.retired.push_back(entry.filter.clone());
            if entry.on_server {
                self.unsubscribes.push_back(entry.filter);
            }
        }
    }

    /// Whether `topic` matches a filter the application dropped (see the module rules).
    pub(crate) fn is_retired(&self, topic: &TopicName) -> bool {
        self.retired
            .iter()
            .chain(&self.unsubscribes)
            .chain(self.awaiting_unsuback.values())
            .any(|f| f.matches(topic))
    }

    /// The next SUBSCRIBE or UNSUBSCRIBE to write, if any. `ids_available`: the server
    /// accepts Subscription Identifiers.
    pub(crate) fn next_packet(
        &mut self,
        ids: &mut PacketIds,
        ids_available: bool,
    ) -> Option<Packet> {
        if let Some(filter) = self.unsubscribes.front() {
            let packet_id = ids.allocate()?;
            let filter = filter.clone();
            self.unsubscribes.pop_front();
            self.awaiting_unsuback.insert(packet_id, filter.clone());
            return Some(Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties: Default::default(),
                filters: vec![filter],
            }));
        }
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.state == EntryState::Unsent)?;
        let packet_id = ids.allocate()?;
        entry.state = EntryState::Awaiting(packet_id);
        entry.on_server = true;
        let properties = SubscribeProperties {
            subscription_identifier: entry.id.filter(|_| ids_available),
            ..Default::default()
        };
        Some(Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters: vec![(entry.filter.clone(), entry.options)],
        }))
    }

    /// SUBACK: the waiting streams learn their granted QoS or the refusal.
    pub(crate) fn on_suback(&mut self, ids: &mut PacketIds, ack: &SubAck) -> Vec<SubCompletion> {
        ids.release(ack.packet_id);
        let awaiting = EntryState::Awaiting(ack.packet_id);
        let Some(index) = self.entries.iter().position(|e| e.state == awaiting) else {
            return Vec::new();
        };
        let code = ack
            .reason_codes
            .first()
            .copied()
            .unwrap_or(ReasonCode::UnspecifiedError);
        let entry = &mut self.entries[index];
        let waiters = std::mem::take(&mut entry.waiters);
        let granted = match code {
            ReasonCode::Success => Ok(QoS::AtMostOnce),
            ReasonCode::GrantedQoS1 => Ok(QoS::AtLeastOnce),
            ReasonCode::GrantedQoS2 => Ok(QoS::ExactlyOnce),
            code => Err(code),
        };
        match granted {
            Ok(qos) => {
                entry.state = EntryState::Active;
                waiters.into_iter().map(|(t, _)| (t, Ok(qos))).collect()
            }
            Err(code) => {
                tracing::warn!(filter = %entry.filter, ?code, "subscription refused");
                entry
                    .members
                    .retain(|k| !waiters.iter().any(|(_, w)| w == k));
                entry.state = EntryState::Active;
                if entry.members.is_empty() {
                    self.entries.swap_remove(index);
                }
                let kind = SubscribeErrorKind::Rejected(code);
                waiters
                    .into_iter()
                    .map(|(t, _)| (t, Err(SubscribeError::new(kind))))
                    .collect()
            }
        }
    }

    /// UNSUBACK: frees its packet identifier.
    pub(crate) fn on_unsuback(&mut self, ids: &mut PacketIds, packet_id: PacketId) {
        ids.release(packet_id);
        self.awaiting_unsuback.remove(&packet_id);
    }

    /// A connection is up; without a kept session everything is subscribed again.
    pub(crate) fn on_connected(&mut self, session_present: bool) {
        if !session_present {
            self.unsubscribes.clear();
            self.retired.clear();
            for entry in &mut self.entries {
                entry.state = EntryState::Unsent;
                entry.on_server = false;
            }
        }
    }

    /// The connection is lost: unanswered requests go out again on the next one.
    pub(crate) fn on_disconnected(&mut self, ids: &mut PacketIds) {
        for entry in &mut self.entries {
            if let EntryState::Awaiting(id) = entry.state {
                ids.release(id);
                entry.state = EntryState::Unsent;
            }
        }
        for (id, filter) in self.awaiting_unsuback.drain() {
            ids.release(id);
            self.unsubscribes.push_back(filter);
        }
    }

    /// The streams an incoming message goes to. An identifier counts only when its entry's
    /// filter matches the topic: identifiers from a session resumed by another process
    /// may name other filters of this one.
    pub(crate) fn route(&self, topic: &TopicName, ids: &[NonZeroU32]) -> Vec<SubKey> {
        let by_id =
            |e: &&Entry| e.id.is_some_and(|id| ids.contains(&id)) && e.filter.matches(topic);
        let mut targets: Vec<SubKey> = Vec::new();
        if self.entries.iter().any(|e| by_id(&e)) {
            for entry in self.entries.iter().filter(by_id) {
                targets.extend(&entry.members);
            }
        } else {
            for entry in self.entries.iter().filter(|e| e.filter.matches(topic)) {
                targets.extend(&entry.members);
            }
        }
        targets
    }

    /// The client is closing: every waiting subscribe fails with `Closed`.
    pub(crate) fn fail_all(&mut self) -> Vec<SubCompletion> {
        let kind = SubscribeErrorKind::Closed;
        self.entries
            .iter_mut()
            .flat_map(|e| std::mem::take(&mut e.waiters))
            .map(|(t, _)| (t, Err(SubscribeError::new(kind))))
            .collect()
    }
}
