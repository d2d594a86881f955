//! sealbus-core: the pure-Rust heart of sealbus. No Python here; the `sealbus-py`
//! crate binds it. Each module has one job:
//!
//! - [`envelope`]: immutable CloudEvents 1.0 events.
//! - [`pattern`]: Amazon EventBridge event patterns, compiled into one matcher.
//! - [`schema`]: versioned JSON Schema registry, compatibility checks, validation.
//! - [`policy`]: default-deny publish/subscribe permissions per principal.
//! - [`route`]: subscriptions, bounded queues, delivery, backpressure.
//! - [`seal`]: AES-256-GCM batch sealing, key ring, sealed frames.
//! - [`log`]: the durable segment log.
//! - [`identity`]: a router's Ed25519 key pair, signing and checking signatures.
//! - [`audit`]: the hash-chained audit trail with signed Merkle checkpoints.
//! - [`alert`]: rules over the router's own decisions that raise alerts.
//! - [`pool`]: the worker pool parallel work runs on, built on first use.
//! - [`wire`]: the bridge's message between routers, sealed and signed.

pub mod alert;
pub mod audit;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod log;
// Compiled for the crate's own tests too, so its proptests run in the normal suite.
#[cfg(any(test, feature = "oracle"))]
pub mod oracle;
pub mod pattern;
pub mod policy;
pub mod pool;
pub mod process;
pub mod route;
pub mod schema;
pub mod seal;
pub mod seqmap;
pub mod wire;

pub use error::{Error, Result};
