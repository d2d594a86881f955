//! Durable consumers that follow the log instead of reading it back.
//!
//! A durable subscription that keeps up receives its events from the producers'
//! pushes, in memory; one without `max_backlog` takes them itself from the batches
//! the router holds for it (see `tail`), in log order, when it is next touched. A batch it wants none of does not touch it at all: a publish
//! works only for the subscriptions its events match (found through the compiled
//! index), whatever the number of the others. Such a subscription learns that the
//! offsets in between were not its own from the log position: its `read_offset`
//! lags, and is brought forward when it is next touched (a push, a poll, a cursor
//! save, retention) by settling one range in its cursor ([`catch_up`]).
//!
//! Why that is sound: while a subscription is `following`, every batch at or past its
//! `read_offset` that it wants is pushed to it by its producer, which holds an
//! in-flight ticket until its push is done (`inflight`). So below the horizon of the
//! other tickets, each offset is either in a batch waiting in `early`, or not wanted.
//! A subscription stops following, and reads the log back from `read_offset`, when
//! it cannot hold a batch it wants (its window is full), or when a batch routed
//! before it subscribed turns out to lie past its position ([`Router::not_asked`]);
//! it follows again once it has read back past `read_until`. The cursor still never
//! leads: it settles only what was read back, handed over, or known not wanted.

use std::ops::Range;
use std::sync::Arc;

use super::subscription::{Durable, Early, Item, SubState, Subscription};
use super::tail::Tail;
use super::{poisoned, Router};
use crate::error::Result;

/// What a push did to a durable subscription.
pub(super) struct Pushed {
    /// The batch waits in `early` for an earlier append to finish: register the
    /// subscription to be caught up then.
    pub wait: bool,
}

/// Stop following: everything up to `end`, and whatever waited in `early`, is read
/// back from the log.
pub(super) fn fall_behind(d: &mut Durable, end: u64) {
    let held = d.early.values().map(|e| e.end).max().unwrap_or(0);
    d.read_until = d.read_until.max(end).max(held);
    d.early.clear();
    d.early_items = 0;
    d.following = false;
}

/// Settle the offsets from `read_offset` up to `to`, none of which this following
/// subscription wants.
fn settle_to(d: &mut Durable, to: u64) {
    if to > d.read_offset {
        d.cursor.settle_unwanted(d.read_offset, to);
        d.read_offset = to;
    }
}

/// Bring a following subscription forward to `floor` (every append below it has
/// finished its push): the batches waiting in `early` below it join the window in
/// log order, and the offsets between them settle. Returns whether any event joined.
pub(super) fn catch_up(st: &mut SubState, floor: u64) -> bool {
    if st.durable.as_ref().is_some_and(|d| d.tail.is_some()) {
        return take_shares(st, floor);
    }
    let window = st.queue.config().max_pending;
    let mut joined = false;
    loop {
        let Some(d) = st.durable.as_mut() else {
            return joined;
        };
        if !d.following {
            return joined;
        }
        let first = match d.early.first_key_value() {
            Some((&first, _)) if first < floor => first,
            _ => {
                settle_to(d, floor);
                return joined;
            }
        };
        let Some(early) = d.early.remove(&first) else {
            return joined;
        };
        d.early_items = d.early_items.saturating_sub(early.items.len());
        if early.end <= d.read_offset {
            continue; // read back from the log already
        }
        if first < d.read_offset {
            // Partly read back: the rest comes from the log too.
            fall_behind(d, early.end);
            return joined;
        }
        settle_to(d, first);
        let n = early.items.len();
        if !join_window(st, early.items.iter(), first..early.end, window) {
            if let Some(d) = st.durable.as_mut() {
                fall_behind(d, early.end);
            }
            return joined;
        }
        joined |= n > 0;
    }
}

/// `catch_up` for a subscription that takes its shares from the router's held
/// batches (see `tail`): every batch below `floor` has been put there by its
/// producer, so its shares there, in log order, are all it wants below `floor`.
/// Each share is counted as taken once (`tail_seen`), whether it joins the window,
/// was read back already, or is left to be read back.
fn take_shares(st: &mut SubState, floor: u64) -> bool {
    let window = st.queue.config().max_pending;
    let Some(d) = st.durable.as_mut() else {
        return false;
    };
    let Some((tail, id)) = d.tail.clone().filter(|_| d.following) else {
        return false;
    };
    let mut joined = false;
    for b in tail.shares_for(id, d.tail_seen, floor) {
        let Some(d) = st.durable.as_mut() else {
            return joined;
        };
        d.tail_seen = d.tail_seen.max(b.range.end);
        Tail::taken(&b);
        if b.range.end <= d.read_offset {
            continue; // read back from the log already
        }
        if b.range.start < d.read_offset {
            // Partly read back: the rest comes from the log too.
            fall_behind(d, b.range.end);
            return joined;
        }
        settle_to(d, b.range.start);
        let mine = b.share(id);
        let n = mine.len();
        if !join_window(st, mine, b.range.clone(), window) {
            if let Some(d) = st.durable.as_mut() {
                fall_behind(d, b.range.end);
            }
            return joined;
        }
        joined |= n > 0;
    }
    if let Some(d) = st.durable.as_mut() {
        settle_to(d, floor);
    }
    joined
}

/// Put one batch's share into the window and move the read offset past the batch,
/// settling the offsets of it this subscription does not want (kept as one span in
/// the cursor: O(1) per batch and per event handed, not per gap).
/// False if the share does not fit.
fn join_window<'a>(
    st: &mut SubState,
    mine: impl ExactSizeIterator<Item = &'a Item> + Clone,
    range: Range<u64>,
    window: usize,
) -> bool {
    if st.queue.len() + mine.len() > window {
        return false;
    }
    let Some(d) = st.durable.as_mut() else {
        return false;
    };
    d.cursor.settle_except(
        range.start,
        range.end,
        mine.clone().filter_map(|i| i.offset),
    );
    d.read_offset = range.end;
    for item in mine {
        st.queue.push(Arc::clone(item));
    }
    true
}

/// Hand a durable subscription its share `mine` of the stored batch `range`.
/// `floor`: every other append below it has finished its push.
///
/// Following and next in line, the share joins the window at once (then whatever
/// waited for it); after an append that has not finished yet, or while reading
/// back, it waits in `early` and joins in log order. What does not fit is read back
/// from the log later.
pub(super) fn push_durable(
    st: &mut SubState,
    mine: &[&Item],
    range: Range<u64>,
    floor: u64,
) -> Pushed {
    let window = st.queue.config().max_pending;
    let mut pushed = Pushed { wait: false };
    let following = match st.durable.as_ref() {
        Some(d) if range.end > d.read_offset => d.following,
        _ => return pushed, // read back from the log already
    };
    if following {
        catch_up(st, floor.min(range.start));
    }
    let queued = st.queue.len();
    let Some(d) = st.durable.as_mut() else {
        return pushed;
    };
    if d.following && d.read_offset == range.start {
        if join_window(st, mine.iter().copied(), range.clone(), window) {
            catch_up(st, floor);
        } else if let Some(d) = st.durable.as_mut() {
            fall_behind(d, range.end);
        }
    } else if range.start < d.read_offset {
        // Partly read back already: the rest comes from the log too.
        d.read_until = d.read_until.max(range.end);
        if d.following {
            fall_behind(d, range.end);
        }
    } else if queued + d.early_items + mine.len() <= window {
        d.early_items += mine.len();
        let items = mine.iter().map(|i| Arc::clone(i)).collect();
        d.early.insert(
            range.start,
            Early {
                end: range.end,
                items,
            },
        );
    } else if d.following {
        fall_behind(d, range.end);
    } else {
        d.read_until = d.read_until.max(range.end);
    }
    if let Some(d) = st.durable.as_mut() {
        if d.following && !d.early.is_empty() && !d.waiting {
            d.waiting = true;
            pushed.wait = true;
        }
    }
    pushed
}

impl Router {
    /// Every append below this has finished its push (and is in the log).
    pub(super) fn push_horizon(&self) -> u64 {
        self.log
            .as_ref()
            .map_or(0, |log| self.inflight.horizon(log.next_offset()))
    }

    /// Follow the log from here if the subscription may: it has read back past
    /// everything it must, then catch up. Returns whether any event joined.
    pub(super) fn try_follow(&self, st: &mut SubState) -> bool {
        let Some(d) = st.durable.as_mut() else {
            return false;
        };
        // `since_generation` is set once `subscribe` knows where the log ended.
        if !d.following && d.since_generation != u64::MAX && d.read_offset >= d.read_until {
            d.following = true;
        }
        if !d.following {
            return false;
        }
        let floor = self.push_horizon();
        catch_up(st, floor)
    }

    /// Subscriptions with a batch waiting in `early` for an earlier append: caught
    /// up when appends finish ([`Router::release_waiting`]).
    pub(super) fn wait_for_earlier(&self, subs: Vec<Arc<Subscription>>) -> Result<()> {
        if subs.is_empty() {
            return Ok(());
        }
        self.waiting
            .lock()
            .map_err(|_| poisoned("waiting subscriptions"))?
            .extend(subs);
        Ok(())
    }

    /// After a publish dropped its ticket: catch up the subscriptions waiting for an
    /// earlier append. Returns those that got events. Serialised, so a subscription
    /// registered while another publish releases is seen by the next release: every
    /// publish releases after its own ticket is gone, so the last one below a
    /// waiting batch always finds it.
    pub(super) fn release_waiting(&self) -> Result<Vec<Arc<Subscription>>> {
        let mut waiting = self
            .waiting
            .lock()
            .map_err(|_| poisoned("waiting subscriptions"))?;
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let floor = self.push_horizon();
        let mut woken = Vec::new();
        let mut still = Vec::new();
        for s in waiting.drain(..) {
            if s.is_closed() {
                continue;
            }
            let mut st = s.lock()?;
            let joined = catch_up(&mut st, floor);
            let wait = st.durable.as_mut().is_some_and(|d| {
                d.waiting = d.following && !d.early.is_empty();
                d.waiting
            });
            drop(st);
            if wait {
                still.push(Arc::clone(&s));
            }
            if joined {
                woken.push(s);
            }
        }
        *waiting = still;
        Ok(woken)
    }

    /// A batch routed before the routing generation moved on: durable subscriptions
    /// that came since were not asked about it, so they read it back from the log.
    /// Rare (a subscribe during a publish), so a pass over them all is fine.
    pub(super) fn not_asked(
        &self,
        targets: &super::publish::Targets,
        range: Range<u64>,
        floor: u64,
    ) -> Result<Vec<Arc<Subscription>>> {
        let mut woken = Vec::new();
        let asked = targets.ids();
        for s in self.subscriptions() {
            if asked.contains(&s.id) {
                continue;
            }
            let mut st = s.lock()?;
            let Some(d) = st.durable.as_ref() else {
                continue;
            };
            if d.since_generation <= targets.generation || d.read_offset >= range.end {
                continue;
            }
            if d.following {
                catch_up(&mut st, floor.min(range.start));
            }
            if let Some(d) = st.durable.as_mut() {
                if d.following {
                    fall_behind(d, range.end);
                } else {
                    d.read_until = d.read_until.max(range.end);
                }
            }
            drop(st);
            woken.push(s);
        }
        Ok(woken)
    }
}
