//! The bridge's message on the wire: a batch of events of one type, sealed under the
//! transit key ring and signed with the exporting router's Ed25519 identity.
//!
//! Layout (integers big-endian; columns rather than rows, so that a message of a
//! thousand events is cut with a handful of slices):
//!
//! ```text
//! magic   b"SBX1"
//! u16 + utf-8   exporting router's name
//! u16 + utf-8   event type
//! u32           number of events n
//! n x u32       schema version + 1 of each event (0: none)
//! n x u32       length of each sealed frame
//! n x u8        length of each event id
//! ids           the n event ids (ASCII), one after the other
//! frames        n transit-sealed frames (docs/FORMAT.md), one after the other
//! ```
//!
//! Frame `i` seals the event's CloudEvents JSON bound (AAD) to its id, type, schema
//! version and the exporting router's name, so no attribute but the id and type is
//! readable outside a router and no frame can be moved to another event. The
//! signature covers the NATS subject and the SHA-256 of the whole body: Ed25519
//! hashes its message twice, and hashing a large body once first (SHA-NI) and signing
//! the digest costs a tenth as much, as strong as signing the body itself.
//!
//! Encoding and opening are one call each, so that the bridge's loops hand a message
//! to Rust once rather than cutting columns in the interpreter.

use aws_lc_rs::digest;
use base64::Engine;

use std::sync::Arc;

use crate::envelope::{DataKind, Event};
use crate::error::{Error, Result};
use crate::identity::{self, Signer};
use crate::seal::{AadFields, BatchJob, KeyRing};

pub const MAGIC: &[u8; 4] = b"SBX1";
/// Domain separation of what the signature covers.
const DOMAIN: &[u8] = b"sealbus.bridge.v1\x00sha256\x00";
/// More events than this in one message is refused before anything is allocated.
pub const MAX_EVENTS: usize = 1_000_000;

/// The NATS subject events of `event_type` are published on.
pub fn subject_of(event_type: &str) -> String {
    format!("sealbus.{event_type}")
}

/// What the signature covers: the domain, the subject and the SHA-256 of the body.
pub fn signed_bytes(subject: &str, body: &[u8]) -> Vec<u8> {
    let hash = digest::digest(&digest::SHA256, body);
    let mut out = Vec::with_capacity(DOMAIN.len() + subject.len() + 1 + 32);
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(subject.as_bytes());
    out.push(0);
    out.extend_from_slice(hash.as_ref());
    out
}

fn wire(reason: &'static str, offset: usize, detail: impl Into<String>) -> Error {
    Error::Wire {
        reason,
        offset,
        detail: detail.into(),
    }
}

/// An encoded message: its body, its `Nats-Msg-Id` and its signature (base64, the
/// `Sealbus-Signature` header).
#[derive(Debug)]
pub struct Encoded {
    pub body: Vec<u8>,
    pub msg_id: String,
    pub signature: String,
}

/// The CloudEvents JSON of a batch's events, one after the other: what a message's
/// frames seal. `json[bounds[k]..bounds[k + 1]]` is the k-th exportable event,
/// `index[k]` its place in the batch, with its type and schema version.
#[derive(Debug, Default)]
pub struct CloudEvents {
    pub json: Vec<u8>,
    pub bounds: Vec<usize>,
    pub index: Vec<usize>,
    pub types: Vec<String>,
    pub versions: Vec<Option<u32>>,
}

/// The CloudEvents JSON of every event of a delivered batch whose data could be
/// opened (`opened`; its data is `data[offsets[j]..offsets[j + 1]]`). An event sealed
/// end to end (`end_to_end`, ascending) keeps its frame as its data (`data_base64`:
/// no router can read it, the consumers on the other side open it); an event whose
/// data could not be opened (its key destroyed) has no JSON form and is left out.
pub fn cloudevents<'a>(
    events: impl ExactSizeIterator<Item = (&'a Event, bool)>,
    data: &[u8],
    offsets: &[usize],
    end_to_end: &[usize],
) -> CloudEvents {
    let n = events.len();
    let mut out = CloudEvents {
        json: Vec::with_capacity(data.len() + 256 * n),
        bounds: Vec::with_capacity(n + 1),
        index: Vec::with_capacity(n),
        types: Vec::with_capacity(n),
        versions: Vec::with_capacity(n),
    };
    out.bounds.push(0);
    for (j, (event, opened)) in events.enumerate() {
        if !opened && end_to_end.binary_search(&j).is_err() {
            continue;
        }
        if event.sealed {
            // Sealed at rest: the JSON carries the opened data.
            let mut e = event.clone();
            e.sealed = false;
            e.data = data[offsets[j]..offsets[j + 1]].to_vec();
            e.write_attributes_json(&mut out.json);
            e.finish_json(true, &mut out.json);
        } else {
            event.write_attributes_json(&mut out.json);
            event.finish_json(true, &mut out.json);
        }
        out.bounds.push(out.json.len());
        out.index.push(j);
        out.types.push(event.event_type.to_string());
        out.versions.push(event.schema_version);
    }
    out
}

/// Consecutive events of an opened message that share every attribute a local
/// publish takes once per call, and their schema version: the importer publishes a
/// run as one batch. `end` is one past its last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub end: usize,
    pub source: String,
    pub kind: DataKind,
    pub subject: Option<String>,
    pub traceparent: Option<String>,
    pub dataschema: Option<String>,
    pub datacontenttype: Option<String>,
    pub version: Option<u32>,
}

/// An opened message's events cut into [`Run`]s: their data one after the other
/// (`data[bounds[i]..bounds[i + 1]]`) and each event's `time` as its producer
/// stamped it.
#[derive(Debug, Default)]
pub struct Cut {
    pub runs: Vec<Run>,
    pub data: Vec<u8>,
    pub bounds: Vec<usize>,
    pub times: Vec<String>,
}

fn same_run(a: &Event, b: &Event) -> bool {
    a.source == b.source
        && a.data_kind == b.data_kind
        && a.subject == b.subject
        && a.traceparent == b.traceparent
        && a.dataschema == b.dataschema
        && a.datacontenttype == b.datacontenttype
}

/// Parse the `offsets.len() - 1` CloudEvents (JSON format) laid out in `buffer`, check
/// that event `i` has id `ids[i]` and type `event_type`, and cut them into runs (the
/// schema version of event `i` is `versions[i]`). An event that does not parse or does
/// not match is refused as `InvalidEvent`, naming its index.
pub fn runs<S: AsRef<str>>(
    buffer: &[u8],
    offsets: &[usize],
    ids: &[S],
    event_type: &str,
    versions: &[Option<u32>],
) -> Result<Cut> {
    let n = offsets.len().saturating_sub(1);
    let bad = |i: usize, reason: String| Error::InvalidEvent {
        field: format!("event[{i}]"),
        reason,
    };
    if ids.len() != n || versions.len() != n {
        return Err(Error::InvalidArgument {
            name: "ids".into(),
            reason: "one id and one schema version per event".into(),
        });
    }
    let text = |v: Option<&Arc<str>>| v.map(ToString::to_string);
    let mut cut = Cut {
        runs: Vec::new(),
        data: Vec::with_capacity(buffer.len()),
        bounds: Vec::with_capacity(n + 1),
        times: Vec::with_capacity(n),
    };
    cut.bounds.push(0);
    let mut prev: Option<Event> = None;
    for i in 0..n {
        let (from, to) = (offsets[i], offsets[i + 1]);
        if from > to || to > buffer.len() {
            return Err(bad(i, "out of the buffer".into()));
        }
        let e = Event::from_json_bytes(&buffer[from..to]).map_err(|e| bad(i, e.to_string()))?;
        if e.id != ids[i].as_ref() || &*e.event_type != event_type {
            return Err(bad(i, "does not match its header".into()));
        }
        cut.data.extend_from_slice(&e.data);
        cut.bounds.push(cut.data.len());
        cut.times.push(e.time.to_string());
        let joins = prev.as_ref().is_some_and(|p| {
            same_run(p, &e) && cut.runs.last().is_some_and(|r| r.version == versions[i])
        });
        match cut.runs.last_mut() {
            Some(run) if joins => run.end = i + 1,
            _ => cut.runs.push(Run {
                end: i + 1,
                source: e.source.to_string(),
                kind: e.data_kind,
                subject: text(e.subject.as_ref()),
                traceparent: text(e.traceparent.as_ref()),
                dataschema: text(e.dataschema.as_ref()),
                datacontenttype: text(e.datacontenttype.as_ref()),
                version: versions[i],
            }),
        }
        prev = Some(Event {
            data: Vec::new(),
            ..e
        });
    }
    Ok(cut)
}

/// The message carrying events `0..ids.len()` of `event_type`: their CloudEvents JSON
/// in `cloudevents` between `offsets` (`ids.len() + 1` boundaries), their ids and
/// schema versions. An id the wire cannot carry is refused before any nonce is used.
#[allow(clippy::too_many_arguments)] // the message's columns
pub fn encode<S: AsRef<str>>(
    router: &str,
    event_type: &str,
    cloudevents: &[u8],
    offsets: &[usize],
    ids: &[S],
    versions: &[Option<u32>],
    transit: &KeyRing,
    signer: &Signer,
) -> Result<Encoded> {
    let n = ids.len();
    if n == 0 || n > MAX_EVENTS || versions.len() != n || offsets.len() != n + 1 {
        return Err(Error::InvalidArgument {
            name: "ids".into(),
            reason: format!(
                "1 to {MAX_EVENTS} events, each with one schema version and two boundaries"
            ),
        });
    }
    let mut id_lens = Vec::with_capacity(n);
    for id in ids {
        let id = id.as_ref();
        let Ok(len) = u8::try_from(id.len()) else {
            return Err(wire("id", 0, "an event id is longer than 255 bytes"));
        };
        if !id.is_ascii() {
            return Err(wire("id", 0, "an event id is not ASCII"));
        }
        id_lens.push(len);
    }
    let id_bytes: usize = id_lens.iter().map(|&l| usize::from(l)).sum();
    let too_long = |what: &str| Error::InvalidArgument {
        name: what.into(),
        reason: "longer than the 65,535 bytes the wire holds".into(),
    };
    let r = u16::try_from(router.len()).map_err(|_| too_long("router"))?;
    let t = u16::try_from(event_type.len()).map_err(|_| too_long("event_type"))?;
    let aads: Vec<AadFields<'_>> = ids
        .iter()
        .zip(versions)
        .map(|(id, v)| AadFields {
            event_id: id.as_ref(),
            event_type,
            source: router,
            schema_version: v.unwrap_or(0),
        })
        .collect();
    let spans = crate::seal::aead::spans("offsets", offsets, cloudevents.len())?;
    let job = transit.seal_job(&aads, spans.into_iter().map(|s| &cloudevents[s]).collect())?;
    let frame_offsets = job.out_offsets();

    let head = 4 + 2 + router.len() + 2 + event_type.len() + 4 + 9 * n + id_bytes;
    let mut body = Vec::with_capacity(head + job.out_len());
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&r.to_be_bytes());
    body.extend_from_slice(router.as_bytes());
    body.extend_from_slice(&t.to_be_bytes());
    body.extend_from_slice(event_type.as_bytes());
    body.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    for v in versions {
        let wire_version = v.map_or(0, |v| v.saturating_add(1));
        body.extend_from_slice(&wire_version.to_be_bytes());
    }
    for w in frame_offsets.windows(2) {
        let len = u32::try_from(w[1] - w[0]).map_err(|_| too_long("frame"))?;
        body.extend_from_slice(&len.to_be_bytes());
    }
    body.extend_from_slice(&id_lens);
    for id in ids {
        body.extend_from_slice(id.as_ref().as_bytes());
    }
    debug_assert_eq!(body.len(), head);
    body.resize(head + job.out_len(), 0);
    job.run(&mut body[head..])?;

    let signature = signer.sign(&signed_bytes(&subject_of(event_type), &body));
    Ok(Encoded {
        msg_id: format!("{router}.{}.{n}", ids[0].as_ref()),
        signature: base64::engine::general_purpose::STANDARD.encode(signature),
        body,
    })
}

/// Reads a body front to back, naming the byte where it ran out.
struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.at.checked_add(n) {
            Some(end) if end <= self.body.len() => {
                let out = &self.body[self.at..end];
                self.at = end;
                Ok(out)
            }
            _ => Err(wire(
                "truncated",
                self.at,
                format!("message truncated at byte {}", self.at),
            )),
        }
    }

    fn u16(&mut self) -> Result<usize> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn text(&mut self, what: &'static str) -> Result<&'a str> {
        let len = self.u16()?;
        let raw = self.take(len)?;
        std::str::from_utf8(raw).map_err(|_| {
            let reason = if what == "router" {
                "router not UTF-8"
            } else {
                "type not UTF-8"
            };
            wire(reason, self.at, format!("{what} is not UTF-8"))
        })
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        let raw = self.take(4 * n)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// The router a message claims to come from, before its signature is checked.
pub fn peek_router(body: &[u8]) -> Result<&str> {
    let mut r = Reader { body, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(wire("magic", 0, "not a sealbus bridge message"));
    }
    r.text("router")
}

/// A message whose signature was checked and whose frames were opened: the router,
/// the type, every event's id and schema version, and their CloudEvents JSON (one
/// buffer, `ids.len() + 1` boundaries).
#[derive(Debug)]
pub struct Opened {
    pub router: String,
    pub event_type: String,
    pub ids: Vec<String>,
    pub versions: Vec<Option<u32>>,
    pub plain: Vec<u8>,
    pub offsets: Vec<usize>,
}

/// Check the signature (`signature`: the header's base64, if any) against `public`,
/// the key the caller trusts for the router [`peek_router`] names (None: not
/// trusted), then open every frame under `transit`.
pub fn open(
    subject: &str,
    body: &[u8],
    signature: Option<&str>,
    public: Option<&[u8]>,
    transit: &KeyRing,
) -> Result<Opened> {
    let router = peek_router(body)?;
    let Some(public) = public else {
        return Err(Error::SignatureRefused {
            router: router.to_owned(),
            reason: "untrusted",
            detail: format!("router {router:?} is not trusted"),
        });
    };
    let sig = signature
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_default();
    if sig.len() != identity::SIGNATURE_LEN
        || !identity::verify(public, &sig, &signed_bytes(subject, body))
    {
        return Err(Error::SignatureRefused {
            router: router.to_owned(),
            reason: "bad signature",
            detail: format!("the message on {subject} is not signed by router {router:?}"),
        });
    }
    let mut r = Reader { body, at: 4 };
    r.text("router")?;
    let event_type = r.text("type")?;
    if subject.strip_prefix("sealbus.") != Some(event_type) {
        return Err(wire(
            "subject",
            0,
            format!("type {event_type:?} published on {subject}"),
        ));
    }
    let count_at = r.at;
    let n = r.u32()? as usize;
    if n == 0 || n > MAX_EVENTS {
        return Err(wire(
            "count",
            count_at,
            format!("{n} events in one message"),
        ));
    }
    let raw_versions = r.u32s(n)?;
    let lengths = r.u32s(n)?;
    let id_lengths = r.take(n)?;
    let id_total = id_lengths.iter().map(|&l| usize::from(l)).sum();
    let id_blob = r.take(id_total)?;
    if !id_blob.is_ascii() {
        return Err(wire("id", r.at, "an event id is not ASCII"));
    }
    let mut ids = Vec::with_capacity(n);
    let mut at = 0;
    for &l in id_lengths {
        let end = at + usize::from(l);
        // ASCII, so every cut is on a character boundary.
        ids.push(String::from_utf8_lossy(&id_blob[at..end]).into_owned());
        at = end;
    }
    let versions: Vec<Option<u32>> = raw_versions.iter().map(|&v| v.checked_sub(1)).collect();
    let mut offsets = Vec::with_capacity(n + 1);
    let mut end = 0usize;
    offsets.push(0);
    for &l in &lengths {
        end = end.saturating_add(l as usize);
        offsets.push(end);
    }
    let frames = r.take(end)?;
    if r.at != body.len() {
        return Err(wire("trailing bytes", r.at, "bytes after the last frame"));
    }
    let aads: Vec<AadFields<'_>> = ids
        .iter()
        .zip(&versions)
        .map(|(id, v)| AadFields {
            event_id: id,
            event_type,
            source: router,
            schema_version: v.unwrap_or(0),
        })
        .collect();
    let job = transit.open_job(&aads, frames, &offsets)?;
    let mut plain = vec![0u8; job.out_len()];
    job.run(&mut plain)?;
    Ok(Opened {
        router: router.to_owned(),
        event_type: event_type.to_owned(),
        offsets: job.out_offsets().to_vec(),
        ids,
        versions,
        plain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ring: &KeyRing, signer: &Signer) -> Encoded {
        let a = br#"{"specversion":"1.0","id":"e-1","source":"s","type":"t.x","data":1}"#;
        let b = br#"{"specversion":"1.0","id":"e-22","source":"s","type":"t.x","data":2}"#;
        let buf = [&a[..], &b[..]].concat();
        encode(
            "shop-a",
            "t.x",
            &buf,
            &[0, a.len(), buf.len()],
            &["e-1", "e-22"],
            &[None, Some(3)],
            ring,
            signer,
        )
        .expect("encodes")
    }

    fn signer() -> Signer {
        Signer::from_seed(&[7u8; 32]).expect("seed")
    }

    #[test]
    fn a_message_opens_as_it_was_sealed() {
        let (ring, signer) = (KeyRing::generate().expect("ring"), signer());
        let m = message(&ring, &signer);
        assert_eq!(m.msg_id, "shop-a.e-1.2");
        let o = open(
            "sealbus.t.x",
            &m.body,
            Some(&m.signature),
            Some(signer.public_key()),
            &ring,
        )
        .expect("opens");
        assert_eq!(
            (o.router.as_str(), o.event_type.as_str()),
            ("shop-a", "t.x")
        );
        assert_eq!(o.ids, ["e-1", "e-22"]);
        assert_eq!(o.versions, [None, Some(3)]);
        assert!(o.plain[o.offsets[1]..o.offsets[2]].ends_with(b"\"data\":2}"));
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let (ring, signer) = (KeyRing::generate().expect("ring"), signer());
        let m = message(&ring, &signer);
        let public = signer.public_key();
        for cut in 0..m.body.len() {
            let r = open(
                "sealbus.t.x",
                &m.body[..cut],
                Some(&m.signature),
                Some(public),
                &ring,
            );
            assert!(r.is_err(), "cut at {cut}");
        }
        for at in 0..m.body.len() {
            let mut b = m.body.clone();
            b[at] ^= 0x40;
            let r = open("sealbus.t.x", &b, Some(&m.signature), Some(public), &ring);
            assert!(r.is_err(), "flip at {at}");
        }
    }

    #[test]
    fn a_wrong_subject_key_or_signature_is_a_signature_refusal() {
        let (ring, signer) = (KeyRing::generate().expect("ring"), signer());
        let m = message(&ring, &signer);
        let other = Signer::from_seed(&[8u8; 32]).expect("seed");
        let refused = |r: Result<Opened>, want: &str| match r {
            Err(Error::SignatureRefused { reason, router, .. }) => {
                assert_eq!((reason, router.as_str()), (want, "shop-a"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        let pk = Some(&signer.public_key()[..]);
        refused(
            open("sealbus.t.y", &m.body, Some(&m.signature), pk, &ring),
            "bad signature",
        );
        refused(
            open(
                "sealbus.t.x",
                &m.body,
                Some(&m.signature),
                Some(other.public_key()),
                &ring,
            ),
            "bad signature",
        );
        refused(
            open("sealbus.t.x", &m.body, None, pk, &ring),
            "bad signature",
        );
        refused(
            open("sealbus.t.x", &m.body, Some("!!"), pk, &ring),
            "bad signature",
        );
        refused(
            open("sealbus.t.x", &m.body, Some(&m.signature), None, &ring),
            "untrusted",
        );
    }

    #[test]
    fn an_id_the_wire_cannot_carry_is_refused_before_sealing() {
        let (ring, signer) = (KeyRing::generate().expect("ring"), signer());
        let long = "x".repeat(256);
        for id in [long.as_str(), "caf\u{e9}"] {
            let r = encode("r", "t", b"{}", &[0, 2], &[id], &[None], &ring, &signer);
            assert!(matches!(r, Err(Error::Wire { reason: "id", .. })), "{id}");
        }
    }

    #[test]
    fn cloudevents_leave_out_what_could_not_be_opened_and_carry_opened_data() {
        let event = |id: &str, data: &[u8], sealed: bool| {
            let mut e = Event::from_json_bytes(
                format!(
                    r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"t.x","data":0}}"#
                )
                .as_bytes(),
            )
            .expect("event");
            e.data = data.to_vec();
            e.sealed = sealed;
            e.schema_version = Some(2);
            e
        };
        // a: plain; b: sealed at rest, opened to `7`; c: its key destroyed; d: an
        // end-to-end frame the router cannot open, which still goes out.
        let (plain, at_rest, destroyed, e2e) = (
            event("a", b"1", false),
            event("b", b"frame", true),
            event("c", b"frame", true),
            event("d", b"e2e", false),
        );
        let e2e = Event {
            data_kind: crate::envelope::DataKind::Binary,
            ..e2e
        };
        let data = b"17";
        let offsets = [0, 1, 2, 2, 2];
        let opened = [true, true, false, false];
        let out = cloudevents(
            [&plain, &at_rest, &destroyed, &e2e].into_iter().zip(opened),
            data,
            &offsets,
            &[3],
        );
        assert_eq!(out.index, vec![0, 1, 3]);
        assert_eq!(out.types, vec!["t.x"; 3]);
        assert_eq!(out.versions, vec![Some(2); 3]);
        let json = |k: usize| {
            let value: serde_json::Value =
                serde_json::from_slice(&out.json[out.bounds[k]..out.bounds[k + 1]]).expect("json");
            (value["id"].clone(), value["data"].clone())
        };
        assert_eq!(json(0), (serde_json::json!("a"), serde_json::json!(1)));
        assert_eq!(json(1), (serde_json::json!("b"), serde_json::json!(7)));
        assert_eq!(json(2), (serde_json::json!("d"), serde_json::Value::Null));
        let last: serde_json::Value =
            serde_json::from_slice(&out.json[out.bounds[2]..]).expect("json");
        assert_eq!(last["data_base64"], serde_json::json!("ZTJl"));
    }

    #[test]
    fn runs_break_where_an_attribute_or_the_schema_version_changes() {
        let json = |id: &str, source: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"{id}","source":"{source}","type":"t.x","time":"2026-01-02T03:04:05Z","data":{{"n":1}}}}"#
            )
        };
        let events = [
            json("e1", "a"),
            json("e2", "a"),
            json("e3", "a"),
            json("e4", "b"),
        ];
        let buffer = events.concat();
        let mut offsets = vec![0];
        for e in &events {
            offsets.push(offsets.last().copied().unwrap_or(0) + e.len());
        }
        let ids = ["e1", "e2", "e3", "e4"];
        let cut = runs(
            buffer.as_bytes(),
            &offsets,
            &ids,
            "t.x",
            &[Some(1), Some(1), Some(2), Some(2)],
        )
        .expect("cut");
        let ends: Vec<(usize, &str, Option<u32>)> = cut
            .runs
            .iter()
            .map(|r| (r.end, r.source.as_str(), r.version))
            .collect();
        assert_eq!(
            ends,
            vec![(2, "a", Some(1)), (3, "a", Some(2)), (4, "b", Some(2))]
        );
        assert_eq!(cut.bounds.len(), 5);
        assert_eq!(&cut.data[cut.bounds[0]..cut.bounds[1]], br#"{"n":1}"#);
        assert!(cut.times.iter().all(|t| t == "2026-01-02T03:04:05Z"));
        // An event that is not the one its header names is refused by its index.
        let wrong = runs(
            buffer.as_bytes(),
            &offsets,
            &["e1", "e2", "x", "e4"],
            "t.x",
            &[None; 4],
        );
        assert!(matches!(wrong, Err(Error::InvalidEvent { field, .. }) if field == "event[2]"));
    }
}
