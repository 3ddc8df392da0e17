//! Messages to the client: delivery into the in-flight window, the QoS 1/2 acknowledgements
//! that free it, and the resend on resumption (MQTT 5.0 §4.3, §4.4, §4.9).
//!
//! - A QoS 1/2 delivery takes a free packet identifier and a place in the window, which is
//!   never larger than the client's Receive Maximum [MQTT-4.9.0-2].
//! - A message whose Message Expiry Interval has passed is not delivered; one that is
//!   carries the interval less the time it waited [MQTT-3.3.2-5, MQTT-3.3.2-6].
//! - A packet larger than the client's Maximum Packet Size is not sent [MQTT-3.1.2-27].
//! - Topic Aliases are used when the client allows them (its Topic Alias Maximum): the first
//!   delivery of a topic sets an alias, later ones send an empty topic [MQTT-3.3.2-12].
//! - On resumption, unacknowledged PUBLISHes are resent with DUP set and PUBRELs resent, in
//!   their original order [MQTT-4.4.0-1].

use std::num::NonZeroU16;
use std::time::Instant;

use tern_codec::{Packet, PacketId, PubResponse, Publish, PublishProperties, QoS, ReasonCode};

use super::{Inflight, Session, Stage};
use crate::message::Delivery;
use crate::store::{EntryStage, Op};

impl Session {
    fn position(&self, id: PacketId, stage: Stage, qos: QoS) -> Option<usize> {
        self.state
            .inflight
            .iter()
            .position(|m| m.packet_id == id && m.stage == stage && m.delivery.qos == qos)
    }

    pub(super) fn on_puback(&mut self, ack: PubResponse) {
        if let Some(i) = self.position(ack.packet_id, Stage::Published, QoS::AtLeastOnce) {
            if let Some(done) = self.state.inflight.remove(i) {
                self.state.log_done(&done.delivery);
            }
        }
    }

    pub(super) fn on_pubrec(&mut self, rec: PubResponse) {
        match self.position(rec.packet_id, Stage::Published, QoS::ExactlyOnce) {
            // A failure code ends the exchange: nothing is released [MQTT-4.3.3-4].
            Some(i) if rec.reason_code.is_error() => {
                if let Some(done) = self.state.inflight.remove(i) {
                    self.state.log_done(&done.delivery);
                }
            }
            Some(i) => {
                self.state.inflight[i].stage = Stage::Released;
                if let Some(seq) = self.state.inflight[i].delivery.stored {
                    // PUBREL only once the store knows: a PUBLISH sent again after a
                    // restart would be a new message to the client [MQTT-4.3.3-6].
                    let stage = EntryStage::Released(rec.packet_id);
                    self.log_durable(|uid| Op::Stage { uid, seq, stage });
                }
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

    pub(super) fn on_pubcomp(&mut self, comp: PubResponse) {
        if let Some(i) = self.position(comp.packet_id, Stage::Released, QoS::ExactlyOnce) {
            if let Some(done) = self.state.inflight.remove(i) {
                self.state.log_done(&done.delivery);
            }
        }
    }

    /// Free places in the outbound QoS 1/2 window.
    pub fn window_free(&self) -> usize {
        self.limits
            .send_window
            .saturating_sub(self.state.inflight.len())
    }

    /// Takes one routed message for the client and returns its PUBLISH, for the caller to
    /// write next; `None` if the message was dropped instead: expired, or too large for the
    /// client. QoS 1/2 messages take a place in the window ([`Session::window_free`] must be
    /// above 0) and a fresh packet identifier.
    ///
    /// The packet is handed back, not queued as an [`Action`](super::Action): a fan-out
    /// delivers millions a second, and a `Packet` moved into the queue and out again cost
    /// two copies of a few hundred bytes each. Delivering queues no action, so whatever the
    /// caller writes the PUBLISH after stays in order.
    pub fn deliver(&mut self, now: Instant, delivery: Delivery) -> Option<Publish> {
        let Some(expiry) = remaining_expiry(&delivery, now) else {
            self.state.log_done(&delivery);
            return None;
        };
        let mut publish = self.publish_packet(&delivery, None, false);
        if publish.properties.message_expiry_interval.is_some() {
            publish.properties.message_expiry_interval = expiry;
        }
        if !self.fit(&mut publish) {
            self.state.log_done(&delivery);
            return None;
        }
        if delivery.qos != QoS::AtMostOnce {
            let packet_id = self.state.allocate_packet_id();
            publish.packet_id = Some(packet_id);
            if let Some(seq) = delivery.stored {
                // Resends after a restart use the original identifier [MQTT-4.4.0-1], in the
                // original order. For QoS 2 the identifier is on disk before the PUBLISH
                // leaves: sent again under another one it would be a new message to the
                // client. A QoS 1 message may arrive twice, so it does not wait.
                let stage = EntryStage::Published(packet_id);
                let op = |uid| Op::Stage { uid, seq, stage };
                match delivery.qos {
                    QoS::ExactlyOnce => self.log_durable(op),
                    _ => {
                        self.state.log(op);
                    }
                }
            }
            self.state.inflight.push_back(Inflight {
                packet_id,
                delivery,
                stage: Stage::Published,
            });
        }
        Some(publish)
    }

    /// Applies a Topic Alias where the client allows one and checks the client's Maximum
    /// Packet Size. False: the packet cannot be sent.
    fn fit(&mut self, publish: &mut Publish) -> bool {
        let max = self
            .limits
            .client_maximum_packet_size
            .map_or(usize::MAX, |m| m as usize);
        let version = self.version;
        let fits = |p: &Publish| max == usize::MAX || p.encoded_len(version) <= max;
        if self.limits.client_topic_alias_maximum == 0 {
            return fits(publish);
        }
        let aliases = self.aliases.get_or_insert_with(Box::default);
        if let Some(&alias) = aliases.outbound.get(&publish.topic) {
            publish.properties.topic_alias = Some(alias);
            publish.topic = Default::default();
            return fits(publish);
        }
        let next = aliases.outbound.len() + 1;
        if next <= usize::from(self.limits.client_topic_alias_maximum) {
            if let Some(alias) = NonZeroU16::new(next as u16) {
                publish.properties.topic_alias = Some(alias);
                if fits(publish) {
                    aliases.outbound.insert(publish.topic.clone(), alias);
                    return true;
                }
                publish.properties.topic_alias = None;
            }
        }
        fits(publish)
    }

    fn publish_packet(
        &self,
        delivery: &Delivery,
        packet_id: Option<PacketId>,
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
    /// with DUP set, or PUBREL [MQTT-4.4.0-1]. They count against this connection's window
    /// [MQTT-4.9.0-2]: those past it go as acknowledgements free it, before anything new.
    pub fn resume(&mut self, now: Instant) {
        self.unsent = self.state.inflight.len();
        self.resend(now);
    }

    /// Resends the oldest messages not yet resent on this connection while the window has
    /// room. A resent PUBLISH counts the time its message has waited, the absence included
    /// [MQTT-3.3.2-6]; one whose expiry has passed is still resent, as a message once sent
    /// must be [MQTT-4.3.3-7], with 1 s left. One too large for this connection's client is
    /// dropped as if delivered [MQTT-3.1.2-28].
    pub(super) fn resend(&mut self, now: Instant) {
        let max = self
            .limits
            .client_maximum_packet_size
            .map_or(usize::MAX, |m| m as usize);
        while self.unsent > 0 && self.state.inflight.len() - self.unsent < self.limits.send_window {
            let i = self.state.inflight.len() - self.unsent;
            self.unsent -= 1;
            let m = &self.state.inflight[i];
            let packet = match m.stage {
                Stage::Published => {
                    let mut publish = self.publish_packet(&m.delivery, Some(m.packet_id), true);
                    if publish.properties.message_expiry_interval.is_some() {
                        let left = remaining_expiry(&m.delivery, now).flatten();
                        publish.properties.message_expiry_interval = Some(left.unwrap_or(1));
                    }
                    if publish.encoded_len(self.version) > max {
                        if let Some(dropped) = self.state.inflight.remove(i) {
                            self.state.log_done(&dropped.delivery);
                        }
                        continue;
                    }
                    Packet::Publish(publish)
                }
                Stage::Released => Packet::PubRel(PubResponse::new(m.packet_id)),
            };
            self.send(packet);
        }
    }
}

/// The Message Expiry Interval to send: `Some(None)` when the message has none,
/// `Some(Some(left))` with the seconds left, `None` when it has expired [MQTT-3.3.2-5].
fn remaining_expiry(delivery: &Delivery, now: Instant) -> Option<Option<u32>> {
    let message = &delivery.message;
    let Some(interval) = message.properties.message_expiry_interval else {
        return Some(None);
    };
    let waited = now.saturating_duration_since(message.received_at).as_secs();
    let left = u64::from(interval)
        .checked_sub(waited)
        .filter(|&left| left > 0)?;
    Some(Some(left as u32))
}
