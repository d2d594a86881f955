//! The decoders of untrusted bytes, checked against independent decoders.
//!
//! Each function takes arbitrary bytes, runs one of our decoders and an independent
//! one (`serde_json`, the `jsonschema` crate) on them, and panics if they disagree:
//! on accept/refuse, and on what was decoded. The `cargo fuzz` targets in `fuzz/` and
//! the proptests in this crate's test suite call the same functions (as jiter's
//! `compare_to_serde` fuzz target does for its parser), so a disagreement the fuzzer
//! finds becomes a test by adding its input to [`tests`].
//!
//! Where we refuse more than the reference, on purpose, the function says so and
//! checks that this is the reason: the tape and the pattern scanner refuse duplicate
//! object keys, which `serde_json` accepts (keeping the last).

use std::sync::OnceLock;

use serde_json::Value;

use crate::pattern::{Pattern, PatternSet};
use crate::schema::tape::Document;
use crate::schema::CompiledSchema;

/// The schema tape (`schema/tape.rs`) against `serde_json::from_slice`.
///
/// # Panics
/// When they disagree.
pub fn tape_agrees(bytes: &[u8]) {
    let theirs = serde_json::from_slice::<Value>(bytes);
    match (Document::parse(bytes), theirs) {
        (Ok(doc), Ok(v)) => assert_eq!(doc.to_value(), v, "tape and serde_json decode differently"),
        (Err(_), Err(_)) => {}
        (Ok(doc), Err(e)) => panic!(
            "the tape accepts what serde_json refuses ({e}): {:?}",
            doc.to_value()
        ),
        (Err(e), Ok(v)) => assert!(
            e.reason.starts_with("duplicate object key") && has_duplicate_key(bytes),
            "the tape refuses what serde_json accepts ({e}): {v:?}"
        ),
    }
}

/// The pattern parser (`pattern/parse.rs`) on `text`, against `serde_json` for the
/// JSON, and against itself through `serde_json` for the pattern: a pattern we accept
/// must be accepted again from its `serde_json` form, and both must match `event` the
/// same way (see [`scanner_agrees`]).
///
/// # Panics
/// When they disagree.
pub fn pattern_parse_agrees(text: &[u8], event: &[u8]) {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let theirs = serde_json::from_str::<Value>(text);
    match (Pattern::parse_json(text), theirs) {
        (Ok(p), Ok(v)) => {
            let again = Pattern::from_value(&v)
                .expect("a pattern accepted from text is accepted from its value");
            let retext = Pattern::parse_json(&v.to_string())
                .expect("a pattern re-serialised by serde_json parses");
            for q in [&p, &again, &retext] {
                scanner_agrees(q, event);
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (ra, rb) = (
                set_of(&p).matches_json(event, &mut a),
                set_of(&retext).matches_json(event, &mut b),
            );
            assert_eq!(ra.is_ok(), rb.is_ok());
            assert_eq!(
                a, b,
                "a pattern and its re-serialised form match differently"
            );
        }
        (Err(_), Err(_) | Ok(_)) => {}
        (Ok(_), Err(e)) => panic!("a pattern parsed from text serde_json refuses ({e})"),
    }
}

/// The pattern scanner (`pattern/flatten.rs`, over raw bytes) against matching the
/// `serde_json` value of the same event: the scanner refuses exactly the events that
/// are not JSON objects (or hold a duplicate key), and matches the same patterns.
///
/// # Panics
/// When they disagree.
pub fn scanner_agrees(pattern: &Pattern, event: &[u8]) {
    let set = set_of(pattern);
    let mut ours = Vec::new();
    let scanned = set.matches_json(event, &mut ours);
    let theirs = serde_json::from_slice::<Value>(event);
    match (scanned, theirs) {
        (Ok(()), Ok(v)) => {
            assert!(v.is_object(), "the scanner accepts a non-object event");
            let mut by_value = Vec::new();
            set.matches_value(&v, &mut by_value);
            assert_eq!(
                ours, by_value,
                "the scanner and serde_json's value match differently"
            );
        }
        (Err(_), Err(_)) => {}
        (Ok(()), Err(e)) => panic!("the scanner accepts an event serde_json refuses ({e})"),
        (Err(e), Ok(v)) => assert!(
            !v.is_object() || has_duplicate_key(event),
            "the scanner refuses an object serde_json accepts ({e})"
        ),
    }
}

/// Schemas the fast path compiles (`schema/fast/`), each with a different mix of its
/// keywords; [`fast_schema_agrees`] picks one by index.
pub const FAST_SCHEMAS: &[&str] = &[
    r#"{"type":"object","required":["id","total"],"properties":{"id":{"type":"string","minLength":1,"maxLength":8},"total":{"type":"number","minimum":0,"exclusiveMaximum":1000},"n":{"type":"integer","maximum":5}},"additionalProperties":false}"#,
    r#"{"type":"array","items":{"enum":["a","b",1,null]},"minItems":1,"maxItems":3}"#,
    r#"{"type":"object","properties":{"s":{"type":"string","pattern":"^[a-z]{2}[0-9]$"},"u":{"type":"string","format":"uuid"},"d":{"type":"string","format":"date-time"}},"minProperties":1}"#,
    r##"{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"p":{"type":"object","properties":{"x":{"type":["integer","null"]}},"required":["x"]}},"type":"object","properties":{"a":{"$ref":"#/definitions/p"},"c":{"const":"k"}}}"##,
    r#"{"type":["string","boolean"],"maxLength":3}"#,
];

/// The compiled schema's verdict on `body` (fast path first, the crate when it is
/// unsure) against the `jsonschema` crate's own validator on `serde_json`'s value,
/// for schema `FAST_SCHEMAS[which % len]`. A body the tape refuses is invalid.
///
/// # Panics
/// When they disagree, or a schema of [`FAST_SCHEMAS`] does not compile.
pub fn fast_schema_agrees(which: u8, body: &[u8]) {
    static COMPILED: OnceLock<Vec<(CompiledSchema, jsonschema::Validator)>> = OnceLock::new();
    let all = COMPILED.get_or_init(|| {
        FAST_SCHEMAS
            .iter()
            .map(|text| {
                let schema: Value = serde_json::from_str(text).expect("the schemas above are JSON");
                let compiled = CompiledSchema::compile("oracle.test", 1, &schema)
                    .expect("the schemas above compile");
                assert!(compiled.has_fast_path(), "schema {text} has no fast path");
                let validator = jsonschema::validator_for(&schema)
                    .expect("the crate compiles the schemas above");
                (compiled, validator)
            })
            .collect()
    });
    let i = usize::from(which) % all.len();
    let (compiled, validator) = &all[i];
    let text = FAST_SCHEMAS[i];
    let expected = match serde_json::from_slice::<Value>(body) {
        Ok(v) => Document::parse(body).is_ok() && validator.is_valid(&v),
        Err(_) => false,
    };
    assert_eq!(
        compiled.is_valid_json(body),
        expected,
        "schema {text}: our verdict and the jsonschema crate's differ"
    );
}

fn set_of(pattern: &Pattern) -> PatternSet<u8> {
    let mut set = PatternSet::new();
    set.insert(0, pattern.clone());
    set
}

/// Whether some object in the JSON text `bytes` has the same key twice (`serde_json`
/// keeps the last; we refuse).
fn has_duplicate_key(bytes: &[u8]) -> bool {
    struct Dup(bool);
    impl<'de> serde::de::Visitor<'de> for Dup {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut keys = std::collections::HashSet::new();
            let mut dup = false;
            while let Some(k) = map.next_key::<String>()? {
                dup |= !keys.insert(k);
                dup |= map.next_value::<Any>()?.0;
            }
            Ok(dup || self.0)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut dup = false;
            while let Some(a) = seq.next_element::<Any>()? {
                dup |= a.0;
            }
            Ok(dup)
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    struct Any(bool);
    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Dup(false)).map(Any)
        }
    }
    serde_json::from_slice::<Any>(bytes).is_ok_and(|a| a.0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// JSON-ish bytes: valid JSON texts, cut and spliced, so both sides of every
    /// accept/refuse boundary come up (random bytes are almost never JSON).
    fn jsonish() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z\\\\\"\u{e9}\u{1F600}]{0,6}".prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        (
            value,
            any::<u8>(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 0..3),
        )
            .prop_map(|(v, how, at, junk)| {
                let text = v.to_string().into_bytes();
                let at = usize::from(at) % (text.len() + 1);
                match how % 4 {
                    0 | 1 => text,
                    2 => text[..at].to_vec(),
                    _ => [&text[..at], &junk[..], &text[at..]].concat(),
                }
            })
    }

    fn pattern_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#"{"a":[1,"x",null]}"#.to_owned()),
            Just(r#"{"a":[{"numeric":[">",0,"<=",5]}]}"#.to_owned()),
            Just(r#"{"b":{"c":[{"prefix":"a"}]}}"#.to_owned()),
            Just(r#"{"a":[{"exists":false}],"b":[{"anything-but":["x"]}]}"#.to_owned()),
            Just(r#"{"$or":[{"a":[true]},{"c":[{"wildcard":"*b*"}]}]}"#.to_owned()),
            "[{}\\[\\]\":,a-c0-9 ]{0,24}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn tape_agrees_with_serde_json(bytes in jsonish()) {
            tape_agrees(&bytes);
        }

        #[test]
        fn scanner_and_parser_agree_with_serde_json(p in pattern_text(), event in jsonish()) {
            pattern_parse_agrees(p.as_bytes(), &event);
        }

        #[test]
        fn fast_schemas_agree_with_the_jsonschema_crate(which in any::<u8>(), body in jsonish()) {
            fast_schema_agrees(which, &body);
        }
    }

    #[test]
    fn numbers_beyond_an_f64_are_refused_as_serde_json_refuses_them() {
        let p = Pattern::parse_json(r#"{"a":[1,"x",null]}"#).expect("pattern");
        let long = format!(r#"{{"a":{}}}"#, "9".repeat(400));
        let events = [
            r#"{"a":[-1e00000947247200296]}"#,
            r#"{"a":1e309}"#,
            r#"{"b":1e999,"a":1}"#,
            r#"{"b":[{"c":-2E+400}],"a":1}"#,
            long.as_str(),
            r#"{"a":1e-999}"#,
            r#"{"a":1.5e308}"#,
            r#"{"a":1}"#,
        ];
        for e in events {
            scanner_agrees(&p, e.as_bytes());
        }
    }

    #[test]
    fn duplicate_keys_are_the_one_refusal_beyond_serde_json() {
        assert!(has_duplicate_key(br#"{"a":1,"a":2}"#));
        assert!(has_duplicate_key(br#"[{"b":[{"a":1,"a":2}]}]"#));
        assert!(!has_duplicate_key(br#"{"a":{"a":1}}"#));
        tape_agrees(br#"{"a":1,"a":2}"#);
    }
}
