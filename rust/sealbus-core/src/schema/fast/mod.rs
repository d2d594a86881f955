//! The fast path: a schema compiled into a small program that checks raw JSON bytes in
//! one pass, parsing and validating together, with no tape and no keyword dispatch.
//!
//! Why it exists: on the order workload the general route (parse into a tape, then the
//! `jsonschema` crate's validator tree over it) costs about 2 µs an event, over half of
//! it in building the tape and checking it for duplicate keys, and most of the rest in
//! per-keyword dispatch and member lookups. Event schemas are mostly a small set of
//! keywords over closed objects, which a direct program checks several times faster.
//!
//! How it is kept honest:
//! - It is a filter in front of the crate, never a replacement. [`FastSchema::check`]
//!   answers [`Verdict::Valid`], [`Verdict::Invalid`] or [`Verdict::Unknown`]; anything
//!   it is not certain of (an escaped string, an integer past 2^53 under a bound, a
//!   number in an `enum`, malformed JSON, a duplicate key) is `Unknown`, and the crate
//!   decides as before. `Invalid` only ends `check_batch`-style boolean checks early;
//!   error reports always come from the crate, so messages and locations are unchanged.
//! - A schema gets a fast path only if every keyword in it is in the supported subset
//!   (`type`, `enum`, `const`, `required`, `properties`, `additionalProperties`,
//!   `min/maxProperties`, `items` as one schema, `min/maxItems`, `min/maxLength`,
//!   `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `pattern`, the formats
//!   the crate knows, `$ref` to a pointer inside the document, and annotations), in
//!   draft 7, 2019-09 or 2020-12; otherwise the crate handles that schema alone.
//! - `pattern` and `format` are checked by the crate itself, one keyword at a time
//!   ([`text`]), with two shortcuts argued there (the crate's own `Sequence` matcher
//!   called directly; plain e-mail addresses). Ahead of the crate, accept-only
//!   recognisers ([`accept`]: `uuid`, `date`, `date-time`, fixed-length anchored
//!   patterns) may accept a string; what they do not accept still goes to the crate.
//!   A string node whose one check is such a recogniser or an `enum`/`const` of plain
//!   strings also gets a [`Fused`] test at the opening quote (the bytes where the
//!   closing quote must be, tested once), accept-only in the same way.
//! - The JSON grammar is the tape's ([`super::tape`]): a body the tape refuses (duplicate
//!   keys, nesting past 128, bad UTF-8, control characters) is never `Valid` here.
//! - Differential tests (`fast/tests.rs` with proptest, `tests/test_schema_fast.py` with
//!   hypothesis) mutate valid events field by field and assert the verdict equals the
//!   crate's whenever it is not `Unknown`; mutants of the checks (off-by-one bounds,
//!   a dropped duplicate check, integer/number confusion) make them fail.

mod accept;
mod check;
mod text;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::{Map, Value};

use text::{Email, PatternCheck, StringCheck};

pub(crate) use check::Scratch;

/// The fast path's answer for one body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The crate would accept it.
    Valid,
    /// The crate (or the tape) would refuse it.
    Invalid,
    /// Not decided here: ask the crate.
    Unknown,
}

// `type` bits. `number` admits integers too, so it sets both.
const T_NULL: u8 = 1;
const T_BOOL: u8 = 2;
const T_INT: u8 = 4;
const T_NUM: u8 = 8;
const T_STR: u8 = 16;
const T_OBJ: u8 = 32;
const T_ARR: u8 = 64;
const T_ALL: u8 = 127;

/// Node ids of the boolean schemas, always present.
const ANY: u32 = 0;
const NEVER: u32 = 1;

/// At most this many names (properties and required) per object rule: the seen set is
/// one `u64`.
const MAX_NAMES: usize = 64;
/// A bound on compiled nodes, so a huge schema cannot make registration slow.
const MAX_NODES: usize = 4096;

/// Integers up to this magnitude are exact as `f64`, so bounds compare exactly.
const EXACT_F64_INT: u64 = 1 << 53;

/// Keywords that assert nothing about an instance here: annotations, and containers of
/// subschemas reached only through `$ref`.
const ANNOTATIONS: &[&str] = &[
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
    "$anchor",
];

/// A property name or string member, with its first eight bytes as a word so most
/// comparisons are two integer compares.
struct Name {
    bytes: Box<[u8]>,
    head: u64,
    /// The last eight bytes, for names of 9 to 16 bytes (head and tail cover them).
    tail: u64,
}

impl Name {
    fn new(text: &str) -> Self {
        let bytes: Box<[u8]> = text.as_bytes().into();
        let mut word = [0_u8; 8];
        for (w, b) in word.iter_mut().zip(bytes.iter()) {
            *w = *b;
        }
        Name {
            head: u64::from_le_bytes(word),
            tail: tail_word(&bytes),
            bytes,
        }
    }

    /// Whether `key` (whose head word is `head`) is this name.
    #[inline]
    fn is(&self, key: &[u8], head: u64) -> bool {
        self.head == head
            && self.bytes.len() == key.len()
            && (key.len() <= 8
                || (key.len() <= 16 && self.tail == tail_word(key))
                || self.bytes.get(8..) == key.get(8..))
    }
}

/// The last eight bytes of `bytes` as a little-endian word (0 if it is shorter).
#[inline]
fn tail_word(bytes: &[u8]) -> u64 {
    let mut word = [0_u8; 8];
    match bytes.len().checked_sub(8).and_then(|at| bytes.get(at..)) {
        Some(last) => {
            word.copy_from_slice(last);
            u64::from_le_bytes(word)
        }
        None => 0,
    }
}

/// `enum` or `const` members, as the fast path can compare them.
#[derive(Default)]
#[allow(clippy::struct_excessive_bools)] // one flag per kind of member
struct Members {
    strings: Vec<Name>,
    null: bool,
    truth: bool,
    falsity: bool,
    /// Some member is a number: a number instance is left to the crate (numeric
    /// equality has edge cases: `1` equals `1.0`).
    numbers: bool,
    /// Some member is an array or object: such instances are left to the crate.
    containers: bool,
}

enum Format {
    /// The crate's check, after an accept-only shortcut when the format has one.
    Crate(Option<Shortcut>, StringCheck),
    Email(Box<Email>),
}

/// The formats with an accept-only recogniser ([`accept`]).
#[derive(Clone, Copy)]
enum Shortcut {
    Uuid,
    Date,
    DateTime,
}

impl Shortcut {
    fn for_format(name: &str) -> Option<Self> {
        match name {
            "uuid" => Some(Shortcut::Uuid),
            "date" => Some(Shortcut::Date),
            "date-time" => Some(Shortcut::DateTime),
            _ => None,
        }
    }

    /// Whether `text` is certainly in the format.
    #[inline]
    fn accepts(self, text: &[u8]) -> bool {
        match self {
            Shortcut::Uuid => accept::uuid(text),
            Shortcut::Date => accept::date(text),
            Shortcut::DateTime => accept::date_time(text),
        }
    }
}

enum Additional {
    Allow,
    Deny,
    Schema(u32),
}

struct ObjectRule {
    /// Property names, then names only `required` mentions.
    names: Vec<Name>,
    /// Per name, its key as compact JSON spells it, for the predicted-key test.
    keys: Vec<KeyLit>,
    /// Where this rule's row of learned successors starts in [`Scratch`] (see
    /// [`KeyLit`]); the row has `names.len() + 2` entries.
    row: usize,
    /// Where each name is looked up by its head word and length, with the schema its
    /// value must meet.
    table: NameTable,
    required: u64,
    additional: Additional,
    min_props: u64,
    max_props: u64,
}

struct Node {
    never: bool,
    types: u8,
    members: Vec<Members>,
    min_len: u64,
    max_len: u64,
    /// `minLength` or `maxLength` is present.
    has_length: bool,
    pattern: Option<PatternCheck>,
    format: Option<Format>,
    /// `minimum`, `exclusiveMinimum`, `maximum`, `exclusiveMaximum` as exact `f64`s.
    minimum: Option<f64>,
    ex_minimum: Option<f64>,
    maximum: Option<f64>,
    ex_maximum: Option<f64>,
    object: Option<Box<ObjectRule>>,
    items: u32,
    min_items: u64,
    max_items: u64,
    /// A one-step test for the common strings of this node (see [`Fused`]).
    fused: Fused,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            never: false,
            types: T_ALL,
            members: Vec::new(),
            min_len: 0,
            max_len: u64::MAX,
            has_length: false,
            pattern: None,
            format: None,
            minimum: None,
            ex_minimum: None,
            maximum: None,
            ex_maximum: None,
            object: None,
            items: ANY,
            min_items: 0,
            max_items: u64::MAX,
            fused: Fused::None,
        }
    }
}

impl Node {
    fn has_bounds(&self) -> bool {
        self.minimum.is_some()
            || self.ex_minimum.is_some()
            || self.maximum.is_some()
            || self.ex_maximum.is_some()
    }

    fn checks_text(&self) -> bool {
        !self.members.is_empty()
            || self.has_length
            || self.pattern.is_some()
            || self.format.is_some()
    }
}

/// A string value's scan and checks fused into one test at its opening quote, for
/// nodes whose accepted strings (or a common subset of them) are each their own JSON
/// spelling (no quote, backslash or control byte) and have a known length.
///
/// Why: most strings of an event are enum members, fixed-shape identifiers, UUIDs and
/// UTC timestamps. The general route scans for the closing quote, then runs each check
/// on the span; a fused test reads the bytes once where the closing quote must be.
///
/// Accept-only, like [`accept`]: when the test passes, the bytes after the opening
/// quote are exactly a string the node's checks accept (none of them is a quote, so
/// the quote after them closes the string; none needs escaping, so the text is the
/// raw bytes), and the node allows strings; the general route would say `Valid` for
/// this value too. When it fails, the general route runs as before, so a verdict
/// never changes.
enum Fused {
    None,
    /// The node's only string check is one `enum`/`const`: its plain string members
    /// (of at most [`MAX_LIT_NAME`] + 1 bytes) that meet its length bounds, each with
    /// its closing quote.
    Literals(Box<[StrLit]>),
    /// The node's only string check is a fixed-length `pattern` ([`accept::FixedPattern`],
    /// plain), of this length.
    Pattern(usize),
    /// The node's only string check is a `format` with a plain recogniser, tried on
    /// strings of this length (`uuid`: 36, `date-time`: 20, the `...Z` form).
    Format(Shortcut, usize),
}

/// A string literal as compact JSON spells it after its opening quote: the text and
/// its closing quote, as the first bytes of a little-endian `u128` with a mask.
#[derive(Clone, Copy)]
struct StrLit {
    bytes: u128,
    mask: u128,
    /// Bytes from the opening quote to past the closing one.
    advance: u8,
}

impl StrLit {
    /// The literal for `text`, if it is plain and fits (with its quote) in 16 bytes.
    fn new(text: &[u8]) -> Option<Self> {
        if text.len() > MAX_LIT_NAME + 1 || !is_plain(text) {
            return None;
        }
        let mut word = [0_u8; 16];
        let mut mask = [0_u8; 16];
        for (at, &c) in text.iter().chain(b"\"").enumerate() {
            *word.get_mut(at)? = c;
            *mask.get_mut(at)? = 0xff;
        }
        Some(StrLit {
            bytes: u128::from_le_bytes(word),
            mask: u128::from_le_bytes(mask),
            advance: u8::try_from(text.len() + 2).ok()?,
        })
    }

    /// Whether `next` (the sixteen bytes after a string's opening quote) starts with
    /// this literal and its closing quote.
    #[inline]
    fn matches(&self, next: u128) -> bool {
        (next ^ self.bytes) & self.mask == 0
    }
}

/// Whether `text` is its own JSON spelling inside quotes, with no quote in it.
fn is_plain(text: &[u8]) -> bool {
    text.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\')
}

impl Node {
    /// The node's [`Fused`] test, from its checks (call once they are all set).
    fn fused(&self) -> Fused {
        if self.types & T_STR == 0 {
            return Fused::None;
        }
        let length_ok = |chars: usize| {
            !self.has_length || (self.min_len..=self.max_len).contains(&(chars as u64))
        };
        match (&*self.members, &self.pattern, &self.format) {
            ([one], None, None) if !one.strings.is_empty() => {
                let lits: Vec<StrLit> = one
                    .strings
                    .iter()
                    .filter(|n| {
                        std::str::from_utf8(&n.bytes).is_ok_and(|t| length_ok(t.chars().count()))
                    })
                    .filter_map(|n| StrLit::new(&n.bytes))
                    .collect();
                if lits.is_empty() {
                    Fused::None
                } else {
                    Fused::Literals(lits.into())
                }
            }
            ([], Some(p), None) => match p.fixed() {
                Some(f) if f.is_plain() && length_ok(f.len()) => Fused::Pattern(f.len()),
                _ => Fused::None,
            },
            ([], None, Some(Format::Crate(Some(shortcut), _))) => {
                let len = match shortcut {
                    Shortcut::Uuid => 36,
                    Shortcut::Date => 10,
                    Shortcut::DateTime => 20,
                };
                if length_ok(len) {
                    Fused::Format(*shortcut, len)
                } else {
                    Fused::None
                }
            }
            _ => Fused::None,
        }
    }
}

/// A name's key as it appears in compact JSON after the opening quote: the name, its
/// closing quote and the colon (`eventId":`), as the first bytes of a little-endian
/// `u128` with a mask over them.
///
/// Why: events of one stream repeat their key order, so the checker predicts each key
/// from the one before (the successor learned from earlier bodies, kept in
/// [`Scratch`]) and compares sixteen input bytes against the prediction. On a hit the
/// key's scan, hash and slot load are skipped, and the value's node is known before
/// the key's bytes are read, which cuts the dependent chain of loads per member. A hit
/// means the bytes after the opening quote are exactly the name (which has no quote,
/// backslash or control byte, so it is its own JSON spelling) and a quote: the key is
/// that name, as the hash lookup would have found. A miss takes the lookup as before,
/// so a prediction changes only the speed, never the verdict.
#[derive(Clone, Copy)]
struct KeyLit {
    bytes: u128,
    mask: u128,
    /// Bytes from the opening quote to past the colon; 0 when the name is too long (over
    /// 14 bytes, so that with its quote and colon it fits 16) or needs escaping, and is
    /// never predicted (its `bytes` and `mask` then match no UTF-8 text).
    advance: u8,
    /// The name's value schema, as [`Slot::target`].
    target: u32,
}

/// The longest name a [`KeyLit`] holds: with its quote and colon, sixteen bytes.
const MAX_LIT_NAME: usize = 14;

impl KeyLit {
    fn new(name: &[u8], target: u32) -> Self {
        let plain = name.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\');
        if name.len() > MAX_LIT_NAME || !plain {
            // A first byte of 0xff never occurs in UTF-8, and the body is checked to
            // be UTF-8 before any key is read: this literal never matches, so the
            // match itself need not test `advance`.
            return KeyLit {
                bytes: 0xff,
                mask: 0xff,
                advance: 0,
                target,
            };
        }
        let mut word = [0_u8; 16];
        let mut mask = [0_u8; 16];
        for (at, &c) in name.iter().chain(b"\":").enumerate() {
            if let (Some(w), Some(m)) = (word.get_mut(at), mask.get_mut(at)) {
                *w = c;
                *m = 0xff;
            }
        }
        #[allow(clippy::cast_possible_truncation)] // at most 17
        let advance = (name.len() + 3) as u8;
        KeyLit {
            bytes: u128::from_le_bytes(word),
            mask: u128::from_le_bytes(mask),
            advance,
            target,
        }
    }

    /// Whether `next` (the sixteen bytes after a key's opening quote, from a UTF-8
    /// body) starts with this key, its closing quote and the colon.
    #[inline]
    fn matches(&self, next: u128) -> bool {
        (next ^ self.bytes) & self.mask == 0
    }
}

/// A schema compiled for the fast path.
pub(crate) struct FastSchema {
    nodes: Vec<Node>,
    root: u32,
    /// Entries of learned key successors the object rules need (see [`KeyLit`]).
    successors: usize,
}

impl FastSchema {
    /// The fast path for `schema` (of `draft`, as `validate::declared_draft` names it),
    /// or `None` when it uses anything outside the supported subset.
    pub(crate) fn compile(schema: &Value, draft: &'static str) -> Option<Self> {
        if !matches!(draft, "draft-07" | "2019-09" | "2020-12") {
            return None;
        }
        let never = Node {
            never: true,
            ..Node::default()
        };
        let mut compiler = Compiler {
            root: schema,
            dialect: schema.get("$schema"),
            draft,
            nodes: vec![Node::default(), never],
            refs: HashMap::new(),
            resolving: 0,
            successors: 0,
        };
        let root = compiler.schema(schema, true)?;
        Some(FastSchema {
            nodes: compiler.nodes,
            root,
            successors: compiler.successors,
        })
    }

    /// The verdict on the JSON text `bytes`. `scratch` is reused across calls. Never
    /// inlined, so instruction counts can name it (one call per body).
    #[inline(never)]
    pub(crate) fn check(&self, bytes: &[u8], scratch: &mut Scratch) -> Verdict {
        check::run(self, bytes, scratch)
    }
}

struct Compiler<'v> {
    root: &'v Value,
    dialect: Option<&'v Value>,
    draft: &'static str,
    nodes: Vec<Node>,
    /// `$ref` pointers already compiled (or being compiled), and their nodes.
    refs: HashMap<String, u32>,
    /// `$ref`s followed without reaching a schema object: bounds a cycle of references.
    resolving: u32,
    /// Successor entries given to object rules so far (see [`ObjectRule::row`]).
    successors: usize,
}

fn exact_f64(v: &Value) -> Option<f64> {
    let Value::Number(n) = v else {
        return None;
    };
    if let Some(u) = n.as_u64() {
        #[allow(clippy::cast_precision_loss)] // at most 2^53: exact
        return (u <= EXACT_F64_INT).then_some(u as f64);
    }
    if let Some(i) = n.as_i64() {
        #[allow(clippy::cast_precision_loss)] // at most 2^53 in magnitude: exact
        return (i.unsigned_abs() <= EXACT_F64_INT).then_some(i as f64);
    }
    n.as_f64().filter(|f| f.is_finite())
}

fn count(v: &Value) -> Option<u64> {
    v.as_u64()
}

impl Compiler<'_> {
    fn string_check(&self, keyword: &str, value: &Value) -> Option<StringCheck> {
        StringCheck::new(keyword, value, self.dialect, self.draft)
    }

    fn format(&self, name: &Value) -> Option<Format> {
        let check = self.string_check("format", name)?;
        if name.as_str()? == "email" {
            let hostname = self.string_check("format", &Value::from("hostname"))?;
            return Some(Format::Email(Box::new(Email {
                full: check,
                hostname,
            })));
        }
        Some(Format::Crate(Shortcut::for_format(name.as_str()?), check))
    }

    fn schema(&mut self, v: &Value, is_root: bool) -> Option<u32> {
        match v {
            Value::Bool(true) => Some(ANY),
            Value::Bool(false) => Some(NEVER),
            Value::Object(m) => self.object_schema(m, is_root),
            _ => None,
        }
    }

    fn reference(&mut self, reference: &str) -> Option<u32> {
        // Only pointers into this document, spelled without escapes: `#`, `#/$defs/x`.
        let pointer = reference.strip_prefix('#')?;
        let plain = |c: char| c.is_ascii_alphanumeric() || "/$_-.".contains(c);
        if !(pointer.is_empty() || pointer.starts_with('/')) || !pointer.chars().all(plain) {
            return None;
        }
        if let Some(&id) = self.refs.get(pointer) {
            return Some(id);
        }
        let target = self.root.pointer(pointer)?;
        match target {
            Value::Object(m) if !m.contains_key("$ref") => {
                #[allow(clippy::cast_possible_truncation)] // at most MAX_NODES
                let id = self.nodes.len() as u32;
                self.refs.insert(pointer.to_owned(), id);
                let compiled = self.object_schema(m, std::ptr::eq(target, self.root))?;
                (compiled == id).then_some(id)
            }
            _ => {
                self.resolving += 1;
                if self.resolving > 32 {
                    return None;
                }
                let id = self.schema(target, std::ptr::eq(target, self.root));
                self.resolving -= 1;
                let id = id?;
                self.refs.insert(pointer.to_owned(), id);
                Some(id)
            }
        }
    }

    #[allow(clippy::too_many_lines)] // one arm per keyword reads best as one match
    fn object_schema(&mut self, m: &Map<String, Value>, is_root: bool) -> Option<u32> {
        if let Some(r) = m.get("$ref") {
            // A `$ref` beside assertions would need two programs over one value; only
            // the bare form (annotations aside) is supported. In draft 7 the siblings
            // are ignored anyway, in 2019-09+ they would apply: either way none assert.
            let plain_siblings = m
                .keys()
                .all(|k| k == "$ref" || ANNOTATIONS.contains(&k.as_str()));
            if !plain_siblings {
                return None;
            }
            return self.reference(r.as_str()?);
        }
        if self.nodes.len() >= MAX_NODES {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)] // at most MAX_NODES
        let id = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        let mut node = Node::default();
        let mut props: Option<&Map<String, Value>> = None;
        let mut required: Vec<&str> = Vec::new();
        let mut additional = Additional::Allow;
        let mut object_keywords = false;
        let (mut min_props, mut max_props) = (0, u64::MAX);
        for (key, v) in m {
            match key.as_str() {
                "type" => {
                    let one = |t: &Value| -> Option<u8> {
                        Some(match t.as_str()? {
                            "null" => T_NULL,
                            "boolean" => T_BOOL,
                            "integer" => T_INT,
                            "number" => T_NUM | T_INT,
                            "string" => T_STR,
                            "object" => T_OBJ,
                            "array" => T_ARR,
                            _ => return None,
                        })
                    };
                    node.types = match v {
                        Value::Array(ts) if !ts.is_empty() => {
                            ts.iter().map(one).try_fold(0, |acc, t| Some(acc | t?))?
                        }
                        Value::Array(_) => return None,
                        t => one(t)?,
                    };
                }
                "enum" => node.members.push(members(v.as_array()?)),
                "const" => node.members.push(members(std::slice::from_ref(v))),
                "minLength" => {
                    node.min_len = count(v)?;
                    node.has_length = true;
                }
                "maxLength" => {
                    node.max_len = count(v)?;
                    node.has_length = true;
                }
                "pattern" => {
                    let check = self.string_check(key, v)?;
                    node.pattern = Some(PatternCheck::new(check, v.as_str()?));
                }
                "format" => node.format = Some(self.format(v)?),
                "minimum" => node.minimum = Some(exact_f64(v)?),
                "exclusiveMinimum" => node.ex_minimum = Some(exact_f64(v)?),
                "maximum" => node.maximum = Some(exact_f64(v)?),
                "exclusiveMaximum" => node.ex_maximum = Some(exact_f64(v)?),
                "properties" => {
                    props = Some(v.as_object()?);
                    object_keywords = true;
                }
                "required" => {
                    for name in v.as_array()? {
                        let name = name.as_str()?;
                        if !required.contains(&name) {
                            required.push(name);
                        }
                    }
                    object_keywords = true;
                }
                "additionalProperties" => {
                    additional = match self.schema(v, false)? {
                        ANY => Additional::Allow,
                        NEVER => Additional::Deny,
                        sub => Additional::Schema(sub),
                    };
                    object_keywords = true;
                }
                "minProperties" => {
                    min_props = count(v)?;
                    object_keywords = true;
                }
                "maxProperties" => {
                    max_props = count(v)?;
                    object_keywords = true;
                }
                // `items` as an array is a tuple form (draft 7; refused in 2020-12).
                "items" if v.is_object() || v.is_boolean() => {
                    node.items = self.schema(v, false)?;
                }
                "minItems" => node.min_items = count(v)?,
                "maxItems" => node.max_items = count(v)?,
                // `$schema` and `$id` only at the root: a nested resource would change
                // what `#` pointers mean.
                "$schema" | "$id" if is_root => {}
                k if ANNOTATIONS.contains(&k) => {}
                _ => return None,
            }
        }
        if object_keywords {
            let mut names: Vec<Name> = Vec::new();
            let mut schemas = Vec::new();
            if let Some(props) = props {
                for (name, sub) in props {
                    names.push(Name::new(name));
                    schemas.push(Some(self.schema(sub, false)?));
                }
            }
            let mut required_bits = 0_u64;
            for name in required {
                let at = if let Some(i) = names.iter().position(|n| *n.bytes == *name.as_bytes()) {
                    i
                } else {
                    names.push(Name::new(name));
                    schemas.push(None);
                    names.len() - 1
                };
                if at >= MAX_NAMES {
                    return None;
                }
                required_bits |= 1 << at;
            }
            if names.len() > MAX_NAMES {
                return None;
            }
            let targets: Vec<u32> = schemas
                .iter()
                .map(|s| {
                    s.unwrap_or(match additional {
                        Additional::Allow => ANY,
                        Additional::Deny => DENIED,
                        Additional::Schema(sub) => sub,
                    })
                })
                .collect();
            let table = NameTable::new(&names, &targets);
            let keys = names
                .iter()
                .zip(&targets)
                .map(|(n, &t)| KeyLit::new(&n.bytes, t))
                .collect();
            let row = self.successors;
            self.successors += names.len() + 2;
            node.object = Some(Box::new(ObjectRule {
                names,
                keys,
                row,
                table,
                required: required_bits,
                additional,
                min_props,
                max_props,
            }));
        }
        node.fused = node.fused();
        let slot = self.nodes.get_mut(id as usize)?;
        *slot = node;
        Some(id)
    }
}

/// A name's entry in a [`NameTable`]: its head word, tail word and length inline, so a
/// hit costs one load of the slot and no second lookup of the name.
#[derive(Clone, Copy, Default)]
struct Slot {
    head: u64,
    tail: u64,
    len: usize,
    /// Index + 1 into the names; 0 for an empty slot.
    entry: usize,
    /// The schema the name's value must meet: its `properties` subschema, or for a
    /// required-only name `additionalProperties` ([`DENIED`] when that is `false`).
    /// Kept here so a hit needs no further lookup before the value's node.
    target: u32,
}

/// A [`Slot::target`] whose value is refused whatever it is.
pub(super) const DENIED: u32 = u32::MAX;

/// An open-addressing table over an object's names, hashed from a key's head word (its
/// first eight bytes) alone, so the slot's load can start before the scan has found
/// the key's end. At compile time a multiplier and size are searched so that no two
/// names share a slot (`perfect`): a key is then in its first slot or nowhere, one
/// compare and no probe loop (the loop's branches mispredicted on every collision).
/// Names that share a head word cannot be told apart by the hash; those tables keep
/// linear probing.
struct NameTable {
    slots: Vec<Slot>,
    multiplier: u64,
    /// `64 - log2(slots.len())`: the hash's top bits pick the slot.
    shift: u32,
    perfect: bool,
}

/// Multipliers tried for a perfect table: the golden-ratio constant, then splitmix64
/// outputs (odd), all fixed so a schema always compiles to the same table.
fn multiplier(seed: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

impl NameTable {
    #[allow(clippy::inline_always)] // on the per-key path
    #[inline(always)]
    fn slot_of(multiplier: u64, shift: u32, head: u64) -> usize {
        let h = head.wrapping_mul(multiplier);
        #[allow(clippy::cast_possible_truncation)] // the shift leaves at most 16 bits
        let slot = (h >> shift) as usize;
        slot
    }

    /// A table for `names` (at most [`MAX_NAMES`]), perfect when one is found among
    /// sizes of two to eight slots per name.
    fn new(names: &[Name], targets: &[u32]) -> Self {
        let base = (names.len() * 2).next_power_of_two().max(4);
        let base_bits = base.trailing_zeros();
        for bits in base_bits..=base_bits + 2 {
            let shift = 64 - bits;
            let mut used = vec![false; 1 << bits];
            for seed in 0..64 {
                let multiplier = if seed == 0 {
                    0x9E37_79B9_7F4A_7C15
                } else {
                    multiplier(seed)
                };
                used.fill(false);
                let distinct = names.iter().all(|n| {
                    let slot = Self::slot_of(multiplier, shift, n.head);
                    used.get_mut(slot)
                        .is_some_and(|u| !std::mem::replace(u, true))
                });
                if distinct {
                    return Self::fill(names, targets, multiplier, shift, true);
                }
            }
        }
        Self::fill(names, targets, 0x9E37_79B9_7F4A_7C15, 64 - base_bits, false)
    }

    /// Place `names` by linear probing (no probe happens when `perfect`).
    fn fill(names: &[Name], targets: &[u32], multiplier: u64, shift: u32, perfect: bool) -> Self {
        let size = 1_usize << (64 - shift);
        let mask = size - 1;
        let mut slots = vec![Slot::default(); size];
        for ((i, n), &target) in names.iter().enumerate().zip(targets) {
            let mut slot = Self::slot_of(multiplier, shift, n.head);
            while slots.get(slot).is_some_and(|s| s.entry != 0) {
                slot = (slot + 1) & mask;
            }
            if let Some(s) = slots.get_mut(slot) {
                *s = Slot {
                    head: n.head,
                    tail: n.tail,
                    len: n.bytes.len(),
                    entry: i + 1,
                    target,
                };
            }
        }
        NameTable {
            slots,
            multiplier,
            shift,
            perfect,
        }
    }
}

impl ObjectRule {
    /// The index of `key` (head word `head`) among the names, and its value's schema
    /// (see [`Slot::target`]).
    #[allow(clippy::inline_always)] // a call here costs as much as the probe: measured
    #[inline(always)]
    fn find(&self, key: &[u8], head: u64) -> Option<(usize, u32)> {
        let t = &self.table;
        let mask = t.slots.len() - 1;
        let mut slot = NameTable::slot_of(t.multiplier, t.shift, head);
        loop {
            let s = t.slots.get(slot)?;
            let j = s.entry.checked_sub(1)?;
            if s.head == head
                && s.len == key.len()
                && (key.len() <= 8
                    || (key.len() <= 16 && s.tail == tail_word(key))
                    || self.names.get(j)?.bytes.get(8..) == key.get(8..))
            {
                return Some((j, s.target));
            }
            if t.perfect {
                return None;
            }
            slot = (slot + 1) & mask;
        }
    }
}

fn members(values: &[Value]) -> Members {
    let mut m = Members::default();
    for v in values {
        match v {
            Value::Null => m.null = true,
            Value::Bool(true) => m.truth = true,
            Value::Bool(false) => m.falsity = true,
            Value::Number(_) => m.numbers = true,
            Value::String(s) => m.strings.push(Name::new(s)),
            Value::Array(_) | Value::Object(_) => m.containers = true,
        }
    }
    m
}
