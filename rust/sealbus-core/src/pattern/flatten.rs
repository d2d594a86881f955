//! Event -> the leaf values at the paths some pattern uses, nothing else. A trie of
//! those paths steers a streaming JSON reader (jiter): keys no pattern names are
//! skipped without building anything, so the cost is one pass over the bytes.
//!
//! Each leaf remembers which array elements it sits in (array id, index), so a
//! branch can refuse to combine fields from different elements of one array, as
//! EventBridge's array-consistent matching does.

use jiter::{Jiter, Peek};
use rustc_hash::FxHashMap;
use serde_json::Value;

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
    /// Few children are scanned, many are hashed.
    small: Vec<(Box<str>, u32)>,
    map: FxHashMap<Box<str>, u32>,
    /// The path id if some pattern constrains this exact path.
    path: u32,
}

impl PathTrie {
    pub(crate) fn new() -> Self {
        PathTrie { nodes: vec![TrieNode { path: NO_PATH, ..TrieNode::default() }] }
    }

    pub(crate) fn insert(&mut self, path: &[Box<str>], id: u32) {
        let mut node = 0usize;
        for key in path {
            node = match self.child(node as u32, key) {
                Some(c) => c as usize,
                None => {
                    let c = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
                    self.nodes.push(TrieNode { path: NO_PATH, ..TrieNode::default() });
                    let n = &mut self.nodes[node];
                    n.small.push((key.clone(), c));
                    n.map.insert(key.clone(), c);
                    c as usize
                }
            };
        }
        self.nodes[node].path = id;
    }

    #[inline]
    fn child(&self, node: u32, key: &str) -> Option<u32> {
        let n = &self.nodes[node as usize];
        if n.small.len() <= 8 {
            n.small.iter().find(|(k, _)| k.as_ref() == key).map(|&(_, c)| c)
        } else {
            n.map.get(key).copied()
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
    Error::InvalidEvent { field: "<event>".to_owned(), reason: reason.into() }
}

fn jerr(e: &jiter::JiterError) -> Error {
    bad(format!("not valid JSON: {e}"))
}

/// Flatten JSON text. The top level must be an object; the whole text must be valid.
pub(crate) fn flatten_json(trie: &PathTrie, json: &[u8], flat: &mut Flat) -> Result<()> {
    flat.clear();
    let mut j = Jiter::new(json);
    let peek = j.peek().map_err(|e| jerr(&e))?;
    if peek != Peek::Object {
        return Err(bad("an event must be a JSON object"));
    }
    walk_object(trie, &mut j, 0, 0, flat)?;
    j.finish().map_err(|e| jerr(&e))
}

fn walk_object(trie: &PathTrie, j: &mut Jiter<'_>, node: u32, depth: usize, flat: &mut Flat) -> Result<()> {
    let mut child = match j.known_object().map_err(|e| jerr(&e))? {
        None => return Ok(()),
        Some(k) => Some(trie.child(node, k)),
    };
    while let Some(c) = child {
        match c {
            None => j.next_skip().map_err(|e| jerr(&e))?,
            Some(c) => {
                let peek = j.peek().map_err(|e| jerr(&e))?;
                walk_value(trie, j, peek, c, depth + 1, flat)?;
            }
        }
        child = j.next_key().map_err(|e| jerr(&e))?.map(|k| trie.child(node, k));
    }
    Ok(())
}

fn walk_value(trie: &PathTrie, j: &mut Jiter<'_>, peek: Peek, node: u32, depth: usize, flat: &mut Flat) -> Result<()> {
    if depth > MAX_EVENT_DEPTH {
        return Err(bad(format!("nested deeper than {MAX_EVENT_DEPTH} levels")));
    }
    let path = trie.path_of(node);
    match peek {
        Peek::Object => {
            if trie.has_children(node) {
                walk_object(trie, j, node, depth, flat)
            } else {
                j.known_skip(peek).map_err(|e| jerr(&e))
            }
        }
        Peek::Array => {
            let id = flat.next_array;
            flat.next_array += 1;
            let mut idx = 0u32;
            let mut next = j.known_array().map_err(|e| jerr(&e))?;
            while let Some(p) = next {
                flat.stack.push((id, idx));
                let r = walk_value(trie, j, p, node, depth + 1, flat);
                flat.stack.pop();
                r?;
                idx += 1;
                next = j.array_step().map_err(|e| jerr(&e))?;
            }
            Ok(())
        }
        _ if path == NO_PATH => j.known_skip(peek).map_err(|e| jerr(&e)),
        Peek::String => {
            let s = j.known_str().map_err(|e| jerr(&e))?;
            // The reader reuses its buffer for the next string, so copy now.
            let a = flat.arena.len();
            flat.arena.extend_from_slice(s.as_bytes());
            let m = flat.mem.len();
            flat.mem.extend_from_slice(&flat.stack);
            flat.leaves.push(Leaf {
                path,
                kind: Kind::Str,
                text: (to_u32(a), to_u32(flat.arena.len())),
                mem: (to_u32(m), to_u32(flat.mem.len())),
            });
            Ok(())
        }
        Peek::True | Peek::False => {
            let b = j.known_bool(peek).map_err(|e| jerr(&e))?;
            flat.push(path, if b { Kind::True } else { Kind::False }, b"");
            Ok(())
        }
        Peek::Null => {
            j.known_null().map_err(|e| jerr(&e))?;
            flat.push(path, Kind::Null, b"");
            Ok(())
        }
        _ => {
            let n = j.known_number_bytes(peek).map_err(|e| jerr(&e))?;
            let a = flat.arena.len();
            flat.arena.extend_from_slice(n);
            let m = flat.mem.len();
            flat.mem.extend_from_slice(&flat.stack);
            flat.leaves.push(Leaf {
                path,
                kind: Kind::Num,
                text: (to_u32(a), to_u32(flat.arena.len())),
                mem: (to_u32(m), to_u32(flat.mem.len())),
            });
            Ok(())
        }
    }
}

/// Flatten an already parsed event (same result as `flatten_json` on its text).
pub(crate) fn flatten_value(trie: &PathTrie, event: &serde_json::Map<String, Value>, flat: &mut Flat) {
    flat.clear();
    walk_map(trie, event, 0, 0, flat);
}

fn walk_map(trie: &PathTrie, m: &serde_json::Map<String, Value>, node: u32, depth: usize, flat: &mut Flat) {
    for (k, v) in m {
        if let Some(c) = trie.child(node, k) {
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
        Value::Number(n) => flat.push(path, Kind::Num, super::value::serde_number_text(n).as_bytes()),
        Value::Bool(b) => flat.push(path, if *b { Kind::True } else { Kind::False }, b""),
        Value::Null => flat.push(path, Kind::Null, b""),
    }
}
