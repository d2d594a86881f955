//! Appends that are in the log but not yet handed to the consumers' windows.
//!
//! A publish appends its batch (visible to readers once durable) and then pushes it
//! into the windows of the caught-up durable consumers. A consumer that polls in
//! between would find the log ahead of its read offset and read the batch back from
//! disk: decode, open and match again, about as much CPU as the publish itself, for
//! events that were about to arrive in memory. With several producers this happened
//! on a large share of batches.
//!
//! So each publish holds a ticket from before its append until after its push, and a
//! refill reads only below the [`InFlight::horizon`]: the lowest offset an unfinished
//! append may occupy. Offsets at or past it come either from that append's own push,
//! or from the log once its ticket is dropped. This only decides which path delivers
//! an event; nothing is lost or delivered twice either way (`push_durable` skips what
//! a refill already read).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// The registry of unfinished appends. Few producers hold tickets at once, so a
/// short list under a mutex is enough.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    /// (ticket, lowest offset its append may occupy).
    held: Mutex<Vec<(u64, u64)>>,
    next_ticket: AtomicU64,
}

/// Held from before an append until its events are in the windows; dropping it
/// (also on an error path) lets refills read past it.
#[derive(Debug)]
#[must_use = "the ticket holds refills back only while it is alive"]
pub(super) struct Ticket<'a> {
    owner: &'a InFlight,
    id: u64,
}

impl InFlight {
    /// Take a ticket before appending. `next_offset` must be read from the log before
    /// this call: the append then lands at or after it.
    pub(super) fn enter(&self, next_offset: u64) -> Ticket<'_> {
        let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, next_offset));
        Ticket { owner: self, id }
    }

    /// Where a refill must stop: below every unfinished append, and below
    /// `next_offset`. Read `next_offset` from the log *before* calling this: an append
    /// visible in it took its ticket before appending, so it is seen here.
    pub(super) fn horizon(&self, next_offset: u64) -> u64 {
        self.lock()
            .iter()
            .map(|&(_, low)| low)
            .fold(next_offset, u64::min)
    }

    /// The append of `ticket` landed at `first`: its lowest offset is now exact, so
    /// later appends that finish first are not held back by a guess.
    pub(super) fn stored(&self, ticket: &Ticket<'_>, first: u64) {
        if let Some(entry) = self.lock().iter_mut().find(|(id, _)| *id == ticket.id) {
            entry.1 = entry.1.max(first);
        }
    }

    /// [`InFlight::horizon`] leaving `mine` out: below it, every append but the one
    /// `mine` holds has finished.
    pub(super) fn horizon_besides(&self, mine: &Ticket<'_>, next_offset: u64) -> u64 {
        self.lock()
            .iter()
            .filter(|&&(id, _)| id != mine.id)
            .map(|&(_, low)| low)
            .fold(next_offset, u64::min)
    }

    /// Whether the routing generation moved on since a batch was routed under
    /// `routed`; asked by the batch's publish, holding its ticket, after its append.
    /// Serialised with [`InFlight::new_generation`]: a subscription that comes after
    /// this answer sees the batch in the log (its `next_offset` is past it).
    pub(super) fn routed_before_change(
        &self,
        _mine: &Ticket<'_>,
        routed: u64,
        generation: &AtomicU64,
    ) -> bool {
        let _serialised = self.lock();
        generation.load(Ordering::Acquire) > routed
    }

    /// Bump the routing generation for a new subscription and read where the log
    /// ends, serialised with [`InFlight::routed_before_change`]. Returns (the new
    /// generation, the log's next offset after it).
    pub(super) fn new_generation(
        &self,
        generation: &AtomicU64,
        next_offset: impl FnOnce() -> u64,
    ) -> (u64, u64) {
        let _serialised = self.lock();
        let g = generation.fetch_add(1, Ordering::AcqRel) + 1;
        (g, next_offset())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, u64)>> {
        // The list stays consistent even if a holder panicked: recover it.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut held = self.owner.lock();
        if let Some(i) = held.iter().position(|&(id, _)| id == self.id) {
            held.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[test]
    fn horizon_is_the_lowest_unfinished_append() {
        let f = InFlight::default();
        assert_eq!(f.horizon(100), 100);
        let a = f.enter(40);
        let b = f.enter(70);
        assert_eq!(f.horizon(100), 40);
        drop(a);
        assert_eq!(f.horizon(100), 70);
        // Never past what the log holds.
        assert_eq!(f.horizon(60), 60);
        drop(b);
        assert_eq!(f.horizon(100), 100);
    }
}
