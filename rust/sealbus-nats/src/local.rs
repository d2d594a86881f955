//! Imported events into the local router: runs of consecutive events that share a
//! producer, a type, a schema version and their attributes, each passing the local
//! policy for its remote principal and the local schema, as a local publish would.

use std::sync::Arc;

use sealbus_core::envelope::{parse_time, Attributes, DataKind, Event, E2E_CONTENT_TYPE};
use sealbus_core::error::Error;
use sealbus_core::route::{Outgoing, Router};
use sealbus_core::wire;

/// What makes consecutive imported events one local run: the remote router, the
/// type, and the attributes a publish takes once per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    pub router: Arc<str>,
    pub event_type: Arc<str>,
    pub version: Option<u32>,
    pub source: String,
    pub kind: DataKind,
    pub subject: Option<String>,
    pub traceparent: Option<String>,
    pub dataschema: Option<String>,
    pub datacontenttype: Option<String>,
}

impl RunKey {
    pub fn of(router: &Arc<str>, event_type: &Arc<str>, run: &wire::Run) -> RunKey {
        RunKey {
            router: Arc::clone(router),
            event_type: Arc::clone(event_type),
            version: run.version,
            source: run.source.clone(),
            kind: run.kind,
            subject: run.subject.clone(),
            traceparent: run.traceparent.clone(),
            dataschema: run.dataschema.clone(),
            datacontenttype: run.datacontenttype.clone(),
        }
    }

    /// The remote producer's local name, `<router>/<principal>`.
    pub fn principal(&self) -> String {
        format!("{}/{}", self.router, self.source)
    }

    /// An end-to-end frame goes in as its producer sealed it: the local router
    /// routes it on its attributes, and its consumers open it bound to `source`, the
    /// producer as its own router named it.
    pub fn end_to_end(&self) -> bool {
        self.kind == DataKind::Binary && self.datacontenttype.as_deref() == Some(E2E_CONTENT_TYPE)
    }

    fn attributes(&self) -> Attributes {
        Attributes {
            subject: self.subject.clone(),
            traceparent: self.traceparent.clone(),
            dataschema: self.dataschema.clone(),
            datacontenttype: if self.end_to_end() {
                None
            } else {
                self.datacontenttype.clone()
            },
        }
    }
}

/// A run bound for one local publish, with the messages (by index in the commit)
/// whose events it holds.
#[derive(Debug)]
pub struct LocalRun {
    pub key: RunKey,
    pub principal: String,
    /// Each event's data: slices of its message's opened buffer, copied once, into
    /// the event the router stores.
    pub parts: Vec<bytes::Bytes>,
    pub ids: Vec<String>,
    /// Each event's time as its producer stamped it: `(ns since the epoch, text)`.
    pub times: Vec<(u64, Arc<str>)>,
    pub owners: Vec<usize>,
}

impl LocalRun {
    /// An empty run of the remote producer `key` names (`<router>/<source>`).
    pub fn new(key: RunKey) -> LocalRun {
        LocalRun::of(key.principal(), key)
    }

    /// An empty run of the local principal `principal`.
    pub fn of(principal: String, key: RunKey) -> LocalRun {
        LocalRun {
            principal,
            key,
            parts: Vec::new(),
            ids: Vec::new(),
            times: Vec::new(),
            owners: Vec::new(),
        }
    }

    pub fn own(&mut self, message: usize) {
        if self.owners.last() != Some(&message) {
            self.owners.push(message);
        }
    }
}

/// The time an event's producer stamped, parsed once as its message is opened: an
/// event whose time does not parse makes its message malformed.
pub fn times(texts: Vec<String>) -> Result<Vec<(u64, Arc<str>)>, Error> {
    texts
        .into_iter()
        .map(|t| Ok((parse_time(&t)?, Arc::from(t))))
        .collect()
}

/// A run made ready for the router, or why it was refused as a whole.
#[derive(Debug, Default)]
pub struct Prepared {
    pub events: Vec<Event>,
    /// The run's refusal (policy, an invalid attribute...).
    pub refused: Option<Error>,
    /// The events the schema refused one by one, by index in the run.
    pub schema_refused: Vec<(usize, Error)>,
}

/// Check `run` as a publish of its principal (`token`) would be checked, and make
/// its events; one event the schema refuses does not take its neighbours with it.
pub fn prepare(router: &Router, token: &[u8], run: &LocalRun) -> Prepared {
    let (kind, end_to_end) = match run.key.kind {
        DataKind::Binary => (DataKind::Binary, run.key.end_to_end()),
        // An event without data crosses as an empty JSON document would.
        DataKind::Json | DataKind::None => (DataKind::Json, false),
    };
    let attrs = run.key.attributes();
    let prepare = |range: std::ops::Range<usize>| {
        let items = range
            .clone()
            .map(|i| Outgoing {
                kind,
                data: run.parts[i].to_vec(),
                id: Some(run.ids[i].clone()),
                end_to_end,
            })
            .collect();
        router
            .prepare(
                &run.principal,
                token,
                &run.key.event_type,
                run.key.version,
                &attrs,
                items,
            )
            .map(|mut events| {
                // The events keep the time their producer stamped: it is when they
                // happened, wherever they are stored again.
                for (e, (ns, text)) in events.iter_mut().zip(&run.times[range]) {
                    e.time_ns = *ns;
                    e.time = Arc::clone(text);
                }
                events
            })
    };
    let n = run.parts.len();
    match prepare(0..n) {
        Ok(events) => Prepared {
            events,
            ..Prepared::default()
        },
        Err(Error::Validation { .. }) if n > 1 => {
            let mut out = Prepared {
                events: Vec::with_capacity(n),
                ..Prepared::default()
            };
            for i in 0..n {
                match prepare(i..i + 1) {
                    Ok(mut one) => out.events.append(&mut one),
                    Err(e @ Error::Validation { .. }) => out.schema_refused.push((i, e)),
                    Err(e) => {
                        return Prepared {
                            refused: Some(e),
                            ..Prepared::default()
                        }
                    }
                }
            }
            out
        }
        Err(e @ Error::Validation { .. }) => Prepared {
            schema_refused: vec![(0, e)],
            ..Prepared::default()
        },
        Err(e) => Prepared {
            refused: Some(e),
            ..Prepared::default()
        },
    }
}

/// Which counter a local refusal goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Policy,
    Schema,
    Other,
}

impl Refusal {
    pub fn of(e: &Error) -> Refusal {
        match e {
            Error::PolicyDenied { .. } => Refusal::Policy,
            Error::SchemaInvalid { .. }
            | Error::SchemaIncompatible { .. }
            | Error::SchemaNotFound { .. }
            | Error::Validation { .. } => Refusal::Schema,
            _ => Refusal::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: DataKind, contenttype: Option<&str>) -> RunKey {
        RunKey {
            router: Arc::from("shop-a"),
            event_type: Arc::from("orders.placed"),
            version: Some(2),
            source: "checkout".into(),
            kind,
            subject: Some("o-1".into()),
            traceparent: None,
            dataschema: None,
            datacontenttype: contenttype.map(str::to_owned),
        }
    }

    #[test]
    fn an_end_to_end_frame_goes_in_as_sealed_without_its_content_type() {
        let e2e = key(DataKind::Binary, Some(E2E_CONTENT_TYPE));
        assert!(e2e.end_to_end());
        assert_eq!(e2e.attributes().datacontenttype, None);
        assert_eq!(e2e.attributes().subject.as_deref(), Some("o-1"));
        // The same content type on JSON data is only a label.
        let json = key(DataKind::Json, Some(E2E_CONTENT_TYPE));
        assert!(!json.end_to_end());
        assert_eq!(
            json.attributes().datacontenttype.as_deref(),
            Some(E2E_CONTENT_TYPE)
        );
        assert_eq!(json.principal(), "shop-a/checkout");
    }

    #[test]
    fn refusals_are_counted_by_what_refused_them() {
        let policy = Error::PolicyDenied {
            principal: "shop-a/checkout".into(),
            action: sealbus_core::error::Action::Publish,
            event_type: "orders.placed".into(),
        };
        assert_eq!(Refusal::of(&policy), Refusal::Policy);
        let closed = Error::Closed {
            what: "the router".into(),
        };
        assert_eq!(Refusal::of(&closed), Refusal::Other);
    }
}
