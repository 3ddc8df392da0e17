//! Outgoing PUBLISH flows (§4.3): the offline buffer, the in-flight window and the QoS 1
//! and QoS 2 handshakes.
//!
//! Rules:
//! - A publish waits in the buffer while the client is disconnected, and while the number of
//!   QoS 1/2 messages in flight equals the server's Receive Maximum [MQTT-4.9.0-2]. The
//!   buffer is bounded; a publish that finds it full fails at once.
//! - QoS 0 is done when written. QoS 1 is done at PUBACK. QoS 2 sends PUBREL on PUBREC and is
//!   done at PUBCOMP [MQTT-4.3.3-3]; the packet identifier is freed only then.
//! - A reason code of 0x80 or above in PUBACK or PUBREC fails the publish (and ends a QoS 2
//!   flow there, §4.3.3).
//! - After a reconnect every message in flight is sent again, in the order first sent:
//!   PUBLISH with DUP set [MQTT-4.4.0-1], or PUBREL for those already past PUBREC. When the
//!   server did not keep the session, a QoS 2 message past PUBREC is done (the server took it
//!   over at PUBREC); the others go out again as PUBLISH with DUP.
//! - With an in-flight store, every QoS 1/2 publish is recorded from enqueue to done (see
//!   [`crate::store`]); closing the client keeps the records, for the next client.
//! - Nothing is sent above the server's Maximum QoS [MQTT-3.2.2-11], retained when it has no
//!   retain [MQTT-3.2.2-14], or larger than its Maximum Packet Size [MQTT-3.1.2-24].

use std::collections::{HashMap, VecDeque};

use tern_codec::{Packet, PacketId, PubResponse, Publish, QoS, ReasonCode};

use super::packet_ids::PacketIds;
use super::{ServerLimits, Token};
use crate::error::{PublishError, PublishErrorKind};
use crate::store::{Outgoing, OutgoingState, StoreOp};

/// A publish's outcome, for the caller waiting on `token`.
pub(crate) type Completion = (Token, Result<ReasonCode, PublishError>);

/// What the outbound flows want to do next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Write this packet.
    Send(Packet),
    /// Write this QoS 0 PUBLISH; the publish is done once it is written.
    SendAndComplete(Packet, Token),
    /// This publish cannot be sent.
    Fail(Token, PublishError),
}

/// The acknowledgement a QoS 1/2 message in flight waits for.
// Named after the packets, as the standard names them.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    PubAck,
    PubRec,
    PubComp,
}

#[derive(Debug)]
struct InFlight {
    token: Token,
    publish: Publish,
    stage: Stage,
    seq: u64,
}

/// A publish waiting to be sent, with its sequence number (its order, and its key in the
/// store).
#[derive(Debug)]
struct Queued {
    token: Token,
    publish: Publish,
    seq: u64,
}

/// The offline buffer and the in-flight window.
#[derive(Debug)]
pub(crate) struct Outbound {
    buffer: VecDeque<Queued>,
    capacity: usize,
    in_flight: HashMap<PacketId, InFlight>,
    resend: VecDeque<PacketId>,
    next_seq: u64,
    /// Changes for the in-flight store; `None` without one.
    journal: Option<Vec<StoreOp>>,
}

impl Outbound {
    /// `persist`: record changes for an in-flight store.
    pub(crate) fn new(capacity: usize, persist: bool) -> Self {
        Outbound {
            buffer: VecDeque::new(),
            capacity,
            in_flight: HashMap::new(),
            resend: VecDeque::new(),
            next_seq: 0,
            journal: persist.then(Vec::new),
        }
    }

    /// Takes back what a store held: messages waiting (ahead of any new publish) and in
    /// flight (sent again on the next connection). Nobody waits for their outcome.
    pub(crate) fn restore(&mut self, ids: &mut PacketIds, records: Vec<(u64, Outgoing)>) {
        for (seq, record) in records {
            self.next_seq = self.next_seq.max(seq);
            let mut publish = record.publish;
            let (id, stage) = match record.state {
                OutgoingState::Queued => {
                    publish.packet_id = None;
                    self.buffer.push_back(Queued {
                        token: Token::RESTORED,
                        publish,
                        seq,
                    });
                    continue;
                }
                OutgoingState::Sent(id) if publish.qos == QoS::AtLeastOnce => (id, Stage::PubAck),
                OutgoingState::Sent(id) => (id, Stage::PubRec),
                OutgoingState::Released(id) => (id, Stage::PubComp),
            };
            ids.reserve(id);
            publish.packet_id = Some(id);
            self.in_flight.insert(
                id,
                InFlight {
                    token: Token::RESTORED,
                    publish,
                    stage,
                    seq,
                },
            );
        }
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

    fn record_put(&mut self, seq: u64, state: OutgoingState, publish: &Publish) {
        if self.journal.is_some() {
            let outgoing = Outgoing {
                state,
                publish: publish.clone(),
            };
            self.record(StoreOp::PutOutgoing(seq, Box::new(outgoing)));
        }
    }

    /// Queues a publish; fails when the buffer is full.
    pub(crate) fn enqueue(&mut self, token: Token, publish: Publish) -> Result<(), Completion> {
        if self.buffer.len() >= self.capacity {
            return Err((token, Err(PublishError::new(PublishErrorKind::BufferFull))));
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        if publish.qos != QoS::AtMostOnce {
            self.record_put(seq, OutgoingState::Queued, &publish);
        }
        self.buffer.push_back(Queued {
            token,
            publish,
            seq,
        });
        Ok(())
    }

    /// Number of publishes waiting in the buffer.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next packet to write on a connected link, if any.
    pub(crate) fn next_step(&mut self, ids: &mut PacketIds, limits: &ServerLimits) -> Option<Step> {
        while let Some(id) = self.resend.pop_front() {
            if let Some(entry) = self.in_flight.get(&id) {
                return Some(Step::Send(match entry.stage {
                    Stage::PubComp => Packet::PubRel(PubResponse::new(id)),
                    Stage::PubAck | Stage::PubRec => {
                        let mut publish = entry.publish.clone();
                        publish.dup = true;
                        Packet::Publish(publish)
                    }
                }));
            }
        }
        let qos = self.buffer.front()?.publish.qos;
        if qos != QoS::AtMostOnce && self.in_flight.len() >= usize::from(limits.receive_maximum) {
            return None;
        }
        let Queued {
            token,
            mut publish,
            seq,
        } = self.buffer.pop_front()?;
        if let Err(kind) = limits.check(&publish) {
            if qos != QoS::AtMostOnce {
                self.record(StoreOp::RemoveOutgoing(seq));
            }
            return Some(Step::Fail(token, PublishError::new(kind)));
        }
        if qos == QoS::AtMostOnce {
            return Some(Step::SendAndComplete(Packet::Publish(publish), token));
        }
        let Some(id) = ids.allocate() else {
            // Every identifier is taken: wait for an acknowledgement to free one.
            self.buffer.push_front(Queued {
                token,
                publish,
                seq,
            });
            return None;
        };
        publish.packet_id = Some(id);
        let stage = if qos == QoS::AtLeastOnce {
            Stage::PubAck
        } else {
            Stage::PubRec
        };
        self.record_put(seq, OutgoingState::Sent(id), &publish);
        self.in_flight.insert(
            id,
            InFlight {
                token,
                publish: publish.clone(),
                stage,
                seq,
            },
        );
        Some(Step::Send(Packet::Publish(publish)))
    }

    /// PUBACK: a QoS 1 message is done.
    pub(crate) fn on_puback(
        &mut self,
        ids: &mut PacketIds,
        ack: &PubResponse,
    ) -> Option<Completion> {
        self.finish(ids, ack, Stage::PubAck)
    }

    /// PUBREC: answer with PUBREL, or end the flow on a failure code.
    pub(crate) fn on_pubrec(
        &mut self,
        ids: &mut PacketIds,
        ack: &PubResponse,
    ) -> (Option<Packet>, Option<Completion>) {
        let id = ack.packet_id;
        match self.in_flight.get_mut(&id) {
            Some(entry) if entry.stage == Stage::PubRec && ack.reason_code.is_error() => {
                (None, self.finish(ids, ack, Stage::PubRec))
            }
            Some(entry) if entry.stage != Stage::PubAck => {
                let first = entry.stage == Stage::PubRec;
                entry.stage = Stage::PubComp;
                if first && self.journal.is_some() {
                    let (seq, publish) = (entry.seq, entry.publish.clone());
                    self.record_put(seq, OutgoingState::Released(id), &publish);
                }
                (Some(Packet::PubRel(PubResponse::new(id))), None)
            }
            _ => {
                let mut rel = PubResponse::new(id);
                rel.reason_code = ReasonCode::PacketIdentifierNotFound;
                (Some(Packet::PubRel(rel)), None)
            }
        }
    }

    /// PUBCOMP: a QoS 2 message is done.
    pub(crate) fn on_pubcomp(
        &mut self,
        ids: &mut PacketIds,
        ack: &PubResponse,
    ) -> Option<Completion> {
        self.finish(ids, ack, Stage::PubComp)
    }

    fn finish(
        &mut self,
        ids: &mut PacketIds,
        ack: &PubResponse,
        stage: Stage,
    ) -> Option<Completion> {
        let entry = self.in_flight.get(&ack.packet_id)?;
        if entry.stage != stage {
            tracing::debug!(packet_id = %ack.packet_id, "acknowledgement for a message at another stage, ignored");
            return None;
        }
        let entry = self.in_flight.remove(&ack.packet_id)?;
        ids.release(ack.packet_id);
        self.record(StoreOp::RemoveOutgoing(entry.seq));
        let result = if ack.reason_code.is_error() {
            Err(PublishError::new(PublishErrorKind::Rejected(
                ack.reason_code,
            )))
        } else {
            Ok(ack.reason_code)
        };
        Some((entry.token, result))
    }

    /// A connection is up: queue every message in flight to be sent again, and finish the
    /// QoS 2 messages past PUBREC if the server lost the session.
    pub(crate) fn on_connected(
        &mut self,
        ids: &mut PacketIds,
        session_present: bool,
    ) -> Vec<Completion> {
        let mut done = Vec::new();
        if !session_present {
            let released: Vec<PacketId> = self
                .in_flight
                .iter()
                .filter(|(_, e)| e.stage == Stage::PubComp)
                .map(|(&id, _)| id)
                .collect();
            for id in released {
                if let Some(entry) = self.in_flight.remove(&id) {
                    ids.release(id);
                    self.record(StoreOp::RemoveOutgoing(entry.seq));
                    done.push((entry.token, Ok(ReasonCode::Success)));
                }
            }
        }
        let mut order: Vec<(u64, PacketId)> =
            self.in_flight.iter().map(|(&id, e)| (e.seq, id)).collect();
        order.sort_unstable();
        self.resend = order.into_iter().map(|(_, id)| id).collect();
        done
    }

    /// The connection is lost: nothing is resent until the next one is up.
    pub(crate) fn on_disconnected(&mut self) {
        self.resend.clear();
    }

    /// The client is closing: every waiting publish fails with `Closed` (a store keeps them
    /// for the next client).
    pub(crate) fn fail_all(&mut self, ids: &mut PacketIds) -> Vec<Completion> {
        let closed = || Err(PublishError::new(PublishErrorKind::Closed));
        let mut done: Vec<Completion> =
            self.buffer.drain(..).map(|q| (q.token, closed())).collect();
        for (id, entry) in self.in_flight.drain() {
            ids.release(id);
            done.push((entry.token, closed()));
        }
        self.resend.clear();
        done
    }
}
