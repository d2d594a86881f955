//! Binds `sealbus_core::wire`: a bridge message encoded, or checked, opened and cut
//! into runs, in one call each with the GIL released, so that the bridge's loops
//! hand a message to Rust once instead of cutting its columns in the interpreter.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use sealbus_core::wire::{self, Opened};
use sealbus_core::Error;

use crate::bridge::{run_tuple, Run};
use crate::gil::{attached, detached};
use crate::identity::PySigner;
use crate::seal::PyKeyRing;

/// The body, `Nats-Msg-Id` and signature header of the message carrying events
/// `offsets[0]..offsets[-1]` of `cloudevents` (absolute boundaries, one more than
/// `ids`), all of `event_type`.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the message's columns
#[allow(clippy::needless_pass_by_value)] // PyO3 extracts the lists into Vecs
fn wire_encode(
    py: Python<'_>,
    router: &str,
    event_type: &str,
    cloudevents: &[u8],
    offsets: Vec<usize>,
    ids: Vec<String>,
    versions: Vec<Option<u32>>,
    transit: &PyKeyRing,
    signer: &PySigner,
) -> PyResult<(Py<PyBytes>, String, String)> {
    let ring = transit.ring();
    let out = detached(py, || {
        wire::encode(
            router,
            event_type,
            cloudevents,
            &offsets,
            &ids,
            &versions,
            &ring,
            signer.signer(),
        )
    })?;
    Ok((
        PyBytes::new(py, &out.body).unbind(),
        out.msg_id,
        out.signature,
    ))
}

/// The key `trust` holds for the router `body` names (None: not trusted); a body
/// too short to name one is a `WireError`.
fn trusted_key(
    py: Python<'_>,
    body: &[u8],
    trust: &Bound<'_, PyDict>,
) -> PyResult<Option<Vec<u8>>> {
    let router = attached(py, wire::peek_router(body))?;
    match trust.get_item(router)? {
        Some(key) => Ok(Some(key.extract::<Vec<u8>>()?)),
        None => Ok(None),
    }
}

/// Check a message's signature against `trust` (router name → Ed25519 public key),
/// then open every frame: `(router, type, ids, schema versions, CloudEvents JSON,
/// boundaries)`. Raises `SignatureRefused`, `WireError`, `IntegrityError` or
/// `KeyNotFound`.
#[pyfunction]
#[pyo3(signature = (subject, body, signature, trust, transit))]
#[allow(clippy::type_complexity)] // the message's columns
fn wire_open(
    py: Python<'_>,
    subject: &str,
    body: &[u8],
    signature: Option<&str>,
    trust: &Bound<'_, PyDict>,
    transit: &PyKeyRing,
) -> PyResult<(
    String,
    String,
    Vec<String>,
    Vec<Option<u32>>,
    Py<PyBytes>,
    Vec<usize>,
)> {
    let (key, ring) = (trusted_key(py, body, trust)?, transit.ring());
    let o = detached(py, || {
        wire::open(subject, body, signature, key.as_deref(), &ring)
    })?;
    Ok((
        o.router,
        o.event_type,
        o.ids,
        o.versions,
        PyBytes::new(py, &o.plain).unbind(),
        o.offsets,
    ))
}

/// `wire_open`, then the events cut into runs as `cloudevent_runs` cuts them:
/// `(router, type, ids, runs, data, boundaries, times)`. An event that is not a
/// CloudEvents event of the message's type, or not the one its header names, makes the
/// whole message a `WireError`.
#[pyfunction]
#[pyo3(signature = (subject, body, signature, trust, transit))]
#[allow(clippy::type_complexity)] // the message's columns
fn wire_open_runs(
    py: Python<'_>,
    subject: &str,
    body: &[u8],
    signature: Option<&str>,
    trust: &Bound<'_, PyDict>,
    transit: &PyKeyRing,
) -> PyResult<(
    String,
    String,
    Vec<String>,
    Vec<Run>,
    Py<PyBytes>,
    Vec<usize>,
    Vec<String>,
)> {
    let (key, ring) = (trusted_key(py, body, trust)?, transit.ring());
    let (o, cut) =
        detached(py, || {
            let o: Opened = wire::open(subject, body, signature, key.as_deref(), &ring)?;
            let cut = wire::runs(&o.plain, &o.offsets, &o.ids, &o.event_type, &o.versions)
                .map_err(|e| Error::Wire {
                    reason: "cloudevent",
                    offset: 0,
                    detail: format!("not CloudEvents of {} ({e})", o.event_type),
                })?;
            Ok((o, cut))
        })?;
    Ok((
        o.router,
        o.event_type,
        o.ids,
        cut.runs.into_iter().map(run_tuple).collect(),
        PyBytes::new(py, &cut.data).unbind(),
        cut.bounds,
        cut.times,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(wire_encode, m)?)?;
    m.add_function(wrap_pyfunction!(wire_open, m)?)?;
    m.add_function(wrap_pyfunction!(wire_open_runs, m)?)
}
