//! The queue step of a publish: reserve room under each queue's backpressure policy,
//! seal, append to the durable log (one group-committed write), then hand the events
//! to the queues. Nothing is stored before every `reject` queue has said yes, and an
//! acknowledged publish is on disk (per the fsync policy) before anyone sees it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::follow;
use super::queue::OnFull;
use super::signal::{Interrupt, INTERRUPT_SLICE};
use super::stored;
use super::subscription::{Item, SubState, Subscription};
use super::tail::Batch;
use super::{poisoned, Receipt, Refused, Router, TypeRoute};
use crate::envelope::{DataKind, Event};
use crate::error::{Error, Result};
use crate::seal::{aead, frame, AadFields, KeyRing};

/// At-rest frames of a batch in one buffer: frame `i` is `buf[offs[i]..offs[i + 1]]`.
struct Frames {
    buf: Vec<u8>,
    offs: Vec<usize>,
}

/// The subscriptions a batch goes to, and for each event the indices of its own,
/// flat: event `i` goes to `subs[k]` for each `k` in `idx[ends[i]..ends[i + 1]]`.
pub(super) struct Targets {
    subs: Vec<Arc<Subscription>>,
    idx: Vec<u32>,
    ends: Vec<usize>,
    /// The oldest routing generation the batch was routed under: a subscription
    /// that came later was not asked (see `follow`).
    pub(super) generation: u64,
}

/// A route's subscription that has not received an event of the batch yet.
const UNSEEN: u32 = u32::MAX;

/// Where route subscription `k` sits in `subs`, adding it on its first event.
/// `by_id` (batches of several types) keeps one entry per subscription.
fn slot(
    subs: &mut Vec<Arc<Subscription>>,
    by_id: Option<&mut HashMap<u64, u32>>,
    local: &mut [u32],
    route: &[Arc<Subscription>],
    k: usize,
) -> u32 {
    if local[k] != UNSEEN {
        return local[k];
    }
    let s = &route[k];
    let next = u32::try_from(subs.len()).unwrap_or(UNSEEN);
    let i = if let Some(map) = by_id {
        *map.entry(s.id).or_insert_with(|| {
            subs.push(Arc::clone(s));
            next
        })
    } else {
        subs.push(Arc::clone(s));
        next
    };
    local[k] = i;
    i
}

impl Targets {
    /// The ids of the subscriptions that receive any event of the batch.
    pub(super) fn ids(&self) -> std::collections::HashSet<u64> {
        self.subs.iter().map(|s| s.id).collect()
    }

    fn of(&self, i: usize) -> &[u32] {
        &self.idx[self.ends[i]..self.ends[i + 1]]
    }

    /// How many of `events` each subscription receives.
    fn need(&self, events: std::ops::Range<usize>) -> Vec<usize> {
        let mut need = vec![0usize; self.subs.len()];
        for &k in &self.idx[self.ends[events.start]..self.ends[events.end]] {
            need[k as usize] += 1;
        }
        need
    }
}

fn backpressure(s: &Subscription, pending: usize) -> Error {
    Error::Backpressure {
        subscription: s.name.clone(),
        pending,
        accepted: 0,
    }
}

/// Is there room for `n` more in this queue under its policy? Durable queues count
/// the consumer's backlog on disk instead of the in-memory window.
fn room(st: &SubState, n: usize) -> bool {
    match &st.durable {
        Some(d) => d
            .max_backlog
            .is_none_or(|max| d.owed.saturating_add(n as u64) <= max),
        None => st.occupied().saturating_add(n) <= st.queue.config().max_pending,
    }
}

fn pending(st: &SubState) -> usize {
    match &st.durable {
        Some(d) => usize::try_from(d.owed).unwrap_or(usize::MAX),
        None => st.occupied(),
    }
}

/// The stored attributes of every event of a batch (see [`stored`]), in one buffer;
/// empty on a router without a log.
#[derive(Default)]
pub(super) struct StoredAttrs {
    buf: Vec<u8>,
    offs: Vec<usize>,
}

impl StoredAttrs {
    /// `subjects`: seal each subject with this key ring instead of storing its text.
    fn of(events: &[Event], subjects: Option<&KeyRing>) -> Result<Self> {
        let sealed = subjects
            .map(|keys| stored::seal_subjects(keys, events))
            .transpose()?;
        let mut buf = Vec::with_capacity(events.len() * 64);
        let mut offs = Vec::with_capacity(events.len() + 1);
        offs.push(0);
        // The events of a publish share one time: is it the stamped text? Asked once.
        let mut time: Option<(&Arc<str>, bool)> = None;
        for (i, e) in events.iter().enumerate() {
            let stamped = match time {
                Some((t, stamped)) if Arc::ptr_eq(t, &e.time) => stamped,
                _ => {
                    let stamped = stored::time_is_stamped(e);
                    time = Some((&e.time, stamped));
                    stamped
                }
            };
            let subject = sealed
                .as_ref()
                .map(|(frames, fo)| &frames[fo[i]..fo[i + 1]])
                .filter(|f| !f.is_empty());
            stored::write_attributes_with(e, stamped, subject, &mut buf)?;
            offs.push(buf.len());
        }
        Ok(StoredAttrs { buf, offs })
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.buf[self.offs[i]..self.offs[i + 1]]
    }
}

impl Router {
    /// Which subscriptions each event goes to (indices into the returned list, which
    /// holds only the subscriptions that receive at least one event: a publish does
    /// no work for the others, however many there are).
    pub(super) fn targets(&self, events: &[Event]) -> Result<Targets> {
        let mut t = Targets {
            subs: Vec::new(),
            idx: Vec::with_capacity(events.len() * 2),
            ends: Vec::with_capacity(events.len() + 1),
            generation: u64::MAX,
        };
        t.ends.push(0);
        // Where each subscription sits in `t.subs`, by id: only needed, and only built,
        // once a second event type shows up (a publish has one type).
        let mut by_id: Option<HashMap<u64, u32>> = None;
        let mut matched: Vec<u32> = Vec::new();
        // The current event type's route, and where each of its subscriptions sits in
        // `t.subs` (`UNSEEN` until it first receives an event of the batch).
        let mut route: Option<(&str, Arc<TypeRoute>, Vec<u32>)> = None;
        // One scratch buffer for the CloudEvents JSON the matcher reads.
        let mut json = Vec::new();
        for e in events {
            if route
                .as_ref()
                .is_none_or(|(ty, _, _)| *ty != &*e.event_type)
            {
                let r = self.route_for(&e.event_type)?;
                if route.is_some() && by_id.is_none() {
                    by_id = Some((0u32..).zip(&t.subs).map(|(i, s)| (s.id, i)).collect());
                }
                t.generation = t.generation.min(r.generation);
                let local = vec![UNSEEN; r.subs.len()];
                route = Some((&e.event_type, r, local));
            }
            let Some((_, r, local)) = &mut route else {
                continue; // unreachable: set just above
            };
            for k in 0..r.unpatterned {
                let i = slot(&mut t.subs, by_id.as_mut(), local, &r.subs, k);
                t.idx.push(i);
            }
            if !r.patterned.is_empty() {
                matched.clear();
                let readable = e.data_kind == DataKind::Json && !e.sealed;
                // Trusted: the router wrote the attributes, and `prepare` checked the
                // data (schema, or JSON + UTF-8 when schemaless), so unreferenced
                // values are skipped without being validated again.
                match &r.data_only {
                    // Only an object is seen from inside as the envelope sees it.
                    Some(inside) if readable && starts_object(&e.data) => {
                        inside.matches_json_trusted(&e.data, &mut matched)?;
                    }
                    _ => {
                        json.clear();
                        e.write_attributes_json(&mut json);
                        e.finish_json(readable, &mut json);
                        r.patterned.matches_json_trusted(&json, &mut matched)?;
                    }
                }
                matched.sort_unstable();
                for &m in &matched {
                    if (m as usize) < r.subs.len() {
                        let i = slot(&mut t.subs, by_id.as_mut(), local, &r.subs, m as usize);
                        t.idx.push(i);
                    }
                }
            }
            t.ends.push(t.idx.len());
        }
        Ok(t)
    }

    /// Route a prepared batch into the queues under each queue's backpressure policy.
    /// `block_timeout` bounds how long a `block` queue may make the caller wait (None:
    /// forever). Call with the GIL released.
    pub fn enqueue(
        &self,
        events: Vec<Event>,
        block_timeout: Option<Duration>,
    ) -> std::result::Result<Vec<Receipt>, Box<Refused>> {
        self.enqueue_interruptible(events, block_timeout, None)
    }

    /// `enqueue`, where a wait for room on a `block` queue asks `interrupt` at least
    /// every [`INTERRUPT_SLICE`], with no lock held, and gives up with
    /// [`Error::Interrupted`] when it answers true (the binding runs Python's signal
    /// handlers there, so Ctrl-C ends a blocked publish). Events of earlier chunks
    /// stay accepted, as with a block timeout; their receipts come with the refusal.
    pub fn enqueue_interruptible(
        &self,
        events: Vec<Event>,
        block_timeout: Option<Duration>,
        interrupt: Option<Interrupt<'_>>,
    ) -> std::result::Result<Vec<Receipt>, Box<Refused>> {
        let refused = |error: Error, receipts: Vec<Receipt>| Box::new(Refused { error, receipts });
        if let Err(e) = self.process.check("the router") {
            return Err(refused(e, Vec::new()));
        }
        let _counted = Enqueuing::enter(&self.enqueuing);
        let attrs = match &self.log {
            Some(_) => {
                let subjects = self.keys.as_deref().filter(|_| self.seal_subject);
                StoredAttrs::of(&events, subjects)
            }
            None => Ok(StoredAttrs::default()),
        };
        let attrs = match attrs {
            Ok(a) => a,
            Err(e) => return Err(refused(e, Vec::new())),
        };
        let targets = match self.targets(&events) {
            Ok(t) => t,
            Err(e) => return Err(refused(e, Vec::new())),
        };
        // A timeout too large for an `Instant` is no deadline at all.
        let deadline = block_timeout.and_then(|t| Instant::now().checked_add(t));
        // A batch larger than a blocking queue can ever hold goes one event at a time.
        let need = targets.need(0..events.len());
        let too_big = targets.subs.iter().zip(&need).any(|(s, &n)| {
            !s.is_durable()
                && s.lock().is_ok_and(|st| {
                    st.durable.is_none()
                        && st.queue.config().on_full == OnFull::Block
                        && n > st.queue.config().max_pending
                })
        });
        let n = events.len();
        // (start, len) of each chunk.
        let chunks: Vec<(usize, usize)> = if too_big {
            (0..n).map(|i| (i, 1)).collect()
        } else {
            vec![(0, n)]
        };
        let mut events = events;
        let mut receipts = Vec::with_capacity(n);
        for (start, len) in chunks {
            let chunk: Vec<Event> = events.drain(..len).collect();
            match self.enqueue_chunk(&targets, chunk, (&attrs, start), (deadline, interrupt)) {
                Ok(items) => {
                    for (j, item) in items.iter().enumerate() {
                        receipts.push(Receipt {
                            id: item.id.clone(),
                            time: item.time.clone(),
                            schema_version: item.schema_version,
                            routed: targets.of(start + j).len(),
                            offset: item.offset,
                        });
                    }
                }
                Err(e) => {
                    self.counters
                        .refused_backpressure
                        .fetch_add((n - receipts.len()) as u64, Ordering::Relaxed);
                    let e = match e {
                        Error::Backpressure {
                            subscription,
                            pending,
                            ..
                        } => Error::Backpressure {
                            subscription,
                            pending,
                            accepted: receipts.len(),
                        },
                        other => other,
                    };
                    return Err(refused(e, receipts));
                }
            }
        }
        let routed: u64 = receipts.iter().map(|r| r.routed as u64).sum();
        self.counters
            .published
            .fetch_add(receipts.len() as u64, Ordering::Relaxed);
        self.counters.routed.fetch_add(routed, Ordering::Relaxed);
        let unrouted = receipts.iter().filter(|r| r.routed == 0).count();
        self.counters
            .unrouted
            .fetch_add(unrouted as u64, Ordering::Relaxed);
        Ok(receipts)
    }

    /// Wait until every blocking queue has room for its share (without the enqueue lock).
    fn wait_for_room(
        &self,
        subs: &[Arc<Subscription>],
        need: &[usize],
        (deadline, interrupt): (Option<Instant>, Option<Interrupt<'_>>),
    ) -> Result<()> {
        for (s, &n) in subs.iter().zip(need) {
            if n == 0 || s.is_unbounded() || s.is_closed() {
                continue;
            }
            let mut st = s.lock()?;
            if st.queue.config().on_full != OnFull::Block {
                continue;
            }
            loop {
                let now = self.clock.now();
                if st.durable.is_none() {
                    let before = st.queue.len();
                    st.queue.expire(now);
                    if st.queue.len() < before {
                        s.has_room.notify_all();
                    }
                }
                if room(&st, n) || s.is_closed() {
                    break;
                }
                let wait = match deadline {
                    Some(d) => match d.checked_duration_since(Instant::now()) {
                        Some(w) if !w.is_zero() && !self.clock.is_manual() => w,
                        _ => return Err(backpressure(s, pending(&st))),
                    },
                    None if self.clock.is_manual() => return Err(backpressure(s, pending(&st))),
                    None => Duration::from_hours(1),
                };
                // Also wake at the next ack deadline: expiry may dead-letter and free room.
                let wait = match st.queue.next_deadline() {
                    Some(d) => wait.min(Duration::from_nanos(d.saturating_sub(now).max(1_000))),
                    None => wait,
                };
                let Some(interrupt) = interrupt else {
                    st = s
                        .has_room
                        .wait_timeout(st, wait)
                        .map_err(|_| poisoned("queue"))?
                        .0;
                    continue;
                };
                let (held, woken) = s
                    .has_room
                    .wait_timeout(st, wait.min(INTERRUPT_SLICE))
                    .map_err(|_| poisoned("queue"))?;
                st = held;
                if woken.timed_out() && wait > INTERRUPT_SLICE {
                    // Never call out with the queue locked: the caller's code may
                    // publish to this very queue.
                    drop(st);
                    if interrupt() {
                        return Err(Error::Interrupted {
                            during: "a publish waiting for room",
                        });
                    }
                    st = s.lock()?;
                }
            }
        }
        Ok(())
    }

    /// Reserve room in every target queue, atomically with respect to other producers.
    /// Returns None when a blocking queue filled up meanwhile (wait and try again).
    fn reserve<'a>(
        &self,
        subs: &'a [Arc<Subscription>],
        need: &[usize],
    ) -> Result<Option<Reservation<'a>>> {
        let _guard = self.enqueue.lock().map_err(|_| poisoned("router"))?;
        let mut guards = Vec::with_capacity(subs.len());
        for (s, &n) in subs.iter().zip(need) {
            // An unbounded durable backlog always has room: it is counted as its
            // events are handed over (`push`), under the one lock that takes.
            if n == 0 || s.is_unbounded() || s.is_closed() {
                guards.push(None);
                continue;
            }
            let mut st = s.lock()?;
            if st.durable.is_none() {
                st.queue.expire(self.clock.now());
            }
            if !room(&st, n) {
                match st.queue.config().on_full {
                    OnFull::Reject => return Err(backpressure(s, pending(&st))),
                    OnFull::Block => return Ok(None),
                    OnFull::DropOldest => {}
                }
            }
            guards.push(Some(st));
        }
        let mut held = vec![Held::Nothing; subs.len()];
        for ((g, &n), h) in guards.iter_mut().zip(need).zip(&mut held) {
            if let Some(st) = g {
                let drop_oldest = st.queue.config().on_full == OnFull::DropOldest;
                match &mut st.durable {
                    Some(d) => {
                        d.owed += n as u64;
                        *h = Held::Backlog(n as u64);
                    }
                    None if !drop_oldest => {
                        st.reserved += n;
                        *h = Held::Window(n);
                    }
                    None => {}
                }
            }
        }
        Ok(Some(Reservation { subs, held }))
    }

    /// Seal the batch's data with the router's key ring (at rest).
    ///
    /// In memory only, the frames replace the data: the queues hold them sealed. With
    /// a log, the frames are what the log stores and are returned; the events keep
    /// their plaintext, tagged with the key, for the caught-up consumers' windows, so
    /// three consumers cost one seal and no open (delivery still honours a destroyed
    /// key; see [`Event::at_rest_key`]).
    fn seal(&self, events: &mut [Event]) -> Result<Option<Frames>> {
        let Some(keys) = &self.keys else {
            return Ok(None);
        };
        let aads: Vec<AadFields<'_>> = events.iter().map(aad_of).collect();
        let payloads: Vec<&[u8]> = events.iter().map(|e| e.data.as_slice()).collect();
        // Another publish in flight means the cores are busy: threads would only add
        // their start-up (measured: durable, 4 producers, 468k -> 518k ev/s serial).
        let (frames, foffs) = if self.enqueuing.load(Ordering::Relaxed) > 1 {
            aead::serially(|| keys.seal_each(&aads, &payloads))?
        } else {
            keys.seal_each(&aads, &payloads)?
        };
        drop((aads, payloads));
        if self.log.is_none() {
            for (i, e) in events.iter_mut().enumerate() {
                e.data = frames[foffs[i]..foffs[i + 1]].to_vec();
                e.sealed = true;
            }
            return Ok(None);
        }
        // One batch is sealed under one key; read its id back from the first frame.
        let key: Option<Arc<str>> = match foffs.get(..2) {
            Some(&[a, b]) => Some(Arc::from(frame::decode(&frames[a..b])?.key_id)),
            _ => None,
        };
        for e in events.iter_mut() {
            e.at_rest_key.clone_from(&key);
        }
        Ok(Some(Frames {
            buf: frames,
            offs: foffs,
        }))
    }

    /// Route `events`, which are events `start..` of the batch `targets` describes.
    fn enqueue_chunk(
        &self,
        targets: &Targets,
        mut events: Vec<Event>,
        attrs: (&StoredAttrs, usize),
        deadline: (Option<Instant>, Option<Interrupt<'_>>),
    ) -> Result<Vec<Item>> {
        let start = attrs.1;
        let subs = &targets.subs[..];
        let need = targets.need(start..start + events.len());
        // Whatever fails from here on (sealing, the log, a queue) gives back the room
        // not yet filled when the reservation is dropped.
        let mut reservation = loop {
            self.wait_for_room(subs, &need, deadline)?;
            if let Some(r) = self.reserve(subs, &need)? {
                break r;
            }
        };
        // Held until the events are in the windows, so no consumer reads them back
        // from disk in between (see `inflight`).
        let ticket = self
            .log
            .as_ref()
            .map(|log| self.inflight.enter(log.next_offset()));
        #[cfg(test)]
        super::tests::before_append(self);
        let frames = self.seal(&mut events)?;
        self.append(&mut events, attrs, frames.as_ref())?;
        if self.log.is_some() {
            // Stored: durable consumers are owed these events whether or not they
            // reach their windows (what does not is read back from the log).
            reservation.commit_backlogs();
        }
        let items: Vec<Item> = events.into_iter().map(Arc::new).collect();
        let range = items
            .first()
            .and_then(|i| i.offset)
            .map(|first| first..first + items.len() as u64);
        // Every append below `floor` but this one has finished its push.
        let floor = match (&self.log, &ticket, &range) {
            (Some(log), Some(t), Some(r)) => {
                self.inflight.stored(t, r.start);
                self.inflight.horizon_besides(t, log.next_offset())
            }
            _ => 0,
        };
        let (pushed, held) = self.push(targets, start, &need, &items, floor, &mut reservation)?;
        let mut woken = Vec::new();
        if let (Some(range), Some(t)) = (&range, &ticket) {
            if self
                .inflight
                .routed_before_change(t, targets.generation, &self.generation)
            {
                woken.extend(self.not_asked(targets, range.clone(), floor)?);
            }
        }
        // Wake after the ticket is gone: a consumer held back by it can now read on.
        drop(ticket);
        if range.is_some() {
            woken.extend(self.release_waiting()?);
        }
        let mut spinner = false;
        for s in pushed
            .into_iter()
            .map(|k| &targets.subs[k])
            .chain(woken.iter())
        {
            spinner |= s.has_spinner();
            s.notify_events();
        }
        if !held.is_empty() {
            // Pairs with the fence of a consumer between counting itself as a sleeper
            // or watcher and its last look at the held batches (`Tail::shares_for`).
            std::sync::atomic::fence(Ordering::SeqCst);
        }
        for s in held.into_iter().map(|k| &targets.subs[k]) {
            spinner |= s.has_spinner();
            s.notify_held_news()?;
        }
        if spinner {
            head_start();
        }
        Ok(items)
    }

    /// Append to the durable log; returns once durable per the fsync policy.
    /// `attrs`: the batch's stored attributes and the index of `events[0]` in it;
    /// `frames`: the at-rest frames to store in place of the data, if sealed.
    fn append(
        &self,
        events: &mut [Event],
        (attrs, start): (&StoredAttrs, usize),
        frames: Option<&Frames>,
    ) -> Result<()> {
        let Some(log) = &self.log else { return Ok(()) };
        let data = |i: usize| match frames {
            Some(f) => (true, &f.buf[f.offs[i]..f.offs[i + 1]]),
            None => (events[i].sealed, events[i].data.as_slice()),
        };
        // Each record is gathered from its parts by the log: no buffer per event.
        let heads: Vec<[u8; stored::HEADER_LEN]> = (0..events.len())
            .map(|i| {
                let len = attrs.get(start + i).len();
                stored::header(&events[i], data(i).0, self.seal_subject, len)
            })
            .collect();
        let parts: Vec<[&[u8]; 3]> = heads
            .iter()
            .enumerate()
            .map(|(i, h)| [&h[..], attrs.get(start + i), data(i).1])
            .collect();
        let ts = events.first().map_or(0, |e| e.time_ns);
        let offsets = log.append_batch_parts(&parts, ts)?;
        drop(parts);
        for (e, o) in events.iter_mut().zip(offsets) {
            e.offset = Some(o);
        }
        Ok(())
    }

    /// Hand `items` (events `start..` of the batch `targets` describes) to their queues.
    /// Returns the subscriptions to wake, by index in `targets`: those that received
    /// events, then those whose share waits in the held batch (see `tail`). Durable
    /// ones that wanted none of these are not touched (see `follow`).
    fn push(
        &self,
        targets: &Targets,
        start: usize,
        need: &[usize],
        items: &[Item],
        floor: u64,
        reservation: &mut Reservation<'_>,
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        let subs = &targets.subs[..];
        let range = items
            .first()
            .and_then(|i| i.offset)
            .map(|first| first..first + items.len() as u64);
        let mut woken = Vec::new();
        let mut held = Vec::new();
        let mut waiting = Vec::new();
        // Each subscription's share, in one buffer: subscription `k`'s is
        // `flat[at[k]..at[k + 1]]`, in batch order (one allocation for thousands).
        let mut at = Vec::with_capacity(need.len() + 1);
        at.push(0usize);
        for &n in need {
            at.push(at[at.len() - 1] + n);
        }
        let mut fill = at.clone();
        // Every place is written below (`need` counts exactly these events' targets).
        let mut flat: Vec<u32> = vec![0; at[need.len()]];
        for j in 0..items.len() {
            for &i in targets.of(start + j) {
                flat[fill[i as usize]] = u32::try_from(j).unwrap_or(u32::MAX);
                fill[i as usize] += 1;
            }
        }
        // Durable subscriptions that nothing bounds take their shares from the held
        // batch when next touched (see `tail`): not visited here, only rung.
        let mut shares: Vec<(u64, &[u32])> = Vec::new();
        for (k, (s, &n)) in subs.iter().zip(need).enumerate() {
            if n == 0 {
                continue;
            }
            let picks = &flat[at[k]..at[k + 1]];
            if let (Some(_), true, Some(_)) = (&self.tail, s.is_unbounded(), &range) {
                s.add_matched(n as u64);
                shares.push((s.id, picks));
                held.push(k);
                continue;
            }
            let mine: Vec<&Item> = picks.iter().map(|&j| &items[j as usize]).collect();
            let mut st = s.lock()?;
            if let Some(d) = st.durable.as_mut() {
                if s.is_unbounded() {
                    // Not reserved (see `reserve`): owed from now on, being stored.
                    d.owed += n as u64;
                }
                if let Some(range) = &range {
                    let pushed = follow::push_durable(&mut st, &mine, range.clone(), floor);
                    if pushed.wait {
                        waiting.push(Arc::clone(s));
                    }
                }
            } else {
                for &item in &mine {
                    st.queue.push(Arc::clone(item));
                }
            }
            // The promised room is now filled by the events themselves.
            reservation.commit(k, &mut st);
            drop(st);
            woken.push(k);
        }
        if let (Some(tail), Some(range), false) = (&self.tail, &range, shares.is_empty()) {
            if tail.insert(Batch::new(
                range.clone(),
                items.to_vec(),
                shares.into_iter(),
            ))? {
                self.make_tail_room(tail)?;
            }
        }
        self.wait_for_earlier(waiting)?;
        Ok((woken, held))
    }
}

/// What a [`Reservation`] holds in one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Nothing,
    /// Places in an in-memory queue (`SubState::reserved`).
    Window(usize),
    /// Events counted against a durable consumer's backlog (`Durable::owed`).
    Backlog(u64),
}

/// Room reserved in the target queues of one publish, as tokio's `Permit` holds a
/// bounded channel's capacity: queue by queue it is committed as the events land,
/// and whatever is still held when it is dropped (an error or a panic on the way:
/// sealing, the log, a queue's lock) goes back to its queue, and the producers
/// waiting there are woken.
#[must_use]
struct Reservation<'a> {
    subs: &'a [Arc<Subscription>],
    held: Vec<Held>,
}

impl Reservation<'_> {
    /// Queue `k` received its events (its state locked by the caller): the room is
    /// theirs now.
    fn commit(&mut self, k: usize, st: &mut SubState) {
        if let Held::Window(n) = self.held[k] {
            st.reserved = st.reserved.saturating_sub(n);
        }
        self.held[k] = Held::Nothing;
    }

    /// The events are in the log: durable consumers are owed them from now on.
    fn commit_backlogs(&mut self) {
        for h in &mut self.held {
            if matches!(h, Held::Backlog(_)) {
                *h = Held::Nothing;
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        for (s, h) in self.subs.iter().zip(&self.held) {
            if *h == Held::Nothing {
                continue;
            }
            // A poisoned lock still gets its room back: the counts are plain numbers,
            // and a queue that can never again admit a producer is worse.
            let mut st = s
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match (*h, &mut st.durable) {
                (Held::Backlog(n), Some(d)) => d.owed = d.owed.saturating_sub(n),
                (Held::Window(n), _) => st.reserved = st.reserved.saturating_sub(n),
                _ => {}
            }
            drop(st);
            s.has_room.notify_all();
        }
    }
}

/// Is this JSON text an object (its first non-blank byte `{`)?
fn starts_object(json: &[u8]) -> bool {
    json.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&b| b == b'{')
}

/// Counts a publish in its queue step.
struct Enqueuing<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Enqueuing<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Enqueuing(count)
    }
}

impl Drop for Enqueuing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a publish that woke a busy-polling consumer waits before it returns.
///
/// The consumer, once it holds the events, must take the GIL back to run its Python
/// code. The producer returns to Python at the same moment; if it gets there first,
/// the consumer sleeps on the GIL until the producer next releases it, and then waits
/// for the OS to wake it: 20-40 µs on a virtual machine, most of the latency left.
/// A few µs of head start lets the consumer, which was spinning and is already
/// running, take the GIL first; the producer then waits for it instead, off the
/// delivery path. Only a publish that woke a spinning consumer pays this. Measured
/// (`sealbus bench --scenario latency`, selector spinning, 10k events/s): p99 98 µs
/// without, 25-33 µs with 3 µs; 1.5 µs was too short (53 µs), 6 µs no better.
/// Waiting instead until the woken consumer was back to busy-poll (up to 50 µs, so the
/// producer never slept on the GIL) did not lower the p99 and cost CPU.
const HEAD_START: Duration = Duration::from_micros(3);

fn head_start() {
    let until = Instant::now() + HEAD_START;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// The associated data that binds a seal to its event.
pub(super) fn aad_of(e: &Event) -> AadFields<'_> {
    AadFields {
        event_id: &e.id,
        event_type: &e.event_type,
        source: &e.source,
        schema_version: e.schema_version.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Action;
    use crate::log::{
        CursorStore, FaultyStorage, FileStorage, Log, LogOptions, Storage, StorageFile,
    };
    use crate::route::{Clock, Outgoing, QueueConfig, RouterConfig};

    /// Events of `event_type` whose data are `{"n": value}`, one per value.
    fn prepared(r: &Router, token: &[u8], event_type: &str, values: &[&str]) -> Vec<Event> {
        let items = values
            .iter()
            .map(|v| Outgoing {
                kind: DataKind::Json,
                data: format!(r#"{{"n":"{v}"}}"#).into_bytes(),
                id: None,
                end_to_end: false,
            })
            .collect();
        let attrs = crate::envelope::Attributes::default();
        r.prepare("p", token, event_type, None, &attrs, items)
            .expect("prepare")
    }

    /// A storage that runs `hook` before each write once armed: a test's way to make
    /// something go wrong while a publish holds its reservation.
    #[derive(Debug)]
    struct Hooked {
        inner: Arc<dyn Storage>,
        hook: Arc<Hook>,
    }

    #[derive(Default)]
    struct Hook(std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>);

    impl std::fmt::Debug for Hook {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Hook")
        }
    }

    #[derive(Debug)]
    struct HookedFile {
        inner: Arc<dyn StorageFile>,
        hook: Arc<Hook>,
    }

    impl Storage for Hooked {
        fn path_of(&self, name: &str) -> String {
            self.inner.path_of(name)
        }
        fn list(&self) -> std::io::Result<Vec<String>> {
            self.inner.list()
        }
        fn open(&self, name: &str, create: bool) -> std::io::Result<Arc<dyn StorageFile>> {
            Ok(Arc::new(HookedFile {
                inner: self.inner.open(name, create)?,
                hook: Arc::clone(&self.hook),
            }))
        }
        fn remove(&self, name: &str) -> std::io::Result<()> {
            self.inner.remove(name)
        }
        fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
            self.inner.rename(from, to)
        }
        fn fsync_dir(&self) -> std::io::Result<()> {
            self.inner.fsync_dir()
        }
    }

    impl StorageFile for HookedFile {
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.inner.read_at(pos, buf)
        }
        fn write_at(&self, pos: u64, data: &[u8]) -> std::io::Result<()> {
            let hook = self.hook.0.lock().expect("hook").take();
            if let Some(f) = hook {
                f();
            }
            self.inner.write_at(pos, data)
        }
        fn fsync(&self) -> std::io::Result<()> {
            self.inner.fsync()
        }
        fn truncate(&self, len: u64) -> std::io::Result<()> {
            self.inner.truncate(len)
        }
    }

    /// A schemaless router over `storage`, with principal "p" allowed `t.*` both ways.
    fn durable_router(dir: &std::path::Path, storage: Arc<dyn Storage>) -> (Router, [u8; 32]) {
        let log = Log::open_with_storage(storage, LogOptions::default()).expect("log");
        let cursors = CursorStore::open(&dir.join("cursors")).expect("cursors");
        let r = Router::new(
            RouterConfig {
                allow_schemaless: true,
                log: Some((Arc::new(log), cursors)),
                ..RouterConfig::default()
            },
            Clock::default(),
        );
        let token = r.policy.register("p").expect("register");
        r.allow("p", Action::Publish, "t.*").expect("allow");
        r.allow("p", Action::Subscribe, "t.*").expect("allow");
        (r, token)
    }

    fn queue(on_full: OnFull) -> QueueConfig {
        QueueConfig {
            max_pending: 10,
            on_full,
            ..QueueConfig::default()
        }
    }

    /// (reserved places, durable backlog) of a subscription, even behind a poisoned lock.
    fn room_taken(s: &Subscription) -> (usize, Option<u64>) {
        let st = s
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (st.reserved, st.durable.as_ref().map(|d| d.owed))
    }

    /// The log fails the write of a publish that holds room in every kind of queue:
    /// each gets its room back, and a durable backlog owes nothing for it.
    #[test]
    fn a_log_error_after_the_reservation_gives_every_queue_its_room_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = Arc::new(FileStorage::new(dir.path()).expect("storage"));
        let (faulty, plan) = FaultyStorage::new(files);
        let (r, token) = durable_router(dir.path(), Arc::new(faulty));
        let subs: Vec<_> = [OnFull::Block, OnFull::Reject, OnFull::DropOldest]
            .into_iter()
            .map(|f| {
                let types = vec!["t.a".to_owned()];
                r.subscribe("p", &token, None, types, None, queue(f), None)
                    .expect("subscribe")
            })
            .chain(std::iter::once(
                r.subscribe(
                    "p",
                    &token,
                    Some("d".into()),
                    vec!["t.a".into()],
                    None,
                    queue(OnFull::Block),
                    Some((crate::route::Start::Latest, Some(10))),
                )
                .expect("durable"),
            ))
            .collect();
        r.enqueue(prepared(&r, &token, "t.a", &["1", "2", "3"]), None)
            .expect("publish");
        plan.fail_write_on(1);
        let refused = r
            .enqueue(prepared(&r, &token, "t.a", &["4", "5"]), None)
            .expect_err("the write fails");
        assert!(
            matches!(refused.error, Error::LogIo { .. }),
            "{:?}",
            refused.error
        );
        let left: Vec<_> = subs.iter().map(|s| room_taken(s)).collect();
        assert_eq!(left, [(0, None), (0, None), (0, None), (0, Some(3))]);
    }

    /// A queue's lock is poisoned while the publish is in the log (another thread
    /// panicked holding it): the queue before it got its events, and neither it nor
    /// the queue after it is left with room promised to events that never come.
    #[test]
    fn a_queue_that_fails_after_the_log_leaves_no_room_promised() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hook = Arc::new(Hook::default());
        let files = Arc::new(FileStorage::new(dir.path()).expect("storage"));
        let storage = Hooked {
            inner: files,
            hook: Arc::clone(&hook),
        };
        let (r, token) = durable_router(dir.path(), Arc::new(storage));
        let [a, b, c] = [OnFull::Block, OnFull::Reject, OnFull::Block].map(|f| {
            r.subscribe("p", &token, None, vec!["t.a".into()], None, queue(f), None)
                .expect("subscribe")
        });
        let poisoned = Arc::clone(&b);
        *hook.0.lock().expect("hook") = Some(Box::new(move || {
            let held = std::thread::spawn(move || {
                let _st = poisoned.state.lock();
                panic!("a consumer thread dies holding its queue (planted by the test)");
            });
            assert!(held.join().is_err());
        }));
        let refused = r
            .enqueue(prepared(&r, &token, "t.a", &["1", "2"]), None)
            .expect_err("b's lock is poisoned");
        assert!(
            matches!(refused.error, Error::Closed { .. }),
            "{:?}",
            refused.error
        );
        assert_eq!(a.state.lock().expect("a").queue.len(), 2);
        let left: Vec<_> = [&a, &b, &c].iter().map(|s| room_taken(s)).collect();
        assert_eq!(left, [(0, None), (0, None), (0, None)]);
        // c can still be filled to its bound.
        let rest: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        // b's state cannot be saved any more, but it is gone from the routes.
        assert!(r.unsubscribe(b.id, false).is_err());
        assert!(r.subscriptions().iter().all(|s| s.id != b.id));
        r.enqueue(
            prepared(&r, &token, "t.a", &rest[..8]),
            Some(Duration::ZERO),
        )
        .expect("a has room for 8 more, c for 10");
        assert_eq!(c.state.lock().expect("c").queue.len(), 8);
    }

    /// `enqueue` is public and takes any prepared events: a batch that mixes types
    /// reaches each subscription with exactly its own events, in batch order, and one
    /// subscribed to both types is counted once.
    #[test]
    fn a_batch_of_several_types_reaches_each_subscriber_once_in_order() {
        let r = Router::new(
            RouterConfig {
                allow_schemaless: true,
                ..RouterConfig::default()
            },
            Clock::default(),
        );
        let token = r.policy.register("p").expect("register");
        r.allow("p", Action::Publish, "t.*").expect("allow");
        r.allow("p", Action::Subscribe, "t.*").expect("allow");
        let sub = |types: &[&str]| {
            let types = types.iter().map(|t| (*t).to_owned()).collect();
            r.subscribe("p", &token, None, types, None, QueueConfig::default(), None)
                .expect("subscribe")
        };
        let (only_a, only_b, both) = (sub(&["t.a"]), sub(&["t.b"]), sub(&["t.*"]));
        let mut events = prepared(&r, &token, "t.a", &["a1"]);
        events.extend(prepared(&r, &token, "t.b", &["b1", "b2"]));
        events.extend(prepared(&r, &token, "t.a", &["a2"]));
        let receipts = r.enqueue(events, None).expect("enqueue");
        let routed: Vec<usize> = receipts.iter().map(|x| x.routed).collect();
        assert_eq!(routed, [2, 2, 2, 2]);
        let got = |s: &Subscription| -> Vec<String> {
            let polled = r.poll(s, 100, Some(Duration::ZERO)).expect("poll");
            polled
                .iter()
                .map(|d| String::from_utf8_lossy(&d.item.data).into_owned())
                .collect()
        };
        let n =
            |v: &[&str]| -> Vec<String> { v.iter().map(|s| format!(r#"{{"n":"{s}"}}"#)).collect() };
        assert_eq!(got(&only_a), n(&["a1", "a2"]));
        assert_eq!(got(&only_b), n(&["b1", "b2"]));
        assert_eq!(got(&both), n(&["a1", "b1", "b2", "a2"]));
    }

    fn router_with_full_queue() -> (Router, Vec<u8>, Arc<Subscription>) {
        let r = Router::new(
            RouterConfig {
                allow_schemaless: true,
                ..RouterConfig::default()
            },
            Clock::default(),
        );
        let token = r.policy.register("p").expect("register");
        r.allow("p", Action::Publish, "t").expect("allow");
        r.allow("p", Action::Subscribe, "t").expect("allow");
        let cfg = QueueConfig {
            max_pending: 1,
            on_full: OnFull::Block,
            ..QueueConfig::default()
        };
        let sub = r
            .subscribe("p", &token, None, vec!["t".into()], None, cfg, None)
            .expect("subscribe");
        r.enqueue(prepared(&r, &token, "t", &["first"]), None)
            .expect("room for one");
        (r, token.to_vec(), sub)
    }

    /// A publish blocked on a full `block` queue asks its interrupt hook while it
    /// waits, and gives up with `Interrupted` when the hook says so; the queue keeps
    /// only what was accepted before.
    #[test]
    fn a_blocked_publish_gives_up_when_interrupted() {
        let (r, token, sub) = router_with_full_queue();
        let asked = std::sync::atomic::AtomicU32::new(0);
        let hook = || asked.fetch_add(1, Ordering::SeqCst) >= 2;
        let refused = r
            .enqueue_interruptible(prepared(&r, &token, "t", &["second"]), None, Some(&hook))
            .expect_err("interrupted");
        assert!(
            matches!(refused.error, Error::Interrupted { .. }),
            "{:?}",
            refused.error
        );
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        assert_eq!(
            r.poll(&sub, 10, Some(Duration::ZERO)).expect("poll").len(),
            1
        );
    }

    /// A block timeout too large for an `Instant` means no deadline (it used to
    /// overflow and panic); with a hook that stops at once, the call returns.
    #[test]
    fn a_huge_block_timeout_does_not_overflow() {
        let (r, token, _sub) = router_with_full_queue();
        let stop = || true;
        let refused = r
            .enqueue_interruptible(
                prepared(&r, &token, "t", &["second"]),
                Some(Duration::MAX),
                Some(&stop),
            )
            .expect_err("interrupted");
        assert!(matches!(refused.error, Error::Interrupted { .. }));
    }
}
