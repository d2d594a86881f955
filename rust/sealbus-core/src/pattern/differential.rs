//! The tuned scanner against the scanner it replaced (`flatten_reference`): on valid
//! events, mutated events and hand-picked tricky inputs, both must store the same
//! leaves (path, kind, text, array membership) or refuse with the same message (the
//! byte offset included).

use proptest::prelude::*;

use super::flatten::{self, PathTrie};
use super::flatten_reference as reference;

/// The paths the patterns of these tests use: nested, array-valued, escaped and
/// non-ASCII keys, and keys longer than a 16-byte print. Events also use dotted keys,
/// which both tries take as several steps at once.
const PATHS: &[&[&str]] = &[
    &["a"],
    &["ab"],
    &["b", "c"],
    &["b", "d", "e"],
    &["arr"],
    &["arr", "x"],
    &["k\"q"],
    &["caf\u{e9}"],
    &["a-key-longer-than-sixteen-bytes"],
    &["a-key-longer-than-sixteen-bytes", "z"],
    &["n"],
    &["s"],
];

fn tries() -> (PathTrie, reference::PathTrie) {
    let (mut new, mut old) = (PathTrie::new(), reference::PathTrie::new());
    for (i, p) in PATHS.iter().enumerate() {
        let p: Vec<Box<str>> = p.iter().map(|&k| k.into()).collect();
        let id = u32::try_from(i).unwrap_or(u32::MAX);
        new.insert(&p, id);
        old.insert(&p, id);
    }
    (new, old)
}

type Leaves = Vec<(u32, String, Vec<u8>, Vec<(u32, u32)>)>;

fn run_new(trie: &PathTrie, json: &[u8]) -> Result<Leaves, String> {
    run_new_in(&mut flatten::Flat::default(), trie, json)
}

/// With a `Flat` kept from earlier events (as the matcher keeps one per thread), so
/// whatever it remembers between events is exercised too.
fn run_new_in(flat: &mut flatten::Flat, trie: &PathTrie, json: &[u8]) -> Result<Leaves, String> {
    flatten::flatten_json(trie, json, flat).map_err(|e| e.to_string())?;
    Ok(leaves_of(flat, json))
}

/// `run_new_in` through the trusted scan (`flatten_json_trusted`).
fn run_trusted_in(
    flat: &mut flatten::Flat,
    trie: &PathTrie,
    json: &[u8],
) -> Result<Leaves, String> {
    flatten::flatten_json_trusted(trie, json, flat).map_err(|e| e.to_string())?;
    Ok(leaves_of(flat, json))
}

/// The leaves a scan left in `flat`, in a form both scanners can be compared in.
fn leaves_of(flat: &flatten::Flat, json: &[u8]) -> Leaves {
    flat.leaves
        .iter()
        .map(|l| {
            (
                l.path,
                format!("{:?}", l.kind),
                flat.text(json, l).to_vec(),
                flat.membership(l).to_vec(),
            )
        })
        .collect()
}

fn run_old(trie: &reference::PathTrie, json: &[u8]) -> Result<Leaves, String> {
    let mut flat = reference::Flat::default();
    reference::flatten_json(trie, json, &mut flat).map_err(|e| e.to_string())?;
    Ok(flat
        .leaves
        .iter()
        .map(|l| {
            (
                l.path,
                format!("{:?}", l.kind),
                flat.text(l).to_vec(),
                flat.membership(l).to_vec(),
            )
        })
        .collect())
}

/// The validating scan agrees with the reference on any input; the trusted scan
/// agrees on what the reference accepts (valid JSON) and, on the rest, only must not
/// panic (its result on invalid JSON is unspecified).
fn agree(json: &[u8]) -> Result<(), TestCaseError> {
    let (new, old) = tries();
    let (n, o) = (run_new(&new, json), run_old(&old, json));
    prop_assert_eq!(&n, &o, "input {:?}", String::from_utf8_lossy(json));
    let t = run_trusted_in(&mut flatten::Flat::default(), &new, json);
    if o.is_ok() {
        prop_assert_eq!(&t, &o, "trusted, input {:?}", String::from_utf8_lossy(json));
    }
    Ok(())
}

/// For inputs known to be valid JSON: the trusted scan agrees with the reference,
/// refusals included (nesting too deep).
fn agree_trusted(json: &[u8]) -> Result<(), TestCaseError> {
    let (new, old) = tries();
    let (t, o) = (
        run_trusted_in(&mut flatten::Flat::default(), &new, json),
        run_old(&old, json),
    );
    prop_assert_eq!(&t, &o, "trusted, input {:?}", String::from_utf8_lossy(json));
    Ok(())
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("ab".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned()),
        Just("d".to_owned()),
        Just("e".to_owned()),
        Just("arr".to_owned()),
        Just("x".to_owned()),
        Just("k\"q".to_owned()),
        Just("caf\u{e9}".to_owned()),
        Just("a-key-longer-than-sixteen-bytes".to_owned()),
        Just("a-key-longer-than-sixteen-bytez".to_owned()),
        Just("z".to_owned()),
        Just("n".to_owned()),
        Just("s".to_owned()),
        // Dotted keys: several path steps at once (`b.d.e` is the path b, d, e).
        Just("b.c".to_owned()),
        Just("b.d".to_owned()),
        Just("d.e".to_owned()),
        Just("b.d.e".to_owned()),
        Just("a-key-longer-than-sixteen-bytes.z".to_owned()),
        "[a-z\"\\\\{}\\[\\],:]{0,20}",
    ]
}

fn leaf() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~]{0,24}".prop_map(Value::String),
        "[\"\\\\{}\\[\\]:,\u{e9}\u{1F600}\n\t\u{1}a-z]{0,30}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = serde_json::Value> {
    leaf().prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn event() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((key(), value()), 0..8).prop_map(|kv| {
        let m: serde_json::Map<String, serde_json::Value> = kv.into_iter().collect();
        serde_json::to_vec(&serde_json::Value::Object(m)).unwrap_or_default()
    })
}

/// Bytes that matter to a JSON scanner, for mutations.
const ALPHABET: &[u8] =
    b"{}[]\":,\\ \t\n\r0123456789-+.eEtrufalsnu\x00\x1f\x7f\xc3\xa9\xed\xa0\x80\xff/bx";

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    Splice(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop::sample::select(ALPHABET);
    let tricky = prop::sample::select(
        &[
            "\\u",
            "\\ud800",
            "\\udc00",
            "\\ud83d\\ude00",
            "\\u00e9",
            "\\uD800\\u0041",
            "\\x",
            "\\\"",
            "\\\\",
            "1e",
            "-0",
            "01",
            "1.",
            ".5",
            "tru",
            "nul",
            "\"\"",
            "[]",
            "{}",
            "[[[[",
            "]]]]",
            "\u{e9}",
        ][..],
    );
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), tricky).prop_map(|(i, s)| Edit::Splice(i, s)),
    ]
}

fn apply(mut json: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = json.len();
        match *e {
            Edit::Insert(i, b) => json.insert(i % (n + 1), b),
            Edit::Delete(i) if n > 0 => {
                json.remove(i % n);
            }
            Edit::Replace(i, b) if n > 0 => json[i % n] = b,
            Edit::Splice(i, s) => {
                let at = i % (n + 1);
                json.splice(at..at, s.bytes());
            }
            _ => {}
        }
    }
    json
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn valid_events_flatten_alike(json in event()) {
        agree(&json)?;
        agree_trusted(&json)?;
    }

    #[test]
    fn valid_events_with_spaces_and_padding_flatten_alike_when_trusted(
        json in event(),
        pretty in any::<bool>(),
        pad in 0..70usize,
    ) {
        // Pretty-printed (whitespace around every token) and shifted by `pad` leading
        // spaces, so skipped values start at every alignment of the 64-byte blocks.
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
        let body = if pretty { serde_json::to_vec_pretty(&v).unwrap_or_default() } else { json };
        let mut text = vec![b' '; pad];
        text.extend_from_slice(&body);
        agree_trusted(&text)?;
    }

    #[test]
    fn mutated_events_flatten_or_fail_alike(json in event(), edits in prop::collection::vec(edit(), 1..4)) {
        agree(&apply(json, &edits))?;
    }

    #[test]
    fn events_in_a_row_through_one_flat_flatten_alike(
        base in event(),
        events in prop::collection::vec(
            (any::<bool>(), event(), prop::collection::vec(edit(), 0..3)),
            1..12,
        )
    ) {
        let (new, old) = tries();
        let (other, other_old) = (PathTrie::new(), reference::PathTrie::new());
        let mut flat = flatten::Flat::default();
        // Variants of one event (keys mostly where the last event had them) and fresh
        // ones; each also through a second trie, so what the scanner remembers from
        // one trie must not leak into another.
        for (variant, fresh, edits) in events {
            let json = apply(if variant { base.clone() } else { fresh }, &edits);
            prop_assert_eq!(
                &run_new_in(&mut flat, &new, &json),
                &run_old(&old, &json),
                "input {:?}", String::from_utf8_lossy(&json)
            );
            prop_assert_eq!(
                &run_new_in(&mut flat, &other, &json),
                &run_old(&other_old, &json),
                "input {:?} (empty trie)", String::from_utf8_lossy(&json)
            );
            // The trusted scan through the same `Flat` (its key guesses shared).
            let o = run_old(&old, &json);
            let t = run_trusted_in(&mut flat, &new, &json);
            if o.is_ok() {
                prop_assert_eq!(&t, &o, "trusted, input {:?}", String::from_utf8_lossy(&json));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_fail_alike(json in prop::collection::vec(prop::sample::select(ALPHABET), 0..64)) {
        agree(&json)?;
    }
}

#[test]
fn hand_picked_inputs_flatten_or_fail_alike() {
    let deep_skip = format!("{{\"zz\":{}1{}}}", "[".repeat(130), "]".repeat(130));
    let deep_kept = format!("{{\"arr\":{}1{}}}", "[".repeat(130), "]".repeat(130));
    let deep_ok = format!("{{\"zz\":{}1{},\"a\":1}}", "[".repeat(120), "]".repeat(120));
    let cases: Vec<Vec<u8>> = [
        &br#"{"zz":"a \" quote ] and } brackets","a":"x"}"#[..],
        &br#"{"zz":{"q":"\"}","r":["]",{"s":"\\"}]},"a":1}"#[..],
        &br#"{"zz":"\ud800","a":1}"#[..],
        &br#"{"a":"\ud800"}"#[..],
        &br#"{"\ud800":1}"#[..],
        &br#"{"zz":{"\ud800":1}}"#[..],
        &br#"{"a\u0062":7}"#[..],
        &br#"{"k\"q":true}"#[..],
        &br#"{"zz":[1,2,,3],"a":1}"#[..],
        &br#"{"zz":{"x":01},"a":1}"#[..],
        &br#"{"zz":{"x":1.},"a":1}"#[..],
        &br#"{"zz":tru,"a":1}"#[..],
        &br#"{"zz":"unterminated}"#[..],
        &br#"{"zz":"ctl"}"#[..],
        &b"{\"zz\":\"\x01\"}"[..],
        &b"{\"zz\":\"\xff\"}"[..],
        &b"{\"a\":\"\xc3\xa9\"}"[..],
        &b"{\"caf\xc3\xa9\":\"\xc3\xa9\"}"[..],
        &br#"{"a":1} x"#[..],
        &br#"{"a":1}  "#[..],
        &br#" { "a" : 1 , "b" : { "c" : [ 1 , "x" ] } } "#[..],
        &br"[1]"[..],
        &br#""a""#[..],
        &br"{"[..],
        &br#"{"a""#[..],
        &br#"{"a":"#[..],
        &br#"{"a":1"#[..],
        &br#"{"a-key-longer-than-sixteen-bytes":{"z":5},"a-key-longer-than-sixteen-bytez":{"z":6}}"#[..],
        &br#"{"arr":[{"x":1},{"x":[2,3]}],"arr2":[]}"#[..],
        &br#"{"n":-0.5e+10,"s":"\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#[..],
    ]
    .iter()
    .map(|s| s.to_vec())
    .chain([deep_skip, deep_kept, deep_ok].map(String::into_bytes))
    .collect();
    for c in cases {
        if let Err(e) = agree(&c) {
            panic!("{e}");
        }
    }
    // Valid JSON the trusted scan must treat exactly as the validating one: nesting
    // past the limit in a skipped value (refused), just under it (accepted), brackets
    // and escaped quotes inside skipped strings, escapes at 64-byte block edges.
    let edge = |n: usize| format!("{{\"zz\":[\"{}\\\"]\",1],\"a\":2}}", "q".repeat(n));
    let mut valid: Vec<String> = vec![
        format!("{{\"zz\":{}1{}}}", "[".repeat(130), "]".repeat(130)),
        format!("{{\"zz\":{}1{},\"a\":1}}", "[".repeat(120), "]".repeat(120)),
        format!("{{\"zz\":{}1{},\"a\":1}}", "[".repeat(128), "]".repeat(128)),
        format!("{{\"zz\":{}{},\"a\":1}}", "[".repeat(128), "]".repeat(128)),
        format!("{{\"zz\":{}1{},\"a\":1}}", "[".repeat(127), "]".repeat(127)),
        format!("{{\"arr\":{}1{}}}", "[".repeat(130), "]".repeat(130)),
        format!(
            "{{\"b\":{{\"zz\":{}1{}}},\"a\":1}}",
            "[".repeat(127),
            "]".repeat(127)
        ),
        r#"{"zz":"a \" quote ] and } brackets","a":"x"}"#.to_owned(),
        r#"{"zz":{"q":"\"}","r":["]",{"s":"\\"}]},"a":1}"#.to_owned(),
        r#"{"zz":[true,false,null,-1.5e3,{}],"a":[1,{"x":2}],"arr":[{"x":[3,{"y":4}]}]}"#
            .to_owned(),
        r#"{"a":1,"a":{"z":1},"a":"dup","b":{"c":1,"c":2}}"#.to_owned(),
    ];
    valid.extend((40..140).map(edge));
    for c in valid {
        assert!(
            serde_json::from_str::<serde_json::Value>(&c).is_ok() || c.contains("[[[[[[[["),
            "not valid JSON: {c}"
        );
        if let Err(e) = agree_trusted(c.as_bytes()) {
            panic!("{e}");
        }
    }
}

/// Keys the scanner guessed from the previous event, then met with the bytes around
/// them changed: every byte of a compact event replaced (by a space, a colon, a
/// comma, a quote, a brace, a letter) or preceded by a space, each right after the
/// unchanged event went through the same `Flat`, so the guessed key (with its closing
/// quote and colon) and the comma-then-quote step are what meets the change.
/// The one-byte edits of `base` at position `k`: each of `replace` in place of its
/// byte, the byte removed (both only inside `base`), and each of `insert` put before it.
fn edits_at(base: &[u8], k: usize, replace: &[u8], insert: &[u8]) -> Vec<Vec<u8>> {
    let mut edited = Vec::new();
    if k < base.len() {
        for &c in replace {
            let mut e = base.to_vec();
            e[k] = c;
            edited.push(e);
        }
        let mut cut = base.to_vec();
        cut.remove(k);
        edited.push(cut);
    }
    for &c in insert {
        let mut e = base.to_vec();
        e.insert(k, c);
        edited.push(e);
    }
    edited
}

#[test]
fn edits_next_to_guessed_keys_flatten_or_fail_alike() {
    let base: &[u8] =
        br#"{"a":1,"ab":"x","b":{"c":2,"d":{"e":3}},"zz":"q","arr":[{"x":1},{"x":2}],"n":5}"#;
    let (new, old) = tries();
    let mut flat = flatten::Flat::default();
    let mut checked = 0;
    for k in 0..=base.len() {
        for e in edits_at(base, k, b" :,\"}x\t", b" ") {
            assert_eq!(
                run_new_in(&mut flat, &new, base),
                run_old(&old, base),
                "base"
            );
            assert_eq!(
                run_new_in(&mut flat, &new, &e),
                run_old(&old, &e),
                "input {:?}",
                String::from_utf8_lossy(&e)
            );
            checked += 1;
        }
    }
    assert!(checked > 600, "{checked}");
}

/// `edits_next_to_guessed_keys_flatten_or_fail_alike` with keys of every length
/// around the guess's 16-byte window: up to 14 bytes the closing quote and colon are
/// compared with the key in one masked word, at 15 and 16 they lie past it, past 16
/// keys are not guessed. Each edit is checked through the validating scan and, where
/// the edited event is still valid JSON, through the trusted one, both right after
/// the unchanged event taught the `Flat` its keys.
#[test]
fn edits_next_to_guessed_keys_of_every_length_flatten_or_fail_alike() {
    let keys = [
        "",
        "a",
        "abcdefghijklm",
        "abcdefghijklmn",
        "abcdefghijklmno",
        "abcdefghijklmnop",
        "abcdefghijklmnopq",
    ];
    let members: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("\"{k}\":{i}"))
        .collect();
    let base = format!("{{{},\"s\":\"end\"}}", members.join(","));
    let base = base.into_bytes();
    let (new, old) = tries();
    let mut flat = flatten::Flat::default();
    let mut checked = 0;
    for k in 0..=base.len() {
        for e in edits_at(&base, k, b" :,\"xq", b" z") {
            let want = run_old(&old, &e);
            assert_eq!(run_new_in(&mut flat, &new, &base), run_old(&old, &base));
            assert_eq!(
                run_new_in(&mut flat, &new, &e),
                want,
                "input {:?}",
                String::from_utf8_lossy(&e)
            );
            if want.is_ok() {
                assert_eq!(run_trusted_in(&mut flat, &new, &base), run_old(&old, &base));
                assert_eq!(
                    run_trusted_in(&mut flat, &new, &e),
                    want,
                    "trusted, input {:?}",
                    String::from_utf8_lossy(&e)
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}
