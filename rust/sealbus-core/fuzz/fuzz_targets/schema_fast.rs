//! The compiled schemas (fast path, then the crate when unsure) against the
//! `jsonschema` crate's own validator on `serde_json`'s value. The first byte picks
//! one of `oracle::FAST_SCHEMAS`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    sealbus_core::oracle::fast_schema_agrees(which, body);
});
