//! The sealed frame, byte by byte as in docs/FORMAT.md. The decoder takes hostile
//! bytes: every read is bounds-checked and fails with `Error::Frame { offset, .. }`
//! naming the byte where the frame stopped making sense. It never panics.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::seal::aead::{NONCE_LEN, TAG_LEN};

pub const MAGIC: [u8; 2] = *b"SB";
pub const VERSION: u8 = 1;
pub const MAX_KEY_ID_LEN: usize = 64;
/// X25519 public key length.
pub const EPHEMERAL_LEN: usize = 32;
/// A wrapped 256-bit data key: 32 bytes of ciphertext and a 16-byte tag.
pub const WRAPPED_KEY_LEN: usize = 32 + TAG_LEN;

/// What protects the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Sealed by the router's key ring; the key id names a ring key.
    AtRest = 1,
    /// Sealed by the producer with a fresh data key wrapped for each recipient; the
    /// key id names the data key.
    EndToEnd = 2,
}

impl Mode {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Mode::AtRest),
            2 => Some(Mode::EndToEnd),
            _ => None,
        }
    }
}

/// One recipient's copy of the data key (end-to-end mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient<'a> {
    pub id: &'a str,
    pub ephemeral_public: &'a [u8],
    pub wrapped_key: &'a [u8],
}

/// A decoded frame borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub version: u8,
    pub mode: Mode,
    pub key_id: &'a str,
    pub nonce: &'a [u8],
    pub recipients: Vec<Recipient<'a>>,
    /// Ciphertext followed by the 16-byte tag, as AES-GCM APIs take it.
    pub sealed: &'a [u8],
}

/// Key ids are short printable ASCII so they can sit in logs, file names and AAD.
pub fn check_key_id(id: &str) -> Result<()> {
    let ok_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-');
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN || !id.bytes().all(ok_char) {
        return Err(Error::InvalidArgument {
            name: "key_id".into(),
            reason: format!("key ids are 1..={MAX_KEY_ID_LEN} characters of [A-Za-z0-9._:-]"),
        });
    }
    Ok(())
}

fn fail(at: usize, reason: String) -> Error {
    Error::Frame { offset: at, reason }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| Error::Frame {
                offset: self.pos,
                reason: format!(
                    "truncated: {what} needs {n} bytes, {} left",
                    self.buf.len() - self.pos
                ),
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
}

/// Up to this many recipients, a frame's ids are checked for repeats pairwise.
const SMALL_RECIPIENTS: usize = 8;

/// Decode a frame. Checks structure only; authenticity is checked when it is opened.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>> {
    decode_with(bytes, true)
}

/// [`decode`], with every check, but `recipients` left empty: for opening a batch,
/// whose recipients are read once per data key rather than once per event.
pub fn decode_payload(bytes: &[u8]) -> Result<Frame<'_>> {
    decode_with(bytes, false)
}

fn decode_with(bytes: &[u8], keep_recipients: bool) -> Result<Frame<'_>> {
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(2, "magic")? != MAGIC {
        return Err(fail(0, "not a sealbus frame (magic is not \"SB\")".into()));
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(fail(
            2,
            format!("unsupported frame version {version} (this build reads {VERSION})"),
        ));
    }
    let mode = Mode::from_byte(r.u8("mode")?)
        .ok_or_else(|| fail(3, "unknown mode (1 = at-rest, 2 = end-to-end)".into()))?;
    let kid_at = r.pos;
    let kid_len = usize::from(r.u8("key id length")?);
    let kid = r.take(kid_len, "key id")?;
    let key_id = std::str::from_utf8(kid)
        .ok()
        .filter(|s| check_key_id(s).is_ok())
        .ok_or_else(|| {
            fail(
                kid_at,
                format!("key id must be 1..={MAX_KEY_ID_LEN} characters of [A-Za-z0-9._:-]"),
            )
        })?;
    let nonce = r.take(NONCE_LEN, "nonce")?;
    let mut recipients = Vec::new();
    if mode == Mode::EndToEnd {
        let count_at = r.pos;
        let count = u16::from_be_bytes([r.u8("recipient count")?, r.u8("recipient count")?]);
        if count == 0 {
            return Err(fail(count_at, "end-to-end frame with no recipients".into()));
        }
        // Frames are decoded once per delivered event: the usual handful of
        // recipient ids is checked for repeats pairwise, on the stack (no hashing,
        // no allocation); only a long list gets a set.
        let small = usize::from(count) <= SMALL_RECIPIENTS;
        let mut first_ids = [""; SMALL_RECIPIENTS];
        let mut seen = HashSet::new();
        for k in 0..usize::from(count) {
            let at = r.pos;
            let len = usize::from(r.u8("recipient id length")?);
            let id = std::str::from_utf8(r.take(len, "recipient id")?)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| fail(at, "recipient id must be 1..=255 bytes of UTF-8".into()))?;
            let repeated = if small {
                first_ids.get(..k).is_some_and(|ids| ids.contains(&id))
            } else {
                !seen.insert(id)
            };
            if repeated {
                return Err(fail(at, "recipient id appears twice".into()));
            }
            if let Some(slot) = first_ids.get_mut(k) {
                *slot = id;
            }
            let ephemeral_public = r.take(EPHEMERAL_LEN, "ephemeral public key")?;
            let wrapped_key = r.take(WRAPPED_KEY_LEN, "wrapped data key")?;
            if keep_recipients {
                recipients.push(Recipient {
                    id,
                    ephemeral_public,
                    wrapped_key,
                });
            }
        }
    }
    let len_at = r.pos;
    let lb = r.take(4, "ciphertext length")?;
    let ct_len = u32::from_be_bytes([lb[0], lb[1], lb[2], lb[3]]);
    let ct_len = usize::try_from(ct_len)
        .map_err(|_| fail(len_at, "ciphertext length does not fit memory".into()))?;
    let want = ct_len
        .checked_add(TAG_LEN)
        .ok_or_else(|| fail(len_at, "ciphertext length overflows".into()))?;
    let sealed = r.take(want, "ciphertext and tag")?;
    if r.pos != bytes.len() {
        return Err(fail(
            r.pos,
            format!("{} trailing bytes after the tag", bytes.len() - r.pos),
        ));
    }
    Ok(Frame {
        version,
        mode,
        key_id,
        nonce,
        recipients,
        sealed,
    })
}

/// Pre-encoded fixed parts of the frames of one batch (same mode, key and recipients).
#[derive(Debug, Clone)]
pub struct FrameWriter {
    mode: Mode,
    head: Vec<u8>,
    recipients: Vec<u8>,
}

impl FrameWriter {
    pub fn new(mode: Mode, key_id: &str, recipients: &[Recipient<'_>]) -> Result<Self> {
        check_key_id(key_id)?;
        let mut head = Vec::with_capacity(5 + key_id.len());
        head.extend_from_slice(&MAGIC);
        head.push(VERSION);
        head.push(mode as u8);
        head.push(
            u8::try_from(key_id.len()).map_err(|_| Error::InvalidArgument {
                name: "key_id".into(),
                reason: "too long".into(),
            })?,
        );
        head.extend_from_slice(key_id.as_bytes());
        let mut rec = Vec::new();
        match mode {
            Mode::AtRest if !recipients.is_empty() => {
                return Err(Error::InvalidArgument {
                    name: "recipients".into(),
                    reason: "at-rest frames carry no wrapped keys".into(),
                })
            }
            Mode::AtRest => {}
            Mode::EndToEnd => {
                let bad = |reason: String| Error::InvalidArgument {
                    name: "recipients".into(),
                    reason,
                };
                let count = u16::try_from(recipients.len())
                    .ok()
                    .filter(|&c| c > 0)
                    .ok_or_else(|| {
                        bad(format!(
                            "need 1..=65535 recipients, got {}",
                            recipients.len()
                        ))
                    })?;
                rec.extend_from_slice(&count.to_be_bytes());
                let mut seen = HashSet::new();
                for r in recipients {
                    let len = u8::try_from(r.id.len())
                        .ok()
                        .filter(|&l| l > 0)
                        .ok_or_else(|| {
                            bad(format!("recipient id {:?} must be 1..=255 bytes", r.id))
                        })?;
                    if !seen.insert(r.id) {
                        return Err(bad(format!("recipient {:?} appears twice", r.id)));
                    }
                    if r.ephemeral_public.len() != EPHEMERAL_LEN
                        || r.wrapped_key.len() != WRAPPED_KEY_LEN
                    {
                        return Err(bad(format!(
                            "recipient {:?}: ephemeral key must be {EPHEMERAL_LEN} bytes and wrapped key {WRAPPED_KEY_LEN}",
                            r.id
                        )));
                    }
                    rec.push(len);
                    rec.extend_from_slice(r.id.as_bytes());
                    rec.extend_from_slice(r.ephemeral_public);
                    rec.extend_from_slice(r.wrapped_key);
                }
            }
        }
        Ok(Self {
            mode,
            head,
            recipients: rec,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Total frame length for a payload of `payload_len` bytes.
    pub fn frame_len(&self, payload_len: usize) -> usize {
        self.head.len() + NONCE_LEN + self.recipients.len() + 4 + payload_len + TAG_LEN
    }

    /// Write the frame's cleartext part into the front of `slot` (a whole frame's
    /// slot, `frame_len(payload_len)` bytes): header, nonce, recipients, payload
    /// length. Returns where `ciphertext || tag` starts; the caller seals the payload
    /// straight into the rest.
    pub fn write_header(&self, slot: &mut [u8], nonce: &[u8; NONCE_LEN]) -> Result<usize> {
        let fixed = self.frame_len(0);
        let payload_len = slot.len().checked_sub(fixed).ok_or_else(|| Error::Seal {
            reason: "frame slot has the wrong size".into(),
        })?;
        let len = u32::try_from(payload_len).map_err(|_| Error::InvalidArgument {
            name: "payload".into(),
            reason: format!("{payload_len} bytes is over the 4 GiB a frame holds"),
        })?;
        let mut p = 0;
        for part in [
            &self.head[..],
            &nonce[..],
            &self.recipients[..],
            &len.to_be_bytes()[..],
        ] {
            slot[p..p + part.len()].copy_from_slice(part);
            p += part.len();
        }
        Ok(p)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(mode: Mode) -> Vec<u8> {
        let eph = [7u8; 32];
        let wk = [8u8; 48];
        let recips = if mode == Mode::EndToEnd {
            vec![Recipient {
                id: "shipping",
                ephemeral_public: &eph,
                wrapped_key: &wk,
            }]
        } else {
            vec![]
        };
        let w = FrameWriter::new(mode, "k-01", &recips).unwrap();
        let mut slot = vec![0u8; w.frame_len(5)];
        let at = w.write_header(&mut slot, &[1; 12]).unwrap();
        slot[at..at + 5].copy_from_slice(b"hello");
        slot
    }

    #[test]
    fn round_trip_both_modes() {
        let f = sample(Mode::AtRest);
        let d = decode(&f).unwrap();
        assert_eq!(
            (d.mode, d.key_id, d.nonce, d.sealed.len()),
            (Mode::AtRest, "k-01", &[1u8; 12][..], 5 + 16)
        );
        assert_eq!(f.len(), 2 + 1 + 1 + 1 + 4 + 12 + 4 + 5 + 16);
        let f = sample(Mode::EndToEnd);
        let d = decode(&f).unwrap();
        assert_eq!(d.recipients.len(), 1);
        assert_eq!(d.recipients[0].id, "shipping");
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        for mode in [Mode::AtRest, Mode::EndToEnd] {
            let f = sample(mode);
            for cut in 0..f.len() {
                assert!(
                    matches!(decode(&f[..cut]), Err(Error::Frame { .. })),
                    "cut {cut}"
                );
            }
            let mut longer = f.clone();
            longer.push(0);
            assert!(matches!(decode(&longer), Err(Error::Frame { .. })));
        }
    }

    /// An end-to-end frame for recipients `r00`, `r01`, ... (`n` of them) whose last
    /// id is then overwritten with `r00`: the offset of that repeat, and the frame.
    fn repeated_recipient(n: usize) -> (usize, Vec<u8>) {
        let (eph, wk) = ([7u8; 32], [8u8; 48]);
        let ids: Vec<String> = (0..n).map(|i| format!("r{i:02}")).collect();
        let recips: Vec<Recipient<'_>> = ids
            .iter()
            .map(|id| Recipient {
                id,
                ephemeral_public: &eph,
                wrapped_key: &wk,
            })
            .collect();
        let w = FrameWriter::new(Mode::EndToEnd, "dk-1", &recips).unwrap();
        let mut f = vec![0u8; w.frame_len(3)];
        w.write_header(&mut f, &[1; 12]).unwrap();
        assert_eq!(decode(&f).unwrap().recipients.len(), n);
        let last = ids[n - 1].as_bytes();
        let at = f.windows(3).position(|x| x == last).unwrap();
        f[at..at + 3].copy_from_slice(b"r00");
        (at - 1, f)
    }

    #[test]
    fn a_repeated_recipient_is_refused_in_short_and_long_lists() {
        for n in [2, SMALL_RECIPIENTS, SMALL_RECIPIENTS + 1, 40] {
            let (at, f) = repeated_recipient(n);
            for d in [decode(&f), decode_payload(&f)] {
                match d {
                    Err(Error::Frame { offset, reason }) => {
                        assert_eq!(offset, at, "{n} recipients");
                        assert!(reason.contains("twice"), "{reason}");
                    }
                    other => panic!("{n} recipients: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn the_payload_decoder_is_the_decoder_without_recipients() {
        let f = sample(Mode::EndToEnd);
        let full = decode(&f).unwrap();
        assert_eq!(
            decode_payload(&f).unwrap(),
            Frame {
                recipients: Vec::new(),
                ..full
            }
        );
        for cut in 0..f.len() {
            assert_eq!(
                format!("{:?}", decode(&f[..cut])),
                format!("{:?}", decode_payload(&f[..cut]))
            );
        }
    }

    proptest! {
        #[test]
        fn decoder_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_mutated_frames(pos in 0usize..200, val in any::<u8>(), e2e in any::<bool>()) {
            let mut f = sample(if e2e { Mode::EndToEnd } else { Mode::AtRest });
            let i = pos % f.len();
            f[i] = val;
            let full = decode(&f);
            // The payload decoder refuses exactly what the decoder refuses.
            let payload = decode_payload(&f);
            prop_assert_eq!(full.is_ok(), payload.is_ok());
            prop_assert_eq!(full.err().map(|e| e.to_string()), payload.err().map(|e| e.to_string()));
        }
    }
}
