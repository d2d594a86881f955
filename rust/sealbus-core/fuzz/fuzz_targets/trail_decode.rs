//! The audit trail's decoder (a trail file, possibly edited by whoever could write
//! it) must give a verdict on any bytes, never panic: the entries it accepts are whole
//! lines, and a trail it accepts keeps verifying with one entry cut off the end (an
//! honest prefix is a trail). Checkpoints exported as JSON are parsed too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealbus_core::audit::{verify_bytes, Checkpoint};

fuzz_target!(|data: &[u8]| {
    let v = verify_bytes(data);
    let lines = data.iter().filter(|b| **b == b'\n').count() as u64;
    assert!(v.entries <= lines);
    if v.ok() && v.entries > 0 {
        // Keep every whole line but the last verified one.
        let keep = usize::try_from(v.entries - 1).unwrap_or(usize::MAX);
        let cut = if keep == 0 {
            0
        } else {
            data.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1)
                .nth(keep - 1)
                .unwrap_or(0)
        };
        let shorter = verify_bytes(&data[..cut]);
        assert!(shorter.ok() && shorter.entries == v.entries - 1);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::from_json(text) {
            assert_eq!(Checkpoint::from_json(&cp.to_json()).ok(), Some(cp));
        }
    }
});
