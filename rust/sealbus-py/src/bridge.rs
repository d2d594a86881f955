//! Column helpers for the NATS bridge (`sealbus.nats`): a batch of events to and from
//! the CloudEvents JSON format in one call each, with the GIL released, instead of a
//! Python object and a handful of attribute reads per event.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use sealbus_core::envelope::{parse_time, DataKind, Event};
use sealbus_core::error::Error;
use sealbus_core::route::{Item, Outgoing, Router};
use sealbus_core::wire;

use crate::error::to_pyerr;
use crate::gil::detached;
use crate::router::{attributes, data_kind, refused_error, split_buffer, timeout_arg, PyRouter};

/// What `DeliveryBatch.cloudevents` returns: the JSON of the exportable events, one
/// after the other, their boundaries, and per event its index in the batch, type
/// and schema version.
pub(crate) type CloudEvents = (
    Py<PyBytes>,
    Vec<usize>,
    Vec<usize>,
    Vec<String>,
    Vec<Option<u32>>,
);

/// A delivered event as a batch holds it: the event, its attempt, and why its data
/// could not be opened (key destroyed?, reason).
pub(crate) type Delivered = (Item, u32, Option<(bool, String)>);

/// The CloudEvents JSON format of every event of a delivered batch whose data could
/// be opened (`data` holds the opened data at `offsets`). An event sealed end to end
/// keeps its frame as its data (`data_base64`: the router cannot read it, and the
/// consumers on the other side open it); an event whose key was destroyed has no
/// JSON form here and is left out.
pub(crate) fn batch_cloudevents(
    py: Python<'_>,
    opened: &[Delivered],
    data: &[u8],
    offsets: &[usize],
    end_to_end: &[usize],
) -> CloudEvents {
    let c = py.detach(|| {
        wire::cloudevents(
            opened
                .iter()
                .map(|(item, _, unopened)| (&**item, unopened.is_none())),
            data,
            offsets,
            end_to_end,
        )
    });
    (
        PyBytes::new(py, &c.json).unbind(),
        c.bounds,
        c.index,
        c.types,
        c.versions,
    )
}

/// One run of consecutive events that share every attribute a local publish takes
/// once per call: `(end, source, kind, subject, traceparent, dataschema,
/// datacontenttype, schema version)`; `end` is one past its last event.
pub(crate) type Run = (
    usize,
    String,
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
);

/// What `cloudevent_runs` returns: the runs, the events' data one after the other,
/// its boundaries, and each event's time.
type Parsed = (Vec<Run>, Py<PyBytes>, Vec<usize>, Vec<String>);

fn kind_name(k: DataKind) -> &'static str {
    match k {
        DataKind::Json => "json",
        DataKind::Binary => "binary",
        DataKind::None => "none",
    }
}

/// A run as Python takes it (see [`Run`]).
pub(crate) fn run_tuple(r: wire::Run) -> Run {
    (
        r.end,
        r.source,
        kind_name(r.kind),
        r.subject,
        r.traceparent,
        r.dataschema,
        r.datacontenttype,
        r.version,
    )
}

/// Parse `len(offsets) - 1` CloudEvents (JSON format) laid out in `buffer`, check
/// that event `i` has id `ids[i]` and type `event_type`, and return their data
/// concatenated, its boundaries, the runs of consecutive events that share
/// attributes and schema version (`versions[i]`), and each event's `time` as its
/// producer stamped it. An event that does not parse or does not match raises
/// `InvalidEvent` naming its index.
#[pyfunction]
#[allow(clippy::needless_pass_by_value)] // PyO3 extracts the lists into Vecs
pub fn cloudevent_runs(
    py: Python<'_>,
    buffer: &[u8],
    offsets: Vec<usize>,
    ids: Vec<String>,
    event_type: &str,
    versions: Vec<Option<u32>>,
) -> PyResult<Parsed> {
    let event_type = event_type.to_owned();
    let cut = detached(py, move || {
        wire::runs(buffer, &offsets, &ids, &event_type, &versions)
    })?;
    Ok((
        cut.runs.into_iter().map(run_tuple).collect(),
        PyBytes::new(py, &cut.data).unbind(),
        cut.bounds,
        cut.times,
    ))
}

/// One run an importer hands over: `(principal, token, type, schema version, kind
/// ("json", "binary" or "e2e": end-to-end frames),
/// attributes, data buffer, offsets, event ids, event times)`.
type RunIn<'py> = (
    String,
    Bound<'py, PyBytes>,
    String,
    Option<u32>,
    String,
    Option<Bound<'py, PyDict>>,
    Bound<'py, PyBytes>,
    Vec<usize>,
    Vec<String>,
    Vec<String>,
);

/// A run made ready for the router, or why it was refused as a whole.
struct Prepared {
    events: Vec<Event>,
    /// The run's refusal (policy, an invalid attribute...), or the events refused
    /// one by one by the schema, by index in the run.
    refused: Option<Error>,
    schema_refused: Vec<(usize, Error)>,
}

fn prepare_run(router: &Router, run: &RunOut) -> Prepared {
    let items = |parts: Vec<Vec<u8>>, ids: Vec<String>| -> Vec<Outgoing> {
        parts
            .into_iter()
            .zip(ids)
            .map(|(data, id)| Outgoing {
                kind: run.kind,
                data,
                id: Some(id),
                end_to_end: run.end_to_end,
            })
            .collect()
    };
    // The events keep the time their producer stamped: it is when they happened,
    // wherever they are stored again.
    let prepare = |parts: Vec<Vec<u8>>, ids: Vec<String>, times: &[(u64, std::sync::Arc<str>)]| {
        router
            .prepare(
                &run.principal,
                &run.token,
                &run.event_type,
                run.version,
                &run.attrs,
                items(parts, ids),
            )
            .map(|mut events| {
                for (e, (ns, text)) in events.iter_mut().zip(times) {
                    e.time_ns = *ns;
                    e.time = std::sync::Arc::clone(text);
                }
                events
            })
    };
    match prepare(run.parts.clone(), run.ids.clone(), &run.times) {
        Ok(events) => Prepared {
            events,
            refused: None,
            schema_refused: Vec::new(),
        },
        Err(Error::Validation { .. }) if run.parts.len() > 1 => {
            // One bad event must not take its neighbours with it: each alone, in order.
            let mut out = Prepared {
                events: Vec::with_capacity(run.parts.len()),
                refused: None,
                schema_refused: Vec::new(),
            };
            for (i, (data, id)) in run.parts.iter().zip(&run.ids).enumerate() {
                match prepare(vec![data.clone()], vec![id.clone()], &run.times[i..=i]) {
                    Ok(mut one) => out.events.append(&mut one),
                    Err(e @ Error::Validation { .. }) => out.schema_refused.push((i, e)),
                    Err(e) => {
                        out.events.clear();
                        out.schema_refused.clear();
                        out.refused = Some(e);
                        break;
                    }
                }
            }
            out
        }
        Err(e @ Error::Validation { .. }) => Prepared {
            events: Vec::new(),
            refused: None,
            schema_refused: vec![(0, e)],
        },
        Err(e) => Prepared {
            events: Vec::new(),
            refused: Some(e),
            schema_refused: Vec::new(),
        },
    }
}

fn exception(py: Python<'_>, e: Error) -> Py<PyAny> {
    to_pyerr(py, e).into_value(py).into_any()
}

/// A run copied out of Python, ready to cross into the core without the GIL.
struct RunOut {
    principal: String,
    token: Vec<u8>,
    event_type: String,
    version: Option<u32>,
    kind: DataKind,
    /// The data are end-to-end frames, kept as their producer sealed them.
    end_to_end: bool,
    attrs: sealbus_core::envelope::Attributes,
    parts: Vec<Vec<u8>>,
    ids: Vec<String>,
    /// Each event's time as its producer stamped it: `(ns since the epoch, text)`.
    times: Vec<(u64, std::sync::Arc<str>)>,
}

/// What `publish_runs` says of each run: its refusal as a whole (or None), and the
/// events the schema refused, as `(index in the run, error)`.
type RunResult = (Option<Py<PyAny>>, Vec<(usize, Py<PyAny>)>);

/// Publish runs of events, each run with its own principal, type, schema version and
/// attributes, as one commit to the log (one fsync for the lot), in order. Each run
/// passes policy and schema as a `publish` would; a run refused as a whole, or an
/// event its schema refuses, is left out and reported, the others are stored. A
/// refusal of the commit itself (backpressure, a closed router, the log) raises, as
/// `publish` does, with the receipts of what was stored before it.
#[pyfunction]
#[pyo3(signature = (core, runs, block_timeout=None))]
pub fn publish_runs(
    py: Python<'_>,
    core: &PyRouter,
    runs: Vec<RunIn<'_>>,
    block_timeout: Option<f64>,
) -> PyResult<Vec<RunResult>> {
    let block_timeout = timeout_arg(block_timeout)?;
    let mut outs = Vec::with_capacity(runs.len());
    for (principal, token, event_type, version, kind, attrs, buffer, offsets, ids, times) in runs {
        let (kind, end_to_end) = data_kind(&kind)?;
        let parts = split_buffer(buffer.as_bytes(), &offsets).map_err(|e| to_pyerr(py, e))?;
        if parts.len() != ids.len() || parts.len() != times.len() {
            return Err(to_pyerr(
                py,
                Error::InvalidArgument {
                    name: "ids".into(),
                    reason: "one id and one time per event".into(),
                },
            ));
        }
        let times = times
            .into_iter()
            .map(|t| Ok((parse_time(&t)?, std::sync::Arc::from(t))))
            .collect::<Result<Vec<_>, Error>>()
            .map_err(|e| to_pyerr(py, e))?;
        outs.push(RunOut {
            principal,
            token: token.as_bytes().to_vec(),
            event_type,
            version,
            kind,
            end_to_end,
            attrs: attributes(py, attrs.as_ref())?,
            parts,
            ids,
            times,
        });
    }
    let router = core.router.clone();
    let (results, committed) = py.detach(move || {
        let mut all = Vec::new();
        let mut results = Vec::with_capacity(outs.len());
        for run in outs {
            let mut p = prepare_run(&router, &run);
            all.append(&mut p.events);
            results.push((p.refused, p.schema_refused));
        }
        let committed = if all.is_empty() {
            Ok(Vec::new())
        } else {
            router.enqueue(all, block_timeout)
        };
        (results, committed)
    });
    if let Err(refused) = committed {
        return Err(refused_error(py, *refused)?);
    }
    Ok(results
        .into_iter()
        .map(|(whole, each)| {
            (
                whole.map(|e| exception(py, e)),
                each.into_iter()
                    .map(|(i, e)| (i, exception(py, e)))
                    .collect(),
            )
        })
        .collect())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cloudevent_runs, m)?)?;
    m.add_function(wrap_pyfunction!(publish_runs, m)?)
}
