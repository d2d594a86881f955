//! Accept-only recognisers for the commonest `pattern` and `format` values.
//!
//! Each one is strict: it accepts a subset of what the crate's check accepts, and says
//! nothing about the rest. The fast path asks it first; when it accepts, the crate's
//! check would accept too, so the crate is not asked; otherwise the crate's check runs
//! as before. A verdict therefore never changes, whatever a recogniser misses; only a
//! recogniser that accepted something the crate refuses would be wrong, which is what
//! the differential tests in `fast/tests.rs` try to find (random and near-miss strings
//! against the crate's one-keyword validators).
//!
//! Why they exist: on the order workload the crate's checks (one call through a
//! one-keyword validator per string, and its `Sequence` matcher stepping a bit-parallel
//! automaton one byte at a time) were about a sixth of an event's cost; the shapes
//! below are a few independent byte tests.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The longest fixed-length pattern kept (positions are bits of a `u64`).
const MAX_POSITIONS: usize = 64;

/// The most byte ranges a position's class may have for the word-at-a-time test.
const MAX_RANGES: usize = 3;

/// SWAR masks: a one in every byte, and every byte's high bit.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// An anchored pattern that matches strings of one length, each position from an
/// ASCII class: `^ord-[0-9a-f]{12}$`, `^[A-Z]{3}-[0-9]{4}$`.
pub(super) struct FixedPattern {
    len: usize,
    /// For each ASCII byte, the positions it may take (bit `i` for position `i`).
    table: Box<[u64; 128]>,
    /// The same test eight positions at a time, when the pattern is at least eight
    /// long and no class has more than [`MAX_RANGES`] ranges (see [`Word`]).
    words: Option<Words>,
}

/// Eight-byte windows covering a pattern: at `0, 8, 16, ...` and a last one ending at
/// the pattern's end (overlapping the one before when the length is not a multiple of
/// eight: positions tested twice are tested against their own class both times).
struct Words {
    /// How many of each window's ranges are in use.
    ranges: usize,
    windows: Box<[Word]>,
}

/// One window: lane `k` (byte `k` of the little-endian word at `at`) is accepted when
/// it lies in `lo[r]..end[r]` for some `r`, each bound a byte per lane. An unused range
/// is `0x80..0x80`, which no ASCII byte is in.
struct Word {
    at: usize,
    lo: [u64; MAX_RANGES],
    end: [u64; MAX_RANGES],
}

impl Word {
    #[inline]
    fn accepts(&self, text: &[u8], ranges: usize) -> bool {
        let Some(chunk) = text.get(self.at..).and_then(<[u8]>::first_chunk::<8>) else {
            return false;
        };
        let x = u64::from_le_bytes(*chunk);
        if x & HIGH != 0 {
            return false;
        }
        let mut hit = 0_u64;
        for (lo, end) in self.lo.iter().zip(&self.end).take(ranges) {
            hit |= at_least(x, *lo) & !at_least(x, *end);
        }
        hit == HIGH
    }
}

/// Per byte lane, the high bit set exactly when `x`'s byte is at least `k`'s. Each of
/// `x`'s bytes must be ASCII and each of `k`'s at most `0x80`: with the high bit set
/// first, `0x80 + v - k` stays within the lane (no borrow crosses into the next one)
/// and keeps the high bit exactly when `v >= k`.
#[inline]
fn at_least(x: u64, k: u64) -> u64 {
    (x | HIGH).wrapping_sub(k) & HIGH
}

/// The maximal runs of a set of ASCII bytes, as `(first, last + 1)`.
fn runs(class: u128) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    let mut start = None;
    for b in 0..=128_u8 {
        let member = b < 128 && class >> b & 1 == 1;
        match (member, start) {
            (true, None) => start = Some(b),
            (false, Some(first)) => {
                out.push((first, b));
                start = None;
            }
            _ => {}
        }
    }
    out
}

impl Words {
    fn compile(positions: &[u128]) -> Option<Self> {
        let len = positions.len();
        if len < 8 {
            return None;
        }
        let classes: Vec<Vec<(u8, u8)>> = positions.iter().map(|&c| runs(c)).collect();
        let ranges = classes.iter().map(Vec::len).max()?;
        if ranges > MAX_RANGES {
            return None;
        }
        let mut starts: Vec<usize> = (0..len - 7).step_by(8).collect();
        if !len.is_multiple_of(8) {
            starts.push(len - 8);
        }
        let windows = starts
            .into_iter()
            .map(|at| {
                let mut lo = [[0x80_u8; 8]; MAX_RANGES];
                let mut end = [[0x80_u8; 8]; MAX_RANGES];
                for lane in 0..8 {
                    for (r, &(first, stop)) in classes.get(at + lane)?.iter().enumerate() {
                        *lo.get_mut(r)?.get_mut(lane)? = first;
                        *end.get_mut(r)?.get_mut(lane)? = stop;
                    }
                }
                Some(Word {
                    at,
                    lo: lo.map(u64::from_le_bytes),
                    end: end.map(u64::from_le_bytes),
                })
            })
            .collect::<Option<Box<[Word]>>>()?;
        Some(Words { ranges, windows })
    }
}

impl FixedPattern {
    /// The recogniser for `pattern`, or `None` when it is not that shape.
    ///
    /// The pattern is read the way the crate runs it: translated from ECMA 262 by
    /// `jsonschema_regex::to_rust_regex` (the version the crate links), then parsed by
    /// `regex_syntax` with the `regex` crate's default settings (what the crate's
    /// `regex::Regex::new` uses). Non-ASCII members of a class are dropped, which only
    /// narrows what is accepted.
    pub(super) fn compile(pattern: &str) -> Option<Self> {
        let translated = jsonschema_regex::to_rust_regex(pattern).ok()?;
        let hir = regex_syntax::parse(&translated).ok()?;
        let HirKind::Concat(items) = hir.kind() else {
            return None;
        };
        let (first, rest) = items.split_first()?;
        let (last, middle) = rest.split_last()?;
        if !matches!(first.kind(), HirKind::Look(Look::Start))
            || !matches!(last.kind(), HirKind::Look(Look::End))
        {
            return None;
        }
        let mut positions: Vec<u128> = Vec::new();
        for item in middle {
            push_positions(item, &mut positions)?;
            if positions.len() > MAX_POSITIONS {
                return None;
            }
        }
        let mut table = Box::new([0_u64; 128]);
        for (at, class) in positions.iter().enumerate() {
            for (byte, slot) in table.iter_mut().enumerate() {
                if class >> byte & 1 == 1 {
                    *slot |= 1 << at;
                }
            }
        }
        Some(FixedPattern {
            len: positions.len(),
            table,
            words: Words::compile(&positions),
        })
    }

    /// The one length of the strings it accepts.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether no position allows a byte that JSON spells differently inside a string
    /// (a quote, a backslash, a control byte): every string it accepts is then its own
    /// JSON spelling, with no quote in it (what [`super::Fused`] needs).
    pub(super) fn is_plain(&self) -> bool {
        let specials = (0..0x20_usize).chain([usize::from(b'"'), usize::from(b'\\')]);
        specials
            .into_iter()
            .all(|b| self.table.get(b).is_some_and(|&t| t == 0))
    }

    /// Whether `text` certainly matches.
    #[inline]
    pub(super) fn accepts(&self, text: &[u8]) -> bool {
        if text.len() != self.len {
            return false;
        }
        if let Some(words) = &self.words {
            // Eight positions per step instead of one: a few word operations per
            // range instead of a table load and shift per byte.
            return words.windows.iter().all(|w| w.accepts(text, words.ranges));
        }
        self.accepts_bytewise(text)
    }

    /// The bytes each position allows (from the table the byte-at-a-time test uses).
    #[cfg(test)]
    pub(super) fn allowed(&self) -> Vec<Vec<u8>> {
        (0..self.len)
            .map(|at| {
                (0..128_u8)
                    .filter(|&b| self.table[usize::from(b)] >> at & 1 == 1)
                    .collect()
            })
            .collect()
    }

    /// Whether the word-at-a-time test is in use (tests check both routes).
    #[cfg(test)]
    pub(super) fn has_words(&self) -> bool {
        self.words.is_some()
    }

    /// [`FixedPattern::accepts`] one byte at a time (used below eight positions or
    /// with many ranges, and as the reference the word test is checked against).
    #[inline]
    pub(super) fn accepts_bytewise(&self, text: &[u8]) -> bool {
        if text.len() != self.len {
            return false;
        }
        // Independent tests per byte (no automaton state carried from one to the next):
        // a miss anywhere, or a byte past ASCII, leaves a bit in `miss`.
        let mut miss = 0_u64;
        for (at, &b) in text.iter().enumerate() {
            let allowed = self.table[usize::from(b & 0x7f)];
            miss |= (!allowed >> at & 1) | u64::from(b >> 7);
        }
        miss == 0
    }
}

/// Append the positions `hir` stands for, if it is a literal, a class, or one of them
/// repeated a fixed number of times.
fn push_positions(hir: &Hir, positions: &mut Vec<u128>) -> Option<()> {
    match hir.kind() {
        HirKind::Literal(literal) => {
            for &b in &*literal.0 {
                if !b.is_ascii() {
                    return None;
                }
                positions.push(1 << b);
            }
        }
        HirKind::Class(class) => positions.push(ascii_members(class)),
        HirKind::Repetition(rep) if Some(rep.min) == rep.max => {
            let one = match rep.sub.kind() {
                HirKind::Class(class) => ascii_members(class),
                HirKind::Literal(literal) => match &*literal.0 {
                    [b] if b.is_ascii() => 1 << b,
                    _ => return None,
                },
                _ => return None,
            };
            let n = usize::try_from(rep.min).ok()?;
            if n > MAX_POSITIONS {
                return None;
            }
            positions.extend(std::iter::repeat_n(one, n));
        }
        HirKind::Capture(capture) => push_positions(&capture.sub, positions)?,
        _ => return None,
    }
    Some(())
}

/// The ASCII members of `class` as a bit set.
fn ascii_members(class: &Class) -> u128 {
    let mut bits = 0_u128;
    let mut add = |lo: u32, hi: u32| {
        for c in lo..=hi.min(127) {
            bits |= 1 << c;
        }
    };
    match class {
        Class::Unicode(u) => u
            .iter()
            .for_each(|r| add(u32::from(r.start()), u32::from(r.end()))),
        Class::Bytes(b) => b
            .iter()
            .for_each(|r| add(u32::from(r.start()), u32::from(r.end()))),
    }
    bits
}

/// Accepts the RFC 4122 text form `8-4-4-4-12` hex digits (either case), which both
/// the crate's `uuid` format and the project's draft-7 `uuid` accept.
#[inline]
pub(super) fn uuid(text: &[u8]) -> bool {
    let Some(b) = text.first_chunk::<36>() else {
        return false;
    };
    if text.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return false;
    }
    // The 32 hex digits as four words: 0..8, 9..13 with 14..18, 19..23 with 24..28,
    // and 28..36 (constant indexes into the array: nothing can go out of bounds).
    let words = [
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        u64::from_le_bytes([b[9], b[10], b[11], b[12], b[14], b[15], b[16], b[17]]),
        u64::from_le_bytes([b[19], b[20], b[21], b[22], b[24], b[25], b[26], b[27]]),
        u64::from_le_bytes([b[28], b[29], b[30], b[31], b[32], b[33], b[34], b[35]]),
    ];
    words.into_iter().all(hex_word)
}

/// Whether all eight bytes of `x` are ASCII hex digits.
#[inline]
fn hex_word(x: u64) -> bool {
    // Per byte, with no borrow between bytes: with the high bit set first, `v - k`
    // keeps it exactly when `v >= k` (both below 0x80).
    let below = |v: u64, k: u8| (v | HIGH).wrapping_sub(ONES * u64::from(k)) & HIGH;
    if x & HIGH != 0 {
        return false;
    }
    // Digits: '0'..='9'. Letters: fold case (set 0x20), then 'a'..='f'.
    let digit = below(x, b'0') & !below(x, b'9' + 1);
    let folded = x | (ONES * 0x20);
    let letter = below(folded, b'a') & !below(folded, b'f' + 1);
    (digit | letter) == HIGH
}

/// Two ASCII digits at `b[at..at + 2]` as a number.
#[inline]
fn two(b: &[u8], at: usize) -> Option<u8> {
    match b.get(at..at + 2)? {
        &[h @ b'0'..=b'9', l @ b'0'..=b'9'] => Some((h - b'0') * 10 + (l - b'0')),
        _ => None,
    }
}

/// Accepts `YYYY-MM-DD` with a real day of that month (leap years by the Gregorian
/// rule), as the crate's `date` does.
#[inline]
pub(super) fn date(text: &[u8]) -> bool {
    text.len() == 10 && date_prefix(text)
}

/// The first ten bytes are a `date` (see [`date`]).
fn date_prefix(b: &[u8]) -> bool {
    let (Some(century), Some(yy), Some(month), Some(day)) =
        (two(b, 0), two(b, 2), two(b, 5), two(b, 8))
    else {
        return false;
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || day == 0 {
        return false;
    }
    let year = u16::from(century) * 100 + u16::from(yy);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    day <= days
}

/// Accepts RFC 3339 `date-time` as `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`
/// with an upper-case `T`, a real date, hours to 23, minutes and seconds to 59 and an
/// offset to 23:59. Leap seconds (`:60`, valid only at 23:59 UTC) and lower-case
/// separators are left to the crate.
#[inline]
pub(super) fn date_time(b: &[u8]) -> bool {
    match b.first_chunk::<20>() {
        Some(utc) if b.len() == 20 => date_time_utc(utc),
        _ => date_time_general(b),
    }
}

/// Days per month, for a year that is not a leap year (index 0 unused).
const MONTH_DAYS: [u8; 13] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A byte of '0' in every lane.
const ZEROS: u64 = ONES * 0x30;

/// Whether `x`, with the lanes in `separators` (0xff per lane) equal to those of
/// `expected` and the others ASCII digits; gives the lanes' digit values (separator
/// lanes 0).
#[inline]
fn digits_and_separators(x: u64, separators: u64, expected: u64) -> Option<u64> {
    if x & separators != expected {
        return None;
    }
    let d = (x & !separators) | (ZEROS & separators);
    if d & HIGH != 0 {
        return None;
    }
    let digit = at_least(d, ZEROS) & !at_least(d, ONES * u64::from(b'9' + 1));
    (digit == HIGH).then(|| d - ZEROS)
}

/// [`date_time_general`] on its only 20-byte form, `YYYY-MM-DDTHH:MM:SSZ`, as three
/// word tests and a few lane extractions instead of a test per field.
///
/// Why: the order workload's timestamps all take this form, and the per-pair parse
/// cost about 190 instructions an event. The tests check that both routes agree on
/// every 20-byte string they try, not only that this one stays inside the crate.
#[inline]
fn date_time_utc(b: &[u8; 20]) -> bool {
    let (lo, rest) = b.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let (mid, hi) = rest.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let Some(&[h0, h1, h2, h3]) = hi.first_chunk::<4>() else {
        return false;
    };
    // "YYYY-MM-", "DDTHH:MM", ":SSZ" padded with '0's.
    let words = (
        digits_and_separators(
            u64::from_le_bytes(*lo),
            0xff00_00ff_0000_0000,
            0x2d00_002d_0000_0000,
        ),
        digits_and_separators(
            u64::from_le_bytes(*mid),
            0x0000_ff00_00ff_0000,
            0x0000_3a00_0054_0000,
        ),
        digits_and_separators(
            u64::from_le_bytes([h0, h1, h2, h3, b'0', b'0', b'0', b'0']),
            0x0000_0000_ff00_00ff,
            0x0000_0000_5a00_003a,
        ),
    );
    let (Some(lo), Some(mid), Some(hi)) = words else {
        return false;
    };
    // Two digit lanes `k`, `k + 1` of `v` as a number.
    #[allow(clippy::cast_possible_truncation)] // each lane holds one digit
    let pair =
        |v: u64, k: u32| ((v >> (8 * k)) as u8 & 0xf) * 10 + ((v >> (8 * k + 8)) as u8 & 0xf);
    let (century, yy, month) = (pair(lo, 0), pair(lo, 2), pair(lo, 5));
    let (day, hour, minute, second) = (pair(mid, 0), pair(mid, 3), pair(mid, 6), pair(hi, 1));
    let year = u16::from(century) * 100 + u16::from(yy);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let Some(&days) = MONTH_DAYS.get(usize::from(month)) else {
        return false;
    };
    let days = days + u8::from(month == 2 && leap);
    day != 0 && day <= days && hour <= 23 && minute <= 59 && second <= 59
}

/// [`date_time`] for any length (the reference [`date_time_utc`] is tested against).
pub(super) fn date_time_general(b: &[u8]) -> bool {
    if b.len() < 20 || !date_prefix(b) || b.get(10) != Some(&b'T') {
        return false;
    }
    let (Some(h), Some(m), Some(s)) = (two(b, 11), two(b, 14), two(b, 17)) else {
        return false;
    };
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') || h > 23 || m > 59 || s > 59 {
        return false;
    }
    let mut rest = b.get(19..).unwrap_or_default();
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = fraction.get(digits..).unwrap_or_default();
    }
    match rest {
        b"Z" => true,
        [b'+' | b'-', offset @ ..] if offset.len() == 5 => {
            offset.get(2) == Some(&b':')
                && two(offset, 0).is_some_and(|h| h <= 23)
                && two(offset, 3).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}
