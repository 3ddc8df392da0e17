//! The journal: append-only files of the operations committed since the last checkpoint.
//!
//! A group of operations is made durable by appending it to the journal as one frame and
//! syncing the file: one sequential write, however many sessions and tables it touches.
//! Every so often the writer ends the journal's generation, hands what is still pending to
//! the checkpointer to fold into the database (deliveries completed in the meantime are
//! never written there), and goes on in the next generation. On start, generations the
//! database has not absorbed yet are replayed into it first.
//!
//! Generations alternate between two files, `tern-0.journal` and `tern-1.journal` (even and
//! odd), so the next one can be written while the last is being folded. A file is reused
//! only once its generation is absorbed: its header is rewritten in place (one sector) and
//! the new frames overwrite the old, whose checksums, made with the old generation, no
//! longer match. So a file keeps its blocks and size, and a sync after an append writes the
//! data alone, not the file's size and block map too. For the same reason a file that must
//! grow grows by [`GROW`] bytes of zeros at a time, not frame by frame: on ext4 a sync that
//! also writes the file's size and block map costs about a tenth more of the writer's time.
//! A broker that stops cleanly truncates both files to their headers.
//!
//! Layout: a 24-byte header (`TERNJRNL`, format `u32`, 4 reserved bytes, generation `u64`),
//! then frames: magic `u32`, payload length `u32`, CRC-32 of the generation and the payload
//! `u32`, payload ([`super::journal_record`]). All integers big-endian.
//!
//! The generation makes a replay safe to repeat: the fold of generation `g` records `g` in
//! the database in the same transaction, and a generation the database already records is
//! skipped.
//!
//! A crash can cut the last frame short: it was never synced, so nothing in it was
//! acknowledged, and it is dropped. A damaged frame with whole frames of the same
//! generation after it is not a crash's doing: the broker stops and leaves the file as it
//! is.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use super::journal_record::{Decoder, Encoder};
use super::{Op, StoreError};

/// Names of the two journal files in the data directory (even and odd generations).
pub const JOURNAL_FILES: [&str; 2] = ["tern-0.journal", "tern-1.journal"];
/// Format of the journal's header and frames.
pub const JOURNAL_FORMAT: u32 = 1;

/// The file of journal `generation` in `dir`.
pub(super) fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(JOURNAL_FILES[(generation % 2) as usize])
}

const MAGIC: &[u8; 8] = b"TERNJRNL";
const HEADER: usize = 24;
const FRAME_MAGIC: u32 = 0x544A_4652;
const FRAME_HEADER: usize = 12;
/// How much a journal file grows by when a frame would pass its end: zeros, which no frame
/// reads as one (its magic is not 0).
const GROW: u64 = 4 * 1024 * 1024;

/// The open journal the writer appends to.
#[derive(Debug)]
pub(super) struct Journal {
    file: File,
    generation: u64,
    len: u64,
    /// Length of the file: frames of this generation end at `len`, zeros or an earlier
    /// generation's frames follow.
    allocated: u64,
    frame: BytesMut,
    encoder: Encoder,
}

impl Journal {
    /// A journal of `generation` at `path`: the file there, if any, is reused (its content
    /// must have been absorbed or be of no use), else a new one is made.
    pub(super) fn create(path: &Path, generation: u64) -> std::io::Result<Journal> {
        let file = match OpenOptions::new().write(true).open(path) {
            Ok(file) => {
                write_header(&file, generation)?;
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_file(path, generation)?,
            Err(e) => return Err(e),
        };
        let allocated = file.metadata()?.len().max(HEADER as u64);
        Ok(Journal {
            file,
            generation,
            len: HEADER as u64,
            allocated,
            frame: BytesMut::with_capacity(64 * 1024),
            encoder: Encoder::default(),
        })
    }

    /// The generation being written.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes of this generation: the header and its frames.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// True when no operation was written in this generation.
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
        let crc = frame_crc(self.generation, payload);
        let len = payload.len() as u32;
        self.frame[0..4].copy_from_slice(&FRAME_MAGIC.to_be_bytes());
        self.frame[4..8].copy_from_slice(&len.to_be_bytes());
        self.frame[8..12].copy_from_slice(&crc.to_be_bytes());
        let written = self.file.write_all_at(&self.frame, self.len);
        self.len += self.frame.len() as u64;
        self.frame.clear();
        if self.frame.capacity() > 4 * 1024 * 1024 {
            self.frame = BytesMut::with_capacity(64 * 1024);
        }
        written?;
        if self.len > self.allocated {
            self.grow()?;
        }
        self.file.sync_data()
    }

    /// Writes zeros after the last frame up to the next multiple of [`GROW`], so the syncs
    /// of the next frames do not change the file's size.
    fn grow(&mut self) -> std::io::Result<()> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let end = self.len.next_multiple_of(GROW);
        let mut at = self.len;
        while at < end {
            let n = (end - at).min(ZEROS.len() as u64) as usize;
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.allocated = end;
        Ok(())
    }

    /// Cuts the file down to its header (at a clean stop, once everything is absorbed).
    pub(super) fn truncate(&mut self) -> std::io::Result<()> {
        self.file.set_len(HEADER as u64)?;
        self.file.sync_all()
    }
}

/// Cuts the journal file at `path`, if there is one, down to its header (at a clean stop,
/// for the file of the generation before the current one, once it is absorbed).
pub(super) fn truncate_file(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => {
            file.set_len(HEADER as u64)?;
            file.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn header(generation: u64) -> [u8; HEADER] {
    let mut header = [0; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&JOURNAL_FORMAT.to_be_bytes());
    header[16..24].copy_from_slice(&generation.to_be_bytes());
    header
}

/// Rewrites the header of an existing journal in place and syncs it.
fn write_header(file: &File, generation: u64) -> std::io::Result<()> {
    file.write_all_at(&header(generation), 0)?;
    file.sync_data()
}

/// Writes a journal holding only its header beside `path`, syncs it, and renames it to
/// `path`, so `path` is always a whole journal.
fn new_file(path: &Path, generation: u64) -> std::io::Result<File> {
    let fresh = path.with_extension("journal.new");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&fresh)?;
    file.write_all(&header(generation))?;
    file.sync_all()?;
    std::fs::rename(&fresh, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

/// A frame's checksum: of its generation and its payload, so frames left over from an
/// earlier generation never pass as this one's.
fn frame_crc(generation: u64, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&generation.to_be_bytes());
    crc.update(payload);
    crc.finalize()
}

/// What a journal file held.
#[derive(Debug)]
pub(super) struct Recovered {
    /// Its generation.
    pub generation: u64,
    /// Its operations, in the order they were committed.
    pub ops: Vec<Op>,
    /// Bytes after its last whole frame, not counting the zeros the file grows by: frames
    /// of earlier generations, or a write a crash cut short (never synced, so never
    /// acknowledged).
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
        let Some(end) = frame_at(&data, at, generation) else {
            let later = (at + 1..data.len()).find(|&q| frame_at(&data, q, generation).is_some());
            if let Some(next) = later {
                return Err(damaged(
                    path,
                    format!(
                        "the journal frame at byte {at} is damaged and whole frames follow it at \
                         byte {next}"
                    ),
                ));
            }
            let torn = data[at..]
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |p| p + 1);
            return Ok(Some(Recovered {
                generation,
                ops,
                torn: torn as u64,
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

/// Reads both journal files in `dir` without changing them, oldest generation first.
pub(super) fn recover_all(dir: &Path) -> Result<Vec<Recovered>, StoreError> {
    let mut all = Vec::new();
    for name in JOURNAL_FILES {
        if let Some(recovered) = recover(&dir.join(name))? {
            all.push(recovered);
        }
    }
    all.sort_by_key(|r| r.generation);
    Ok(all)
}

/// The end of the whole, intact frame of `generation` starting at `at`, if there is one.
fn frame_at(data: &[u8], at: usize, generation: u64) -> Option<usize> {
    let header = data.get(at..at + FRAME_HEADER)?;
    let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    if word(0) != FRAME_MAGIC {
        return None;
    }
    let end = (at + FRAME_HEADER).checked_add(word(4) as usize)?;
    let payload = data.get(at + FRAME_HEADER..end)?;
    (!payload.is_empty() && frame_crc(generation, payload) == word(8)).then_some(end)
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::{journal_path, recover, recover_all, Journal, GROW, HEADER};
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
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, GROW, "grown by a whole chunk");
        assert!(bytes[journal.len() as usize..].iter().all(|&b| b == 0));
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(recovered.generation, 7);
        assert_eq!(packet_ids(&recovered.ops), [1, 2, 3]);
        assert_eq!(recovered.torn, 0, "the zeros are not a torn write");
    }

    #[test]
    fn a_file_grows_by_whole_chunks_of_zeros_not_frame_by_frame() {
        let path = dir("grow").join("tern.journal");
        let mut journal = write_frames(&path, &[&[1]]);
        let size = || std::fs::metadata(&path).unwrap().len();
        assert_eq!(size(), GROW);
        let (now, wall) = (Instant::now(), SystemTime::now());
        for id in 2..100 {
            journal.put(&awaiting(id), now, wall);
            journal.commit().unwrap();
            assert_eq!(
                size(),
                GROW,
                "a small frame inside the chunk keeps the size"
            );
        }
        // A frame past the chunk's end grows the file to the next whole chunk.
        let topic = tern_codec::TopicName::try_from("big").unwrap();
        let big = crate::message::Message::detached(
            &topic,
            &vec![7; GROW as usize],
            tern_codec::QoS::AtMostOnce,
            true,
            Default::default(),
            None,
            now,
        );
        journal.put(&Op::Retain(std::sync::Arc::new(big)), now, wall);
        journal.commit().unwrap();
        assert_eq!(size(), 2 * GROW);
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(recovered.ops.len(), 100);
        assert_eq!(recovered.torn, 0);
    }

    #[test]
    fn a_frame_cut_short_by_a_crash_is_dropped() {
        let path = dir("torn").join("tern.journal");
        let journal = write_frames(&path, &[&[1, 2], &[3, 4]]);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(journal.len() - 5).unwrap();
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
    fn a_reused_file_ignores_the_frames_of_its_old_generation() {
        let path = dir("reuse").join("tern-1.journal");
        let journal = write_frames(&path, &[&[1, 2, 3], &[4, 5, 6]]);
        let old_frames = journal.len() - HEADER as u64;
        drop(journal);
        let size = std::fs::metadata(&path).unwrap().len();
        let mut journal = Journal::create(&path, 9).unwrap();
        assert!(journal.is_empty());
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(recovered.generation, 9);
        assert!(
            recovered.ops.is_empty(),
            "generation 7's frames are not 9's"
        );
        assert_eq!(recovered.torn, old_frames);

        // A shorter frame of generation 9 over generation 7's: only it reads back.
        journal.put(&awaiting(9), Instant::now(), SystemTime::now());
        journal.commit().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size, "no growth");
        let recovered = recover(&path).unwrap().unwrap();
        assert_eq!(packet_ids(&recovered.ops), [9]);

        journal.truncate().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER as u64);
        assert!(recover(&path.with_extension("none")).unwrap().is_none());
    }

    #[test]
    fn both_files_read_back_oldest_first() {
        let dir = dir("both");
        let mut odd = Journal::create(&journal_path(&dir, 5), 5).unwrap();
        let mut even = Journal::create(&journal_path(&dir, 6), 6).unwrap();
        let (now, wall) = (Instant::now(), SystemTime::now());
        even.put(&awaiting(2), now, wall);
        even.commit().unwrap();
        odd.put(&awaiting(1), now, wall);
        odd.commit().unwrap();
        let all = recover_all(&dir).unwrap();
        assert_eq!(all.iter().map(|r| r.generation).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(packet_ids(&all[0].ops), [1]);
        assert_eq!(packet_ids(&all[1].ops), [2]);
    }
}
