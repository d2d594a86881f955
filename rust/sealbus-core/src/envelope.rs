//! Immutable events with the CloudEvents 1.0 attributes, and their JSON format.
//!
//! The router stamps `id` (a `UUIDv7`, so ids sort by time) and `time` (RFC 3339, UTC).
//! `data` is kept as bytes: compact JSON text for JSON events, raw bytes otherwise, or
//! a sealed frame once the router has sealed it. Attribute rules follow the CloudEvents
//! spec: required `id`, `source`, `type`, `specversion` = "1.0"; `time` RFC 3339;
//! `traceparent` (the W3C distributed-tracing extension) `00-<32 hex>-<16 hex>-<2 hex>`.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};

pub const SPECVERSION: &str = "1.0";

/// `datacontenttype` of events sealed end to end by their producer: the data is a
/// sealed frame (docs/FORMAT.md) whose plaintext is JSON.
pub const E2E_CONTENT_TYPE: &str = "application/vnd.sealbus.e2e+json";

/// What `Event::data` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// No data.
    None,
    /// Compact JSON text.
    Json,
    /// Opaque bytes (`data_base64` in the JSON format).
    Binary,
}

/// One CloudEvents 1.0 event. Immutable once built: the binding hands out shared
/// references, never a mutable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    // The attributes every event of a publish shares are reference-counted: a batch
    // stamps them once, not once per event (an allocation and a free each).
    pub source: Arc<str>,
    pub event_type: Arc<str>,
    pub time: Arc<str>,
    /// Nanoseconds since the Unix epoch, the same instant as `time`.
    pub time_ns: u64,
    pub datacontenttype: Option<Arc<str>>,
    pub dataschema: Option<Arc<str>>,
    pub subject: Option<Arc<str>>,
    pub traceparent: Option<Arc<str>>,
    pub data_kind: DataKind,
    pub data: Vec<u8>,
    /// The schema version the data was validated against (a sealbus extension).
    pub schema_version: Option<u32>,
    /// `data` holds a sealed frame (docs/FORMAT.md), not the plaintext.
    pub sealed: bool,
    /// Position in the durable log, once stored there.
    pub offset: Option<u64>,
    /// `data` is the plaintext of an event the durable log holds sealed under this
    /// key (a durable consumer's in-memory window). Delivery still refuses it once the
    /// key is destroyed, as it would the stored frame.
    pub at_rest_key: Option<std::sync::Arc<str>>,
}

/// Optional attributes a producer may set on a publish.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub subject: Option<String>,
    pub datacontenttype: Option<String>,
    pub dataschema: Option<String>,
    pub traceparent: Option<String>,
}

/// What the events of one publish share: made once per batch, so stamping an event
/// costs reference counts instead of a copy of each attribute.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub time_ns: u64,
    pub time: Arc<str>,
    pub source: Arc<str>,
    pub event_type: Arc<str>,
    pub datacontenttype: Option<Arc<str>>,
    pub dataschema: Option<Arc<str>>,
    pub subject: Option<Arc<str>>,
    pub traceparent: Option<Arc<str>>,
    json_ct: Arc<str>,
    binary_ct: Arc<str>,
}

impl Stamp {
    pub fn new(source: &str, event_type: &str, attrs: &Attributes, time: &(u64, String)) -> Self {
        let shared = |v: &Option<String>| v.as_deref().map(Arc::from);
        Stamp {
            time_ns: time.0,
            time: Arc::from(time.1.as_str()),
            source: Arc::from(source),
            event_type: Arc::from(event_type),
            datacontenttype: shared(&attrs.datacontenttype),
            dataschema: shared(&attrs.dataschema),
            subject: shared(&attrs.subject),
            traceparent: shared(&attrs.traceparent),
            json_ct: Arc::from("application/json"),
            binary_ct: Arc::from("application/octet-stream"),
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEvent {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// A JSON string literal, exactly as `serde_json` escapes it; text with nothing to
/// escape (the usual case for attributes) is copied as is.
fn write_json_str(out: &mut Vec<u8>, v: &str) {
    // No early exit, so the check vectorises: attribute values are short and almost
    // never need escaping.
    let escapes = v.bytes().fold(0u8, |esc, b| {
        esc | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    });
    if escapes == 0 {
        out.push(b'"');
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, v);
    }
}

/// Now, in nanoseconds since the epoch, and as RFC 3339 text.
pub fn now() -> (u64, String) {
    let t = OffsetDateTime::now_utc();
    let ns = u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0);
    (ns, format_time(t))
}

fn format_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The RFC 3339 text the router stamps for an instant (`None` if out of range): what
/// [`now`] returns beside `ns`, so a stored event keeps its time as 8 bytes.
pub(crate) fn format_time_ns(ns: u64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).ok()?;
    t.format(&Rfc3339).ok()
}

/// Parse an RFC 3339 timestamp into nanoseconds since the epoch.
pub fn parse_time(text: &str) -> Result<u64> {
    let t = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| invalid("time", format!("not an RFC 3339 timestamp ({e})")))?;
    u64::try_from(t.unix_timestamp_nanos()).map_err(|_| invalid("time", "before 1970"))
}

/// A fresh time-ordered event id.
pub fn new_id() -> String {
    // Encoded straight into a buffer: `to_string` goes through the formatter, which
    // costs more than drawing the id.
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// Check a non-empty attribute of printable text.
pub(crate) fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.len() > max {
        return Err(invalid(field, format!("longer than {max} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "contains a control character"));
    }
    Ok(())
}

/// Event types are dotted names: letters, digits, `.`, `-`, `_`; no wildcards.
pub fn check_event_type(t: &str) -> Result<()> {
    check_text("type", t, 255)?;
    if let Some(c) = t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(invalid(
            "type",
            format!(
                "character {c:?} is not allowed in an event type (letters, digits, '.', '-', '_')"
            ),
        ));
    }
    Ok(())
}

/// W3C trace-context `traceparent`, version 00.
pub fn check_traceparent(v: &str) -> Result<()> {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let ok = parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "traceparent",
            "expected W3C trace context '00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>'",
        ))
    }
}

impl Attributes {
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = &self.subject {
            check_text("subject", s, 1024)?;
        }
        if let Some(s) = &self.datacontenttype {
            check_text("datacontenttype", s, 255)?;
        }
        if let Some(s) = &self.dataschema {
            check_text("dataschema", s, 2048)?;
        }
        if let Some(s) = &self.traceparent {
            check_traceparent(s)?;
        }
        Ok(())
    }
}

impl Event {
    /// A new event stamped with a fresh id and the current time.
    #[allow(clippy::needless_pass_by_value)] // callers hand over a fresh `now()`
    pub fn stamp(
        source: &str,
        event_type: &str,
        attrs: &Attributes,
        data_kind: DataKind,
        data: Vec<u8>,
        time: (u64, String),
    ) -> Event {
        Self::stamp_shared(
            &Stamp::new(source, event_type, attrs, &time),
            data_kind,
            data,
        )
    }

    /// A new event of a batch: a fresh id, the rest shared from `stamp`.
    pub fn stamp_shared(stamp: &Stamp, data_kind: DataKind, data: Vec<u8>) -> Event {
        let datacontenttype = match (&stamp.datacontenttype, data_kind) {
            (Some(ct), _) => Some(ct.clone()),
            (None, DataKind::Json) => Some(stamp.json_ct.clone()),
            (None, DataKind::Binary) => Some(stamp.binary_ct.clone()),
            (None, DataKind::None) => None,
        };
        Event {
            id: new_id(),
            source: stamp.source.clone(),
            event_type: stamp.event_type.clone(),
            time: stamp.time.clone(),
            time_ns: stamp.time_ns,
            datacontenttype,
            dataschema: stamp.dataschema.clone(),
            subject: stamp.subject.clone(),
            traceparent: stamp.traceparent.clone(),
            data_kind,
            data,
            schema_version: None,
            sealed: false,
            offset: None,
            at_rest_key: None,
        }
    }

    /// The attributes as a JSON object without `data` (what patterns see besides data).
    fn attributes_json(&self, out: &mut Vec<u8>) {
        // Keys are constants: written as they are, only values are escaped.
        let put = |out: &mut Vec<u8>, key: &[u8], v: &str| {
            out.extend_from_slice(key);
            write_json_str(out, v);
        };
        put(out, b"{\"specversion\":", SPECVERSION);
        put(out, b",\"id\":", &self.id);
        put(out, b",\"source\":", &self.source);
        put(out, b",\"type\":", &self.event_type);
        put(out, b",\"time\":", &self.time);
        for (k, v) in [
            (&b",\"datacontenttype\":"[..], &self.datacontenttype),
            (b",\"dataschema\":", &self.dataschema),
            (b",\"subject\":", &self.subject),
            (b",\"traceparent\":", &self.traceparent),
        ] {
            if let Some(v) = v {
                put(out, k, v);
            }
        }
        if let Some(v) = self.schema_version {
            out.extend_from_slice(b",\"schemaversion\":");
            // Writing into a Vec cannot fail.
            let _ = std::io::Write::write_fmt(out, format_args!("{v}"));
        }
    }

    /// The CloudEvents JSON format (structured mode) of this event, as compact bytes.
    /// Sealed data is not JSON: pass `include_data = false` to leave it out.
    pub fn to_json_bytes(&self, include_data: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(200 + self.data.len());
        self.attributes_json(&mut out);
        self.finish_json(include_data, &mut out);
        out
    }

    /// The attributes part of [`Self::to_json_bytes`], without the closing brace:
    /// written once per event and reused for matching and storing.
    pub fn write_attributes_json(&self, out: &mut Vec<u8>) {
        self.attributes_json(out);
    }

    /// The rest of [`Self::to_json_bytes`] after the attributes: the data (if
    /// `include_data`) and the closing brace.
    pub fn finish_json(&self, include_data: bool, out: &mut Vec<u8>) {
        if include_data {
            match self.data_kind {
                DataKind::Json => {
                    out.extend_from_slice(b",\"data\":");
                    out.extend_from_slice(&self.data);
                }
                DataKind::Binary => {
                    out.extend_from_slice(b",\"data_base64\":\"");
                    out.extend_from_slice(
                        base64::engine::general_purpose::STANDARD
                            .encode(&self.data)
                            .as_bytes(),
                    );
                    out.push(b'"');
                }
                DataKind::None => {}
            }
        }
        out.push(b'}');
    }

    /// Decode the attributes JSON the router itself wrote (see
    /// [`Self::write_attributes_json`]; a stored record's attributes): one typed,
    /// borrowing parse instead of the general format's `Value` tree. The same checks
    /// apply; the data and its kind come from the record, not from here.
    pub fn from_stored_attributes(bytes: &[u8]) -> Result<Event> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Stored<'a> {
            #[serde(borrow)]
            specversion: Cow<'a, str>,
            #[serde(borrow)]
            id: Cow<'a, str>,
            #[serde(borrow)]
            source: Cow<'a, str>,
            #[serde(borrow, rename = "type")]
            event_type: Cow<'a, str>,
            #[serde(borrow)]
            time: Cow<'a, str>,
            #[serde(borrow, default)]
            datacontenttype: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            dataschema: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            subject: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            traceparent: Option<Cow<'a, str>>,
            #[serde(default)]
            schemaversion: Option<u32>,
        }
        let a: Stored<'_> = serde_json::from_slice(bytes)
            .map_err(|e| invalid("event", format!("stored attributes: {e}")))?;
        if a.specversion != SPECVERSION {
            return Err(invalid("specversion", "unsupported"));
        }
        check_text("id", &a.id, 255)?;
        check_text("source", &a.source, 2048)?;
        check_event_type(&a.event_type)?;
        let own = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned);
        let attrs = Attributes {
            subject: own(a.subject),
            datacontenttype: None,
            dataschema: own(a.dataschema),
            traceparent: own(a.traceparent),
        };
        attrs.validate()?;
        Ok(Event {
            id: a.id.into_owned(),
            source: Arc::from(&*a.source),
            event_type: Arc::from(&*a.event_type),
            time_ns: parse_time(&a.time)?,
            time: Arc::from(&*a.time),
            datacontenttype: a.datacontenttype.as_deref().map(Arc::from),
            dataschema: attrs.dataschema.as_deref().map(Arc::from),
            subject: attrs.subject.as_deref().map(Arc::from),
            traceparent: attrs.traceparent.as_deref().map(Arc::from),
            data_kind: DataKind::None,
            data: Vec::new(),
            schema_version: a.schemaversion,
            sealed: false,
            offset: None,
            at_rest_key: None,
        })
    }

    /// Parse the CloudEvents JSON format. Unknown extension attributes are refused
    /// rather than dropped, so a round trip never loses information silently.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Event> {
        match Self::from_plain_json(bytes) {
            Some(e) => Ok(e),
            None => Self::from_json_general(bytes),
        }
    }

    /// Every case of [`Self::from_json_bytes`], with the precise error.
    fn from_json_general(bytes: &[u8]) -> Result<Event> {
        let not_json = |e: serde_json::Error| invalid("event", format!("not JSON: {e}"));
        // One parse keeps every member as raw JSON: `data` stays byte for byte as it
        // was written (and is not built into a tree only to be thrown away), and the
        // attributes, all short, are parsed from their raw text.
        let mut raw: std::collections::HashMap<String, Box<RawValue>> =
            match serde_json::from_slice(bytes) {
                Ok(raw) => raw,
                Err(e) => {
                    // Not JSON, or JSON but not an object: the general parse says which.
                    let v: Value = serde_json::from_slice(bytes).map_err(not_json)?;
                    if !v.is_object() {
                        return Err(invalid("event", "a CloudEvent must be a JSON object"));
                    }
                    return Err(not_json(e));
                }
            };
        let data = raw.remove("data");
        let mut map = Map::with_capacity(raw.len() + 1);
        for (k, v) in raw {
            let value: Value = serde_json::from_str(v.get()).map_err(not_json)?;
            map.insert(k, value);
        }
        if data.is_some() {
            // Present (its value is taken from the raw text below).
            map.insert("data".to_owned(), Value::Null);
        }
        Self::from_json_map(map, data.as_deref())
    }

    /// The common case of [`Self::from_json_bytes`] in one borrowing, typed parse: a
    /// well-formed event with known attributes only. None for anything else (an
    /// error, `null` where a value is required, a duplicate member), which the
    /// general parse then decides, so both give the same event or the same error.
    fn from_plain_json(bytes: &[u8]) -> Option<Event> {
        /// A member's raw JSON text; `null` counts as present, as in the general parse.
        #[derive(Default)]
        struct Member<'a>(Option<&'a RawValue>);
        impl<'de: 'a, 'a> serde::Deserialize<'de> for Member<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                <&'a RawValue as serde::Deserialize>::deserialize(d).map(|r| Member(Some(r)))
            }
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Plain<'a> {
            #[serde(borrow)]
            specversion: Cow<'a, str>,
            #[serde(borrow)]
            id: Cow<'a, str>,
            #[serde(borrow)]
            source: Cow<'a, str>,
            #[serde(borrow, rename = "type")]
            event_type: Cow<'a, str>,
            #[serde(borrow, default)]
            time: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            subject: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            datacontenttype: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            dataschema: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            traceparent: Option<Cow<'a, str>>,
            #[serde(default)]
            schemaversion: Option<u32>,
            #[serde(borrow, default)]
            data: Member<'a>,
            #[serde(borrow, default)]
            data_base64: Member<'a>,
        }
        let p: Plain<'_> = serde_json::from_slice(bytes).ok()?;
        if p.specversion != SPECVERSION {
            return None;
        }
        check_text("id", &p.id, 255).ok()?;
        check_text("source", &p.source, 2048).ok()?;
        check_event_type(&p.event_type).ok()?;
        let own = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned);
        let attrs = Attributes {
            subject: own(p.subject),
            datacontenttype: own(p.datacontenttype),
            dataschema: own(p.dataschema),
            traceparent: own(p.traceparent),
        };
        attrs.validate().ok()?;
        let (time_ns, time) = match p.time {
            Some(t) => (parse_time(&t).ok()?, t.into_owned()),
            None => now(),
        };
        let (data_kind, data) = match (p.data.0, p.data_base64.0) {
            (Some(raw), None) => (DataKind::Json, raw.get().as_bytes().to_vec()),
            (None, Some(raw)) => {
                let text: Cow<'_, str> = serde_json::from_str(raw.get()).ok()?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&*text)
                    .ok()?;
                (DataKind::Binary, bytes)
            }
            (None, None) => (DataKind::None, Vec::new()),
            (Some(_), Some(_)) => return None,
        };
        let mut e = Event::stamp(
            &p.source,
            &p.event_type,
            &attrs,
            data_kind,
            data,
            (time_ns, time),
        );
        e.id = p.id.into_owned();
        if attrs.datacontenttype.is_none() && data_kind == DataKind::None {
            e.datacontenttype = None;
        }
        e.schema_version = p.schemaversion;
        Some(e)
    }

    fn from_json_map(mut map: Map<String, Value>, raw_data: Option<&RawValue>) -> Result<Event> {
        let mut take_str = |k: &str, required: bool| -> Result<Option<String>> {
            match map.remove(k) {
                None | Some(Value::Null) if !required => Ok(None),
                None | Some(Value::Null) => Err(invalid(k, "is required")),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(invalid(k, "must be a string")),
            }
        };
        let specversion = take_str("specversion", true)?.unwrap_or_default();
        if specversion != SPECVERSION {
            return Err(invalid(
                "specversion",
                format!("unsupported {specversion:?}, expected \"1.0\""),
            ));
        }
        let id = take_str("id", true)?.unwrap_or_default();
        let source = take_str("source", true)?.unwrap_or_default();
        let event_type = take_str("type", true)?.unwrap_or_default();
        let time = take_str("time", false)?;
        let attrs = Attributes {
            subject: take_str("subject", false)?,
            datacontenttype: take_str("datacontenttype", false)?,
            dataschema: take_str("dataschema", false)?,
            traceparent: take_str("traceparent", false)?,
        };
        check_text("id", &id, 255)?;
        check_text("source", &source, 2048)?;
        check_event_type(&event_type)?;
        attrs.validate()?;
        let (time_ns, time) = match time {
            Some(t) => (parse_time(&t)?, t),
            None => now(),
        };
        let schema_version = match map.remove("schemaversion") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid("schemaversion", "must be a positive integer"))?,
            ),
        };
        let (data_kind, data) = match (map.remove("data"), map.remove("data_base64")) {
            (Some(_), Some(_)) => {
                return Err(invalid("data", "both data and data_base64 are present"))
            }
            (Some(v), None) => (
                DataKind::Json,
                match raw_data {
                    Some(r) => r.get().as_bytes().to_vec(),
                    None => serde_json::to_vec(&v).map_err(|e| invalid("data", e.to_string()))?,
                },
            ),
            (None, Some(Value::String(b))) => (
                DataKind::Binary,
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| invalid("data_base64", format!("not base64: {e}")))?,
            ),
            (None, Some(_)) => return Err(invalid("data_base64", "must be a base64 string")),
            (None, None) => (DataKind::None, Vec::new()),
        };
        if let Some(k) = map.keys().next() {
            return Err(invalid(k, "unknown attribute"));
        }
        let mut e = Event::stamp(
            &source,
            &event_type,
            &attrs,
            data_kind,
            data,
            (time_ns, time),
        );
        e.id = id;
        if attrs.datacontenttype.is_none() && data_kind == DataKind::None {
            e.datacontenttype = None;
        }
        e.schema_version = schema_version;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event::stamp(
            "checkout",
            "orders.placed",
            &Attributes {
                subject: Some("o-1".into()),
                traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
                ..Attributes::default()
            },
            DataKind::Json,
            br#"{"total":42.5,"note":"caf\u00e9 \"x\""}"#.to_vec(),
            now(),
        )
    }

    #[test]
    fn stored_attributes_decode_like_the_general_format() {
        let mut odd = sample();
        odd.source = "caf\u{e9} \"quoted\" \\ back/slash".into();
        odd.subject = None;
        odd.dataschema = Some("https://example.com/s?x=1&y=\u{2603}".into());
        odd.schema_version = Some(7);
        for e in [sample(), odd] {
            let mut attrs = Vec::new();
            e.write_attributes_json(&mut attrs);
            attrs.push(b'}');
            let fast = Event::from_stored_attributes(&attrs).unwrap();
            let general = Event::from_json_bytes(&attrs).unwrap();
            assert_eq!(fast, general);
            assert_eq!(fast.source, e.source);
            assert_eq!(fast.time_ns, e.time_ns);
            assert_eq!(fast.schema_version, e.schema_version);
            // serde_json and the fast writer agree on the escaping.
            let mut via_serde = Vec::new();
            serde_json::to_writer(&mut via_serde, &*e.source).unwrap();
            let mut ours = Vec::new();
            write_json_str(&mut ours, &e.source);
            assert_eq!(ours, via_serde);
        }
        for bad in [
            &b"{}"[..],
            br#"{"specversion":"1.0","id":"a","source":"s","type":"t","time":"2024-01-01T00:00:00Z","x":1}"#,
            br#"{"specversion":"0.3","id":"a","source":"s","type":"t","time":"2024-01-01T00:00:00Z"}"#,
            br#"{"specversion":"1.0","id":"","source":"s","type":"t","time":"2024-01-01T00:00:00Z"}"#,
        ] {
            assert!(Event::from_stored_attributes(bad).is_err());
        }
    }

    #[test]
    fn the_plain_parse_agrees_with_the_general_one() {
        let ok = r#""specversion":"1.0","id":"a-1","source":"s\u00e9","type":"orders.placed""#;
        let cases: Vec<String> = [
            "",
            r#","time":"2024-01-01T00:00:00Z","data":{"x":[1,2]}"#,
            r#","time":"2024-01-01T00:00:00.123456789+02:00","data":null"#,
            r#","time":"2024-01-01T00:00:00Z","data_base64":"AAE=","schemaversion":3"#,
            r#","time":"2024-01-01T00:00:00Z","subject":null,"traceparent":null,"data":"x""#,
            r#","time":"2024-01-01T00:00:00Z","subject":"caf\"e","datacontenttype":"text/x","data":1"#,
            r#","time":"2024-01-01T00:00:00Z","data":1,"data_base64":"AAE=""#,
            r#","time":"2024-01-01T00:00:00Z","data":1,"data_base64":null"#,
            r#","time":"2024-01-01T00:00:00Z","data_base64":null"#,
            r#","time":"2024-01-01T00:00:00Z","data_base64":"%%""#,
            r#","time":"2024-01-01T00:00:00Z","schemaversion":3.0"#,
            r#","time":"2024-01-01T00:00:00Z","schemaversion":-1"#,
            r#","time":"2024-01-01T00:00:00Z","schemaversion":null"#,
            r#","time":"not a time""#,
            r#","time":null"#,
            r#","time":"2024-01-01T00:00:00Z","extension":"x""#,
            r#","time":"2024-01-01T00:00:00Z","subject":7"#,
            r#","time":"2024-01-01T00:00:00Z","id":"b-2""#,
            r#","time":"2024-01-01T00:00:00Z","traceparent":"nope""#,
        ]
        .iter()
        .map(|tail| format!("{{{ok}{tail}}}"))
        .chain(
            [
                r#"{"specversion":"0.3","id":"a","source":"s","type":"t.x"}"#,
                r#"{"specversion":"1.0","id":null,"source":"s","type":"t.x"}"#,
                r#"{"specversion":"1.0","id":"","source":"s","type":"t.x"}"#,
                r#"{"specversion":"1.0","source":"s","type":"t.x"}"#,
                r"[1]",
                r"{",
            ]
            .map(str::to_owned),
        )
        .collect();
        for case in &cases {
            let general = Event::from_json_general(case.as_bytes());
            let plain = Event::from_plain_json(case.as_bytes());
            match (&general, plain) {
                (Ok(g), Some(p)) => {
                    let (mut g, mut p) = (g.clone(), p);
                    if !case.contains("\"time\":\"") {
                        // Stamped now: the two parses ran a moment apart.
                        g.time_ns = 0;
                        p.time_ns = 0;
                        g.time = Arc::from("");
                        p.time = Arc::from("");
                    }
                    assert_eq!(g, p, "{case}");
                }
                (Ok(_), None) => {}
                (Err(e), Some(_)) => panic!("{case}: the plain parse accepts what fails with {e}"),
                (Err(_), None) => assert!(Event::from_json_bytes(case.as_bytes()).is_err()),
            }
        }
        // The common shapes take the plain parse.
        assert!(Event::from_plain_json(cases[1].as_bytes()).is_some());
        assert!(Event::from_plain_json(cases[3].as_bytes()).is_some());
    }

    #[test]
    fn json_round_trip() {
        let e = sample();
        let bytes = e.to_json_bytes(true);
        let back = Event::from_json_bytes(&bytes).unwrap();
        assert_eq!(back.id, e.id);
        assert_eq!(back.time_ns, e.time_ns);
        assert_eq!(back.subject, e.subject);
        let a: Value = serde_json::from_slice(&back.data).unwrap();
        let b: Value = serde_json::from_slice(&e.data).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn binary_round_trip() {
        let mut e = sample();
        e.data_kind = DataKind::Binary;
        e.data = vec![0, 1, 2, 255];
        let back = Event::from_json_bytes(&e.to_json_bytes(true)).unwrap();
        assert_eq!(back.data, vec![0, 1, 2, 255]);
        assert_eq!(back.data_kind, DataKind::Binary);
    }

    #[test]
    fn refusals_name_the_field() {
        let bad = [
            (
                r#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#,
                "specversion",
            ),
            (r#"{"specversion":"1.0","source":"s","type":"t"}"#, "id"),
            (
                r#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}"#,
                "time",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"s","type":"t","traceparent":"00-1"}"#,
                "traceparent",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"s","type":"t","color":"red"}"#,
                "color",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"s","type":"a b"}"#,
                "type",
            ),
            (r"[1]", "event"),
        ];
        for (text, field) in bad {
            match Event::from_json_bytes(text.as_bytes()) {
                Err(Error::InvalidEvent { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(a < b || a[..13] == b[..13]);
    }
}
