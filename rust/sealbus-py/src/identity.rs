//! Binds `sealbus_core::identity`: a router's Ed25519 signer and the check of a
//! signature, with the GIL released while aws-lc-rs works.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sealbus_core::identity::{self, Signer};

use crate::gil::{attached, detached};

/// An Ed25519 key pair held in Rust, built once from its 32-byte seed. Shows the
/// start of its public half only.
#[pyclass(frozen, module = "sealbus._sealbus", name = "Signer")]
pub struct PySigner {
    signer: Arc<Signer>,
}

impl PySigner {
    /// The core signer, for other binding modules (the bridge's wire).
    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The core signer, shared with a thread that outlives the call (the export).
    pub(crate) fn shared(&self) -> Arc<Signer> {
        self.signer.clone()
    }
}

#[pymethods]
impl PySigner {
    #[new]
    fn new(py: Python<'_>, seed: &[u8]) -> PyResult<Self> {
        Ok(Self {
            signer: Arc::new(attached(py, Signer::from_seed(seed))?),
        })
    }

    #[getter]
    fn public_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.signer.public_key())
    }

    /// The 64-byte signature of `message`.
    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let message = message.to_vec();
        let signer = &self.signer;
        let sig = detached(py, move || Ok(signer.sign(&message)))?;
        Ok(PyBytes::new(py, &sig))
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.signer)
    }
}

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`.
#[pyfunction]
fn ed25519_verify(py: Python<'_>, public_key: &[u8], signature: &[u8], message: &[u8]) -> bool {
    let (k, s, m) = (public_key.to_vec(), signature.to_vec(), message.to_vec());
    py.detach(move || identity::verify(&k, &s, &m))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySigner>()?;
    m.add_function(wrap_pyfunction!(ed25519_verify, m)?)
}
