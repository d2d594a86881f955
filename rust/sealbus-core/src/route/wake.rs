//! Waking an event loop instead of a thread.
//!
//! An asyncio consumer must not park a thread per subscription, and an asyncio
//! producer must not block its loop on an fsync. Both wait on the loop itself: the
//! binding gives the loop a file descriptor to watch (an eventfd), and the core is
//! handed a [`Wake`] that writes it. A coroutine that finds its subscriptions empty
//! registers a [`Watch`]; the first news on any of them posts the watch's token to
//! the loop's [`Inbox`] and wakes the loop, once, however many subscriptions have
//! news before the loop collects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::signal::Watcher;
use super::subscription::Subscription;
use super::Router;
use crate::error::Result;

/// Tells the owner of an [`Inbox`] (or of a committer) that there is something to
/// take. Called from any thread, never with a lock of the router held.
pub trait Wake: Send + Sync + std::fmt::Debug {
    fn wake(&self);
}

/// Tokens posted for one event loop by the subscriptions its coroutines wait on.
#[derive(Debug)]
pub struct Inbox {
    ready: Mutex<Vec<u64>>,
    wake: Arc<dyn Wake>,
}

impl Inbox {
    pub fn new(wake: Arc<dyn Wake>) -> Arc<Self> {
        Arc::new(Inbox {
            ready: Mutex::new(Vec::new()),
            wake,
        })
    }

    fn post(&self, token: u64) {
        if let Ok(mut ready) = self.ready.lock() {
            ready.push(token);
        }
        self.wake.wake();
    }

    /// The tokens posted since the last take, in the order they were posted.
    pub fn take(&self) -> Vec<u64> {
        self.ready
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Fires once: the first news on any watched subscription posts the token.
#[derive(Debug)]
struct Once {
    token: u64,
    fired: AtomicBool,
    inbox: Arc<Inbox>,
}

impl Watcher for Once {
    fn news(&self) {
        if !self.fired.swap(true, Ordering::AcqRel) {
            self.inbox.post(self.token);
        }
    }
}

/// One waiter's watch on some subscriptions. Register it, then look at the
/// subscriptions once more before waiting: news that lands after the registration
/// posts the token, news before it is seen by the look (the subscription tells its
/// watchers after changing its state under its lock). Dropping it stops watching.
#[derive(Debug)]
pub struct Watch {
    subs: Vec<Arc<Subscription>>,
    once: Arc<Once>,
}

impl Watch {
    pub fn new(subs: Vec<Arc<Subscription>>, inbox: Arc<Inbox>, token: u64) -> Self {
        let once = Arc::new(Once {
            token,
            fired: AtomicBool::new(false),
            inbox,
        });
        for s in &subs {
            s.watch(once.clone());
        }
        Watch { subs, once }
    }

    /// Has news been posted for this watch?
    pub fn fired(&self) -> bool {
        self.once.fired.load(Ordering::Acquire)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for s in &self.subs {
            s.unwatch(&*self.once);
        }
    }
}

impl Router {
    /// How long until the earliest ack deadline among `subs` passes (its event is then
    /// ready again without any news): a waiter on the loop looks again by then. None
    /// when nothing is in flight, or under a manual clock (it never waits).
    pub fn next_redelivery(&self, subs: &[Arc<Subscription>]) -> Result<Option<Duration>> {
        if self.clock.is_manual() {
            return Ok(None);
        }
        let mut next: Option<Duration> = None;
        for s in subs {
            if s.is_closed() {
                continue;
            }
            let st = s.lock()?;
            if let Some(d) = st.queue.next_deadline() {
                let wait = Duration::from_nanos(d.saturating_sub(self.clock.now()).max(1_000));
                next = Some(next.map_or(wait, |n| n.min(wait)));
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::QueueConfig;
    use std::sync::atomic::AtomicU32;

    #[derive(Debug, Default)]
    struct Count(AtomicU32);

    impl Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

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
    fn a_watch_posts_its_token_once_and_a_dropped_one_stops_watching() {
        let count = Arc::new(Count::default());
        let inbox = Inbox::new(count.clone());
        let (a, b) = (sub(1), sub(2));
        let w = Watch::new(vec![a.clone(), b.clone()], inbox.clone(), 7);
        assert!(!w.fired());
        assert_eq!((a.watchers(), b.watchers()), (1, 1));
        b.notify_events();
        a.notify_events();
        assert!(w.fired());
        assert_eq!(inbox.take(), [7], "posted once for two pieces of news");
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(inbox.take().is_empty());
        drop(w);
        assert_eq!((a.watchers(), b.watchers()), (0, 0));
        a.notify_events();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "nobody watches any more");
    }

    #[test]
    fn a_closed_subscription_wakes_its_watchers() {
        let count = Arc::new(Count::default());
        let inbox = Inbox::new(count.clone());
        let a = sub(1);
        let _w = Watch::new(vec![a.clone()], inbox.clone(), 3);
        a.close();
        assert_eq!(inbox.take(), [3]);
    }
}
