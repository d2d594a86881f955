//! Seals and opens `n` payloads of each size with each AES-256-GCM implementation and
//! prints the median throughput (MB/s) over several runs. Same key, same AAD (the
//! ~60-byte canonical AAD sealbus uses), a fresh counter nonce per sealed message.
//!
//! The runs of the three libraries are interleaved (run 1 of each, then run 2 of
//! each, ...) so a change in the machine's load hits them alike, and each run is
//! timed twice: wall clock, and the CPU time of the measuring thread (what the cipher
//! costs when the core is shared with other jobs).
use std::time::Instant;

const SIZES: [usize; 6] = [64, 256, 1024, 4096, 16384, 65536];
const RUNS: usize = 7;
const BYTES_PER_RUN: usize = 32 << 20;

fn nonce(i: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&i.to_be_bytes());
    n
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

type Op<'a> = Box<dyn FnMut(u64, &mut Vec<u8>) + 'a>;

struct Lib<'a> {
    name: &'static str,
    seal: Op<'a>,
    open: Op<'a>,
    /// `payload || tag` sealed under nonce 0, what `open` starts from each time.
    sealed: Vec<u8>,
}

/// Time `n` calls; returns (wall MB/s, CPU MB/s).
fn time_op(size: usize, n: u64, mut step: impl FnMut(u64)) -> (f64, f64) {
    let (w, c) = (Instant::now(), thread_cpu_seconds());
    for i in 0..n {
        step(i);
    }
    let (dw, dc) = (w.elapsed().as_secs_f64(), thread_cpu_seconds() - c);
    let mb = n as f64 * size as f64 / 1e6;
    (mb / dw, mb / dc.max(1e-9))
}

fn main() {
    let key = [7u8; 32];
    let aad = [3u8; 60];
    println!(
        "{:<10} {:>6} | {:>10} {:>10} | {:>10} {:>10}",
        "library", "size", "seal wall", "seal CPU", "open wall", "open CPU"
    );
    for size in SIZES {
        let payload = vec![0x5au8; size];
        let mut libs: Vec<Lib<'_>> = Vec::new();
        {
            use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
            let k = std::rc::Rc::new(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap()));
            let (k1, k2) = (k.clone(), k.clone());
            let mut sealed = payload.clone();
            let t = k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(0)), Aad::from(&aad), &mut sealed).unwrap();
            sealed.extend_from_slice(t.as_ref());
            libs.push(Lib {
                name: "aws-lc-rs",
                seal: Box::new(move |i, buf| {
                    let tag = k1
                        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(i)), Aad::from(&aad), buf)
                        .unwrap();
                    buf.extend_from_slice(tag.as_ref());
                }),
                open: Box::new(move |_, buf| {
                    k2.open_in_place(Nonce::assume_unique_for_key(nonce(0)), Aad::from(&aad), buf).unwrap();
                }),
                sealed,
            });
        }
        {
            use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
            let k = std::rc::Rc::new(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap()));
            let (k1, k2) = (k.clone(), k.clone());
            let mut sealed = payload.clone();
            let t = k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(0)), Aad::from(&aad), &mut sealed).unwrap();
            sealed.extend_from_slice(t.as_ref());
            libs.push(Lib {
                name: "ring",
                seal: Box::new(move |i, buf| {
                    let tag = k1
                        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(i)), Aad::from(&aad), buf)
                        .unwrap();
                    buf.extend_from_slice(tag.as_ref());
                }),
                open: Box::new(move |_, buf| {
                    k2.open_in_place(Nonce::assume_unique_for_key(nonce(0)), Aad::from(&aad), buf).unwrap();
                }),
                sealed,
            });
        }
        {
            use aes_gcm::aead::{AeadInPlace, KeyInit};
            use aes_gcm::{Aes256Gcm, Nonce};
            let k = std::rc::Rc::new(Aes256Gcm::new_from_slice(&key).unwrap());
            let (k1, k2) = (k.clone(), k.clone());
            let mut sealed = payload.clone();
            let t = k.encrypt_in_place_detached(Nonce::from_slice(&nonce(0)), &aad, &mut sealed).unwrap();
            sealed.extend_from_slice(&t);
            libs.push(Lib {
                name: "aes-gcm",
                seal: Box::new(move |i, buf| {
                    let tag = k1.encrypt_in_place_detached(Nonce::from_slice(&nonce(i)), &aad, buf).unwrap();
                    buf.extend_from_slice(&tag);
                }),
                open: Box::new(move |_, buf| {
                    let (ct, tag) = buf.split_at_mut(size);
                    k2.decrypt_in_place_detached(Nonce::from_slice(&nonce(0)), &aad, ct, (&*tag).into())
                        .unwrap();
                }),
                sealed,
            });
        }
        let n = (BYTES_PER_RUN / size).max(1) as u64;
        let mut rates = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; libs.len()];
        let mut buf = Vec::with_capacity(size + 16);
        for _ in 0..RUNS {
            for (lib, r) in libs.iter_mut().zip(rates.iter_mut()) {
                let (w, c) = time_op(size, n, |i| {
                    buf.clear();
                    buf.extend_from_slice(&payload);
                    (lib.seal)(i, &mut buf);
                });
                r[0].push(w);
                r[1].push(c);
                let (w, c) = time_op(size, n, |i| {
                    buf.clear();
                    buf.extend_from_slice(&lib.sealed);
                    (lib.open)(i, &mut buf);
                });
                r[2].push(w);
                r[3].push(c);
            }
        }
        for (lib, r) in libs.iter().zip(rates) {
            let [a, b, c, d] = r.map(median);
            println!("{:<10} {size:>6} | {a:>10.0} {b:>10.0} | {c:>10.0} {d:>10.0}", lib.name);
        }
    }
}
