//! The bridge's export, off the interpreter. A thread of its own runs a
//! single-threaded tokio runtime that polls the export subscription (woken by the
//! log's commit), writes each poll's CloudEvents JSON, seals and signs each run of
//! one type (`sealbus_core::wire`), publishes it to JetStream with `async-nats`, and
//! acknowledges the log once JetStream holds every message of a poll, in order.
//! Neither Python nor the GIL is on the path; the GIL is taken only for the tracing
//! hook, when tracing is on.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use async_nats::{HeaderMap, ServerAddr};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use sealbus_core::route::{Inbox, Wake, Watch};
use sealbus_core::seal::KeyRing;
use sealbus_core::wire;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::bridge::{cloudevents_of, Delivered};
use crate::identity::PySigner;
use crate::router::{unopened_reason, Handle, PySubscription};
use crate::seal::PyKeyRing;

/// A wait with nothing to wake it: the poll looks again this often (a commit wakes
/// it sooner).
const IDLE: Duration = Duration::from_millis(50);
/// Backoff of a publish that JetStream did not acknowledge: from, to.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MOST: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Ring(Arc<Notify>);

impl Wake for Ring {
    fn wake(&self) {
        self.0.notify_one();
    }
}

/// One message's time stamps (`CLOCK_REALTIME`, ns) for the bench's `--stages`.
type Stamp = (String, Vec<String>, u64, u64, u64, u64);

/// What the exporter's thread and the Python object share.
#[derive(Default)]
struct Shared {
    exported: AtomicU64,
    messages: AtomicU64,
    retries: AtomicU64,
    skipped: AtomicU64,
    reconnects: AtomicU64,
    /// Polls published and not yet acknowledged to the log.
    outstanding: AtomicUsize,
    /// `flush`: generations asked for, and the newest one found idle.
    idle: Mutex<(u64, u64)>,
    idle_changed: Condvar,
    error: Mutex<Option<String>>,
    stamps: Option<Mutex<Vec<Stamp>>>,
}

impl Shared {
    fn fail(&self, e: String) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
    }

    fn wanted(&self) -> u64 {
        self.idle.lock().map_or(0, |g| g.0)
    }

    fn idle_at(&self, generation: u64) {
        if let Ok(mut g) = self.idle.lock() {
            if g.1 < generation {
                g.1 = generation;
                self.idle_changed.notify_all();
            }
        }
    }
}

/// How the exporter reaches NATS.
struct Connection {
    servers: Vec<String>,
    name: String,
    tls_ca: Option<PathBuf>,
    creds: Option<PathBuf>,
    nkey_seed: Option<PathBuf>,
}

/// The export of one bridge: see the module's documentation. Closing it stops the
/// thread; what was published and not yet acknowledged to the log is exported again
/// by the next exporter of the subscription (JetStream and the importers drop the
/// copies).
#[pyclass(frozen, module = "sealbus._sealbus", name = "Exporter")]
pub struct PyExporter {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Job {
    handle: Handle,
    connection: Connection,
    router: String,
    ring: Arc<KeyRing>,
    signer: Py<PySigner>,
    poll: usize,
    max_events: usize,
    max_bytes: usize,
    max_in_flight: usize,
    timeout: Duration,
    trace: Option<Py<PyAny>>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

#[pymethods]
impl PyExporter {
    #[new]
    #[pyo3(signature = (
        sub, servers, *, router, transit, signer, client_name, tls_ca=None, creds=None,
        nkey_seed=None, poll=2048, max_events=256, max_bytes=524288, max_in_flight=64,
        timeout=5.0, trace=None, stamps=false,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        sub: &PySubscription,
        servers: Vec<String>,
        router: String,
        transit: &PyKeyRing,
        signer: Py<PySigner>,
        client_name: String,
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
        let shared = Arc::new(Shared {
            stamps: stamps.then(|| Mutex::new(Vec::new())),
            ..Shared::default()
        });
        let wake = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let job = Job {
            handle: sub.handle.clone(),
            connection: Connection {
                servers,
                name: client_name,
                tls_ca,
                creds,
                nkey_seed,
            },
            router,
            ring: transit.ring(),
            signer,
            poll,
            max_events,
            max_bytes,
            max_in_flight: max_in_flight.max(1),
            timeout: Duration::from_secs_f64(timeout),
            trace,
            shared: shared.clone(),
            wake: wake.clone(),
            stop: stop_rx,
        };
        let thread = std::thread::Builder::new()
            .name("sealbus-export".into())
            .spawn(move || {
                let shared = job.shared.clone();
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("exporter: no runtime: {e}"))
                    .and_then(|rt| rt.block_on(run(job)));
                if let Err(e) = result {
                    shared.fail(e);
                }
            })
            .map_err(|e| PyRuntimeError::new_err(format!("exporter: no thread: {e}")))?;
        Ok(PyExporter {
            shared,
            wake,
            stop: stop_tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Wait, up to `timeout` seconds (None: as long as it takes), until every event
    /// stored before the call has been exported and JetStream has acknowledged it.
    #[pyo3(signature = (timeout=None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let shared = &self.shared;
        let wake = &self.wake;
        py.detach(|| {
            let Ok(mut g) = shared.idle.lock() else {
                return false;
            };
            g.0 += 1;
            let wanted = g.0;
            wake.notify_one();
            while g.1 < wanted {
                let left = match deadline {
                    Some(d) => match d.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => left,
                        _ => return false,
                    },
                    None => Duration::from_hours(1),
                };
                g = match shared.idle_changed.wait_timeout(g, left) {
                    Ok((g, _)) => g,
                    Err(_) => return false,
                };
            }
            true
        })
    }

    /// Stop the thread and wait for it; returns why it had stopped by itself, if it
    /// had (None when it ran until asked to stop).
    fn close(&self, py: Python<'_>) -> Option<String> {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        let t = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = t {
            py.detach(|| {
                let _ = t.join();
            });
        }
        self.error()
    }

    /// Counts: events and messages exported, publishes sent again, events left out
    /// (their key destroyed), reconnections to NATS.
    fn stats(&self) -> HashMap<&'static str, u64> {
        let s = &self.shared;
        HashMap::from([
            ("exported", s.exported.load(Ordering::Acquire)),
            ("export_messages", s.messages.load(Ordering::Acquire)),
            ("export_retries", s.retries.load(Ordering::Acquire)),
            ("export_skipped", s.skipped.load(Ordering::Acquire)),
            ("reconnects", s.reconnects.load(Ordering::Acquire)),
        ])
    }

    /// Why the thread stopped by itself, if it did.
    #[getter]
    fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }

    /// The messages' time stamps recorded since the last call (`stamps=True`):
    /// `(message id, event ids, polled, sealed, published, acknowledged)`, ns.
    fn take_stamps(&self) -> Vec<Stamp> {
        match &self.shared.stamps {
            Some(m) => m
                .lock()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

impl Drop for PyExporter {
    fn drop(&mut self) {
        // Not joined: a drop may come with the GIL held, and the thread may be
        // waiting for it (the tracing hook). Told to stop, it ends by itself.
        let _ = self.stop.send(true);
        self.wake.notify_one();
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Resolves once `stop` is set.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connect(c: &Connection, shared: &Arc<Shared>) -> Result<async_nats::Client, String> {
    let mut opts = match &c.creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("exporter: creds file: {e}"))?,
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(path) = &c.nkey_seed {
        let seed =
            std::fs::read_to_string(path).map_err(|e| format!("exporter: nkey seed file: {e}"))?;
        opts = opts.nkey(seed.trim().to_string());
    }
    if let Some(ca) = &c.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    let counter = shared.clone();
    let first = Arc::new(AtomicBool::new(true));
    opts = opts
        .name(&c.name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            let shift = u32::try_from(attempts.min(5)).unwrap_or(5);
            (Duration::from_millis(100) * (1 << shift)).min(RETRY_MOST)
        })
        .event_callback(move |event| {
            let (counter, first) = (counter.clone(), first.clone());
            async move {
                if matches!(event, async_nats::Event::Connected)
                    && !first.swap(false, Ordering::AcqRel)
                {
                    counter.reconnects.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    let addrs = c
        .servers
        .iter()
        .map(|s| s.parse::<ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("exporter: server address: {e}"))?;
    opts.connect(addrs)
        .await
        .map_err(|e| format!("exporter: connect: {e}"))
}

/// A message as published: what a retry sends again.
struct Message {
    subject: String,
    headers: HeaderMap,
    body: bytes::Bytes,
    stamp: Option<Stamp>,
}

/// What the publishing stage hands the acknowledging one, in order: each message
/// with its ack to come (None: the client refused it at once) and the room it holds
/// among the publishes in flight, then the end of its poll with the poll's log tags.
enum Out {
    Message(
        Box<Message>,
        Option<jetstream::context::PublishAckFuture>,
        OwnedSemaphorePermit,
    ),
    End(Vec<u64>),
}

async fn run(job: Job) -> Result<(), String> {
    let mut stop = job.stop.clone();
    let client = tokio::select! {
        c = connect(&job.connection, &job.shared) => c?,
        () = stopped(&mut stop) => return Ok(()),
    };
    let mut js = jetstream::new(client.clone());
    js.set_timeout(job.timeout);
    let room = Arc::new(Semaphore::new(job.max_in_flight));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Out>();
    let acker = tokio::spawn(acknowledge(
        rx,
        js.clone(),
        job.handle.clone(),
        job.shared.clone(),
        job.wake.clone(),
        job.stop.clone(),
    ));
    let result = export(&job, &js, &room, &tx, &mut stop).await;
    drop(tx);
    let _ = acker.await;
    drop(client);
    result
}

/// The poll, seal and publish stage.
async fn export(
    job: &Job,
    js: &jetstream::Context,
    room: &Arc<Semaphore>,
    tx: &tokio::sync::mpsc::UnboundedSender<Out>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let inbox = Inbox::new(Arc::new(Ring(job.wake.clone())));
    let signer = job.signer.get().signer();
    let shared = &job.shared;
    while !*stop.borrow() {
        let generation = shared.wanted();
        // Registered before the poll, so that a commit in between still wakes it.
        let watch = Watch::new(vec![job.handle.sub.clone()], inbox.clone(), 1);
        let polled = job
            .handle
            .router
            .poll(&job.handle.sub, job.poll, Some(Duration::ZERO))
            .map_err(|e| format!("exporter: poll: {e}"))?;
        if polled.is_empty() {
            // Empty with nothing awaiting JetStream: every event stored before
            // `generation` was asked for has gone out. (Empty with polls out may
            // mean their window is full: the acks wake the poll.)
            if shared.outstanding.load(Ordering::Acquire) == 0 {
                shared.idle_at(generation);
            }
            tokio::select! {
                () = job.wake.notified() => {}
                () = tokio::time::sleep(IDLE) => {}
                () = stopped(stop) => {}
            }
            inbox.take();
            drop(watch);
            continue;
        }
        drop(watch);
        shared.outstanding.fetch_add(1, Ordering::AcqRel);
        let (tags, messages) = seal(job, signer, polled)?;
        for mut m in messages {
            // Waits while `max_in_flight` publishes await their acks.
            let permit = tokio::select! {
                p = room.clone().acquire_owned() => p.map_err(|e| e.to_string())?,
                () = stopped(stop) => return Ok(()),
            };
            if let Some(s) = &mut m.stamp {
                s.4 = now_ns();
            }
            let ack = tokio::select! {
                r = js.publish_with_headers(m.subject.clone(), m.headers.clone(), m.body.clone()) => r.ok(),
                () = stopped(stop) => return Ok(()),
            };
            shared.messages.fetch_add(1, Ordering::Relaxed);
            if tx.send(Out::Message(Box::new(m), ack, permit)).is_err() {
                return Ok(());
            }
        }
        if tx.send(Out::End(tags)).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// A poll's log tags and its messages: the exportable events' CloudEvents JSON, cut
/// into runs of one type (at most `max_events` events and about `max_bytes`), each
/// sealed and signed. An event whose key was destroyed is left out and counted.
fn seal(
    job: &Job,
    signer: &sealbus_core::identity::Signer,
    polled: Vec<sealbus_core::route::Delivery<sealbus_core::route::Item>>,
) -> Result<(Vec<u64>, Vec<Message>), String> {
    let polled_at = job.shared.stamps.as_ref().map(|_| now_ns());
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
    job.shared
        .skipped
        .fetch_add((delivered.len() - index.len()) as u64, Ordering::Relaxed);
    if let Some(hook) = &job.trace {
        trace_hops(hook, &delivered, &index, &types);
    }
    let ids: Vec<&str> = index.iter().map(|&j| &*delivered[j].0.id).collect();
    let n = ids.len();
    let mut messages = Vec::new();
    let mut start = 0;
    while start < n {
        let limit = bounds[start] + job.max_bytes;
        let mut end = start + 1;
        while end < n
            && types[end] == types[start]
            && end - start < job.max_events
            && bounds[end + 1] <= limit
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
        .map_err(|e| format!("exporter: encode: {e}"))?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", enc.msg_id.as_str());
        headers.insert("Sealbus-Signature", enc.signature.as_str());
        let stamp = polled_at.map(|p| {
            let ids = ids[start..end].iter().map(ToString::to_string).collect();
            (enc.msg_id.clone(), ids, p, now_ns(), 0, 0)
        });
        messages.push(Message {
            subject: wire::subject_of(&types[start]),
            headers,
            body: bytes::Bytes::from(enc.body),
            stamp,
        });
        start = end;
    }
    Ok((tags, messages))
}

/// Whether JetStream acknowledged a publish; None once stopped.
async fn acked(
    ack: Option<jetstream::context::PublishAckFuture>,
    stop: &mut watch::Receiver<bool>,
) -> Option<bool> {
    let Some(ack) = ack else {
        return Some(false);
    };
    tokio::select! {
        r = ack.into_future() => Some(r.is_ok()),
        () = stopped(stop) => None,
    }
}

/// The acknowledging stage. Each message is awaited in turn; one that JetStream did
/// not acknowledge in time is sent again, with backoff, until it does (JetStream
/// drops a copy by its `Nats-Msg-Id`, an importer by its events' ids). At the end of
/// a poll every message of it is stored: the log is acknowledged, polls in order.
async fn acknowledge(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Out>,
    js: jetstream::Context,
    handle: Handle,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut done: Vec<Stamp> = Vec::new();
    loop {
        let out = tokio::select! {
            s = rx.recv() => s,
            () = stopped(&mut stop) => None,
        };
        match out {
            None => return,
            Some(Out::Message(mut m, ack, permit)) => {
                let Some(mut ok) = acked(ack, &mut stop).await else {
                    return;
                };
                let mut delay = RETRY_FIRST;
                while !ok {
                    shared.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopped(&mut stop) => return,
                    }
                    delay = (delay * 2).min(RETRY_MOST);
                    let again = tokio::select! {
                        r = js.publish_with_headers(m.subject.clone(), m.headers.clone(), m.body.clone()) => r.ok(),
                        () = stopped(&mut stop) => return,
                    };
                    ok = match acked(again, &mut stop).await {
                        Some(ok) => ok,
                        None => return,
                    };
                }
                drop(permit);
                if let Some(mut s) = m.stamp.take() {
                    s.5 = now_ns();
                    done.push(s);
                }
            }
            Some(Out::End(tags)) => {
                if handle.router.ack(&handle.sub, &tags).is_err() {
                    // The router is closing: what was not acknowledged comes again.
                    return;
                }
                shared
                    .exported
                    .fetch_add(tags.len() as u64, Ordering::AcqRel);
                if let Some(stamps) = &shared.stamps {
                    if let Ok(mut v) = stamps.lock() {
                        v.append(&mut done);
                    }
                }
                shared.outstanding.fetch_sub(1, Ordering::AcqRel);
                // A poll may have come back empty because the window was full of
                // these events.
                wake.notify_one();
            }
        }
    }
}

/// Hand the tracing hook each `(traceparent, type)` of the exported events with its
/// count; the hook records the hops' spans. A failing hook loses its spans only.
fn trace_hops(hook: &Py<PyAny>, delivered: &[Delivered], index: &[usize], types: &[String]) {
    let mut counts: HashMap<(Option<&str>, &str), u64> = HashMap::new();
    for (k, &j) in index.iter().enumerate() {
        let tp = delivered[j].0.traceparent.as_deref();
        *counts.entry((tp, types[k].as_str())).or_default() += 1;
    }
    if counts.is_empty() {
        return;
    }
    let rows: Vec<(Option<&str>, &str, u64)> =
        counts.into_iter().map(|((tp, t), n)| (tp, t, n)).collect();
    Python::attach(|py| {
        if let Err(e) = hook.call1(py, (rows,)) {
            e.write_unraisable(py, None);
        }
    });
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExporter>()
}
