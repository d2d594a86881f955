//! The durable segment log (docs/FORMAT-LOG.md), after apache/iggy's segments and the
//! Kafka log: segment files named by their base offset, records with a length, CRC32C
//! checksums and an opaque payload (a sealed frame), a sparse index per segment, one
//! writer with group commit, recovery that cuts only a torn tail, retention by whole
//! segments, and a journal of consumer cursors.
//!
//! - [`record`]: record and segment header codec.
//! - [`index`]: sparse offset/time index.
//! - [`io`]: the persistence trait, the real file implementation, a fault injector,
//!   and an in-memory storage that forgets unsynced writes at a power cut.
//! - [`segment`]: one segment and the scanner that classifies what it reads.
//! - [`writer`]: group commit and fail-stop.
//! - [`recovery`]: open-time scan and repair of a torn tail.
//! - [`retention`]: deletion of old segments.
//! - [`cursor`]: durable consumer cursors and their encoding.
//! - [`cursor_store`]: the journal all cursors of a log are saved in.
//! - [`lock`]: one writer per log folder.

pub mod cursor;
pub mod cursor_store;
pub mod deliveries;
pub mod index;
pub mod io;
pub mod lock;
pub mod record;
pub mod recovery;
pub mod retention;
pub(crate) mod segment;
pub(crate) mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub use self::cursor::{Cursor, DeadLetter};
pub use self::cursor_store::{CursorBatch, CursorStore};
pub use self::deliveries::Deliveries;
pub use self::io::{FaultPlan, FaultyStorage, FileStorage, ForgetfulStorage, Storage, StorageFile};
pub use self::lock::DirLock;
pub use self::recovery::RecoveryReport;
pub use self::retention::{Retention, RetentionReport};
use self::segment::{ChunkReader, Segment, Step};
use self::writer::{Counters, Queue, Request, WriterCore};
use crate::error::{Error, Result};

/// When an append is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// One fsync per `append_batch` call, never shared with other callers.
    Always,
    /// Group commit: concurrent appends share one fsync. Still durable on return.
    #[default]
    Batch,
    /// No fsync: the OS writes back when it likes. Survives a process crash, not a
    /// power loss.
    Never,
}

impl FsyncPolicy {
    /// Does an append wait for fsync?
    pub fn is_durable(self) -> bool {
        !matches!(self, FsyncPolicy::Never)
    }

    /// Parse `"always" | "batch" | "never"`.
    pub fn parse(s: &str) -> Result<FsyncPolicy> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(Error::InvalidArgument {
                name: "fsync".into(),
                reason: format!("expected \"always\", \"batch\" or \"never\", got {other:?}"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Batch => "batch",
            FsyncPolicy::Never => "never",
        }
    }
}

/// Options of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    pub fsync: FsyncPolicy,
    /// A segment is rolled before a record would take it past this size.
    pub segment_bytes: u64,
    /// An index entry every this many bytes of records.
    pub index_interval_bytes: u32,
    /// Largest payload accepted (and believed when reading a header).
    pub max_record_bytes: u32,
    pub retention: Retention,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            fsync: FsyncPolicy::Batch,
            segment_bytes: 128 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_record_bytes: 16 * 1024 * 1024,
            retention: Retention::default(),
        }
    }
}

impl LogOptions {
    fn validate(&self) -> Result<()> {
        let bad = |name: &str, reason: &str| {
            Err(Error::InvalidArgument {
                name: name.into(),
                reason: reason.into(),
            })
        };
        if self.segment_bytes < 512 || self.segment_bytes > u64::from(u32::MAX / 2) {
            return bad("segment_bytes", "must be between 512 bytes and 2 GiB");
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes", "must be at least 1");
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > 256 * 1024 * 1024 {
            return bad("max_record_bytes", "must be between 1 byte and 256 MiB");
        }
        Ok(())
    }
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ns: u64,
    pub payload: Vec<u8>,
}

/// Counters and sizes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogStats {
    pub segments: u64,
    pub bytes: u64,
    pub records: u64,
    pub first_offset: u64,
    pub next_offset: u64,
    /// `append_batch` calls that succeeded since open.
    pub appends: u64,
    pub records_appended: u64,
    pub bytes_appended: u64,
    /// Group commits (one write each, more when a segment rolls).
    pub commits: u64,
    pub writes: u64,
    /// fsync calls (data files and directories) made by appends.
    pub fsyncs: u64,
    /// `records_appended / fsyncs` (0 if no fsync).
    pub events_per_fsync: f64,
    /// Records deleted by retention, and of those, records a consumer still needed.
    pub retention_records_deleted: u64,
    pub retention_needed_records_deleted: u64,
    pub failed: bool,
    pub recovery: RecoveryReport,
}

/// One segment, for `sealbus log inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub file: String,
    pub base_offset: u64,
    pub next_offset: u64,
    pub records: u64,
    pub bytes: u64,
    pub max_timestamp_ns: u64,
    pub index_entries: u64,
    pub active: bool,
}

/// What a full verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
}

/// The durable log. `Send + Sync`; every method takes `&self`.
#[derive(Debug)]
pub struct Log {
    storage: Arc<dyn Storage>,
    opts: LogOptions,
    segments: RwLock<Vec<Arc<Segment>>>,
    queue: Mutex<Queue>,
    committed: Condvar,
    core: Mutex<Option<WriterCore>>,
    counters: Counters,
    retention_deleted: std::sync::atomic::AtomicU64,
    retention_needed_deleted: std::sync::atomic::AtomicU64,
    recovery: RecoveryReport,
    /// The folder's writer lock, held from open until `close` (or drop).
    dir_lock: Mutex<Option<DirLock>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Log {
    /// Open (or create) the log in `dir`; recovery runs here. The folder is locked
    /// for this log alone until [`Log::close`]: another open, in this process or any
    /// other, fails with [`Error::LogLocked`].
    pub fn open(dir: &Path, opts: LogOptions) -> Result<Log> {
        let storage = FileStorage::new(dir).map_err(|source| Error::LogIo {
            op: "create directory",
            path: dir.display().to_string(),
            source,
        })?;
        // Before recovery: recovery may cut a torn tail, which is a write.
        let dir_lock = DirLock::acquire(dir)?;
        let log = Log::open_with_storage(Arc::new(storage), opts)?;
        *lock(&log.dir_lock) = Some(dir_lock);
        Ok(log)
    }

    /// Open an existing log without writing anything, not even a torn-tail repair
    /// (what recovery would cut is reported in `stats().recovery`). Appends fail.
    pub fn open_read_only(dir: &Path) -> Result<Log> {
        let storage = FileStorage::read_only(dir).map_err(|source| Error::LogIo {
            op: "open directory",
            path: dir.display().to_string(),
            source,
        })?;
        Log::open_with_storage(
            Arc::new(storage),
            LogOptions {
                fsync: FsyncPolicy::Never,
                ..LogOptions::default()
            },
        )
    }

    /// Open on any storage (tests inject faults through this).
    pub fn open_with_storage(storage: Arc<dyn Storage>, opts: LogOptions) -> Result<Log> {
        opts.validate()?;
        let rec = recovery::recover(storage.as_ref(), &opts)?;
        let core = match (storage.read_only(), rec.segments.last()) {
            (false, Some(last)) => Some(WriterCore::new(
                Arc::clone(&storage),
                Arc::clone(last),
                rec.tail_len,
                rec.tail_max_ts,
            )),
            _ => None,
        };
        Ok(Log {
            storage,
            opts,
            segments: RwLock::new(rec.segments),
            queue: Mutex::new(Queue::default()),
            committed: Condvar::new(),
            core: Mutex::new(core),
            counters: Counters::default(),
            retention_deleted: 0.into(),
            retention_needed_deleted: 0.into(),
            recovery: rec.report,
            dir_lock: Mutex::new(None),
        })
    }

    pub fn options(&self) -> &LogOptions {
        &self.opts
    }

    fn snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Append `payloads` with one timestamp; returns their offsets once they are
    /// durable per the fsync policy. Concurrent callers share fsyncs (group commit).
    pub fn append_batch(&self, payloads: &[&[u8]], timestamp_ns: u64) -> Result<Vec<u64>> {
        let parts: Vec<[&[u8]; 1]> = payloads.iter().map(|p| [*p]).collect();
        self.append_batch_parts(&parts, timestamp_ns)
    }

    /// [`Log::append_batch`] with each payload given as `N` parts, concatenated into
    /// the record: callers that frame their payloads (a header, attributes, data) do
    /// not build each one in a buffer first.
    // Encoding, the group-commit loop and its bookkeeping read best in one place.
    #[allow(clippy::too_many_lines)]
    pub fn append_batch_parts<const N: usize>(
        &self,
        payloads: &[[&[u8]; N]],
        timestamp_ns: u64,
    ) -> Result<Vec<u64>> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let mut size = 0usize;
        for (i, parts) in payloads.iter().enumerate() {
            let len: usize = parts.iter().map(|p| p.len()).sum();
            if len > self.opts.max_record_bytes as usize {
                return Err(Error::InvalidArgument {
                    name: format!("payloads[{i}]"),
                    reason: format!(
                        "{} bytes exceeds max_record_bytes {}",
                        len, self.opts.max_record_bytes
                    ),
                });
            }
            size += record::RECORD_HEADER_LEN + len;
        }
        // One append never spans segments (that keeps it atomic), so it must fit in a
        // segment's 32-bit positions.
        if size as u64 > u64::from(u32::MAX / 2) {
            return Err(Error::InvalidArgument {
                name: "payloads".into(),
                reason: format!("one append of {size} bytes exceeds the 2 GiB limit"),
            });
        }
        // Encode here, in the caller's thread: the leader only patches headers.
        let mut data = Vec::with_capacity(size);
        for (i, parts) in payloads.iter().enumerate() {
            record::encode_parts_into(&mut data, 0, timestamp_ns, parts, i + 1 < payloads.len());
        }
        let req = Arc::new(Request {
            data,
            count: payloads.len(),
            outcome: std::sync::OnceLock::new(),
        });

        let mut q = lock(&self.queue);
        if let Some(f) = &q.failed {
            return Err(Error::LogFailed { reason: f.reason() });
        }
        if q.closed {
            return Err(Error::Closed { what: "log".into() });
        }
        if self.storage.read_only() {
            return Err(Error::Closed {
                what: "log opened read-only".into(),
            });
        }
        q.pending.push_back(Arc::clone(&req));
        loop {
            if let Some(outcome) = req.outcome.get() {
                return match outcome {
                    Ok(first) => Ok((*first..*first + req.count as u64).collect()),
                    Err(f) => Err(f.to_error()),
                };
            }
            if q.leader {
                q = self
                    .committed
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            q.leader = true;
            let group = writer::take_group(&mut q, self.opts.fsync);
            if let Some(f) = q.failed.clone() {
                let f = writer::Failure {
                    already_failed: true,
                    ..f
                };
                for r in &group {
                    let _ = r.outcome.set(Err(f.clone()));
                }
                q.leader = false;
                self.committed.notify_all();
                continue;
            }
            drop(q);
            let result = {
                let mut core = lock(&self.core);
                match core.as_mut() {
                    Some(core) => core.commit(&group, &self.opts, &self.segments, &self.counters),
                    None => Err(Error::Closed { what: "log".into() }),
                }
            };
            if result.is_ok() {
                let records: usize = group.iter().map(|r| r.count).sum();
                let bytes: usize = group.iter().map(|r| r.data.len()).sum();
                self.counters
                    .appends
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                self.counters
                    .records
                    .fetch_add(records as u64, Ordering::Relaxed);
                self.counters
                    .bytes
                    .fetch_add(bytes as u64, Ordering::Relaxed);
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
            }
            let failure = writer::settle(&group, &result);
            q = lock(&self.queue);
            if let Some(f) = failure {
                q.failed.get_or_insert(f);
            }
            q.leader = false;
            self.committed.notify_all();
        }
    }

    /// Up to `max_records` records from `from_offset` on (at least one if any is
    /// there, even past `max_bytes` of payload). An offset below `first_offset()`
    /// (deleted by retention) reads from the first record still stored.
    pub fn read(
        &self,
        from_offset: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>> {
        let segs = self.snapshot();
        let mut out = Vec::new();
        if max_records == 0 {
            return Ok(out);
        }
        let start = segs
            .partition_point(|s| s.base <= from_offset)
            .saturating_sub(1);
        let mut bytes = 0usize;
        for seg in &segs[start.min(segs.len())..] {
            let path = self.storage.path_of(&seg.name);
            let limits = segment::ReadLimits {
                records: max_records,
                bytes: max_bytes,
                payload_cap: self.opts.max_record_bytes,
            };
            if seg.read_into(&path, from_offset, limits, &mut out, &mut bytes)? {
                break;
            }
        }
        Ok(out)
    }

    /// The first offset whose record timestamp is `>= ts_ns`, or `next_offset()` if
    /// there is none. Timestamps need not be monotonic; the scan uses the index's
    /// running maximum to skip what is certainly older.
    pub fn offset_for_time(&self, ts_ns: u64) -> Result<u64> {
        for seg in self.snapshot() {
            let path = self.storage.path_of(&seg.name);
            if let Some(o) = seg.offset_for_time(&path, ts_ns, self.opts.max_record_bytes)? {
                return Ok(o);
            }
        }
        Ok(self.next_offset())
    }

    /// One past the last record.
    pub fn next_offset(&self) -> u64 {
        self.snapshot()
            .last()
            .map_or(0, |s| s.next_offset.load(Ordering::Acquire))
    }

    /// The oldest offset still stored (`== next_offset()` when empty).
    pub fn first_offset(&self) -> u64 {
        let segs = self.snapshot();
        segs.iter().find(|s| s.records() > 0).map_or_else(
            || {
                segs.last()
                    .map_or(0, |s| s.next_offset.load(Ordering::Acquire))
            },
            |s| s.base,
        )
    }

    /// Delete old segments per the retention policy. `min_needed_offset` is the
    /// smallest offset a durable consumer still needs (`CursorStore::min_committed`).
    pub fn apply_retention(&self, min_needed_offset: Option<u64>) -> Result<RetentionReport> {
        self.apply_retention_at(now_ns(), min_needed_offset)
    }

    /// `apply_retention` with an explicit "now" (tests, replays of old data).
    pub fn apply_retention_at(
        &self,
        now_ns: u64,
        min_needed_offset: Option<u64>,
    ) -> Result<RetentionReport> {
        if self.storage.read_only() {
            return Err(Error::Closed {
                what: "log opened read-only".into(),
            });
        }
        let mut report = RetentionReport::default();
        let doomed: Vec<Arc<Segment>> = {
            let mut segs = self
                .segments
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = retention::plan(
                &segs,
                &self.opts.retention,
                now_ns,
                min_needed_offset,
                &mut report,
            );
            segs.drain(..n).collect()
        };
        // Readers holding an Arc keep reading through their open handles.
        for seg in &doomed {
            for name in [seg.name.clone(), segment::index_name(seg.base)] {
                match self.storage.remove(&name) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::LogIo {
                            op: "remove",
                            path: self.storage.path_of(&name),
                            source,
                        })
                    }
                }
            }
        }
        if !doomed.is_empty() {
            self.storage.fsync_dir().map_err(|source| Error::LogIo {
                op: "fsync directory",
                path: self.storage.path_of(""),
                source,
            })?;
        }
        self.retention_deleted
            .fetch_add(report.records_deleted, Ordering::Relaxed);
        self.retention_needed_deleted
            .fetch_add(report.needed_records_deleted, Ordering::Relaxed);
        report.first_offset = self.first_offset();
        Ok(report)
    }

    /// Read and check every record of every segment (recovery only scans the tail).
    /// The first damaged record is reported as `LogCorrupted` with its segment and
    /// offset.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut rep = VerifyReport::default();
        for seg in self.snapshot() {
            let next = seg.next_offset.load(Ordering::Acquire);
            let end = seg.len();
            let path = self.storage.path_of(&seg.name);
            let mut hdr = [0u8; record::SEGMENT_HEADER_LEN];
            seg.file
                .read_at(0, &mut hdr)
                .map_err(|source| Error::LogIo {
                    op: "read",
                    path: path.clone(),
                    source,
                })?;
            if let Err(reason) = record::decode_segment_header(&hdr) {
                return Err(seg.corrupted(seg.base, format!("{reason} (byte 0)")));
            }
            let mut reader = ChunkReader::new(seg.file.as_ref(), end);
            let (mut pos, mut expected) = (record::SEGMENT_HEADER_LEN as u64, seg.base);
            while expected < next {
                match reader
                    .step(pos, expected, self.opts.max_record_bytes)
                    .map_err(|source| Error::LogIo {
                        op: "read",
                        path: path.clone(),
                        source,
                    })? {
                    Step::Record(h) => {
                        pos += h.total_len();
                        expected += 1;
                        rep.records += 1;
                    }
                    Step::End => {
                        return Err(seg.corrupted(expected, format!("segment ends at byte {pos}")))
                    }
                    Step::Torn(r) | Step::Corrupt(r) => {
                        return Err(seg.corrupted(expected, format!("{r} (byte {pos})")))
                    }
                }
            }
            rep.segments += 1;
            rep.bytes += end;
        }
        Ok(rep)
    }

    pub fn stats(&self) -> LogStats {
        let segs = self.snapshot();
        let c = &self.counters;
        let records_appended = c.records.load(Ordering::Relaxed);
        let fsyncs = c.fsyncs.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let events_per_fsync = if fsyncs == 0 {
            0.0
        } else {
            records_appended as f64 / fsyncs as f64
        };
        let first = self.first_offset();
        let next = self.next_offset();
        LogStats {
            segments: segs.len() as u64,
            bytes: segs.iter().map(|s| s.len()).sum(),
            records: next - first,
            first_offset: first,
            next_offset: next,
            appends: c.appends.load(Ordering::Relaxed),
            records_appended,
            bytes_appended: c.bytes.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            fsyncs,
            events_per_fsync,
            retention_records_deleted: self.retention_deleted.load(Ordering::Relaxed),
            retention_needed_records_deleted: self.retention_needed_deleted.load(Ordering::Relaxed),
            failed: lock(&self.queue).failed.is_some(),
            recovery: self.recovery.clone(),
        }
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        let segs = self.snapshot();
        let last = segs.len().saturating_sub(1);
        segs.iter()
            .enumerate()
            .map(|(i, s)| SegmentInfo {
                file: s.name.clone(),
                base_offset: s.base,
                next_offset: s.next_offset.load(Ordering::Acquire),
                records: s.records(),
                bytes: s.len(),
                max_timestamp_ns: s.max_ts.load(Ordering::Acquire),
                index_entries: s
                    .index
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len() as u64,
                active: i == last,
            })
            .collect()
    }

    /// Whether [`Log::close`] was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }

    /// Stop accepting appends, wait for the commit in progress, and under
    /// `fsync="never"` flush what was written; then release the folder to the next
    /// writer. Reads keep working.
    pub fn close(&self) -> Result<()> {
        let synced = self.close_writer();
        if let Some(l) = lock(&self.dir_lock).take() {
            l.release();
        }
        synced
    }

    fn close_writer(&self) -> Result<()> {
        {
            let mut q = lock(&self.queue);
            q.closed = true;
            // Appends accepted before the close still complete.
            while q.leader || !q.pending.is_empty() {
                q = self
                    .committed
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if q.failed.is_some() {
                return Ok(());
            }
        }
        let core = lock(&self.core);
        if let Some(core) = core.as_ref() {
            if !self.opts.fsync.is_durable() {
                core.sync()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
