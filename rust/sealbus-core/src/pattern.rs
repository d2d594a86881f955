//! TEMPORARY scaffold with the agreed API so the router compiles while the real
//! EventBridge matcher is built on the `pattern` branch (which replaces this file).

use std::collections::HashMap;
use std::hash::Hash;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Pattern(serde_json::Value);

impl Pattern {
    pub fn parse_json(text: &str) -> Result<Pattern> {
        let v = serde_json::from_str(text).map_err(|e| Error::Pattern {
            path: String::new(),
            reason: e.to_string(),
        })?;
        Self::from_value(&v)
    }
    pub fn from_value(v: &serde_json::Value) -> Result<Pattern> {
        if !v.is_object() {
            return Err(Error::Pattern {
                path: String::new(),
                reason: "a pattern is a JSON object".into(),
            });
        }
        Ok(Pattern(v.clone()))
    }
    pub fn top_level_keys(&self) -> Vec<String> {
        self.0
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct PatternSet<K> {
    patterns: HashMap<K, Pattern>,
}

impl<K: Clone + Eq + Hash> Default for PatternSet<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> PatternSet<K> {
    pub fn new() -> Self {
        PatternSet {
            patterns: HashMap::new(),
        }
    }
    pub fn insert(&mut self, key: K, pattern: Pattern) {
        self.patterns.insert(key, pattern);
    }
    pub fn remove(&mut self, key: &K) -> bool {
        self.patterns.remove(key).is_some()
    }
    pub fn len(&self) -> usize {
        self.patterns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
    pub fn matches_json(&self, event_json: &[u8], out: &mut Vec<K>) -> Result<()> {
        let v: serde_json::Value =
            serde_json::from_slice(event_json).map_err(|e| Error::InvalidEvent {
                field: "event".into(),
                reason: e.to_string(),
            })?;
        self.matches_value(&v, out);
        Ok(())
    }
    pub fn matches_value(&self, _event: &serde_json::Value, out: &mut Vec<K>) {
        out.extend(self.patterns.keys().cloned());
    }
}
