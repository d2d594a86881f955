//! Alerts: complex event processing over the router's own decisions.
//!
//! The router tells a [`Detector`] what it decided, one call per publish *call* (a
//! batch is one observation with its count), and the detector keeps small per-subject
//! state and raises an [`Alert`] when a rule trips:
//!
//! - `rate_spike`: a producer's events in the current window exceed `rate_factor`
//!   times its moving baseline (an exponentially weighted mean over its *active*
//!   windows, so an idle night does not make the morning look like an attack), once
//!   it has `rate_warmup_windows` windows of history and the window holds at least
//!   `rate_min_events`.
//! - `refused_burst`: `refused_burst` refused publish calls (policy or schema) from
//!   one principal within `refused_window_ns`.
//! - `new_type`: a producer publishes a type it never published before, once it is
//!   older than `novelty_after_ns` (its first types are learned, not alerted).
//! - `consumer_lag`: a consumer's backlog passes `lag_limit`; it re-arms once the
//!   backlog is back under half the limit.
//! - `open_failed`: stored or delivered data failed to open (tampering), at least
//!   `open_failures` times.
//! - `signature_refused`: a bridged message's signature was refused, at least
//!   `signature_refusals` times.
//!
//! An alert of a kind about one subject is raised at most once per `cooldown_ns`
//! (refusals and failures seen meanwhile are counted into the next one). Time is
//! whatever clock the caller passes (nanoseconds, monotonic), so tests drive it.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Thresholds of the rules. [`AlertConfig::default`] suits a service publishing
/// steadily; tighten them for a demo or a test.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    pub window_ns: u64,
    pub rate_factor: f64,
    pub rate_min_events: u64,
    pub rate_warmup_windows: u32,
    /// Weight of the newest window in the moving baseline (0 < w <= 1).
    pub baseline_weight: f64,
    pub refused_burst: u32,
    pub refused_window_ns: u64,
    pub novelty_after_ns: u64,
    pub lag_limit: u64,
    pub open_failures: u64,
    pub signature_refusals: u64,
    pub cooldown_ns: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            window_ns: 1_000_000_000,
            rate_factor: 10.0,
            rate_min_events: 1_000,
            rate_warmup_windows: 5,
            baseline_weight: 0.2,
            refused_burst: 5,
            refused_window_ns: 10_000_000_000,
            novelty_after_ns: 60_000_000_000,
            lag_limit: 100_000,
            open_failures: 1,
            signature_refusals: 1,
            cooldown_ns: 60_000_000_000,
        }
    }
}

impl AlertConfig {
    /// Refuse thresholds that would make a rule meaningless.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, reason: &str| {
            Err(Error::InvalidArgument {
                name: name.into(),
                reason: reason.into(),
            })
        };
        if self.window_ns == 0 {
            return bad("window", "a window is longer than zero");
        }
        if self.rate_factor.is_nan() || self.rate_factor <= 1.0 {
            return bad("rate_factor", "a spike is more than 1x the baseline");
        }
        if self.baseline_weight.is_nan()
            || self.baseline_weight <= 0.0
            || self.baseline_weight > 1.0
        {
            return bad("baseline_weight", "a weight in (0, 1]");
        }
        if self.refused_burst == 0 {
            return bad("refused_burst", "at least one refusal");
        }
        if self.refused_window_ns == 0 {
            return bad("refused_window", "a window is longer than zero");
        }
        if self.lag_limit == 0 {
            return bad("lag_limit", "at least one event");
        }
        if self.open_failures == 0 || self.signature_refusals == 0 {
            return bad("open_failures", "at least one failure");
        }
        Ok(())
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    RateSpike,
    RefusedBurst,
    NewType,
    ConsumerLag,
    OpenFailed,
    SignatureRefused,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::RateSpike,
        AlertKind::RefusedBurst,
        AlertKind::NewType,
        AlertKind::ConsumerLag,
        AlertKind::OpenFailed,
        AlertKind::SignatureRefused,
    ];

    /// The `<kind>` of the event type `sealbus.alert.<kind>`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::RateSpike => "rate_spike",
            AlertKind::RefusedBurst => "refused_burst",
            AlertKind::NewType => "new_type",
            AlertKind::ConsumerLag => "consumer_lag",
            AlertKind::OpenFailed => "open_failed",
            AlertKind::SignatureRefused => "signature_refused",
        }
    }
}

/// One raised alert: its kind, when, about whom (a principal, a consumer, a remote
/// router), and figures (never a payload).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    pub time_ns: u64,
    pub subject: String,
    pub details: Map<String, Value>,
}

impl Alert {
    /// The event type it is published as.
    pub fn event_type(&self) -> String {
        format!("sealbus.alert.{}", self.kind.name())
    }

    /// The event's data: `{"kind", "subject", "time", ...details}` as JSON text.
    pub fn to_json(&self) -> String {
        let mut m = Map::with_capacity(self.details.len() + 3);
        m.insert("kind".into(), Value::from(self.kind.name()));
        m.insert("subject".into(), Value::from(self.subject.as_str()));
        m.insert("time".into(), Value::from(self.time_ns));
        for (k, v) in &self.details {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m).to_string()
    }
}

#[derive(Debug)]
struct Producer {
    first_ns: u64,
    window_start: u64,
    window_count: u64,
    /// Whether the current window began with the producer (partial: not a sample).
    first_window: bool,
    baseline: f64,
    windows: u32,
    types: HashSet<String>,
}

/// The rules' state. One per router; the caller serialises access.
#[derive(Debug)]
pub struct Detector {
    config: AlertConfig,
    quiet: Option<String>,
    producers: HashMap<String, Producer>,
    refusals: HashMap<String, VecDeque<u64>>,
    lagging: HashSet<String>,
    counted: HashMap<(AlertKind, String), u64>,
    last_fired: HashMap<(AlertKind, String), u64>,
    fired: Vec<Alert>,
    raised: u64,
}

impl Detector {
    /// A detector with `config`; observations of the `quiet` principal (the one that
    /// publishes the alerts) are ignored, so that alerts never raise alerts.
    pub fn new(config: AlertConfig, quiet: Option<String>) -> Result<Detector> {
        config.validate()?;
        Ok(Detector {
            config,
            quiet,
            producers: HashMap::new(),
            refusals: HashMap::new(),
            lagging: HashSet::new(),
            counted: HashMap::new(),
            last_fired: HashMap::new(),
            fired: Vec::new(),
            raised: 0,
        })
    }

    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    fn is_quiet(&self, principal: &str) -> bool {
        self.quiet.as_deref() == Some(principal)
    }

    /// Raise unless an alert of this kind about this subject was raised less than a
    /// cooldown ago. Returns whether it was raised.
    fn raise(
        &mut self,
        kind: AlertKind,
        subject: &str,
        now: u64,
        details: Map<String, Value>,
    ) -> bool {
        let key = (kind, subject.to_owned());
        if let Some(&last) = self.last_fired.get(&key) {
            if now < last.saturating_add(self.config.cooldown_ns) {
                return false;
            }
        }
        self.last_fired.insert(key, now);
        self.fired.push(Alert {
            kind,
            time_ns: now,
            subject: subject.to_owned(),
            details,
        });
        self.raised += 1;
        true
    }

    /// `count` events of `event_type` accepted from `principal` (one publish call).
    pub fn observe_publish(&mut self, principal: &str, event_type: &str, count: u64, now: u64) {
        if self.is_quiet(principal) {
            return;
        }
        let c = &self.config;
        let window = c.window_ns;
        let p = match self.producers.get_mut(principal) {
            Some(p) => p,
            None => self
                .producers
                .entry(principal.to_owned())
                .or_insert_with(|| Producer {
                    first_ns: now,
                    window_start: now,
                    window_count: 0,
                    first_window: true,
                    baseline: 0.0,
                    windows: 0,
                    types: HashSet::new(),
                }),
        };
        let mut raise: Vec<(AlertKind, Map<String, Value>)> = Vec::new();
        if !p.types.contains(event_type) {
            if now.saturating_sub(p.first_ns) >= c.novelty_after_ns {
                let mut d = Map::new();
                d.insert("type".into(), Value::from(event_type));
                d.insert("count".into(), Value::from(count));
                d.insert("known_types".into(), Value::from(p.types.len()));
                raise.push((AlertKind::NewType, d));
            }
            p.types.insert(event_type.to_owned());
        }
        if now >= p.window_start.saturating_add(window) {
            // The window closed: an active, whole window becomes a baseline sample.
            if p.window_count > 0 && !p.first_window {
                #[allow(clippy::cast_precision_loss)]
                let sample = p.window_count as f64;
                p.baseline = if p.windows == 0 {
                    sample
                } else {
                    c.baseline_weight * sample + (1.0 - c.baseline_weight) * p.baseline
                };
                p.windows = p.windows.saturating_add(1);
            }
            p.first_window = false;
            p.window_start = now - (now - p.window_start) % window;
            p.window_count = 0;
        }
        p.window_count = p.window_count.saturating_add(count);
        #[allow(clippy::cast_precision_loss)]
        let current = p.window_count as f64;
        if p.windows >= c.rate_warmup_windows
            && p.window_count >= c.rate_min_events
            && current > c.rate_factor * p.baseline
        {
            let mut d = Map::new();
            d.insert("events".into(), Value::from(p.window_count));
            d.insert("baseline".into(), Value::from(p.baseline.round()));
            d.insert("factor".into(), Value::from(c.rate_factor));
            d.insert("window_ns".into(), Value::from(window));
            d.insert("type".into(), Value::from(event_type));
            raise.push((AlertKind::RateSpike, d));
        }
        for (kind, d) in raise {
            self.raise(kind, principal, now, d);
        }
    }

    /// A publish call of `count` events from `principal` refused by `rule`
    /// (`PolicyDenied`, `ValidationError`, ...).
    pub fn observe_refused(
        &mut self,
        principal: &str,
        event_type: &str,
        rule: &str,
        count: u64,
        now: u64,
    ) {
        if self.is_quiet(principal) {
            return;
        }
        let c = &self.config;
        let (burst, span) = (
            usize::try_from(c.refused_burst).unwrap_or(usize::MAX),
            c.refused_window_ns,
        );
        let q = match self.refusals.get_mut(principal) {
            Some(q) => q,
            None => self.refusals.entry(principal.to_owned()).or_default(),
        };
        q.push_back(now);
        while q.front().is_some_and(|&t| now.saturating_sub(t) >= span) {
            q.pop_front();
        }
        while q.len() > burst {
            q.pop_front();
        }
        if q.len() >= burst {
            let mut d = Map::new();
            d.insert("refusals".into(), Value::from(q.len()));
            d.insert("window_ns".into(), Value::from(span));
            d.insert("type".into(), Value::from(event_type));
            d.insert("rule".into(), Value::from(rule));
            d.insert("count".into(), Value::from(count));
            if self.raise(AlertKind::RefusedBurst, principal, now, d) {
                if let Some(q) = self.refusals.get_mut(principal) {
                    q.clear();
                }
            }
        }
    }

    /// The backlog of the consumer `consumer` (of `principal`) is `lag` events.
    pub fn observe_lag(&mut self, consumer: &str, principal: &str, lag: u64, now: u64) {
        if self.is_quiet(principal) {
            return;
        }
        let limit = self.config.lag_limit;
        if lag > limit {
            if !self.lagging.contains(consumer) {
                self.lagging.insert(consumer.to_owned());
                let mut d = Map::new();
                d.insert("principal".into(), Value::from(principal));
                d.insert("lag".into(), Value::from(lag));
                d.insert("limit".into(), Value::from(limit));
                // Hysteresis, not the cooldown, keeps this from repeating.
                self.fired.push(Alert {
                    kind: AlertKind::ConsumerLag,
                    time_ns: now,
                    subject: consumer.to_owned(),
                    details: d,
                });
                self.raised += 1;
            }
        } else if lag <= limit / 2 {
            self.lagging.remove(consumer);
        }
    }

    fn observe_count(
        &mut self,
        kind: AlertKind,
        subject: &str,
        n: u64,
        threshold: u64,
        reason: &str,
        now: u64,
    ) {
        if n == 0 {
            return;
        }
        let key = (kind, subject.to_owned());
        let total = self.counted.entry(key.clone()).or_insert(0);
        *total = total.saturating_add(n);
        let total = *total;
        if total >= threshold {
            let mut d = Map::new();
            d.insert("failures".into(), Value::from(total));
            d.insert("reason".into(), Value::from(reason));
            if self.raise(kind, subject, now, d) {
                self.counted.remove(&key);
            }
        }
    }

    /// `n` more events whose stored or delivered data failed to open at `place`.
    pub fn observe_open_failed(&mut self, place: &str, n: u64, now: u64) {
        let t = self.config.open_failures;
        self.observe_count(
            AlertKind::OpenFailed,
            place,
            n,
            t,
            "integrity check failed",
            now,
        );
    }

    /// `n` more bridged messages from `remote` whose signature was refused.
    pub fn observe_signature_refused(&mut self, remote: &str, n: u64, now: u64) {
        let t = self.config.signature_refusals;
        self.observe_count(
            AlertKind::SignatureRefused,
            remote,
            n,
            t,
            "signature refused",
            now,
        );
    }

    /// Take the alerts raised since the last call.
    pub fn drain(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.fired)
    }

    /// Alerts raised since the detector began.
    pub fn raised(&self) -> u64 {
        self.raised
    }
}

#[cfg(test)]
mod tests;
