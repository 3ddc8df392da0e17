//! The durable store: what the broker keeps on disk so that nothing it acknowledged is lost
//! when it stops or dies (`docs/persistence.md` is the user's account of it).
//!
//! Rules:
//!
//! - One writer thread owns the store's two files in the data directory and applies
//!   [`Op`]s in the order they were logged, committing in groups: a commit holds every
//!   operation that arrived within about 1 ms of the first, or [`MAX_GROUP`] of them,
//!   whichever comes first. A commit is one append to the journal (`tern-N.journal`) and one
//!   sync; it is durable when it returns.
//! - Now and then (a checkpoint) the writer ends the journal's generation and a second
//!   thread folds what is still pending into the database ([`redb`], `tern.redb`) while the
//!   writer goes on in the next generation: a delivery queued and acknowledged between two
//!   checkpoints never reaches the database. Generations the database has not absorbed are
//!   replayed into it when the store opens.
//! - A connection that logged something its acknowledgement promises (a QoS 1/2 message
//!   queued for a persistent session, a retained message, a subscription, a QoS 2 state
//!   change) asks for a [`Store::barrier`] and holds the bytes it wrote since until the
//!   barrier's commit is durable. So a PUBACK, PUBREC, PUBCOMP or SUBACK never leaves before
//!   what it acknowledges is on disk; QoS 0 and clean sessions never wait.
//! - Only sessions with a Session Expiry Interval above 0 are stored; they are keyed by a
//!   store identifier (`uid`), so a session that replaces another under the same client
//!   identifier never mixes with what the old one left.
//! - Messages are stored once however many sessions queue them; the database counts the
//!   references and deletes a message with its last delivery.
//! - Every record carries its layout version; the database carries the store format
//!   ([`FORMAT`]) and the journal its own ([`JOURNAL_FORMAT`]). A store this Tern cannot
//!   read stops the broker with a message naming the file; nothing is ever wiped to make
//!   room.

mod apply;
mod checkpoint;
mod journal;
mod journal_record;
mod key_hasher;
mod load;
mod pending;
mod record;
mod restore;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

pub use journal::{JOURNAL_FILES, JOURNAL_FORMAT};
pub use load::{Loaded, LoadedSession, Summary};
pub use record::{encode_subscription, unix_millis, EntryStage, SessionRecord};
pub use restore::restore;
pub use writer::{JOURNAL_LIMIT, PENDING_LIMIT};

use crate::message::{Delivery, Message};

/// Version of the store's format: tables, keys and records.
pub const FORMAT: u64 = 1;
/// Most operations in one commit.
pub const MAX_GROUP: usize = 4096;
/// Name of the database file in the data directory.
pub const FILE_NAME: &str = "tern.redb";

/// Why the store could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {dir}: {source} (choose another with --data-dir, or run with --in-memory)")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process has the store open.
    #[error("the store {file} is in use by another process (is another broker running with this data directory? use --data-dir to choose another)")]
    Locked {
        /// The database file.
        file: PathBuf,
    },
    /// The file is not a Tern store, or one of a format this Tern does not know.
    #[error("{file} was written by a different program or a newer Tern (store format {found}, this Tern reads {FORMAT}); nothing was changed. Move it away or upgrade Tern")]
    Format {
        /// The database file.
        file: PathBuf,
        /// What its format key says.
        found: String,
    },
    /// The file is damaged or cannot be read.
    #[error("cannot read the store {file}: {reason}. Nothing was changed; move the file away to start empty (its data is then lost), or restore it from a backup")]
    Damaged {
        /// The database file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// One change to the stored state, applied by the writer in the order logged.
#[derive(Debug)]
pub enum Op {
    /// Creates or replaces a session's record.
    Session {
        /// Its client identifier.
        client: Arc<str>,
        /// The record (boxed: with its will it is twice the size of any other operation,
        /// and every operation is moved several times on its way to the disk).
        record: Box<SessionRecord>,
    },
    /// Deletes a session and everything it holds, if the stored session is still `uid`.
    EndSession {
        /// Its client identifier.
        client: Arc<str>,
        /// Its store identifier.
        uid: u64,
    },
    /// Stores a subscription.
    Subscribe {
        /// The session's store identifier.
        uid: u64,
        /// The filter as subscribed.
        filter: Box<str>,
        /// Its options and identifier, encoded.
        value: Vec<u8>,
    },
    /// Deletes a subscription.
    Unsubscribe {
        /// The session's store identifier.
        uid: u64,
        /// The filter.
        filter: Box<str>,
    },
    /// Stores a QoS 1/2 delivery queued for a session.
    Enqueue {
        /// The session's store identifier.
        uid: u64,
        /// Its position in the session's queue.
        seq: u64,
        /// The delivery.
        delivery: Delivery,
        /// How far it got: `Queued` when logged; the writer folds the `Stage`s logged after
        /// it in the same group into it.
        stage: EntryStage,
    },
    /// Records how far a QoS 2 delivery got.
    Stage {
        /// The session's store identifier.
        uid: u64,
        /// The delivery's position.
        seq: u64,
        /// Its new stage.
        stage: EntryStage,
    },
    /// Deletes a delivery that is complete (or dropped).
    Done {
        /// The session's store identifier.
        uid: u64,
        /// The delivery's position.
        seq: u64,
        /// The message it delivered.
        message: u64,
    },
    /// Adds or removes an inbound QoS 2 packet identifier awaiting PUBREL.
    AwaitingPubRel {
        /// The session's store identifier.
        uid: u64,
        /// The packet identifier.
        packet_id: u16,
        /// True to add, false to remove.
        present: bool,
    },
    /// Stores a topic's retained message, or deletes it when the payload is empty.
    Retain(Arc<Message>),
    /// Answers once every operation logged before it is durable (`true`), or could not be
    /// made durable (`false`).
    Barrier(tokio::sync::oneshot::Sender<bool>),
    /// Commits what is pending and stops the writer; answers when done.
    Close(mpsc::Sender<()>),
}

/// Counters of the writer's work, for `$SYS` and the tests that prove group commit.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Commits made (each one a journal append and sync).
    pub commits: AtomicU64,
    /// Operations made durable.
    pub ops: AtomicU64,
    /// Checkpoints: the journal folded into the database.
    pub checkpoints: AtomicU64,
    /// Journaled operations the database never needed: deliveries completed (or stages
    /// superseded) before the checkpoint that would have written them.
    pub absorbed: AtomicU64,
    /// Writes that failed.
    pub failures: AtomicU64,
}

struct Inner {
    file: PathBuf,
    next_uid: AtomicU64,
    stats: Arc<StoreStats>,
    closed: AtomicBool,
}

/// A handle to the store's writer. Cheap to clone; every clone logs to the same writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    tx: mpsc::Sender<Op>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("file", &self.inner.file)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it if need be) the store in `dir`, reads everything it holds, and
    /// starts the writer thread, which checkpoints at least every `checkpoint_interval`
    /// while anything waits for one.
    pub fn open(dir: &Path, checkpoint_interval: Duration) -> Result<(Store, Loaded), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            dir: dir.to_path_buf(),
            source,
        })?;
        let file = dir.join(FILE_NAME);
        let (db, loaded) = load::open_and_load(&file)?;
        let stats = Arc::new(StoreStats::default());
        let (writer, loaded) =
            writer::Writer::open(db, loaded, dir, &file, checkpoint_interval, stats.clone())?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tern-store".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Damaged {
                file: file.clone(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        crate::message::reserve_ids_through(loaded.max_message_id);
        let store = Store {
            inner: Arc::new(Inner {
                file,
                next_uid: AtomicU64::new(loaded.max_uid + 1),
                stats,
                closed: AtomicBool::new(false),
            }),
            tx,
        };
        Ok((store, loaded))
    }

    /// Reads what the store in `dir` holds without changing it (`tern broker --check-store`).
    pub fn check(dir: &Path) -> Result<Summary, StoreError> {
        load::summarize(&dir.join(FILE_NAME))
    }

    /// The database file.
    pub fn file(&self) -> &Path {
        &self.inner.file
    }

    /// The writer's counters.
    pub fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    /// A fresh store identifier for a new persistent session.
    pub fn next_uid(&self) -> u64 {
        self.inner.next_uid.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs an operation. After [`Store::close`] operations are dropped: nothing runs then
    /// that the store must keep.
    pub fn log(&self, op: Op) {
        let _ = self.tx.send(op);
    }

    /// A receiver that answers `true` once everything logged before this call is durable.
    pub fn barrier(&self) -> tokio::sync::oneshot::Receiver<bool> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.log(Op::Barrier(tx));
        rx
    }

    /// Commits what is pending and stops the writer, waiting for it. Safe to call twice.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Op::Close(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }
}

/// A persistent session's link to the store: the handle and the session's identifier in it.
#[derive(Debug, Clone)]
pub struct SessionStore {
    /// The store.
    pub store: Store,
    /// The session's store identifier.
    pub uid: u64,
}

impl SessionStore {
    /// Logs an operation of this session.
    pub fn log(&self, op: Op) {
        self.store.log(op);
    }
}
