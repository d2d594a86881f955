//! Binding for `sealbus_core::log`: `SegmentLog` and `CursorStore`. Inputs are copied
//! (or, for `bytes`, pinned by `PyBackedBytes`, which owns a reference and never
//! borrows a buffer) before the GIL is released for I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use sealbus_core::log::{
    now_ns, Cursor, CursorStore, DeadLetter, FsyncPolicy, Log, LogOptions, LogStats, Retention,
    RetentionReport,
};
use sealbus_core::Error;

use crate::args::{Arg, FsPath};
use crate::gil::{attached, detached};

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        name: name.into(),
        reason: reason.into(),
    }
}

/// The durable segment log (see `sealbus.log`).
#[pyclass(frozen, name = "SegmentLog", module = "sealbus._sealbus")]
pub struct PySegmentLog {
    inner: Mutex<Option<Arc<Log>>>,
    path: String,
}

impl PySegmentLog {
    fn log(&self) -> sealbus_core::Result<Arc<Log>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Error::Closed {
                what: format!("SegmentLog({})", self.path),
            })
    }
}

fn stats_dict<'py>(py: Python<'py>, s: &LogStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("segments", s.segments)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("records", s.records)?;
    d.set_item("first_offset", s.first_offset)?;
    d.set_item("next_offset", s.next_offset)?;
    d.set_item("appends", s.appends)?;
    d.set_item("records_appended", s.records_appended)?;
    d.set_item("bytes_appended", s.bytes_appended)?;
    d.set_item("commits", s.commits)?;
    d.set_item("writes", s.writes)?;
    d.set_item("fsyncs", s.fsyncs)?;
    d.set_item("events_per_fsync", s.events_per_fsync)?;
    d.set_item("retention_records_deleted", s.retention_records_deleted)?;
    d.set_item(
        "retention_needed_records_deleted",
        s.retention_needed_records_deleted,
    )?;
    d.set_item("failed", s.failed)?;
    let r = PyDict::new(py);
    r.set_item("truncated_bytes", s.recovery.truncated_bytes)?;
    match &s.recovery.truncated_at {
        Some((seg, pos, off)) => r.set_item("truncated_at", (seg.as_str(), *pos, *off))?,
        None => r.set_item("truncated_at", py.None())?,
    }
    r.set_item(
        "removed_segments",
        PyList::new(py, &s.recovery.removed_segments)?,
    )?;
    r.set_item("index_entries_rebuilt", s.recovery.index_entries_rebuilt)?;
    r.set_item("records_scanned", s.recovery.records_scanned)?;
    d.set_item("recovery", r)?;
    Ok(d)
}

fn retention_dict<'py>(py: Python<'py>, r: &RetentionReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("segments_deleted", r.segments_deleted)?;
    d.set_item("bytes_deleted", r.bytes_deleted)?;
    d.set_item("records_deleted", r.records_deleted)?;
    d.set_item("needed_records_deleted", r.needed_records_deleted)?;
    d.set_item("segments_kept_for_consumers", r.segments_kept_for_consumers)?;
    d.set_item("first_offset", r.first_offset)?;
    Ok(d)
}

/// Check `bounds` (n+1 positions from 0 to `len`, non-decreasing) for a buffer.
fn check_bounds(bounds: &[usize], len: usize) -> sealbus_core::Result<()> {
    if bounds.len() < 2 {
        return Err(invalid(
            "offsets",
            "need at least two boundaries [0, ..., len(buffer)]",
        ));
    }
    if bounds[0] != 0 {
        return Err(invalid(
            "offsets",
            format!("must start at 0, got {}", bounds[0]),
        ));
    }
    if bounds[bounds.len() - 1] != len {
        return Err(invalid(
            "offsets",
            format!(
                "must end at len(buffer) = {len}, got {}",
                bounds[bounds.len() - 1]
            ),
        ));
    }
    if let Some(i) = bounds.windows(2).position(|w| w[1] < w[0]) {
        return Err(invalid(
            "offsets",
            format!(
                "decrease at index {}: {} < {}",
                i + 1,
                bounds[i + 1],
                bounds[i]
            ),
        ));
    }
    Ok(())
}

#[pymethods]
impl PySegmentLog {
    #[new]
    #[pyo3(signature = (
        path, fsync = Arg("batch"), segment_bytes = Arg(128 * 1024 * 1024), index_interval_bytes = Arg(4096),
        max_record_bytes = Arg(16 * 1024 * 1024), retention_max_age = None, retention_max_bytes = None,
        respect_consumers = Arg(true), read_only = Arg(false),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: Arg<FsPath>,
        fsync: Arg<&str>,
        segment_bytes: Arg<u64>,
        index_interval_bytes: Arg<u32>,
        max_record_bytes: Arg<u32>,
        retention_max_age: Option<Arg<f64>>,
        retention_max_bytes: Option<Arg<u64>>,
        respect_consumers: Arg<bool>,
        read_only: Arg<bool>,
    ) -> PyResult<Self> {
        let (
            path,
            fsync,
            segment_bytes,
            index_interval_bytes,
            max_record_bytes,
            retention_max_age,
            retention_max_bytes,
            respect_consumers,
            read_only,
        ) = (
            path.0,
            fsync.0,
            segment_bytes.0,
            index_interval_bytes.0,
            max_record_bytes.0,
            retention_max_age.map(|a| a.0),
            retention_max_bytes.map(|a| a.0),
            respect_consumers.0,
            read_only.0,
        );
        let fsync = attached(py, FsyncPolicy::parse(fsync))?;
        let max_age = match retention_max_age {
            None => None,
            Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return attached(
                    py,
                    Err(invalid(
                        "retention_max_age",
                        format!("must be >= 0 seconds, got {s}"),
                    )),
                )
            }
        };
        let opts = LogOptions {
            fsync,
            segment_bytes,
            index_interval_bytes,
            max_record_bytes,
            retention: Retention {
                max_age,
                max_bytes: retention_max_bytes,
                respect_consumers,
            },
        };
        let shown = path.display().to_string();
        let log = detached(py, move || {
            if read_only {
                Log::open_read_only(&path)
            } else {
                Log::open(&path, opts)
            }
        })?;
        Ok(PySegmentLog {
            inner: Mutex::new(Some(Arc::new(log))),
            path: shown,
        })
    }

    /// Append the records `buffer[offsets[i]:offsets[i+1]]` as one atomic append;
    /// returns their log offsets once durable per the fsync policy (GIL released).
    #[pyo3(signature = (buffer, offsets, timestamp_ns = None))]
    fn append_batch(
        &self,
        py: Python<'_>,
        buffer: Arg<PyBackedBytes>,
        offsets: Arg<Vec<usize>>,
        timestamp_ns: Option<Arg<u64>>,
    ) -> PyResult<Vec<u64>> {
        let (buffer, offsets, timestamp_ns) = (buffer.0, offsets.0, timestamp_ns.map(|a| a.0));
        let log = attached(py, self.log())?;
        attached(py, check_bounds(&offsets, buffer.len()))?;
        detached(py, move || {
            let parts: Vec<&[u8]> = offsets.windows(2).map(|w| &buffer[w[0]..w[1]]).collect();
            log.append_batch(&parts, timestamp_ns.unwrap_or_else(now_ns))
        })
    }

    /// Append one record; returns its offset.
    #[pyo3(signature = (data, timestamp_ns = None))]
    fn append(
        &self,
        py: Python<'_>,
        data: Arg<PyBackedBytes>,
        timestamp_ns: Option<Arg<u64>>,
    ) -> PyResult<u64> {
        let (data, timestamp_ns) = (data.0, timestamp_ns.map(|a| a.0));
        let log = attached(py, self.log())?;
        let offs = detached(py, move || {
            log.append_batch(&[&data[..]], timestamp_ns.unwrap_or_else(now_ns))
        })?;
        Ok(offs[0])
    }

    /// Records from `from_offset` on, as `(offset, timestamp_ns, payload)` tuples.
    #[pyo3(signature = (from_offset, max_records = Arg(1000), max_bytes = Arg(16 * 1024 * 1024)))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        from_offset: Arg<u64>,
        max_records: Arg<usize>,
        max_bytes: Arg<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (from_offset, max_records, max_bytes) = (from_offset.0, max_records.0, max_bytes.0);
        let log = attached(py, self.log())?;
        let recs = detached(py, move || log.read(from_offset, max_records, max_bytes))?;
        let items: Vec<Bound<'py, PyTuple>> = recs
            .iter()
            .map(|r| {
                PyTuple::new(
                    py,
                    [
                        r.offset.into_pyobject(py)?.into_any(),
                        r.timestamp_ns.into_pyobject(py)?.into_any(),
                        PyBytes::new(py, &r.payload).into_any(),
                    ],
                )
            })
            .collect::<PyResult<_>>()?;
        PyList::new(py, items)
    }

    /// First offset whose timestamp is `>= timestamp_ns` (`next_offset` if none).
    fn offset_for_time(&self, py: Python<'_>, timestamp_ns: Arg<u64>) -> PyResult<u64> {
        let timestamp_ns = timestamp_ns.0;
        let log = attached(py, self.log())?;
        detached(py, move || log.offset_for_time(timestamp_ns))
    }

    #[getter]
    fn next_offset(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(attached(py, self.log())?.next_offset())
    }

    #[getter]
    fn first_offset(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(attached(py, self.log())?.first_offset())
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = attached(py, self.log())?.stats();
        stats_dict(py, &s)
    }

    /// One dict per segment: file, base/next offset, records, bytes, max timestamp,
    /// index entries, active. Never payload bytes.
    fn segments<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let segs = attached(py, self.log())?.segments();
        let out = PyList::empty(py);
        for s in segs {
            let d = PyDict::new(py);
            d.set_item("file", &s.file)?;
            d.set_item("base_offset", s.base_offset)?;
            d.set_item("next_offset", s.next_offset)?;
            d.set_item("records", s.records)?;
            d.set_item("bytes", s.bytes)?;
            d.set_item("max_timestamp_ns", s.max_timestamp_ns)?;
            d.set_item("index_entries", s.index_entries)?;
            d.set_item("active", s.active)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Delete old segments per the retention options (see `Log::apply_retention`).
    #[pyo3(signature = (min_needed_offset = None, now_ns = None))]
    fn apply_retention<'py>(
        &self,
        py: Python<'py>,
        min_needed_offset: Option<Arg<u64>>,
        now_ns: Option<Arg<u64>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (min_needed_offset, now_ns) = (min_needed_offset.map(|a| a.0), now_ns.map(|a| a.0));
        let log = attached(py, self.log())?;
        let r = detached(py, move || match now_ns {
            Some(t) => log.apply_retention_at(t, min_needed_offset),
            None => log.apply_retention(min_needed_offset),
        })?;
        retention_dict(py, &r)
    }

    /// Check every record's checksums; raises `LogCorrupted` at the first bad one.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let log = attached(py, self.log())?;
        let r = detached(py, move || log.verify())?;
        let d = PyDict::new(py);
        d.set_item("segments", r.segments)?;
        d.set_item("records", r.records)?;
        d.set_item("bytes", r.bytes)?;
        Ok(d)
    }

    /// Finish pending appends (flushing under `fsync="never"`) and release the log.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match taken {
            Some(log) => detached(py, move || log.close()),
            None => Ok(()),
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "SegmentLog({:?}{})",
            self.path,
            if self.closed() { ", closed" } else { "" }
        )
    }
}

/// Durable per-consumer cursors (see `sealbus.log`).
#[pyclass(frozen, name = "CursorStore", module = "sealbus._sealbus")]
pub struct PyCursorStore {
    inner: CursorStore,
    path: String,
}

fn cursor_dict<'py>(py: Python<'py>, c: &Cursor) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("owner", c.owner.as_deref())?;
    d.set_item("committed", c.committed)?;
    d.set_item("acked", PyList::new(py, &c.acked)?)?;
    let deliveries = PyDict::new(py);
    for (o, n) in c.deliveries.iter() {
        deliveries.set_item(o, n)?;
    }
    d.set_item("deliveries", deliveries)?;
    let dl = PyList::empty(py);
    for x in &c.dead_letters {
        dl.append((x.offset, x.deliveries, x.timestamp_ns, x.reason.as_str()))?;
    }
    d.set_item("dead_letters", dl)?;
    Ok(d)
}

#[pymethods]
impl PyCursorStore {
    /// `read_only`: change nothing on disk (to inspect a folder a router may be using).
    #[new]
    #[pyo3(signature = (path, read_only = Arg(false)))]
    fn new(py: Python<'_>, path: Arg<FsPath>, read_only: Arg<bool>) -> PyResult<Self> {
        let (path, read_only) = (path.0, read_only.0);
        let shown = path.display().to_string();
        let inner = detached(py, move || {
            if read_only {
                CursorStore::open_read_only(&path)
            } else {
                CursorStore::open(&path)
            }
        })?;
        Ok(PyCursorStore { inner, path: shown })
    }

    /// The consumer's cursor as a dict (`committed`, `acked` ranges, `deliveries`,
    /// `dead_letters` as `(offset, deliveries, timestamp_ns, reason)`), or None.
    fn load<'py>(
        &self,
        py: Python<'py>,
        consumer: Arg<&str>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let consumer = consumer.0;
        let c = attached(py, self.inner.load(consumer))?;
        c.map(|c| cursor_dict(py, &c)).transpose()
    }

    /// Durably replace the consumer's cursor (appended to the journal, fsynced).
    #[pyo3(signature = (consumer, committed, acked = Arg(Vec::new()), deliveries = Arg(BTreeMap::new()), dead_letters = Arg(Vec::new()), owner = Arg(None)))]
    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        py: Python<'_>,
        consumer: Arg<&str>,
        committed: Arg<u64>,
        acked: Arg<Vec<(u64, u64)>>,
        deliveries: Arg<BTreeMap<u64, u32>>,
        dead_letters: Arg<Vec<(u64, u32, u64, String)>>,
        owner: Arg<Option<String>>,
    ) -> PyResult<()> {
        let (consumer, committed, acked, deliveries, dead_letters, owner) = (
            consumer.0,
            committed.0,
            acked.0,
            deliveries.0,
            dead_letters.0,
            owner.0,
        );
        let c = Cursor {
            owner,
            committed,
            acked,
            deliveries: deliveries.into_iter().collect(),
            dead_letters: dead_letters
                .into_iter()
                .map(|(offset, deliveries, timestamp_ns, reason)| DeadLetter {
                    offset,
                    deliveries,
                    timestamp_ns,
                    reason,
                })
                .collect(),
            ..Cursor::default()
        };
        // The decoder checks every invariant (ordered, disjoint ranges above committed).
        if let Err((_, reason)) = Cursor::decode(&c.encode()) {
            return attached(py, Err(invalid("acked", reason)));
        }
        // Copied out of the Python string before the GIL is released.
        let consumer = consumer.to_owned();
        detached(py, || self.inner.save(&consumer, &c))
    }

    fn remove(&self, py: Python<'_>, consumer: Arg<&str>) -> PyResult<bool> {
        let consumer = consumer.0;
        attached(py, self.inner.remove(consumer))
    }

    fn consumers(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        attached(py, self.inner.consumers())
    }

    /// Smallest committed offset over all consumers (what retention must keep).
    fn min_committed(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        attached(py, self.inner.min_committed())
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    fn __repr__(&self) -> String {
        format!("CursorStore({:?})", self.path)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySegmentLog>()?;
    m.add_class::<PyCursorStore>()?;
    Ok(())
}
