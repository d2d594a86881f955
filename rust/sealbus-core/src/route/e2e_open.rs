//! The consumer side of end-to-end sealing: a polled batch's end-to-end events opened
//! with the consumer's key pair in one call, and validated against their type's
//! schema (the router could not see the plaintext, so a compromised producer's event
//! must be stopped here, before the application sees it).
//!
//! Each distinct data key is unwrapped once; every payload is opened straight into
//! one buffer. In the common batch (every event sealed end to end, one type, as one
//! publish delivers it) opening and validating are one pass over chunks of the batch,
//! split across cores when it is large: each chunk is validated right after it is
//! decrypted, while its plaintext is still in cache, and the schema's fast path keeps
//! its per-thread scratch (no allocation per event). Events that are not sealed end
//! to end keep their data. When the batch does not open as a whole, events are
//! opened one by one so that one tampered event does not hide the others; each gets
//! its own error. An event that fails its schema keeps no data in the buffer.
//!
//! Read-ahead ([`Router::open_end_to_end_ahead`]): while the consumer handles one
//! batch, pool threads open and validate the events that are ready next. Nothing is
//! taken from the queue for it: the events stay ready, with their order, deadlines
//! and attempts as they were. A poll uses that work only if the events it took are
//! exactly those (the same events, in the same order), for the same recipient, key
//! and schema version; otherwise it opens them itself as before and drops what was
//! opened ahead. So what a consumer receives, and every refusal, is what it would
//! have received without it.
//!
//! Up to [`DEPTH`] batches are opened ahead, each on one thread, and no more than
//! [`READ_AHEAD_BYTES`] of frames (one batch, however large). Opening (AES-GCM and
//! the schema) costs more per event than a Python consumer's loop over the
//! plaintext, so with one batch ahead the consumer waited for it while a core stood
//! idle. With two, the pool still idled whenever both were done while the consumer
//! was slow for a moment; batches queued behind them keep it working through such
//! moments. Each batch is opened on one thread, not split, because the consumer's
//! own thread is running beside them: splitting only made three threads share two
//! cores.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use super::deliver::{end_to_end_frame, is_end_to_end};
use super::subscription::{Item, Subscription};
use super::Router;
use crate::envelope::Event;
use crate::error::{Error, Result};
use crate::schema::CompiledSchema;
use crate::seal::aead::{par_chunks_costed, serially};
use crate::seal::wrap::RecipientKey;
use crate::seal::{e2e, AadFields, BatchJob};

/// Fewer ready events than this are not opened ahead: handing them to another thread
/// costs about what opening them does.
const READ_AHEAD_MIN_EVENTS: usize = 128;

/// The single-core cost of opening and validating one event of a few hundred bytes,
/// in nanoseconds (measured on the order workload: ~0.1 µs to open, ~0.35 µs to
/// validate), and per byte beyond that; it decides whether a batch is split.
const NANOS_PER_EVENT: usize = 450;
const OPEN_NANOS_PER_EVENT: usize = 150;
const BYTES_PER_NANO: usize = 2;

/// A batch's data with its end-to-end events opened: `n + 1` offsets into `out`, and
/// for each event the error that kept it from being opened or from passing its
/// schema (its slot is then empty). Only end-to-end events can carry an error.
#[derive(Debug)]
pub struct OpenedEndToEnd {
    pub out: Vec<u8>,
    pub offsets: Vec<usize>,
    pub errors: Vec<Option<Error>>,
}

/// The attributes an end-to-end payload is bound to: the producer seals with schema
/// version 0 (the router cannot see the data to validate it), and names itself as
/// the router it published to knows it (docs/FORMAT.md). An event imported from
/// another router has the source `<router>/<principal>` here, and is bound to
/// `<principal>`: that reading comes first.
fn aad_of(e: &Event) -> AadFields<'_> {
    let source = origin_of(&e.source).unwrap_or(&e.source);
    AadFields {
        event_id: &e.id,
        event_type: &e.event_type,
        source,
        schema_version: 0,
    }
}

/// `<principal>` of a source `<router>/<principal>` (a router's name is not empty).
fn origin_of(source: &str) -> Option<&str> {
    source
        .split_once('/')
        .filter(|(router, _)| !router.is_empty())
        .map(|(_, principal)| principal)
}

/// The other reading of a source with a `/`: a local principal whose name holds one.
fn local_aad_of(e: &Event) -> Option<AadFields<'_>> {
    origin_of(&e.source).is_some().then(|| AadFields {
        source: &e.source,
        ..aad_of(e)
    })
}

fn no_errors(n: usize) -> Vec<Option<Error>> {
    let mut errors = Vec::with_capacity(n);
    errors.resize_with(n, || None);
    errors
}

/// Batches a subscription opens ahead at most, and read-ahead jobs it has running
/// at most (a job whose batch was dropped still counts until it ends).
const DEPTH: usize = 4;

/// Bytes of frames a subscription's batches ahead may hold together, beyond which no
/// other is started (the first always is): the plaintext opened ahead is memory the
/// consumer has not asked for yet. Four batches of 1,024 events of ~600 B fit.
const READ_AHEAD_BYTES: usize = 8 << 20;

/// Plaintext buffers a subscription keeps for its read-ahead, at most: the ones the
/// consumer is done with, for the batches being filled meanwhile (a poll gives one
/// back as the next read-ahead takes one).
const SPARE_BUFFERS: usize = 2;

/// A subscription's next end-to-end batches, opened ahead of its polls.
#[derive(Default)]
pub(crate) struct ReadAhead {
    lanes: Mutex<Lanes>,
    done: Condvar,
    /// Plaintext buffers of batches the consumer is done with, for the next
    /// read-ahead to fill (see [`Subscription::give_back_plaintext`]).
    spare: Mutex<Vec<Vec<u8>>>,
}

/// The batches opened ahead, in the queue's order: each holds the `len` ready
/// events that follow those of the one before it.
#[derive(Default)]
struct Lanes {
    ahead: VecDeque<Lane>,
    /// Jobs still running, those whose lane was dropped included.
    running: usize,
    next_id: u64,
}

struct Lane {
    id: u64,
    len: usize,
    /// Bytes of frames it opens.
    bytes: usize,
    state: Ahead,
}

enum Ahead {
    Running,
    Ready(Box<Prepared>),
    /// The job ended with nothing to use (a schema registered meanwhile, a panic).
    Empty,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the data: it is plaintext.
        let Ok(lanes) = self.lanes.lock() else {
            return write!(f, "ReadAhead(poisoned)");
        };
        let states: Vec<&str> = lanes
            .ahead
            .iter()
            .map(|l| match l.state {
                Ahead::Running => "running",
                Ahead::Ready(_) => "ready",
                Ahead::Empty => "empty",
            })
            .collect();
        write!(f, "ReadAhead({states:?}, running={})", lanes.running)
    }
}

/// Events opened ahead, and what they were opened with.
struct Prepared {
    items: Vec<Item>,
    recipient_id: String,
    public: [u8; crate::seal::wrap::X25519_LEN],
    validate: bool,
    /// The schema version they were validated against (when `validate`).
    schema: Option<Arc<CompiledSchema>>,
    opened: OpenedEndToEnd,
}

impl Subscription {
    /// Hand back the plaintext buffer of an opened end-to-end batch the consumer no
    /// longer reads: the next read-ahead fills it (each byte written again before
    /// it is read) instead of new memory, whose pages the kernel would clear first,
    /// on every batch.
    pub fn give_back_plaintext(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        if let Ok(mut spare) = self.read_ahead.spare.lock() {
            if spare.len() < SPARE_BUFFERS {
                spare.push(buf);
            }
        }
    }
}

impl ReadAhead {
    /// A buffer for at least `len` bytes: a spare one when one is large enough (its
    /// old contents are the caller's to overwrite: every byte of the result is
    /// written before it is read).
    fn buffer(&self, len: usize) -> Vec<u8> {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        match spare {
            Some(buf) if buf.capacity() >= len => buf,
            _ => Vec::with_capacity(len),
        }
    }

    /// The first batch opened ahead, waiting for its job to finish; the batches
    /// after it stay.
    fn take(&self) -> Option<Box<Prepared>> {
        let mut lanes = self.lanes.lock().ok()?;
        while matches!(lanes.ahead.front()?.state, Ahead::Running) {
            lanes = self.done.wait(lanes).ok()?;
        }
        match lanes.ahead.pop_front()?.state {
            Ahead::Ready(p) => Some(p),
            Ahead::Running | Ahead::Empty => None,
        }
    }

    /// Drop every batch opened ahead (the consumer took other events than the first
    /// one holds, so the others no longer line up either). Jobs still running finish
    /// into nothing.
    fn clear(&self) -> Vec<Lane> {
        self.lanes
            .lock()
            .map(|mut l| l.ahead.drain(..).collect())
            .unwrap_or_default()
    }

    /// Ready events already covered by the batches ahead, if another may be started:
    /// fewer than [`DEPTH`] batches ahead and jobs running, and fewer than
    /// [`READ_AHEAD_BYTES`] ahead (or none).
    fn room(&self) -> Option<(usize, u64)> {
        let lanes = self.lanes.lock().ok()?;
        let bytes: usize = lanes.ahead.iter().map(|l| l.bytes).sum();
        (lanes.ahead.len() < DEPTH
            && lanes.running < DEPTH
            && (lanes.ahead.is_empty() || bytes < READ_AHEAD_BYTES))
            .then(|| (lanes.ahead.iter().map(|l| l.len).sum(), lanes.next_id))
    }

    /// Start a batch of `len` events (`bytes` of frames) after those covered, unless
    /// the lanes changed since [`ReadAhead::room`] said `(covered, id)`.
    fn start(&self, covered: usize, id: u64, len: usize, bytes: usize) -> bool {
        let Ok(mut lanes) = self.lanes.lock() else {
            return false;
        };
        let now: usize = lanes.ahead.iter().map(|l| l.len).sum();
        if now != covered || lanes.next_id != id {
            return false;
        }
        lanes.next_id += 1;
        lanes.running += 1;
        lanes.ahead.push_back(Lane {
            id,
            len,
            bytes,
            state: Ahead::Running,
        });
        true
    }

    fn finish(&self, id: u64, result: Option<Box<Prepared>>) {
        // A lane dropped meanwhile: its result goes with this guard's scope, not
        // under the lock.
        let mut unused = None;
        if let Ok(mut lanes) = self.lanes.lock() {
            lanes.running = lanes.running.saturating_sub(1);
            match lanes.ahead.iter_mut().find(|l| l.id == id) {
                Some(lane) => lane.state = result.map_or(Ahead::Empty, Ahead::Ready),
                None => unused = result,
            }
        }
        self.done.notify_all();
        drop(unused);
    }
}

/// Marks a read-ahead job finished (with nothing) if it ends without saying so.
struct Finish<'a>(&'a ReadAhead, u64, Option<Box<Prepared>>);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1, self.2.take());
    }
}

/// The same schema (version) as when the read-ahead validated, or none both times.
fn same_schema(a: Option<&Arc<CompiledSchema>>, b: Option<&Arc<CompiledSchema>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

impl Router {
    /// [`Router::open_end_to_end`] for a batch `sub` just delivered, using what was
    /// opened ahead when it is exactly these events (see the module's notes), then
    /// opening the events ready next ahead on the pool, when there are enough of them.
    #[allow(clippy::too_many_arguments)]
    pub fn open_end_to_end_ahead(
        self: &Arc<Self>,
        sub: &Arc<Subscription>,
        key: &Arc<RecipientKey>,
        recipient_id: &str,
        events: &[&Event],
        sealed: &[bool],
        data: &[u8],
        offsets: &[usize],
        validate: bool,
    ) -> OpenedEndToEnd {
        let ahead = sub.read_ahead.take();
        let fits = |p: &Prepared| {
            p.recipient_id == recipient_id
                && p.public == key.public_bytes()
                && p.validate == validate
                && p.items.len() == events.len()
                && sealed.iter().all(|&s| s)
                && p.items
                    .iter()
                    .zip(events)
                    .all(|(item, e)| std::ptr::eq(Arc::as_ptr(item), *e))
                && (!validate
                    || same_schema(p.schema.as_ref(), self.latest_schema(events).as_ref()))
        };
        let (opened, spent) = match ahead {
            Some(p) if fits(&p) => (p.opened, p.items),
            missed => {
                let dropped = (missed, sub.read_ahead.clear());
                let opened = self.open_end_to_end(
                    key,
                    recipient_id,
                    events,
                    sealed,
                    data,
                    offsets,
                    validate,
                );
                drop(dropped);
                (opened, Vec::new())
            }
        };
        self.read_ahead(sub, key, recipient_id, validate, events.len(), spent);
        opened
    }

    /// The latest schema of the (first) event's type, if it has one.
    fn latest_schema(&self, events: &[&Event]) -> Option<Arc<CompiledSchema>> {
        let first = events.first()?;
        self.schemas.validator(&first.event_type, None).ok()
    }

    /// Start opening the next batches of `max` ready events of `sub` on the pool
    /// (up to [`DEPTH`] ahead), each if it is large enough, all end to end (their
    /// data the frame) and of one type. `spent`, the references the last batch
    /// opened ahead held, are let go of there too, off the consumer's thread. The
    /// events are picked here, not on the pool: by the time a pool thread runs, the
    /// consumer may have taken more from the queue, and the batch would not line up.
    fn read_ahead(
        self: &Arc<Self>,
        sub: &Arc<Subscription>,
        key: &Arc<RecipientKey>,
        recipient_id: &str,
        validate: bool,
        max: usize,
        spent: Vec<Item>,
    ) {
        let mut spent = Some(spent);
        while let Some((covered, id)) = sub.read_ahead.room() {
            let Ok(mut st) = sub.lock() else { return };
            self.try_follow(&mut st);
            let items: Vec<Item> = st
                .queue
                .peek_ready(covered + max)
                .skip(covered)
                .cloned()
                .collect();
            drop(st);
            let Some(first) = items.first() else { return };
            let usable = items.len() >= READ_AHEAD_MIN_EVENTS
                && items
                    .iter()
                    .all(|e| is_end_to_end(e) && !e.sealed && e.event_type == first.event_type);
            let bytes = items.iter().map(|e| e.data.len()).sum();
            // No pool in this process (a child forked after it was built): each poll
            // opens its own events. Asked only when a batch would go ahead.
            if !usable
                || !crate::pool::ensure()
                || !sub.read_ahead.start(covered, id, items.len(), bytes)
            {
                return;
            }
            // The plaintext's buffer: one the consumer gave back when it can be
            // (fresh memory costs the kernel clearing its pages, on every batch).
            // The frames' length bounds the plaintext's.
            let out = sub.read_ahead.buffer(bytes);
            let (router, sub, key) = (Arc::clone(self), Arc::clone(sub), Arc::clone(key));
            let recipient_id = recipient_id.to_owned();
            let spent = spent.take();
            rayon::spawn(move || {
                drop(spent);
                let mut finish = Finish(&sub.read_ahead, id, None);
                // A panic must not take the process down from a pool thread: the
                // lane then says "nothing ahead" and the poll opens its events itself.
                let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    serially(|| router.open_ahead(items, &key, recipient_id, validate, out))
                }));
                finish.2 = prepared.ok().flatten();
            });
        }
    }

    /// Open and validate `items` as [`Router::open_end_to_end`] would, each frame
    /// read where the event holds it (nothing gathered first), into `out`.
    fn open_ahead(
        &self,
        items: Vec<Item>,
        key: &RecipientKey,
        recipient_id: String,
        validate: bool,
        out: Vec<u8>,
    ) -> Option<Box<Prepared>> {
        let events: Vec<&Event> = items.iter().map(|e| &**e).collect();
        let sealed = vec![true; events.len()];
        let schema = if validate {
            self.latest_schema(&events)
        } else {
            None
        };
        let frames: Vec<&[u8]> = events.iter().map(|e| e.data.as_slice()).collect();
        let opened = self
            .open_uniform(key, &recipient_id, &events, &sealed, &frames, validate, out)
            // A refusal or a type without a schema: the general route, as a poll
            // would take it.
            .unwrap_or_else(|| {
                self.open_general(key, &recipient_id, &events, &sealed, &frames, validate)
            });
        // A schema registered meanwhile: what was validated may not be what the
        // consumer would see now.
        if validate && !same_schema(schema.as_ref(), self.latest_schema(&events).as_ref()) {
            return None;
        }
        drop(events);
        Some(Box::new(Prepared {
            items,
            recipient_id,
            public: key.public_bytes(),
            validate,
            schema,
            opened,
        }))
    }

    /// Open the end-to-end events (`sealed[i]`) of a delivered batch whose data is
    /// `data` + `offsets` (`events[i]`'s slot), for `recipient_id` with its `key`, and
    /// when `validate`, check each opened event against its type's latest schema as
    /// [`Router::validate_data`] does. Blocks on CPU work: call with the GIL released.
    #[allow(clippy::too_many_arguments)]
    pub fn open_end_to_end(
        &self,
        key: &RecipientKey,
        recipient_id: &str,
        events: &[&Event],
        sealed: &[bool],
        data: &[u8],
        offsets: &[usize],
        validate: bool,
    ) -> OpenedEndToEnd {
        // Event i's frame (or, not sealed end to end, its data as delivered).
        let frames: Vec<&[u8]> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let slot = offsets
                    .get(i..=i + 1)
                    .and_then(|w| data.get(w[0]..w[1]))
                    .unwrap_or_default();
                if sealed.get(i).copied().unwrap_or(false) {
                    end_to_end_frame(e, slot)
                } else {
                    slot
                }
            })
            .collect();
        self.open_uniform(
            key,
            recipient_id,
            events,
            sealed,
            &frames,
            validate,
            Vec::new(),
        )
        .unwrap_or_else(|| self.open_general(key, recipient_id, events, sealed, &frames, validate))
    }

    /// The common batch (every event sealed end to end, one type, `frames[i]` the
    /// frame of `events[i]`) opened and validated in one pass, into `out` (its
    /// allocation reused); `None` when it is not such a batch, its type has no schema
    /// to validate with, or some frame does not open (the general route then reports
    /// each refusal).
    #[allow(clippy::too_many_arguments)]
    fn open_uniform(
        &self,
        key: &RecipientKey,
        recipient_id: &str,
        events: &[&Event],
        sealed: &[bool],
        frames: &[&[u8]],
        validate: bool,
        out: Vec<u8>,
    ) -> Option<OpenedEndToEnd> {
        let first = events.first()?;
        let one_type = sealed.len() == events.len()
            && frames.len() == events.len()
            && events
                .iter()
                .zip(sealed)
                .all(|(e, &s)| s && e.event_type == first.event_type);
        if !one_type {
            return None;
        }
        let schema = if validate {
            // A schemaless type, or none registered: the general route reports it
            // event by event, as before.
            Some(self.schemas.validator(&first.event_type, None).ok()?)
        } else {
            None
        };
        open_and_validate(key, recipient_id, events, frames, schema.as_deref(), out)
    }

    /// [`Router::open_end_to_end`] event by event where it must be: a mixed batch, a
    /// refusal, a type without a schema.
    fn open_general(
        &self,
        key: &RecipientKey,
        recipient_id: &str,
        events: &[&Event],
        sealed: &[bool],
        frames: &[&[u8]],
        validate: bool,
    ) -> OpenedEndToEnd {
        let mut o = open_all(key, recipient_id, events, sealed, frames);
        if validate {
            self.validate_opened(events, sealed, &mut o);
        }
        o
    }

    /// Validate each opened event's data against its type's schema; a failure becomes
    /// that event's error and its data leaves the buffer.
    fn validate_opened(&self, events: &[&Event], sealed: &[bool], o: &mut OpenedEndToEnd) {
        // Every event sealed, opened, of one type (one publish): the schema is looked
        // up once, errors carry the event's index.
        let uniform = events.first().is_some_and(|first| {
            events
                .iter()
                .zip(sealed)
                .zip(&o.errors)
                .all(|((e, &s), err)| s && err.is_none() && e.event_type == first.event_type)
        });
        let batch = if uniform {
            self.validate_data_batch(&events[0].event_type, &o.out, &o.offsets)
                .ok()
        } else {
            None
        };
        let found: Vec<Option<Error>> = batch.unwrap_or_else(|| {
            events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    if sealed[i] && o.errors[i].is_none() {
                        let data = &o.out[o.offsets[i]..o.offsets[i + 1]];
                        self.validate_data(&e.event_type, data).err()
                    } else {
                        None
                    }
                })
                .collect()
        });
        let mut failed = false;
        for (i, err) in found.into_iter().enumerate() {
            if err.is_some() {
                o.errors[i] = err;
                failed = true;
            }
        }
        if failed {
            drop_failed(o, sealed);
        }
    }
}

/// Empty the slots of the sealed events that carry an error (compacting the buffer).
fn drop_failed(o: &mut OpenedEndToEnd, sealed: &[bool]) {
    let mut out = Vec::with_capacity(o.out.len());
    let mut offsets = Vec::with_capacity(o.offsets.len());
    offsets.push(0);
    for (i, err) in o.errors.iter().enumerate() {
        if !(sealed[i] && err.is_some()) {
            out.extend_from_slice(&o.out[o.offsets[i]..o.offsets[i + 1]]);
        }
        offsets.push(out.len());
    }
    o.out = out;
    o.offsets = offsets;
}

/// The common batch, every event sealed end to end and of one type (`frames[i]`
/// the frame of `events[i]`): opened and (with `schema`) validated in one pass over
/// chunks, into `out` (its allocation reused when it is large enough). `None` when
/// some frame does not open (a tampered event, no entry for this recipient): the
/// caller then opens event by event, so each bad one gets its own error.
fn open_and_validate(
    key: &RecipientKey,
    rid: &str,
    events: &[&Event],
    frames: &[&[u8]],
    schema: Option<&CompiledSchema>,
    mut out: Vec<u8>,
) -> Option<OpenedEndToEnd> {
    let n = events.len();
    let aads: Vec<AadFields<'_>> = events.iter().map(|e| aad_of(e)).collect();
    let job = e2e::open_each_job_for(key, rid, &aads, frames).ok()?;
    let out_offsets = job.out_offsets().to_vec();
    // A reused buffer keeps its bytes up to its length rather than zeroing them
    // again: the slots cover it from 0 to `out_len`, and the cipher writes every
    // byte of each before anything reads it (a batch that does not open is dropped
    // with its buffer). Only growth is zeroed.
    out.truncate(job.out_len());
    out.resize(job.out_len(), 0);
    let refused: Mutex<Vec<(usize, Error)>> = Mutex::new(Vec::new());
    let per_event = if schema.is_some() {
        NANOS_PER_EVENT
    } else {
        OPEN_NANOS_PER_EVENT
    };
    let micros = (n * per_event + out.len() / BYTES_PER_NANO) / 1000;
    let opened = par_chunks_costed(&mut out, &out_offsets, micros, |first, offs, slice| {
        job.open_chunk(first, offs, slice)?;
        let Some(schema) = schema else {
            return Ok(());
        };
        let base = offs.first().copied().unwrap_or(0);
        for (j, w) in offs.windows(2).enumerate() {
            let text = slice.get(w[0] - base..w[1] - base).unwrap_or_default();
            // Errors carry the event's index in the batch, as a batch validation's do.
            if let Err(e) = schema.validate_json(text, first + j) {
                if let Ok(mut r) = refused.lock() {
                    r.push((first + j, e));
                }
            }
        }
        Ok(())
    });
    opened.ok()?;
    let mut o = OpenedEndToEnd {
        out,
        offsets: out_offsets,
        errors: no_errors(n),
    };
    let refused = refused.into_inner().unwrap_or_default();
    if !refused.is_empty() {
        for (i, e) in refused {
            o.errors[i] = Some(e);
        }
        drop_failed(&mut o, &vec![true; n]);
    }
    Some(o)
}

fn open_one(key: &RecipientKey, rid: &str, e: &Event, frame: &[u8]) -> Result<Vec<u8>> {
    let open = |aad: AadFields<'_>| -> Result<Vec<u8>> {
        let aad = [aad];
        Ok(e2e::open_job_for(key, rid, &aad, frame, &[0, frame.len()])?
            .run_to_vec()?
            .0)
    };
    match (open(aad_of(e)), local_aad_of(e)) {
        (Err(Error::Integrity { .. }), Some(local)) => open(local),
        (first, _) => first,
    }
}

/// Open the sealed events (`sealed[i]`) of a batch, `frames[i]` being event i's
/// frame (its data as delivered when it is not sealed end to end). The frames are
/// opened as one job, straight into the result; in a mixed batch the opened
/// plaintexts are then interleaved with the other events' data.
fn open_all(
    key: &RecipientKey,
    rid: &str,
    events: &[&Event],
    sealed: &[bool],
    frames: &[&[u8]],
) -> OpenedEndToEnd {
    let n = events.len();
    let item = |i: usize| frames.get(i).copied().unwrap_or_default();
    let idx: Vec<usize> = (0..n).filter(|&i| sealed[i]).collect();
    let aads: Vec<AadFields<'_>> = idx.iter().map(|&i| aad_of(events[i])).collect();
    let to_open: Vec<&[u8]> = idx.iter().map(|&i| item(i)).collect();
    let whole = e2e::open_each_job_for(key, rid, &aads, &to_open).and_then(|job| {
        let mut out = vec![0u8; job.out_len()];
        job.run(&mut out)?;
        Ok((out, job.out_offsets().to_vec()))
    });
    if let Ok((plain, plain_offsets)) = whole {
        if idx.len() == n {
            return OpenedEndToEnd {
                out: plain,
                offsets: plain_offsets,
                errors: no_errors(n),
            };
        }
        // Mixed: interleave the opened plaintexts with the other events' data.
        let others: usize = (0..n).filter(|&i| !sealed[i]).map(|i| item(i).len()).sum();
        let mut out = Vec::with_capacity(plain.len() + others);
        let mut o = Vec::with_capacity(n + 1);
        o.push(0);
        let mut k = 0;
        for (i, &s) in sealed.iter().enumerate() {
            if s {
                out.extend_from_slice(&plain[plain_offsets[k]..plain_offsets[k + 1]]);
                k += 1;
            } else {
                out.extend_from_slice(item(i));
            }
            o.push(out.len());
        }
        return OpenedEndToEnd {
            out,
            offsets: o,
            errors: no_errors(n),
        };
    }
    // Something does not open: event by event, so each bad one gets its own error.
    let mut out = Vec::with_capacity(frames.iter().map(|f| f.len()).sum());
    let mut o = Vec::with_capacity(n + 1);
    o.push(0);
    let mut errors = Vec::with_capacity(n);
    for (i, e) in events.iter().enumerate() {
        if sealed[i] {
            match open_one(key, rid, e, item(i)) {
                Ok(p) => {
                    out.extend_from_slice(&p);
                    errors.push(None);
                }
                Err(err) => errors.push(Some(err)),
            }
        } else {
            out.extend_from_slice(item(i));
            errors.push(None);
        }
        o.push(out.len());
    }
    OpenedEndToEnd {
        out,
        offsets: o,
        errors,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{queue, Bench};
    use super::{OpenedEndToEnd, Prepared, ReadAhead, DEPTH, READ_AHEAD_BYTES};
    use crate::error::Action;
    use crate::route::OnFull;

    fn prepared(n: usize) -> Box<Prepared> {
        Box::new(Prepared {
            items: Vec::new(),
            recipient_id: format!("r{n}"),
            public: [0; crate::seal::wrap::X25519_LEN],
            validate: false,
            schema: None,
            opened: OpenedEndToEnd {
                out: Vec::new(),
                offsets: vec![0],
                errors: Vec::new(),
            },
        })
    }

    #[test]
    fn batches_ahead_line_up_in_order_and_at_most_depth_run() {
        let ahead = ReadAhead::default();
        assert!(ahead.take().is_none(), "nothing ahead: nothing to wait for");
        let (covered, first) = ahead.room().unwrap();
        assert_eq!(covered, 0);
        assert!(ahead.start(covered, first, 100, 1000));
        // The next batch starts where the first one's events end.
        let (covered, second) = ahead.room().unwrap();
        assert_eq!(covered, 100);
        // Lanes that changed since `room` was asked are not started on.
        assert!(!ahead.start(0, second, 100, 1000));
        assert!(ahead.start(covered, second, 100, 1000));
        let mut ids = vec![first, second];
        while ids.len() < DEPTH {
            let (covered, id) = ahead.room().unwrap();
            assert_eq!(covered, 100 * ids.len());
            assert!(ahead.start(covered, id, 100, 1000));
            ids.push(id);
        }
        assert!(ahead.room().is_none(), "{DEPTH} ahead at most");
        // Later batches finishing first do not jump the queue.
        for (n, &id) in ids.iter().enumerate().rev() {
            ahead.finish(id, Some(prepared(n)));
        }
        assert_eq!(ahead.take().unwrap().recipient_id, "r0");
        assert_eq!(
            ahead.room().map(|(c, _)| c),
            Some(100 * (DEPTH - 1)),
            "one taken: room for one more after the others"
        );
        for n in 1..DEPTH {
            assert_eq!(ahead.take().unwrap().recipient_id, format!("r{n}"));
        }
        assert!(ahead.take().is_none());
    }

    #[test]
    fn batches_ahead_stop_at_their_byte_budget_but_one_always_starts() {
        let ahead = ReadAhead::default();
        // One batch larger than the budget still starts: a poll needs it whole.
        let (covered, big) = ahead.room().unwrap();
        assert!(ahead.start(covered, big, 10, READ_AHEAD_BYTES + 1));
        assert!(ahead.room().is_none(), "over the budget: no second batch");
        ahead.finish(big, Some(prepared(0)));
        assert_eq!(ahead.take().unwrap().recipient_id, "r0");
        // Small batches: as many as fit under the budget, up to DEPTH.
        let half = READ_AHEAD_BYTES / 2;
        let (covered, a) = ahead.room().unwrap();
        assert!(ahead.start(covered, a, 10, half));
        let (covered, b) = ahead.room().unwrap();
        assert!(ahead.start(covered, b, 10, half));
        assert!(ahead.room().is_none(), "the budget is spent");
        ahead.finish(a, Some(prepared(1)));
        ahead.take().unwrap();
        assert!(ahead.room().is_some(), "a batch taken gives its bytes back");
        ahead.finish(b, None);
    }

    #[test]
    fn a_dropped_batch_still_running_finishes_into_nothing_and_holds_its_place() {
        let ahead = ReadAhead::default();
        let mut ids = Vec::new();
        for n in 0..DEPTH {
            let (covered, id) = ahead.room().unwrap();
            assert!(ahead.start(covered, id, 100, 1000));
            assert_eq!(covered, 100 * n);
            ids.push(id);
        }
        assert_eq!(ahead.clear().len(), DEPTH);
        // Their jobs still run: no other may start beside them.
        assert!(ahead.room().is_none());
        ahead.finish(ids[0], Some(prepared(1)));
        let (covered, c) = ahead.room().unwrap();
        assert_eq!(covered, 0, "what was dropped covers nothing");
        assert!(ahead.start(covered, c, 50, 500));
        // The late jobs' results are not taken for the new batch.
        for &id in &ids[1..] {
            ahead.finish(id, Some(prepared(2)));
        }
        ahead.finish(c, None);
        assert!(ahead.take().is_none(), "the new batch ended empty");
        assert_eq!(ahead.lanes.lock().unwrap().running, 0);
    }

    #[test]
    fn a_poll_waits_for_the_first_batch_ahead_to_finish() {
        let ahead = std::sync::Arc::new(ReadAhead::default());
        let (_, id) = ahead.room().unwrap();
        assert!(ahead.start(0, id, 10, 100));
        let job = {
            let ahead = std::sync::Arc::clone(&ahead);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                ahead.finish(id, Some(prepared(7)));
            })
        };
        assert_eq!(ahead.take().unwrap().recipient_id, "r7");
        job.join().unwrap();
    }

    #[test]
    fn buffers_given_back_are_filled_again_and_at_most_two_are_kept() {
        let mut b = Bench::memory();
        b.principal("c");
        b.router.allow("c", Action::Subscribe, "t.*").unwrap();
        let sub = b
            .subscribe("c", &["t.a"], None, queue(8, OnFull::Reject))
            .unwrap();
        let ahead = &sub.read_ahead;
        let fresh = ahead.buffer(100);
        assert!(fresh.is_empty() && fresh.capacity() >= 100);
        let given: Vec<Vec<u8>> = (0..3).map(|_| Vec::with_capacity(4096)).collect();
        let at: Vec<*const u8> = given.iter().map(Vec::as_ptr).collect();
        for buf in given {
            sub.give_back_plaintext(buf);
        }
        sub.give_back_plaintext(Vec::new());
        assert_eq!(ahead.spare.lock().unwrap().len(), 2);
        // Large enough: a buffer given back, not new memory.
        let again = ahead.buffer(4000);
        assert!(at[..2].contains(&again.as_ptr()));
        // Too small for the batch: new memory, and the spare is let go.
        let bigger = ahead.buffer(8192);
        assert!(bigger.capacity() >= 8192);
        assert!(ahead.spare.lock().unwrap().is_empty());
    }
}
