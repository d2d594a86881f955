//! End-to-end payload sealing with a caller-supplied data key.
//!
//! The producer draws a fresh 256-bit data key per event or batch, wraps it for each
//! allowed consumer (X25519 + HKDF-SHA256 + AES-GCM, done in Python with
//! `cryptography`: see `sealbus.e2e` and docs/FORMAT.md), and hands the data key and
//! the wrapped copies here; the payloads are sealed into end-to-end frames whose key
//! id names the data key. The router never holds the data key.

use crate::error::{Error, Result};
use crate::seal::aad::AadFields;
use crate::seal::aead::{spans, AeadKey, KEY_LEN};
use crate::seal::frame::{self, FrameWriter, Mode, Recipient};
use crate::seal::keyring::{open_frames, seal_frames};
use crate::seal::nonce::{NonceSeq, COUNTER_SPACE};

fn data_key(k: &[u8]) -> Result<AeadKey> {
    if k.len() != KEY_LEN {
        return Err(Error::InvalidArgument {
            name: "data_key".into(),
            reason: format!("data keys are {KEY_LEN} bytes, got {}", k.len()),
        });
    }
    AeadKey::new(k)
}

/// Seal a batch under `data_key` into end-to-end frames carrying `recipients`.
/// Nonces: a random 64-bit prefix per call and a counter, so even a data key reused
/// by mistake does not repeat a nonce (barring a 64-bit collision).
pub fn seal_batch(
    data_key_bytes: &[u8],
    data_key_id: &str,
    recipients: &[Recipient<'_>],
    aads: &[AadFields<'_>],
    input: &[u8],
    offsets: &[usize],
) -> Result<(Vec<u8>, Vec<usize>)> {
    let key = data_key(data_key_bytes)?;
    let writer = FrameWriter::new(Mode::EndToEnd, data_key_id, recipients)?;
    let sp = spans("offsets", offsets, input.len())?;
    if sp.len() != aads.len() {
        return Err(Error::InvalidArgument {
            name: "aads".into(),
            reason: format!("{} attribute sets for {} payloads", aads.len(), sp.len()),
        });
    }
    let mut seq = NonceSeq::new(0, COUNTER_SPACE)?;
    let n = u64::try_from(sp.len()).map_err(|_| Error::Seal {
        reason: "batch too large".into(),
    })?;
    let first = seq.take(n).ok_or_else(|| Error::Seal {
        reason: "batch larger than 2^32".into(),
    })?;
    seal_frames(
        &key,
        data_key_id,
        &writer,
        seq.prefix(),
        first,
        aads,
        &sp.into_iter().map(|r| &input[r]).collect::<Vec<_>>(),
    )
}

/// Open end-to-end frames that were all sealed under `data_key_id`.
pub fn open_batch(
    data_key_bytes: &[u8],
    data_key_id: &str,
    aads: &[AadFields<'_>],
    frames: &[u8],
    offsets: &[usize],
) -> Result<(Vec<u8>, Vec<usize>)> {
    let key = data_key(data_key_bytes)?;
    let sp = spans("offsets", offsets, frames.len())?;
    if sp.len() != aads.len() {
        return Err(Error::InvalidArgument {
            name: "aads".into(),
            reason: format!("{} attribute sets for {} frames", aads.len(), sp.len()),
        });
    }
    let mut decoded = Vec::with_capacity(sp.len());
    for (i, r) in sp.iter().enumerate() {
        let f =
            frame::decode(&frames[r.clone()]).map_err(|e| crate::seal::aead::with_index(e, i))?;
        if f.mode != Mode::EndToEnd {
            return Err(Error::Frame {
                offset: 3,
                reason: format!("item {i}: an at-rest frame; open it with the key ring"),
            });
        }
        if f.key_id != data_key_id {
            return Err(Error::Integrity {
                reason: format!(
                    "item {i}: sealed under data key {}, not {data_key_id}",
                    f.key_id
                ),
            });
        }
        decoded.push(f);
    }
    let cipher = key.cipher()?;
    open_frames(&decoded, &vec![0; decoded.len()], &[&cipher], aads)
}
