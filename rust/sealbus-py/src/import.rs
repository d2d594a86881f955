//! Binds `sealbus_nats::Importer`: the bridge's import on threads of its own, with
//! the GIL taken only by its hooks (a remote producer's first event, and each
//! commit's report when the router keeps an audit trail, alerts or traces).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use sealbus_core::envelope::E2E_CONTENT_TYPE;
use sealbus_core::error::Error;
use sealbus_nats::import::MessageRefusal;
use sealbus_nats::local::{self, LocalRun, RunKey};
use sealbus_nats::{
    Connection, ImportConfig, Importer, PrincipalHook, Report, ReportHook, Seen, StreamSpec,
};

use crate::error::to_pyerr;
use crate::router::{attributes, data_kind, refused_error, split_buffer, timeout_arg, PyRouter};
use crate::seal::PyKeyRing;

/// One message's stamps as Python takes them: `(message id, event ids, arrived,
/// opened, commit begun, committed)`, ns.
type Stamp = (String, Vec<String>, u64, u64, u64, u64);

#[pyclass(frozen, module = "sealbus._sealbus", name = "Importer")]
pub struct PyImporter {
    inner: Importer,
}

#[pymethods]
impl PyImporter {
    #[new]
    #[pyo3(signature = (
        core, servers, *, stream, replicas=1, durable, deliver, filter_subjects, trust, transit,
        principal, report=None, client_name, tls_ca=None, creds=None, nkey_seed=None,
        fetch=64, delivery_bytes=2_097_152, commit_events=2048, block_timeout=1.0,
        seen=None, seen_capacity=1_000_000, stamps=false,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        core: &PyRouter,
        servers: Vec<String>,
        stream: String,
        replicas: usize,
        durable: String,
        deliver: String,
        filter_subjects: Vec<String>,
        trust: HashMap<String, Vec<u8>>,
        transit: &PyKeyRing,
        principal: Py<PyAny>,
        report: Option<Py<PyAny>>,
        client_name: String,
        tls_ca: Option<PathBuf>,
        creds: Option<PathBuf>,
        nkey_seed: Option<PathBuf>,
        fetch: usize,
        delivery_bytes: usize,
        commit_events: usize,
        block_timeout: f64,
        seen: Option<Vec<(String, String)>>,
        seen_capacity: usize,
        stamps: bool,
    ) -> PyResult<Self> {
        if servers.is_empty() || fetch == 0 || delivery_bytes == 0 || commit_events == 0 {
            return Err(PyValueError::new_err(
                "importer: servers, fetch, delivery_bytes and commit_events must not be empty or 0",
            ));
        }
        if !(block_timeout.is_finite() && block_timeout >= 0.0) {
            return Err(PyValueError::new_err(
                "importer: block_timeout must be a number of seconds, 0 or more",
            ));
        }
        let mut memory = Seen::new(seen_capacity);
        for (producer, id) in seen.unwrap_or_default() {
            memory.add(&producer, &id);
        }
        let config = ImportConfig {
            connection: Connection {
                servers,
                client_name,
                tls_ca,
                creds,
                nkey_seed,
            },
            stream: StreamSpec {
                name: stream,
                replicas: replicas.max(1),
            },
            durable,
            deliver,
            filter_subjects,
            fetch,
            delivery_bytes,
            commit_events,
            block_timeout: Duration::from_secs_f64(block_timeout),
            stamps,
        };
        let inner = Importer::start(
            core.router.clone(),
            transit.ring(),
            trust,
            config,
            principal_hook(principal),
            report.map(report_hook),
            memory,
        )
        .map_err(|e| PyRuntimeError::new_err(format!("importer: no thread: {e}")))?;
        Ok(PyImporter { inner })
    }

    /// Whether it is connected and bound to the stream within `timeout` seconds.
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> bool {
        let timeout = Duration::from_secs_f64(timeout.max(0.0));
        py.detach(|| self.inner.wait_ready(timeout))
    }

    /// Stop the threads and wait for them (what was committed is acknowledged
    /// first); returns why the import had stopped by itself, if it had.
    fn close(&self, py: Python<'_>) -> Option<String> {
        py.detach(|| self.inner.close())
    }

    /// Counts: events imported, messages opened, duplicates, refusals by reason,
    /// reconnections to NATS.
    fn stats(&self) -> HashMap<&'static str, u64> {
        let s = self.inner.stats();
        HashMap::from([
            ("imported", s.imported),
            ("import_messages", s.messages),
            ("duplicates", s.duplicates),
            ("refused_signature", s.refused_signature),
            ("refused_malformed", s.refused_malformed),
            ("refused_integrity", s.refused_integrity),
            ("refused_policy", s.refused_policy),
            ("refused_schema", s.refused_schema),
            ("refused_other", s.refused_other),
            ("reconnects", s.reconnects),
        ])
    }

    /// Why the import stopped by itself, if it did.
    #[getter]
    fn error(&self) -> Option<String> {
        self.inner.error()
    }

    /// The messages' stamps recorded since the last call (`stamps=True`).
    fn take_stamps(&self) -> Vec<Stamp> {
        self.inner
            .take_stamps()
            .into_iter()
            .map(|s| (s.msg_id, s.ids, s.arrived, s.opened, s.commit0, s.committed))
            .collect()
    }
}

/// A remote producer's token: the Python callable, given the producer's local name,
/// returns it as bytes.
fn principal_hook(callable: Py<PyAny>) -> PrincipalHook {
    Box::new(move |name| {
        Python::attach(|py| {
            callable
                .call1(py, (name,))
                .and_then(|t| t.extract::<Vec<u8>>(py))
                .map_err(|e| e.to_string())
        })
    })
}

/// A message refused as it was opened, as Python takes it: `(reason, the router it
/// claimed, subject)`, reason one of "signature", "malformed", "integrity" (a frame
/// tampered under a valid signature) and "transit key" (sealed under a key this
/// router does not hold).
type RefusedMessage = (&'static str, Option<String>, String);

/// The report hook: the Python callable, with the GIL taken for the call, given the
/// refused messages, the imported runs `(principal, type, traceparent, ids)` and the
/// local refusals `(principal, type, exception, count)`. A failing hook loses its
/// report only (reported as unraisable).
fn report_hook(callable: Py<PyAny>) -> ReportHook {
    Box::new(move |report: Report| {
        Python::attach(|py| {
            let messages: Vec<RefusedMessage> = report
                .refused_messages
                .into_iter()
                .map(|(refusal, subject)| match refusal {
                    MessageRefusal::Signature { router } => ("signature", Some(router), subject),
                    MessageRefusal::Malformed => ("malformed", None, subject),
                    MessageRefusal::Integrity { tampered: true } => ("integrity", None, subject),
                    MessageRefusal::Integrity { tampered: false } => ("transit key", None, subject),
                })
                .collect();
            let imported: Vec<(String, String, Option<String>, Vec<String>)> = report
                .imported
                .into_iter()
                .map(|i| (i.principal, i.event_type, i.traceparent, i.ids))
                .collect();
            let refused: Vec<(String, String, Py<PyAny>, u64)> = report
                .refused
                .into_iter()
                .map(|r| {
                    let exc = to_pyerr(py, r.error).into_value(py).into_any();
                    (r.principal, r.event_type, exc, r.count)
                })
                .collect();
            if let Err(e) = callable.call1(py, (messages, imported, refused)) {
                e.write_unraisable(py, None);
            }
        });
    })
}

/// One run as `publish_runs` takes it: `(principal, token, type, schema version,
/// kind ("json", "binary" or "e2e": end-to-end frames), attributes, data buffer,
/// offsets, event ids, event times)`.
type RunIn<'py> = (
    String,
    Bound<'py, PyBytes>,
    String,
    Option<u32>,
    String,
    Option<Bound<'py, PyDict>>,
    Bound<'py, PyBytes>,
    Vec<usize>,
    Vec<String>,
    Vec<String>,
);

/// What `publish_runs` says of each run: its refusal as a whole (or None), and the
/// events the schema refused, as `(index in the run, error)`.
type RunResult = (Option<Py<PyAny>>, Vec<(usize, Py<PyAny>)>);

/// The import's local publish on its own: runs of events, each with its own
/// principal, type, schema version and attributes, prepared as the importer prepares
/// them ([`sealbus_nats::local::prepare`]) and stored as one commit (one fsync), in
/// order. A run refused as a whole, or an event its schema refuses, is left out and
/// reported; a refusal of the commit itself (backpressure, a closed router, the log)
/// raises, as `publish` does, with the receipts of what was stored before it.
#[pyfunction]
#[pyo3(signature = (core, runs, block_timeout=None))]
pub fn publish_runs(
    py: Python<'_>,
    core: &PyRouter,
    runs: Vec<RunIn<'_>>,
    block_timeout: Option<f64>,
) -> PyResult<Vec<RunResult>> {
    let block_timeout = timeout_arg(block_timeout)?;
    let mut local = Vec::with_capacity(runs.len());
    for (principal, token, event_type, version, kind, attrs, buffer, offsets, ids, times) in runs {
        let (kind, end_to_end) = data_kind(&kind)?;
        let parts = split_buffer(buffer.as_bytes(), &offsets).map_err(|e| to_pyerr(py, e))?;
        if parts.len() != ids.len() || parts.len() != times.len() {
            return Err(to_pyerr(
                py,
                Error::InvalidArgument {
                    name: "ids".into(),
                    reason: "one id and one time per event".into(),
                },
            ));
        }
        let a = attributes(py, attrs.as_ref())?;
        let key = RunKey {
            router: Arc::from(""),
            event_type: Arc::from(event_type),
            version,
            source: principal.clone(),
            kind,
            subject: a.subject,
            traceparent: a.traceparent,
            dataschema: a.dataschema,
            // How the importer marks an end-to-end frame: its content type.
            datacontenttype: if end_to_end {
                Some(E2E_CONTENT_TYPE.to_owned())
            } else {
                a.datacontenttype
            },
        };
        let mut run = LocalRun::of(principal, key);
        run.parts = parts.into_iter().map(bytes::Bytes::from).collect();
        run.ids = ids;
        run.times = local::times(times).map_err(|e| to_pyerr(py, e))?;
        local.push((token.as_bytes().to_vec(), run));
    }
    let router = core.router.clone();
    let (results, committed) = py.detach(move || {
        let mut all = Vec::new();
        let mut results = Vec::with_capacity(local.len());
        for (token, run) in &local {
            let mut p = local::prepare(&router, token, run);
            all.append(&mut p.events);
            results.push((p.refused, p.schema_refused));
        }
        let committed = if all.is_empty() {
            Ok(Vec::new())
        } else {
            router.enqueue(all, block_timeout)
        };
        (results, committed)
    });
    if let Err(refused) = committed {
        return Err(refused_error(py, *refused)?);
    }
    let exception = |e| to_pyerr(py, e).into_value(py).into_any();
    Ok(results
        .into_iter()
        .map(|(whole, each)| {
            (
                whole.map(exception),
                each.into_iter().map(|(i, e)| (i, exception(e))).collect(),
            )
        })
        .collect())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyImporter>()?;
    m.add_function(wrap_pyfunction!(publish_runs, m)?)
}
