//! Amazon EventBridge event patterns: parsed and validated once ([`Pattern`]), then
//! compiled together into one index ([`PatternSet`]) that matches an event in time
//! that follows the event's size and its number of matches, not the number of
//! patterns. See `docs/PATTERNS.md` for the behaviours followed.
//!
//! - `parse`: pattern JSON -> validated branches (disjunctive normal form).
//! - `value`: number, IP, ignore-case and wildcard semantics.
//! - `flatten`: event JSON -> values at the paths patterns use.
//! - `compile`: all patterns -> one interned, indexed structure.
//! - `matcher`: one event through that structure.

mod compile;
mod flatten;
mod ignore_case;
mod matcher;
mod parse;
mod value;
mod wildcard_complexity;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::OnceLock;

use serde_json::Value;

use crate::{Error, Result};

/// A parsed, validated event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    branches: Vec<parse::Branch>,
    top_level: Vec<String>,
}

impl Pattern {
    /// Parse pattern JSON text. Invalid JSON or an invalid pattern is `Error::Pattern`.
    /// Keys are read in document order, which decides when a path is given twice
    /// (the later one wins, as in EventBridge).
    pub fn parse_json(text: &str) -> Result<Pattern> {
        let v: parse::Node = serde_json::from_str(text).map_err(|e| Error::Pattern {
            path: "<root>".to_owned(),
            reason: format!("not valid JSON: {e}"),
        })?;
        Self::from_node(&v)
    }

    /// Build from an already parsed JSON value. A `serde_json::Map` keeps its keys
    /// sorted, not in document order: where a path is given twice, the later key in
    /// that order wins (use `parse_json` to keep the document's order).
    pub fn from_value(v: &Value) -> Result<Pattern> {
        Self::from_node(&parse::Node::of_value(v))
    }

    fn from_node(v: &parse::Node) -> Result<Pattern> {
        let branches = parse::parse_pattern(v)?;
        let mut top_level: Vec<String> = branches
            .iter()
            .flat_map(|b| {
                b.fields
                    .iter()
                    .filter_map(|(p, _)| p.first().map(std::string::ToString::to_string))
            })
            .collect();
        top_level.sort();
        top_level.dedup();
        Ok(Pattern {
            branches,
            top_level,
        })
    }

    /// Top-level event keys the pattern constrains (through `$or` too), sorted.
    pub fn top_level_keys(&self) -> Vec<String> {
        self.top_level.clone()
    }

    /// The same pattern seen from inside `key`, if every condition lies under it:
    /// `{"data": {"total": [..]}}` under `"data"` is `{"total": [..]}`. Matching it
    /// against an object `D` decides exactly what matching the original decides for
    /// any event whose `key` is `D` (the rest of the event is never consulted).
    #[must_use]
    pub fn under(&self, key: &str) -> Option<Pattern> {
        let inside = |p: &parse::Path| p.len() >= 2 && &*p[0] == key;
        if !self
            .branches
            .iter()
            .all(|b| b.fields.iter().all(|(p, _)| inside(p)))
        {
            return None;
        }
        let branches: Vec<parse::Branch> = self
            .branches
            .iter()
            .map(|b| parse::Branch {
                fields: b
                    .fields
                    .iter()
                    .map(|(p, slot)| (p[1..].to_vec(), slot.clone()))
                    .collect(),
            })
            .collect();
        let mut top_level: Vec<String> = branches
            .iter()
            .flat_map(|b| b.fields.iter().map(|(p, _)| p[0].to_string()))
            .collect();
        top_level.sort();
        top_level.dedup();
        Some(Pattern {
            branches,
            top_level,
        })
    }
}

/// Many patterns under keys, matched together. Mutations invalidate the compiled
/// index; the next match rebuilds it once (subscribe-time cost, not match-time).
#[derive(Debug)]
pub struct PatternSet<K> {
    keys: Vec<K>,
    patterns: Vec<Pattern>,
    index: HashMap<K, usize>,
    compiled: OnceLock<compile::Compiled>,
}

impl<K: Clone + Eq + Hash> Default for PatternSet<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> PatternSet<K> {
    pub fn new() -> Self {
        PatternSet {
            keys: Vec::new(),
            patterns: Vec::new(),
            index: HashMap::new(),
            compiled: OnceLock::new(),
        }
    }

    /// Add `pattern` under `key`, replacing the key's previous pattern.
    pub fn insert(&mut self, key: K, pattern: Pattern) {
        self.compiled = OnceLock::new();
        if let Some(&i) = self.index.get(&key) {
            self.patterns[i] = pattern;
        } else {
            self.index.insert(key.clone(), self.keys.len());
            self.keys.push(key);
            self.patterns.push(pattern);
        }
    }

    /// Remove `key`; `false` if it was not there.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(i) = self.index.remove(key) else {
            return false;
        };
        self.compiled = OnceLock::new();
        self.keys.swap_remove(i);
        self.patterns.swap_remove(i);
        if let Some(moved) = self.keys.get(i) {
            self.index.insert(moved.clone(), i);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    /// Keys in their dense index order (the order `matches_indices` refers to).
    pub fn keys(&self) -> &[K] {
        &self.keys
    }

    fn compiled(&self) -> &compile::Compiled {
        self.compiled.get_or_init(|| {
            let owners = self
                .patterns
                .iter()
                .enumerate()
                .map(|(i, p)| (u32::try_from(i).unwrap_or(u32::MAX), p.branches.as_slice()));
            compile::compile(owners, self.keys.len())
        })
    }

    /// Build the index now rather than on the first match.
    pub fn prepare(&self) {
        let _ = self.compiled();
    }

    /// Keys whose pattern matches the JSON event (an object). Bad JSON or a non-object
    /// is `Error::InvalidEvent`.
    pub fn matches_json(&self, event_json: &[u8], out: &mut Vec<K>) -> Result<()> {
        self.keys_with(flatten::flatten_json, event_json, out)
    }

    /// Like `matches_json`, giving dense key indexes (see `keys`), sorted.
    pub fn matches_indices(&self, event_json: &[u8], out: &mut Vec<u32>) -> Result<()> {
        self.indices_with(flatten::flatten_json, event_json, out)
    }

    /// `matches_json` for event JSON the caller has already validated (the router's
    /// own CloudEvents JSON): parts no pattern looks into are skipped without being
    /// validated. On valid JSON the matches (and any refusal) are those of
    /// `matches_json`; on invalid JSON they are unspecified (never a panic), so user
    /// input goes through `matches_json`.
    pub fn matches_json_trusted(&self, event_json: &[u8], out: &mut Vec<K>) -> Result<()> {
        self.keys_with(flatten::flatten_json_trusted, event_json, out)
    }

    /// `matches_indices` for already validated JSON (see `matches_json_trusted`).
    pub fn matches_indices_trusted(&self, event_json: &[u8], out: &mut Vec<u32>) -> Result<()> {
        self.indices_with(flatten::flatten_json_trusted, event_json, out)
    }

    /// Flatten with `scan` (validating or trusted), then match. Generic, so each
    /// scan is inlined into its own copy.
    fn indices_with(
        &self,
        scan: impl Fn(&flatten::PathTrie, &[u8], &mut flatten::Flat) -> Result<()>,
        event_json: &[u8],
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let c = self.compiled();
        matcher::with_scratch(c, |s| {
            scan(&c.trie, event_json, &mut s.flat)?;
            matcher::run(c, s, event_json, out);
            Ok(())
        })
    }

    /// `indices_with`, then the keys of the indexes: the indexes go through the
    /// scratch's own buffer, so a match costs no allocation of its own (the router
    /// calls this once per event).
    fn keys_with(
        &self,
        scan: impl Fn(&flatten::PathTrie, &[u8], &mut flatten::Flat) -> Result<()>,
        event_json: &[u8],
        out: &mut Vec<K>,
    ) -> Result<()> {
        let c = self.compiled();
        matcher::with_scratch(c, |s| {
            scan(&c.trie, event_json, &mut s.flat)?;
            let mut idx = std::mem::take(&mut s.idx);
            idx.clear();
            matcher::run(c, s, event_json, &mut idx);
            out.extend(idx.iter().map(|&i| self.keys[i as usize].clone()));
            s.idx = idx;
            Ok(())
        })
    }

    /// Keys whose pattern matches a parsed event. A non-object matches nothing.
    pub fn matches_value(&self, event: &Value, out: &mut Vec<K>) {
        let Value::Object(m) = event else {
            return;
        };
        let c = self.compiled();
        let mut idx = Vec::new();
        matcher::with_scratch(c, |s| {
            flatten::flatten_value(&c.trie, m, &mut s.flat);
            matcher::run(c, s, &[], &mut idx);
        });
        out.extend(idx.into_iter().map(|i| self.keys[i as usize].clone()));
    }

    /// Match many events held in one buffer: event `i` is `buf[offsets[i]..offsets[i+1]]`
    /// (so `offsets` has one more entry than there are events). Returns the matches as
    /// parallel (event index, key index) lists, in event order. A bad event stops the
    /// batch with `Error::InvalidEvent` naming its index.
    pub fn matches_batch(&self, buf: &[u8], offsets: &[usize]) -> Result<(Vec<u32>, Vec<u32>)> {
        let c = self.compiled();
        let mut events = Vec::new();
        let mut keys = Vec::new();
        matcher::with_scratch(c, |s| {
            for (i, w) in offsets.windows(2).enumerate() {
                let (a, b) = (w[0], w[1]);
                let Some(bytes) = buf.get(a..b) else {
                    return Err(Error::InvalidArgument {
                        name: "offsets".to_owned(),
                        reason: format!(
                            "event {i} spans {a}..{b}, outside the {}-byte buffer",
                            buf.len()
                        ),
                    });
                };
                flatten::flatten_json(&c.trie, bytes, &mut s.flat).map_err(|e| match e {
                    Error::InvalidEvent { reason, .. } => Error::InvalidEvent {
                        field: format!("events[{i}]"),
                        reason,
                    },
                    other => other,
                })?;
                if i == PROJECT_AFTER && offsets.len() > 4 * PROJECT_AFTER {
                    reserve_projected(&mut keys, &mut events, offsets.len() - 1);
                }
                let before = keys.len();
                matcher::run(c, s, bytes, &mut keys);
                let ev = u32::try_from(i).unwrap_or(u32::MAX);
                events.extend(std::iter::repeat_n(ev, keys.len() - before));
            }
            Ok(())
        })?;
        Ok((events, keys))
    }
}

/// Events of a batch matched before its output is sized from their matches.
const PROJECT_AFTER: usize = 1024;

/// At most this many entries are reserved ahead (64 MiB a list): past it the lists
/// grow by doubling as usual.
const PROJECT_MAX: usize = 1 << 24;

/// Reserve room for a batch's matches, projected from its first `PROJECT_AFTER`
/// events (plus an eighth). Grown by doubling instead, a list of 3 million matches
/// was copied and its pages faulted in about twice (~60 ns an event at 10,000
/// subscriptions). Only address space is reserved: pages never written cost nothing,
/// so a projection that is too high costs little, and a failed reservation is ignored
/// (the lists then grow as before).
fn reserve_projected(keys: &mut Vec<u32>, events: &mut Vec<u32>, n_events: usize) {
    let projected = (keys.len() / PROJECT_AFTER + 1)
        .saturating_mul(n_events)
        .saturating_add(n_events / 8 * (keys.len() / PROJECT_AFTER + 1))
        .min(PROJECT_MAX);
    let extra = projected.saturating_sub(keys.len());
    if extra > 0 && keys.try_reserve_exact(extra).is_ok() {
        let _ = events.try_reserve_exact(extra);
    }
}

/// Does `pattern` match the JSON event? Like EventBridge's TestEventPattern, for any
/// JSON object, not only an envelope.
pub fn test_event_pattern(pattern: &Pattern, event_json: &[u8]) -> Result<bool> {
    let mut set = PatternSet::new();
    set.insert(0u8, pattern.clone());
    let mut out = Vec::new();
    set.matches_json(event_json, &mut out)?;
    Ok(!out.is_empty())
}

#[cfg(test)]
mod differential;
#[cfg(test)]
mod flatten_reference;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_aws;
#[cfg(test)]
mod under_tests {
    use super::{Pattern, PatternSet};

    fn matches(p: &Pattern, event: &str) -> bool {
        let mut set = PatternSet::new();
        set.insert(0u8, p.clone());
        let mut out = Vec::new();
        set.matches_json_trusted(event.as_bytes(), &mut out)
            .unwrap();
        !out.is_empty()
    }

    #[test]
    fn a_pattern_under_a_key_decides_as_the_whole_does() {
        let patterns = [
            r#"{"data": {"total": [{"numeric": [">=", 100]}]}}"#,
            r#"{"data": {"currency": ["USD", "EUR"], "items": {"sku": [{"prefix": "AB"}]}}}"#,
            r#"{"data": {"coupon": [{"exists": false}]}}"#,
            r#"{"data": {"$or": [{"a": [1]}, {"b": {"c": [{"anything-but": "x"}]}}]}}"#,
            r#"{"data": {"items": {"n": [1], "m": [2]}}}"#,
        ];
        let datas = [
            r#"{"total": 150, "currency": "USD", "items": [{"sku": "ABC"}]}"#,
            r#"{"total": 99.5, "currency": "GBP", "coupon": "X", "items": []}"#,
            r#"{"a": 1, "b": {"c": "y"}}"#,
            r#"{"b": {"c": "x"}, "items": [{"n": 1, "m": 3}, {"n": 2, "m": 2}]}"#,
            r#"{"items": [{"n": 1, "m": 2}], "total": 1e2}"#,
            r"{}",
        ];
        for text in patterns {
            let whole = Pattern::parse_json(text).unwrap();
            let inner = whole.under("data").unwrap();
            for d in datas {
                let event = format!(r#"{{"id":"1","source":"s","type":"t","data":{d}}}"#);
                assert_eq!(matches(&inner, d), matches(&whole, &event), "{text} on {d}");
            }
        }
    }

    #[test]
    fn only_patterns_entirely_under_the_key_have_a_view_from_inside() {
        for text in [
            r#"{"source": ["s"], "data": {"total": [1]}}"#,
            r#"{"data": [{"exists": true}]}"#,
            r#"{"$or": [{"data": {"a": [1]}}, {"type": ["t"]}]}"#,
        ] {
            assert!(
                Pattern::parse_json(text).unwrap().under("data").is_none(),
                "{text}"
            );
        }
        let or = Pattern::parse_json(r#"{"$or": [{"data": {"a": [1]}}, {"data": {"b": [2]}}]}"#);
        assert_eq!(
            or.unwrap().under("data").unwrap().top_level_keys(),
            ["a", "b"]
        );
    }
}
