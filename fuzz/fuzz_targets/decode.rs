//! Decoding article bytes (BOMs, UTF-16, binary detection, lossy UTF-8) on any bytes:
//! text or an error naming the input; never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stance::input::decode_text;

fuzz_target!(|data: &[u8]| {
    for lossy in [false, true] {
        match decode_text("fuzz.txt", data, lossy) {
            Ok((_, warnings)) => assert!(lossy || warnings.is_empty(), "warnings without --lossy: {warnings:?}"),
            Err(e) => assert!(e.to_string().starts_with("fuzz.txt"), "error does not name the input: {e}"),
        }
    }
});
