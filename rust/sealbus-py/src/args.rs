//! Arguments whose conversion failures stay inside the `SealbusError` hierarchy.
//!
//! `PyO3` converts a method's arguments before the method runs, and refuses with the
//! builtin `TypeError` (wrong type) or `OverflowError` (an int that does not fit, such
//! as `-5` for a count). A parameter declared `Arg<T>` converts exactly as `T` does,
//! and maps those refusals to `InvalidArgumentType` (a `TypeError` too) and
//! `InvalidArgument` (a `ValueError` too), so `except SealbusError` catches them.

use std::ffi::OsStr;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyInt, PyString};
use pyo3::Borrowed;

use crate::error::{invalid, is_sealbus_error, BindError};

/// A `T` converted from a Python argument; derefs to `T`.
#[derive(Debug, Clone, Copy)]
pub struct Arg<T>(pub T);

impl<T> Deref for Arg<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'a, 'py, T> FromPyObject<'a, 'py> for Arg<T>
where
    T: FromPyObject<'a, 'py>,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match T::extract(obj) {
            Ok(v) => Ok(Arg(v)),
            Err(e) => Err(refused(&obj, e.into()).into()),
        }
    }
}

/// The hierarchy's version of `PyO3`'s refusal `e` of `obj`. The message names the
/// value only when it is a number (never the bytes or text of an argument that could
/// be a key or a payload passed in the wrong place).
fn refused(obj: &Bound<'_, PyAny>, e: PyErr) -> BindError {
    let py = obj.py();
    let shown = if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        obj.repr().map_or_else(|_| "?".into(), |r| r.to_string())
    } else {
        format!("a {}", type_name(obj))
    };
    let reason = e.value(py).to_string();
    if e.is_instance_of::<PyOverflowError>(py) {
        invalid(shown, format!("out of range ({reason})"))
    } else if e.is_instance_of::<PyTypeError>(py) {
        BindError::ArgumentType {
            name: shown,
            reason,
        }
    } else if is_sealbus_error(py, &e) {
        BindError::Py(e)
    } else {
        invalid(shown, reason)
    }
}

/// The Python type name of `obj`, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

/// The UTF-8 text of `s`; a str holding a lone surrogate (which has none) is refused
/// as an invalid `name` instead of the builtin `UnicodeEncodeError`.
pub fn utf8<'a>(s: &'a Bound<'_, PyString>, name: &str) -> Result<&'a str, BindError> {
    s.to_str()
        .map_err(|_| invalid(name, "not valid UTF-8 text (it holds a lone surrogate)"))
}

/// A file-system path, converted as `os.fsencode` converts it: a `str`, `bytes` or
/// `os.PathLike`. `PyO3`'s own `PathBuf` conversion panics on a `str` the file-system
/// encoding cannot encode (a lone surrogate); `os.fsencode` raises
/// `UnicodeEncodeError` (a `ValueError`), which `Arg` maps to `InvalidArgument`.
#[derive(Debug, Clone)]
pub struct FsPath(pub PathBuf);

impl<'a, 'py> FromPyObject<'a, 'py> for FsPath {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let encoded = obj.py().import("os")?.call_method1("fsencode", (obj,))?;
        let bytes = encoded.cast::<PyBytes>().map_err(PyErr::from)?;
        Ok(FsPath(PathBuf::from(OsStr::from_bytes(bytes.as_bytes()))))
    }
}

impl Deref for FsPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for FsPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}
