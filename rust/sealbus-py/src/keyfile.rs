//! Binding for `sealbus_core::seal::keyfile`: read and verify a key file (or its bytes)
//! without building a ring, for `sealbus keys verify|show` and for tests that try
//! thousands of damaged variants. What comes back never holds key bytes.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sealbus_core::seal::keyfile::{self, KeyDoc};
use sealbus_core::seal::KeyState;

use crate::args::{Arg, FsPath};
use crate::gil::detached;

fn state_name(s: KeyState) -> &'static str {
    match s {
        KeyState::Active => "active",
        KeyState::Retired => "retired",
        KeyState::Destroyed => "destroyed",
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn report<'py>(py: Python<'py>, source: &str, doc: &KeyDoc) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", source)?;
    d.set_item("version", doc.version)?;
    // Version 1 files carry no check values or MACs: nothing could be verified.
    d.set_item("verified", doc.version >= 2)?;
    d.set_item("active", &doc.active)?;
    d.set_item("max_seals_per_key", doc.max_seals_per_key)?;
    let keys = PyList::empty(py);
    for r in &doc.keys {
        let k = PyDict::new(py);
        k.set_item("id", &r.id)?;
        k.set_item("state", state_name(r.state))?;
        k.set_item("created", r.created)?;
        k.set_item("seals", r.nonce_high_water)?;
        k.set_item("check", r.check_value().map(|c| hex(&c)))?;
        keys.append(k)?;
    }
    d.set_item("keys", keys)?;
    Ok(d)
}

/// Read and verify the key file at `path` (permissions, format, check values, MACs).
#[pyfunction]
fn inspect_key_file(py: Python<'_>, path: Arg<FsPath>) -> PyResult<Bound<'_, PyDict>> {
    let path = path.0;
    let source = path.display().to_string();
    let doc = detached(py, move || keyfile::read(&path))?;
    report(py, &source, &doc)
}

/// Verify a key file's bytes as `inspect_key_file` does the file (no permission check).
#[pyfunction]
#[pyo3(signature = (data, name = Arg("<bytes>")))]
fn inspect_key_document<'py>(
    py: Python<'py>,
    data: Arg<&[u8]>,
    name: Arg<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let (data, name) = (data.0, name.0);
    // A copy, so that no borrowed Python buffer is held with the GIL released.
    let data = zeroize::Zeroizing::new(data.to_vec());
    let source = name.to_string();
    let doc = detached(py, || keyfile::decode(&data, &source))?;
    report(py, name, &doc)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(inspect_key_file, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_key_document, m)?)?;
    Ok(())
}
