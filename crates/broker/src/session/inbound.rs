//! Messages from the client: PUBLISH and the QoS 2 release (MQTT 5.0 §3.3, §4.3).
//!
//! - QoS 1: routed, then PUBACK. QoS 2: routed once, PUBREC; a duplicate before PUBREL is
//!   acknowledged again but not routed again [MQTT-4.3.3-10]; PUBREL frees the identifier and
//!   is answered with PUBCOMP.
//! - Topic Aliases are per connection [MQTT-3.3.2-10]: a PUBLISH with a topic and an alias
//!   sets the alias; one with an empty topic uses it. An alias of 0 or above the broker's
//!   Topic Alias Maximum, or an unknown alias, is a protocol violation (0x94) [MQTT-3.3.2-9].
//! - More unreleased QoS 2 messages than the broker's Receive Maximum: 0x93 [MQTT-3.3.4-7].
//! - QoS above Maximum QoS (0x9B) or retain when Retain is not available (0x9A) ends the
//!   connection [MQTT-3.2.2-11, MQTT-3.2.2-14].

use std::sync::Arc;
use std::time::Instant;

use tern_codec::{Packet, PubResponse, Publish, PublishProperties, QoS, ReasonCode};

use super::{Action, Session};
use crate::message::Message;
use crate::store::Op;

impl Session {
    pub(super) fn on_publish(&mut self, now: Instant, mut publish: Publish) {
        // [MQTT-3.3.4-6]: a client must not send Subscription Identifiers.
        if !publish.properties.subscription_identifiers.is_empty() {
            return self.fail(
                ReasonCode::ProtocolError,
                "[MQTT-3.3.4-6] subscription identifier from a client",
            );
        }
        if publish.qos > self.limits.maximum_qos {
            return self.fail(
                ReasonCode::QoSNotSupported,
                "[MQTT-3.2.2-11] QoS above the server's Maximum QoS",
            );
        }
        if publish.retain && !self.limits.retain_available {
            return self.fail(
                ReasonCode::RetainNotSupported,
                "[MQTT-3.2.2-14] retain when Retain Available is 0",
            );
        }
        if let Some(alias) = publish.properties.topic_alias.take() {
            let alias = alias.get();
            if alias > self.limits.topic_alias_maximum {
                return self.fail(
                    ReasonCode::TopicAliasInvalid,
                    "[MQTT-3.3.2-9] topic alias above the server's Topic Alias Maximum",
                );
            }
            if publish.topic.is_empty() {
                match self.aliases.as_ref().and_then(|a| a.inbound.get(&alias)) {
                    Some(topic) => publish.topic = topic.clone(),
                    None => {
                        return self.fail(
                            ReasonCode::ProtocolError,
                            "[MQTT-3.3.2-8] topic alias used before it was set",
                        )
                    }
                }
            } else {
                let aliases = self.aliases.get_or_insert_with(Box::default);
                aliases.inbound.insert(alias, publish.topic.detached());
            }
        }
        if !self.topic_within_limits(publish.topic.levels(), publish.topic.len()) {
            return self.fail(
                ReasonCode::TopicNameInvalid,
                "topic name over the configured limits",
            );
        }
        let duplicate = match (publish.qos, publish.packet_id) {
            (QoS::ExactlyOnce, Some(id)) => {
                let known = self.state.awaiting_pubrel.contains(&id.get());
                if !known
                    && self.state.awaiting_pubrel.len() >= usize::from(self.limits.receive_maximum)
                {
                    return self.fail(
                        ReasonCode::ReceiveMaximumExceeded,
                        "[MQTT-3.3.4-7] more QoS 2 messages than Receive Maximum",
                    );
                }
                known
            }
            _ => false,
        };
        let invalid_payload = self.limits.check_payload_format
            && publish.properties.payload_format_indicator == Some(true)
            && std::str::from_utf8(&publish.payload).is_err();
        let mut reason = ReasonCode::Success;
        if invalid_payload {
            // [MQTT-3.3.2-4] allows the receiver to check; the message is refused with 0x99.
            reason = ReasonCode::PayloadFormatInvalid;
        } else if !duplicate {
            self.route(now, publish.clone());
        }
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.send(Packet::PubAck(response(id, reason))),
            (QoS::ExactlyOnce, Some(id)) => {
                if reason == ReasonCode::Success && self.state.awaiting_pubrel.insert(id.get()) {
                    let packet_id = id.get();
                    self.log_durable(|uid| Op::AwaitingPubRel {
                        uid,
                        packet_id,
                        present: true,
                    });
                }
                self.send(Packet::PubRec(response(id, reason)))
            }
            _ => {}
        }
    }

    /// Copies the message out of the read buffer and asks for it to be routed.
    fn route(&mut self, now: Instant, publish: Publish) {
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

    pub(super) fn on_pubrel(&mut self, rel: PubResponse) {
        let mut comp = PubResponse::new(rel.packet_id);
        let packet_id = rel.packet_id.get();
        if self.state.awaiting_pubrel.remove(&packet_id) {
            // Forgotten on disk before PUBCOMP: the client may then reuse the identifier
            // for a new message, which must not be taken for a duplicate [MQTT-4.3.3-12].
            self.log_durable(|uid| Op::AwaitingPubRel {
                uid,
                packet_id,
                present: false,
            });
        } else {
            comp.reason_code = ReasonCode::PacketIdentifierNotFound;
        }
        self.send(Packet::PubComp(comp));
    }
}

fn response(packet_id: tern_codec::PacketId, reason_code: ReasonCode) -> PubResponse {
    PubResponse {
        reason_code,
        ..PubResponse::new(packet_id)
    }
}
