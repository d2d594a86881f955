//! `equals-ignore-case` as EventBridge's engine defines it (event-ruler's
//! `EqualsIgnoreCaseParser`): each character of the pattern stands for its lowercase
//! or its uppercase form, each as a whole (Java's `toLowerCase(Locale.ROOT)` and
//! `toUpperCase(Locale.ROOT)` of the one character: full mappings, no context), and
//! an event string matches when it is such forms one after another. So `"ß"` matches
//! `"ß"` and `"SS"` but not `"ss"`, and `"k"` matches `"k"` and `"K"` but not the
//! Kelvin sign (U+212A), whose lowercase is `"k"`: the event's own characters are not
//! folded. Forms may differ in length (`"ΰ"` is 2 bytes, its uppercase `"Ϋ́"` 6).
//!
//! For lookups every string also gets a `key`: each character replaced by the
//! lowercase of its uppercase, repeated until nothing changes (`"ß"` -> `"ss"`,
//! `"ẞ"` -> `"ß"` -> `"ss"`, the Kelvin sign -> `"k"`). Equal keys are
//! necessary for a match (a character's two forms have its key), not sufficient, so
//! a hit found by key is confirmed by `matches*` unless both strings are ASCII, where
//! equal keys are a match.
//!
//! Characters outside the Basic Multilingual Plane are taken whole; event-ruler's
//! Java code goes through their UTF-16 halves, which have no case.

/// A character's lowercase and uppercase forms, as UTF-8.
type Forms = (Box<[u8]>, Box<[u8]>);

/// An ignore-case operand: its text, the two forms of each of its characters and
/// its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct IgnoreCase {
    text: Box<str>,
    forms: Vec<Forms>,
    key: Box<str>,
}

/// The lookup key of `s` (see the module docs), appended to `out`. ASCII is
/// lowercased in place of the general mapping, which it equals there.
pub(crate) fn key_into(s: &str, out: &mut String) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        return;
    }
    let start = out.len();
    let mut cur: String = s.to_owned();
    // Each round maps every character to the lowercase of its uppercase; a few
    // characters need a second round (ẞ -> ß -> ss).
    for _ in 0..4 {
        let mut next = String::with_capacity(cur.len());
        for c in cur.chars() {
            for u in c.to_uppercase() {
                next.extend(u.to_lowercase());
            }
        }
        if next == cur {
            break;
        }
        cur = next;
    }
    out.truncate(start);
    out.push_str(&cur);
}

pub(crate) fn key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    key_into(s, &mut out);
    out
}

impl IgnoreCase {
    pub(crate) fn new(text: &str) -> IgnoreCase {
        let forms = text
            .chars()
            .map(|c| {
                let lower: String = c.to_lowercase().collect();
                let upper: String = c.to_uppercase().collect();
                (lower.into_bytes().into(), upper.into_bytes().into())
            })
            .collect();
        IgnoreCase {
            text: text.into(),
            forms,
            key: key(text).into(),
        }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn is_ascii(&self) -> bool {
        self.text.is_ascii()
    }

    /// Byte offsets where a match of the whole operand can end, starting at 0.
    fn ends(&self, v: &[u8]) -> Vec<usize> {
        let mut at = vec![0usize];
        for (lower, upper) in &self.forms {
            let mut next = Vec::with_capacity(at.len() + 1);
            for &o in &at {
                for form in [lower, upper] {
                    if v[o..].starts_with(form) {
                        next.push(o + form.len());
                    }
                }
            }
            next.sort_unstable();
            next.dedup();
            if next.is_empty() {
                return next;
            }
            at = next;
        }
        at
    }

    /// Does all of `v` match?
    pub(crate) fn matches(&self, v: &[u8]) -> bool {
        self.ends(v).contains(&v.len())
    }

    /// Does `v` start with a match?
    pub(crate) fn matches_prefix(&self, v: &[u8]) -> bool {
        !self.ends(v).is_empty()
    }

    /// Does `v` end with a match? (Forms taken from the end, as event-ruler's
    /// suffix parser reverses the operand.)
    pub(crate) fn matches_suffix(&self, v: &[u8]) -> bool {
        let mut at = vec![v.len()];
        for (lower, upper) in self.forms.iter().rev() {
            let mut next = Vec::with_capacity(at.len() + 1);
            for &o in &at {
                for form in [lower, upper] {
                    if v[..o].ends_with(form) {
                        next.push(o - form.len());
                    }
                }
            }
            next.sort_unstable();
            next.dedup();
            if next.is_empty() {
                return false;
            }
            at = next;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{key, IgnoreCase};

    fn eq(p: &str, v: &str) -> bool {
        IgnoreCase::new(p).matches(v.as_bytes())
    }

    /// event-ruler `EqualsIgnoreCaseParserTest`: each character's two forms, of
    /// different lengths for `ⱥ` (3 bytes) and `Ⱥ` (2 bytes).
    #[test]
    fn each_character_stands_for_its_two_forms() {
        let p = IgnoreCase::new("1aA*†Éⱥ");
        let forms: Vec<(&[u8], &[u8])> = p.forms.iter().map(|(l, u)| (&l[..], &u[..])).collect();
        assert_eq!(forms[0], (&b"1"[..], &b"1"[..]));
        assert_eq!(forms[1], (&b"a"[..], &b"A"[..]));
        assert_eq!(forms[2], (&b"a"[..], &b"A"[..]));
        assert_eq!(forms[4], ("†".as_bytes(), "†".as_bytes()));
        assert_eq!(forms[5], ("é".as_bytes(), "É".as_bytes()));
        assert_eq!(forms[6], ("ⱥ".as_bytes(), "Ⱥ".as_bytes()));
        assert!(eq("1aA*†Éⱥ", "1Aa*†éȺ"));
        assert!(!eq("1aA*†Éⱥ", "1Aa*†éȺx"));
    }

    #[test]
    fn forms_of_other_lengths_and_characters_without_a_pair() {
        // ΰ uppercases to three characters (6 bytes), ß to two.
        assert!(eq("\u{3b0}", "\u{3a5}\u{308}\u{301}"));
        assert!(!eq("\u{3a5}\u{308}\u{301}", "\u{3b0}"));
        assert!(eq("straße", "STRASSE"));
        assert!(!eq("straße", "strasse"));
        assert!(!eq("STRASSE", "straße"));
        // The Kelvin sign lowercases to k; k does not uppercase to it.
        assert!(eq("\u{212a}", "k"));
        assert!(eq("\u{212a}", "\u{212a}"));
        assert!(!eq("k", "\u{212a}"));
        assert!(!eq("K", "\u{212a}"));
        // U+2C7F and U+0240 are each other's forms, 3 and 2 bytes long.
        assert!(eq("Ɀ", "ɀ"));
        assert!(eq("ɀ", "Ɀ"));
        // İ lowercases to i and a combining dot.
        assert!(eq("İ", "i\u{307}"));
        assert!(!eq("İ", "i"));
        assert!(!eq("i", "İ"));
        // Prefix and suffix with forms of other lengths.
        assert!(IgnoreCase::new("ßa").matches_prefix("SSAx".as_bytes()));
        assert!(IgnoreCase::new("aß").matches_suffix("xASS".as_bytes()));
        assert!(!IgnoreCase::new("aß").matches_suffix("xAss".as_bytes()));
        assert!(IgnoreCase::new("ⱥ").matches_suffix("xȺ".as_bytes()));
        assert!(IgnoreCase::new("").matches(b""));
        assert!(IgnoreCase::new("").matches_prefix(b"x"));
    }

    /// The key is necessary for a match: every character's two forms have the
    /// character's key, for every character there is.
    #[test]
    fn both_forms_of_every_character_share_its_key() {
        let mut odd = Vec::new();
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let k = key(c.encode_utf8(&mut [0; 4]));
            let lower: String = c.to_lowercase().collect();
            let upper: String = c.to_uppercase().collect();
            if key(&lower) != k || key(&upper) != k {
                odd.push(c);
            }
        }
        assert!(odd.is_empty(), "{odd:?}");
    }
}
