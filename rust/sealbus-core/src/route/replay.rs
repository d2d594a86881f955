//! Replay: stream stored events in log order, from an offset or a time, filtered by
//! type and pattern, re-checking the reader's permission for every event and opening
//! only what it may read.

use std::sync::Arc;

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
        let Some(log) = &self.log else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        while out.len() < max && r.next < r.end {
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
                        e.data = keys.open(&e.data, &aad_of(&e))?;
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
