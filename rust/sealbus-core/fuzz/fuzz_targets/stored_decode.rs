//! The stored-event decoder (a log record's payload, read back from disk) must return
//! `Ok` or `Err(LogCorrupted)` on any bytes, never panic, and what it accepts must
//! store again and decode to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealbus_core::error::Error;
use sealbus_core::route::stored::{decode, encode};

fuzz_target!(|data: &[u8]| {
    match decode(data, 1, "fuzz") {
        Ok(e) => {
            let mut again = Vec::new();
            encode(&e, &mut again).expect("a decoded event stores again");
            assert_eq!(decode(&again, 1, "fuzz").expect("re-decodes"), e);
        }
        Err(Error::LogCorrupted { offset: 1, .. }) => {}
        Err(other) => panic!("not a LogCorrupted error: {other:?}"),
    }
});
