//! All subscriptions' patterns -> one index. Predicates, slots (field conditions) and
//! paths are interned, so a condition that 5,000 subscriptions share is evaluated once
//! per event. Each path gets a `FieldIndex` that finds the predicates a value matches
//! by lookups (hash maps, length buckets, a segment tree for numeric ranges, mask
//! buckets for CIDR), not by trying predicates one by one.
//!
//! Each branch is "anchored" on one of its slots (the one fewest branches share,
//! i.e. the most selective): only when an anchor slot is satisfied are its branches
//! checked, by looking up their other slots' state. So the work per event follows the
//! number of candidate matches, not the number of subscriptions.

use rustc_hash::FxHashMap;

use super::flatten::{KeyPrint, PathTrie};
use super::ignore_case::IgnoreCase;
use super::parse::{AnythingBut, Path, Pred, Slot};
use super::value::Glob;

/// Byte-string keys found by their `KeyPrint` (length and first 16 bytes, held inline
/// in the table), so a probe reads one bucket instead of following a pointer to a key
/// on the heap: at 10,000 subscriptions that pointer was a cache miss per lookup.
/// Keys longer than a print holds live in a second, ordinary map.
#[derive(Debug)]
pub(crate) struct BytesMap<V> {
    short: PrintTable<V>,
    long: FxHashMap<Box<[u8]>, V>,
}

impl<V> Default for BytesMap<V> {
    fn default() -> Self {
        BytesMap {
            short: PrintTable::default(),
            long: FxHashMap::default(),
        }
    }
}

/// `KeyPrint` -> value: open addressing with linear probing, at most half full, the
/// slot taken from the print's own hash. A hit is usually one slot read and one
/// compare; a general-purpose map spent ~100 instructions a lookup here (hashing the
/// print again, group probing), six lookups an event.
#[derive(Debug)]
struct PrintTable<V> {
    slots: Vec<Option<(KeyPrint, V)>>,
    len: usize,
    /// 64 minus log2 of the slot count: the hash's top bits pick the slot.
    shift: u32,
}

impl<V> Default for PrintTable<V> {
    fn default() -> Self {
        PrintTable {
            slots: Vec::new(),
            len: 0,
            shift: 64,
        }
    }
}

impl<V> PrintTable<V> {
    #[inline]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot holding `print`, or the empty slot where it would go (`None` for a
    /// table with no slots).
    #[inline]
    fn probe(&self, print: &KeyPrint) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        #[allow(clippy::cast_possible_truncation)] // the top bits of the hash, by design
        let mut at = (print.hash() >> self.shift) as usize & mask;
        // Never full (see `entry_or_insert_with`), so an empty slot ends every probe.
        loop {
            match &self.slots[at] {
                Some((k, _)) if k != print => at = (at + 1) & mask,
                _ => return Some(at),
            }
        }
    }

    #[inline]
    fn get(&self, print: &KeyPrint) -> Option<&V> {
        let at = self.probe(print)?;
        self.slots[at].as_ref().map(|(_, v)| v)
    }

    /// The slot for `print`: its own, or an empty one (the table grown first if
    /// needed, so it stays at most half full).
    fn slot_for(&mut self, print: &KeyPrint) -> usize {
        if self.get(print).is_none() && (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let at = self.probe(print).unwrap_or(0);
        self.len += usize::from(self.slots[at].is_none());
        at
    }

    fn entry_or_insert_with(&mut self, print: KeyPrint, f: impl FnOnce() -> V) -> &mut V {
        let at = self.slot_for(&print);
        &mut self.slots[at].get_or_insert_with(|| (print, f())).1
    }

    fn insert(&mut self, print: KeyPrint, v: V) {
        let at = self.slot_for(&print);
        self.slots[at] = Some((print, v));
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(8);
        let old = std::mem::take(&mut self.slots);
        self.slots = std::iter::repeat_with(|| None).take(size).collect();
        self.shift = 64 - size.trailing_zeros();
        for (k, v) in old.into_iter().flatten() {
            let at = self.probe(&k).unwrap_or(0);
            self.slots[at] = Some((k, v));
        }
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots.iter_mut().flatten().map(|(_, v)| v)
    }
}

impl<V> BytesMap<V> {
    pub(crate) fn entry_or_insert_with(&mut self, key: &[u8], f: impl FnOnce() -> V) -> &mut V {
        if key.len() <= 16 {
            self.short.entry_or_insert_with(KeyPrint::of(key), f)
        } else {
            self.long.entry(key.into()).or_insert_with(f)
        }
    }

    pub(crate) fn insert(&mut self, key: &[u8], v: V) {
        if key.len() <= 16 {
            self.short.insert(KeyPrint::of(key), v);
        } else {
            self.long.insert(key.into(), v);
        }
    }

    /// The value under `buf[start..end]` (reading up to 16 bytes from `start`).
    #[inline]
    pub(crate) fn get_at(&self, buf: &[u8], start: usize, end: usize) -> Option<&V> {
        if end - start <= 16 {
            if self.short.is_empty() {
                return None;
            }
            self.short.get(&KeyPrint::at(buf, start, end))
        } else {
            self.long.get(&buf[start..end])
        }
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.short.values_mut().chain(self.long.values_mut())
    }

    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.get_at(key, 0, key.len())
    }
}

/// A lookup keyed by the prefix (or suffix) of a value: one hash probe per distinct
/// key length, rather than one test per pattern. The ids of a key sit in one shared
/// array (`ids[a..b]`), so a hit reads the bucket and then a contiguous run.
#[derive(Debug, Default)]
pub(crate) struct LenBuckets {
    pub lens: Vec<usize>,
    map: BytesMap<(u32, u32)>,
    ids: Vec<u32>,
    /// Filled by `insert`, turned into `map` + `ids` by `finish`.
    staging: Vec<(Box<[u8]>, u32)>,
}

impl LenBuckets {
    fn insert(&mut self, key: &[u8], id: u32) {
        if !self.lens.contains(&key.len()) {
            self.lens.push(key.len());
            self.lens.sort_unstable();
        }
        self.staging.push((key.into(), id));
    }

    /// Lay the ids out per key (in insertion order within a key).
    fn finish(&mut self) {
        let mut staged = std::mem::take(&mut self.staging);
        staged.sort_by(|a, b| a.0.cmp(&b.0));
        let mut i = 0;
        while i < staged.len() {
            let a = id32(self.ids.len());
            let mut j = i;
            while j < staged.len() && staged[j].0 == staged[i].0 {
                self.ids.push(staged[j].1);
                j += 1;
            }
            self.map.insert(&staged[i].0, (a, id32(self.ids.len())));
            i = j;
        }
    }

    #[inline]
    fn each(&self, hit: Option<&(u32, u32)>, f: &mut impl FnMut(u32)) {
        if let Some(&(a, b)) = hit {
            for &i in &self.ids[a as usize..b as usize] {
                f(i);
            }
        }
    }

    #[inline]
    pub(crate) fn prefixes_of(&self, s: &[u8], mut f: impl FnMut(u32)) {
        for &l in &self.lens {
            if l > s.len() {
                break;
            }
            self.each(self.map.get_at(s, 0, l), &mut f);
        }
    }

    #[inline]
    pub(crate) fn suffixes_of(&self, s: &[u8], mut f: impl FnMut(u32)) {
        for &l in &self.lens {
            if l > s.len() {
                break;
            }
            self.each(self.map.get_at(s, s.len() - l, s.len()), &mut f);
        }
    }
}

/// Closed integer intervals on the numeric key line, stored in a segment tree over
/// the elementary segments between endpoints: a point query walks one leaf-to-root
/// path, so it costs O(log n + matches).
#[derive(Debug, Default)]
pub(crate) struct Intervals {
    coords: Vec<i64>,
    size: usize,
    /// CSR: node n holds ids[off[n]..off[n+1]].
    off: Vec<u32>,
    ids: Vec<u32>,
}

impl Intervals {
    fn build(items: &[(i64, i64, u32)]) -> Intervals {
        if items.is_empty() {
            return Intervals::default();
        }
        let mut coords: Vec<i64> = items
            .iter()
            .flat_map(|&(lo, hi, _)| [lo, hi.saturating_add(1)])
            .collect();
        coords.sort_unstable();
        coords.dedup();
        let segs = coords.len().saturating_sub(1).max(1);
        let size = segs.next_power_of_two();
        let mut nodes: Vec<Vec<u32>> = vec![Vec::new(); 2 * size];
        for &(lo, hi, id) in items {
            let mut l = coords.partition_point(|&c| c < lo) + size;
            let mut r = coords.partition_point(|&c| c < hi.saturating_add(1)) + size;
            while l < r {
                if l & 1 == 1 {
                    nodes[l].push(id);
                    l += 1;
                }
                if r & 1 == 1 {
                    r -= 1;
                    nodes[r].push(id);
                }
                l >>= 1;
                r >>= 1;
            }
        }
        let mut off = Vec::with_capacity(nodes.len() + 1);
        let mut ids = Vec::new();
        off.push(0);
        for n in nodes {
            ids.extend(n);
            off.push(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        }
        Intervals {
            coords,
            size,
            off,
            ids,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    #[inline]
    pub(crate) fn containing(&self, key: i64, mut found: impl FnMut(u32)) {
        if self.size == 0 {
            return;
        }
        let seg = self.coords.partition_point(|&c| c <= key);
        if seg == 0 || seg >= self.coords.len() {
            return;
        }
        let mut node = seg - 1 + self.size;
        while node >= 1 {
            let (from, to) = (self.off[node] as usize, self.off[node + 1] as usize);
            for &id in &self.ids[from..to] {
                found(id);
            }
            node >>= 1;
        }
    }
}

/// Everything a value at one path is tested against.
#[derive(Debug, Default)]
pub(crate) struct FieldIndex {
    /// Keyed by bytes: event strings are looked up without a UTF-8 check.
    pub exact_str: BytesMap<u32>,
    pub exact_num: FxHashMap<Box<str>, u32>,
    pub lit_true: Option<u32>,
    pub lit_false: Option<u32>,
    pub lit_null: Option<u32>,
    pub exists: Option<u32>,
    pub prefix: LenBuckets,
    pub suffix: LenBuckets,
    /// Ignore-case operands by key (`ignore_case::key`); a hit is confirmed with
    /// `Compiled::ignore_case` unless operand and value are both ASCII.
    pub eq_ic: FxHashMap<Box<str>, Vec<u32>>,
    pub prefix_ic: LenBuckets,
    pub suffix_ic: LenBuckets,
    /// Wildcards bucketed by their literal head; `wild_any` have an empty head.
    pub wild_head: LenBuckets,
    pub wild_any: Vec<u32>,
    pub ranges: Intervals,
    /// Distinct (`is_v6`, mask length) pairs, and (`is_v6`, length, network) -> predicate.
    pub cidr_lens: Vec<(bool, u8)>,
    pub cidr: FxHashMap<(bool, u8, u128), u32>,
    /// `anything-but` on plain strings, inverted: all of `ab_strs` hold for a value
    /// unless `ab_strs_kept` has it, which lists the ones that still hold (one lookup
    /// and one copy per value, not one test per pattern).
    pub ab_strs: Vec<u32>,
    pub ab_strs_kept: BytesMap<Vec<u32>>,
    /// The other `anything-but` forms, tried one by one.
    pub anything_but: Vec<(u32, AnythingButIndex)>,
    pub needs_fold: bool,
    pub needs_canon: bool,
    /// A string value needs more than the `exact_str` lookup (prefixes, suffixes,
    /// case folding, addresses or wildcards): most paths need only that lookup, and
    /// the other tests cost a dozen branches per value even when empty.
    pub str_more: bool,
}

/// anything-but operands in lookup form.
#[derive(Debug)]
pub(crate) enum AnythingButIndex {
    Nums(rustc_hash::FxHashSet<Box<str>>),
    Prefixes(Vec<Box<[u8]>>),
    Suffixes(Vec<Box<[u8]>>),
    /// The operands' keys (a value whose key is not among them is not excluded),
    /// and the operands.
    IgnoreCase(rustc_hash::FxHashSet<Box<str>>, Vec<IgnoreCase>),
    Wildcards(Vec<Glob>),
}

/// The compiled set. Owners are dense indexes into the set's key list.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub id: u64,
    pub trie: PathTrie,
    pub fields: Vec<FieldIndex>,
    /// Wildcard predicates' globs, by predicate id (empty for others).
    pub globs: FxHashMap<u32, Glob>,
    /// Ignore-case predicates' operands, by predicate id.
    pub ignore_case: FxHashMap<u32, IgnoreCase>,
    /// CSR pred -> slots (with `ANCHOR_SLOT` set on anchor slots).
    pub pred_slot_off: Vec<u32>,
    pub pred_slots: Vec<u32>,
    /// Per slot, the branches anchored on it, in
    /// `anchored[anchor_off[slot]..anchor_off[slot + 1]]`: one fixed-size record each,
    /// `[owner, other slot, other slot, other slot]`, padded with `always_slot`, so
    /// a candidate is checked with three loads and no data-dependent branch (the
    /// branch mispredictions of a variable-length check were most of the cost at
    /// 10,000 subscriptions). A branch with more than `RECORD_OTHERS` other slots has
    /// `LONG_BRANCH` set on its owner and the rest of its slots in `long_others`,
    /// under its record's index.
    pub anchor_off: Vec<u32>,
    pub anchored: Vec<[u32; 4]>,
    pub long_others: FxHashMap<u32, Box<[u32]>>,
    /// A slot no condition uses, stamped satisfied at the start of every event.
    pub always_slot: u32,
    /// Each slot's path, and each path's place in the order of dotted names (by
    /// UTF-16 code units, as Java orders strings): the order in which EventBridge's
    /// engine takes a branch's fields.
    pub slot_path: Vec<u32>,
    pub path_rank: Vec<u32>,
    /// For each path: slots that the field's absence satisfies.
    pub absent_slots: Vec<Vec<u32>>,
    pub absent_paths: Vec<u32>,
    pub n_slots: usize,
    pub n_paths: usize,
    pub n_owners: usize,
}

fn csr(lists: Vec<Vec<u32>>) -> (Vec<u32>, Vec<u32>) {
    let mut off = Vec::with_capacity(lists.len() + 1);
    let mut flat = Vec::new();
    off.push(0);
    for l in lists {
        flat.extend(l);
        off.push(u32::try_from(flat.len()).unwrap_or(u32::MAX));
    }
    (off, flat)
}

fn id32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Flag on a `pred_slots` entry: the slot anchors some branch.
pub(crate) const ANCHOR_SLOT: u32 = 1 << 31;

/// Flag on an anchored record's owner: the branch has more other slots than a record
/// holds (see `Compiled::long_others`).
pub(crate) const LONG_BRANCH: u32 = 1 << 31;

/// Other slots held inline in an anchored record.
pub(crate) const RECORD_OTHERS: usize = 3;

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Per path, what the patterns say about it, for guessing how often a predicate holds
/// without seeing any events: a path compared with 6 distinct values has each about
/// 1/6 of the time; 256 distinct order-id prefixes, 1/256 each; a range covers its
/// width over the span of all ranges on the path.
#[derive(Debug, Default, Clone)]
struct PathStats {
    values: u32,
    prefixes: u32,
    suffixes: u32,
    nets: u32,
    range_lo: i64,
    range_hi: i64,
}

fn path_stats(pred_list: &[(u32, Pred)], n_paths: usize) -> Vec<PathStats> {
    let mut st = vec![
        PathStats {
            range_lo: i64::MAX,
            range_hi: i64::MIN,
            ..PathStats::default()
        };
        n_paths
    ];
    // Interning made every (path, predicate) pair distinct, so counting is enough.
    for (pid, pred) in pred_list {
        let s = &mut st[*pid as usize];
        match pred {
            Pred::Str(_) | Pred::Num(_) | Pred::EqIc(_) => s.values += 1,
            Pred::Prefix(_) | Pred::PrefixIc(_) | Pred::Wildcard(_) => s.prefixes += 1,
            Pred::Suffix(_) | Pred::SuffixIc(_) => s.suffixes += 1,
            Pred::Cidr { .. } => s.nets += 1,
            Pred::Range { lo, hi } => {
                s.range_lo = s.range_lo.min(*lo);
                s.range_hi = s.range_hi.max(*hi);
            }
            Pred::Bool(_) | Pred::Null | Pred::Exists | Pred::AnythingBut(_) => {}
        }
    }
    st
}

/// Guessed share of events in which `pred` holds at its path (see `PathStats`).
#[allow(clippy::cast_precision_loss)] // a rough estimate; precision is irrelevant
fn pred_odds(pred: &Pred, st: &PathStats) -> f64 {
    let one_of = |n: u32, floor: u32| 1.0 / f64::from(n.max(floor));
    match pred {
        Pred::Str(_) | Pred::Num(_) | Pred::EqIc(_) => one_of(st.values, 2),
        Pred::Bool(_) | Pred::Null => 0.5,
        Pred::Wildcard(g) if g.head().is_empty() => 0.5,
        Pred::Prefix(_) | Pred::PrefixIc(_) | Pred::Wildcard(_) => one_of(st.prefixes, 4),
        Pred::Suffix(_) | Pred::SuffixIc(_) => one_of(st.suffixes, 4),
        Pred::Cidr { .. } => one_of(st.nets, 4),
        Pred::Range { lo, hi } => {
            let span = st.range_hi.saturating_sub(st.range_lo).max(1) as f64;
            let width = hi.saturating_sub(*lo) as f64;
            (width / span).clamp(1e-3, 0.5)
        }
        Pred::Exists | Pred::AnythingBut(_) => 1.0,
    }
}

/// Guessed share of events satisfying a slot: the sum over its alternatives.
fn slot_odds(slot: &Slot, st: &PathStats) -> f64 {
    let present: f64 = slot.preds.iter().map(|p| pred_odds(p, st)).sum();
    (present + if slot.absent_ok { 1.0 } else { 0.0 }).min(1.0)
}

/// Build the index from (owner, branches) where each branch is its (path, slot) list.
#[allow(clippy::too_many_lines)] // one linear pass; splitting it would only scatter the interning tables
pub(crate) fn compile<'a>(
    owners: impl Iterator<Item = (u32, &'a [super::parse::Branch])>,
    n_owners: usize,
) -> Compiled {
    let mut paths: FxHashMap<Path, u32> = FxHashMap::default();
    let mut path_list: Vec<Path> = Vec::new();
    let mut preds: FxHashMap<(u32, Pred), u32> = FxHashMap::default();
    let mut pred_list: Vec<(u32, Pred)> = Vec::new();
    let mut slots: FxHashMap<(u32, Vec<u32>, bool), u32> = FxHashMap::default();
    let mut slot_info: Vec<(u32, Slot)> = Vec::new(); // (path, slot)
    let mut branches: Vec<(u32, Vec<u32>)> = Vec::new();

    for (owner, owner_branches) in owners {
        let mut seen: Vec<Vec<u32>> = Vec::new();
        for b in owner_branches {
            let mut slot_ids = Vec::with_capacity(b.fields.len());
            for (path, slot) in &b.fields {
                let pid = *paths.entry(path.clone()).or_insert_with(|| {
                    path_list.push(path.clone());
                    id32(path_list.len() - 1)
                });
                let mut pids: Vec<u32> = slot
                    .preds
                    .iter()
                    .map(|p| {
                        *preds.entry((pid, p.clone())).or_insert_with(|| {
                            pred_list.push((pid, p.clone()));
                            id32(pred_list.len() - 1)
                        })
                    })
                    .collect();
                pids.sort_unstable();
                let sid = *slots.entry((pid, pids, slot.absent_ok)).or_insert_with(|| {
                    slot_info.push((pid, slot.clone()));
                    id32(slot_info.len() - 1)
                });
                slot_ids.push(sid);
            }
            slot_ids.sort_unstable();
            if !seen.contains(&slot_ids) {
                seen.push(slot_ids.clone());
                branches.push((owner, slot_ids));
            }
        }
    }

    // pred -> slots, from the slot keys.
    let mut pred_slots: Vec<Vec<u32>> = vec![Vec::new(); pred_list.len()];
    let mut absent_slots: Vec<Vec<u32>> = vec![Vec::new(); path_list.len()];
    for ((pid, pids, absent_ok), sid) in &slots {
        for &p in pids {
            pred_slots[p as usize].push(*sid);
        }
        if *absent_ok {
            absent_slots[*pid as usize].push(*sid);
        }
    }
    let absent_paths: Vec<u32> = absent_slots
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, _)| id32(i))
        .collect();

    // Anchor each branch on the slot least often satisfied, so its other slots are
    // looked at only for the few events that pass it. Among equals, prefer the slot
    // fewer branches share (a shorter list to walk when it is satisfied).
    let stats = path_stats(&pred_list, path_list.len());
    let odds: Vec<f64> = slot_info
        .iter()
        .map(|(pid, slot)| slot_odds(slot, &stats[*pid as usize]))
        .collect();
    let mut fanout = vec![0u32; slot_info.len()];
    for (_, s) in &branches {
        for &sid in s {
            fanout[sid as usize] += 1;
        }
    }
    let always_slot = id32(slot_info.len());
    let mut anchored: Vec<Vec<([u32; 4], Vec<u32>)>> = vec![Vec::new(); slot_info.len()];
    for (owner, s) in &branches {
        let best = s.iter().copied().min_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            odds[a].total_cmp(&odds[b]).then(fanout[a].cmp(&fanout[b]))
        });
        if let Some(best) = best {
            let others: Vec<u32> = s.iter().copied().filter(|&x| x != best).collect();
            let mut rec = [*owner, always_slot, always_slot, always_slot];
            for (r, &x) in rec[1..].iter_mut().zip(&others) {
                *r = x;
            }
            let rest = others.get(RECORD_OTHERS..).unwrap_or(&[]).to_vec();
            if !rest.is_empty() {
                rec[0] |= LONG_BRANCH;
            }
            anchored[best as usize].push((rec, rest));
        }
    }
    let mut trie = PathTrie::new();
    for (i, p) in path_list.iter().enumerate() {
        trie.insert(p, id32(i));
    }
    let mut fields: Vec<FieldIndex> = (0..path_list.len())
        .map(|_| FieldIndex::default())
        .collect();
    let mut globs = FxHashMap::default();
    let mut ignore_case = FxHashMap::default();
    let mut ranges: Vec<Vec<(i64, i64, u32)>> = vec![Vec::new(); path_list.len()];
    for (id, (pid, pred)) in pred_list.iter().enumerate() {
        let id = id32(id);
        let f = &mut fields[*pid as usize];
        match pred {
            Pred::Str(s) => {
                f.exact_str.insert(s.as_bytes(), id);
            }
            Pred::Num(n) => {
                f.exact_num.insert(n.clone(), id);
                f.needs_canon = true;
            }
            Pred::Bool(true) => f.lit_true = Some(id),
            Pred::Bool(false) => f.lit_false = Some(id),
            Pred::Null => f.lit_null = Some(id),
            Pred::Exists => f.exists = Some(id),
            Pred::Prefix(p) => f.prefix.insert(p, id),
            Pred::Suffix(s) => f.suffix.insert(s, id),
            Pred::EqIc(s) => {
                f.eq_ic.entry(s.key().into()).or_default().push(id);
                f.needs_fold = true;
                ignore_case.insert(id, s.clone());
            }
            Pred::PrefixIc(s) => {
                f.prefix_ic.insert(s.key().as_bytes(), id);
                f.needs_fold = true;
                ignore_case.insert(id, s.clone());
            }
            Pred::SuffixIc(s) => {
                f.suffix_ic.insert(s.key().as_bytes(), id);
                f.needs_fold = true;
                ignore_case.insert(id, s.clone());
            }
            Pred::Wildcard(g) => {
                if g.head().is_empty() {
                    f.wild_any.push(id);
                } else {
                    f.wild_head.insert(g.head(), id);
                }
                globs.insert(id, g.clone());
            }
            Pred::Range { lo, hi } => ranges[*pid as usize].push((*lo, *hi, id)),
            Pred::Cidr { v6, len, net } => {
                if !f.cidr_lens.contains(&(*v6, *len)) {
                    f.cidr_lens.push((*v6, *len));
                }
                f.cidr.insert((*v6, *len, *net), id);
            }
            Pred::AnythingBut(ab) => {
                let idx = match ab {
                    AnythingBut::Strs(v) => {
                        f.ab_strs.push(id);
                        for x in v {
                            let ex = f.ab_strs_kept.entry_or_insert_with(x.as_bytes(), Vec::new);
                            if !ex.contains(&id) {
                                ex.push(id);
                            }
                        }
                        continue;
                    }
                    AnythingBut::Nums(v) => {
                        f.needs_canon = true;
                        AnythingButIndex::Nums(v.iter().cloned().collect())
                    }
                    AnythingBut::Prefixes(v) => AnythingButIndex::Prefixes(v.clone()),
                    AnythingBut::Suffixes(v) => AnythingButIndex::Suffixes(v.clone()),
                    AnythingBut::IgnoreCase(v) => {
                        f.needs_fold = true;
                        AnythingButIndex::IgnoreCase(
                            v.iter().map(|o| o.key().into()).collect(),
                            v.clone(),
                        )
                    }
                    AnythingBut::Wildcards(v) => AnythingButIndex::Wildcards(v.clone()),
                };
                f.anything_but.push((id, idx));
            }
        }
    }
    for (f, r) in fields.iter_mut().zip(ranges) {
        f.ranges = Intervals::build(&r);
        // Each value's list held the predicates it excludes; keep the complement.
        for list in f.ab_strs_kept.values_mut() {
            *list = f
                .ab_strs
                .iter()
                .filter(|p| !list.contains(p))
                .copied()
                .collect();
        }
        f.str_more = !f.prefix.lens.is_empty()
            || !f.suffix.lens.is_empty()
            || f.needs_fold
            || !f.cidr_lens.is_empty()
            || !f.wild_head.lens.is_empty()
            || !f.wild_any.is_empty();
        for b in [
            &mut f.prefix,
            &mut f.suffix,
            &mut f.prefix_ic,
            &mut f.suffix_ic,
            &mut f.wild_head,
        ] {
            b.finish();
        }
    }

    // Flag the slots that anchor branches, so marking a slot satisfied needs no look
    // at `anchor_off` to know whether to queue it.
    for list in &mut pred_slots {
        for sid in list.iter_mut() {
            if !anchored[*sid as usize].is_empty() {
                *sid |= ANCHOR_SLOT;
            }
        }
    }
    let (pred_slot_off, pred_slots) = csr(pred_slots);
    let mut anchor_off = Vec::with_capacity(anchored.len() + 1);
    let mut records = Vec::new();
    let mut long_others = FxHashMap::default();
    anchor_off.push(0);
    for list in anchored {
        for (rec, rest) in list {
            if !rest.is_empty() {
                long_others.insert(id32(records.len()), rest.into_boxed_slice());
            }
            records.push(rec);
        }
        anchor_off.push(id32(records.len()));
    }
    // `always_slot` anchors nothing.
    anchor_off.push(id32(records.len()));
    let n_slots = slot_info.len() + 1;
    let slot_path: Vec<u32> = slot_info.iter().map(|(pid, _)| *pid).collect();
    let mut by_name: Vec<(Vec<u16>, usize)> = path_list
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let steps: Vec<&str> = p.iter().map(AsRef::as_ref).collect();
            (steps.join(".").encode_utf16().collect(), i)
        })
        .collect();
    by_name.sort();
    let mut path_rank = vec![0u32; path_list.len()];
    for (rank, (_, i)) in by_name.iter().enumerate() {
        path_rank[*i] = id32(rank);
    }
    Compiled {
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        trie,
        fields,
        globs,
        ignore_case,
        pred_slot_off,
        pred_slots,
        anchor_off,
        anchored: records,
        long_others,
        always_slot,
        slot_path,
        path_rank,
        absent_slots,
        absent_paths,
        n_slots,
        n_paths: path_list.len(),
        n_owners,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod lookup_tests {
    use super::{BytesMap, LenBuckets};

    fn collect(f: impl FnOnce(&mut dyn FnMut(u32))) -> Vec<u32> {
        let mut v = Vec::new();
        f(&mut |i| v.push(i));
        v.sort_unstable();
        v
    }

    #[test]
    fn prefixes_and_suffixes_of_every_length_are_found_exactly() {
        let word: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        let mut pre = LenBuckets::default();
        let mut suf = LenBuckets::default();
        for l in 0..=40usize {
            pre.insert(&word[..l], u32::try_from(l).unwrap());
            suf.insert(&word[40 - l..], u32::try_from(l).unwrap());
            // Same length, one byte different (at the end or past byte 16): never found.
            if l > 0 {
                let mut near = word[..l].to_vec();
                near[l - 1] ^= 0x20;
                pre.insert(&near, 1000);
                let mut near = word[40 - l..].to_vec();
                near[0] ^= 0x20;
                suf.insert(&near, 1000);
            }
        }
        // A shared key keeps all its ids.
        pre.insert(&word[..3], 2000);
        pre.finish();
        suf.finish();
        let all: Vec<u32> = (0..=40).collect();
        let mut with_shared = all.clone();
        with_shared.push(2000);
        assert_eq!(collect(|f| pre.prefixes_of(&word, f)), with_shared);
        assert_eq!(collect(|f| suf.suffixes_of(&word, f)), all);
        assert_eq!(collect(|f| pre.prefixes_of(&word[..20], f)), {
            let mut v: Vec<u32> = (0..=20).collect();
            v.push(2000);
            v
        });
        assert_eq!(
            collect(|f| suf.suffixes_of(&word[25..], f)),
            (0..=15).collect::<Vec<u32>>()
        );
    }

    #[test]
    fn bytes_map_keeps_every_key_through_growth_and_replacement() {
        let mut m = BytesMap::default();
        let key = |i: u32| format!("k{i}").into_bytes();
        for i in 0..2000u32 {
            m.insert(&key(i), i);
            if i % 7 == 0 {
                // Replacing keeps one entry with the new value.
                m.insert(&key(i), i + 100_000);
            }
        }
        *m.entry_or_insert_with(b"k3", || 0) += 1;
        *m.entry_or_insert_with(b"fresh", || 41) += 1;
        for i in 0..2000u32 {
            let want = if i % 7 == 0 { i + 100_000 } else { i } + u32::from(i == 3);
            assert_eq!(m.get(&key(i)), Some(&want), "k{i}");
            assert_eq!(m.get(format!("x{i}").as_bytes()), None);
        }
        assert_eq!(m.get(b"fresh"), Some(&42));
        assert_eq!(m.values_mut().count(), 2001);
        assert_eq!(BytesMap::<u32>::default().get(b"k1"), None);
    }

    #[test]
    fn bytes_map_tells_long_keys_apart_past_sixteen_bytes() {
        let mut m = BytesMap::default();
        m.insert(b"0123456789abcdef-one", 1);
        m.insert(b"0123456789abcdef-two", 2);
        m.insert(b"0123456789abcdef", 3);
        m.insert(b"", 4);
        assert_eq!(m.get(b"0123456789abcdef-one"), Some(&1));
        assert_eq!(m.get(b"0123456789abcdef-two"), Some(&2));
        assert_eq!(m.get(b"0123456789abcdef"), Some(&3));
        assert_eq!(m.get(b""), Some(&4));
        assert_eq!(m.get(b"0123456789abcdef-thr"), None);
        assert_eq!(m.get(b"0123456789abcde"), None);
        assert_eq!(m.get_at(b"x0123456789abcdefy", 1, 17), Some(&3));
    }
}
