//! seal: AES-256-GCM sealing of event payloads, bound to their events.
//!
//! - [`aead`]: the cipher (aws-lc's AES-GCM, picked by measurement) one message at a
//!   time or in batches over one buffer plus offsets, planned then written in place.
//! - [`aad`]: the canonical associated data that binds a seal to its event.
//! - [`nonce`]: random per-instance prefix + counter, with a persisted high-water mark.
//! - [`keyring`]: key ids, rotation, retirement, destruction.
//! - [`keyfile`]: the key file's format, check values and MACs (damage is refused).
//! - [`frame`]: the sealed frame (docs/FORMAT.md), and its never-panicking decoder.
//! - [`frames`]: batches of frames sealed or opened straight into one output buffer.
//! - [`wrap`]: a data key wrapped for one recipient (X25519 + HKDF-SHA256 + AES-GCM).
//! - [`e2e`]: end-to-end frames sealed under a producer's data key.

pub mod aad;
pub mod aead;
pub mod e2e;
pub mod frame;
pub mod frames;
pub mod keyfile;
pub mod keyring;
pub mod nonce;
pub mod wrap;

pub use aad::{AadFields, OwnedAadFields};
pub use aead::{AeadKey, BatchJob};
pub use frame::{Frame, Mode, Recipient};
pub use keyring::{KeyInfo, KeyRing, KeyState, RingOptions};

/// Whether `text` shows `key` the way a careless `Debug` or `Display` would print
/// bytes: hex in either case, or Rust's decimal list. Tests run it over reprs.
#[cfg(test)]
pub(crate) fn shows_key(text: &str, key: &[u8]) -> bool {
    use std::fmt::Write as _;
    let head = &key[..key.len().min(8)];
    let hex = head.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let decimal = format!("{head:?}");
    text.to_lowercase().contains(&hex) || text.contains(decimal.trim_matches(['[', ']']))
}
