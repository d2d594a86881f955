//! seal: AES-256-GCM sealing of event payloads, bound to their events.
//!
//! - [`aead`]: the cipher (aws-lc's AES-GCM, picked by measurement) one message at a
//!   time or in batches over one buffer plus offsets, planned then written in place.
//! - [`aad`]: the canonical associated data that binds a seal to its event.
//! - [`nonce`]: random per-instance prefix + counter, with a persisted high-water mark.
//! - [`keyring`]: key ids, rotation, retirement, destruction, the key file.
//! - [`frame`]: the sealed frame (docs/FORMAT.md), and its never-panicking decoder.
//! - [`frames`]: batches of frames sealed or opened straight into one output buffer.
//! - [`wrap`]: a data key wrapped for one recipient (X25519 + HKDF-SHA256 + AES-GCM).
//! - [`e2e`]: end-to-end frames sealed under a producer's data key.

pub mod aad;
pub mod aead;
pub mod e2e;
pub mod frame;
pub mod frames;
pub mod keyring;
pub mod nonce;
pub mod wrap;

pub use aad::{AadFields, OwnedAadFields};
pub use aead::{AeadKey, BatchJob};
pub use frame::{Frame, Mode, Recipient};
pub use keyring::{KeyInfo, KeyRing, KeyState, RingOptions};
