//! AES-GCM from `aws-lc-rs` (chosen by measurement, see docs/SEALING.md), one message
//! at a time or in batches laid out as one contiguous buffer plus offsets.
//!
//! Batches: item `i` of a buffer is `buf[offsets[i]..offsets[i + 1]]`, so `n` items
//! take `n + 1` offsets (Arrow's layout). Outputs use the same layout and start at 0.
//! A batch is a [`BatchJob`]: its output layout is known before any byte is written,
//! so the caller allocates the result once (a Python `bytes`, say) and the job writes
//! straight into it. Large batches are split across the machine's cores on the rayon
//! pool; each thread writes a disjoint slice of the output, so the result does not
//! depend on how the work was split.

use std::fmt;
use std::ops::Range;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// An expanded AES-GCM key, built for the duration of one batch.
pub type Cipher = LessSafeKey;

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// GCM nonce length: 96 bits, the only size sealbus uses (NIST SP 800-38D's default).
pub const NONCE_LEN: usize = 12;
/// GCM tag length: the full 128 bits, never truncated.
pub const TAG_LEN: usize = 16;

/// A batch estimated to take less than this (µs on one core) runs on the calling
/// thread: waking a pool thread and handing over costs tens of µs, more than half
/// such a batch would save.
const PARALLEL_MIN_MICROS: usize = 150;
/// The estimate: aws-lc's fixed cost per message (nonce, AAD, tag: ~0.15 µs
/// measured at 64–256 B) plus ~8 bytes per ns (its AES-GCM speed from 16 KiB up).
const ITEMS_PER_MICRO: usize = 7;
const BYTES_PER_MICRO: usize = 8_000;
/// The largest chunk a thread takes at a time when a batch is split.
const CHUNK_BYTES: usize = 1024 * 1024;

/// An AES-GCM key (128 or 256 bits). Its bytes are wiped on drop and never printed.
///
/// The expanded key schedule is built per call and dropped (and wiped by aws-lc) with
/// it, so the long-lived copy of the secret is only this zeroised buffer.
pub struct AeadKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadKey(aes-{}-gcm, <redacted>)", self.bytes.len() * 8)
    }
}

impl AeadKey {
    /// Accepts a 16- or 32-byte key. (AES-192 is refused: sealbus never uses it.)
    pub fn new(key: &[u8]) -> Result<Self> {
        match key.len() {
            16 | 32 => Ok(Self {
                bytes: Zeroizing::new(key.to_vec()),
            }),
            n => Err(Error::InvalidArgument {
                name: "key".into(),
                reason: format!("AES-GCM key must be 16 or 32 bytes, got {n}"),
            }),
        }
    }

    /// Expanded cipher for the duration of one call.
    pub(crate) fn cipher(&self) -> Result<Cipher> {
        let alg = if self.bytes.len() == 16 {
            &AES_128_GCM
        } else {
            &AES_256_GCM
        };
        let unbound = UnboundKey::new(alg, &self.bytes).map_err(|_| Error::Seal {
            reason: "cipher rejected the key".into(),
        })?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Key size in bits (128 or 256): the one fact about a key that may be shown.
    pub fn bits(&self) -> usize {
        self.bytes.len() * 8
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn nonce_of(nonce: &[u8]) -> Result<Nonce> {
    Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::InvalidArgument {
        name: "nonce".into(),
        reason: format!("nonce must be {NONCE_LEN} bytes, got {}", nonce.len()),
    })
}

/// Encrypt `plaintext` into `out` (exactly `plaintext.len() + TAG_LEN` bytes:
/// `ciphertext || tag`), reading the plaintext where it is: one pass, no copy into
/// the output first (aws-lc's scatter seal encrypts its `extra_in` out of place with
/// the same AES-GCM code as in place).
pub(crate) fn seal_into(
    cipher: &Cipher,
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<()> {
    if out.len() != plaintext.len() + TAG_LEN {
        return Err(Error::Seal {
            reason: "sealed slot has the wrong size".into(),
        });
    }
    cipher
        .seal_in_place_scatter(nonce_of(nonce)?, Aad::from(aad), &mut [], plaintext, out)
        .map_err(|_| Error::Seal {
            reason: "message too long for AES-GCM".into(),
        })
}

/// Decrypt `sealed = ciphertext || tag` into `out` (exactly the ciphertext's length).
/// aws-lc checks the tag in constant time; on failure `out` holds garbage, and every
/// caller discards the whole output.
pub(crate) fn open_into(
    cipher: &Cipher,
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let split = sealed
        .len()
        .checked_sub(TAG_LEN)
        .ok_or_else(|| Error::Integrity {
            reason: format!("ciphertext shorter than the {TAG_LEN}-byte tag"),
        })?;
    let (ct, tag) = sealed.split_at(split);
    if out.len() != ct.len() {
        return Err(Error::Seal {
            reason: "plaintext slot has the wrong size".into(),
        });
    }
    cipher
        .open_separate_gather(nonce_of(nonce)?, Aad::from(aad), ct, tag, out)
        .map_err(|_| Error::Integrity {
            reason: "authentication tag mismatch".into(),
        })
}

/// Decrypt `ciphertext || tag` in place; on success the plaintext is `buf[..len - 16]`.
pub(crate) fn open_in_place(
    cipher: &Cipher,
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<usize> {
    if buf.len() < TAG_LEN {
        return Err(Error::Integrity {
            reason: format!("ciphertext shorter than the {TAG_LEN}-byte tag"),
        });
    }
    let n = nonce_of(nonce)?;
    cipher
        .open_in_place(n, Aad::from(aad), buf)
        .map(|pt| pt.len())
        .map_err(|_| Error::Integrity {
            reason: "authentication tag mismatch".into(),
        })
}

/// `cryptography`'s `AESGCM.encrypt`: returns `ciphertext || tag`.
pub fn encrypt(key: &AeadKey, nonce: &[u8], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let cipher = key.cipher()?;
    let mut out = vec![0u8; plaintext.len() + TAG_LEN];
    seal_into(&cipher, nonce, aad, plaintext, &mut out)?;
    Ok(out)
}

/// `cryptography`'s `AESGCM.decrypt`: takes `ciphertext || tag`, returns the plaintext
/// or `Error::Integrity`.
pub fn decrypt(key: &AeadKey, nonce: &[u8], data: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let cipher = key.cipher()?;
    let mut buf = data.to_vec();
    let n = open_in_place(&cipher, nonce, aad, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Validate `n + 1` offsets into a buffer of `len` bytes and return the item ranges.
pub fn spans(name: &str, offsets: &[usize], len: usize) -> Result<Vec<Range<usize>>> {
    let bad = |reason: String| Error::InvalidArgument {
        name: name.into(),
        reason,
    };
    let Some(&last) = offsets.last() else {
        return Err(bad("needs n + 1 offsets (at least one)".into()));
    };
    if last > len {
        return Err(bad(format!(
            "last offset {last} is past the end of the {len}-byte buffer"
        )));
    }
    let mut out = Vec::with_capacity(offsets.len() - 1);
    for (i, w) in offsets.windows(2).enumerate() {
        if w[1] < w[0] {
            return Err(bad(format!(
                "offset {} ({}) is before offset {i} ({})",
                i + 1,
                w[1],
                w[0]
            )));
        }
        out.push(w[0]..w[1]);
    }
    Ok(out)
}

/// Associated data for a batch: none, one shared value, or one per item.
#[derive(Debug, Clone, Copy)]
pub enum BatchAad<'a> {
    None,
    Shared(&'a [u8]),
    PerItem {
        buffer: &'a [u8],
        offsets: &'a [usize],
    },
}

impl<'a> BatchAad<'a> {
    fn resolve(self, n: usize) -> Result<Vec<&'a [u8]>> {
        match self {
            BatchAad::None => Ok(vec![&[][..]; n]),
            BatchAad::Shared(a) => Ok(vec![a; n]),
            BatchAad::PerItem { buffer, offsets } => {
                let sp = spans("aad_offsets", offsets, buffer.len())?;
                if sp.len() != n {
                    return Err(Error::InvalidArgument {
                        name: "aads".into(),
                        reason: format!("{} associated-data items for {n} payloads", sp.len()),
                    });
                }
                Ok(sp.into_iter().map(|r| &buffer[r]).collect())
            }
        }
    }
}

/// Threads a large batch may use: `SEALBUS_SEAL_THREADS` if set (1 turns parallel
/// sealing off, e.g. on a machine shared with other busy processes), else the cores.
fn max_threads() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("SEALBUS_SEAL_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
            .clamp(1, 16)
    })
}

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with this thread's batch sealing and opening kept on this thread.
///
/// Sealing a large batch on several threads shortens it when cores are idle; when
/// they are already busy (other publishes in flight) the extra threads only add
/// their start-up and hand-over to the same work. The router knows which case it is in.
pub fn serially<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(SERIAL.with(|c| c.replace(true)));
    f()
}

/// Split `out` at item boundaries into chunks and run `f` on each, on the rayon pool
/// as well as the calling thread when the batch is large (and not inside
/// [`serially`]). `f(first_item, items_out_offsets, slice)`.
///
/// The calling thread works too: every thread, the caller included, takes the next
/// unstarted chunk until none is left, so a pool thread that is slow to wake (its
/// core busy elsewhere) costs at most the chunk it took, never the whole call. The
/// error reported is that of the lowest chunk that failed, whatever the split.
pub(crate) fn par_chunks<F>(out: &mut [u8], out_offsets: &[usize], f: F) -> Result<()>
where
    F: Fn(usize, &[usize], &mut [u8]) -> Result<()> + Sync,
{
    let n = out_offsets.len().saturating_sub(1);
    par_chunks_costed(
        out,
        out_offsets,
        n / ITEMS_PER_MICRO + out.len() / BYTES_PER_MICRO,
        f,
    )
}

/// [`par_chunks`] for work whose cost per item is not the cipher's alone (opening
/// and then validating, say): `micros`, the caller's estimate of the whole batch on
/// one core, decides whether it is split.
pub(crate) fn par_chunks_costed<F>(
    out: &mut [u8],
    out_offsets: &[usize],
    micros: usize,
    f: F,
) -> Result<()>
where
    F: Fn(usize, &[usize], &mut [u8]) -> Result<()> + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    type Chunk<'o, 'a> = Mutex<Option<(usize, &'a [usize], &'o mut [u8])>>;

    let n = out_offsets.len().saturating_sub(1);
    let threads = if micros >= PARALLEL_MIN_MICROS && !SERIAL.with(std::cell::Cell::get) {
        max_threads().min(n.max(1))
    } else {
        1
    };
    // No pool in this process (a child forked after it was built): all here.
    if threads <= 1 || !crate::pool::ensure() {
        return f(0, out_offsets, out);
    }
    // Item boundaries every ~CHUNK_BYTES, and at least two chunks per thread.
    let total = out.len();
    let step = (total / (2 * threads)).clamp(1, CHUNK_BYTES);
    let mut cuts = vec![0usize];
    let mut target = step;
    while target < total {
        let idx = out_offsets.partition_point(|&o| o < target).min(n);
        if idx > *cuts.last().unwrap_or(&0) {
            cuts.push(idx);
        }
        target = out_offsets[idx].max(target) + step;
    }
    cuts.push(n);
    cuts.dedup();
    let mut chunks: Vec<Chunk<'_, '_>> = Vec::with_capacity(cuts.len());
    let mut rest = out;
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (mine, tail) = rest.split_at_mut(out_offsets[b] - out_offsets[a]);
        rest = tail;
        chunks.push(Mutex::new(Some((a, &out_offsets[a..=b], mine))));
    }
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let work = || loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(chunk) = chunks.get(k) else { break };
        let taken = chunk.lock().ok().and_then(|mut c| c.take());
        let Some((a, offs, mine)) = taken else {
            continue;
        };
        if let Err(e) = f(a, offs, mine) {
            if let Ok(mut slot) = failed.lock() {
                if slot.as_ref().is_none_or(|(j, _)| k < *j) {
                    *slot = Some((k, e));
                }
            }
        }
    };
    let work = &work;
    rayon::in_place_scope(|s| {
        for _ in 1..threads {
            s.spawn(move |_| work());
        }
        work();
    });
    match failed.into_inner() {
        Ok(None) => Ok(()),
        Ok(Some((_, e))) => Err(e),
        Err(_) => Err(Error::Seal {
            reason: "a sealing thread panicked".into(),
        }),
    }
}

/// A batch whose output layout is known before it runs: the caller allocates
/// `out_len()` bytes once and [`BatchJob::run`] writes every item into its slot.
pub trait BatchJob: Sync {
    /// `n + 1` offsets of the items in the output, from 0.
    fn out_offsets(&self) -> &[usize];

    /// Fill `out` (exactly `out_len()` bytes). On error the whole output is garbage
    /// and must be discarded.
    fn run(&self, out: &mut [u8]) -> Result<()>;

    fn out_len(&self) -> usize {
        self.out_offsets().last().copied().unwrap_or(0)
    }

    /// Run into a fresh `Vec` (for callers in Rust).
    fn run_to_vec(&self) -> Result<(Vec<u8>, Vec<usize>)> {
        let mut out = vec![0u8; self.out_len()];
        self.run(&mut out)?;
        Ok((out, self.out_offsets().to_vec()))
    }
}

/// Check that `out` is exactly the job's size (a caller allocating the output).
pub(crate) fn check_out(out: &[u8], offsets: &[usize]) -> Result<()> {
    if offsets.last().copied().unwrap_or(0) == out.len() {
        Ok(())
    } else {
        Err(Error::Seal {
            reason: "batch output buffer has the wrong size".into(),
        })
    }
}

/// `n + 1` offsets from item lengths.
pub(crate) fn layout(lens: impl ExactSizeIterator<Item = usize>) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(lens.len() + 1);
    let mut pos = 0usize;
    offsets.push(0);
    for l in lens {
        pos += l;
        offsets.push(pos);
    }
    offsets
}

/// [`encrypt_batch`] as a job: `ciphertext || tag` per item, nonces chosen by the caller.
pub struct EncryptJob<'a> {
    cipher: Cipher,
    nonces: &'a [u8],
    input: &'a [u8],
    spans: Vec<Range<usize>>,
    aads: Vec<&'a [u8]>,
    out_offsets: Vec<usize>,
}

impl<'a> EncryptJob<'a> {
    pub fn new(
        key: &AeadKey,
        nonces: &'a [u8],
        input: &'a [u8],
        offsets: &[usize],
        aads: BatchAad<'a>,
    ) -> Result<Self> {
        let spans = spans("offsets", offsets, input.len())?;
        let n = spans.len();
        check_nonces(nonces, n)?;
        let aads = aads.resolve(n)?;
        let out_offsets = layout(spans.iter().map(|r| r.len() + TAG_LEN));
        Ok(Self {
            cipher: key.cipher()?,
            nonces,
            input,
            spans,
            aads,
            out_offsets,
        })
    }
}

impl BatchJob for EncryptJob<'_> {
    fn out_offsets(&self) -> &[usize] {
        &self.out_offsets
    }

    fn run(&self, out: &mut [u8]) -> Result<()> {
        check_out(out, &self.out_offsets)?;
        par_chunks(out, &self.out_offsets, |first, offs, slice| {
            let base = offs[0];
            for (j, w) in offs.windows(2).enumerate() {
                let i = first + j;
                let slot = &mut slice[w[0] - base..w[1] - base];
                seal_into(
                    &self.cipher,
                    &self.nonces[i * NONCE_LEN..(i + 1) * NONCE_LEN],
                    self.aads[i],
                    &self.input[self.spans[i].clone()],
                    slot,
                )?;
            }
            Ok(())
        })
    }
}

/// [`decrypt_batch`] as a job: each item's plaintext is decrypted from the input
/// straight into its output slot (no working copy).
pub struct DecryptJob<'a> {
    cipher: Cipher,
    nonces: &'a [u8],
    input: &'a [u8],
    spans: Vec<Range<usize>>,
    aads: Vec<&'a [u8]>,
    out_offsets: Vec<usize>,
}

impl<'a> DecryptJob<'a> {
    pub fn new(
        key: &AeadKey,
        nonces: &'a [u8],
        input: &'a [u8],
        offsets: &[usize],
        aads: BatchAad<'a>,
    ) -> Result<Self> {
        let spans = spans("offsets", offsets, input.len())?;
        let n = spans.len();
        check_nonces(nonces, n)?;
        let aads = aads.resolve(n)?;
        for (i, r) in spans.iter().enumerate() {
            if r.len() < TAG_LEN {
                return Err(Error::Integrity {
                    reason: format!("item {i}: {} bytes is shorter than the tag", r.len()),
                });
            }
        }
        let out_offsets = layout(spans.iter().map(|r| r.len() - TAG_LEN));
        Ok(Self {
            cipher: key.cipher()?,
            nonces,
            input,
            spans,
            aads,
            out_offsets,
        })
    }
}

impl BatchJob for DecryptJob<'_> {
    fn out_offsets(&self) -> &[usize] {
        &self.out_offsets
    }

    fn run(&self, out: &mut [u8]) -> Result<()> {
        check_out(out, &self.out_offsets)?;
        par_chunks(out, &self.out_offsets, |first, offs, slice| {
            let base = offs[0];
            for (j, w) in offs.windows(2).enumerate() {
                let i = first + j;
                open_into(
                    &self.cipher,
                    &self.nonces[i * NONCE_LEN..(i + 1) * NONCE_LEN],
                    self.aads[i],
                    &self.input[self.spans[i].clone()],
                    &mut slice[w[0] - base..w[1] - base],
                )
                .map_err(|e| with_index(e, i))?;
            }
            Ok(())
        })
    }
}

/// Encrypt `n` items with caller-chosen nonces (`12 * n` bytes, one per item).
/// Returns `ciphertext || tag` per item in one buffer plus `n + 1` offsets.
/// As with `cryptography`'s `AESGCM`, nonce uniqueness is the caller's duty here; the
/// key ring does it for you.
pub fn encrypt_batch(
    key: &AeadKey,
    nonces: &[u8],
    input: &[u8],
    offsets: &[usize],
    aads: BatchAad<'_>,
) -> Result<(Vec<u8>, Vec<usize>)> {
    EncryptJob::new(key, nonces, input, offsets, aads)?.run_to_vec()
}

/// Decrypt `n` items of `ciphertext || tag`. Fails as a whole with `Error::Integrity`
/// naming the first failing item.
pub fn decrypt_batch(
    key: &AeadKey,
    nonces: &[u8],
    input: &[u8],
    offsets: &[usize],
    aads: BatchAad<'_>,
) -> Result<(Vec<u8>, Vec<usize>)> {
    DecryptJob::new(key, nonces, input, offsets, aads)?.run_to_vec()
}

pub(crate) fn with_index(e: Error, i: usize) -> Error {
    match e {
        Error::Integrity { reason } => Error::Integrity {
            reason: format!("item {i}: {reason}"),
        },
        Error::Frame { offset, reason } => Error::Frame {
            offset,
            reason: format!("item {i}: {reason}"),
        },
        other => other,
    }
}

fn check_nonces(nonces: &[u8], n: usize) -> Result<()> {
    if nonces.len() == n * NONCE_LEN {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "nonces".into(),
            reason: format!(
                "{n} items need {} nonce bytes ({NONCE_LEN} each), got {}",
                n * NONCE_LEN,
                nonces.len()
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn nist_gcm_test_case_16() {
        // McGrew & Viega GCM spec, test case 16 (AES-256, 96-bit IV, with AAD).
        let key = AeadKey::new(&hex(
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        ))
        .unwrap();
        let iv = hex("cafebabefacedbaddecaf888");
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ct = encrypt(&key, &iv, &pt, &aad).unwrap();
        assert_eq!(
            ct,
            hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
                 76fc6ece0f4e1768cddf8853bb2d551b")
        );
        assert_eq!(decrypt(&key, &iv, &ct, &aad).unwrap(), pt);
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(matches!(
            decrypt(&key, &iv, &bad, &aad),
            Err(Error::Integrity { .. })
        ));
    }

    #[test]
    fn serially_keeps_a_large_batch_on_the_calling_thread_and_then_restores() {
        let offsets: Vec<usize> = (0..=128).map(|i| i * 16 * 1024).collect();
        let mut out = vec![0u8; *offsets.last().unwrap()];
        let chunks = |out: &mut [u8]| {
            let calls = std::sync::atomic::AtomicUsize::new(0);
            par_chunks(out, &offsets, |_, _, _| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
            calls.into_inner()
        };
        let before = chunks(&mut out);
        if max_threads() > 1 {
            assert!(before >= 2 * max_threads(), "split in {before} chunks");
        } else {
            assert_eq!(before, 1);
        }
        assert_eq!(serially(|| chunks(&mut out)), 1);
        assert_eq!(chunks(&mut out), before, "the flag is restored afterwards");
    }

    #[test]
    fn batch_matches_single_and_parallel_split() {
        let key = AeadKey::new(&[9u8; 32]).unwrap();
        // Large enough to take the threaded path (~1.5 MB).
        let n = 600;
        let sizes: Vec<usize> = (0..n).map(|i| (i * 37) % 5000).collect();
        let mut input = Vec::new();
        let mut offsets = vec![0];
        for (i, s) in sizes.iter().enumerate() {
            input.extend((0..*s).map(|j| (i + j) as u8));
            offsets.push(input.len());
        }
        let nonces: Vec<u8> = (0..n * 12).map(|i| (i % 251) as u8).collect();
        let (ct, co) =
            encrypt_batch(&key, &nonces, &input, &offsets, BatchAad::Shared(b"ctx")).unwrap();
        for i in 0..n {
            let single = encrypt(
                &key,
                &nonces[i * 12..i * 12 + 12],
                &input[offsets[i]..offsets[i + 1]],
                b"ctx",
            )
            .unwrap();
            assert_eq!(&ct[co[i]..co[i + 1]], &single[..]);
        }
        let (pt, po) = decrypt_batch(&key, &nonces, &ct, &co, BatchAad::Shared(b"ctx")).unwrap();
        assert_eq!(pt, input);
        assert_eq!(po, offsets);
        let mut bad = ct.clone();
        bad[co[200] + 3] ^= 0x80;
        let err = decrypt_batch(&key, &nonces, &bad, &co, BatchAad::Shared(b"ctx")).unwrap_err();
        assert!(err.to_string().contains("item 200"), "{err}");
        // And in the first chunk, which the calling thread opens itself.
        let mut bad = ct.clone();
        bad[co[3] + 1] ^= 0x01;
        let err = decrypt_batch(&key, &nonces, &bad, &co, BatchAad::Shared(b"ctx")).unwrap_err();
        assert!(err.to_string().contains("item 3"), "{err}");
        // Two bad items in different chunks: the lower one is named, however the
        // chunks were shared out between the threads.
        bad[co[550] + 1] ^= 0x01;
        for _ in 0..20 {
            let err =
                decrypt_batch(&key, &nonces, &bad, &co, BatchAad::Shared(b"ctx")).unwrap_err();
            assert!(err.to_string().contains("item 3"), "{err}");
        }
    }

    #[test]
    fn bad_arguments_are_typed() {
        let bytes: Vec<u8> = (0u8..32).map(|i| i * 7 + 3).collect();
        let key = AeadKey::new(&bytes).unwrap();
        assert!(matches!(
            AeadKey::new(&[0u8; 24]),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            encrypt(&key, &[0u8; 16], b"x", b""),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            encrypt_batch(&key, &[0; 12], b"abc", &[0, 2, 1], BatchAad::None),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            encrypt_batch(&key, &[0; 12], b"abc", &[0, 9], BatchAad::None),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            encrypt_batch(&key, &[0; 11], b"abc", &[0, 3], BatchAad::None),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            decrypt(&key, &[0; 12], &[0; 5], b""),
            Err(Error::Integrity { .. })
        ));
        assert!(!crate::seal::shows_key(&format!("{key:?}"), &bytes));
        // The check itself can fail: it sees bytes printed either way.
        assert!(crate::seal::shows_key(&format!("{bytes:?}"), &bytes));
        assert!(crate::seal::shows_key(
            &format!("{bytes:02X?}").replace([',', ' '], ""),
            &bytes
        ));
    }
}
