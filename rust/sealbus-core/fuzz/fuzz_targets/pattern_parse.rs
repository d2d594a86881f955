//! The pattern parser against `serde_json` (accept/refuse of the JSON, and a pattern
//! re-serialised by serde_json parses to one that matches the same). The first byte
//! says where the pattern text ends and the event begins.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(rest.len());
    let (pattern, event) = rest.split_at(cut);
    sealbus_core::oracle::pattern_parse_agrees(pattern, event);
});
