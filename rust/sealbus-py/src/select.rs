//! Binding of `route::Selector`: one thread waits on several subscriptions.

use std::sync::Arc;

use pyo3::prelude::*;
use sealbus_core::route::Selector;

use crate::args::Arg;
use crate::error::invalid;
use crate::gil::waiting;
use crate::router::{
    monotonic_ns, seconds, timeout_arg, wrap_opened, Handle, OpenedParts, PyDeliveryBatch,
    PyMessage, PySubscription,
};

/// The Rust side of `sealbus.Selector`.
#[pyclass(frozen, module = "sealbus._sealbus", name = "SelectorCore")]
pub struct PySelector {
    handles: Vec<Handle>,
    inner: Arc<Selector>,
}

#[pymethods]
impl PySelector {
    #[new]
    #[pyo3(signature = (subscriptions, busy_poll = Arg(0.0)))]
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts the list into a Vec
    fn new(
        subscriptions: Arg<Vec<PyRef<'_, PySubscription>>>,
        busy_poll: Arg<f64>,
    ) -> PyResult<Self> {
        let (subscriptions, busy_poll) = (subscriptions.0, busy_poll.0);
        let busy_poll = seconds("busy_poll", busy_poll)?;
        let handles: Vec<Handle> = subscriptions.iter().map(|s| s.handle.clone()).collect();
        let Some(first) = handles.first() else {
            return Err(invalid(
                "subscriptions",
                "a selector needs at least one subscription",
            )
            .into());
        };
        if let Some(other) = handles
            .iter()
            .find(|h| !Arc::ptr_eq(&h.router, &first.router))
        {
            return Err(invalid(
                "subscriptions",
                format!(
                    "subscription {:?} belongs to another router than {:?}: a selector \
                     watches the subscriptions of one router",
                    other.sub.name, first.sub.name
                ),
            )
            .into());
        }
        for (i, h) in handles.iter().enumerate() {
            if handles[..i].iter().any(|o| Arc::ptr_eq(&o.sub, &h.sub)) {
                return Err(invalid(
                    "subscriptions",
                    format!("subscription {:?} is given twice", h.sub.name),
                )
                .into());
            }
        }
        let subs = handles.iter().map(|h| h.sub.clone()).collect();
        Ok(PySelector {
            handles,
            inner: Arc::new(Selector::new(subs, busy_poll)),
        })
    }

    fn __len__(&self) -> usize {
        self.handles.len()
    }

    /// For each subscription with events, its index and up to `max_messages` of
    /// them as one `DeliveryBatch`; waits up to `timeout` (None: forever) for any.
    #[pyo3(signature = (max_messages, timeout))]
    fn poll_batch(
        &self,
        py: Python<'_>,
        max_messages: Arg<usize>,
        timeout: Option<Arg<f64>>,
    ) -> PyResult<Vec<(usize, PyDeliveryBatch)>> {
        let (max_messages, timeout) = (max_messages.0, timeout.map(|a| a.0));
        let timeout = timeout_arg(timeout)?;
        let (router, sel) = (self.router().clone(), self.inner.clone());
        let ready = waiting(
            py,
            timeout,
            move |slice| {
                let selected = router.select(&sel, max_messages, Some(slice))?;
                let received_ns = monotonic_ns();
                Ok(selected
                    .into_iter()
                    .map(|(i, polled)| (i, OpenedParts::open(&router, polled, received_ns)))
                    .collect::<Vec<_>>())
            },
            |ready| !ready.is_empty(),
        )?;
        ready
            .into_iter()
            .map(|(i, parts)| Ok((i, parts.into_batch(py, self.handles[i].clone())?)))
            .collect()
    }

    /// Like `poll_batch`, with a `Message` per event.
    #[pyo3(signature = (max_messages, timeout))]
    fn poll(
        &self,
        py: Python<'_>,
        max_messages: Arg<usize>,
        timeout: Option<Arg<f64>>,
    ) -> PyResult<Vec<(usize, Vec<Py<PyMessage>>)>> {
        let (max_messages, timeout) = (max_messages.0, timeout.map(|a| a.0));
        let timeout = timeout_arg(timeout)?;
        let (router, sel) = (self.router().clone(), self.inner.clone());
        let ready = waiting(
            py,
            timeout,
            move |slice| {
                let selected = router.select(&sel, max_messages, Some(slice))?;
                Ok(selected
                    .into_iter()
                    .map(|(i, polled)| (i, router.open(polled)))
                    .collect::<Vec<_>>())
            },
            |ready| !ready.is_empty(),
        )?;
        ready
            .into_iter()
            .map(|(i, opened)| Ok((i, wrap_opened(py, &self.handles[i], opened)?)))
            .collect()
    }
}

impl PySelector {
    fn router(&self) -> &Arc<sealbus_core::route::Router> {
        // Never empty: `new` refuses an empty selector.
        &self.handles[0].router
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySelector>()?;
    Ok(())
}
