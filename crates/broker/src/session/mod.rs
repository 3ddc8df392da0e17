//! The sans-IO protocol machine of one connected client: QoS flows, packet identifiers, the
//! outbound in-flight window, keep alive.
//!
//! [`Session::handle_packet`] takes each packet the client sent after CONNECT,
//! [`Session::handle_timeout`] the passing of time; the results queue up as [`Action`]s for
//! the connection task, which owns the socket and the router. [`Session::deliver`] takes each
//! message routed to the client and hands its PUBLISH straight back, for the task to encode.
//! No I/O, no clock reads, no tokio: time is passed in.

mod inbound;
mod outbound;
mod state;
mod subscriptions;

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tern_codec::{
    Disconnect, Packet, ProtocolVersion, QoS, ReasonCode, TopicFilter, TopicName, Will,
};

pub use state::{Inflight, SessionState, Stage, Subscription};

#[cfg(test)]
use crate::message::Delivery;
use crate::message::Message;

/// What the session asks of its connection task, in order.
///
/// `Send` is as large as a [`Packet`]; actions live only between a packet and its handling,
/// in a queue the session reuses, so boxing them would cost an allocation for nothing.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Write this packet to the client.
    Send(Packet),
    /// Route this message to its subscribers (and the retained store).
    Publish(Arc<Message>),
    /// Add this subscription to the router; `existed` says whether it replaced one. The
    /// task then queues the matching retained messages as the options ask.
    Subscribe {
        /// The subscription.
        subscription: Subscription,
        /// True if it replaced an existing subscription to the same filter.
        existed: bool,
    },
    /// Remove this subscription from the router.
    Unsubscribe(TopicFilter),
    /// Close the connection, after writing what was queued before.
    Close {
        /// Why (for the log, and the DISCONNECT already queued for MQTT 5.0 clients).
        reason: ReasonCode,
        /// The normative statement the client broke, if it broke one.
        rule: Option<&'static str>,
        /// Whether the will is to be published [MQTT-3.1.2-8] or discarded [MQTT-3.1.2-10].
        publish_will: bool,
    },
}

/// What the session enforces and offers, from the broker configuration and the CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Longest topic name or filter.
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Most unacknowledged QoS 1/2 messages sent to the client: the broker's limit and the
    /// client's Receive Maximum, whichever is lower.
    pub send_window: usize,
    /// The broker's Receive Maximum: QoS 2 messages from the client not yet released.
    pub receive_maximum: u16,
    /// Highest Topic Alias the client may send.
    pub topic_alias_maximum: u16,
    /// Highest Topic Alias the client accepts (its CONNECT's Topic Alias Maximum).
    pub client_topic_alias_maximum: u16,
    /// Largest packet the client accepts (its CONNECT's Maximum Packet Size).
    pub client_maximum_packet_size: Option<u32>,
    /// Highest QoS accepted and granted.
    pub maximum_qos: QoS,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Whether `+` and `#` may be subscribed.
    pub wildcard_subscriptions: bool,
    /// Whether Subscription Identifiers are supported.
    pub subscription_identifiers: bool,
    /// Whether shared subscriptions are supported.
    pub shared_subscriptions: bool,
    /// Whether payloads marked UTF-8 are checked.
    pub check_payload_format: bool,
    /// Whether the broker's DISCONNECT may carry a Reason String, and how large it may be.
    pub problems: crate::problem::Problems,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_topic_length: 65_535,
            max_topic_levels: usize::MAX,
            send_window: 65_000,
            receive_maximum: u16::MAX,
            topic_alias_maximum: 0,
            client_topic_alias_maximum: 0,
            client_maximum_packet_size: None,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
            check_payload_format: false,
            problems: crate::problem::Problems::default(),
        }
    }
}

/// The Topic Aliases of one connection, both ways.
#[derive(Debug, Default)]
struct Aliases {
    /// Set by the client [MQTT-3.3.2-10].
    inbound: HashMap<u16, TopicName>,
    /// Set by the broker, by topic.
    outbound: HashMap<TopicName, NonZeroU16>,
}

/// Distinct sets of limits kept for sharing, at most.
const SHARED_LIMITS: usize = 64;

/// One copy of `limits` shared by the sessions that have the same: the last
/// [`SHARED_LIMITS`] distinct sets still in use are kept, and a set is looked up by equality.
fn shared(limits: SessionLimits) -> Arc<SessionLimits> {
    static KEPT: Mutex<Vec<Weak<SessionLimits>>> = Mutex::new(Vec::new());
    // Only lookups and pushes happen under the lock: a poisoned one is used as it is.
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    kept.retain(|set| set.strong_count() > 0);
    if let Some(found) = kept
        .iter()
        .filter_map(Weak::upgrade)
        .find(|set| **set == limits)
    {
        return found;
    }
    let set = Arc::new(limits);
    if kept.len() == SHARED_LIMITS {
        kept.remove(0);
    }
    kept.push(Arc::downgrade(&set));
    set
}

/// One connected client's protocol state.
#[derive(Debug)]
pub struct Session {
    state: SessionState,
    version: ProtocolVersion,
    /// Keep alive in seconds; 0: none.
    keep_alive: u16,
    last_received: Instant,
    /// Boxed: most clients have none, and an idle session should be small.
    will: Option<Box<Will>>,
    /// Shared with every session whose limits are the same (nearly every client of a
    /// broker has the same): an idle connection should be small.
    limits: Arc<SessionLimits>,
    actions: VecDeque<Action>,
    closed: bool,
    /// The connection's Topic Aliases, once one is set: most clients use none, and an idle
    /// session should be small.
    aliases: Option<Box<Aliases>>,
    /// In-flight messages of a previous connection not yet resent on this one: the last this
    /// many of the in-flight queue, resent as the window allows [MQTT-4.9.0-2].
    unsent: usize,
    /// Set when a change was logged to the store that must be durable before what was
    /// queued since is written to the client.
    durable: bool,
}

impl Session {
    /// A session for a client that has just been accepted (CONNACK already decided).
    pub fn new(
        state: SessionState,
        version: ProtocolVersion,
        keep_alive: u16,
        will: Option<Will>,
        limits: SessionLimits,
        now: Instant,
    ) -> Self {
        let send_window = limits.send_window.clamp(1, 65_000);
        Session {
            state,
            version,
            keep_alive,
            last_received: now,
            will: will.map(Box::new),
            limits: shared(SessionLimits {
                send_window,
                ..limits
            }),
            actions: VecDeque::new(),
            closed: false,
            aliases: None,
            unsent: 0,
            durable: false,
        }
    }

    /// The persistent part, for the registry to keep when the connection ends.
    pub fn into_state(self) -> SessionState {
        self.state
    }

    /// The persistent part.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The protocol version of the connection.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Takes the will, to publish it (or not) as the connection ends.
    pub fn take_will(&mut self) -> Option<Will> {
        self.will.take().map(|will| *will)
    }

    /// Whether a change was logged to the store since the last call that must be durable
    /// before the packets queued since are written (then it asks for a store barrier).
    pub fn take_durable(&mut self) -> bool {
        std::mem::take(&mut self.durable)
    }

    /// Logs a change to the store that the next packets depend on.
    fn log_durable(&mut self, op: impl FnOnce(u64) -> crate::store::Op) {
        if self.state.log(op) {
            self.durable = true;
        }
    }

    /// The next action for the connection task.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// How the client is to be told of problems (the Reason String it accepts).
    pub fn problems(&self) -> crate::problem::Problems {
        self.limits.problems
    }

    /// True while actions wait for the connection task.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// True once the session asked for the connection to close.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn send(&mut self, packet: Packet) {
        self.actions.push_back(Action::Send(packet));
    }

    /// Ends the connection for a protocol violation: MQTT 5.0 clients get a DISCONNECT with
    /// the reason code first [MQTT-4.13.1-1], and the rule as Reason String when they allow
    /// it [MQTT-3.1.2-29]; the will is published.
    pub fn fail(&mut self, reason: ReasonCode, rule: &'static str) {
        if self.closed {
            return;
        }
        if self.version.is_v5() {
            self.send(self.limits.problems.disconnect(reason, rule));
        }
        self.close(reason, Some(rule), true);
    }

    fn close(&mut self, reason: ReasonCode, rule: Option<&'static str>, publish_will: bool) {
        self.closed = true;
        self.actions.push_back(Action::Close {
            rule,
            reason,
            publish_will,
        });
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        // [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]): one and a half times the keep alive.
        let keep_alive = Duration::from_secs(u64::from(self.keep_alive));
        (self.keep_alive > 0).then(|| self.last_received + keep_alive + keep_alive / 2)
    }

    /// Checks the keep alive deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_timeout().is_some_and(|deadline| now >= deadline) {
            self.fail(
                ReasonCode::KeepAliveTimeout,
                "[MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]) keep alive expired",
            );
        }
    }

    /// Notes that a packet the session does not handle itself (AUTH of a
    /// re-authentication) arrived at `now`, for the keep alive.
    pub fn received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// Handles one packet from the client.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if self.closed {
            return;
        }
        self.last_received = now;
        match packet {
            Packet::Publish(publish) => self.on_publish(now, publish),
            Packet::PubAck(ack) => self.on_puback(ack),
            Packet::PubRec(rec) => self.on_pubrec(rec),
            Packet::PubRel(rel) => self.on_pubrel(rel),
            Packet::PubComp(comp) => self.on_pubcomp(comp),
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe),
            Packet::PingReq => self.send(Packet::PingResp),
            Packet::Disconnect(disconnect) => self.on_disconnect(disconnect),
            // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
            Packet::Connect(_) => {
                self.fail(ReasonCode::ProtocolError, "[MQTT-3.1.0-2] second CONNECT")
            }
            // The connection task hands AUTH to its re-authentication when the CONNECT
            // named a method; here the client named none, so AUTH is a Protocol Error; so
            // are the packets only a server sends (§2.1.2).
            Packet::Auth(_) => self.fail(
                ReasonCode::ProtocolError,
                "[MQTT-4.12.0-7] AUTH from a client whose CONNECT named no Authentication Method",
            ),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => self
                .fail(
                    ReasonCode::ProtocolError,
                    "[MQTT-2.1.2] packet only a server sends",
                ),
        }
        if self.unsent > 0 {
            self.resend(now);
        }
    }

    fn topic_within_limits(&self, levels: usize, len: usize) -> bool {
        len <= self.limits.max_topic_length && levels <= self.limits.max_topic_levels
    }

    fn on_disconnect(&mut self, disconnect: Disconnect) {
        if let Some(expiry) = disconnect.properties.session_expiry_interval {
            // [MQTT-3.14.2-2]: a session that ended with the connection cannot be extended.
            if self.state.expiry_interval == 0 && expiry != 0 {
                return self.fail(
                    ReasonCode::ProtocolError,
                    "[MQTT-3.14.2-2] session expiry set on DISCONNECT after 0 on CONNECT",
                );
            }
            self.state.expiry_interval = expiry;
        }
        let publish_will = disconnect.reason_code == ReasonCode::DisconnectWithWill;
        self.close(disconnect.reason_code, None, publish_will);
    }
}

#[cfg(test)]
mod tests;
