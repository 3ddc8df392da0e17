//! Incoming PUBLISH flows (§4.3, §4.4) and the server's Topic Aliases (§3.3.2.3.4).
//!
//! Rules:
//! - QoS 1: deliver, answer PUBACK.
//! - QoS 2: deliver once and answer PUBREC; until the PUBREL for that packet identifier
//!   arrives, a PUBLISH with the same identifier is the same message and is answered with
//!   PUBREC again without delivering it [MQTT-4.3.3-9]. PUBREL is answered with PUBCOMP
//!   (with Packet Identifier not found when it is unknown, §3.7.2.1).
//! - When the server did not keep the session, the identifiers it had in flight mean
//!   nothing any more: the set is cleared.
//! - Topic Alias: a PUBLISH with a topic and an alias sets the alias for this connection; one
//!   with an empty topic uses it [MQTT-3.3.2-12]. An alias of 0 or above the Topic Alias
//!   Maximum the client announced, or an unknown alias with an empty topic, is a protocol
//!   error (0x94 Topic Alias invalid) [MQTT-3.3.2-8, MQTT-3.3.2-9]. Aliases last one
//!   connection [MQTT-3.3.2-7].
//! - With an in-flight store, the identifiers awaiting PUBREL are recorded (see
//!   [`crate::store`]), so the deduplication survives a restart.
//! - Receive Maximum: the server may have at most the client's Receive Maximum QoS 2
//!   messages awaiting PUBREL (QoS 1 ones are acknowledged at once); one more is a protocol
//!   error (0x93 Receive Maximum exceeded) [MQTT-3.3.4-9].

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU16;

use tern_codec::{Packet, PacketId, PubResponse, Publish, QoS, ReasonCode, TopicName};

use crate::store::StoreOp;

/// What to do with an incoming PUBLISH.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// The message to deliver, with its topic resolved; `None` for a QoS 2 repeat.
    pub(crate) deliver: Option<Publish>,
    /// The acknowledgement to send, if the QoS asks for one.
    pub(crate) ack: Option<Packet>,
}

/// Why an incoming PUBLISH breaks the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InboundError {
    /// An alias of 0, above the maximum, or unknown with an empty topic [MQTT-3.3.2-9].
    TopicAliasInvalid,
    /// More QoS 2 messages awaiting PUBREL than the client's Receive Maximum [MQTT-3.3.4-9].
    ReceiveMaximumExceeded,
}

impl InboundError {
    /// The DISCONNECT reason code (5.0).
    pub(crate) fn reason_code(self) -> ReasonCode {
        match self {
            InboundError::TopicAliasInvalid => ReasonCode::TopicAliasInvalid,
            InboundError::ReceiveMaximumExceeded => ReasonCode::ReceiveMaximumExceeded,
        }
    }

    /// The rule broken, for the log.
    pub(crate) fn rule(self) -> &'static str {
        match self {
            InboundError::TopicAliasInvalid => "[MQTT-3.3.2-9] invalid topic alias",
            InboundError::ReceiveMaximumExceeded => "[MQTT-3.3.4-9] receive maximum exceeded",
        }
    }
}

use InboundError::TopicAliasInvalid;

/// State of incoming flows on this session.
#[derive(Debug)]
pub(crate) struct Inbound {
    awaiting_pubrel: HashSet<PacketId>,
    aliases: HashMap<NonZeroU16, TopicName>,
    alias_maximum: u16,
    receive_maximum: usize,
    /// Changes for the in-flight store; `None` without one.
    journal: Option<Vec<StoreOp>>,
}

impl Inbound {
    /// `alias_maximum` and `receive_maximum` are the values the client sends in CONNECT.
    pub(crate) fn new(alias_maximum: u16, receive_maximum: u16) -> Self {
        Inbound {
            awaiting_pubrel: HashSet::new(),
            aliases: HashMap::new(),
            alias_maximum,
            receive_maximum: usize::from(receive_maximum),
            journal: None,
        }
    }

    /// Records changes for an in-flight store, starting from the identifiers it held.
    pub(crate) fn persist(&mut self, restored: Vec<PacketId>) {
        self.awaiting_pubrel.extend(restored);
        self.journal = Some(Vec::new());
    }

    /// The store changes recorded since the last call.
    pub(crate) fn take_journal(&mut self) -> Vec<StoreOp> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn record(&mut self, op: StoreOp) {
        if let Some(journal) = &mut self.journal {
            journal.push(op);
        }
    }

    /// A new connection: aliases start empty; the QoS 2 set survives only in a kept session.
    pub(crate) fn on_connected(&mut self, session_present: bool) {
        self.aliases.clear();
        if !session_present {
            if !self.awaiting_pubrel.is_empty() {
                self.record(StoreOp::ClearIncoming);
            }
            self.awaiting_pubrel.clear();
        }
    }

    /// Handles a PUBLISH from the server.
    pub(crate) fn on_publish(&mut self, mut publish: Publish) -> Result<Accepted, InboundError> {
        if let Some(alias) = publish.properties.topic_alias.take() {
            if alias.get() > self.alias_maximum {
                return Err(TopicAliasInvalid);
            }
            if publish.topic.is_empty() {
                publish.topic = self.aliases.get(&alias).cloned().ok_or(TopicAliasInvalid)?;
            } else {
                self.aliases.insert(alias, publish.topic.detached());
            }
        }
        let id = publish.packet_id;
        Ok(match (publish.qos, id) {
            (QoS::AtLeastOnce, Some(id)) => Accepted {
                deliver: Some(publish),
                ack: Some(Packet::PubAck(PubResponse::new(id))),
            },
            (QoS::ExactlyOnce, Some(id)) => {
                let new = !self.awaiting_pubrel.contains(&id);
                if new && self.awaiting_pubrel.len() >= self.receive_maximum {
                    return Err(InboundError::ReceiveMaximumExceeded);
                }
                if new {
                    self.awaiting_pubrel.insert(id);
                    self.record(StoreOp::PutIncoming(id));
                }
                Accepted {
                    deliver: new.then_some(publish),
                    ack: Some(Packet::PubRec(PubResponse::new(id))),
                }
            }
            _ => Accepted {
                deliver: Some(publish),
                ack: None,
            },
        })
    }

    /// Handles a PUBREL: the QoS 2 message is released; answer PUBCOMP.
    pub(crate) fn on_pubrel(&mut self, rel: &PubResponse) -> Packet {
        let mut comp = PubResponse::new(rel.packet_id);
        if self.awaiting_pubrel.remove(&rel.packet_id) {
            self.record(StoreOp::RemoveIncoming(rel.packet_id));
        } else {
            comp.reason_code = ReasonCode::PacketIdentifierNotFound;
        }
        Packet::PubComp(comp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, qos: QoS, id: u16) -> Publish {
        let topic = if topic.is_empty() {
            TopicName::default()
        } else {
            TopicName::try_from(topic).unwrap()
        };
        let mut p = Publish::new(topic, "x");
        p.qos = qos;
        p.packet_id = PacketId::new(id);
        p
    }

    #[test]
    fn qos2_is_delivered_once_until_pubrel_4_3_3_9() {
        let mut inbound = Inbound::new(0, u16::MAX);
        let first = inbound
            .on_publish(publish("a", QoS::ExactlyOnce, 5))
            .unwrap();
        assert!(first.deliver.is_some());
        let mut again = publish("a", QoS::ExactlyOnce, 5);
        again.dup = true;
        let again = inbound.on_publish(again).unwrap();
        assert_eq!(again.deliver, None);
        let id = PacketId::new(5).unwrap();
        assert_eq!(again.ack, Some(Packet::PubRec(PubResponse::new(id))));
        assert_eq!(
            inbound.on_pubrel(&PubResponse::new(id)),
            Packet::PubComp(PubResponse::new(id))
        );
        // Released: the identifier may carry a new message.
        assert!(inbound
            .on_publish(publish("a", QoS::ExactlyOnce, 5))
            .unwrap()
            .deliver
            .is_some());
    }

    #[test]
    fn unknown_pubrel_answers_not_found() {
        let mut inbound = Inbound::new(0, u16::MAX);
        let id = PacketId::new(9).unwrap();
        let Packet::PubComp(comp) = inbound.on_pubrel(&PubResponse::new(id)) else {
            panic!("PUBCOMP expected");
        };
        assert_eq!(comp.reason_code, ReasonCode::PacketIdentifierNotFound);
    }

    #[test]
    fn a_lost_session_forgets_qos2_ids() {
        let mut inbound = Inbound::new(0, u16::MAX);
        inbound
            .on_publish(publish("a", QoS::ExactlyOnce, 5))
            .unwrap();
        inbound.on_connected(true);
        assert_eq!(
            inbound
                .on_publish(publish("a", QoS::ExactlyOnce, 5))
                .unwrap()
                .deliver,
            None
        );
        inbound.on_connected(false);
        assert!(inbound
            .on_publish(publish("a", QoS::ExactlyOnce, 5))
            .unwrap()
            .deliver
            .is_some());
    }

    #[test]
    fn topic_aliases_3_3_2_12() {
        let mut inbound = Inbound::new(2, u16::MAX);
        let mut set = publish("long/topic", QoS::AtMostOnce, 0);
        set.properties.topic_alias = NonZeroU16::new(2);
        let set = inbound.on_publish(set).unwrap().deliver.unwrap();
        assert_eq!(set.topic.as_str(), "long/topic");
        assert_eq!(set.properties.topic_alias, None);

        let mut used = publish("", QoS::AtMostOnce, 0);
        used.properties.topic_alias = NonZeroU16::new(2);
        assert_eq!(
            inbound
                .on_publish(used)
                .unwrap()
                .deliver
                .unwrap()
                .topic
                .as_str(),
            "long/topic"
        );

        let mut unknown = publish("", QoS::AtMostOnce, 0);
        unknown.properties.topic_alias = NonZeroU16::new(1);
        assert_eq!(inbound.on_publish(unknown), Err(TopicAliasInvalid));

        let mut too_high = publish("t", QoS::AtMostOnce, 0);
        too_high.properties.topic_alias = NonZeroU16::new(3);
        assert_eq!(inbound.on_publish(too_high), Err(TopicAliasInvalid));

        inbound.on_connected(true);
        let mut after = publish("", QoS::AtMostOnce, 0);
        after.properties.topic_alias = NonZeroU16::new(2);
        assert_eq!(
            inbound.on_publish(after),
            Err(TopicAliasInvalid),
            "aliases last one connection"
        );
    }

    #[test]
    fn qos2_beyond_the_receive_maximum_is_refused_3_3_4_9() {
        let mut inbound = Inbound::new(0, 1);
        let mut p = Publish::new(TopicName::try_from("a").unwrap(), "x");
        p.qos = QoS::ExactlyOnce;
        p.packet_id = PacketId::new(1);
        assert!(inbound.on_publish(p.clone()).is_ok());
        assert!(
            inbound.on_publish(p.clone()).is_ok(),
            "a repeat is not a new message"
        );
        p.packet_id = PacketId::new(2);
        assert_eq!(
            inbound.on_publish(p),
            Err(InboundError::ReceiveMaximumExceeded)
        );
        assert_eq!(
            InboundError::ReceiveMaximumExceeded.reason_code(),
            ReasonCode::ReceiveMaximumExceeded
        );
    }
}
