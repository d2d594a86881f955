//! A map from `u64` keys that are mostly inserted in increasing order and mostly
//! removed from the front: delivery tags and log offsets in flight.
//!
//! Entries sit in a deque sorted by key. An insert past the last key is a push at
//! the back; a removal leaves a tombstone that leaves once it reaches either end;
//! everything else is a binary search. Both common cases are O(1) without
//! allocating, where a `BTreeMap` allocated and rebalanced nodes for every event.
//! Tombstones behind a key that stays (a stuck message) are swept out once they
//! outnumber the live entries, so memory stays proportional to what is live.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct SeqMap<V> {
    q: VecDeque<(u64, Option<V>)>,
    live: usize,
}

impl<V> Default for SeqMap<V> {
    fn default() -> Self {
        SeqMap {
            q: VecDeque::new(),
            live: 0,
        }
    }
}

impl<V> SeqMap<V> {
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn find(&self, key: u64) -> Result<usize, usize> {
        // Settling in order hits the front: no search.
        if self.q.front().is_some_and(|&(k, _)| k == key) {
            return Ok(0);
        }
        self.q.binary_search_by_key(&key, |&(k, _)| k)
    }

    pub fn get(&self, key: u64) -> Option<&V> {
        self.q[self.find(key).ok()?].1.as_ref()
    }

    /// The value at `key`, inserting `make()` first if there is none: one search, and
    /// none at all for a key past the last.
    pub fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> V) -> &mut V {
        let i = if self.q.back().is_none_or(|&(k, _)| k < key) {
            self.q.push_back((key, None));
            self.q.len() - 1
        } else {
            match self.find(key) {
                Ok(i) => i,
                Err(i) => {
                    self.q.insert(i, (key, None));
                    i
                }
            }
        };
        let slot = &mut self.q[i].1;
        if slot.is_none() {
            self.live += 1;
        }
        slot.get_or_insert_with(make)
    }

    /// Insert or replace; returns the previous value.
    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        if self.q.back().is_none_or(|&(k, _)| k < key) {
            self.q.push_back((key, Some(value)));
            self.live += 1;
            return None;
        }
        match self.find(key) {
            Ok(i) => {
                let old = self.q[i].1.replace(value);
                self.live += usize::from(old.is_none());
                old
            }
            Err(i) => {
                self.q.insert(i, (key, Some(value)));
                self.live += 1;
                None
            }
        }
    }

    pub fn remove(&mut self, key: u64) -> Option<V> {
        let i = self.find(key).ok()?;
        let old = self.q[i].1.take()?;
        self.live -= 1;
        self.trim();
        Some(old)
    }

    /// The live entry with the smallest key.
    pub fn first(&self) -> Option<(u64, &V)> {
        // After `trim`, the front is live whenever anything is.
        self.q
            .front()
            .and_then(|(k, v)| v.as_ref().map(|v| (*k, v)))
    }

    /// Remove and return the live entry with the smallest key.
    pub fn pop_first(&mut self) -> Option<(u64, V)> {
        let (k, v) = self.q.pop_front()?;
        let v = v?; // unreachable: the front is never a tombstone
        self.live -= 1;
        self.trim();
        Some((k, v))
    }

    /// Remove every entry with a key below `key`.
    pub fn remove_below(&mut self, key: u64) {
        while self.q.front().is_some_and(|&(k, _)| k < key) {
            if let Some((_, Some(_))) = self.q.pop_front() {
                self.live -= 1;
            }
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.q.front().is_some_and(|(_, v)| v.is_none()) {
            self.q.pop_front();
        }
        while self.q.back().is_some_and(|(_, v)| v.is_none()) {
            self.q.pop_back();
        }
        if self.q.len() > 2 * self.live + 64 {
            self.q.retain(|(_, v)| v.is_some());
        }
    }

    /// Live entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.q
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
    }

    /// Entries kept, tombstones included (for tests of the sweep).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.q.len()
    }
}

#[cfg(test)]
mod tests {
    use super::SeqMap;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u32),
        GetOrInsert(u64, u32),
        Remove(u64),
        PopFirst,
        RemoveBelow(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..40, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => (0u64..40, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
            3 => (0u64..40).prop_map(Op::Remove),
            1 => Just(Op::PopFirst),
            1 => (0u64..40).prop_map(Op::RemoveBelow),
        ]
    }

    proptest! {
        /// The deque agrees with a `BTreeMap` under any mix of operations.
        #[test]
        fn agrees_with_a_btreemap(ops in proptest::collection::vec(op(), 0..300)) {
            let (mut s, mut m) = (SeqMap::default(), BTreeMap::<u64, u32>::new());
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(s.insert(k, v), m.insert(k, v)),
                    Op::GetOrInsert(k, v) => {
                        let got = *s.get_or_insert_with(k, || v);
                        prop_assert_eq!(got, *m.entry(k).or_insert(v));
                    }
                    Op::Remove(k) => prop_assert_eq!(s.remove(k), m.remove(&k)),
                    Op::PopFirst => prop_assert_eq!(s.pop_first(), m.pop_first()),
                    Op::RemoveBelow(k) => {
                        s.remove_below(k);
                        m.retain(|&x, _| x >= k);
                    }
                }
                prop_assert_eq!(s.len(), m.len());
                prop_assert_eq!(s.first(), m.first_key_value().map(|(&k, v)| (k, v)));
                prop_assert!(s.iter().eq(m.iter().map(|(&k, v)| (k, v))));
                for k in 0..40 {
                    prop_assert_eq!(s.get(k), m.get(&k));
                }
            }
        }
    }

    #[test]
    fn a_stuck_key_does_not_pin_the_removed_ones_behind_it() {
        let mut s = SeqMap::default();
        for k in 0..100_000u64 {
            s.insert(k, ());
        }
        for k in 1..99_999 {
            s.remove(k);
            assert!(s.slots() <= 2 * s.len() + 65, "{} slots kept", s.slots());
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.first(), Some((0, &())));
    }

    #[test]
    fn in_order_use_keeps_no_tombstones() {
        let mut s = SeqMap::default();
        for k in 0..1000u64 {
            s.insert(k, k);
        }
        for k in 0..1000 {
            assert_eq!(s.remove(k), Some(k));
        }
        assert!(s.is_empty() && s.slots() == 0);
    }
}
