//! Structural compatibility of two schema versions, in Confluent Schema Registry's
//! sense: **backward** = the new schema accepts everything the old one accepted,
//! **forward** = the old schema accepts everything the new one accepts, **full** =
//! both. Checked against the latest version only (Confluent's default,
//! non-transitive).
//!
//! Both directions reduce to one question, "does `wide` accept every instance that
//! `narrow` accepts?", answered by [`Checker::sub`]. The check is **sound, not
//! complete**: it only says "compatible" when it can show it, and otherwise refuses
//! with reasons that name the schema location (`#/properties/total`) and what changed.
//!
//! What is modelled: `type` (with `integer` inside `number`), `enum`/`const` (checked
//! value by value with the compiled validators, which is exact), numeric bounds
//! (`minimum`, `maximum`, `exclusive*`, `multipleOf`), `minLength`/`maxLength`,
//! `pattern` and `format` (must be unchanged), `required`, `properties` and
//! `additionalProperties` (open and closed content models), `min/maxProperties`,
//! `items`/`prefixItems`/`additionalItems` (draft 7 and 2020-12 forms), `min/maxItems`,
//! `uniqueItems`, `allOf`/`anyOf`/`oneOf`, and local `$ref` (`#/$defs/..`,
//! `#/definitions/..`, recursive ones included).
//!
//! Every other asserting keyword (`not`, `if`/`then`/`else`, `contains`,
//! `patternProperties`, `propertyNames`, `dependent*`, `unevaluated*`, `content*`) may
//! only appear in the wider schema if the narrower has the identical keyword at the
//! same place; adding or changing one is refused as "not analysed".

use std::collections::{BTreeSet, HashSet};

use jsonschema::{PatternOptions, ValidatorMap};
use serde_json::{Map, Value};

use super::validate::declared_draft;
use super::Compatibility;

/// Reasons `new` is not `mode`-compatible with `old` (empty: it is).
pub fn check(old: &Value, new: &Value, mode: Compatibility) -> Vec<String> {
    let mut reasons = Vec::new();
    if matches!(mode, Compatibility::Backward | Compatibility::Full) {
        // Backward: new ⊇ old.
        reasons.extend(Checker::new(new, old, true).run());
    }
    if matches!(mode, Compatibility::Forward | Compatibility::Full) {
        // Forward: old ⊇ new.
        reasons.extend(Checker::new(old, new, false).run());
    }
    reasons
}

/// Keywords that only annotate; they never change what validates.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "$defs",
    "definitions",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Asserting keywords this checker does not model: allowed in the wider schema only
/// when the narrower has exactly the same one at the same place.
const OPAQUE: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "contains",
    "minContains",
    "maxContains",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "$dynamicRef",
    "$recursiveRef",
    "$recursiveAnchor",
];

const TYPES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "string", "integer",
];

/// Deeper than this, the checker gives up (and refuses) rather than recurse further.
const MAX_DEPTH: usize = 64;

struct Side<'a> {
    root: &'a Value,
    is_2020: bool,
    map: Option<ValidatorMap>,
    name: &'static str,
}

impl<'a> Side<'a> {
    fn new(root: &'a Value, name: &'static str) -> Self {
        let draft = declared_draft(root).unwrap_or("2020-12");
        let map = jsonschema::options()
            .should_validate_formats(true)
            .with_pattern_options(PatternOptions::regex())
            .build_map(root)
            .ok();
        Side {
            root,
            is_2020: matches!(draft, "2020-12" | "2019-09"),
            map,
            name,
        }
    }

    /// Whether the subschema at `pointer` accepts `value`; `None` when that location
    /// cannot be evaluated on its own.
    fn accepts(&self, pointer: &str, value: &Value) -> Option<bool> {
        self.map.as_ref()?.get(pointer).map(|v| v.is_valid(value))
    }
}

struct Checker<'a> {
    wide: Side<'a>,
    narrow: Side<'a>,
    /// Whether `wide` is the schema being registered (so locations name its places).
    new_is_wide: bool,
    reasons: Vec<String>,
    /// Pairs of locations already under comparison (recursive `$ref`s): assumed to hold.
    assumed: HashSet<(String, String)>,
    depth: usize,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn child(pointer: &str, parts: &[&str]) -> String {
    let mut p = pointer.to_owned();
    for part in parts {
        p.push('/');
        p.push_str(&escape(part));
    }
    p
}

fn contains_ref(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k == "$ref" || k == "$dynamicRef" || contains_ref(v)),
        Value::Array(a) => a.iter().any(contains_ref),
        _ => false,
    }
}

/// `type` as a set; `None` when absent (any type).
fn type_set(schema: &Map<String, Value>) -> Result<Option<BTreeSet<&'static str>>, String> {
    let Some(t) = schema.get("type") else {
        return Ok(None);
    };
    let names: Vec<&Value> = match t {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut set = BTreeSet::new();
    for n in names {
        let found = n.as_str().and_then(|s| TYPES.iter().find(|t| **t == s));
        match found {
            Some(t) => {
                set.insert(*t);
            }
            None => return Err(format!("unknown type {n}")),
        }
    }
    Ok(Some(set))
}

/// The JSON type name of a value (`integer` for integral numbers).
fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n)
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) =>
        {
            "integer"
        }
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A lower or upper numeric bound: value and whether it is exclusive.
#[derive(Clone, Copy, Debug)]
struct Bound {
    value: f64,
    exclusive: bool,
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn bound(
    schema: &Map<String, Value>,
    inclusive_kw: &str,
    exclusive_kw: &str,
    lower: bool,
) -> Option<Bound> {
    let inclusive = num(schema.get(inclusive_kw)).map(|value| Bound {
        value,
        exclusive: false,
    });
    let exclusive = match schema.get(exclusive_kw) {
        // Draft 4: a boolean that makes the inclusive keyword exclusive.
        Some(Value::Bool(true)) => inclusive.map(|b| Bound {
            value: b.value,
            exclusive: true,
        }),
        other => num(other).map(|value| Bound {
            value,
            exclusive: true,
        }),
    };
    match (inclusive, exclusive) {
        (Some(a), Some(b)) => {
            // The tighter of the two.
            let a_tighter = if lower {
                a.value > b.value
            } else {
                a.value < b.value
            };
            Some(if a_tighter { a } else { b })
        }
        (a, b) => a.or(b),
    }
}

/// Whether bound `n` (the narrow side's) is at least as tight as `w` (the wide side's).
/// Exact float comparison on purpose: both are literals from the schemas.
#[allow(clippy::float_cmp)]
fn within(w: Option<Bound>, n: Option<Bound>, lower: bool) -> bool {
    match (w, n) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(w), Some(n)) => {
            if n.value == w.value {
                n.exclusive || !w.exclusive
            } else if lower {
                n.value > w.value
            } else {
                n.value < w.value
            }
        }
    }
}

fn show(b: Option<Bound>, lower: bool) -> String {
    match b {
        None => "none".into(),
        Some(b) => format!(
            "{}{}",
            if lower {
                if b.exclusive {
                    ">"
                } else {
                    ">="
                }
            } else if b.exclusive {
                "<"
            } else {
                "<="
            },
            b.value
        ),
    }
}

// Negative and fractional values were filtered out; huge ones saturate, which only
// makes the bound looser on the side that has it.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn uint(schema: &Map<String, Value>, kw: &str) -> Option<u64> {
    schema.get(kw).and_then(|v| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
    })
}

/// Items as a prefix of positional schemas and the schema for the rest.
fn items_shape(
    schema: &Map<String, Value>,
    is_2020: bool,
    ptr: &str,
) -> (Vec<(Value, String)>, (Value, String)) {
    let yes = (Value::Bool(true), ptr.to_owned());
    if is_2020 {
        let prefix = match schema.get("prefixItems") {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), child(ptr, &["prefixItems", &i.to_string()])))
                .collect(),
            _ => Vec::new(),
        };
        let rest = schema
            .get("items")
            .map_or(yes, |s| (s.clone(), child(ptr, &["items"])));
        (prefix, rest)
    } else {
        match schema.get("items") {
            Some(Value::Array(a)) => {
                let prefix = a
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.clone(), child(ptr, &["items", &i.to_string()])))
                    .collect();
                let rest = schema
                    .get("additionalItems")
                    .map_or(yes, |s| (s.clone(), child(ptr, &["additionalItems"])));
                (prefix, rest)
            }
            Some(s) => (Vec::new(), (s.clone(), child(ptr, &["items"]))),
            None => (Vec::new(), yes),
        }
    }
}

impl<'a> Checker<'a> {
    fn new(wide: &'a Value, narrow: &'a Value, new_is_wide: bool) -> Self {
        let (wn, nn) = if new_is_wide {
            ("the new schema", "the old schema")
        } else {
            ("the old schema", "the new schema")
        };
        Checker {
            wide: Side::new(wide, wn),
            narrow: Side::new(narrow, nn),
            new_is_wide,
            reasons: Vec::new(),
            assumed: HashSet::new(),
            depth: 0,
        }
    }

    fn run(mut self) -> Vec<String> {
        let (w, n) = (self.wide.root, self.narrow.root);
        self.sub(w, "#", n, "#");
        self.reasons
    }

    #[allow(clippy::needless_pass_by_value)] // every caller builds the reason with format!
    fn refuse(&mut self, wp: &str, np: &str, why: String) {
        let at = if self.new_is_wide { wp } else { np };
        self.reasons.push(format!("at {at}: {why}"));
    }

    /// Run `f` on a scratch reason list; true when it found no reason.
    fn trial(&mut self, f: impl FnOnce(&mut Self)) -> bool {
        let saved = std::mem::take(&mut self.reasons);
        f(self);
        let ok = self.reasons.is_empty();
        self.reasons = saved;
        ok
    }

    /// Follow `$ref` to a local target. 2020-12 keeps sibling keywords (an implicit
    /// `allOf`); older drafts ignore them.
    fn resolve(
        &mut self,
        side_is_wide: bool,
        schema: &Value,
        ptr: &str,
    ) -> Result<(Value, String), String> {
        let side = if side_is_wide {
            &self.wide
        } else {
            &self.narrow
        };
        let mut current = schema.clone();
        let mut at = ptr.to_owned();
        for _ in 0..32 {
            let Some(obj) = current.as_object() else {
                return Ok((current, at));
            };
            let Some(reference) = obj.get("$ref") else {
                return Ok((current, at));
            };
            let Some(r) = reference.as_str() else {
                return Err("$ref is not a string".into());
            };
            let Some(fragment) = r.strip_prefix('#') else {
                return Err(format!(
                    "$ref {r:?} is not local to the schema; not analysed"
                ));
            };
            if fragment.contains('%') || (!fragment.is_empty() && !fragment.starts_with('/')) {
                return Err(format!("$ref {r:?} (anchors, escapes) is not analysed"));
            }
            let Some(target) = side.root.pointer(fragment) else {
                return Err(format!("$ref {r:?} does not resolve"));
            };
            let siblings: Map<String, Value> = obj
                .iter()
                .filter(|(k, _)| k.as_str() != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if side.is_2020 && !siblings.is_empty() {
                let mut merged = siblings;
                let mut all = vec![target.clone()];
                if let Some(Value::Array(existing)) = merged.remove("allOf") {
                    all.extend(existing);
                }
                merged.insert("allOf".into(), Value::Array(all));
                return Ok((Value::Object(merged), at));
            }
            at = format!("#{fragment}");
            current = target.clone();
        }
        Err("$ref chain longer than 32 links".into())
    }

    /// Does `w` (wide side, at `wp`) accept everything `n` (narrow side, at `np`) does?
    #[allow(clippy::too_many_lines)]
    fn sub(&mut self, w: &Value, wp: &str, n: &Value, np: &str) {
        if w == n && !contains_ref(w) {
            return;
        }
        if self.depth >= MAX_DEPTH {
            self.refuse(wp, np, "schemas nest too deeply to analyse".into());
            return;
        }
        let (w, wp) = match self.resolve(true, w, wp) {
            Ok(r) => r,
            Err(e) => return self.refuse(wp, np, e),
        };
        let (n, np) = match self.resolve(false, n, np) {
            Ok(r) => r,
            Err(e) => return self.refuse(&wp, np, e),
        };
        let (wp, np) = (wp.as_str(), np.as_str());
        if !self.assumed.insert((wp.to_owned(), np.to_owned())) {
            // Already comparing these two places further up (a recursive schema).
            return;
        }
        self.depth += 1;
        self.sub_resolved(&w, wp, &n, np);
        self.depth -= 1;
        self.assumed.remove(&(wp.to_owned(), np.to_owned()));
    }

    #[allow(clippy::too_many_lines)]
    fn sub_resolved(&mut self, w: &Value, wp: &str, n: &Value, np: &str) {
        let (wn, nn) = (self.wide.name, self.narrow.name);
        let empty = Map::new();
        let wo = match w {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                if n != &Value::Bool(false) {
                    self.refuse(
                        wp,
                        np,
                        format!("{wn} accepts nothing here (false), {nn} accepts values"),
                    );
                }
                return;
            }
            Value::Object(o) => o,
            _ => return self.refuse(wp, np, format!("{wn} is not a schema here")),
        };
        let no = match n {
            Value::Bool(false) => return,
            Value::Bool(true) => &empty,
            Value::Object(o) => o,
            _ => return self.refuse(wp, np, format!("{nn} is not a schema here")),
        };

        // ---- combinators -------------------------------------------------------
        if let Some(Value::Array(all)) = wo.get("allOf") {
            for (i, wi) in all.iter().enumerate() {
                self.sub(wi, &child(wp, &["allOf", &i.to_string()]), n, np);
            }
        }
        for kw in ["anyOf", "oneOf"] {
            let Some(Value::Array(branches)) = wo.get(kw) else {
                continue;
            };
            if no.get(kw) == wo.get(kw) && !contains_ref(&wo[kw]) {
                continue; // the narrow side has the very same constraint
            }
            if kw == "oneOf" {
                self.refuse(wp, np, format!("{wn} has a oneOf that {nn} lacks or has changed; oneOf changes are not analysed"));
                continue;
            }
            let covered = branches.iter().enumerate().any(|(i, wi)| {
                let wip = child(wp, &["anyOf", &i.to_string()]);
                self.trial(|c| c.sub(wi, &wip, n, np))
            }) || self.narrow_branches_covered(branches, wp, no, np);
            if !covered {
                self.refuse(
                    wp,
                    np,
                    format!("{nn} accepts values that match none of the anyOf branches of {wn}"),
                );
            }
        }
        // The narrow side's own combinators: they only narrow it further, which can
        // be used to prove inclusion, never needed for it.
        let narrow_split = ["anyOf", "oneOf"]
            .into_iter()
            .find(|kw| matches!(no.get(*kw), Some(Value::Array(_))) && no.get(*kw) != wo.get(*kw));
        if let Some(kw) = narrow_split {
            // n = rest ∧ (b1 ∨ b2 ∨ ...): it is enough that each rest ∧ bi fits.
            let mut rest = no.clone();
            let branches = match rest.remove(kw) {
                Some(Value::Array(b)) => b,
                _ => Vec::new(),
            };
            let w_owned = Value::Object(wo.clone());
            let whole_rest = Value::Object(rest.clone());
            if self.trial(|c| c.sub_plain(&w_owned, wp, &whole_rest, np)) {
                return;
            }
            for (i, b) in branches.iter().enumerate() {
                let bp = child(np, &[kw, &i.to_string()]);
                match merge(&rest, b) {
                    Some(m) => self.sub(&w_owned, wp, &m, &bp),
                    None => self.refuse(wp, &bp, format!("{nn}'s {kw} branch {i} cannot be combined with its siblings for analysis")),
                }
            }
            return;
        }
        if let Some(Value::Array(all)) = no.get("allOf") {
            if no.get("allOf") != wo.get("allOf") {
                let mut rest = no.clone();
                rest.remove("allOf");
                let merged = all.iter().try_fold(rest, |acc, b| {
                    merge(&acc, b).and_then(|v| v.as_object().cloned())
                });
                let w_owned = Value::Object(wo.clone());
                match merged {
                    Some(m) => return self.sub_plain(&w_owned, wp, &Value::Object(m), np),
                    None => {
                        return self.refuse(
                            wp,
                            np,
                            format!("{nn}'s allOf cannot be combined for analysis"),
                        );
                    }
                }
            }
        }
        self.sub_plain(
            &Value::Object(wo.clone()),
            wp,
            &Value::Object(no.clone()),
            np,
        );
    }

    /// Each anyOf/oneOf branch of the narrow side fits some anyOf branch of the wide side.
    fn narrow_branches_covered(
        &mut self,
        w_branches: &[Value],
        wp: &str,
        no: &Map<String, Value>,
        np: &str,
    ) -> bool {
        let Some((kw, Value::Array(n_branches))) = ["anyOf", "oneOf"]
            .iter()
            .find_map(|k| no.get(*k).map(|v| (*k, v)))
        else {
            return false;
        };
        let mut rest = no.clone();
        rest.remove(kw);
        n_branches.iter().enumerate().all(|(j, nb)| {
            let Some(m) = merge(&rest, nb) else {
                return false;
            };
            let nbp = child(np, &[kw, &j.to_string()]);
            w_branches.iter().enumerate().any(|(i, wb)| {
                let wbp = child(wp, &["anyOf", &i.to_string()]);
                self.trial(|c| c.sub(wb, &wbp, &m, &nbp))
            })
        })
    }

    /// Both sides plain objects; combinators on the wide side were handled by the caller.
    /// (`multipleOf` literals are compared exactly on purpose.)
    #[allow(clippy::too_many_lines, clippy::float_cmp)]
    fn sub_plain(&mut self, w: &Value, wp: &str, n: &Value, np: &str) {
        let (wn, nn) = (self.wide.name, self.narrow.name);
        let empty = Map::new();
        let wo = w.as_object().unwrap_or(&empty);
        let no = n.as_object().unwrap_or(&empty);

        // ---- keywords not modelled: must be unchanged ----------------------------
        for kw in OPAQUE {
            if let Some(wv) = wo.get(*kw) {
                if no.get(*kw) != Some(wv) || contains_ref(wv) {
                    self.refuse(wp, np, format!("'{kw}' in {wn} is added or changed; changes to '{kw}' are not analysed"));
                }
            }
        }
        if wo.contains_key("patternProperties") || no.contains_key("patternProperties") {
            let group = |o: &Map<String, Value>| {
                ["properties", "patternProperties", "additionalProperties"]
                    .map(|k| o.get(k).cloned())
            };
            if group(wo) != group(no) || contains_ref(w) || contains_ref(n) {
                self.refuse(
                    wp,
                    np,
                    "patternProperties with changed properties are not analysed".into(),
                );
                return;
            }
        }

        // ---- enum / const: exact, value by value -------------------------------
        let n_values: Option<Vec<&Value>> = match (no.get("const"), no.get("enum")) {
            (Some(c), _) => Some(vec![c]),
            (None, Some(Value::Array(e))) => Some(e.iter().collect()),
            _ => None,
        };
        if let Some(values) = n_values {
            for v in values {
                if self.narrow.accepts(np, v) == Some(false) {
                    continue; // excluded by the narrow side's other keywords
                }
                match self.wide.accepts(wp, v) {
                    Some(true) => {}
                    Some(false) => {
                        self.refuse(wp, np, format!("{nn} accepts the value {v}, {wn} does not"));
                    }
                    None => self.refuse(
                        wp,
                        np,
                        format!("cannot evaluate {wn} here to check the value {v}"),
                    ),
                }
            }
            return;
        }
        let n_types = match type_set(no) {
            Ok(t) => t,
            Err(e) => return self.refuse(wp, np, e),
        };
        let w_types = match type_set(wo) {
            Ok(t) => t,
            Err(e) => return self.refuse(wp, np, e),
        };
        if wo.contains_key("const") || wo.contains_key("enum") {
            // The narrow side is not finite; only null/boolean domains can be listed.
            let candidates = [Value::Null, Value::Bool(false), Value::Bool(true)];
            let finite = n_types
                .as_ref()
                .is_some_and(|t| t.iter().all(|t| matches!(*t, "null" | "boolean")));
            if !finite {
                self.refuse(
                    wp,
                    np,
                    format!(
                        "{wn} only accepts listed values (enum/const), {nn} accepts any {}",
                        describe_types(n_types.as_ref())
                    ),
                );
                return;
            }
            for v in candidates
                .iter()
                .filter(|v| n_types.as_ref().is_some_and(|t| t.contains(value_type(v))))
            {
                if self.wide.accepts(wp, v) != Some(true) {
                    self.refuse(wp, np, format!("{nn} accepts {v}, {wn} does not"));
                }
            }
            return;
        }

        // ---- types ---------------------------------------------------------------
        let all: BTreeSet<&'static str> =
            ["null", "boolean", "object", "array", "number", "string"]
                .into_iter()
                .collect();
        let n_effective = n_types.clone().unwrap_or(all);
        for t in &n_effective {
            let covered = match &w_types {
                None => true,
                Some(ws) => ws.contains(t) || (*t == "integer" && ws.contains("number")),
            };
            if !covered {
                self.refuse(
                    wp,
                    np,
                    format!(
                        "{nn} accepts type {t}, {wn} does not (type {})",
                        describe_types(w_types.as_ref())
                    ),
                );
            }
        }
        let has = |t: &str| n_effective.contains(t);

        // ---- numbers ---------------------------------------------------------------
        if has("number") || has("integer") {
            for lower in [true, false] {
                let (inc, exc) = if lower {
                    ("minimum", "exclusiveMinimum")
                } else {
                    ("maximum", "exclusiveMaximum")
                };
                let (wb, nb) = (bound(wo, inc, exc, lower), bound(no, inc, exc, lower));
                if !within(wb, nb, lower) {
                    self.refuse(
                        wp,
                        np,
                        format!(
                            "{wn} has the bound {} ({inc}/{exc}), {nn} has {}",
                            show(wb, lower),
                            show(nb, lower)
                        ),
                    );
                }
            }
            if let Some(wm) = num(wo.get("multipleOf")) {
                let ok = num(no.get("multipleOf")).is_some_and(|nm| {
                    nm == wm || ((nm / wm).fract() == 0.0 && nm.fract() == 0.0 && wm.fract() == 0.0)
                });
                if !ok {
                    self.refuse(
                        wp,
                        np,
                        format!("{wn} requires multipleOf {wm}, which {nn} does not guarantee"),
                    );
                }
            }
        }

        // ---- strings ---------------------------------------------------------------
        if has("string") {
            self.length(wo, no, "minLength", "maxLength", wp, np);
            for kw in ["pattern", "format"] {
                if let Some(wv) = wo.get(kw) {
                    if no.get(kw) != Some(wv) {
                        let nv = no
                            .get(kw)
                            .map_or_else(|| "none".to_owned(), ToString::to_string);
                        self.refuse(wp, np, format!("{kw} is {wv} in {wn} and {nv} in {nn}; a changed {kw} is treated as incompatible"));
                    }
                }
            }
        }

        // ---- arrays ----------------------------------------------------------------
        if has("array") {
            self.length(wo, no, "minItems", "maxItems", wp, np);
            if wo.get("uniqueItems") == Some(&Value::Bool(true))
                && no.get("uniqueItems") != Some(&Value::Bool(true))
                && uint(no, "maxItems").is_none_or(|m| m > 1)
            {
                self.refuse(wp, np, format!("{wn} requires uniqueItems, {nn} does not"));
            }
            let (w_prefix, w_rest) = items_shape(wo, self.wide.is_2020, wp);
            let (n_prefix, n_rest) = items_shape(no, self.narrow.is_2020, np);
            let n_max = uint(no, "maxItems");
            let positions = w_prefix.len().max(n_prefix.len());
            for i in 0..positions {
                if n_max.is_some_and(|m| (i as u64) >= m) {
                    break;
                }
                let (ws, wsp) = w_prefix.get(i).cloned().unwrap_or_else(|| w_rest.clone());
                let (ns, nsp) = n_prefix.get(i).cloned().unwrap_or_else(|| n_rest.clone());
                self.sub(&ws, &wsp, &ns, &nsp);
            }
            if n_max.is_none_or(|m| m > positions as u64) {
                self.sub(&w_rest.0, &w_rest.1, &n_rest.0, &n_rest.1);
            }
        }

        // ---- objects ---------------------------------------------------------------
        if has("object") {
            self.objects(wo, wp, no, np);
        }
    }

    fn length(
        &mut self,
        wo: &Map<String, Value>,
        no: &Map<String, Value>,
        min: &str,
        max: &str,
        wp: &str,
        np: &str,
    ) {
        let (wn, nn) = (self.wide.name, self.narrow.name);
        if let Some(wmin) = uint(wo, min) {
            let nmin = uint(no, min).unwrap_or(0);
            if nmin < wmin {
                self.refuse(
                    wp,
                    np,
                    format!("{min} is {wmin} in {wn} but {nmin} in {nn}"),
                );
            }
        }
        if let Some(wmax) = uint(wo, max) {
            match uint(no, max) {
                Some(nmax) if nmax <= wmax => {}
                other => {
                    let nmax = other.map_or_else(|| "unbounded".to_owned(), |v| v.to_string());
                    self.refuse(
                        wp,
                        np,
                        format!("{max} is {wmax} in {wn} but {nmax} in {nn}"),
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_lines)]
    fn objects(&mut self, wo: &Map<String, Value>, wp: &str, no: &Map<String, Value>, np: &str) {
        let (wn, nn) = (self.wide.name, self.narrow.name);
        let empty = Map::new();
        let props = |o: &'_ Map<String, Value>| -> Map<String, Value> {
            o.get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (w_props, n_props) = (props(wo), props(no));
        let _ = &empty;
        let yes = Value::Bool(true);
        let w_add = wo.get("additionalProperties").unwrap_or(&yes).clone();
        let n_add = no.get("additionalProperties").unwrap_or(&yes).clone();
        let required = |o: &Map<String, Value>| -> BTreeSet<String> {
            o.get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (w_req, n_req) = (required(wo), required(no));
        for r in w_req.difference(&n_req) {
            self.refuse(
                wp,
                np,
                format!("{wn} requires property '{r}', which {nn} does not require"),
            );
        }
        let keys: BTreeSet<&String> = w_props.keys().chain(n_props.keys()).collect();
        for k in keys {
            let (ns, nsp) = match n_props.get(k) {
                Some(s) => (s.clone(), child(np, &["properties", k])),
                None => (n_add.clone(), child(np, &["additionalProperties"])),
            };
            if ns == Value::Bool(false) {
                continue; // the narrow side never has this property
            }
            let (ws, wsp) = match w_props.get(k) {
                Some(s) => (s.clone(), child(wp, &["properties", k])),
                None => (w_add.clone(), child(wp, &["additionalProperties"])),
            };
            if ws == Value::Bool(false) {
                self.refuse(
                    wp,
                    np,
                    format!(
                        "{nn} allows property '{k}', {wn} does not (additionalProperties: false)"
                    ),
                );
                continue;
            }
            if !w_props.contains_key(k) && !n_props.contains_key(k) {
                continue;
            }
            if !n_props.contains_key(k) && n_add == Value::Bool(true) && ws != Value::Bool(true) {
                let before = self.reasons.len();
                self.sub(&ws, &wsp, &ns, &nsp);
                if self.reasons.len() > before {
                    self.reasons.truncate(before);
                    self.refuse(&wsp, &nsp, format!("{wn} constrains property '{k}', which {nn} leaves open (any value, open content model)"));
                }
                continue;
            }
            self.sub(&ws, &wsp, &ns, &nsp);
        }
        // Properties neither side names.
        if n_add != Value::Bool(false) {
            if w_add == Value::Bool(false) {
                self.refuse(wp, np, format!("{nn} allows additional properties, {wn} does not (additionalProperties: false)"));
            } else {
                self.sub(
                    &w_add,
                    &child(wp, &["additionalProperties"]),
                    &n_add,
                    &child(np, &["additionalProperties"]),
                );
            }
        }
        if let Some(wmin) = uint(wo, "minProperties") {
            let nmin = uint(no, "minProperties")
                .unwrap_or(0)
                .max(n_req.len() as u64);
            if nmin < wmin {
                self.refuse(
                    wp,
                    np,
                    format!("minProperties is {wmin} in {wn}, {nn} allows objects with {nmin}"),
                );
            }
        }
        if let Some(wmax) = uint(wo, "maxProperties") {
            let closed_max = (n_add == Value::Bool(false)).then(|| {
                n_props
                    .values()
                    .filter(|s| **s != Value::Bool(false))
                    .count() as u64
            });
            let nmax = match (uint(no, "maxProperties"), closed_max) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if nmax.is_none_or(|m| m > wmax) {
                self.refuse(
                    wp,
                    np,
                    format!("maxProperties is {wmax} in {wn}, {nn} allows more properties"),
                );
            }
        }
    }
}

fn describe_types(t: Option<&BTreeSet<&'static str>>) -> String {
    match t {
        None => "type".into(),
        Some(t) => t.iter().copied().collect::<Vec<_>>().join("|"),
    }
}

/// `rest` and `branch` as one schema (both must hold), or `None` when a keyword
/// appears in both with different values (we do not intersect keyword values).
fn merge(rest: &Map<String, Value>, branch: &Value) -> Option<Value> {
    match branch {
        Value::Bool(true) => Some(Value::Object(rest.clone())),
        Value::Bool(false) => Some(Value::Bool(false)),
        Value::Object(b) => {
            if b.contains_key("$ref") {
                return None;
            }
            let mut out = rest.clone();
            for (k, v) in b {
                if ANNOTATIONS.contains(&k.as_str()) {
                    continue;
                }
                match out.get(k) {
                    Some(existing) if existing != v => return None,
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Some(Value::Object(out))
        }
        _ => None,
    }
}
