//! Recovery on open. For each segment, oldest first: check the segment header, load the
//! longest valid prefix of its index, then scan the records from the last good index
//! point to the end of the file. In the last segment a torn tail (see `Step::Torn`) is
//! cut off; anything else that does not verify is `LogCorrupted`, never skipped.
//! A segment that is not the last one cannot have a torn tail (later data exists), so
//! there the same damage is corruption.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, RwLock};

use super::index::{self, IndexEntry, INDEX_ENTRY_LEN};
use super::io::Storage;
use super::record::{decode_segment_header, encode_segment_header, SEGMENT_HEADER_LEN};
use super::segment::{index_name, parse_segment_name, segment_name, ChunkReader, Segment, Step};
use super::LogOptions;
use crate::error::{Error, Result};

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the end of the last segment (a torn last write).
    pub truncated_bytes: u64,
    /// Where the cut was made: (segment file, byte position, next offset).
    pub truncated_at: Option<(String, u64, u64)>,
    /// Last segments removed because even their header was incomplete.
    pub removed_segments: Vec<String>,
    /// Index entries rebuilt from records (beyond the last good index point).
    pub index_entries_rebuilt: u64,
    /// Records scanned to recover.
    pub records_scanned: u64,
}

/// Segments plus the state the writer needs to continue the last one.
pub(crate) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    pub report: RecoveryReport,
    /// Bytes of records in the last segment.
    pub tail_len: u64,
    /// Running max timestamp of the last segment.
    pub tail_max_ts: u64,
}

pub(crate) fn io_err(
    storage: &dyn Storage,
    op: &'static str,
    name: &str,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = storage.path_of(name);
    move |source| Error::LogIo { op, path, source }
}

/// Whether a new index entry goes at a record at `pos`.
pub(crate) fn wants_index_entry(last: Option<&IndexEntry>, pos: u64, interval: u32) -> bool {
    match last {
        None => true,
        Some(e) => pos - u64::from(e.position) >= u64::from(interval),
    }
}

/// Create an empty segment at `base`; `durable` fsyncs its header and the directory.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    base: u64,
    durable: bool,
) -> Result<Arc<Segment>> {
    let name = segment_name(base);
    let iname = index_name(base);
    let file = storage
        .open(&name, true)
        .map_err(io_err(storage, "create", &name))?;
    file.truncate(0)
        .map_err(io_err(storage, "truncate", &name))?;
    file.write_at(0, &encode_segment_header(base))
        .map_err(io_err(storage, "write", &name))?;
    let index_file = storage
        .open(&iname, true)
        .map_err(io_err(storage, "create", &iname))?;
    index_file
        .truncate(0)
        .map_err(io_err(storage, "truncate", &iname))?;
    if durable {
        file.fsync().map_err(io_err(storage, "fsync", &name))?;
        storage
            .fsync_dir()
            .map_err(io_err(storage, "fsync directory", &name))?;
    }
    Ok(Arc::new(Segment {
        base,
        name,
        file,
        index_file: Some(index_file),
        visible_len: AtomicU64::new(SEGMENT_HEADER_LEN as u64),
        next_offset: AtomicU64::new(base),
        max_ts: AtomicU64::new(0),
        index: RwLock::new(Vec::new()),
        sealed: AtomicBool::new(false),
    }))
}

fn remove_segment_files(storage: &dyn Storage, base: u64) -> Result<()> {
    for name in [segment_name(base), index_name(base)] {
        match storage.remove(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(storage, "remove", &name)(e)),
        }
    }
    storage
        .fsync_dir()
        .map_err(io_err(storage, "fsync directory", &segment_name(base)))
}

// One linear pass over the segments; split up, the recovery rule would be scattered.
#[allow(clippy::too_many_lines)]
pub(crate) fn recover(storage: &dyn Storage, opts: &LogOptions) -> Result<Recovered> {
    let writable = !storage.read_only();
    let names = storage.list().map_err(io_err(storage, "list", ""))?;
    let mut bases: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    bases.sort_unstable();

    let mut report = RecoveryReport::default();
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
    let mut tail_len = SEGMENT_HEADER_LEN as u64;
    let mut tail_max_ts = 0;
    let durable = opts.fsync.is_durable();

    for (i, &base) in bases.iter().enumerate() {
        let is_last = i + 1 == bases.len();
        let name = segment_name(base);
        let file = storage
            .open(&name, false)
            .map_err(io_err(storage, "open", &name))?;
        let len = file.len().map_err(io_err(storage, "stat", &name))?;
        let corrupt = |offset: u64, reason: String| Error::LogCorrupted {
            segment: name.clone(),
            offset,
            reason,
        };

        // A last segment whose header never made it to disk is a torn creation: shorter
        // than a header, or a header that does not verify with only zeros up to the end.
        let mut hbuf = [0u8; SEGMENT_HEADER_LEN];
        let header = if len < SEGMENT_HEADER_LEN as u64 {
            Err(format!(
                "segment file is {len} bytes, shorter than its header"
            ))
        } else {
            file.read_at(0, &mut hbuf)
                .map_err(io_err(storage, "read", &name))?;
            decode_segment_header(&hbuf)
        };
        match header {
            Ok(b) if b == base => {}
            Ok(b) => {
                return Err(corrupt(
                    base,
                    format!("segment header says base offset {b}, file name says {base}"),
                ))
            }
            Err(reason) => {
                let torn_creation = is_last
                    && (len < SEGMENT_HEADER_LEN as u64
                        || ChunkReader::new(file.as_ref(), len)
                            .zeros_to_end(0)
                            .map_err(io_err(storage, "read", &name))?);
                if !torn_creation {
                    return Err(corrupt(base, format!("{reason} (byte 0)")));
                }
                if writable {
                    remove_segment_files(storage, base)?;
                }
                report.removed_segments.push(name.clone());
                continue;
            }
        }
        if let Some(prev) = segments.last() {
            let prev_next = prev.next_offset.load(std::sync::atomic::Ordering::Acquire);
            if prev_next != base {
                return Err(corrupt(
                    base,
                    format!(
                        "segment starts at offset {base} but the previous one ends at {prev_next}"
                    ),
                ));
            }
        }

        // The index: keep its valid prefix, rebuild the rest from the records.
        let iname = index_name(base);
        let index_file = match storage.open(&iname, writable) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !writable => None,
            Err(e) => return Err(io_err(storage, "open", &iname)(e)),
        };
        let mut entries = match &index_file {
            Some(f) => {
                let index_len = f.len().map_err(io_err(storage, "stat", &iname))?;
                let mut bytes = vec![0u8; usize::try_from(index_len).unwrap_or(0)];
                f.read_at(0, &mut bytes)
                    .map_err(io_err(storage, "read", &iname))?;
                index::parse_prefix(&bytes, len, SEGMENT_HEADER_LEN as u64)
            }
            None => Vec::new(),
        };
        if let Some(first) = entries.first() {
            // The first record is always indexed; an index that says otherwise is stale.
            if first.rel_offset != 0 || u64::from(first.position) != SEGMENT_HEADER_LEN as u64 {
                entries.clear();
            }
        }
        let mut kept = entries.len();

        let (mut pos, mut expected, mut max_ts) = match entries.last() {
            Some(e) => (
                u64::from(e.position),
                base + u64::from(e.rel_offset),
                e.max_ts,
            ),
            None => (SEGMENT_HEADER_LEN as u64, base, 0),
        };
        let mut reader = ChunkReader::new(file.as_ref(), len);
        let mut end = len;
        // Where the append being scanned began: (byte, offset, max_ts before it, index
        // entries before it). Index entries always sit at an append's first record.
        let mut append_start: Option<(u64, u64, u64, usize)> = None;
        loop {
            let step = reader
                .step(pos, expected, opts.max_record_bytes)
                .map_err(io_err(storage, "read", &name))?;
            let step = match (step, append_start) {
                // The tail ends inside an append (its last record still says MORE): the
                // append was torn; cut back to its start so appends stay atomic.
                (Step::End, Some(_)) => Step::Torn("append cut after a whole record".into()),
                (s, _) => s,
            };
            match step {
                Step::Record(h) => {
                    let first_of_append = append_start.is_none();
                    if first_of_append {
                        append_start = Some((pos, expected, max_ts, entries.len()));
                    }
                    max_ts = max_ts.max(h.timestamp_ns);
                    if first_of_append
                        && wants_index_entry(entries.last(), pos, opts.index_interval_bytes)
                    {
                        entries.push(IndexEntry {
                            rel_offset: u32::try_from(expected - base).map_err(|_| {
                                corrupt(expected, "segment holds more than 2^32 records".into())
                            })?,
                            position: u32::try_from(pos).map_err(|_| {
                                corrupt(expected, format!("record at byte {pos} beyond 4 GiB"))
                            })?,
                            max_ts,
                        });
                    }
                    if !h.more {
                        append_start = None;
                    }
                    pos += h.total_len();
                    expected += 1;
                    report.records_scanned += 1;
                }
                Step::End => break,
                Step::Torn(reason) if is_last => {
                    if let Some((p, o, ts, n)) = append_start {
                        (pos, expected, max_ts) = (p, o, ts);
                        entries.truncate(n);
                    }
                    // No entry may point at or past the cut (the append's first record
                    // may carry one loaded from the index file).
                    while entries.last().is_some_and(|e| u64::from(e.position) >= pos) {
                        entries.pop();
                    }
                    kept = kept.min(entries.len());
                    if writable {
                        file.truncate(pos)
                            .map_err(io_err(storage, "truncate", &name))?;
                        file.fsync().map_err(io_err(storage, "fsync", &name))?;
                    }
                    report.truncated_bytes += len - pos;
                    report.truncated_at = Some((name.clone(), pos, expected));
                    let _ = reason;
                    end = pos;
                    break;
                }
                Step::Torn(reason) | Step::Corrupt(reason) => {
                    return Err(corrupt(expected, format!("{reason} (byte {pos})")));
                }
            }
        }

        if entries.len() != kept {
            report.index_entries_rebuilt += (entries.len() - kept) as u64;
        }
        if is_last && writable && durable {
            // After a process crash the tail may sit in the page cache only: what the
            // reopened log serves (and consumers acknowledge) must outlive a power cut,
            // or later appends would reuse offsets that cursors have already passed.
            file.fsync().map_err(io_err(storage, "fsync", &name))?;
            storage
                .fsync_dir()
                .map_err(io_err(storage, "fsync directory", &name))?;
        }
        if writable {
            if let Some(f) = &index_file {
                // Rewrite the index past its last good entry (it is not fsynced: derived data).
                let keep_bytes = (kept * INDEX_ENTRY_LEN) as u64;
                let mut tail = Vec::with_capacity((entries.len() - kept) * INDEX_ENTRY_LEN);
                for e in &entries[kept..] {
                    tail.extend_from_slice(&e.encode());
                }
                f.truncate(keep_bytes)
                    .map_err(io_err(storage, "truncate", &iname))?;
                if !tail.is_empty() {
                    f.write_at(keep_bytes, &tail)
                        .map_err(io_err(storage, "write", &iname))?;
                }
            }
        }
        segments.push(Arc::new(Segment {
            base,
            name: name.clone(),
            file,
            index_file,
            visible_len: AtomicU64::new(end),
            next_offset: AtomicU64::new(expected),
            max_ts: AtomicU64::new(max_ts),
            index: RwLock::new(entries),
            sealed: AtomicBool::new(!is_last),
        }));
    }

    // Orphan index files (a segment removed by retention or a torn creation).
    if writable {
        for n in &names {
            if let Some(stem) = n.strip_suffix(".idx") {
                let log = format!("{stem}.log");
                if !names.contains(&log) || report.removed_segments.contains(&log) {
                    let _ = storage.remove(n);
                }
            }
        }
    }

    if segments.is_empty() && writable {
        // Start where a removed torn segment would have started.
        let base = report
            .removed_segments
            .first()
            .and_then(|n| parse_segment_name(n))
            .unwrap_or(0);
        segments.push(create_segment(storage, base, durable)?);
        tail_len = SEGMENT_HEADER_LEN as u64;
        tail_max_ts = 0;
    } else if let Some(last) = segments.last() {
        last.sealed
            .store(false, std::sync::atomic::Ordering::Release);
        tail_len = last.visible_len.load(std::sync::atomic::Ordering::Acquire);
        tail_max_ts = last.max_ts.load(std::sync::atomic::Ordering::Acquire);
    }
    Ok(Recovered {
        segments,
        report,
        tail_len,
        tail_max_ts,
    })
}
