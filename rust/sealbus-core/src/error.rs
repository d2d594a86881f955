//! The one error type of the core. The binding maps every variant to a Python
//! exception in one place (`sealbus-py/src/error.rs`). Messages say what was wrong and
//! where, and never carry key bytes or plaintext.

use std::fmt;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a publish/subscribe action was, for policy refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Subscribe,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        })
    }
}

/// Exhaustive on purpose (no `#[non_exhaustive]`): the binding matches every variant
/// without a wildcard arm, so a new variant does not compile until it has a Python class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- envelope ----------------------------------------------------------------
    /// An event attribute or body is malformed.
    #[error("invalid event: {field}: {reason}")]
    InvalidEvent { field: String, reason: String },

    // ---- patterns ----------------------------------------------------------------
    /// An event pattern is not valid EventBridge syntax. `path` is the pattern key.
    #[error("invalid event pattern at {path}: {reason}")]
    Pattern { path: String, reason: String },

    // ---- schemas -----------------------------------------------------------------
    /// A schema document itself is not a valid JSON Schema.
    #[error("invalid schema for {event_type} v{version}: {reason}")]
    SchemaInvalid {
        event_type: String,
        version: u32,
        reason: String,
    },
    /// A new schema version breaks the configured compatibility mode.
    #[error("schema {event_type} v{version} is not {mode}-compatible: {reasons}")]
    SchemaIncompatible {
        event_type: String,
        version: u32,
        mode: String,
        reasons: String,
    },
    /// No schema is registered for the type (and schemaless types are not allowed),
    /// or the requested version does not exist.
    #[error("no schema registered for {event_type}{}", version.map(|v| format!(" v{v}")).unwrap_or_default())]
    SchemaNotFound {
        event_type: String,
        version: Option<u32>,
    },
    /// Event data does not fit its schema. `instance_path` is a JSON pointer into the
    /// data, `schema_path` into the schema.
    #[error("{event_type} v{version} validation failed at '{instance_path}': {reason} (schema {schema_path})")]
    Validation {
        event_type: String,
        version: u32,
        instance_path: String,
        schema_path: String,
        reason: String,
        /// Index of the offending event inside a batch.
        index: usize,
    },

    // ---- policy ------------------------------------------------------------------
    /// The principal may not perform `action` on `event_type` (default deny).
    #[error("policy denied: {principal} may not {action} {event_type}")]
    PolicyDenied {
        principal: String,
        action: Action,
        event_type: String,
    },

    // ---- routing and queues ------------------------------------------------------
    /// A bounded queue is full and its policy refuses (or a block timed out).
    #[error("backpressure: subscription {subscription} is full ({pending} pending)")]
    Backpressure {
        subscription: String,
        pending: usize,
        /// How many events of the batch were accepted before the refusal.
        accepted: usize,
    },
    /// An event or a whole publish is larger than the router's limit (`limit_name`:
    /// `max_event_bytes` or `max_batch_bytes`); `index` is the event's place in the
    /// batch (None for the batch's total).
    #[error("too large: {} is {size} bytes, over {limit_name} = {limit}",
            index.map_or_else(|| "the batch".to_owned(), |i| format!("event {i} of the batch")))]
    TooLarge {
        limit_name: &'static str,
        size: u64,
        limit: u64,
        index: Option<usize>,
    },
    /// The named subscription, message or consumer does not exist (any more).
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The router or subscription has been closed.
    #[error("closed: {what}")]
    Closed { what: String },
    /// A caller-supplied argument is out of range or inconsistent.
    #[error("invalid argument: {name}: {reason}")]
    InvalidArgument { name: String, reason: String },

    // ---- sealing -----------------------------------------------------------------
    /// Sealing could not be done (bad key length, nonce space exhausted, ...).
    #[error("seal error: {reason}")]
    Seal { reason: String },
    /// A seal failed to open: wrong key, tampered ciphertext, tag or associated data.
    #[error("integrity check failed: {reason}")]
    Integrity { reason: String },
    /// The key was destroyed (crypto-shredded); data sealed under it is gone.
    #[error("key {key_id} was destroyed; data sealed under it can no longer be opened")]
    KeyDestroyed { key_id: String },
    /// No key with this id in the ring.
    #[error("unknown key id {key_id}")]
    KeyNotFound { key_id: String },
    /// A key file is unreadable, damaged or edited: refused whole at load, naming the
    /// file and, where one entry is to blame, its key id (never key bytes).
    #[error("key file {path}{}: {reason}", key_id.as_ref().map(|k| format!(", key {k}")).unwrap_or_default())]
    KeyFile {
        path: String,
        key_id: Option<String>,
        reason: String,
    },
    /// A sealed frame is malformed (truncated, bad version, bad lengths).
    #[error("malformed sealed frame at byte {offset}: {reason}")]
    Frame { offset: usize, reason: String },

    // ---- bridge ------------------------------------------------------------------
    /// A bridge message is malformed (`reason`: what, in a word; `offset`: the byte).
    #[error("wire error: {detail}")]
    Wire {
        reason: &'static str,
        offset: usize,
        detail: String,
    },
    /// A bridge message is not signed by the router it names, or that router is not
    /// trusted (`reason`: "untrusted" or "bad signature").
    #[error("signature refused: {detail}")]
    SignatureRefused {
        router: String,
        reason: &'static str,
        detail: String,
    },

    // ---- durable log -------------------------------------------------------------
    /// A record in the middle of the log is corrupt. Never skipped silently.
    #[error("log corrupted in segment {segment} at offset {offset}: {reason}")]
    LogCorrupted {
        segment: String,
        offset: u64,
        reason: String,
    },
    /// An I/O error in the log. The writer is stopped (fail-stop) until reopened.
    #[error("log I/O error during {op} on {path}: {source}")]
    LogIo {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A blocking call gave up because its caller asked it to (Ctrl-C in Python).
    #[error("interrupted during {during}")]
    Interrupted { during: &'static str },
    /// Another open log (in this process or another) holds the folder's writer lock.
    #[error("log folder {path} is in use by another open log{}; one writer at a time",
            holder.map(|p| format!(" (process {p})")).unwrap_or_default())]
    LogLocked { path: String, holder: Option<u32> },
    /// The log writer stopped after an earlier I/O error; reopen the router.
    #[error("log writer stopped after an earlier failure ({reason}); reopen to recover")]
    LogFailed { reason: String },
}
