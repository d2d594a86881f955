//! Byte layout of one log record and of a segment file's header (docs/FORMAT-LOG.md).
//!
//! A record is a 32-byte header followed by the payload (an opaque sealed frame):
//!
//! ```text
//!  0..4   header_crc   u32 LE  CRC32C of bytes 4..32 of this header
//!  4..8   payload_len  u32 LE
//!  8..16  offset       u64 LE  logical offset of the record
//! 16..24  timestamp_ns u64 LE
//! 24..28  payload_crc  u32 LE  CRC32C of the payload
//! 28      version      u8      = 1
//! 29      flags        u8      bit 0 MORE: another record of the same append follows;
//!                              other bits reserved (refused)
//! 30..32  reserved     u16     = 0
//! ```
//!
//! The header has its own checksum so that a damaged length can never make a whole
//! record look like a torn tail (see `decode_header`): a single flipped bit anywhere in
//! a complete record is always reported as corruption.

/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 32;
/// Record format version written by this code.
pub const RECORD_VERSION: u8 = 1;
/// Flag: more records of the same `append_batch` follow this one. Recovery uses it to
/// keep appends atomic: a tail that ends on a record with this flag is a torn append.
pub const FLAG_MORE: u8 = 0x01;
/// Length of a segment file header.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// First bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"SBUSLOG\0";
/// Segment format version written by this code.
pub const SEGMENT_VERSION: u16 = 1;

/// A decoded, checksum-verified record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub payload_len: u32,
    pub offset: u64,
    pub timestamp_ns: u64,
    pub payload_crc: u32,
    /// `FLAG_MORE` was set.
    pub more: bool,
}

impl RecordHeader {
    /// Total bytes of the record on disk.
    pub fn total_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// Why a header did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The header checksum does not match: damaged bytes (or a zero-filled tail, which
    /// the caller tells apart by looking at the rest of the file).
    Checksum { stored: u32, computed: u32 },
    /// The checksum matches but a field is not something this code writes.
    Unsupported(String),
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Append one encoded record to `out`. Returns the position of its header in `out`.
pub fn encode_into(
    out: &mut Vec<u8>,
    offset: u64,
    timestamp_ns: u64,
    payload: &[u8],
    more: bool,
) -> usize {
    encode_parts_into(out, offset, timestamp_ns, &[payload], more)
}

/// [`encode_into`] for a payload given in parts (concatenated, one CRC over all).
pub fn encode_parts_into(
    out: &mut Vec<u8>,
    offset: u64,
    timestamp_ns: u64,
    parts: &[&[u8]],
    more: bool,
) -> usize {
    let at = out.len();
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(total).unwrap_or(u32::MAX);
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&timestamp_ns.to_le_bytes());
    // The payload CRC is filled in after the payload is copied, from the copy.
    out.extend_from_slice(&[0u8; 4]);
    out.push(RECORD_VERSION);
    out.push(if more { FLAG_MORE } else { 0 });
    out.extend_from_slice(&[0u8; 2]);
    let start = out.len();
    for p in parts {
        out.extend_from_slice(p);
    }
    let crc = crc32c::crc32c(&out[start..]);
    out[at + 24..at + 28].copy_from_slice(&crc.to_le_bytes());
    seal_header(&mut out[at..at + RECORD_HEADER_LEN]);
    at
}

/// Rewrite the offset of an encoded header and refresh its checksum. The writer encodes
/// records in the caller's thread (payload copy + payload CRC, the expensive part) and
/// only patches the 32-byte headers once the single writer has assigned offsets.
pub fn patch_offset(header: &mut [u8], offset: u64) {
    header[8..16].copy_from_slice(&offset.to_le_bytes());
    seal_header(header);
}

fn seal_header(header: &mut [u8]) {
    let crc = crc32c::crc32c(&header[4..RECORD_HEADER_LEN]);
    header[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Decode and verify a record header (exactly `RECORD_HEADER_LEN` bytes).
pub fn decode_header(h: &[u8]) -> Result<RecordHeader, HeaderError> {
    debug_assert_eq!(h.len(), RECORD_HEADER_LEN);
    let stored = le_u32(h, 0);
    let computed = crc32c::crc32c(&h[4..RECORD_HEADER_LEN]);
    if stored != computed {
        return Err(HeaderError::Checksum { stored, computed });
    }
    if h[28] != RECORD_VERSION {
        return Err(HeaderError::Unsupported(format!(
            "record version {}",
            h[28]
        )));
    }
    if h[29] & !FLAG_MORE != 0 {
        return Err(HeaderError::Unsupported(format!(
            "record flags {:#04x}",
            h[29]
        )));
    }
    if h[30] != 0 || h[31] != 0 {
        return Err(HeaderError::Unsupported(
            "reserved header bytes are not zero".into(),
        ));
    }
    Ok(RecordHeader {
        payload_len: le_u32(h, 4),
        offset: le_u64(h, 8),
        timestamp_ns: le_u64(h, 16),
        payload_crc: le_u32(h, 24),
        more: h[29] & FLAG_MORE != 0,
    })
}

/// Does the payload match the header's checksum?
pub fn payload_ok(header: &RecordHeader, payload: &[u8]) -> bool {
    crc32c::crc32c(payload) == header.payload_crc
}

/// Encode a segment file header for `base_offset`.
pub fn encode_segment_header(base_offset: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base_offset.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decode a segment file header; returns its base offset or what is wrong with it.
pub fn decode_segment_header(h: &[u8]) -> Result<u64, String> {
    if h.len() < SEGMENT_HEADER_LEN {
        return Err(format!(
            "segment header is {} bytes, expected {SEGMENT_HEADER_LEN}",
            h.len()
        ));
    }
    let stored = le_u32(h, 28);
    let computed = crc32c::crc32c(&h[0..28]);
    if stored != computed {
        return Err(format!(
            "segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    if &h[0..8] != SEGMENT_MAGIC {
        return Err("not a sealbus segment (bad magic)".into());
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != SEGMENT_VERSION {
        return Err(format!("unsupported segment version {version}"));
    }
    if h[10..16].iter().any(|b| *b != 0) || h[24..28].iter().any(|b| *b != 0) {
        return Err("reserved segment header bytes are not zero".into());
    }
    Ok(le_u64(h, 16))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 7, 1234, b"hello", false);
        let h = decode_header(&buf[..RECORD_HEADER_LEN]).unwrap();
        assert_eq!(h.offset, 7);
        assert_eq!(h.timestamp_ns, 1234);
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.total_len(), 37);
        assert!(payload_ok(&h, &buf[RECORD_HEADER_LEN..]));
    }

    #[test]
    fn patch_changes_offset_and_keeps_checksum_valid() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 0, 1, b"x", false);
        patch_offset(&mut buf[..RECORD_HEADER_LEN], 99);
        assert_eq!(decode_header(&buf[..RECORD_HEADER_LEN]).unwrap().offset, 99);
    }

    #[test]
    fn every_header_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 3, 5, b"payload", false);
        for bit in 0..RECORD_HEADER_LEN * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_header(&b[..RECORD_HEADER_LEN]).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn payload_flip_is_detected() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 3, 5, b"payload", false);
        let h = decode_header(&buf[..RECORD_HEADER_LEN]).unwrap();
        for bit in 0..7 * 8 {
            let mut p = buf[RECORD_HEADER_LEN..].to_vec();
            p[bit / 8] ^= 1 << (bit % 8);
            assert!(!payload_ok(&h, &p));
        }
    }

    #[test]
    fn segment_header_round_trip_and_flips() {
        let h = encode_segment_header(42);
        assert_eq!(decode_segment_header(&h).unwrap(), 42);
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut b = h;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_segment_header(&b).is_err());
        }
        assert!(decode_segment_header(&h[..10]).is_err());
    }

    #[test]
    fn zero_header_is_a_checksum_error() {
        assert!(matches!(
            decode_header(&[0u8; RECORD_HEADER_LEN]),
            Err(HeaderError::Checksum { .. })
        ));
    }
}
