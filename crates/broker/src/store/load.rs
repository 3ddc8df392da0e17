//! Opening the database, checking its format, and reading everything back at start.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::record::{self, EntryStage, RecordError, SessionRecord};
use super::{StoreError, FORMAT};
use crate::message::{Delivery, Message};
use crate::session::Subscription;

/// `format` -> [`FORMAT`], `magic` -> [`MAGIC`].
pub(super) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// Key in [`META`] of the last journal generation the database absorbed.
pub(super) const JOURNAL_KEY: &str = "journal";
/// Client identifier -> session record.
pub(super) const SESSIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sessions");
/// (session uid, filter) -> options and identifier.
pub(super) const SUBSCRIPTIONS: TableDefinition<'_, (u64, &str), &[u8]> =
    TableDefinition::new("subscriptions");
/// (session uid, sequence) -> delivery.
pub(super) const QUEUE: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("queue");
/// (session uid, packet id) of inbound QoS 2 messages awaiting PUBREL.
pub(super) const AWAITING: TableDefinition<'_, (u64, u16), ()> =
    TableDefinition::new("awaiting_pubrel");
/// Message id -> message, shared by the deliveries that name it.
pub(super) const MESSAGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("messages");
/// Topic -> retained message.
pub(super) const RETAINED: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("retained");

/// Marks a Tern store ("TERN" in ASCII).
const MAGIC: u64 = 0x5445_524E;

/// A persistent session as stored.
#[derive(Debug)]
pub struct LoadedSession {
    /// Its client identifier.
    pub client_id: Arc<str>,
    /// Its record.
    pub record: SessionRecord,
    /// Its subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Its QoS 1/2 deliveries in queue order, with their positions and stages.
    pub deliveries: Vec<(u64, Delivery, EntryStage)>,
    /// Inbound QoS 2 packet identifiers awaiting PUBREL.
    pub awaiting_pubrel: BTreeSet<u16>,
}

/// Everything the store held when the broker started.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Retained messages.
    pub retained: Vec<Arc<Message>>,
    /// Persistent sessions.
    pub sessions: Vec<LoadedSession>,
    /// Highest message id in use.
    pub max_message_id: u64,
    /// Highest session uid in use.
    pub max_uid: u64,
}

impl Loaded {
    /// Stored deliveries per message id, for the writer's reference counts.
    pub(super) fn references(&self) -> HashMap<u64, u32> {
        let mut refs = HashMap::new();
        for session in &self.sessions {
            for (_, delivery, _) in &session.deliveries {
                *refs.entry(delivery.message.id).or_insert(0) += 1;
            }
        }
        refs
    }
}

/// What a store holds, for `tern broker --check-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The database file.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Store format.
    pub format: u64,
    /// Persistent sessions, and how many of them have a delayed will waiting.
    pub sessions: u64,
    /// Delayed wills waiting.
    pub wills: u64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// QoS 1/2 deliveries queued or in flight.
    pub deliveries: u64,
    /// Of those, QoS 2 ones in flight (PUBLISH or PUBREL sent).
    pub in_flight: u64,
    /// Distinct messages they hold.
    pub messages: u64,
    /// Retained messages.
    pub retained: u64,
    /// Inbound QoS 2 packet identifiers awaiting PUBREL.
    pub awaiting_pubrel: u64,
    /// Operations in the journal the database has not absorbed yet (a broker that died
    /// leaves them; the next start applies them). Not in the counts above.
    pub journal: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "store:              {}", self.file.display())?;
        writeln!(f, "size:               {} bytes", self.bytes)?;
        writeln!(f, "format:             {}", self.format)?;
        writeln!(f, "sessions:           {}", self.sessions)?;
        writeln!(f, "delayed wills:      {}", self.wills)?;
        writeln!(f, "subscriptions:      {}", self.subscriptions)?;
        writeln!(f, "queued deliveries:  {}", self.deliveries)?;
        writeln!(f, "  QoS 2 in flight:  {}", self.in_flight)?;
        writeln!(f, "messages:           {}", self.messages)?;
        writeln!(f, "retained messages:  {}", self.retained)?;
        writeln!(f, "awaiting PUBREL:    {}", self.awaiting_pubrel)?;
        write!(
            f,
            "journal:            {} operations not yet in the database{}",
            self.journal,
            if self.journal > 0 {
                " (applied at the next start)"
            } else {
                ""
            }
        )
    }
}

fn damaged(file: &Path, reason: impl ToString) -> StoreError {
    StoreError::Damaged {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn open_error(file: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            file: file.to_path_buf(),
        },
        redb::DatabaseError::UpgradeRequired(v) => StoreError::Format {
            file: file.to_path_buf(),
            found: format!("redb file format {v}"),
        },
        e => damaged(file, e),
    }
}

/// Opens or creates the database, checks (or writes) its format, and reads it all back.
pub(super) fn open_and_load(file: &Path) -> Result<(Database, Loaded), StoreError> {
    let existed = file.exists();
    let db = if existed {
        Database::open(file)
    } else {
        Database::create(file)
    }
    .map_err(|e| open_error(file, e))?;
    if existed {
        check_format(&db, file)?;
    } else {
        initialize(&db).map_err(|e| damaged(file, e))?;
    }
    let loaded = read_all(&db, file)?;
    Ok((db, loaded))
}

/// Writes the format marks and creates every table in a new store.
fn initialize(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert("magic", MAGIC)?;
        meta.insert("format", FORMAT)?;
        txn.open_table(SESSIONS)?;
        txn.open_table(SUBSCRIPTIONS)?;
        txn.open_table(QUEUE)?;
        txn.open_table(AWAITING)?;
        txn.open_table(MESSAGES)?;
        txn.open_table(RETAINED)?;
    }
    txn.commit()?;
    Ok(())
}

fn check_format(db: &impl ReadableDatabase, file: &Path) -> Result<u64, StoreError> {
    let foreign = |found: String| StoreError::Format {
        file: file.to_path_buf(),
        found,
    };
    let txn = db.begin_read().map_err(|e| damaged(file, e))?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(foreign("none (no Tern format mark)".into()))
        }
        Err(e) => return Err(damaged(file, e)),
    };
    let get = |key: &str| -> Result<Option<u64>, StoreError> {
        Ok(meta
            .get(key)
            .map_err(|e| damaged(file, e))?
            .map(|v| v.value()))
    };
    if get("magic")? != Some(MAGIC) {
        return Err(foreign("none (no Tern format mark)".into()));
    }
    match get("format")? {
        Some(FORMAT) => Ok(FORMAT),
        Some(other) => Err(foreign(other.to_string())),
        None => Err(foreign("missing".into())),
    }
}

fn record_error(file: &Path, e: RecordError) -> StoreError {
    damaged(file, e)
}

/// Reads every table into memory.
pub(super) fn read_all(db: &Database, file: &Path) -> Result<Loaded, StoreError> {
    let txn = db.begin_read().map_err(|e| damaged(file, e))?;
    let d = |e: redb::Error| damaged(file, e);
    let open = |e: redb::TableError| damaged(file, e);
    let now = crate::clock::now();
    let wall = SystemTime::now();
    let mut loaded = Loaded::default();

    let mut messages: HashMap<u64, Arc<Message>> = HashMap::new();
    for item in txn
        .open_table(MESSAGES)
        .map_err(open)?
        .iter()
        .map_err(|e| d(e.into()))?
    {
        let (key, value) = item.map_err(|e| d(e.into()))?;
        let message =
            restore_message(value.value(), now, wall).map_err(|e| record_error(file, e))?;
        loaded.max_message_id = loaded.max_message_id.max(key.value());
        messages.insert(key.value(), message);
    }
    for item in txn
        .open_table(RETAINED)
        .map_err(open)?
        .iter()
        .map_err(|e| d(e.into()))?
    {
        let (_, value) = item.map_err(|e| d(e.into()))?;
        let message =
            restore_message(value.value(), now, wall).map_err(|e| record_error(file, e))?;
        loaded.max_message_id = loaded.max_message_id.max(message.id);
        loaded.retained.push(message);
    }

    let mut by_uid: HashMap<u64, LoadedSession> = HashMap::new();
    for item in txn
        .open_table(SESSIONS)
        .map_err(open)?
        .iter()
        .map_err(|e| d(e.into()))?
    {
        let (key, value) = item.map_err(|e| d(e.into()))?;
        let record = record::decode_session(value.value()).map_err(|e| record_error(file, e))?;
        loaded.max_uid = loaded.max_uid.max(record.uid);
        by_uid.insert(
            record.uid,
            LoadedSession {
                client_id: key.value().into(),
                record,
                subscriptions: Vec::new(),
                deliveries: Vec::new(),
                awaiting_pubrel: BTreeSet::new(),
            },
        );
    }
    for item in txn
        .open_table(SUBSCRIPTIONS)
        .map_err(open)?
        .iter()
        .map_err(|e| d(e.into()))?
    {
        let (key, value) = item.map_err(|e| d(e.into()))?;
        let (uid, filter) = key.value();
        loaded.max_uid = loaded.max_uid.max(uid);
        let Some(session) = by_uid.get_mut(&uid) else {
            continue;
        };
        let (filter, options, id) = record::decode_subscription(filter, value.value())
            .map_err(|e| record_error(file, e))?;
        session.subscriptions.push(Subscription {
            filter,
            options,
            id,
        });
    }
    for item in txn
        .open_table(QUEUE)
        .map_err(open)?
        .iter()
        .map_err(|e| d(e.into()))?
    {
        let (key, value) = item.map_err(|e| d(e.into()))?;
        let (uid, seq) = key.value();
        loaded.max_uid = loaded.max_uid.max(uid);
        let Some(session) = by_uid.get_mut(&uid) else {
            continue;
        };
        let entry = record::decode_entry(value.value()).map_err(|e| record_error(file, e))?;
        let Some(message) = messages.get(&entry.message) else {
            return Err(damaged(
                file,
                format!(
                    "a queued delivery names message {} which is missing",
                    entry.message
                ),
            ));
        };
        let shared = match entry.shared {
            Some(filter) => Some(
                tern_codec::TopicFilter::try_from(filter.as_str()).map_err(|e| damaged(file, e))?,
            ),
            None => None,
        };
        let delivery = Delivery {
            message: message.clone(),
            qos: entry.qos,
            retain: entry.retain,
            subscription_ids: entry.subscription_ids,
            shared,
            stored: Some(seq),
        };
        session.deliveries.push((seq, delivery, entry.stage));
    }
    for item in txn
        .open_table(AWAITING)
        .map_err(open)?
        .iter()
        .map_err(|e| d(e.into()))?
    {
        let (key, _) = item.map_err(|e| d(e.into()))?;
        let (uid, packet_id) = key.value();
        if let Some(session) = by_uid.get_mut(&uid) {
            session.awaiting_pubrel.insert(packet_id);
        }
    }
    loaded.sessions = by_uid.into_values().collect();
    loaded.sessions.sort_by_key(|s| s.record.uid);
    Ok(loaded)
}

fn restore_message(
    bytes: &[u8],
    now: Instant,
    wall: SystemTime,
) -> Result<Arc<Message>, RecordError> {
    let (mut message, received) = record::decode_message(bytes)?;
    message.received_at = record::instant_of(received, now, wall);
    Ok(Arc::new(message))
}

/// Counts what the store at `file` holds. Nothing is written; a store left open by a
/// broker that died has its allocation state rebuilt on opening (redb's repair), which
/// changes no data.
pub(super) fn summarize(file: &Path) -> Result<Summary, StoreError> {
    if !file.exists() {
        return Err(damaged(file, "no such file"));
    }
    let db = Database::open(file).map_err(|e| open_error(file, e))?;
    let format = check_format(&db, file)?;
    let txn = db.begin_read().map_err(|e| damaged(file, e))?;
    let open = |e: redb::TableError| damaged(file, e);
    let d = |e: redb::StorageError| damaged(file, e);
    let mut summary = Summary {
        file: file.to_path_buf(),
        bytes: std::fs::metadata(file).map_or(0, |m| m.len()),
        format,
        sessions: 0,
        wills: 0,
        subscriptions: txn
            .open_table(SUBSCRIPTIONS)
            .map_err(open)?
            .len()
            .map_err(d)?,
        deliveries: 0,
        in_flight: 0,
        messages: txn.open_table(MESSAGES).map_err(open)?.len().map_err(d)?,
        retained: txn.open_table(RETAINED).map_err(open)?.len().map_err(d)?,
        awaiting_pubrel: txn.open_table(AWAITING).map_err(open)?.len().map_err(d)?,
        journal: 0,
    };
    let absorbed = super::writer::absorbed_generation(&db).map_err(|e| damaged(file, e))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    for journal in super::journal::recover_all(dir)? {
        if journal.generation > absorbed {
            summary.journal += journal.ops.len() as u64;
        }
    }
    for item in txn.open_table(SESSIONS).map_err(open)?.iter().map_err(d)? {
        let (_, value) = item.map_err(d)?;
        let record = record::decode_session(value.value()).map_err(|e| record_error(file, e))?;
        summary.sessions += 1;
        summary.wills += u64::from(record.will.is_some());
    }
    for item in txn.open_table(QUEUE).map_err(open)?.iter().map_err(d)? {
        let (_, value) = item.map_err(d)?;
        let entry = record::decode_entry(value.value()).map_err(|e| record_error(file, e))?;
        summary.deliveries += 1;
        summary.in_flight += u64::from(entry.stage != EntryStage::Queued);
    }
    Ok(summary)
}
