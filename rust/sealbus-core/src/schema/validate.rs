//! Compiling one schema version and validating event bodies against it.
//!
//! Each version is compiled once, by the `jsonschema` crate, into two validators over
//! the same schema: one for `serde_json::Value` (the router's in-memory events) and
//! one for [`tape::Document`] (raw JSON bytes, the batch hot path, no `Value` built).
//!
//! Settings, and why:
//! - `format` is asserted (2020-12 treats it as an annotation by default). A schema
//!   naming a format the crate does not know is refused at registration: an unchecked
//!   format would look like a check that is not there.
//! - `pattern` uses the `regex` engine (linear time): a hostile event cannot make a
//!   pattern backtrack for seconds. Patterns it cannot run (look-around,
//!   back-references) are refused at registration.
//! - No remote `$ref` is ever fetched (the crate is built without its HTTP and file
//!   resolvers); only references inside the schema resolve.
//! - Error reasons are masked: they name the keyword and the location, never the
//!   offending value, so event plaintext does not end up in logs.

use std::cell::RefCell;
use std::sync::Arc;

use jsonschema::{PatternOptions, ValidationError, Validator};
use rayon::prelude::*;
use serde_json::Value;

use super::fast::{FastSchema, Scratch, Verdict};
use super::tape::{Document, TapeJson};
use crate::{Error, Result};

/// Batches smaller than this are validated on the calling thread even when parallel
/// validation is asked for: below it, waking the pool costs more than it saves.
const PARALLEL_MIN_EVENTS: usize = 1024;

/// One compiled schema version. Cheap to share (`Arc`), immutable, `Send + Sync`.
pub struct CompiledSchema {
    event_type: String,
    version: u32,
    schema: Arc<Value>,
    value_validator: Validator,
    tape_validator: Validator<TapeJson>,
    /// The one-pass program for bodies, when the schema is in its subset (`fast`).
    fast: Option<FastSchema>,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("event_type", &self.event_type)
            .field("version", &self.version)
            .field("fast_path", &self.fast.is_some())
            .finish_non_exhaustive()
    }
}

pub(super) fn options<F: jsonschema::json::Json>(
    draft: &str,
) -> jsonschema::ValidationOptions<'static, Arc<dyn jsonschema::Retrieve>, F> {
    let options = jsonschema::options_for::<F>()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .with_pattern_options(PatternOptions::regex());
    if draft.starts_with("draft-") {
        // `uuid` became a standard format in 2019-09, but draft-7 event schemas use it
        // widely; check it (RFC 4122 text form) rather than refuse those schemas.
        options.with_format("uuid", is_uuid)
    } else {
        options
    }
}

/// RFC 4122 text form: 8-4-4-4-12 hex digits.
pub(super) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The draft a schema declares with `$schema`; 2020-12 when it declares none.
pub(crate) fn declared_draft(schema: &Value) -> std::result::Result<&'static str, String> {
    let Some(uri) = schema.get("$schema") else {
        return Ok("2020-12");
    };
    let Some(uri) = uri.as_str() else {
        return Err("$schema must be a string".into());
    };
    let trimmed = uri
        .trim_end_matches('#')
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    match trimmed {
        "json-schema.org/draft/2020-12/schema" => Ok("2020-12"),
        "json-schema.org/draft/2019-09/schema" => Ok("2019-09"),
        "json-schema.org/draft-07/schema" => Ok("draft-07"),
        "json-schema.org/draft-06/schema" => Ok("draft-06"),
        "json-schema.org/draft-04/schema" => Ok("draft-04"),
        _ => Err(format!(
            "unsupported $schema {uri:?} (use draft-07 or 2020-12)"
        )),
    }
}

fn build_error(err: &ValidationError<'_>) -> String {
    let at = err.instance_path().as_str();
    if at.is_empty() {
        err.to_string()
    } else {
        format!("at {at}: {err}")
    }
}

impl CompiledSchema {
    /// Compile `schema` for `event_type` version `version`. Refuses (as
    /// [`Error::SchemaInvalid`]) anything that is not a valid schema of its draft.
    pub fn compile(event_type: &str, version: u32, schema: &Value) -> Result<Self> {
        let invalid = |reason: String| Error::SchemaInvalid {
            event_type: event_type.to_owned(),
            version,
            reason,
        };
        if !(schema.is_object() || schema.is_boolean()) {
            return Err(invalid(
                "a schema must be a JSON object or a boolean".into(),
            ));
        }
        let draft = declared_draft(schema).map_err(invalid)?;
        let value_validator = options::<jsonschema::json::SerdeJson>(draft)
            .build(schema)
            .map_err(|e| invalid(build_error(&e)))?;
        let tape_validator = options::<TapeJson>(draft)
            .build(schema)
            .map_err(|e| invalid(build_error(&e)))?;
        Ok(Self {
            event_type: event_type.to_owned(),
            version,
            schema: Arc::new(schema.clone()),
            value_validator,
            tape_validator,
            fast: FastSchema::compile(schema, draft),
        })
    }

    /// The same compiled schema under another version number.
    pub(crate) fn renumbered(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The schema document this was compiled from.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    fn error(&self, err: &ValidationError<'_>, index: usize) -> Error {
        Error::Validation {
            event_type: self.event_type.clone(),
            version: self.version,
            instance_path: err.instance_path().as_str().to_owned(),
            schema_path: err.schema_path().as_str().to_owned(),
            reason: err.masked().to_string(),
            index,
        }
    }

    fn not_json(&self, err: &super::tape::ParseError, index: usize) -> Error {
        Error::Validation {
            event_type: self.event_type.clone(),
            version: self.version,
            instance_path: String::new(),
            schema_path: String::new(),
            reason: err.to_string(),
            index,
        }
    }

    /// Whether `data` fits. Cheapest check; no error is built.
    pub fn is_valid(&self, data: &Value) -> bool {
        self.value_validator.is_valid(data)
    }

    /// Validate `data`; the error says where (`instance_path`, `schema_path`) and
    /// carries `index` (the event's position in its batch).
    pub fn validate(&self, data: &Value, index: usize) -> Result<()> {
        // `is_valid` short-circuits and builds nothing: the common case stays cheap.
        if self.value_validator.is_valid(data) {
            return Ok(());
        }
        match self.value_validator.validate(data) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.error(&e, index)),
        }
    }

    /// Whether the JSON text `bytes` is well-formed (no duplicate keys) and fits.
    pub fn is_valid_json(&self, bytes: &[u8]) -> bool {
        match self.fast_verdict(bytes, &mut Scratch::default()) {
            Verdict::Valid => true,
            Verdict::Invalid => false,
            Verdict::Unknown => {
                Document::parse(bytes).is_ok_and(|doc| self.tape_validator.is_valid(doc.root()))
            }
        }
    }

    /// Whether this version has the one-pass fast path (its schema is in the subset).
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// The crate's verdict alone, as it was before the fast path (differential tests).
    #[cfg(test)]
    pub(crate) fn crate_verdict(&self, bytes: &[u8]) -> bool {
        Document::parse(bytes).is_ok_and(|doc| self.tape_validator.is_valid(doc.root()))
    }

    pub(crate) fn fast_verdict(&self, bytes: &[u8], scratch: &mut Scratch) -> Verdict {
        self.fast
            .as_ref()
            .map_or(Verdict::Unknown, |f| f.check(bytes, scratch))
    }

    /// Validate the JSON text `bytes` without building a `serde_json::Value`. The fast
    /// path's scratch is the calling thread's own, kept across calls (see [`SCRATCH`]).
    pub fn validate_json(&self, bytes: &[u8], index: usize) -> Result<()> {
        let verdict = SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => self.fast_verdict(bytes, &mut s),
            Err(_) => self.fast_verdict(bytes, &mut Scratch::default()),
        });
        if verdict == Verdict::Valid {
            return Ok(());
        }
        self.validate_tape(&mut Document::default(), bytes, index)
    }

    fn validate_in<'s>(&self, work: &mut Work<'s>, bytes: &'s [u8], index: usize) -> Result<()> {
        // Only a certain `Valid` skips the crate: its report is the one users see.
        if self.fast_verdict(bytes, &mut work.scratch) == Verdict::Valid {
            return Ok(());
        }
        self.validate_tape(&mut work.doc, bytes, index)
    }

    /// The crate's verdict and report, on the tape.
    fn validate_tape<'s>(
        &self,
        doc: &mut Document<'s>,
        bytes: &'s [u8],
        index: usize,
    ) -> Result<()> {
        doc.reparse(bytes).map_err(|e| self.not_json(&e, index))?;
        if self.tape_validator.is_valid(doc.root()) {
            return Ok(());
        }
        match self.tape_validator.validate(doc.root()) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.error(&e, index)),
        }
    }

    fn check_in<'s>(&self, work: &mut Work<'s>, bytes: &'s [u8]) -> bool {
        match self.fast_verdict(bytes, &mut work.scratch) {
            Verdict::Valid => true,
            Verdict::Invalid => false,
            Verdict::Unknown => {
                work.doc.reparse(bytes).is_ok() && self.tape_validator.is_valid(work.doc.root())
            }
        }
    }

    /// Validity of each event in `buffer`, event `i` being `buffer[offsets[i]..offsets[i+1]]`
    /// (so `offsets` has one more entry than there are events). `parallel` spreads
    /// large batches over the rayon pool.
    pub fn check_buffer(
        &self,
        buffer: &[u8],
        offsets: &[u64],
        parallel: bool,
    ) -> Result<Vec<bool>> {
        let spans = spans(buffer, offsets)?;
        if parallel && spans.len() >= PARALLEL_MIN_EVENTS && crate::pool::ensure() {
            Ok(spans
                .par_iter()
                .map_init(Work::default, |work, &(a, b)| {
                    self.check_in(work, &buffer[a..b])
                })
                .collect())
        } else {
            let mut work = Work::default();
            Ok(spans
                .iter()
                .map(|&(a, b)| self.check_in(&mut work, &buffer[a..b]))
                .collect())
        }
    }

    /// Like [`Self::check_buffer`], with the first error of each invalid event
    /// (`None` for a valid one). Errors carry the event's index.
    pub fn validate_buffer<'s>(
        &self,
        buffer: &'s [u8],
        offsets: &[u64],
        parallel: bool,
    ) -> Result<Vec<Option<Error>>> {
        let spans = spans(buffer, offsets)?;
        let one = |work: &mut Work<'s>, i: usize, &(a, b): &(usize, usize)| -> Option<Error> {
            self.validate_in(work, &buffer[a..b], i).err()
        };
        if parallel && spans.len() >= PARALLEL_MIN_EVENTS && crate::pool::ensure() {
            Ok(spans
                .par_iter()
                .enumerate()
                .map_init(Work::default, |work, (i, span)| one(work, i, span))
                .collect())
        } else {
            let mut work = Work::default();
            Ok(spans
                .iter()
                .enumerate()
                .map(|(i, span)| one(&mut work, i, span))
                .collect())
        }
    }
}

thread_local! {
    /// The fast path's scratch for events validated one call at a time (the router's
    /// publish): a thread keeps its buffers, its e-mail domain memo and the key order
    /// it learned across events and batches. Used with another schema since, it only
    /// costs missed predictions.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Buffers one thread reuses across a batch: the fast path's and the tape's.
#[derive(Default)]
struct Work<'s> {
    scratch: Scratch,
    doc: Document<'s>,
}

/// Check `offsets` against `buffer` and turn them into byte ranges.
fn spans(buffer: &[u8], offsets: &[u64]) -> Result<Vec<(usize, usize)>> {
    let bad = |reason: String| Error::InvalidArgument {
        name: "offsets".into(),
        reason,
    };
    if offsets.is_empty() {
        return Err(bad(
            "needs at least one entry (n events take n + 1 offsets)".into(),
        ));
    }
    let mut out = Vec::with_capacity(offsets.len() - 1);
    for (i, w) in offsets.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        if a > b {
            return Err(bad(format!(
                "offsets[{}] = {a} is past offsets[{}] = {b}",
                i,
                i + 1
            )));
        }
        let end = usize::try_from(b).ok().filter(|&e| e <= buffer.len());
        let Some(end) = end else {
            return Err(bad(format!(
                "offsets[{}] = {b} is past the end of the buffer ({} bytes)",
                i + 1,
                buffer.len()
            )));
        };
        // a <= b <= len, so `a` fits usize too.
        out.push((usize::try_from(a).unwrap_or(end), end));
    }
    Ok(out)
}
