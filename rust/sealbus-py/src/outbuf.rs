//! A batch result as one fresh `bytes`, written once with the GIL released.
//!
//! `PyBytes::new_with` zero-fills its buffer before handing it over; for a batch
//! whose every byte the core writes anyway, that is a second pass over (and the
//! first touch of) memory the size of the result. Here the `bytes` is allocated
//! uninitialised and the core writes it straight away. A large result also asks the
//! kernel for 2 MiB pages (`MADV_HUGEPAGE`): a fresh multi-MiB buffer otherwise costs
//! one page fault per 4 KiB on first write, which at ~8 GB/s of AES-GCM costs about
//! as much as the cipher itself.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::gil::detached;

/// Results of at least this size ask for huge pages (the hint only helps for
/// memory not touched yet, which large allocations are: they are fresh mappings).
const HUGE_MIN: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// A new `bytes` of `len` bytes, filled by `fill` with the GIL released. `fill` must
/// write every byte; if it fails, the object is dropped unread.
pub fn bytes_filled<F>(py: Python<'_>, len: usize, fill: F) -> PyResult<Bound<'_, PyBytes>>
where
    F: Send + FnOnce(&mut [u8]) -> sealbus_core::Result<()>,
{
    let size = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("batch result too large"))?;
    // SAFETY: with a null source, `PyBytes_FromStringAndSize` returns a new `bytes` of
    // `size` bytes (contents not initialised) or null with an exception set, which
    // `from_owned_ptr_or_err` turns into an error.
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size),
        )?
    };
    let bytes = obj.cast_into::<PyBytes>()?;
    // SAFETY: `bytes` is a `bytes` object; its buffer holds `len` bytes (plus a NUL).
    let addr = unsafe { pyo3::ffi::PyBytes_AsString(bytes.as_ptr()) } as usize;
    detached(py, move || {
        // SAFETY: the buffer is `len` bytes long and lives as long as `bytes`, which
        // this frame holds; no other code can reach the object before it is returned,
        // so this is the only reference to its bytes. Its contents are whatever the
        // allocator left (plain bytes from C memory), and `fill` overwrites all of them
        // before Python can read any.
        let buf = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len) };
        advise_huge(buf);
        fill(buf)
    })?;
    Ok(bytes)
}

/// Ask for transparent huge pages over the 2 MiB-aligned part of a large buffer.
/// Only a hint: where the kernel has none (or THP is off) nothing changes.
fn advise_huge(buf: &mut [u8]) {
    if buf.len() < HUGE_MIN {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + buf.len()) / HUGE_PAGE * HUGE_PAGE;
    if end > first {
        // SAFETY: the range lies inside `buf`, which we hold mutably; MADV_HUGEPAGE
        // changes how its pages are backed, never their contents.
        let _ = unsafe {
            rustix::mm::madvise(
                first as *mut std::ffi::c_void,
                end - first,
                rustix::mm::Advice::LinuxHugepage,
            )
        };
    }
}
