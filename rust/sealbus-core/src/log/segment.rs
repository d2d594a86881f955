//! One segment: a file of records that starts at a base offset, its sparse index, and
//! the scanner that walks records and classifies what it finds (record, end, torn
//! tail, corruption) by the rule of docs/FORMAT-LOG.md.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::index::{self, IndexEntry};
use super::io::StorageFile;
use super::record::{
    decode_header, payload_ok, HeaderError, RecordHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::Record;
use crate::error::{Error, Result};

/// Bytes read at once when scanning.
const CHUNK: usize = 256 * 1024;

pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

pub(crate) fn index_name(base: u64) -> String {
    format!("{base:020}.idx")
}

/// Parse `00000000000000000042.log` into 42.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn io_error(op: &'static str, path: String, source: io::Error) -> Error {
    Error::LogIo { op, path, source }
}

/// Limits of one read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadLimits {
    pub records: usize,
    pub bytes: usize,
    /// Largest payload length a header may claim.
    pub payload_cap: u32,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base: u64,
    pub name: String,
    pub file: Arc<dyn StorageFile>,
    /// `None` only for a read-only open of a segment whose index file is missing.
    pub index_file: Option<Arc<dyn StorageFile>>,
    /// Bytes readers may look at: whole records that are durable per the policy.
    pub visible_len: AtomicU64,
    /// One past the last visible record's offset.
    pub next_offset: AtomicU64,
    pub max_ts: AtomicU64,
    pub index: RwLock<Vec<IndexEntry>>,
    pub sealed: AtomicBool,
}

impl Segment {
    pub fn records(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire) - self.base
    }

    pub fn len(&self) -> u64 {
        self.visible_len.load(Ordering::Acquire)
    }

    pub fn corrupted(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::LogCorrupted {
            segment: self.name.clone(),
            offset,
            reason: reason.into(),
        }
    }

    fn index_snapshot_floor(&self, rel: u64) -> Option<IndexEntry> {
        let idx = self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        index::floor_by_offset(&idx, rel)
    }

    /// Append visible records with offset `>= from` to `out`, within the limits.
    /// Returns true when the limits stopped it (rather than the segment's end).
    pub fn read_into(
        &self,
        path: &str,
        from: u64,
        limits: ReadLimits,
        out: &mut Vec<Record>,
        bytes: &mut usize,
    ) -> Result<bool> {
        // next_offset is published after visible_len: load it first.
        let next = self.next_offset.load(Ordering::Acquire);
        let end = self.len();
        if from >= next {
            return Ok(false);
        }
        let (mut pos, mut expected) =
            match self.index_snapshot_floor(from.saturating_sub(self.base)) {
                Some(e) => (u64::from(e.position), self.base + u64::from(e.rel_offset)),
                None => (SEGMENT_HEADER_LEN as u64, self.base),
            };
        let mut reader = ChunkReader::new(self.file.as_ref(), end);
        while expected < next {
            if out.len() >= limits.records || (*bytes >= limits.bytes && !out.is_empty()) {
                return Ok(true);
            }
            match reader
                .step(pos, expected, limits.payload_cap)
                .map_err(|e| io_error("read", path.to_owned(), e))?
            {
                Step::Record(h) => {
                    if h.offset >= from {
                        let payload = reader
                            .get(pos + RECORD_HEADER_LEN as u64, h.payload_len as usize)
                            .map_err(|e| io_error("read", path.to_owned(), e))?;
                        *bytes += payload.len();
                        out.push(Record {
                            offset: h.offset,
                            timestamp_ns: h.timestamp_ns,
                            payload: payload.to_vec(),
                        });
                    }
                    pos += h.total_len();
                    expected += 1;
                }
                Step::End => {
                    return Err(self.corrupted(
                        expected,
                        format!("segment ends at byte {pos} before offset {expected}"),
                    ))
                }
                Step::Torn(reason) | Step::Corrupt(reason) => {
                    return Err(self.corrupted(expected, format!("{reason} (byte {pos})")))
                }
            }
        }
        Ok(false)
    }

    /// First offset in this segment whose record timestamp is `>= ts`, if any.
    pub fn offset_for_time(&self, path: &str, ts: u64, max_payload: u32) -> Result<Option<u64>> {
        if self.max_ts.load(Ordering::Acquire) < ts {
            return Ok(None);
        }
        // next_offset is published after visible_len: load it first.
        let next = self.next_offset.load(Ordering::Acquire);
        let end = self.len();
        let start = {
            let idx = self
                .index
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            index::floor_by_time(&idx, ts)
        };
        let (mut pos, mut expected) = match start {
            Some(e) => (u64::from(e.position), self.base + u64::from(e.rel_offset)),
            None => (SEGMENT_HEADER_LEN as u64, self.base),
        };
        let mut reader = ChunkReader::new(self.file.as_ref(), end);
        while expected < next {
            match reader
                .step(pos, expected, max_payload)
                .map_err(|e| io_error("read", path.to_owned(), e))?
            {
                Step::Record(h) => {
                    if h.timestamp_ns >= ts {
                        return Ok(Some(h.offset));
                    }
                    pos += h.total_len();
                    expected += 1;
                }
                Step::End => break,
                Step::Torn(reason) | Step::Corrupt(reason) => {
                    return Err(self.corrupted(expected, format!("{reason} (byte {pos})")))
                }
            }
        }
        Ok(None)
    }
}

/// What the scanner found at a position.
#[derive(Debug)]
pub(crate) enum Step {
    /// A whole, verified record with the expected offset.
    Record(RecordHeader),
    /// Exactly at the end of the bytes.
    End,
    /// An incomplete last record: fewer than a header's bytes, a verified header whose
    /// record runs past the end, or nothing but zero bytes up to the end.
    Torn(String),
    /// Anything else: bad checksum on a complete header or payload, unknown version,
    /// an offset out of sequence.
    Corrupt(String),
}

/// Buffered positional reader over `[0, end)` of a file.
pub(crate) struct ChunkReader<'a> {
    file: &'a dyn StorageFile,
    end: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> ChunkReader<'a> {
    pub fn new(file: &'a dyn StorageFile, end: u64) -> ChunkReader<'a> {
        ChunkReader {
            file,
            end,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// `len` bytes at `at`; the caller guarantees `at + len <= end`.
    pub fn get(&mut self, at: u64, len: usize) -> io::Result<&[u8]> {
        let have_end = self.start + self.buf.len() as u64;
        if at < self.start || at + len as u64 > have_end {
            let room = usize::try_from(self.end - at).unwrap_or(usize::MAX);
            let want = len.max(CHUNK).min(room);
            self.buf.resize(want, 0);
            self.file.read_at(at, &mut self.buf)?;
            self.start = at;
        }
        let from = usize::try_from(at - self.start).unwrap_or(usize::MAX);
        Ok(&self.buf[from..from + len])
    }

    pub fn zeros_to_end(&mut self, mut at: u64) -> io::Result<bool> {
        while at < self.end {
            let n = usize::try_from((self.end - at).min(CHUNK as u64)).unwrap_or(CHUNK);
            if self.get(at, n)?.iter().any(|b| *b != 0) {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }

    /// Classify what is at `pos`, expecting a record with offset `expected`.
    pub fn step(&mut self, pos: u64, expected: u64, max_payload: u32) -> io::Result<Step> {
        let remaining = self.end.saturating_sub(pos);
        if remaining == 0 {
            return Ok(Step::End);
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            return Ok(Step::Torn(format!(
                "partial record header ({remaining} of {RECORD_HEADER_LEN} bytes)"
            )));
        }
        let header = match decode_header(self.get(pos, RECORD_HEADER_LEN)?) {
            Ok(h) => h,
            Err(HeaderError::Checksum { stored, computed }) => {
                if self.zeros_to_end(pos)? {
                    return Ok(Step::Torn(format!("zero-filled tail of {remaining} bytes")));
                }
                return Ok(Step::Corrupt(format!(
                    "record header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )));
            }
            Err(HeaderError::Unsupported(what)) => {
                return Ok(Step::Corrupt(format!("unsupported {what}")))
            }
        };
        if header.payload_len > max_payload {
            return Ok(Step::Corrupt(format!(
                "record payload length {} exceeds the limit {max_payload}",
                header.payload_len
            )));
        }
        if header.total_len() > remaining {
            return Ok(Step::Torn(format!(
                "record of {} bytes runs past the end ({remaining} bytes left)",
                header.total_len()
            )));
        }
        if header.offset != expected {
            return Ok(Step::Corrupt(format!(
                "record offset {} out of sequence, expected {expected}",
                header.offset
            )));
        }
        let payload = self.get(pos + RECORD_HEADER_LEN as u64, header.payload_len as usize)?;
        if !payload_ok(&header, payload) {
            return Ok(Step::Corrupt("record payload checksum mismatch".into()));
        }
        Ok(Step::Record(header))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(segment_name(42), "00000000000000000042.log");
        assert_eq!(parse_segment_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
        assert_eq!(parse_segment_name("00000000000000000042.idx"), None);
    }
}
