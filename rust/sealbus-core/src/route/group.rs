//! Many producers' publishes stored as one batch: one seal, one log append, one
//! fsync for events that arrived from different callers at about the same time (an
//! asyncio service's request handlers). Each caller keeps its own outcome: one
//! refused publish (a schema, the policy, a full queue) never fails its neighbours.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Outgoing, Receipt, Refused, Router};
use crate::envelope::{Attributes, Event};
use crate::error::Error;

/// One caller's publish, as [`Router::prepare`] takes it.
#[derive(Debug)]
pub struct Submission {
    pub principal: String,
    pub token: Vec<u8>,
    pub event_type: String,
    pub version: Option<u32>,
    pub attrs: Attributes,
    pub items: Vec<Outgoing>,
    /// Until when a `block` queue may hold this publish waiting for room (None: as
    /// long as it takes).
    pub deadline: Option<Instant>,
}

/// What one submission got: its receipts, or why (some of) it was refused, with the
/// receipts of what was queued before the refusal.
pub type Outcome = std::result::Result<Vec<Receipt>, Box<Refused>>;

fn refused(error: Error) -> Outcome {
    Err(Box::new(Refused {
        error,
        receipts: Vec::new(),
    }))
}

impl Router {
    /// Publish every submission, in order, sharing one enqueue (one group commit)
    /// between those that pass `prepare`. Outcomes come back in submission order.
    ///
    /// Each submission is prepared (authenticated, authorised, validated) alone, so
    /// a bad one is refused by itself. If the shared enqueue is refused (a full
    /// `reject` queue, a `block` timeout), what it stored stays stored and the
    /// submissions it did not store are enqueued again one by one, each under its
    /// own deadline: only those that meet the refusal alone get it.
    pub fn publish_group(&self, group: Vec<Submission>) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> =
            std::iter::repeat_with(|| None).take(group.len()).collect();
        let mut ready: Vec<(usize, Vec<Event>, Option<Instant>)> = Vec::new();
        for (i, s) in group.into_iter().enumerate() {
            match self.prepare(
                &s.principal,
                &s.token,
                &s.event_type,
                s.version,
                &s.attrs,
                s.items,
            ) {
                Ok(events) => ready.push((i, events, s.deadline)),
                Err(e) => out[i] = Some(refused(e)),
            }
        }
        if ready.len() == 1 {
            for (i, events, deadline) in ready {
                out[i] = Some(self.enqueue_until(events, deadline, Vec::new()));
            }
        } else if !ready.is_empty() {
            self.enqueue_shared(ready, &mut out);
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    refused(Error::Closed {
                        what: "a publish the router lost track of".into(),
                    })
                })
            })
            .collect()
    }

    /// One enqueue for several prepared publishes; on a refusal, the rest one by one.
    fn enqueue_shared(
        &self,
        ready: Vec<(usize, Vec<Event>, Option<Instant>)>,
        out: &mut [Option<Outcome>],
    ) {
        // The earliest deadline bounds the shared wait: no caller waits past its own.
        let deadline = ready.iter().filter_map(|r| r.2).min();
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // A refused enqueue consumes its events: keep a copy to enqueue again.
        let spare: Vec<Vec<Event>> = ready.iter().map(|r| r.1.clone()).collect();
        let all: Vec<Event> = spare.iter().flatten().cloned().collect();
        let total = all.len();
        match self.enqueue(all, timeout) {
            Ok(receipts) => {
                let mut receipts = receipts.into_iter();
                for (i, events, _) in ready {
                    out[i] = Some(Ok(receipts.by_ref().take(events.len()).collect()));
                }
            }
            Err(r) => {
                let mut accepted = r.receipts.into_iter();
                // The retries below count their own refusals.
                let left = (total - accepted.len()) as u64;
                let _ = self.counters.refused_backpressure.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |c| Some(c.saturating_sub(left)),
                );
                for ((i, _, deadline), events) in ready.into_iter().zip(spare) {
                    let got: Vec<Receipt> = accepted.by_ref().take(events.len()).collect();
                    if got.len() == events.len() {
                        out[i] = Some(Ok(got));
                        continue;
                    }
                    let rest = events.into_iter().skip(got.len()).collect();
                    out[i] = Some(self.enqueue_until(rest, deadline, got));
                }
            }
        }
    }

    /// Enqueue `events` waiting for room until `deadline`; `prior` are receipts of
    /// the same publish already stored.
    fn enqueue_until(
        &self,
        events: Vec<Event>,
        deadline: Option<Instant>,
        mut prior: Vec<Receipt>,
    ) -> Outcome {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match self.enqueue(events, timeout) {
            Ok(receipts) => {
                prior.extend(receipts);
                Ok(prior)
            }
            Err(mut r) => {
                if let Error::Backpressure { accepted, .. } = &mut r.error {
                    *accepted += prior.len();
                }
                prior.append(&mut r.receipts);
                r.receipts = prior;
                Err(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::DataKind;
    use crate::error::Action;
    use crate::route::{Clock, OnFull, QueueConfig, RouterConfig};
    use std::time::Duration;

    fn router() -> (Router, Vec<u8>) {
        let r = Router::new(RouterConfig::default(), Clock::default());
        let token = r.policy.register("p").expect("register");
        r.allow("p", Action::Publish, "t.*").expect("allow");
        r.allow("p", Action::Subscribe, "t.*").expect("allow");
        let schema = serde_json::json!({
            "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]
        });
        for t in ["t.a", "t.b"] {
            r.schemas
                .register(t, &schema, None, crate::schema::Compatibility::None)
                .expect("schema");
        }
        (r, token.to_vec())
    }

    fn submission(token: &[u8], event_type: &str, data: &[&str]) -> Submission {
        Submission {
            principal: "p".into(),
            token: token.to_vec(),
            event_type: event_type.into(),
            version: None,
            attrs: Attributes::default(),
            items: data
                .iter()
                .map(|d| Outgoing {
                    kind: DataKind::Json,
                    data: d.as_bytes().to_vec(),
                    id: None,
                    end_to_end: false,
                })
                .collect(),
            deadline: None,
        }
    }

    fn polled(r: &Router, s: &crate::route::Subscription) -> Vec<String> {
        r.poll(s, 100, Some(Duration::ZERO))
            .expect("poll")
            .iter()
            .map(|d| String::from_utf8_lossy(&d.item.data).into_owned())
            .collect()
    }

    #[test]
    fn an_invalid_publish_is_refused_alone_and_the_others_arrive_in_order() {
        let (r, token) = router();
        let all = r
            .subscribe(
                "p",
                &token,
                None,
                vec!["t.*".into()],
                None,
                QueueConfig::default(),
                None,
            )
            .expect("subscribe");
        let out = r.publish_group(vec![
            submission(&token, "t.a", &[r#"{"n":1}"#]),
            submission(&token, "t.b", &[r#"{"n":"not a number"}"#]),
            submission(&token, "t.b", &[r#"{"n":2}"#, r#"{"n":3}"#]),
            submission(b"wrong token", "t.a", &[r#"{"n":4}"#]),
        ]);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].as_ref().map(Vec::len).ok(), Some(1));
        assert!(matches!(
            out[1].as_ref().map_err(|e| &e.error),
            Err(Error::Validation { .. })
        ));
        assert_eq!(out[2].as_ref().map(Vec::len).ok(), Some(2));
        assert!(out[3].is_err());
        assert_eq!(polled(&r, &all), [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]);
    }

    #[test]
    fn a_full_reject_queue_refuses_only_the_publishes_that_do_not_fit() {
        let (r, token) = router();
        let cfg = QueueConfig {
            max_pending: 2,
            on_full: OnFull::Reject,
            ..QueueConfig::default()
        };
        let small = r
            .subscribe("p", &token, None, vec!["t.a".into()], None, cfg, None)
            .expect("subscribe");
        let b_only = r
            .subscribe(
                "p",
                &token,
                None,
                vec!["t.b".into()],
                None,
                QueueConfig::default(),
                None,
            )
            .expect("subscribe");
        let out = r.publish_group(vec![
            submission(&token, "t.a", &[r#"{"n":1}"#, r#"{"n":2}"#]),
            submission(&token, "t.b", &[r#"{"n":3}"#]),
            submission(&token, "t.a", &[r#"{"n":4}"#]),
            submission(&token, "t.b", &[r#"{"n":5}"#]),
        ]);
        assert!(out[0].is_ok() && out[1].is_ok() && out[3].is_ok());
        match &out[2] {
            Err(e) => assert!(matches!(e.error, Error::Backpressure { accepted: 0, .. })),
            Ok(_) => panic!("the third publish does not fit the full queue"),
        }
        assert_eq!(polled(&r, &small), [r#"{"n":1}"#, r#"{"n":2}"#]);
        assert_eq!(polled(&r, &b_only), [r#"{"n":3}"#, r#"{"n":5}"#]);
        assert_eq!(
            r.counters.refused_backpressure.load(Ordering::Relaxed),
            1,
            "the shared attempt's refusal is not counted on top of the retry's"
        );
        assert_eq!(r.counters.published.load(Ordering::Relaxed), 4);
    }
}
