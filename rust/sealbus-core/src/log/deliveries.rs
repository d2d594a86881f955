//! Delivery attempts of the offsets a durable consumer has in flight. First
//! deliveries arrive in log order and mostly settle in order, which a [`SeqMap`]
//! serves without allocating per event (a `BTreeMap` here cost a few percent of a
//! durable router's CPU).

use crate::seqmap::SeqMap;

#[derive(Debug, Clone, Default)]
pub struct Deliveries(SeqMap<u32>);

impl Deliveries {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Attempts recorded for `offset`, if it is in flight.
    pub fn get(&self, offset: u64) -> Option<u32> {
        self.0.get(offset).copied()
    }

    /// Count one more delivery of `offset`; returns the new count.
    pub fn increment(&mut self, offset: u64) -> u32 {
        let n = self.0.get_or_insert_with(offset, || 0);
        *n = n.saturating_add(1);
        *n
    }

    /// Set the count of `offset` (a cursor read back from disk); 0 removes it.
    pub fn set(&mut self, offset: u64, attempts: u32) {
        if attempts == 0 {
            self.0.remove(offset);
        } else {
            self.0.insert(offset, attempts);
        }
    }

    /// Forget `offset` (settled); returns its count if it was in flight.
    pub fn remove(&mut self, offset: u64) -> Option<u32> {
        self.0.remove(offset)
    }

    /// Forget every offset below `offset` (all settled).
    pub fn remove_below(&mut self, offset: u64) {
        self.0.remove_below(offset);
    }

    /// `(offset, attempts)` of the offsets in flight, in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.0.iter().map(|(o, &n)| (o, n))
    }
}

impl PartialEq for Deliveries {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
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

    #[test]
    fn counts_attempts_until_settled() {
        let mut d = Deliveries::default();
        assert_eq!(d.increment(7), 1);
        assert_eq!(d.increment(7), 2);
        assert_eq!(d.increment(3), 1);
        assert_eq!(d.iter().collect::<Vec<_>>(), vec![(3, 1), (7, 2)]);
        assert_eq!(d.remove(7), Some(2));
        d.set(9, 4);
        d.set(3, 0);
        assert_eq!(d.iter().collect::<Vec<_>>(), vec![(9, 4)]);
        d.remove_below(10);
        assert!(d.is_empty());
    }
}
