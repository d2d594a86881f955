//! Opening hostile frames with a key ring: any error is fine, a panic is not.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealbus_core::seal::{AadFields, KeyRing};

static RING: OnceLock<KeyRing> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let ring = RING.get_or_init(|| KeyRing::generate().expect("ring"));
    let aad = AadFields { event_id: "e", event_type: "t", source: "s", schema_version: 1 };
    let _ = ring.open(data, &aad);
});
