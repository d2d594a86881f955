//! Binding for `sealbus_core::seal`: `AesGcm` (the raw primitive, `cryptography`-shaped),
//! `KeyRing` (at-rest sealing) and the end-to-end sealing and opening used by
//! `sealbus.e2e`. A batch input that is an immutable `bytes` (or a contiguous
//! `memoryview` of one) is read in place; any other buffer is copied out first. A batch is planned (output layout, nonces, keys)
//! with the GIL released, its result `bytes` is allocated once, and the crypto writes
//! straight into it with the GIL released again. Batches come back as that `bytes`
//! plus a `memoryview` of `n + 1` u64 offsets (zero-copy into numpy with
//! `numpy.asarray`).

use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMemoryView, PyString, PyTuple};
use sealbus_core::seal::aead::{self, AeadKey, BatchAad, DecryptJob, EncryptJob};
use sealbus_core::seal::wrap::RecipientKey;
use sealbus_core::seal::{
    e2e, frame, AadFields, BatchJob, KeyRing, KeyState, Mode, Recipient, RingOptions,
};
use sealbus_core::Error;

use crate::args::{Arg, FsPath};
use crate::error::to_pyerr;
use crate::gil::{attached, detached};
use crate::pinned::PinnedOut;

fn invalid(py: Python<'_>, name: &str, reason: impl Into<String>) -> PyErr {
    to_pyerr(
        py,
        Error::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        },
    )
}

/// Copy a bytes-like object (bytes, bytearray, memoryview, numpy uint8) out of Python.
fn bytes_of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<u8>> {
    let py = obj.py();
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let buf = PyBuffer::<u8>::get(obj).map_err(|_| {
        invalid(
            py,
            name,
            format!("expected a bytes-like object, got {}", type_name(obj)),
        )
    })?;
    buf.to_vec(py)
}

/// A batch input: an immutable `bytes`, or a contiguous `memoryview` of one, read in
/// place (nothing can change a `bytes` while we hold a reference, so the GIL may be
/// released over it), or a copy of any other buffer (a `bytearray` or writable view
/// could be changed or resized under us).
enum Input<'py> {
    Borrowed(Bound<'py, PyBytes>),
    /// The view's export (which keeps the view from being released) and the `bytes`
    /// it views (which keeps the memory alive and unchanged).
    View(PyBuffer<u8>, Bound<'py, PyAny>),
    Owned(Vec<u8>),
}

impl<'py> Input<'py> {
    fn of(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Input::Borrowed(b.clone()));
        }
        if obj.is_instance_of::<PyMemoryView>() {
            if let Ok(base) = obj.getattr("obj") {
                if base.is_instance_of::<PyBytes>() {
                    if let Ok(view) = PyBuffer::<u8>::get(obj) {
                        if view.is_c_contiguous() {
                            return Ok(Input::View(view, base));
                        }
                    }
                }
            }
        }
        bytes_of(obj, name).map(Input::Owned)
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Input::Borrowed(b) => b.as_bytes(),
            // SAFETY: a C-contiguous export of `len_bytes()` bytes inside a `bytes`
            // object (immutable), which `_base` keeps alive; the export, held as long
            // as `self`, keeps the view from being released. Nothing can write it.
            Input::View(view, _base) => unsafe {
                std::slice::from_raw_parts(view.buf_ptr().cast::<u8>(), view.len_bytes())
            },
            Input::Owned(v) => v,
        }
    }
}

/// Run a planned batch: one `bytes` of the planned size, filled with the GIL
/// released; returns `(bytes, memoryview of u64 offsets)`.
fn run_job<'py, J: BatchJob>(py: Python<'py>, job: &J) -> PyResult<Bound<'py, PyTuple>> {
    let out = crate::outbuf::bytes_filled(py, job.out_len(), |buf| job.run(buf))?;
    offsets_out(py, out, job.out_offsets())
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

/// Offsets from a u64/i64/u32/i32 buffer (numpy, `array`, `memoryview.cast`) or a
/// sequence of ints.
fn offsets_of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    let py = obj.py();
    // A list or tuple has no buffer: skip the four buffer requests, each of which
    // would raise and clear a TypeError (~1 µs together, on every small batch).
    if !(obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()) {
        if let Some(offsets) = offsets_from_buffer(obj, name) {
            return offsets;
        }
    }
    obj.extract::<Vec<usize>>().map_err(|_| {
        invalid(
            py,
            name,
            format!(
                "expected a sequence or buffer of non-negative ints, got {}",
                type_name(obj)
            ),
        )
    })
}

/// Offsets from a buffer of u64, i64, u32 or i32; None if `obj` is none of those.
fn offsets_from_buffer(obj: &Bound<'_, PyAny>, name: &str) -> Option<PyResult<Vec<usize>>> {
    fn convert<T>(py: Python<'_>, b: &PyBuffer<T>, name: &str) -> PyResult<Vec<usize>>
    where
        T: Copy + pyo3::buffer::Element,
        usize: TryFrom<T>,
    {
        b.to_vec(py)?
            .into_iter()
            .map(|v| {
                usize::try_from(v).map_err(|_| invalid(py, name, "offsets must be non-negative"))
            })
            .collect()
    }
    let py = obj.py();
    if let Ok(b) = PyBuffer::<u64>::get(obj) {
        return Some(convert(py, &b, name));
    }
    if let Ok(b) = PyBuffer::<i64>::get(obj) {
        return Some(convert(py, &b, name));
    }
    if let Ok(b) = PyBuffer::<u32>::get(obj) {
        return Some(convert(py, &b, name));
    }
    if let Ok(b) = PyBuffer::<i32>::get(obj) {
        return Some(convert(py, &b, name));
    }
    None
}

/// `(data, memoryview of u64 offsets)`.
fn offsets_out<'py>(
    py: Python<'py>,
    data: Bound<'py, PyBytes>,
    offsets: &[usize],
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, [data.into_any(), offsets_view(py, offsets)?])
}

/// A `memoryview` of `offsets` as u64.
fn offsets_view<'py>(py: Python<'py>, offsets: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let mut raw = Vec::with_capacity(offsets.len() * 8);
    for &o in offsets {
        raw.extend_from_slice(&(o as u64).to_ne_bytes());
    }
    PyMemoryView::from(PyBytes::new(py, &raw).as_any())?.call_method1("cast", ("Q",))
}

/// Run a planned batch into the first `out_len()` bytes of a caller's buffer;
/// returns the memoryview of u64 offsets.
fn run_job_into<'py, J: BatchJob>(
    py: Python<'py>,
    job: &J,
    out: &PinnedOut,
) -> PyResult<Bound<'py, PyAny>> {
    out.fill(py, job.out_len(), |buf| job.run(buf))?;
    offsets_view(py, job.out_offsets())
}

/// Owned AAD columns; scalars broadcast over the batch.
struct AadColumns {
    ids: IdColumn,
    types: Column<String>,
    sources: Column<String>,
    versions: Column<u32>,
}

enum Column<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Column<T> {
    fn get(&self, i: usize) -> &T {
        match self {
            Column::One(v) => v,
            Column::Many(v) => &v[i],
        }
    }
    fn check(&self, n: usize, name: &str) -> Result<(), Error> {
        match self {
            Column::Many(v) if v.len() != n => Err(Error::InvalidArgument {
                name: name.into(),
                reason: format!("{} values for {n} events", v.len()),
            }),
            _ => Ok(()),
        }
    }
}

/// Event ids copied into one string (one allocation per batch, not one per id).
struct IdColumn {
    text: String,
    /// `n + 1` boundaries of the ids in `text`.
    ends: Vec<usize>,
}

impl IdColumn {
    fn of(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bad = || invalid(obj.py(), "event_ids", "expected a sequence of str");
        let mut col = IdColumn {
            text: String::new(),
            ends: vec![0],
        };
        if let Ok(s) = obj.cast::<PyString>() {
            col.push(s.to_str()?);
            return Ok(col);
        }
        if let Ok(list) = obj.cast::<PyList>() {
            col.reserve(list.len());
            for item in list.iter() {
                col.push(item.cast::<PyString>().map_err(|_| bad())?.to_str()?);
            }
        } else if let Ok(tuple) = obj.cast::<PyTuple>() {
            col.reserve(tuple.len());
            for item in tuple.iter() {
                col.push(item.cast::<PyString>().map_err(|_| bad())?.to_str()?);
            }
        } else {
            // Any other sequence, read as pyo3 reads a `Vec<String>`.
            for id in obj.extract::<Vec<String>>().map_err(|_| bad())? {
                col.push(&id);
            }
        }
        Ok(col)
    }

    fn reserve(&mut self, n: usize) {
        self.ends.reserve(n);
        self.text.reserve(n * 16);
    }

    fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    fn len(&self) -> usize {
        self.ends.len() - 1
    }

    fn get(&self, i: usize) -> &str {
        &self.text[self.ends[i]..self.ends[i + 1]]
    }
}

fn str_column(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Column<String>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Column::One(s.to_str()?.to_owned()));
    }
    obj.extract::<Vec<String>>()
        .map(Column::Many)
        .map_err(|_| invalid(obj.py(), name, "expected a str or a sequence of str"))
}

fn version_column(obj: &Bound<'_, PyAny>) -> PyResult<Column<u32>> {
    if let Ok(v) = obj.extract::<u32>() {
        return Ok(Column::One(v));
    }
    obj.extract::<Vec<u32>>().map(Column::Many).map_err(|_| {
        invalid(
            obj.py(),
            "schema_version",
            "expected an int in 0..2^32 or a sequence of them",
        )
    })
}

impl AadColumns {
    fn new(
        event_ids: &Bound<'_, PyAny>,
        event_type: &Bound<'_, PyAny>,
        source: &Bound<'_, PyAny>,
        schema_version: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let ids = IdColumn::of(event_ids)?;
        Ok(Self {
            ids,
            types: str_column(event_type, "event_type")?,
            sources: str_column(source, "source")?,
            versions: version_column(schema_version)?,
        })
    }

    fn fields(&self) -> Result<Vec<AadFields<'_>>, Error> {
        let n = self.ids.len();
        self.types.check(n, "event_type")?;
        self.sources.check(n, "source")?;
        self.versions.check(n, "schema_version")?;
        Ok((0..n)
            .map(|i| AadFields {
                event_id: self.ids.get(i),
                event_type: self.types.get(i),
                source: self.sources.get(i),
                schema_version: *self.versions.get(i),
            })
            .collect())
    }
}

/// Owned form of the batch-AAD argument of `AesGcm.*_batch`.
enum OwnedAad {
    None,
    Shared(Vec<u8>),
    PerItem(Vec<u8>, Vec<usize>),
}

impl OwnedAad {
    fn from_py(
        aads: Option<&Bound<'_, PyAny>>,
        aad_offsets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let Some(a) = aads.filter(|a| !a.is_none()) else {
            return Ok(OwnedAad::None);
        };
        if let Some(o) = aad_offsets.filter(|o| !o.is_none()) {
            return Ok(OwnedAad::PerItem(
                bytes_of(a, "aads")?,
                offsets_of(o, "aad_offsets")?,
            ));
        }
        if a.is_instance_of::<PyList>() || a.is_instance_of::<PyTuple>() {
            let mut buf = Vec::new();
            let mut offs = vec![0];
            for item in a.try_iter()? {
                buf.extend_from_slice(&bytes_of(&item?, "aads")?);
                offs.push(buf.len());
            }
            return Ok(OwnedAad::PerItem(buf, offs));
        }
        Ok(OwnedAad::Shared(bytes_of(a, "aads")?))
    }

    fn as_batch(&self) -> BatchAad<'_> {
        match self {
            OwnedAad::None => BatchAad::None,
            OwnedAad::Shared(a) => BatchAad::Shared(a),
            OwnedAad::PerItem(b, o) => BatchAad::PerItem {
                buffer: b,
                offsets: o,
            },
        }
    }
}

/// AES-GCM with a 128- or 256-bit key, shaped like `cryptography`'s `AESGCM`:
/// `encrypt` returns ciphertext with the 16-byte tag appended; a failed check raises
/// `IntegrityError`. Nonces are 12 bytes. The key is never shown.
#[pyclass(frozen, module = "sealbus._sealbus", name = "AesGcm")]
pub struct PyAesGcm {
    key: Arc<AeadKey>,
}

#[pymethods]
impl PyAesGcm {
    #[new]
    fn new(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = zeroize::Zeroizing::new(bytes_of(key, "key")?);
        Ok(Self {
            key: Arc::new(attached(py, AeadKey::new(&bytes))?),
        })
    }

    /// A random 256-bit (or 128-bit) key from the OS generator.
    #[staticmethod]
    #[pyo3(signature = (bit_length = Arg(256)))]
    fn generate_key(py: Python<'_>, bit_length: Arg<usize>) -> PyResult<Bound<'_, PyBytes>> {
        let bit_length = bit_length.0;
        if bit_length != 128 && bit_length != 256 {
            return Err(invalid(py, "bit_length", "must be 128 or 256"));
        }
        let mut k = zeroize::Zeroizing::new(vec![0u8; bit_length / 8]);
        attached(py, sealbus_core::seal::nonce::random_fill(&mut k))?;
        Ok(PyBytes::new(py, &k))
    }

    #[pyo3(signature = (nonce, data, associated_data = None))]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        nonce: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
        associated_data: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (n, d) = (bytes_of(nonce, "nonce")?, bytes_of(data, "data")?);
        let a = associated_data
            .filter(|a| !a.is_none())
            .map(|a| bytes_of(a, "associated_data"))
            .transpose()?;
        let key = self.key.clone();
        let out = detached(py, move || {
            aead::encrypt(&key, &n, &d, a.as_deref().unwrap_or_default())
        })?;
        Ok(PyBytes::new(py, &out))
    }

    #[pyo3(signature = (nonce, data, associated_data = None))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        nonce: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
        associated_data: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (n, d) = (bytes_of(nonce, "nonce")?, bytes_of(data, "data")?);
        let a = associated_data
            .filter(|a| !a.is_none())
            .map(|a| bytes_of(a, "associated_data"))
            .transpose()?;
        let key = self.key.clone();
        let out = detached(py, move || {
            aead::decrypt(&key, &n, &d, a.as_deref().unwrap_or_default())
        })?;
        Ok(PyBytes::new(py, &out))
    }

    /// Encrypt `len(offsets) - 1` items of `buffer` with one 12-byte nonce each
    /// (`nonces` holds them back to back). `aads`: None, one bytes-like shared by all,
    /// a list of bytes-likes, or a buffer with `aad_offsets`.
    #[pyo3(signature = (nonces, buffer, offsets, aads = None, aad_offsets = None))]
    fn encrypt_batch<'py>(
        &self,
        py: Python<'py>,
        nonces: &Bound<'py, PyAny>,
        buffer: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        aads: Option<&Bound<'py, PyAny>>,
        aad_offsets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (n, b, o) = (
            Input::of(nonces, "nonces")?,
            Input::of(buffer, "buffer")?,
            offsets_of(offsets, "offsets")?,
        );
        let a = OwnedAad::from_py(aads, aad_offsets)?;
        let (n, b) = (n.as_slice(), b.as_slice());
        let job = detached(py, || EncryptJob::new(&self.key, n, b, &o, a.as_batch()))?;
        run_job(py, &job)
    }

    /// `encrypt_batch` into the front of `out`, a writable buffer the caller may
    /// reuse from call to call (at least `len(buffer) + 16 * n` bytes). Returns the
    /// `n + 1` offsets of the items in `out`; the rest of `out` is left as it was.
    #[pyo3(signature = (out, nonces, buffer, offsets, aads = None, aad_offsets = None))]
    #[allow(clippy::too_many_arguments)] // the arguments of encrypt_batch, plus `out`
    fn encrypt_batch_into<'py>(
        &self,
        py: Python<'py>,
        out: &Bound<'py, PyAny>,
        nonces: &Bound<'py, PyAny>,
        buffer: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        aads: Option<&Bound<'py, PyAny>>,
        aad_offsets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let target = PinnedOut::of(out, "out")?;
        let (n, b, o) = (
            Input::of(nonces, "nonces")?,
            Input::of(buffer, "buffer")?,
            offsets_of(offsets, "offsets")?,
        );
        let a = OwnedAad::from_py(aads, aad_offsets)?;
        let (n, b) = (n.as_slice(), b.as_slice());
        let job = detached(py, || EncryptJob::new(&self.key, n, b, &o, a.as_batch()))?;
        run_job_into(py, &job, &target)
    }

    /// Decrypt a batch laid out as `encrypt_batch` returns it. One bad item fails the
    /// whole call with `IntegrityError` naming the item.
    #[pyo3(signature = (nonces, buffer, offsets, aads = None, aad_offsets = None))]
    fn decrypt_batch<'py>(
        &self,
        py: Python<'py>,
        nonces: &Bound<'py, PyAny>,
        buffer: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        aads: Option<&Bound<'py, PyAny>>,
        aad_offsets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (n, b, o) = (
            Input::of(nonces, "nonces")?,
            Input::of(buffer, "buffer")?,
            offsets_of(offsets, "offsets")?,
        );
        let a = OwnedAad::from_py(aads, aad_offsets)?;
        let (n, b) = (n.as_slice(), b.as_slice());
        let job = detached(py, || DecryptJob::new(&self.key, n, b, &o, a.as_batch()))?;
        run_job(py, &job)
    }

    fn __repr__(&self) -> String {
        format!("AesGcm(aes-{}-gcm, key=<redacted>)", self.key.bits())
    }
}

/// The router's key ring (see `sealbus_core::seal::KeyRing`). Shows key ids only.
#[pyclass(frozen, module = "sealbus._sealbus", name = "KeyRing")]
pub struct PyKeyRing {
    ring: Arc<KeyRing>,
}

impl PyKeyRing {
    /// The shared core ring, for other binding modules (the bridge's wire).
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.clone()
    }
}

fn options(max_seals_per_key: Option<u64>, reserve_chunk: Option<u64>) -> RingOptions {
    let d = RingOptions::default();
    RingOptions {
        max_seals_per_key: max_seals_per_key.unwrap_or(d.max_seals_per_key),
        reserve_chunk: reserve_chunk.unwrap_or(d.reserve_chunk),
    }
}

#[pymethods]
impl PyKeyRing {
    /// A new in-memory ring with one random key.
    #[staticmethod]
    #[pyo3(signature = (*, max_seals_per_key = None, reserve_chunk = None))]
    fn generate(
        py: Python<'_>,
        max_seals_per_key: Option<Arg<u64>>,
        reserve_chunk: Option<Arg<u64>>,
    ) -> PyResult<Self> {
        let (max_seals_per_key, reserve_chunk) =
            (max_seals_per_key.map(|a| a.0), reserve_chunk.map(|a| a.0));
        let ring = attached(
            py,
            KeyRing::generate_with(options(max_seals_per_key, reserve_chunk)),
        )?;
        Ok(Self {
            ring: Arc::new(ring),
        })
    }

    /// Create a new key file (0600) with one random key; refuses to overwrite.
    #[staticmethod]
    #[pyo3(signature = (path, *, max_seals_per_key = None, reserve_chunk = None))]
    fn create(
        py: Python<'_>,
        path: Arg<FsPath>,
        max_seals_per_key: Option<Arg<u64>>,
        reserve_chunk: Option<Arg<u64>>,
    ) -> PyResult<Self> {
        let (path, max_seals_per_key, reserve_chunk) = (
            path.0,
            max_seals_per_key.map(|a| a.0),
            reserve_chunk.map(|a| a.0),
        );
        let opts = options(max_seals_per_key, reserve_chunk);
        Ok(Self {
            ring: Arc::new(detached(py, move || KeyRing::create(path, opts))?),
        })
    }

    /// Load a key file. Options, when given, override those stored in the file.
    #[staticmethod]
    #[pyo3(signature = (path, *, max_seals_per_key = None, reserve_chunk = None))]
    fn load(
        py: Python<'_>,
        path: Arg<FsPath>,
        max_seals_per_key: Option<Arg<u64>>,
        reserve_chunk: Option<Arg<u64>>,
    ) -> PyResult<Self> {
        let (path, max_seals_per_key, reserve_chunk) = (
            path.0,
            max_seals_per_key.map(|a| a.0),
            reserve_chunk.map(|a| a.0),
        );
        let ring = if max_seals_per_key.is_none() && reserve_chunk.is_none() {
            detached(py, move || KeyRing::load(path))?
        } else {
            let opts = options(max_seals_per_key, reserve_chunk);
            detached(py, move || KeyRing::load_with(path, opts))?
        };
        Ok(Self {
            ring: Arc::new(ring),
        })
    }

    #[staticmethod]
    #[pyo3(signature = (path, *, max_seals_per_key = None, reserve_chunk = None))]
    fn load_or_create(
        py: Python<'_>,
        path: Arg<FsPath>,
        max_seals_per_key: Option<Arg<u64>>,
        reserve_chunk: Option<Arg<u64>>,
    ) -> PyResult<Self> {
        let (path, max_seals_per_key, reserve_chunk) = (
            path.0,
            max_seals_per_key.map(|a| a.0),
            reserve_chunk.map(|a| a.0),
        );
        let opts = options(max_seals_per_key, reserve_chunk);
        Ok(Self {
            ring: Arc::new(detached(py, move || KeyRing::load_or_create(path, opts))?),
        })
    }

    /// Keys from an environment variable: 64 hex digits, or a key-ring JSON document.
    #[staticmethod]
    fn from_env(py: Python<'_>, var: Arg<&str>) -> PyResult<Self> {
        let var = var.0;
        Ok(Self {
            ring: Arc::new(attached(py, KeyRing::from_env(var))?),
        })
    }

    /// Write the ring to `path` (0600) and keep it bound there.
    fn persist(&self, py: Python<'_>, path: Arg<FsPath>) -> PyResult<()> {
        let path = path.0;
        let ring = self.ring.clone();
        detached(py, move || ring.persist(path))
    }

    #[getter]
    fn path(&self) -> Option<std::path::PathBuf> {
        self.ring.path()
    }

    #[getter]
    fn active_key_id(&self) -> String {
        self.ring.active_key_id()
    }

    #[getter]
    fn max_seals_per_key(&self) -> u64 {
        self.ring.options().max_seals_per_key
    }

    fn key_ids(&self) -> Vec<String> {
        self.ring.key_ids()
    }

    /// `[{"id", "state", "created", "seals"}]`, never key bytes.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.ring
            .keys()
            .into_iter()
            .map(|k| {
                let d = PyDict::new(py);
                d.set_item("id", k.id)?;
                d.set_item("state", state_name(k.state))?;
                d.set_item("created", k.created)?;
                d.set_item("seals", k.seals)?;
                Ok(d)
            })
            .collect()
    }

    fn rotate(&self, py: Python<'_>) -> PyResult<String> {
        let ring = self.ring.clone();
        detached(py, move || ring.rotate())
    }

    fn retire(&self, py: Python<'_>, key_id: Arg<String>) -> PyResult<()> {
        let key_id = key_id.0;
        let ring = self.ring.clone();
        detached(py, move || ring.retire(&key_id))
    }

    fn destroy(&self, py: Python<'_>, key_id: Arg<String>) -> PyResult<()> {
        let key_id = key_id.0;
        let ring = self.ring.clone();
        detached(py, move || ring.destroy(&key_id))
    }

    /// Seal one payload bound to its event; returns the frame.
    #[pyo3(signature = (data, *, event_id, event_type, source, schema_version))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        event_id: Arg<String>,
        event_type: Arg<String>,
        source: Arg<String>,
        schema_version: Arg<u32>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (event_id, event_type, source, schema_version) =
            (event_id.0, event_type.0, source.0, schema_version.0);
        let d = bytes_of(data, "data")?;
        let ring = self.ring.clone();
        let out = detached(py, move || {
            ring.seal(
                &d,
                &AadFields {
                    event_id: &event_id,
                    event_type: &event_type,
                    source: &source,
                    schema_version,
                },
            )
        })?;
        Ok(PyBytes::new(py, &out))
    }

    /// Open one frame; the attributes must be those it was sealed with.
    #[pyo3(signature = (frame, *, event_id, event_type, source, schema_version))]
    fn open<'py>(
        &self,
        py: Python<'py>,
        frame: &Bound<'py, PyAny>,
        event_id: Arg<String>,
        event_type: Arg<String>,
        source: Arg<String>,
        schema_version: Arg<u32>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (event_id, event_type, source, schema_version) =
            (event_id.0, event_type.0, source.0, schema_version.0);
        let f = bytes_of(frame, "frame")?;
        let ring = self.ring.clone();
        let out = detached(py, move || {
            ring.open(
                &f,
                &AadFields {
                    event_id: &event_id,
                    event_type: &event_type,
                    source: &source,
                    schema_version,
                },
            )
        })?;
        Ok(PyBytes::new(py, &out))
    }

    /// Seal `len(offsets) - 1` payloads of `buffer`; the attributes are per event
    /// (sequences) or shared (a scalar). Returns `(frames, offsets)`.
    #[pyo3(signature = (buffer, offsets, *, event_ids, event_type, source, schema_version))]
    #[allow(clippy::too_many_arguments)] // keyword arguments of the Python API
    fn seal_batch<'py>(
        &self,
        py: Python<'py>,
        buffer: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        event_ids: &Bound<'py, PyAny>,
        event_type: &Bound<'py, PyAny>,
        source: &Bound<'py, PyAny>,
        schema_version: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (b, o) = (
            Input::of(buffer, "buffer")?,
            offsets_of(offsets, "offsets")?,
        );
        let cols = AadColumns::new(event_ids, event_type, source, schema_version)?;
        let fields = attached(py, cols.fields())?;
        let b = b.as_slice();
        let job = detached(py, || {
            let sp = aead::spans("offsets", &o, b.len())?;
            self.ring
                .seal_job(&fields, sp.into_iter().map(|r| &b[r]).collect())
        })?;
        run_job(py, &job)
    }

    /// `seal_batch` into the front of `out`, a writable buffer the caller may reuse
    /// from call to call. Returns the `n + 1` offsets of the frames in `out`. A batch
    /// whose frames do not fit is refused before any nonce is used.
    #[pyo3(signature = (out, buffer, offsets, *, event_ids, event_type, source, schema_version))]
    #[allow(clippy::too_many_arguments)] // keyword arguments of the Python API
    fn seal_batch_into<'py>(
        &self,
        py: Python<'py>,
        out: &Bound<'py, PyAny>,
        buffer: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        event_ids: &Bound<'py, PyAny>,
        event_type: &Bound<'py, PyAny>,
        source: &Bound<'py, PyAny>,
        schema_version: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let target = PinnedOut::of(out, "out")?;
        let (b, o) = (
            Input::of(buffer, "buffer")?,
            offsets_of(offsets, "offsets")?,
        );
        let cols = AadColumns::new(event_ids, event_type, source, schema_version)?;
        let fields = attached(py, cols.fields())?;
        let (b, room) = (b.as_slice(), target.len());
        let job = detached(py, || {
            let sp = aead::spans("offsets", &o, b.len())?;
            self.ring
                .seal_job_within(&fields, sp.into_iter().map(|r| &b[r]).collect(), room)
        })?;
        run_job_into(py, &job, &target)
    }

    /// Open frames laid out as `seal_batch` returns them. Returns `(payloads, offsets)`.
    #[pyo3(signature = (frames, offsets, *, event_ids, event_type, source, schema_version))]
    #[allow(clippy::too_many_arguments)] // keyword arguments of the Python API
    fn open_batch<'py>(
        &self,
        py: Python<'py>,
        frames: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        event_ids: &Bound<'py, PyAny>,
        event_type: &Bound<'py, PyAny>,
        source: &Bound<'py, PyAny>,
        schema_version: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (b, o) = (
            Input::of(frames, "frames")?,
            offsets_of(offsets, "offsets")?,
        );
        let cols = AadColumns::new(event_ids, event_type, source, schema_version)?;
        let fields = attached(py, cols.fields())?;
        let b = b.as_slice();
        let job = detached(py, || self.ring.open_job(&fields, b, &o))?;
        run_job(py, &job)
    }

    fn __repr__(&self) -> String {
        let keys: Vec<String> = self
            .ring
            .keys()
            .into_iter()
            .map(|k| format!("{}:{}", k.id, state_name(k.state)))
            .collect();
        let path = self.ring.path().map_or_else(
            || "None".to_string(),
            |p| format!("{:?}", p.display().to_string()),
        );
        format!(
            "KeyRing(active={:?}, keys=[{}], path={path})",
            self.ring.active_key_id(),
            keys.join(", ")
        )
    }
}

fn state_name(s: KeyState) -> &'static str {
    match s {
        KeyState::Active => "active",
        KeyState::Retired => "retired",
        KeyState::Destroyed => "destroyed",
    }
}

/// Decode a sealed frame's structure (no key needed, nothing verified):
/// `{"version", "mode", "key_id", "nonce", "recipients": [(id, ephemeral, wrapped)], "sealed"}`.
#[pyfunction]
fn decode_frame<'py>(py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let bytes = bytes_of(frame, "frame")?;
    let f = attached(py, frame::decode(&bytes))?;
    let d = PyDict::new(py);
    d.set_item("version", f.version)?;
    d.set_item(
        "mode",
        if f.mode == Mode::AtRest {
            "at-rest"
        } else {
            "end-to-end"
        },
    )?;
    d.set_item("key_id", f.key_id)?;
    d.set_item("nonce", PyBytes::new(py, f.nonce))?;
    let recips = PyList::empty(py);
    for r in &f.recipients {
        recips.append((
            r.id,
            PyBytes::new(py, r.ephemeral_public),
            PyBytes::new(py, r.wrapped_key),
        ))?;
    }
    d.set_item("recipients", recips)?;
    d.set_item("sealed", PyBytes::new(py, f.sealed))?;
    Ok(d)
}

/// Seal payloads under a producer's fresh data key into end-to-end frames carrying
/// `recipients` = `[(recipient_id, ephemeral_public(32), wrapped_key(48))]`.
#[pyfunction]
#[pyo3(signature = (data_key, data_key_id, recipients, buffer, offsets, *, event_ids, event_type, source, schema_version))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn e2e_seal_batch<'py>(
    py: Python<'py>,
    data_key: &Bound<'py, PyAny>,
    data_key_id: Arg<String>,
    recipients: Arg<Vec<(String, Vec<u8>, Vec<u8>)>>,
    buffer: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    event_ids: &Bound<'py, PyAny>,
    event_type: &Bound<'py, PyAny>,
    source: &Bound<'py, PyAny>,
    schema_version: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (data_key_id, recipients) = (data_key_id.0, recipients.0);
    let key = zeroize::Zeroizing::new(bytes_of(data_key, "data_key")?);
    let (b, o) = (bytes_of(buffer, "buffer")?, offsets_of(offsets, "offsets")?);
    let cols = AadColumns::new(event_ids, event_type, source, schema_version)?;
    let (out, offs) = detached(py, move || {
        let r: Vec<Recipient<'_>> = recipients
            .iter()
            .map(|(id, e, w)| Recipient {
                id,
                ephemeral_public: e,
                wrapped_key: w,
            })
            .collect();
        e2e::seal_batch(&key, &data_key_id, &r, &cols.fields()?, &b, &o)
    })?;
    offsets_out(py, PyBytes::new(py, &out), &offs)
}

/// Open end-to-end frames all sealed under `data_key_id` (already unwrapped).
#[pyfunction]
#[pyo3(signature = (data_key, data_key_id, frames, offsets, *, event_ids, event_type, source, schema_version))]
#[allow(clippy::too_many_arguments)]
fn e2e_open_batch<'py>(
    py: Python<'py>,
    data_key: &Bound<'py, PyAny>,
    data_key_id: Arg<String>,
    frames: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    event_ids: &Bound<'py, PyAny>,
    event_type: &Bound<'py, PyAny>,
    source: &Bound<'py, PyAny>,
    schema_version: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let data_key_id = data_key_id.0;
    let key = zeroize::Zeroizing::new(bytes_of(data_key, "data_key")?);
    let (b, o) = (bytes_of(frames, "frames")?, offsets_of(offsets, "offsets")?);
    let cols = AadColumns::new(event_ids, event_type, source, schema_version)?;
    let (out, offs) = detached(py, move || {
        e2e::open_batch(&key, &data_key_id, &cols.fields()?, &b, &o)
    })?;
    offsets_out(py, PyBytes::new(py, &out), &offs)
}

/// A consumer's X25519 key pair held in Rust, for opening end-to-end batches; built
/// once from the private key's 32 raw bytes. Shows its public half only.
#[pyclass(frozen, module = "sealbus._sealbus", name = "RecipientKey")]
pub struct PyRecipientKey {
    pub(crate) key: Arc<RecipientKey>,
}

#[pymethods]
impl PyRecipientKey {
    #[new]
    fn new(py: Python<'_>, private_bytes: &Bound<'_, PyAny>) -> PyResult<Self> {
        let raw = zeroize::Zeroizing::new(bytes_of(private_bytes, "private_bytes")?);
        Ok(Self {
            key: Arc::new(attached(py, RecipientKey::from_private_bytes(&raw))?),
        })
    }

    #[getter]
    fn public_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key.public_bytes())
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.key)
    }
}

/// Seal a batch of one event type for `recipients` = `[(recipient_id, X25519 public
/// key (32))]` under a fresh data key wrapped for each. Returns `(frames, offsets)`.
#[pyfunction]
#[pyo3(signature = (recipients, buffer, offsets, *, event_ids, event_type, source, schema_version))]
// PyO3 extracts a Python list into a Vec (a slice cannot borrow from a list).
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
fn e2e_seal_for<'py>(
    py: Python<'py>,
    recipients: Vec<(String, Vec<u8>)>,
    buffer: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    event_ids: &Bound<'py, PyAny>,
    event_type: &str,
    source: &Bound<'py, PyAny>,
    schema_version: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (b, o) = (
        Input::of(buffer, "buffer")?,
        offsets_of(offsets, "offsets")?,
    );
    let type_col = PyString::new(py, event_type);
    let cols = AadColumns::new(event_ids, type_col.as_any(), source, schema_version)?;
    let fields = attached(py, cols.fields())?;
    let b = b.as_slice();
    let job = detached(py, || {
        let r: Vec<(&str, &[u8])> = recipients
            .iter()
            .map(|(id, k)| (id.as_str(), k.as_slice()))
            .collect();
        e2e::seal_job_for(&r, event_type, &fields, b, &o)
    })?;
    run_job(py, &job)
}

/// Open end-to-end frames addressed to `recipient_id` with `key`: each distinct data
/// key is unwrapped once, then every payload is opened in one pass. Returns
/// `(payloads, offsets)`; fails as a whole on the first bad item, naming it.
#[pyfunction]
#[pyo3(signature = (key, recipient_id, frames, offsets, *, event_ids, event_type, source, schema_version))]
#[allow(clippy::too_many_arguments)]
fn e2e_open_for<'py>(
    py: Python<'py>,
    key: &PyRecipientKey,
    recipient_id: &str,
    frames: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    event_ids: &Bound<'py, PyAny>,
    event_type: &Bound<'py, PyAny>,
    source: &Bound<'py, PyAny>,
    schema_version: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (b, o) = (
        Input::of(frames, "frames")?,
        offsets_of(offsets, "offsets")?,
    );
    let cols = AadColumns::new(event_ids, event_type, source, schema_version)?;
    let fields = attached(py, cols.fields())?;
    let (b, k) = (b.as_slice(), &key.key);
    let job = detached(py, || e2e::open_job_for(k, recipient_id, &fields, b, &o))?;
    run_job(py, &job)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAesGcm>()?;
    m.add_class::<PyKeyRing>()?;
    m.add_function(wrap_pyfunction!(decode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(e2e_seal_batch, m)?)?;
    m.add_function(wrap_pyfunction!(e2e_open_batch, m)?)?;
    m.add_class::<PyRecipientKey>()?;
    m.add_function(wrap_pyfunction!(e2e_seal_for, m)?)?;
    m.add_function(wrap_pyfunction!(e2e_open_for, m)?)?;
    Ok(())
}
