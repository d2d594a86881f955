//! Binding of the alert rules (``sealbus.alerts.Alerts`` wraps it). Observations
//! are short calls made with the GIL held: a map lookup or two, cheaper than a
//! release and reacquire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use sealbus_core::alert::{AlertConfig, AlertKind, Detector};
use sealbus_core::Error;

use crate::gil::attached;
use crate::router::{monotonic_ns, ManualClock};

fn nanos(name: &str, seconds: f64) -> sealbus_core::Result<u64> {
    std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| Error::InvalidArgument {
            name: name.into(),
            reason: "a non-negative number of seconds".into(),
        })
}

/// The rules' state and the clock they read.
#[pyclass(frozen, module = "sealbus._sealbus", name = "AlertDetectorCore")]
pub struct PyDetector {
    inner: Mutex<Detector>,
    clock: Option<Arc<AtomicU64>>,
}

impl PyDetector {
    fn lock(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, Detector>> {
        attached(
            py,
            self.inner.lock().map_err(|_| Error::LogFailed {
                reason: "the alert rules' lock was poisoned by a panic".into(),
            }),
        )
    }

    fn now(&self) -> u64 {
        self.clock
            .as_ref()
            .map_or_else(monotonic_ns, |c| c.load(Ordering::Acquire))
    }
}

#[pymethods]
impl PyDetector {
    #[new]
    #[pyo3(signature = (quiet, *, clock=None, window=1.0, rate_factor=10.0, rate_min_events=1_000, rate_warmup_windows=5, baseline_weight=0.2, refused_burst=5, refused_window=10.0, novelty_after=60.0, lag_limit=100_000, open_failures=1, signature_refusals=1, cooldown=60.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        quiet: String,
        clock: Option<PyRef<'_, ManualClock>>,
        window: f64,
        rate_factor: f64,
        rate_min_events: u64,
        rate_warmup_windows: u32,
        baseline_weight: f64,
        refused_burst: u32,
        refused_window: f64,
        novelty_after: f64,
        lag_limit: u64,
        open_failures: u64,
        signature_refusals: u64,
        cooldown: f64,
    ) -> PyResult<Self> {
        let config = (|| {
            Ok(AlertConfig {
                window_ns: nanos("window", window)?,
                rate_factor,
                rate_min_events,
                rate_warmup_windows,
                baseline_weight,
                refused_burst,
                refused_window_ns: nanos("refused_window", refused_window)?,
                novelty_after_ns: nanos("novelty_after", novelty_after)?,
                lag_limit,
                open_failures,
                signature_refusals,
                cooldown_ns: nanos("cooldown", cooldown)?,
            })
        })();
        let detector = attached(py, config.and_then(|c| Detector::new(c, Some(quiet))))?;
        Ok(Self {
            inner: Mutex::new(detector),
            clock: clock.map(|c| c.ns.clone()),
        })
    }

    /// The rules' clock, in nanoseconds.
    fn now_ns(&self) -> u64 {
        self.now()
    }

    fn observe_publish(
        &self,
        py: Python<'_>,
        principal: &str,
        event_type: &str,
        count: u64,
    ) -> PyResult<()> {
        let now = self.now();
        self.lock(py)?
            .observe_publish(principal, event_type, count, now);
        Ok(())
    }

    fn observe_refused(
        &self,
        py: Python<'_>,
        principal: &str,
        event_type: &str,
        rule: &str,
        count: u64,
    ) -> PyResult<()> {
        let now = self.now();
        self.lock(py)?
            .observe_refused(principal, event_type, rule, count, now);
        Ok(())
    }

    fn observe_lag(
        &self,
        py: Python<'_>,
        consumer: &str,
        principal: &str,
        lag: u64,
    ) -> PyResult<()> {
        let now = self.now();
        self.lock(py)?.observe_lag(consumer, principal, lag, now);
        Ok(())
    }

    fn observe_open_failed(&self, py: Python<'_>, place: &str, n: u64) -> PyResult<()> {
        let now = self.now();
        self.lock(py)?.observe_open_failed(place, n, now);
        Ok(())
    }

    fn observe_signature_refused(&self, py: Python<'_>, remote: &str, n: u64) -> PyResult<()> {
        let now = self.now();
        self.lock(py)?.observe_signature_refused(remote, n, now);
        Ok(())
    }

    /// Alerts raised since the last call: ``[(event_type, kind, subject, json)]``.
    fn drain(&self, py: Python<'_>) -> PyResult<Vec<(String, &'static str, String, String)>> {
        let fired = self.lock(py)?.drain();
        Ok(fired
            .into_iter()
            .map(|a| {
                let (event_type, json) = (a.event_type(), a.to_json());
                (event_type, a.kind.name(), a.subject, json)
            })
            .collect())
    }

    /// Alerts raised since the rules began.
    #[getter]
    fn raised(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.lock(py)?.raised())
    }

    /// Every alert kind: ``sealbus.alert.<kind>`` is its event type.
    #[staticmethod]
    fn kinds() -> Vec<&'static str> {
        AlertKind::ALL
            .iter()
            .copied()
            .map(AlertKind::name)
            .collect()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDetector>()
}
