//! The journal: an append-only file of the operations committed since the last checkpoint.
//!
//! A group of operations is made durable by appending it to the journal as one frame and
//! syncing the file: one sequential write, however many sessions and tables it touches.
//! Every so often the writer folds what is still pending into the database (a checkpoint:
//! deliveries completed in the meantime are never written there) and starts a new journal.
//! On start, a journal the database has not absorbed yet is replayed into it first.
//!
//! Layout: a 24-byte header (`TERNJRNL`, format `u32`, 4 reserved bytes, generation `u64`),
//! then frames: magic `u32`, payload length `u32`, CRC-32 of the payload `u32`, payload
//! ([`super::journal_record`]). All integers big-endian.
//!
//! The generation makes a replay safe to repeat: the checkpoint that absorbs generation `g`
//! records `g` in the database in the same transaction, and a journal whose generation the
//! database already records is skipped. A new journal is written beside the old one and
//! renamed over it, so the file is always a whole journal.
//!
//! A crash can cut the last frame short: it was never synced, so nothing in it was
//! acknowledged, and it is dropped with a warning. A damaged frame with whole frames after
//! it is not a crash's doing: the broker stops and leaves the file as it is.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use super::journal_record::{Decoder, Encoder};
use super::{Op, StoreError};

/// Name of the journal file in the data directory.
pub const JOURNAL_FILE: &str = "tern.journal";
/// Format of the journal's header and frames.
pub const JOURNAL_FORMAT: u32 = 1;

const MAGIC: &[u8; 8] = b"TERNJRNL";
const HEADER: usize = 24;
const FRAME_MAGIC: u32 = 0x544A_4652;
const FRAME_HEADER: usize = 12;

/// The open journal the writer appends to.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    file: File,
    generation: u64,
    len: u64,
    frame: BytesMut,
    encoder: Encoder,
}

impl Journal {
    /// A new, empty journal of `generation` at `path`, replacing the file there.
    pub(super) fn create(path: &Path, generation: u64) -> std::io::Result<Journal> {
        let file = replace_with_empty(path, generation)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            generation,
            len: HEADER as u64,
            frame: BytesMut::with_capacity(64 * 1024),
            encoder: Encoder::default(),
        })
    }

    /// The generation of the file being written.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes in the file.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// True when no operation was written since the journal started.
    pub(super) fn is_empty(&self) -> bool {
        self.len == HEADER as u64
    }

    /// Adds an operation to the frame being built.
    pub(super) fn put(&mut self, op: &Op, now: Instant, wall: SystemTime) {
        if self.frame.is_empty() {
            self.frame.put_bytes(0, FRAME_HEADER);
        }
        self.encoder.put(&mut self.frame, op, now, wall);
    }

    /// Appends the frame built since the last commit and syncs the file: what was put is
    /// durable when this returns.
    pub(super) fn commit(&mut self) -> std::io::Result<()> {
        if self.frame.len() <= FRAME_HEADER {
            self.frame.clear();
            return Ok(());
        }
        let payload = &self.frame[FRAME_HEADER..];
        let crc = crc32fast::hash(payload);
        let len = payload.len() as u32;
        self.frame[0..4].copy_from_slice(&FRAME_MAGIC.to_be_bytes());
        self.frame[4..8].copy_from_slice(&len.to_be_bytes());
        self.frame[8..12].copy_from_slice(&crc.to_be_bytes());
        let written = self.file.write_all(&self.frame);
        self.len += self.frame.len() as u64;
        self.frame.clear();
        if self.frame.capacity() > 4 * 1024 * 1024 {
            self.frame = BytesMut::with_capacity(64 * 1024);
        }
        written?;
        self.file.sync_data()
    }

    /// Starts the next generation in a new, empty file.
    pub(super) fn restart(&mut self) -> std::io::Result<()> {
        let generation = self.generation + 1;
        self.file = replace_with_empty(&self.path, generation)?;
        self.generation = generation;
        self.len = HEADER as u64;
        self.encoder.reset();
        Ok(())
    }
}

/// Writes a journal holding only its header beside `path`, syncs it, and renames it over
/// `path`, so `path` is always a whole journal.
fn replace_with_empty(path: &Path, generation: u64) -> std::io::Result<File> {
    let fresh = path.with_extension("journal.new");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&fresh)?;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&JOURNAL_FORMAT.to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    header.extend_from_slice(&generation.to_be_bytes());
    file.write_all(&header)?;
    file.sync_all()?;
    std::fs::rename(&fresh, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

/// What a journal file held.
#[derive(Debug)]
pub(super) struct Recovered {
    /// Its generation.
    pub generation: u64,
    /// Its operations, in the order they were committed.
    pub ops: Vec<Op>,
    /// Bytes at its end that a crash cut short (never synced, never acknowledged).
    pub torn: u64,
}

fn damaged(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Damaged {
        file: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads the journal at `path` without changing it; `None` when there is none.
pub(super) fn recover(path: &Path) -> Result<Option<Recovered>, StoreError> {
    let data = match std::fs::read(path) {
        Ok(data) => Bytes::from(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(damaged(path, e)),
    };
    if data.is_empty() {
        return Ok(None);
    }
    if data.len() < HEADER || &data[..8] != MAGIC {
        return Err(StoreError::Format {
            file: path.to_path_buf(),
            found: "none (not a Tern journal)".into(),
        });
    }
    let format = u32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
    if format != JOURNAL_FORMAT {
        return Err(StoreError::Format {
            file: path.to_path_buf(),
            found: format!("journal format {format}"),
        });
    }
    let generation = u64::from_be_bytes(data[16..24].try_into().expect("8 bytes"));
    let mut decoder = Decoder::new(crate::clock::now(), SystemTime::now());
    let mut ops = Vec::new();
    let mut at = HEADER;
    while at < data.len() {
        let Some(end) = frame_at(&data, at) else {
            if let Some(next) = (at + 1..data.len()).find(|&q| frame_at(&data, q).is_some()) {
                return Err(damaged(
                    path,
                    format!(
                        "the journal frame at byte {at} is damaged and whole frames follow it at \
                         byte {next}"
                    ),
                ));
            }
            return Ok(Some(Recovered {
                generation,
                ops,
                torn: (data.len() - at) as u64,
            }));
        };
        let payload = data.slice(at + FRAME_HEADER..end);
        decoder
            .read_all(payload, &mut ops)
            .map_err(|e| damaged(path, format!("the journal frame at byte {at}: {e}")))?;
        at = end;
    }
    Ok(Some(Recovered {
        generation,
        ops,
        torn: 0,
    }))
}

/// The end of the whole, intact frame starting at `at`, if there is one.
fn frame_at(data: &[u8], at: usize) -> Option<usize> {
    let header = data.get(at..at + FRAME_HEADER)?;
    let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    if word(0) != FRAME_MAGIC {
        return None;
    }
    let end = (at + FRAME_HEADER).checked_add(word(4) as usize)?;
    let payload = data.get(at + FRAME_HEADER..end)?;
    (!payload.is_empty() && crc32fast::hash(payload) == word(8)).then_some(end)
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::{recover, Journal, HEADER};
    use crate::store::{Op, StoreError};

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tern-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn awaiting(packet_id: u16) -> Op {
        Op::AwaitingPubRel {
            uid: 1,
            packet_id,
            present: true,
        }
    }

    fn packet_ids(ops: &[Op]) -> Vec<u16> {
        ops.iter()
            .map(|op| match op {
                Op::AwaitingPubRel { packet_id, .. } => *packet_id,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn write_frames(path: &std::path::Path, frames: &[&[u16]]) -> Journal {
        let mut journal = Journal::create(path, 7).unwrap();
        let (now, wall) = (Instant::now(), SystemTime::now());
        for frame in frames {
            for id in *frame {
                journal.put(&awaiting(*id), now, wall);
            }
            journal.commit().unwrap();
        }
        journal
    }

    #[test]
    fn committed_frames_read_back_in_order() {
        let path = dir("order").join("tern.journal");
        let journal = write_frames(&path, &[&[1, 2], &[3]]);
        assert_eq!(journal.len(), std::fs::metadata(&path).unwrap().len());
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(recovered.generation, 7);
        assert_eq!(packet_ids(&recovered.ops), [1, 2, 3]);
        assert_eq!(recovered.torn, 0);
    }

    #[test]
    fn a_frame_cut_short_by_a_crash_is_dropped() {
        let path = dir("torn").join("tern.journal");
        write_frames(&path, &[&[1, 2], &[3, 4]]);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 5).unwrap();
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(packet_ids(&recovered.ops), [1, 2]);
        assert!(recovered.torn > 0);
    }

    #[test]
    fn damage_before_whole_frames_stops_with_the_file_left_alone() {
        let path = dir("damaged").join("tern.journal");
        write_frames(&path, &[&[1, 2], &[3, 4]]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 14] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let error = recover(&path).unwrap_err();
        assert!(matches!(error, StoreError::Damaged { .. }), "{error}");
        assert!(error.to_string().contains("whole frames follow"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_foreign_or_newer_file_is_refused() {
        let path = dir("foreign").join("tern.journal");
        std::fs::write(&path, b"somebody else's file, long enough to have a header").unwrap();
        let error = recover(&path).unwrap_err();
        assert!(matches!(error, StoreError::Format { .. }), "{error}");
        write_frames(&path, &[&[1]]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[11] = 2;
        std::fs::write(&path, &bytes).unwrap();
        let error = recover(&path).unwrap_err();
        assert!(error.to_string().contains("journal format 2"), "{error}");
    }

    #[test]
    fn restart_begins_an_empty_next_generation() {
        let path = dir("restart").join("tern.journal");
        let mut journal = write_frames(&path, &[&[1]]);
        assert!(!journal.is_empty());
        journal.restart().unwrap();
        assert!(journal.is_empty());
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(recovered.generation, 8);
        assert!(recovered.ops.is_empty());
        assert!(recover(&path.with_extension("none")).unwrap().is_none());
    }
}
