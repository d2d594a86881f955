//! Binding for the event-loop side of `sealbus_core::route` (`wake`, `committer`):
//! a file descriptor the asyncio loop watches with `add_reader`, written by the core
//! when a commit finishes or a watched subscription has news. No thread waits on
//! the loop's behalf, and the core never takes the GIL to wake it.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sealbus_core::route::{Committer, Inbox, Outgoing, Submission, Wake, Watch};

use crate::args::Arg;
use crate::gil::attached;
use crate::router::{
    attributes, data_kind, refused_error, split_buffer, timeout_arg, PyReceipt, PyReceipts,
    PyRouter, PySubscription,
};

/// An eventfd (a non-blocking pipe where there is none) that an event loop watches.
/// Rung at most once until the loop clears it, however often the core calls `wake`.
#[derive(Debug)]
struct Doorbell {
    read: OwnedFd,
    /// The pipe's write end; an eventfd is written through `read` itself.
    write: Option<OwnedFd>,
    posted: AtomicBool,
}

impl Doorbell {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn new() -> std::io::Result<Arc<Self>> {
        use rustix::event::{eventfd, EventfdFlags};
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Arc::new(Doorbell {
            read: fd,
            write: None,
            posted: AtomicBool::new(false),
        }))
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn new() -> std::io::Result<Arc<Self>> {
        use rustix::io::{fcntl_setfd, ioctl_fionbio, FdFlags};
        let (r, w) = rustix::pipe::pipe()?;
        for fd in [&r, &w] {
            ioctl_fionbio(fd, true)?;
            fcntl_setfd(fd, FdFlags::CLOEXEC)?;
        }
        Ok(Arc::new(Doorbell {
            read: r,
            write: Some(w),
            posted: AtomicBool::new(false),
        }))
    }

    fn fileno(&self) -> i32 {
        self.read.as_raw_fd()
    }

    /// The loop's reader callback calls this *before* taking what was posted: a
    /// `wake` after the clear rings again, one before it posted what the take finds.
    fn clear(&self) {
        let mut buf = [0u8; 64];
        // An eventfd is emptied by one read; a pipe until it would block.
        while let Ok(n) = rustix::io::read(&self.read, &mut buf) {
            if n == 0 || self.write.is_none() {
                break;
            }
        }
        self.posted.store(false, Ordering::SeqCst);
    }
}

impl Wake for Doorbell {
    fn wake(&self) {
        if !self.posted.swap(true, Ordering::SeqCst) {
            let fd = self.write.as_ref().unwrap_or(&self.read);
            // A full pipe or eventfd counter already wakes the loop: nothing is lost.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }
}

fn doorbell(py: Python<'_>) -> PyResult<Arc<Doorbell>> {
    attached(
        py,
        Doorbell::new().map_err(|e| sealbus_core::Error::Closed {
            what: format!("the event loop's wake-up (no descriptor: {e})"),
        }),
    )
}

/// One event loop's wake-up for the subscriptions its coroutines wait on.
#[pyclass(frozen, module = "sealbus._sealbus", name = "LoopBell")]
pub struct PyLoopBell {
    bell: Arc<Doorbell>,
    inbox: Arc<Inbox>,
}

/// A registered wait on some subscriptions (see `LoopBell.watch`).
#[pyclass(frozen, module = "sealbus._sealbus", name = "Watch")]
pub struct PyWatch {
    inner: Mutex<Option<Watch>>,
}

#[pymethods]
impl PyWatch {
    /// Stop watching (also done when the object is collected).
    fn close(&self) {
        if let Ok(mut w) = self.inner.lock() {
            w.take();
        }
    }
}

#[pymethods]
impl PyLoopBell {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let bell = doorbell(py)?;
        let inbox = Inbox::new(bell.clone());
        Ok(PyLoopBell { bell, inbox })
    }

    /// The descriptor to give `loop.add_reader`.
    fn fileno(&self) -> i32 {
        self.bell.fileno()
    }

    /// The tokens of the watches that fired since the last call.
    fn take(&self) -> Vec<u64> {
        self.bell.clear();
        self.inbox.take()
    }

    /// Watch `subscriptions`: the first news on any of them (an event, a
    /// redelivery, a close) posts `token`, once. Look at them again after this call
    /// and before waiting.
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts the list into a Vec
    fn watch(
        &self,
        subscriptions: Arg<Vec<PyRef<'_, PySubscription>>>,
        token: Arg<u64>,
    ) -> PyWatch {
        let (subscriptions, token) = (subscriptions.0, token.0);
        let subs = subscriptions.iter().map(|s| s.handle.sub.clone()).collect();
        PyWatch {
            inner: Mutex::new(Some(Watch::new(subs, self.inbox.clone(), token))),
        }
    }

    /// Seconds until the earliest ack deadline among `subscriptions` (an event in
    /// flight is delivered again then, without news), or None.
    // A method of the loop's bell, as Python calls it; PyO3 extracts the list into a Vec.
    #[allow(clippy::unused_self, clippy::needless_pass_by_value)]
    fn redelivery_in(
        &self,
        py: Python<'_>,
        subscriptions: Arg<Vec<PyRef<'_, PySubscription>>>,
    ) -> PyResult<Option<f64>> {
        let subscriptions = subscriptions.0;
        let mut next: Option<f64> = None;
        for s in &subscriptions {
            let h = &s.handle;
            let d = attached(py, h.router.next_redelivery(std::slice::from_ref(&h.sub)))?;
            if let Some(d) = d {
                let d = d.as_secs_f64();
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        Ok(next)
    }
}

/// One event loop's publisher for one router: submissions are stored in group
/// commits by a background thread, and their outcomes collected on the loop.
#[pyclass(frozen, module = "sealbus._sealbus", name = "CommitterCore")]
pub struct PyCommitter {
    committer: Committer,
    bell: Arc<Doorbell>,
    /// Per submission in flight, whether it was a single publish (its outcome is a
    /// `Receipt`, not `Receipts`).
    single: Mutex<VecDeque<bool>>,
}

#[pymethods]
impl PyCommitter {
    #[new]
    fn new(py: Python<'_>, router: Arg<Bound<'_, PyRouter>>) -> PyResult<Self> {
        let router = router.0;
        let bell = doorbell(py)?;
        Ok(PyCommitter {
            committer: Committer::new(router.get().router.clone(), bell.clone()),
            bell,
            single: Mutex::new(VecDeque::new()),
        })
    }

    /// The descriptor to give `loop.add_reader`.
    fn fileno(&self) -> i32 {
        self.bell.fileno()
    }

    /// Queue a publish (a buffer plus n + 1 offsets, as `RouterCore.publish` takes
    /// it) for the next group commit. Its outcome comes back from `take`, in
    /// submission order. `timeout`: how long a `block` queue may hold it.
    #[pyo3(signature = (principal, token, event_type, buffer, offsets, kind, version, attrs, timeout, ids, single))]
    #[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
    fn submit(
        &self,
        py: Python<'_>,
        principal: Arg<&str>,
        token: Arg<&[u8]>,
        event_type: Arg<&str>,
        buffer: Arg<&[u8]>,
        offsets: Arg<Vec<usize>>,
        kind: Arg<&str>,
        version: Option<Arg<u32>>,
        attrs: Option<Arg<Bound<'_, PyDict>>>,
        timeout: Option<Arg<f64>>,
        ids: Option<Arg<Vec<String>>>,
        single: Arg<bool>,
    ) -> PyResult<()> {
        let (principal, token, event_type, buffer, offsets, kind, single) = (
            principal.0,
            token.0,
            event_type.0,
            buffer.0,
            offsets.0,
            kind.0,
            single.0,
        );
        let (version, attrs, timeout, ids) = (
            version.map(|a| a.0),
            attrs.map(|a| a.0),
            timeout.map(|a| a.0),
            ids.map(|a| a.0),
        );
        let (kind, end_to_end) = data_kind(kind)?;
        let attrs = attributes(py, attrs.as_ref())?;
        // A timeout beyond what an Instant can hold waits as long as it takes.
        let deadline = timeout_arg(timeout)?.and_then(|t| Instant::now().checked_add(t));
        let parts = attached(py, split_buffer(buffer, &offsets))?;
        if ids.as_ref().is_some_and(|i| i.len() != parts.len()) {
            return attached(
                py,
                Err(sealbus_core::Error::InvalidArgument {
                    name: "ids".into(),
                    reason: "one id per event".into(),
                }),
            );
        }
        let mut ids = ids.map(Vec::into_iter);
        let items = parts
            .into_iter()
            .map(|data| Outgoing {
                kind,
                data,
                id: ids.as_mut().and_then(Iterator::next),
                end_to_end,
            })
            .collect();
        let submission = Submission {
            principal: principal.to_owned(),
            token: token.to_vec(),
            event_type: event_type.to_owned(),
            version,
            attrs,
            items,
            deadline,
        };
        // Recorded first: the committer may finish before this call returns.
        if let Ok(mut s) = self.single.lock() {
            s.push_back(single);
        }
        let submitted = self.committer.submit(submission);
        if submitted.is_err() {
            if let Ok(mut s) = self.single.lock() {
                s.pop_back();
            }
        }
        attached(py, submitted)
    }

    /// Start committing what was submitted (once per turn of the loop).
    fn flush(&self) {
        self.committer.flush();
    }

    /// The outcomes of the publishes finished since the last call, in submission
    /// order: a `Receipt` (single publish), `Receipts`, or the exception instance.
    fn take(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        self.bell.clear();
        let done = self.committer.take();
        let mut single = attached(
            py,
            self.single.lock().map_err(|_| sealbus_core::Error::Closed {
                what: "the event loop's publisher (a thread panicked holding its lock)".into(),
            }),
        )?;
        let mut out = Vec::with_capacity(done.len());
        for outcome in done {
            let one = single.pop_front().unwrap_or(false);
            let obj = match outcome {
                Ok(mut receipts) if one && receipts.len() == 1 => match receipts.pop() {
                    Some(r) => Py::new(py, PyReceipt::from(r))?.into_any(),
                    None => py.None(),
                },
                Ok(receipts) => Py::new(py, PyReceipts::new(receipts))?.into_any(),
                Err(refused) => refused_error(py, *refused)?.into_value(py).into_any(),
            };
            out.push(obj);
        }
        Ok(out)
    }

    /// Refuse further submissions; what was submitted is still committed.
    fn stop(&self) {
        self.committer.stop();
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLoopBell>()?;
    m.add_class::<PyWatch>()?;
    m.add_class::<PyCommitter>()?;
    Ok(())
}
