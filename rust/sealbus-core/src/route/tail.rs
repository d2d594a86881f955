//! The recent stored batches, routed once, that durable subscriptions read their
//! share of when they are next touched: a publish does not visit them.
//!
//! With thousands of durable consumers each selecting a small share of the events,
//! nearly every batch has a few events for each of them, and handing each its share
//! (a lock, its window, its cursor: a dozen cache lines per consumer) cost more than
//! the rest of the publish. Instead, a publish routes the batch once (the compiled
//! index says who gets which event), puts it here with each subscription's share,
//! and only rings the consumers (no lock unless one sleeps). A following
//! subscription takes its shares in log order when it is next touched (a poll, a
//! cursor save, retention), exactly as it takes the batches that wait in `early`
//! (see `follow`): "consumers read the log", from memory.
//!
//! A batch leaves once every subscription with a share in it has taken it (or read
//! past it from the log). Memory is bounded: past [`MAX_EVENTS`] events or
//! [`MAX_DELIVERIES`] shares held, the oldest batch is dropped, and the
//! subscriptions that had not taken their share of it read it back from the log
//! (`Router::make_tail_room`), as a consumer whose window is full does.
//!
//! Subscriptions bounded by `max_backlog` are still handed their events by each
//! publish: their producers must count the backlog as they reserve room.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use super::subscription::Item;
use super::{follow, poisoned, Router};
use crate::error::Result;

/// Events held at most (their memory is shared with the windows that took them).
pub(super) const MAX_EVENTS: usize = 1 << 17;
/// Shares held at most, over all batches (one `u32` each).
pub(super) const MAX_DELIVERIES: usize = 1 << 24;

/// One stored batch and each lazy subscription's share of it.
#[derive(Debug)]
pub(super) struct Batch {
    pub range: Range<u64>,
    items: Vec<Item>,
    /// Subscription `slot`'s share is `picks[at[slot]..at[slot + 1]]` (indices into
    /// `items`, in log order).
    picks: Vec<u32>,
    at: Vec<u32>,
    /// Slot by subscription id: ids, not the subscriptions, so that a publish
    /// touches none of them to hold the batch.
    slots: FxHashMap<u64, u32>,
    /// Shares not taken (or read past) yet.
    untaken: AtomicUsize,
}

impl Batch {
    /// A batch of `items` (offsets `range`); `shares` yields, per subscription id,
    /// its indices into `items` in log order.
    pub fn new<'a>(
        range: Range<u64>,
        items: Vec<Item>,
        shares: impl ExactSizeIterator<Item = (u64, &'a [u32])>,
    ) -> Self {
        let n = shares.len();
        let mut b = Batch {
            range,
            items,
            picks: Vec::new(),
            at: Vec::with_capacity(n + 1),
            slots: FxHashMap::with_capacity_and_hasher(n, rustc_hash::FxBuildHasher),
            untaken: AtomicUsize::new(n),
        };
        b.at.push(0);
        for (id, picks) in shares {
            let slot = u32::try_from(b.at.len() - 1).unwrap_or(u32::MAX);
            b.slots.insert(id, slot);
            b.picks.extend_from_slice(picks);
            b.at.push(u32::try_from(b.picks.len()).unwrap_or(u32::MAX));
        }
        b
    }

    /// The share of subscription `id`, in log order.
    pub fn share(&self, id: u64) -> impl ExactSizeIterator<Item = &Item> + Clone {
        let picks = match self.slots.get(&id) {
            Some(&slot) => {
                let slot = slot as usize;
                &self.picks[self.at[slot] as usize..self.at[slot + 1] as usize]
            }
            None => &[],
        };
        picks.iter().map(|&i| &self.items[i as usize])
    }

    fn has_share(&self, id: u64) -> bool {
        self.slots.contains_key(&id)
    }

    /// The ids of the subscriptions with a share.
    pub fn subscribers(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.keys().copied()
    }
}

/// The recent batches (see the module docs).
#[derive(Debug)]
pub struct Tail {
    held: Mutex<Held>,
    /// Serialises dropping batches for room (rare: a consumer far behind).
    dropping: Mutex<()>,
    /// Events and shares held at most.
    max_events: usize,
    max_deliveries: usize,
}

impl Default for Tail {
    fn default() -> Self {
        Tail::with_limits(MAX_EVENTS, MAX_DELIVERIES)
    }
}

#[derive(Debug, Default)]
struct Held {
    /// By first offset.
    batches: BTreeMap<u64, Arc<Batch>>,
    events: usize,
    deliveries: usize,
}

impl Held {
    fn remove(&mut self, start: u64) {
        if let Some(b) = self.batches.remove(&start) {
            self.events = self.events.saturating_sub(b.items.len());
            self.deliveries = self.deliveries.saturating_sub(b.picks.len());
        }
    }

    /// Drop the oldest batches that every subscription has taken.
    fn drop_taken(&mut self) {
        while let Some((&start, b)) = self.batches.first_key_value() {
            if b.untaken.load(Ordering::Acquire) > 0 {
                return;
            }
            self.remove(start);
        }
    }
}

impl Tail {
    /// A tail that holds at most `max_events` events and `max_deliveries` shares.
    pub(super) fn with_limits(max_events: usize, max_deliveries: usize) -> Self {
        Tail {
            held: Mutex::default(),
            dropping: Mutex::default(),
            max_events,
            max_deliveries,
        }
    }

    fn over(&self, held: &Held) -> bool {
        held.events > self.max_events || held.deliveries > self.max_deliveries
    }

    /// Hold `batch` for its subscriptions. Call before the batch's in-flight ticket
    /// is dropped, so a subscription caught up past it finds it here. True if the
    /// held batches are now over the limits (see [`Router::make_tail_room`]).
    pub(super) fn insert(&self, batch: Batch) -> Result<bool> {
        let mut held = self.held.lock().map_err(|_| poisoned("tail"))?;
        held.drop_taken();
        held.events += batch.items.len();
        held.deliveries += batch.picks.len();
        held.batches.insert(batch.range.start, Arc::new(batch));
        Ok(self.over(&held))
    }

    /// The oldest batch, if the held ones are over the limits once the batches
    /// every subscription has taken are gone.
    fn oldest_if_over(&self) -> Result<Option<Arc<Batch>>> {
        let mut held = self.held.lock().map_err(|_| poisoned("tail"))?;
        held.drop_taken();
        if !self.over(&held) {
            return Ok(None);
        }
        Ok(held.batches.first_key_value().map(|(_, b)| Arc::clone(b)))
    }

    fn remove(&self, start: u64) -> Result<()> {
        self.held
            .lock()
            .map_err(|_| poisoned("tail"))?
            .remove(start);
        Ok(())
    }

    /// The held batches with a share for subscription `id` that start in
    /// `from..below`, in log order.
    pub(super) fn shares_for(&self, id: u64, from: u64, below: u64) -> Vec<Arc<Batch>> {
        if from >= below {
            return Vec::new();
        }
        // Pairs with the fence of a publish between its insert and its look at the
        // sleepers and watchers (see `Router::ring`).
        std::sync::atomic::fence(Ordering::SeqCst);
        let Ok(held) = self.held.lock() else {
            return Vec::new();
        };
        held.batches
            .range(from..below)
            .filter(|(_, b)| b.has_share(id))
            .map(|(_, b)| Arc::clone(b))
            .collect()
    }

    /// Subscription `id` has taken (or read past) its share of `batch`.
    pub(super) fn taken(batch: &Batch) {
        batch.untaken.fetch_sub(1, Ordering::AcqRel);
    }

    /// Subscription `id` is gone: its shares from `from` on are taken.
    pub(super) fn forget(&self, id: u64, from: u64) {
        for b in self.shares_for(id, from, u64::MAX) {
            Self::taken(&b);
        }
    }

    /// (batches, events, shares) held now.
    #[cfg(test)]
    pub(super) fn held(&self) -> (usize, usize, usize) {
        self.held
            .lock()
            .map(|h| (h.batches.len(), h.events, h.deliveries))
            .unwrap_or_default()
    }
}

impl Router {
    /// Drop the oldest held batches until the rest fit the limits: the
    /// subscriptions that had not taken their share read it back from the log. Each
    /// is told under its lock before the batch leaves, so none settles past a share
    /// it never saw. Rare: only a consumer far behind leaves batches untaken.
    pub(super) fn make_tail_room(&self, tail: &Tail) -> Result<()> {
        let _one = tail.dropping.lock().map_err(|_| poisoned("tail"))?;
        while let Some(oldest) = tail.oldest_if_over()? {
            let subs: Vec<_> = {
                let all = self.subs.read().map_err(|_| poisoned("subscriptions"))?;
                oldest
                    .subscribers()
                    .filter_map(|id| all.get(&id).cloned())
                    .collect()
            };
            let end = oldest.range.end;
            for s in subs {
                let mut st = s.lock()?;
                if let Some(d) = st.durable.as_mut() {
                    if d.tail_seen < end && d.read_offset < end {
                        if d.following {
                            follow::fall_behind(d, end);
                        } else {
                            d.read_until = d.read_until.max(end);
                        }
                    }
                }
            }
            tail.remove(oldest.range.start)?;
        }
        Ok(())
    }
}
