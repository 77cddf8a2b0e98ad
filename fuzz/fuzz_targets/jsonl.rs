//! The JSON Lines reader on any bytes: one item per non-blank line, bad lines named
//! by line number, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stance::batch::{Item, read_jsonl};

fuzz_target!(|data: &[u8]| {
    let mut warnings = Vec::new();
    let items = read_jsonl(data, "<fuzz>", &mut warnings);
    let expected = data.split(|&b| b == b'\n').filter(|l| !String::from_utf8_lossy(l).trim().is_empty()).count();
    assert_eq!(items.len(), expected, "one item per non-blank line");
    for it in &items {
        if let Item::Bad { error, .. } = it {
            assert!(error.contains("<fuzz>:"), "error does not name input and line: {error}");
        }
    }
});
