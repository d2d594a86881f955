//! A polled batch's end-to-end events, opened for the consumer in one call: each
//! distinct data key is unwrapped once, every payload opened straight into one buffer
//! with the GIL released. Events that are not sealed end to end keep their data. When
//! the batch does not open as a whole, events are opened one by one so that one
//! tampered event does not hide the others; each gets its own error. Opened data is
//! validated against its type's schema here too (the router could not see it).

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use sealbus_core::envelope::{Event, E2E_CONTENT_TYPE};
use sealbus_core::route::Router;
use sealbus_core::seal::wrap::RecipientKey;
use sealbus_core::seal::{e2e, AadFields, BatchJob};
use sealbus_core::Error;

use crate::error::to_pyerr;
use crate::lent::LentBytes;

/// The attributes an end-to-end payload is bound to: the producer seals with schema
/// version 0 (the router cannot see the data to validate it).
fn aad_of(e: &Event) -> AadFields<'_> {
    AadFields {
        event_id: &e.id,
        event_type: &e.event_type,
        source: &e.source,
        schema_version: 0,
    }
}

fn is_e2e(e: &Event) -> bool {
    e.datacontenttype.as_deref() == Some(E2E_CONTENT_TYPE)
}

type Opened = (Vec<u8>, Vec<usize>, Vec<Option<Error>>);

fn open_one(
    key: &RecipientKey,
    rid: &str,
    e: &Event,
    frame: &[u8],
) -> sealbus_core::Result<Vec<u8>> {
    let aad = [aad_of(e)];
    Ok(e2e::open_job_for(key, rid, &aad, frame, &[0, frame.len()])?
        .run_to_vec()?
        .0)
}

/// Validate each opened event's data; a failure becomes that event's error.
fn validate(router: &Router, events: &[&Event], opened: &[bool], o: &Opened) -> Vec<Option<Error>> {
    let (out, offs, _) = o;
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if !opened[i] {
                return None;
            }
            router
                .validate_data(&e.event_type, &out[offs[i]..offs[i + 1]])
                .err()
        })
        .collect()
}

/// `skip[i]`: event `i` was not delivered with data (its key destroyed, say).
fn open_all(
    key: &RecipientKey,
    rid: &str,
    events: &[&Event],
    skip: &[bool],
    data: &[u8],
    offsets: &[usize],
) -> Opened {
    let n = events.len();
    let sealed: Vec<bool> = events
        .iter()
        .zip(skip)
        .map(|(e, s)| !s && is_e2e(e))
        .collect();
    if n > 0 && sealed.iter().all(|&s| s) {
        let aads: Vec<AadFields<'_>> = events.iter().map(|e| aad_of(e)).collect();
        if let Ok(job) = e2e::open_job_for(key, rid, &aads, data, offsets) {
            let mut out = vec![0u8; job.out_len()];
            if job.run(&mut out).is_ok() {
                return (
                    out,
                    job.out_offsets().to_vec(),
                    (0..n).map(|_| None).collect(),
                );
            }
        }
    }
    let mut out = Vec::with_capacity(data.len());
    let mut out_offsets = Vec::with_capacity(n + 1);
    out_offsets.push(0);
    let mut errors = Vec::with_capacity(n);
    for (i, e) in events.iter().enumerate() {
        let item = data.get(offsets[i]..offsets[i + 1]).unwrap_or_default();
        if sealed[i] {
            match open_one(key, rid, e, item) {
                Ok(p) => {
                    out.extend_from_slice(&p);
                    errors.push(None);
                }
                Err(err) => errors.push(Some(err)),
            }
        } else {
            out.extend_from_slice(item);
            errors.push(None);
        }
        out_offsets.push(out.len());
    }
    (out, out_offsets, errors)
}

/// `None` when no event of the batch is sealed end to end; else
/// `(LentBytes, offsets, [None | exception per event], [event type | None per event])`,
/// the type given for each event opened here (the consumer validates those).
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_delivered<'py>(
    py: Python<'py>,
    router: Option<&Router>,
    key: &RecipientKey,
    recipient_id: &str,
    events: &[&Event],
    skip: &[bool],
    data: &[u8],
    offsets: &[usize],
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    if !events.iter().any(|e| is_e2e(e)) {
        return Ok(None);
    }
    let (out, out_offsets, errors) = py.detach(|| {
        let mut o = open_all(key, recipient_id, events, skip, data, offsets);
        if let Some(router) = router {
            let opened: Vec<bool> = (0..events.len())
                .map(|i| o.2[i].is_none() && !skip[i] && is_e2e(events[i]))
                .collect();
            for (i, err) in validate(router, events, &opened, &o)
                .into_iter()
                .enumerate()
            {
                if err.is_some() {
                    o.2[i] = err;
                }
            }
        }
        o
    });
    let errs = PyList::empty(py);
    let types = PyList::empty(py);
    for ((e, s), ev) in errors.into_iter().zip(skip).zip(events) {
        let opened = e.is_none() && !s && is_e2e(ev);
        match e {
            None => errs.append(py.None())?,
            Some(e) => errs.append(to_pyerr(py, e).into_value(py))?,
        }
        if opened {
            types.append(&*ev.event_type)?;
        } else {
            types.append(py.None())?;
        }
    }
    let lent = Py::new(py, LentBytes::new(out))?;
    PyTuple::new(
        py,
        [
            lent.into_any().bind(py).clone(),
            out_offsets.into_pyobject(py)?.into_any(),
            errs.into_any(),
            types.into_any(),
        ],
    )
    .map(Some)
}
