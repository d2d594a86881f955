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
mod queue;
mod subscription;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use clock::Clock;
pub use queue::{DeadLetter, Delivery, OnFull, Queue, QueueConfig, QueueStats};
pub use subscription::{Item, Subscription};

use crate::envelope::{self, Attributes, DataKind, Event};
use crate::error::{Action, Error, Result};
use crate::pattern::{Pattern, PatternSet};
use crate::policy::{self, Policy};
use crate::schema::SchemaRegistry;

/// Router-wide settings.
#[derive(Debug, Clone, Default)]
pub struct RouterConfig {
    /// Accept event types that have no registered schema (data is then only checked
    /// to be well-formed JSON).
    pub allow_schemaless: bool,
}

/// One event as a producer hands it over.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: DataKind,
    pub data: Vec<u8>,
}

/// What a publish returns per accepted event.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: String,
    pub time: String,
    pub schema_version: Option<u32>,
    /// How many subscriptions it was queued for.
    pub routed: usize,
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
    /// Subscriptions without a content pattern: every event of the type.
    all: Vec<Arc<Subscription>>,
    /// Subscriptions with a pattern, keyed by id.
    patterned: PatternSet<u64>,
    by_id: HashMap<u64, Arc<Subscription>>,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub published: AtomicU64,
    pub refused_policy: AtomicU64,
    pub refused_schema: AtomicU64,
    pub refused_backpressure: AtomicU64,
    pub routed: AtomicU64,
    pub unrouted: AtomicU64,
}

#[derive(Debug)]
pub struct Router {
    pub policy: Policy,
    pub schemas: SchemaRegistry,
    pub counters: Counters,
    config: RouterConfig,
    clock: Clock,
    subs: RwLock<HashMap<u64, Arc<Subscription>>>,
    routes: RwLock<HashMap<String, Arc<TypeRoute>>>,
    /// Bumped by every subscribe, unsubscribe and policy change; stale routes rebuild.
    generation: AtomicU64,
    next_sub: AtomicU64,
    /// Serialises the queue step between producers so check-then-push is atomic;
    /// consumers never take it.
    enqueue: Mutex<()>,
}

/// Pattern keys that would look inside sealed data.
fn is_sealed_key(k: &str) -> bool {
    matches!(k, "data" | "data_base64")
}

fn poisoned(what: &str) -> Error {
    Error::Closed {
        what: format!("{what} (a thread panicked holding its lock)"),
    }
}

impl Router {
    pub fn new(config: RouterConfig, clock: Clock) -> Self {
        Router {
            policy: Policy::new(),
            schemas: SchemaRegistry::new(),
            counters: Counters::default(),
            config,
            clock,
            subs: RwLock::new(HashMap::new()),
            routes: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(1),
            next_sub: AtomicU64::new(1),
            enqueue: Mutex::new(()),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
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
    ) -> Result<Arc<Subscription>> {
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
        if cfg.max_pending == 0 {
            return Err(Error::InvalidArgument {
                name: "max_pending".into(),
                reason: "must be at least 1".into(),
            });
        }
        if cfg.max_deliveries == 0 {
            return Err(Error::InvalidArgument {
                name: "max_deliveries".into(),
                reason: "must be at least 1".into(),
            });
        }
        let id = self.next_sub.fetch_add(1, Ordering::AcqRel);
        let name = name.unwrap_or_else(|| format!("{principal}-{id}"));
        let sub = Arc::new(Subscription::new(
            id,
            name,
            principal.to_owned(),
            types,
            pattern,
            cfg,
            self.clock.clone(),
        ));
        self.subs
            .write()
            .map_err(|_| poisoned("subscriptions"))?
            .insert(id, sub.clone());
        self.invalidate_routes();
        Ok(sub)
    }

    pub fn unsubscribe(&self, id: u64) -> Result<bool> {
        let removed = self
            .subs
            .write()
            .map_err(|_| poisoned("subscriptions"))?
            .remove(&id);
        if let Some(s) = &removed {
            s.close();
            self.invalidate_routes();
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
            all: Vec::new(),
            patterned: PatternSet::new(),
            by_id: HashMap::new(),
        };
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
                None => route.all.push(s.clone()),
                Some(p) => {
                    route.patterned.insert(s.id, p.clone());
                    route.by_id.insert(s.id, s.clone());
                }
            }
        }
        drop(subs);
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
        self.policy.authenticate(principal, token)?;
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
            Err(Error::SchemaNotFound { .. })
                if self.config.allow_schemaless && version.is_none() =>
            {
                None
            }
            Err(e) => {
                self.counters
                    .refused_schema
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                return Err(e);
            }
        };
        let stamp = envelope::now();
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
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
                    let value: serde_json::Value = serde_json::from_slice(&item.data)
                        .map_err(|e| fail(format!("data is not JSON: {e}")))?;
                    if let Some(v) = &validator {
                        v.validate(&value, index).inspect_err(|_| {
                            self.counters.refused_schema.fetch_add(1, Ordering::Relaxed);
                        })?;
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
            let mut e = Event::stamp(
                principal,
                event_type,
                attrs,
                item.kind,
                item.data,
                stamp.clone(),
            );
            e.schema_version = validator.as_ref().map(|v| v.version());
            out.push(e);
        }
        Ok(out)
    }

    /// Which subscriptions each event goes to (indices into the returned list).
    fn targets(&self, events: &[Event]) -> Result<(Vec<Arc<Subscription>>, Vec<Vec<usize>>)> {
        let mut subs: Vec<Arc<Subscription>> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut per_event = Vec::with_capacity(events.len());
        let mut matched = Vec::new();
        let mut route: Option<(String, Arc<TypeRoute>)> = None;
        for e in events {
            let r = match &route {
                Some((t, r)) if *t == e.event_type => r.clone(),
                _ => {
                    let r = self.route_for(&e.event_type)?;
                    route = Some((e.event_type.clone(), r.clone()));
                    r
                }
            };
            let mut mine = Vec::with_capacity(r.all.len());
            let mut add = |s: &Arc<Subscription>| {
                let i = *index.entry(s.id).or_insert_with(|| {
                    subs.push(s.clone());
                    subs.len() - 1
                });
                mine.push(i);
            };
            r.all.iter().for_each(&mut add);
            if !r.patterned.is_empty() {
                matched.clear();
                let json = e.to_json_bytes(e.data_kind == DataKind::Json);
                r.patterned.matches_json(&json, &mut matched)?;
                matched.sort_unstable();
                for id in &matched {
                    if let Some(s) = r.by_id.get(id) {
                        add(s);
                    }
                }
            }
            per_event.push(mine);
        }
        Ok((subs, per_event))
    }

    /// Route a prepared batch into the queues under each queue's backpressure policy.
    /// `block_timeout` bounds how long a `block` queue may make the caller wait (None:
    /// forever). Call with the GIL released.
    pub fn enqueue(
        &self,
        events: Vec<Event>,
        block_timeout: Option<Duration>,
    ) -> std::result::Result<Vec<Receipt>, Refused> {
        let refused = |error: Error, receipts: Vec<Receipt>| Refused { error, receipts };
        let (subs, per_event) = match self.targets(&events) {
            Ok(t) => t,
            Err(e) => return Err(refused(e, Vec::new())),
        };
        let items: Vec<Item> = events.into_iter().map(Arc::new).collect();
        let deadline = block_timeout.map(|t| Instant::now() + t);
        // A batch larger than some blocking queue can never fit at once: go one by one.
        let mut need = vec![0usize; subs.len()];
        for t in &per_event {
            for &i in t {
                need[i] += 1;
            }
        }
        let too_big = subs.iter().zip(&need).any(|(s, &n)| {
            s.config()
                .map(|c| c.on_full == OnFull::Block && n > c.max_pending)
                .unwrap_or(false)
        });
        let chunks: Vec<std::ops::Range<usize>> = if too_big {
            (0..items.len()).map(|i| i..i + 1).collect()
        } else {
            vec![0..items.len()]
        };
        let mut receipts = Vec::with_capacity(items.len());
        for range in chunks {
            if let Err(e) = self.enqueue_chunk(
                &subs,
                &per_event[range.clone()],
                &items[range.clone()],
                deadline,
            ) {
                self.counters
                    .refused_backpressure
                    .fetch_add((items.len() - receipts.len()) as u64, Ordering::Relaxed);
                let e = match e {
                    Error::Backpressure {
                        subscription,
                        pending,
                        ..
                    } => Error::Backpressure {
                        subscription,
                        pending,
                        accepted: receipts.len(),
                    },
                    other => other,
                };
                return Err(refused(e, receipts));
            }
            for (item, t) in items[range.clone()].iter().zip(&per_event[range]) {
                receipts.push(Receipt {
                    id: item.id.clone(),
                    time: item.time.clone(),
                    schema_version: item.schema_version,
                    routed: t.len(),
                });
            }
        }
        let routed: u64 = receipts.iter().map(|r| r.routed as u64).sum();
        self.counters
            .published
            .fetch_add(receipts.len() as u64, Ordering::Relaxed);
        self.counters.routed.fetch_add(routed, Ordering::Relaxed);
        let unrouted = receipts.iter().filter(|r| r.routed == 0).count();
        self.counters
            .unrouted
            .fetch_add(unrouted as u64, Ordering::Relaxed);
        Ok(receipts)
    }

    fn enqueue_chunk(
        &self,
        subs: &[Arc<Subscription>],
        per_event: &[Vec<usize>],
        items: &[Item],
        deadline: Option<Instant>,
    ) -> Result<()> {
        let mut need = vec![0usize; subs.len()];
        for t in per_event {
            for &i in t {
                need[i] += 1;
            }
        }
        loop {
            // Wait (without the enqueue lock) until every blocking queue has room.
            for (s, &n) in subs.iter().zip(&need) {
                if n == 0 || s.is_closed() {
                    continue;
                }
                let mut q = s.lock()?;
                if q.config().on_full != OnFull::Block {
                    continue;
                }
                loop {
                    let before = q.len();
                    q.expire(self.clock.now());
                    if q.len() < before {
                        s.has_room.notify_all();
                    }
                    if q.has_room(n) || s.is_closed() {
                        break;
                    }
                    let wait = match deadline {
                        Some(d) => match d.checked_duration_since(Instant::now()) {
                            Some(w) if !w.is_zero() && !self.clock.is_manual() => w,
                            _ => {
                                return Err(Error::Backpressure {
                                    subscription: s.name.clone(),
                                    pending: q.len(),
                                    accepted: 0,
                                })
                            }
                        },
                        None if self.clock.is_manual() => {
                            return Err(Error::Backpressure {
                                subscription: s.name.clone(),
                                pending: q.len(),
                                accepted: 0,
                            })
                        }
                        None => Duration::from_secs(3600),
                    };
                    // Also wake at the next ack deadline: expiry may dead-letter and free room.
                    let wait = match q.next_deadline() {
                        Some(d) => wait.min(Duration::from_nanos(
                            d.saturating_sub(self.clock.now()).max(1_000),
                        )),
                        None => wait,
                    };
                    q = s
                        .has_room
                        .wait_timeout(q, wait)
                        .map_err(|_| poisoned("queue"))?
                        .0;
                }
            }
            // Check and push atomically with respect to other producers.
            let _guard = self.enqueue.lock().map_err(|_| poisoned("router"))?;
            let mut guards = Vec::with_capacity(subs.len());
            let mut retry = false;
            for (s, &n) in subs.iter().zip(&need) {
                if n == 0 || s.is_closed() {
                    guards.push(None);
                    continue;
                }
                let mut q = s.lock()?;
                q.expire(self.clock.now());
                if !q.has_room(n) {
                    match q.config().on_full {
                        OnFull::Reject => {
                            return Err(Error::Backpressure {
                                subscription: s.name.clone(),
                                pending: q.len(),
                                accepted: 0,
                            })
                        }
                        OnFull::Block => {
                            retry = true;
                            break;
                        }
                        OnFull::DropOldest => {}
                    }
                }
                guards.push(Some(q));
            }
            if retry {
                continue;
            }
            for (item, targets) in items.iter().zip(per_event) {
                for &i in targets {
                    if let Some(q) = guards[i].as_mut() {
                        q.push(item.clone());
                    }
                }
            }
            drop(guards);
            for (s, &n) in subs.iter().zip(&need) {
                if n > 0 {
                    s.has_events.notify_all();
                }
            }
            return Ok(());
        }
    }
}
