//! Matching one flattened event against the compiled index.
//!
//! 1. For each leaf, the path's `FieldIndex` yields the predicates it matches; each
//!    marks its slots satisfied (an epoch stamp, so nothing is cleared per event).
//! 2. Paths with no leaf satisfy their `{"exists": false}` slots.
//! 3. For each satisfied anchor slot, its branches are checked by looking up their
//!    other slots' stamps; array consistency is checked only when two or more of a
//!    branch's slots were satisfied from inside arrays, or one may be satisfied by
//!    an absence that depends on the array elements chosen (see `check_ordered`).

use std::cell::RefCell;

use super::compile::{AnythingButIndex, Compiled, FieldIndex, ANCHOR_SLOT, LONG_BRANCH};
use super::flatten::{Flat, Kind, Leaf};
use super::ignore_case;
use super::value::{net_mask, parse_ip, plain_numeric_key, Decimal};

/// Per-thread scratch state, reused from event to event.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    compiled_id: u64,
    epoch: u32,
    pub flat: Flat,
    /// Per slot, `epoch << 2 | flags`: satisfied in this event when the stamp's
    /// upper bits equal the epoch. `IN_ARRAY`: no leaf outside arrays satisfies it
    /// (a slot with one can always pick that one); `ABSENT_IF`: it holds
    /// `{"exists": false}` and all the values at its path sit inside arrays, so it
    /// may be satisfied by their absence from the elements the branch's other
    /// fields are taken from. One word, so checking a candidate touches one cache
    /// line per slot.
    slot_stamp: Vec<u32>,
    path_seen: Vec<u32>,
    /// Per path, the epoch in which it had a leaf outside arrays.
    path_out: Vec<u32>,
    /// Owners of the candidates that passed (each written unconditionally and kept by
    /// advancing the length: no branch on the outcome).
    passed: Vec<u32>,
    /// (slot, leaf) pairs for leaves inside arrays, kept for the rare
    /// array-consistency check.
    sat: Vec<(u32, u32)>,
    anchors: Vec<u32>,
    /// Bit per owner (all clear between events), and a bit per word of it that is
    /// non-zero: many matches come out in id order by walking these, not by sorting.
    owner_bits: Vec<u64>,
    owner_words: Vec<u64>,
    hits: Vec<u32>,
    /// The matched indexes of one event on their way to keys (`PatternSet::keys_with`).
    pub idx: Vec<u32>,
    folded: String,
    canon: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Run `f` with this thread's scratch prepared for `c`.
pub(crate) fn with_scratch<R>(c: &Compiled, f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| {
        if let Ok(mut s) = cell.try_borrow_mut() {
            s.prepare(c);
            f(&mut s)
        } else {
            // Re-entered on this thread (not possible from the public API): use a fresh one.
            let mut s = Scratch::default();
            s.prepare(c);
            f(&mut s)
        }
    })
}

impl Scratch {
    fn prepare(&mut self, c: &Compiled) {
        if self.compiled_id != c.id {
            self.compiled_id = c.id;
            self.epoch = 0;
            self.slot_stamp = vec![0; c.n_slots];
            self.path_seen = vec![0; c.n_paths];
            self.path_out = vec![0; c.n_paths];
            let words = c.n_owners.div_ceil(64);
            self.owner_bits = vec![0; words];
            self.owner_words = vec![0; words.div_ceil(64)];
        }
    }

    fn next_epoch(&mut self) {
        self.epoch += 1;
        // Slot stamps keep the epoch in 30 bits.
        if self.epoch > u32::MAX >> 2 {
            self.slot_stamp.fill(0);
            self.path_seen.fill(0);
            self.path_out.fill(0);
            self.epoch = 1;
        }
    }
}

/// Find the predicates of `f` that `leaf` satisfies, into `hits`.
fn eval_leaf(
    c: &Compiled,
    f: &FieldIndex,
    kind: Kind,
    text: &[u8],
    folded: &mut String,
    canon: &mut String,
    hits: &mut Vec<u32>,
) {
    if let Some(p) = f.exists {
        hits.push(p);
    }
    match kind {
        Kind::Str => {
            if let Some(&p) = f.exact_str.get(text) {
                hits.push(p);
            }
            if f.str_more {
                eval_str_more(c, f, text, folded, hits);
            }
        }
        Kind::Num => {
            if !f.needs_canon && !f.ranges.is_empty() {
                // Ranges only: most numbers need no `Decimal` (and no allocation).
                let key = plain_numeric_key(text)
                    .or_else(|| Decimal::parse(text).and_then(|d| d.numeric_key()));
                if let Some(k) = key {
                    f.ranges.containing(k, |p| hits.push(p));
                }
            } else if f.needs_canon {
                if let Some(d) = Decimal::parse(text) {
                    d.canonical_into(canon);
                    if let Some(&p) = f.exact_num.get(canon.as_str()) {
                        hits.push(p);
                    }
                    if let Some(k) = d.numeric_key() {
                        f.ranges.containing(k, |p| hits.push(p));
                    }
                }
            }
        }
        Kind::True => hits.extend(f.lit_true),
        Kind::False => hits.extend(f.lit_false),
        Kind::Null => hits.extend(f.lit_null),
    }
    if !f.ab_strs.is_empty() {
        let kept = match kind {
            Kind::Str => f.ab_strs_kept.get(text).map(Vec::as_slice),
            _ => None,
        };
        hits.extend_from_slice(kept.unwrap_or(&f.ab_strs));
    }
    for (p, ab) in &f.anything_but {
        let excluded = match (ab, kind) {
            (AnythingButIndex::Nums(set), Kind::Num) => set.contains(canon.as_str()),
            (AnythingButIndex::Prefixes(v), Kind::Str) => v.iter().any(|x| text.starts_with(x)),
            (AnythingButIndex::Suffixes(v), Kind::Str) => v.iter().any(|x| text.ends_with(x)),
            (AnythingButIndex::IgnoreCase(keys, operands), Kind::Str) => {
                keys.contains(folded.as_str()) && operands.iter().any(|o| o.matches(text))
            }
            (AnythingButIndex::Wildcards(v), Kind::Str) => v.iter().any(|g| g.is_match(text)),
            _ => false,
        };
        if !excluded {
            hits.push(*p);
        }
    }
}

/// The string tests beyond the exact lookup (see `FieldIndex::str_more`).
fn eval_str_more(
    c: &Compiled,
    f: &FieldIndex,
    text: &[u8],
    folded: &mut String,
    hits: &mut Vec<u32>,
) {
    f.prefix.prefixes_of(text, |p| hits.push(p));
    f.suffix.suffixes_of(text, |p| hits.push(p));
    // Leaf text is UTF-8 (the scanner checked it, or it came from a `String`);
    // only the IP and ignore-case forms need it as `str`.
    let s = if f.needs_fold || !f.cidr_lens.is_empty() {
        std::str::from_utf8(text).unwrap_or("")
    } else {
        ""
    };
    if !f.cidr_lens.is_empty() {
        if let Some((v6, bits)) = parse_ip(s) {
            for &(lv6, len) in &f.cidr_lens {
                if lv6 == v6 {
                    if let Some(&p) = f.cidr.get(&(v6, len, bits & net_mask(v6, len))) {
                        hits.push(p);
                    }
                }
            }
        }
    }
    if f.needs_fold {
        folded.clear();
        ignore_case::key_into(s, folded);
        // Equal keys are a match when both sides are ASCII; otherwise the operand's
        // own forms decide (see `ignore_case`).
        let ascii = text.is_ascii();
        let confirmed = |p: u32, how: fn(&ignore_case::IgnoreCase, &[u8]) -> bool| {
            ascii
                && c.ignore_case
                    .get(&p)
                    .is_some_and(ignore_case::IgnoreCase::is_ascii)
                || c.ignore_case.get(&p).is_some_and(|o| how(o, text))
        };
        if let Some(ps) = f.eq_ic.get(folded.as_str()) {
            for &p in ps {
                if confirmed(p, ignore_case::IgnoreCase::matches) {
                    hits.push(p);
                }
            }
        }
        f.prefix_ic.prefixes_of(folded.as_bytes(), |p| {
            if confirmed(p, ignore_case::IgnoreCase::matches_prefix) {
                hits.push(p);
            }
        });
        f.suffix_ic.suffixes_of(folded.as_bytes(), |p| {
            if confirmed(p, ignore_case::IgnoreCase::matches_suffix) {
                hits.push(p);
            }
        });
    }
    let glob_ok = |p: u32| c.globs.get(&p).is_some_and(|g| g.is_match(text));
    f.wild_head.prefixes_of(text, |p| {
        if glob_ok(p) {
            hits.push(p);
        }
    });
    for &p in &f.wild_any {
        if glob_ok(p) {
            hits.push(p);
        }
    }
}

/// Match the flattened event in `s.flat`; append matching owners to `out`.
/// `event` is the JSON `s.flat` was scanned from (empty for a parsed `Value`).
pub(crate) fn run(c: &Compiled, s: &mut Scratch, event: &[u8], out: &mut Vec<u32>) {
    s.next_epoch();
    let epoch = s.epoch;
    s.sat.clear();
    s.anchors.clear();
    let Scratch {
        flat,
        slot_stamp,
        path_seen,
        path_out,
        sat,
        anchors,
        hits,
        folded,
        canon,
        ..
    } = s;

    for (li, leaf) in flat.leaves.iter().enumerate() {
        let path = leaf.path as usize;
        path_seen[path] = epoch;
        let in_array = leaf.mem.1 > leaf.mem.0;
        if !in_array {
            path_out[path] = epoch;
        }
        hits.clear();
        eval_leaf(
            c,
            &c.fields[path],
            leaf.kind,
            flat.text(event, leaf),
            folded,
            canon,
            hits,
        );
        for &p in hits.iter() {
            let (a, b) = (
                c.pred_slot_off[p as usize] as usize,
                c.pred_slot_off[p as usize + 1] as usize,
            );
            for &flagged in &c.pred_slots[a..b] {
                let slot = flagged & !ANCHOR_SLOT;
                let si = slot as usize;
                if slot_stamp[si] >> 2 != epoch {
                    slot_stamp[si] = epoch << 2 | if in_array { IN_ARRAY } else { 0 };
                    if flagged & ANCHOR_SLOT != 0 {
                        anchors.push(slot);
                    }
                } else if !in_array {
                    // A leaf outside arrays never conflicts: the slot can always
                    // pick it, so it needs no consistency check.
                    slot_stamp[si] &= !IN_ARRAY;
                }
                if in_array {
                    sat.push((slot, u32::try_from(li).unwrap_or(u32::MAX)));
                }
            }
        }
    }
    for &path in &c.absent_paths {
        let p = path as usize;
        // No value at all: absent, whatever else the branch picks. Values only
        // inside arrays: absent from some elements, which the full check decides.
        let (absent, flags) = if path_seen[p] == epoch {
            (path_out[p] != epoch, IN_ARRAY | ABSENT_IF)
        } else {
            (true, 0)
        };
        if absent {
            for &slot in &c.absent_slots[p] {
                let si = slot as usize;
                if slot_stamp[si] >> 2 == epoch {
                    slot_stamp[si] |= flags & ABSENT_IF;
                } else {
                    slot_stamp[si] = epoch << 2 | flags;
                    if c.anchor_off[si] != c.anchor_off[si + 1] {
                        anchors.push(slot);
                    }
                }
            }
        }
    }

    // The always-satisfied padding slot of the anchored records.
    if let Some(st) = slot_stamp.get_mut(c.always_slot as usize) {
        *st = epoch << 2;
    }
    let kept = check_candidates(c, flat, sat, slot_stamp, anchors, epoch, &mut s.passed);
    sort_owners(
        &mut s.owner_bits,
        &mut s.owner_words,
        &s.passed[..kept],
        out,
    );
}

/// Check the branches anchored on each satisfied anchor slot; the owners that pass
/// go to `passed[..n]`, and `n` is returned.
#[allow(clippy::needless_bitwise_bool)] // `&`/`|` on bools on purpose: no branches on outcomes
fn check_candidates(
    c: &Compiled,
    flat: &Flat,
    sat: &[(u32, u32)],
    st: &[u32],
    anchors: &[u32],
    epoch: u32,
    passed: &mut Vec<u32>,
) -> usize {
    // One pass over the anchors first: it sizes the candidate buffer, and its reads
    // of each anchor's first record are independent of one another, so their cache
    // misses overlap instead of stalling the checking loop one anchor at a time.
    let mut total = 0usize;
    let mut warm = 0u32;
    for &anchor in anchors {
        let ai = anchor as usize;
        let (from, to) = (c.anchor_off[ai] as usize, c.anchor_off[ai + 1] as usize);
        total += to - from;
        warm ^= c.anchored.get(from).map_or(0, |r| r[1]);
    }
    std::hint::black_box(warm);
    if passed.len() < total {
        passed.resize(total, 0);
    }
    // A slice, not the `Vec`: its length stays in a register instead of being
    // reloaded from the `Vec` after every store (the store could alias it).
    let passed = &mut passed[..total];
    let e2 = epoch << 2;
    let mut kept = 0usize;
    for &anchor in anchors {
        let ai = anchor as usize;
        let (from, to) = (c.anchor_off[ai] as usize, c.anchor_off[ai + 1] as usize);
        let anchor_in_array = st[ai] & IN_ARRAY;
        let anchor_absent_if = st[ai] & ABSENT_IF;
        for (ri, rec) in c.anchored[from..to].iter().enumerate() {
            let [owner, sx, sy, sz] = *rec;
            // Bounds-checked on purpose: unchecked reads saved ~4% of the instructions
            // at 10,000 subscriptions but nothing measurable in time, and a slot id
            // out of range must stop the match, never read (or match) something else.
            let (sx, sy, sz) = (st[sx as usize], st[sy as usize], st[sz as usize]);
            // A stamp is `epoch << 2 | flags`: XOR with `epoch << 2` leaves at most
            // the flag bits exactly when the slot was satisfied in this event, so
            // one shift tests all three.
            let ok = ((sx ^ e2) | (sy ^ e2) | (sz ^ e2)) >> 2 == 0;
            let in_arrays = anchor_in_array + (sx & IN_ARRAY) + (sy & IN_ARRAY) + (sz & IN_ARRAY);
            let absent_if = anchor_absent_if | ((sx | sy | sz) & ABSENT_IF);
            // Rare: a branch longer than a record, one that spans arrays, or one
            // with an absence that depends on the array elements picked.
            let keep = if ok & ((in_arrays >= 2) | (absent_if != 0) | (owner & LONG_BRANCH != 0)) {
                check_slow(c, flat, sat, st, epoch, anchor, rec, from + ri)
            } else {
                ok
            };
            passed[kept] = owner & !LONG_BRANCH;
            kept += usize::from(keep);
        }
    }
    kept
}

/// The full check of a candidate whose record's own slots are satisfied: the slots
/// past the record's, and array consistency when two or more slots were satisfied
/// only inside arrays.
#[allow(clippy::too_many_arguments)] // the matcher's state, passed apart to keep borrows disjoint
#[cold]
#[inline(never)]
fn check_slow(
    c: &Compiled,
    flat: &Flat,
    sat: &[(u32, u32)],
    slot_stamp: &[u32],
    epoch: u32,
    anchor: u32,
    rec: &[u32; 4],
    record: usize,
) -> bool {
    let mut slots: Vec<u32> = rec[1..]
        .iter()
        .copied()
        .filter(|&x| x != c.always_slot)
        .collect();
    if rec[0] & LONG_BRANCH != 0 {
        if let Some(rest) = c
            .long_others
            .get(&u32::try_from(record).unwrap_or(u32::MAX))
        {
            slots.extend_from_slice(rest);
        }
    }
    if !slots.iter().all(|&x| slot_stamp[x as usize] >> 2 == epoch) {
        return false;
    }
    slots.push(anchor);
    if slots
        .iter()
        .any(|&x| slot_stamp[x as usize] & ABSENT_IF != 0)
    {
        return check_ordered(c, flat, sat, &mut slots, slot_stamp);
    }
    let in_arrays = slots
        .iter()
        .filter(|&&x| slot_stamp[x as usize] & IN_ARRAY != 0)
        .count();
    in_arrays < 2 || consistent(flat, sat, &slots, slot_stamp)
}

/// The check of a branch with an absence that depends on the array elements picked,
/// as EventBridge's engine makes it (event-ruler's `ACFinder`): its fields are taken
/// in the order of their dotted names, each from a leaf whose array elements agree
/// with those of the leaves taken before it; a `{"exists": false}` field is absent
/// when no value at its path sits in elements that agree with them. So in
/// `[{"a": 1}, {"b": 2}]`, `a` exists and `b` does not (in the element `a` came
/// from), but `b`, taken first, would exist.
fn check_ordered(
    c: &Compiled,
    flat: &Flat,
    sat: &[(u32, u32)],
    slots: &mut [u32],
    slot_stamp: &[u32],
) -> bool {
    slots.sort_by_key(|&x| c.path_rank[c.slot_path[x as usize] as usize]);
    let mut chosen: Vec<(u32, u32)> = Vec::new();
    take(c, flat, sat, slots, slot_stamp, &mut chosen)
}

/// Take the fields `slots` in order, the array elements picked so far in `chosen`.
fn take(
    c: &Compiled,
    flat: &Flat,
    sat: &[(u32, u32)],
    slots: &[u32],
    slot_stamp: &[u32],
    chosen: &mut Vec<(u32, u32)>,
) -> bool {
    let Some((&slot, rest)) = slots.split_first() else {
        return true;
    };
    let stamp = slot_stamp[slot as usize];
    // A leaf outside arrays (or no value at the path, for an absence) adds no
    // element: the freest choice, but a later absence may need an element picked.
    if stamp & IN_ARRAY == 0 && take(c, flat, sat, rest, slot_stamp, chosen) {
        return true;
    }
    let mark = chosen.len();
    for &(_, li) in sat.iter().filter(|(s, _)| *s == slot) {
        let mem = flat.membership(&flat.leaves[li as usize]);
        if compatible(chosen, mem) {
            chosen.extend_from_slice(mem);
            let ok = take(c, flat, sat, rest, slot_stamp, chosen);
            chosen.truncate(mark);
            if ok {
                return true;
            }
        }
    }
    if stamp & ABSENT_IF != 0 {
        let path = c.slot_path[slot as usize];
        let present = flat
            .leaves
            .iter()
            .any(|l| l.path == path && compatible(chosen, flat.membership(l)));
        if !present {
            return take(c, flat, sat, rest, slot_stamp, chosen);
        }
    }
    false
}

/// Stamp flag: every leaf satisfying the slot lies inside an array.
const IN_ARRAY: u32 = 1;
/// Stamp flag: the slot may be satisfied by an absence from the elements picked.
const ABSENT_IF: u32 = 2;

/// Fewer matches than this are sorted in place (a small insertion sort); more go
/// through the owner bitset, which costs a few instructions per match.
const SORT_IN_PLACE: usize = 16;

/// Append `owners` to `out` in ascending order without repeats (an owner with several
/// branches can pass more than once).
fn sort_owners(bits: &mut [u64], words: &mut [u64], owners: &[u32], out: &mut Vec<u32>) {
    let start = out.len();
    if owners.len() <= SORT_IN_PLACE {
        out.extend_from_slice(owners);
        out[start..].sort_unstable();
        let mut w = start;
        for r in start..out.len() {
            if w == start || out[w - 1] != out[r] {
                out[w] = out[r];
                w += 1;
            }
        }
        out.truncate(w);
        return;
    }
    for &o in owners {
        let (w, b) = (o as usize / 64, o % 64);
        if let Some(word) = bits.get_mut(w) {
            *word |= 1 << b;
        }
        if let Some(summary) = words.get_mut(w / 64) {
            *summary |= 1 << (w % 64);
        }
    }
    for (si, summary) in words.iter_mut().enumerate() {
        let mut sm = std::mem::take(summary);
        while sm != 0 {
            let w = si * 64 + sm.trailing_zeros() as usize;
            sm &= sm - 1;
            if let Some(word) = bits.get_mut(w) {
                let mut m = std::mem::take(word);
                let base = u32::try_from(w * 64).unwrap_or(u32::MAX);
                while m != 0 {
                    out.push(base + m.trailing_zeros());
                    m &= m - 1;
                }
            }
        }
    }
}

/// Can each slot of the branch that was satisfied from inside arrays pick one leaf so
/// that no two picks sit in different elements of the same array? Slots satisfied
/// outside arrays never conflict. Backtracking; runs only for array-spanning branches.
fn consistent(flat: &Flat, sat: &[(u32, u32)], slots: &[u32], slot_stamp: &[u32]) -> bool {
    let lists: Vec<Vec<&Leaf>> = slots
        .iter()
        .filter(|&&x| slot_stamp[x as usize] & IN_ARRAY != 0)
        .map(|&x| {
            sat.iter()
                .filter(|(s, _)| *s == x)
                .map(|&(_, l)| &flat.leaves[l as usize])
                .collect()
        })
        .collect();
    let mut chosen: Vec<&Leaf> = Vec::with_capacity(lists.len());
    search(flat, &lists, &mut chosen)
}

fn search<'a>(flat: &Flat, lists: &[Vec<&'a Leaf>], chosen: &mut Vec<&'a Leaf>) -> bool {
    let Some((first, rest)) = lists.split_first() else {
        return true;
    };
    for &leaf in first {
        if chosen
            .iter()
            .all(|c| compatible(flat.membership(c), flat.membership(leaf)))
        {
            chosen.push(leaf);
            if search(flat, rest, chosen) {
                return true;
            }
            chosen.pop();
        }
    }
    false
}

fn compatible(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
    a.iter()
        .all(|&(arr, i)| b.iter().all(|&(arr2, j)| arr != arr2 || i == j))
}
