//! Binding for `sealbus_core::pattern`: `PatternSet` and `test_event_pattern`.
//!
//! Patterns and events arrive as dicts (serialised once with the standard `json`
//! module), `str` JSON text, or bytes-like JSON. Batches cross as one buffer plus
//! offsets, are copied out of Python, and are matched with the GIL released.

use std::cell::RefCell;
use std::sync::{PoisonError, RwLock};

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use sealbus_core::pattern::{self, Pattern};
use sealbus_core::Error;

use crate::args::Arg;
use crate::gil::{attached, detached};

static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Largest batch copy kept for reuse by a thread.
const KEEP_BATCH_BYTES: usize = 64 << 20;

thread_local! {
    /// The copy of the last batch's bytes, reused by the next batch on this thread:
    /// a fresh allocation of tens of megabytes costs a page fault per 4 KiB, which
    /// measured as much as the matching of small events.
    static BATCH_COPY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A batch's bytes, copied out of Python; the allocation returns to `BATCH_COPY`.
struct BatchBytes {
    buf: Vec<u8>,
    len: usize,
}

impl BatchBytes {
    fn copy_of(py: Python<'_>, src: &PyBuffer<u8>) -> PyResult<BatchBytes> {
        let len = src.item_count();
        let mut buf = BATCH_COPY.with(|c| std::mem::take(&mut *c.borrow_mut()));
        if buf.len() < len {
            buf.resize(len, 0);
        }
        src.copy_to_slice(py, &mut buf[..len])?;
        Ok(BatchBytes { buf, len })
    }

    fn owned(buf: Vec<u8>) -> BatchBytes {
        BatchBytes {
            len: buf.len(),
            buf,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for BatchBytes {
    fn drop(&mut self) {
        if self.buf.capacity() <= KEEP_BATCH_BYTES {
            let buf = std::mem::take(&mut self.buf);
            BATCH_COPY.with(|c| {
                if let Ok(mut slot) = c.try_borrow_mut() {
                    if slot.capacity() < buf.capacity() {
                        *slot = buf;
                    }
                }
            });
        }
    }
}

/// What the JSON is for, so a failure becomes the right typed error.
#[derive(Clone, Copy)]
enum Role {
    Pattern,
    Event,
}

fn role_error(role: Role, reason: String) -> Error {
    match role {
        Role::Pattern => Error::Pattern {
            path: "<root>".to_owned(),
            reason,
        },
        Role::Event => Error::InvalidEvent {
            field: "<event>".to_owned(),
            reason,
        },
    }
}

/// JSON bytes of `obj`: str/bytes-like are taken as JSON text; anything else is
/// serialised with `json.dumps` (compact, NaN refused).
fn json_bytes(py: Python<'_>, obj: &Bound<'_, PyAny>, role: Role) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        let what = match role {
            Role::Pattern => "pattern",
            Role::Event => "event",
        };
        return Ok(crate::args::utf8(s, what)?.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(buf) = PyBuffer::<u8>::get(obj) {
        return buf.to_vec(py);
    }
    let dumps = DUMPS.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("json")?.getattr("dumps")?.unbind())
    })?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("separators", (",", ":"))?;
    kwargs.set_item("allow_nan", false)?;
    match dumps.bind(py).call((obj,), Some(&kwargs)) {
        Ok(text) => Ok(text.cast::<PyString>()?.to_str()?.as_bytes().to_vec()),
        Err(e) => {
            let reason = format!("not JSON-serialisable: {}", e.value(py));
            attached(py, Err(role_error(role, reason)))
        }
    }
}

fn parse_pattern(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Pattern> {
    let bytes = json_bytes(py, obj, Role::Pattern)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::Pattern {
        path: "<root>".to_owned(),
        reason: "pattern text is not UTF-8".to_owned(),
    });
    attached(py, text.and_then(Pattern::parse_json))
}

/// Offsets as usize: any integer buffer (numpy arrays included) or a sequence of ints.
fn offsets_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    fn conv<T: Copy + TryInto<usize>>(v: Vec<T>) -> Option<Vec<usize>> {
        v.into_iter().map(|x| x.try_into().ok()).collect()
    }
    let negative = || {
        attached(
            py,
            Err::<Vec<usize>, _>(Error::InvalidArgument {
                name: "offsets".to_owned(),
                reason: "offsets must be non-negative integers".to_owned(),
            }),
        )
    };
    macro_rules! try_buffer {
        ($t:ty) => {
            if let Ok(b) = PyBuffer::<$t>::get(obj) {
                return conv(b.to_vec(py)?).map_or_else(negative, Ok);
            }
        };
    }
    try_buffer!(i64);
    try_buffer!(u64);
    try_buffer!(i32);
    try_buffer!(u32);
    match obj.extract::<Vec<i64>>() {
        Ok(v) => conv(v).map_or_else(negative, Ok),
        Err(_) => attached(
            py,
            Err(Error::InvalidArgument {
                name: "offsets".to_owned(),
                reason: "offsets must be a sequence or buffer of integers".to_owned(),
            }),
        ),
    }
}

/// Many named EventBridge patterns matched together. Thread-safe; matching many
/// events at once (`matches_batch*`) releases the GIL.
#[pyclass(module = "sealbus._sealbus", frozen)]
pub struct PatternSet {
    inner: RwLock<pattern::PatternSet<String>>,
}

impl PatternSet {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, pattern::PatternSet<String>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, pattern::PatternSet<String>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// One buffer + offsets from either (buffer, offsets) or a list of events.
    fn batch_input(
        py: Python<'_>,
        events: &Bound<'_, PyAny>,
        offsets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(BatchBytes, Vec<usize>)> {
        if let Some(off) = offsets {
            let buf = PyBuffer::<u8>::get(events).map_err(|_| {
                crate::error::to_pyerr(
                    py,
                    Error::InvalidArgument {
                        name: "events".to_owned(),
                        reason: "with offsets, events must be a bytes-like buffer".to_owned(),
                    },
                )
            })?;
            return Ok((BatchBytes::copy_of(py, &buf)?, offsets_of(py, off)?));
        }
        let mut buf = Vec::new();
        let mut offs = vec![0usize];
        let items = events
            .try_iter()
            .map_err(|_| crate::error::BindError::ArgumentType {
                name: "events".into(),
                reason: format!(
                    "expected a bytes-like buffer with offsets, or an iterable of events, got {}",
                    crate::args::type_name(events)
                ),
            })?;
        for item in items {
            buf.extend_from_slice(&json_bytes(py, &item?, Role::Event)?);
            offs.push(buf.len());
        }
        Ok((BatchBytes::owned(buf), offs))
    }

    fn run_batch(
        &self,
        py: Python<'_>,
        buf: &[u8],
        offs: &[usize],
    ) -> PyResult<(Vec<String>, Vec<u32>, Vec<u32>)> {
        let inner = &self.inner;
        detached(py, || {
            let set = inner.read().unwrap_or_else(PoisonError::into_inner);
            let (ev, keys) = set.matches_batch(buf, offs)?;
            Ok((set.keys().to_vec(), ev, keys))
        })
    }
}

fn u32_array<'py>(py: Python<'py>, v: &[u32]) -> PyResult<Bound<'py, PyAny>> {
    let array = ARRAY.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("array")?.getattr("array")?.unbind())
    })?;
    // `array('I', [0]) * n` fills by doubling copies, then one copy writes the values
    // in: two passes over the memory (a `bytes` in between took three, and faulted in
    // a second buffer as large as the result).
    let out = array.bind(py).call1(("I", [0u32]))?.mul(v.len())?;
    if !v.is_empty() {
        PyBuffer::<u32>::get(&out)?.copy_from_slice(py, v)?;
    }
    Ok(out)
}

#[pymethods]
impl PatternSet {
    #[new]
    fn new() -> Self {
        PatternSet {
            inner: RwLock::new(pattern::PatternSet::new()),
        }
    }

    /// Add (or replace) the pattern named `name`. Raises `PatternError` with the key.
    fn add(&self, py: Python<'_>, name: Arg<String>, pattern: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = name.0;
        let p = parse_pattern(py, pattern)?;
        self.write().insert(name, p);
        Ok(())
    }

    /// Remove `name`; False if it was not there.
    fn remove(&self, name: Arg<&str>) -> bool {
        let name = name.0;
        self.write().remove(&name.to_owned())
    }

    fn __len__(&self) -> usize {
        self.read().len()
    }

    fn __contains__(&self, name: Arg<&str>) -> bool {
        let name = name.0;
        self.read().contains(&name.to_owned())
    }

    /// Names in index order (the order `matches_batch_indices` refers to).
    fn names(&self) -> Vec<String> {
        self.read().keys().to_vec()
    }

    /// Build the compiled index now instead of at the next match.
    fn prepare(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        detached(py, || {
            inner
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .prepare();
            Ok(())
        })
    }

    /// Names whose pattern matches `event` (dict, JSON str or bytes), sorted by index.
    fn matches(&self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let bytes = json_bytes(py, event, Role::Event)?;
        let mut out = Vec::new();
        attached(py, self.read().matches_json(&bytes, &mut out))?;
        Ok(out)
    }

    /// Match many events: either one bytes-like `events` buffer with `offsets` (n+1
    /// integers, event i is events[offsets[i]:offsets[i+1]]), or a sequence of events
    /// (dicts, str or bytes). Returns one list of names per event.
    #[pyo3(signature = (events, offsets=None))]
    fn matches_batch<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (buf, offs) = Self::batch_input(py, events, offsets)?;
        let (names, ev, keys) = self.run_batch(py, buf.bytes(), &offs)?;
        let names: Vec<Bound<'py, PyString>> = names.iter().map(|n| PyString::new(py, n)).collect();
        let n_events = offs.len().saturating_sub(1);
        let out = PyList::empty(py);
        let mut k = 0;
        for i in 0..n_events {
            let row = PyList::empty(py);
            while k < ev.len() && ev[k] as usize == i {
                row.append(&names[keys[k] as usize])?;
                k += 1;
            }
            out.append(row)?;
        }
        Ok(out)
    }

    /// The compact form of `matches_batch`: (names, `event_index`, `name_index`), where the
    /// two indexes are parallel `array.array('I')` (one entry per match, in event
    /// order) and `name_index` points into `names`. Wrap with numpy.frombuffer if wanted.
    #[pyo3(signature = (events, offsets=None))]
    fn matches_batch_indices<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (buf, offs) = Self::batch_input(py, events, offsets)?;
        let (names, ev, keys) = self.run_batch(py, buf.bytes(), &offs)?;
        PyTuple::new(
            py,
            [
                PyList::new(py, names)?.into_any(),
                u32_array(py, &ev)?,
                u32_array(py, &keys)?,
            ],
        )
    }

    fn __repr__(&self) -> String {
        format!("PatternSet(<{} patterns>)", self.read().len())
    }
}

/// Does `pattern` match `event`? Both may be dicts or JSON text; the event may be any
/// JSON object. Like EventBridge's TestEventPattern.
#[pyfunction]
fn test_event_pattern(
    py: Python<'_>,
    pattern: &Bound<'_, PyAny>,
    event: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let p = parse_pattern(py, pattern)?;
    let bytes = json_bytes(py, event, Role::Event)?;
    attached(py, pattern::test_event_pattern(&p, &bytes))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PatternSet>()?;
    m.add_function(wrap_pyfunction!(test_event_pattern, m)?)?;
    Ok(())
}
