//! A caller's writable buffer, filled with the GIL released (the `*_into` batch calls).
//!
//! A fresh result `bytes` of tens of MiB is fresh memory: above glibc's mmap
//! threshold every call maps it anew and the kernel clears each page before the
//! batch writes it, which costs about as much as AES-GCM itself. A caller that seals
//! into the same buffer call after call writes into pages that are already there.
//!
//! The buffer is held through a buffer export (`PyObject_GetBuffer`) from before
//! the GIL is released until after it is taken back, as the interpreter's own
//! `FileIO.readinto` does: while the export is held, the exporter may not free,
//! move or resize the memory (`bytearray` and `numpy` refuse to resize, `mmap`
//! refuses to close), so it stays valid for the whole call.

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;

use crate::error::invalid;
use crate::gil::detached;

/// A writable, C-contiguous byte buffer of the caller's, pinned by an export.
pub struct PinnedOut {
    buf: PyBuffer<u8>,
}

impl PinnedOut {
    /// Export `obj` (a `bytearray`, writable `memoryview`, `mmap`, numpy `uint8`
    /// array...) for writing; a read-only or non-contiguous buffer is refused.
    pub fn of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj).map_err(|_| {
            invalid(
                name,
                "expected a writable buffer of bytes (bytearray, memoryview, numpy uint8)",
            )
        })?;
        if buf.readonly() {
            return Err(invalid(name, "the buffer is read-only").into());
        }
        if !buf.is_c_contiguous() {
            return Err(invalid(name, "the buffer is not contiguous").into());
        }
        Ok(Self { buf })
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.buf.len_bytes()
    }

    /// Run `fill` over the first `len` bytes with the GIL released. `len` is at
    /// most [`PinnedOut::len`] (the callers plan the batch against it).
    pub fn fill<F>(&self, py: Python<'_>, len: usize, fill: F) -> PyResult<()>
    where
        F: Send + FnOnce(&mut [u8]) -> sealbus_core::Result<()>,
    {
        if len > self.len() {
            return Err(invalid(
                "out",
                format!("{} bytes is too small: the batch takes {len}", self.len()),
            )
            .into());
        }
        let addr = self.buf.buf_ptr() as usize;
        detached(py, move || {
            // SAFETY: `addr` is the start of a writable, C-contiguous buffer of at
            // least `len` bytes, exported to `self.buf` and held until after this
            // call returns, so the exporter keeps it allocated and in place. The
            // binding keeps no other reference to it (inputs that are not `bytes`
            // were copied out before, so none can alias it). A Python thread writing
            // the same buffer during the call races only over the bytes it writes, as
            // with `readinto`: the documented contract is that the caller leaves the
            // buffer alone until the call returns.
            let out = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) };
            fill(out)
        })
    }
}
