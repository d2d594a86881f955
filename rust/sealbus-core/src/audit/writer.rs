//! A trail written in the background. Callers queue entries and go on; a thread of
//! the writer appends what was queued and fdatasyncs it every `interval`, so neither
//! a publish nor (in the binding) the Python interpreter waits for the trail, and the
//! thread never needs anything of the caller's (no interpreter lock). The trail lags
//! what it records by at most `interval` plus one fdatasync.
//!
//! Fail-stop: once an append or a sync fails, every later `record` returns that
//! failure, as the log's writer does after an fsync error.

use std::mem;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Checkpoint, Trail};
use crate::error::{Error, Result};
use crate::process::Process;

/// Entries queued beyond this wake the writer's thread early, bounding the queue.
const WAKE_AT: usize = 4096;

type Entry = (String, u64, Map<String, Value>);

#[derive(Default)]
struct Queue {
    entries: Vec<Entry>,
    closed: bool,
    failed: Option<String>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Taken before `queue` by whoever writes, so entries reach the file in the
    /// order they were recorded.
    trail: Mutex<Trail>,
    interval: Duration,
}

fn poisoned() -> Error {
    Error::LogFailed {
        reason: "the audit trail's lock was poisoned by a panic".into(),
    }
}

impl Shared {
    fn queue(&self) -> Result<MutexGuard<'_, Queue>> {
        self.queue.lock().map_err(|_| poisoned())
    }

    fn trail(&self) -> Result<MutexGuard<'_, Trail>> {
        self.trail.lock().map_err(|_| poisoned())
    }

    /// Append everything queued to `trail` (whose lock the caller holds).
    fn drain(&self, trail: &mut Trail) -> Result<()> {
        let entries = mem::take(&mut self.queue()?.entries);
        for (kind, time_ns, details) in entries {
            trail.append(&kind, time_ns, details)?;
        }
        Ok(())
    }

    fn fail(&self, e: &Error) {
        if let Ok(mut q) = self.queue() {
            q.failed.get_or_insert_with(|| e.to_string());
        }
    }

    fn flush(&self) -> Result<()> {
        let mut trail = self.trail()?;
        let done = self.drain(&mut trail).and_then(|()| trail.sync());
        if let Err(e) = &done {
            self.fail(e);
        }
        done
    }

    fn run(&self) {
        let Ok(mut q) = self.queue() else { return };
        loop {
            if q.closed {
                return;
            }
            q = match self.wake.wait_timeout(q, self.interval) {
                Ok((q, _)) => q,
                Err(_) => return,
            };
            if q.closed || q.failed.is_some() {
                return;
            }
            if q.entries.is_empty() {
                continue;
            }
            drop(q);
            if self.flush().is_err() {
                return;
            }
            q = match self.queue() {
                Ok(q) => q,
                Err(_) => return,
            };
        }
    }
}

/// A router's trail with a background writer (see the module's comment).
pub struct Writer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The process whose thread writes the trail: in a forked child the file is
    /// still the parent's and the thread is not there (`process.rs`).
    process: Process,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit::Writer(interval={:?})", self.shared.interval)
    }
}

impl Writer {
    /// Open the trail under `dir` (see [`Trail::open`]) and start its writer.
    pub fn open(
        dir: &Path,
        seed: &[u8],
        checkpoint_every: u64,
        interval: Duration,
    ) -> Result<Writer> {
        let trail = Trail::open(dir, seed, checkpoint_every)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            trail: Mutex::new(trail),
            interval,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sealbus-audit".into())
            .spawn(move || s.run())
            .map_err(|e| Error::LogFailed {
                reason: format!("cannot start the audit trail's writer: {e}"),
            })?;
        Ok(Writer {
            shared,
            thread: Mutex::new(Some(thread)),
            process: Process::current(),
        })
    }

    /// Queue one entry; it is written and synced within the writer's interval.
    /// Refused once the trail has failed or closed.
    pub fn record(&self, kind: &str, time_ns: u64, details: Map<String, Value>) -> Result<()> {
        self.process.check("the audit trail")?;
        let mut q = self.shared.queue()?;
        if let Some(reason) = &q.failed {
            return Err(Error::LogFailed {
                reason: format!("the audit trail stopped: {reason}"),
            });
        }
        if q.closed {
            return Err(Error::Closed {
                what: "the audit trail".into(),
            });
        }
        q.entries.push((kind.to_owned(), time_ns, details));
        if q.entries.len() >= WAKE_AT {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Write and fdatasync everything queued, now.
    pub fn flush(&self) -> Result<()> {
        self.process.check("the audit trail")?;
        self.shared.flush()
    }

    /// Flush, then sign the Merkle root of the whole trail and record it.
    pub fn checkpoint(&self, time_ns: u64) -> Result<Checkpoint> {
        self.process.check("the audit trail")?;
        let mut trail = self.shared.trail()?;
        let done = self
            .shared
            .drain(&mut trail)
            .and_then(|()| trail.checkpoint(time_ns))
            .and_then(|cp| trail.sync().map(|()| cp));
        if let Err(e) = &done {
            self.shared.fail(e);
        }
        done
    }

    /// Entries so far, queued ones included.
    pub fn len(&self) -> Result<u64> {
        let trail = self.shared.trail()?;
        let queued = self.shared.queue()?.entries.len() as u64;
        Ok(trail.len() + queued)
    }

    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// The router's public key, which verifies its checkpoints.
    pub fn public_key(&self) -> Result<Vec<u8>> {
        Ok(self.shared.trail()?.public_key())
    }

    /// Stop the writer's thread and write what is queued. Later records are refused.
    pub fn close(&self) -> Result<()> {
        if !self.process.is_current() {
            return Ok(()); // the parent's thread, the parent's file: nothing to release here
        }
        self.shared.queue()?.closed = true;
        self.shared.wake.notify_all();
        let thread = self.thread.lock().map_err(|_| poisoned())?.take();
        if let Some(t) = thread {
            t.join().map_err(|_| Error::LogFailed {
                reason: "the audit trail's writer panicked".into(),
            })?;
        }
        self.shared.flush()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(n: u64) -> Map<String, Value> {
        [("n".to_owned(), Value::from(n))].into_iter().collect()
    }

    #[test]
    fn entries_reach_the_file_in_order_from_the_thread_and_from_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Writer::open(dir.path(), &[7u8; 32], 50, Duration::from_millis(1)).expect("open");
        for n in 0..500 {
            w.record("note", n, details(n)).expect("record");
            if n % 97 == 0 {
                w.flush().expect("flush");
            }
        }
        let cp = w.checkpoint(1).expect("checkpoint");
        w.close().expect("close");
        let v = super::super::verify(dir.path(), Some(&cp)).expect("verify");
        assert!(v.ok(), "{v:?}");
        let ns: Vec<u64> = super::super::entries(dir.path())
            .expect("entries")
            .iter()
            .filter(|e| e["kind"] == "note")
            .filter_map(|e| e["n"].as_u64())
            .collect();
        assert_eq!(ns, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn the_thread_syncs_without_being_asked_and_close_refuses_later_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Writer::open(dir.path(), &[7u8; 32], 1000, Duration::from_millis(1)).expect("open");
        w.record("note", 1, details(1)).expect("record");
        let file = dir.path().join(super::super::FILE);
        let mut seen = false;
        for _ in 0..5000 {
            if std::fs::read_to_string(&file)
                .expect("read")
                .contains("\"note\"")
            {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(seen, "the writer's thread never wrote the entry");
        w.close().expect("close");
        assert!(matches!(
            w.record("note", 2, details(2)),
            Err(Error::Closed { .. })
        ));
    }
}
