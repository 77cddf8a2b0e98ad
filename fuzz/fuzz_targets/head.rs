//! Head files on any bytes: deserialised and checked as `HeadFile::load` does; a head
//! that passes is used as the pipeline uses it. Never a panic; errors name the file.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stance::score::{self, Head, HeadFile};

fuzz_target!(|data: &[u8]| {
    let Ok(hf) = serde_json::from_slice::<HeadFile>(data) else { return };
    let path = Path::new("fuzz.json");
    match hf.check(path) {
        Err(e) => assert!(e.to_string().contains("fuzz.json"), "error does not name the file: {e}"),
        Ok(()) => {
            let dim = hf.dim;
            // A fused head's lexical model is a file beside it: missing here, which must
            // be an error naming the head, never a panic.
            let head: Box<dyn Head> = match hf.into_head(path) {
                Ok(h) => h,
                Err(e) => {
                    assert!(e.to_string().contains("fuzz.json"), "error does not name the file: {e}");
                    return;
                }
            };
            if dim <= 1 << 16 {
                let vecs = vec![vec![0.25f32; dim]; 2];
                let x = score::features(&vecs, head.features());
                let p = head.predict_proba(x.view(), &["a", "b"]);
                assert_eq!(p.dim(), (2, 3));
            }
        }
    }
});
