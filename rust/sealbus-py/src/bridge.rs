//! Column helpers for the NATS bridge (`sealbus.nats`): a batch of events to and from
//! the CloudEvents JSON format in one call each, with the GIL released, instead of a
//! Python object and a handful of attribute reads per event.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sealbus_core::envelope::DataKind;
use sealbus_core::route::Item;
use sealbus_core::wire;

/// What `DeliveryBatch.cloudevents` returns: the JSON of the exportable events, one
/// after the other, their boundaries, and per event its index in the batch, type
/// and schema version.
pub(crate) type CloudEvents = (
    Py<PyBytes>,
    Vec<usize>,
    Vec<usize>,
    Vec<String>,
    Vec<Option<u32>>,
);

/// A delivered event as a batch holds it: the event, its attempt, and why its data
/// could not be opened (key destroyed?, reason).
pub(crate) type Delivered = (Item, u32, Option<(bool, String)>);

/// The CloudEvents JSON format of every event of a delivered batch whose data could
/// be opened (`data` holds the opened data at `offsets`). An event sealed end to end
/// keeps its frame as its data (`data_base64`: the router cannot read it, and the
/// consumers on the other side open it); an event whose key was destroyed has no
/// JSON form here and is left out.
pub(crate) fn batch_cloudevents(
    py: Python<'_>,
    opened: &[Delivered],
    data: &[u8],
    offsets: &[usize],
    end_to_end: &[usize],
) -> CloudEvents {
    let c = py.detach(|| {
        wire::cloudevents(
            opened
                .iter()
                .map(|(item, _, unopened)| (&**item, unopened.is_none())),
            data,
            offsets,
            end_to_end,
        )
    });
    (
        PyBytes::new(py, &c.json).unbind(),
        c.bounds,
        c.index,
        c.types,
        c.versions,
    )
}

/// One run of consecutive events that share every attribute a local publish takes
/// once per call: `(end, source, kind, subject, traceparent, dataschema,
/// datacontenttype, schema version)`; `end` is one past its last event.
pub(crate) type Run = (
    usize,
    String,
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
);

fn kind_name(k: DataKind) -> &'static str {
    match k {
        DataKind::Json => "json",
        DataKind::Binary => "binary",
        DataKind::None => "none",
    }
}

/// A run as Python takes it (see [`Run`]).
pub(crate) fn run_tuple(r: wire::Run) -> Run {
    (
        r.end,
        r.source,
        kind_name(r.kind),
        r.subject,
        r.traceparent,
        r.dataschema,
        r.datacontenttype,
        r.version,
    )
}
