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
    out.reserve(
        AAD_DOMAIN.len()
            + 2
            + 20
            + key_id.len()
            + f.event_id.len()
            + f.event_type.len()
            + f.source.len(),
    );
    out.extend_from_slice(AAD_DOMAIN);
    out.push(version);
    out.push(mode);
    put_lp(out, "key_id", key_id.as_bytes())?;
    put_lp(out, "event_id", f.event_id.as_bytes())?;
    put_lp(out, "event_type", f.event_type.as_bytes())?;
    put_lp(out, "source", f.source.as_bytes())?;
    out.extend_from_slice(&f.schema_version.to_be_bytes());
    Ok(())
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
}
