//! The consumer side: poll (refilling a durable window from the log first), ack,
//! nack, dead letters, and opening at-rest seals for the consumer that receives them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::publish::aad_of;
use super::queue::{DeadLetter, Delivery};
use super::signal::{spin_until, MAX_SPIN};
use super::subscription::{Item, Spinning, SubState, Subscription};
use super::{poisoned, Router};
use crate::envelope::Event;
use crate::error::{Error, Result};

/// A delivered event with its data opened (or the reason it cannot be).
#[derive(Debug)]
pub struct Opened {
    pub tag: u64,
    pub attempt: u32,
    pub event: Arc<Event>,
    /// Why the data could not be opened (a destroyed key, tampering); the event's
    /// attributes are still delivered so the consumer can ack and move on.
    pub error: Option<Error>,
}

/// Deliveries with their data opened straight into one buffer, for a consumer that
/// takes a batch: no copy of each event's attributes (the items stay the shared,
/// sealed ones). `buffer[offsets[i]..offsets[i + 1]]` is delivery i's data (empty if
/// it could not be opened; `errors[i]` says why).
///
/// Built with the GIL released, the buffer is what the binding hands out (lent to
/// Python, not copied again): when no delivery is sealed (a durable consumer's window
/// holds plaintext), each deliverable item's data is copied into it once.
#[derive(Debug)]
pub struct OpenedBatch {
    pub deliveries: Vec<Delivery<Item>>,
    pub buffer: Vec<u8>,
    pub offsets: Vec<usize>,
    pub errors: Vec<Option<Error>>,
    /// Deliveries whose data is an end-to-end frame: the router cannot open it, only
    /// the consumer's key pair can. Their slot in `buffer` is empty (the frame stays
    /// in the item, see [`end_to_end_frame`]), unless the item was sealed at rest:
    /// then the slot holds the frame it opened to. Never hand it out as the data.
    pub end_to_end: Vec<usize>,
}

impl OpenedBatch {
    fn new(
        deliveries: Vec<Delivery<Item>>,
        buffer: Vec<u8>,
        offsets: Vec<usize>,
        errors: Vec<Option<Error>>,
    ) -> Self {
        let end_to_end = deliveries
            .iter()
            .zip(&errors)
            .enumerate()
            .filter(|(_, (d, e))| e.is_none() && is_end_to_end(&d.item))
            .map(|(i, _)| i)
            .collect();
        OpenedBatch {
            deliveries,
            buffer,
            offsets,
            errors,
            end_to_end,
        }
    }
}

/// Whether an event's data is an end-to-end frame (a producer sealed it for its
/// consumers; the router routes on its attributes only).
pub fn is_end_to_end(e: &Event) -> bool {
    e.datacontenttype.as_deref() == Some(crate::envelope::E2E_CONTENT_TYPE)
}

/// The end-to-end frame of a delivered item whose slot in an [`OpenedBatch`]'s
/// buffer is `slot`: the item's own data, unless it was sealed at rest (its slot
/// then holds what that seal opened to).
pub fn end_to_end_frame<'a>(item: &'a Event, slot: &'a [u8]) -> &'a [u8] {
    if item.sealed {
        slot
    } else {
        &item.data
    }
}

/// Whether a delivered item's data goes into the batch's buffer: not an end-to-end
/// frame held in the clear in memory, which only the consumer's key pair opens
/// (from the item itself): copying it would be work for nothing.
fn copied(e: &Event) -> bool {
    e.sealed || !is_end_to_end(e)
}

/// The bytes of the deliveries' data that a batch's buffer holds.
fn copied_len(deliveries: &[Delivery<Item>]) -> usize {
    deliveries
        .iter()
        .filter(|d| copied(&d.item))
        .map(|d| d.item.data.len())
        .sum()
}

/// Whether the plaintext of a window item may still be delivered: not once the key
/// its stored frame is sealed under is destroyed. One ring lookup per key per batch
/// while keys are fine; a refusal (rare) is looked up again for its own error.
#[derive(Default)]
struct KeyCheck {
    last_ok: Option<Arc<str>>,
}

impl KeyCheck {
    fn check(&mut self, router: &Router, e: &Event) -> Result<()> {
        let (Some(id), Some(keys)) = (&e.at_rest_key, &router.keys) else {
            return Ok(());
        };
        if self.last_ok.as_ref().is_some_and(|k| **k == **id) {
            return Ok(());
        }
        keys.check_opens(id)?;
        self.last_ok = Some(id.clone());
        Ok(())
    }
}

impl Router {
    /// Count the opens that failed on a tampered or malformed frame.
    pub(super) fn count_open_failures<'e>(&self, errors: impl Iterator<Item = Option<&'e Error>>) {
        let n = errors
            .flatten()
            .filter(|e| matches!(e, Error::Integrity { .. } | Error::Frame { .. }))
            .count();
        if n > 0 {
            self.counters
                .open_failed
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Like [`Router::open`], into one buffer.
    pub fn open_into_buffer(&self, deliveries: Vec<Delivery<Item>>) -> OpenedBatch {
        let n = deliveries.len();
        let mut errors: Vec<Option<Error>> = Vec::new();
        errors.resize_with(n, || None);
        let all_sealed = self.keys.is_some() && deliveries.iter().all(|d| d.item.sealed);
        if let (Some(keys), true, false) = (&self.keys, all_sealed, deliveries.is_empty()) {
            // The common case: one batch open whose output is the buffer itself.
            let mut frames = Vec::with_capacity(deliveries.iter().map(|d| d.item.data.len()).sum());
            let mut offs = Vec::with_capacity(n + 1);
            offs.push(0);
            for d in &deliveries {
                frames.extend_from_slice(&d.item.data);
                offs.push(frames.len());
            }
            let aads: Vec<_> = deliveries.iter().map(|d| aad_of(&d.item)).collect();
            if let Ok((buffer, offsets)) = keys.open_batch(&aads, &frames, &offs) {
                return OpenedBatch::new(deliveries, buffer, offsets, errors);
            }
        }
        if deliveries.iter().all(|d| !d.item.sealed) {
            // Plaintext only: check the keys, copy the data once.
            let mut buffer = Vec::with_capacity(copied_len(&deliveries));
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0);
            let mut keys_seen = KeyCheck::default();
            for (d, err) in deliveries.iter().zip(errors.iter_mut()) {
                match keys_seen.check(self, &d.item) {
                    Ok(()) if copied(&d.item) => buffer.extend_from_slice(&d.item.data),
                    Ok(()) => {}
                    Err(e) => *err = Some(e),
                }
                offsets.push(buffer.len());
            }
            self.count_open_failures(errors.iter().map(Option::as_ref));
            return OpenedBatch::new(deliveries, buffer, offsets, errors);
        }
        // Mixed, unsealed or a failed batch: item by item, so one shredded event does
        // not hide the others.
        let mut buffer = Vec::with_capacity(copied_len(&deliveries));
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut keys_seen = KeyCheck::default();
        for (d, err) in deliveries.iter().zip(errors.iter_mut()) {
            match (&self.keys, d.item.sealed) {
                (Some(keys), true) => match keys.open(&d.item.data, &aad_of(&d.item)) {
                    Ok(data) => buffer.extend_from_slice(&data),
                    Err(e) => *err = Some(e),
                },
                _ => match keys_seen.check(self, &d.item) {
                    Ok(()) if copied(&d.item) => buffer.extend_from_slice(&d.item.data),
                    Ok(()) => {}
                    Err(e) => *err = Some(e),
                },
            }
            offsets.push(buffer.len());
        }
        self.count_open_failures(errors.iter().map(Option::as_ref));
        OpenedBatch::new(deliveries, buffer, offsets, errors)
    }

    /// Up to `max` events, waiting up to `timeout` for the first. Blocks the calling
    /// thread: call with the GIL released. A manual clock never waits.
    pub fn poll(
        &self,
        sub: &Subscription,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Delivery<Item>>> {
        self.process.check("the router")?;
        let started = std::time::Instant::now();
        let mut st = sub.lock()?;
        let busy_poll = Duration::from_nanos(st.queue.config().busy_poll_ns);
        let mut spun = busy_poll.is_zero() || self.clock.is_manual();
        loop {
            if sub.is_closed() {
                return Err(Error::Closed {
                    what: format!("subscription {}", sub.name),
                });
            }
            // Read before looking: news that lands after the look bumps it (held
            // batches are put in place before their subscriptions are rung).
            let seen = sub.wakes.load(Ordering::Acquire);
            let out = self.take_ready(sub, &mut st, max)?;
            if !out.is_empty() || max == 0 {
                return Ok(out);
            }
            let Some(remaining) = self.time_left(started, timeout) else {
                return Ok(out);
            };
            if !spun {
                // Once per poll: watch the wake counter without the lock, then look
                // again (news, closed, or time up) before sleeping.
                spun = true;
                drop(st);
                let until = started + busy_poll.min(remaining).min(MAX_SPIN);
                let _counted = Spinning::on(sub);
                spin_until(until, || {
                    sub.wakes.load(Ordering::Acquire) != seen || sub.is_closed()
                });
                st = sub.lock()?;
                continue;
            }
            // Wake for the next ack deadline too, so expired events are redelivered.
            let wait = self.until_redelivery(&st, remaining);
            // News in a held batch is looked for once more after counting as a
            // sleeper (see `Subscription::notify_held_news`).
            st = sub
                .has_events
                .wait_timeout_unless(st, wait, |st| {
                    sub.is_closed()
                        || self
                            .refill(sub, st)
                            .map_or(true, |()| st.queue.ready_len() > 0)
                })
                .map_err(|_| poisoned("queue"))?;
        }
    }

    /// What `sub` has ready now, up to `max`, taken as delivered (a durable window is
    /// refilled from the log first).
    pub(super) fn take_ready(
        &self,
        sub: &Subscription,
        st: &mut SubState,
        max: usize,
    ) -> Result<Vec<Delivery<Item>>> {
        self.refill(sub, st)?;
        sub.count_matched(st);
        let now = self.clock.now();
        let dead_before = st.queue.stats().dead_lettered;
        let before = st.queue.len();
        let out = st.queue.take(max, now);
        Self::settle_buried(st, dead_before);
        if let Some(d) = &mut st.durable {
            for o in out.iter().filter_map(|x| x.item.offset) {
                d.cursor.record_delivery(o);
            }
            d.dirty |= !out.is_empty();
        }
        if st.queue.len() < before {
            sub.has_room.notify_all();
        }
        Ok(out)
    }

    /// How much of `timeout` (None: forever) is left since `started`; None when a
    /// poll should return now (time is up, or the clock is manual and never waits).
    pub(super) fn time_left(
        &self,
        started: std::time::Instant,
        timeout: Option<Duration>,
    ) -> Option<Duration> {
        match timeout {
            Some(t) => match t.checked_sub(started.elapsed()) {
                Some(r) if !r.is_zero() && !self.clock.is_manual() => Some(r),
                _ => None,
            },
            None if self.clock.is_manual() => None,
            None => Some(Duration::from_hours(1)),
        }
    }

    /// `wait`, shortened to the queue's next ack deadline: expiry redelivers.
    pub(super) fn until_redelivery(&self, st: &SubState, wait: Duration) -> Duration {
        match st.queue.next_deadline() {
            Some(d) => {
                let now = self.clock.now();
                wait.min(Duration::from_nanos(d.saturating_sub(now).max(1_000)))
            }
            None => wait,
        }
    }

    /// Mirror newly dead-lettered items into a durable cursor.
    fn settle_buried(st: &mut SubState, dead_before: u64) {
        let fresh =
            usize::try_from(st.queue.stats().dead_lettered - dead_before).unwrap_or(usize::MAX);
        if fresh == 0 {
            return;
        }
        let buried: Vec<(u64, &'static str)> = st
            .queue
            .newest_dead(fresh)
            .filter_map(|d| d.item.offset.map(|o| (o, d.reason)))
            .collect();
        if let Some(d) = &mut st.durable {
            let now = crate::log::now_ns();
            for (o, reason) in buried {
                d.cursor.dead_letter(o, reason, now);
                d.owed = d.owed.saturating_sub(1);
            }
            d.dirty = true;
        }
    }

    /// Acknowledge deliveries by tag; returns how many were still outstanding. A
    /// durable subscription's cursors are saved at most every `ACK_SAVE_EVERY`.
    pub fn ack(&self, sub: &Subscription, tags: &[u64]) -> Result<usize> {
        let (n, save) = self.ack_unsaved(sub, tags)?;
        if save {
            self.save_acked()?;
        }
        Ok(n)
    }

    /// [`Router::ack`] in two halves: the acknowledgements, in memory (no I/O, a few
    /// µs), returning how many were outstanding and whether the cursors are due to
    /// be saved; then [`Router::save_acked`], which writes and syncs them, for a
    /// caller that waits on the disk differently from how it acks (the binding acks
    /// with the GIL held and saves with it released).
    pub fn ack_unsaved(&self, sub: &Subscription, tags: &[u64]) -> Result<(usize, bool)> {
        self.process.check("the router")?;
        let mut st = sub.lock()?;
        sub.count_matched(&mut st);
        let mut n = 0;
        for &t in tags {
            if let Some(item) = st.queue.ack(t) {
                n += 1;
                if let (Some(d), Some(o)) = (&mut st.durable, item.offset) {
                    // A settling ack drops the delivery count itself.
                    if !d.cursor.ack(o) {
                        d.cursor.deliveries.remove(o);
                    }
                    d.owed = d.owed.saturating_sub(1);
                    d.dirty = true;
                }
            }
        }
        let save = st
            .durable
            .as_ref()
            .is_some_and(|d| d.dirty && d.last_save.elapsed() > super::durable::ACK_SAVE_EVERY);
        drop(st);
        if n > 0 {
            sub.has_room.notify_all();
            // A durable window has room again: a waiting poller may refill it.
            sub.notify_events();
        }
        Ok((n, save))
    }

    /// Refuse deliveries: redelivered, or dead-lettered after `max_deliveries`.
    pub fn nack(&self, sub: &Subscription, tags: &[u64]) -> Result<usize> {
        self.process.check("the router")?;
        let mut st = sub.lock()?;
        sub.count_matched(&mut st);
        let before = st.queue.len();
        let dead_before = st.queue.stats().dead_lettered;
        let n = st.queue.nack_all(tags);
        Self::settle_buried(&mut st, dead_before);
        let freed = st.queue.len() < before;
        drop(st);
        if n > 0 {
            sub.notify_events();
        }
        if freed {
            sub.has_room.notify_all();
        }
        Ok(n)
    }

    /// Dead letters; `remove` takes them out (for good, also from a durable cursor).
    pub fn dead_letters(
        &self,
        sub: &Subscription,
        max: usize,
        remove: bool,
    ) -> Result<Vec<DeadLetter<Item>>> {
        let mut st = sub.lock()?;
        if !remove {
            return Ok(st.queue.dead_letters().take(max).cloned().collect());
        }
        let out = st.queue.drain_dead(max);
        if let Some(d) = &mut st.durable {
            for o in out.iter().filter_map(|x| x.item.offset) {
                d.cursor.remove_dead_letter(o);
            }
            d.dirty = true;
        }
        Ok(out)
    }

    /// Open the at-rest seals of delivered events, for the consumer that polled them.
    /// One batch call; if it fails, item by item, so one shredded event does not
    /// hide the others.
    pub fn open(&self, deliveries: Vec<Delivery<Item>>) -> Vec<Opened> {
        let plain = |d: Delivery<Item>, event: Arc<Event>, error: Option<Error>| Opened {
            tag: d.tag,
            attempt: d.attempt,
            event,
            error,
        };
        let Some(keys) = &self.keys else {
            return deliveries
                .into_iter()
                .map(|d| {
                    let e = d.item.clone();
                    plain(d, e, None)
                })
                .collect();
        };
        let sealed: Vec<&Delivery<Item>> = deliveries.iter().filter(|d| d.item.sealed).collect();
        let mut frames = Vec::new();
        let mut offsets = vec![0];
        for d in &sealed {
            frames.extend_from_slice(&d.item.data);
            offsets.push(frames.len());
        }
        let aads: Vec<_> = sealed.iter().map(|d| aad_of(&d.item)).collect();
        let batch = keys.open_batch(&aads, &frames, &offsets).ok();
        drop(aads);
        let mut k = 0;
        let mut keys_seen = KeyCheck::default();
        let out: Vec<Opened> = deliveries
            .into_iter()
            .map(|d| {
                if !d.item.sealed {
                    return match keys_seen.check(self, &d.item) {
                        Ok(()) => {
                            let e = d.item.clone();
                            plain(d, e, None)
                        }
                        Err(err) => {
                            let mut e = (*d.item).clone();
                            e.data = Vec::new();
                            plain(d, Arc::new(e), Some(err))
                        }
                    };
                }
                let opened = match &batch {
                    Some((buf, offs)) => Ok(buf[offs[k]..offs[k + 1]].to_vec()),
                    None => keys.open(&d.item.data, &aad_of(&d.item)),
                };
                k += 1;
                let mut e = (*d.item).clone();
                e.sealed = false;
                match opened {
                    Ok(data) => {
                        e.data = data;
                        plain(d, Arc::new(e), None)
                    }
                    Err(err) => {
                        e.data = Vec::new();
                        plain(d, Arc::new(e), Some(err))
                    }
                }
            })
            .collect();
        self.count_open_failures(out.iter().map(|o| o.error.as_ref()));
        out
    }
}
