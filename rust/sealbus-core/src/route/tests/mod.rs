//! The router end to end, in the core: which consumers an event reaches, durable
//! cursors across restarts, delivery accounting, replay and backpressure, each held
//! against a small reference model where one fits.
//!
//! Deadlines run on a manual clock, so nothing here waits on wall-clock time: a
//! redelivery is made due by moving the clock, not by sleeping.

mod backpressure;
mod deliver;
mod durable;
mod replay;
mod routing;
mod tail;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Clock, Delivery, Item, OnFull, Outgoing, QueueConfig, Receipt, Router, RouterConfig};
use crate::envelope::{Attributes, DataKind, Event};
use crate::error::{Action, Result};
use crate::log::{CursorStore, Log, LogOptions};

/// A step a test runs inside `subscribe`.
type Hook = Box<dyn FnOnce(&Router)>;

thread_local! {
    /// Run by `subscribe` on its own thread once a new durable subscription is in
    /// the routing table and the generation has moved on, before the subscription
    /// learns where the log ended: a test publishes there to force that order.
    static AFTER_NEW_GENERATION: std::cell::RefCell<Option<Hook>> =
        const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// Run by a publish on its own thread once its batch is routed and its in-flight
    /// ticket taken, before it is appended: a test subscribes there, so that the
    /// batch lands after the new subscription learnt where the log ended.
    static BEFORE_APPEND: std::cell::RefCell<Option<Hook>> =
        const { std::cell::RefCell::new(None) };
}

/// Called by a publish (see [`BEFORE_APPEND`]).
pub(super) fn before_append(router: &Router) {
    if let Some(f) = BEFORE_APPEND.with(|h| h.borrow_mut().take()) {
        f(router);
    }
}

/// Run `f` inside the next publish on this thread, between routing and appending
/// (see [`BEFORE_APPEND`]).
pub(super) fn during_next_append(f: impl FnOnce(&Router) + 'static) {
    BEFORE_APPEND.with(|h| *h.borrow_mut() = Some(Box::new(f)));
}

/// Called by `subscribe` (see [`AFTER_NEW_GENERATION`]).
pub(super) fn after_new_generation(router: &Router) {
    if let Some(f) = AFTER_NEW_GENERATION.with(|h| h.borrow_mut().take()) {
        f(router);
    }
}

/// Run `f` inside the next durable subscribe on this thread (see
/// [`AFTER_NEW_GENERATION`]).
pub(super) fn during_next_subscribe(f: impl FnOnce(&Router) + 'static) {
    AFTER_NEW_GENERATION.with(|h| *h.borrow_mut() = Some(Box::new(f)));
}

/// The principal every test publishes as.
pub(super) const WRITER: &str = "writer";

/// A router and what a test needs to drive it.
pub(super) struct Bench {
    pub router: Router,
    /// Tokens by principal name.
    pub tokens: Vec<(String, [u8; 32])>,
    /// The manual clock's nanoseconds.
    pub now: Arc<AtomicU64>,
}

impl Bench {
    /// An in-memory, schemaless router on a manual clock; `WRITER` may publish `*`.
    pub fn memory() -> Bench {
        Bench::with(RouterConfig {
            allow_schemaless: true,
            ..RouterConfig::default()
        })
    }

    /// A durable, schemaless router over the log and cursors in `dir`.
    pub fn durable(dir: &Path) -> Bench {
        let log = Log::open(&dir.join("log"), LogOptions::default()).expect("log");
        let cursors = CursorStore::open(&dir.join("cursors")).expect("cursors");
        Bench::with(RouterConfig {
            allow_schemaless: true,
            log: Some((Arc::new(log), cursors)),
            ..RouterConfig::default()
        })
    }

    pub fn with(config: RouterConfig) -> Bench {
        let now = Arc::new(AtomicU64::new(0));
        let router = Router::new(config, Clock::Manual(Arc::clone(&now)));
        let mut b = Bench {
            router,
            tokens: Vec::new(),
            now,
        };
        b.principal(WRITER);
        b.router
            .allow(WRITER, Action::Publish, "*")
            .expect("allow publish");
        b
    }

    /// Register `name` and return its token.
    pub fn principal(&mut self, name: &str) -> [u8; 32] {
        let token = self.router.policy.register(name).expect("register");
        self.tokens.push((name.to_owned(), token));
        token
    }

    pub fn token(&self, name: &str) -> [u8; 32] {
        self.tokens
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .expect("registered principal")
    }

    pub fn advance(&self, by: u64) {
        self.now.fetch_add(by, Ordering::AcqRel);
    }

    /// A non-durable subscription of `principal` to `types`.
    pub fn subscribe(
        &self,
        principal: &str,
        types: &[&str],
        pattern: Option<&str>,
        cfg: QueueConfig,
    ) -> Result<Arc<super::Subscription>> {
        let pattern = pattern.map(|p| crate::pattern::Pattern::parse_json(p).expect("pattern"));
        self.router.subscribe(
            principal,
            &self.token(principal),
            None,
            types.iter().map(|t| (*t).to_owned()).collect(),
            pattern,
            cfg,
            None,
        )
    }

    /// The durable consumer `name` of `principal` on `types`.
    pub fn durable_sub(
        &self,
        principal: &str,
        name: &str,
        types: &[&str],
        cfg: QueueConfig,
        start: super::Start,
    ) -> Result<Arc<super::Subscription>> {
        self.router.subscribe(
            principal,
            &self.token(principal),
            Some(name.to_owned()),
            types.iter().map(|t| (*t).to_owned()).collect(),
            None,
            cfg,
            Some((start, None)),
        )
    }

    /// `WRITER`'s events of `event_type`, data `{"n": n}` for each of `ns`, prepared.
    pub fn events(&self, event_type: &str, ns: &[u64]) -> Vec<Event> {
        let items = ns
            .iter()
            .map(|n| Outgoing {
                kind: DataKind::Json,
                data: format!(r#"{{"n":{n}}}"#).into_bytes(),
                id: None,
                end_to_end: false,
            })
            .collect();
        self.router
            .prepare(
                WRITER,
                &self.token(WRITER),
                event_type,
                None,
                &Attributes::default(),
                items,
            )
            .expect("prepare")
    }

    /// Publish, never waiting for room.
    pub fn publish(
        &self,
        event_type: &str,
        ns: &[u64],
    ) -> std::result::Result<Vec<Receipt>, Box<super::Refused>> {
        self.router
            .enqueue(self.events(event_type, ns), Some(Duration::ZERO))
    }

    /// Take up to `max` deliveries now.
    pub fn poll(&self, sub: &super::Subscription, max: usize) -> Vec<Delivery<Item>> {
        self.router
            .poll(sub, max, Some(Duration::ZERO))
            .expect("poll")
    }
}

/// The `n` of each delivery's `{"n": n}` data.
pub(super) fn ns(deliveries: &[Delivery<Item>]) -> Vec<u64> {
    deliveries.iter().map(|d| n_of(&d.item)).collect()
}

pub(super) fn n_of(e: &Event) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&e.data).expect("JSON data");
    v["n"].as_u64().expect("n")
}

/// A queue of `max_pending` places under `on_full`; deadlines and tries as given.
pub(super) fn queue(max_pending: usize, on_full: OnFull) -> QueueConfig {
    QueueConfig {
        max_pending,
        on_full,
        ack_timeout_ns: 1_000,
        max_deliveries: 3,
        dlq_capacity: 1_000,
        busy_poll_ns: 0,
    }
}
