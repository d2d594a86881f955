//! Binding for `sealbus_core::route`: the router, subscriptions, events, messages.
//! Conversions only; every blocking call goes through `gil::detached`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMemoryView};
use sealbus_core::envelope::{Attributes, DataKind, Event};
use sealbus_core::error::{Action, Error};
use sealbus_core::log::{CursorStore, FsyncPolicy, Log, LogOptions, Retention};
use sealbus_core::pattern::Pattern;
use sealbus_core::route::{
    Clock, Delivery, Item, Limits, OnFull, Opened, OpenedBatch, QueueConfig, Receipt, Refused,
    Replay, Router, RouterConfig, Start, Subscription, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
};
use sealbus_core::schema::Compatibility;

use crate::args::{Arg, FsPath};
use crate::error::{invalid, to_pyerr, BindError, BindResult};
use crate::gil::{attached, detached, interruptible, waiting};
use crate::lent::LentBytes;
use crate::seal::PyKeyRing;

fn action(s: &str) -> BindResult<Action> {
    match s {
        "publish" => Ok(Action::Publish),
        "subscribe" => Ok(Action::Subscribe),
        _ => Err(invalid(
            "action",
            format!("must be 'publish' or 'subscribe', not {s:?}"),
        )),
    }
}

/// An optional `timeout` argument in seconds (None: wait as long as it takes).
pub(crate) fn timeout_arg(t: Option<f64>) -> BindResult<Option<Duration>> {
    t.map(|t| seconds("timeout", t)).transpose()
}

/// A duration in seconds: finite, not negative, and not beyond `Duration`'s range.
pub(crate) fn seconds(name: &str, s: f64) -> BindResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| invalid(name, format!("{s} is not a non-negative number of seconds")))
}

/// Split one buffer at `offsets` (n + 1 boundaries) into owned payloads.
pub fn split_buffer(buffer: &[u8], offsets: &[usize]) -> sealbus_core::Result<Vec<Vec<u8>>> {
    let bad = |reason: String| Error::InvalidArgument {
        name: "offsets".into(),
        reason,
    };
    if offsets.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(offsets.len() - 1);
    for w in offsets.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a > b || b > buffer.len() {
            return Err(bad(format!(
                "[{a}, {b}) is not a range inside a buffer of {} bytes",
                buffer.len()
            )));
        }
        out.push(buffer[a..b].to_vec());
    }
    Ok(out)
}

/// A publish's `kind` argument: the data kind, and whether it is sealed end to end.
pub(crate) fn data_kind(kind: &str) -> BindResult<(DataKind, bool)> {
    match kind {
        "json" => Ok((DataKind::Json, false)),
        "binary" => Ok((DataKind::Binary, false)),
        "e2e" => Ok((DataKind::Binary, true)),
        _ => Err(invalid("kind", "must be 'json', 'binary' or 'e2e'")),
    }
}

/// A publish's optional `CloudEvents` attributes.
pub(crate) fn attributes(
    py: Python<'_>,
    attrs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Attributes> {
    let mut a = Attributes::default();
    if let Some(d) = attrs {
        for (k, v) in d.iter() {
            let k = k.extract::<Arg<String>>()?.0;
            let v = v.extract::<Option<Arg<String>>>()?.map(|v| v.0);
            match k.as_str() {
                "subject" => a.subject = v,
                "datacontenttype" => a.datacontenttype = v,
                "dataschema" => a.dataschema = v,
                "traceparent" => a.traceparent = v,
                other => {
                    return Err(to_pyerr(
                        py,
                        Error::InvalidEvent {
                            field: other.to_owned(),
                            reason: "unknown attribute".into(),
                        },
                    ))
                }
            }
        }
    }
    Ok(a)
}

/// The exception for a refused publish, carrying the receipts of what was queued.
pub(crate) fn refused_error(py: Python<'_>, refused: Refused) -> PyResult<PyErr> {
    let err = to_pyerr(py, refused.error);
    let receipts: Vec<PyReceipt> = refused.receipts.into_iter().map(PyReceipt::from).collect();
    err.value(py).setattr("receipts", receipts)?;
    Ok(err)
}

/// A clock that only moves when told to: for deterministic tests of ack timeouts.
#[pyclass(frozen, module = "sealbus._sealbus")]
pub struct ManualClock {
    pub(crate) ns: Arc<AtomicU64>,
}

#[pymethods]
impl ManualClock {
    #[new]
    fn new() -> Self {
        ManualClock {
            ns: Arc::new(AtomicU64::new(0)),
        }
    }
    /// Move the clock forward by `seconds`.
    fn advance(&self, seconds: Arg<f64>) -> PyResult<()> {
        let seconds = seconds.0;
        let d = self::seconds("seconds", seconds)?;
        self.ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::AcqRel,
        );
        Ok(())
    }
    #[getter]
    fn now(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let s = self.ns.load(Ordering::Acquire) as f64 / 1e9;
        s
    }
}

/// Why an event's data could not be opened: (key destroyed?, key id or reason).
type Unopened = Option<(bool, String)>;

/// One immutable CloudEvents 1.0 event.
#[pyclass(frozen, module = "sealbus._sealbus", name = "Event")]
pub struct PyEvent {
    pub inner: Item,
    data: OnceLock<Py<PyAny>>,
    /// Why the data could not be opened (kept as text: errors are not Clone).
    unopened: Unopened,
}

impl PyEvent {
    pub fn wrap(inner: Item) -> Self {
        PyEvent {
            inner,
            data: OnceLock::new(),
            unopened: None,
        }
    }

    fn opened(o: Opened) -> (Self, u64, u32) {
        let unopened = o.error.map(|e| match e {
            Error::KeyDestroyed { key_id } => (true, key_id),
            other => (false, other.to_string()),
        });
        (
            PyEvent {
                inner: o.event,
                data: OnceLock::new(),
                unopened,
            },
            o.tag,
            o.attempt,
        )
    }
}

#[pymethods]
impl PyEvent {
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }
    #[getter(r#type)]
    fn event_type(&self) -> &str {
        &self.inner.event_type
    }
    #[getter]
    #[allow(clippy::unused_self)] // a property: Python calls it on the instance
    fn specversion(&self) -> &'static str {
        sealbus_core::envelope::SPECVERSION
    }
    #[getter]
    fn time(&self) -> &str {
        &self.inner.time
    }
    #[getter]
    fn datacontenttype(&self) -> Option<&str> {
        self.inner.datacontenttype.as_deref()
    }
    #[getter]
    fn dataschema(&self) -> Option<&str> {
        self.inner.dataschema.as_deref()
    }
    #[getter]
    fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }
    #[getter]
    fn traceparent(&self) -> Option<&str> {
        self.inner.traceparent.as_deref()
    }
    #[getter]
    fn schema_version(&self) -> Option<u32> {
        self.inner.schema_version
    }
    /// Position in the durable log, if stored there.
    #[getter]
    fn offset(&self) -> Option<u64> {
        self.inner.offset
    }
    /// The data: a JSON value (decoded once, on first access), bytes, or None.
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some((destroyed, what)) = &self.unopened {
            let e = if *destroyed {
                Error::KeyDestroyed {
                    key_id: what.clone(),
                }
            } else {
                Error::Integrity {
                    reason: format!("event {}: {what}", self.inner.id),
                }
            };
            return Err(to_pyerr(py, e));
        }
        if let Some(d) = self.data.get() {
            return Ok(d.clone_ref(py));
        }
        let value = match self.inner.data_kind {
            DataKind::Json => {
                let json = PyModule::import(py, "json")?;
                json.call_method1("loads", (PyBytes::new(py, &self.inner.data),))?
                    .unbind()
            }
            DataKind::Binary => PyBytes::new(py, &self.inner.data).into_any().unbind(),
            DataKind::None => py.None(),
        };
        let _ = self.data.set(value.clone_ref(py));
        Ok(value)
    }
    /// How the data is held: ``"json"`` (JSON text), ``"binary"`` or ``"none"``.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.data_kind {
            DataKind::Json => "json",
            DataKind::Binary => "binary",
            DataKind::None => "none",
        }
    }
    /// The data as raw bytes (JSON text for JSON events).
    #[getter]
    fn data_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.data)
    }
    /// The CloudEvents JSON format (structured mode), as text.
    fn to_json(&self) -> String {
        String::from_utf8_lossy(&self.inner.to_json_bytes(true)).into_owned()
    }
    /// Parse the CloudEvents JSON format.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes: Vec<u8> = if let Ok(s) = text.extract::<String>() {
            s.into_bytes()
        } else {
            text.extract::<Arg<Vec<u8>>>()?.0
        };
        let e = attached(py, Event::from_json_bytes(&bytes))?;
        Ok(PyEvent::wrap(Arc::new(e)))
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyEvent>()
            .is_ok_and(|o| *o.get().inner == *self.inner)
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.id.hash(&mut h);
        self.inner.source.hash(&mut h);
        h.finish()
    }
    // Data is left out on purpose: a repr ends up in logs, plaintext must not.
    fn __repr__(&self) -> String {
        format!(
            "Event(id={:?}, type={:?}, source={:?}, time={:?})",
            self.inner.id, self.inner.event_type, self.inner.source, self.inner.time
        )
    }
}

/// What a publish returns for each accepted event.
#[pyclass(frozen, module = "sealbus._sealbus", name = "Receipt")]
pub struct PyReceipt {
    #[pyo3(get)]
    id: String,
    #[pyo3(get)]
    time: String,
    #[pyo3(get)]
    schema_version: Option<u32>,
    #[pyo3(get)]
    routed: usize,
    #[pyo3(get)]
    offset: Option<u64>,
}

impl From<Receipt> for PyReceipt {
    fn from(r: Receipt) -> Self {
        PyReceipt {
            id: r.id,
            time: r.time.to_string(),
            schema_version: r.schema_version,
            routed: r.routed,
            offset: r.offset,
        }
    }
}

#[pymethods]
impl PyReceipt {
    fn __repr__(&self) -> String {
        format!("Receipt(id={:?}, routed={})", self.id, self.routed)
    }
}

/// The receipts of one publish call, kept on the Rust side: a batch of 1,024 events
/// no longer makes 1,024 Python objects. A read-only sequence of `Receipt` (each made
/// when indexed or iterated), plus the batch-wide views `ids`, `first_offset`, `count`.
#[pyclass(frozen, sequence, module = "sealbus._sealbus", name = "Receipts")]
pub struct PyReceipts {
    inner: Vec<Receipt>,
}

impl PyReceipts {
    pub(crate) fn new(inner: Vec<Receipt>) -> Self {
        PyReceipts { inner }
    }

    fn one(&self, j: usize) -> PyReceipt {
        PyReceipt::from(self.inner[j].clone())
    }
}

#[pymethods]
impl PyReceipts {
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn __getitem__(&self, i: Arg<isize>) -> PyResult<PyReceipt> {
        let i = i.0;
        let n = isize::try_from(self.inner.len()).unwrap_or(isize::MAX);
        let j = if i < 0 { i + n } else { i };
        usize::try_from(j)
            .ok()
            .filter(|&j| j < self.inner.len())
            .map(|j| self.one(j))
            .ok_or(BindError::Index {
                what: "receipt",
                index: i,
                len: self.inner.len(),
            })
            .map_err(PyErr::from)
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        let all = (0..self.inner.len())
            .map(|j| Py::new(py, self.one(j)))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, all)?.try_iter()
    }
    /// Event ids, in publish order.
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.inner.iter().map(|r| r.id.clone()).collect()
    }
    /// How many events were accepted.
    #[getter]
    fn count(&self) -> usize {
        self.inner.len()
    }
    /// The log offset of the first event (None on an in-memory router or if empty).
    #[getter]
    fn first_offset(&self) -> Option<u64> {
        self.inner.first().and_then(|r| r.offset)
    }
    /// Per event, how many subscriptions it was queued for.
    #[getter]
    fn routed(&self) -> Vec<usize> {
        self.inner.iter().map(|r| r.routed).collect()
    }
    fn __repr__(&self) -> String {
        format!("Receipts({} events)", self.inner.len())
    }
}

/// A subscription together with the router that serves it.
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) router: Arc<Router>,
    pub(crate) sub: Arc<Subscription>,
}

impl Handle {
    fn ack(&self, py: Python<'_>, tags: &[u64]) -> PyResult<usize> {
        // The acknowledgement itself is a few µs in memory: keeping the GIL spares a
        // hand-over per ack. A durable cursor's save (write + fsync, at most every
        // `ACK_SAVE_EVERY`) waits on the disk: never with the GIL held.
        let (n, save) = attached(py, self.router.ack_unsaved(&self.sub, tags))?;
        if save {
            detached(py, || self.router.save_acked())?;
        }
        Ok(n)
    }
    fn nack(&self, py: Python<'_>, tags: &[u64]) -> PyResult<usize> {
        attached(py, self.router.nack(&self.sub, tags))
    }
    /// Poll and open, with the GIL released.
    fn poll(&self, py: Python<'_>, max: usize, timeout: Option<Duration>) -> PyResult<Vec<Opened>> {
        let h = self.clone();
        waiting(
            py,
            timeout,
            move |slice| {
                let ds = h.router.poll(&h.sub, max, Some(slice))?;
                Ok(h.router.open(ds))
            },
            |opened| !opened.is_empty(),
        )
    }
}

/// One delivery of an event to a subscription; ack it or nack it.
#[pyclass(frozen, module = "sealbus._sealbus", name = "Message")]
pub struct PyMessage {
    handle: Handle,
    #[pyo3(get)]
    tag: u64,
    #[pyo3(get)]
    attempt: u32,
    #[pyo3(get)]
    event: Py<PyEvent>,
}

#[pymethods]
impl PyMessage {
    /// The data, opened for this consumer. Raises `KeyDestroyed` if its key was
    /// destroyed (crypto-shredded), `IntegrityError` if it was tampered with.
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.event.get().data(py)
    }
    #[getter]
    fn id(&self) -> String {
        self.event.get().inner.id.clone()
    }
    #[getter(r#type)]
    fn event_type(&self) -> String {
        self.event.get().inner.event_type.to_string()
    }
    /// Acknowledge: the event is done. Returns False if it was already acked or its
    /// ack deadline passed (it has been or will be redelivered).
    fn ack(&self, py: Python<'_>) -> PyResult<bool> {
        self.handle.ack(py, &[self.tag]).map(|n| n == 1)
    }
    /// Refuse: redeliver (or dead-letter after `max_deliveries`).
    fn nack(&self, py: Python<'_>) -> PyResult<bool> {
        self.handle.nack(py, &[self.tag]).map(|n| n == 1)
    }
    fn __repr__(&self) -> String {
        let e = &self.event.get().inner;
        format!(
            "Message(id={:?}, type={:?}, attempt={}, subscription={:?})",
            e.id, e.event_type, self.attempt, self.handle.sub.name
        )
    }
}

pub(crate) fn wrap_opened(
    py: Python<'_>,
    handle: &Handle,
    opened: Vec<Opened>,
) -> PyResult<Vec<Py<PyMessage>>> {
    opened
        .into_iter()
        .map(|o| {
            let (ev, tag, attempt) = PyEvent::opened(o);
            let event = Py::new(py, ev)?;
            Py::new(
                py,
                PyMessage {
                    handle: handle.clone(),
                    tag,
                    attempt,
                    event,
                },
            )
        })
        .collect()
}

/// A batch of deliveries as one buffer: the fast path for consumers that handle
/// many events per call. `buffer[offsets[i]:offsets[i+1]]` is event i's data.
#[pyclass(frozen, module = "sealbus._sealbus", name = "DeliveryBatch")]
pub struct PyDeliveryBatch {
    handle: Handle,
    tags: Vec<u64>,
    /// The delivered items as the router holds them (still sealed at rest: the
    /// opened data is in `buffer`), their attempt, and why one could not be opened.
    opened: Vec<(Item, u32, Unopened)>,
    /// The opened data, built with the GIL released and lent to Python read only.
    data: Py<LentBytes>,
    offsets: Vec<usize>,
    received_ns: u64,
    /// Events whose slot in `data` is an end-to-end frame (see `OpenedBatch`).
    end_to_end: Vec<usize>,
}

/// A polled batch opened with the GIL released; it becomes a `DeliveryBatch` once
/// the GIL is back.
pub(crate) struct OpenedParts {
    batch: OpenedBatch,
    received_ns: u64,
}

impl OpenedParts {
    pub(crate) fn is_empty(&self) -> bool {
        self.batch.deliveries.is_empty()
    }

    /// `received_ns`: stamped as soon as the consumer's thread holds the events,
    /// before it takes the GIL back (see [`monotonic_ns`]).
    pub(crate) fn open(router: &Router, polled: Vec<Delivery<Item>>, received_ns: u64) -> Self {
        OpenedParts {
            batch: router.open_into_buffer(polled),
            received_ns,
        }
    }

    pub(crate) fn into_batch(self, py: Python<'_>, handle: Handle) -> PyResult<PyDeliveryBatch> {
        let b = self.batch;
        let data = Py::new(py, LentBytes::new(b.buffer))?;
        let tags: Vec<u64> = b.deliveries.iter().map(|d| d.tag).collect();
        // An end-to-end event's reason is written when it is indexed (`__getitem__`),
        // not here: a consumer reading the buffer never pays for it.
        let opened: Vec<(Item, u32, Unopened)> = b
            .deliveries
            .into_iter()
            .zip(b.errors)
            .map(|(d, e)| (d.item, d.attempt, e.map(unopened_reason)))
            .collect();
        Ok(PyDeliveryBatch {
            handle,
            tags,
            opened,
            data,
            offsets: b.offsets,
            received_ns: self.received_ns,
            end_to_end: b.end_to_end,
        })
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: on Linux the clock of `time.perf_counter_ns` and
/// `time.monotonic_ns`, so Python can subtract its own stamps from it.
pub(crate) fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

fn unopened_reason(e: Error) -> (bool, String) {
    match e {
        Error::KeyDestroyed { key_id } => (true, key_id),
        other => (false, other.to_string()),
    }
}

#[pymethods]
impl PyDeliveryBatch {
    fn __len__(&self) -> usize {
        self.tags.len()
    }
    /// All the events' data, concatenated, as a read-only ``memoryview`` (no copy;
    /// ``bytes(batch.buffer[a:b])`` copies one event out). An event that could not be
    /// opened has empty data here; index it to see why.
    #[getter]
    fn buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMemoryView>> {
        PyMemoryView::from(self.data.bind(py).as_any())
    }
    /// `len + 1` boundaries into `buffer`.
    #[getter]
    fn offsets(&self) -> Vec<usize> {
        self.offsets.clone()
    }
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.opened.iter().map(|(e, _, _)| e.id.clone()).collect()
    }
    #[getter]
    fn tags(&self) -> Vec<u64> {
        self.tags.clone()
    }
    /// When the consumer's poll took these events, before its thread got the GIL
    /// back: ``time.perf_counter_ns()``/``time.monotonic_ns()`` clock on Linux.
    #[getter]
    fn received_ns(&self) -> u64 {
        self.received_ns
    }
    /// Indices of the events whose data is an end-to-end frame, which only the
    /// consumer's key pair opens (`sealbus.Subscription.poll_batch` does, from the
    /// events themselves): their slot in `buffer` is empty, unless the event was read
    /// back sealed at rest (the slot then holds the frame that seal opened to).
    #[getter]
    fn end_to_end(&self) -> Vec<usize> {
        self.end_to_end.clone()
    }
    /// Event `i` as a Message (ack/nack it alone if you like).
    fn __getitem__(&self, py: Python<'_>, i: Arg<isize>) -> PyResult<PyMessage> {
        let i = i.0;
        let n = isize::try_from(self.tags.len()).unwrap_or(isize::MAX);
        let j = if i < 0 { i + n } else { i };
        let j = usize::try_from(j)
            .ok()
            .filter(|&j| j < self.tags.len())
            .ok_or(BindError::Index {
                what: "batch",
                index: i,
                len: self.tags.len(),
            })?;
        let (item, attempt, unopened) = &self.opened[j];
        // Indexed alone, an end-to-end event refuses its data: the frame is not it.
        let unopened = if self.end_to_end.binary_search(&j).is_ok() {
            Some((
                false,
                format!(
                    "event {} is sealed end to end; sealbus.Subscription.poll_batch opens it \
                     with the consumer's key pair",
                    item.id
                ),
            ))
        } else {
            unopened.clone()
        };
        // Only an indexed event gets its own copy, with the opened data.
        // A window item whose key was destroyed holds plaintext: never hand it out.
        let inner = if item.sealed || unopened.is_some() {
            let mut e = (**item).clone();
            e.sealed = false;
            e.data = if unopened.is_some() {
                Vec::new()
            } else {
                self.data.get().as_slice()[self.offsets[j]..self.offsets[j + 1]].to_vec()
            };
            Arc::new(e)
        } else {
            item.clone()
        };
        let ev = PyEvent {
            inner,
            data: OnceLock::new(),
            unopened,
        };
        Ok(PyMessage {
            handle: self.handle.clone(),
            tag: self.tags[j],
            attempt: *attempt,
            event: Py::new(py, ev)?,
        })
    }
    /// The events sealed end to end, opened with the consumer's key in one call
    /// (`sealbus.endtoend`), and validated against their schemas when `validate`:
    /// `None` when there are none, else `(data, offsets, errors)`.
    #[pyo3(signature = (key, recipient_id, validate = true))]
    fn open_end_to_end<'py>(
        &self,
        py: Python<'py>,
        key: &crate::seal::PyRecipientKey,
        recipient_id: &str,
        validate: bool,
    ) -> PyResult<Option<Bound<'py, pyo3::types::PyTuple>>> {
        let events: Vec<&Event> = self.opened.iter().map(|(e, _, _)| &**e).collect();
        let mut sealed = vec![false; events.len()];
        for &j in &self.end_to_end {
            sealed[j] = true;
        }
        crate::e2e_delivery::open_delivered(
            py,
            &self.handle.router,
            &self.handle.sub,
            validate,
            &key.key,
            recipient_id,
            &events,
            &sealed,
            self.data.get().as_slice(),
            &self.offsets,
        )
    }
    /// The CloudEvents JSON format of every event whose data could be opened, as
    /// one buffer: `(buffer, offsets, index in the batch, types, schema versions)`.
    fn cloudevents(&self, py: Python<'_>) -> crate::bridge::CloudEvents {
        crate::bridge::batch_cloudevents(
            py,
            &self.opened,
            self.data.get().as_slice(),
            &self.offsets,
            &self.end_to_end,
        )
    }
    /// Acknowledge every event of the batch in one call.
    fn ack(&self, py: Python<'_>) -> PyResult<usize> {
        self.handle.ack(py, &self.tags)
    }
    /// Refuse every event of the batch in one call.
    fn nack(&self, py: Python<'_>) -> PyResult<usize> {
        self.handle.nack(py, &self.tags)
    }
    fn __repr__(&self) -> String {
        format!(
            "DeliveryBatch({} events, subscription={:?})",
            self.tags.len(),
            self.handle.sub.name
        )
    }
}

/// The Rust side of a subscription.
#[pyclass(frozen, module = "sealbus._sealbus", name = "SubscriptionCore")]
pub struct PySubscription {
    pub(crate) handle: Handle,
}

#[pymethods]
impl PySubscription {
    #[getter]
    fn id(&self) -> u64 {
        self.handle.sub.id
    }
    #[getter]
    fn name(&self) -> &str {
        &self.handle.sub.name
    }
    #[getter]
    fn principal(&self) -> &str {
        &self.handle.sub.principal
    }
    #[getter]
    fn types(&self) -> Vec<String> {
        self.handle.sub.types.clone()
    }
    #[getter]
    fn closed(&self) -> bool {
        self.handle.sub.is_closed()
    }
    #[getter]
    fn durable(&self) -> bool {
        self.handle.sub.is_durable()
    }
    /// Up to `max_messages`, waiting up to `timeout` seconds (None: until one arrives)
    /// for the first, with the GIL released.
    #[pyo3(signature = (max_messages, timeout))]
    fn poll(
        &self,
        py: Python<'_>,
        max_messages: Arg<usize>,
        timeout: Option<Arg<f64>>,
    ) -> PyResult<Vec<Py<PyMessage>>> {
        let (max_messages, timeout) = (max_messages.0, timeout.map(|a| a.0));
        let timeout = timeout_arg(timeout)?;
        let opened = self.handle.poll(py, max_messages, timeout)?;
        wrap_opened(py, &self.handle, opened)
    }
    /// Like `poll`, but one `DeliveryBatch` (one buffer + offsets) instead of a
    /// Python object per event.
    #[pyo3(signature = (max_messages, timeout))]
    fn poll_batch(
        &self,
        py: Python<'_>,
        max_messages: Arg<usize>,
        timeout: Option<Arg<f64>>,
    ) -> PyResult<PyDeliveryBatch> {
        let (max_messages, timeout) = (max_messages.0, timeout.map(|a| a.0));
        let timeout = timeout_arg(timeout)?;
        let h = self.handle.clone();
        let parts = waiting(
            py,
            timeout,
            move |slice| {
                let polled = h.router.poll(&h.sub, max_messages, Some(slice))?;
                Ok(OpenedParts::open(&h.router, polled, monotonic_ns()))
            },
            |parts| !parts.is_empty(),
        )?;
        parts.into_batch(py, self.handle.clone())
    }
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts the list into a Vec
    fn ack(&self, py: Python<'_>, tags: Arg<Vec<u64>>) -> PyResult<usize> {
        let tags = tags.0;
        self.handle.ack(py, &tags)
    }
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts the list into a Vec
    fn nack(&self, py: Python<'_>, tags: Arg<Vec<u64>>) -> PyResult<usize> {
        let tags = tags.0;
        self.handle.nack(py, &tags)
    }
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let sealbus_core::route::SubStats {
            counters: s,
            ready,
            in_flight: inflight,
            dead_letters: dead,
            durable,
        } = attached(py, self.handle.router.stats_of(&self.handle.sub))?;
        let d = PyDict::new(py);
        d.set_item("ready", ready)?;
        d.set_item("in_flight", inflight)?;
        d.set_item("dead_letters", dead)?;
        d.set_item("enqueued", s.enqueued)?;
        d.set_item("delivered", s.delivered)?;
        d.set_item("redelivered", s.redelivered)?;
        d.set_item("acked", s.acked)?;
        d.set_item("nacked", s.nacked)?;
        d.set_item("expired", s.expired)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("dead_lettered", s.dead_lettered)?;
        d.set_item("dead_dropped", s.dead_dropped)?;
        if let Some((committed, read, owed, lost)) = durable {
            d.set_item("committed_offset", committed)?;
            d.set_item("read_offset", read)?;
            d.set_item("backlog", owed)?;
            d.set_item("lost_to_retention", lost)?;
        }
        Ok(d)
    }
    /// Dead letters as (event, attempts, reason); `remove` takes them out.
    #[pyo3(signature = (max=Arg(1000), remove=Arg(false)))]
    fn dead_letters(
        &self,
        py: Python<'_>,
        max: Arg<usize>,
        remove: Arg<bool>,
    ) -> PyResult<Vec<(Py<PyEvent>, u32, &'static str)>> {
        let (max, remove) = (max.0, remove.0);
        let dl = attached(
            py,
            self.handle
                .router
                .dead_letters(&self.handle.sub, max, remove),
        )?;
        let items: Vec<_> = dl.iter().map(|d| d.item.clone()).collect();
        // Dead letters are opened for their consumer like any delivery.
        let opened = self.handle.router.open(
            items
                .into_iter()
                .map(|item| sealbus_core::route::Delivery {
                    tag: 0,
                    attempt: 0,
                    item,
                })
                .collect(),
        );
        dl.into_iter()
            .zip(opened)
            .map(|(d, o)| Ok((Py::new(py, PyEvent::opened(o).0)?, d.attempts, d.reason)))
            .collect()
    }
    /// Close; a durable subscription keeps its cursor unless `forget`.
    #[pyo3(signature = (forget=Arg(false)))]
    fn close(&self, py: Python<'_>, forget: Arg<bool>) -> PyResult<bool> {
        let forget = forget.0;
        attached(
            py,
            self.handle.router.unsubscribe(self.handle.sub.id, forget),
        )
    }
}

/// A replay in progress: `next_batch(n)` until it returns an empty list.
#[pyclass(module = "sealbus._sealbus", name = "ReplayCore")]
pub struct PyReplay {
    router: Arc<Router>,
    state: Option<Replay>,
}

#[pymethods]
impl PyReplay {
    fn next_batch(&mut self, py: Python<'_>, max: Arg<usize>) -> PyResult<Vec<PyEvent>> {
        let max = max.0;
        let Some(mut state) = self.state.take() else {
            return Ok(Vec::new());
        };
        let (router, replay) = (&self.router, &mut state);
        let found = waiting(
            py,
            None,
            |slice| {
                let ev = router.replay_next_within(replay, max, Some(slice))?;
                Ok((ev, replay.is_done()))
            },
            |(events, done)| !events.is_empty() || *done,
        );
        // Kept on Ctrl-C too: the replay goes on from where it was.
        self.state = Some(state);
        let (events, _done) = found?;
        Ok(events.into_iter().map(PyEvent::wrap).collect())
    }
}

/// The Rust side of a router. The public `sealbus.Router` wraps it.
#[pyclass(frozen, module = "sealbus._sealbus", name = "RouterCore")]
pub struct PyRouter {
    pub(crate) router: Arc<Router>,
}

#[pymethods]
impl PyRouter {
    #[new]
    #[pyo3(signature = (allow_schemaless=Arg(false), clock=None, path=None, fsync=Arg("batch"), keys=None, segment_bytes=None, retention_max_age=None, retention_max_bytes=None, retention_respect_consumers=Arg(true), max_event_bytes=Arg(DEFAULT_MAX_EVENT_BYTES), max_batch_bytes=Arg(DEFAULT_MAX_BATCH_BYTES), seal_subject=Arg(false)))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        allow_schemaless: Arg<bool>,
        clock: Option<Arg<Bound<'_, ManualClock>>>,
        path: Option<Arg<FsPath>>,
        fsync: Arg<&str>,
        keys: Option<Arg<Bound<'_, PyKeyRing>>>,
        segment_bytes: Option<Arg<u64>>,
        retention_max_age: Option<Arg<f64>>,
        retention_max_bytes: Option<Arg<u64>>,
        retention_respect_consumers: Arg<bool>,
        max_event_bytes: Arg<usize>,
        max_batch_bytes: Arg<usize>,
        seal_subject: Arg<bool>,
    ) -> PyResult<Self> {
        let (
            allow_schemaless,
            clock,
            path,
            fsync,
            keys,
            segment_bytes,
            retention_max_age,
            retention_max_bytes,
            retention_respect_consumers,
            max_event_bytes,
            max_batch_bytes,
            seal_subject,
        ) = (
            allow_schemaless.0,
            clock.map(|a| a.0),
            path.map(|a| a.0),
            fsync.0,
            keys.map(|a| a.0),
            segment_bytes.map(|a| a.0),
            retention_max_age.map(|a| a.0),
            retention_max_bytes.map(|a| a.0),
            retention_respect_consumers.0,
            max_event_bytes.0,
            max_batch_bytes.0,
            seal_subject.0,
        );
        if seal_subject && (keys.is_none() || path.is_none()) {
            return Err(invalid(
                "seal_subject",
                "seals the subject in the durable log: it needs a path and at-rest sealing",
            )
            .into());
        }
        let limits = Limits {
            max_event_bytes,
            max_batch_bytes,
        };
        attached(py, limits.validate())?;
        let clock = clock.map_or_else(Clock::default, |c| Clock::Manual(c.get().ns.clone()));
        let log = match path {
            None => None,
            Some(dir) => {
                let mut opts = LogOptions {
                    fsync: attached(py, FsyncPolicy::parse(fsync))?,
                    ..LogOptions::default()
                };
                if let Some(b) = segment_bytes {
                    opts.segment_bytes = b;
                }
                opts.retention = Retention {
                    max_age: retention_max_age
                        .map(|a| seconds("retention_max_age", a))
                        .transpose()?,
                    max_bytes: retention_max_bytes,
                    respect_consumers: retention_respect_consumers,
                };
                let (log, cursors) = detached(py, move || {
                    let log = Log::open(&dir, opts)?;
                    let cursors = CursorStore::open(&dir.join("cursors"))?;
                    Ok((log, cursors))
                })?;
                Some((Arc::new(log), cursors))
            }
        };
        let config = RouterConfig {
            allow_schemaless,
            keys: keys.map(|k| k.get().ring()),
            log,
            limits,
            seal_subject,
        };
        let router = Arc::new(Router::new(config, clock));
        router.start_housekeeping(Duration::from_millis(200), Duration::from_secs(5));
        Ok(PyRouter { router })
    }

    #[getter]
    fn durable(&self) -> bool {
        self.router.log().is_some()
    }

    #[getter]
    fn sealed(&self) -> bool {
        self.router.keys().is_some()
    }

    /// Save changed consumer cursors now.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let r = self.router.clone();
        detached(py, move || r.flush())
    }

    /// Apply the retention policy now; returns what was deleted, or None in memory.
    fn apply_retention<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let r = self.router.clone();
        let Some(rep) = detached(py, move || r.apply_retention())? else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("segments_deleted", rep.segments_deleted)?;
        d.set_item("bytes_deleted", rep.bytes_deleted)?;
        d.set_item("records_deleted", rep.records_deleted)?;
        d.set_item("needed_records_deleted", rep.needed_records_deleted)?;
        d.set_item(
            "segments_kept_for_consumers",
            rep.segments_kept_for_consumers,
        )?;
        d.set_item("first_offset", rep.first_offset)?;
        Ok(Some(d))
    }

    /// Flush cursors and close the log; the router refuses further work.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let r = self.router.clone();
        detached(py, move || r.close())
    }

    #[pyo3(signature = (principal, token, types, since_offset=None, since_time=None, pattern_json=None))]
    #[allow(clippy::too_many_arguments)]
    fn replay(
        &self,
        py: Python<'_>,
        principal: Arg<&str>,
        token: Arg<&[u8]>,
        types: Arg<Vec<String>>,
        since_offset: Option<Arg<u64>>,
        since_time: Option<Arg<&str>>,
        pattern_json: Option<Arg<&str>>,
    ) -> PyResult<PyReplay> {
        let (principal, token, types, since_offset, since_time, pattern_json) = (
            principal.0,
            token.0,
            types.0,
            since_offset.map(|a| a.0),
            since_time.map(|a| a.0),
            pattern_json.map(|a| a.0),
        );
        let pattern = pattern_json
            .map(Pattern::parse_json)
            .transpose()
            .map_err(|e| to_pyerr(py, e))?;
        let since_ns = since_time
            .map(sealbus_core::envelope::parse_time)
            .transpose()
            .map_err(|e| to_pyerr(py, e))?;
        let state = attached(
            py,
            self.router
                .replay(principal, token, types, since_offset, since_ns, pattern),
        )?;
        Ok(PyReplay {
            router: self.router.clone(),
            state: Some(state),
        })
    }

    /// Register a principal; returns its secret token (keep it in a Principal object).
    fn register_principal<'py>(
        &self,
        py: Python<'py>,
        name: Arg<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let name = name.0;
        let token = attached(py, self.router.policy.register(name))?;
        Ok(PyBytes::new(py, &token))
    }

    fn allow(
        &self,
        py: Python<'_>,
        principal: Arg<&str>,
        action: Arg<&str>,
        glob: Arg<&str>,
    ) -> PyResult<()> {
        let (principal, action, glob) = (principal.0, action.0, glob.0);
        attached(
            py,
            self.router.allow(principal, self::action(action)?, glob),
        )
    }

    fn revoke(
        &self,
        py: Python<'_>,
        principal: Arg<&str>,
        action: Arg<&str>,
        glob: Arg<&str>,
    ) -> PyResult<bool> {
        let (principal, action, glob) = (principal.0, action.0, glob.0);
        attached(
            py,
            self.router.revoke(principal, self::action(action)?, glob),
        )
    }

    fn allows(
        &self,
        principal: Arg<&str>,
        action: Arg<&str>,
        type_or_glob: Arg<&str>,
    ) -> PyResult<bool> {
        let (principal, action, type_or_glob) = (principal.0, action.0, type_or_glob.0);
        Ok(self
            .router
            .policy
            .allows(principal, self::action(action)?, type_or_glob))
    }

    fn set_public_key(
        &self,
        py: Python<'_>,
        principal: Arg<&str>,
        key: Arg<&[u8]>,
    ) -> PyResult<()> {
        let (principal, key) = (principal.0, key.0);
        attached(py, self.router.policy.set_public_key(principal, key))
    }

    fn require_end_to_end(&self, py: Python<'_>, glob: Arg<&str>) -> PyResult<()> {
        let glob = glob.0;
        attached(py, self.router.require_end_to_end(glob))
    }

    fn requires_end_to_end(&self, event_type: Arg<&str>) -> bool {
        let event_type = event_type.0;
        self.router.policy.requires_end_to_end(event_type)
    }

    /// (name, X25519 public key) of every principal allowed to read `event_type`.
    fn recipients<'py>(
        &self,
        py: Python<'py>,
        event_type: Arg<&str>,
    ) -> Vec<(String, Bound<'py, PyBytes>)> {
        let event_type = event_type.0;
        self.router
            .policy
            .recipients(event_type)
            .into_iter()
            .map(|(n, k)| (n, PyBytes::new(py, &k)))
            .collect()
    }

    fn grants(&self, principal: Arg<&str>) -> (Vec<String>, Vec<String>) {
        let principal = principal.0;
        self.router.policy.grants(principal)
    }

    #[pyo3(signature = (event_type, schema_json, version=None, compatibility=Arg("backward")))]
    fn register_schema(
        &self,
        py: Python<'_>,
        event_type: Arg<&str>,
        schema_json: Arg<&str>,
        version: Option<Arg<u32>>,
        compatibility: Arg<&str>,
    ) -> PyResult<u32> {
        let (event_type, schema_json, version, compatibility) = (
            event_type.0,
            schema_json.0,
            version.map(|a| a.0),
            compatibility.0,
        );
        let compat: Compatibility = attached(py, compatibility.parse())?;
        let schema: serde_json::Value = serde_json::from_str(schema_json).map_err(|e| {
            to_pyerr(
                py,
                Error::SchemaInvalid {
                    event_type: event_type.to_owned(),
                    version: version.unwrap_or(0),
                    reason: format!("not JSON: {e}"),
                },
            )
        })?;
        attached(py, sealbus_core::envelope::check_event_type(event_type))?;
        attached(
            py,
            self.router
                .schemas
                .register(event_type, &schema, version, compat),
        )
    }

    /// Check a publish's sizes (`n + 1` offsets) against the router's limits, as a
    /// publish does first (producers that seal end to end check before sealing).
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts the list into a Vec
    fn check_sizes(&self, py: Python<'_>, offsets: Arg<Vec<usize>>) -> PyResult<()> {
        attached(py, self.router.limits().check_offsets(&offsets.0, false))
    }

    #[getter]
    fn max_event_bytes(&self) -> usize {
        self.router.limits().max_event_bytes
    }

    #[getter]
    fn max_batch_bytes(&self) -> usize {
        self.router.limits().max_batch_bytes
    }

    /// Validate JSON data against the type's latest schema (consumers of end-to-end
    /// events call this after opening, since the router could not).
    fn validate_data(
        &self,
        py: Python<'_>,
        event_type: Arg<&str>,
        data: Arg<&[u8]>,
    ) -> PyResult<u32> {
        let (event_type, data) = (event_type.0, data.0);
        attached(py, self.router.validate_data(event_type, data))
    }

    fn schema_latest_version(&self, event_type: Arg<&str>) -> Option<u32> {
        let event_type = event_type.0;
        self.router.schemas.latest_version(event_type)
    }

    /// Publish a batch given as one buffer plus n + 1 offsets. `kind` is "json" or
    /// "binary". Validation, policy and routing all happen with the GIL released.
    #[pyo3(signature = (principal, token, event_type, buffer, offsets, kind=Arg("json"), version=None, attrs=None, block_timeout=None, ids=None))]
    // PyO3 extracts a Python list into a Vec (a slice cannot borrow from a list).
    #[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
    fn publish(
        &self,
        py: Python<'_>,
        principal: Arg<&str>,
        token: Arg<&[u8]>,
        event_type: Arg<&str>,
        buffer: Arg<&[u8]>,
        offsets: Arg<Vec<usize>>,
        kind: Arg<&str>,
        version: Option<Arg<u32>>,
        attrs: Option<Arg<Bound<'_, PyDict>>>,
        block_timeout: Option<Arg<f64>>,
        ids: Option<Arg<Vec<String>>>,
    ) -> PyResult<PyReceipts> {
        let (
            principal,
            token,
            event_type,
            buffer,
            offsets,
            kind,
            version,
            attrs,
            block_timeout,
            ids,
        ) = (
            principal.0,
            token.0,
            event_type.0,
            buffer.0,
            offsets.0,
            kind.0,
            version.map(|a| a.0),
            attrs.map(|a| a.0),
            block_timeout.map(|a| a.0),
            ids.map(|a| a.0),
        );
        let (kind, end_to_end) = data_kind(kind)?;
        let a = attributes(py, attrs.as_ref())?;
        let block_timeout = timeout_arg(block_timeout)?;
        // Sizes first: nothing of an oversized publish is copied, validated or stored.
        attached(py, self.router.limits().check_offsets(&offsets, end_to_end))?;
        // Copy out of Python objects before the GIL is released.
        // The buffer is split into the events' own data here, under the GIL: one copy
        // of the batch instead of a copy of the buffer and then of each event.
        let parts = split_buffer(buffer, &offsets).map_err(|e| to_pyerr(py, e))?;
        let (principal, token, event_type) =
            (principal.to_owned(), token.to_vec(), event_type.to_owned());
        let router = self.router.clone();
        let (result, raised) = interruptible(py, move |interrupt| {
            if ids.as_ref().is_some_and(|i| i.len() != parts.len()) {
                return Err(Error::InvalidArgument {
                    name: "ids".into(),
                    reason: "one id per event".into(),
                });
            }
            let mut ids = ids.map(Vec::into_iter);
            let items = parts
                .into_iter()
                .map(|data| {
                    let id = ids.as_mut().and_then(Iterator::next);
                    sealbus_core::route::Outgoing {
                        kind,
                        data,
                        id,
                        end_to_end,
                    }
                })
                .collect();
            let events = router.prepare(&principal, &token, &event_type, version, &a, items)?;
            Ok(router.enqueue_interruptible(events, block_timeout, Some(interrupt)))
        });
        match result {
            Err(e) => Err(to_pyerr(py, e)),
            Ok(Ok(receipts)) => Ok(PyReceipts { inner: receipts }),
            // Ctrl-C (or another signal handler's exception) while blocked for room.
            Ok(Err(refused)) if matches!(refused.error, Error::Interrupted { .. }) => {
                Err(raised.unwrap_or_else(|| to_pyerr(py, refused.error)))
            }
            Ok(Err(refused)) => Err(refused_error(py, *refused)?),
        }
    }

    #[pyo3(signature = (principal, token, types, name=None, pattern_json=None, max_pending=Arg(10_000), on_full=Arg("block"), ack_timeout=Arg(30.0), max_deliveries=Arg(5), dlq_capacity=Arg(10_000), durable=Arg(false), start=Arg("latest"), max_backlog=None, busy_poll=Arg(0.0)))]
    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        py: Python<'_>,
        principal: Arg<&str>,
        token: Arg<&[u8]>,
        types: Arg<Vec<String>>,
        name: Option<Arg<String>>,
        pattern_json: Option<Arg<&str>>,
        max_pending: Arg<usize>,
        on_full: Arg<&str>,
        ack_timeout: Arg<f64>,
        max_deliveries: Arg<u32>,
        dlq_capacity: Arg<usize>,
        durable: Arg<bool>,
        start: Arg<&str>,
        max_backlog: Option<Arg<u64>>,
        busy_poll: Arg<f64>,
    ) -> PyResult<PySubscription> {
        let (
            principal,
            token,
            types,
            name,
            pattern_json,
            max_pending,
            on_full,
            ack_timeout,
            max_deliveries,
            dlq_capacity,
            durable,
            start,
            max_backlog,
            busy_poll,
        ) = (
            principal.0,
            token.0,
            types.0,
            name.map(|a| a.0),
            pattern_json.map(|a| a.0),
            max_pending.0,
            on_full.0,
            ack_timeout.0,
            max_deliveries.0,
            dlq_capacity.0,
            durable.0,
            start.0,
            max_backlog.map(|a| a.0),
            busy_poll.0,
        );
        let start = match start {
            "latest" => Start::Latest,
            "earliest" => Start::Earliest,
            other => {
                return Err(to_pyerr(
                    py,
                    Error::InvalidArgument {
                        name: "start".into(),
                        reason: format!("{other:?} is not 'latest' or 'earliest'"),
                    },
                ))
            }
        };
        let pattern = pattern_json
            .map(Pattern::parse_json)
            .transpose()
            .map_err(|e| to_pyerr(py, e))?;
        let cfg = QueueConfig {
            max_pending,
            on_full: attached(py, on_full.parse::<OnFull>())?,
            ack_timeout_ns: u64::try_from(seconds("ack_timeout", ack_timeout)?.as_nanos())
                .unwrap_or(u64::MAX),
            max_deliveries,
            dlq_capacity,
            busy_poll_ns: u64::try_from(seconds("busy_poll", busy_poll)?.as_nanos())
                .unwrap_or(u64::MAX),
        };
        let durable = durable.then_some((start, max_backlog));
        let sub = attached(
            py,
            self.router
                .subscribe(principal, token, name, types, pattern, cfg, durable),
        )?;
        Ok(PySubscription {
            handle: Handle {
                sub,
                router: self.router.clone(),
            },
        })
    }

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.router.counters;
        let d = PyDict::new(py);
        for (k, v) in [
            ("published", &c.published),
            ("refused_policy", &c.refused_policy),
            ("refused_schema", &c.refused_schema),
            ("refused_backpressure", &c.refused_backpressure),
            ("routed", &c.routed),
            ("unrouted", &c.unrouted),
            ("read_back", &c.read_back),
            ("open_failed", &c.open_failed),
        ] {
            d.set_item(k, v.load(Ordering::Relaxed))?;
        }
        if let Some(log) = self.router.log() {
            let st = log.stats();
            d.set_item("fsyncs", st.fsyncs)?;
            d.set_item("log_records", st.records)?;
            d.set_item("log_bytes", st.bytes)?;
            d.set_item("log_segments", st.segments)?;
            d.set_item("events_per_fsync", st.events_per_fsync)?;
        }
        Ok(d)
    }

    fn subscriptions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let subs: Vec<PySubscription> = self
            .router
            .subscriptions()
            .into_iter()
            .map(|sub| PySubscription {
                handle: Handle {
                    sub,
                    router: self.router.clone(),
                },
            })
            .collect();
        PyList::new(py, subs)
    }
}

/// `n` fresh time-ordered event ids (`UUIDv7`), for producers that seal end to end
/// and so must know an event's id before the router sees it.
#[pyfunction]
fn new_event_ids(n: Arg<usize>) -> Vec<String> {
    let n = n.0;
    (0..n).map(|_| sealbus_core::envelope::new_id()).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(new_event_ids, m)?)?;
    m.add_class::<ManualClock>()?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyReceipt>()?;
    m.add_class::<PyReceipts>()?;
    m.add_class::<PyMessage>()?;
    m.add_class::<PySubscription>()?;
    m.add_class::<PyDeliveryBatch>()?;
    m.add_class::<PyReplay>()?;
    m.add_class::<PyRouter>()?;
    Ok(())
}
