//! The key ring: named AES-256 keys, one active for sealing, older ones kept for
//! opening, destroyed ones remembered as tombstones so their data reports
//! `Error::KeyDestroyed` (crypto-shredding) rather than "unknown key".
//!
//! Persistence is a JSON key file (`keyfile`: check values and MACs, so damage is
//! refused at load) written atomically (temp file, fsync, rename, fsync of the
//! folder) with mode 0600; a file readable by group or others is refused on load, as
//! ssh does. It holds the keys and each key's nonce high-water mark (see `nonce`). Every method takes `&self`: one mutex guards the small
//! bookkeeping, and encryption runs outside it on an `Arc` of the key.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::seal::aad::AadFields;
use crate::seal::aead::{self, spans, AeadKey, BatchJob, Cipher, KEY_LEN};
use crate::seal::frame::{self, FrameWriter, Mode};
use crate::seal::frames::{OpenFrames, SealFrames};
use crate::seal::keyfile::{self, file_error, hex_encode, hex_key, KeyDoc, KeyRecord};
use crate::seal::nonce::{random_fill, NonceSeq, DEFAULT_MAX_SEALS, DEFAULT_RESERVE_CHUNK};

/// Tunables of a ring. The defaults are what production wants; tests shrink them
/// to exercise rotation and reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingOptions {
    /// Seals per key before it is retired and a new key takes over (<= 2^32).
    pub max_seals_per_key: u64,
    /// Nonce counters reserved in the key file at a time (file-backed rings).
    pub reserve_chunk: u64,
}

impl Default for RingOptions {
    fn default() -> Self {
        Self {
            max_seals_per_key: DEFAULT_MAX_SEALS,
            reserve_chunk: DEFAULT_RESERVE_CHUNK,
        }
    }
}

/// Lifecycle of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Seals new events (exactly one key is active).
    Active,
    /// Opens old events, seals nothing.
    Retired,
    /// Key bytes erased: its events can no longer be opened.
    Destroyed,
}

/// What may be said about a key in public: never its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub state: KeyState,
    pub created: u64,
    /// Nonce counters used or reserved so far (an upper bound on seals made).
    pub seals: u64,
}

#[derive(Clone)]
struct Entry {
    id: String,
    state: KeyState,
    created: u64,
    key: Option<Arc<AeadKey>>,
    seq: Arc<Mutex<NonceSeq>>,
    /// Persisted high-water mark: every counter used so far is below it.
    reserved: u64,
}

struct Ring {
    keys: Vec<Entry>,
    active: usize,
    opts: RingOptions,
    path: Option<PathBuf>,
}

/// A thread-safe key ring. `Debug` lists key ids and states only.
pub struct KeyRing {
    inner: Mutex<Ring>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.lock();
        let ids: Vec<String> = ring
            .keys
            .iter()
            .map(|e| format!("{}:{:?}", e.id, e.state))
            .collect();
        f.debug_struct("KeyRing")
            .field("keys", &ids)
            .field("path", &ring.path)
            .finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn file_err(path: &Path, what: impl fmt::Display) -> Error {
    file_error(&path.display().to_string(), None, what)
}

fn new_key_id() -> Result<String> {
    let mut r = [0u8; 8];
    random_fill(&mut r)?;
    Ok(format!("k-{}", hex_encode(&r).as_str()))
}

impl Ring {
    fn new_entry(&self, id: String, key: AeadKey, start: u64) -> Result<Entry> {
        Ok(Entry {
            id,
            state: KeyState::Active,
            created: now(),
            key: Some(Arc::new(key)),
            seq: Arc::new(Mutex::new(NonceSeq::new(
                start,
                self.opts.max_seals_per_key,
            )?)),
            reserved: if self.path.is_some() { start } else { u64::MAX },
        })
    }

    fn generated(opts: RingOptions, path: Option<PathBuf>) -> Result<Self> {
        let mut ring = Ring {
            keys: Vec::new(),
            active: 0,
            opts,
            path,
        };
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        random_fill(&mut k[..])?;
        let e = ring.new_entry(new_key_id()?, AeadKey::new(&k[..])?, 0)?;
        ring.keys.push(e);
        Ok(ring)
    }

    fn find(&self, id: &str) -> Result<usize> {
        self.keys
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| Error::KeyNotFound {
                key_id: id.to_string(),
            })
    }

    /// Key for opening: destroyed keys say so.
    fn opening_key(&self, id: &str) -> Result<Arc<AeadKey>> {
        let e = &self.keys[self.find(id)?];
        e.key.clone().ok_or_else(|| Error::KeyDestroyed {
            key_id: id.to_string(),
        })
    }

    fn rotate(&mut self) -> Result<String> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        random_fill(&mut k[..])?;
        let e = self.new_entry(new_key_id()?, AeadKey::new(&k[..])?, 0)?;
        let id = e.id.clone();
        if let Some(old) = self.keys.get_mut(self.active) {
            if old.state == KeyState::Active {
                old.state = KeyState::Retired;
            }
        }
        self.keys.push(e);
        self.active = self.keys.len() - 1;
        Ok(id)
    }

    fn to_file(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut keys = Vec::with_capacity(self.keys.len());
        for e in &self.keys {
            let next = lock(&e.seq).next();
            keys.push(KeyRecord {
                id: e.id.clone(),
                state: e.state,
                created: e.created,
                key: e.key.as_ref().map(|k| {
                    let mut b = Zeroizing::new([0u8; KEY_LEN]);
                    b.copy_from_slice(k.bytes());
                    b
                }),
                // In-memory rings have no mark yet: persist what has been used.
                nonce_high_water: if e.reserved == u64::MAX {
                    next
                } else {
                    e.reserved.max(next)
                },
            });
        }
        keyfile::encode(&KeyDoc {
            version: keyfile::FILE_VERSION,
            active: self.keys[self.active].id.clone(),
            max_seals_per_key: Some(self.opts.max_seals_per_key),
            keys,
        })
    }

    fn save(&mut self) -> Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        // A ring bound to a file now has real marks for every key.
        for e in &mut self.keys {
            if e.reserved == u64::MAX {
                e.reserved = lock(&e.seq).next();
            }
        }
        write_atomic(&path, &self.to_file()?)
    }

    /// Run a mutation and persist it; on a failed write the in-memory ring is put back
    /// so memory and disk never disagree about which keys exist.
    fn commit<T>(&mut self, f: impl FnOnce(&mut Ring) -> Result<T>) -> Result<T> {
        let backup = (self.keys.clone(), self.active);
        let out = f(self).and_then(|v| self.save().map(|()| v));
        if out.is_err() {
            (self.keys, self.active) = backup;
        }
        out
    }

    /// Claim `n` nonce counters on the active key, rotating first if its budget is
    /// short and reserving (persisting) a new high-water mark if needed.
    /// Claim `n` nonce counters of the active key (rotating first when its budget is
    /// spent). `fits` sees the id of the key that would seal and may refuse the batch
    /// before any counter is claimed or reserved.
    fn claim(
        &mut self,
        n: u64,
        fits: impl FnOnce(&str) -> Result<()>,
    ) -> Result<(String, Arc<AeadKey>, [u8; 8], u64)> {
        if n > self.opts.max_seals_per_key {
            return Err(Error::Seal {
                reason: format!(
                    "a batch of {n} is larger than the per-key budget of {}",
                    self.opts.max_seals_per_key
                ),
            });
        }
        if lock(&self.keys[self.active].seq).remaining() < n {
            self.commit(Ring::rotate)?;
        }
        fits(&self.keys[self.active].id)?;
        let chunk = self.opts.reserve_chunk.max(1);
        let e = &self.keys[self.active];
        let next = lock(&e.seq).next();
        if e.reserved != u64::MAX && next + n > e.reserved {
            let limit = lock(&e.seq).limit();
            let mark = (next + n.max(chunk)).min(limit);
            let idx = self.active;
            self.commit(|r| {
                r.keys[idx].reserved = mark;
                Ok(())
            })?;
        }
        let e = &self.keys[self.active];
        let key = e.key.clone().ok_or_else(|| Error::KeyDestroyed {
            key_id: e.id.clone(),
        })?;
        let mut seq = lock(&e.seq);
        let first = seq.take(n).ok_or_else(|| Error::Seal {
            reason: "nonce budget exhausted".into(),
        })?;
        Ok((e.id.clone(), key, seq.prefix(), first))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a panic elsewhere does not
    // make the ring unusable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| file_err(&tmp, e))?;
    // A stale temp file may have been created with laxer bits.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| file_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| file_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| file_err(path, e))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_err(dir, e))
}

/// A ring from a decoded, verified key file (`keyfile::decode` checked its shape).
fn ring_from(doc: KeyDoc, opts: Option<RingOptions>, path: Option<PathBuf>) -> Result<Ring> {
    let opts = opts.unwrap_or(RingOptions {
        max_seals_per_key: doc.max_seals_per_key.unwrap_or(DEFAULT_MAX_SEALS),
        ..RingOptions::default()
    });
    let mut ring = Ring {
        keys: Vec::with_capacity(doc.keys.len()),
        active: 0,
        opts,
        path,
    };
    for r in doc.keys {
        if r.id == doc.active {
            ring.active = ring.keys.len();
        }
        let key = r
            .key
            .as_ref()
            .map(|k| AeadKey::new(&k[..]).map(Arc::new))
            .transpose()?;
        let reserved = if ring.path.is_some() {
            r.nonce_high_water
        } else {
            u64::MAX
        };
        ring.keys.push(Entry {
            seq: Arc::new(Mutex::new(NonceSeq::new(
                r.nonce_high_water,
                opts.max_seals_per_key,
            )?)),
            id: r.id,
            state: r.state,
            created: r.created,
            key,
            reserved,
        });
    }
    Ok(ring)
}

impl KeyRing {
    fn wrap(ring: Ring) -> Self {
        Self {
            inner: Mutex::new(ring),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        lock(&self.inner)
    }

    /// A fresh in-memory ring with one random key (lost when the process exits:
    /// `persist` it to keep sealed data readable).
    pub fn generate() -> Result<Self> {
        Self::generate_with(RingOptions::default())
    }

    pub fn generate_with(opts: RingOptions) -> Result<Self> {
        Ok(Self::wrap(Ring::generated(check_opts(opts)?, None)?))
    }

    /// Create a new key file (mode 0600) with one random key. Refuses to overwrite.
    pub fn create(path: impl AsRef<Path>, opts: RingOptions) -> Result<Self> {
        let path = path.as_ref();
        if path.exists() {
            return Err(file_err(
                path,
                "already exists; load it instead of overwriting keys",
            ));
        }
        let mut ring = Ring::generated(check_opts(opts)?, Some(path.to_path_buf()))?;
        ring.save()?;
        Ok(Self::wrap(ring))
    }

    /// Load a key file written by `create`/`persist`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_inner(path.as_ref(), None)
    }

    pub fn load_with(path: impl AsRef<Path>, opts: RingOptions) -> Result<Self> {
        Self::load_inner(path.as_ref(), Some(check_opts(opts)?))
    }

    fn load_inner(path: &Path, opts: Option<RingOptions>) -> Result<Self> {
        let doc = keyfile::read(path)?;
        Ok(Self::wrap(ring_from(doc, opts, Some(path.to_path_buf()))?))
    }

    /// Load `path` if it exists, else create it.
    pub fn load_or_create(path: impl AsRef<Path>, opts: RingOptions) -> Result<Self> {
        let path = path.as_ref();
        if path.exists() {
            Self::load_with(path, opts)
        } else {
            Self::create(path, opts)
        }
    }

    /// Keys from an environment variable: either 64 hex digits (one key, whose id is
    /// `env-` + a SHA-256 fingerprint) or a whole key-ring JSON document. The ring is
    /// in memory: counters restart per process, which the random nonce prefix covers.
    pub fn from_env(var: &str) -> Result<Self> {
        let val = Zeroizing::new(std::env::var(var).map_err(|_| Error::Seal {
            reason: format!("environment variable {var} is not set (or not UTF-8)"),
        })?);
        let trimmed = val.trim();
        if trimmed.starts_with('{') {
            let doc = keyfile::decode(trimmed.as_bytes(), &format!("${var}"))?;
            return Ok(Self::wrap(ring_from(doc, None, None)?));
        }
        let key = hex_key(trimmed).ok_or_else(|| Error::Seal {
            reason: format!(
                "environment variable {var} must hold 64 hex digits or a key-ring JSON document"
            ),
        })?;
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        h.update(b"sealbus/key-id/v1");
        h.update(&key[..]);
        let id = format!("env-{}", &hex_encode(&h.finish().as_ref()[..8]).as_str());
        let mut r = Ring {
            keys: Vec::new(),
            active: 0,
            opts: RingOptions::default(),
            path: None,
        };
        let e = r.new_entry(id, AeadKey::new(&key[..])?, 0)?;
        r.keys.push(e);
        Ok(Self::wrap(r))
    }

    /// Write the ring to `path` (0600) and keep it bound there from now on.
    pub fn persist(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut ring = self.lock();
        let old = ring.path.replace(path.as_ref().to_path_buf());
        let r = ring.save();
        if r.is_err() {
            ring.path = old;
        }
        r
    }

    pub fn path(&self) -> Option<PathBuf> {
        self.lock().path.clone()
    }

    pub fn options(&self) -> RingOptions {
        self.lock().opts
    }

    pub fn active_key_id(&self) -> String {
        let r = self.lock();
        r.keys[r.active].id.clone()
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.lock().keys.iter().map(|e| e.id.clone()).collect()
    }

    pub fn keys(&self) -> Vec<KeyInfo> {
        self.lock()
            .keys
            .iter()
            .map(|e| KeyInfo {
                id: e.id.clone(),
                state: e.state,
                created: e.created,
                seals: lock(&e.seq).next(),
            })
            .collect()
    }

    /// Whether events sealed under `id` can still be opened: `KeyDestroyed` once the
    /// key is crypto-shredded, `KeyNotFound` if the ring never had it.
    pub fn check_opens(&self, id: &str) -> Result<()> {
        self.lock().opening_key(id).map(drop)
    }

    /// New seals use a fresh key from now on; the old one is retired (still opens).
    pub fn rotate(&self) -> Result<String> {
        self.lock().commit(Ring::rotate)
    }

    /// Stop sealing with `id` (it still opens). Retiring the active key rotates.
    pub fn retire(&self, id: &str) -> Result<()> {
        self.lock().commit(|r| {
            let i = r.find(id)?;
            match r.keys[i].state {
                KeyState::Destroyed => Err(Error::KeyDestroyed {
                    key_id: id.to_string(),
                }),
                KeyState::Retired => Ok(()),
                KeyState::Active => {
                    r.rotate()?;
                    Ok(())
                }
            }
        })
    }

    /// Crypto-shred `id`: its bytes are wiped (from memory and the key file) and its
    /// events fail with `KeyDestroyed`. Destroying the active key rotates first.
    /// Old copies of the key file (backups, unreclaimed disk blocks) are out of reach.
    pub fn destroy(&self, id: &str) -> Result<()> {
        self.lock().commit(|r| {
            let i = r.find(id)?;
            if i == r.active {
                r.rotate()?;
            }
            let e = &mut r.keys[i];
            e.state = KeyState::Destroyed;
            // Dropping the last Arc zeroises the bytes (AeadKey holds Zeroizing).
            e.key = None;
            Ok(())
        })
    }

    /// Seal one payload bound to its event.
    pub fn seal(&self, payload: &[u8], aad: &AadFields<'_>) -> Result<Vec<u8>> {
        let (out, _) = self.seal_batch(std::slice::from_ref(aad), payload, &[0, payload.len()])?;
        Ok(out)
    }

    /// Seal `aads.len()` payloads, item `i` being `input[offsets[i]..offsets[i + 1]]`,
    /// into frames laid out in one buffer plus `n + 1` offsets.
    pub fn seal_batch(
        &self,
        aads: &[AadFields<'_>],
        input: &[u8],
        offsets: &[usize],
    ) -> Result<(Vec<u8>, Vec<usize>)> {
        let sp = spans("offsets", offsets, input.len())?;
        let payloads: Vec<&[u8]> = sp.into_iter().map(|r| &input[r]).collect();
        self.seal_each(aads, &payloads)
    }

    /// [`KeyRing::seal_batch`] over payloads wherever they are (no gathering copy).
    pub fn seal_each(
        &self,
        aads: &[AadFields<'_>],
        payloads: &[&[u8]],
    ) -> Result<(Vec<u8>, Vec<usize>)> {
        if payloads.is_empty() && aads.is_empty() {
            return Ok((Vec::new(), vec![0]));
        }
        self.seal_job(aads, payloads.to_vec())?.run_to_vec()
    }

    /// Plan sealing `payloads` into frames: claims their nonce counters (reserving
    /// them in the key file first when it is due) and returns the job that writes
    /// the frames into a buffer of the caller's (see [`BatchJob`]).
    pub fn seal_job<'a>(
        &self,
        aads: &'a [AadFields<'a>],
        payloads: Vec<&'a [u8]>,
    ) -> Result<SealFrames<'a>> {
        self.seal_job_within(aads, payloads, usize::MAX)
    }

    /// [`KeyRing::seal_job`] for an output of at most `room` bytes (a buffer the
    /// caller reuses): a batch whose frames would not fit is refused with
    /// `InvalidArgument` before any nonce counter is claimed.
    pub fn seal_job_within<'a>(
        &self,
        aads: &'a [AadFields<'a>],
        payloads: Vec<&'a [u8]>,
        room: usize,
    ) -> Result<SealFrames<'a>> {
        if payloads.len() != aads.len() {
            return Err(Error::InvalidArgument {
                name: "aads".into(),
                reason: format!(
                    "{} attribute sets for {} payloads",
                    aads.len(),
                    payloads.len()
                ),
            });
        }
        let n = u64::try_from(payloads.len()).map_err(|_| Error::Seal {
            reason: "batch too large".into(),
        })?;
        let fits = |key_id: &str| {
            let per_frame = FrameWriter::new(Mode::AtRest, key_id, &[])?.frame_len(0);
            let need = payloads
                .iter()
                .fold(per_frame.checked_mul(payloads.len()), |acc, p| {
                    acc.and_then(|a| a.checked_add(p.len()))
                });
            match need {
                Some(need) if need <= room => Ok(()),
                need => Err(Error::InvalidArgument {
                    name: "out".into(),
                    reason: format!(
                        "{room} bytes is too small: the batch's frames take {}",
                        need.map_or_else(
                            || "more than memory holds".into(),
                            |b| format!("{b} bytes")
                        )
                    ),
                }),
            }
        };
        let (key_id, key, prefix, first) = self.lock().claim(n, fits)?;
        let writer = FrameWriter::new(Mode::AtRest, &key_id, &[])?;
        Ok(SealFrames::new(
            key.cipher()?,
            &key_id,
            writer,
            prefix,
            first,
            aads,
            payloads,
        ))
    }

    /// Open one at-rest frame, checking it belongs to the event described by `aad`.
    pub fn open(&self, frame: &[u8], aad: &AadFields<'_>) -> Result<Vec<u8>> {
        let (out, _) = self.open_batch(std::slice::from_ref(aad), frame, &[0, frame.len()])?;
        Ok(out)
    }

    /// Open many frames (each may be under a different key). Fails as a whole on the
    /// first bad item, naming it.
    pub fn open_batch(
        &self,
        aads: &[AadFields<'_>],
        frames: &[u8],
        offsets: &[usize],
    ) -> Result<(Vec<u8>, Vec<usize>)> {
        self.open_job(aads, frames, offsets)?.run_to_vec()
    }

    /// Plan opening frames: decodes them and looks up their keys, and returns the
    /// job that decrypts the payloads into a buffer of the caller's.
    pub fn open_job<'a>(
        &self,
        aads: &'a [AadFields<'a>],
        frames: &'a [u8],
        offsets: &[usize],
    ) -> Result<OpenFrames<'a>> {
        let sp = spans("offsets", offsets, frames.len())?;
        if sp.len() != aads.len() {
            return Err(Error::InvalidArgument {
                name: "aads".into(),
                reason: format!("{} attribute sets for {} frames", aads.len(), sp.len()),
            });
        }
        let mut decoded = Vec::with_capacity(sp.len());
        for (i, r) in sp.iter().enumerate() {
            let f = frame::decode(&frames[r.clone()]).map_err(|e| aead::with_index(e, i))?;
            if f.mode != Mode::AtRest {
                return Err(Error::Frame {
                    offset: 3,
                    reason: format!(
                        "item {i}: an end-to-end frame; open it with the consumer's key"
                    ),
                });
            }
            decoded.push(f);
        }
        // One cipher per distinct key in the batch.
        let mut ids: Vec<&str> = Vec::new();
        let mut ciphers: Vec<Cipher> = Vec::new();
        let mut which = Vec::with_capacity(decoded.len());
        {
            let ring = self.lock();
            for f in &decoded {
                let idx = if let Some(p) = ids.iter().position(|id| *id == f.key_id) {
                    p
                } else {
                    ciphers.push(ring.opening_key(f.key_id)?.cipher()?);
                    ids.push(f.key_id);
                    ids.len() - 1
                };
                which.push(idx);
            }
        }
        Ok(OpenFrames::new(decoded, which, ciphers, aads))
    }
}

fn check_opts(o: RingOptions) -> Result<RingOptions> {
    if o.max_seals_per_key == 0 || o.max_seals_per_key > crate::seal::nonce::COUNTER_SPACE {
        return Err(Error::InvalidArgument {
            name: "max_seals_per_key".into(),
            reason: "must be in 1..=2^32".into(),
        });
    }
    Ok(o)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ev(id: &str) -> AadFields<'_> {
        AadFields {
            event_id: id,
            event_type: "orders.placed",
            source: "checkout",
            schema_version: 1,
        }
    }

    fn nonce_of(f: &[u8]) -> (String, Vec<u8>) {
        let d = frame::decode(f).unwrap();
        (d.key_id.to_string(), d.nonce.to_vec())
    }

    #[test]
    fn seal_open_and_event_binding() {
        let ring = KeyRing::generate().unwrap();
        let f = ring.seal(b"hello", &ev("e1")).unwrap();
        assert_eq!(ring.open(&f, &ev("e1")).unwrap(), b"hello");
        assert!(matches!(
            ring.open(&f, &ev("e2")),
            Err(Error::Integrity { .. })
        ));
        let other = AadFields {
            schema_version: 2,
            ..ev("e1")
        };
        assert!(matches!(
            ring.open(&f, &other),
            Err(Error::Integrity { .. })
        ));
        // Neither the ring nor its error text shows the key's bytes (read back from
        // the key file, the only place they are written).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.keys");
        ring.persist(&path).unwrap();
        let file: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let hex = file["keys"][0]["key"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes.len(), 32);
        assert!(!crate::seal::shows_key(&format!("{ring:?}"), &bytes));
        let err = ring.open(&f, &ev("e2")).unwrap_err();
        assert!(!crate::seal::shows_key(&format!("{err} {err:?}"), &bytes));
    }

    #[test]
    fn a_batch_that_does_not_fit_its_room_claims_no_counter() {
        let counter = |f: &[u8]| u32::from_be_bytes(nonce_of(f).1[8..12].try_into().unwrap());
        let ring = KeyRing::generate().unwrap();
        let first = ring.seal(b"a", &ev("e0")).unwrap();
        let aads = [ev("e1"), ev("e2")];
        let payloads: Vec<&[u8]> = vec![b"xyz", b"pq"];
        let need = 2 * (first.len() - 1) + 5;
        let err = ring
            .seal_job_within(&aads, payloads.clone(), need - 1)
            .err()
            .unwrap();
        assert!(
            matches!(&err, Error::InvalidArgument { name, reason }
                if name == "out" && reason.contains(&need.to_string())),
            "{err}"
        );
        let next = ring.seal(b"b", &ev("e3")).unwrap();
        assert_eq!(
            counter(&next),
            counter(&first) + 1,
            "no counter was used up"
        );
        let job = ring.seal_job_within(&aads, payloads, need).unwrap();
        assert_eq!(job.out_len(), need);
        let (out, offs) = job.run_to_vec().unwrap();
        assert_eq!(counter(&out[offs[0]..offs[1]]), counter(&next) + 1);
        assert_eq!(ring.open(&out[offs[1]..offs[2]], &ev("e2")).unwrap(), b"pq");
    }

    #[test]
    fn rotation_retirement_destruction() {
        let ring = KeyRing::generate().unwrap();
        let k1 = ring.active_key_id();
        let f1 = ring.seal(b"one", &ev("e1")).unwrap();
        let k2 = ring.rotate().unwrap();
        assert_ne!(k1, k2);
        let f2 = ring.seal(b"two", &ev("e2")).unwrap();
        assert_eq!(nonce_of(&f2).0, k2);
        assert_eq!(ring.open(&f1, &ev("e1")).unwrap(), b"one");
        ring.destroy(&k1).unwrap();
        assert!(
            matches!(ring.open(&f1, &ev("e1")), Err(Error::KeyDestroyed { key_id }) if key_id == k1)
        );
        assert_eq!(ring.open(&f2, &ev("e2")).unwrap(), b"two");
        ring.destroy(&k2).unwrap();
        assert_ne!(ring.active_key_id(), k2);
        assert!(matches!(
            ring.retire("nope"),
            Err(Error::KeyNotFound { .. })
        ));
    }

    #[test]
    fn auto_rotation_before_budget_runs_out() {
        let ring = KeyRing::generate_with(RingOptions {
            max_seals_per_key: 10,
            reserve_chunk: 4,
        })
        .unwrap();
        let mut seen = HashSet::new();
        for b in 0..20 {
            let n = 3;
            let ids: Vec<String> = (0..n).map(|i| format!("e{b}-{i}")).collect();
            let aads: Vec<AadFields<'_>> = ids.iter().map(|s| ev(s)).collect();
            let (out, offs) = ring
                .seal_batch(&aads, &[0u8; 30], &[0, 10, 20, 30])
                .unwrap();
            for w in offs.windows(2) {
                assert!(seen.insert(nonce_of(&out[w[0]..w[1]])));
            }
        }
        assert!(ring.key_ids().len() >= 6);
        assert!(ring.keys().iter().all(|k| k.seals <= 10));
        assert!(matches!(
            ring.seal_batch(&vec![ev("x"); 11], &[0; 11], &(0..=11).collect::<Vec<_>>()),
            Err(Error::Seal { .. })
        ));
    }

    #[test]
    fn key_file_round_trip_high_water_mark_and_perms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let opts = RingOptions {
            max_seals_per_key: 1 << 20,
            reserve_chunk: 100,
        };
        let ring = KeyRing::create(&path, opts).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let f = ring.seal(b"persisted", &ev("e1")).unwrap();
        let first = nonce_of(&f).1;
        // "Crash": drop without any explicit save; the reservation is already on disk.
        drop(ring);
        let ring = KeyRing::load(&path).unwrap();
        assert_eq!(ring.open(&f, &ev("e1")).unwrap(), b"persisted");
        let g = ring.seal(b"after", &ev("e2")).unwrap();
        let second = nonce_of(&g).1;
        let c = |n: &[u8]| u32::from_be_bytes([n[8], n[9], n[10], n[11]]);
        assert!(
            c(&second) >= 100,
            "restart must continue above the reserved mark"
        );
        assert!(c(&second) > c(&first));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("nonce_high_water"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            matches!(KeyRing::load(&path), Err(Error::KeyFile { reason, .. }) if reason.contains("chmod 600"))
        );
    }

    #[test]
    fn hostile_key_files_are_refused_without_echoing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        for body in [
            "not json",
            r#"{"format":"sealbus-keyring","version":1,"active":"a","keys":[]}"#,
            r#"{"format":"sealbus-keyring","version":1,"active":"a","keys":[{"id":"a","state":"active","created":0,"key":"zz"}]}"#,
            r#"{"format":"sealbus-keyring","version":2,"active":"a","keys":[]}"#,
        ] {
            fs::write(&path, body).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = KeyRing::load(&path).unwrap_err();
            assert!(matches!(err, Error::KeyFile { .. }), "{err}");
        }
    }
}
