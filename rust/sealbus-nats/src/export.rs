//! The bridge's export, off the interpreter. A thread of its own runs a
//! single-threaded tokio runtime that polls the export subscription (woken by the
//! log's commit), writes each poll's CloudEvents JSON, seals and signs each run of
//! one type ([`sealbus_core::wire`]), publishes it to JetStream with `async-nats`,
//! and acknowledges the log once JetStream holds every message of a poll, in order.
//! A publish that JetStream does not acknowledge in time is sent again, with backoff,
//! until it is: JetStream drops a copy by its `Nats-Msg-Id`, an importer by its
//! events' ids.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::HeaderMap;
use sealbus_core::identity::Signer;
use sealbus_core::route::{Delivery, Inbox, Item, Router, Subscription, Wake, Watch};
use sealbus_core::seal::KeyRing;
use sealbus_core::wire;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::connect::{connect, Connection};
use crate::stream::{self, StreamSpec};
use crate::{now_ns, run_to_end, stopped, Failure, Flag, Stamps};

/// A wait with nothing to wake it: the poll looks again this often (a commit wakes
/// it sooner).
const IDLE: Duration = Duration::from_millis(50);
/// Backoff of a publish that JetStream did not acknowledge: from, to.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MOST: Duration = Duration::from_secs(2);
/// Between attempts to bind to the stream.
const STREAM_RETRY: Duration = Duration::from_millis(500);

/// What the export is and how it reaches NATS.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// How to reach NATS.
    pub connection: Connection,
    /// The JetStream stream, created if no bridge has yet.
    pub stream: StreamSpec,
    /// The exporting router's name across the deployment.
    pub router: String,
    /// Events taken from the log per poll.
    pub poll: usize,
    /// Events per message, at most.
    pub max_events: usize,
    /// CloudEvents JSON bytes per message, about (one event may exceed it).
    pub max_bytes: usize,
    /// Publishes awaiting JetStream's acknowledgement, at most.
    pub max_in_flight: usize,
    /// How long a publish waits for its acknowledgement before it is sent again.
    pub timeout: Duration,
    /// Record each message's [`Stamp`] (the bench's stage times).
    pub stamps: bool,
}

/// One message's times (`CLOCK_REALTIME`, ns since the epoch): polled from the log,
/// sealed and signed, handed to the client, acknowledged by JetStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub msg_id: String,
    pub ids: Vec<String>,
    pub polled: u64,
    pub sealed: u64,
    pub published: u64,
    pub acked: u64,
}

/// The export's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Events acknowledged by JetStream and then to the log.
    pub exported: u64,
    /// Messages published (a resend not counted).
    pub messages: u64,
    /// Publishes sent again.
    pub retries: u64,
    /// Events left out: their data could not be opened (key destroyed).
    pub skipped: u64,
    /// Connections to NATS re-established.
    pub reconnects: u64,
}

/// Called with each poll's `(traceparent, type, count)` of the exported events, on
/// the exporter's thread: records the hops' spans when tracing is on.
pub type TraceHook = Box<dyn Fn(&[(Option<&str>, &str, u64)]) + Send + Sync>;

#[derive(Debug)]
struct Ring(Arc<Notify>);

impl Wake for Ring {
    fn wake(&self) {
        self.0.notify_one();
    }
}

/// What the exporter's thread and its handle share.
#[derive(Default)]
struct Shared {
    exported: AtomicU64,
    messages: AtomicU64,
    retries: AtomicU64,
    skipped: AtomicU64,
    reconnects: Arc<AtomicU64>,
    /// Connected, and the stream there.
    ready: Flag,
    /// Polls published and not yet acknowledged to the log.
    outstanding: AtomicUsize,
    /// `flush`: generations asked for, the newest one found idle, and whether the
    /// thread has ended (nothing more will go out).
    idle: Mutex<(u64, u64, bool)>,
    idle_changed: Condvar,
    error: Failure,
    stamps: Stamps<Stamp>,
}

impl Shared {
    fn wanted(&self) -> u64 {
        self.idle.lock().map_or(0, |g| g.0)
    }

    fn ended(&self) {
        if let Ok(mut g) = self.idle.lock() {
            g.2 = true;
            self.idle_changed.notify_all();
        }
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

/// The export of one bridge, on a thread of its own (see the module). Closing or
/// dropping it stops the thread; what was published and not yet acknowledged to the
/// log goes out again with the next exporter of the subscription.
pub struct Exporter {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Job {
    router: Arc<Router>,
    sub: Arc<Subscription>,
    config: ExportConfig,
    ring: Arc<KeyRing>,
    signer: Arc<Signer>,
    trace: Option<TraceHook>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

impl Exporter {
    /// Start exporting what `sub` (a durable subscription of `router`'s log) delivers:
    /// sealed under `transit`, signed by `signer`. Connects in the background, and
    /// keeps trying for as long as it runs.
    pub fn start(
        router: Arc<Router>,
        sub: Arc<Subscription>,
        transit: Arc<KeyRing>,
        signer: Arc<Signer>,
        config: ExportConfig,
        trace: Option<TraceHook>,
    ) -> std::io::Result<Exporter> {
        let shared = Arc::new(Shared {
            stamps: Stamps::new(config.stamps),
            ..Shared::default()
        });
        let wake = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let job = Job {
            router,
            sub,
            config,
            ring: transit,
            signer,
            trace,
            shared: shared.clone(),
            wake: wake.clone(),
            stop: stop_rx,
        };
        let thread = std::thread::Builder::new()
            .name("sealbus-export".into())
            .spawn(move || {
                let shared = job.shared.clone();
                if let Err(e) = run_to_end("exporter", run(job)) {
                    shared.error.set(e);
                }
                shared.ended();
            })?;
        Ok(Exporter {
            shared,
            wake,
            stop: stop_tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Whether the export is connected and bound to the stream, within `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.shared.ready.wait(timeout)
    }

    /// Wait, up to `timeout` (None: as long as it takes), until every event stored
    /// before the call has been exported and JetStream has acknowledged it. False
    /// on timeout, or at once when the export has ended (closed, or its router).
    pub fn flush(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let Ok(mut g) = self.shared.idle.lock() else {
            return false;
        };
        g.0 += 1;
        let wanted = g.0;
        self.wake.notify_one();
        while g.1 < wanted {
            if g.2 {
                return false;
            }
            let woken = match deadline {
                None => self.shared.idle_changed.wait(g).map_err(|_| ()),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => self
                        .shared
                        .idle_changed
                        .wait_timeout(g, left)
                        .map(|(g, _)| g)
                        .map_err(|_| ()),
                    _ => return false,
                },
            };
            let Ok(next) = woken else {
                return false;
            };
            g = next;
        }
        true
    }

    /// Stop the thread and wait for it; returns why it had stopped by itself, if it
    /// had (None when it ran until asked to stop).
    pub fn close(&self) -> Option<String> {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        let t = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = t {
            let _ = t.join();
        }
        self.error()
    }

    pub fn stats(&self) -> ExportStats {
        let s = &self.shared;
        ExportStats {
            exported: s.exported.load(Ordering::Acquire),
            messages: s.messages.load(Ordering::Acquire),
            retries: s.retries.load(Ordering::Acquire),
            skipped: s.skipped.load(Ordering::Acquire),
            reconnects: s.reconnects.load(Ordering::Acquire),
        }
    }

    /// Why the thread stopped by itself, if it did.
    pub fn error(&self) -> Option<String> {
        self.shared.error.get()
    }

    /// The stamps recorded since the last call (`ExportConfig::stamps`).
    pub fn take_stamps(&self) -> Vec<Stamp> {
        self.shared.stamps.take()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // Not joined: the thread may be in the trace hook, waiting for a lock the
        // dropping thread holds. Told to stop, it ends by itself.
        let _ = self.stop.send(true);
        self.wake.notify_one();
    }
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
        c = connect(&job.config.connection, "exporter", job.shared.reconnects.clone()) => c?,
        () = stopped(&mut stop) => return Ok(()),
    };
    let mut js = jetstream::new(client.clone());
    js.set_timeout(job.config.timeout);
    loop {
        let made = tokio::select! {
            s = stream::ensure(&js, &job.config.stream) => s.is_ok(),
            () = stopped(&mut stop) => return Ok(()),
        };
        if made {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(STREAM_RETRY) => {}
            () = stopped(&mut stop) => return Ok(()),
        }
    }
    job.shared.ready.set();
    let room = Arc::new(Semaphore::new(job.config.max_in_flight.max(1)));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Out>();
    let acker = tokio::spawn(acknowledge(
        rx,
        js.clone(),
        job.router.clone(),
        job.sub.clone(),
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
    let signer = &*job.signer;
    let shared = &job.shared;
    while !*stop.borrow() {
        let generation = shared.wanted();
        // Registered before the poll, so that a commit in between still wakes it.
        let watch = Watch::new(vec![job.sub.clone()], inbox.clone(), 1);
        let polled = match job
            .router
            .poll(&job.sub, job.config.poll, Some(Duration::ZERO))
        {
            Ok(polled) => polled,
            // The router or the subscription closed first: nothing more to export.
            Err(sealbus_core::Error::Closed { .. }) => return Ok(()),
            Err(e) => return Err(format!("exporter: poll: {e}")),
        };
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
                s.published = now_ns();
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
    signer: &Signer,
    polled: Vec<Delivery<Item>>,
) -> Result<(Vec<u64>, Vec<Message>), String> {
    let polled_at = job.shared.stamps.now();
    let b = job.router.open_into_buffer(polled);
    let tags: Vec<u64> = b.deliveries.iter().map(|d| d.tag).collect();
    let c = wire::cloudevents(
        b.deliveries
            .iter()
            .zip(&b.errors)
            .map(|(d, e)| (&*d.item, e.is_none())),
        &b.buffer,
        &b.offsets,
        &b.end_to_end,
    );
    job.shared
        .skipped
        .fetch_add((tags.len() - c.index.len()) as u64, Ordering::Relaxed);
    if let Some(hook) = &job.trace {
        trace_hops(hook, &b.deliveries, &c.index, &c.types);
    }
    let (buffer, bounds, types, versions) = (&c.json, &c.bounds, &c.types, &c.versions);
    let ids: Vec<&str> = c.index.iter().map(|&j| &*b.deliveries[j].item.id).collect();
    let n = ids.len();
    let mut messages = Vec::new();
    let mut start = 0;
    while start < n {
        let limit = bounds[start] + job.config.max_bytes;
        let mut end = start + 1;
        while end < n
            && types[end] == types[start]
            && end - start < job.config.max_events
            && bounds[end + 1] <= limit
        {
            end += 1;
        }
        let enc = wire::encode(
            &job.config.router,
            &types[start],
            buffer,
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
            Stamp {
                msg_id: enc.msg_id.clone(),
                ids,
                polled: p,
                sealed: now_ns(),
                published: 0,
                acked: 0,
            }
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
    router: Arc<Router>,
    sub: Arc<Subscription>,
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
                    s.acked = now_ns();
                    done.push(s);
                }
            }
            Some(Out::End(tags)) => {
                if router.ack(&sub, &tags).is_err() {
                    // The router is closing: what was not acknowledged comes again.
                    return;
                }
                shared
                    .exported
                    .fetch_add(tags.len() as u64, Ordering::AcqRel);
                shared.stamps.append(&mut done);
                shared.outstanding.fetch_sub(1, Ordering::AcqRel);
                // A poll may have come back empty because the window was full of
                // these events.
                wake.notify_one();
            }
        }
    }
}

/// Hand the tracing hook each `(traceparent, type)` of the exported events with its
/// count.
fn trace_hops(hook: &TraceHook, deliveries: &[Delivery<Item>], index: &[usize], types: &[String]) {
    let mut counts: HashMap<(Option<&str>, &str), u64> = HashMap::new();
    for (k, &j) in index.iter().enumerate() {
        let tp = deliveries[j].item.traceparent.as_deref();
        *counts.entry((tp, types[k].as_str())).or_default() += 1;
    }
    if !counts.is_empty() {
        let rows: Vec<(Option<&str>, &str, u64)> =
            counts.into_iter().map(|((tp, t), n)| (tp, t, n)).collect();
        hook(&rows);
    }
}
