//! The one way into the core for long calls (after polars' `enter_polars`): inputs
//! are copied out of Python objects by the caller *before* this is called, the GIL is
//! released while the core runs, a call that may wait long looks for signals while it
//! waits (so Ctrl-C raises `KeyboardInterrupt`), and a core error is converted on the
//! way back. Never hold a borrowed Python buffer across the release: the only Python
//! memory touched without the GIL is an immutable `bytes` we hold a reference to, and
//! a caller's output buffer pinned by a buffer export for the call (`pinned.rs`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use sealbus_core::route::{Interrupt, INTERRUPT_SLICE};

use crate::error::to_pyerr;

/// Run `f` with the GIL released and map its error to the Python hierarchy.
pub fn detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> sealbus_core::Result<T>,
    T: Send,
{
    py.detach(f).map_err(|e| to_pyerr(py, e))
}

/// Map a core result computed with the GIL held (short calls).
pub fn attached<T>(py: Python<'_>, r: sealbus_core::Result<T>) -> PyResult<T> {
    r.map_err(|e| to_pyerr(py, e))
}

/// Wait up to `timeout` (None: as long as it takes) for `attempt` to find something,
/// with the GIL released, in slices of at most `INTERRUPT_SLICE`: `attempt(slice)`
/// waits at most `slice` and returns what it found (`found` says whether that is
/// anything). Between two slices that found nothing, the GIL is taken to run
/// Python's signal handlers, and their exception (`KeyboardInterrupt` for Ctrl-C)
/// ends the wait. A wake-up inside a slice returns at once, so the slicing adds
/// nothing to the wake-up path; an attempt that returns before its slice is over
/// (a manual clock, a closed subscription) is not waited on again.
pub fn waiting<T, F>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut attempt: F,
    found: impl Fn(&T) -> bool,
) -> PyResult<T>
where
    F: Send + FnMut(Duration) -> sealbus_core::Result<T>,
    T: Send,
{
    let started = Instant::now();
    loop {
        let left = timeout.map_or(Duration::MAX, |t| t.saturating_sub(started.elapsed()));
        let slice = left.min(INTERRUPT_SLICE);
        let began = Instant::now();
        let out = py.detach(|| attempt(slice)).map_err(|e| to_pyerr(py, e))?;
        if found(&out) || slice >= left || began.elapsed() < slice {
            return Ok(out);
        }
        py.check_signals()?;
    }
}

/// Run `f` with the GIL released, handing it an interrupt hook that takes the GIL
/// to run Python's signal handlers (the core asks it every `INTERRUPT_SLICE` while
/// it blocks, with no lock held, and gives up with `Error::Interrupted` when it
/// answers true). Returns `f`'s result and the exception a handler raised, if any:
/// the caller raises that in place of the core's `Interrupted`.
pub fn interruptible<R, F>(py: Python<'_>, f: F) -> (R, Option<PyErr>)
where
    F: Send + FnOnce(Interrupt<'_>) -> R,
    R: Send,
{
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let hook = || {
        // A closure, not the method path: `attach` needs it general over the lifetime.
        #[allow(clippy::redundant_closure_for_method_calls)]
        let Err(e) = Python::attach(|py| py.check_signals()) else {
            return false;
        };
        if let Ok(mut slot) = raised.lock() {
            *slot = Some(e);
        }
        true
    };
    let r = py.detach(|| f(&hook));
    (r, raised.into_inner().ok().flatten())
}
