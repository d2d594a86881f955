//! The scanner as it was before its tuning for speed, kept verbatim (test builds
//! only) as the reference that `flatten_json` must agree with byte for byte, errors
//! included: see `differential` below and in `tests.rs`.
//!
//! Event -> the leaf values at the paths some pattern uses, nothing else. A trie of
//! those paths steers a small validating JSON scanner: keys no pattern names are
//! skipped (validated, not stored), so the cost is one pass over the bytes.
//!
//! Each leaf remembers which array elements it sits in (array id, index), so a
//! branch can refuse to combine fields from different elements of one array, as
//! EventBridge's array-consistent matching does.

use rustc_hash::FxHashMap;

use crate::{Error, Result};

/// Deepest nesting of arrays/objects followed inside an event.
const MAX_EVENT_DEPTH: usize = 128;

pub(crate) const NO_PATH: u32 = u32::MAX;

/// The trie of pattern paths. Node 0 is the root (the event object).
#[derive(Debug, Default)]
pub(crate) struct PathTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// Few children are scanned, many are hashed; both by `KeyPrint`, so matching a
    /// key costs integer compares, not a `memcmp` call per candidate.
    small: Vec<(KeyPrint, Box<[u8]>, u32)>,
    map: FxHashMap<KeyPrint, (Box<[u8]>, u32)>,
    /// The path id if some pattern constrains this exact path.
    path: u32,
}

/// A key's length with its first and last (up to) eight bytes: equal prints mean equal
/// keys up to 16 bytes long; longer keys are compared in full after the print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct KeyPrint {
    len: usize,
    head: u64,
    tail: u64,
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

impl KeyPrint {
    #[inline]
    fn of(key: &[u8]) -> KeyPrint {
        // Overlapping fixed-size loads cover every byte of a key up to 16 long (the
        // length tells the overlap apart), in a handful of instructions.
        let n = key.len();
        let (head, tail) = match n {
            0 => (0, 0),
            1..=3 => (
                u64::from(key[0]) | u64::from(key[n / 2]) << 8 | u64::from(key[n - 1]) << 16,
                0,
            ),
            4..=7 => (
                u64::from(le32(&key[..4])) | u64::from(le32(&key[n - 4..])) << 32,
                0,
            ),
            _ => (le64(&key[..8]), le64(&key[n - 8..])),
        };
        KeyPrint { len: n, head, tail }
    }

    #[inline]
    fn same(&self, print: &KeyPrint, stored: &[u8], key: &[u8]) -> bool {
        self == print && (self.len <= 16 || stored == key)
    }
}

impl PathTrie {
    pub(crate) fn new() -> Self {
        PathTrie {
            nodes: vec![TrieNode {
                path: NO_PATH,
                ..TrieNode::default()
            }],
        }
    }

    /// Add `path`, with an edge for each run of two or more steps under the run's
    /// dotted key (as `flatten::PathTrie::insert` does: an event key holding dots is
    /// several steps at once).
    pub(crate) fn insert(&mut self, path: &[Box<str>], id: u32) {
        let mut chain = vec![0u32];
        for key in path {
            let node = chain[chain.len() - 1];
            let next = self.edge(node, key.as_bytes(), None);
            chain.push(next);
        }
        for from in 0..path.len() {
            for to in from + 2..=path.len() {
                let joined: Vec<&str> = path[from..to].iter().map(AsRef::as_ref).collect();
                self.edge(chain[from], joined.join(".").as_bytes(), Some(chain[to]));
            }
        }
        self.nodes[chain[path.len()] as usize].path = id;
    }

    fn edge(&mut self, node: u32, k: &[u8], to: Option<u32>) -> u32 {
        if let Some(c) = self.child(node, k) {
            return c;
        }
        let c = to.unwrap_or_else(|| {
            self.nodes.push(TrieNode {
                path: NO_PATH,
                ..TrieNode::default()
            });
            to_u32(self.nodes.len() - 1)
        });
        let n = &mut self.nodes[node as usize];
        let print = KeyPrint::of(k);
        n.small.push((print, k.into(), c));
        n.map.insert(print, (k.into(), c));
        c
    }

    #[inline]
    fn child(&self, node: u32, key: &[u8]) -> Option<u32> {
        let n = &self.nodes[node as usize];
        if n.small.is_empty() {
            return None;
        }
        let print = KeyPrint::of(key);
        if n.small.len() <= 8 {
            n.small
                .iter()
                .find(|(p, k, _)| p.same(&print, k, key))
                .map(|&(_, _, c)| c)
        } else {
            n.map
                .get(&print)
                .filter(|(k, _)| print.same(&print, k, key))
                .map(|&(_, c)| c)
        }
    }

    #[inline]
    fn has_children(&self, node: u32) -> bool {
        !self.nodes[node as usize].small.is_empty()
    }

    #[inline]
    fn path_of(&self, node: u32) -> u32 {
        self.nodes[node as usize].path
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Num,
    True,
    False,
    Null,
}

/// One value at a pattern path. `text` is a range in `Flat::arena` (the unescaped
/// string, or the number's JSON text); `mem` a range in `Flat::mem`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leaf {
    pub path: u32,
    pub kind: Kind,
    pub text: (u32, u32),
    pub mem: (u32, u32),
}

/// The flattened event, reused across events to keep allocations out of the loop.
#[derive(Debug, Default)]
pub(crate) struct Flat {
    pub leaves: Vec<Leaf>,
    pub arena: Vec<u8>,
    /// (array id, element index) pairs.
    pub mem: Vec<(u32, u32)>,
    stack: Vec<(u32, u32)>,
    next_array: u32,
}

impl Flat {
    pub(crate) fn clear(&mut self) {
        self.leaves.clear();
        self.arena.clear();
        self.mem.clear();
        self.stack.clear();
        self.next_array = 0;
    }

    #[inline]
    pub(crate) fn text(&self, leaf: &Leaf) -> &[u8] {
        &self.arena[leaf.text.0 as usize..leaf.text.1 as usize]
    }

    #[inline]
    pub(crate) fn membership(&self, leaf: &Leaf) -> &[(u32, u32)] {
        &self.mem[leaf.mem.0 as usize..leaf.mem.1 as usize]
    }

    fn push(&mut self, path: u32, kind: Kind, text: &[u8]) {
        let a = self.arena.len();
        self.arena.extend_from_slice(text);
        self.push_at(path, kind, a);
    }

    /// Record a leaf whose text was already appended to the arena from `a` on.
    fn push_at(&mut self, path: u32, kind: Kind, a: usize) {
        let m = self.mem.len();
        self.mem.extend_from_slice(&self.stack);
        self.leaves.push(Leaf {
            path,
            kind,
            text: (to_u32(a), to_u32(self.arena.len())),
            mem: (to_u32(m), to_u32(self.mem.len())),
        });
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidEvent {
        field: "<event>".to_owned(),
        reason: reason.into(),
    }
}

/// Flatten JSON text. The top level must be an object and the whole text valid JSON
/// (RFC 8259): skipped parts are validated too, only not stored.
pub(crate) fn flatten_json(trie: &PathTrie, json: &[u8], flat: &mut Flat) -> Result<()> {
    flat.clear();
    let mut sc = Scanner { b: json, i: 0 };
    sc.ws();
    if sc.peek() != Some(b'{') {
        return Err(bad("an event must be a JSON object"));
    }
    sc.object(trie, 0, 0, flat)?;
    sc.ws();
    if sc.i != json.len() {
        return Err(sc.err("trailing characters after the event"));
    }
    Ok(())
}

/// A validating JSON scanner that stores only what the trie asks for.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// Bit i set when byte i of `chunk` ends a plain run ('"', '\\' or a control byte), and
/// the bytes with their high bit set (non-ASCII). Only the lowest bit of the first mask
/// is relied on. SSE2 (always present on `x86_64`) does 16 bytes in a few instructions.
#[cfg(target_arch = "x86_64")]
#[inline]
fn scan16(chunk: &[u8; 16]) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
    // available; `chunk` is 16 readable bytes and `loadu` needs no alignment.
    let (special, high) = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x22));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x5c));
        // min(v, 0x1f) == v exactly for bytes 0x00..=0x1f (unsigned compare).
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let special = _mm_or_si128(_mm_or_si128(quote, backslash), control);
        (_mm_movemask_epi8(special), _mm_movemask_epi8(v))
    };
    (special.cast_unsigned(), high.cast_unsigned())
}

/// Portable form of `scan16`: eight bytes at a time in a `u64` (SWAR), where a
/// flagged byte gets its high bit set; exact for the lowest flagged byte, which is all
/// the caller uses.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn scan16(chunk: &[u8; 16]) -> (u32, u32) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |w: u64| w.wrapping_sub(LO) & !w & HI;
    // Gather each byte's high bit into one bit per byte.
    let gather = |m: u64| {
        u32::try_from(((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56).unwrap_or(0xff)
    };
    let half = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        let w = u64::from_le_bytes(a);
        let hit = zero_bytes(w ^ (LO * 0x22))
            | zero_bytes(w ^ (LO * 0x5c))
            | (w.wrapping_sub(LO * 0x20) & !w & HI);
        (gather(hit), gather(w & HI))
    };
    let (s0, h0) = half(&chunk[..8]);
    let (s1, h1) = half(&chunk[8..]);
    (s0 | s1 << 8, h0 | h1 << 8)
}

impl Scanner<'_> {
    fn err(&self, what: &str) -> Error {
        bad(format!("not valid JSON at byte {}: {what}", self.i))
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &str) -> Result<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// After an opening quote: the raw string up to the closing quote, and whether it
    /// holds escapes. Eight bytes at a time look for '"', '\\' or a control byte.
    #[inline]
    fn string_raw(&mut self) -> Result<(usize, usize, bool)> {
        let start = self.i;
        let mut escaped = false;
        // Bytes >= 0x80 may only appear inside strings; such strings are checked as
        // UTF-8 once their end is known (a chunk may flag bytes past the end: harmless).
        let mut high = 0u32;
        loop {
            while let Some(chunk) = self
                .b
                .get(self.i..self.i + 16)
                .and_then(|c| <&[u8; 16]>::try_from(c).ok())
            {
                let (special, hi) = scan16(chunk);
                high |= hi;
                if special != 0 {
                    self.i += special.trailing_zeros() as usize;
                    break;
                }
                self.i += 16;
            }
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    let end = self.i;
                    if high != 0 && std::str::from_utf8(&self.b[start..end]).is_err() {
                        return Err(self.err("string is not valid UTF-8"));
                    }
                    self.i += 1;
                    return Ok((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    match self.b.get(self.i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 2..self.i + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.err("bad \\u escape"));
                            }
                            self.i += 6;
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                0..=0x1f => return Err(self.err("control character in string")),
                c => {
                    high |= u32::from(c & 0x80);
                    self.i += 1;
                }
            }
        }
    }

    /// Unescape `b[start..end]` (known well-formed) onto `out`.
    fn unescape(&self, start: usize, end: usize, out: &mut Vec<u8>) -> Result<()> {
        let s = &self.b[start..end];
        let mut k = 0;
        while k < s.len() {
            if s[k] != b'\\' {
                out.push(s[k]);
                k += 1;
                continue;
            }
            let c = s[k + 1];
            k += 2;
            let simple = match c {
                b'b' => Some(0x08),
                b'f' => Some(0x0c),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'u' => None,
                other => Some(other),
            };
            if let Some(b) = simple {
                out.push(b);
                continue;
            }
            let hex = |at: usize| -> Option<u32> {
                u32::from_str_radix(std::str::from_utf8(s.get(at..at + 4)?).ok()?, 16).ok()
            };
            let hi = hex(k).ok_or_else(|| self.err("bad \\u escape"))?;
            k += 4;
            let code = if (0xD800..0xDC00).contains(&hi) {
                let lo = if s.get(k..k + 2) == Some(b"\\u") {
                    hex(k + 2)
                } else {
                    None
                };
                match lo {
                    Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                        k += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    _ => return Err(self.err("lone surrogate in \\u escape")),
                }
            } else if (0xDC00..0xE000).contains(&hi) {
                return Err(self.err("lone surrogate in \\u escape"));
            } else {
                hi
            };
            let ch = char::from_u32(code).ok_or_else(|| self.err("bad \\u escape"))?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        Ok(())
    }

    /// A number per the JSON grammar; returns its text range.
    fn number(&mut self) -> Result<(usize, usize)> {
        let start = self.i;
        let digits = |sc: &mut Self| {
            let s = sc.i;
            while sc.peek().is_some_and(|c| c.is_ascii_digit()) {
                sc.i += 1;
            }
            sc.i - s
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let first = self.peek();
        let n = digits(self);
        if n == 0 || (n > 1 && first == Some(b'0')) {
            return Err(self.err("bad number"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("bad number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("bad number"));
            }
        }
        // serde_json refuses a number that overflows an f64; so do we, at its start.
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
        if !text.parse::<f64>().is_ok_and(f64::is_finite) {
            self.i = start;
            return Err(self.err("bad number"));
        }
        Ok((start, self.i))
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("unexpected character"))
        }
    }

    /// At '{': walk the members, following the trie where it has children.
    fn object(&mut self, trie: &PathTrie, node: u32, depth: usize, flat: &mut Flat) -> Result<()> {
        if depth > MAX_EVENT_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_EVENT_DEPTH} levels")));
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.expect(b'"', "expected a key")?;
            let (a, e, esc) = self.string_raw()?;
            let child = if esc {
                let mut key = Vec::new();
                self.unescape(a, e, &mut key)?;
                trie.child(node, &key)
            } else {
                trie.child(node, &self.b[a..e])
            };
            self.expect(b':', "expected ':'")?;
            self.ws();
            match child {
                Some(c) => self.value(trie, c, depth + 1, flat)?,
                None => self.skip(depth + 1)?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
            self.ws();
        }
    }

    /// A value at trie node `node`: stored if the node is a pattern path.
    fn value(&mut self, trie: &PathTrie, node: u32, depth: usize, flat: &mut Flat) -> Result<()> {
        if depth > MAX_EVENT_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_EVENT_DEPTH} levels")));
        }
        let path = trie.path_of(node);
        match self.peek() {
            Some(b'{') => {
                if trie.has_children(node) {
                    self.object(trie, node, depth, flat)
                } else {
                    self.skip(depth)
                }
            }
            Some(b'[') => {
                self.i += 1;
                let id = flat.next_array;
                flat.next_array += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                let mut idx = 0u32;
                loop {
                    self.ws();
                    flat.stack.push((id, idx));
                    let r = self.value(trie, node, depth + 1, flat);
                    flat.stack.pop();
                    r?;
                    idx += 1;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            _ if path == NO_PATH => self.skip(depth),
            Some(b'"') => {
                self.i += 1;
                let (a, e, esc) = self.string_raw()?;
                let at = flat.arena.len();
                if esc {
                    self.unescape(a, e, &mut flat.arena)?;
                } else {
                    flat.arena.extend_from_slice(&self.b[a..e]);
                }
                flat.push_at(path, Kind::Str, at);
                Ok(())
            }
            Some(b't') => {
                self.literal(b"true")?;
                flat.push(path, Kind::True, b"");
                Ok(())
            }
            Some(b'f') => {
                self.literal(b"false")?;
                flat.push(path, Kind::False, b"");
                Ok(())
            }
            Some(b'n') => {
                self.literal(b"null")?;
                flat.push(path, Kind::Null, b"");
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let (a, e) = self.number()?;
                flat.push(path, Kind::Num, &self.b[a..e]);
                Ok(())
            }
            _ => Err(self.err("expected a value")),
        }
    }

    /// Skip (and validate) one value.
    fn skip(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_EVENT_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_EVENT_DEPTH} levels")));
        }
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                self.string_raw().map(|_| ())
            }
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.expect(b'"', "expected a key")?;
                    self.string_raw()?;
                    self.expect(b':', "expected ':'")?;
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            self.ws();
                        }
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => Err(self.err("expected a value")),
        }
    }
}
