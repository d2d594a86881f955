//! The frame decoder must return `Ok` or `Err(Frame)` on any bytes, never panic, and
//! what it accepts must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealbus_core::seal::frame::{decode, FrameWriter};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = decode(data) {
        let w = FrameWriter::new(f.mode, f.key_id, &f.recipients).expect("decoded frame re-encodes");
        let pt_len = f.sealed.len() - 16;
        assert_eq!(w.frame_len(pt_len), data.len());
    }
});
