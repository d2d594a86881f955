//! The one way into the core for long calls (after polars' `enter_polars`): inputs
//! are copied out of Python objects by the caller *before* this is called, the GIL is
//! released while the core runs, and a core error is converted on the way back.
//! Never hold a borrowed Python buffer across the release.

use pyo3::prelude::*;

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
