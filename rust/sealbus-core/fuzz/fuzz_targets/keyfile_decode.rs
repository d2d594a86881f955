//! Hostile key files: any `KeyFile` error is fine, a panic is not, and whatever
//! decodes must encode and decode again to the same keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealbus_core::seal::keyfile;
use sealbus_core::Error;

fuzz_target!(|data: &[u8]| {
    match keyfile::decode(data, "fuzz") {
        Err(e) => assert!(matches!(e, Error::KeyFile { .. }), "{e}"),
        Ok(doc) => {
            let again = keyfile::decode(&keyfile::encode(&doc).expect("encode"), "again")
                .expect("a decoded file re-encodes");
            assert_eq!(doc.keys.len(), again.keys.len());
            for (a, b) in doc.keys.iter().zip(&again.keys) {
                assert_eq!((&a.id, a.state, a.created, a.nonce_high_water),
                           (&b.id, b.state, b.created, b.nonce_high_water));
                assert_eq!(a.key.as_ref().map(|k| **k), b.key.as_ref().map(|k| **k));
            }
        }
    }
});
