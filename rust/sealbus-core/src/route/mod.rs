//! The router: the path of one batch of events from a producer to the queues of the
//! consumers entitled to it and asking for it.
//!
//! `publish` authenticates the producer, checks the policy, parses and validates every
//! event against its schema, and only then routes: for each event type a compiled
//! [`PatternSet`] of the subscriptions that may read it (built once per type and
//! policy generation, not a loop over subscriptions), then the queues, with their
//! backpressure policy. A batch is all-or-nothing until the queue step; under `block`,
//! a timeout hands back the events not yet queued.

mod clock;
mod committer;
mod deliver;
mod durable;
mod e2e_open;
mod follow;
mod group;
mod inflight;
mod limits;
mod publish;
mod queue;
mod replay;
mod select;
mod signal;
pub mod stored;
mod subscription;
mod tail;
#[cfg(test)]
mod tests;
mod wake;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use clock::Clock;
pub use committer::Committer;
pub use deliver::{Opened, OpenedBatch};
pub use e2e_open::OpenedEndToEnd;
pub use group::{Outcome, Submission};
pub use limits::{Limits, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_EVENT_BYTES};
pub use queue::{DeadLetter, Delivery, OnFull, Queue, QueueConfig, QueueStats};
pub use replay::Replay;
pub use select::Selector;
pub use signal::{Interrupt, INTERRUPT_SLICE};
pub use subscription::{Durable, Item, SubState, SubStats, Subscription};
pub use wake::{Inbox, Wake, Watch};

use crate::envelope::{self, Attributes, DataKind, Event};
use crate::error::{Action, Error, Result};
use crate::log::{CursorStore, Log};
use crate::pattern::{Pattern, PatternSet};
use crate::policy::{self, Policy};
use crate::process::Process;
use crate::schema::SchemaRegistry;
use crate::seal::KeyRing;

/// Router-wide settings.
#[derive(Default)]
pub struct RouterConfig {
    /// Accept event types that have no registered schema (data is then only checked
    /// to be well-formed JSON).
    pub allow_schemaless: bool,
    /// Seal every event's data at rest with this key ring before it is queued or stored.
    pub keys: Option<Arc<KeyRing>>,
    /// The durable log and its consumer cursors.
    pub log: Option<(Arc<Log>, CursorStore)>,
    /// How large an event and a publish may be.
    pub limits: Limits,
    /// Store each event's `subject` sealed with `keys`, like its data, instead of in
    /// the clear (a durable, sealing router only). Patterns on `subject` are refused.
    pub seal_subject: bool,
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("allow_schemaless", &self.allow_schemaless)
            .field("sealed", &self.keys.is_some())
            .field("durable", &self.log.is_some())
            .field("limits", &self.limits)
            .field("seal_subject", &self.seal_subject)
            .finish()
    }
}

/// How a new durable subscription without a stored cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only events published from now on.
    Latest,
    /// Everything still in the log.
    Earliest,
}

/// One event as a producer hands it over.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: DataKind,
    pub data: Vec<u8>,
    /// A producer-chosen event id: end-to-end seals bind the id, so the producer
    /// picks it before sealing. The router stamps one otherwise.
    pub id: Option<String>,
    /// `data` is an end-to-end sealed frame (docs/FORMAT.md, mode 2).
    pub end_to_end: bool,
}

/// What a publish returns per accepted event.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: String,
    pub time: std::sync::Arc<str>,
    pub schema_version: Option<u32>,
    /// How many subscriptions it was queued for.
    pub routed: usize,
    /// Its offset in the durable log, if the router has one.
    pub offset: Option<u64>,
}

/// A publish refused by backpressure: receipts of what was queued, and the index of
/// the first event handed back.
#[derive(Debug)]
pub struct Refused {
    pub error: Error,
    pub receipts: Vec<Receipt>,
}

/// Routing table for one concrete event type, valid for one policy/subscription generation.
#[derive(Debug)]
struct TypeRoute {
    generation: u64,
    /// The subscriptions that may read the type, each part in id order: the first
    /// `unpatterned` take every event; the others are filtered by `patterned`, whose
    /// keys are their indices here (dense, so a match needs no map lookup).
    subs: Vec<Arc<Subscription>>,
    unpatterned: usize,
    patterned: PatternSet<u32>,
    /// `patterned` seen from inside `data`, when every pattern looks only there (the
    /// common case): matched against the data itself, the envelope's attributes are
    /// neither copied nor scanned.
    data_only: Option<PatternSet<u32>>,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub published: AtomicU64,
    pub refused_policy: AtomicU64,
    pub refused_schema: AtomicU64,
    pub refused_backpressure: AtomicU64,
    pub routed: AtomicU64,
    pub unrouted: AtomicU64,
    /// Events durable consumers read back from the log because they were not in
    /// their in-memory window (offline, or too far behind).
    pub read_back: AtomicU64,
    /// Stored or delivered events whose seal failed to open (tampered or malformed
    /// frames; a destroyed key is not counted): watched by the alert rules.
    pub open_failed: AtomicU64,
}

#[derive(Debug)]
pub struct Router {
    pub policy: Policy,
    pub schemas: SchemaRegistry,
    pub counters: Counters,
    allow_schemaless: bool,
    limits: Limits,
    /// See [`RouterConfig::seal_subject`]; only ever set with keys and a log.
    seal_subject: bool,
    keys: Option<Arc<KeyRing>>,
    log: Option<Arc<Log>>,
    cursors: Option<CursorStore>,
    clock: Clock,
    /// The process that opened the router: no other may use it (`process.rs`).
    process: Process,
    subs: RwLock<HashMap<u64, Arc<Subscription>>>,
    routes: RwLock<HashMap<String, Arc<TypeRoute>>>,
    /// Bumped by every subscribe, unsubscribe and policy change; stale routes rebuild.
    generation: AtomicU64,
    next_sub: AtomicU64,
    /// Serialises the queue step between producers so check-then-push is atomic;
    /// consumers never take it.
    enqueue: Mutex<()>,
    /// Appends not yet pushed to the windows: refills stop below them.
    inflight: inflight::InFlight,
    /// Publishes in their queue step right now (sealing decides on threads by it).
    enqueuing: std::sync::atomic::AtomicUsize,
    /// Durable subscriptions holding a batch that waits for an earlier append to
    /// finish (see `follow`).
    waiting: Mutex<Vec<Arc<Subscription>>>,
    /// The recent batches unbounded durable subscriptions take their shares from
    /// (see `tail`); only with a log.
    tail: Option<Arc<tail::Tail>>,
    /// Open durable subscriptions by name (changed only under `subs`' write lock):
    /// a subscribe finds a clash without a pass over every subscription.
    durable_names: Mutex<HashMap<String, u64>>,
    /// When acks last saved the changed cursors (see `durable::save_acked`).
    acks_saved: Mutex<std::time::Instant>,
}

/// Pattern keys that would look inside sealed data.
fn is_sealed_key(k: &str) -> bool {
    matches!(k, "data" | "data_base64")
}

/// A subscription's queue holds at least one event and delivers it at least once.
fn check_queue_config(cfg: &QueueConfig) -> Result<()> {
    let zero = if cfg.max_pending == 0 {
        "max_pending"
    } else if cfg.max_deliveries == 0 {
        "max_deliveries"
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument {
        name: zero.into(),
        reason: "must be at least 1".into(),
    })
}

fn poisoned(what: &str) -> Error {
    Error::Closed {
        what: format!("{what} (a thread panicked holding its lock)"),
    }
}

impl Router {
    pub fn new(config: RouterConfig, clock: Clock) -> Self {
        let (log, cursors) = match config.log {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        };
        let tail = log.as_ref().map(|_| Arc::default());
        Router {
            policy: Policy::new(),
            schemas: SchemaRegistry::new(),
            counters: Counters::default(),
            allow_schemaless: config.allow_schemaless,
            limits: config.limits,
            seal_subject: config.seal_subject && config.keys.is_some() && log.is_some(),
            keys: config.keys,
            log,
            cursors,
            clock,
            process: Process::current(),
            subs: RwLock::new(HashMap::new()),
            routes: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(1),
            next_sub: AtomicU64::new(1),
            enqueue: Mutex::new(()),
            inflight: inflight::InFlight::default(),
            enqueuing: std::sync::atomic::AtomicUsize::new(0),
            waiting: Mutex::new(Vec::new()),
            tail,
            durable_names: Mutex::new(HashMap::new()),
            acks_saved: Mutex::new(std::time::Instant::now()),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether subjects are stored sealed (see [`RouterConfig::seal_subject`]).
    pub fn seals_subject(&self) -> bool {
        self.seal_subject
    }

    /// Refuse a pattern that would look at what the router does not keep in the
    /// clear: `subject` when it seals subjects at rest (read back from the log, a
    /// pattern could only see it by unsealing it for the match).
    pub(crate) fn check_pattern_keys(&self, pattern: Option<&Pattern>) -> Result<()> {
        if let (true, Some(p)) = (self.seal_subject, pattern) {
            if p.top_level_keys().iter().any(|k| k == "subject") {
                return Err(Error::Pattern {
                    path: "subject".into(),
                    reason: "this router seals subjects at rest (seal_subject): they are not \
                             matchable, like end-to-end data"
                        .into(),
                });
            }
        }
        Ok(())
    }

    pub fn keys(&self) -> Option<&Arc<KeyRing>> {
        self.keys.as_ref()
    }

    pub fn log(&self) -> Option<&Arc<Log>> {
        self.log.as_ref()
    }

    /// Call after any policy change: cached routes are rebuilt on next use.
    pub fn invalidate_routes(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn allow(&self, principal: &str, action: Action, glob: &str) -> Result<()> {
        self.policy.allow(principal, action, glob)?;
        self.invalidate_routes();
        Ok(())
    }

    pub fn require_end_to_end(&self, glob: &str) -> Result<()> {
        self.policy.require_end_to_end(glob)?;
        self.invalidate_routes();
        Ok(())
    }

    pub fn revoke(&self, principal: &str, action: Action, glob: &str) -> Result<bool> {
        let r = self.policy.revoke(principal, action, glob)?;
        self.invalidate_routes();
        Ok(r)
    }

    // ---- subscriptions -----------------------------------------------------------

    // The arguments are the subscription's definition, read one by one at the binding.
    #[allow(clippy::too_many_arguments)]
    /// Subscribe `principal` (authenticated by `token`) to `types` (names or globs),
    /// optionally filtered by an EventBridge `pattern` over the CloudEvents JSON form.
    pub fn subscribe(
        &self,
        principal: &str,
        token: &[u8],
        name: Option<String>,
        types: Vec<String>,
        pattern: Option<Pattern>,
        cfg: QueueConfig,
        durable: Option<(Start, Option<u64>)>,
    ) -> Result<Arc<Subscription>> {
        self.process.check("the router")?;
        self.policy.authenticate(principal, token)?;
        if types.is_empty() {
            return Err(Error::InvalidArgument {
                name: "types".into(),
                reason: "a subscription names at least one event type or glob".into(),
            });
        }
        for t in &types {
            policy::check_glob(t)?;
            self.policy.check(principal, Action::Subscribe, t)?;
        }
        if let Some(p) = &pattern {
            if let Some(t) = types.iter().find(|t| self.policy.may_be_end_to_end(t)) {
                if let Some(k) = p.top_level_keys().into_iter().find(|k| is_sealed_key(k)) {
                    return Err(Error::Pattern {
                        path: k,
                        reason: format!(
                            "events of {t} are sealed end to end: the router cannot see their data, \
                             so only attributes (type, source, subject, ...) are matchable"
                        ),
                    });
                }
            }
        }
        self.check_pattern_keys(pattern.as_ref())?;
        check_queue_config(&cfg)?;
        let id = self.next_sub.fetch_add(1, Ordering::AcqRel);
        let name = match (name, durable.is_some()) {
            (Some(n), _) => n,
            (None, false) => format!("{principal}-{id}"),
            (None, true) => {
                return Err(Error::InvalidArgument {
                    name: "name".into(),
                    reason: "a durable subscription needs a name: its cursor is stored under it"
                        .into(),
                })
            }
        };
        let mut subs = self.subs.write().map_err(|_| poisoned("subscriptions"))?;
        let mut names = self
            .durable_names
            .lock()
            .map_err(|_| poisoned("subscriptions"))?;
        let open = names.get(&name).and_then(|id| subs.get(id));
        if let (Some(s), Some(_)) = (open, durable) {
            if s.principal != principal {
                return Err(durable::not_owner(principal, &name));
            }
            return Err(Error::InvalidArgument {
                name: "name".into(),
                reason: format!("durable subscription {name:?} is already open"),
            });
        }
        let durable = match durable {
            Some((start, max_backlog)) => {
                Self::check_durable_policy(cfg.on_full, max_backlog)?;
                let p = pattern.as_ref();
                Some(self.open_durable(id, principal, &name, start, max_backlog, p)?)
            }
            None => None,
        };
        let sub = Arc::new(Subscription::new(
            id,
            name,
            principal.to_owned(),
            types,
            pattern,
            cfg,
            durable,
        ));
        if sub.is_durable() {
            self.restore_dead_letters(&sub)?;
        }
        if sub.is_durable() {
            names.insert(sub.name.clone(), id);
        }
        drop(names);
        subs.insert(id, sub.clone());
        drop(subs);
        match &self.log {
            Some(log) if sub.is_durable() => {
                // Batches routed before this generation do not know the new
                // subscription: it reads back everything stored so far, and any of
                // them stored later tells it (`follow`).
                let (since, stored) = self
                    .inflight
                    .new_generation(&self.generation, || log.next_offset());
                #[cfg(test)]
                tests::after_new_generation(self);
                let mut st = sub.lock()?;
                if let Some(d) = st.durable.as_mut() {
                    d.since_generation = since;
                    // Raised, not set: a batch pushed to it or routed without it since
                    // it joined the table may have asked it to read back further.
                    d.read_until = d.read_until.max(stored);
                }
                self.try_follow(&mut st);
            }
            _ => self.invalidate_routes(),
        }
        Ok(sub)
    }

    /// Close a subscription. A durable one keeps its cursor (the consumer is offline
    /// and will be owed every event when it returns) unless `forget` is set.
    pub fn unsubscribe(&self, id: u64, forget: bool) -> Result<bool> {
        self.process.check("the router")?;
        let removed = {
            let mut subs = self.subs.write().map_err(|_| poisoned("subscriptions"))?;
            let removed = subs.remove(&id);
            if let Some(s) = removed.as_ref().filter(|s| s.is_durable()) {
                let mut names = self
                    .durable_names
                    .lock()
                    .map_err(|_| poisoned("subscriptions"))?;
                if names.get(&s.name) == Some(&id) {
                    names.remove(&s.name);
                }
            }
            removed
        };
        if let Some(s) = &removed {
            s.close();
            self.invalidate_routes();
            self.flush_cursor(s)?;
            Self::forget_shares(s)?;
            if forget && s.is_durable() && !self.log.as_ref().is_some_and(|l| l.is_closed()) {
                if let Some(c) = &self.cursors {
                    c.remove(&s.name)?;
                }
            }
        }
        Ok(removed.is_some())
    }

    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        let mut v: Vec<_> = self
            .subs
            .read()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|s| s.id);
        v
    }

    fn route_for(&self, event_type: &str) -> Result<Arc<TypeRoute>> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(r) = self
            .routes
            .read()
            .map_err(|_| poisoned("routes"))?
            .get(event_type)
        {
            if r.generation == generation {
                return Ok(r.clone());
            }
        }
        let subs = self.subs.read().map_err(|_| poisoned("subscriptions"))?;
        let mut route = TypeRoute {
            generation,
            subs: Vec::new(),
            unpatterned: 0,
            patterned: PatternSet::new(),
            data_only: None,
        };
        let mut filtered = Vec::new();
        let mut ids: Vec<_> = subs.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(s) = subs.get(&id) else { continue };
            let wants = s.types.iter().any(|g| policy::glob_match(g, event_type));
            // Re-checked per concrete type: a revoked grant stops delivery at once.
            if !wants
                || !self
                    .policy
                    .allows(&s.principal, Action::Subscribe, event_type)
            {
                continue;
            }
            let e2e = self.policy.requires_end_to_end(event_type);
            match &s.pattern {
                // Defence in depth: a data pattern never sees an end-to-end type.
                Some(p) if e2e && p.top_level_keys().iter().any(|k| is_sealed_key(k)) => {}
                None => route.subs.push(s.clone()),
                Some(p) => filtered.push((s.clone(), p.clone())),
            }
        }
        drop(subs);
        route.unpatterned = route.subs.len();
        let mut data_only = Some(PatternSet::new());
        for (s, p) in filtered {
            let key = u32::try_from(route.subs.len()).map_err(|_| Error::InvalidArgument {
                name: "subscriptions".into(),
                reason: "more than 2^32 subscriptions to one event type".into(),
            })?;
            data_only = data_only.and_then(|mut set| {
                set.insert(key, p.under("data")?);
                Some(set)
            });
            route.patterned.insert(key, p);
            route.subs.push(s);
        }
        route.data_only = data_only.filter(|set| !set.is_empty());
        let route = Arc::new(route);
        self.routes
            .write()
            .map_err(|_| poisoned("routes"))?
            .insert(event_type.to_owned(), route.clone());
        Ok(route)
    }

    // ---- publish -----------------------------------------------------------------

    /// Authenticate, authorise, validate and stamp a batch. Nothing is queued here;
    /// any refusal refuses the whole batch.
    pub fn prepare(
        &self,
        principal: &str,
        token: &[u8],
        event_type: &str,
        version: Option<u32>,
        attrs: &Attributes,
        items: Vec<Outgoing>,
    ) -> Result<Vec<Event>> {
        self.process.check("the router")?;
        self.policy.authenticate(principal, token)?;
        // The binding checks the sizes before it copies the batch out of Python; this
        // holds for every caller.
        self.limits.check_sizes(
            items.iter().map(|i| i.data.len()),
            items.iter().any(|i| i.end_to_end),
        )?;
        envelope::check_event_type(event_type)?;
        if let Err(e) = self.policy.check(principal, Action::Publish, event_type) {
            self.counters
                .refused_policy
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            return Err(e);
        }
        attrs.validate()?;
        let validator = match self.schemas.validator(event_type, version) {
            Ok(v) => Some(v),
            Err(Error::SchemaNotFound { .. }) if self.allow_schemaless && version.is_none() => None,
            Err(e) => {
                self.counters
                    .refused_schema
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                return Err(e);
            }
        };
        let stamp = envelope::now();
        // What every event of the batch shares, made once.
        let e2e = self.policy.requires_end_to_end(event_type);
        // An end-to-end event's content type says its data is a frame: stamped in
        // the shared attributes too, so its events share them as the others do (no
        // allocation per attribute per event, to make here and to free on delivery).
        let e2e_attrs;
        let shared_attrs = if e2e {
            e2e_attrs = Attributes {
                datacontenttype: Some(envelope::E2E_CONTENT_TYPE.to_owned()),
                ..attrs.clone()
            };
            &e2e_attrs
        } else {
            attrs
        };
        let shared = envelope::Stamp::new(principal, event_type, shared_attrs, &stamp);
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            if e2e != item.end_to_end {
                self.counters.refused_policy.fetch_add(1, Ordering::Relaxed);
                return Err(Error::InvalidEvent {
                    field: format!("data[{index}]"),
                    reason: if e2e {
                        format!("{event_type} must be sealed end to end by its producer")
                    } else {
                        format!(
                            "{event_type} is not an end-to-end type; publish its data in the clear"
                        )
                    },
                });
            }
            if e2e {
                out.push(self.prepare_sealed(&shared, item, index)?);
                continue;
            }
            let fail = |reason: String| Error::Validation {
                event_type: event_type.to_owned(),
                version: validator.as_ref().map_or(0, |v| v.version()),
                instance_path: String::new(),
                schema_path: String::new(),
                reason,
                index,
            };
            match item.kind {
                DataKind::Json => {
                    if let Some(v) = &validator {
                        // Validated straight from the bytes: no serde_json::Value per event.
                        v.validate_json(&item.data, index).inspect_err(|_| {
                            self.counters.refused_schema.fetch_add(1, Ordering::Relaxed);
                        })?;
                    } else {
                        // serde skips strings it ignores without checking their UTF-8;
                        // the matcher relies on both checks (it trusts the data).
                        simdutf8::basic::from_utf8(&item.data)
                            .map_err(|_| fail("data is not UTF-8".into()))?;
                        serde_json::from_slice::<serde::de::IgnoredAny>(&item.data)
                            .map_err(|e| fail(format!("data is not JSON: {e}")))?;
                    }
                }
                DataKind::Binary | DataKind::None if validator.is_some() => {
                    self.counters.refused_schema.fetch_add(1, Ordering::Relaxed);
                    return Err(fail(
                        "the type has a JSON schema, so its data must be JSON".into(),
                    ));
                }
                DataKind::Binary | DataKind::None => {}
            }
            let mut e = Event::stamp_shared(&shared, item.kind, item.data);
            e.schema_version = validator.as_ref().map(|v| v.version());
            if let Some(id) = item.id {
                e.id = id;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Validate one event's JSON data against the type's latest schema, as the
    /// router would: for consumers of end-to-end events, which the router cannot
    /// see into. Returns the version used (0 for an allowed schemaless type).
    pub fn validate_data(&self, event_type: &str, data: &[u8]) -> Result<u32> {
        match self.schemas.validator(event_type, None) {
            Ok(v) => v.validate_json(data, 0).map(|()| v.version()),
            Err(Error::SchemaNotFound { .. }) if self.allow_schemaless => {
                serde_json::from_slice::<serde::de::IgnoredAny>(data).map_err(|e| {
                    Error::Validation {
                        event_type: event_type.to_owned(),
                        version: 0,
                        instance_path: String::new(),
                        schema_path: String::new(),
                        reason: format!("data is not JSON: {e}"),
                        index: 0,
                    }
                })?;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// [`Router::validate_data`] over opened events of one type, event `i` being
    /// `buffer[offsets[i]..offsets[i + 1]]`: the schema is looked up once and large
    /// batches are spread over the validation pool. The error of each invalid event
    /// (carrying its index), `None` for a valid one.
    pub fn validate_data_batch(
        &self,
        event_type: &str,
        buffer: &[u8],
        offsets: &[usize],
    ) -> Result<Vec<Option<Error>>> {
        match self.schemas.validator(event_type, None) {
            Ok(v) => {
                let offs: Vec<u64> = offsets.iter().map(|&o| o as u64).collect();
                v.validate_buffer(buffer, &offs, true)
            }
            Err(Error::SchemaNotFound { .. }) if self.allow_schemaless => Ok(offsets
                .windows(2)
                .map(|w| {
                    let data = buffer.get(w[0]..w[1]).unwrap_or_default();
                    self.validate_data(event_type, data).err()
                })
                .collect()),
            Err(e) => Err(e),
        }
    }

    /// An end-to-end event: the router cannot see its data, so it checks the frame's
    /// shape and routes on the cleartext attributes; consumers validate after opening.
    fn prepare_sealed(
        &self,
        shared: &envelope::Stamp,
        item: Outgoing,
        index: usize,
    ) -> Result<Event> {
        let bad = |reason: String| Error::InvalidEvent {
            field: format!("data[{index}]"),
            reason,
        };
        let frame = crate::seal::frame::decode(&item.data)
            .map_err(|e| bad(format!("not a sealed frame: {e}")))?;
        if frame.mode != crate::seal::Mode::EndToEnd {
            return Err(bad("not an end-to-end frame".into()));
        }
        if frame.recipients.is_empty() {
            return Err(bad("the frame is sealed for no recipient".into()));
        }
        // The frame's ciphertext is as long as the plaintext, plus the GCM tag.
        self.limits.check_plaintext(
            frame
                .sealed
                .len()
                .saturating_sub(crate::seal::aead::TAG_LEN),
            index,
        )?;
        let id = item
            .id
            .ok_or_else(|| bad("an end-to-end event carries the id its seal is bound to".into()))?;
        let mut e = Event::stamp_shared(shared, DataKind::Binary, item.data);
        e.id = id;
        Ok(e)
    }
}
