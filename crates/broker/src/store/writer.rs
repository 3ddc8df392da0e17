//! The writer thread: takes [`Op`]s in the order they were logged, makes a group of them
//! durable with one append to the journal and one sync, then answers the group's barriers;
//! now and then it folds what the journal holds into the database (a checkpoint).
//!
//! A group is closed when [`MAX_GROUP`] operations are in it, when about 1 ms has passed
//! since its first operation, or at once when a barrier is waiting and nothing more is
//! queued (a lone acknowledgement does not wait for company that is not coming). Under load
//! the sync of one group, and a short rest after a large one ([`LOADED_REST`]), is the time
//! in which the next one fills.
//!
//! A checkpoint comes when the journal reaches [`JOURNAL_LIMIT`] bytes, when
//! [`PENDING_LIMIT`] operations wait for the database, a checkpoint interval (the
//! `checkpoint_interval_ms` setting, 10 s by default) after the last one, and when the store closes (so a broker that stopped cleanly leaves an empty
//! journal). Only what is still pending is written to the database then: a delivery its
//! subscriber acknowledged in the meantime costs the database nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use redb::ReadableDatabase;

use super::apply::Applier;
use super::checkpoint::Checkpointer;
use super::journal::{self, Journal};
use super::load::{self, Loaded, JOURNAL_KEY, META};
use super::pending::Pending;
use super::{Op, StoreError, StoreStats, MAX_GROUP};

/// How long a group stays open for more operations.
const GROUP_WINDOW: Duration = Duration::from_millis(1);
/// A group at least this large means the store is loaded: the writer then rests
/// [`LOADED_REST`] before gathering the next.
const LOADED_GROUP: usize = 64;
/// The writer's rest after a loaded group. Operations pile up in the channel meanwhile
/// without waking it, and go out in one larger frame and one sync: each sync costs the
/// broker's core about 60 µs (the device's write and flush requests, the writer blocking
/// and waking), so under load halving the syncs left the connections about 8 % more of the
/// core and lowered the PUBACK latency too (docs/PERFORMANCE.md). A lightly loaded store
/// never rests: its groups are small and its acknowledgements leave at the next sync.
const LOADED_REST: Duration = Duration::from_micros(300);
/// Journal size that calls for a checkpoint.
pub const JOURNAL_LIMIT: u64 = 64 * 1024 * 1024;
/// Operations waiting for the database that call for a checkpoint (bounds the memory they
/// hold).
pub const PENDING_LIMIT: usize = 65_536;

/// The writer: the journal, what it holds that the database does not yet, and the
/// checkpointer that owns the database.
pub(super) struct Writer {
    journal: Journal,
    /// Journaled operations not yet handed to the checkpointer.
    pending: Pending,
    checkpointer: Checkpointer,
    /// The data directory (where the journal files are).
    dir: PathBuf,
    last_checkpoint: Instant,
    /// Longest time between checkpoints while anything is journaled.
    interval: Duration,
    stats: Arc<StoreStats>,
    file: PathBuf,
    /// Set by a failed write: what is on disk may no longer match what was logged, so
    /// nothing more is promised durable.
    failed: bool,
}

impl Writer {
    /// Takes over the database `db` (whose contents are `loaded`) in `dir`: replays into it
    /// the journal generations it has not absorbed (what a broker that died had made durable
    /// since its last checkpoint), then starts the next generation. Returns the writer and
    /// the contents after the replay.
    pub(super) fn open(
        db: redb::Database,
        loaded: Loaded,
        dir: &Path,
        file: &Path,
        interval: Duration,
        stats: Arc<StoreStats>,
    ) -> Result<(Writer, Loaded), StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            file: file.to_path_buf(),
            reason,
        };
        let applied = absorbed_generation(&db).map_err(|e| damaged(e.to_string()))?;
        let mut applier = Applier {
            refs: loaded.references(),
            db,
        };
        let mut loaded = loaded;
        let mut next = applied + 1;
        let mut replay = Pending::default();
        let mut replayed = (0, None);
        let mut torn = 0;
        for recovered in journal::recover_all(dir)? {
            next = next.max(recovered.generation + 1);
            if recovered.generation > applied {
                replayed.0 += recovered.ops.len();
                replayed.1 = Some(recovered.generation);
                torn += recovered.torn;
                for op in recovered.ops {
                    replay.push(op);
                }
            }
        }
        if let (count, Some(generation)) = replayed {
            applier
                .apply(replay.take().0, generation)
                .map_err(|e| damaged(format!("cannot apply the journal: {e}")))?;
            loaded = load::read_all(&applier.db, file)?;
            applier.refs = loaded.references();
            tracing::info!(
                dir = %dir.display(),
                "replayed {count} operations from the journal, through generation {generation} \
                 ({torn} bytes after the last whole frames were older frames or a write cut \
                 short, never acknowledged)"
            );
        }
        let path = journal::journal_path(dir, next);
        let journal = Journal::create(&path, next).map_err(|e| StoreError::Damaged {
            file: path.clone(),
            reason: format!("cannot start a new journal: {e}"),
        })?;
        let checkpointer =
            Checkpointer::start(applier, stats.clone()).map_err(|e| StoreError::Damaged {
                file: file.to_path_buf(),
                reason: format!("cannot start the checkpoint thread: {e}"),
            })?;
        let writer = Writer {
            journal,
            pending: Pending::default(),
            checkpointer,
            dir: dir.to_path_buf(),
            last_checkpoint: Instant::now(),
            interval,
            stats,
            file: file.to_path_buf(),
            failed: false,
        };
        Ok((writer, loaded))
    }

    /// The writer's loop; returns when the store is closed or every handle is gone.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Op>) {
        let mut barriers = Vec::new();
        loop {
            let first = match self.checkpoint_due() {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(left) => rx.recv_timeout(left),
            };
            let first = match first {
                Ok(op) => op,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.checkpoint();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.checkpoint();
                    return;
                }
            };
            let opened = Instant::now();
            let wall = SystemTime::now();
            let mut next = Some(first);
            let mut taken = 0;
            let mut closing = None;
            while let Some(op) = next.take() {
                match op {
                    Op::Barrier(tx) => barriers.push(tx),
                    Op::Close(done) => {
                        closing = Some(done);
                        break;
                    }
                    op => {
                        if !self.failed {
                            self.journal.put(&op, opened, wall);
                            self.pending.push(op);
                        }
                        taken += 1;
                    }
                }
                if taken >= MAX_GROUP {
                    break;
                }
                next = match rx.try_recv() {
                    Ok(op) => Some(op),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                    Err(mpsc::TryRecvError::Empty) => {
                        let left = GROUP_WINDOW.saturating_sub(opened.elapsed());
                        if !barriers.is_empty() || left.is_zero() {
                            None
                        } else {
                            rx.recv_timeout(left).ok()
                        }
                    }
                };
            }
            self.commit(taken, &mut barriers);
            if let Some(done) = closing {
                self.close(done);
                return;
            }
            if self.checkpoint_due() == Some(Duration::ZERO) {
                self.checkpoint();
            } else if taken >= LOADED_GROUP {
                std::thread::sleep(LOADED_REST);
            }
        }
    }

    /// Folds the journal into the database, closes the files, then tells the closer.
    fn close(mut self, done: mpsc::Sender<()>) {
        self.checkpoint();
        match self.checkpointer.close() {
            Ok(()) if !self.failed => {
                // Everything is in the database: both files are cut down to their headers.
                let previous = journal::journal_path(&self.dir, self.journal.generation() + 1);
                let result = self
                    .journal
                    .truncate()
                    .and_then(|()| journal::truncate_file(&previous));
                if let Err(e) = result {
                    tracing::warn!(dir = %self.dir.display(), "cannot truncate the journal: {e}");
                }
            }
            Ok(()) => {}
            Err(e) => self.fail(&e),
        }
        // The files are closed (and the lock released) before the closer hears of it.
        drop(self);
        let _ = done.send(());
    }

    /// How long until the next checkpoint is due; `None` when nothing waits for one.
    fn checkpoint_due(&self) -> Option<Duration> {
        if self.failed || self.journal.is_empty() {
            return None;
        }
        if self.journal.len() >= JOURNAL_LIMIT || self.pending.len() >= PENDING_LIMIT {
            return Some(Duration::ZERO);
        }
        Some(self.interval.saturating_sub(self.last_checkpoint.elapsed()))
    }

    /// Makes the `taken` operations put in the journal since the last commit durable, then
    /// answers the barriers logged after them.
    fn commit(&mut self, taken: usize, barriers: &mut Vec<tokio::sync::oneshot::Sender<bool>>) {
        let durable = !self.failed
            && match self.journal.commit() {
                Ok(()) => {
                    if taken > 0 {
                        self.stats.commits.fetch_add(1, Ordering::Relaxed);
                        self.stats.ops.fetch_add(taken as u64, Ordering::Relaxed);
                    }
                    true
                }
                Err(e) => {
                    self.fail(&e);
                    false
                }
            };
        for tx in barriers.drain(..) {
            let _ = tx.send(durable);
        }
    }

    /// Ends the journal's generation: hands what is pending to the checkpointer and goes on
    /// in the next generation's file, once the fold that last used that file is done.
    fn checkpoint(&mut self) {
        if self.failed || self.journal.is_empty() {
            return;
        }
        if let Err(e) = self.checkpointer.wait() {
            self.fail(&format!("checkpoint failed: {e}"));
            return;
        }
        let (ops, absorbed) = self.pending.take();
        self.stats
            .absorbed
            .fetch_add(absorbed as u64, Ordering::Relaxed);
        let generation = self.journal.generation();
        if let Err(e) = self.checkpointer.fold(ops, generation) {
            self.fail(&e);
            return;
        }
        let next = generation + 1;
        match Journal::create(&journal::journal_path(&self.dir, next), next) {
            Ok(journal) => self.journal = journal,
            Err(e) => self.fail(&format!("cannot start the next journal: {e}")),
        }
        self.last_checkpoint = Instant::now();
    }

    fn fail(&mut self, e: &dyn std::fmt::Display) {
        self.failed = true;
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            file = %self.file.display(),
            "store write failed, nothing more can be acknowledged for persistent sessions \
             until the broker restarts (what was acknowledged is on disk): {e}"
        );
    }
}

/// The journal generation the database has absorbed (0 for none).
pub(super) fn absorbed_generation(db: &impl ReadableDatabase) -> Result<u64, redb::Error> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    Ok(meta.get(JOURNAL_KEY)?.map_or(0, |v| v.value()))
}
