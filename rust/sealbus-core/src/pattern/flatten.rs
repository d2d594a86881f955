//! Event -> the leaf values at the paths some pattern uses, nothing else. A trie of
//! those paths steers a small validating JSON scanner: keys no pattern names are
//! skipped (validated, not stored), so the cost is one pass over the bytes.
//!
//! Each leaf remembers which array elements it sits in (array id, index), so a
//! branch can refuse to combine fields from different elements of one array, as
//! EventBridge's array-consistent matching does.

use serde_json::Value;

use crate::{Error, Result};

/// Deepest nesting of arrays/objects followed inside an event.
const MAX_EVENT_DEPTH: usize = 128;

pub(crate) const NO_PATH: u32 = u32::MAX;

/// The trie of pattern paths. Node 0 is the root (the event object).
#[derive(Debug, Default)]
pub(crate) struct PathTrie {
    nodes: Vec<TrieNode>,
    /// Tells tries apart for the key guesses a `Flat` keeps (see `KeyGuess`).
    id: u64,
}

static NEXT_TRIE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Debug, Default)]
struct TrieNode {
    /// The children, found by their `KeyPrint`: a linear scan for a few, an
    /// open-addressing table (`table`, indexes into `children`) for more.
    children: Vec<Child>,
    table: Vec<u32>,
    /// The path id if some pattern constrains this exact path.
    path: u32,
}

#[derive(Debug)]
struct Child {
    print: KeyPrint,
    /// The full key, compared only when the key is longer than a print holds.
    key: Box<[u8]>,
    node: u32,
}

/// Children scanned one by one up to this many; a node with more gets a hash table.
const LINEAR_CHILDREN: usize = 4;
const EMPTY_SLOT: u32 = u32::MAX;

/// A key's length with its first 16 bytes (zero padded): equal prints mean equal keys
/// up to 16 bytes long; longer keys are compared in full after the print. Built from
/// one unaligned 16-byte load and a mask when the buffer allows, so matching a key
/// costs a few integer operations, not a `memcmp` call per candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct KeyPrint {
    len: u32,
    bits: u128,
}

impl std::hash::Hash for KeyPrint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(KeyPrint::hash(self));
    }
}

/// `PRINT_MASKS[n]` keeps the low `n` bytes (a variable `u128` shift is a branchy
/// instruction sequence; a table load is one).
const PRINT_MASKS: [u128; 17] = {
    let mut m = [0u128; 17];
    let mut n = 1;
    while n < 16 {
        m[n] = (1u128 << (8 * n)) - 1;
        n += 1;
    }
    m[16] = u128::MAX;
    m
};

/// The up to 16 bytes of `s` as a little-endian `u128` (zero padded), from a few
/// overlapping loads rather than a copy into a stack buffer: the copy was a `memcpy`
/// call and its byte stores stalled the 16-byte load that read them back.
#[inline]
fn load_short(s: &[u8]) -> u128 {
    let n = s.len();
    let le64 = |at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let le32 = |at: usize| {
        s.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_le_bytes)
    };
    let byte = |at: usize| s.get(at).map_or(0, |&c| u128::from(c));
    // Each pair of loads covers the whole key; where they overlap they read the same
    // bytes into the same places, so OR-ing them is exact.
    match n {
        0 => 0,
        1..=3 => byte(0) | byte(n / 2) << (8 * (n / 2)) | byte(n - 1) << (8 * (n - 1)),
        4..=7 => u128::from(le32(0)) | u128::from(le32(n - 4)) << (8 * (n - 4)),
        8..=16 => u128::from(le64(0)) | u128::from(le64(n - 8)) << (8 * (n - 8)),
        _ => u128::from(le64(0)) | u128::from(le64(8)) << 64,
    }
}

impl KeyPrint {
    /// The print of `buf[start..end]`, reading up to 16 bytes from `start` when they
    /// are there (bytes past `end` are masked off).
    #[inline]
    pub(crate) fn at(buf: &[u8], start: usize, end: usize) -> KeyPrint {
        let n = end - start;
        let bits = if let Some(w) = buf
            .get(start..start + 16)
            .and_then(|w| <[u8; 16]>::try_from(w).ok())
        {
            u128::from_le_bytes(w) & PRINT_MASKS[n.min(16)]
        } else {
            load_short(&buf[start..start + n.min(16)])
        };
        KeyPrint {
            len: u32::try_from(n).unwrap_or(u32::MAX),
            bits,
        }
    }

    #[inline]
    pub(crate) fn of(key: &[u8]) -> KeyPrint {
        KeyPrint::at(key, 0, key.len())
    }

    /// Does a key with this print (whose bytes are `key`) equal `stored`?
    #[inline]
    fn same(&self, other: &KeyPrint, stored: &[u8], key: &[u8]) -> bool {
        self.bits == other.bits && self.len == other.len && (self.len <= 16 || stored == key)
    }

    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        // Fold the 16 bytes and the length into one word; the multiply spreads every
        // input bit into the high bits the table index is taken from.
        #[allow(clippy::cast_possible_truncation)] // halves of the u128, by design
        let (lo, hi) = (self.bits as u64, (self.bits >> 64) as u64);
        (lo ^ hi.rotate_left(29) ^ u64::from(self.len).rotate_left(53))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

impl PathTrie {
    pub(crate) fn new() -> Self {
        PathTrie {
            nodes: vec![TrieNode {
                path: NO_PATH,
                ..TrieNode::default()
            }],
            id: NEXT_TRIE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Add `path` (steps without dots) under `id`. EventBridge joins an event's keys
    /// with dots, so an event key holding dots is several steps at once: `{"a.b": 1}`
    /// is at path `a, b` as `{"a": {"b": 1}}` is. Each run of two or more steps gets
    /// an edge of its own under its joined key (`"a.b"` from the root to the node of
    /// `a, b`), so such keys are found by the same one lookup as any other.
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

    /// The child of `node` under `k`, made if missing (leading to `to` if given, or
    /// to a new node).
    fn edge(&mut self, node: u32, k: &[u8], to: Option<u32>) -> u32 {
        if let Some(c) = self.child(node, &KeyPrint::of(k), k) {
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
        n.children.push(Child {
            print: KeyPrint::of(k),
            key: k.into(),
            node: c,
        });
        n.rebuild_table();
        c
    }

    /// The child of `node` under the key `key` (whose print is `print`).
    #[allow(clippy::inline_always)] // measured: called once per key, on the hot path
    #[inline(always)]
    fn child(&self, node: u32, print: &KeyPrint, key: &[u8]) -> Option<u32> {
        let n = &self.nodes[node as usize];
        if n.table.is_empty() {
            return n
                .children
                .iter()
                .find(|c| c.print.same(print, &c.key, key))
                .map(|c| c.node);
        }
        let mask = n.table.len() - 1;
        #[allow(clippy::cast_possible_truncation)] // the top bits of the hash, by design
        let mut at = (print.hash() >> 40) as usize & mask;
        loop {
            let slot = n.table[at];
            let c = n.children.get(slot as usize)?;
            if c.print.same(print, &c.key, key) {
                return Some(c.node);
            }
            at = (at + 1) & mask;
        }
    }

    #[inline]
    fn has_children(&self, node: u32) -> bool {
        !self.nodes[node as usize].children.is_empty()
    }

    #[inline]
    fn path_of(&self, node: u32) -> u32 {
        self.nodes[node as usize].path
    }
}

impl TrieNode {
    /// A table at most half full (so a probe ends at an empty slot soon).
    fn rebuild_table(&mut self) {
        self.table.clear();
        if self.children.len() <= LINEAR_CHILDREN {
            return;
        }
        let size = (self.children.len() * 2).next_power_of_two();
        self.table = vec![EMPTY_SLOT; size];
        let mask = size - 1;
        for (i, c) in self.children.iter().enumerate() {
            #[allow(clippy::cast_possible_truncation)]
            let mut at = (c.print.hash() >> 40) as usize & mask;
            while self.table[at] != EMPTY_SLOT {
                at = (at + 1) & mask;
            }
            self.table[at] = to_u32(i);
        }
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

/// One value at a pattern path. `text` is a range in the event's own bytes (a string
/// without escapes, or the number's JSON text: borrowed, not copied) or, when
/// `in_arena`, in `Flat::arena` (an unescaped string, or a leaf from a parsed
/// `Value`); `mem` a range in `Flat::mem`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leaf {
    pub path: u32,
    pub kind: Kind,
    pub in_arena: bool,
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
    /// The keys the last events had at each (object node, member position): events
    /// of one kind repeat their keys in the same order, so the next key is checked
    /// against the guess with one 16-byte compare instead of being scanned and looked
    /// up. Direct-mapped; `guess_trie` is the trie the guesses' children belong to.
    guesses: Vec<KeyGuess>,
    guess_trie: u64,
}

/// A key seen at (trie node, member position) `tag`: its print (plain ASCII, at most
/// 16 bytes, no escapes, so equal bytes followed by a quote are the same key) and the
/// child it leads to (`NO_CHILD` for a key no pattern names).
#[derive(Debug, Clone, Copy)]
struct KeyGuess {
    bits: u128,
    tag: u32,
    len: u32,
    child: u32,
}

const NO_CHILD: u32 = u32::MAX;
const NO_TAG: u32 = u32::MAX;
const GUESS_SLOTS: usize = 512;
/// Member positions past this are not guessed (the tag holds the position in 8 bits).
const GUESS_POSITIONS: u32 = 255;

impl KeyGuess {
    const EMPTY: KeyGuess = KeyGuess {
        bits: 0,
        tag: NO_TAG,
        len: 0,
        child: NO_CHILD,
    };

    #[inline]
    fn slot(node: u32, pos: u32) -> (usize, u32) {
        let at = (node.wrapping_mul(37).wrapping_add(pos)) as usize % GUESS_SLOTS;
        (at, node << 8 | pos)
    }
}

/// Keep a key of `len` bytes (print `print`, leading to `child`) as the guess at
/// `gat`, if it can be one: plain ASCII that a print holds whole (no escapes: the
/// caller only passes raw keys).
#[inline]
fn remember(
    flat: &mut Flat,
    gat: usize,
    tag: u32,
    len: usize,
    print: &KeyPrint,
    child: Option<u32>,
) {
    if len <= 16 && print.bits & 0x8080_8080_8080_8080_8080_8080_8080_8080 == 0 {
        if let Some(g) = flat.guesses.get_mut(gat) {
            *g = KeyGuess {
                bits: print.bits,
                tag,
                len: print.len,
                child: child.unwrap_or(NO_CHILD),
            };
        }
    }
}

impl Flat {
    pub(crate) fn clear(&mut self) {
        self.leaves.clear();
        self.arena.clear();
        self.mem.clear();
        self.stack.clear();
        self.next_array = 0;
    }

    /// The leaf's text; `event` is the JSON the leaves were scanned from (any slice,
    /// e.g. empty, for leaves of a parsed `Value`, which all live in the arena).
    #[inline]
    pub(crate) fn text<'a>(&'a self, event: &'a [u8], leaf: &Leaf) -> &'a [u8] {
        let src = if leaf.in_arena {
            &self.arena[..]
        } else {
            event
        };
        src.get(leaf.text.0 as usize..leaf.text.1 as usize)
            .unwrap_or(&[])
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
        let e = self.arena.len();
        self.push_leaf(path, kind, true, a, e);
    }

    /// Record a leaf whose text is `event[a..e]`, borrowed from the scanned bytes.
    #[inline]
    fn push_event(&mut self, path: u32, kind: Kind, a: usize, e: usize) {
        self.push_leaf(path, kind, false, a, e);
    }

    #[allow(clippy::inline_always)] // measured: a call per stored leaf cost more than its body
    #[inline(always)]
    fn push_leaf(&mut self, path: u32, kind: Kind, in_arena: bool, a: usize, e: usize) {
        let m = self.mem.len();
        // Most leaves sit outside arrays: skip the (empty) copy's call.
        if !self.stack.is_empty() {
            self.mem.extend_from_slice(&self.stack);
        }
        self.leaves.push(Leaf {
            path,
            kind,
            in_arena,
            text: (to_u32(a), to_u32(e)),
            mem: (to_u32(m), to_u32(self.mem.len())),
        });
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// Errors end the scan: kept out of line so the hot paths carry no formatting code.
#[cold]
#[inline(never)]
fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidEvent {
        field: "<event>".to_owned(),
        reason: reason.into(),
    }
}

/// Flatten JSON text. The top level must be an object and the whole text valid JSON
/// (RFC 8259): skipped parts are validated too, only not stored.
pub(crate) fn flatten_json(trie: &PathTrie, json: &[u8], flat: &mut Flat) -> Result<()> {
    flatten_in::<false>(trie, json, flat)
}

/// `flatten_json` for JSON the caller has already validated (the router's own
/// CloudEvents JSON: attributes it wrote, data its schema check parsed). Values no
/// pattern path leads into are skipped structurally, not validated: strings to their
/// closing quote, objects and arrays by counting brackets outside strings 64 bytes at
/// a time, numbers and literals to their delimiter. On valid JSON the leaves (and any
/// refusal, e.g. nesting too deep) are those of `flatten_json`; on invalid JSON the
/// result is unspecified (wrong leaves or an error, never a panic).
pub(crate) fn flatten_json_trusted(trie: &PathTrie, json: &[u8], flat: &mut Flat) -> Result<()> {
    flatten_in::<true>(trie, json, flat)
}

fn flatten_in<const TRUSTED: bool>(trie: &PathTrie, json: &[u8], flat: &mut Flat) -> Result<()> {
    flat.clear();
    if flat.guess_trie != trie.id || flat.guesses.len() != GUESS_SLOTS {
        flat.guesses = vec![KeyGuess::EMPTY; GUESS_SLOTS];
        flat.guess_trie = trie.id;
    }
    let mut sc = Scanner::<TRUSTED> { b: json, i: 0 };
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

/// A validating JSON scanner that stores only what the trie asks for; `TRUSTED` skips
/// unreferenced values without validating them (see `flatten_json_trusted`).
struct Scanner<'a, const TRUSTED: bool> {
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

/// The end of the run of ASCII digits starting at `b[i]`. Eight bytes at a time
/// (SWAR): the length of a digit run varies from number to number, and a loop that
/// stops at it byte by byte costs a mispredicted branch per run.
#[inline]
fn digit_run(b: &[u8], mut i: usize) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(w) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        // x is each byte minus '0' when it is a digit (0..=9); a byte is flagged when
        // its low seven bits are 10 or more (adding 0x76 carries into bit 7, never
        // into the next byte) or its own bit 7 is set.
        let x = u64::from_le_bytes(w) ^ 0x3030_3030_3030_3030;
        let flagged = (((x & LOW7) + 0x7676_7676_7676_7676) | x) & HIGH;
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b.get(i).is_some_and(|c| c.wrapping_sub(b'0') < 10) {
        i += 1;
    }
    i
}

/// Bit i set when byte i of `chunk` is an ASCII digit.
#[cfg(target_arch = "x86_64")]
#[inline]
fn digits16(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
        _mm_sub_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
    // available; `chunk` is 16 readable bytes and `loadu` needs no alignment.
    let m = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        // A digit minus '0' is 0..=9; every other byte wraps to 10..=255, and
        // min(x, 9) == x exactly for 0..=9 (unsigned compare).
        let x = _mm_sub_epi8(v, _mm_set1_epi8(0x30));
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(9)), x))
    };
    m.cast_unsigned()
}

/// Portable form of `digits16`, a byte at a time.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn digits16(chunk: &[u8; 16]) -> u32 {
    let mut m = 0u32;
    for (k, c) in chunk.iter().enumerate() {
        if c.is_ascii_digit() {
            m |= 1 << k;
        }
    }
    m
}

/// Whether a number with valid JSON grammar fits an f64 (it does not overflow to an
/// infinity).
fn finite(number: &[u8]) -> bool {
    std::str::from_utf8(number)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// The length of the number starting at `chunk[0]` when it is `-?int(.frac)?` with no
/// exponent, valid, and followed by another byte inside the chunk: where the grammar
/// walk (`number_walk`) would end, without its byte loop. `None` leaves every other
/// case (exponents, longer numbers, bad grammar and its error position) to the walk.
#[inline]
fn number_end16(chunk: &[u8; 16]) -> Option<usize> {
    // Bit k set when byte k is not a digit; bit 16 stands for the unseen next byte.
    let other = !digits16(chunk) & 0xffff | 1 << 16;
    let int_start = usize::from(chunk[0] == b'-');
    let int_end = int_start + (other >> int_start).trailing_zeros() as usize;
    let n = int_end - int_start;
    // No digits, a leading zero, or no byte after the digits to look at.
    if n == 0 || (n > 1 && chunk[int_start] == b'0') || int_end >= 16 {
        return None;
    }
    let end = if chunk[int_end] == b'.' {
        let frac = int_end + 1;
        let end = frac + (other >> frac).trailing_zeros() as usize;
        if end == frac || end >= 16 {
            return None;
        }
        end
    } else {
        int_end
    };
    (!matches!(chunk[end], b'e' | b'E')).then_some(end)
}

// ---- Trusted skips: valid JSON assumed, only the value's end is looked for ----------

/// Bit i set where byte i of `chunk` is a quote, a backslash, an opening bracket
/// (`{` or `[`), a closing bracket (`}` or `]`).
#[cfg(target_arch = "x86_64")]
#[inline]
fn classify16(chunk: &[u8; 16]) -> [u32; 4] {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
    // available; `chunk` is 16 readable bytes and `loadu` needs no alignment.
    let m = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c.cast_signed()));
        [
            _mm_movemask_epi8(eq(b'"')),
            _mm_movemask_epi8(eq(b'\\')),
            // '[' is 0x5b and '{' 0x7b: one compare after setting bit 5.
            _mm_movemask_epi8(_mm_cmpeq_epi8(
                _mm_or_si128(v, _mm_set1_epi8(0x20)),
                _mm_set1_epi8(0x7b),
            )),
            _mm_movemask_epi8(_mm_cmpeq_epi8(
                _mm_or_si128(v, _mm_set1_epi8(0x20)),
                _mm_set1_epi8(0x7d),
            )),
        ]
    };
    m.map(i32::cast_unsigned)
}

/// Portable form of `classify16`, a byte at a time.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn classify16(chunk: &[u8; 16]) -> [u32; 4] {
    let mut m = [0u32; 4];
    for (k, &c) in chunk.iter().enumerate() {
        let bit = 1u32 << k;
        match c {
            b'"' => m[0] |= bit,
            b'\\' => m[1] |= bit,
            b'{' | b'[' => m[2] |= bit,
            b'}' | b']' => m[3] |= bit,
            _ => {}
        }
    }
    m
}

/// `classify16` over 64 bytes: (quotes, backslashes, opens, closes).
#[inline]
fn classify64(block: &[u8; 64]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (part, chunk) in block.chunks_exact(16).enumerate() {
        if let Ok(c) = <&[u8; 16]>::try_from(chunk) {
            for (o, m) in out.iter_mut().zip(classify16(c)) {
                *o |= u64::from(m) << (16 * part);
            }
        }
    }
    out
}

/// The bytes escaped by a backslash, given the block's backslashes; `carry` says the
/// block's first byte is escaped (a lone backslash ended the previous block) and is
/// set for the next block. Backslashes are rare in events, so a loop over them.
#[inline]
fn escaped_bytes(backslashes: u64, carry: &mut bool) -> u64 {
    let mut escaped = u64::from(*carry);
    *carry = false;
    // An escaped backslash escapes nothing.
    let mut m = backslashes & !escaped;
    while m != 0 {
        let k = m.trailing_zeros();
        m &= m - 1;
        if k == 63 {
            *carry = true;
        } else {
            escaped |= 1 << (k + 1);
            m &= !(1 << (k + 1));
        }
    }
    escaped
}

/// Bit i set when an odd number of bits 0..=i of `x` are set: with `x` the unescaped
/// quotes, the bytes inside strings (opening quote included, closing one not).
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// How a structural skip ended.
#[derive(Debug, PartialEq, Eq)]
enum Nested {
    /// Just past the matching closing bracket.
    End(usize),
    /// Some bracket would open deeper than allowed: the caller walks it exactly.
    TooDeep,
    Unterminated,
}

/// Trusted input, `b[start]` an opening bracket: skip to its matching closing bracket,
/// counting brackets outside strings 64 bytes at a time. `room` is how many levels
/// may open (the opening bracket's included) before `TooDeep`.
fn skip_nested_trusted(b: &[u8], start: usize, room: usize) -> Nested {
    let room = room as u64;
    if room == 0 {
        return Nested::TooDeep;
    }
    // Open brackets before the block; the block starts inside a string (all ones) or
    // not; its first byte is escaped.
    let mut depth = 1u64;
    let mut inside = 0u64;
    let mut carry = false;
    let mut at = start + 1;
    let mut pad = [b' '; 64];
    while at < b.len() {
        let block = if let Some(w) = b
            .get(at..at + 64)
            .and_then(|w| <&[u8; 64]>::try_from(w).ok())
        {
            w
        } else {
            // The tail, padded with spaces (which are none of the bytes looked for).
            // Only ever the last block, so `pad` is filled once.
            let rest = &b[at..];
            pad[..rest.len()].copy_from_slice(rest);
            &pad
        };
        let [quotes, backslashes, opens, closes] = classify64(block);
        let escaped = if backslashes == 0 && !carry {
            0
        } else {
            escaped_bytes(backslashes, &mut carry)
        };
        let in_string = prefix_xor(quotes & !escaped) ^ inside;
        inside = 0u64.wrapping_sub(in_string >> 63);
        // (Escaped brackets only occur inside strings in valid JSON; dropping them
        // keeps the rule "a backslash escapes the next byte" exact on any bytes.)
        let (opens, closes) = (
            opens & !(in_string | escaped),
            closes & !(in_string | escaped),
        );
        let (no, nc) = (
            u64::from(opens.count_ones()),
            u64::from(closes.count_ones()),
        );
        if depth > nc && depth + no <= room {
            // Neither back to zero nor past the limit inside this block.
            depth = depth + no - nc;
        } else {
            let mut all = opens | closes;
            while all != 0 {
                let k = all.trailing_zeros();
                all &= all - 1;
                if opens >> k & 1 == 1 {
                    depth += 1;
                    if depth > room {
                        return Nested::TooDeep;
                    }
                } else {
                    depth -= 1;
                    if depth == 0 {
                        return Nested::End(at + k as usize + 1);
                    }
                }
            }
        }
        at += 64;
    }
    Nested::Unterminated
}

/// Trusted input, `i` just past an opening quote: just past the closing quote, 16
/// bytes at a time (only quotes and backslashes matter).
#[inline]
fn skip_string_trusted(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        while let Some(chunk) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
            let [q, bs, _, _] = classify16(chunk);
            let m = q | bs;
            if m != 0 {
                i += m.trailing_zeros() as usize;
                break;
            }
            i += 16;
        }
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// Bit i set where byte i of `chunk` may end a number or literal: `,`, `}`, `]`, or a
/// byte up to 0x20 (spaces and control bytes).
#[cfg(target_arch = "x86_64")]
#[inline]
fn delim16(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
    // available; `chunk` is 16 readable bytes and `loadu` needs no alignment.
    let m = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c.cast_signed()));
        let low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x20)), v);
        _mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(eq(b','), eq(b'}')),
            _mm_or_si128(eq(b']'), low),
        ))
    };
    m.cast_unsigned()
}

/// Portable form of `delim16`, a byte at a time.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn delim16(chunk: &[u8; 16]) -> u32 {
    let mut m = 0u32;
    for (k, &c) in chunk.iter().enumerate() {
        if matches!(c, b',' | b'}' | b']') || c <= 0x20 {
            m |= 1 << k;
        }
    }
    m
}

/// Trusted input, at a number or literal: its end (the next delimiter or space), 16
/// bytes at a time where the buffer allows (a number's length varies: a byte loop
/// would mispredict its exit on every one).
#[inline]
fn skip_scalar_trusted(b: &[u8], mut i: usize) -> usize {
    if let Some(chunk) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
        let m = delim16(chunk);
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
    }
    while let Some(&c) = b.get(i) {
        if matches!(c, b',' | b'}' | b']') || c <= 0x20 {
            break;
        }
        i += 1;
    }
    i
}

impl<const TRUSTED: bool> Scanner<'_, TRUSTED> {
    #[cold]
    #[inline(never)]
    fn err(&self, what: &str) -> Error {
        bad(format!("not valid JSON at byte {}: {what}", self.i))
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        // Compact JSON has no whitespace: one compare settles the common case.
        if self.b.get(self.i).is_some_and(|&c| c > b' ') {
            return;
        }
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
    #[allow(clippy::inline_always)] // measured: the call's register saves cost more than the scan
    #[inline(always)]
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
    /// Store the string at the cursor (its opening quote) as the leaf at `path`:
    /// borrowed from the event, or unescaped into the arena. Inlined into both the
    /// object loop and `value`, so the common leaf costs no call.
    #[allow(clippy::inline_always)] // the two copies it replaces were inlined on purpose
    #[inline(always)]
    fn string_leaf(&mut self, path: u32, flat: &mut Flat) -> Result<()> {
        self.i += 1;
        let (a, e, esc) = self.string_raw()?;
        if esc {
            let at = flat.arena.len();
            self.unescape(a, e, &mut flat.arena)?;
            flat.push_at(path, Kind::Str, at);
        } else {
            flat.push_event(path, Kind::Str, a, e);
        }
        Ok(())
    }

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

    /// A number per the JSON grammar; returns its text range. Walks a local index
    /// over the slice (one bounds test per byte) and reports errors at the same byte
    /// the grammar fails on.
    #[inline]
    fn number(&mut self) -> Result<(usize, usize)> {
        let start = self.i;
        if self.number_ok() {
            Ok((start, self.i))
        } else {
            Err(self.err("bad number"))
        }
    }

    /// The number's walk: `false` (with `i` at the failing byte) on bad grammar, so
    /// the caller builds the error and the walk itself returns one register. Most
    /// numbers in events are short integers or decimals: those end within one 16-byte
    /// window (`number_end16`) and take no call; anything else walks the grammar.
    #[allow(clippy::inline_always)] // measured: the call cost more than the window test
    #[inline(always)]
    fn number_ok(&mut self) -> bool {
        if let Some(n) = self
            .b
            .get(self.i..self.i + 16)
            .and_then(|w| <&[u8; 16]>::try_from(w).ok())
            .and_then(number_end16)
        {
            self.i += n;
            return true;
        }
        self.number_walk()
    }

    /// `number_ok` byte by byte (runs of digits eight at a time).
    #[inline(never)]
    fn number_walk(&mut self) -> bool {
        let b = self.b;
        let digits = |i: usize| digit_run(b, i);
        let start = self.i;
        let mut i = self.i + usize::from(b.get(self.i) == Some(&b'-'));
        let int_start = i;
        i = digits(i);
        let n = i - int_start;
        if n == 0 || (n > 1 && b[int_start] == b'0') {
            self.i = i;
            return false;
        }
        if b.get(i) == Some(&b'.') {
            let frac = i + 1;
            i = digits(frac);
            if i == frac {
                self.i = i;
                return false;
            }
        }
        let mut exponent = false;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            exponent = true;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp = i;
            i = digits(exp);
            if i == exp {
                self.i = i;
                return false;
            }
        }
        // Only an exponent or more than 300 integer digits can leave the range of an
        // f64; such a number is refused, as serde_json (and the router's parser) does.
        if (exponent || n > 300) && !finite(&b[start..i]) {
            self.i = start;
            return false;
        }
        self.i = i;
        true
    }

    /// A fixed-size `word` so the compare is a few inline loads, not a `memcmp` call.
    #[inline]
    fn literal<const N: usize>(&mut self, word: &[u8; N]) -> Result<()> {
        if self
            .b
            .get(self.i..self.i + N)
            .and_then(|w| <&[u8; N]>::try_from(w).ok())
            == Some(word)
        {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("unexpected character"))
        }
    }

    /// The length of the key at `i` (just past its opening quote) if it is the
    /// guessed key: the same bytes, then the closing quote and (compact JSON) the
    /// colon. A key with space before its colon is not taken as guessed: the caller's
    /// full walk then reads it.
    #[inline]
    fn key_is(&self, guess: &KeyGuess) -> Option<usize> {
        let n = guess.len as usize;
        let w = self
            .b
            .get(self.i..self.i + 16)
            .and_then(|w| <[u8; 16]>::try_from(w).ok())?;
        (u128::from_le_bytes(w) & PRINT_MASKS[n.min(16)] == guess.bits
            && self.b.get(self.i + n..self.i + n + 2) == Some(b"\":"))
        .then_some(n)
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
        self.expect(b'"', "expected a key")?;
        // Guesses are tagged with the node in 24 bits; nodes past that go unguessed.
        let guessing = node < 1 << 24;
        let mut pos = 0u32;
        loop {
            let can_guess = guessing && pos <= GUESS_POSITIONS;
            let (gat, tag) = KeyGuess::slot(node, pos);
            let guess = flat.guesses.get(gat).copied().unwrap_or(KeyGuess::EMPTY);
            let guessed = if guess.tag == tag && can_guess {
                self.key_is(&guess)
            } else {
                None
            };
            let child = if let Some(n) = guessed {
                // The key, its closing quote and the colon.
                self.i += n + 2;
                (guess.child != NO_CHILD).then_some(guess.child)
            } else {
                let (a, e, esc) = self.string_raw()?;
                let child = if esc {
                    let mut key = Vec::new();
                    self.unescape(a, e, &mut key)?;
                    trie.child(node, &KeyPrint::of(&key), &key)
                } else {
                    let print = KeyPrint::at(self.b, a, e);
                    let child = trie.child(node, &print, &self.b[a..e]);
                    if can_guess {
                        remember(flat, gat, tag, e - a, &print, child);
                    }
                    child
                };
                // Compact JSON: the colon follows the key directly.
                if self.b.get(self.i) == Some(&b':') {
                    self.i += 1;
                } else {
                    self.expect(b':', "expected ':'")?;
                }
                child
            };
            pos = pos.saturating_add(1);
            self.ws();
            match child {
                Some(c) => {
                    let path = trie.path_of(c);
                    // Scalars at a pattern path are stored here rather than through a
                    // call to `value`; same checks, same errors, in the same order.
                    match self.peek() {
                        _ if depth + 1 > MAX_EVENT_DEPTH => self.value(trie, c, depth + 1, flat)?,
                        Some(b'"') if path != NO_PATH => self.string_leaf(path, flat)?,
                        Some(b'-' | b'0'..=b'9') if path != NO_PATH => {
                            let (a, e) = self.number()?;
                            flat.push_event(path, Kind::Num, a, e);
                        }
                        _ => self.value(trie, c, depth + 1, flat)?,
                    }
                }
                // Unreferenced strings and numbers (most skipped values) inline here
                // rather than through the recursive `skip`; same checks, same errors.
                // Trusted input: no validation, a structural skip.
                None if TRUSTED && depth < MAX_EVENT_DEPTH => self.skip_trusted(depth + 1)?,
                None if depth < MAX_EVENT_DEPTH => match self.peek() {
                    Some(b'"') => {
                        self.i += 1;
                        self.string_raw()?;
                    }
                    Some(b'-' | b'0'..=b'9') => {
                        self.number()?;
                    }
                    _ => self.skip(depth + 1)?,
                },
                None => self.skip(depth + 1)?,
            }
            // Compact JSON: a comma and the next key's quote (no space to skip).
            if self.b.get(self.i..self.i + 2) == Some(b",\"") {
                self.i += 2;
                continue;
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
            // Compact JSON: the next key's quote follows the comma directly.
            if self.b.get(self.i) == Some(&b'"') {
                self.i += 1;
            } else {
                self.expect(b'"', "expected a key")?;
            }
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
            Some(b'"') => self.string_leaf(path, flat),
            Some(b't') => {
                self.literal(b"true")?;
                flat.push_event(path, Kind::True, 0, 0);
                Ok(())
            }
            Some(b'f') => {
                self.literal(b"false")?;
                flat.push_event(path, Kind::False, 0, 0);
                Ok(())
            }
            Some(b'n') => {
                self.literal(b"null")?;
                flat.push_event(path, Kind::Null, 0, 0);
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let (a, e) = self.number()?;
                flat.push_event(path, Kind::Num, a, e);
                Ok(())
            }
            _ => Err(self.err("expected a value")),
        }
    }

    /// Skip (and validate, unless `TRUSTED`) one value.
    fn skip(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_EVENT_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_EVENT_DEPTH} levels")));
        }
        if TRUSTED {
            return self.skip_trusted(depth);
        }
        self.skip_checked(depth)
    }

    /// Trusted input: skip the value at the cursor, at nesting level `depth` (at most
    /// `MAX_EVENT_DEPTH`), without validating it. A container that may nest past the
    /// limit is skipped by the validating walk instead, so the refusal is the same.
    #[allow(clippy::inline_always)] // called once per unreferenced member: no call
    #[inline(always)]
    fn skip_trusted(&mut self, depth: usize) -> Result<()> {
        let end = match self.peek() {
            Some(b'"') => skip_string_trusted(self.b, self.i + 1),
            Some(b'{' | b'[') => match skip_nested_trusted(self.b, self.i, MAX_EVENT_DEPTH - depth)
            {
                Nested::End(e) => Some(e),
                Nested::TooDeep => return self.skip_checked(depth),
                Nested::Unterminated => None,
            },
            Some(_) => Some(skip_scalar_trusted(self.b, self.i)),
            None => None,
        };
        match end {
            Some(e) if e > self.i => {
                self.i = e;
                Ok(())
            }
            _ => Err(self.err("expected a value")),
        }
    }

    /// Skip and validate one value (the validating mode's walk).
    fn skip_checked(&mut self, depth: usize) -> Result<()> {
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
                self.expect(b'"', "expected a key")?;
                loop {
                    self.string_raw()?;
                    // Compact JSON: the colon follows the key directly.
                    if self.b.get(self.i) == Some(&b':') {
                        self.i += 1;
                    } else {
                        self.expect(b':', "expected ':'")?;
                    }
                    self.ws();
                    self.skip_member(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                    if self.b.get(self.i) == Some(&b'"') {
                        self.i += 1;
                    } else {
                        self.ws();
                        self.expect(b'"', "expected a key")?;
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
                    self.skip_member(depth + 1)?;
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

    /// `skip(depth)` with strings and numbers (most members) handled inline rather
    /// than by a recursive call; same checks, same errors.
    #[inline]
    fn skip_member(&mut self, depth: usize) -> Result<()> {
        if depth <= MAX_EVENT_DEPTH {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    self.string_raw()?;
                    return Ok(());
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                    return Ok(());
                }
                _ => {}
            }
        }
        self.skip_checked(depth)
    }
}

/// Flatten an already parsed event (same result as `flatten_json` on its text).
pub(crate) fn flatten_value(
    trie: &PathTrie,
    event: &serde_json::Map<String, Value>,
    flat: &mut Flat,
) {
    flat.clear();
    walk_map(trie, event, 0, 0, flat);
}

fn walk_map(
    trie: &PathTrie,
    m: &serde_json::Map<String, Value>,
    node: u32,
    depth: usize,
    flat: &mut Flat,
) {
    for (k, v) in m {
        if let Some(c) = trie.child(node, &KeyPrint::of(k.as_bytes()), k.as_bytes()) {
            walk_serde(trie, v, c, depth + 1, flat);
        }
    }
}

fn walk_serde(trie: &PathTrie, v: &Value, node: u32, depth: usize, flat: &mut Flat) {
    // A parsed value is already bounded by serde_json's own recursion limit.
    let _ = depth;
    let path = trie.path_of(node);
    match v {
        Value::Object(m) => walk_map(trie, m, node, depth, flat),
        Value::Array(items) => {
            let id = flat.next_array;
            flat.next_array += 1;
            for (idx, item) in items.iter().enumerate() {
                flat.stack.push((id, to_u32(idx)));
                walk_serde(trie, item, node, depth + 1, flat);
                flat.stack.pop();
            }
        }
        _ if path == NO_PATH => {}
        Value::String(s) => flat.push(path, Kind::Str, s.as_bytes()),
        Value::Number(n) => flat.push(
            path,
            Kind::Num,
            super::value::serde_number_text(n).as_bytes(),
        ),
        Value::Bool(b) => flat.push(path, if *b { Kind::True } else { Kind::False }, b""),
        Value::Null => flat.push(path, Kind::Null, b""),
    }
}

#[cfg(test)]
mod digit_run_tests {
    use super::digit_run;

    #[test]
    fn digit_runs_end_at_the_first_non_digit_byte() {
        // Every byte value right after runs of every length across the 8-byte steps.
        for len in 0..20usize {
            for stop in 0..=255u8 {
                let mut b = vec![b'7'; len];
                b.push(stop);
                b.extend_from_slice(b"123456789");
                let want = if stop.is_ascii_digit() { len + 10 } else { len };
                assert_eq!(digit_run(&b, 0), want, "len {len}, stop {stop:#x}");
                assert_eq!(digit_run(&b[..len], 0), len, "len {len}, at the end");
            }
        }
        assert_eq!(digit_run(b"x0123456789", 1), 11);
        assert_eq!(digit_run(b"", 0), 0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod key_print_tests {
    use super::{load_short, KeyPrint, PathTrie};

    #[test]
    fn short_loads_equal_a_zero_padded_copy() {
        let src: Vec<u8> = (1..=40u8).map(|i| i.wrapping_mul(37) | 1).collect();
        for start in 0..20 {
            for n in 0..=16usize {
                let s = &src[start..start + n];
                let mut w = [0u8; 16];
                w[..n].copy_from_slice(s);
                assert_eq!(
                    load_short(s),
                    u128::from_le_bytes(w),
                    "start {start}, n {n}"
                );
                // The print of a key with no 16 bytes after it in its buffer.
                assert_eq!(KeyPrint::at(s, 0, n).bits, u128::from_le_bytes(w));
            }
        }
    }

    #[test]
    fn prints_tell_apart_keys_that_differ_in_any_byte() {
        for len in 0..=20usize {
            let base: Vec<u8> = (0..len)
                .map(|i| b'a' + u8::try_from(i % 26).unwrap())
                .collect();
            for at in 0..len {
                let mut other = base.clone();
                other[at] = b'Z';
                let (p, q) = (KeyPrint::of(&base), KeyPrint::of(&other));
                assert!(!p.same(&q, &base, &other), "len {len}, byte {at}");
            }
            assert!(KeyPrint::of(&base).same(&KeyPrint::of(&base), &base, &base));
        }
    }

    #[test]
    fn trie_finds_long_and_short_keys_among_many() {
        let mut trie = PathTrie::new();
        let keys: Vec<String> = (0..40)
            .map(|i| format!("key-{i}-{}", "x".repeat(i % 19)))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            trie.insert(&[k.as_str().into()], u32::try_from(i).unwrap());
        }
        for (i, k) in keys.iter().enumerate() {
            let c = trie
                .child(0, &KeyPrint::of(k.as_bytes()), k.as_bytes())
                .unwrap();
            assert_eq!(trie.path_of(c), u32::try_from(i).unwrap());
            let mut near = k.clone().into_bytes();
            near[k.len() / 2] ^= 1;
            assert!(trie.child(0, &KeyPrint::of(&near), &near).is_none());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod trie_lookup_tests {
    use super::{KeyPrint, PathTrie};

    #[test]
    fn a_print_read_inside_a_buffer_ignores_the_bytes_after_the_key() {
        let buf = b"{\"orderId\":\"x\",\"a\":1,\"k-0123456789abcdefgh\":2}";
        for key in [&b"orderId"[..], b"a", b"k-0123456789abcdefgh", b"x"] {
            let a = buf.windows(key.len()).position(|w| w == key).unwrap();
            let e = a + key.len();
            assert_eq!(
                KeyPrint::at(buf, a, e),
                KeyPrint::of(&buf[a..e]),
                "{a}..{e}"
            );
        }
        // A key ending at the very end of the buffer (no 16 bytes to load).
        assert_eq!(KeyPrint::at(b"xyz", 1, 3), KeyPrint::of(b"yz"));
        assert_eq!(KeyPrint::of(b""), KeyPrint::at(b"abc", 3, 3));
    }

    #[test]
    fn keys_differing_only_past_sixteen_bytes_are_told_apart() {
        let mut trie = PathTrie::new();
        let a = "0123456789abcdef-first";
        let b = "0123456789abcdef-other";
        trie.insert(&[a.into()], 1);
        for few_or_many in [0usize, 8] {
            for i in 0..few_or_many {
                trie.insert(
                    &[format!("filler{i}").into()],
                    100 + u32::try_from(i).unwrap(),
                );
            }
            let found = trie.child(0, &KeyPrint::of(a.as_bytes()), a.as_bytes());
            assert_eq!(trie.path_of(found.unwrap()), 1);
            assert!(trie
                .child(0, &KeyPrint::of(b.as_bytes()), b.as_bytes())
                .is_none());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod trusted_skip_tests {
    use proptest::prelude::*;

    use super::{skip_nested_trusted, skip_scalar_trusted, skip_string_trusted, Nested};

    /// Byte at a time: the end of the string whose content starts at `i`.
    fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
        loop {
            match b.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
    }

    /// Byte at a time, the same rules as `skip_nested_trusted`: a backslash escapes the
    /// next byte (anywhere), an unescaped quote toggles "in a string", brackets count
    /// outside strings; `TooDeep` when more than `room` levels open.
    fn nested_end(b: &[u8], start: usize, room: usize) -> Nested {
        if room == 0 {
            return Nested::TooDeep;
        }
        let (mut depth, mut in_str, mut esc) = (1usize, false, false);
        for (k, &c) in b.iter().enumerate().skip(start + 1) {
            if esc {
                esc = false;
                continue;
            }
            match c {
                b'\\' => esc = true,
                b'"' => in_str = !in_str,
                b'{' | b'[' if !in_str => {
                    depth += 1;
                    if depth > room {
                        return Nested::TooDeep;
                    }
                }
                b'}' | b']' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        return Nested::End(k + 1);
                    }
                }
                _ => {}
            }
        }
        Nested::Unterminated
    }

    #[test]
    fn strings_end_where_a_byte_walk_ends_them_at_every_length_and_alignment() {
        // Every content length across the 16-byte steps, at every alignment, with an
        // escape (quote, backslash, \u) at every position, so escapes straddle chunks.
        for pad in 0..17usize {
            for len in 0..70usize {
                for esc_at in (0..len).chain([usize::MAX]) {
                    for esc in [&br#"\""#[..], br"\\", br"\u0022", br#"\\\""#, br"\/"] {
                        let mut b = vec![b'x'; pad];
                        b.push(b'"');
                        let body_at = b.len();
                        for k in 0..len {
                            if k == esc_at {
                                b.extend_from_slice(esc);
                            }
                            b.push(if k % 7 == 3 {
                                b'}'
                            } else {
                                b'a' + u8::try_from(k % 26).unwrap()
                            });
                        }
                        b.extend_from_slice(b"\",\"tail\"]");
                        let want = string_end(&b, body_at);
                        assert_eq!(
                            want,
                            Some(body_at + len + 1 + if esc_at < len { esc.len() } else { 0 })
                        );
                        assert_eq!(
                            skip_string_trusted(&b, body_at),
                            want,
                            "pad {pad}, len {len}, escape at {esc_at}: {:?}",
                            String::from_utf8_lossy(&b)
                        );
                        // Cut short: no closing quote.
                        let cut = &b[..want.unwrap() - 1];
                        assert_eq!(skip_string_trusted(cut, body_at), None);
                    }
                }
            }
        }
    }

    #[test]
    fn backslash_runs_across_block_edges_escape_as_a_byte_walk_does() {
        // Runs of 1..6 backslashes ending at every offset around the 64-byte block
        // edges, then a quote (escaped or not by the run's parity) and brackets.
        for pad in 0..4usize {
            for end in 50..140usize {
                for run in 1..7usize {
                    let mut b = vec![b' '; pad];
                    b.extend_from_slice(b"[\"");
                    while b.len() + run < end {
                        b.push(b'q');
                    }
                    b.extend(std::iter::repeat_n(b'\\', run));
                    b.extend_from_slice(b"\"],[\"]\"]]");
                    for room in [1, 2, 3, 128] {
                        assert_eq!(
                            skip_nested_trusted(&b, pad, room),
                            nested_end(&b, pad, room),
                            "pad {pad}, run {run} ending at {end}, room {room}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let b = br#"{"a":"}]]}","b":["\"]}",{"c":"{[{["}],"d":"\\"}x"#;
        let end = b.len() - 1;
        assert_eq!(skip_nested_trusted(b, 0, 128), Nested::End(end));
        assert_eq!(nested_end(b, 0, 128), Nested::End(end));
        // Nesting past the room is handed back, even when the value ends in the block.
        assert_eq!(skip_nested_trusted(b"[[[]]]", 0, 2), Nested::TooDeep);
        assert_eq!(skip_nested_trusted(b"[[[]]]", 0, 3), Nested::End(6));
        assert_eq!(skip_nested_trusted(b"[]", 0, 0), Nested::TooDeep);
        assert_eq!(skip_nested_trusted(b"[[]", 0, 9), Nested::Unterminated);
    }

    #[test]
    fn scalars_end_at_their_delimiter() {
        for pad in 0..20usize {
            for word in [
                &b"0"[..],
                b"-12.5e+7",
                b"true",
                b"false",
                b"null",
                b"12345678901234567890.25",
            ] {
                for next in [&b","[..], b"}", b"]", b" ", b"\n", b""] {
                    let mut b = vec![b'"'; pad];
                    b.extend_from_slice(word);
                    b.extend_from_slice(next);
                    b.extend_from_slice(b"1234567890123456");
                    let end = if next.is_empty() {
                        b.len()
                    } else {
                        pad + word.len()
                    };
                    assert_eq!(
                        skip_scalar_trusted(&b, pad),
                        end,
                        "{:?}",
                        String::from_utf8_lossy(&b)
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn nested_skips_agree_with_a_byte_walk_on_any_bytes(
            pad in 0..70usize,
            body in prop::collection::vec(prop::sample::select(&b"\"\\{}[]a ,:"[..]), 0..300),
            room in 0..6usize,
        ) {
            let mut b = vec![b' '; pad];
            b.push(if body.len() % 2 == 0 { b'{' } else { b'[' });
            b.extend_from_slice(&body);
            prop_assert_eq!(skip_nested_trusted(&b, pad, room), nested_end(&b, pad, room));
        }

        #[test]
        fn strings_skip_like_a_byte_walk_on_any_bytes(
            pad in 0..40usize,
            body in prop::collection::vec(prop::sample::select(&b"\"\\a}\x01\xc3"[..]), 0..120),
        ) {
            let mut b = vec![b'"'; pad];
            b.extend_from_slice(&body);
            prop_assert_eq!(skip_string_trusted(&b, pad), string_end(&b, pad));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod number_fast_tests {
    use proptest::prelude::*;

    use super::{digits16, number_end16, Scanner};

    /// `number_ok` (window first) and `number_walk` (the grammar walk) from byte 0 of
    /// `b`: the same verdict and the same end (or failing byte).
    fn same_as_walk(b: &[u8]) -> Result<(), String> {
        let mut fast = Scanner::<false> { b, i: 0 };
        let mut walk = Scanner::<false> { b, i: 0 };
        let (f, w) = (fast.number_ok(), walk.number_walk());
        if (f, fast.i) == (w, walk.i) {
            Ok(())
        } else {
            Err(format!(
                "{:?}: window {f} at {}, walk {w} at {}",
                String::from_utf8_lossy(b),
                fast.i,
                walk.i
            ))
        }
    }

    #[test]
    fn digit_masks_flag_exactly_the_digits() {
        for c in 0..=255u8 {
            for at in 0..16 {
                let mut w = [b'x'; 16];
                w[at] = c;
                let want = if c.is_ascii_digit() { 1 << at } else { 0 };
                assert_eq!(digits16(&w), want, "byte {c:#x} at {at}");
            }
        }
    }

    #[test]
    fn every_short_number_like_word_ends_where_the_walk_ends() {
        // Every word of up to 5 bytes over the bytes a number is made of (and a few
        // it is not), after runs of 0..=16 digits, so words end on both sides of the
        // window's edge; then bytes that may follow a number.
        const ALPHABET: &[u8] = b"-0159.eE+,}x\x80";
        let mut words: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = words.clone();
        for _ in 0..5 {
            let next: Vec<Vec<u8>> = last
                .iter()
                .flat_map(|w| {
                    ALPHABET.iter().map(move |&c| {
                        let mut v = w.clone();
                        v.push(c);
                        v
                    })
                })
                .collect();
            words.extend(next.iter().cloned());
            last = next;
        }
        let mut checked = 0usize;
        for lead in [&b""[..], b"-", b"0", b"-0", b"7", b"-7"] {
            for run in [0usize, 1, 2, 9, 10, 11, 13, 14, 15, 16] {
                for w in &words {
                    if lead.len() + run + w.len() > 22 {
                        continue;
                    }
                    let mut b = lead.to_vec();
                    b.extend(std::iter::repeat_n(b'3', run));
                    b.extend_from_slice(w);
                    for tail in [&b",\"a\":1}xxxxxxxxxxxxxxxx"[..], b"", b"}"] {
                        let mut c = b.clone();
                        c.extend_from_slice(tail);
                        if let Err(e) = same_as_walk(&c) {
                            panic!("{e}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1_000_000, "{checked}");
    }

    #[test]
    fn common_numbers_take_the_window() {
        for (s, n) in [
            (&b"0,"[..], 1),
            (b"-0}", 2),
            (b"740.94,", 6),
            (b"-12345678.123456]", 16),
            (b"25154.0 ", 7),
            (b"4.5.6,", 3),
        ] {
            let mut w = [b' '; 16];
            w[..s.len().min(16)].copy_from_slice(&s[..s.len().min(16)]);
            let got = if s.len() > 16 { None } else { number_end16(&w) };
            assert_eq!(
                got,
                (s.len() <= 16).then_some(n),
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
        // Left to the walk: exponents, bad grammar, numbers reaching the window's end.
        for s in [
            &b"1e5,"[..],
            b"1.5E+3,",
            b"01,",
            b"-,",
            b"1.,",
            b"-.5,",
            b"1234567890123456",
        ] {
            let mut w = [b','; 16];
            w[..s.len()].copy_from_slice(s);
            assert_eq!(number_end16(&w), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20000))]

        #[test]
        fn numbers_anywhere_in_a_buffer_end_where_the_walk_ends(
            pad in 0..20usize,
            body in prop::collection::vec(prop::sample::select(&b"-0123456789.eE+,} \"a\xc3"[..]), 0..40),
        ) {
            let mut b = vec![b'{'; pad];
            b.extend_from_slice(&body);
            let mut fast = Scanner::<false> { b: &b, i: pad };
            let mut walk = Scanner::<false> { b: &b, i: pad };
            let (f, w) = (fast.number_ok(), walk.number_walk());
            prop_assert_eq!((f, fast.i), (w, walk.i));
        }
    }
}
