//! Binding of the audit trail: the writer, verification, inclusion proofs.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sealbus_core::audit::{self, Checkpoint, Proof};
use sealbus_core::Error;
use serde_json::{Map, Value};

use crate::args::{Arg, FsPath};
use crate::gil::{attached, detached};

fn details(json: &str) -> sealbus_core::Result<Map<String, Value>> {
    match serde_json::from_str(json) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::InvalidArgument {
            name: "details".into(),
            reason: "a JSON object".into(),
        }),
    }
}

/// The writer of a router's audit trail (``sealbus.audit.AuditTrail`` wraps it):
/// entries are queued by ``record`` and written and fdatasynced by the core's own
/// thread, which never takes the interpreter lock.
#[pyclass(frozen, module = "sealbus._sealbus", name = "AuditTrailCore")]
pub struct PyTrail {
    inner: audit::Writer,
}

#[pymethods]
impl PyTrail {
    #[new]
    fn new(
        py: Python<'_>,
        dir: Arg<FsPath>,
        seed: Arg<Vec<u8>>,
        checkpoint_every: Arg<u64>,
        sync_interval: Arg<f64>,
    ) -> PyResult<Self> {
        let (dir, seed, checkpoint_every) = (dir.0, seed.0, checkpoint_every.0);
        let interval =
            Duration::try_from_secs_f64(sync_interval.0).map_err(|_| Error::InvalidArgument {
                name: "sync_interval".into(),
                reason: "a number of seconds, 0 or more".into(),
            });
        let interval = attached(py, interval)?;
        let inner = detached(py, move || {
            audit::Writer::open(&dir, &seed, checkpoint_every, interval)
        })?;
        Ok(Self { inner })
    }

    #[getter]
    fn public_key(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        attached(py, self.inner.public_key())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let n = attached(py, self.inner.len())?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Queue one entry (``details_json``: a JSON object, never a payload or a key).
    fn record(
        &self,
        py: Python<'_>,
        kind: Arg<String>,
        time_ns: Arg<u64>,
        details_json: Arg<String>,
    ) -> PyResult<()> {
        let (kind, details_json) = (kind.0, details_json.0);
        attached(
            py,
            details(&details_json).and_then(|d| self.inner.record(&kind, time_ns.0, d)),
        )
    }

    /// Queue one entry whose details are plain data (a dict of strings, numbers,
    /// lists...), converted without the `json` module; False (nothing queued) when
    /// they are not, and `record` must take their JSON text.
    fn record_plain(
        &self,
        py: Python<'_>,
        kind: Arg<String>,
        time_ns: Arg<u64>,
        details: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let kind = kind.0;
        match crate::jsonenc::to_value(details) {
            Some(Value::Object(d)) => {
                attached(py, self.inner.record(&kind, time_ns.0, d)).map(|()| true)
            }
            _ => Ok(false),
        }
    }

    /// Write and fdatasync what was queued, now.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.flush())
    }

    /// Sign and record a checkpoint now; returns its exported form (JSON).
    fn checkpoint(&self, py: Python<'_>, time_ns: Arg<u64>) -> PyResult<String> {
        let time_ns = time_ns.0;
        detached(py, || self.inner.checkpoint(time_ns).map(|cp| cp.to_json()))
    }

    /// Stop the writer and write what is queued; later records are refused.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.close())
    }
}

/// Verify the trail under ``dir`` (and against an exported checkpoint).
#[pyfunction]
#[pyo3(signature = (dir, checkpoint=None))]
fn audit_verify(
    py: Python<'_>,
    dir: Arg<FsPath>,
    checkpoint: Option<Arg<String>>,
) -> PyResult<Bound<'_, PyDict>> {
    let (dir, checkpoint) = (dir.0, checkpoint.map(|a| a.0));
    let v = detached(py, move || {
        let cp = checkpoint
            .as_deref()
            .map(Checkpoint::from_json)
            .transpose()?;
        audit::verify(&dir, cp.as_ref())
    })?;
    let d = PyDict::new(py);
    d.set_item("ok", v.ok())?;
    d.set_item("entries", v.entries)?;
    d.set_item("checkpoints", v.checkpoints)?;
    d.set_item("first_bad", v.first_bad.as_ref().map(|b| b.0))?;
    d.set_item("reason", v.first_bad.map(|b| b.1))?;
    Ok(d)
}

/// The trail's entries, as JSON texts, up to the first that does not verify.
#[pyfunction]
fn audit_entries(py: Python<'_>, dir: Arg<FsPath>) -> PyResult<Vec<String>> {
    let dir = dir.0;
    let e = detached(py, move || audit::entries(&dir))?;
    Ok(e.iter().map(Value::to_string).collect())
}

/// An inclusion proof for the publish entry of ``event_id`` under ``checkpoint``:
/// ``(index, size, entry, path)``, or None when the trail has no such entry.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn audit_prove(
    py: Python<'_>,
    dir: Arg<FsPath>,
    event_id: Arg<String>,
    checkpoint: Arg<String>,
) -> PyResult<Option<(u64, u64, Vec<u8>, Vec<Vec<u8>>)>> {
    let (dir, event_id, checkpoint) = (dir.0, event_id.0, checkpoint.0);
    let p = detached(py, move || {
        let cp = Checkpoint::from_json(&checkpoint)?;
        audit::prove(&dir, &event_id, &cp)
    })?;
    Ok(p.map(|p| {
        (
            p.index,
            p.size,
            p.entry,
            p.path.iter().map(|h| h.to_vec()).collect(),
        )
    }))
}

/// Whether an inclusion proof holds under ``checkpoint``.
#[pyfunction]
fn audit_verify_proof(
    py: Python<'_>,
    index: Arg<u64>,
    size: Arg<u64>,
    entry: Arg<Vec<u8>>,
    path: Arg<Vec<Vec<u8>>>,
    checkpoint: Arg<String>,
) -> PyResult<bool> {
    let (index, size, entry, path, checkpoint) = (index.0, size.0, entry.0, path.0, checkpoint.0);
    let cp = attached(py, Checkpoint::from_json(&checkpoint))?;
    let Ok(path) = path
        .into_iter()
        .map(<[u8; 32]>::try_from)
        .collect::<Result<Vec<_>, _>>()
    else {
        return Ok(false);
    };
    Ok(audit::verify_proof(
        &Proof {
            index,
            size,
            entry,
            path,
        },
        &cp,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTrail>()?;
    m.add_function(wrap_pyfunction!(audit_verify, m)?)?;
    m.add_function(wrap_pyfunction!(audit_entries, m)?)?;
    m.add_function(wrap_pyfunction!(audit_prove, m)?)?;
    m.add_function(wrap_pyfunction!(audit_verify_proof, m)?)?;
    Ok(())
}
