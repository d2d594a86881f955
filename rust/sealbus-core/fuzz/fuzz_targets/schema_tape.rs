//! The schema tape (the JSON parser under validation) against `serde_json`: the same
//! accept/refuse (duplicate keys aside, refused on purpose) and the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealbus_core::oracle::tape_agrees(data);
});
