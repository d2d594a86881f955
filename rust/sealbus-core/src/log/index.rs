//! Sparse per-segment index: one entry every `index_interval_bytes` of records, mapping
//! a relative offset to a byte position, and carrying the running maximum timestamp so
//! the same entries answer "first offset at or after time T".
//!
//! Entry (20 bytes, little endian): `rel_offset u32, position u32, max_ts u64, crc u32`
//! where `crc` is CRC32C of the first 16 bytes. The index is derived data: it is written
//! without fsync, checked entry by entry on open, and rebuilt from the records from
//! the last good entry on.

/// Length of one index entry on disk.
pub const INDEX_ENTRY_LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset relative to the segment's base offset.
    pub rel_offset: u32,
    /// Byte position of the record in the segment file.
    pub position: u32,
    /// Largest record timestamp in the segment up to and including this record.
    pub max_ts: u64,
}

impl IndexEntry {
    pub fn encode(&self) -> [u8; INDEX_ENTRY_LEN] {
        let mut b = [0u8; INDEX_ENTRY_LEN];
        b[0..4].copy_from_slice(&self.rel_offset.to_le_bytes());
        b[4..8].copy_from_slice(&self.position.to_le_bytes());
        b[8..16].copy_from_slice(&self.max_ts.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..16]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode one entry; `None` if its checksum does not match.
    pub fn decode(b: &[u8]) -> Option<IndexEntry> {
        if b.len() != INDEX_ENTRY_LEN {
            return None;
        }
        let crc = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
        if crc != crc32c::crc32c(&b[0..16]) {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[8..16]);
        Some(IndexEntry {
            rel_offset: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            max_ts: u64::from_le_bytes(ts),
        })
    }
}

/// Parse an index file, keeping the longest prefix of entries that are checksummed,
/// strictly increasing, and point inside a segment of `segment_len` bytes past its
/// header. Everything after the first bad entry is dropped (rebuilt by the caller).
pub fn parse_prefix(bytes: &[u8], segment_len: u64, min_position: u64) -> Vec<IndexEntry> {
    let mut out: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / INDEX_ENTRY_LEN);
    for chunk in bytes.chunks_exact(INDEX_ENTRY_LEN) {
        let Some(e) = IndexEntry::decode(chunk) else {
            break;
        };
        let pos = u64::from(e.position);
        if pos < min_position || pos >= segment_len {
            break;
        }
        if let Some(prev) = out.last() {
            if e.rel_offset <= prev.rel_offset
                || e.position <= prev.position
                || e.max_ts < prev.max_ts
            {
                break;
            }
        }
        out.push(e);
    }
    out
}

/// The last entry whose relative offset is `<= rel`.
pub fn floor_by_offset(entries: &[IndexEntry], rel: u64) -> Option<IndexEntry> {
    let n = entries.partition_point(|e| u64::from(e.rel_offset) <= rel);
    n.checked_sub(1).map(|i| entries[i])
}

/// The last entry whose running max timestamp is `< ts`: every record before it is
/// older than `ts`, so a scan for the first record at or after `ts` may start there.
pub fn floor_by_time(entries: &[IndexEntry], ts: u64) -> Option<IndexEntry> {
    let n = entries.partition_point(|e| e.max_ts < ts);
    n.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn e(rel: u32, pos: u32, ts: u64) -> IndexEntry {
        IndexEntry {
            rel_offset: rel,
            position: pos,
            max_ts: ts,
        }
    }

    #[test]
    fn round_trip_and_flip() {
        let x = e(5, 1000, 77);
        let b = x.encode();
        assert_eq!(IndexEntry::decode(&b), Some(x));
        for bit in 0..INDEX_ENTRY_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(IndexEntry::decode(&c), None);
        }
    }

    #[test]
    fn parse_stops_at_first_bad_entry() {
        let mut bytes = Vec::new();
        for x in [e(0, 32, 1), e(10, 500, 2), e(5, 900, 3), e(20, 1200, 4)] {
            bytes.extend_from_slice(&x.encode());
        }
        bytes.extend_from_slice(&[1, 2, 3]); // torn trailing entry
        let got = parse_prefix(&bytes, 2000, 32);
        assert_eq!(got, vec![e(0, 32, 1), e(10, 500, 2)]);
        // Entries pointing past the segment end are dropped.
        assert_eq!(parse_prefix(&bytes, 400, 32), vec![e(0, 32, 1)]);
    }

    #[test]
    fn floors() {
        let v = vec![e(0, 32, 10), e(10, 500, 20), e(20, 900, 30)];
        assert_eq!(floor_by_offset(&v, 0).unwrap().rel_offset, 0);
        assert_eq!(floor_by_offset(&v, 15).unwrap().rel_offset, 10);
        assert_eq!(floor_by_offset(&v, 99).unwrap().rel_offset, 20);
        assert_eq!(floor_by_time(&v, 10), None);
        assert_eq!(floor_by_time(&v, 21).unwrap().rel_offset, 10);
        assert_eq!(floor_by_offset(&[], 3), None);
    }
}
