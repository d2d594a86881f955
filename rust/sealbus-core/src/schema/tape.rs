//! A zero-copy JSON document for validating event bodies straight from a byte buffer.
//!
//! Why not `serde_json::Value`: building a `Value` allocates a `String` per string and
//! a `BTreeMap` node per few members, and dropping it frees them all again; on the
//! order workload that costs more than the validation itself. This parser writes one
//! flat tape (`Vec<Entry>`, reused across a batch) whose strings point into the input
//! and whose objects keep their members in document order, which is also what makes
//! `additionalProperties`/`properties` passes cheap. The `jsonschema` crate validates
//! any representation that implements its `Json` traits, so the validation logic is
//! still entirely the crate's.
//!
//! The grammar is RFC 8259, as strict as `serde_json` (no trailing commas, no leading
//! zeros, no control characters in strings, no lone surrogates, depth at most 128),
//! with one deliberate difference: a **duplicate key is refused**. `serde_json` keeps
//! the last one and other parsers keep the first, so a body with duplicates could be
//! validated as one thing and read as another by a consumer.

use std::borrow::Cow;

use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde_json::{Map, Number, Value};

/// SWAR masks: a one in every byte, and every byte's high bit.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Same nesting limit as `serde_json`, so both representations accept the same bodies.
pub const MAX_DEPTH: usize = 128;

/// Objects up to this many members are checked for duplicate keys pairwise; larger
/// ones through a hash set.
const PAIRWISE_DUPLICATE_CHECK: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    False,
    True,
    /// Non-negative integer literal that fits `u64`.
    UInt,
    /// Negative integer literal that fits `i64`.
    Int,
    /// Any other number, as a finite `f64`.
    Float,
    /// String whose text is a slice of the input.
    Str,
    /// String that had escapes; its unescaped text is in `Document::side`.
    StrOwned,
    Object,
    Array,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    kind: Kind,
    /// Strings and numbers: byte offset of the text. Containers: member/element count.
    a: u32,
    /// Strings and numbers: byte length of the text. Containers: index one past the
    /// container's last entry (so a subtree is skipped in O(1)).
    b: u32,
    /// Number payload: `u64`, `i64` or `f64` bits depending on `kind`.
    bits: u64,
}

/// Where and why a body is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the body.
    pub offset: usize,
    pub reason: Cow<'static, str>,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.reason)
    }
}

/// One parsed JSON document borrowing its input. Reuse one with [`Document::reparse`]
/// to keep its allocations across a batch.
#[derive(Debug, Default)]
pub struct Document<'s> {
    src: &'s str,
    side: String,
    entries: Vec<Entry>,
    keys: Vec<u32>,
}

impl<'s> Document<'s> {
    /// Parse `bytes` into a new document.
    pub fn parse(bytes: &'s [u8]) -> Result<Self, ParseError> {
        let mut doc = Document::default();
        doc.reparse(bytes)?;
        Ok(doc)
    }

    /// Parse `bytes`, reusing this document's buffers. On error the document is empty.
    pub fn reparse(&mut self, bytes: &'s [u8]) -> Result<(), ParseError> {
        self.src = "";
        self.side.clear();
        self.entries.clear();
        if u32::try_from(bytes.len()).is_err() {
            return Err(ParseError {
                offset: 0,
                reason: "document larger than 4 GiB".into(),
            });
        }
        let src = std::str::from_utf8(bytes).map_err(|e| ParseError {
            offset: e.valid_up_to(),
            reason: "invalid UTF-8".into(),
        })?;
        self.src = src;
        let mut parser = Parser {
            bytes,
            pos: 0,
            doc: self,
        };
        let result = parser.document();
        if result.is_err() {
            self.entries.clear();
        }
        result
    }

    /// The root value.
    pub fn root(&self) -> TapeNode<'_> {
        TapeNode { doc: self, idx: 0 }
    }

    /// The whole document as a `serde_json::Value` (cold paths: error instances).
    pub fn to_value(&self) -> Value {
        self.root().materialize()
    }

    fn str_at(&self, e: Entry) -> &str {
        let (start, end) = (e.a as usize, e.a as usize + e.b as usize);
        let text = if e.kind == Kind::Str {
            self.src
        } else {
            self.side.as_str()
        };
        text.get(start..end).unwrap_or_default()
    }

    fn entry(&self, idx: u32) -> Entry {
        self.entries.get(idx as usize).copied().unwrap_or(Entry {
            kind: Kind::Null,
            a: 0,
            b: 0,
            bits: 0,
        })
    }

    /// Index one past the subtree rooted at `idx`.
    fn end_of(&self, idx: u32) -> u32 {
        let e = self.entry(idx);
        match e.kind {
            Kind::Object | Kind::Array => e.b,
            _ => idx + 1,
        }
    }
}

struct Parser<'p, 's> {
    bytes: &'s [u8],
    pos: usize,
    doc: &'p mut Document<'s>,
}

#[allow(clippy::cast_possible_truncation)] // offsets fit u32: the length was checked
impl Parser<'_, '_> {
    fn err<T>(&self, reason: &'static str) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn document(&mut self) -> Result<(), ParseError> {
        self.value(0)?;
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return self.err("trailing characters after the JSON value");
        }
        Ok(())
    }

    fn push(&mut self, kind: Kind, a: u32, b: u32, bits: u64) -> u32 {
        let idx = self.doc.entries.len() as u32;
        self.doc.entries.push(Entry { kind, a, b, bits });
        idx
    }

    fn literal(&mut self, word: &'static [u8], kind: Kind) -> Result<(), ParseError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            self.push(kind, 0, 0, 0);
            Ok(())
        } else {
            self.err("expected a JSON value")
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true", Kind::True),
            Some(b'f') => self.literal(b"false", Kind::False),
            Some(b'n') => self.literal(b"null", Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.err("expected a JSON value"),
            None => self.err("unexpected end of input"),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return self.err("nesting deeper than 128 levels");
        }
        let idx = self.push(Kind::Object, 0, 0, 0);
        self.pos += 1;
        self.skip_ws();
        let mut count: u32 = 0;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek() != Some(b'"') {
                    return self.err("expected a string key");
                }
                self.string()?;
                self.hash_last_key();
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return self.err("expected ':' after an object key");
                }
                self.pos += 1;
                self.value(depth)?;
                count += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.err("expected ',' or '}' in an object"),
                }
            }
        }
        let end = self.doc.entries.len() as u32;
        if let Some(e) = self.doc.entries.get_mut(idx as usize) {
            e.a = count;
            e.b = end;
        }
        if count > 1 {
            self.check_duplicates(idx, end)?;
        }
        Ok(())
    }

    fn check_duplicates(&mut self, idx: u32, end: u32) -> Result<(), ParseError> {
        // Keys carry an FNV-1a hash of their text (computed while scanning them), so
        // the pairwise pass compares integers and touches text only on a hash match.
        let mut keys = std::mem::take(&mut self.doc.keys);
        keys.clear();
        let mut k = idx + 1;
        while k < end {
            keys.push(k);
            k = self.doc.end_of(k + 1);
        }
        let doc = &*self.doc;
        let name = |i: u32| doc.str_at(doc.entry(i));
        let hash = |i: u32| doc.entry(i).bits;
        let duplicate = if keys.len() <= PAIRWISE_DUPLICATE_CHECK {
            let mut hashes = [0_u64; PAIRWISE_DUPLICATE_CHECK];
            for (slot, &ki) in hashes.iter_mut().zip(&keys) {
                *slot = hash(ki);
            }
            let hashes = &hashes[..keys.len()];
            let mut found = None;
            'outer: for (i, &hi) in hashes.iter().enumerate() {
                for (j, &hj) in hashes.iter().enumerate().skip(i + 1) {
                    if hi == hj && name(keys[i]) == name(keys[j]) {
                        found = Some(name(keys[i]).to_owned());
                        break 'outer;
                    }
                }
            }
            found
        } else {
            let mut seen = std::collections::HashSet::with_capacity(keys.len());
            keys.iter()
                .map(|&ki| name(ki))
                .find(|n| !seen.insert(*n))
                .map(str::to_owned)
        };
        self.doc.keys = keys;
        match duplicate {
            Some(key) => Err(ParseError {
                offset: self.pos,
                reason: format!("duplicate object key {key:?}").into(),
            }),
            None => Ok(()),
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return self.err("nesting deeper than 128 levels");
        }
        let idx = self.push(Kind::Array, 0, 0, 0);
        self.pos += 1;
        self.skip_ws();
        let mut count: u32 = 0;
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.value(depth)?;
                count += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.err("expected ',' or ']' in an array"),
                }
            }
        }
        let end = self.doc.entries.len() as u32;
        if let Some(e) = self.doc.entries.get_mut(idx as usize) {
            e.a = count;
            e.b = end;
        }
        Ok(())
    }

    /// A cheap fingerprint of the key just pushed (length, first and last eight
    /// bytes), kept in its `bits`: equal keys always have equal fingerprints, and the
    /// duplicate check compares text only when fingerprints match.
    fn hash_last_key(&mut self) {
        let Some(&e) = self.doc.entries.last() else {
            return;
        };
        let (start, end) = (e.a as usize, e.a as usize + e.b as usize);
        let text = if e.kind == Kind::Str {
            self.bytes
        } else {
            self.doc.side.as_bytes()
        };
        let bytes = text.get(start..end).unwrap_or_default();
        let word = |chunk: &[u8]| {
            let mut w = [0_u8; 8];
            let n = chunk.len().min(8);
            w[..n].copy_from_slice(&chunk[..n]);
            u64::from_le_bytes(w)
        };
        let head = word(bytes);
        let tail = word(
            bytes
                .get(bytes.len().saturating_sub(8)..)
                .unwrap_or_default(),
        );
        let h = (head
            ^ tail.rotate_left(29)
            ^ (bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        if let Some(last) = self.doc.entries.last_mut() {
            last.bits = h;
        }
    }

    /// At the opening quote. Pushes a `Str` (no escapes) or a `StrOwned` entry.
    fn string(&mut self) -> Result<(), ParseError> {
        self.pos += 1;
        let start = self.pos;
        // Eight bytes at a time (SWAR): stop at the first '"', '\\' or control byte.
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            let x = u64::from_le_bytes(word);
            let quote = x ^ (ONES * u64::from(b'"'));
            let backslash = x ^ (ONES * u64::from(b'\\'));
            let special = (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (x.wrapping_sub(ONES * 0x20) & !x);
            if special & HIGH != 0 {
                break;
            }
            self.pos += 8;
        }
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.push(Kind::Str, start as u32, (self.pos - start) as u32, 0);
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => return self.escaped_string(start),
                Some(0..0x20) => return self.err("control character in a string"),
                Some(_) => self.pos += 1,
                None => return self.err("unterminated string"),
            }
        }
    }

    fn escaped_string(&mut self, start: usize) -> Result<(), ParseError> {
        let side_start = self.doc.side.len();
        // The prefix before the first escape is valid UTF-8 (the whole input is, and
        // we stopped at an ASCII byte).
        let prefix = self.doc.src.get(start..self.pos).unwrap_or_default();
        self.doc.side.push_str(prefix);
        let mut run = self.pos;
        loop {
            match self.peek() {
                Some(b'"') => {
                    let tail = self.doc.src.get(run..self.pos).unwrap_or_default();
                    self.doc.side.push_str(tail);
                    let len = self.doc.side.len() - side_start;
                    if u32::try_from(self.doc.side.len()).is_err() {
                        return self.err("unescaped strings larger than 4 GiB");
                    }
                    self.push(Kind::StrOwned, side_start as u32, len as u32, 0);
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let tail = self.doc.src.get(run..self.pos).unwrap_or_default();
                    self.doc.side.push_str(tail);
                    self.pos += 1;
                    let simple = match self.peek() {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'u') => None,
                        _ => return self.err("invalid escape in a string"),
                    };
                    let c = if let Some(c) = simple {
                        self.pos += 1;
                        c
                    } else {
                        self.pos += 1;
                        self.unicode_escape()?
                    };
                    self.doc.side.push(c);
                    run = self.pos;
                }
                Some(0..0x20) => return self.err("control character in a string"),
                Some(_) => self.pos += 1,
                None => return self.err("unterminated string"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return self.err("invalid \\u escape"),
            };
            v = (v << 4) | u16::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// After `\u`: four hex digits, and a low surrogate escape after a high one.
    /// Lone surrogates are refused, as `serde_json` does.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return self.err("lone leading surrogate in a \\u escape");
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return self.err("lone leading surrogate in a \\u escape");
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.err("lone trailing surrogate in a \\u escape"),
            _ => u32::from(first),
        };
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => self.err("invalid \\u escape"),
        }
    }

    /// RFC 8259 number. Integers become `u64`/`i64` when they fit and `f64` otherwise,
    /// like `serde_json` (which also reads `-0` as the float `-0.0`).
    fn number(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return self.err("leading zero in a number");
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            _ => return self.err("expected a digit"),
        }
        let int_end = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err("expected a digit after the decimal point");
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            is_float = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err("expected a digit in the exponent");
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
        }
        let text = self.doc.src.get(start..self.pos).unwrap_or_default();
        let (a, b) = (start as u32, (self.pos - start) as u32);
        if !is_float {
            let digits = self
                .bytes
                .get(start + usize::from(negative)..int_end)
                .unwrap_or_default();
            let mut magnitude: Option<u64> = Some(0);
            for &d in digits {
                magnitude = magnitude
                    .and_then(|m| m.checked_mul(10))
                    .and_then(|m| m.checked_add(u64::from(d - b'0')));
            }
            match (negative, magnitude) {
                (false, Some(m)) => {
                    self.push(Kind::UInt, a, b, m);
                    return Ok(());
                }
                (true, Some(m)) if m != 0 && m <= 1 << 63 => {
                    // `m` is at most 2^63, so the wrapping negation is exact.
                    #[allow(clippy::cast_possible_wrap)]
                    let v = (m as i64).wrapping_neg();
                    self.push(Kind::Int, a, b, v.cast_unsigned());
                    return Ok(());
                }
                _ => {}
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => {
                self.push(Kind::Float, a, b, f.to_bits());
                Ok(())
            }
            _ => Err(ParseError {
                offset: start,
                reason: "number out of range".into(),
            }),
        }
    }
}

// ---- the `jsonschema` representation -------------------------------------------------

/// Marker type: validates [`TapeNode`]s with `jsonschema::options_for::<TapeJson>()`.
pub struct TapeJson;

impl Json for TapeJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = Document<'static>;

    // `get` is a scan over members in document order, so a members pass is never
    // slower than lookups; the bound keeps `KEYS_PER_LOOKUP * count` from overflowing.
    const KEYS_PER_LOOKUP: usize = 1 << 20;
    // A tape is a tree: no node contains itself.
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        buffer: &mut Document<'static>,
        string: &str,
        f: impl FnOnce(TapeNode<'_>) -> T,
    ) -> T {
        buffer.src = "";
        buffer.side.clear();
        buffer.side.push_str(string);
        buffer.entries.clear();
        #[allow(clippy::cast_possible_truncation)] // property names come from a tape
        let len = string.len() as u32;
        buffer.entries.push(Entry {
            kind: Kind::StrOwned,
            a: 0,
            b: len,
            bits: 0,
        });
        f(TapeNode {
            doc: buffer,
            idx: 0,
        })
    }
}

/// One value in a [`Document`].
#[derive(Clone, Copy)]
pub struct TapeNode<'a> {
    doc: &'a Document<'a>,
    idx: u32,
}

impl<'a> TapeNode<'a> {
    fn entry(&self) -> Entry {
        self.doc.entry(self.idx)
    }

    fn text(&self) -> &'a str {
        self.doc.str_at(self.entry())
    }

    fn number(&self) -> Option<TapeNumber<'a>> {
        let e = self.entry();
        match e.kind {
            Kind::UInt | Kind::Int | Kind::Float => Some(TapeNumber {
                kind: e.kind,
                bits: e.bits,
                raw: self.text(),
            }),
            _ => None,
        }
    }

    fn materialize(&self) -> Value {
        let e = self.entry();
        match e.kind {
            Kind::Null => Value::Null,
            Kind::False => Value::Bool(false),
            Kind::True => Value::Bool(true),
            Kind::UInt | Kind::Int | Kind::Float => self
                .number()
                .map_or(Value::Null, |n| Value::Number(n.to_number().into_owned())),
            Kind::Str | Kind::StrOwned => Value::String(self.text().to_owned()),
            Kind::Array => Value::Array(self.elements().map(|n| n.materialize()).collect()),
            Kind::Object => {
                let mut map = Map::new();
                for (k, v) in self.members() {
                    map.insert(k.to_owned(), v.materialize());
                }
                Value::Object(map)
            }
        }
    }

    fn members(&self) -> TapeMembers<'a> {
        let e = self.entry();
        TapeMembers {
            doc: self.doc,
            next: self.idx + 1,
            end: if e.kind == Kind::Object { e.b } else { 0 },
        }
    }

    fn elements(&self) -> TapeElements<'a> {
        let e = self.entry();
        TapeElements {
            doc: self.doc,
            next: self.idx + 1,
            end: if e.kind == Kind::Array { e.b } else { 0 },
        }
    }
}

/// A number in a [`Document`]; `raw` is its literal text.
#[derive(Clone, Copy)]
pub struct TapeNumber<'a> {
    kind: Kind,
    bits: u64,
    raw: &'a str,
}

impl TapeNumber<'_> {
    #[allow(clippy::cast_possible_wrap)]
    fn int(&self) -> i64 {
        self.bits as i64
    }
}

impl JsonNumber for TapeNumber<'_> {
    fn as_u64(&self) -> Option<u64> {
        (self.kind == Kind::UInt).then_some(self.bits)
    }

    fn as_i64(&self) -> Option<i64> {
        match self.kind {
            Kind::UInt => i64::try_from(self.bits).ok(),
            Kind::Int => Some(self.int()),
            _ => None,
        }
    }

    #[allow(clippy::cast_precision_loss)] // the same conversion `serde_json::Number::as_f64` does
    fn as_f64(&self) -> Option<f64> {
        Some(match self.kind {
            Kind::UInt => self.bits as f64,
            Kind::Int => self.int() as f64,
            _ => f64::from_bits(self.bits),
        })
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.raw)
    }

    fn to_number(&self) -> Cow<'_, Number> {
        Cow::Owned(match self.kind {
            Kind::UInt => Number::from(self.bits),
            Kind::Int => Number::from(self.int()),
            // Finite by construction; `from_f64` only refuses NaN and infinities.
            _ => Number::from_f64(f64::from_bits(self.bits)).unwrap_or_else(|| Number::from(0_u8)),
        })
    }

    fn is_integer(&self) -> bool {
        match self.kind {
            Kind::UInt | Kind::Int => true,
            _ => f64::from_bits(self.bits).fract() == 0.0,
        }
    }

    fn is_written_as_integer(&self) -> bool {
        !self.raw.contains(['.', 'e', 'E'])
    }
}

impl<'a> Node<'a, TapeJson> for TapeNode<'a> {
    type Object = TapeObject<'a>;
    type Array = TapeArray<'a>;
    type Number = TapeNumber<'a>;

    fn as_object(&self) -> Option<TapeObject<'a>> {
        let e = self.entry();
        (e.kind == Kind::Object).then_some(TapeObject {
            node: *self,
            len: e.a,
        })
    }

    fn as_array(&self) -> Option<TapeArray<'a>> {
        let e = self.entry();
        (e.kind == Kind::Array).then_some(TapeArray {
            node: *self,
            len: e.a,
        })
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self.entry().kind {
            Kind::Str | Kind::StrOwned => Some(Cow::Borrowed(self.text())),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<TapeNumber<'a>> {
        self.number()
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.entry().kind {
            Kind::True => Some(true),
            Kind::False => Some(false),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        self.entry().kind == Kind::Null
    }

    fn is_number(&self) -> bool {
        matches!(self.entry().kind, Kind::UInt | Kind::Int | Kind::Float)
    }

    fn is_string(&self) -> bool {
        matches!(self.entry().kind, Kind::Str | Kind::StrOwned)
    }

    fn json_type(&self) -> JsonType {
        match self.entry().kind {
            Kind::Null => JsonType::Null,
            Kind::False | Kind::True => JsonType::Boolean,
            Kind::UInt | Kind::Int | Kind::Float => JsonType::Number,
            Kind::Str | Kind::StrOwned => JsonType::String,
            Kind::Object => JsonType::Object,
            Kind::Array => JsonType::Array,
        }
    }

    fn string_length(&self) -> Option<u64> {
        self.is_string().then(|| self.text().chars().count() as u64)
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        if !self.is_string() {
            return None;
        }
        // A code point takes one to four bytes: the byte length often decides alone.
        let text = self.text();
        let bytes = text.len() as u64;
        if bytes < min || bytes.div_ceil(4) > max {
            return Some(false);
        }
        if min <= bytes.div_ceil(4) && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(text.chars().count() as u64)))
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match expected {
            Value::Null => self.is_null(),
            Value::Bool(b) => self.as_boolean() == Some(*b),
            Value::Number(n) => self
                .number()
                .is_some_and(|got| jsonschema::json::cmp::equal_numbers(&got, n)),
            Value::String(s) => self.is_string() && self.text() == s.as_str(),
            Value::Array(items) => self.as_array().is_some_and(|arr| {
                arr.len() == items.len()
                    && self.elements().zip(items).all(|(n, v)| n.equals_value(v))
            }),
            Value::Object(map) => self.as_object().is_some_and(|obj| {
                obj.len() == map.len()
                    && self
                        .members()
                        .all(|(k, n)| map.get(k).is_some_and(|v| n.equals_value(v)))
            }),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(self.materialize())
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            std::ptr::from_ref(self.doc) as usize,
            self.idx,
        ))
    }
}

/// Members of an object, in document order.
pub struct TapeMembers<'a> {
    doc: &'a Document<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for TapeMembers<'a> {
    type Item = (&'a str, TapeNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let key = self.doc.str_at(self.doc.entry(self.next));
        let value = TapeNode {
            doc: self.doc,
            idx: self.next + 1,
        };
        self.next = self.doc.end_of(self.next + 1);
        Some((key, value))
    }
}

/// Elements of an array.
pub struct TapeElements<'a> {
    doc: &'a Document<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for TapeElements<'a> {
    type Item = TapeNode<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let node = TapeNode {
            doc: self.doc,
            idx: self.next,
        };
        self.next = self.doc.end_of(self.next);
        Some(node)
    }
}

/// An object node.
#[derive(Clone, Copy)]
pub struct TapeObject<'a> {
    node: TapeNode<'a>,
    len: u32,
}

impl<'a> Object<'a, TapeJson> for TapeObject<'a> {
    type Node = TapeNode<'a>;
    type MemberName = &'a str;
    type MembersIter = TapeMembers<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }

    fn get(&self, key: &Box<str>) -> Option<TapeNode<'a>> {
        self.node
            .members()
            .find(|(k, _)| *k == &**key)
            .map(|(_, v)| v)
    }

    fn members(&self) -> TapeMembers<'a> {
        self.node.members()
    }
}

/// An array node.
#[derive(Clone, Copy)]
pub struct TapeArray<'a> {
    node: TapeNode<'a>,
    len: u32,
}

impl<'a> Array<'a, TapeJson> for TapeArray<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = TapeElements<'a>;

    fn len(&self) -> usize {
        self.len as usize
    }

    fn elements(&self) -> TapeElements<'a> {
        self.node.elements()
    }
}
