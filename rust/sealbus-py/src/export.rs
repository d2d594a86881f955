//! The bridge's export off the interpreter: a thread of its own polls the export
//! subscription (woken by the log's commit), seals and signs each run of one type
//! (`sealbus_core::wire`), publishes it to JetStream with async-nats, and
//! acknowledges the log once JetStream holds every message of a poll, in order.
//! No Python and no GIL on the path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use pyo3::prelude::*;
use sealbus_core::route::{Inbox, Wake, Watch};
use sealbus_core::seal::KeyRing;
use sealbus_core::wire;
use tokio::sync::Notify;

use crate::bridge::{cloudevents_of, Delivered};
use crate::identity::PySigner;
use crate::router::{unopened_reason, Handle, PySubscription};
use crate::seal::PyKeyRing;

const POLL: usize = 1024;
const MAX_EVENTS_PER_MESSAGE: usize = 1000;
const MAX_BYTES_PER_MESSAGE: usize = 512 * 1024;

#[derive(Debug)]
struct Ring(Arc<Notify>);

impl Wake for Ring {
    fn wake(&self) {
        self.0.notify_one();
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    exported: AtomicU64,
    messages: AtomicU64,
    retries: AtomicU64,
    error: Mutex<Option<String>>,
}

#[pyclass(frozen, module = "sealbus._sealbus", name = "Exporter")]
pub struct PyExporter {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Job {
    handle: Handle,
    server: String,
    router: String,
    ring: Arc<KeyRing>,
    signer: Py<PySigner>,
    max_in_flight: usize,
    timeout: Duration,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
}

#[pymethods]
impl PyExporter {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        sub: &PySubscription,
        server: String,
        router: String,
        transit: &PyKeyRing,
        signer: Py<PySigner>,
        max_in_flight: usize,
        timeout: f64,
    ) -> PyResult<Self> {
        let shared = Arc::new(Shared::default());
        let wake = Arc::new(Notify::new());
        let job = Job {
            handle: sub.handle.clone(),
            server,
            router,
            ring: transit.ring(),
            signer,
            max_in_flight: max_in_flight.max(1),
            timeout: Duration::from_secs_f64(timeout),
            shared: shared.clone(),
            wake: wake.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("sealbus-export".into())
            .spawn(move || {
                let shared = job.shared.clone();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let result = match rt {
                    Ok(rt) => rt.block_on(run(job)),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = result {
                    if let Ok(mut slot) = shared.error.lock() {
                        *slot = Some(e);
                    }
                }
            })
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        Ok(PyExporter {
            shared,
            wake,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn close(&self, py: Python<'_>) {
        self.shared.stop.store(true, Ordering::Release);
        self.wake.notify_one();
        let t = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = t {
            py.detach(|| {
                let _ = t.join();
            });
        }
    }

    #[getter]
    fn exported(&self) -> u64 {
        self.shared.exported.load(Ordering::Acquire)
    }

    #[getter]
    fn messages(&self) -> u64 {
        self.shared.messages.load(Ordering::Acquire)
    }

    #[getter]
    fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }
}

type Sent = (
    Vec<u64>,
    Vec<(String, HeaderMap, bytes::Bytes)>,
    Vec<jetstream::context::PublishAckFuture>,
);

async fn run(job: Job) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("sealbus-export-{}", job.router))
        .retry_on_initial_connect()
        .connect(job.server.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let mut js = jetstream::new(client);
    js.set_timeout(job.timeout);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Sent>(job.max_in_flight);
    let (h2, shared2, js2) = (job.handle.clone(), job.shared.clone(), js.clone());
    let acker = tokio::spawn(async move {
        while let Some((tags, messages, futs)) = rx.recv().await {
            let mut failed = Vec::new();
            for (m, f) in messages.into_iter().zip(futs) {
                if f.await.is_err() {
                    failed.push(m);
                }
            }
            let mut delay = Duration::from_millis(50);
            while !failed.is_empty() {
                shared2
                    .retries
                    .fetch_add(failed.len() as u64, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                let mut again = Vec::new();
                for (subject, headers, body) in failed {
                    let ok = match js2
                        .publish_with_headers(subject.clone(), headers.clone(), body.clone())
                        .await
                    {
                        Ok(f) => f.await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        again.push((subject, headers, body));
                    }
                }
                failed = again;
            }
            let n = tags.len() as u64;
            if h2.router.ack(&h2.sub, &tags).is_err() {
                return;
            }
            shared2.exported.fetch_add(n, Ordering::AcqRel);
        }
    });
    let inbox = Inbox::new(Arc::new(Ring(job.wake.clone())));
    let signer = job.signer.get().signer();
    while !job.shared.stop.load(Ordering::Acquire) {
        let watch = Watch::new(vec![job.handle.sub.clone()], inbox.clone(), 1);
        let polled = job
            .handle
            .router
            .poll(&job.handle.sub, POLL, Some(Duration::ZERO))
            .map_err(|e| e.to_string())?;
        if polled.is_empty() {
            tokio::select! {
                () = job.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            inbox.take();
            drop(watch);
            continue;
        }
        drop(watch);
        let b = job.handle.router.open_into_buffer(polled);
        let tags: Vec<u64> = b.deliveries.iter().map(|d| d.tag).collect();
        let delivered: Vec<Delivered> = b
            .deliveries
            .into_iter()
            .zip(b.errors)
            .map(|(d, e)| (d.item, d.attempt, e.map(unopened_reason)))
            .collect();
        let (buffer, bounds, index, types, versions) =
            cloudevents_of(&delivered, &b.buffer, &b.offsets, &b.end_to_end);
        let ids: Vec<&str> = index.iter().map(|&j| &*delivered[j].0.id).collect();
        let mut messages = Vec::new();
        let mut futs = Vec::new();
        let n = ids.len();
        let mut start = 0;
        while start < n {
            let mut end = start + 1;
            while end < n
                && types[end] == types[start]
                && end - start < MAX_EVENTS_PER_MESSAGE
                && bounds[end + 1] - bounds[start] <= MAX_BYTES_PER_MESSAGE
            {
                end += 1;
            }
            let enc = wire::encode(
                &job.router,
                &types[start],
                &buffer,
                &bounds[start..=end],
                &ids[start..end],
                &versions[start..end],
                &job.ring,
                signer,
            )
            .map_err(|e| e.to_string())?;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", enc.msg_id.as_str());
            headers.insert("Sealbus-Signature", enc.signature.as_str());
            let subject = wire::subject_of(&types[start]);
            let body = bytes::Bytes::from(enc.body);
            let fut = js
                .publish_with_headers(subject.clone(), headers.clone(), body.clone())
                .await
                .map_err(|e| e.to_string())?;
            messages.push((subject, headers, body));
            futs.push(fut);
            start = end;
        }
        job.shared
            .messages
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        if tx.send((tags, messages, futs)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = acker.await;
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExporter>()
}
