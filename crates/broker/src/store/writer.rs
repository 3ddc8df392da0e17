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
use super::record::{self, Entry, EntryStage};
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
            Op::Enqueue { uid, seq, delivery } => {
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
                    stage: EntryStage::Queued,
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
