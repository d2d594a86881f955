//! Replay: stream stored events in log order, from an offset or a time, filtered by
//! type and pattern, re-checking the reader's permission for every event and opening
//! only what it may read.

use std::sync::Arc;
use std::time::Duration;

use super::durable::matches_event;
use super::publish::aad_of;
use super::stored;
use super::Router;
use crate::envelope::Event;
use crate::error::{Action, Error, Result};
use crate::pattern::{Pattern, PatternSet};
use crate::policy;

#[derive(Debug)]
pub struct Replay {
    principal: String,
    types: Vec<String>,
    filter: Option<PatternSet<u8>>,
    next: u64,
    end: u64,
}

impl Replay {
    /// Whether every stored event has been looked at.
    pub fn is_done(&self) -> bool {
        self.next >= self.end
    }
}

impl Router {
    /// Start a replay for `principal` (authenticated by `token`) of `types` from
    /// `since_offset`, or from the first event at or after `since_time_ns`.
    pub fn replay(
        &self,
        principal: &str,
        token: &[u8],
        types: Vec<String>,
        since_offset: Option<u64>,
        since_time_ns: Option<u64>,
        pattern: Option<Pattern>,
    ) -> Result<Replay> {
        self.policy.authenticate(principal, token)?;
        let Some(log) = &self.log else {
            return Err(Error::InvalidArgument {
                name: "replay".into(),
                reason: "replay needs a durable router: Router(path=...)".into(),
            });
        };
        for t in &types {
            policy::check_glob(t)?;
            self.policy.check(principal, Action::Subscribe, t)?;
        }
        self.check_pattern_keys(pattern.as_ref())?;
        let next = match (since_offset, since_time_ns) {
            (Some(o), _) => o,
            (None, Some(t)) => log.offset_for_time(t)?,
            (None, None) => log.first_offset(),
        };
        let filter = pattern.map(|p| {
            let mut s = PatternSet::new();
            s.insert(0u8, p);
            s
        });
        Ok(Replay {
            principal: principal.to_owned(),
            types,
            filter,
            next,
            end: log.next_offset(),
        })
    }

    /// The next up to `max` events of a replay (opened), or an empty list at the end.
    pub fn replay_next(&self, r: &mut Replay, max: usize) -> Result<Vec<Arc<Event>>> {
        self.replay_next_within(r, max, None)
    }

    /// `replay_next`, returning early (perhaps with nothing) once `budget` has passed,
    /// at the end of a chunk of records: a scan through a long log that matches
    /// nothing gives its caller a chance to look for Ctrl-C. `r.is_done()` tells an
    /// early return from the end.
    pub fn replay_next_within(
        &self,
        r: &mut Replay,
        max: usize,
        budget: Option<Duration>,
    ) -> Result<Vec<Arc<Event>>> {
        let Some(log) = &self.log else {
            r.next = r.end;
            return Ok(Vec::new());
        };
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        while out.len() < max && r.next < r.end && budget.is_none_or(|b| started.elapsed() < b) {
            let records = log.read(r.next, 1024, 4 << 20)?;
            if records.is_empty() {
                break;
            }
            for rec in records {
                if rec.offset >= r.end {
                    // Nothing is left below the end (retention may have taken what was).
                    r.next = r.end;
                    break;
                }
                if out.len() >= max {
                    // The next call reads this record again: `next` has not passed it.
                    break;
                }
                r.next = rec.offset + 1;
                let e = stored::decode_with(&rec.payload, rec.offset, "", self.keys.as_deref())?;
                if !r.types.iter().any(|g| policy::glob_match(g, &e.event_type))
                    || !self
                        .policy
                        .allows(&r.principal, Action::Subscribe, &e.event_type)
                {
                    continue;
                }
                // Opened once, for the pattern and for the caller.
                let mut e = e;
                if e.sealed {
                    if let Some(keys) = &self.keys {
                        e.data = keys.open(&e.data, &aad_of(&e)).inspect_err(|err| {
                            self.count_open_failures(std::iter::once(Some(err)));
                        })?;
                        e.sealed = false;
                    }
                }
                if let Some(f) = &r.filter {
                    if !matches_event(self, f, &e)? {
                        continue;
                    }
                }
                out.push(Arc::new(e));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{CursorStore, Log, LogOptions};
    use crate::route::{Clock, Outgoing, RouterConfig};

    /// A time budget ends a replay call early (so its caller can look for Ctrl-C)
    /// without losing its place: `is_done` tells an early return from the end.
    #[test]
    fn a_budget_returns_early_and_keeps_the_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(&dir.path().join("log"), LogOptions::default()).expect("log");
        let cursors = CursorStore::open(&dir.path().join("cursors")).expect("cursors");
        let r = Router::new(
            RouterConfig {
                allow_schemaless: true,
                log: Some((Arc::new(log), cursors)),
                ..RouterConfig::default()
            },
            Clock::default(),
        );
        let token = r.policy.register("p").expect("register");
        r.allow("p", Action::Publish, "t").expect("allow");
        r.allow("p", Action::Subscribe, "t").expect("allow");
        let items = (0..5)
            .map(|i| Outgoing {
                kind: crate::envelope::DataKind::Json,
                data: format!("{i}").into_bytes(),
                id: None,
                end_to_end: false,
            })
            .collect();
        let attrs = crate::envelope::Attributes::default();
        let events = r
            .prepare("p", &token, "t", None, &attrs, items)
            .expect("prepare");
        r.enqueue(events, None).expect("enqueue");
        let mut replay = r
            .replay("p", &token, vec!["t".into()], None, None, None)
            .expect("replay");
        let none = r
            .replay_next_within(&mut replay, 10, Some(Duration::ZERO))
            .expect("early");
        assert!(none.is_empty());
        assert!(!replay.is_done());
        let all = r.replay_next_within(&mut replay, 10, None).expect("all");
        assert_eq!(all.len(), 5);
        assert!(replay.is_done());
    }
}
