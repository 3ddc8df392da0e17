//! Journaled operations waiting for the database, shortened by what later operations make
//! moot.
//!
//! For each delivery whose `Enqueue` is pending:
//!
//! - a `Done` drops the delivery with everything pending for it (acknowledged by its
//!   subscriber before the checkpoint, there is nothing of it for the database to keep);
//! - a `Stage` is folded into the `Enqueue` (one write, not a write and a
//!   read-modify-write).
//!
//! The log order makes this sound: a delivery's `Enqueue` is logged (under its mailbox's
//! lock) before the delivery can be sent, so its `Stage`s and `Done` always come after it.
//! Under load most deliveries complete within a checkpoint interval, so the database sees
//! only the ones still in flight or queued for offline sessions.

use std::collections::HashMap;

use super::key_hasher::KeyHashing;
use super::Op;

/// Cancelled slots tolerated before a compaction is considered.
const COMPACT_AT: usize = 1024;

/// Pending operations in log order, with an index of the deliveries queued among them.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// In log order; `None` where an operation was cancelled.
    ops: Vec<Option<Op>>,
    /// Where each pending delivery's `Enqueue` is in `ops`, by (session uid, position).
    queued: HashMap<(u64, u64), usize, KeyHashing>,
    /// Slots of `ops` that were cancelled.
    cancelled: usize,
    /// Operations that cancelled out or were folded since the last [`Pending::take`].
    dropped: usize,
}

impl Pending {
    /// Adds an operation, cancelling or folding it against what is pending.
    pub(super) fn push(&mut self, op: Op) {
        match op {
            Op::Enqueue { uid, seq, .. } => {
                self.queued.insert((uid, seq), self.ops.len());
            }
            Op::Stage { uid, seq, stage } => {
                if let Some(&at) = self.queued.get(&(uid, seq)) {
                    if let Some(Op::Enqueue { stage: to, .. }) = &mut self.ops[at] {
                        *to = stage;
                    }
                    self.dropped += 1;
                    return;
                }
            }
            Op::Done { uid, seq, .. } => {
                if let Some(at) = self.queued.remove(&(uid, seq)) {
                    self.ops[at] = None;
                    self.cancelled += 1;
                    self.dropped += 2;
                    if self.cancelled > COMPACT_AT && self.cancelled * 2 > self.ops.len() {
                        self.compact();
                    }
                    return;
                }
            }
            _ => {}
        }
        self.ops.push(Some(op));
    }

    /// Slots held: operations left to write and, until the next compaction, cancelled ones
    /// (what they cost in memory). At most about twice the operations left.
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Drops the cancelled slots once they are the majority.
    fn compact(&mut self) {
        self.ops.retain(Option::is_some);
        self.cancelled = 0;
        for (at, op) in self.ops.iter().enumerate() {
            if let Some(Op::Enqueue { uid, seq, .. }) = op {
                if let Some(slot) = self.queued.get_mut(&(*uid, *seq)) {
                    *slot = at;
                }
            }
        }
    }

    /// The operations left to write, in log order, and how many were dropped; empties it.
    pub(super) fn take(&mut self) -> (Vec<Op>, usize) {
        self.queued.clear();
        self.cancelled = 0;
        let ops = self.ops.drain(..).flatten().collect();
        (ops, std::mem::take(&mut self.dropped))
    }
}

#[cfg(test)]
mod tests {
    use tern_codec::PacketId;

    use super::{Op, Pending};
    use crate::message::Delivery;
    use crate::store::EntryStage;

    fn enqueue(seq: u64) -> Op {
        Op::Enqueue {
            uid: 1,
            seq,
            delivery: Delivery::at_least_once("a/b", b"x", Some(seq)),
            stage: EntryStage::Queued,
        }
    }

    fn stage(seq: u64, packet_id: u16) -> Op {
        Op::Stage {
            uid: 1,
            seq,
            stage: EntryStage::Published(PacketId::new(packet_id).expect("non-zero")),
        }
    }

    fn done(seq: u64) -> Op {
        Op::Done {
            uid: 1,
            seq,
            message: 0,
        }
    }

    fn shape(ops: Vec<Op>) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Enqueue { seq, stage, .. } => format!("enqueue {seq} {stage:?}"),
                Op::Stage { seq, stage, .. } => format!("stage {seq} {stage:?}"),
                Op::Done { seq, .. } => format!("done {seq}"),
                _ => "other".to_owned(),
            })
            .collect()
    }

    fn run(ops: Vec<Op>) -> (Vec<String>, usize) {
        let mut pending = Pending::default();
        for op in ops {
            pending.push(op);
        }
        let (ops, dropped) = pending.take();
        (shape(ops), dropped)
    }

    #[test]
    fn a_delivery_completed_while_pending_is_never_written() {
        let (left, dropped) = run(vec![enqueue(1), enqueue(2), stage(1, 7), done(1)]);
        assert_eq!(left, ["enqueue 2 Queued"]);
        assert_eq!(dropped, 3);
    }

    #[test]
    fn a_stage_while_pending_is_written_with_its_delivery() {
        let (left, dropped) = run(vec![enqueue(1), stage(1, 7), stage(1, 8)]);
        assert_eq!(left, ["enqueue 1 Published(PacketId(8))"]);
        assert_eq!(dropped, 2);
    }

    #[test]
    fn operations_on_deliveries_written_earlier_stay() {
        // Delivery 1 was queued before: its stage and completion are written.
        let (left, dropped) = run(vec![stage(1, 7), done(1), enqueue(2)]);
        assert_eq!(
            left,
            [
                "stage 1 Published(PacketId(7))",
                "done 1",
                "enqueue 2 Queued"
            ]
        );
        assert_eq!(dropped, 0);
    }

    #[test]
    fn cancelled_slots_are_reclaimed() {
        let mut pending = Pending::default();
        pending.push(enqueue(0));
        for seq in 1..=10_000 {
            pending.push(enqueue(seq));
            pending.push(done(seq));
        }
        pending.push(stage(0, 3));
        assert!(
            pending.len() < 2 * super::COMPACT_AT + 2,
            "{}",
            pending.len()
        );
        let (left, dropped) = pending.take();
        assert_eq!(shape(left), ["enqueue 0 Published(PacketId(3))"]);
        assert_eq!(dropped, 20_001);
    }

    #[test]
    fn take_starts_afresh() {
        let mut pending = Pending::default();
        pending.push(enqueue(1));
        assert_eq!(pending.len(), 1);
        let (ops, _) = pending.take();
        assert_eq!(ops.len(), 1);
        // Delivery 1 is no longer pending: its completion must be written.
        pending.push(done(1));
        let (left, dropped) = pending.take();
        assert_eq!(shape(left), ["done 1"]);
        assert_eq!(dropped, 0);
        assert_eq!(pending.len(), 0);
    }
}
