//! The bridge's import, off the interpreter: a JetStream durable push consumer
//! feeding the local router with every check of a local publish.
//!
//! Two threads. The receiving one runs a single-threaded tokio runtime: it takes the
//! messages as JetStream pushes them (at most `4 * fetch` unacknowledged, which
//! bounds this process's memory whatever the local consumers do), checks each
//! signature against `trust`, opens the frames under the transit ring and cuts the
//! events into runs ([`sealbus_core::wire`]), then hands the delivery on. The
//! committing one takes every delivery waiting, drops the events imported before
//! ([`Seen`]), and publishes the rest into the local router as their remote
//! principals (`<router>/<principal>`), all of them one commit to the log (one
//! fsync): a delivery is opened while the one before it waits for its fsync. A
//! message is acknowledged to JetStream only once its events are durable here;
//! one refused for good (a bad signature, tampered) is terminated; one the local
//! router had no room for is sent again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream::consumer::{push, AckPolicy, DeliverPolicy};
use async_nats::{jetstream, Subject};
use futures_util::StreamExt;
use sealbus_core::error::Error;
use sealbus_core::route::Router;
use sealbus_core::seal::KeyRing;
use sealbus_core::wire;
use tokio::sync::{mpsc, watch};

use crate::connect::{connect, Connection};
use crate::local::{prepare, times, LocalRun, Prepared, Refusal, RunKey};
use crate::seen::Seen;
use crate::stream::{self, StreamSpec};
use crate::{now_ns, run_to_end, stopped, Failure, Flag, Stamps};

/// How long a message the local router had no room for waits before JetStream
/// sends it again.
const NAK_DELAY: &str = "-NAK {\"delay\":500000000}";
/// Between attempts to create the consumer (the stream may not exist yet).
const CONSUMER_RETRY: Duration = Duration::from_millis(500);
/// How long closing waits for the acknowledgements of what was committed.
const ACK_DRAIN: Duration = Duration::from_secs(5);

/// What the import is and how it reaches NATS.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// How to reach NATS.
    pub connection: Connection,
    /// The JetStream stream (created if no bridge has yet) and the durable
    /// consumer's name on it.
    pub stream: StreamSpec,
    pub durable: String,
    /// The subject JetStream pushes the consumer's messages to.
    pub deliver: String,
    /// The stream subjects the consumer takes.
    pub filter_subjects: Vec<String>,
    /// Messages per commit, at most; JetStream keeps four times as many
    /// unacknowledged.
    pub fetch: usize,
    /// Message bytes per delivery to the committing thread, about.
    pub delivery_bytes: usize,
    /// Events per commit, about.
    pub commit_events: usize,
    /// How long a full `block` queue may hold a commit before its messages go back.
    pub block_timeout: Duration,
    /// Record each message's [`ImportStamp`] (the bench's stage times).
    pub stamps: bool,
}

/// One message's times (ns since the epoch): arrived, opened, handed to the local
/// router, durable there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportStamp {
    pub msg_id: String,
    pub ids: Vec<String>,
    pub arrived: u64,
    pub opened: u64,
    pub commit0: u64,
    pub committed: u64,
}

/// The import's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Events stored locally.
    pub imported: u64,
    /// Messages whose signature held and whose frames opened.
    pub messages: u64,
    /// Events recognised as imported before, and not stored again.
    pub duplicates: u64,
    /// Messages refused: not signed by a trusted router, malformed, tampered (or
    /// sealed under a transit key this router does not hold).
    pub refused_signature: u64,
    pub refused_malformed: u64,
    pub refused_integrity: u64,
    /// Events the local router refused: its policy, its schemas, anything else.
    pub refused_policy: u64,
    pub refused_schema: u64,
    pub refused_other: u64,
    /// Connections to NATS re-established.
    pub reconnects: u64,
}

/// Why a message was refused as it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRefusal {
    /// Not signed by the router it names (`router`), or that router is not trusted.
    Signature { router: String },
    /// Not a sealbus bridge message, or its events not `CloudEvents` of its type.
    Malformed,
    /// A frame failed to open under a valid signature (`tampered`), or was sealed
    /// under a transit key this router does not hold.
    Integrity { tampered: bool },
}

/// Events stored locally: one run's principal, type, trace and ids.
#[derive(Debug, Clone)]
pub struct Imported {
    pub principal: String,
    pub event_type: String,
    pub traceparent: Option<String>,
    pub ids: Vec<String>,
}

/// Events the local router refused: `count` of one principal and type, and why.
#[derive(Debug)]
pub struct Refused {
    pub principal: String,
    pub event_type: String,
    pub error: Error,
    pub count: u64,
}

/// What one commit did, for the audit trail, the alerts and the traces: the
/// messages refused as they were opened (with their subjects), the runs stored,
/// the local refusals. Handed over before the messages are acknowledged.
#[derive(Debug, Default)]
pub struct Report {
    pub refused_messages: Vec<(MessageRefusal, String)>,
    pub imported: Vec<Imported>,
    pub refused: Vec<Refused>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.refused_messages.is_empty() && self.imported.is_empty() && self.refused.is_empty()
    }
}

/// The principal token of a remote producer, by its local name (`<router>/<name>`):
/// asked once per producer, from the committing thread. An error (a name the router
/// cannot give a principal) refuses that producer's events, for good.
pub type PrincipalHook = Box<dyn Fn(&str) -> Result<Vec<u8>, String> + Send + Sync>;
/// Called with each commit's [`Report`], on the committing thread, before its
/// messages are acknowledged.
pub type ReportHook = Box<dyn Fn(Report) + Send + Sync>;

#[derive(Default)]
struct Shared {
    imported: AtomicU64,
    messages: AtomicU64,
    duplicates: AtomicU64,
    refused_signature: AtomicU64,
    refused_malformed: AtomicU64,
    refused_integrity: AtomicU64,
    refused_policy: AtomicU64,
    refused_schema: AtomicU64,
    refused_other: AtomicU64,
    reconnects: Arc<AtomicU64>,
    /// Connected, and the consumer bound.
    ready: Flag,
    error: Failure,
    stamps: Stamps<ImportStamp>,
}

impl Shared {
    fn count(&self, refusal: &MessageRefusal) {
        let counter = match refusal {
            MessageRefusal::Signature { .. } => &self.refused_signature,
            MessageRefusal::Malformed => &self.refused_malformed,
            MessageRefusal::Integrity { .. } => &self.refused_integrity,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn refused(&self, refusal: Refusal, n: u64) {
        let counter = match refusal {
            Refusal::Policy => &self.refused_policy,
            Refusal::Schema => &self.refused_schema,
            Refusal::Other => &self.refused_other,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A message opened: its router, type, ids, and events cut into runs, their data
/// one buffer that the local runs take slices of.
struct Opened {
    router: Arc<str>,
    event_type: Arc<str>,
    ids: Vec<String>,
    runs: Vec<wire::Run>,
    data: bytes::Bytes,
    bounds: Vec<usize>,
    times: Vec<(u64, Arc<str>)>,
}

/// A message as the committing thread takes it.
struct Arrived {
    reply: Option<Subject>,
    subject: String,
    opened: Result<Opened, MessageRefusal>,
    stamp: Option<ImportStamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Durable here (or refused by the local policy or schema, which a redelivery
    /// cannot change): acknowledged.
    Ack,
    /// Refused for good as it was opened.
    Term,
    /// Not stored: JetStream sends it again.
    Nak,
}

type Verdicts = Vec<(Option<Subject>, Verdict)>;

/// The import of one bridge (see the module). Closing or dropping it stops both
/// threads; what was committed is acknowledged first.
pub struct Importer {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What the committing thread holds.
struct Committer {
    router: Arc<Router>,
    config: ImportConfig,
    principal: PrincipalHook,
    report: Option<ReportHook>,
    shared: Arc<Shared>,
    seen: Seen,
    tokens: HashMap<String, Vec<u8>>,
}

impl Importer {
    /// Start importing into `router` what the consumer `config` names delivers,
    /// trusting the routers in `trust` (name → Ed25519 public key) and opening
    /// under `transit`. `seen` holds the events imported before (from the local
    /// log). Connects in the background, and keeps trying for as long as it runs.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        router: Arc<Router>,
        transit: Arc<KeyRing>,
        trust: HashMap<String, Vec<u8>>,
        config: ImportConfig,
        principal: PrincipalHook,
        report: Option<ReportHook>,
        seen: Seen,
    ) -> std::io::Result<Importer> {
        let shared = Arc::new(Shared {
            stamps: Stamps::new(config.stamps),
            ..Shared::default()
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        // Two deliveries may wait for the committing thread: the receiving one opens
        // the next meanwhile, and waits (without blocking its runtime) beyond that.
        let (to_commit, committing) = mpsc::channel::<Vec<Arrived>>(2);
        let (verdicts_tx, verdicts_rx) = mpsc::unbounded_channel::<Verdicts>();
        let committer = Committer {
            router,
            config: config.clone(),
            principal,
            report,
            shared: shared.clone(),
            seen,
            tokens: HashMap::new(),
        };
        let commit_thread = std::thread::Builder::new()
            .name("sealbus-import-commit".into())
            .spawn(move || committer.run(committing, &verdicts_tx))?;
        let receiver = Receiver {
            config,
            transit,
            trust,
            shared: shared.clone(),
            stop: stop_rx,
        };
        let thread = std::thread::Builder::new()
            .name("sealbus-import".into())
            .spawn(move || {
                let shared = receiver.shared.clone();
                if let Err(e) = run_to_end("importer", receiver.run(to_commit, verdicts_rx)) {
                    shared.error.set(e);
                }
                let _ = commit_thread.join();
            })?;
        Ok(Importer {
            shared,
            stop: stop_tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Whether the import is connected and its consumer bound, within `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.shared.ready.wait(timeout)
    }

    /// Stop both threads and wait for them; returns why the import had stopped by
    /// itself, if it had.
    pub fn close(&self) -> Option<String> {
        let _ = self.stop.send(true);
        let t = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = t {
            let _ = t.join();
        }
        self.error()
    }

    pub fn stats(&self) -> ImportStats {
        let s = &self.shared;
        let n = |c: &AtomicU64| c.load(Ordering::Acquire);
        ImportStats {
            imported: n(&s.imported),
            messages: n(&s.messages),
            duplicates: n(&s.duplicates),
            refused_signature: n(&s.refused_signature),
            refused_malformed: n(&s.refused_malformed),
            refused_integrity: n(&s.refused_integrity),
            refused_policy: n(&s.refused_policy),
            refused_schema: n(&s.refused_schema),
            refused_other: n(&s.refused_other),
            reconnects: n(&s.reconnects),
        }
    }

    /// Why the import stopped by itself, if it did.
    pub fn error(&self) -> Option<String> {
        self.shared.error.get()
    }

    /// The stamps recorded since the last call (`ImportConfig::stamps`).
    pub fn take_stamps(&self) -> Vec<ImportStamp> {
        self.shared.stamps.take()
    }
}

impl Drop for Importer {
    fn drop(&mut self) {
        // Not joined: the committing thread may be in a hook, waiting for a lock the
        // dropping thread holds. Told to stop, both end by themselves.
        let _ = self.stop.send(true);
    }
}

/// What the receiving thread holds.
struct Receiver {
    config: ImportConfig,
    transit: Arc<KeyRing>,
    trust: HashMap<String, Vec<u8>>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

impl Receiver {
    async fn run(
        self,
        to_commit: mpsc::Sender<Vec<Arrived>>,
        verdicts: mpsc::UnboundedReceiver<Verdicts>,
    ) -> Result<(), String> {
        let mut stop = self.stop.clone();
        let client = tokio::select! {
            c = connect(&self.config.connection, "importer", self.shared.reconnects.clone()) => c?,
            () = stopped(&mut stop) => return Ok(()),
        };
        let acker = tokio::spawn(acknowledge(client.clone(), verdicts));
        let result = self.receive(&client, to_commit, &mut stop).await;
        // The committing thread ends once the deliveries it holds are committed; the
        // acker, once their verdicts are sent.
        let _ = tokio::time::timeout(ACK_DRAIN, acker).await;
        let _ = tokio::time::timeout(ACK_DRAIN, client.flush()).await;
        result
    }

    async fn receive(
        &self,
        client: &async_nats::Client,
        to_commit: mpsc::Sender<Vec<Arrived>>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let c = &self.config;
        // Subscribed before the consumer exists, so that nothing it pushes is lost.
        let mut sub = tokio::select! {
            s = client.subscribe(c.deliver.clone()) => s.map_err(|e| format!("importer: subscribe: {e}"))?,
            () = stopped(stop) => return Ok(()),
        };
        let js = jetstream::new(client.clone());
        let consumer = push::Config {
            durable_name: Some(c.durable.clone()),
            deliver_subject: c.deliver.clone(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            max_ack_pending: i64::try_from(c.fetch.saturating_mul(4)).unwrap_or(i64::MAX),
            ack_wait: Duration::from_secs(60),
            filter_subjects: c.filter_subjects.clone(),
            ..push::Config::default()
        };
        // Create or bind: the same config binds to the consumer a previous run made.
        loop {
            let made = tokio::select! {
                s = stream::ensure(&js, &c.stream) => match s {
                    Ok(()) => match js.get_stream(&c.stream.name).await {
                        Ok(stream) => stream.create_consumer(consumer.clone()).await.is_ok(),
                        Err(_) => false,
                    },
                    Err(_) => false,
                },
                () = stopped(stop) => return Ok(()),
            };
            if made {
                self.shared.ready.set();
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(CONSUMER_RETRY) => {}
                () = stopped(stop) => return Ok(()),
            }
        }
        loop {
            let first = tokio::select! {
                m = sub.next() => match m {
                    Some(m) => m,
                    None => return Ok(()),
                },
                () = stopped(stop) => return Ok(()),
            };
            let mut size = first.payload.len();
            let mut delivery = vec![self.open(first)];
            // Whatever else has arrived joins the delivery, up to its bounds.
            while delivery.len() < c.fetch && size < c.delivery_bytes {
                match futures_util::FutureExt::now_or_never(sub.next()) {
                    Some(Some(m)) => {
                        size += m.payload.len();
                        delivery.push(self.open(m));
                    }
                    _ => break,
                }
            }
            tokio::select! {
                sent = to_commit.send(delivery) => {
                    if sent.is_err() {
                        return Err("importer: the committing thread stopped".into());
                    }
                }
                () = stopped(stop) => return Ok(()),
            }
        }
    }

    /// Check a message's signature and open its frames; a refusal is counted.
    fn open(&self, m: async_nats::Message) -> Arrived {
        let arrived = self.shared.stamps.now();
        let headers = m.headers.as_ref();
        let signature = headers
            .and_then(|h| h.get("Sealbus-Signature"))
            .map(async_nats::HeaderValue::as_str);
        let opened = open(
            m.subject.as_str(),
            &m.payload,
            signature,
            &self.trust,
            &self.transit,
        );
        match &opened {
            Ok(_) => {
                self.shared.messages.fetch_add(1, Ordering::Relaxed);
            }
            Err(refusal) => self.shared.count(refusal),
        }
        let stamp = match (arrived, &opened) {
            (Some(arrived), Ok(o)) => Some(ImportStamp {
                // The parser keeps the standard name as such: a lookup by the same
                // text as a custom name would miss it.
                msg_id: headers
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
                ids: o.ids.clone(),
                arrived,
                opened: now_ns(),
                commit0: 0,
                committed: 0,
            }),
            _ => None,
        };
        Arrived {
            reply: m.reply,
            subject: m.subject.to_string(),
            opened,
            stamp,
        }
    }
}

fn open(
    subject: &str,
    body: &[u8],
    signature: Option<&str>,
    trust: &HashMap<String, Vec<u8>>,
    transit: &KeyRing,
) -> Result<Opened, MessageRefusal> {
    let refusal = |e: Error| match e {
        Error::SignatureRefused { router, .. } => MessageRefusal::Signature { router },
        Error::Integrity { .. } => MessageRefusal::Integrity { tampered: true },
        Error::KeyNotFound { .. } | Error::KeyDestroyed { .. } => {
            MessageRefusal::Integrity { tampered: false }
        }
        _ => MessageRefusal::Malformed,
    };
    let router = wire::peek_router(body).map_err(refusal)?;
    let public = trust.get(router).map(Vec::as_slice);
    let o = wire::open(subject, body, signature, public, transit).map_err(refusal)?;
    let cut = wire::runs(&o.plain, &o.offsets, &o.ids, &o.event_type, &o.versions)
        .map_err(|_| MessageRefusal::Malformed)?;
    let times = times(cut.times).map_err(|_| MessageRefusal::Malformed)?;
    Ok(Opened {
        router: Arc::from(o.router),
        event_type: Arc::from(o.event_type),
        ids: o.ids,
        runs: cut.runs,
        data: bytes::Bytes::from(cut.data),
        bounds: cut.bounds,
        times,
    })
}

/// Send each message's verdict to JetStream, in the order the commits made them.
async fn acknowledge(client: async_nats::Client, mut verdicts: mpsc::UnboundedReceiver<Verdicts>) {
    while let Some(batch) = verdicts.recv().await {
        for (reply, verdict) in batch {
            let Some(reply) = reply else { continue };
            let body: &'static str = match verdict {
                Verdict::Ack => "+ACK",
                Verdict::Term => "+TERM",
                Verdict::Nak => NAK_DELAY,
            };
            // A lost acknowledgement only means a redelivery, recognised by its ids.
            let _ = client
                .publish(reply, bytes::Bytes::from_static(body.as_bytes()))
                .await;
        }
    }
}

impl Committer {
    fn run(
        mut self,
        mut deliveries: mpsc::Receiver<Vec<Arrived>>,
        verdicts: &mpsc::UnboundedSender<Verdicts>,
    ) {
        while let Some(mut batch) = deliveries.blocking_recv() {
            let mut events = events_in(&batch);
            // Every delivery waiting goes into this commit, up to its bounds.
            while batch.len() < self.config.fetch && events < self.config.commit_events {
                match deliveries.try_recv() {
                    Ok(more) => {
                        events += events_in(&more);
                        batch.extend(more);
                    }
                    Err(_) => break,
                }
            }
            let out = self.commit(&mut batch);
            if verdicts.send(out).is_err() {
                return;
            }
        }
    }

    /// The events of `batch` into the local router as one commit, and each
    /// message's verdict.
    fn commit(&mut self, batch: &mut [Arrived]) -> Verdicts {
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(batch.len());
        let mut report = Report::default();
        let runs = self.runs(batch, &mut verdicts, &mut report);
        let mut prepared: Vec<Prepared> = runs
            .iter()
            .map(|run| match self.token(&run.principal) {
                Ok(token) => prepare(&self.router, &token, run),
                // A producer the router cannot name (too long a name, a control
                // character): refused for good, as its publish would be.
                Err(e) => Prepared {
                    refused: Some(e),
                    ..Prepared::default()
                },
            })
            .collect();
        let commit0 = self.shared.stamps.now();
        let all: Vec<_> = prepared
            .iter_mut()
            .flat_map(|p| p.events.drain(..))
            .collect();
        let mut done = runs.len();
        if !all.is_empty() {
            match self.router.enqueue(all, Some(self.config.block_timeout)) {
                Ok(_) => {}
                Err(r)
                    if matches!(r.error, Error::Backpressure { .. }) && r.receipts.is_empty() =>
                {
                    // A full local queue had no room for the whole commit: a run at
                    // a time, so that it fills up to its bound before the import
                    // waits on it.
                    done = self.one_by_one(&runs, &prepared);
                }
                Err(r) => {
                    self.stored(&runs, &r.receipts);
                    done = 0;
                }
            }
        }
        nak(&runs[done..], &mut verdicts);
        let committed = self.shared.stamps.now();
        for (run, p) in runs.iter().zip(prepared).take(done) {
            self.settle(run, p, &mut report);
        }
        if let (Some(t0), Some(t1)) = (commit0, committed) {
            let mut done = batch
                .iter_mut()
                .filter_map(|a| a.stamp.take())
                .map(|mut s| {
                    s.commit0 = t0;
                    s.committed = t1;
                    s
                })
                .collect::<Vec<_>>();
            self.shared.stamps.append(&mut done);
        }
        if let Some(hook) = &self.report {
            if !report.is_empty() {
                hook(report);
            }
        }
        batch
            .iter_mut()
            .zip(verdicts)
            .map(|(a, v)| (a.reply.take(), v))
            .collect()
    }

    /// Runs [`commit`] could not commit as one: each run alone, in order, until one
    /// is refused; returns how many were committed.
    fn one_by_one(&mut self, runs: &[LocalRun], prepared: &[Prepared]) -> usize {
        for (at, (run, p)) in runs.iter().zip(prepared).enumerate() {
            if p.refused.is_some() || p.schema_refused.len() == run.ids.len() {
                continue;
            }
            // Prepared again: the first attempt moved the events into the commit.
            let Some(token) = self.tokens.get(&run.principal) else {
                continue;
            };
            let events = prepare(&self.router, token, run).events;
            if events.is_empty() {
                continue;
            }
            if let Err(r) = self.router.enqueue(events, Some(self.config.block_timeout)) {
                self.stored(&runs[at..], &r.receipts);
                return at;
            }
        }
        runs.len()
    }

    /// What a refused commit stored before the refusal: recognised when it comes
    /// again.
    fn stored(&mut self, runs: &[LocalRun], receipts: &[sealbus_core::route::Receipt]) {
        if receipts.is_empty() {
            return;
        }
        let stored: HashSet<&str> = receipts.iter().map(|r| r.id.as_str()).collect();
        for run in runs {
            for id in &run.ids {
                if stored.contains(id.as_str()) {
                    self.seen.add(&run.principal, id);
                }
            }
        }
    }

    /// A committed run: what was stored is remembered and counted, what was refused
    /// is counted; both are reported.
    fn settle(&mut self, run: &LocalRun, p: Prepared, report: &mut Report) {
        let event_type = run.key.event_type.to_string();
        if let Some(e) = p.refused {
            let n = run.ids.len() as u64;
            self.shared.refused(Refusal::of(&e), n);
            report.refused.push(Refused {
                principal: run.principal.clone(),
                event_type,
                error: e,
                count: n,
            });
            return;
        }
        let refused: HashSet<usize> = p.schema_refused.iter().map(|(i, _)| *i).collect();
        self.shared.refused(Refusal::Schema, refused.len() as u64);
        for (_, e) in p.schema_refused {
            report.refused.push(Refused {
                principal: run.principal.clone(),
                event_type: event_type.clone(),
                error: e,
                count: 1,
            });
        }
        let ids: Vec<String> = run
            .ids
            .iter()
            .enumerate()
            .filter(|(i, _)| !refused.contains(i))
            .map(|(_, id)| id.clone())
            .collect();
        for id in &ids {
            self.seen.add(&run.principal, id);
        }
        self.shared
            .imported
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        if !ids.is_empty() && self.report.is_some() {
            report.imported.push(Imported {
                principal: run.principal.clone(),
                event_type,
                traceparent: run.key.traceparent.clone(),
                ids,
            });
        }
    }

    /// The principal token of a remote producer, asked of the hook once.
    fn token(&mut self, principal: &str) -> Result<Vec<u8>, Error> {
        if let Some(t) = self.tokens.get(principal) {
            return Ok(t.clone());
        }
        let t = (self.principal)(principal).map_err(|reason| Error::InvalidArgument {
            name: "source".into(),
            reason,
        })?;
        self.tokens.insert(principal.to_owned(), t.clone());
        Ok(t)
    }

    /// Cut the batch's opened messages into local runs: consecutive events that
    /// share router, type, schema version, producer and attributes, across messages,
    /// leaving out events imported before or already taken into this commit. Each
    /// message gets its first verdict; refusals go into the report.
    fn runs(
        &mut self,
        batch: &[Arrived],
        verdicts: &mut Vec<Verdict>,
        report: &mut Report,
    ) -> Vec<LocalRun> {
        let mut runs: Vec<LocalRun> = Vec::new();
        let mut taking: HashMap<String, HashSet<&str>> = HashMap::new();
        let mut duplicates = 0u64;
        for (n, a) in batch.iter().enumerate() {
            let o = match &a.opened {
                Ok(o) => o,
                Err(refusal) => {
                    verdicts.push(Verdict::Term);
                    report
                        .refused_messages
                        .push((refusal.clone(), a.subject.clone()));
                    continue;
                }
            };
            verdicts.push(Verdict::Ack);
            let mut start = 0;
            for r in &o.runs {
                let key = RunKey::of(&o.router, &o.event_type, r);
                let run = match runs.last_mut() {
                    Some(last) if last.key == key => last,
                    _ => {
                        runs.push(LocalRun::new(key));
                        let Some(last) = runs.last_mut() else { break };
                        last
                    }
                };
                run.own(n);
                let taken = taking.entry(run.principal.clone()).or_default();
                for i in start..r.end.min(o.ids.len()) {
                    let id = o.ids[i].as_str();
                    // Also a message repeated within one commit is stored once.
                    if self.seen.contains(&run.principal, id) || !taken.insert(id) {
                        duplicates += 1;
                        continue;
                    }
                    run.parts.push(o.data.slice(o.bounds[i]..o.bounds[i + 1]));
                    run.ids.push(id.to_owned());
                    run.times.push(o.times[i].clone());
                }
                start = r.end;
            }
        }
        self.shared
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        runs.retain(|run| !run.ids.is_empty());
        runs
    }
}

/// The messages whose events `runs` hold are sent again.
fn nak(runs: &[LocalRun], verdicts: &mut [Verdict]) {
    for run in runs {
        for &n in &run.owners {
            verdicts[n] = Verdict::Nak;
        }
    }
}

fn events_in(batch: &[Arrived]) -> usize {
    batch
        .iter()
        .map(|a| a.opened.as_ref().map_or(0, |o| o.ids.len()))
        .sum()
}

#[cfg(test)]
mod tests {
    use sealbus_core::identity::Signer;

    use super::*;

    fn cloudevent(id: &str, time: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"checkout","type":"orders.placed","time":"{time}","data":{{"n":1}}}}"#
        )
    }

    /// A message of two events, as shop-a's export would publish it: body, signature.
    fn message(ring: &KeyRing, signer: &Signer, second_time: &str) -> (Vec<u8>, String) {
        let a = cloudevent("e-1", "2026-12-01T10:00:00Z");
        let b = cloudevent("e-2", second_time);
        let buf = [a.as_bytes(), b.as_bytes()].concat();
        let enc = wire::encode(
            "shop-a",
            "orders.placed",
            &buf,
            &[0, a.len(), buf.len()],
            &["e-1", "e-2"],
            &[None, None],
            ring,
            signer,
        )
        .expect("encodes");
        (enc.body, enc.signature)
    }

    fn signer() -> Signer {
        Signer::from_seed(&[7u8; 32]).expect("seed")
    }

    fn trust(signer: &Signer) -> HashMap<String, Vec<u8>> {
        HashMap::from([("shop-a".to_owned(), signer.public_key().to_vec())])
    }

    #[test]
    fn a_trusted_message_opens_into_runs_with_its_producers_times() {
        let (ring, signer) = (KeyRing::generate().expect("ring"), signer());
        let (body, sig) = message(&ring, &signer, "2026-12-01T10:00:01Z");
        let o = open(
            "sealbus.orders.placed",
            &body,
            Some(&sig),
            &trust(&signer),
            &ring,
        )
        .map_err(|r| format!("{r:?}"))
        .expect("opens");
        assert_eq!((&*o.router, &*o.event_type), ("shop-a", "orders.placed"));
        assert_eq!(o.ids, ["e-1", "e-2"]);
        assert_eq!(o.runs.len(), 1);
        let key = RunKey::of(&o.router, &o.event_type, &o.runs[0]);
        assert_eq!(key.principal(), "shop-a/checkout");
        assert_eq!(&*o.times[1].1, "2026-12-01T10:00:01Z");
        assert!(o.times[0].0 < o.times[1].0);
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let (ring, signer) = (KeyRing::generate().expect("ring"), signer());
        let (body, sig) = message(&ring, &signer, "2026-12-01T10:00:01Z");
        let subject = "sealbus.orders.placed";
        let refused =
            |body: &[u8],
             sig: Option<&str>,
             trust: &HashMap<String, Vec<u8>>,
             ring: &KeyRing|
             -> Option<MessageRefusal> { open(subject, body, sig, trust, ring).err() };
        // Not trusted, or signed by another key: the router it claims is named.
        let untrusted = Some(MessageRefusal::Signature {
            router: "shop-a".into(),
        });
        assert_eq!(
            refused(&body, Some(&sig), &HashMap::new(), &ring),
            untrusted
        );
        let other = trust(&Signer::from_seed(&[8u8; 32]).expect("seed"));
        assert_eq!(refused(&body, Some(&sig), &other, &ring), untrusted);
        assert_eq!(refused(&body, None, &trust(&signer), &ring), untrusted);
        // A byte changed anywhere breaks the signature over the body.
        let mut tampered = body.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            refused(&tampered, Some(&sig), &trust(&signer), &ring),
            untrusted
        );
        // Not a bridge message at all.
        assert_eq!(
            refused(b"hello", Some(&sig), &trust(&signer), &ring),
            Some(MessageRefusal::Malformed)
        );
        // Signed by a trusted router, sealed under a transit key this one lacks.
        let elsewhere = KeyRing::generate().expect("ring");
        assert_eq!(
            refused(&body, Some(&sig), &trust(&signer), &elsewhere),
            Some(MessageRefusal::Integrity { tampered: false })
        );
        // An event whose time does not parse: the message is malformed.
        let (bad, bad_sig) = message(&ring, &signer, "yesterday");
        assert_eq!(
            refused(&bad, Some(&bad_sig), &trust(&signer), &ring),
            Some(MessageRefusal::Malformed)
        );
    }
}
