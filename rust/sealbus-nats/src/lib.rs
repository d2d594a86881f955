//! sealbus routers joined through NATS JetStream, on the NATS maintainers' Rust
//! client: the bridge's export, an outbox read from the router's own log
//! ([`export::Exporter`]), and its import, a JetStream durable consumer feeding the
//! local router with every check of a local publish ([`import::Importer`]). Each runs
//! on a thread of its own; the binding (`sealbus.nats.Bridge`) starts them and holds
//! the stream, the audit trail and the alerts together.

pub mod connect;
pub mod export;
pub mod import;
pub mod local;
pub mod seen;
pub mod stream;

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

pub use connect::Connection;
pub use export::{ExportConfig, ExportStats, Exporter, Stamp, TraceHook};
pub use import::{
    ImportConfig, ImportStamp, ImportStats, Importer, PrincipalHook, Report, ReportHook,
};
pub use seen::Seen;
pub use stream::StreamSpec;

/// Now, in ns since the epoch (`CLOCK_REALTIME`, as the bench's stamps compare across
/// processes).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Resolves once `stop` is set.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A flag one thread sets once and others wait for: the export or import is
/// connected and bound to the stream.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    set: Mutex<bool>,
    changed: Condvar,
}

impl Flag {
    pub fn set(&self) {
        if let Ok(mut g) = self.set.lock() {
            *g = true;
            self.changed.notify_all();
        }
    }

    /// Whether it is set within `timeout`.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(mut g) = self.set.lock() else {
            return false;
        };
        while !*g {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.changed.wait_timeout(g, left) {
                Ok((next, _)) => g = next,
                Err(_) => return false,
            }
        }
        true
    }
}

/// Why a bridge thread stopped by itself: the first reason given.
#[derive(Debug, Default)]
pub(crate) struct Failure(Mutex<Option<String>>);

impl Failure {
    pub fn set(&self, e: String) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|e| e.clone())
    }
}

/// A thread's per-message stage times, kept only when the bench asks for them.
#[derive(Debug)]
pub(crate) struct Stamps<T>(Option<Mutex<Vec<T>>>);

impl<T> Default for Stamps<T> {
    fn default() -> Stamps<T> {
        Stamps(None)
    }
}

impl<T> Stamps<T> {
    pub fn new(on: bool) -> Stamps<T> {
        Stamps(on.then(|| Mutex::new(Vec::new())))
    }

    /// Now, when stamps are kept.
    pub fn now(&self) -> Option<u64> {
        self.0.as_ref().map(|_| now_ns())
    }

    pub fn append(&self, done: &mut Vec<T>) {
        if let Some(Ok(mut v)) = self.0.as_ref().map(Mutex::lock) {
            v.append(done);
        }
    }

    /// The stamps kept since the last call.
    pub fn take(&self) -> Vec<T> {
        self.0
            .as_ref()
            .and_then(|m| m.lock().ok().map(|mut v| std::mem::take(&mut *v)))
            .unwrap_or_default()
    }
}

/// Run `job` to its end on a single-threaded tokio runtime on this thread; `who`
/// names the thread in the error when no runtime can be made.
pub(crate) fn run_to_end(
    who: &str,
    job: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("{who}: no runtime: {e}"))
        .and_then(|rt| rt.block_on(job))
}
