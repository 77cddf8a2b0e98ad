//! The E5S1 model-image reader on any bytes: an error naming the file, or a model
//! whose tensors can all be read; never a panic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stance::encode::e5s1::E5s1;

const NAMES: [&str; 9] = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b", "l0.q.w", "l0.fi.w", "l0.fo.w", "l0.oln.b"];

fuzz_target!(|data: &[u8]| {
    match E5s1::parse(Path::new("fuzz.bin"), data.to_vec()) {
        Ok(m) => {
            for name in NAMES {
                let _ = m.f32(name);
                let _ = m.raw(name);
            }
            let _ = m.type_embeddings();
        }
        Err(e) => assert!(e.to_string().contains("fuzz.bin"), "error does not name the file: {e}"),
    }
});
