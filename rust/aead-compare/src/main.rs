//! Seals `n` payloads of each size in place with each implementation and prints the
//! median throughput (MB/s) over several runs. Same key, same AAD (the ~60-byte
//! canonical AAD sealbus uses), a fresh counter nonce per message.
use std::time::Instant;

const SIZES: [usize; 5] = [64, 256, 512, 1024, 16384];
const RUNS: usize = 7;

fn nonce(i: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&i.to_be_bytes());
    n
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(name: &str, size: usize, mut seal: impl FnMut(u64, &mut Vec<u8>)) {
    let total_bytes = 64 << 20;
    let n = (total_bytes / size).max(1) as u64;
    let mut buf = vec![0u8; size];
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for i in 0..n {
            buf.truncate(size);
            seal(i, &mut buf);
        }
        let dt = t.elapsed().as_secs_f64();
        rates.push((n as f64 * size as f64) / dt / 1e6);
    }
    println!("{name:<10} {size:>6} B  {:>9.0} MB/s  ({:.2} M msgs/s)", median(rates.clone()), median(rates) * 1e6 / size as f64 / 1e6);
}

fn main() {
    let key = [7u8; 32];
    let aad = [3u8; 60];
    for size in SIZES {
        {
            use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
            let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
            run("aws-lc-rs", size, |i, buf| {
                let tag = k
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(i)), Aad::from(&aad), buf)
                    .unwrap();
                buf.extend_from_slice(tag.as_ref());
            });
        }
        {
            use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
            let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
            run("ring", size, |i, buf| {
                let tag = k
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(i)), Aad::from(&aad), buf)
                    .unwrap();
                buf.extend_from_slice(tag.as_ref());
            });
        }
        {
            use aes_gcm::aead::{AeadInPlace, KeyInit};
            use aes_gcm::{Aes256Gcm, Nonce};
            let k = Aes256Gcm::new_from_slice(&key).unwrap();
            run("aes-gcm", size, |i, buf| {
                let tag = k.encrypt_in_place_detached(Nonce::from_slice(&nonce(i)), &aad, buf).unwrap();
                buf.extend_from_slice(&tag);
            });
        }
    }
}
