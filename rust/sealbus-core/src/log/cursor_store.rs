//! Where every durable consumer's cursor is stored: one append-only journal for all
//! of them (docs/FORMAT-LOG.md, "Cursor journal").
//!
//! A save appends the consumer's whole cursor as one checksummed record and fsyncs
//! the journal; a group of saves ([`CursorStore::batch`]) shares one write and one
//! fsync, however many consumers it holds. Opening reads the journal once (the last
//! record of each consumer wins), so a router with thousands of consumers reopens
//! without a file per consumer. When the journal has grown well past what is live,
//! it is rewritten with one record per consumer into a temporary file, fsynced, and
//! renamed over the old one (the directory fsynced): a crash leaves the old journal
//! or the new one.
//!
//! A crash can only lose records whose save had not returned: each save returns
//! after its fsync, and records are written one after the other, so what a crash
//! tore is at the end, and opening cuts it. A cursor may therefore lag what its
//! consumer settled (those events are delivered again), never lead it. A complete
//! record that fails its checksum is damage, not a crash: it is refused with
//! `LogCorrupted`, never dropped.
//!
//! Cursor files of the layout before the journal (one `HEX.cursor` file per
//! consumer) are read at open, written to the journal, fsynced, and only then
//! removed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::cursor::Cursor;
use super::io::{FileStorage, Storage, StorageFile};
use super::recovery::io_err;
use crate::error::{Error, Result};

/// The journal's name in the cursor directory.
pub const JOURNAL: &str = "cursors.journal";
/// Where a compaction writes the next journal before renaming it over [`JOURNAL`].
const JOURNAL_TMP: &str = "cursors.journal.tmp";
const MAGIC: &[u8; 8] = b"SBUSCJR1";
/// Record header: body length u32, CRC32C of the body u32, CRC32C of those 8 bytes u32.
const RECORD_HEAD: usize = 12;
const PUT: u8 = 1;
const REMOVE: u8 = 2;
const MAX_NAME: usize = 100;
/// The journal is compacted once it is this long and four times what is live.
const COMPACT_MIN: u64 = 1 << 20;

/// The cursors of one directory.
#[derive(Debug)]
pub struct CursorStore {
    storage: Arc<dyn Storage>,
    journal: Mutex<Journal>,
    /// Compact once the journal is this long (and four times what is live).
    compact_min: u64,
}

#[derive(Debug)]
struct Journal {
    /// None when opened read-only.
    file: Option<Arc<dyn StorageFile>>,
    /// End of the last whole record: the next record goes here.
    end: u64,
    /// Each consumer's latest cursor, encoded as [`Cursor::encode`] does.
    live: HashMap<String, Vec<u8>>,
    /// Bytes the live cursors take as records (what a compaction writes).
    live_bytes: u64,
    /// What opening cut off the end (a torn write), in bytes.
    cut: u64,
    /// A compaction renamed the journal but could not fsync the directory: the next
    /// append does, or what it writes could vanish with the rename at a power cut.
    dir_unsynced: bool,
    /// An append failed: bytes of it may lie past `end`, cut before the next one.
    tail_unclean: bool,
}

fn check_name(consumer: &str) -> Result<()> {
    if consumer.is_empty() || consumer.len() > MAX_NAME {
        return Err(Error::InvalidArgument {
            name: "consumer".into(),
            reason: format!("must be 1 to {MAX_NAME} bytes, got {}", consumer.len()),
        });
    }
    Ok(())
}

fn record_len(consumer: &str, cursor: &[u8]) -> u64 {
    (RECORD_HEAD + 2 + consumer.len() + cursor.len()) as u64
}

/// Append one record: `kind`, the consumer's name, and for a put its cursor.
fn write_record(out: &mut Vec<u8>, kind: u8, consumer: &str, cursor: &[u8]) {
    let body_len = 2 + consumer.len() + cursor.len();
    let head = out.len();
    // Names are checked to be at most MAX_NAME bytes, cursors far below 4 GiB.
    out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    let body = out.len();
    out.push(kind);
    out.push(u8::try_from(consumer.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(consumer.as_bytes());
    out.extend_from_slice(cursor);
    let crc = crc32c::crc32c(&out[body..]);
    out[head + 4..head + 8].copy_from_slice(&crc.to_le_bytes());
    let head_crc = crc32c::crc32c(&out[head..head + 8]);
    out[head + 8..head + 12].copy_from_slice(&head_crc.to_le_bytes());
}

/// What the journal holds at a position.
enum Step<'a> {
    Record {
        next: usize,
        kind: u8,
        name: String,
        cursor: &'a [u8],
    },
    /// The end of the file.
    End,
    /// A record cut short by a crash (see docs/FORMAT-LOG.md, "Cursor journal").
    Torn,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Read the record at `at`. A crash leaves a prefix of the last write: fewer bytes
/// than a header, a verified header declaring more than what is left, or a zero
/// tail. Anything else that does not verify is damage, refused with `LogCorrupted`:
/// a complete record, once fsynced, is never dropped silently.
fn read_record(bytes: &[u8], at: usize) -> Result<Step<'_>> {
    let bad = |reason: &str| Error::LogCorrupted {
        segment: JOURNAL.into(),
        offset: at as u64,
        reason: format!("{reason} (record at byte {at})"),
    };
    let rest = &bytes[at..];
    if rest.is_empty() {
        return Ok(Step::End);
    }
    if rest.len() < RECORD_HEAD {
        return Ok(Step::Torn);
    }
    if crc32c::crc32c(&rest[..8]) != u32_at(rest, 8) {
        if rest.iter().all(|&b| b == 0) {
            return Ok(Step::Torn);
        }
        return Err(bad("record header checksum mismatch"));
    }
    let len = u32_at(rest, 0) as usize;
    let Some(body) = rest.get(RECORD_HEAD..RECORD_HEAD + len) else {
        return Ok(Step::Torn);
    };
    if crc32c::crc32c(body) != u32_at(rest, 4) {
        return Err(bad("record checksum mismatch"));
    }
    let (&kind, rest) = body.split_first().ok_or_else(|| bad("empty record"))?;
    let (&name_len, rest) = rest
        .split_first()
        .ok_or_else(|| bad("record without a name"))?;
    let name_len = usize::from(name_len);
    if rest.len() < name_len || name_len == 0 || name_len > MAX_NAME {
        return Err(bad("bad consumer name length"));
    }
    let (name, cursor) = rest.split_at(name_len);
    let name = std::str::from_utf8(name).map_err(|_| bad("consumer name is not UTF-8"))?;
    match kind {
        PUT if !cursor.is_empty() => {}
        REMOVE if cursor.is_empty() => {}
        _ => return Err(bad(&format!("unknown record kind {kind}"))),
    }
    Ok(Step::Record {
        next: at + RECORD_HEAD + len,
        kind,
        name: name.to_owned(),
        cursor,
    })
}

/// The file name of a consumer's cursor in the layout before the journal: the hex
/// of its name.
#[cfg(test)]
fn legacy_file_name(consumer: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(consumer.len() * 2 + 7);
    for b in consumer.bytes() {
        let _ = write!(s, "{b:02x}");
    }
    s.push_str(".cursor");
    s
}

fn legacy_consumer(file: &str) -> Option<String> {
    let hex = file.strip_suffix(".cursor")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn read_whole(storage: &dyn Storage, file: &dyn StorageFile, name: &str) -> Result<Vec<u8>> {
    let len = file.len().map_err(io_err(storage, "stat", name))?;
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_at(0, &mut bytes)
        .map_err(io_err(storage, "read", name))?;
    Ok(bytes)
}

impl Journal {
    fn apply(&mut self, kind: u8, name: String, cursor: &[u8]) {
        if let Some(old) = self.live.remove(&name) {
            self.live_bytes -= record_len(&name, &old);
        }
        if kind == PUT {
            self.live_bytes += record_len(&name, cursor);
            self.live.insert(name, cursor.to_vec());
        }
    }

    /// Read the records of `bytes` (a whole journal); returns where they end.
    fn replay(&mut self, bytes: &[u8]) -> Result<u64> {
        if bytes.len() < MAGIC.len() {
            // Created but its header never reached the disk: nothing was saved in it.
            return Ok(0);
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(Error::LogCorrupted {
                segment: JOURNAL.into(),
                offset: 0,
                reason: "not a sealbus cursor journal (bad magic)".into(),
            });
        }
        let mut at = MAGIC.len();
        while let Step::Record {
            next,
            kind,
            name,
            cursor,
        } = read_record(bytes, at)?
        {
            self.apply(kind, name, cursor);
            at = next;
        }
        Ok(at as u64)
    }
}

impl CursorStore {
    /// The cursors in `dir` (created if needed), for writing: a torn end of the
    /// journal is cut, and cursor files of the layout before it are moved into it.
    pub fn open(dir: &Path) -> Result<CursorStore> {
        let storage = FileStorage::new(dir).map_err(|source| Error::LogIo {
            op: "create directory",
            path: dir.display().to_string(),
            source,
        })?;
        CursorStore::with_storage(Arc::new(storage))
    }

    /// The cursors in `dir`, to read only: nothing on disk changes (a torn end is
    /// skipped, not cut; cursor files of the old layout are read in place).
    pub fn open_read_only(dir: &Path) -> Result<CursorStore> {
        let storage = FileStorage::read_only(dir).map_err(|source| Error::LogIo {
            op: "open directory",
            path: dir.display().to_string(),
            source,
        })?;
        CursorStore::with_storage(Arc::new(storage))
    }

    /// The cursors of `storage` (read-only if the storage is).
    pub fn with_storage(storage: Arc<dyn Storage>) -> Result<CursorStore> {
        let s = storage.as_ref();
        let names = s.list().map_err(io_err(s, "list", ""))?;
        let mut journal = Journal {
            file: None,
            end: 0,
            live: HashMap::new(),
            live_bytes: 0,
            cut: 0,
            dir_unsynced: false,
            tail_unclean: false,
        };
        let exists = names.iter().any(|n| n == JOURNAL);
        let mut len = 0;
        if exists {
            let file = s.open(JOURNAL, false).map_err(io_err(s, "open", JOURNAL))?;
            let bytes = read_whole(s, file.as_ref(), JOURNAL)?;
            len = bytes.len() as u64;
            journal.end = journal.replay(&bytes)?;
            journal.cut = len - journal.end;
            if !s.read_only() {
                journal.file = Some(file);
            }
        }
        // Cursor files of the old layout that the journal does not supersede (once
        // moved, they are removed; one still here was not removed yet).
        let mut legacy = Vec::new();
        for n in &names {
            let Some(consumer) = legacy_consumer(n) else {
                continue;
            };
            if !journal.live.contains_key(&consumer) {
                let file = s.open(n, false).map_err(io_err(s, "open", n))?;
                let bytes = read_whole(s, file.as_ref(), n)?;
                Cursor::decode(&bytes).map_err(|(at, reason)| Error::LogCorrupted {
                    segment: n.clone(),
                    offset: at as u64,
                    reason: format!("{reason} (byte {at})"),
                })?;
                legacy.push((consumer, bytes));
            }
        }
        if s.read_only() {
            for (consumer, bytes) in legacy {
                journal.apply(PUT, consumer, &bytes);
            }
            return Ok(CursorStore {
                storage,
                journal: Mutex::new(journal),
                compact_min: COMPACT_MIN,
            });
        }
        if journal.file.is_none() || journal.end == 0 {
            // A new journal: its header, durable, and its name, durable.
            let file = s
                .open(JOURNAL, true)
                .map_err(io_err(s, "create", JOURNAL))?;
            file.truncate(0).map_err(io_err(s, "truncate", JOURNAL))?;
            file.write_at(0, MAGIC)
                .map_err(io_err(s, "write", JOURNAL))?;
            file.fsync().map_err(io_err(s, "fsync", JOURNAL))?;
            s.fsync_dir()
                .map_err(io_err(s, "fsync directory", JOURNAL))?;
            journal.file = Some(file);
            journal.end = MAGIC.len() as u64;
        } else if let Some(f) = &journal.file {
            // A torn write is cut, so the next record follows the last whole one; and
            // what this open read (perhaps from the page cache of a process that died
            // before its fsync) is made durable, so a power cut cannot move a cursor
            // back behind what the router has served from it.
            if len > journal.end {
                f.truncate(journal.end)
                    .map_err(io_err(s, "truncate", JOURNAL))?;
            }
            f.fsync().map_err(io_err(s, "fsync", JOURNAL))?;
        }
        let store = CursorStore {
            storage,
            journal: Mutex::new(journal),
            compact_min: COMPACT_MIN,
        };
        if !legacy.is_empty() {
            let mut batch = store.batch()?;
            for (consumer, bytes) in &legacy {
                batch.put_encoded(consumer, bytes)?;
            }
            batch.commit()?;
        }
        // In the journal and fsynced: the old files (and any temporary ones) go.
        let s = store.storage.as_ref();
        let mut removed = false;
        for n in &names {
            if legacy_consumer(n).is_some() || n.ends_with(".cursor.tmp") || n == JOURNAL_TMP {
                s.remove(n).map_err(io_err(s, "remove", n))?;
                removed = true;
            }
        }
        if removed {
            s.fsync_dir().map_err(io_err(s, "fsync directory", ""))?;
        }
        Ok(store)
    }

    /// Compact from `bytes` on (tests reach a compaction with a few saves).
    #[cfg(test)]
    pub(crate) fn compacting_from(mut self, bytes: u64) -> CursorStore {
        self.compact_min = bytes;
        self
    }

    fn lock(&self) -> Result<MutexGuard<'_, Journal>> {
        self.journal.lock().map_err(|_| Error::Closed {
            what: "the cursor journal (a save panicked)".into(),
        })
    }

    /// Start a group of saves: they are written and fsynced together by
    /// [`CursorBatch::commit`]. Other saves wait until the group is committed or
    /// dropped, so a cursor encoded in a group lands in the order it was encoded.
    pub fn batch(&self) -> Result<CursorBatch<'_>> {
        Ok(CursorBatch {
            store: self,
            journal: self.lock()?,
            buf: Vec::new(),
            puts: Vec::new(),
        })
    }

    /// The consumer's saved cursor, or `None` if it never saved one.
    pub fn load(&self, consumer: &str) -> Result<Option<Cursor>> {
        check_name(consumer)?;
        let j = self.lock()?;
        let Some(bytes) = j.live.get(consumer) else {
            return Ok(None);
        };
        Cursor::decode(bytes)
            .map(Some)
            .map_err(|(at, reason)| Error::LogCorrupted {
                segment: format!("{JOURNAL}: cursor of {consumer:?}"),
                offset: at as u64,
                reason: format!("{reason} (byte {at})"),
            })
    }

    /// Durably replace the consumer's cursor.
    pub fn save(&self, consumer: &str, cursor: &Cursor) -> Result<()> {
        self.save_encoded(consumer, &cursor.encode())
    }

    /// Durably replace the consumer's cursor with one already encoded by
    /// [`Cursor::encode`].
    pub fn save_encoded(&self, consumer: &str, bytes: &[u8]) -> Result<()> {
        let mut batch = self.batch()?;
        batch.put_encoded(consumer, bytes)?;
        batch.commit()
    }

    /// Forget a consumer. Returns whether it had a cursor.
    pub fn remove(&self, consumer: &str) -> Result<bool> {
        check_name(consumer)?;
        let mut j = self.lock()?;
        if !j.live.contains_key(consumer) {
            // A failed save may have left this consumer's record past the end:
            // cut it before answering "no cursor", or a power cut could bring it back.
            self.clean_tail(&mut j)?;
            return Ok(false);
        }
        let mut buf = Vec::new();
        write_record(&mut buf, REMOVE, consumer, &[]);
        self.append(&mut j, &buf)?;
        j.apply(REMOVE, consumer.to_owned(), &[]);
        Ok(true)
    }

    /// Consumers with a saved cursor, sorted.
    pub fn consumers(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self.lock()?.live.keys().cloned().collect();
        v.sort();
        Ok(v)
    }

    /// How many consumers have a saved cursor.
    pub fn len(&self) -> Result<usize> {
        Ok(self.lock()?.live.len())
    }

    /// Whether no consumer has a saved cursor.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Bytes opening cut (or, read-only, skipped) at the end of the journal: a write
    /// torn by a crash.
    pub fn torn_bytes(&self) -> Result<u64> {
        Ok(self.lock()?.cut)
    }

    /// The smallest committed offset over all consumers: what retention must keep.
    pub fn min_committed(&self) -> Result<Option<u64>> {
        let mut min: Option<u64> = None;
        for c in self.consumers()? {
            if let Some(cur) = self.load(&c)? {
                min = Some(min.map_or(cur.committed, |m| m.min(cur.committed)));
            }
        }
        Ok(min)
    }

    /// Cut, durably, what a failed append left past the end of the journal.
    fn clean_tail(&self, j: &mut Journal) -> Result<()> {
        if !j.tail_unclean {
            return Ok(());
        }
        let s = self.storage.as_ref();
        let Some(file) = &j.file else {
            return Ok(());
        };
        file.truncate(j.end)
            .map_err(io_err(s, "truncate", JOURNAL))?;
        file.fsync().map_err(io_err(s, "fsync", JOURNAL))?;
        j.tail_unclean = false;
        Ok(())
    }

    /// Write `records` at the end of the journal and fsync it. On an error nothing
    /// is counted: the next append writes over whatever part reached the file.
    fn append(&self, j: &mut Journal, records: &[u8]) -> Result<()> {
        let s = self.storage.as_ref();
        let Some(file) = &j.file else {
            return Err(Error::InvalidArgument {
                name: "cursors".into(),
                reason: "the cursor store was opened read-only".into(),
            });
        };
        if j.tail_unclean {
            // What a failed append left must not follow the next record: the
            // journal would read as damaged there.
            file.truncate(j.end)
                .map_err(io_err(s, "truncate", JOURNAL))?;
        }
        j.tail_unclean = true;
        file.write_at(j.end, records)
            .map_err(io_err(s, "write", JOURNAL))?;
        file.fsync().map_err(io_err(s, "fsync", JOURNAL))?;
        if j.dir_unsynced {
            s.fsync_dir()
                .map_err(io_err(s, "fsync directory", JOURNAL))?;
            j.dir_unsynced = false;
        }
        j.tail_unclean = false;
        j.end += records.len() as u64;
        Ok(())
    }

    /// Rewrite the journal with one record per live cursor, if it has grown well
    /// past them: into a temporary file, fsynced, renamed over the journal, the
    /// directory fsynced.
    fn compact_if_due(&self, j: &mut Journal) -> Result<()> {
        if j.end < self.compact_min || j.end < 4 * (j.live_bytes + MAGIC.len() as u64) {
            return Ok(());
        }
        let s = self.storage.as_ref();
        let mut buf = Vec::with_capacity(usize::try_from(j.live_bytes).unwrap_or(0) + 8);
        buf.extend_from_slice(MAGIC);
        let mut names: Vec<&String> = j.live.keys().collect();
        names.sort();
        for n in names {
            write_record(&mut buf, PUT, n, &j.live[n]);
        }
        let tmp = s
            .open(JOURNAL_TMP, true)
            .map_err(io_err(s, "create", JOURNAL_TMP))?;
        tmp.truncate(0)
            .map_err(io_err(s, "truncate", JOURNAL_TMP))?;
        tmp.write_at(0, &buf)
            .map_err(io_err(s, "write", JOURNAL_TMP))?;
        tmp.fsync().map_err(io_err(s, "fsync", JOURNAL_TMP))?;
        s.rename(JOURNAL_TMP, JOURNAL)
            .map_err(io_err(s, "rename", JOURNAL))?;
        // Renamed: the old file is unlinked, so the next appends go to the new one
        // (even if the directory fsync below fails, and the rename may be forgotten
        // by a power cut: then the old journal, whole, is what opens).
        j.file = Some(tmp);
        j.end = buf.len() as u64;
        j.tail_unclean = false;
        j.dir_unsynced = true;
        s.fsync_dir()
            .map_err(io_err(s, "fsync directory", JOURNAL))?;
        j.dir_unsynced = false;
        Ok(())
    }
}

/// Saves that share one write and one fsync ([`CursorStore::batch`]).
pub struct CursorBatch<'a> {
    store: &'a CursorStore,
    journal: MutexGuard<'a, Journal>,
    buf: Vec<u8>,
    puts: Vec<(String, std::ops::Range<usize>)>,
}

impl CursorBatch<'_> {
    /// Save this cursor (encoded by [`Cursor::encode`]) with the group.
    pub fn put_encoded(&mut self, consumer: &str, bytes: &[u8]) -> Result<()> {
        check_name(consumer)?;
        if bytes.is_empty() {
            return Err(Error::InvalidArgument {
                name: "cursor".into(),
                reason: "an encoded cursor is never empty".into(),
            });
        }
        write_record(&mut self.buf, PUT, consumer, bytes);
        let end = self.buf.len();
        self.puts
            .push((consumer.to_owned(), end - bytes.len()..end));
        Ok(())
    }

    /// How many saves the group holds.
    pub fn len(&self) -> usize {
        self.puts.len()
    }

    /// Whether the group holds no save.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
    }

    /// Write the group and fsync it once; then every cursor in it is durable.
    pub fn commit(mut self) -> Result<()> {
        if self.puts.is_empty() {
            return Ok(());
        }
        let j = &mut *self.journal;
        self.store.append(j, &self.buf)?;
        for (name, range) in self.puts.drain(..) {
            j.apply(PUT, name, &self.buf[range]);
        }
        self.store.compact_if_due(j)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
