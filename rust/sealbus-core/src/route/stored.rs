//! How the router stores one event in a log record: its cleartext attributes and its
//! data, sealed when the router seals.
//!
//! ```text
//! u8  version (2; 1 = attributes as JSON, still read)
//! u8  flags: bit 0 = data is a sealed frame, bit 1 = the subject is a sealed frame
//! u8  data kind: 0 none, 1 JSON, 2 binary
//! u32 little-endian length of the attributes
//! ... attributes (version 2: binary, below; version 1: the CloudEvents JSON object)
//! ... data (the rest of the record)
//! ```
//!
//! Version 2 attributes, every length a little-endian u16 before UTF-8 text:
//!
//! ```text
//! u8  present: bit 0 id is a UUID (16 bytes) instead of text
//!              bit 1 time is u64 ns (its RFC 3339 text is the router's) instead of text
//!              bit 2 datacontenttype is the data kind's default (no bytes)
//!              bit 3 datacontenttype, 4 dataschema, 5 subject, 6 traceparent as text
//!              bit 7 schemaversion (u32)
//! ... id, time, source, type, then the attributes present, in that order
//! ```
//!
//! A record is a fifth smaller than with JSON attributes (848 -> ~690 bytes for an
//! `OrderPlaced` event): fewer bytes to checksum, copy, write and fsync per event.
//! The log's record layer adds length and CRC32C around this (docs/FORMAT-LOG.md).

use std::sync::Arc;

use crate::envelope::{self, DataKind, Event};
use crate::error::{Error, Result};
use crate::seal::{AadFields, KeyRing};

const VERSION: u8 = 2;
const VERSION_JSON: u8 = 1;
const FLAG_SEALED: u8 = 1;
const FLAG_SUBJECT_SEALED: u8 = 1 << 1;
/// Appended to the event id in the associated data of a sealed subject: no event id
/// holds a control character, so a subject's seal never opens as an event's data
/// (nor the other way round), though both are bound to the same event.
const SUBJECT_AAD_SUFFIX: &str = "\0subject";

const UUID_ID: u8 = 1;
const NS_TIME: u8 = 1 << 1;
const DEFAULT_CT: u8 = 1 << 2;
const CT: u8 = 1 << 3;
const DATASCHEMA: u8 = 1 << 4;
const SUBJECT: u8 = 1 << 5;
const TRACEPARENT: u8 = 1 << 6;
const SCHEMAVERSION: u8 = 1 << 7;

const JSON_CT: &str = "application/json";
const BINARY_CT: &str = "application/octet-stream";

/// Length of the stored-event header (version, flags, kind, attributes length).
pub const HEADER_LEN: usize = 7;

/// One event as a stored record's payload (header, attributes, data).
pub fn encode(e: &Event, out: &mut Vec<u8>) -> Result<()> {
    let mut attrs = Vec::with_capacity(96);
    write_attributes(e, time_is_stamped(e), &mut attrs)?;
    out.extend_from_slice(&header(e, e.sealed, false, attrs.len()));
    out.extend_from_slice(&attrs);
    out.extend_from_slice(&e.data);
    Ok(())
}

/// Whether `e.time` is the text the router stamps for `e.time_ns`, so that the
/// nanoseconds alone bring it back. (The events of a publish share one time: the
/// publish path asks once per batch.)
pub fn time_is_stamped(e: &Event) -> bool {
    envelope::format_time_ns(e.time_ns).is_some_and(|t| *t == *e.time)
}

/// Append the version-2 attributes of `e`; `stamped_time`: see [`time_is_stamped`].
/// Fails only for text longer than a u16 length can say, which the envelope's own
/// limits rule out.
pub fn write_attributes(e: &Event, stamped_time: bool, out: &mut Vec<u8>) -> Result<()> {
    write_attributes_with(e, stamped_time, None, out)
}

/// The associated data of an event's sealed subject (see [`SUBJECT_AAD_SUFFIX`]).
pub fn subject_aad_id(e: &Event) -> String {
    format!("{}{SUBJECT_AAD_SUFFIX}", e.id)
}

/// [`write_attributes`], with the subject stored as `sealed_subject` (its frame,
/// see [`subject_aad_id`]) in place of its text. The record's header must then say
/// so ([`header`]).
pub fn write_attributes_with(
    e: &Event,
    stamped_time: bool,
    sealed_subject: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let uuid = uuid_bytes(&e.id);
    let default_ct = matches!(
        (e.data_kind, e.datacontenttype.as_deref()),
        (DataKind::Json, Some(JSON_CT)) | (DataKind::Binary, Some(BINARY_CT))
    );
    let mut present = 0u8;
    let mut flag = |on: bool, bit: u8| {
        if on {
            present |= bit;
        }
    };
    flag(uuid.is_some(), UUID_ID);
    flag(stamped_time, NS_TIME);
    flag(default_ct, DEFAULT_CT);
    flag(!default_ct && e.datacontenttype.is_some(), CT);
    flag(e.dataschema.is_some(), DATASCHEMA);
    flag(e.subject.is_some(), SUBJECT);
    flag(e.traceparent.is_some(), TRACEPARENT);
    flag(e.schema_version.is_some(), SCHEMAVERSION);
    out.push(present);
    match uuid {
        Some(b) => out.extend_from_slice(&b),
        None => put_text(out, "id", &e.id)?,
    }
    if stamped_time {
        out.extend_from_slice(&e.time_ns.to_le_bytes());
    } else {
        put_text(out, "time", &e.time)?;
    }
    put_text(out, "source", &e.source)?;
    put_text(out, "type", &e.event_type)?;
    if !default_ct {
        if let Some(v) = &e.datacontenttype {
            put_text(out, "datacontenttype", v)?;
        }
    }
    if let Some(v) = &e.dataschema {
        put_text(out, "dataschema", v)?;
    }
    match (sealed_subject, &e.subject) {
        (Some(frame), Some(_)) => put_bytes(out, "subject", frame)?,
        (None, Some(v)) => put_text(out, "subject", v)?,
        (_, None) => {}
    }
    if let Some(v) = &e.traceparent {
        put_text(out, "traceparent", v)?;
    }
    if let Some(v) = e.schema_version {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(())
}

fn put_text(out: &mut Vec<u8>, field: &str, v: &str) -> Result<()> {
    put_bytes(out, field, v.as_bytes())
}

fn put_bytes(out: &mut Vec<u8>, field: &str, v: &[u8]) -> Result<()> {
    let len = u16::try_from(v.len()).map_err(|_| Error::InvalidEvent {
        field: field.to_owned(),
        reason: format!("{} bytes is too long to store", v.len()),
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(v);
    Ok(())
}

/// The 16 bytes of an id in the canonical form the router draws (lowercase,
/// hyphenated), so that formatting them gives the same text back; `None` for any
/// other id, which is stored as text.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    // Where each byte's two hex digits start in `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let b: &[u8; 36] = id.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (byte, &at) in out.iter_mut().zip(&AT) {
        *byte = nibble(b[at])? << 4 | nibble(b[at + 1])?;
    }
    Some(out)
}

fn uuid_text(b: &[u8; 16]) -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::from_bytes(*b)
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// The header of a stored event whose attributes are `attrs_len` bytes long; the
/// attributes and the data follow it. `sealed`: the data is a sealed frame;
/// `subject_sealed`: so is the subject ([`write_attributes_with`]).
pub fn header(e: &Event, sealed: bool, subject_sealed: bool, attrs_len: usize) -> [u8; HEADER_LEN] {
    // Attributes are bounded by the envelope checks, far below 4 GiB.
    let len = u32::try_from(attrs_len).unwrap_or(u32::MAX).to_le_bytes();
    let kind = match e.data_kind {
        DataKind::None => 0,
        DataKind::Json => 1,
        DataKind::Binary => 2,
    };
    let mut flags = if sealed { FLAG_SEALED } else { 0 };
    if subject_sealed && e.subject.is_some() {
        flags |= FLAG_SUBJECT_SEALED;
    }
    [VERSION, flags, kind, len[0], len[1], len[2], len[3]]
}

/// Decode a stored event (version 2, or 1 from an older log); `offset` is the log
/// offset, for the error and the event. A sealed subject is opened with `keys`; one
/// whose key was destroyed is gone (`None`), like the data sealed with it.
pub fn decode_with(
    bytes: &[u8],
    offset: u64,
    segment: &str,
    keys: Option<&KeyRing>,
) -> Result<Event> {
    let bad = |reason: String| Error::LogCorrupted {
        segment: segment.to_owned(),
        offset,
        reason,
    };
    let [version, flags, kind, l0, l1, l2, l3, rest @ ..] = bytes else {
        return Err(bad("stored event shorter than its 7-byte header".into()));
    };
    let len = u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize;
    if len > rest.len() {
        return Err(bad(format!("attributes length {len} exceeds the record")));
    }
    let (attrs, data) = rest.split_at(len);
    let data_kind = match kind {
        0 => DataKind::None,
        1 => DataKind::Json,
        2 => DataKind::Binary,
        k => return Err(bad(format!("unknown data kind {k}"))),
    };
    if flags & !(FLAG_SEALED | FLAG_SUBJECT_SEALED) != 0 {
        return Err(bad(format!("unknown stored-event flags {flags:#04x}")));
    }
    let subject_sealed = flags & FLAG_SUBJECT_SEALED != 0;
    let (mut e, sealed_subject) = match *version {
        VERSION => read_attributes(attrs, data_kind, subject_sealed),
        VERSION_JSON if !subject_sealed => Event::from_stored_attributes(attrs).map(|e| (e, None)),
        VERSION_JSON => Err(invalid("subject", "sealed in a version-1 record")),
        v => return Err(bad(format!("unknown stored-event version {v}"))),
    }
    .map_err(|err| bad(format!("attributes: {err}")))?;
    e.data_kind = data_kind;
    e.data = data.to_vec();
    e.sealed = flags & FLAG_SEALED != 0;
    e.offset = Some(offset);
    if let Some(frame) = sealed_subject {
        let Some(keys) = keys else {
            return Err(bad(
                "the subject is sealed and there is no key ring to open it".into(),
            ));
        };
        e.subject = open_subject(keys, &e, &frame).map_err(|err| bad(format!("subject: {err}")))?;
    }
    Ok(e)
}

/// The subject sealed in `frame`, or `None` once its key is destroyed (shredded,
/// like the data); tampering is an error.
fn open_subject(keys: &KeyRing, e: &Event, frame: &[u8]) -> Result<Option<Arc<str>>> {
    let id = subject_aad_id(e);
    let text = match keys.open(frame, &aad_of(e, &id)) {
        Ok(text) => text,
        Err(Error::KeyDestroyed { .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    let text = String::from_utf8(text).map_err(|_| invalid("subject", "not UTF-8"))?;
    envelope::Attributes {
        subject: Some(text.clone()),
        ..envelope::Attributes::default()
    }
    .validate()?;
    Ok(Some(Arc::from(text)))
}

fn aad_of<'a>(e: &'a Event, id: &'a str) -> AadFields<'a> {
    AadFields {
        event_id: id,
        event_type: &e.event_type,
        source: &e.source,
        schema_version: e.schema_version.unwrap_or(0),
    }
}

/// Seal each event's subject (for [`write_attributes_with`]) in one call: frame `i`
/// is `buf[offs[i]..offs[i + 1]]`, empty for an event without a subject.
pub fn seal_subjects(keys: &KeyRing, events: &[Event]) -> Result<(Vec<u8>, Vec<usize>)> {
    let with: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].subject.is_some())
        .collect();
    if with.is_empty() {
        return Ok((Vec::new(), vec![0; events.len() + 1]));
    }
    let ids: Vec<String> = events.iter().map(subject_aad_id).collect();
    let aads: Vec<AadFields<'_>> = with.iter().map(|&i| aad_of(&events[i], &ids[i])).collect();
    let texts: Vec<&[u8]> = with
        .iter()
        .map(|&i| events[i].subject.as_deref().map_or(&[][..], str::as_bytes))
        .collect();
    let (frames, foffs) = keys.seal_each(&aads, &texts)?;
    let mut offs = Vec::with_capacity(events.len() + 1);
    offs.push(0);
    let mut k = 0;
    for i in 0..events.len() {
        if with.get(k) == Some(&i) {
            k += 1;
        }
        offs.push(foffs[k]);
    }
    Ok((frames, offs))
}

/// [`decode_with`] without a key ring: a record whose subject is sealed is refused.
pub fn decode(bytes: &[u8], offset: u64, segment: &str) -> Result<Event> {
    decode_with(bytes, offset, segment, None)
}

/// Version-2 attributes back into an event (without data), with the same checks as
/// any event the router accepts; and the subject's frame when `subject_sealed`.
fn read_attributes(
    bytes: &[u8],
    kind: DataKind,
    subject_sealed: bool,
) -> Result<(Event, Option<Vec<u8>>)> {
    let mut r = Reader { bytes, at: 0 };
    let present = r.take::<1>()?[0];
    let has = |bit: u8| present & bit != 0;
    let id = if has(UUID_ID) {
        uuid_text(&r.take::<16>()?)
    } else {
        r.text("id")?.to_owned()
    };
    let (time_ns, time) = if has(NS_TIME) {
        let ns = u64::from_le_bytes(r.take::<8>()?);
        let text = envelope::format_time_ns(ns).ok_or_else(|| invalid("time", "out of range"))?;
        (ns, text)
    } else {
        let text = r.text("time")?;
        (envelope::parse_time(text)?, text.to_owned())
    };
    let source = r.text("source")?;
    let event_type = r.text("type")?;
    let datacontenttype = if has(DEFAULT_CT) {
        match kind {
            DataKind::Json => Some(JSON_CT),
            DataKind::Binary => Some(BINARY_CT),
            DataKind::None => return Err(invalid("datacontenttype", "default for no data")),
        }
    } else if has(CT) {
        Some(r.text("datacontenttype")?)
    } else {
        None
    };
    let dataschema = r.optional(has(DATASCHEMA), "dataschema")?;
    let (subject, sealed_subject) = match (subject_sealed, has(SUBJECT)) {
        (false, present) => (r.optional(present, "subject")?, None),
        (true, true) => (None, Some(r.bytes("subject")?.to_vec())),
        (true, false) => return Err(invalid("subject", "flagged sealed but not stored")),
    };
    let traceparent = r.optional(has(TRACEPARENT), "traceparent")?;
    let schema_version = if has(SCHEMAVERSION) {
        Some(u32::from_le_bytes(r.take::<4>()?))
    } else {
        None
    };
    if r.at != bytes.len() {
        return Err(invalid("event", "bytes after the attributes"));
    }
    envelope::check_text("id", &id, 255)?;
    envelope::check_text("source", source, 2048)?;
    envelope::check_event_type(event_type)?;
    if let Some(ct) = datacontenttype {
        envelope::check_text("datacontenttype", ct, 255)?;
    }
    let attrs = envelope::Attributes {
        subject: subject.map(str::to_owned),
        datacontenttype: None,
        dataschema: dataschema.map(str::to_owned),
        traceparent: traceparent.map(str::to_owned),
    };
    attrs.validate()?;
    let e = Event {
        id,
        source: Arc::from(source),
        event_type: Arc::from(event_type),
        time: Arc::from(time),
        time_ns,
        datacontenttype: datacontenttype.map(Arc::from),
        dataschema: dataschema.map(Arc::from),
        subject: subject.map(Arc::from),
        traceparent: traceparent.map(Arc::from),
        data_kind: kind,
        data: Vec::new(),
        schema_version,
        sealed: false,
        offset: None,
        at_rest_key: None,
    };
    Ok((e, sealed_subject))
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidEvent {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Bounds-checked reads from the attributes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let out = self
            .bytes
            .get(self.at..self.at + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| invalid("event", "attributes cut short"))?;
        self.at += N;
        Ok(out)
    }

    fn bytes(&mut self, field: &str) -> Result<&'a [u8]> {
        let len = usize::from(u16::from_le_bytes(self.take::<2>()?));
        let b = self
            .bytes
            .get(self.at..self.at + len)
            .ok_or_else(|| invalid(field, "cut short"))?;
        self.at += len;
        Ok(b)
    }

    fn text(&mut self, field: &str) -> Result<&'a str> {
        let b = self.bytes(field)?;
        std::str::from_utf8(b).map_err(|_| invalid(field, "not UTF-8"))
    }

    fn optional(&mut self, present: bool, field: &str) -> Result<Option<&'a str>> {
        if present {
            self.text(field).map(Some)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{now, Attributes};
    use proptest::prelude::*;

    fn event(kind: DataKind, attrs: &Attributes) -> Event {
        let data = match kind {
            DataKind::Json => b"{\"a\":1}".to_vec(),
            DataKind::Binary => vec![0, 159, 255],
            DataKind::None => Vec::new(),
        };
        Event::stamp("checkout", "orders.placed", attrs, kind, data, now())
    }

    fn round_trip(e: &Event) -> Event {
        let mut buf = Vec::new();
        encode(e, &mut buf).unwrap();
        decode(&buf, 7, "s").unwrap()
    }

    /// What decoding gives back: the event as stored, at its offset.
    fn as_stored(e: &Event) -> Event {
        Event {
            offset: Some(7),
            at_rest_key: None,
            ..e.clone()
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let mut e = event(DataKind::Json, &Attributes::default());
        e.schema_version = Some(2);
        e.sealed = true;
        assert_eq!(round_trip(&e), as_stored(&e));
        let mut buf = Vec::new();
        encode(&e, &mut buf).unwrap();
        for cut in 0..buf.len() {
            if let Ok(x) = decode(&buf[..cut], 7, "s") {
                assert_eq!(x.id, e.id, "a cut inside data only shortens data");
                assert!(cut >= buf.len() - e.data.len());
            }
        }
        let mut wrong = buf.clone();
        wrong[0] = 9;
        assert!(matches!(
            decode(&wrong, 7, "s"),
            Err(Error::LogCorrupted { offset: 7, .. })
        ));
    }

    /// A record whose subject is sealed: (record bytes, the ring that sealed it).
    fn with_sealed_subject(e: &Event) -> (Vec<u8>, KeyRing) {
        let keys = KeyRing::generate().unwrap();
        let (frames, offs) = seal_subjects(&keys, std::slice::from_ref(e)).unwrap();
        let mut attrs = Vec::new();
        write_attributes_with(e, true, Some(&frames[offs[0]..offs[1]]), &mut attrs).unwrap();
        let mut r = header(e, e.sealed, true, attrs.len()).to_vec();
        r.extend_from_slice(&attrs);
        r.extend_from_slice(&e.data);
        (r, keys)
    }

    #[test]
    fn a_sealed_subject_is_not_in_the_record_and_opens_with_the_ring() {
        let subject = "customer-4711-alice@example.com";
        let attrs = Attributes {
            subject: Some(subject.into()),
            ..Attributes::default()
        };
        let mut e = event(DataKind::Json, &attrs);
        e.schema_version = Some(4);
        let (record, keys) = with_sealed_subject(&e);
        assert!(!record
            .windows(subject.len())
            .any(|w| w == subject.as_bytes()));
        assert_eq!(record[1], FLAG_SUBJECT_SEALED);
        assert_eq!(
            decode_with(&record, 7, "s", Some(&keys)).unwrap(),
            as_stored(&e)
        );
        // Without the ring, or with another, it is refused with the record's offset.
        let other = KeyRing::generate().unwrap();
        for ring in [None, Some(&other)] {
            assert!(matches!(
                decode_with(&record, 7, "s", ring),
                Err(Error::LogCorrupted { offset: 7, .. })
            ));
        }
        // The subject's seal is bound to the event, apart from its data's seal.
        let (frames, offs) = seal_subjects(&keys, std::slice::from_ref(&e)).unwrap();
        let frame = &frames[offs[0]..offs[1]];
        let id = subject_aad_id(&e);
        assert!(keys.open(frame, &aad_of(&e, &id)).is_ok());
        assert!(keys.open(frame, &aad_of(&e, &e.id)).is_err());
        // Shredded with its key, like the data.
        keys.destroy(&keys.active_key_id()).unwrap();
        let shredded = decode_with(&record, 7, "s", Some(&keys)).unwrap();
        assert_eq!(shredded.subject, None);
    }

    #[test]
    fn events_without_a_subject_seal_nothing() {
        let keys = KeyRing::generate().unwrap();
        let events = [
            event(DataKind::Json, &Attributes::default()),
            event(
                DataKind::Json,
                &Attributes {
                    subject: Some("s".into()),
                    ..Attributes::default()
                },
            ),
            event(DataKind::None, &Attributes::default()),
        ];
        let (frames, offs) = seal_subjects(&keys, &events).unwrap();
        assert_eq!(offs.len(), 4);
        assert_eq!((offs[0], offs[1]), (0, 0));
        assert_eq!(offs[3], offs[2]);
        assert_eq!(offs[2], frames.len());
        let (none, offs) = seal_subjects(&keys, &events[..1]).unwrap();
        assert_eq!((none.len(), offs), (0, vec![0, 0]));
    }

    #[test]
    fn the_router_s_events_store_their_id_and_time_as_binary() {
        let e = event(DataKind::Json, &Attributes::default());
        let mut attrs = Vec::new();
        write_attributes(&e, time_is_stamped(&e), &mut attrs).unwrap();
        assert!(time_is_stamped(&e));
        assert_eq!(
            attrs[0] & (UUID_ID | NS_TIME | DEFAULT_CT),
            UUID_ID | NS_TIME | DEFAULT_CT
        );
        // present + id + ns + source + type: no JSON keys, no text id or time.
        assert_eq!(attrs.len(), 1 + 16 + 8 + 2 + 8 + 2 + 13);
        let mut json = Vec::new();
        e.write_attributes_json(&mut json);
        assert!(
            attrs.len() * 3 < json.len(),
            "{} vs {}",
            attrs.len(),
            json.len()
        );
    }

    #[test]
    fn other_ids_times_and_content_types_are_kept_as_text() {
        let attrs = Attributes {
            subject: Some("s".into()),
            datacontenttype: Some("application/cloudevents+json".into()),
            dataschema: Some("https://example.com/s".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        };
        for kind in [DataKind::Json, DataKind::Binary, DataKind::None] {
            let mut e = event(kind, &attrs);
            for id in [
                "order-1".to_owned(),
                e.id.to_uppercase(),
                format!("{{{}}}", e.id),
                e.id.replace('-', ""),
            ] {
                e.id = id;
                assert_eq!(round_trip(&e), as_stored(&e));
            }
            // A time the router would not have written for these nanoseconds.
            e.time = Arc::from("2026-11-26T05:00:00.100+01:00");
            e.time_ns = envelope::parse_time(&e.time).unwrap();
            assert!(!time_is_stamped(&e));
            assert_eq!(round_trip(&e), as_stored(&e));
        }
        // The other kind's default content type is not the default for this kind.
        let mut e = event(DataKind::Binary, &Attributes::default());
        e.datacontenttype = Some(Arc::from(JSON_CT));
        assert_eq!(round_trip(&e), as_stored(&e));
        let mut e = event(DataKind::None, &Attributes::default());
        assert_eq!(round_trip(&e), as_stored(&e));
        e.datacontenttype = Some(Arc::from(BINARY_CT));
        assert_eq!(round_trip(&e), as_stored(&e));
    }

    #[test]
    fn version_1_records_from_older_logs_still_decode() {
        let mut e = event(DataKind::Json, &Attributes::default());
        e.schema_version = Some(3);
        let mut json = Vec::new();
        e.write_attributes_json(&mut json);
        json.push(b'}');
        let mut v1 = header(&e, false, false, json.len()).to_vec();
        v1[0] = VERSION_JSON;
        v1.extend_from_slice(&json);
        v1.extend_from_slice(&e.data);
        assert_eq!(decode(&v1, 7, "s").unwrap(), as_stored(&e));
    }

    #[test]
    fn bad_attributes_are_refused_with_the_offset() {
        let e = event(DataKind::Json, &Attributes::default());
        let mut attrs = Vec::new();
        write_attributes(&e, true, &mut attrs).unwrap();
        let record = |attrs: &[u8], kind: u8| {
            let mut r = header(&e, false, false, attrs.len()).to_vec();
            r[2] = kind;
            r.extend_from_slice(attrs);
            r
        };
        let refused = |r: &[u8]| match decode(r, 9, "seg") {
            Err(Error::LogCorrupted {
                offset: 9, segment, ..
            }) => segment == "seg",
            _ => false,
        };
        // Cut anywhere inside the attributes (the length says the whole).
        for cut in 0..attrs.len() {
            let mut r = header(&e, false, false, attrs.len()).to_vec();
            r.extend_from_slice(&attrs[..cut]);
            assert!(refused(&r), "cut {cut}");
        }
        // Bytes left over, a default content type with no data, a type of bad text.
        let mut longer = attrs.clone();
        longer.push(0);
        assert!(refused(&record(&longer, 1)));
        assert!(refused(&record(&attrs, 0)));
        let mut bad_type = attrs.clone();
        let at = 1 + 16 + 8 + 2 + 8 + 2;
        bad_type[at] = b'*';
        assert!(refused(&record(&bad_type, 1)));
        bad_type[at] = 0xff;
        assert!(refused(&record(&bad_type, 1)));
    }

    proptest! {
        /// The canonical text of any 16 bytes packs back to them; its uppercase does not.
        #[test]
        fn uuid_text_packs_back(b in any::<[u8; 16]>()) {
            let text = uuid_text(&b);
            prop_assert_eq!(uuid_bytes(&text), Some(b));
            if text.bytes().any(|c| c.is_ascii_alphabetic()) {
                prop_assert_eq!(uuid_bytes(&text.to_uppercase()), None);
            }
        }

        /// Any bytes at all decode to an event or a typed error, never a panic.
        #[test]
        fn arbitrary_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes, 0, "s");
        }

        /// A damaged record (bytes overwritten, as from a bad disk that the CRC did
        /// not catch) decodes to `LogCorrupted` or to an event that stores again as
        /// itself: never a panic, never another error (the `stored_decode` fuzz target
        /// asks the same of any bytes).
        #[test]
        fn damaged_records_fail_typed_or_round_trip(
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let attrs = Attributes { subject: Some("s".into()), ..Attributes::default() };
            let mut e = event(DataKind::Json, &attrs);
            e.schema_version = Some(1);
            let mut buf = Vec::new();
            encode(&e, &mut buf).unwrap();
            for (at, byte) in edits {
                let i = at.index(buf.len());
                buf[i] = byte;
            }
            match decode(&buf, 3, "s") {
                Ok(d) => {
                    let mut again = Vec::new();
                    encode(&d, &mut again).unwrap();
                    prop_assert_eq!(decode(&again, 3, "s").unwrap(), d);
                }
                Err(err) => {
                    let typed = matches!(err, Error::LogCorrupted { offset: 3, .. });
                    prop_assert!(typed, "{:?}", err);
                }
            }
        }

        /// Every attribute a producer can set survives the store exactly.
        #[test]
        fn round_trip_of_any_attributes(
            subject in proptest::option::of("[a-zA-Z0-9 ./é]{1,40}"),
            ct in proptest::option::of("[a-z]{1,10}/[a-z+.-]{1,20}"),
            schema in proptest::option::of("https://[a-z]{1,20}/[a-z0-9]{0,20}"),
            version in proptest::option::of(any::<u32>()),
            kind in prop_oneof![Just(DataKind::Json), Just(DataKind::Binary), Just(DataKind::None)],
            id in proptest::option::of("[ -~]{1,60}"),
            sealed in any::<bool>(),
        ) {
            let attrs = Attributes { subject, datacontenttype: ct, dataschema: schema, traceparent: None };
            let mut e = event(kind, &attrs);
            e.schema_version = version;
            e.sealed = sealed;
            if let Some(id) = id.filter(|i| !i.trim().is_empty()) {
                e.id = id;
            }
            prop_assert_eq!(round_trip(&e), as_stored(&e));
        }
    }
}
