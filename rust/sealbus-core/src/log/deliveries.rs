//! Delivery attempts of the offsets a durable consumer has in flight.
//!
//! A consumer's first deliveries arrive in log order and mostly settle in order, so
//! the counts live in a deque sorted by offset: a new offset is pushed at the back,
//! a settled one becomes a tombstone (count 0) that leaves once it reaches either
//! end. Both common cases are O(1) without allocating, where a map allocated and
//! rebalanced nodes for every delivered event (a few percent of a durable router's
//! CPU). Redeliveries and out-of-order settles use a binary search.

use std::collections::VecDeque;

#[derive(Debug, Clone, Default)]
pub struct Deliveries {
    /// `(offset, attempts)` sorted by offset; attempts 0 marks a settled offset.
    q: VecDeque<(u64, u32)>,
    /// Entries with attempts > 0.
    live: usize,
}

impl Deliveries {
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn find(&self, offset: u64) -> Result<usize, usize> {
        self.q.binary_search_by_key(&offset, |&(o, _)| o)
    }

    /// Attempts recorded for `offset`, if it is in flight.
    pub fn get(&self, offset: u64) -> Option<u32> {
        let i = self.find(offset).ok()?;
        Some(self.q[i].1).filter(|&n| n > 0)
    }

    /// Count one more delivery of `offset`; returns the new count.
    pub fn increment(&mut self, offset: u64) -> u32 {
        if self.q.back().is_none_or(|&(o, _)| o < offset) {
            self.q.push_back((offset, 1));
            self.live += 1;
            return 1;
        }
        match self.find(offset) {
            Ok(i) => {
                let n = &mut self.q[i].1;
                if *n == 0 {
                    self.live += 1;
                }
                *n = n.saturating_add(1);
                *n
            }
            Err(i) => {
                self.q.insert(i, (offset, 1));
                self.live += 1;
                1
            }
        }
    }

    /// Set the count of `offset` (a cursor read back from disk); 0 removes it.
    pub fn set(&mut self, offset: u64, attempts: u32) {
        if attempts == 0 {
            self.remove(offset);
            return;
        }
        match self.find(offset) {
            Ok(i) => {
                if self.q[i].1 == 0 {
                    self.live += 1;
                }
                self.q[i].1 = attempts;
            }
            Err(i) => {
                self.q.insert(i, (offset, attempts));
                self.live += 1;
            }
        }
    }

    /// Forget `offset` (settled); returns its count if it was in flight.
    pub fn remove(&mut self, offset: u64) -> Option<u32> {
        let i = self.find(offset).ok()?;
        let n = std::mem::take(&mut self.q[i].1);
        if n == 0 {
            return None;
        }
        self.live -= 1;
        self.trim();
        Some(n)
    }

    /// Forget every offset below `offset` (all settled).
    pub fn remove_below(&mut self, offset: u64) {
        while let Some(&(o, n)) = self.q.front() {
            if o >= offset {
                break;
            }
            self.live -= usize::from(n > 0);
            self.q.pop_front();
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.q.front().is_some_and(|&(_, n)| n == 0) {
            self.q.pop_front();
        }
        while self.q.back().is_some_and(|&(_, n)| n == 0) {
            self.q.pop_back();
        }
    }

    /// `(offset, attempts)` of the offsets in flight, in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.q.iter().copied().filter(|&(_, n)| n > 0)
    }
}

impl PartialEq for Deliveries {
    fn eq(&self, other: &Self) -> bool {
        self.live == other.live && self.iter().eq(other.iter())
    }
}

impl Eq for Deliveries {}

impl FromIterator<(u64, u32)> for Deliveries {
    fn from_iter<I: IntoIterator<Item = (u64, u32)>>(iter: I) -> Self {
        let mut d = Deliveries::default();
        for (o, n) in iter {
            d.set(o, n);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::Deliveries;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Increment(u64),
        Set(u64, u32),
        Remove(u64),
        RemoveBelow(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..40).prop_map(Op::Increment),
            1 => (0u64..40, 0u32..4).prop_map(|(o, n)| Op::Set(o, n)),
            3 => (0u64..40).prop_map(Op::Remove),
            1 => (0u64..40).prop_map(Op::RemoveBelow),
        ]
    }

    proptest! {
        /// The deque agrees with a plain map under any mix of operations.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec(op(), 0..200)) {
            let (mut d, mut m) = (Deliveries::default(), BTreeMap::<u64, u32>::new());
            for op in ops {
                match op {
                    Op::Increment(o) => {
                        let c = m.entry(o).or_insert(0);
                        *c += 1;
                        prop_assert_eq!(d.increment(o), *c);
                    }
                    Op::Set(o, n) => {
                        d.set(o, n);
                        if n == 0 { m.remove(&o); } else { m.insert(o, n); }
                    }
                    Op::Remove(o) => prop_assert_eq!(d.remove(o), m.remove(&o)),
                    Op::RemoveBelow(o) => {
                        d.remove_below(o);
                        m.retain(|&k, _| k >= o);
                    }
                }
                prop_assert_eq!(d.len(), m.len());
                prop_assert!(d.iter().eq(m.iter().map(|(&k, &v)| (k, v))));
                for o in 0..40 {
                    prop_assert_eq!(d.get(o), m.get(&o).copied());
                }
            }
        }
    }

    #[test]
    fn in_order_use_keeps_no_tombstones() {
        let mut d = Deliveries::default();
        for o in 0..1000 {
            d.increment(o);
        }
        for o in 0..1000 {
            assert_eq!(d.remove(o), Some(1));
        }
        assert!(d.is_empty() && d.q.is_empty());
    }
}
