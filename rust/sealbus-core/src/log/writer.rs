//! The single writer and group commit.
//!
//! Appenders encode their records in their own thread (payload copy and payload CRC,
//! the expensive part) and enqueue them. Whoever finds no commit in progress becomes
//! the leader: it takes everything queued (one request under `fsync="always"`),
//! assigns offsets, patches the 32-byte headers, does one write and one fsync, makes
//! the records visible to readers and wakes the waiters. Appenders that arrive while a
//! commit is running queue up for the next one, so concurrent publishes share fsyncs.
//!
//! Fail-stop: the first write or fsync error fails the whole group with that error and
//! stops the writer; every later append gets `LogFailed` until the log is reopened
//! (which runs recovery). Nothing is retried: after a failed fsync the kernel may have
//! dropped the dirty pages, so retrying could acknowledge data that is not on disk.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use super::index::IndexEntry;
use super::io::Storage;
use super::record::{patch_offset, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::recovery::{create_segment, wants_index_entry};
use super::segment::{index_name, Segment};
use super::{FsyncPolicy, LogOptions};
use crate::error::{Error, Result};

/// One `append_batch` call waiting to be committed.
#[derive(Debug)]
pub(crate) struct Request {
    /// Encoded records with placeholder offsets.
    pub data: Vec<u8>,
    pub count: usize,
    pub outcome: OnceLock<std::result::Result<u64, Failure>>,
}

/// Why a commit failed; rebuilt into an `Error` for each waiter.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub op: &'static str,
    pub path: String,
    pub kind: io::ErrorKind,
    pub message: String,
    /// The writer had already stopped before this request was tried.
    pub already_failed: bool,
}

impl Failure {
    pub fn reason(&self) -> String {
        format!("{} on {}: {}", self.op, self.path, self.message)
    }

    pub fn to_error(&self) -> Error {
        if self.already_failed {
            Error::LogFailed {
                reason: self.reason(),
            }
        } else {
            Error::LogIo {
                op: self.op,
                path: self.path.clone(),
                source: io::Error::new(self.kind, self.message.clone()),
            }
        }
    }

    fn from_error(e: &Error) -> Failure {
        match e {
            Error::LogIo { op, path, source } => Failure {
                op,
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
                already_failed: false,
            },
            other => Failure {
                op: "commit",
                path: String::new(),
                kind: io::ErrorKind::Other,
                message: other.to_string(),
                already_failed: false,
            },
        }
    }
}

/// Leader election and the queue, behind one mutex with a condvar.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub pending: VecDeque<Arc<Request>>,
    pub leader: bool,
    pub failed: Option<Failure>,
    pub closed: bool,
}

/// Counters shared with `Log::stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub commits: AtomicU64,
    pub writes: AtomicU64,
    pub fsyncs: AtomicU64,
}

/// State only the leader touches: the active segment's write position and buffers.
#[derive(Debug)]
pub(crate) struct WriterCore {
    pub storage: Arc<dyn Storage>,
    pub active: Arc<Segment>,
    /// Bytes written to the active segment (ahead of `visible_len` during a commit).
    pub write_pos: u64,
    pub next_offset: u64,
    pub max_ts: u64,
    pub index_len: u64,
    pub last_index: Option<IndexEntry>,
    buf: Vec<u8>,
    new_entries: Vec<IndexEntry>,
}

impl WriterCore {
    pub fn new(
        storage: Arc<dyn Storage>,
        active: Arc<Segment>,
        write_pos: u64,
        max_ts: u64,
    ) -> WriterCore {
        let (next_offset, last_index, index_len) = {
            let idx = active
                .index
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (
                active.next_offset.load(Ordering::Acquire),
                idx.last().copied(),
                (idx.len() * super::index::INDEX_ENTRY_LEN) as u64,
            )
        };
        WriterCore {
            storage,
            active,
            write_pos,
            next_offset,
            max_ts,
            index_len,
            last_index,
            buf: Vec::new(),
            new_entries: Vec::new(),
        }
    }

    /// Write the group, fsync per policy, publish it to readers. Returns each request's
    /// first offset, in order.
    pub fn commit(
        &mut self,
        group: &[Arc<Request>],
        opts: &LogOptions,
        segments: &RwLock<Vec<Arc<Segment>>>,
        counters: &Counters,
    ) -> Result<Vec<u64>> {
        let durable = opts.fsync.is_durable();
        self.buf.clear();
        self.new_entries.clear();
        let mut chunk_start = self.write_pos;
        let mut firsts = Vec::with_capacity(group.len());
        for req in group {
            // Roll before an append that would not fit: an append never spans segments.
            if self.write_pos > SEGMENT_HEADER_LEN as u64
                && self.write_pos + req.data.len() as u64 > opts.segment_bytes
            {
                self.flush(durable, chunk_start, counters)?;
                self.publish();
                self.roll(durable, segments, counters)?;
                chunk_start = self.write_pos;
            }
            firsts.push(self.next_offset);
            // Index entries only at the first record of an append, so that recovery,
            // which scans from the last entry, always starts at an append boundary.
            if wants_index_entry(
                self.last_index.as_ref(),
                self.write_pos,
                opts.index_interval_bytes,
            ) {
                let ts_bytes: [u8; 8] = req.data[16..24].try_into().unwrap_or([0; 8]);
                let e = IndexEntry {
                    rel_offset: u32::try_from(self.next_offset - self.active.base).map_err(
                        |_| Error::InvalidArgument {
                            name: "segment_bytes".into(),
                            reason: "a segment may hold at most 2^32 records".into(),
                        },
                    )?,
                    position: u32::try_from(self.write_pos).map_err(|_| {
                        Error::InvalidArgument {
                            name: "segment_bytes".into(),
                            reason: "an append may not start beyond 4 GiB in a segment".into(),
                        }
                    })?,
                    max_ts: self.max_ts.max(u64::from_le_bytes(ts_bytes)),
                };
                self.new_entries.push(e);
                self.last_index = Some(e);
            }
            let mut at = 0usize;
            while at < req.data.len() {
                let plen = u32::from_le_bytes([
                    req.data[at + 4],
                    req.data[at + 5],
                    req.data[at + 6],
                    req.data[at + 7],
                ]);
                let total = RECORD_HEADER_LEN + plen as usize;
                let ts_bytes: [u8; 8] = req.data[at + 16..at + 24].try_into().unwrap_or([0; 8]);
                self.max_ts = self.max_ts.max(u64::from_le_bytes(ts_bytes));
                let rec_at = self.buf.len();
                self.buf.extend_from_slice(&req.data[at..at + total]);
                patch_offset(
                    &mut self.buf[rec_at..rec_at + RECORD_HEADER_LEN],
                    self.next_offset,
                );
                self.next_offset += 1;
                self.write_pos += total as u64;
                at += total;
            }
        }
        self.flush(durable, chunk_start, counters)?;
        self.publish();
        Ok(firsts)
    }

    /// Write the buffered records of the active segment at `chunk_start`, then their
    /// index entries, then fsync the data if `durable`.
    fn flush(&mut self, durable: bool, chunk_start: u64, counters: &Counters) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = || self.storage.path_of(&self.active.name);
        self.active
            .file
            .write_at(chunk_start, &self.buf)
            .map_err(|source| Error::LogIo {
                op: "write",
                path: path(),
                source,
            })?;
        counters.writes.fetch_add(1, Ordering::Relaxed);
        if !self.new_entries.is_empty() {
            if let Some(f) = &self.active.index_file {
                let mut bytes =
                    Vec::with_capacity(self.new_entries.len() * super::index::INDEX_ENTRY_LEN);
                for e in &self.new_entries {
                    bytes.extend_from_slice(&e.encode());
                }
                f.write_at(self.index_len, &bytes)
                    .map_err(|source| Error::LogIo {
                        op: "write",
                        path: self.storage.path_of(&index_name(self.active.base)),
                        source,
                    })?;
                self.index_len += bytes.len() as u64;
            }
        }
        if durable {
            self.active.file.fsync().map_err(|source| Error::LogIo {
                op: "fsync",
                path: path(),
                source,
            })?;
            counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.buf.clear();
        Ok(())
    }

    /// Make everything written so far visible to readers (order: index, length, max
    /// timestamp, then the next offset that readers load first).
    fn publish(&mut self) {
        if !self.new_entries.is_empty() {
            let mut idx = self
                .active
                .index
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            idx.extend(self.new_entries.drain(..));
        }
        self.active
            .visible_len
            .store(self.write_pos, Ordering::Release);
        self.active.max_ts.store(self.max_ts, Ordering::Release);
        self.active
            .next_offset
            .store(self.next_offset, Ordering::Release);
    }

    fn roll(
        &mut self,
        durable: bool,
        segments: &RwLock<Vec<Arc<Segment>>>,
        counters: &Counters,
    ) -> Result<()> {
        let seg = create_segment(self.storage.as_ref(), self.next_offset, durable)?;
        if durable {
            counters.fsyncs.fetch_add(2, Ordering::Relaxed);
        }
        self.active.sealed.store(true, Ordering::Release);
        segments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&seg));
        self.active = seg;
        self.write_pos = SEGMENT_HEADER_LEN as u64;
        self.max_ts = 0;
        self.index_len = 0;
        self.last_index = None;
        Ok(())
    }

    /// Flush the active segment (used by `close` under `fsync="never"`).
    pub fn sync(&self) -> Result<()> {
        self.active.file.fsync().map_err(|source| Error::LogIo {
            op: "fsync",
            path: self.storage.path_of(&self.active.name),
            source,
        })
    }
}

/// Take the next group from the queue per policy.
pub(crate) fn take_group(q: &mut Queue, policy: FsyncPolicy) -> Vec<Arc<Request>> {
    match policy {
        FsyncPolicy::Always => q.pending.pop_front().into_iter().collect(),
        FsyncPolicy::Batch | FsyncPolicy::Never => q.pending.drain(..).collect(),
    }
}

/// Record the group's outcome in each request.
pub(crate) fn settle(group: &[Arc<Request>], result: &Result<Vec<u64>>) -> Option<Failure> {
    match result {
        Ok(firsts) => {
            for (req, first) in group.iter().zip(firsts) {
                let _ = req.outcome.set(Ok(*first));
            }
            None
        }
        Err(e) => {
            let failure = Failure::from_error(e);
            for req in group {
                let _ = req.outcome.set(Err(failure.clone()));
            }
            Some(failure)
        }
    }
}
