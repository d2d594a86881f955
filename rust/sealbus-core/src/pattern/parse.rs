//! Pattern JSON -> validated disjunctive normal form. Every refusal names the pattern
//! key it is about (`Error::Pattern { path, .. }`), as EventBridge's rule compiler does.
//!
//! A pattern becomes a list of branches (one per combination of `$or` alternatives);
//! a branch is a conjunction of field conditions on distinct paths; a field condition
//! (a "slot") is a disjunction of value predicates, plus "or the field is absent" when
//! it holds `{"exists": false}`.
//!
//! As in EventBridge's rule compiler (event-ruler's `JsonRuleCompiler`), a key is a
//! path of steps separated by dots (`{"a.b": [1]}` is `{"a": {"b": [1]}}`), and a path
//! given again in one branch replaces what was given before it, in document order
//! (`{"x": [1], "$or": [{"x": [2]}, {"y": [3]}]}` is `x = 2 OR (x = 1 AND y = 3)`).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::ignore_case::IgnoreCase;
use super::value::{parse_ip, Decimal, Glob, KEY_MAX, KEY_MIN};
use crate::{Error, Result};

/// Most branches one pattern may expand to (each `$or` multiplies them).
pub(crate) const MAX_BRANCHES: usize = 1024;
/// Deepest nesting of keys a pattern may have.
const MAX_DEPTH: usize = 64;

/// Field names EventBridge refuses inside `$or` objects (they are operator names).
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// One value test on one field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Pred {
    Str(Box<str>),
    /// Canonical decimal text (see `Decimal::canonical`).
    Num(Box<str>),
    Bool(bool),
    Null,
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    EqIc(IgnoreCase),
    PrefixIc(IgnoreCase),
    SuffixIc(IgnoreCase),
    Wildcard(Glob),
    /// Closed interval on the numeric key line (see `Decimal::numeric_key`).
    Range {
        lo: i64,
        hi: i64,
    },
    /// Network `net` (already masked) of `len` bits; a plain IP string is a full-length one.
    Cidr {
        v6: bool,
        len: u8,
        net: u128,
    },
    Exists,
    AnythingBut(AnythingBut),
}

/// `anything-but`: matches any value that is not matched by one of its operands.
/// Operands are sorted and deduplicated so equal conditions intern to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum AnythingBut {
    Strs(Vec<Box<str>>),
    Nums(Vec<Box<str>>),
    Prefixes(Vec<Box<[u8]>>),
    Suffixes(Vec<Box<[u8]>>),
    IgnoreCase(Vec<IgnoreCase>),
    Wildcards(Vec<Glob>),
}

/// A field condition: any predicate matches a value at the path, or (if `absent_ok`)
/// the event has no value at the path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    pub preds: Vec<Pred>,
    pub absent_ok: bool,
}

pub(crate) type Path = Vec<Box<str>>;

/// A conjunction of slots on distinct paths, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Branch {
    pub fields: Vec<(Path, Slot)>,
}

/// Pattern JSON with objects kept in document order: a later occurrence of a path
/// overrides an earlier one, so the order decides (`serde_json::Map` sorts its keys).
/// Values inside a field's list stay `serde_json::Value`s.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Obj(Vec<(String, Node)>),
    Arr(Vec<Node>),
    Leaf(Value),
}

impl Node {
    /// A `Value` in its (sorted) key order: the document order of a parsed `Value`
    /// is already lost.
    pub(crate) fn of_value(v: &Value) -> Node {
        match v {
            Value::Object(m) => Node::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), Node::of_value(v)))
                    .collect(),
            ),
            Value::Array(a) => Node::Arr(a.iter().map(Node::of_value).collect()),
            other => Node::Leaf(other.clone()),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Node::Obj(kv) => {
                Value::Object(kv.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
            Node::Arr(a) => Value::Array(a.iter().map(Node::to_value).collect()),
            Node::Leaf(v) => v.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Node, D::Error> {
        struct Walk;
        impl<'de> Visitor<'de> for Walk {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::Bool(b)))
            }
            fn visit_i64<E>(self, n: i64) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::from(n)))
            }
            fn visit_u64<E>(self, n: u64) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::from(n)))
            }
            fn visit_f64<E>(self, n: f64) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::from(n)))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::String(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::String(s)))
            }
            fn visit_unit<E>(self) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::Null))
            }
            fn visit_none<E>(self) -> std::result::Result<Node, E> {
                Ok(Node::Leaf(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Node, A::Error> {
                let mut kv = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    kv.push(entry);
                }
                Ok(Node::Obj(kv))
            }
        }
        d.deserialize_any(Walk)
    }
}

fn err(path: &str, reason: impl Into<String>) -> Error {
    Error::Pattern {
        path: if path.is_empty() {
            "<root>".to_owned()
        } else {
            path.to_owned()
        },
        reason: reason.into(),
    }
}

fn join(display: &str, key: &str) -> String {
    if display.is_empty() {
        key.to_owned()
    } else {
        format!("{display}.{key}")
    }
}

/// Parse a whole pattern into its branches.
pub(crate) fn parse_pattern(v: &Node) -> Result<Vec<Branch>> {
    let Node::Obj(obj) = v else {
        return Err(err("", "an event pattern must be a JSON object"));
    };
    let mut path = Vec::new();
    let raw = parse_object(obj, &mut path, "", false, 0)?;
    let mut out = Vec::with_capacity(raw.len());
    for mut fields in raw {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, slot) in &fields {
            check_wildcards(path, slot)?;
        }
        out.push(Branch { fields });
    }
    Ok(out)
}

/// Refuse a field whose wildcards EventBridge would find too complex to match
/// (see `wildcard_complexity`).
fn check_wildcards(path: &Path, slot: &Slot) -> Result<()> {
    let globs: Vec<&Glob> = slot
        .preds
        .iter()
        .filter_map(|p| match p {
            Pred::Wildcard(g) => Some(g),
            _ => None,
        })
        .collect();
    if globs.is_empty() {
        return Ok(());
    }
    let limit = super::wildcard_complexity::MAX_COMPLEXITY;
    if super::wildcard_complexity::complexity(&globs, limit + 1) > limit {
        let shown: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
        return Err(err(
            &shown.join("."),
            format!(
                "the rule is too complex: its wildcards can match more than {limit} prefixes at once; use fewer wildcards, or fewer repeated characters after a wildcard"
            ),
        ));
    }
    Ok(())
}

type RawBranch = Vec<(Path, Slot)>;

fn parse_object(
    obj: &[(String, Node)],
    path: &mut Path,
    display: &str,
    in_or: bool,
    depth: usize,
) -> Result<Vec<RawBranch>> {
    if depth > MAX_DEPTH {
        return Err(err(
            display,
            format!("patterns may nest at most {MAX_DEPTH} levels"),
        ));
    }
    if obj.is_empty() {
        return Err(err(display, "empty objects are not allowed"));
    }
    let mut branches: Vec<RawBranch> = vec![Vec::new()];
    for (key, value) in obj {
        let here = join(display, key);
        if key == "$or" {
            let alternatives = parse_or(value, path, &here, depth)?;
            branches = product(&branches, &alternatives, &here)?;
            continue;
        }
        if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
            return Err(err(
                &here,
                format!("\"{key}\" is a reserved word and cannot be a field name inside $or"),
            ));
        }
        // A dot is a path step, as in EventBridge (the event's keys are split alike).
        let steps = key.split('.').count();
        path.extend(key.split('.').map(Into::into));
        let result = match value {
            Node::Arr(items) => {
                let items: Vec<Value> = items.iter().map(Node::to_value).collect();
                let slot = parse_slot(&items, &here)?;
                let one = vec![vec![(path.clone(), slot)]];
                product(&branches, &one, &here)
            }
            Node::Obj(inner) => {
                let sub = parse_object(inner, path, &here, in_or, depth + 1)?;
                product(&branches, &sub, &here)
            }
            Node::Leaf(_) => Err(err(&here, "a pattern value must be an object or an array")),
        };
        path.truncate(path.len() - steps);
        branches = result?;
    }
    Ok(branches)
}

fn parse_or(value: &Node, path: &mut Path, here: &str, depth: usize) -> Result<Vec<RawBranch>> {
    let Node::Arr(items) = value else {
        return Err(err(here, "$or must be an array of objects"));
    };
    if items.len() < 2 {
        return Err(err(here, "$or needs at least 2 objects"));
    }
    let mut all = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_display = format!("{here}[{i}]");
        let Node::Obj(obj) = item else {
            return Err(err(
                &item_display,
                "only JSON objects are allowed in a $or array",
            ));
        };
        all.extend(parse_object(obj, path, &item_display, true, depth + 1)?);
        if all.len() > MAX_BRANCHES {
            return Err(err(
                here,
                format!("the pattern expands to more than {MAX_BRANCHES} alternatives"),
            ));
        }
    }
    Ok(all)
}

/// Every branch of `left` combined with every branch of `right` (which comes later
/// in the document). A path of `right` already in `left` replaces it there, as
/// event-ruler's compiler does by default (`JsonRuleCompiler.writeRules` puts each
/// field into every branch so far): `{"name": ["a", "b"], "$or": [{"name":
/// [{"anything-but": "a"}]}, {"c": ["x"]}]}` is `name != a OR (name in [a, b] AND c = x)`.
fn product(left: &[RawBranch], right: &[RawBranch], here: &str) -> Result<Vec<RawBranch>> {
    if left.len().saturating_mul(right.len()) > MAX_BRANCHES {
        return Err(err(
            here,
            format!("the pattern expands to more than {MAX_BRANCHES} alternatives"),
        ));
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in left {
        for r in right {
            let mut b = l.clone();
            for (p, s) in r {
                match b.iter_mut().find(|(q, _)| q == p) {
                    Some(earlier) => earlier.1 = s.clone(),
                    None => b.push((p.clone(), s.clone())),
                }
            }
            out.push(b);
        }
    }
    Ok(out)
}

fn parse_slot(items: &[Value], here: &str) -> Result<Slot> {
    if items.is_empty() {
        return Err(err(here, "empty arrays are not allowed"));
    }
    let mut preds = Vec::with_capacity(items.len());
    let mut absent_ok = false;
    for item in items {
        match item {
            Value::String(s) => preds.push(string_pred(s)),
            Value::Number(n) => preds.push(Pred::Num(number(n, here)?.canonical().into())),
            Value::Bool(b) => preds.push(Pred::Bool(*b)),
            Value::Null => preds.push(Pred::Null),
            Value::Object(expr) => match parse_expr(expr, here)? {
                Some(p) => preds.push(p),
                None => absent_ok = true,
            },
            Value::Array(_) => {
                return Err(err(
                    here,
                    "match values must be strings, numbers, true, false, null or match expressions",
                ))
            }
        }
    }
    preds.sort();
    preds.dedup();
    Ok(Slot { preds, absent_ok })
}

/// A plain string; one that is an IP address matches the same address spelt any way.
fn string_pred(s: &str) -> Pred {
    match parse_ip(s) {
        Some((v6, bits)) => Pred::Cidr {
            v6,
            len: if v6 { 128 } else { 32 },
            net: bits,
        },
        None => Pred::Str(s.into()),
    }
}

fn number(n: &serde_json::Number, here: &str) -> Result<Decimal> {
    Decimal::parse(super::value::serde_number_text(n).as_bytes())
        .ok_or_else(|| err(here, "unreadable number"))
}

fn one_string<'a>(v: &'a Value, here: &str, what: &str) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| err(here, format!("{what} match pattern must be a string")))
}

/// Parse a `{operator: operand}` match expression. `Ok(None)` is `{"exists": false}`.
fn parse_expr(expr: &Map<String, Value>, here: &str) -> Result<Option<Pred>> {
    let mut it = expr.iter();
    let (Some((op, arg)), None) = (it.next(), it.next()) else {
        return Err(err(here, "a match expression must have exactly one key"));
    };
    let pred = match op.as_str() {
        "prefix" => match arg {
            Value::Object(m) => Pred::PrefixIc(ignore_case_operand(m, here, "prefix")?),
            _ => Pred::Prefix(one_string(arg, here, "prefix")?.as_bytes().into()),
        },
        "suffix" => match arg {
            Value::Object(m) => Pred::SuffixIc(ignore_case_operand(m, here, "suffix")?),
            _ => Pred::Suffix(one_string(arg, here, "suffix")?.as_bytes().into()),
        },
        "equals-ignore-case" => Pred::EqIc(IgnoreCase::new(one_string(
            arg,
            here,
            "equals-ignore-case",
        )?)),
        "wildcard" => Pred::Wildcard(glob(one_string(arg, here, "wildcard")?, here)?),
        "anything-but" => Pred::AnythingBut(parse_anything_but(arg, here)?),
        "numeric" => parse_numeric(arg, here)?,
        "exists" => match arg {
            Value::Bool(true) => Pred::Exists,
            Value::Bool(false) => return Ok(None),
            _ => {
                return Err(err(
                    here,
                    "exists match pattern must be either true or false",
                ))
            }
        },
        "cidr" => parse_cidr(one_string(arg, here, "cidr")?, here)?,
        other => return Err(err(here, format!("unrecognized match type {other}"))),
    };
    Ok(Some(pred))
}

fn ignore_case_operand(m: &Map<String, Value>, here: &str, what: &str) -> Result<IgnoreCase> {
    let mut it = m.iter();
    match (it.next(), it.next()) {
        (Some((k, v)), None) if k == "equals-ignore-case" => {
            Ok(IgnoreCase::new(one_string(v, here, "equals-ignore-case")?))
        }
        (Some((k, _)), None) => Err(err(here, format!("unsupported {what} pattern: {k}"))),
        _ => Err(err(
            here,
            format!("a {what} object must have exactly one key, equals-ignore-case"),
        )),
    }
}

fn glob(s: &str, here: &str) -> Result<Glob> {
    Glob::parse(s).map_err(|e| err(here, format!("wildcard {e}")))
}

/// The operand(s) of an anything-but modifier: one string or a non-empty list of them.
fn strings_of<'a>(v: &'a Value, here: &str, what: &str) -> Result<Vec<&'a str>> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| err(here, format!("anything-but {what} values must be strings")))
            })
            .collect(),
        Value::Array(_) => Err(err(
            here,
            format!("anything-but {what} list must not be empty"),
        )),
        _ => Err(err(
            here,
            format!("anything-but {what} value must be a string or a list of strings"),
        )),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

fn parse_anything_but(arg: &Value, here: &str) -> Result<AnythingBut> {
    match arg {
        Value::String(s) => Ok(AnythingBut::Strs(vec![s.as_str().into()])),
        Value::Number(n) => Ok(AnythingBut::Nums(vec![anything_but_number(n, here)?])),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(err(here, "anything-but list must not be empty"));
            }
            if items.iter().all(Value::is_string) {
                Ok(AnythingBut::Strs(sorted(items.iter().filter_map(Value::as_str).map(Into::into).collect())))
            } else if items.iter().all(Value::is_number) {
                let nums: Result<Vec<Box<str>>> = items
                    .iter()
                    .filter_map(Value::as_number)
                    .map(|n| anything_but_number(n, here))
                    .collect();
                Ok(AnythingBut::Nums(sorted(nums?)))
            } else {
                Err(err(here, "inside an anything-but list, values must be all strings or all numbers"))
            }
        }
        Value::Object(m) => {
            let mut it = m.iter();
            let (Some((op, v)), None) = (it.next(), it.next()) else {
                return Err(err(here, "an anything-but object must have exactly one key"));
            };
            let values = strings_of(v, here, op)?;
            match op.as_str() {
                "prefix" | "suffix" => {
                    if values.iter().any(|s| s.is_empty()) {
                        return Err(err(here, format!("anything-but {op} must not be empty")));
                    }
                    let bytes = sorted(values.iter().map(|s| Box::<[u8]>::from(s.as_bytes())).collect());
                    Ok(if op == "prefix" { AnythingBut::Prefixes(bytes) } else { AnythingBut::Suffixes(bytes) })
                }
                "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(sorted(
                    values.iter().map(|s| IgnoreCase::new(s)).collect(),
                ))),
                "wildcard" => {
                    let globs: Result<Vec<Glob>> = values.iter().map(|s| glob(s, here)).collect();
                    Ok(AnythingBut::Wildcards(sorted(globs?)))
                }
                other => Err(err(here, format!("unsupported anything-but pattern: {other}"))),
            }
        }
        _ => Err(err(here, "anything-but value must be a string, a number, a list, or a prefix/suffix/equals-ignore-case/wildcard object")),
    }
}

/// anything-but numbers are compared by value and limited like numeric operands.
fn anything_but_number(n: &serde_json::Number, here: &str) -> Result<Box<str>> {
    let d = number(n, here)?;
    d.operand_key().map_err(|e| err(here, e))?;
    Ok(d.canonical().into())
}

fn numeric_operand(v: Option<&Value>, op: &str, here: &str) -> Result<i64> {
    let Some(Value::Number(n)) = v else {
        return Err(err(here, format!("value of {op} must be numeric")));
    };
    number(n, here)?.operand_key().map_err(|e| err(here, e))
}

fn parse_numeric(arg: &Value, here: &str) -> Result<Pred> {
    let Value::Array(items) = arg else {
        return Err(err(here, "value of numeric must be an array"));
    };
    let op_at = |i: usize| items.get(i).and_then(Value::as_str);
    let Some(op) = op_at(0) else {
        return Err(err(
            here,
            "numeric must start with an operator: =, <, <=, > or >=",
        ));
    };
    let v = numeric_operand(items.get(1), op, here)?;
    let (lo, hi, used) = match op {
        "=" => (v, v, 2),
        "<" => (KEY_MIN, v - 1, 2),
        "<=" => (KEY_MIN, v, 2),
        ">" | ">=" => {
            let lo = if op == ">" { v + 1 } else { v };
            match op_at(2) {
                None if items.len() == 2 => (lo, KEY_MAX, 2),
                Some(top @ ("<" | "<=")) => {
                    let t = numeric_operand(items.get(3), top, here)?;
                    if t <= v {
                        return Err(err(
                            here,
                            "the lower bound of a numeric range must be below its upper bound",
                        ));
                    }
                    (lo, if top == "<" { t - 1 } else { t }, 4)
                }
                _ => {
                    return Err(err(
                        here,
                        "a numeric range's second operator must be < or <=",
                    ))
                }
            }
        }
        other => {
            return Err(err(
                here,
                format!("unrecognized numeric range operator: {other}"),
            ))
        }
    };
    if items.len() != used {
        return Err(err(here, "too many elements in numeric expression"));
    }
    Ok(Pred::Range { lo, hi })
}

fn parse_cidr(s: &str, here: &str) -> Result<Pred> {
    let Some((ip, bits)) = s.split_once('/') else {
        return Err(err(here, "malformed CIDR, one '/' required"));
    };
    let Some((v6, addr)) = parse_ip(ip) else {
        return Err(err(here, format!("invalid IP address in CIDR: {ip}")));
    };
    let len: u8 = bits.parse().map_err(|_| {
        err(
            here,
            "malformed CIDR, mask bits must be a non-negative integer",
        )
    })?;
    if len > if v6 { 128 } else { 32 } {
        return Err(err(here, "CIDR mask bits exceed the address length"));
    }
    Ok(Pred::Cidr {
        v6,
        len,
        net: addr & super::value::net_mask(v6, len),
    })
}
