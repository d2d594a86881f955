//! One subscription's bounded queue: ready events, in-flight deliveries awaiting an
//! ack, and a dead-letter queue. Pure state, no locking and no clock of its own: the
//! caller passes `now` (nanoseconds, monotonic), which makes the state machine easy
//! to test against a model.
//!
//! Capacity counts ready + in-flight events, so memory is bounded by `max_pending`
//! whatever the consumer does. Delivery is at-least-once: an event leaves the queue
//! only when acked, or when it is dead-lettered after `max_deliveries` attempts.

use std::collections::VecDeque;

use crate::seqmap::SeqMap;

/// What to do when a queue is full (tokio's bounded channel: `send` waits,
/// `try_send` gives the value back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// The producer waits (GIL released) until there is room, or a timeout.
    Block,
    /// The publish fails with `Backpressure` and the events are handed back.
    Reject,
    /// The oldest ready event is dropped (counted) to make room.
    DropOldest,
}

impl std::str::FromStr for OnFull {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "block" => Ok(OnFull::Block),
            "reject" => Ok(OnFull::Reject),
            "drop_oldest" => Ok(OnFull::DropOldest),
            other => Err(crate::Error::InvalidArgument {
                name: "on_full".into(),
                reason: format!("{other:?} is not one of block, reject, drop_oldest"),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    pub max_pending: usize,
    pub on_full: OnFull,
    pub ack_timeout_ns: u64,
    pub max_deliveries: u32,
    pub dlq_capacity: usize,
    /// How long a consumer's poll spins (yielding the CPU between looks) before it
    /// sleeps on the condition variable: wake-up latency bought with CPU, like
    /// Linux's `SO_BUSY_POLL`. Zero: sleep at once.
    pub busy_poll_ns: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_pending: 10_000,
            on_full: OnFull::Block,
            ack_timeout_ns: 30_000_000_000,
            max_deliveries: 5,
            dlq_capacity: 10_000,
            busy_poll_ns: 0,
        }
    }
}

/// Counters, monotonic over the queue's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub enqueued: u64,
    pub delivered: u64,
    pub redelivered: u64,
    pub acked: u64,
    pub nacked: u64,
    pub expired: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
    pub dead_dropped: u64,
}

/// One delivery handed to a consumer; `tag` is what it acks.
#[derive(Debug, Clone)]
pub struct Delivery<T> {
    pub tag: u64,
    pub attempt: u32,
    pub item: T,
}

/// An event that exhausted its deliveries.
#[derive(Debug, Clone)]
pub struct DeadLetter<T> {
    pub item: T,
    pub attempts: u32,
    pub reason: &'static str,
}

#[derive(Debug)]
struct Entry<T> {
    item: T,
    attempts: u32,
    /// Its place in the queue, from when it was queued (see [`Queue::retry_all`]).
    seq: u64,
}

#[derive(Debug)]
struct InFlight<T> {
    entry: Entry<T>,
    deadline: u64,
}

#[derive(Debug)]
pub struct Queue<T> {
    cfg: QueueConfig,
    ready: VecDeque<Entry<T>>,
    // Tags grow with delivery time and the timeout is fixed, so tag order is deadline
    // order: expiry pops from the front. Tags are handed out in increasing order and
    // mostly acked in order: a SeqMap, not a node allocated per delivery.
    inflight: SeqMap<InFlight<T>>,
    dead: VecDeque<DeadLetter<T>>,
    next_tag: u64,
    next_seq: u64,
    stats: QueueStats,
}

impl<T: Clone> Queue<T> {
    pub fn new(cfg: QueueConfig) -> Self {
        Queue {
            cfg,
            ready: VecDeque::new(),
            inflight: SeqMap::default(),
            dead: VecDeque::new(),
            next_tag: 1,
            next_seq: 0,
            stats: QueueStats::default(),
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.cfg
    }

    /// Ready + in-flight.
    pub fn len(&self) -> usize {
        self.ready.len() + self.inflight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// Room for `n` more without dropping anything?
    pub fn has_room(&self, n: usize) -> bool {
        self.len().saturating_add(n) <= self.cfg.max_pending
    }

    /// Append, applying `drop_oldest` if full. Returns false if the item could not be
    /// placed (full and nothing droppable); callers check room first for block/reject.
    pub fn push(&mut self, item: T) -> bool {
        self.push_attempted(item, 0)
    }

    /// Append an item that was already delivered `attempts` times (a durable
    /// consumer's history, restored after a restart).
    pub fn push_attempted(&mut self, item: T, attempts: u32) -> bool {
        if !self.has_room(1) {
            if self.cfg.on_full == OnFull::DropOldest && self.ready.pop_front().is_some() {
                self.stats.dropped += 1;
            } else if self.cfg.on_full == OnFull::DropOldest {
                // Everything is in flight with a consumer: the newcomer is the one dropped.
                self.stats.dropped += 1;
                return false;
            } else {
                return false;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ready.push_back(Entry {
            item,
            attempts,
            seq,
        });
        self.stats.enqueued += 1;
        true
    }

    fn bury(&mut self, entry: Entry<T>, reason: &'static str) {
        if self.dead.len() >= self.cfg.dlq_capacity {
            self.dead.pop_front();
            self.stats.dead_dropped += 1;
        }
        self.stats.dead_lettered += 1;
        self.dead.push_back(DeadLetter {
            item: entry.item,
            attempts: entry.attempts,
            reason,
        });
    }

    /// Return entries for another try, or dead-letter those whose tries are spent,
    /// in queue order. They go back to where they were queued: the ready entries
    /// are always in queue order (a fresh entry was queued after every entry that
    /// was ever delivered before it), so the returned ones are merged in by their
    /// place, and messages nacked or expired, one by one or many at once, in any
    /// order, come back in the order they were queued, ahead of everything queued
    /// after them. Only the ready entries older than the newest returned are
    /// touched.
    fn retry_all(&mut self, mut entries: Vec<Entry<T>>, reason: &'static str) {
        entries.sort_unstable_by_key(|e| e.seq);
        let mut back = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.attempts >= self.cfg.max_deliveries {
                self.bury(entry, reason);
            } else {
                back.push(entry);
            }
        }
        let Some(newest) = back.last().map(|e| e.seq) else {
            return;
        };
        let older = self.ready.partition_point(|e| e.seq < newest);
        let mut merged: Vec<Entry<T>> = self.ready.drain(..older).chain(back).collect();
        // Two runs already in order: the stable sort finds them and merges in one pass.
        merged.sort_by_key(|e| e.seq);
        for entry in merged.into_iter().rev() {
            self.ready.push_front(entry);
        }
    }

    /// Move deliveries whose ack deadline has passed back to ready (or the DLQ).
    /// Returns how many expired.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut expired = Vec::new();
        while self
            .inflight
            .first()
            .is_some_and(|(_, f)| f.deadline <= now)
        {
            if let Some((_, f)) = self.inflight.pop_first() {
                expired.push(f.entry);
            }
        }
        let n = expired.len();
        self.stats.expired += n as u64;
        self.retry_all(expired, "ack timeout");
        n
    }

    /// The first `max` ready events, left where they are (what `take` would hand out
    /// next, unless deadlines pass or events are refused in between).
    pub fn peek_ready(&self, max: usize) -> impl Iterator<Item = &T> {
        self.ready.iter().take(max).map(|e| &e.item)
    }

    /// Hand out up to `max` ready events.
    pub fn take(&mut self, max: usize, now: u64) -> Vec<Delivery<T>> {
        self.expire(now);
        let n = max.min(self.ready.len());
        let mut out = Vec::with_capacity(n);
        let deadline = now.saturating_add(self.cfg.ack_timeout_ns);
        for mut entry in self.ready.drain(..n) {
            entry.attempts += 1;
            if entry.attempts > 1 {
                self.stats.redelivered += 1;
            }
            self.stats.delivered += 1;
            let tag = self.next_tag;
            self.next_tag += 1;
            out.push(Delivery {
                tag,
                attempt: entry.attempts,
                item: entry.item.clone(),
            });
            self.inflight.insert(tag, InFlight { entry, deadline });
        }
        out
    }

    /// Acknowledge a delivery. False if the tag is unknown (already acked, or it
    /// expired and was handed out again under a new tag).
    pub fn ack(&mut self, tag: u64) -> Option<T> {
        let f = self.inflight.remove(tag)?;
        self.stats.acked += 1;
        Some(f.entry.item)
    }

    /// Refuse a delivery: it goes back to the front for redelivery, or to the DLQ.
    pub fn nack(&mut self, tag: u64) -> bool {
        self.nack_all(&[tag]) == 1
    }

    /// Refuse many deliveries at once (in any order): they go back to the front in
    /// the order they were delivered, as expired ones do. Returns how many were
    /// outstanding.
    pub fn nack_all(&mut self, tags: &[u64]) -> usize {
        let mut tags = tags.to_vec();
        tags.sort_unstable();
        tags.dedup();
        let entries: Vec<Entry<T>> = tags
            .into_iter()
            .filter_map(|t| self.inflight.remove(t))
            .map(|f| f.entry)
            .collect();
        let n = entries.len();
        self.stats.nacked += n as u64;
        self.retry_all(entries, "nacked");
        n
    }

    pub fn dead_letters(&self) -> impl Iterator<Item = &DeadLetter<T>> {
        self.dead.iter()
    }

    /// Remove and return up to `max` dead letters.
    pub fn drain_dead(&mut self, max: usize) -> Vec<DeadLetter<T>> {
        let n = max.min(self.dead.len());
        self.dead.drain(..n).collect()
    }

    /// Put an item straight into the dead-letter queue (restored after a restart).
    pub fn push_dead(&mut self, item: T, attempts: u32, reason: &'static str) {
        self.bury(
            Entry {
                item,
                attempts,
                seq: 0,
            },
            reason,
        );
        self.stats.dead_lettered -= 1;
    }

    /// The most recent `n` dead letters (to mirror newly buried items elsewhere).
    pub fn newest_dead(&self, n: usize) -> impl Iterator<Item = &DeadLetter<T>> {
        self.dead.iter().skip(self.dead.len().saturating_sub(n))
    }

    pub fn dead_len(&self) -> usize {
        self.dead.len()
    }

    /// The earliest ack deadline, if anything is in flight.
    pub fn next_deadline(&self) -> Option<u64> {
        self.inflight.first().map(|(_, f)| f.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(max: usize, on_full: OnFull) -> Queue<u32> {
        Queue::new(QueueConfig {
            max_pending: max,
            on_full,
            ack_timeout_ns: 100,
            max_deliveries: 3,
            dlq_capacity: 2,
            busy_poll_ns: 0,
        })
    }

    #[test]
    fn ack_removes_and_bounds_hold() {
        let mut q = q(2, OnFull::Reject);
        assert!(q.push(1) && q.push(2));
        assert!(!q.push(3), "reject: full");
        let d = q.take(10, 0);
        assert_eq!(d.len(), 2);
        assert!(!q.has_room(1), "in-flight counts toward capacity");
        assert!(q.ack(d[0].tag).is_some());
        assert!(q.ack(d[0].tag).is_none(), "double ack");
        assert!(q.has_room(1));
    }

    #[test]
    fn drop_oldest_counts() {
        let mut q = q(2, OnFull::DropOldest);
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.stats().dropped, 3);
        let items: Vec<u32> = q.take(10, 0).into_iter().map(|d| d.item).collect();
        assert_eq!(items, vec![3, 4]);
    }

    #[test]
    fn timeout_redelivers_then_dead_letters() {
        let mut q = q(10, OnFull::Block);
        q.push(7);
        let mut now = 0;
        for attempt in 1..=3 {
            let d = q.take(1, now);
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].attempt, attempt);
            now += 100;
        }
        assert!(q.take(1, now).is_empty());
        assert_eq!(q.dead_len(), 1);
        assert!(q.is_empty());
        assert_eq!(q.drain_dead(5)[0].attempts, 3);
    }

    #[test]
    fn nack_redelivers_first_in_order() {
        let mut q = q(10, OnFull::Block);
        q.push(1);
        q.push(2);
        let d = q.take(1, 0);
        assert!(q.nack(d[0].tag));
        let items: Vec<u32> = q.take(10, 0).into_iter().map(|d| d.item).collect();
        assert_eq!(items, vec![1, 2]);
    }

    #[test]
    fn a_nacked_batch_comes_back_in_the_order_it_was_delivered() {
        let mut q = q(10, OnFull::Block);
        for i in 0..5 {
            q.push(i);
        }
        let d = q.take(3, 0);
        let tags: Vec<u64> = d.iter().map(|d| d.tag).collect();
        // Whatever order the tags are given in, and a repeated one counted once.
        assert_eq!(q.nack_all(&[tags[1], tags[0], tags[2], tags[1]]), 3);
        let items: Vec<u32> = q.take(10, 0).into_iter().map(|d| d.item).collect();
        assert_eq!(items, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn messages_nacked_one_by_one_or_expired_come_back_in_queue_order() {
        let mut q = q(20, OnFull::Block);
        for i in 0..8 {
            q.push(i);
        }
        let first = q.take(3, 0); // 0, 1, 2 (expire at ack_timeout)
        let later = q.take(3, 1); // 3, 4, 5
        assert!(q.nack(later[0].tag)); // 3
        assert!(q.nack(first[2].tag)); // 2
        assert!(q.nack(later[2].tag)); // 5
        assert!(q.ack(later[1].tag).is_some()); // 4

        // 0 and 1 expire: they were delivered first, so they come back first.
        let items: Vec<u32> = q
            .take(10, 10_000_000_000)
            .into_iter()
            .map(|d| d.item)
            .collect();
        assert_eq!(items, vec![0, 1, 2, 3, 5, 6, 7]);
    }

    #[test]
    fn a_message_nacked_again_keeps_its_place_in_the_queue() {
        let mut q = Queue::new(QueueConfig {
            max_deliveries: 10,
            ..q(20, OnFull::Block).cfg
        });
        for i in 0..6 {
            q.push(i);
        }
        let all: Vec<u64> = q.take(4, 0).iter().map(|d| d.tag).collect();
        assert_eq!(q.nack_all(&all), 4);
        // 0 and 1 again, nacked again: still ahead of 2 and 3.
        let again: Vec<u64> = q.take(2, 0).iter().map(|d| d.tag).collect();
        assert_eq!(q.nack_all(&again), 2);
        // Two batches nacked in the reverse of their order come back in order too.
        let a: Vec<u64> = q.take(2, 0).iter().map(|d| d.tag).collect();
        let b: Vec<u64> = q.take(2, 0).iter().map(|d| d.tag).collect();
        q.nack_all(&b);
        q.nack_all(&a);
        let items: Vec<u32> = q.take(10, 0).into_iter().map(|d| d.item).collect();
        assert_eq!(items, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn dlq_is_bounded() {
        let mut q = q(10, OnFull::Block);
        for i in 0..4 {
            q.push(i);
        }
        for now in [0, 100, 200, 300] {
            let _ = q.take(10, now);
        }
        assert_eq!(q.dead_len(), 2);
        assert_eq!(q.stats().dead_dropped, 2);
    }
}
