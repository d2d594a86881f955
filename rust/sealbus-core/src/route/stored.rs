//! How the router stores one event in a log record: its cleartext attributes (the
//! CloudEvents JSON form without data) and its data, sealed when the router seals.
//!
//! ```text
//! u8  version (1)
//! u8  flags: bit 0 = data is a sealed frame
//! u8  data kind: 0 none, 1 JSON, 2 binary
//! u32 little-endian length of the attributes JSON
//! ... attributes JSON (UTF-8)
//! ... data (the rest of the record)
//! ```
//! The log's record layer adds length and CRC32C around this (docs/FORMAT-LOG.md).

use crate::envelope::{DataKind, Event};
use crate::error::{Error, Result};

const VERSION: u8 = 1;
const FLAG_SEALED: u8 = 1;

pub fn encode(e: &Event, out: &mut Vec<u8>) {
    let mut attrs = Vec::with_capacity(256);
    e.write_attributes_json(&mut attrs);
    encode_with_attributes(e, &attrs, out);
}

/// [`encode`] with the attributes JSON already written by
/// [`Event::write_attributes_json`] (no closing brace): the publish path writes it
/// once per event for matching and storing.
pub fn encode_with_attributes(e: &Event, attrs_open: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&header(e, e.sealed, attrs_open.len()));
    out.extend_from_slice(attrs_open);
    out.push(b'}');
    out.extend_from_slice(&e.data);
}

/// Length of the stored-event header (version, flags, kind, attributes length).
pub const HEADER_LEN: usize = 7;

/// The header of a stored event whose attributes JSON without its closing brace is
/// `attrs_open_len` bytes long; the attributes, `}` and the data follow it.
pub fn header(e: &Event, sealed: bool, attrs_open_len: usize) -> [u8; HEADER_LEN] {
    // Attributes are bounded by the envelope checks, far below 4 GiB.
    let len = u32::try_from(attrs_open_len + 1)
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let kind = match e.data_kind {
        DataKind::None => 0,
        DataKind::Json => 1,
        DataKind::Binary => 2,
    };
    let flags = if sealed { FLAG_SEALED } else { 0 };
    [VERSION, flags, kind, len[0], len[1], len[2], len[3]]
}

/// Decode a stored event; `offset` is the log offset, for the error and the event.
pub fn decode(bytes: &[u8], offset: u64, segment: &str) -> Result<Event> {
    let bad = |reason: String| Error::LogCorrupted {
        segment: segment.to_owned(),
        offset,
        reason,
    };
    let [version, flags, kind, l0, l1, l2, l3, rest @ ..] = bytes else {
        return Err(bad("stored event shorter than its 7-byte header".into()));
    };
    if *version != VERSION {
        return Err(bad(format!("unknown stored-event version {version}")));
    }
    let len = u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize;
    if len > rest.len() {
        return Err(bad(format!("attributes length {len} exceeds the record")));
    }
    let (attrs, data) = rest.split_at(len);
    let mut e =
        Event::from_stored_attributes(attrs).map_err(|err| bad(format!("attributes: {err}")))?;
    e.data_kind = match kind {
        0 => DataKind::None,
        1 => DataKind::Json,
        2 => DataKind::Binary,
        k => return Err(bad(format!("unknown data kind {k}"))),
    };
    e.data = data.to_vec();
    e.sealed = flags & FLAG_SEALED != 0;
    e.offset = Some(offset);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{now, Attributes};

    #[test]
    fn round_trip_and_refusals() {
        let mut e = Event::stamp(
            "p",
            "orders.placed",
            &Attributes::default(),
            DataKind::Json,
            b"{\"a\":1}".to_vec(),
            now(),
        );
        e.schema_version = Some(2);
        e.sealed = true;
        let mut buf = Vec::new();
        encode(&e, &mut buf);
        let back = decode(&buf, 7, "s").unwrap();
        assert_eq!(back.id, e.id);
        assert_eq!(back.data, e.data);
        assert!(back.sealed);
        assert_eq!(back.schema_version, Some(2));
        assert_eq!(back.offset, Some(7));
        for cut in 0..buf.len().min(40) {
            if let Ok(x) = decode(&buf[..cut], 7, "s") {
                assert_eq!(x.id, e.id, "a cut inside data only shortens data");
            }
        }
        let mut wrong = buf.clone();
        wrong[0] = 9;
        assert!(matches!(
            decode(&wrong, 7, "s"),
            Err(Error::LogCorrupted { offset: 7, .. })
        ));
    }
}
