//! The pattern module's JSON scanner (events as raw bytes) against `serde_json`: it
//! refuses exactly what is not a JSON object (or holds a duplicate key), and matches
//! the same patterns as matching serde_json's value. The first byte picks a pattern.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealbus_core::pattern::Pattern;

const PATTERNS: &[&str] = &[
    r#"{"a":[1,"x",null,true]}"#,
    r#"{"a":[{"numeric":[">",0,"<=",5]}],"b":{"c":[{"prefix":"a"}]}}"#,
    r#"{"a":[{"exists":false}],"b":[{"anything-but":{"prefix":"x"}}]}"#,
    r#"{"$or":[{"a":[{"suffix":"z"}]},{"b":{"c":[{"wildcard":"*b*"}]}}]}"#,
    r#"{"a":[{"equals-ignore-case":"\u00c9t\u00e9"}],"c":[{"cidr":"10.0.0.0/8"}]}"#,
    r#"{"b":{"c":{"d":[3e2,-0.5]}},"a":[{"exists":true}]}"#,
];

fn patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| PATTERNS.iter().map(|t| Pattern::parse_json(t).expect("valid pattern")).collect())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, event)) = data.split_first() else {
        return;
    };
    let ps = patterns();
    sealbus_core::oracle::scanner_agrees(&ps[usize::from(which) % ps.len()], event);
});
