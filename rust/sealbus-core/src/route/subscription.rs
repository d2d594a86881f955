//! A subscription: who it belongs to, what it asked for, and its queue with the
//! condition variables that producers (room) and consumers (events) wait on.
//!
//! A durable subscription also carries its cursor in the durable log: what it has
//! settled (acked or dead-lettered), how often each offset was delivered, and how far
//! it has read. Its in-memory queue is only a window onto the log.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::queue::{Queue, QueueConfig, QueueStats};
use super::signal::{Signal, Watcher};
use crate::envelope::Event;
use crate::error::{Error, Result};
use crate::log::Cursor;
use crate::pattern::{Pattern, PatternSet};

pub type Item = Arc<Event>;

/// A durable consumer's position in the log.
#[derive(Debug)]
pub struct Durable {
    pub name: String,
    pub cursor: Cursor,
    /// Next log offset to look at for this subscription.
    pub read_offset: u64,
    /// Most events the producers may get ahead of this consumer (matched, unsettled)
    /// before `on_full` applies; `None`: the disk is the limit.
    pub max_backlog: Option<u64>,
    /// Matched at publish and not yet settled (a lower bound after a restart).
    pub owed: u64,
    /// Offsets retention deleted before this consumer read them.
    pub lost: u64,
    pub dirty: bool,
    pub last_save: Instant,
    /// The committed offset of the last save: a following consumer's cursor moves
    /// on without it being dirty, and is saved now and then (see `durable`).
    pub saved_committed: u64,
    /// This subscription's pattern alone, for filtering what it reads back.
    pub filter: Option<PatternSet<u8>>,
    /// Batches stored after one whose producer has not pushed it yet (concurrent
    /// publishes commit in log order but push in any order), by first offset: they
    /// join the window in log order instead of being read back from disk.
    pub early: BTreeMap<u64, Early>,
    /// Items held in `early`, counted against the window.
    pub early_items: usize,
    /// Following the log (see `route::follow`): every batch at or past `read_offset`
    /// that this subscription wants reaches it through its producer's push, so the
    /// offsets between those batches are not its own and settle without being read.
    /// Otherwise it reads the log back from `read_offset`.
    pub following: bool,
    /// It may follow only once `read_offset` reaches this: the end of every batch it
    /// wanted and could not hold, and of every batch stored before it subscribed.
    pub read_until: u64,
    /// The routing generation that first included it: a batch routed under an older
    /// one never reached it, and must be read back. `u64::MAX` until `subscribe`
    /// has set it up: it does not follow before.
    pub since_generation: u64,
    /// Registered with the router to be caught up when an earlier append finishes.
    pub waiting: bool,
    /// Where a subscription that nothing bounds (no `max_backlog`) takes its shares
    /// of the recent batches (see `route::tail`), and its id there; `None`: its
    /// producers push them (`follow::push_durable`).
    pub tail: Option<(Arc<super::tail::Tail>, u64)>,
    /// Every held batch that starts below this and has a share for it has been
    /// taken or read past (and counted as taken).
    pub tail_seen: u64,
}

impl Durable {
    /// Forget waiting batches the read offset has passed (read back from the log).
    pub fn prune_early(&mut self) {
        while let Some(entry) = self.early.first_entry() {
            if entry.get().end > self.read_offset {
                break;
            }
            self.early_items = self.early_items.saturating_sub(entry.remove().items.len());
        }
    }
}

/// One batch waiting in [`Durable::early`]: offsets `first..end`, this subscription's
/// share of it in `items`.
#[derive(Debug)]
pub struct Early {
    pub end: u64,
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub struct SubState {
    pub queue: Queue<Item>,
    /// Room promised to producers whose events are being sealed and stored.
    pub reserved: usize,
    pub durable: Option<Durable>,
}

impl SubState {
    /// Ready + in flight + promised.
    pub fn occupied(&self) -> usize {
        self.queue.len() + self.reserved
    }
}

/// A snapshot of a subscription's queue; `durable` is (committed offset, read
/// offset, backlog owed, offsets lost to retention).
#[derive(Debug, Clone, Copy)]
pub struct SubStats {
    pub counters: QueueStats,
    pub ready: usize,
    pub in_flight: usize,
    pub dead_letters: usize,
    pub durable: Option<(u64, u64, u64, u64)>,
}

#[derive(Debug)]
pub struct Subscription {
    pub id: u64,
    pub name: String,
    pub principal: String,
    pub types: Vec<String>,
    pub pattern: Option<Pattern>,
    pub(crate) state: Mutex<SubState>,
    pub(crate) has_events: Signal,
    pub(crate) has_room: Signal,
    /// Bumped with every `has_events` notification, so a busy-polling consumer can
    /// watch for news without the lock.
    pub(crate) wakes: AtomicU64,
    /// Events publishes left for it in held batches (see `route::tail`) and not yet
    /// counted in its backlog (`Durable::owed`): counted without its lock, folded in
    /// under it before the backlog is read or lowered (`count_matched`).
    matched: AtomicU64,
    /// Consumers busy-polling for this subscription right now (its own polls, and
    /// selectors watching it): a producer that wakes one gives it a head start.
    spinners: AtomicU32,
    /// The selectors and event loops watching this subscription, told with every
    /// `has_events`.
    bells: Mutex<Vec<Arc<dyn Watcher>>>,
    closed: AtomicBool,
    /// Whether it has a cursor in the durable log (fixed at subscribe): asked on
    /// every publish and ack, so not behind the lock.
    durable: bool,
    /// A durable subscription without `max_backlog`: nothing a producer does can fill
    /// it (its backlog is on disk), so a publish neither waits for it nor reserves
    /// room in it, and locks it once, to hand it its events.
    unbounded: bool,
    /// Watchers in `bells` (kept under its lock): a notification with none skips the
    /// lock. A watcher counts itself before it looks at the state, so a producer
    /// that changed the state before reading 0 here is seen by that look.
    watched: AtomicUsize,
    /// Its next end-to-end batch, opened ahead (see `route::e2e_open`).
    pub(crate) read_ahead: super::e2e_open::ReadAhead,
}

impl Subscription {
    pub(crate) fn new(
        id: u64,
        name: String,
        principal: String,
        types: Vec<String>,
        pattern: Option<Pattern>,
        cfg: QueueConfig,
        durable: Option<Durable>,
    ) -> Self {
        let is_durable = durable.is_some();
        let unbounded = durable.as_ref().is_some_and(|d| d.max_backlog.is_none());
        Subscription {
            id,
            name,
            principal,
            types,
            pattern,
            state: Mutex::new(SubState {
                queue: Queue::new(cfg),
                reserved: 0,
                durable,
            }),
            has_events: Signal::default(),
            spinners: AtomicU32::new(0),
            has_room: Signal::default(),
            wakes: AtomicU64::new(0),
            matched: AtomicU64::new(0),
            bells: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            durable: is_durable,
            unbounded,
            watched: AtomicUsize::new(0),
            read_ahead: super::e2e_open::ReadAhead::default(),
        }
    }

    /// Wake the consumers waiting for events (sleeping, busy-polling, or in a
    /// selector). Call after changing the state under its lock (see [`Signal`]).
    pub(crate) fn notify_events(&self) {
        self.wakes.fetch_add(1, Ordering::Release);
        self.has_events.notify_all();
        if self.watched.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Ok(bells) = self.bells.lock() {
            for b in bells.iter() {
                b.news();
            }
        }
    }

    /// [`Subscription::notify_events`] for news that is not under this
    /// subscription's lock: its share of a held batch (see `route::tail`). Call after
    /// a `SeqCst` fence that follows the news. A sleeper counts itself, then looks at
    /// the held batches once more before it sleeps (`Signal::wait_timeout_unless`),
    /// so it either saw the news or is counted here; its lock, taken once, is held
    /// until it sleeps, so the notification cannot come too early.
    pub(crate) fn notify_held_news(&self) -> Result<()> {
        if self.has_events.has_sleepers() {
            drop(self.lock()?);
        }
        self.notify_events();
        Ok(())
    }

    /// A publish left `n` events for it in a held batch: owed from now on. Called
    /// before the batch is held, so no ack of them comes before they are counted.
    pub(crate) fn add_matched(&self, n: u64) {
        self.matched.fetch_add(n, Ordering::Release);
    }

    /// Fold what publishes left in held batches into the backlog (under its lock).
    pub(crate) fn count_matched(&self, st: &mut SubState) {
        if let Some(d) = st.durable.as_mut() {
            d.owed += self.matched.swap(0, Ordering::Acquire);
        }
    }

    /// Is a consumer busy-polling for this subscription right now?
    pub(crate) fn has_spinner(&self) -> bool {
        self.spinners.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn watch(&self, watcher: Arc<dyn Watcher>) {
        if let Ok(mut bells) = self.bells.lock() {
            bells.push(watcher);
            self.watched.store(bells.len(), Ordering::SeqCst);
        }
    }

    /// Stop telling `watcher` (the same object `watch` was given).
    pub(crate) fn unwatch(&self, watcher: &dyn Watcher) {
        if let Ok(mut bells) = self.bells.lock() {
            bells.retain(|b| !std::ptr::addr_eq(Arc::as_ptr(b), watcher));
            self.watched.store(bells.len(), Ordering::SeqCst);
        }
    }

    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        self.bells.lock().map_or(0, |b| b.len())
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, SubState>> {
        self.state.lock().map_err(|_| Error::Closed {
            what: format!(
                "subscription {} (a thread panicked holding its lock)",
                self.name
            ),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// A durable subscription whose backlog no bound limits (see `unbounded`).
    pub(crate) fn is_unbounded(&self) -> bool {
        self.unbounded
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Taken once after the flag, so a waiter that checked it under the lock
        // before the store has counted itself by now (the `Signal` contract).
        drop(self.state.lock());
        self.notify_events();
        self.has_room.notify_all();
    }

    pub fn config(&self) -> Result<QueueConfig> {
        Ok(*self.lock()?.queue.config())
    }

    /// Counters, then ready, in flight, dead letters, and for durable subscriptions
    /// (committed offset, read offset, owed, lost).
    pub fn stats(&self) -> Result<SubStats> {
        let mut s = self.lock()?;
        self.count_matched(&mut s);
        let d = s
            .durable
            .as_ref()
            .map(|d| (d.cursor.committed, d.read_offset, d.owed, d.lost));
        Ok(SubStats {
            counters: s.queue.stats(),
            ready: s.queue.ready_len(),
            in_flight: s.queue.inflight_len(),
            dead_letters: s.queue.dead_len(),
            durable: d,
        })
    }
}

/// Counts a busy-polling consumer on its subscriptions while it spins.
pub(crate) struct Spinning<'a> {
    one: Option<&'a Subscription>,
    many: &'a [Arc<Subscription>],
}

impl<'a> Spinning<'a> {
    /// A poll of one subscription.
    pub(crate) fn on(sub: &'a Subscription) -> Self {
        sub.spinners.fetch_add(1, Ordering::Relaxed);
        Spinning {
            one: Some(sub),
            many: &[],
        }
    }

    /// A selector over `subs`.
    pub(crate) fn on_all(subs: &'a [Arc<Subscription>]) -> Self {
        for s in subs {
            s.spinners.fetch_add(1, Ordering::Relaxed);
        }
        Spinning {
            one: None,
            many: subs,
        }
    }
}

impl Drop for Spinning<'_> {
    fn drop(&mut self) {
        for s in self.one.into_iter().chain(self.many.iter().map(|s| &**s)) {
            s.spinners.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
