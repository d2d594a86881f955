//! The one-pass checker: a strict RFC 8259 scanner (the tape's grammar) that validates
//! each value against its compiled node as it goes, and stops at the first certain
//! violation.

use super::text::DomainMemo;
use super::{
    FastSchema, Format, Fused, Members, Node, Verdict, ANY, DENIED, EXACT_F64_INT, T_ARR, T_BOOL,
    T_INT, T_NULL, T_NUM, T_OBJ, T_STR,
};
use crate::schema::tape::{Document, MAX_DEPTH};

/// SWAR masks: a one in every byte, and every byte's high bit.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// An object with more undeclared keys than this is left to the crate (the duplicate
/// check among them is pairwise).
const MAX_UNDECLARED_KEYS: usize = 64;

/// Powers of ten exact in `f64` (10^22 is the last).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `10^-k` rounded to nearest (Rust's literals are correctly rounded).
const INV_POW10: [f64; 23] = [
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14,
    1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22,
];

/// `2^-47`: the half-width, relative to an approximate quotient, of an interval sure to
/// hold the correctly rounded one (see [`Num::quotient`]).
const QUOTIENT_MARGIN: f64 = 1.0 / 140_737_488_355_328.0;

/// Buffers reused across bodies.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Spans of the undeclared keys of the objects being checked (a stack: each object
    /// truncates back to where it started).
    keys: Vec<(u32, u32)>,
    /// The one-node tape `pattern` and `format` checks run on.
    text: Document<'static>,
    /// The last e-mail domain checked, and its verdict (see [`super::text::Email`]).
    domain: DomainMemo,
    /// Learned key order (see [`super::KeyLit`]): per object rule, a row indexed by the
    /// previous key (0 at the object's start, `j + 1` after name `j`, the last entry
    /// after an undeclared key) holding the name that followed it last time
    /// ([`NO_PREDICTION`] before any). Only ever a guess: a wrong or stale entry (say,
    /// from a scratch used with another schema) costs a miss, nothing else.
    successors: Vec<u8>,
}

/// A [`Scratch::successors`] entry with nothing learned yet (no name has this index).
const NO_PREDICTION: u8 = u8::MAX;

/// Declared name `j` (value schema `sub`) seen in an object: a repeat is left to the
/// crate (the tape refuses duplicates), a name the schema denies makes it invalid.
#[allow(clippy::inline_always)] // once per member, on the hot path
#[inline(always)]
fn declared_once(seen: &mut u64, j: usize, sub: u32) -> Result<u32, Stop> {
    // `j` is below MAX_NAMES (64): an index into a rule's names. The wrapping shift
    // skips the overflow check's branch.
    #[allow(clippy::cast_possible_truncation)]
    let bit = 1_u64.wrapping_shl(j as u32);
    if *seen & bit != 0 {
        return Err(Stop::Unknown);
    }
    *seen |= bit;
    if sub == DENIED {
        return Err(Stop::Invalid);
    }
    Ok(sub)
}

#[derive(Clone, Copy)]
enum Stop {
    Invalid,
    Unknown,
}

type Step = Result<(), Stop>;

pub(super) fn run(schema: &FastSchema, bytes: &[u8], scratch: &mut Scratch) -> Verdict {
    if u32::try_from(bytes.len()).is_err() {
        return Verdict::Unknown;
    }
    // The tape refuses a body that is not UTF-8 as a whole; checking it once here lets
    // every string below be sliced as text without another pass.
    let Ok(src) = simdutf8::basic::from_utf8(bytes) else {
        return Verdict::Unknown;
    };
    let mut c = Checker::new(schema, src, scratch);
    let result = c.value(schema.root, 0).and_then(|()| {
        c.skip_ws();
        if c.i == bytes.len() {
            Ok(())
        } else {
            Err(Stop::Unknown)
        }
    });
    match result {
        Ok(()) => Verdict::Valid,
        Err(Stop::Invalid) => Verdict::Invalid,
        Err(Stop::Unknown) => Verdict::Unknown,
    }
}

struct Checker<'a> {
    src: &'a str,
    /// `src` as bytes.
    s: &'a [u8],
    i: usize,
    schema: &'a FastSchema,
    keys: &'a mut Vec<(u32, u32)>,
    text: &'a mut Document<'static>,
    domain: &'a mut DomainMemo,
    successors: &'a mut [u8],
}

impl<'a> Checker<'a> {
    /// A checker at the start of `src`, with `scratch` made ready for `schema`.
    fn new(schema: &'a FastSchema, src: &'a str, scratch: &'a mut Scratch) -> Self {
        scratch.keys.clear();
        if scratch.successors.len() < schema.successors {
            scratch.successors.resize(schema.successors, NO_PREDICTION);
        }
        Checker {
            src,
            s: src.as_bytes(),
            i: 0,
            schema,
            keys: &mut scratch.keys,
            text: &mut scratch.text,
            domain: &mut scratch.domain,
            successors: &mut scratch.successors,
        }
    }
}

/// A number as the tape reads it: `value` is exact when `exact` (the tape's `f64`, or an
/// integer of at most 2^53 in magnitude); `integer` is the crate's `is_integer`.
struct Num {
    value: f64,
    exact: bool,
    integer: bool,
    /// For a decimal `m / 10^k` (`k > 0`): `(m, 10^k)`, both exact, and `value` is then
    /// only `m * 10^-k`, near the tape's value (see [`Num::quotient`]).
    quotient: Option<(f64, f64)>,
}

impl Num {
    /// The tape's value is `m / 10^k` correctly rounded (one division). Bounds are
    /// first tried on `value = m * 10^-k` instead, which skips the division's latency:
    /// with `m` and `10^-k` each within half an ulp (`2^-53` relative), `value` is
    /// within `2^-51` of the quotient relative to itself, so `value * (1 ± 2^-47)`,
    /// rounded, brackets the tape's value with room to spare. Bounds describe an
    /// interval; when both ends meet them, the value between does too. Otherwise
    /// the exact quotient decides.
    #[inline]
    fn meets(&self, node: &Node) -> bool {
        if let Some((m, p)) = self.quotient {
            let d = self.value.abs() * QUOTIENT_MARGIN;
            if within_bounds(node, self.value - d) && within_bounds(node, self.value + d) {
                return true;
            }
            let exact = m / p;
            return within_bounds(node, if self.value < 0.0 { -exact } else { exact });
        }
        within_bounds(node, self.value)
    }
}

fn within_bounds(node: &Node, v: f64) -> bool {
    node.minimum.is_none_or(|l| v >= l)
        && node.ex_minimum.is_none_or(|l| v > l)
        && node.maximum.is_none_or(|l| v <= l)
        && node.ex_maximum.is_none_or(|l| v < l)
}

fn type_error(node: &Node, bit: u8) -> Step {
    if node.types & bit == 0 {
        Err(Stop::Invalid)
    } else {
        Ok(())
    }
}

impl Members {
    /// A member that is an array or object, or a number, might equal such an instance;
    /// the crate decides those.
    fn container_or_number(&self, numbers: bool) -> Step {
        if self.containers || (numbers && self.numbers) {
            Err(Stop::Unknown)
        } else {
            Err(Stop::Invalid)
        }
    }
}

impl Checker<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    /// Past JSON whitespace. Compact bodies have none, so the first test usually ends it.
    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    /// Inlined into its callers (objects, arrays, the root): most values are leaves, and
    /// a call per member cost more than the leaf's own checks. Containers are calls.
    #[allow(clippy::inline_always)] // measured: see above
    #[inline(always)]
    fn value(&mut self, id: u32, depth: usize) -> Step {
        let schema = self.schema;
        let Some(node) = schema.nodes.get(id as usize) else {
            return Err(Stop::Unknown);
        };
        if node.never {
            return Err(Stop::Invalid);
        }
        if self.peek() <= b' ' {
            self.skip_ws();
        }
        match self.peek() {
            b'"' => {
                if self.fused_string(node) {
                    Ok(())
                } else {
                    self.string_value(node)
                }
            }
            b'{' => self.object(node, depth + 1),
            b'[' => self.array(node, depth + 1),
            b't' => self.literal(b"true", node, T_BOOL, |m| m.truth),
            b'f' => self.literal(b"false", node, T_BOOL, |m| m.falsity),
            b'n' => self.literal(b"null", node, T_NULL, |m| m.null),
            b'-' | b'0'..=b'9' => self.number(node),
            _ => Err(Stop::Unknown),
        }
    }

    fn literal(
        &mut self,
        word: &'static [u8],
        node: &Node,
        bit: u8,
        member: fn(&Members) -> bool,
    ) -> Step {
        if self.s.get(self.i..self.i + word.len()) != Some(word) {
            return Err(Stop::Unknown);
        }
        self.i += word.len();
        type_error(node, bit)?;
        for m in &node.members {
            if !member(m) {
                return m.container_or_number(false);
            }
        }
        Ok(())
    }

    /// At an opening quote: the span of the string's raw text and its head word (the
    /// first eight bytes, zero-padded, as [`super::Name`] keeps them), past the closing
    /// quote. Escapes are left to the crate.
    #[allow(clippy::inline_always)] // a call here costs as much as the scan: measured
    #[inline(always)]
    fn string(&mut self) -> Result<(usize, usize, u64), Stop> {
        self.i += 1;
        let start = self.i;
        // The first word gives the head word for free.
        if let Some(x) = self.word() {
            let special = specials(x);
            if special != 0 {
                let k = special.trailing_zeros() / 8;
                self.i += k as usize;
                let head = x & ((1_u64 << (8 * k)) - 1);
                return self.closing().map(|end| (start, end, head));
            }
            self.i += 8;
            return self.rest_of_string().map(|end| (start, end, x));
        }
        let end = self.rest_of_string()?;
        Ok((start, end, head_word(self.s, start, end)))
    }

    /// The eight bytes at the cursor as a little-endian word, if there are eight.
    #[inline]
    fn word(&self) -> Option<u64> {
        let chunk = self.s.get(self.i..)?.first_chunk::<8>()?;
        Some(u64::from_le_bytes(*chunk))
    }

    /// Inside a string: up to its closing quote; returns where the text ends.
    fn rest_of_string(&mut self) -> Result<usize, Stop> {
        loop {
            if let Some(x) = self.word() {
                let special = specials(x);
                if special == 0 {
                    self.i += 8;
                    continue;
                }
                self.i += (special.trailing_zeros() / 8) as usize;
                return self.closing();
            }
            match self.peek() {
                b'"' => return self.closing(),
                b'\\' | 0..0x20 => return Err(Stop::Unknown),
                _ => self.i += 1,
            }
        }
    }

    /// At the first special byte of a string: its end if that is the closing quote.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn closing(&mut self) -> Result<usize, Stop> {
        if self.peek() == b'"' {
            let end = self.i;
            self.i += 1;
            Ok(end)
        } else {
            // An escape or a control character.
            Err(Stop::Unknown)
        }
    }

    /// At a string's opening quote: if the node's [`Fused`] test accepts the string,
    /// moves past its closing quote and returns true (the value is valid); otherwise
    /// leaves the cursor where it is.
    #[allow(clippy::inline_always)] // once per string value, on the hot path
    #[inline(always)]
    fn fused_string(&mut self, node: &Node) -> bool {
        let start = self.i + 1;
        match &node.fused {
            Fused::None => false,
            Fused::Literals(lits) => {
                let Some(next) = self.s.get(start..).and_then(<[u8]>::first_chunk::<16>) else {
                    return false;
                };
                let next = u128::from_le_bytes(*next);
                if let Some(l) = lits.iter().find(|l| l.matches(next)) {
                    self.i += usize::from(l.advance);
                    true
                } else {
                    false
                }
            }
            Fused::Pattern(len) => {
                let len = *len;
                self.s.get(start + len) == Some(&b'"')
                    && node
                        .pattern
                        .as_ref()
                        .and_then(|p| p.fixed())
                        .is_some_and(|f| {
                            self.s.get(start..start + len).is_some_and(|t| f.accepts(t))
                        })
                    && {
                        self.i = start + len + 1;
                        true
                    }
            }
            Fused::Format(shortcut, len) => {
                let len = *len;
                self.s.get(start + len) == Some(&b'"')
                    && self
                        .s
                        .get(start..start + len)
                        .is_some_and(|t| shortcut.accepts(t))
                    && {
                        self.i = start + len + 1;
                        true
                    }
            }
        }
    }

    fn string_value(&mut self, node: &Node) -> Step {
        let (a, b, head) = self.string()?;
        if !node.checks_text() {
            return type_error(node, T_STR);
        }
        let raw = self.s.get(a..b).ok_or(Stop::Unknown)?;
        type_error(node, T_STR)?;
        if !node.members.is_empty() {
            for m in &node.members {
                if !m.strings.iter().any(|s| s.is(raw, head)) {
                    return Err(Stop::Invalid);
                }
            }
        }
        // The body is UTF-8 (checked once up front) and `a`, `b` sit next to quotes.
        let text = self.src.get(a..b).ok_or(Stop::Unknown)?;
        if node.has_length && !length_within(text, node.min_len, node.max_len) {
            return Err(Stop::Invalid);
        }
        if let Some(p) = &node.pattern {
            if !p.is_valid(text, self.text) {
                return Err(Stop::Invalid);
            }
        }
        let format_ok = match &node.format {
            None => true,
            Some(Format::Crate(shortcut, check)) => {
                shortcut.is_some_and(|s| s.accepts(raw)) || check.is_valid(text, self.text)
            }
            Some(Format::Email(email)) => email.is_valid(text, self.text, self.domain),
        };
        if !format_ok {
            return Err(Stop::Invalid);
        }
        Ok(())
    }

    fn number(&mut self, node: &Node) -> Step {
        let n = match self.short_number() {
            Some(n) => n,
            None => self.scan_number()?,
        };
        type_error(node, if n.integer { T_INT } else { T_NUM })?;
        for m in &node.members {
            // Strings, booleans and null never equal a number.
            m.container_or_number(true)?;
        }
        if node.has_bounds() {
            if !n.exact {
                return Err(Stop::Unknown);
            }
            if !n.meets(node) {
                return Err(Stop::Invalid);
            }
        }
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(x) = self.word() {
            let n = leading_digits(x);
            self.i += n;
            if n < 8 {
                return self.i - start;
            }
        }
        while self.peek().is_ascii_digit() {
            self.i += 1;
        }
        self.i - start
    }

    /// The commonest numbers in one step: a non-negative decimal `d+` or `d+.d+` with
    /// one to seven digits on each side, no exponent, within the next sixteen bytes.
    /// Gives what [`Checker::scan_number`] gives for it (the same grammar and the same
    /// Clinger fast path: at most 14 digits, below 2^53, over at most 10^7); anything
    /// else is `None` and the cursor stays where it is, for `scan_number`.
    #[allow(clippy::inline_always)] // once per number, on the hot path
    #[inline(always)]
    fn short_number(&mut self) -> Option<Num> {
        let w = self.s.get(self.i..)?.first_chunk::<16>()?;
        let (head, _) = w.split_first_chunk::<8>()?;
        let int_len = leading_digits(u64::from_le_bytes(*head));
        // No digit ('-'), eight or more (long: the general scan), or a leading zero
        // before more digits (refused by the grammar: the general scan decides).
        if int_len == 0 || int_len == 8 || (w[0] == b'0' && int_len > 1) {
            return None;
        }
        let mut end = int_len;
        let mut frac_len = 0;
        if w.get(int_len) == Some(&b'.') {
            let frac = w.get(int_len + 1..)?.first_chunk::<8>()?;
            frac_len = leading_digits(u64::from_le_bytes(*frac));
            if frac_len == 0 || frac_len == 8 {
                return None;
            }
            end = int_len + 1 + frac_len;
        }
        // The byte after the digits (within the sixteen: `end` is at most 15) must not
        // start an exponent.
        if matches!(w.get(end), None | Some(b'e' | b'E')) {
            return None;
        }
        let whole = digits_value(u64::from_le_bytes(*head), int_len);
        let (m, fraction) = if frac_len == 0 {
            (whole, 0)
        } else {
            let frac = w.get(int_len + 1..)?.first_chunk::<8>()?;
            let fraction = digits_value(u64::from_le_bytes(*frac), frac_len);
            (
                whole * POW10_U64.get(frac_len).copied()? + fraction,
                fraction,
            )
        };
        self.i += end;
        #[allow(clippy::cast_precision_loss)] // below 10^14 < 2^53: exact
        let v = m as f64;
        if frac_len == 0 {
            return Some(Num {
                value: v,
                exact: true,
                integer: true,
                quotient: None,
            });
        }
        Some(Num {
            value: v * INV_POW10.get(frac_len).copied()?,
            exact: true,
            // `m / 10^k` is integral exactly when the fraction's digits are all zeros
            // (as `scan_number` decides: trailing zeros at least `k`).
            integer: fraction == 0,
            quotient: Some((v, POW10.get(frac_len).copied()?)),
        })
    }

    /// The tape's number grammar and value (see `tape::Parser::number`).
    #[allow(clippy::too_many_lines)] // one grammar, read top to bottom
    fn scan_number(&mut self) -> Result<Num, Stop> {
        let start = self.i;
        let negative = self.peek() == b'-';
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek() {
            b'0' => {
                self.i += 1;
                if self.peek().is_ascii_digit() {
                    return Err(Stop::Unknown);
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return Err(Stop::Unknown),
        }
        let int_end = self.i;
        let (mut frac_start, mut frac_end) = (int_end, int_end);
        if self.peek() == b'.' {
            self.i += 1;
            frac_start = self.i;
            if self.digits() == 0 {
                return Err(Stop::Unknown);
            }
            frac_end = self.i;
        }
        let mut exponent: i64 = 0;
        let mut has_exponent = false;
        if let b'e' | b'E' = self.peek() {
            has_exponent = true;
            self.i += 1;
            let exp_negative = match self.peek() {
                b'-' => {
                    self.i += 1;
                    true
                }
                b'+' => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let exp_start = self.i;
            let n = self.digits();
            if n == 0 {
                return Err(Stop::Unknown);
            }
            // Long exponents take the general parse below.
            exponent = if n > 6 {
                i64::MAX
            } else {
                let mut e: i64 = 0;
                for &d in self.s.get(exp_start..self.i).unwrap_or_default() {
                    e = e * 10 + i64::from(d - b'0');
                }
                if exp_negative {
                    -e
                } else {
                    e
                }
            };
        }
        let int_digits = self.s.get(int_start..int_end).unwrap_or_default();
        let frac_digits = self.s.get(frac_start..frac_end).unwrap_or_default();
        let is_float = frac_end > int_end || has_exponent;

        if !is_float {
            // The tape: `u64`/`i64` when it fits, `-0` and larger ones as `f64`. Up to 15
            // digits the magnitude is below 2^53 and exact either way; longer integer
            // literals only get their type checked here.
            if int_digits.len() > 15 {
                if int_digits.len() > 300 {
                    // Might overflow `f64` (the tape refuses infinities).
                    return Err(Stop::Unknown);
                }
                return Ok(Num {
                    value: 0.0,
                    exact: false,
                    integer: true,
                    quotient: None,
                });
            }
            let m = accumulate(int_digits, 0);
            #[allow(clippy::cast_precision_loss)] // below 10^15 < 2^53: exact
            let v = m as f64;
            return Ok(Num {
                value: if negative { -v } else { v },
                exact: true,
                integer: true,
                quotient: None,
            });
        }

        // Clinger's fast path: a mantissa below 2^53 and a power of ten up to 10^22 are
        // exact, so one multiplication or division rounds correctly, giving the same
        // `f64` as `str::parse` (which the tape uses).
        let significant = int_digits.len() + frac_digits.len();
        #[allow(clippy::cast_possible_wrap)] // a body is at most 4 GiB
        let scale = exponent.saturating_sub(frac_digits.len() as i64);
        let fast = if significant <= 19 && exponent != i64::MAX {
            let m = accumulate(frac_digits, accumulate(int_digits, 0));
            #[allow(clippy::cast_precision_loss)] // checked against 2^53 first
            (m <= EXACT_F64_INT && scale.unsigned_abs() <= 22).then(|| {
                let k = usize::try_from(scale.unsigned_abs()).unwrap_or(0);
                let (p, inverse) = (
                    POW10.get(k).copied().unwrap_or(1.0),
                    INV_POW10.get(k).copied().unwrap_or(1.0),
                );
                let m = m as f64;
                if scale < 0 {
                    (m * inverse, Some((m, p)))
                } else {
                    (m * p, None)
                }
            })
        } else {
            None
        };
        if let Some((v, quotient)) = fast {
            // Integral exactly when the decimal is (no float round trip): a scale of
            // zero or more multiplies, and a negative one divides evenly when the
            // digits are all zeros or end in at least that many. A decimal
            // `x = m / 10^k` that is not integral stays so after rounding: it is at
            // least `10^-k` from every integer, while half an ulp of it is at most
            // `x * 2^-53 = m * 2^-53 / 10^k`, below `10^-k` for `m <= 2^53` (equality
            // would need `x` a power of two and `m = 2^53` at once).
            let integer = scale >= 0 || {
                let zeros = frac_digits
                    .iter()
                    .rev()
                    .chain(int_digits.iter().rev())
                    .take_while(|&&d| d == b'0')
                    .count();
                zeros == significant || zeros as u64 >= scale.unsigned_abs()
            };
            return Ok(Num {
                value: if negative { -v } else { v },
                exact: true,
                integer,
                quotient,
            });
        }
        let text = self.s.get(start..self.i).unwrap_or_default();
        let parsed = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<f64>().ok());
        let value = match parsed {
            Some(v) if v.is_finite() => v,
            _ => return Err(Stop::Unknown),
        };
        // The crate's `is_integer` is `fract() == 0`; beyond 2^63 every `f64` is an
        // integer, below it the round trip through `i64` truncates exactly (an exact
        // comparison is the point).
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss,
            clippy::float_cmp
        )]
        let integer = value.abs() >= (1_u64 << 63) as f64 || (value as i64) as f64 == value;
        Ok(Num {
            value,
            exact: true,
            integer,
            quotient: None,
        })
    }

    #[inline(never)] // the recursion's call (see `value`)
    fn object(&mut self, node: &Node, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(Stop::Unknown);
        }
        type_error(node, T_OBJ)?;
        for m in &node.members {
            m.container_or_number(false)?;
        }
        let rule = node.object.as_deref();
        self.i += 1;
        let base = self.keys.len();
        let mut seen = 0_u64;
        let mut count = 0_u64;
        // The previous key, as a column of this rule's successor row.
        let mut prev = 0_usize;
        self.skip_ws();
        if self.peek() == b'}' {
            self.i += 1;
        } else {
            loop {
                if self.peek() != b'"' {
                    self.skip_ws();
                    if self.peek() != b'"' {
                        return Err(Stop::Unknown);
                    }
                }
                let target = if let Some((j, sub)) = self.predicted(rule, prev) {
                    prev = j + 1;
                    declared_once(&mut seen, j, sub)?
                } else {
                    let (a, b, head) = self.string()?;
                    let key = self.s.get(a..b).ok_or(Stop::Unknown)?;
                    let declared = rule.and_then(|r| r.find(key, head));
                    let sub = if let Some((j, sub)) = declared {
                        if let (Some(r), Some(entry)) = (rule, u8::try_from(j).ok()) {
                            if let Some(slot) = self.successors.get_mut(r.row + prev) {
                                *slot = entry;
                            }
                        }
                        prev = j + 1;
                        declared_once(&mut seen, j, sub)?
                    } else {
                        prev = rule.map_or(0, |r| r.names.len() + 1);
                        let sub = rule.map_or(Ok(ANY), additional)?;
                        self.undeclared(base, a, b)?;
                        sub
                    };
                    if self.peek() != b':' {
                        self.skip_ws();
                        if self.peek() != b':' {
                            return Err(Stop::Unknown);
                        }
                    }
                    self.i += 1;
                    sub
                };
                self.value(target, depth)?;
                count += 1;
                if self.peek() <= b' ' {
                    self.skip_ws();
                }
                match self.peek() {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Stop::Unknown),
                }
            }
        }
        self.keys.truncate(base);
        if let Some(rule) = rule {
            if seen & rule.required != rule.required
                || count < rule.min_props
                || count > rule.max_props
            {
                return Err(Stop::Invalid);
            }
        }
        Ok(())
    }

    /// At a key's opening quote: if the key is the one that followed `prev` last time
    /// (see [`super::KeyLit`]), moves past its colon and returns its name's index and
    /// value schema; otherwise leaves the cursor where it is.
    #[allow(clippy::inline_always)] // once per member, on the hot path
    #[inline(always)]
    fn predicted(&mut self, rule: Option<&super::ObjectRule>, prev: usize) -> Option<(usize, u32)> {
        let rule = rule?;
        let j = usize::from(*self.successors.get(rule.row + prev)?);
        let lit = rule.keys.get(j)?;
        let next = self.s.get(self.i + 1..)?.first_chunk::<16>()?;
        if !lit.matches(u128::from_le_bytes(*next)) {
            return None;
        }
        self.i += usize::from(lit.advance);
        Some((j, lit.target))
    }

    /// Record an undeclared key of the current object (whose keys start at `base`),
    /// refusing a duplicate as the tape does.
    #[allow(clippy::cast_possible_truncation)] // spans fit u32: the length was checked
    fn undeclared(&mut self, base: usize, a: usize, b: usize) -> Step {
        let s = self.s;
        let key = s.get(a..b).unwrap_or_default();
        let earlier = self.keys.get(base..).unwrap_or_default();
        if earlier.len() >= MAX_UNDECLARED_KEYS {
            return Err(Stop::Unknown);
        }
        for &(x, y) in earlier {
            if s.get(x as usize..y as usize) == Some(key) {
                return Err(Stop::Unknown);
            }
        }
        self.keys.push((a as u32, b as u32));
        Ok(())
    }

    #[inline(never)] // the recursion's call (see `value`)
    fn array(&mut self, node: &Node, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(Stop::Unknown);
        }
        type_error(node, T_ARR)?;
        for m in &node.members {
            m.container_or_number(false)?;
        }
        self.i += 1;
        let mut count = 0_u64;
        self.skip_ws();
        if self.peek() == b']' {
            self.i += 1;
        } else {
            loop {
                self.value(node.items, depth)?;
                count += 1;
                if count > node.max_items {
                    return Err(Stop::Invalid);
                }
                if self.peek() <= b' ' {
                    self.skip_ws();
                }
                match self.peek() {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Stop::Unknown),
                }
            }
        }
        if count < node.min_items {
            return Err(Stop::Invalid);
        }
        Ok(())
    }
}

fn additional(rule: &super::ObjectRule) -> Result<u32, Stop> {
    match rule.additional {
        super::Additional::Allow => Ok(ANY),
        super::Additional::Deny => Err(Stop::Invalid),
        super::Additional::Schema(sub) => Ok(sub),
    }
}

/// The SWAR mask of a word's bytes that end a plain string run ('"', '\\', control),
/// each flagged in its high bit. The lowest flag is always a real one: a borrow only
/// ever flags bytes above a real hit.
#[inline]
fn specials(x: u64) -> u64 {
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    ((quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash)
        | (x.wrapping_sub(ONES * 0x20) & !x))
        & HIGH
}

/// How many of `x`'s bytes, from the first (lowest), are ASCII digits before the first
/// that is not (8 when all are).
#[inline]
fn leading_digits(x: u64) -> usize {
    // Per byte, with no borrow between bytes: with the high bit set first, `v - k`
    // keeps it exactly when `v >= k` (both at most 0x80); `!x` keeps ASCII bytes only.
    let v = x | HIGH;
    let at_least_zero = v.wrapping_sub(ONES * u64::from(b'0'));
    let above_nine = v.wrapping_sub(ONES * u64::from(b'9' + 1));
    let digit = at_least_zero & !above_nine & !x & HIGH;
    (!digit & HIGH).trailing_zeros() as usize / 8
}

/// The first eight bytes of `s[a..b]` as a little-endian word, zero-padded (as
/// [`super::Name`] stores them).
#[inline]
fn head_word(s: &[u8], a: usize, b: usize) -> u64 {
    let len = b.saturating_sub(a);
    let mut word = [0_u8; 8];
    if let Some(chunk) = s.get(a..a + 8) {
        // A key or string is followed at least by its closing quote, so a full word is
        // usually there: load it and mask off what is past the text.
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        return if len >= 8 {
            w
        } else {
            w & ((1_u64 << (8 * len)) - 1)
        };
    }
    for (w, c) in word.iter_mut().zip(s.get(a..b).unwrap_or_default()) {
        *w = *c;
    }
    u64::from_le_bytes(word)
}

/// `10^k` for the digit counts [`Checker::short_number`] reads.
const POW10_U64: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The value of the first `n` bytes of `x` (1 to 7, ASCII digits, the first digit in
/// the lowest byte) as a decimal number.
///
/// Why: three multiply-shift steps instead of a multiply-add per digit. The digits are
/// moved to the top of the word (the low bytes, now zero, act as leading zeros), then
/// adjacent lanes are combined: pairs of digits into 16-bit lanes, pairs of those into
/// 32-bit lanes, then the two halves (the method of `simdjson`'s eight-digit parse).
#[inline]
#[allow(clippy::cast_possible_truncation)] // at most 56
fn digits_value(x: u64, n: usize) -> u64 {
    let shift = (8 * (8 - n.clamp(1, 8))) as u32;
    let v = (x & 0x0F0F_0F0F_0F0F_0F0F).wrapping_shl(shift);
    let v = (v.wrapping_mul(10 * 256 + 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100 * 65_536 + 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    v.wrapping_mul(10_000 * (1 << 32) + 1) >> 32
}

fn accumulate(digits: &[u8], start: u64) -> u64 {
    digits.iter().fold(start, |m, &d| {
        m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    })
}

/// Whether `text` has between `min` and `max` code points (what `minLength` and
/// `maxLength` count). A code point takes one to four bytes, so the byte length often
/// decides without counting.
fn length_within(text: &str, min: u64, max: u64) -> bool {
    let bytes = text.len() as u64;
    if min <= bytes.div_ceil(4) && bytes <= max {
        return true;
    }
    if bytes < min || bytes.div_ceil(4) > max {
        return false;
    }
    (min..=max).contains(&(text.chars().count() as u64))
}

/// A number's reading as comparable parts: value bits, exact, integer, quotient bits.
#[cfg(test)]
pub(super) type NumParts = (u64, bool, bool, Option<(u64, u64)>);

/// A number route's reading and where its cursor ended, if it took the number.
#[cfg(test)]
pub(super) type NumRead = Option<(NumParts, usize)>;

/// Both number routes over `bytes` from its start: [`Checker::short_number`]'s reading
/// and cursor (when it takes the number), and [`Checker::scan_number`]'s (when the
/// grammar accepts it), for tests that they agree.
#[cfg(test)]
pub(super) fn both_number_scans(schema: &FastSchema, bytes: &[u8]) -> (NumRead, NumRead) {
    let parts = |n: Num| {
        (
            n.value.to_bits(),
            n.exact,
            n.integer,
            n.quotient.map(|(m, p)| (m.to_bits(), p.to_bits())),
        )
    };
    let src = std::str::from_utf8(bytes).unwrap_or_default();
    let mut scratch = Scratch::default();
    let mut c = Checker::new(schema, src, &mut scratch);
    let short = c.short_number().map(|n| (parts(n), c.i));
    c.i = 0;
    let scanned = c.scan_number().ok().map(|n| (parts(n), c.i));
    (short, scanned)
}
