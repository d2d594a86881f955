//! 96-bit nonces that never repeat under one key.
//!
//! `nonce = prefix (8 bytes) || counter (4 bytes, big-endian)`.
//!
//! - The prefix is drawn at random each time a key is loaded into a process (a "key
//!   instance"), so two processes, or a process that lost its counter, collide only
//!   if 64 random bits do.
//! - The counter counts every seal made under the key. When the key is persisted,
//!   its high-water mark is written to the key file *before* the counters below it
//!   are used (reserved in chunks), and a restart continues above the mark: a crash
//!   skips unused counters, never reuses one.
//! - A key seals at most `max_seals` (default 2^31, well before the 2^32 that NIST
//!   SP 800-38D allows and the 32-bit counter holds); the ring then retires it and
//!   rotates to a fresh key automatically.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};
use crate::seal::aead::NONCE_LEN;

pub const PREFIX_LEN: usize = 8;
/// The counter field is 32 bits: no key may seal this many messages.
pub const COUNTER_SPACE: u64 = 1 << 32;
/// Default per-key seal budget: half the counter space.
pub const DEFAULT_MAX_SEALS: u64 = 1 << 31;
/// Counters reserved (and persisted) at a time for a file-backed key.
pub const DEFAULT_RESERVE_CHUNK: u64 = 1 << 16;

/// Fill `buf` from the operating system's CSPRNG.
pub fn random_fill(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Seal {
        reason: "the operating system's random generator failed".into(),
    })
}

/// The nonce sequence of one key instance.
#[derive(Debug)]
pub struct NonceSeq {
    prefix: [u8; PREFIX_LEN],
    next: u64,
    limit: u64,
}

impl NonceSeq {
    /// A fresh random prefix, counting from `start` (the persisted high-water mark, or
    /// 0) up to `limit` seals in total.
    pub fn new(start: u64, limit: u64) -> Result<Self> {
        let mut prefix = [0u8; PREFIX_LEN];
        random_fill(&mut prefix)?;
        Ok(Self {
            prefix,
            next: start,
            limit: limit.min(COUNTER_SPACE),
        })
    }

    /// Seals this key may still make.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.next)
    }

    /// The next counter that `take` would hand out.
    pub fn next(&self) -> u64 {
        self.next
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Claim `n` consecutive counters; returns the first, or `None` if the key's
    /// budget cannot cover them.
    pub fn take(&mut self, n: u64) -> Option<u64> {
        if n > self.remaining() {
            return None;
        }
        let first = self.next;
        self.next += n;
        Some(first)
    }

    /// The nonce for a counter handed out by `take`.
    pub fn nonce(&self, counter: u64) -> [u8; NONCE_LEN] {
        make_nonce(&self.prefix, counter)
    }

    pub fn prefix(&self) -> [u8; PREFIX_LEN] {
        self.prefix
    }
}

/// `prefix || u32be(counter)`; `counter` is below 2^32 by construction (`take`).
pub fn make_nonce(prefix: &[u8; PREFIX_LEN], counter: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    // Truncation is impossible: take() never hands out a counter >= limit <= 2^32.
    #[allow(clippy::cast_possible_truncation)]
    let c = counter as u32;
    n[PREFIX_LEN..].copy_from_slice(&c.to_be_bytes());
    n
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_consecutive_and_bounded() {
        let mut s = NonceSeq::new(10, 20).unwrap();
        assert_eq!(s.take(5), Some(10));
        assert_eq!(s.take(5), Some(15));
        assert_eq!(s.take(1), None);
        assert_eq!(&s.nonce(0x0102_0304)[8..], &[1, 2, 3, 4]);
        let t = NonceSeq::new(0, u64::MAX).unwrap();
        assert_eq!(t.limit(), COUNTER_SPACE);
        assert_ne!(
            t.prefix(),
            s.prefix(),
            "two instances drew the same 64-bit prefix"
        );
    }
}
