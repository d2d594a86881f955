//! String checks of the fast path: `pattern` and `format`, decided by the `jsonschema`
//! crate itself.
//!
//! Each `pattern` or `format` keyword is compiled by the crate, with the same options as
//! the real validator (`validate::options`: same regex engine, same format table, the
//! same custom `uuid` for draft 7), as a one-keyword schema of the same draft. The fast
//! path hands it the string (copied into a one-node tape), so its verdict is the crate's
//! by construction: there is no second regex translation or format checker to drift.
//!
//! Two shortcuts, each handing anything it cannot decide to the crate's check:
//! - `pattern`: when the crate compiles a pattern to its byte `Sequence` matcher (what
//!   it does for patterns without a literal form, in `regex` mode without limits), the
//!   fast path calls that same matcher (`jsonschema_regex`, the version the crate links)
//!   and falls back to the crate's validator when the matcher cannot decide. See
//!   [`PatternCheck`].
//! - `email`, whose parser is the slowest check on the order workload: see [`Email`].
//!
//! Before either, a fixed-length pattern may be accepted outright by
//! [`super::accept::FixedPattern`] (accept-only: a refusal there is not a verdict).

use jsonschema::json::Json;
use jsonschema::Validator;
use serde_json::{Map, Value};

use super::accept::FixedPattern;
use crate::schema::tape::{Document, TapeJson};
use crate::schema::validate::options;

/// A one-keyword validator for strings.
pub(super) struct StringCheck(Validator<TapeJson>);

impl StringCheck {
    /// `{keyword: value}` in `draft` (`dialect` is the root's `$schema`, if any). `None`
    /// if the crate refuses it (the whole schema was refused then anyway).
    pub(super) fn new(
        keyword: &str,
        value: &Value,
        dialect: Option<&Value>,
        draft: &'static str,
    ) -> Option<Self> {
        let mut schema = Map::new();
        if let Some(d) = dialect {
            schema.insert("$schema".into(), d.clone());
        }
        schema.insert(keyword.into(), value.clone());
        options::<TapeJson>(draft)
            .build(&Value::Object(schema))
            .ok()
            .map(StringCheck)
    }

    pub(super) fn is_valid(&self, text: &str, buffer: &mut Document<'static>) -> bool {
        TapeJson::with_string_node(buffer, text, |node| self.0.is_valid(node))
    }
}

/// The crate's `pattern` keyword.
///
/// The crate (`keywords/pattern.rs`, 0.61) first tries `analyze_pattern` (literal
/// forms), then, for a pattern whose translation `Sequence::compile` accepts, a
/// `SequenceMatcher`: `Sequence::is_match` decides, or returns `None` and the translated
/// regex decides. The fast path keeps exactly that order: the same analysis, the same
/// translation and `Sequence`, and the crate's validator for the rest.
pub(super) struct PatternCheck {
    /// An accept-only recogniser for fixed-length patterns, asked first.
    fixed: Option<FixedPattern>,
    sequence: Option<jsonschema_regex::Sequence>,
    crate_check: StringCheck,
}

impl PatternCheck {
    pub(super) fn new(crate_check: StringCheck, pattern: &str) -> Self {
        let sequence = if jsonschema_regex::analyze_pattern(pattern).is_some() {
            None
        } else {
            jsonschema_regex::to_rust_regex(pattern)
                .ok()
                .and_then(|translated| jsonschema_regex::Sequence::compile(&translated))
        };
        PatternCheck {
            fixed: FixedPattern::compile(pattern),
            sequence,
            crate_check,
        }
    }

    /// The accept-only fixed-length recogniser, if the pattern has that shape.
    pub(super) fn fixed(&self) -> Option<&FixedPattern> {
        self.fixed.as_ref()
    }

    pub(super) fn is_valid(&self, text: &str, buffer: &mut Document<'static>) -> bool {
        if self
            .fixed
            .as_ref()
            .is_some_and(|f| f.accepts(text.as_bytes()))
        {
            return true;
        }
        if let Some(decided) = self
            .sequence
            .as_ref()
            .and_then(|s| s.is_match(text.as_bytes()))
        {
            return decided;
        }
        self.crate_check.is_valid(text, buffer)
    }
}

/// The crate's `email` format, with a shortcut for plain addresses.
///
/// The crate parses with `email_address` (display names, quoted local parts, domain
/// literals, length limits), then checks the domain with its `hostname` format. When
/// the text is `local@domain` with exactly one `@`, a local part of 1 to 64 bytes of
/// ASCII `atext` in non-empty dot-separated atoms, and a domain of at most 254 bytes of
/// non-empty labels of ASCII letters, digits and `-` that start and end with a letter
/// or digit and are at most 63 bytes, `email_address` accepts it by its own rules (no
/// display separator `" <"` without a space, no quote, no bracket, no `<`), so the
/// verdict is the crate's `hostname` check of the domain alone. Anything else gets the
/// crate's full `email` check. The differential tests cover both routes.
pub(super) struct Email {
    pub(super) full: StringCheck,
    pub(super) hostname: StringCheck,
}

impl Email {
    pub(super) fn is_valid(
        &self,
        text: &str,
        buffer: &mut Document<'static>,
        memo: &mut DomainMemo,
    ) -> bool {
        let Some(at) = plain_local_part(text.as_bytes()) else {
            return self.full.is_valid(text, buffer);
        };
        let domain = text.get(at + 1..).unwrap_or_default();
        // Events of one stream share a few domains: the host-name check is a pure
        // function of the text, so the last verdict is reused for the same domain. A
        // remembered domain passed `plain_domain` before it was stored, so the same
        // text skips that scan too.
        let owner = std::ptr::from_ref(self) as usize;
        if memo.owner == owner && memo.domain == domain {
            return memo.valid;
        }
        if !plain_domain(domain.as_bytes()) {
            return self.full.is_valid(text, buffer);
        }
        let valid = self.hostname.is_valid(domain, buffer);
        memo.owner = owner;
        memo.domain.clear();
        memo.domain.push_str(domain);
        memo.valid = valid;
        valid
    }
}

/// The last domain an [`Email`] check (`owner`, its address) ran the host-name check
/// on, and the verdict.
#[derive(Debug, Default)]
pub(crate) struct DomainMemo {
    owner: usize,
    domain: String,
    valid: bool,
}

/// A set of ASCII bytes, one bit each.
const fn byte_set(members: &[u8]) -> u128 {
    let mut bits = 0_u128;
    let mut i = 0;
    while i < members.len() {
        bits |= 1 << members[i];
        i += 1;
    }
    bits
}

const DIGITS: &[u8] = b"0123456789";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// ASCII letters and digits.
const ALNUM: u128 = byte_set(DIGITS) | byte_set(LETTERS);
/// RFC 5322 `atext`: letters, digits and these symbols.
const ATEXT: u128 = ALNUM | byte_set(b"!#$%&'*+-/=?^_`{|}~");
/// What a host-name label may hold.
const LABEL: u128 = ALNUM | byte_set(b"-");

/// Whether byte `c` is in `set` (never for bytes past ASCII).
#[inline]
fn in_set(set: u128, c: u8) -> bool {
    c < 128 && set >> c & 1 == 1
}

/// SWAR masks: a one in every byte, and every byte's high bit.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Per lane of `x`, the high bit set when the byte is an ASCII letter or digit.
#[inline]
fn alnum_lanes(x: u64) -> u64 {
    // With the high bit set first, `v - k` keeps it exactly when `v >= k` (no borrow
    // crosses lanes: `k` is below 0x80); `!x` drops bytes past ASCII. Setting 0x20
    // folds upper-case letters onto lower-case ones and moves no other byte into
    // `a..=z`.
    let at_least = |v: u64, k: u8| (v | HIGH).wrapping_sub(ONES * u64::from(k));
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let folded = x | (ONES * 0x20);
    let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    (digit | letter) & !x & HIGH
}

/// Where the `@` is when `b` starts with a run of ASCII letters and digits ended by
/// an `@`, found eight bytes at a time; `None` when it does not (or the run reaches
/// the last eight bytes), for the byte-at-a-time test.
#[inline]
fn alnum_local_part(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let other = !alnum_lanes(u64::from_le_bytes(*chunk)) & HIGH;
        if other != 0 {
            let at = i + (other.trailing_zeros() / 8) as usize;
            return (at > 0 && b.get(at) == Some(&b'@')).then_some(at);
        }
        i += 8;
    }
    None
}

/// Where the `@` of `local@rest` is, when `local` is a plain local part (see
/// [`Email`]) and `rest` has no `@` and is 1 to 254 bytes long.
pub(super) fn plain_local_part(b: &[u8]) -> Option<usize> {
    // Letters and digits alone (the common local part) are plain atext with no dot:
    // the byte loop would accept them, and their `@` is the first one.
    if let Some(at) = alnum_local_part(b) {
        let domain = b.len() - at - 1;
        return (at <= 64 && domain > 0 && domain <= 254).then_some(at);
    }
    plain_local_part_bytewise(b)
}

/// [`plain_local_part`] a byte at a time (the reference its word route is tested
/// against).
pub(super) fn plain_local_part_bytewise(b: &[u8]) -> Option<usize> {
    let at = b.iter().position(|&c| c == b'@')?;
    let (local, domain) = (b.get(..at)?, b.get(at + 1..)?);
    if local.is_empty() || local.len() > 64 || domain.is_empty() || domain.len() > 254 {
        return None;
    }
    // Dot-separated atoms, none empty: no dot first, last, or twice in a row.
    let mut previous = b'.';
    for &c in local {
        let ok = if c == b'.' {
            previous != b'.'
        } else {
            in_set(ATEXT, c)
        };
        if !ok {
            return None;
        }
        previous = c;
    }
    if previous == b'.' {
        return None;
    }
    Some(at)
}

/// Whether `domain` is non-empty labels of letters, digits and '-', each 1 to 63
/// bytes, starting and ending with a letter or digit (a second `@` is refused here).
fn plain_domain(domain: &[u8]) -> bool {
    let mut label = 0_usize;
    let mut previous = b'.';
    for &c in domain {
        if c == b'.' {
            if !in_set(ALNUM, previous) {
                return false;
            }
            label = 0;
        } else {
            let first = label == 0;
            label += 1;
            let ok = in_set(if first { ALNUM } else { LABEL }, c);
            if !ok || label > 63 {
                return false;
            }
        }
        previous = c;
    }
    in_set(ALNUM, previous)
}
