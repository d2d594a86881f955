//! Durable consumers: cursors in the log, refilling the in-memory window from disk,
//! saving cursors, and retention that respects what consumers still need.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::deliver::Opened;
use super::publish::aad_of;
use super::queue::OnFull;
use super::stored;
use super::subscription::{Durable, SubState, Subscription};
use super::{is_sealed_key, poisoned, Router, Start};
use crate::envelope::{DataKind, Event};
use crate::error::{Action, Error, Result};
use crate::log::Cursor;
use crate::pattern::{Pattern, PatternSet};
use crate::policy;
use crate::seal::frame;

/// How much a refill reads from disk at most per call.
const REFILL_BYTES: usize = 4 << 20;

/// How often acks save the changed cursors (all of them, in one group).
pub(super) const ACK_SAVE_EVERY: Duration = Duration::from_millis(200);

/// How often housekeeping saves a cursor that only moved by following the log.
const MOVED_SAVE_EVERY: Duration = Duration::from_secs(30);

impl Router {
    fn durable_parts(&self) -> Result<(&Arc<crate::log::Log>, &crate::log::CursorStore)> {
        if let (Some(l), Some(c)) = (&self.log, &self.cursors) {
            return Ok((l, c));
        }
        Err(Error::InvalidArgument {
            name: "durable".into(),
            reason: "durable subscriptions need a durable router: Router(path=...)".into(),
        })
    }

    /// Open (or create) the durable consumer `name` for `principal`. A consumer
    /// belongs to the principal that created it: anyone else is refused with
    /// `PolicyDenied` before its cursor is touched, so its backlog stays its own.
    pub(super) fn open_durable(
        &self,
        id: u64,
        principal: &str,
        name: &str,
        start: Start,
        max_backlog: Option<u64>,
        pattern: Option<&Pattern>,
    ) -> Result<Durable> {
        let (log, cursors) = self.durable_parts()?;
        let cursor = if let Some(mut c) = cursors.load(name)? {
            match c.owner.as_deref() {
                Some(owner) if owner != principal => return Err(not_owner(principal, name)),
                Some(_) => {}
                None => {
                    // Written before owners were recorded: the first principal to
                    // resume it adopts it, and it is recorded at once.
                    c.owner = Some(principal.to_owned());
                    cursors.save(name, &c)?;
                }
            }
            c
        } else {
            let mut c = Cursor::starting_at(match start {
                Start::Latest => log.next_offset(),
                Start::Earliest => log.first_offset(),
            });
            c.owner = Some(principal.to_owned());
            // Stored at once: from now on the consumer is owed every event, online or not.
            cursors.save(name, &c)?;
            c
        };
        let filter = pattern.map(|p| {
            let mut set = PatternSet::new();
            set.insert(0u8, p.clone());
            set
        });
        let committed = cursor.committed;
        Ok(Durable {
            name: name.to_owned(),
            read_offset: cursor.committed,
            cursor,
            max_backlog,
            owed: 0,
            lost: 0,
            dirty: false,
            last_save: Instant::now(),
            saved_committed: committed,
            filter,
            early: BTreeMap::new(),
            early_items: 0,
            following: false,
            // Not set up until `subscribe` has moved the routing generation on: it
            // does not follow before then (`since_generation`), and whatever a batch
            // asks of it meanwhile raises this and stays.
            read_until: 0,
            since_generation: u64::MAX,
            waiting: false,
            tail: self
                .tail
                .as_ref()
                .filter(|_| max_backlog.is_none())
                .map(|t| (Arc::clone(t), id)),
            tail_seen: 0,
        })
    }

    /// Check the durable options against the queue policy.
    pub(super) fn check_durable_policy(on_full: OnFull, max_backlog: Option<u64>) -> Result<()> {
        if on_full == OnFull::DropOldest && max_backlog.is_some() {
            return Err(Error::InvalidArgument {
                name: "on_full".into(),
                reason: "a durable consumer's backlog is on disk: bound it with block or reject, \
                         or leave max_backlog unset and let retention decide"
                    .into(),
            });
        }
        Ok(())
    }

    /// Reload a durable consumer's dead letters from the log after a restart.
    pub(super) fn restore_dead_letters(&self, sub: &Subscription) -> Result<()> {
        let (log, _) = self.durable_parts()?;
        let mut st = sub.lock()?;
        let letters = match &st.durable {
            Some(d) => d.cursor.dead_letters.clone(),
            None => return Ok(()),
        };
        for dl in letters {
            if let Some(r) = log.read(dl.offset, 1, REFILL_BYTES)?.into_iter().next() {
                if r.offset == dl.offset {
                    let e = stored::decode_with(&r.payload, r.offset, "", self.keys.as_deref())?;
                    let reason = if dl.reason == "nacked" {
                        "nacked"
                    } else {
                        "ack timeout"
                    };
                    st.queue.push_dead(Arc::new(e), dl.deliveries, reason);
                }
            }
        }
        Ok(())
    }

    /// Does this subscription want this stored event (type, permission, pattern)?
    fn wants(
        &self,
        sub: &Subscription,
        filter: Option<&PatternSet<u8>>,
        e: &Event,
    ) -> Result<bool> {
        if !sub
            .types
            .iter()
            .any(|g| policy::glob_match(g, &e.event_type))
            || !self
                .policy
                .allows(&sub.principal, Action::Subscribe, &e.event_type)
        {
            return Ok(false);
        }
        let Some(filter) = filter else {
            return Ok(true);
        };
        let looks_inside = sub
            .pattern
            .as_ref()
            .is_some_and(|p| p.top_level_keys().iter().any(|k| is_sealed_key(k)));
        if looks_inside && self.policy.requires_end_to_end(&e.event_type) {
            return Ok(false);
        }
        matches_event(self, filter, e)
    }

    /// Top up a durable subscription's in-memory window from the log.
    /// A following subscription only catches up (see `follow`); one that reads back
    /// follows again once it has read far enough.
    pub(super) fn refill(&self, sub: &Subscription, st: &mut SubState) -> Result<()> {
        let Some(log) = &self.log else { return Ok(()) };
        let window = st.queue.config().max_pending;
        loop {
            self.try_follow(st);
            let Some(d) = st.durable.as_ref() else {
                return Ok(());
            };
            if d.following {
                return Ok(());
            }
            let room = window.saturating_sub(st.queue.len());
            // Not past an append whose events are about to be pushed to the windows.
            let limit = self.inflight.horizon(log.next_offset());
            if room == 0 || d.read_offset >= limit {
                return Ok(());
            }
            let below = usize::try_from(limit - d.read_offset).unwrap_or(usize::MAX);
            let records = log.read(d.read_offset, room.min(4096).min(below), REFILL_BYTES)?;
            if records.is_empty() {
                return Ok(());
            }
            self.counters
                .read_back
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            for r in records {
                let Some(d) = st.durable.as_mut() else {
                    return Ok(());
                };
                if r.offset > d.read_offset {
                    // Retention deleted these before this consumer read them.
                    d.lost += r.offset - d.read_offset;
                    d.cursor.settle_unwanted(d.read_offset, r.offset);
                }
                d.read_offset = r.offset + 1;
                d.dirty = true;
                if d.cursor.is_settled(r.offset) {
                    continue;
                }
                let e = self.open_stored(stored::decode_with(
                    &r.payload,
                    r.offset,
                    "",
                    self.keys.as_deref(),
                )?);
                let filter = d.filter.take();
                let wanted = self.wants(sub, filter.as_ref(), &e);
                let Some(d) = st.durable.as_mut() else {
                    return Ok(());
                };
                d.filter = filter;
                if wanted? {
                    let attempts = d.cursor.deliveries.get(r.offset).unwrap_or(0);
                    st.queue.push_attempted(Arc::new(e), attempts);
                } else {
                    d.cursor.ack(r.offset);
                }
            }
            // Batches waiting to join the window that these records covered are stale.
            if let Some(d) = st.durable.as_mut() {
                d.prune_early();
            }
        }
    }

    /// Save a durable subscription's cursor if it changed.
    pub fn flush_cursor(&self, sub: &Subscription) -> Result<()> {
        self.save_cursors(std::iter::once(sub), true)
    }

    /// Save, as one group (one write, one fsync), the cursors of `subs` that their
    /// consumers changed (acks, deliveries, dead letters), and those that only moved
    /// on by following the log if `moved` says to save those too, or if they have
    /// not been saved for a while. A following consumer is caught up first, so its
    /// saved cursor lags the log little.
    ///
    /// Each cursor is encoded under its subscription's lock, which is held only for
    /// that: producers and consumers never wait for the disk. The group holds the
    /// store until it is written, so an older snapshot of a cursor never lands
    /// after a newer one.
    fn save_cursors<'a>(
        &self,
        subs: impl IntoIterator<Item = &'a Subscription>,
        moved: bool,
    ) -> Result<()> {
        let Some(cursors) = &self.cursors else {
            return Ok(());
        };
        self.process.check("the router")?;
        // A closed log has released its folder to the next writer: its cursors are
        // no longer this router's to write (an ack after close is redelivered).
        if self.log.as_ref().is_some_and(|l| l.is_closed()) {
            return Ok(());
        }
        let mut batch = cursors.batch()?;
        let mut saved = Vec::new();
        for sub in subs {
            let mut st = sub.lock()?;
            // A subscription that takes its shares from the held batches (see
            // `tail`) does so here only when its moved cursor is due to be saved:
            // the periodic save must not do the work each publish left to the
            // consumer, thousands of subscriptions at a time.
            let follow = moved
                || st
                    .durable
                    .as_ref()
                    .is_some_and(|d| d.tail.is_none() || d.last_save.elapsed() >= MOVED_SAVE_EVERY);
            let joined = follow && self.try_follow(&mut st);
            let bytes = st
                .durable
                .as_mut()
                .filter(|d| {
                    d.dirty
                        || (d.cursor.committed != d.saved_committed
                            && (moved || d.last_save.elapsed() >= MOVED_SAVE_EVERY))
                })
                .map(|d| {
                    d.dirty = false;
                    d.last_save = Instant::now();
                    d.saved_committed = d.cursor.committed;
                    d.cursor.encode()
                });
            drop(st);
            if joined {
                sub.notify_events();
            }
            if let Some(bytes) = bytes {
                batch.put_encoded(&sub.name, &bytes)?;
                saved.push(sub);
            }
        }
        batch.commit().inspect_err(|_| {
            // Not saved: the next flush tries again.
            for sub in saved {
                if let Ok(mut st) = sub.lock() {
                    if let Some(d) = st.durable.as_mut() {
                        d.dirty = true;
                    }
                }
            }
        })
    }

    /// A subscription's figures; a durable one takes its shares of the held batches
    /// first (see `tail`), so they count what has been published to it.
    pub fn stats_of(&self, sub: &Subscription) -> Result<super::SubStats> {
        let joined = self.try_follow(&mut *sub.lock()?);
        if joined {
            sub.notify_events();
        }
        sub.stats()
    }

    /// A subscription is gone: its shares of the held batches are not waited for.
    pub(super) fn forget_shares(sub: &Subscription) -> Result<()> {
        let mut st = sub.lock()?;
        if let Some(d) = st.durable.as_mut() {
            if let Some((tail, id)) = &d.tail {
                let from = std::mem::replace(&mut d.tail_seen, u64::MAX);
                tail.forget(*id, from);
            }
        }
        Ok(())
    }

    /// Save every changed cursor, in one group.
    pub fn flush(&self) -> Result<()> {
        let subs = self.subscriptions();
        self.save_cursors(subs.iter().map(|s| &**s), true)
    }

    /// An ack left a cursor unsaved for a while (`ack_unsaved` said so): save every
    /// changed cursor, in one group, at most once per [`ACK_SAVE_EVERY`] for the
    /// whole router (a save per consumer would cost thousands of consumers one fsync
    /// each; the housekeeping thread saves the rest).
    pub fn save_acked(&self) -> Result<()> {
        let due = {
            let mut at = self
                .acks_saved
                .lock()
                .map_err(|_| poisoned("cursor saves"))?;
            let due = at.elapsed() >= ACK_SAVE_EVERY;
            if due {
                *at = Instant::now();
            }
            due
        };
        if due {
            self.flush_changed()
        } else {
            Ok(())
        }
    }

    /// Save the cursors consumers changed, and those that only followed the log
    /// when they have not been saved for a while, in one group: one write and one
    /// fsync however many consumers there are.
    pub(super) fn flush_changed(&self) -> Result<()> {
        let subs = self.subscriptions();
        self.save_cursors(subs.iter().map(|s| &**s), false)
    }

    /// Delete whole segments per the retention policy, never past what a durable
    /// consumer (online or offline) still needs unless the policy says so.
    pub fn apply_retention(&self) -> Result<Option<crate::log::RetentionReport>> {
        self.process.check("the router")?;
        let (Some(log), Some(cursors)) = (&self.log, &self.cursors) else {
            return Ok(None);
        };
        self.flush_changed()?;
        // Online consumers count by their cursor in memory, caught up first; the
        // files of the others.
        let mut min: Option<u64> = None;
        let mut online = std::collections::HashSet::new();
        for s in self.subscriptions() {
            let mut st = s.lock()?;
            let joined = self.try_follow(&mut st);
            if let Some(d) = &st.durable {
                online.insert(d.name.clone());
                min = Some(min.map_or(d.cursor.committed, |m| m.min(d.cursor.committed)));
            }
            drop(st);
            if joined {
                s.notify_events();
            }
        }
        for name in cursors.consumers()? {
            if online.contains(&name) {
                continue;
            }
            if let Some(c) = cursors.load(&name)? {
                min = Some(min.map_or(c.committed, |m| m.min(c.committed)));
            }
        }
        log.apply_retention(min).map(Some)
    }

    /// Flush cursors and stop the log writer. In a process other than the one that
    /// opened the router (a forked child), nothing: what it would flush and close is
    /// that process's (`process.rs`).
    pub fn close(&self) -> Result<()> {
        if !self.process.is_current() {
            return Ok(());
        }
        self.flush()?;
        for s in self.subscriptions() {
            s.close();
        }
        if let Some(log) = &self.log {
            log.close()?;
        }
        Ok(())
    }

    /// A background thread that saves changed cursors every `every` and applies
    /// retention every `retention_every`. It ends when the router is dropped.
    pub fn start_housekeeping(self: &Arc<Self>, every: Duration, retention_every: Duration) {
        if self.log.is_none() {
            return;
        }
        let weak: Weak<Router> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("sealbus-housekeeping".into())
            .spawn(move || {
                let mut last_retention = Instant::now();
                loop {
                    std::thread::sleep(every);
                    let Some(router) = weak.upgrade() else { return };
                    if router.log.as_ref().is_some_and(|l| l.stats().failed) {
                        return;
                    }
                    // Errors surface to the next caller that touches the same cursor or log.
                    let _ = router.flush_changed();
                    if last_retention.elapsed() >= retention_every {
                        let _ = router.apply_retention();
                        last_retention = Instant::now();
                    }
                }
            });
        // Without the thread, cursors are still saved on ack and on close.
        drop(spawned);
    }
}

impl Router {
    /// Open a stored event's at-rest seal as it enters a window: once, for both the
    /// pattern and the delivery (the window item keeps its key, so a destroyed key
    /// still refuses it). An event that cannot be opened stays sealed and is
    /// delivered with the reason, so the consumer can see it and ack.
    fn open_stored(&self, mut e: Event) -> Event {
        let Some(keys) = &self.keys else { return e };
        if !e.sealed {
            return e;
        }
        let key = frame::decode(&e.data).map(|f| Arc::<str>::from(f.key_id));
        if let (Ok(plain), Ok(key)) = (keys.open(&e.data, &aad_of(&e)), key) {
            e.data = plain;
            e.sealed = false;
            e.at_rest_key = Some(key);
        }
        e
    }
}

/// The refusal of a principal that asks for another principal's durable consumer.
/// It names neither the owner nor what the consumer holds.
pub(super) fn not_owner(principal: &str, name: &str) -> Error {
    Error::PolicyDenied {
        principal: principal.to_owned(),
        action: Action::Subscribe,
        event_type: format!("as durable consumer {name:?}, which belongs to another principal"),
    }
}

/// Match a stored event against a pattern. Callers open at-rest data first
/// ([`Router::open_stored`], replay), so data still sealed here could not be opened (a
/// destroyed key): it matches, so the consumer is told why it cannot read the event
/// rather than never hearing of it.
pub(super) fn matches_event(router: &Router, filter: &PatternSet<u8>, e: &Event) -> Result<bool> {
    if e.sealed && e.data_kind == DataKind::Json && router.keys.is_some() {
        return Ok(true);
    }
    let mut out = Vec::new();
    filter.matches_json(
        &e.to_json_bytes(e.data_kind == DataKind::Json && !e.sealed),
        &mut out,
    )?;
    Ok(!out.is_empty())
}

impl Opened {
    /// Whether the data of this delivery could be opened.
    pub fn is_open(&self) -> bool {
        self.error.is_none()
    }
}
