//! The one place where errors become Python exceptions. The exception classes live in
//! `sealbus.errors` (Python), so they can carry structured attributes; every variant of
//! the core enum, and of the few refusals the binding makes itself before calling the
//! core, is matched here, exhaustively and without a wildcard arm.
//!
//! `impl From<sealbus_core::Error> for PyErr` is not allowed here (both types are
//! foreign), so `BindError` stands between them, as pyca/cryptography's
//! `CryptographyError` does: a function returning `BindResult` converts core errors and
//! `PyErr`s alike with `?`, and `PyO3` turns the `BindError` into the Python exception.

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

/// An error on its way to Python.
#[derive(Debug)]
pub enum BindError {
    /// A refusal of the core.
    Core(Error),
    /// An argument of the wrong Python type (`InvalidArgumentType`, a `TypeError` too).
    ArgumentType { name: String, reason: String },
    /// An index outside a sequence (`IndexOutOfRange`, an `IndexError` too, so the
    /// sequence protocol still ends iteration on it).
    Index {
        what: &'static str,
        index: isize,
        len: usize,
    },
    /// A Python exception already raised (by Python code the binding called).
    Py(PyErr),
}

/// Result of a binding function: `?` converts core errors and `PyErr`s.
pub type BindResult<T> = Result<T, BindError>;

impl From<Error> for BindError {
    fn from(e: Error) -> Self {
        BindError::Core(e)
    }
}

impl From<PyErr> for BindError {
    fn from(e: PyErr) -> Self {
        BindError::Py(e)
    }
}

impl From<BindError> for PyErr {
    fn from(e: BindError) -> Self {
        Python::attach(|py| match e {
            BindError::Core(e) => to_pyerr(py, e),
            BindError::ArgumentType { name, reason } => build(
                py,
                "InvalidArgumentType",
                format!("invalid argument: {name}: {reason}"),
                &[
                    ("name", str_obj(py, &name)),
                    ("reason", str_obj(py, &reason)),
                ],
            ),
            BindError::Index { what, index, len } => build(
                py,
                "IndexOutOfRange",
                format!("invalid argument: index: {what} index {index} out of range for {len}"),
                &[
                    ("name", str_obj(py, "index")),
                    ("reason", str_obj(py, "out of range")),
                ],
            ),
            BindError::Py(e) => e,
        })
    }
}

fn str_obj(py: Python<'_>, v: &str) -> Py<PyAny> {
    v.into_pyobject(py)
        .map_or_else(|_| py.None(), |o| o.into_any().unbind())
}

/// The core's `InvalidArgument`, the refusal of a value out of range.
pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> BindError {
    BindError::Core(Error::InvalidArgument {
        name: name.into(),
        reason: reason.into(),
    })
}

/// Whether `e` is already one of ours (a `SealbusError`).
pub fn is_sealbus_error(py: Python<'_>, e: &PyErr) -> bool {
    errors_module(py)
        .and_then(|m| m.getattr("SealbusError"))
        .is_ok_and(|cls| e.matches(py, cls).unwrap_or(false))
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
    let s = |v: &str| str_obj(py, v);
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
        Error::Wire { reason, offset, .. } => build(
            py,
            "WireError",
            msg,
            &[("offset", n(offset as u64)), ("reason", s(reason))],
        ),
        Error::SignatureRefused { router, reason, .. } => build(
            py,
            "SignatureRefused",
            msg,
            &[("router", s(&router)), ("reason", s(reason))],
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
        // Only raised when the caller's interrupt hook asked to stop, after Python's
        // signal handlers ran; `gil` hands on their exception instead when there is one.
        Error::Interrupted { .. } => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
    }
}
