//! The one place where core errors become Python exceptions. The exception classes
//! live in `sealbus.errors` (Python), so they can carry structured attributes; every
//! variant of the core enum is matched here, exhaustively.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use sealbus_core::Error;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(PyModule::import(py, "sealbus.errors")?.unbind())
        })
        .map(|m| m.bind(py))
}

/// Build the Python exception `class_name(message, **details)`.
fn build(
    py: Python<'_>,
    class_name: &str,
    message: String,
    details: &[(&str, Py<PyAny>)],
) -> PyErr {
    let attempt = || -> PyResult<PyErr> {
        let cls = errors_module(py)?.getattr(class_name)?;
        let kwargs = PyDict::new(py);
        for (k, v) in details {
            kwargs.set_item(*k, v)?;
        }
        let exc = cls.call((message,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    attempt().unwrap_or_else(|e| e)
}

/// Map a core error to its Python exception. Exhaustive on purpose: a new variant
/// must be given a Python class here.
// One arm per variant, on purpose: the mapping reads as a table.
#[allow(clippy::too_many_lines)]
pub fn to_pyerr(py: Python<'_>, err: Error) -> PyErr {
    let msg = err.to_string();
    let s = |v: &str| -> Py<PyAny> {
        v.into_pyobject(py)
            .map_or_else(|_| py.None(), |o| o.into_any().unbind())
    };
    let n = |v: u64| -> Py<PyAny> {
        v.into_pyobject(py)
            .map_or_else(|_| py.None(), |o| o.into_any().unbind())
    };
    match err {
        Error::InvalidEvent { field, reason } => build(
            py,
            "InvalidEvent",
            msg,
            &[("field", s(&field)), ("reason", s(&reason))],
        ),
        Error::Pattern { path, reason } => build(
            py,
            "PatternError",
            msg,
            &[("path", s(&path)), ("reason", s(&reason))],
        ),
        Error::SchemaInvalid {
            event_type,
            version,
            reason,
        } => build(
            py,
            "SchemaInvalid",
            msg,
            &[
                ("event_type", s(&event_type)),
                ("version", n(u64::from(version))),
                ("reason", s(&reason)),
            ],
        ),
        Error::SchemaIncompatible {
            event_type,
            version,
            mode,
            reasons,
        } => build(
            py,
            "SchemaIncompatible",
            msg,
            &[
                ("event_type", s(&event_type)),
                ("version", n(u64::from(version))),
                ("mode", s(&mode)),
                ("reason", s(&reasons)),
            ],
        ),
        Error::SchemaNotFound {
            event_type,
            version,
        } => build(
            py,
            "SchemaNotFound",
            msg,
            &[
                ("event_type", s(&event_type)),
                (
                    "version",
                    version.map_or_else(|| py.None(), |v| n(u64::from(v))),
                ),
            ],
        ),
        Error::Validation {
            event_type,
            version,
            instance_path,
            schema_path,
            reason,
            index,
        } => build(
            py,
            "ValidationError",
            msg,
            &[
                ("event_type", s(&event_type)),
                ("version", n(u64::from(version))),
                ("path", s(&instance_path)),
                ("schema_path", s(&schema_path)),
                ("reason", s(&reason)),
                ("index", n(index as u64)),
            ],
        ),
        Error::PolicyDenied {
            principal,
            action,
            event_type,
        } => build(
            py,
            "PolicyDenied",
            msg,
            &[
                ("principal", s(&principal)),
                ("action", s(&action.to_string())),
                ("event_type", s(&event_type)),
            ],
        ),
        Error::Backpressure {
            subscription,
            pending,
            accepted,
        } => build(
            py,
            "Backpressure",
            msg,
            &[
                ("subscription", s(&subscription)),
                ("pending", n(pending as u64)),
                ("accepted", n(accepted as u64)),
            ],
        ),
        Error::TooLarge {
            limit_name,
            size,
            limit,
            index,
        } => build(
            py,
            "TooLarge",
            msg,
            &[
                ("limit_name", s(limit_name)),
                ("size", n(size)),
                ("limit", n(limit)),
                ("index", index.map_or_else(|| py.None(), |i| n(i as u64))),
            ],
        ),
        Error::NotFound { what } => build(py, "NotFound", msg, &[("what", s(&what))]),
        Error::Closed { what } => build(py, "Closed", msg, &[("what", s(&what))]),
        Error::InvalidArgument { name, reason } => build(
            py,
            "InvalidArgument",
            msg,
            &[("name", s(&name)), ("reason", s(&reason))],
        ),
        Error::Seal { reason } => build(py, "SealError", msg, &[("reason", s(&reason))]),
        Error::Integrity { reason } => build(py, "IntegrityError", msg, &[("reason", s(&reason))]),
        Error::KeyDestroyed { key_id } => build(py, "KeyDestroyed", msg, &[("key_id", s(&key_id))]),
        Error::KeyNotFound { key_id } => build(py, "KeyNotFound", msg, &[("key_id", s(&key_id))]),
        Error::KeyFile {
            path,
            key_id,
            reason,
        } => build(
            py,
            "KeyFileError",
            msg,
            &[
                ("path", s(&path)),
                ("key_id", key_id.map_or_else(|| py.None(), |k| s(&k))),
                ("reason", s(&reason)),
            ],
        ),
        Error::Frame { offset, reason } => build(
            py,
            "FrameError",
            msg,
            &[("offset", n(offset as u64)), ("reason", s(&reason))],
        ),
        Error::LogCorrupted {
            segment,
            offset,
            reason,
        } => build(
            py,
            "LogCorrupted",
            msg,
            &[
                ("segment", s(&segment)),
                ("offset", n(offset)),
                ("reason", s(&reason)),
            ],
        ),
        Error::LogIo { op, path, source } => build(
            py,
            "LogIOError",
            msg,
            &[
                ("op", s(op)),
                ("path", s(&path)),
                ("reason", s(&source.to_string())),
            ],
        ),
        Error::LogLocked { path, holder } => build(
            py,
            "LogLocked",
            msg,
            &[
                ("path", s(&path)),
                (
                    "holder",
                    holder.map_or_else(|| py.None(), |p| n(u64::from(p))),
                ),
            ],
        ),
        Error::LogFailed { reason } => build(py, "LogFailed", msg, &[("reason", s(&reason))]),
        _ => build(py, "SealbusError", msg, &[]),
    }
}
