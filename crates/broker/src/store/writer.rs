//! The writer thread: takes [`Op`]s in the order they were logged, applies a group of them in
//! one write transaction, commits it durably, then answers the group's barriers.
//!
//! A group is closed when [`MAX_GROUP`] operations are in it, when about 1 ms has passed
//! since its first operation, or at once when a barrier is waiting and nothing more is
//! queued (a lone acknowledgement does not wait for company that is not coming). Under load
//! the fsync of one group is the time in which the next one fills.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use redb::{Database, ReadableTable, WriteTransaction};

use super::load::{AWAITING, MESSAGES, QUEUE, RETAINED, SESSIONS, SUBSCRIPTIONS};
use super::record::{self, Entry};
use super::{Op, StoreStats, MAX_GROUP};

/// How long a group stays open for more operations.
const GROUP_WINDOW: Duration = Duration::from_millis(1);

/// The writer's loop; returns when the store is closed or every handle is gone.
pub(super) fn run(
    db: Database,
    rx: mpsc::Receiver<Op>,
    refs: HashMap<u64, u32>,
    stats: Arc<StoreStats>,
    file: PathBuf,
) {
    let mut writer = Writer {
        db,
        refs,
        stats,
        file,
        failed: false,
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        let Ok(first) = rx.recv() else {
            return;
        };
        if let Op::Close(done) = first {
            writer.commit(&mut group);
            // The file is closed (and its lock released) before the closer hears of it.
            drop(writer);
            let _ = done.send(());
            return;
        }
        let opened = Instant::now();
        group.push(first);
        let mut closing = None;
        while group.len() < MAX_GROUP {
            let op = match rx.try_recv() {
                Ok(op) => op,
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let waiting = group.iter().any(|op| matches!(op, Op::Barrier(_)));
                    let left = GROUP_WINDOW.saturating_sub(opened.elapsed());
                    if waiting || left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(op) => op,
                        Err(_) => break,
                    }
                }
            };
            if let Op::Close(done) = op {
                closing = Some(done);
                break;
            }
            group.push(op);
        }
        writer.commit(&mut group);
        if let Some(done) = closing {
            drop(writer);
            let _ = done.send(());
            return;
        }
    }
}

/// Shortens a group by what its own later operations make moot, for each delivery queued
/// in it: queued and completed in the group, it is dropped with everything logged for it
/// (acknowledged by its subscriber before it reached the disk, there is nothing of it to
/// keep); queued and sent, its last `Stage` is written with it instead of after it (one
/// write, not a write and a read-modify-write). Returns how many operations went.
///
/// The log order makes this sound: a delivery's `Enqueue` is logged (under its mailbox's
/// lock) before the delivery can be sent, so its `Stage`s and `Done` always come after it.
/// The group's barriers still wait for the commit of what remains. Under load the writer
/// falls behind, its groups grow, and more cancels out: the disk does less exactly when it
/// is the bottleneck.
fn coalesce(ops: &mut Vec<Op>) -> usize {
    // Per delivery queued in this group: its Enqueue's index, and whether it completed.
    let mut queued: HashMap<(u64, u64), (usize, bool)> = HashMap::new();
    let mut folded = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Enqueue { uid, seq, .. } => {
                queued.insert((*uid, *seq), (i, false));
            }
            Op::Stage { uid, seq, stage } => {
                if let Some(&(at, _)) = queued.get(&(*uid, *seq)) {
                    folded.push((at, *stage));
                }
            }
            Op::Done { uid, seq, .. } => {
                if let Some(entry) = queued.get_mut(&(*uid, *seq)) {
                    entry.1 = true;
                }
            }
            _ => {}
        }
    }
    if queued.is_empty() {
        return 0;
    }
    for (at, stage) in folded {
        if let Op::Enqueue { stage: to, .. } = &mut ops[at] {
            *to = stage;
        }
    }
    let before = ops.len();
    ops.retain(|op| match op {
        Op::Enqueue { uid, seq, .. } | Op::Done { uid, seq, .. } => !queued
            .get(&(*uid, *seq))
            .is_some_and(|&(_, completed)| completed),
        Op::Stage { uid, seq, .. } => !queued.contains_key(&(*uid, *seq)),
        _ => true,
    });
    before - ops.len()
}

struct Writer {
    db: Database,
    /// Deliveries stored per message, so a message is deleted with its last one.
    refs: HashMap<u64, u32>,
    stats: Arc<StoreStats>,
    file: PathBuf,
    /// Set by a failed commit: the in-memory references may no longer match the file, so
    /// nothing more is promised durable.
    failed: bool,
}

impl Writer {
    fn commit(&mut self, group: &mut Vec<Op>) {
        let mut barriers = Vec::new();
        let mut ops = Vec::with_capacity(group.len());
        for op in group.drain(..) {
            match op {
                Op::Barrier(tx) => barriers.push(tx),
                Op::Close(_) => {}
                op => ops.push(op),
            }
        }
        let coalesced = coalesce(&mut ops);
        self.stats
            .coalesced
            .fetch_add(coalesced as u64, Ordering::Relaxed);
        let durable = if self.failed {
            false
        } else if ops.is_empty() {
            true
        } else {
            match self.apply(ops) {
                Ok(n) => {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    self.stats.ops.fetch_add(n, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    self.failed = true;
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        file = %self.file.display(),
                        "store commit failed, nothing more can be acknowledged for persistent \
                         sessions until the broker restarts: {e}"
                    );
                    false
                }
            }
        };
        for tx in barriers {
            let _ = tx.send(durable);
        }
    }

    fn apply(&mut self, ops: Vec<Op>) -> Result<u64, redb::Error> {
        let txn = self.db.begin_write()?;
        let n = ops.len() as u64;
        let now = Instant::now();
        let wall = SystemTime::now();
        {
            let mut tables = Tables::open(&txn)?;
            for op in ops {
                self.apply_one(&mut tables, op, now, wall)?;
            }
        }
        txn.commit()?;
        Ok(n)
    }

    fn apply_one(
        &mut self,
        t: &mut Tables<'_>,
        op: Op,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), redb::Error> {
        match op {
            Op::Session { client, record } => {
                t.sessions
                    .insert(&*client, record::encode_session(&record).as_slice())?;
            }
            Op::EndSession { client, uid } => {
                let current = t
                    .sessions
                    .get(&*client)?
                    .and_then(|v| record::decode_session(v.value()).ok())
                    .map(|r| r.uid);
                if current == Some(uid) {
                    t.sessions.remove(&*client)?;
                }
                let mut released = Vec::new();
                for item in t.queue.range((uid, 0)..=(uid, u64::MAX))? {
                    let (_, value) = item?;
                    if let Ok(entry) = record::decode_entry(value.value()) {
                        released.push(entry.message);
                    }
                }
                t.queue
                    .retain_in((uid, 0)..=(uid, u64::MAX), |_, _| false)?;
                t.subscriptions
                    .retain_in((uid, "")..(uid + 1, ""), |_, _| false)?;
                t.awaiting
                    .retain_in((uid, 0)..=(uid, u16::MAX), |_, _| false)?;
                for message in released {
                    self.release(t, message)?;
                }
            }
            Op::Subscribe { uid, filter, value } => {
                t.subscriptions.insert((uid, &*filter), value.as_slice())?;
            }
            Op::Unsubscribe { uid, filter } => {
                t.subscriptions.remove((uid, &*filter))?;
            }
            Op::Enqueue {
                uid,
                seq,
                delivery,
                stage,
            } => {
                let message = &delivery.message;
                let count = self.refs.entry(message.id).or_insert(0);
                if *count == 0 {
                    let received = record::wall_time(message.received_at, now, wall);
                    t.messages.insert(
                        message.id,
                        record::encode_message(message, received).as_slice(),
                    )?;
                }
                *count += 1;
                let entry = Entry {
                    message: message.id,
                    qos: delivery.qos,
                    retain: delivery.retain,
                    subscription_ids: delivery.subscription_ids,
                    shared: delivery.shared.map(|f| f.as_str().to_owned()),
                    stage,
                };
                t.queue
                    .insert((uid, seq), record::encode_entry(&entry).as_slice())?;
            }
            Op::Stage { uid, seq, stage } => {
                let entry = t
                    .queue
                    .get((uid, seq))?
                    .and_then(|v| record::decode_entry(v.value()).ok());
                if let Some(mut entry) = entry {
                    entry.stage = stage;
                    t.queue
                        .insert((uid, seq), record::encode_entry(&entry).as_slice())?;
                }
            }
            Op::Done { uid, seq, message } => {
                if t.queue.remove((uid, seq))?.is_some() {
                    self.release(t, message)?;
                }
            }
            Op::AwaitingPubRel {
                uid,
                packet_id,
                present,
            } => {
                if present {
                    t.awaiting.insert((uid, packet_id), ())?;
                } else {
                    t.awaiting.remove((uid, packet_id))?;
                }
            }
            Op::Retain(message) => {
                if message.payload.is_empty() {
                    t.retained.remove(message.topic.as_str())?;
                } else {
                    let received = record::wall_time(message.received_at, now, wall);
                    t.retained.insert(
                        message.topic.as_str(),
                        record::encode_message(&message, received).as_slice(),
                    )?;
                }
            }
            Op::Barrier(_) | Op::Close(_) => {}
        }
        Ok(())
    }

    /// One delivery of `message` fewer; the message goes with its last.
    fn release(&mut self, t: &mut Tables<'_>, message: u64) -> Result<(), redb::Error> {
        if let Some(count) = self.refs.get_mut(&message) {
            *count -= 1;
            if *count == 0 {
                self.refs.remove(&message);
                t.messages.remove(message)?;
            }
        }
        Ok(())
    }
}

/// Every table, opened once per transaction.
struct Tables<'t> {
    sessions: redb::Table<'t, &'static str, &'static [u8]>,
    subscriptions: redb::Table<'t, (u64, &'static str), &'static [u8]>,
    queue: redb::Table<'t, (u64, u64), &'static [u8]>,
    awaiting: redb::Table<'t, (u64, u16), ()>,
    messages: redb::Table<'t, u64, &'static [u8]>,
    retained: redb::Table<'t, &'static str, &'static [u8]>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, redb::Error> {
        Ok(Tables {
            sessions: txn.open_table(SESSIONS)?,
            subscriptions: txn.open_table(SUBSCRIPTIONS)?,
            queue: txn.open_table(QUEUE)?,
            awaiting: txn.open_table(AWAITING)?,
            messages: txn.open_table(MESSAGES)?,
            retained: txn.open_table(RETAINED)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use tern_codec::{PacketId, QoS, TopicName};

    use super::{coalesce, Op};
    use crate::message::{Delivery, Message};
    use crate::store::EntryStage;

    fn enqueue(seq: u64) -> Op {
        let topic = TopicName::try_from("a/b").expect("topic");
        let message = Message::detached(
            &topic,
            b"x",
            QoS::AtLeastOnce,
            false,
            Default::default(),
            None,
            Instant::now(),
        );
        Op::Enqueue {
            uid: 1,
            seq,
            delivery: Delivery {
                message: Arc::new(message),
                qos: QoS::AtLeastOnce,
                retain: false,
                subscription_ids: Vec::new(),
                shared: None,
                stored: Some(seq),
            },
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

    fn shape(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Enqueue { seq, stage, .. } => format!("enqueue {seq} {stage:?}"),
                Op::Stage { seq, stage, .. } => format!("stage {seq} {stage:?}"),
                Op::Done { seq, .. } => format!("done {seq}"),
                _ => "other".to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_delivery_completed_in_its_group_is_never_written() {
        let mut ops = vec![enqueue(1), enqueue(2), stage(1, 7), done(1)];
        assert_eq!(coalesce(&mut ops), 3);
        assert_eq!(shape(&ops), ["enqueue 2 Queued"]);
    }

    #[test]
    fn a_stage_in_the_group_is_written_with_its_delivery() {
        let mut ops = vec![enqueue(1), stage(1, 7), stage(1, 8)];
        assert_eq!(coalesce(&mut ops), 2);
        assert_eq!(shape(&ops), ["enqueue 1 Published(PacketId(8))"]);
    }

    #[test]
    fn operations_on_deliveries_of_earlier_groups_stay() {
        // Delivery 1 was queued in an earlier group: its stage and completion are written.
        let mut ops = vec![stage(1, 7), done(1), enqueue(2)];
        assert_eq!(coalesce(&mut ops), 0);
        assert_eq!(
            shape(&ops),
            [
                "stage 1 Published(PacketId(7))",
                "done 1",
                "enqueue 2 Queued"
            ]
        );
    }
}
