//! The key file: the one document that holds every key of a ring (docs/FORMAT.md).
//!
//! Version 2 makes the file notice its own damage. Each live key carries a check
//! value (`check`, a KCV: HMAC-SHA256 of a fixed label and the key id under the key,
//! first 8 bytes), each entry a MAC over its id, state, creation time and nonce
//! high-water mark, and the document a MAC over all of it (format, version, the
//! active key, the per-key budget, every entry in order). Both MACs are HMAC-SHA256
//! under a key derived by HKDF-SHA256 from the concatenation of the live keys. So any
//! change (bit rot, a bad restore, a hand edit) is refused at load, naming the file
//! and, where one entry is to blame, its key id. What this does *not* stop is a
//! deliberate edit by someone who holds the keys: they can recompute every MAC; such a
//! person can already read and forge everything sealed, so the MAC guards against
//! accidents and against edits by anyone without the keys, not against the keys'
//! owner.
//!
//! Version 1 (no check values, no MACs) is still read, leniently as before, and is
//! written as version 2 on the next save. Errors never echo file content beyond key
//! ids: a JSON error gives its line and column, not the text it stumbled on.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_lc_rs::{hkdf, hmac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::seal::aead::KEY_LEN;
use crate::seal::frame;
use crate::seal::keyring::KeyState;

pub const FILE_FORMAT: &str = "sealbus-keyring";
/// The version `encode` writes.
pub const FILE_VERSION: u32 = 2;
/// Bytes of the per-key check value.
pub const CHECK_LEN: usize = 8;

const CHECK_LABEL: &[u8] = b"sealbus/keyring/v2/check";
const MAC_SALT: &[u8] = b"sealbus/keyring/v2/mac";
const MAC_INFO: &[u8] = b"sealbus/keyring/v2/mac-key";
const ENTRY_LABEL: &[u8] = b"sealbus/keyring/v2/entry";
const DOC_LABEL: &[u8] = b"sealbus/keyring/v2/document";

/// One key as the file holds it. `Debug` never shows the bytes.
pub struct KeyRecord {
    pub id: String,
    pub state: KeyState,
    pub created: u64,
    /// `None` once destroyed.
    pub key: Option<Zeroizing<[u8; KEY_LEN]>>,
    pub nonce_high_water: u64,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("created", &self.created)
            .field("nonce_high_water", &self.nonce_high_water)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    /// The key's check value: safe to show (it says nothing about the key but lets two
    /// copies of a key file be compared), `None` for a destroyed key.
    pub fn check_value(&self) -> Option<[u8; CHECK_LEN]> {
        self.key.as_ref().map(|k| check_value(&k[..], &self.id))
    }
}

/// A decoded, verified key file.
#[derive(Debug)]
pub struct KeyDoc {
    /// The version the document was read in (`encode` always writes the current one).
    pub version: u32,
    pub active: String,
    pub max_seals_per_key: Option<u64>,
    pub keys: Vec<KeyRecord>,
}

// ---- the JSON shape ------------------------------------------------------------------

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    id: String,
    state: KeyState,
    created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce_high_water: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRing {
    format: String,
    version: u32,
    active: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_seals_per_key: Option<u64>,
    keys: Vec<FileKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

// ---- errors --------------------------------------------------------------------------

/// The typed error for anything wrong with a key file: names the file and, where one
/// key is to blame, its id. Never key bytes.
pub fn file_error(source: &str, key_id: Option<&str>, reason: impl fmt::Display) -> Error {
    Error::KeyFile {
        path: source.to_string(),
        key_id: key_id.map(str::to_string),
        reason: reason.to_string(),
    }
}

/// `serde_json`'s own messages may quote the text they stumbled on (an unknown field
/// name, an unexpected value), which in a key file could be key bytes: keep only
/// where it happened.
fn json_error(source: &str, e: &serde_json::Error) -> Error {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "ends early (truncated?)",
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Data => "has a field of the wrong name, type or value",
        serde_json::error::Category::Io => "could not be read",
    };
    file_error(
        source,
        None,
        format!("{what} at line {} column {}", e.line(), e.column()),
    )
}

// ---- hex -----------------------------------------------------------------------------

pub(crate) fn hex_encode(bytes: &[u8]) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Decode `N` bytes of hex. `strict` takes lowercase only (what `encode` writes), so
/// that a changed letter case is a change like any other.
fn hex_decode<const N: usize>(s: &str, strict: bool) -> Option<Zeroizing<[u8; N]>> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' if !strict => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = Zeroizing::new([0u8; N]);
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// 64 hex digits of key material (either case, as version 1 and `$SEALBUS_KEYS` take).
pub(crate) fn hex_key(s: &str) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    hex_decode::<KEY_LEN>(s, false)
}

// ---- check values and MACs -----------------------------------------------------------

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u64::try_from(s.len()).unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn check_value(key: &[u8], id: &str) -> [u8; CHECK_LEN] {
    let mut msg = Vec::with_capacity(CHECK_LABEL.len() + 8 + id.len());
    msg.extend_from_slice(CHECK_LABEL);
    put_str(&mut msg, id);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), &msg);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&tag.as_ref()[..CHECK_LEN]);
    out
}

/// The MAC key: HKDF-SHA256 over the live keys, concatenated in document order.
fn mac_key(keys: &[KeyRecord]) -> Result<hmac::Key> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(keys.len() * KEY_LEN));
    for k in keys.iter().filter_map(|r| r.key.as_ref()) {
        ikm.extend_from_slice(&k[..]);
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, MAC_SALT).extract(&ikm);
    let okm = prk
        .expand(&[MAC_INFO], hmac::HMAC_SHA256)
        .map_err(|_| Error::Seal {
            reason: "cannot derive the key file's MAC key".into(),
        })?;
    Ok(hmac::Key::from(okm))
}

fn state_byte(s: KeyState) -> u8 {
    match s {
        KeyState::Active => 1,
        KeyState::Retired => 2,
        KeyState::Destroyed => 3,
    }
}

fn entry_bytes(out: &mut Vec<u8>, r: &KeyRecord) {
    out.extend_from_slice(ENTRY_LABEL);
    put_str(out, &r.id);
    out.push(state_byte(r.state));
    out.extend_from_slice(&r.created.to_be_bytes());
    out.extend_from_slice(&r.nonce_high_water.to_be_bytes());
    out.push(u8::from(r.key.is_some()));
}

fn doc_bytes(doc: &KeyDoc, max_seals: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + 128 * doc.keys.len());
    out.extend_from_slice(DOC_LABEL);
    put_str(&mut out, FILE_FORMAT);
    out.extend_from_slice(&FILE_VERSION.to_be_bytes());
    put_str(&mut out, &doc.active);
    out.extend_from_slice(&max_seals.to_be_bytes());
    out.extend_from_slice(
        &u64::try_from(doc.keys.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    for r in &doc.keys {
        entry_bytes(&mut out, r);
    }
    out
}

fn entry_msg(r: &KeyRecord) -> Vec<u8> {
    let mut msg = Vec::with_capacity(96);
    entry_bytes(&mut msg, r);
    msg
}

// ---- encode --------------------------------------------------------------------------

/// The current (version 2) document for `doc`, pretty-printed, in a buffer wiped on drop.
pub fn encode(doc: &KeyDoc) -> Result<Zeroizing<Vec<u8>>> {
    let max_seals = doc
        .max_seals_per_key
        .unwrap_or(crate::seal::nonce::DEFAULT_MAX_SEALS);
    let mk = mac_key(&doc.keys)?;
    let keys = doc
        .keys
        .iter()
        .map(|r| FileKey {
            id: r.id.clone(),
            state: r.state,
            created: r.created,
            key: r.key.as_ref().map(|k| hex_encode(&k[..])),
            check: r.check_value().map(|c| hex_encode(&c).to_string()),
            nonce_high_water: Some(r.nonce_high_water),
            mac: Some(hex_encode(hmac::sign(&mk, &entry_msg(r)).as_ref()).to_string()),
        })
        .collect();
    let file = FileRing {
        format: FILE_FORMAT.into(),
        version: FILE_VERSION,
        active: doc.active.clone(),
        max_seals_per_key: Some(max_seals),
        keys,
        mac: Some(hex_encode(hmac::sign(&mk, &doc_bytes(doc, max_seals)).as_ref()).to_string()),
    };
    // Pre-sized so the serializer does not leave reallocated copies of keys behind.
    let mut out = Zeroizing::new(Vec::with_capacity(512 + 512 * doc.keys.len()));
    serde_json::to_writer_pretty(&mut *out, &file).map_err(|e| Error::Seal {
        reason: format!("cannot encode key file: {e}"),
    })?;
    out.push(b'\n');
    Ok(out)
}

// ---- decode --------------------------------------------------------------------------

/// Decode and verify a key file's bytes. `source` names it in errors (a path, or
/// `$VAR` for an environment variable).
pub fn decode(bytes: &[u8], source: &str) -> Result<KeyDoc> {
    let header: Header = serde_json::from_slice(bytes).map_err(|e| json_error(source, &e))?;
    if header.format != FILE_FORMAT || !(1..=FILE_VERSION).contains(&header.version) {
        return Err(file_error(
            source,
            None,
            format!("format must be {FILE_FORMAT:?} version 1 or {FILE_VERSION}"),
        ));
    }
    let file: FileRing = serde_json::from_slice(bytes).map_err(|e| json_error(source, &e))?;
    let strict = file.version >= 2;
    let mut keys: Vec<KeyRecord> = Vec::with_capacity(file.keys.len());
    let mut checks = Vec::with_capacity(file.keys.len());
    let mut macs = Vec::with_capacity(file.keys.len());
    for (i, fk) in file.keys.into_iter().enumerate() {
        if frame::check_key_id(&fk.id).is_err() {
            return Err(file_error(source, None, format!("keys[{i}]: bad key id")));
        }
        let at = |reason: &str| file_error(source, Some(&fk.id), format!("keys[{i}]: {reason}"));
        if keys.iter().any(|r| r.id == fk.id) {
            return Err(at("the key id appears twice"));
        }
        let key = match (fk.state, &fk.key) {
            (KeyState::Destroyed, Some(_)) if strict => {
                return Err(at("a destroyed key still has key bytes"))
            }
            (KeyState::Destroyed, _) => None,
            (_, Some(hex)) => Some(
                hex_decode::<KEY_LEN>(hex, strict)
                    .ok_or_else(|| at("the key must be 64 hex digits (lowercase)"))?,
            ),
            (_, None) => return Err(at("key bytes missing")),
        };
        if strict {
            let mac = fk.mac.as_deref().and_then(|m| hex_decode::<32>(m, true));
            let Some(mac) = mac else {
                return Err(at(
                    "the entry's mac is missing or not 64 lowercase hex digits",
                ));
            };
            macs.push(mac);
            let check = match (&key, fk.check.as_deref()) {
                (None, None) => None,
                (Some(_), Some(c)) => Some(
                    hex_decode::<CHECK_LEN>(c, true)
                        .ok_or_else(|| at("the check value must be 16 lowercase hex digits"))?,
                ),
                (None, Some(_)) => return Err(at("a destroyed key has a check value")),
                (Some(_), None) => return Err(at("the check value is missing")),
            };
            checks.push(check);
            if fk.nonce_high_water.is_none() {
                return Err(at("nonce_high_water is missing"));
            }
        } else if fk.check.is_some() || fk.mac.is_some() {
            return Err(at("check values and MACs belong to version 2 and later"));
        }
        keys.push(KeyRecord {
            id: fk.id,
            state: fk.state,
            created: fk.created,
            key,
            nonce_high_water: fk.nonce_high_water.unwrap_or(0),
        });
    }
    let doc = KeyDoc {
        version: file.version,
        active: file.active,
        max_seals_per_key: file.max_seals_per_key,
        keys,
    };
    if strict {
        verify(&doc, &checks, &macs, file.mac.as_deref(), source)?;
    } else if file.mac.is_some() {
        return Err(file_error(
            source,
            None,
            "a document mac belongs to version 2 and later",
        ));
    }
    check_shape(&doc, source)?;
    Ok(doc)
}

/// Check values first (they name the key whose bytes changed), then the entry MACs
/// (they name the entry whose metadata changed), then the document MAC.
fn verify(
    doc: &KeyDoc,
    checks: &[Option<Zeroizing<[u8; CHECK_LEN]>>],
    macs: &[Zeroizing<[u8; 32]>],
    doc_mac: Option<&str>,
    source: &str,
) -> Result<()> {
    for (r, want) in doc.keys.iter().zip(checks) {
        if let (Some(got), Some(want)) = (r.check_value(), want) {
            if !bool::from(got.ct_eq(&want[..])) {
                return Err(file_error(
                    source,
                    Some(&r.id),
                    "the key does not match its check value: its bytes (or its id) were changed",
                ));
            }
        }
    }
    let Some(max_seals) = doc.max_seals_per_key else {
        return Err(file_error(source, None, "max_seals_per_key is missing"));
    };
    let Some(doc_mac) = doc_mac.and_then(|m| hex_decode::<32>(m, true)) else {
        return Err(file_error(
            source,
            None,
            "the document mac is missing or not 64 lowercase hex digits",
        ));
    };
    let mk = mac_key(&doc.keys)?;
    let bad: Vec<&KeyRecord> = doc
        .keys
        .iter()
        .zip(macs)
        .filter(|(r, m)| hmac::verify(&mk, &entry_msg(r), &m[..]).is_err())
        .map(|(r, _)| r)
        .collect();
    match bad.as_slice() {
        [] => {}
        [one] => {
            return Err(file_error(
                source,
                Some(&one.id),
                "the entry does not match its mac: its id, state, creation time or \
                 nonce_high_water was changed",
            ))
        }
        many => {
            return Err(file_error(
                source,
                None,
                format!(
                    "{} of {} entries do not match their macs: keys were added, removed or changed",
                    many.len(),
                    doc.keys.len()
                ),
            ))
        }
    }
    if hmac::verify(&mk, &doc_bytes(doc, max_seals), &doc_mac[..]).is_err() {
        return Err(file_error(
            source,
            None,
            "the document does not match its mac: the active key, max_seals_per_key or \
             the order of the keys was changed",
        ));
    }
    Ok(())
}

/// What every version must satisfy: exactly one active key, and it is `active`.
fn check_shape(doc: &KeyDoc, source: &str) -> Result<()> {
    let actives: Vec<&KeyRecord> = doc
        .keys
        .iter()
        .filter(|r| r.state == KeyState::Active)
        .collect();
    match actives.as_slice() {
        [one] if one.id == doc.active => Ok(()),
        [_, _, ..] => Err(file_error(source, None, "more than one active key")),
        _ => Err(file_error(
            source,
            None,
            "the \"active\" key must be the one key in state \"active\"",
        )),
    }
}

// ---- files ---------------------------------------------------------------------------

/// Read and verify a key file, refusing one that group or others may access (as ssh
/// refuses a private key).
pub fn read(path: &Path) -> Result<KeyDoc> {
    let source = path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| file_error(&source, None, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(file_error(
            &source,
            None,
            format!("is accessible to group/others (mode {mode:o}); chmod 600 it"),
        ));
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| file_error(&source, None, e))?);
    decode(&bytes, &source)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn key(b: u8) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new([b; KEY_LEN])
    }

    fn sample() -> KeyDoc {
        KeyDoc {
            version: FILE_VERSION,
            active: "k-2".into(),
            max_seals_per_key: Some(1 << 31),
            keys: vec![
                KeyRecord {
                    id: "k-0".into(),
                    state: KeyState::Destroyed,
                    created: 1_700_000_000,
                    key: None,
                    nonce_high_water: 70_000,
                },
                KeyRecord {
                    id: "k-1".into(),
                    state: KeyState::Retired,
                    created: 1_700_000_100,
                    key: Some(key(0x5a)),
                    nonce_high_water: 131_072,
                },
                KeyRecord {
                    id: "k-2".into(),
                    state: KeyState::Active,
                    created: 1_700_000_200,
                    key: Some(key(0xc3)),
                    nonce_high_water: 65_536,
                },
            ],
        }
    }

    /// (id, state, created, key bytes, mark) per key: what a load hands the ring.
    type Meaning = Vec<(String, KeyState, u64, Option<[u8; KEY_LEN]>, u64)>;

    fn meaning(d: &KeyDoc) -> (String, Option<u64>, Meaning) {
        let keys = d
            .keys
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    r.state,
                    r.created,
                    r.key.as_ref().map(|k| **k),
                    r.nonce_high_water,
                )
            })
            .collect();
        (d.active.clone(), d.max_seals_per_key, keys)
    }

    fn secrets() -> Vec<String> {
        vec![
            hex_encode(&[0x5a; KEY_LEN]).to_string(),
            hex_encode(&[0xc3; KEY_LEN]).to_string(),
        ]
    }

    fn assert_no_key_hex(e: &Error) {
        let text = format!("{e} {e:?}");
        for h in secrets() {
            // Even a fragment: a quarter of a key's hex is far longer than any id.
            for w in h.as_bytes().windows(16) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!text.contains(w), "key hex in an error: {text}");
                assert!(
                    !text.contains(&w.to_uppercase()),
                    "key hex in an error: {text}"
                );
            }
        }
    }

    #[test]
    fn round_trip_and_check_values() {
        let d = sample();
        let bytes = encode(&d).unwrap();
        let back = decode(&bytes, "k.json").unwrap();
        assert_eq!(back.version, 2);
        assert_eq!(meaning(&back), meaning(&d));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\"check\"") && text.contains("\"mac\""));
        // The check value is HMAC-SHA256(key, label || u64be(len id) || id)[..8].
        let mut msg = CHECK_LABEL.to_vec();
        msg.extend_from_slice(&3u64.to_be_bytes());
        msg.extend_from_slice(b"k-1");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[0x5a; 32]), &msg);
        assert_eq!(back.keys[1].check_value().unwrap()[..], tag.as_ref()[..8]);
        assert_eq!(back.keys[0].check_value(), None);
        assert!(!format!("{back:?}").contains("5a5a"));
    }

    /// Every single-byte change (all 255 other values at every position) and every
    /// truncation of a key file: refused, or (whitespace only) the same meaning.
    #[test]
    fn every_byte_changed_and_every_truncation() {
        let d = sample();
        let good = encode(&d).unwrap();
        let want = meaning(&d);
        let ws = |b: u8| matches!(b, b' ' | b'\n' | b'\t' | b'\r');
        let mut refused = 0usize;
        let mut same = 0usize;
        let mut buf = good.to_vec();
        for i in 0..good.len() {
            for v in 0..=255u8 {
                if v == good[i] {
                    continue;
                }
                buf[i] = v;
                match decode(&buf, "k.json") {
                    Err(e) => {
                        assert!(matches!(e, Error::KeyFile { .. }), "{e}");
                        assert_no_key_hex(&e);
                        refused += 1;
                    }
                    Ok(got) => {
                        assert!(
                            ws(good[i]) && ws(v),
                            "byte {i} {:?} -> {:?} was accepted",
                            char::from(good[i]),
                            char::from(v)
                        );
                        assert_eq!(meaning(&got), want, "byte {i}");
                        same += 1;
                    }
                }
            }
            buf[i] = good[i];
        }
        for n in 0..good.len() {
            match decode(&good[..n], "k.json") {
                Err(e) => assert_no_key_hex(&e),
                Ok(got) => {
                    assert!(good[n..].iter().all(|&b| ws(b)), "cut at {n} accepted");
                    assert_eq!(meaning(&got), want);
                }
            }
        }
        assert!(refused > 200 * good.len() && same > 0, "{refused} {same}");
    }

    #[test]
    fn errors_name_the_key_whose_entry_changed() {
        let good = String::from_utf8(encode(&sample()).unwrap().to_vec()).unwrap();
        let bump = |from: &str, to: &str| {
            assert!(good.contains(from), "{from}");
            decode(good.replacen(from, to, 1).as_bytes(), "/k.json").unwrap_err()
        };
        let named = |e: Error| match e {
            Error::KeyFile { path, key_id, .. } => {
                assert_eq!(path, "/k.json");
                key_id
            }
            other => panic!("{other}"),
        };
        // Key bytes: the check value names the key.
        let e = bump(&"5a".repeat(32), &format!("5b{}", "5a".repeat(31)));
        assert!(e.to_string().contains("check value"), "{e}");
        assert_eq!(named(e), Some("k-1".into()));
        // High-water marks and creation times: the entry mac names the key.
        let hw = |n: u64| format!("\"nonce_high_water\": {n}");
        assert_eq!(named(bump(&hw(131_072), &hw(131_071))), Some("k-1".into()));
        assert_eq!(named(bump(&hw(70_000), &hw(70_001))), Some("k-0".into()));
        let created = |n: u64| format!("\"created\": {n}");
        let e = bump(&created(1_700_000_200), &created(1_700_000_201));
        assert_eq!(named(e), Some("k-2".into()));
        // Retired -> destroyed without wiping: refused as a shape error naming the key.
        assert_eq!(
            named(bump("\"retired\"", "\"destroyed\"")),
            Some("k-1".into())
        );
        // The budget is the document's: no key to name.
        let e = bump(
            "\"max_seals_per_key\": 2147483648",
            "\"max_seals_per_key\": 2147483647",
        );
        assert!(e.to_string().contains("document does not match"), "{e}");
        assert_eq!(named(e), None);
        // A downgrade to version 1 keeps fields version 1 never had.
        assert!(bump("\"version\": 2", "\"version\": 1")
            .to_string()
            .contains("version 2"));
    }

    #[test]
    fn version_1_is_still_read() {
        let v1 = format!(
            r#"{{"format":"sealbus-keyring","version":1,"active":"k-a","max_seals_per_key":1000,
            "keys":[{{"id":"k-z","state":"destroyed","created":5}},
                    {{"id":"k-a","state":"active","created":7,"key":"{}","nonce_high_water":300}}]}}"#,
            "AB".repeat(32)
        );
        let d = decode(v1.as_bytes(), "old.json").unwrap();
        assert_eq!(d.version, 1);
        assert_eq!(d.keys[0].nonce_high_water, 0);
        assert_eq!(d.keys[1].key.as_ref().map(|k| k[0]), Some(0xab));
        let again = decode(&encode(&d).unwrap(), "new.json").unwrap();
        assert_eq!(again.version, 2);
        assert_eq!(meaning(&again), meaning(&d));
    }

    #[test]
    fn json_errors_do_not_quote_the_document() {
        let hexkey = "5a".repeat(32);
        // A ':' turned into ',' makes the key's hex a field name; serde would quote it.
        let doc = format!(
            r#"{{"format":"sealbus-keyring","version":2,"active":"k","keys":[{{"id":"k","state":"active","created":1,"key","{hexkey}"}}]}}"#
        );
        let e = decode(doc.as_bytes(), "k.json").unwrap_err();
        assert_no_key_hex(&e);
        assert!(e.to_string().contains("line 1 column"), "{e}");
    }
}
