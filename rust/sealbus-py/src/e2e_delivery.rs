//! A polled batch's end-to-end events, opened for the consumer in one core call
//! (`Router::open_end_to_end_ahead`: each data key unwrapped once, every payload opened
//! and validated straight into one buffer, the next batch opened ahead) with the GIL
//! released, and handed to Python.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use sealbus_core::envelope::Event;
use sealbus_core::route::{Router, Subscription};
use sealbus_core::seal::wrap::RecipientKey;

use crate::error::to_pyerr;
use crate::gil::detached;
use crate::lent::LentBytes;

/// `None` when no event of the batch is sealed end to end (`sealed[i]`: event `i`'s
/// slot in `data` is an end-to-end frame); else `(LentBytes, offsets, [None |
/// exception per event])`, where only end-to-end events can carry an error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_delivered<'py>(
    py: Python<'py>,
    router: &Arc<Router>,
    sub: &Arc<Subscription>,
    validate: bool,
    key: &Arc<RecipientKey>,
    recipient_id: &str,
    events: &[&Event],
    sealed: &[bool],
    data: &[u8],
    offsets: &[usize],
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    if !sealed.iter().any(|&s| s) {
        return Ok(None);
    }
    let opened = detached(py, || {
        Ok(router.open_end_to_end_ahead(
            sub,
            key,
            recipient_id,
            events,
            sealed,
            data,
            offsets,
            validate,
        ))
    })?;
    let errs = PyList::empty(py);
    for e in opened.errors {
        match e {
            None => errs.append(py.None())?,
            Some(e) => errs.append(to_pyerr(py, e).into_value(py))?,
        }
    }
    let lent = Py::new(py, LentBytes::recycled(opened.out, Arc::clone(sub)))?;
    PyTuple::new(
        py,
        [
            lent.into_any().bind(py).clone(),
            opened.offsets.into_pyobject(py)?.into_any(),
            errs.into_any(),
        ],
    )
    .map(Some)
}
