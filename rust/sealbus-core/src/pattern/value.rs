//! Value semantics shared by the parser and the matcher: numbers compared by decimal
//! value, EventBridge's numeric key space, IP addresses and
//! wildcard globs. One definition each, so a pattern and an event are read alike.

use std::fmt::Write as _;

/// Largest magnitude EventBridge compares numerically: 5.0e9, in millionths.
pub(crate) const NUMERIC_LIMIT_MICROS: i128 = 5_000_000_000_000_000;
/// Keys below and above every finite numeric key, for open-ended ranges.
pub(crate) const KEY_MIN: i64 = -(2 * 5_000_000_000_000_000 + 8);
pub(crate) const KEY_MAX: i64 = 2 * 5_000_000_000_000_000 + 8;

/// A JSON number split into sign, significant digits and exponent: value =
/// digits x 10^exp. Leading and trailing zeros are stripped, so two spellings of one
/// value (`300`, `300.0`, `3e2`) give the same `Decimal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Decimal {
    /// Parse JSON number text (`-?int(.frac)?([eE][+-]?exp)?`). `None` if it is not one.
    pub(crate) fn parse(text: &[u8]) -> Option<Decimal> {
        let mut i = 0;
        let neg = text.first() == Some(&b'-');
        if neg {
            i += 1;
        }
        let mut digits = Vec::with_capacity(text.len());
        let int_start = i;
        while i < text.len() && text[i].is_ascii_digit() {
            digits.push(text[i]);
            i += 1;
        }
        let int_len = i - int_start;
        if int_len == 0 || (int_len > 1 && text[int_start] == b'0') {
            return None;
        }
        let mut exp: i64 = 0;
        if i < text.len() && text[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < text.len() && text[i].is_ascii_digit() {
                digits.push(text[i]);
                i += 1;
                exp -= 1;
            }
            if i == frac_start {
                return None;
            }
        }
        if i < text.len() && (text[i] == b'e' || text[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < text.len() && (text[i] == b'+' || text[i] == b'-') {
                eneg = text[i] == b'-';
                i += 1;
            }
            let e_start = i;
            let mut e: i64 = 0;
            while i < text.len() && text[i].is_ascii_digit() {
                // Saturate: an exponent this large is far outside any range we compare.
                e = e
                    .saturating_mul(10)
                    .saturating_add(i64::from(text[i] - b'0'));
                i += 1;
            }
            if i == e_start {
                return None;
            }
            e = e.min(i64::MAX / 4);
            exp = exp.saturating_add(if eneg { -e } else { e });
        }
        if i != text.len() {
            return None;
        }
        let d = Self::normalise(neg, digits, exp);
        // A number too small for an f64 is 0 to serde_json and to EventBridge (which
        // reads numbers as doubles), so it is 0 here too.
        let magnitude = d
            .exp
            .saturating_add(i64::try_from(d.digits.len()).unwrap_or(i64::MAX));
        if !d.digits.is_empty()
            && magnitude < -300
            && std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                == Some(0.0)
        {
            return Some(Self::normalise(false, Vec::new(), 0));
        }
        Some(d)
    }

    fn normalise(neg: bool, mut digits: Vec<u8>, mut exp: i64) -> Decimal {
        let lead = digits.iter().take_while(|&&d| d == b'0').count();
        digits.drain(..lead);
        while digits.last() == Some(&b'0') {
            digits.pop();
            exp = exp.saturating_add(1);
        }
        if digits.is_empty() {
            // -0 and 0 are one value.
            return Decimal {
                neg: false,
                digits,
                exp: 0,
            };
        }
        Decimal { neg, digits, exp }
    }

    /// Canonical text (`-123e-2`, `0`): equal strings iff equal values.
    pub(crate) fn canonical_into(&self, out: &mut String) {
        out.clear();
        if self.digits.is_empty() {
            out.push('0');
            return;
        }
        if self.neg {
            out.push('-');
        }
        for &d in &self.digits {
            out.push(char::from(d));
        }
        let _ = write!(out, "e{}", self.exp);
    }

    pub(crate) fn canonical(&self) -> String {
        let mut s = String::new();
        self.canonical_into(&mut s);
        s
    }

    /// The value in millionths as (floor, exact) when |value| <= 5e9; `None` outside.
    fn micros(&self) -> Option<(i128, bool)> {
        if self.digits.is_empty() {
            return Some((0, true));
        }
        let n = i64::try_from(self.digits.len()).ok()?;
        let e = self.exp.checked_add(6)?;
        let (mag, exact) = if e >= 0 {
            if n + e > 17 {
                return None;
            }
            let mut v: i128 = 0;
            for &d in &self.digits {
                v = v * 10 + i128::from(d - b'0');
            }
            for _ in 0..e {
                v *= 10;
            }
            (v, true)
        } else {
            let k = -e;
            let keep = n - k;
            if keep > 17 {
                return None;
            }
            let mut v: i128 = 0;
            if keep > 0 {
                for &d in &self.digits[..usize::try_from(keep).ok()?] {
                    v = v * 10 + i128::from(d - b'0');
                }
            }
            // Trailing zeros were stripped, so dropped digits always include a non-zero.
            (v, false)
        };
        let limit = if exact {
            NUMERIC_LIMIT_MICROS
        } else {
            NUMERIC_LIMIT_MICROS - 1
        };
        if mag > limit {
            return None;
        }
        Some((if self.neg { -mag } else { mag }, exact))
    }

    /// Position on the numeric key line: 2*v for a value v (in millionths) that is
    /// exact, 2*floor(v)+1 for one strictly between two millionths. Bounds are always
    /// exact, so comparing keys compares values exactly. `None` outside +-5e9.
    pub(crate) fn numeric_key(&self) -> Option<i64> {
        let (m, exact) = self.micros()?;
        let key = if exact {
            2 * m
        } else if self.neg {
            // value = -(|m| + f): floor is m - 1, strictly above it.
            2 * (m - 1) + 1
        } else {
            2 * m + 1
        };
        i64::try_from(key).ok()
    }

    /// For pattern operands: the exact key, or why the number cannot be an operand.
    pub(crate) fn operand_key(&self) -> Result<i64, &'static str> {
        match self.micros() {
            None => Err("numeric values must be between -5.0e9 and 5.0e9 inclusive"),
            Some((_, false)) => {
                Err("numeric values may have at most 6 digits after the decimal point")
            }
            Some((m, true)) => i64::try_from(2 * m).map_err(|_| "numeric value out of range"),
        }
    }
}

/// `Decimal::parse(text)?.numeric_key()` without building a `Decimal`, for the common
/// plain form `-?int(.frac)?` with at most 10 integer and 6 fraction digits (exact in
/// millionths). `None` means "use the general path", not "out of range".
pub(crate) fn plain_numeric_key(text: &[u8]) -> Option<i64> {
    let (neg, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // One pass: the digits of both parts into one integer, counting each part's
    // digits (this runs for every number leaf a range looks at; the split-then-check
    // form walked the text four times). Wrapping arithmetic: a value that could wrap
    // has more than 16 digits and is refused by the length checks below, unused.
    let mut v = 0i64;
    let (mut n_int, mut n_frac) = (0usize, 0usize);
    let mut dot = false;
    for &c in body {
        if c.is_ascii_digit() {
            v = v.wrapping_mul(10).wrapping_add(i64::from(c - b'0'));
            if dot {
                n_frac += 1;
            } else {
                n_int += 1;
            }
        } else if c == b'.' && !dot {
            dot = true;
        } else {
            return None;
        }
    }
    if n_int == 0 || n_int > 10 || n_frac > 6 || (dot && n_frac == 0) {
        return None;
    }
    if n_int > 1 && body[0] == b'0' {
        return None;
    }
    let scale = [1_000_000, 100_000, 10_000, 1_000, 100, 10, 1][n_frac];
    let micros = v * scale;
    if i128::from(micros) > NUMERIC_LIMIT_MICROS {
        return None;
    }
    Some(2 * if neg { -micros } else { micros })
}

/// The two-pass form `plain_numeric_key` replaced: the reference its tests compare to.
#[cfg(test)]
pub(crate) fn plain_numeric_key_reference(text: &[u8]) -> Option<i64> {
    let (neg, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (int, frac) = match body.iter().position(|&c| c == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &b""[..]),
    };
    let plain = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int.is_empty() || int.len() > 10 || frac.len() > 6 || !plain(int) || !plain(frac) {
        return None;
    }
    if int.len() > 1 && int[0] == b'0' || (frac.is_empty() && body.len() != int.len()) {
        return None;
    }
    let digits = |d: &[u8]| d.iter().fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
    let scale = [1_000_000, 100_000, 10_000, 1_000, 100, 10, 1][frac.len()];
    let micros = digits(int) * 1_000_000 + digits(frac) * scale;
    if i128::from(micros) > NUMERIC_LIMIT_MICROS {
        return None;
    }
    Some(2 * if neg { -micros } else { micros })
}

/// Text of a `serde_json` number that `Decimal::parse` reads back to the same value.
pub(crate) fn serde_number_text(n: &serde_json::Number) -> String {
    if let Some(u) = n.as_u64() {
        u.to_string()
    } else if let Some(i) = n.as_i64() {
        i.to_string()
    } else {
        // Shortest round-trip digits, as Python's repr() gives them.
        format!("{:e}", n.as_f64().unwrap_or(0.0))
    }
}

/// An IP address as (`is_v6`, bits). Only strings shaped like EventBridge's IP regexes
/// are tried, so host names are never mistaken for addresses.
pub(crate) fn parse_ip(s: &str) -> Option<(bool, u128)> {
    let b = s.as_bytes();
    let v4_shape = !b.is_empty()
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && s.matches('.').count() == 3
        && !s.split('.').any(str::is_empty);
    if v4_shape {
        return s
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(|a| (false, u128::from(u32::from(a))));
    }
    let v6_shape = b.contains(&b':') && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b':');
    if v6_shape {
        return s
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|a| (true, u128::from(a)));
    }
    None
}

/// Mask keeping the top `len` bits of an address of `width` bits.
pub(crate) fn net_mask(v6: bool, len: u8) -> u128 {
    let width: u32 = if v6 { 128 } else { 32 };
    let len = u32::from(len).min(width);
    if len == 0 {
        return 0;
    }
    let all: u128 = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    let host_bits = width - len;
    if host_bits == 0 {
        all
    } else {
        all & !((1u128 << host_bits) - 1)
    }
}

/// A wildcard pattern: literal pieces between unescaped `*`. A string matches when it
/// starts with the first piece, ends with the last, and holds the middle ones in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Glob {
    pieces: Vec<Vec<u8>>,
}

impl Glob {
    /// Parse EventBridge wildcard syntax: `\*` is a literal star, `\\` a literal
    /// backslash, any other escape is refused, and so are two `*` in a row.
    pub(crate) fn parse(src: &str) -> Result<Glob, String> {
        let b = src.as_bytes();
        let mut pieces = vec![Vec::new()];
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'*' => {
                    if b.get(i + 1) == Some(&b'*') {
                        return Err(format!("consecutive wildcard characters at position {i}"));
                    }
                    pieces.push(Vec::new());
                }
                b'\\' => match b.get(i + 1) {
                    Some(&c @ (b'*' | b'\\')) => {
                        if let Some(p) = pieces.last_mut() {
                            p.push(c);
                        }
                        i += 1;
                    }
                    _ => return Err(format!("invalid escape character at position {i}")),
                },
                c => {
                    if let Some(p) = pieces.last_mut() {
                        p.push(c);
                    }
                }
            }
            i += 1;
        }
        Ok(Glob { pieces })
    }

    /// The literal pieces between the unescaped `*`s (one more than there are `*`s).
    pub(crate) fn pieces(&self) -> &[Vec<u8>] {
        &self.pieces
    }

    /// The literal text before the first `*` (all of it if there is no `*`).
    pub(crate) fn head(&self) -> &[u8] {
        self.pieces.first().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn is_match(&self, s: &[u8]) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return s.is_empty();
        };
        let Some((last, middle)) = rest.split_last() else {
            return s == first.as_slice();
        };
        if s.len() < first.len() + last.len() || !s.starts_with(first) || !s.ends_with(last) {
            return false;
        }
        // Leftmost-first search of each middle piece is exact for `*`-only globs.
        let mut hay = &s[first.len()..s.len() - last.len()];
        for piece in middle {
            match find(hay, piece) {
                Some(at) => hay = &hay[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical_number(text: &[u8]) -> Option<String> {
        Decimal::parse(text).map(|d| d.canonical())
    }

    fn canon(s: &str) -> String {
        canonical_number(s.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(canon("300"), canon("300.0"));
        assert_eq!(canon("300"), canon("3e2"));
        assert_eq!(canon("300"), canon("3.00E+2"));
        assert_eq!(canon("0"), canon("-0.0"));
        assert_ne!(canon("300"), canon("300.5"));
        assert!(canonical_number(b"01").is_none());
        assert!(canonical_number(b"1.").is_none());
        assert!(canonical_number(b"--1").is_none());
    }

    fn key(s: &str) -> Option<i64> {
        Decimal::parse(s.as_bytes()).and_then(|d| d.numeric_key())
    }

    #[test]
    fn numeric_keys_order_exactly() {
        assert_eq!(key("1.5"), Some(3_000_000));
        assert_eq!(key("0.0000005"), Some(1));
        assert_eq!(key("-0.0000005"), Some(-1));
        assert!(key("0.0000015") > key("0.000001"));
        assert!(key("0.0000015") < key("0.000002"));
        assert_eq!(key("5e9"), Some(10_000_000_000_000_000));
        assert_eq!(key("5000000000.0000001"), None);
        assert_eq!(key("-5e9"), Some(-10_000_000_000_000_000));
        assert_eq!(key("1e300"), None);
        assert_eq!(key("1e-300"), Some(1));
        // Below the smallest f64 a number is 0, as serde_json and EventBridge read it.
        assert_eq!(key("1.772067020094074e-1123"), Some(0));
        assert_eq!(key("-1e-400"), Some(0));
        assert_eq!(key("1e-320"), Some(1));
    }

    #[test]
    fn operands_are_limited() {
        let d = |s: &str| Decimal::parse(s.as_bytes()).map(|d| d.operand_key());
        assert!(matches!(d("0.1234567"), Some(Err(_))));
        assert!(matches!(d("5000000001"), Some(Err(_))));
        assert!(matches!(d("0.123456"), Some(Ok(_))));
    }

    #[test]
    fn globs() {
        let g = |p: &str| Glob::parse(p).unwrap_or_else(|e| panic!("{e}"));
        assert!(g("*.png").is_match(b"a.png"));
        assert!(g("a*b*c").is_match(b"abc"));
        assert!(g("a*b*c").is_match(b"axxbyyc"));
        assert!(!g("a*b*c").is_match(b"acb"));
        assert!(g("a\\*b").is_match(b"a*b"));
        assert!(!g("a\\*b").is_match(b"axb"));
        assert!(g("*").is_match(b""));
        assert!(g("ab*ab").is_match(
            b"ab"[..]
                .iter()
                .chain(b"ab")
                .copied()
                .collect::<Vec<_>>()
                .as_slice()
        ));
        assert!(!g("aba*aba").is_match(b"aba"));
        assert!(Glob::parse("a**b").is_err());
        assert!(Glob::parse("a\\b").is_err());
        assert!(Glob::parse("a\\").is_err());
    }

    #[test]
    fn ips() {
        assert_eq!(parse_ip("10.0.0.1"), Some((false, 0x0a00_0001)));
        assert_eq!(parse_ip("::1"), Some((true, 1)));
        assert_eq!(parse_ip("example.com"), None);
        assert_eq!(parse_ip("1.2.3"), None);
        assert_eq!(net_mask(false, 24), 0xffff_ff00);
        assert_eq!(net_mask(false, 0), 0);
    }
}
