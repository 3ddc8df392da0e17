//! The sans-IO protocol machine of one connected client: QoS flows, packet identifiers, the
//! outbound in-flight window, keep alive.
//!
//! [`Session::handle_packet`] takes each packet the client sent after CONNECT,
//! [`Session::deliver`] each message routed to it, [`Session::handle_timeout`] the passing of
//! time; the results queue up as [`Action`]s for the connection task, which owns the socket
//! and the router. No I/O, no clock reads, no tokio: time is passed in.

mod state;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_codec::{
    Disconnect, Packet, ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, ReasonCode,
    SubAck, Subscribe, TopicFilter, UnsubAck, Unsubscribe, Will,
};

pub use state::{Inflight, SessionState, Stage, Subscription};

use crate::message::{Delivery, Message};

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

/// Limits the session enforces, taken from the broker configuration and the CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Longest topic name or filter.
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Most unacknowledged QoS 1/2 messages sent to the client.
    pub send_window: usize,
}

/// One connected client's protocol state.
#[derive(Debug)]
pub struct Session {
    state: SessionState,
    version: ProtocolVersion,
    keep_alive: Option<Duration>,
    last_received: Instant,
    will: Option<Will>,
    limits: SessionLimits,
    actions: VecDeque<Action>,
    closed: bool,
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
        let keep_alive = (keep_alive > 0).then(|| Duration::from_secs(u64::from(keep_alive)));
        let send_window = limits.send_window.clamp(1, 65_000);
        Session {
            state,
            version,
            keep_alive,
            last_received: now,
            will,
            limits: SessionLimits {
                send_window,
                ..limits
            },
            actions: VecDeque::new(),
            closed: false,
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
        self.will.take()
    }

    /// The next action for the connection task.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// True once the session asked for the connection to close.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn send(&mut self, packet: Packet) {
        self.actions.push_back(Action::Send(packet));
    }

    /// Ends the connection for a protocol violation: MQTT 5.0 clients get a DISCONNECT with
    /// the reason code first [MQTT-4.13.1-1]; the will is published.
    pub fn fail(&mut self, reason: ReasonCode, rule: &'static str) {
        if self.closed {
            return;
        }
        if self.version.is_v5() {
            self.send(Packet::Disconnect(Disconnect::new(reason)));
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
        self.keep_alive.map(|k| self.last_received + k + k / 2)
    }

    /// Checks the keep alive deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_timeout().is_some_and(|deadline| now >= deadline) {
            self.fail(
                ReasonCode::KeepAliveTimeout,
                "[MQTT-3.1.2-22] keep alive expired",
            );
        }
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
            // Extended authentication is not offered, so AUTH is a protocol error
            // [MQTT-4.12.0-1]; server-to-client packets from a client are too.
            Packet::Auth(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => self.fail(
                ReasonCode::ProtocolError,
                "[MQTT-4.12.0-1] packet a client may not send",
            ),
        }
    }

    fn topic_within_limits(&self, levels: usize, len: usize) -> bool {
        len <= self.limits.max_topic_length && levels <= self.limits.max_topic_levels
    }

    fn on_publish(&mut self, now: Instant, publish: Publish) {
        // Tern advertises no Topic Alias Maximum, so any alias exceeds it [MQTT-3.3.2-9].
        if publish.properties.topic_alias.is_some() {
            return self.fail(
                ReasonCode::TopicAliasInvalid,
                "[MQTT-3.3.2-9] topic alias above maximum 0",
            );
        }
        // [MQTT-3.3.4-6]: a client must not send Subscription Identifiers.
        if !publish.properties.subscription_identifiers.is_empty() {
            return self.fail(
                ReasonCode::ProtocolError,
                "[MQTT-3.3.4-6] subscription identifier from a client",
            );
        }
        if !self.topic_within_limits(publish.topic.levels(), publish.topic.len()) {
            return self.fail(
                ReasonCode::TopicNameInvalid,
                "topic name over the configured limits",
            );
        }
        let duplicate = match (publish.qos, publish.packet_id) {
            (QoS::ExactlyOnce, Some(id)) => !self.state.awaiting_pubrel.insert(id.get()),
            _ => false,
        };
        if !duplicate {
            // A QoS 2 PUBLISH seen before its PUBREL is not forwarded again [MQTT-4.3.3-10].
            let properties = PublishProperties {
                topic_alias: None,
                subscription_identifiers: Vec::new(),
                ..publish.properties
            };
            let message = Message::detached(
                &publish.topic,
                &publish.payload,
                publish.qos,
                publish.retain,
                properties,
                Some(self.state.client_id.clone()),
                now,
            );
            self.actions.push_back(Action::Publish(Arc::new(message)));
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.send(Packet::PubAck(PubResponse::new(id))),
            (QoS::ExactlyOnce, Some(id)) => self.send(Packet::PubRec(PubResponse::new(id))),
            _ => {}
        }
    }

    fn position(&self, id: tern_codec::PacketId, stage: Stage, qos: QoS) -> Option<usize> {
        self.state
            .inflight
            .iter()
            .position(|m| m.packet_id == id && m.stage == stage && m.delivery.qos == qos)
    }

    fn on_puback(&mut self, ack: PubResponse) {
        if let Some(i) = self.position(ack.packet_id, Stage::Published, QoS::AtLeastOnce) {
            self.state.inflight.remove(i);
        }
    }

    fn on_pubrec(&mut self, rec: PubResponse) {
        match self.position(rec.packet_id, Stage::Published, QoS::ExactlyOnce) {
            // A failure code ends the exchange: the message is not released [MQTT-4.3.3-?].
            Some(i) if rec.reason_code.is_error() => {
                self.state.inflight.remove(i);
            }
            Some(i) => {
                self.state.inflight[i].stage = Stage::Released;
                self.send(Packet::PubRel(PubResponse::new(rec.packet_id)));
            }
            None if self
                .position(rec.packet_id, Stage::Released, QoS::ExactlyOnce)
                .is_some() =>
            {
                self.send(Packet::PubRel(PubResponse::new(rec.packet_id)));
            }
            None => {
                let mut rel = PubResponse::new(rec.packet_id);
                rel.reason_code = ReasonCode::PacketIdentifierNotFound;
                self.send(Packet::PubRel(rel));
            }
        }
    }

    fn on_pubrel(&mut self, rel: PubResponse) {
        let mut comp = PubResponse::new(rel.packet_id);
        if !self.state.awaiting_pubrel.remove(&rel.packet_id.get()) {
            comp.reason_code = ReasonCode::PacketIdentifierNotFound;
        }
        self.send(Packet::PubComp(comp));
    }

    fn on_pubcomp(&mut self, comp: PubResponse) {
        if let Some(i) = self.position(comp.packet_id, Stage::Released, QoS::ExactlyOnce) {
            self.state.inflight.remove(i);
        }
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) {
        let mut reason_codes = Vec::with_capacity(subscribe.filters.len());
        let mut accepted = Vec::new();
        for (filter, options) in subscribe.filters {
            if !self.topic_within_limits(filter.levels(), filter.as_str().len()) {
                reason_codes.push(ReasonCode::TopicFilterInvalid);
                continue;
            }
            reason_codes.push(match options.qos {
                QoS::AtMostOnce => ReasonCode::Success,
                QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
            });
            let subscription = Subscription {
                filter,
                options,
                id: subscribe.properties.subscription_identifier,
            };
            let key: Box<str> = subscription.filter.as_str().into();
            let existed = self
                .state
                .subscriptions
                .insert(key, subscription.clone())
                .is_some();
            accepted.push(Action::Subscribe {
                subscription,
                existed,
            });
        }
        // The SUBACK goes out before the retained messages the subscriptions bring.
        self.send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Default::default(),
            reason_codes,
        }));
        self.actions.extend(accepted);
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let mut reason_codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            if self.state.subscriptions.remove(filter.as_str()).is_some() {
                reason_codes.push(ReasonCode::Success);
                self.actions.push_back(Action::Unsubscribe(filter));
            } else {
                reason_codes.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        self.send(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Default::default(),
            reason_codes,
        }));
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

    /// Free places in the outbound QoS 1/2 window.
    pub fn window_free(&self) -> usize {
        self.limits
            .send_window
            .saturating_sub(self.state.inflight.len())
    }

    /// Sends one routed message to the client. QoS 1/2 messages take a place in the window
    /// ([`Session::window_free`] must be above 0) and a fresh packet identifier.
    pub fn deliver(&mut self, delivery: Delivery) {
        let packet_id = match delivery.qos {
            QoS::AtMostOnce => None,
            _ => Some(self.state.allocate_packet_id()),
        };
        let publish = self.publish_packet(&delivery, packet_id, false);
        if let Some(packet_id) = packet_id {
            self.state.inflight.push_back(Inflight {
                packet_id,
                delivery,
                stage: Stage::Published,
            });
        }
        self.send(Packet::Publish(publish));
    }

    fn publish_packet(
        &self,
        delivery: &Delivery,
        packet_id: Option<tern_codec::PacketId>,
        dup: bool,
    ) -> Publish {
        let message = &delivery.message;
        let properties = if self.version.is_v5() {
            PublishProperties {
                subscription_identifiers: delivery.subscription_ids.clone(),
                ..message.properties.clone()
            }
        } else {
            PublishProperties::default()
        };
        Publish {
            dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic: message.topic.clone(),
            packet_id,
            properties,
            payload: message.payload.clone(),
        }
    }

    /// Resends what was in flight when the previous connection ended, in order: PUBLISH
    /// with DUP set, or PUBREL [MQTT-4.4.0-1].
    pub fn resume(&mut self) {
        let resend: Vec<Packet> = self
            .state
            .inflight
            .iter()
            .map(|m| match m.stage {
                Stage::Published => {
                    Packet::Publish(self.publish_packet(&m.delivery, Some(m.packet_id), true))
                }
                Stage::Released => Packet::PubRel(PubResponse::new(m.packet_id)),
            })
            .collect();
        for packet in resend {
            self.send(packet);
        }
    }
}

#[cfg(test)]
mod tests;
