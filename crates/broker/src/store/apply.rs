//! The database side of the store: applies operations to redb's tables in one transaction,
//! keeping count of the deliveries that hold each stored message.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use redb::{Database, ReadableTable, WriteTransaction};

use super::load::{
    AWAITING, JOURNAL_KEY, MESSAGES, META, QUEUE, RETAINED, SESSIONS, SUBSCRIPTIONS,
};
use super::record::{self, Entry};
use super::Op;

/// The database and the reference counts of its messages.
pub(super) struct Applier {
    /// The database.
    pub db: Database,
    /// Deliveries stored per message, so a message is deleted with its last one.
    pub refs: HashMap<u64, u32>,
}

impl Applier {
    /// Applies `ops` in one durable transaction that also records journal `generation` as
    /// absorbed.
    pub(super) fn apply(&mut self, ops: Vec<Op>, generation: u64) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        let now = Instant::now();
        let wall = SystemTime::now();
        {
            let mut tables = Tables::open(&txn)?;
            for op in ops {
                self.apply_one(&mut tables, op, now, wall)?;
            }
            txn.open_table(META)?.insert(JOURNAL_KEY, generation)?;
        }
        txn.commit()?;
        Ok(())
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
