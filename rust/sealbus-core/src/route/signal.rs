//! Wake-ups that cost nothing when nobody is waiting.
//!
//! The standard library's futex-backed `Condvar::notify_all` makes a system call
//! every time, waiter or not. On the hot path every publish notifies each target's
//! consumers, and every poll and ack notifies producers that may wait for room, while
//! most of the time nobody sleeps: consumers are busy or spinning, producers have
//! room. [`Signal`] counts its sleepers and skips the call when there are none;
//! [`Bell`] does the same for a thread waiting on several subscriptions at once.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, LockResult, Mutex, MutexGuard, WaitTimeoutResult};
use std::time::{Duration, Instant};

/// Asked, with no lock held, at least every [`INTERRUPT_SLICE`] by a wait that may
/// block for long: true gives the wait up. The binding runs Python's signal handlers
/// in it, so Ctrl-C ends a blocked call.
pub type Interrupt<'a> = &'a (dyn Fn() -> bool + Sync);

/// How long an interruptible wait sleeps at most before asking its [`Interrupt`].
/// A wake-up inside a slice still returns at once.
pub const INTERRUPT_SLICE: Duration = Duration::from_millis(50);

/// The longest busy-poll spin: `busy_poll` is the caller's (any finite number of
/// seconds), and an `Instant` plus years of it would overflow.
pub(crate) const MAX_SPIN: Duration = Duration::from_hours(1);

/// Busy-wait (the `busy_poll` of subscriptions and selectors) until `done()` or
/// `until`: a CPU pause between looks, and every 64 looks a `sched_yield`, so a
/// machine with more runnable threads than CPUs still runs the producer we wait for.
pub(crate) fn spin_until(until: Instant, mut done: impl FnMut() -> bool) {
    let mut looks = 0u32;
    while !done() && Instant::now() < until {
        looks = looks.wrapping_add(1);
        if looks.is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A condition variable that knows whether anyone waits on it.
///
/// Contract: a notifier changes the guarded state under the mutex (or takes the
/// mutex once after changing an atomic the waiters read under it) before calling
/// [`Signal::notify_all`]. Then no wake-up is lost: a waiter counts itself while it
/// holds the mutex, so either it saw the change before deciding to wait, or the
/// notifier, which took the mutex after it, sees the count.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    cv: Condvar,
    sleepers: AtomicU32,
}

impl Signal {
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let woken = self.cv.wait_timeout(guard, dur);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        woken
    }

    /// Like `wait_timeout`, for news a notifier may make outside the mutex (see
    /// `Subscription::notify_held_news`): counted as a sleeper first, the waiter asks
    /// `news` once more, and returns at once if it says there is some. A notifier
    /// fences between its news and its look at the count, so it either sees this
    /// sleeper or its news is seen here.
    pub(crate) fn wait_timeout_unless<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        news: impl FnOnce(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        if news(&mut guard) {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            return Ok(guard);
        }
        let woken = self.cv.wait_timeout(guard, dur);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        match woken {
            Ok((g, _)) => Ok(g),
            Err(e) => Err(std::sync::PoisonError::new(e.into_inner().0)),
        }
    }

    /// Whether anyone sleeps on it now.
    pub(crate) fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn notify_all(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.cv.notify_all();
        }
    }
}

/// Told by a subscription, after it changed under its lock, that a consumer may
/// have news: a selector's [`Bell`], or an event loop's doorbell (see `wake`).
pub trait Watcher: Send + Sync + std::fmt::Debug {
    fn news(&self);
}

impl Watcher for Bell {
    fn news(&self) {
        self.ring();
    }
}

/// Rung by any of the subscriptions a selector watches; the selector's thread sleeps
/// on it until something changed in one of them.
#[derive(Debug, Default)]
pub(crate) struct Bell {
    rung: AtomicU64,
    sleepers: AtomicU32,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Bell {
    /// How often the bell has rung: read it before looking at the subscriptions, and
    /// wait only if it has not moved since.
    pub(crate) fn count(&self) -> u64 {
        self.rung.load(Ordering::SeqCst)
    }

    pub(crate) fn ring(&self) {
        self.rung.fetch_add(1, Ordering::SeqCst);
        // Sequentially consistent with the sleeper's count-then-check below: one of
        // the two sees the other's write. Taking the lock orders the notification
        // after a sleeper that has counted itself but not yet started to wait.
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _held = self.lock.lock();
            self.cv.notify_all();
        }
    }

    /// Sleep until the bell rings past `seen`, or `dur` passes. Returns whether it rang.
    pub(crate) fn wait(&self, seen: u64, dur: Duration) -> bool {
        let Ok(mut held) = self.lock.lock() else {
            return true; // poisoned: never sleep on it, let the caller look again
        };
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let now = std::time::Instant::now();
        // A wait too long for an `Instant` ends after an hour; callers look again.
        let deadline = now
            .checked_add(dur)
            .unwrap_or_else(|| now + Duration::from_hours(1));
        let rang = loop {
            if self.rung.load(Ordering::SeqCst) != seen {
                break true;
            }
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                break false;
            };
            match self.cv.wait_timeout(held, left) {
                Ok((h, _)) => held = h,
                Err(_) => break true,
            }
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        rang
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_notification_reaches_a_sleeper() {
        let state = Arc::new((Mutex::new(false), Signal::default()));
        let s2 = state.clone();
        let waiter = std::thread::spawn(move || {
            let (m, sig) = &*s2;
            let mut ready = m.lock().unwrap();
            let started = Instant::now();
            while !*ready {
                ready = sig.wait_timeout(ready, Duration::from_secs(10)).unwrap().0;
            }
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        *state.0.lock().unwrap() = true;
        state.1.notify_all();
        assert!(waiter.join().unwrap() < Duration::from_secs(5));
    }

    #[test]
    fn no_wake_up_is_lost_between_check_and_wait() {
        // Many rounds of one flip each: a lost notification would cost the waiter its
        // whole (long) timeout and fail the time bound.
        let state = Arc::new((Mutex::new(0u32), Signal::default()));
        let s2 = state.clone();
        let rounds = 2_000;
        let waiter = std::thread::spawn(move || {
            let (m, sig) = &*s2;
            let started = Instant::now();
            for want in 1..=rounds {
                let mut v = m.lock().unwrap();
                while *v < want {
                    v = sig.wait_timeout(v, Duration::from_secs(30)).unwrap().0;
                }
            }
            started.elapsed()
        });
        for _ in 0..rounds {
            *state.0.lock().unwrap() += 1;
            state.1.notify_all();
            std::thread::yield_now();
        }
        assert!(waiter.join().unwrap() < Duration::from_secs(20));
    }

    #[test]
    fn bell_wakes_a_waiter_and_times_out_without_a_ring() {
        let bell = Arc::new(Bell::default());
        let seen = bell.count();
        let started = Instant::now();
        assert!(!bell.wait(seen, Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));

        let b2 = bell.clone();
        let waiter = std::thread::spawn(move || b2.wait(seen, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        bell.ring();
        assert!(waiter.join().unwrap());
        // A ring before the wait is not missed either.
        assert!(bell.wait(seen, Duration::from_secs(30)));
    }

    #[test]
    fn bell_rings_are_never_lost() {
        let bell = Arc::new(Bell::default());
        let b2 = bell.clone();
        let rounds = 2_000u64;
        let waiter = std::thread::spawn(move || {
            let started = Instant::now();
            let mut seen = 0;
            while seen < rounds {
                b2.wait(seen, Duration::from_secs(30));
                seen = b2.count();
            }
            started.elapsed()
        });
        for _ in 0..rounds {
            bell.ring();
            std::thread::yield_now();
        }
        assert!(waiter.join().unwrap() < Duration::from_secs(20));
    }
}
