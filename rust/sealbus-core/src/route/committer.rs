//! A background thread that stores an event loop's publishes in group commits.
//!
//! Coroutines must not wait for an fsync on their loop's thread. Each submits its
//! publish here and awaits; the committer takes everything submitted since its last
//! commit, stores it as one batch ([`Router::publish_group`]: one seal, one append,
//! one fsync), queues the outcomes in submission order and wakes the loop once per
//! commit. While it commits, the next commit's publishes gather, so the batch grows
//! with the load. It never takes the GIL: the binding's [`Wake`] writes an eventfd.
//!
//! A submission does not wake the thread: the loop submits what its coroutines
//! publish in one turn, then calls [`Committer::flush`] once. Waking it per
//! submission made each one a context switch on a busy machine (the woken thread
//! preempted the loop's), and the commits small: 37 µs of loop time per publish, in
//! memory, with 200 coroutines.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::group::{Outcome, Submission};
use super::wake::Wake;
use super::{poisoned, Router};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    pending: Vec<Submission>,
    done: Vec<Outcome>,
    started: bool,
    stopped: bool,
    /// The thread waits for work (a flush must wake it).
    idle: bool,
}

#[derive(Debug)]
struct Shared {
    router: Arc<Router>,
    state: Mutex<State>,
    work: Condvar,
    wake: Arc<dyn Wake>,
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| poisoned("committer"))
    }
}

/// One event loop's committer for one router. Dropping it (or [`Committer::stop`])
/// lets the thread finish what was submitted and end.
#[derive(Debug)]
pub struct Committer {
    shared: Arc<Shared>,
}

impl Committer {
    /// `wake` is called once each time outcomes become available to [`Committer::take`]
    /// after it had none. The thread starts with the first submission.
    pub fn new(router: Arc<Router>, wake: Arc<dyn Wake>) -> Self {
        Committer {
            shared: Arc::new(Shared {
                router,
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                wake,
            }),
        }
    }

    /// Queue a publish for the next commit (started by [`Committer::flush`] if the
    /// thread is idle). Its outcome comes back from `take`, in submission order.
    pub fn submit(&self, s: Submission) -> Result<()> {
        let mut st = self.shared.lock()?;
        if st.stopped {
            return Err(Error::Closed {
                what: "the event loop's publisher".into(),
            });
        }
        if !st.started {
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name("sealbus-committer".into())
                .spawn(move || run(&shared))
                .map_err(|e| Error::Closed {
                    what: format!("the event loop's publisher (no thread: {e})"),
                })?;
            st.started = true;
        }
        st.pending.push(s);
        Ok(())
    }

    /// Commit what was submitted: wakes the thread if it is idle (a busy one takes
    /// the submissions when its commit is done).
    pub fn flush(&self) {
        let wake = self
            .shared
            .lock()
            .is_ok_and(|st| st.idle && !st.pending.is_empty());
        if wake {
            self.shared.work.notify_one();
        }
    }

    /// The outcomes of finished publishes, in submission order.
    pub fn take(&self) -> Vec<Outcome> {
        self.shared
            .lock()
            .map(|mut st| std::mem::take(&mut st.done))
            .unwrap_or_default()
    }

    /// Refuse further submissions; what was submitted is still committed.
    pub fn stop(&self) {
        if let Ok(mut st) = self.shared.lock() {
            st.stopped = true;
        }
        self.shared.work.notify_one();
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared) {
    loop {
        let group = {
            let Ok(mut st) = shared.lock() else { return };
            while st.pending.is_empty() && !st.stopped {
                st.idle = true;
                st = match shared.work.wait(st) {
                    Ok(st) => st,
                    Err(_) => return,
                };
            }
            st.idle = false;
            if st.pending.is_empty() {
                return; // stopped, and nothing left to commit
            }
            std::mem::take(&mut st.pending)
        };
        let outcomes = shared.router.publish_group(group);
        let first = {
            let Ok(mut st) = shared.lock() else { return };
            let first = st.done.is_empty();
            st.done.extend(outcomes);
            first
        };
        // Once until the loop takes them: a loop still busy with the last commit's
        // outcomes finds these too.
        if first {
            shared.wake.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Attributes, DataKind};
    use crate::error::Action;
    use crate::route::{Clock, Outgoing, RouterConfig};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    #[derive(Debug, Default)]
    struct Count(AtomicU32);

    impl Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn outcomes_come_back_in_submission_order_and_each_wakes_at_most_once() {
        let r = Arc::new(Router::new(
            RouterConfig {
                allow_schemaless: true,
                ..RouterConfig::default()
            },
            Clock::default(),
        ));
        let token = r.policy.register("p").expect("register");
        r.allow("p", Action::Publish, "t.*").expect("allow");
        let count = Arc::new(Count::default());
        let c = Committer::new(r.clone(), count.clone());
        let n = 500;
        for i in 0..n {
            let data = if i % 7 == 3 {
                b"not json".to_vec()
            } else {
                format!("{{\"i\":{i}}}").into_bytes()
            };
            c.submit(Submission {
                principal: "p".into(),
                token: token.to_vec(),
                event_type: "t.a".into(),
                version: None,
                attrs: Attributes::default(),
                items: vec![Outgoing {
                    kind: DataKind::Json,
                    data,
                    id: None,
                    end_to_end: false,
                }],
                deadline: None,
            })
            .expect("submit");
        }
        c.flush();
        let mut got = Vec::new();
        let until = Instant::now() + Duration::from_secs(30);
        while got.len() < n && Instant::now() < until {
            got.extend(c.take());
            std::thread::yield_now();
        }
        assert_eq!(got.len(), n);
        for (i, o) in got.iter().enumerate() {
            assert_eq!(o.is_err(), i % 7 == 3, "outcome {i}");
        }
        let ok: Vec<u64> = got
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|r| r[0].id.len() as u64)
            .collect();
        assert_eq!(ok.len(), (0..n).filter(|i| i % 7 != 3).count());
        let wakes = count.0.load(Ordering::SeqCst);
        assert!(wakes >= 1 && wakes as usize <= n, "{wakes} wake-ups");
        c.stop();
        assert!(c
            .submit(Submission {
                principal: "p".into(),
                token: token.to_vec(),
                event_type: "t.a".into(),
                version: None,
                attrs: Attributes::default(),
                items: Vec::new(),
                deadline: None,
            })
            .is_err());
    }
}
