//! The audit trail: an append-only, hash-chained record of what the router decided,
//! with signed Merkle checkpoints.
//!
//! The trail is one file of JSON lines (`<log>/audit/trail.jsonl`, mode 0600), one
//! entry a line: `{"seq":N,"time":NS,"prev":HEX,"kind":K,...details}`. `prev` is the
//! SHA-256 leaf hash (RFC 9162: `SHA-256(0x00 || line)`) of the entry before, so a
//! changed, inserted, deleted or reordered entry breaks the chain at the first entry
//! after it and is named by its position. Every `checkpoint_every` entries, and on
//! request, a `checkpoint` entry records the Merkle root (RFC 9162) of every entry
//! before it, signed with the router's Ed25519 key; exported, a checkpoint proves
//! that the trail it was taken from still holds those entries (a rollback of the whole
//! trail is caught against it), and that an event's entry is in it (an inclusion
//! proof). Entries carry ids, types, principals, sizes and reasons: never a payload or
//! a key.

pub mod merkle;
mod writer;

pub use writer::Writer;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::identity::{self, Signer};
use merkle::Hash;

const FILE: &str = "trail.jsonl";
const SIGNED: &[u8] = b"sealbus-audit-checkpoint-v1\0";

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::LogIo {
        op,
        path: path.display().to_string(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A signed checkpoint: the trail's first `size` entries have Merkle root `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub size: u64,
    pub root: Hash,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Checkpoint {
    fn message(size: u64, root: &Hash) -> Vec<u8> {
        let mut m = SIGNED.to_vec();
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(root);
        m
    }

    /// Whether the signature is the public key's over size and root.
    pub fn signature_ok(&self) -> bool {
        identity::verify(
            &self.public_key,
            &self.signature,
            &Self::message(self.size, &self.root),
        )
    }

    /// The exported form: one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "size": self.size,
            "root": hex(&self.root),
            "key": hex(&self.public_key),
            "sig": hex(&self.signature),
        })
        .to_string()
    }

    /// Parse the exported form (or a checkpoint entry of the trail).
    pub fn from_json(text: &str) -> Result<Checkpoint> {
        let bad = |reason: &str| Error::InvalidArgument {
            name: "checkpoint".into(),
            reason: reason.into(),
        };
        let v: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
        Self::from_value(&v).ok_or_else(|| bad("not a sealbus audit checkpoint"))
    }

    fn from_value(v: &Value) -> Option<Checkpoint> {
        let field = |k: &str| v.get(k).and_then(Value::as_str).and_then(unhex);
        let root: Hash = field("root")?.try_into().ok()?;
        Some(Checkpoint {
            size: v.get("size")?.as_u64()?,
            root,
            public_key: field("key")?,
            signature: field("sig")?,
        })
    }
}

/// One router's trail file. Appends are buffered and written and synced together by
/// [`Trail::sync`]; a router writes through a [`Writer`], which does both in the
/// background.
pub struct Trail {
    path: PathBuf,
    file: File,
    seq: u64,
    prev: Hash,
    leaves: Vec<Hash>,
    signer: Signer,
    checkpoint_every: u64,
    pending: Vec<u8>,
}

impl std::fmt::Debug for Trail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trail({}, entries={})", self.path.display(), self.seq)
    }
}

impl Trail {
    /// Open (or create) the trail under `dir`, signing checkpoints with the Ed25519
    /// key of the 32-byte `seed`. An existing trail is verified first and refused if
    /// it does not verify; a torn last line (a crash mid-write) is cut off.
    pub fn open(dir: &Path, seed: &[u8], checkpoint_every: u64) -> Result<Trail> {
        let signer = Signer::from_seed(seed)?;
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod", dir))?;
        let path = dir.join(FILE);
        let (leaves, prev, keep) = if path.exists() {
            let scan = scan(&path)?;
            if let Some((at, reason)) = scan.first_bad {
                return Err(Error::LogCorrupted {
                    segment: path.display().to_string(),
                    offset: at,
                    reason: format!("audit trail entry {at}: {reason}"),
                });
            }
            (scan.leaves, scan.last, scan.valid_bytes)
        } else {
            (Vec::new(), [0u8; 32], 0)
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        file.set_len(keep).map_err(io("truncate", &path))?;
        let mut trail = Trail {
            seq: leaves.len() as u64,
            path,
            file,
            prev,
            leaves,
            signer,
            checkpoint_every: checkpoint_every.max(1),
            pending: Vec::new(),
        };
        let key = hex(trail.signer.public_key().as_ref());
        trail.append(
            "open",
            0,
            [("key".to_owned(), Value::String(key))]
                .into_iter()
                .collect(),
        )?;
        trail.sync()?;
        Ok(trail)
    }

    /// The router's public key, which verifies its checkpoints.
    pub fn public_key(&self) -> Vec<u8> {
        self.signer.public_key().as_ref().to_vec()
    }

    /// Entries so far (including those not yet synced).
    pub fn len(&self) -> u64 {
        self.seq
    }

    pub fn is_empty(&self) -> bool {
        self.seq == 0
    }

    /// Append one entry of `kind` with `details` (ids, names, sizes, reasons; never a
    /// payload or a key). Returns its position.
    pub fn append(&mut self, kind: &str, time_ns: u64, details: Map<String, Value>) -> Result<u64> {
        let mut entry = Map::with_capacity(details.len() + 4);
        entry.insert("seq".into(), Value::from(self.seq));
        entry.insert("time".into(), Value::from(time_ns));
        entry.insert("prev".into(), Value::String(hex(&self.prev)));
        entry.insert("kind".into(), Value::String(kind.to_owned()));
        for (k, v) in details {
            if !entry.contains_key(&k) {
                entry.insert(k, v);
            }
        }
        let line =
            serde_json::to_vec(&Value::Object(entry)).map_err(|e| Error::InvalidArgument {
                name: "details".into(),
                reason: e.to_string(),
            })?;
        let at = self.seq;
        self.push_line(&line);
        if self.seq.is_multiple_of(self.checkpoint_every) && kind != "checkpoint" {
            self.checkpoint(time_ns)?;
        }
        Ok(at)
    }

    fn push_line(&mut self, line: &[u8]) {
        let h = merkle::leaf_hash(line);
        self.pending.extend_from_slice(line);
        self.pending.push(b'\n');
        self.leaves.push(h);
        self.prev = h;
        self.seq += 1;
    }

    /// Sign the Merkle root of every entry so far, and record it as an entry.
    pub fn checkpoint(&mut self, time_ns: u64) -> Result<Checkpoint> {
        let size = self.seq;
        let root = merkle::root(&self.leaves);
        let signature = self.signer.sign(&Checkpoint::message(size, &root)).to_vec();
        let cp = Checkpoint {
            size,
            root,
            public_key: self.public_key(),
            signature,
        };
        let mut details = Map::new();
        details.insert("size".into(), Value::from(size));
        details.insert("root".into(), Value::String(hex(&root)));
        details.insert("key".into(), Value::String(hex(&cp.public_key)));
        details.insert("sig".into(), Value::String(hex(&cp.signature)));
        self.append("checkpoint", time_ns, details)?;
        Ok(cp)
    }

    /// Write what was appended and fdatasync it: after this, it survives a crash.
    pub fn sync(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.pending)
            .map_err(io("write", &self.path))?;
        self.file.sync_data().map_err(io("fsync", &self.path))?;
        self.pending.clear();
        Ok(())
    }
}

impl Drop for Trail {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// The verdict of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Entries that verified, from the start.
    pub entries: u64,
    /// Signed checkpoints found in the trail and verified.
    pub checkpoints: u64,
    /// The first entry that does not verify (its position) and why.
    pub first_bad: Option<(u64, String)>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

struct Scan {
    leaves: Vec<Hash>,
    entries: Vec<Value>,
    last: Hash,
    valid_bytes: u64,
    checkpoints: u64,
    first_bad: Option<(u64, String)>,
}

/// Read and check the trail: chain, positions, and every checkpoint's root and
/// signature. A last line without its newline is a torn write, not an entry.
fn scan(path: &Path) -> Result<Scan> {
    let file = File::open(path).map_err(io("open", path))?;
    scan_from(BufReader::new(file), path)
}

fn scan_from<R: BufRead>(mut reader: R, path: &Path) -> Result<Scan> {
    let mut s = Scan {
        leaves: Vec::new(),
        entries: Vec::new(),
        last: [0u8; 32],
        valid_bytes: 0,
        checkpoints: 0,
        first_bad: None,
    };
    let mut key: Option<Vec<u8>> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(io("read", path))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        line.pop();
        let at = s.leaves.len() as u64;
        if let Err(reason) = check(&line, at, &s.last, &s.leaves, &mut key, &mut s.checkpoints) {
            s.first_bad = Some((at, reason));
            break;
        }
        let h = merkle::leaf_hash(&line);
        s.leaves.push(h);
        s.last = h;
        s.valid_bytes += n as u64;
        s.entries
            .push(serde_json::from_slice(&line).unwrap_or(Value::Null));
    }
    Ok(s)
}

fn check(
    line: &[u8],
    at: u64,
    prev: &Hash,
    leaves: &[Hash],
    key: &mut Option<Vec<u8>>,
    checkpoints: &mut u64,
) -> std::result::Result<(), String> {
    let v: Value = serde_json::from_slice(line).map_err(|_| "not a JSON entry".to_owned())?;
    let seq = v.get("seq").and_then(Value::as_u64).ok_or("no position")?;
    if seq != at {
        return Err(format!(
            "position {seq} where {at} belongs (inserted, deleted or reordered)"
        ));
    }
    let p = v
        .get("prev")
        .and_then(Value::as_str)
        .and_then(unhex)
        .ok_or("no previous hash")?;
    if p.as_slice() != prev.as_slice() {
        return Err("previous hash does not match the entry before (an entry before it was changed, or this one moved)".into());
    }
    match v.get("kind").and_then(Value::as_str).ok_or("no kind")? {
        "open" => {
            let k = v
                .get("key")
                .and_then(Value::as_str)
                .and_then(unhex)
                .ok_or("open entry without a key")?;
            if let Some(first) = key.as_ref() {
                if *first != k {
                    return Err("the router's signing key changed".into());
                }
            }
            *key = Some(k);
        }
        "checkpoint" => {
            let cp = Checkpoint::from_value(&v).ok_or("malformed checkpoint")?;
            if cp.size != at || merkle::root(leaves) != cp.root {
                return Err("checkpoint root does not match the entries before it".into());
            }
            if key.as_deref() != Some(cp.public_key.as_slice()) || !cp.signature_ok() {
                return Err("checkpoint signature does not verify".into());
            }
            *checkpoints += 1;
        }
        _ => {}
    }
    Ok(())
}

/// Verify the trail under `dir`, and, with `against`, that it still holds the entries
/// an exported checkpoint signed (a rollback, a truncation or a rewrite of the whole
/// trail is caught; the checkpoint's signature must verify).
pub fn verify(dir: &Path, against: Option<&Checkpoint>) -> Result<Verdict> {
    let s = scan(&dir.join(FILE))?;
    let mut v = Verdict {
        entries: s.leaves.len() as u64,
        checkpoints: s.checkpoints,
        first_bad: s.first_bad,
    };
    if let (Some(cp), None) = (against, &v.first_bad) {
        if !cp.signature_ok() {
            v.first_bad = Some((
                cp.size,
                "the exported checkpoint's signature does not verify".into(),
            ));
        } else if (s.leaves.len() as u64) < cp.size {
            v.first_bad = Some((
                s.leaves.len() as u64,
                format!("the trail holds {} entries, the checkpoint signed {} (rolled back or truncated)", s.leaves.len(), cp.size),
            ));
        } else if merkle::root(&s.leaves[..usize::try_from(cp.size).unwrap_or(usize::MAX)])
            != cp.root
        {
            v.first_bad = Some((
                0,
                "the first entries differ from those the checkpoint signed (rewritten)".into(),
            ));
        }
    }
    Ok(v)
}

/// Verify a trail held in memory (the bytes of its file), as [`verify`] does the file:
/// the decoder that the fuzz target drives with arbitrary bytes.
pub fn verify_bytes(bytes: &[u8]) -> Verdict {
    match scan_from(bytes, Path::new("<memory>")) {
        Ok(s) => Verdict {
            entries: s.leaves.len() as u64,
            checkpoints: s.checkpoints,
            first_bad: s.first_bad,
        },
        // Reading a slice cannot fail; were it to, nothing verified.
        Err(e) => Verdict {
            entries: 0,
            checkpoints: 0,
            first_bad: Some((0, e.to_string())),
        },
    }
}

/// Entries of the trail as JSON objects (up to the first that does not verify).
pub fn entries(dir: &Path) -> Result<Vec<Value>> {
    Ok(scan(&dir.join(FILE))?.entries)
}

/// An inclusion proof: the entry at `index` is in the tree of `size` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub index: u64,
    pub size: u64,
    pub entry: Vec<u8>,
    pub path: Vec<Hash>,
}

/// Prove that the publish entry naming `event_id` (alone, or among a batch's `ids`) is
/// in the trail under `checkpoint`.
pub fn prove(dir: &Path, event_id: &str, checkpoint: &Checkpoint) -> Result<Option<Proof>> {
    let path = dir.join(FILE);
    let s = scan(&path)?;
    let size = usize::try_from(checkpoint.size)
        .unwrap_or(usize::MAX)
        .min(s.leaves.len());
    let raw = fs::read(&path).map_err(io("read", &path))?;
    for (i, line) in raw.split(|b| *b == b'\n').take(size).enumerate() {
        let v: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
        let is_publish = v.get("kind").and_then(Value::as_str) == Some("publish");
        let names = |v: &Value| {
            v.get("id").and_then(Value::as_str) == Some(event_id)
                || v.get("ids")
                    .and_then(Value::as_array)
                    .is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(event_id)))
        };
        if is_publish && names(&v) {
            return Ok(Some(Proof {
                index: i as u64,
                size: size as u64,
                entry: line.to_vec(),
                path: merkle::inclusion_path(&s.leaves[..size], i),
            }));
        }
    }
    Ok(None)
}

/// Whether `proof` shows its entry is in the trail `checkpoint` signed.
pub fn verify_proof(proof: &Proof, checkpoint: &Checkpoint) -> bool {
    checkpoint.signature_ok()
        && proof.size == checkpoint.size
        && merkle::verify_inclusion(
            &merkle::leaf_hash(&proof.entry),
            proof.index,
            proof.size,
            &proof.path,
            &checkpoint.root,
        )
}

#[cfg(test)]
mod tests;
