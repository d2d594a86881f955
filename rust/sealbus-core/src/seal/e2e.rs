//! End-to-end payload sealing (docs/FORMAT.md, mode 02).
//!
//! The producer draws a fresh 256-bit data key per batch, wraps it for each allowed
//! consumer ([`wrap`](crate::seal::wrap)), and seals the payloads into end-to-end
//! frames whose key id names the data key; the router never holds the data key. A
//! consumer opens a batch with its own X25519 key: each distinct data key is unwrapped
//! once, then every payload is opened in one [`BatchJob`].

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::seal::aad::AadFields;
use crate::seal::aead::{self, spans, AeadKey, BatchJob, Cipher, KEY_LEN};
use crate::seal::frame::{self, FrameWriter, Mode, Recipient};
use crate::seal::frames::{OpenFrames, SealFrames};
use crate::seal::nonce::{random_fill, NonceSeq, COUNTER_SPACE};
use crate::seal::wrap::{self, RecipientKey};

fn data_key(k: &[u8]) -> Result<AeadKey> {
    if k.len() != KEY_LEN {
        return Err(Error::InvalidArgument {
            name: "data_key".into(),
            reason: format!("data keys are {KEY_LEN} bytes, got {}", k.len()),
        });
    }
    AeadKey::new(k)
}

fn count_check(what: &str, got: usize, n: usize) -> Result<()> {
    if got == n {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "aads".into(),
            reason: format!("{got} attribute sets for {n} {what}"),
        })
    }
}

/// The job sealing `payloads` under `key` into frames carrying `recipients`.
/// Nonces: a random 64-bit prefix per call and a counter from 0, so even a data key
/// reused by mistake does not repeat a nonce (barring a 64-bit collision).
fn seal_under<'a>(
    key: &AeadKey,
    data_key_id: &str,
    recipients: &[Recipient<'_>],
    aads: &'a [AadFields<'a>],
    payloads: Vec<&'a [u8]>,
) -> Result<SealFrames<'a>> {
    count_check("payloads", aads.len(), payloads.len())?;
    let writer = FrameWriter::new(Mode::EndToEnd, data_key_id, recipients)?;
    let mut seq = NonceSeq::new(0, COUNTER_SPACE)?;
    let n = u64::try_from(payloads.len()).map_err(|_| Error::Seal {
        reason: "batch too large".into(),
    })?;
    let first = seq.take(n).ok_or_else(|| Error::Seal {
        reason: "batch larger than 2^32".into(),
    })?;
    Ok(SealFrames::new(
        key.cipher()?,
        data_key_id,
        writer,
        seq.prefix(),
        first,
        aads,
        payloads,
    ))
}

/// Seal a batch under `data_key_bytes` (drawn and wrapped by the caller) into
/// end-to-end frames carrying `recipients`.
pub fn seal_batch(
    data_key_bytes: &[u8],
    data_key_id: &str,
    recipients: &[Recipient<'_>],
    aads: &[AadFields<'_>],
    input: &[u8],
    offsets: &[usize],
) -> Result<(Vec<u8>, Vec<usize>)> {
    let key = data_key(data_key_bytes)?;
    let sp = spans("offsets", offsets, input.len())?;
    let payloads = sp.into_iter().map(|r| &input[r]).collect();
    seal_under(&key, data_key_id, recipients, aads, payloads)?.run_to_vec()
}

/// Plan sealing a batch of one event type for `recipients` (`(id, X25519 public
/// key)`): draws a fresh data key and its id (`dk-` + 24 hex digits), wraps the key
/// for each recipient, and returns the job writing the frames.
pub fn seal_job_for<'a>(
    recipients: &[(&str, &[u8])],
    event_type: &str,
    aads: &'a [AadFields<'a>],
    input: &'a [u8],
    offsets: &[usize],
) -> Result<SealFrames<'a>> {
    if recipients.is_empty() {
        return Err(Error::InvalidArgument {
            name: "recipients".into(),
            reason: "an end-to-end seal needs at least one recipient".into(),
        });
    }
    if let Some(i) = aads.iter().position(|a| a.event_type != event_type) {
        return Err(Error::InvalidArgument {
            name: "event_type".into(),
            reason: format!("item {i} is not a {event_type}: one batch seals one type"),
        });
    }
    let sp = spans("offsets", offsets, input.len())?;
    let payloads = sp.into_iter().map(|r| &input[r]).collect();
    let mut key_bytes = Zeroizing::new([0u8; KEY_LEN]);
    random_fill(&mut key_bytes[..])?;
    let mut id_bytes = [0u8; 12];
    random_fill(&mut id_bytes)?;
    let data_key_id: String = std::iter::once("dk-".to_owned())
        .chain(id_bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    let context = wrap::wrap_context(&data_key_id, event_type)?;
    let wraps = recipients
        .iter()
        .map(|(id, public)| wrap::wrap_data_key(&key_bytes[..], id, public, &context))
        .collect::<Result<Vec<_>>>()?;
    let entries: Vec<Recipient<'_>> = recipients
        .iter()
        .zip(&wraps)
        .map(|((id, _), w)| Recipient {
            id,
            ephemeral_public: &w.ephemeral_public,
            wrapped_key: &w.wrapped_key,
        })
        .collect();
    seal_under(
        &AeadKey::new(&key_bytes[..])?,
        &data_key_id,
        &entries,
        aads,
        payloads,
    )
}

/// Decode end-to-end frames, refusing any other mode.
fn decode_all<'a>(
    frames: &'a [u8],
    offsets: &[usize],
    n_aads: usize,
) -> Result<Vec<frame::Frame<'a>>> {
    let sp = spans("offsets", offsets, frames.len())?;
    let items: Vec<&[u8]> = sp.into_iter().map(|r| &frames[r]).collect();
    decode_each(&items, n_aads)
}

/// [`decode_all`] for frames that each sit in their own buffer.
fn decode_each<'a>(frames: &[&'a [u8]], n_aads: usize) -> Result<Vec<frame::Frame<'a>>> {
    count_check("frames", n_aads, frames.len())?;
    let mut decoded = Vec::with_capacity(frames.len());
    for (i, &item) in frames.iter().enumerate() {
        let f = frame::decode_payload(item).map_err(|e| aead::with_index(e, i))?;
        if f.mode != Mode::EndToEnd {
            return Err(Error::Frame {
                offset: 3,
                reason: format!("item {i}: an at-rest frame; open it with the key ring"),
            });
        }
        decoded.push(f);
    }
    Ok(decoded)
}

/// Open end-to-end frames that were all sealed under `data_key_id` (already unwrapped).
pub fn open_batch(
    data_key_bytes: &[u8],
    data_key_id: &str,
    aads: &[AadFields<'_>],
    frames: &[u8],
    offsets: &[usize],
) -> Result<(Vec<u8>, Vec<usize>)> {
    let key = data_key(data_key_bytes)?;
    let decoded = decode_all(frames, offsets, aads.len())?;
    if let Some((i, f)) = decoded
        .iter()
        .enumerate()
        .find(|(_, f)| f.key_id != data_key_id)
    {
        return Err(Error::Integrity {
            reason: format!(
                "item {i}: sealed under data key {}, not {data_key_id}",
                f.key_id
            ),
        });
    }
    let which = vec![0; decoded.len()];
    OpenFrames::new(decoded, which, vec![key.cipher()?], aads).run_to_vec()
}

/// Whether a frame's recipient entry `entry` may be `recipient_id`'s as a consumer
/// on another router than the producer's: `<router>/<recipient_id>`, where a router's
/// name holds no `/` (how a router names the principals of the routers it is joined
/// to, docs/FORMAT.md).
fn remote_entry_of(entry: &str, recipient_id: &str) -> bool {
    entry
        .strip_suffix(recipient_id)
        .and_then(|head| head.strip_suffix('/'))
        .is_some_and(|router| !router.is_empty() && !router.contains('/'))
}

/// The data key wrapped for `recipient_id`: its own entry, else an entry for it as
/// named on the producer's router (`<router>/<recipient_id>`). The unwrap binds the
/// entry's id and needs the recipient's private key, so trying another router's
/// entry of the same name cannot open a key wrapped for someone else.
fn unwrap_for(
    key: &RecipientKey,
    recipient_id: &str,
    recipients: &[Recipient<'_>],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let unwrap = |r: &Recipient<'_>| {
        wrap::unwrap_data_key(key, r.id, r.ephemeral_public, r.wrapped_key, context)
    };
    if let Some(own) = recipients.iter().find(|r| r.id == recipient_id) {
        return unwrap(own);
    }
    let mut failed = None;
    for r in recipients
        .iter()
        .filter(|r| remote_entry_of(r.id, recipient_id))
    {
        match unwrap(r) {
            Ok(dk) => return Ok(dk),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| Error::KeyNotFound {
        key_id: String::new(),
    }))
}

/// Plan opening end-to-end frames addressed to `recipient_id` with its key pair:
/// each distinct data key is unwrapped once (`KeyNotFound` when a frame carries no
/// entry for this recipient, `Integrity` when the entry does not open), and the job
/// opens every payload.
pub fn open_job_for<'a>(
    key: &RecipientKey,
    recipient_id: &str,
    aads: &'a [AadFields<'a>],
    frames: &'a [u8],
    offsets: &[usize],
) -> Result<OpenFrames<'a>> {
    let sp = spans("offsets", offsets, frames.len())?;
    let items: Vec<&[u8]> = sp.into_iter().map(|r| &frames[r]).collect();
    open_each_job_for(key, recipient_id, aads, &items)
}

/// [`open_job_for`] for frames that each sit in their own buffer (events as a
/// router holds them): nothing is gathered first.
pub fn open_each_job_for<'a>(
    key: &RecipientKey,
    recipient_id: &str,
    aads: &'a [AadFields<'a>],
    frames: &[&'a [u8]],
) -> Result<OpenFrames<'a>> {
    let decoded = decode_each(frames, aads.len())?;
    let mut ids: Vec<&str> = Vec::new();
    let mut ciphers: Vec<Cipher> = Vec::new();
    let mut which = Vec::with_capacity(decoded.len());
    for (i, f) in decoded.iter().enumerate() {
        if let Some(p) = ids.iter().position(|id| *id == f.key_id) {
            which.push(p);
            continue;
        }
        // The first frame under this data key: its recipients, read once.
        let f = frame::decode(frames[i]).map_err(|e| aead::with_index(e, i))?;
        // The wrap is bound to the type of the first event under this key; the
        // payloads' AAD binds each event's own type.
        let context = wrap::wrap_context(f.key_id, aads[i].event_type)?;
        let dk = unwrap_for(key, recipient_id, &f.recipients, &context).map_err(|e| match e {
            Error::KeyNotFound { .. } => Error::KeyNotFound {
                key_id: format!(
                    "{} (item {i}: no data key wrapped for recipient {recipient_id:?})",
                    f.key_id
                ),
            },
            e => aead::with_index(e, i),
        })?;
        ciphers.push(data_key(&dk)?.cipher()?);
        ids.push(f.key_id);
        which.push(ids.len() - 1);
    }
    Ok(OpenFrames::new(decoded, which, ciphers, aads))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ev(id: &str) -> AadFields<'_> {
        AadFields {
            event_id: id,
            event_type: "orders.placed",
            source: "checkout",
            schema_version: 0,
        }
    }

    #[test]
    fn sealed_for_recipients_opens_for_each_and_no_one_else() {
        let shipping = RecipientKey::generate().unwrap();
        let analytics = RecipientKey::generate().unwrap();
        let intruder = RecipientKey::generate().unwrap();
        let (sp, ap) = (shipping.public_bytes(), analytics.public_bytes());
        let rcpts = [("shipping", &sp[..]), ("analytics", &ap[..])];
        let aads = [ev("e1"), ev("e2"), ev("e3")];
        let input = b"abcdefghijklmnopqrstuvwxyz".repeat(50);
        let offsets = [0, 1, 700, input.len()];
        let (frames, fo) = seal_job_for(&rcpts, "orders.placed", &aads, &input, &offsets)
            .unwrap()
            .run_to_vec()
            .unwrap();
        for (k, rid) in [(&shipping, "shipping"), (&analytics, "analytics")] {
            let (pt, po) = open_job_for(k, rid, &aads, &frames, &fo)
                .unwrap()
                .run_to_vec()
                .unwrap();
            assert_eq!((pt.as_slice(), po.as_slice()), (&input[..], &offsets[..]));
        }
        assert!(matches!(
            open_job_for(&intruder, "intruder", &aads, &frames, &fo),
            Err(Error::KeyNotFound { .. })
        ));
        assert!(matches!(
            open_job_for(&intruder, "shipping", &aads, &frames, &fo),
            Err(Error::Integrity { .. })
        ));
        // Another event's attributes: the payload's tag fails, naming the item.
        let moved = [ev("e1"), ev("e3"), ev("e2")];
        let err = open_job_for(&shipping, "shipping", &moved, &frames, &fo)
            .unwrap()
            .run_to_vec()
            .unwrap_err();
        assert!(err.to_string().contains("item 1"), "{err}");
    }

    #[test]
    fn a_consumer_on_another_router_opens_its_entry_named_there() {
        let shipping = RecipientKey::generate().unwrap();
        let other = RecipientKey::generate().unwrap();
        let (sp, op) = (shipping.public_bytes(), other.public_bytes());
        // The producer's router lists the consumers of two other routers, both
        // called "shipping" where they are.
        let rcpts = [("shop-c/shipping", &op[..]), ("shop-b/shipping", &sp[..])];
        let aads = [ev("e1")];
        let (frames, fo) = seal_job_for(&rcpts, "orders.placed", &aads, b"{}", &[0, 2])
            .unwrap()
            .run_to_vec()
            .unwrap();
        for (k, rid) in [(&shipping, "shipping"), (&other, "shipping")] {
            let job = open_job_for(k, rid, &aads, &frames, &fo).unwrap();
            assert_eq!(job.run_to_vec().unwrap().0, b"{}");
        }
        // Only a `<router>/` prefix (no '/' in a router's name) stands for a router.
        for rid in ["hipping", "b/shipping", "ipping"] {
            assert!(matches!(
                open_job_for(&shipping, rid, &aads, &frames, &fo),
                Err(Error::KeyNotFound { .. })
            ));
        }
        // The same name with a key pair the producer's router never listed.
        let intruder = RecipientKey::generate().unwrap();
        assert!(matches!(
            open_job_for(&intruder, "shipping", &aads, &frames, &fo),
            Err(Error::Integrity { .. })
        ));
        assert!(remote_entry_of("shop-b/shipping", "shipping"));
        assert!(!remote_entry_of("/shipping", "shipping"));
        assert!(!remote_entry_of("a/b/shipping", "shipping"));
        assert!(!remote_entry_of("shop-bshipping", "shipping"));
    }

    #[test]
    fn frames_in_their_own_buffers_open_as_the_same_frames_laid_end_to_end() {
        let k = RecipientKey::generate().unwrap();
        let kp = k.public_bytes();
        let rcpts = [("r", &kp[..])];
        let aads = [ev("a"), ev("b"), ev("c")];
        let input = b"{}[1,2]\"three\"";
        let (frames, fo) = seal_job_for(&rcpts, "orders.placed", &aads, input, &[0, 2, 7, 14])
            .unwrap()
            .run_to_vec()
            .unwrap();
        let apart: Vec<Vec<u8>> = fo.windows(2).map(|w| frames[w[0]..w[1]].to_vec()).collect();
        let each: Vec<&[u8]> = apart.iter().map(Vec::as_slice).collect();
        let laid = open_job_for(&k, "r", &aads, &frames, &fo)
            .unwrap()
            .run_to_vec();
        let own = open_each_job_for(&k, "r", &aads, &each)
            .unwrap()
            .run_to_vec();
        assert_eq!(own.unwrap(), laid.unwrap());
        // The same refusals: a frame out of place fails its tag, naming the item.
        let swapped = [each[0], each[2], each[1]];
        let err = open_each_job_for(&k, "r", &aads, &swapped)
            .unwrap()
            .run_to_vec()
            .unwrap_err();
        assert!(err.to_string().contains("item 1"), "{err}");
        assert!(matches!(
            open_each_job_for(&k, "r", &aads[..2], &each),
            Err(Error::InvalidArgument { .. })
        ));
        let mut cut = apart[1].clone();
        cut.truncate(10);
        assert!(matches!(
            open_each_job_for(&k, "r", &aads, &[each[0], &cut, each[2]]),
            Err(Error::Frame { .. })
        ));
    }

    #[test]
    fn a_batch_of_two_data_keys_unwraps_each() {
        let k = RecipientKey::generate().unwrap();
        let kp = k.public_bytes();
        let rcpts = [("r", &kp[..])];
        let aads = [ev("a"), ev("b")];
        let (f1, o1) = seal_job_for(&rcpts, "orders.placed", &aads[..1], b"one", &[0, 3])
            .unwrap()
            .run_to_vec()
            .unwrap();
        let (f2, _) = seal_job_for(&rcpts, "orders.placed", &aads[1..], b"two!", &[0, 4])
            .unwrap()
            .run_to_vec()
            .unwrap();
        assert_ne!(f1[5..32], f2[5..32], "fresh data key id per batch");
        let frames = [f1.clone(), f2.clone()].concat();
        let offsets = [0, o1[1], frames.len()];
        let job = open_job_for(&k, "r", &aads, &frames, &offsets).unwrap();
        assert_eq!(job.run_to_vec().unwrap().0, b"onetwo!");
    }

    #[test]
    fn one_type_per_batch_and_at_least_one_recipient() {
        let k = RecipientKey::generate().unwrap();
        let kp = k.public_bytes();
        let aads = [ev("a")];
        assert!(matches!(
            seal_job_for(&[], "orders.placed", &aads, b"x", &[0, 1]),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            seal_job_for(&[("r", &kp[..])], "orders.cancelled", &aads, b"x", &[0, 1]),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
