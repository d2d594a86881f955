//! Canonical associated data: what binds a seal to its event (docs/FORMAT.md §AAD).
//!
//! Every variable-length field is length-prefixed (u32 big-endian), so no two
//! different field tuples encode to the same bytes ("a" + "bc" vs "ab" + "c"). The
//! frame's version, mode and key id are included: a frame re-labelled with another
//! key id or mode fails to open even before the key lookup would notice.

use crate::error::{Error, Result};

/// Domain separation for the AAD of a payload seal.
pub const AAD_DOMAIN: &[u8] = b"sealbus/aad/v1";

/// The event attributes a seal is bound to. The key id is added by the sealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AadFields<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub source: &'a str,
    pub schema_version: u32,
}

/// Owned form, for callers that hold `String`s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedAadFields {
    pub event_id: String,
    pub event_type: String,
    pub source: String,
    pub schema_version: u32,
}

impl OwnedAadFields {
    pub fn as_ref(&self) -> AadFields<'_> {
        AadFields {
            event_id: &self.event_id,
            event_type: &self.event_type,
            source: &self.source,
            schema_version: self.schema_version,
        }
    }
}

pub(crate) fn put_lp(out: &mut Vec<u8>, name: &str, v: &[u8]) -> Result<()> {
    let len = u32::try_from(v.len()).map_err(|_| Error::InvalidArgument {
        name: name.into(),
        reason: format!(
            "{} bytes is longer than the 2^32-1 a length prefix holds",
            v.len()
        ),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(v);
    Ok(())
}

/// Append the canonical AAD to `out`:
/// `"sealbus/aad/v1" || version || mode || lp(key_id) || lp(event_id) || lp(event_type)
///  || lp(source) || u32be(schema_version)`.
pub fn encode_aad(
    out: &mut Vec<u8>,
    version: u8,
    mode: u8,
    key_id: &str,
    f: &AadFields<'_>,
) -> Result<()> {
    out.reserve(AAD_DOMAIN.len() + 2 + 20 + key_id.len() + event_len(f));
    put_frame_part(out, version, mode, key_id)?;
    put_event_part(out, f)
}

/// The part of the AAD every frame of a batch shares: domain, version, mode, key id.
fn put_frame_part(out: &mut Vec<u8>, version: u8, mode: u8, key_id: &str) -> Result<()> {
    out.extend_from_slice(AAD_DOMAIN);
    out.push(version);
    out.push(mode);
    put_lp(out, "key_id", key_id.as_bytes())
}

/// The part that is the event's own: id, type, source, schema version.
fn put_event_part(out: &mut Vec<u8>, f: &AadFields<'_>) -> Result<()> {
    put_lp(out, "event_id", f.event_id.as_bytes())?;
    put_lp(out, "event_type", f.event_type.as_bytes())?;
    put_lp(out, "source", f.source.as_bytes())?;
    out.extend_from_slice(&f.schema_version.to_be_bytes());
    Ok(())
}

fn event_len(f: &AadFields<'_>) -> usize {
    16 + f.event_id.len() + f.event_type.len() + f.source.len()
}

/// The AADs of a batch of frames under one key, one at a time: the shared part is
/// encoded once, and each event's part is written after it in place of the last.
/// Gives exactly the bytes of [`encode_aad`].
pub(crate) struct AadWriter {
    buf: Vec<u8>,
    shared: usize,
}

impl AadWriter {
    pub(crate) fn new(version: u8, mode: u8, key_id: &str) -> Result<Self> {
        let mut buf = Vec::with_capacity(AAD_DOMAIN.len() + 2 + 4 + key_id.len() + 112);
        put_frame_part(&mut buf, version, mode, key_id)?;
        let shared = buf.len();
        Ok(Self { buf, shared })
    }

    /// The AAD of event `f` (valid until the next call).
    pub(crate) fn encode(&mut self, f: &AadFields<'_>) -> Result<&[u8]> {
        self.buf.truncate(self.shared);
        self.buf.reserve(event_len(f));
        put_event_part(&mut self.buf, f)?;
        Ok(&self.buf)
    }
}

/// Encode a batch of AADs into one buffer plus `n + 1` offsets.
pub fn encode_aads(
    version: u8,
    mode: u8,
    key_id: &str,
    fields: &[AadFields<'_>],
) -> Result<(Vec<u8>, Vec<usize>)> {
    let mut buf = Vec::with_capacity(fields.len() * 96);
    let mut offs = Vec::with_capacity(fields.len() + 1);
    offs.push(0);
    for f in fields {
        encode_aad(&mut buf, version, mode, key_id, f)?;
        offs.push(buf.len());
    }
    Ok((buf, offs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_exact_and_unambiguous() {
        let f = AadFields {
            event_id: "e1",
            event_type: "t",
            source: "s",
            schema_version: 258,
        };
        let mut out = Vec::new();
        encode_aad(&mut out, 1, 1, "k", &f).unwrap();
        let mut want = b"sealbus/aad/v1".to_vec();
        want.extend_from_slice(&[
            1, 1, 0, 0, 0, 1, b'k', 0, 0, 0, 2, b'e', b'1', 0, 0, 0, 1, b't', 0, 0, 0, 1, b's', 0,
            0, 1, 2,
        ]);
        assert_eq!(out, want);
        let g = AadFields {
            event_id: "e",
            event_type: "1t",
            ..f
        };
        let mut other = Vec::new();
        encode_aad(&mut other, 1, 1, "k", &g).unwrap();
        assert_ne!(out, other);
    }

    proptest::proptest! {
        #[test]
        fn writer_gives_the_bytes_of_encode_aad(
            key_id in ".{0,20}",
            events in proptest::collection::vec((".{0,24}", ".{0,12}", ".{0,12}", proptest::num::u32::ANY), 1..8),
            mode in 0u8..3,
        ) {
            let mut w = AadWriter::new(1, mode, &key_id).unwrap();
            for (id, ty, src, v) in &events {
                let f = AadFields { event_id: id, event_type: ty, source: src, schema_version: *v };
                let mut want = Vec::new();
                encode_aad(&mut want, 1, mode, &key_id, &f).unwrap();
                proptest::prop_assert_eq!(w.encode(&f).unwrap(), &want[..]);
            }
        }
    }
}
