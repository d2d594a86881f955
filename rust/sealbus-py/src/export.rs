//! Binds `sealbus_nats::Exporter`: the bridge's export on a thread of its own, with
//! the GIL released while Python waits on it and taken only by the tracing hook.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use sealbus_nats::{Connection, ExportConfig, Exporter, StreamSpec, TraceHook};

use crate::identity::PySigner;
use crate::router::PySubscription;
use crate::seal::PyKeyRing;

/// One message's stamps as Python takes them: `(message id, event ids, polled,
/// sealed, published, acknowledged)`, ns.
type Stamp = (String, Vec<String>, u64, u64, u64, u64);

#[pyclass(frozen, module = "sealbus._sealbus", name = "Exporter")]
pub struct PyExporter {
    inner: Exporter,
}

#[pymethods]
impl PyExporter {
    #[new]
    #[pyo3(signature = (
        sub, servers, *, router, transit, signer, client_name, stream, replicas=1, tls_ca=None, creds=None,
        nkey_seed=None, poll=2048, max_events=256, max_bytes=524_288, max_in_flight=64,
        timeout=5.0, trace=None, stamps=false,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        sub: &PySubscription,
        servers: Vec<String>,
        router: String,
        transit: &PyKeyRing,
        signer: &PySigner,
        client_name: String,
        stream: String,
        replicas: usize,
        tls_ca: Option<PathBuf>,
        creds: Option<PathBuf>,
        nkey_seed: Option<PathBuf>,
        poll: usize,
        max_events: usize,
        max_bytes: usize,
        max_in_flight: usize,
        timeout: f64,
        trace: Option<Py<PyAny>>,
        stamps: bool,
    ) -> PyResult<Self> {
        if servers.is_empty() || poll == 0 || max_events == 0 || max_bytes == 0 {
            return Err(PyValueError::new_err(
                "exporter: servers, poll, max_events and max_bytes must not be empty or 0",
            ));
        }
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(PyValueError::new_err(
                "exporter: timeout must be a positive number of seconds",
            ));
        }
        let config = ExportConfig {
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
            router,
            poll,
            max_events,
            max_bytes,
            max_in_flight,
            timeout: Duration::from_secs_f64(timeout),
            stamps,
        };
        let inner = Exporter::start(
            sub.handle.router.clone(),
            sub.handle.sub.clone(),
            transit.ring(),
            signer.shared(),
            config,
            trace.map(hook),
        )
        .map_err(|e| PyRuntimeError::new_err(format!("exporter: no thread: {e}")))?;
        Ok(PyExporter { inner })
    }

    /// Wait, up to `timeout` seconds (None: as long as it takes), until every event
    /// stored before the call has been exported and JetStream has acknowledged it.
    #[pyo3(signature = (timeout=None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> bool {
        let timeout = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
        py.detach(|| self.inner.flush(timeout))
    }

    /// Whether it is connected and bound to the stream within `timeout` seconds.
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> bool {
        let timeout = Duration::from_secs_f64(timeout.max(0.0));
        py.detach(|| self.inner.wait_ready(timeout))
    }

    /// Stop the thread and wait for it; returns why it had stopped by itself, if it
    /// had (None when it ran until asked to stop).
    fn close(&self, py: Python<'_>) -> Option<String> {
        py.detach(|| self.inner.close())
    }

    /// Counts: events and messages exported, publishes sent again, events left out
    /// (their key destroyed), reconnections to NATS.
    fn stats(&self) -> HashMap<&'static str, u64> {
        let s = self.inner.stats();
        HashMap::from([
            ("exported", s.exported),
            ("export_messages", s.messages),
            ("export_retries", s.retries),
            ("export_skipped", s.skipped),
            ("reconnects", s.reconnects),
        ])
    }

    /// Why the thread stopped by itself, if it did.
    #[getter]
    fn error(&self) -> Option<String> {
        self.inner.error()
    }

    /// The messages' stamps recorded since the last call (`stamps=True`).
    fn take_stamps(&self) -> Vec<Stamp> {
        self.inner
            .take_stamps()
            .into_iter()
            .map(|s| (s.msg_id, s.ids, s.polled, s.sealed, s.published, s.acked))
            .collect()
    }
}

/// The tracing hook: the Python callable, with the GIL taken for the call. A failing
/// hook loses its spans only (reported as unraisable).
fn hook(callable: Py<PyAny>) -> TraceHook {
    Box::new(move |rows| {
        Python::attach(|py| {
            if let Err(e) = callable.call1(py, (rows.to_vec(),)) {
                e.write_unraisable(py, None);
            }
        });
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExporter>()
}
