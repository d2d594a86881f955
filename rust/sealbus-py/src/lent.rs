//! Bytes owned by Rust and lent to Python, read only, through the buffer protocol.
//!
//! A polled batch's data is built with the GIL released, in the extension's own
//! allocator, and handed out as a `memoryview` of this object (see `DeliveryBatch.buffer`): no second copy into a
//! `bytes` under the GIL, and none of the page faults that a fresh `bytes` of a few
//! hundred KiB costs (glibc maps and trims such blocks on every poll). The opened
//! plaintext of an end-to-end batch goes back to its subscription when Python drops
//! it, for the next read-ahead to fill.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;
use sealbus_core::route::Subscription;

/// Immutable bytes: a frozen class whose data is never written or moved after it is
/// made, so a pointer lent to a view stays valid while the view holds the object.
#[pyclass(frozen, module = "sealbus._sealbus", name = "LentBytes")]
pub struct LentBytes {
    data: Vec<u8>,
    /// Where the buffer goes once Python is done with it (no view can be left then:
    /// each holds a reference to this object), to be filled again.
    home: Option<Arc<Subscription>>,
}

impl LentBytes {
    pub(crate) fn new(data: Vec<u8>) -> Self {
        LentBytes { data, home: None }
    }

    /// Opened end-to-end plaintext, handed back to `sub`'s read-ahead when dropped.
    pub(crate) fn recycled(data: Vec<u8>, sub: Arc<Subscription>) -> Self {
        LentBytes {
            data,
            home: Some(sub),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for LentBytes {
    fn drop(&mut self) {
        if let Some(sub) = self.home.take() {
            sub.give_back_plaintext(std::mem::take(&mut self.data));
        }
    }
}

#[pymethods]
impl LentBytes {
    /// Fill `view` with the data, read only; a request for a writable view fails
    /// with `BufferError`.
    #[allow(clippy::needless_pass_by_value)] // the signature PyO3 requires
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let data = &slf.get().data;
        let len = ffi::Py_ssize_t::try_from(data.len())
            .map_err(|_| crate::error::invalid("buffer", "too large to lend"))?;
        // SAFETY: `view` is the Py_buffer CPython passes to bf_getbuffer. The pointer
        // lent is the start of a boxed slice that this frozen object owns and never
        // writes or reallocates; PyBuffer_FillInfo takes a strong reference to `slf`
        // into `view.obj`, so the data outlives every view. `readonly = 1`: the cast
        // to `*mut` is only the C signature, and a writable request is refused.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                data.as_ptr().cast_mut().cast::<c_void>(),
                len,
                1,
                flags,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(slf.py()))
        }
    }

    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __repr__(&self) -> String {
        // Never the bytes themselves: they are opened plaintext.
        format!("LentBytes({} bytes)", self.data.len())
    }
}
