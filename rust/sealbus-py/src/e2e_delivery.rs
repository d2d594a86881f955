//! A polled batch's end-to-end events, opened for the consumer in one call: each
//! distinct data key is unwrapped once, every payload opened straight into one buffer
//! with the GIL released. Events that are not sealed end to end keep their data. When
//! the batch does not open as a whole, events are opened one by one so that one
//! tampered event does not hide the others; each gets its own error. Opened data is
//! validated against its type's schema here too (the router could not see it), and an
//! event that fails keeps no data in the buffer.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use sealbus_core::envelope::Event;
use sealbus_core::route::Router;
use sealbus_core::seal::wrap::RecipientKey;
use sealbus_core::seal::{e2e, AadFields, BatchJob};
use sealbus_core::Error;

use crate::error::to_pyerr;
use crate::gil::detached;
use crate::lent::LentBytes;

/// The attributes an end-to-end payload is bound to: the producer seals with schema
/// version 0 (the router cannot see the data to validate it), and names itself as
/// the router it published to knows it (docs/FORMAT.md). An event imported from
/// another router has the source `<router>/<principal>` here, and is bound to
/// `<principal>`: that reading comes first.
fn aad_of(e: &Event) -> AadFields<'_> {
    let source = origin_of(&e.source).unwrap_or(&e.source);
    AadFields {
        event_id: &e.id,
        event_type: &e.event_type,
        source,
        schema_version: 0,
    }
}

/// `<principal>` of a source `<router>/<principal>` (a router's name is not empty).
fn origin_of(source: &str) -> Option<&str> {
    source
        .split_once('/')
        .filter(|(router, _)| !router.is_empty())
        .map(|(_, principal)| principal)
}

/// The other reading of a source with a `/`: a local principal whose name holds one.
fn local_aad_of(e: &Event) -> Option<AadFields<'_>> {
    origin_of(&e.source).is_some().then(|| AadFields {
        source: &e.source,
        ..aad_of(e)
    })
}

/// The batch's data with its end-to-end events opened: `n + 1` offsets, and an error
/// for each end-to-end event that could not be opened (its slot is empty).
struct Opened {
    out: Vec<u8>,
    offsets: Vec<usize>,
    errors: Vec<Option<Error>>,
}

fn open_one(
    key: &RecipientKey,
    rid: &str,
    e: &Event,
    frame: &[u8],
) -> sealbus_core::Result<Vec<u8>> {
    let open = |aad: AadFields<'_>| -> sealbus_core::Result<Vec<u8>> {
        let aad = [aad];
        Ok(e2e::open_job_for(key, rid, &aad, frame, &[0, frame.len()])?
            .run_to_vec()?
            .0)
    };
    match (open(aad_of(e)), local_aad_of(e)) {
        (Err(Error::Integrity { .. }), Some(local)) => open(local),
        (first, _) => first,
    }
}

/// Open the sealed events (`sealed[i]`) of a batch whose data is `data` + `offsets`.
/// When every event is sealed, the frames are opened in place, as one job, straight
/// into the result; in a mixed batch the frames are gathered first.
fn open_all(
    key: &RecipientKey,
    rid: &str,
    events: &[&Event],
    sealed: &[bool],
    data: &[u8],
    offsets: &[usize],
) -> Opened {
    let n = events.len();
    let item = |i: usize| data.get(offsets[i]..offsets[i + 1]).unwrap_or_default();
    let idx: Vec<usize> = (0..n).filter(|&i| sealed[i]).collect();
    let aads: Vec<AadFields<'_>> = idx.iter().map(|&i| aad_of(events[i])).collect();
    let gathered;
    let (frames, frame_offsets): (&[u8], Vec<usize>) = if idx.len() == n {
        (data, offsets.to_vec())
    } else {
        let mut g = Vec::with_capacity(idx.iter().map(|&i| item(i).len()).sum());
        let mut o = Vec::with_capacity(idx.len() + 1);
        o.push(0);
        for &i in &idx {
            g.extend_from_slice(item(i));
            o.push(g.len());
        }
        gathered = g;
        (&gathered, o)
    };
    let whole = e2e::open_job_for(key, rid, &aads, frames, &frame_offsets).and_then(|job| {
        let mut out = vec![0u8; job.out_len()];
        job.run(&mut out)?;
        Ok((out, job.out_offsets().to_vec()))
    });
    if let Ok((plain, plain_offsets)) = whole {
        if idx.len() == n {
            return Opened {
                out: plain,
                offsets: plain_offsets,
                errors: (0..n).map(|_| None).collect(),
            };
        }
        // Mixed: interleave the opened plaintexts with the other events' data.
        let mut out = Vec::with_capacity(plain.len() + data.len() - frames.len());
        let mut o = Vec::with_capacity(n + 1);
        o.push(0);
        let mut k = 0;
        for (i, &s) in sealed.iter().enumerate() {
            if s {
                out.extend_from_slice(&plain[plain_offsets[k]..plain_offsets[k + 1]]);
                k += 1;
            } else {
                out.extend_from_slice(item(i));
            }
            o.push(out.len());
        }
        return Opened {
            out,
            offsets: o,
            errors: (0..n).map(|_| None).collect(),
        };
    }
    // Something does not open: event by event, so each bad one gets its own error.
    let mut out = Vec::with_capacity(data.len());
    let mut o = Vec::with_capacity(n + 1);
    o.push(0);
    let mut errors = Vec::with_capacity(n);
    for (i, e) in events.iter().enumerate() {
        if sealed[i] {
            match open_one(key, rid, e, item(i)) {
                Ok(p) => {
                    out.extend_from_slice(&p);
                    errors.push(None);
                }
                Err(err) => errors.push(Some(err)),
            }
        } else {
            out.extend_from_slice(item(i));
            errors.push(None);
        }
        o.push(out.len());
    }
    Opened {
        out,
        offsets: o,
        errors,
    }
}

/// Validate each opened event's data against its type's schema; a failure becomes
/// that event's error and its data leaves the buffer (compacted only then).
fn validate(router: &Router, events: &[&Event], sealed: &[bool], o: &mut Opened) {
    // The common batch: every event sealed, opened, of one type (one publish).
    let uniform = events.first().is_some_and(|first| {
        events
            .iter()
            .zip(sealed)
            .zip(&o.errors)
            .all(|((e, &s), err)| s && err.is_none() && e.event_type == first.event_type)
    });
    let batch = if uniform {
        router
            .validate_data_batch(&events[0].event_type, &o.out, &o.offsets)
            .ok()
    } else {
        None
    };
    let found: Vec<Option<Error>> = batch.unwrap_or_else(|| {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if sealed[i] && o.errors[i].is_none() {
                    let data = &o.out[o.offsets[i]..o.offsets[i + 1]];
                    router.validate_data(&e.event_type, data).err()
                } else {
                    None
                }
            })
            .collect()
    });
    let mut failed = false;
    for (i, err) in found.into_iter().enumerate() {
        if err.is_some() {
            o.errors[i] = err;
            failed = true;
        }
    }
    if !failed {
        return;
    }
    let mut out = Vec::with_capacity(o.out.len());
    let mut offsets = Vec::with_capacity(o.offsets.len());
    offsets.push(0);
    for (i, err) in o.errors.iter().enumerate() {
        if !(sealed[i] && err.is_some()) {
            out.extend_from_slice(&o.out[o.offsets[i]..o.offsets[i + 1]]);
        }
        offsets.push(out.len());
    }
    o.out = out;
    o.offsets = offsets;
}

/// `None` when no event of the batch is sealed end to end (`sealed[i]`: event `i`'s
/// slot in `data` is an end-to-end frame); else `(LentBytes, offsets, [None |
/// exception per event])`, where only end-to-end events can carry an error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_delivered<'py>(
    py: Python<'py>,
    router: Option<&Router>,
    key: &RecipientKey,
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
        let mut o = open_all(key, recipient_id, events, sealed, data, offsets);
        if let Some(router) = router {
            validate(router, events, sealed, &mut o);
        }
        Ok(o)
    })?;
    let errs = PyList::empty(py);
    for e in opened.errors {
        match e {
            None => errs.append(py.None())?,
            Some(e) => errs.append(to_pyerr(py, e).into_value(py))?,
        }
    }
    let lent = Py::new(py, LentBytes::new(opened.out))?;
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
