//! The registry: versions of each event type's schema, each compiled once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;

use super::compat;
use super::validate::CompiledSchema;
use super::Compatibility;
use crate::{Error, Result};

/// Versioned schemas per event type. `Send + Sync`; every method takes `&self` (the
/// state sits behind one `RwLock`, taken for reading on the validation path only long
/// enough to clone an `Arc`).
#[derive(Default)]
pub struct SchemaRegistry {
    types: RwLock<HashMap<String, BTreeMap<u32, Arc<CompiledSchema>>>>,
    allow_schemaless: AtomicBool,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("types", &self.types())
            .finish_non_exhaustive()
    }
}

impl SchemaRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Let [`Self::validate`] pass events of types that have no schema at all (it
    /// returns version 0 for them). Off by default: an unknown type is refused.
    pub fn set_allow_schemaless(&self, allow: bool) {
        self.allow_schemaless.store(allow, Ordering::Relaxed);
    }

    pub fn allows_schemaless(&self) -> bool {
        self.allow_schemaless.load(Ordering::Relaxed)
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<u32, Arc<CompiledSchema>>>> {
        // A panic while holding the lock cannot leave the map half-updated (every
        // write is one `insert`), so a poisoned lock is still consistent.
        self.types.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register a new version of `event_type`'s schema and return its number.
    ///
    /// - `version`: `None` takes the next number (1 for a new type). An explicit one must
    ///   be above every registered version; versions are immutable.
    /// - Registering a schema equal to the latest one again is a no-op that returns the
    ///   latest version (safe retries), as Confluent does.
    /// - The schema must compile ([`Error::SchemaInvalid`]) and be `compat`-compatible with
    ///   the latest version ([`Error::SchemaIncompatible`], reasons naming schema locations).
    pub fn register(
        &self,
        event_type: &str,
        schema: &Value,
        version: Option<u32>,
        compat: Compatibility,
    ) -> Result<u32> {
        if event_type.is_empty() {
            return Err(Error::InvalidArgument {
                name: "event_type".into(),
                reason: "must not be empty".into(),
            });
        }
        if version == Some(0) {
            return Err(Error::InvalidArgument {
                name: "version".into(),
                reason: "versions start at 1".into(),
            });
        }
        // Compile outside the lock: it is the slow part, and a failure needs no state.
        let provisional = version.unwrap_or(1);
        let compiled = CompiledSchema::compile(event_type, provisional, schema)?;

        let mut types = self.types.write().unwrap_or_else(PoisonError::into_inner);
        let versions = types.get(event_type);
        let latest = versions
            .and_then(|v| v.last_key_value())
            .map(|(k, v)| (*k, Arc::clone(v)));
        if let Some((latest_version, latest_schema)) = &latest {
            if latest_schema.schema() == schema && version.is_none_or(|v| v == *latest_version) {
                return Ok(*latest_version);
            }
        }
        let number = match (version, &latest) {
            (Some(v), Some((l, _))) if v <= *l => {
                return Err(Error::InvalidArgument {
                    name: "version".into(),
                    reason: format!(
                        "{event_type} already has version {l}; a new version must be above it"
                    ),
                });
            }
            (Some(v), _) => v,
            (None, Some((l, _))) => l.checked_add(1).ok_or_else(|| Error::InvalidArgument {
                name: "version".into(),
                reason: "version numbers exhausted".into(),
            })?,
            (None, None) => 1,
        };
        if let Some((_, latest_schema)) = &latest {
            let reasons = compat::check(latest_schema.schema(), schema, compat);
            if !reasons.is_empty() {
                return Err(Error::SchemaIncompatible {
                    event_type: event_type.to_owned(),
                    version: number,
                    mode: compat.to_string(),
                    reasons: reasons.join("; "),
                });
            }
        }
        let compiled = if number == provisional {
            compiled
        } else {
            compiled.renumbered(number)
        };
        types
            .entry(event_type.to_owned())
            .or_default()
            .insert(number, Arc::new(compiled));
        Ok(number)
    }

    pub fn latest_version(&self, event_type: &str) -> Option<u32> {
        self.read()
            .get(event_type)
            .and_then(|v| v.last_key_value())
            .map(|(k, _)| *k)
    }

    pub fn versions(&self, event_type: &str) -> Vec<u32> {
        self.read()
            .get(event_type)
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, event_type: &str, version: u32) -> Option<Value> {
        self.read()
            .get(event_type)
            .and_then(|v| v.get(&version))
            .map(|c| c.schema().clone())
    }

    /// Registered event types, sorted.
    pub fn types(&self) -> Vec<String> {
        let mut t: Vec<String> = self.read().keys().cloned().collect();
        t.sort();
        t
    }

    /// The compiled schema for `version` (or the latest), for validating many events
    /// without touching the registry's lock again.
    pub fn validator(&self, event_type: &str, version: Option<u32>) -> Result<Arc<CompiledSchema>> {
        let types = self.read();
        let versions = types.get(event_type);
        let found = match version {
            Some(v) => versions.and_then(|m| m.get(&v)),
            None => versions.and_then(|m| m.last_key_value()).map(|(_, c)| c),
        };
        found.cloned().ok_or_else(|| Error::SchemaNotFound {
            event_type: event_type.to_owned(),
            version,
        })
    }

    /// Validate `data` against `version` (or the latest) and return the version used.
    /// A type with no schema passes as version 0 only if schemaless types are allowed.
    pub fn validate(&self, event_type: &str, version: Option<u32>, data: &Value) -> Result<u32> {
        match self.validator(event_type, version) {
            Ok(compiled) => compiled.validate(data, 0).map(|()| compiled.version()),
            Err(Error::SchemaNotFound { version: None, .. })
                if self.allows_schemaless() && self.latest_version(event_type).is_none() =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}
