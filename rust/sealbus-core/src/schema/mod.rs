//! Versioned JSON Schema registry: registration with compatibility checks, and
//! validation of every published event before it is stored or routed.
//!
//! - [`registry`]: [`SchemaRegistry`], the versions of each event type.
//! - [`compat`]: the structural compatibility check run when a version is registered.
//! - [`validate`]: [`CompiledSchema`], one compiled version; single events and batches.
//! - [`tape`]: a zero-copy JSON document for validating raw bytes without a `Value`.
//! - `fast`: a one-pass check of raw bytes for schemas in a common subset, in front of
//!   the crate (which still decides every case it is unsure of, and reports errors).
//!
//! Drafts 7 and 2020-12 are the supported dialects (declared with `$schema`; a schema
//! without one is read as 2020-12). Drafts 4, 6 and 2019-09 compile too.

pub mod compat;
mod fast;
pub mod registry;
pub mod tape;
pub mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use registry::SchemaRegistry;
pub use validate::CompiledSchema;

use crate::Error;

/// What a new version must keep working, in Confluent Schema Registry's terms. Checked
/// against the latest registered version (Confluent's default, non-transitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compatibility {
    /// No check.
    None,
    /// Consumers using the new schema can read data written with the old one: the
    /// new schema accepts everything the old one accepted.
    Backward,
    /// Consumers using the old schema can read data written with the new one: the
    /// old schema accepts everything the new one accepts.
    Forward,
    /// Both.
    Full,
}

impl Compatibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::None => "none",
            Compatibility::Backward => "backward",
            Compatibility::Forward => "forward",
            Compatibility::Full => "full",
        }
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compatibility {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Compatibility::None),
            "backward" => Ok(Compatibility::Backward),
            "forward" => Ok(Compatibility::Forward),
            "full" => Ok(Compatibility::Full),
            _ => Err(Error::InvalidArgument {
                name: "compatibility".into(),
                reason: format!("{s:?} is not one of none, backward, forward, full"),
            }),
        }
    }
}
