//! A subscription: who it belongs to, what it asked for, and its queue with the
//! condition variables that producers (room) and consumers (events) wait on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::clock::Clock;
use super::queue::{DeadLetter, Delivery, Queue, QueueConfig, QueueStats};
use crate::envelope::Event;
use crate::error::{Error, Result};
use crate::pattern::Pattern;

pub type Item = Arc<Event>;

#[derive(Debug)]
pub struct Subscription {
    pub id: u64,
    pub name: String,
    pub principal: String,
    pub types: Vec<String>,
    pub pattern: Option<Pattern>,
    pub(crate) queue: Mutex<Queue<Item>>,
    pub(crate) has_events: Condvar,
    pub(crate) has_room: Condvar,
    closed: AtomicBool,
    clock: Clock,
}

impl Subscription {
    pub(crate) fn new(
        id: u64,
        name: String,
        principal: String,
        types: Vec<String>,
        pattern: Option<Pattern>,
        cfg: QueueConfig,
        clock: Clock,
    ) -> Self {
        Subscription {
            id,
            name,
            principal,
            types,
            pattern,
            queue: Mutex::new(Queue::new(cfg)),
            has_events: Condvar::new(),
            has_room: Condvar::new(),
            closed: AtomicBool::new(false),
            clock,
        }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Queue<Item>>> {
        self.queue.lock().map_err(|_| Error::Closed {
            what: format!(
                "subscription {} (a thread panicked holding its lock)",
                self.name
            ),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.has_events.notify_all();
        self.has_room.notify_all();
    }

    pub fn config(&self) -> Result<QueueConfig> {
        Ok(*self.lock()?.config())
    }

    /// Up to `max` events, waiting up to `timeout` for the first. Blocks the calling
    /// thread: call with the GIL released. A manual clock never waits (tests drive it).
    pub fn poll(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<Delivery<Item>>> {
        let started = std::time::Instant::now();
        let mut q = self.lock()?;
        loop {
            if self.is_closed() {
                return Err(Error::Closed {
                    what: format!("subscription {}", self.name),
                });
            }
            let now = self.clock.now();
            let before = q.len();
            let out = q.take(max, now);
            if q.len() < before {
                // Expiry dead-lettered something: room for producers.
                self.has_room.notify_all();
            }
            if !out.is_empty() || max == 0 {
                return Ok(out);
            }
            let remaining = match timeout {
                Some(t) => match t.checked_sub(started.elapsed()) {
                    Some(r) if !r.is_zero() && !self.clock.is_manual() => r,
                    _ => return Ok(out),
                },
                None if self.clock.is_manual() => return Ok(out),
                None => Duration::from_secs(3600),
            };
            // Wake for the next ack deadline too, so expired events are redelivered.
            let wait = match q.next_deadline() {
                Some(d) => remaining.min(Duration::from_nanos(d.saturating_sub(now).max(1_000))),
                None => remaining,
            };
            q = self
                .has_events
                .wait_timeout(q, wait)
                .map_err(|_| Error::Closed {
                    what: format!("subscription {}", self.name),
                })?
                .0;
        }
    }

    /// Acknowledge deliveries by tag; returns how many were still outstanding.
    pub fn ack(&self, tags: &[u64]) -> Result<usize> {
        let mut q = self.lock()?;
        let n = tags.iter().filter(|&&t| q.ack(t)).count();
        drop(q);
        if n > 0 {
            self.has_room.notify_all();
        }
        Ok(n)
    }

    /// Refuse deliveries: redelivered, or dead-lettered after `max_deliveries`.
    pub fn nack(&self, tags: &[u64]) -> Result<usize> {
        let mut q = self.lock()?;
        let before = q.len();
        let n = tags.iter().filter(|&&t| q.nack(t)).count();
        let freed = q.len() < before;
        drop(q);
        if n > 0 {
            self.has_events.notify_all();
        }
        if freed {
            self.has_room.notify_all();
        }
        Ok(n)
    }

    pub fn stats(&self) -> Result<(QueueStats, usize, usize, usize)> {
        let q = self.lock()?;
        Ok((q.stats(), q.ready_len(), q.inflight_len(), q.dead_len()))
    }

    pub fn dead_letters(&self, max: usize, remove: bool) -> Result<Vec<DeadLetter<Item>>> {
        let mut q = self.lock()?;
        Ok(if remove {
            q.drain_dead(max)
        } else {
            q.dead_letters().take(max).cloned().collect()
        })
    }
}
