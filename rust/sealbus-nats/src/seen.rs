//! The events an importer stored lately, as (producer, id) pairs: a redelivered
//! JetStream message is recognised by its events. The producer is the local name of
//! the remote one (`<router>/<principal>`): `CloudEvents` makes an id unique only
//! within its source, so one producer's event never shadows another's with the same
//! id.

use std::collections::{HashMap, HashSet};

/// Two generations of pairs, the older dropped whole once the newer holds
/// `capacity`: at least the last `capacity` pairs are remembered, in bounded memory,
/// with no per-pair bookkeeping of age.
#[derive(Debug)]
pub struct Seen {
    new: HashMap<String, HashSet<String>>,
    old: HashMap<String, HashSet<String>>,
    new_len: usize,
    capacity: usize,
}

impl Seen {
    pub fn new(capacity: usize) -> Seen {
        Seen {
            new: HashMap::new(),
            old: HashMap::new(),
            new_len: 0,
            capacity: capacity.max(1),
        }
    }

    /// Whether `id` of `producer` was seen.
    pub fn contains(&self, producer: &str, id: &str) -> bool {
        [&self.new, &self.old]
            .iter()
            .any(|g| g.get(producer).is_some_and(|ids| ids.contains(id)))
    }

    pub fn add(&mut self, producer: &str, id: &str) {
        let ids = match self.new.get_mut(producer) {
            Some(ids) => ids,
            None => self.new.entry(producer.to_owned()).or_default(),
        };
        if ids.insert(id.to_owned()) {
            self.new_len += 1;
            if self.new_len >= self.capacity {
                self.old = std::mem::take(&mut self.new);
                self.new_len = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::Seen;

    proptest! {
        /// Against a model that keeps the pairs of exactly the last `capacity` adds: whatever
        /// the model holds, the memory holds too, and it holds nothing never added;
        /// an id seen from one producer is not seen from another.
        #[test]
        fn remembers_at_least_the_last_pairs(
            capacity in 1usize..12,
            adds in proptest::collection::vec((0usize..3, 0u8..31), 0..120),
        ) {
            let producers = ["a/p", "a/q", "b/p"];
            let mut seen = Seen::new(capacity);
            let mut last = VecDeque::new();
            let mut ever = std::collections::HashSet::new();
            for (p, i) in adds {
                let (producer, id) = (producers[p], format!("e{i}"));
                seen.add(producer, &id);
                last.push_back((producer, id.clone()));
                if last.len() > capacity {
                    last.pop_front();
                }
                ever.insert((producer, id));
                for (p, id) in &last {
                    prop_assert!(seen.contains(p, id));
                }
                for p in producers {
                    for i in 0..31 {
                        let id = format!("e{i}");
                        if !ever.contains(&(p, id.clone())) {
                            prop_assert!(!seen.contains(p, &id));
                        }
                    }
                }
            }
        }
    }
}
