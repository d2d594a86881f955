//! Waiting on several subscriptions at once, as `epoll` does for sockets: one
//! consumer thread serving many subscriptions sleeps once and wakes once for news on
//! any of them, instead of a thread per subscription, each woken (and each waiting
//! for a CPU and for the GIL) separately.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::Delivery;
use super::signal::{spin_until, Bell, MAX_SPIN};
use super::subscription::{Item, Spinning, Subscription};
use super::Router;
use crate::error::{Error, Result};

/// A set of subscriptions watched together. Dropping it stops the watching.
#[derive(Debug)]
pub struct Selector {
    subs: Vec<Arc<Subscription>>,
    bell: Arc<Bell>,
    busy_poll: Duration,
}

impl Selector {
    /// Watch `subs`. `busy_poll`: how long a select that finds nothing keeps looking
    /// (yielding the CPU in between) before it sleeps; zero sleeps at once.
    #[must_use]
    pub fn new(subs: Vec<Arc<Subscription>>, busy_poll: Duration) -> Self {
        let bell = Arc::new(Bell::default());
        for s in &subs {
            s.watch(bell.clone());
        }
        Selector {
            subs,
            bell,
            busy_poll,
        }
    }

    pub fn subscriptions(&self) -> &[Arc<Subscription>] {
        &self.subs
    }
}

impl Drop for Selector {
    fn drop(&mut self) {
        for s in &self.subs {
            s.unwatch(&*self.bell);
        }
    }
}

/// Deliveries from one subscription of a selector: its index there, and the events.
pub type Selected = (usize, Vec<Delivery<Item>>);

impl Router {
    /// Up to `max` events from every subscription of `sel` that has some, waiting up
    /// to `timeout` (None: forever) for the first; in the selector's order, only the
    /// subscriptions with events. Closed subscriptions are passed over; when all are
    /// closed, [`Error::Closed`]. Blocks: call with the GIL released.
    pub fn select(
        &self,
        sel: &Selector,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Selected>> {
        self.process.check("the router")?;
        let started = Instant::now();
        let mut spun = sel.busy_poll.is_zero() || self.clock.is_manual();
        loop {
            // Read before looking, so news that lands while we look is not slept on.
            let seen = sel.bell.count();
            let mut out: Vec<Selected> = Vec::new();
            let mut open = false;
            let mut wait = Duration::MAX;
            for (i, sub) in sel.subs.iter().enumerate() {
                if sub.is_closed() {
                    continue;
                }
                open = true;
                let taken = sub.lock().and_then(|mut st| {
                    let got = self.take_ready(sub, &mut st, max)?;
                    wait = self.until_redelivery(&st, wait);
                    Ok(got)
                });
                match taken {
                    Ok(got) if got.is_empty() => {}
                    Ok(got) => out.push((i, got)),
                    // What was taken from the others is delivered; the error comes
                    // back on the next select.
                    Err(e) if out.is_empty() => return Err(e),
                    Err(_) => return Ok(out),
                }
            }
            if !open {
                return Err(Error::Closed {
                    what: "every subscription of the selector".to_owned(),
                });
            }
            if !out.is_empty() || max == 0 {
                return Ok(out);
            }
            let Some(remaining) = self.time_left(started, timeout) else {
                return Ok(out);
            };
            if !spun {
                spun = true;
                let until = started + sel.busy_poll.min(remaining).min(MAX_SPIN);
                let _counted = Spinning::on_all(&sel.subs);
                spin_until(until, || sel.bell.count() != seen);
                continue;
            }
            sel.bell.wait(seen, remaining.min(wait));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::QueueConfig;

    fn sub(id: u64) -> Arc<Subscription> {
        Arc::new(Subscription::new(
            id,
            format!("s{id}"),
            "p".into(),
            vec!["t".into()],
            None,
            QueueConfig::default(),
            None,
        ))
    }

    #[test]
    fn news_on_any_subscription_rings_and_a_dropped_selector_stops_watching() {
        let (a, b) = (sub(1), sub(2));
        let sel = Selector::new(vec![a.clone(), b.clone()], Duration::ZERO);
        let other = Selector::new(vec![b.clone()], Duration::ZERO);
        let seen = sel.bell.count();
        b.notify_events();
        assert_ne!(sel.bell.count(), seen);
        assert_eq!((a.watchers(), b.watchers()), (1, 2));
        drop(sel);
        assert_eq!((a.watchers(), b.watchers()), (0, 1));
        let seen = other.bell.count();
        a.notify_events();
        assert_eq!(other.bell.count(), seen, "a is not watched by `other`");
    }

    #[test]
    fn spinning_consumers_are_counted_while_they_spin() {
        let (a, b) = (sub(1), sub(2));
        let both = vec![a.clone(), b.clone()];
        assert!(!a.has_spinner() && !b.has_spinner());
        {
            let _sel = Spinning::on_all(&both);
            assert!(a.has_spinner() && b.has_spinner());
            let one = Spinning::on(&a);
            drop(one);
            assert!(a.has_spinner(), "the selector still spins on a");
        }
        assert!(!a.has_spinner() && !b.has_spinner());
    }
}
