//! Property tests of the parsers and the segmenter on hostile input: whatever the
//! bytes, no panic; bad input is an `Err` that names its file; and the segmenter's
//! output always slices the original text, in order, covering every visible character
//! exactly once. The same entry points are fuzzed by the targets in `fuzz/`.

use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use stance::batch::{Item, read_jsonl};
use stance::encode::e5s1::E5s1;
use stance::input::decode_text;
use stance::score::{Head, HeadFile};
use stance::segment::{Segmenter, Sentence, lines_as_sentences};

const CASES: u32 = 256;

// ---------------------------------------------------------------------------
// (a) Segmenter
// ---------------------------------------------------------------------------

/// Whitespace as the segmenter sees it: Unicode White_Space plus zero-width space and BOM.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{200B}' || c == '\u{FEFF}'
}

fn nonspace(s: &str) -> usize {
    // Visible: not whitespace, and not a format character that shows nothing by itself
    // (a piece of only those is not a sentence).
    s.chars()
        .filter(|&c| {
            !is_space(c)
                && !matches!(c, '\u{00AD}' | '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}')
        })
        .count()
}

/// Runs of whitespace collapsed to one space, trimmed (independent of the library's own).
fn collapse(s: &str) -> String {
    s.split(is_space).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Offsets are char boundaries slicing `text`; sentences are in order, trimmed, not
/// overlapping; `text` of each is its slice collapsed; and every visible character
/// of the input lies in exactly one sentence.
fn check_sentences(text: &str, sents: &[Sentence], what: &str) -> Result<(), TestCaseError> {
    let mut prev_end = 0usize;
    let mut covered = 0usize;
    for (i, s) in sents.iter().enumerate() {
        prop_assert_eq!(s.index, i, "{}: index of sentence {} in {:?}", what, i, text);
        prop_assert!(s.start < s.end, "{}: empty span {}..{} in {:?}", what, s.start, s.end, text);
        prop_assert!(
            s.start >= prev_end,
            "{}: sentence {} starts at {} before the previous end {} in {:?}",
            what,
            i,
            s.start,
            prev_end,
            text
        );
        prop_assert!(
            s.end <= text.len(),
            "{}: end {} past the text ({} bytes) in {:?}",
            what,
            s.end,
            text.len(),
            text
        );
        prop_assert!(
            text.is_char_boundary(s.start) && text.is_char_boundary(s.end),
            "{}: {}..{} is not on char boundaries in {:?}",
            what,
            s.start,
            s.end,
            text
        );
        let slice = &text[s.start..s.end];
        let first = slice.chars().next().unwrap();
        let last = slice.chars().next_back().unwrap();
        prop_assert!(
            !is_space(first) && !is_space(last),
            "{}: sentence {:?} is not trimmed in {:?}",
            what,
            slice,
            text
        );
        prop_assert_eq!(&collapse(slice), &s.text, "{}: text of {}..{} in {:?}", what, s.start, s.end, text);
        covered += nonspace(slice);
        prev_end = s.end;
    }
    prop_assert_eq!(
        covered,
        nonspace(text),
        "{}: visible characters covered by the sentences of {:?}",
        what,
        text
    );
    Ok(())
}

fn check_both(lang: &str, text: &str) -> Result<(), TestCaseError> {
    let sents = Segmenter::new(lang).segment(text);
    check_sentences(text, &sents, &format!("segment({lang})"))?;
    let lines = lines_as_sentences(text);
    check_sentences(text, &lines, "lines_as_sentences")?;
    for s in &lines {
        let slice = &text[s.start..s.end];
        prop_assert!(!slice.contains(['\n', '\r']), "lines_as_sentences: {:?} crosses a line end", slice);
    }
    Ok(())
}

const LANGS: &[&str] = &["it", "en", "de", "fr", "auto"];

fn langs() -> impl Strategy<Value = &'static str> {
    prop::sample::select(LANGS)
}

const SPACES: &[&str] = &[" ", " ", "  "];
const WILD_GLUE: &[&str] = &["\n", "\r", "\r\n", ". ", "! ", "… ", " ", "\u{200B}"];

const PUNCT: &[&str] = &[
    ".", ". ", "!", "?", "…", "...", "«", "»", "“", "”", "‘", "’", "\"", "'", "(", ")", "[", "]", ":", ";", ",", "-", "- ", "—", "•", "*",
    "_", "@", "。", "！", "？", "\n", "\n", "\n\n", "\r", "\r\n", "\t", "\u{A0}", "\u{200B}", "\u{FEFF}", "\u{2028}", "\u{3000}", "1. ",
    "2) ",
];

const ABBREV: &[&str] = &[
    "Sig.",
    "Dott.",
    "Prof.",
    "Mr.",
    "Dr.",
    "ecc.",
    "etc.",
    "art.",
    "n.",
    "No.",
    "pag.",
    "J.",
    "M.",
    "J.-M.",
    "U.S.",
    "U.K.",
    "EE. UU.",
    "S.p.A.",
    "s.r.l.",
    "Inc.",
    "www.governo.it",
    "info@esempio.it",
    "3,61%",
    "20.000",
    "2.",
    "12.",
    "l'art.",
    "im 2.",
    "USA.",
    "UE.",
];

/// News-like text: words, capitals, acronyms, punctuation, line ends, digits and
/// abbreviations in any order.
fn news_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        5 => "[a-zàèéìòù]{1,10}",
        3 => "[A-ZÈ][a-zàèéìòù]{0,9}",
        1 => "[A-Z]{2,4}",
        6 => prop::sample::select(SPACES).prop_map(str::to_string),
        4 => prop::sample::select(PUNCT).prop_map(str::to_string),
        1 => "[0-9]{1,4}",
        1 => "[0-9]{1,3}[.,][0-9]{1,3}",
        2 => prop::sample::select(ABBREV).prop_map(str::to_string),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}

/// Any characters at all (controls, line separators, combining marks), with a few line
/// ends and sentence stops mixed in so that more than one block is seen.
fn wild_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::collection::vec(any::<char>(), 0..24).prop_map(|v| v.into_iter().collect::<String>()),
        1 => prop::sample::select(WILD_GLUE).prop_map(str::to_string),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn segment_any_string(lg in langs(), s in any::<String>()) {
        check_both(lg, &s)?;
    }

    #[test]
    fn segment_printable_unicode(lg in langs(), s in "\\PC*") {
        check_both(lg, &s)?;
    }

    #[test]
    fn segment_wild_characters(lg in langs(), s in wild_text()) {
        check_both(lg, &s)?;
    }

    #[test]
    fn segment_news_like_text(lg in langs(), s in news_text()) {
        check_both(lg, &s)?;
    }
}

// ---------------------------------------------------------------------------
// (b) E5S1 model image parser
// ---------------------------------------------------------------------------

/// The tensors a 1-layer model with hidden 32, ffn 64, vocab 8, 8 positions needs:
/// (name, stored as Q4_0, elements).
fn e5s1_tensors() -> Vec<(String, bool, usize)> {
    let (h, ffn, vocab, max_pos) = (32usize, 64usize, 8usize, 8usize);
    let mut t: Vec<(String, bool, usize)> = vec![
        ("emb.word".into(), false, vocab * h),
        ("emb.pos".into(), false, max_pos * h),
        ("emb.type".into(), false, h),
        ("emb.ln.w".into(), false, h),
        ("emb.ln.b".into(), false, h),
    ];
    for (n, e) in [
        ("q.w", h * h),
        ("k.w", h * h),
        ("v.w", h * h),
        ("ao.w", h * h),
        ("fi.w", ffn * h),
        ("fo.w", h * ffn),
        ("q.b", h),
        ("k.b", h),
        ("v.b", h),
        ("ao.b", h),
        ("fi.b", ffn),
        ("fo.b", h),
        ("aln.w", h),
        ("aln.b", h),
        ("oln.w", h),
        ("oln.b", h),
    ] {
        // Two matrices quantised, the rest f32: both dtypes are read.
        let q4 = n == "q.w" || n == "fi.w";
        t.push((format!("l0.{n}"), q4, e));
    }
    t
}

/// A small but complete, valid E5S1 image (layout as in src/encode/e5s1.rs). The tensor
/// data runs to the end of the file, so cutting it anywhere must be an error.
fn e5s1_image() -> Vec<u8> {
    let (hidden, layers, heads, ffn, vocab, max_pos, type_vocab) = (32usize, 1usize, 2usize, 64usize, 8usize, 8usize, 2usize);
    let tensors = e5s1_tensors();
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(b"E5S1");
    b.extend_from_slice(&1u32.to_le_bytes());
    for v in [hidden, layers, heads, ffn, vocab, max_pos, type_vocab] {
        b.extend_from_slice(&(v as i32).to_le_bytes());
    }
    b.extend_from_slice(&1e-12f32.to_le_bytes()); // layer_norm_eps
    b.extend_from_slice(&0i32.to_le_bytes()); // qk
    // Embedded tokenizer (skipped by the reader): 2 pieces.
    let blob: &[u8] = b"ab\0cd\0";
    b.extend_from_slice(&2i32.to_le_bytes()); // n_pieces
    for v in [0i32, 2, 1, 3] {
        b.extend_from_slice(&v.to_le_bytes()); // bos, eos, pad, unk
    }
    b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    for off in [0u32, 3, 6] {
        b.extend_from_slice(&off.to_le_bytes()); // n_pieces + 1 offsets
    }
    for s in [0.0f32, -1.5] {
        b.extend_from_slice(&s.to_le_bytes()); // n_pieces scores
    }
    b.extend_from_slice(blob);
    // Normalisation map.
    b.extend_from_slice(&1i32.to_le_bytes());
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(b"a\0b");
    // Tensor directory, then the data.
    b.extend_from_slice(&(tensors.len() as i32).to_le_bytes());
    let dir_len: usize = tensors.iter().map(|(n, _, _)| 2 + n.len() + 1 + 4 + 8 + 8).sum();
    let mut offset = b.len() + dir_len;
    let mut data = Vec::new();
    for (name, q4, elements) in &tensors {
        let len = if *q4 { elements / 32 * 18 } else { elements * 4 };
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.push(u8::from(*q4));
        b.extend_from_slice(&(*elements as u32).to_le_bytes());
        b.extend_from_slice(&(offset as u64).to_le_bytes());
        b.extend_from_slice(&(len as u64).to_le_bytes());
        if *q4 {
            for _ in 0..elements / 32 {
                data.extend_from_slice(&[0x00, 0x3c]); // f16 1.0
                data.extend_from_slice(&[0x9f; 16]); // low nibble 15 → +7, high 9 → +1
            }
        } else {
            for i in 0..*elements {
                data.extend_from_slice(&((i % 7) as f32 * 0.01).to_le_bytes());
            }
        }
        offset += len;
    }
    b.extend_from_slice(&data);
    assert_eq!(b.len(), offset, "image layout");
    b
}

static IMAGE: LazyLock<Vec<u8>> = LazyLock::new(e5s1_image);

const E5S1_NAME: &str = "x.bin";

/// Parses; an error must name the file; a model that parses can be read whole.
fn parse_e5s1(bytes: Vec<u8>) -> Result<bool, TestCaseError> {
    match E5s1::parse(Path::new(E5S1_NAME), bytes) {
        Ok(m) => {
            for (name, _, _) in e5s1_tensors() {
                let _ = m.f32(&name);
                let _ = m.raw(&name);
            }
            let _ = m.type_embeddings();
            Ok(true)
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.contains(E5S1_NAME), "error does not name the file: {}", msg);
            Ok(false)
        }
    }
}

#[test]
fn e5s1_test_image_is_valid() {
    let m = E5s1::parse(Path::new(E5S1_NAME), IMAGE.clone()).expect("the hand-built image parses");
    assert_eq!((m.config.hidden, m.config.layers, m.config.heads, m.config.ffn), (32, 1, 2, 64));
    let q = m.f32("l0.q.w").unwrap();
    assert_eq!(q.len(), 32 * 32);
    assert_eq!((q[0], q[16]), (7.0, 1.0));
    assert_eq!(m.f32("emb.word").unwrap().len(), 8 * 32);
    assert_eq!(m.type_embeddings().unwrap().len(), 2 * 32);
}

const EXTREME_I32: &[i32] = &[-1, i32::MAX, i32::MIN, 1 << 16, 1 << 18, 1 << 20, 1 << 24, (1 << 24) + 1];

fn plausible_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => 0i32..=64,
        1 => Just(32i32),
        1 => any::<i32>(),
        1 => prop::sample::select(EXTREME_I32),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn e5s1_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        parse_e5s1(bytes)?;
    }

    #[test]
    fn e5s1_magic_and_version_then_anything(rest in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut b = b"E5S1".to_vec();
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&rest);
        parse_e5s1(b)?;
    }

    #[test]
    fn e5s1_plausible_header_then_anything(
        fields in prop::collection::vec(plausible_i32(), 9),
        eps in prop_oneof![Just(1e-12f32), any::<f32>()],
        rest in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut b = b"E5S1".to_vec();
        b.extend_from_slice(&1u32.to_le_bytes());
        for f in &fields[..7] {
            b.extend_from_slice(&f.to_le_bytes());
        }
        b.extend_from_slice(&eps.to_le_bytes());
        b.extend_from_slice(&fields[7].to_le_bytes()); // qk
        b.extend_from_slice(&fields[8].to_le_bytes()); // n_pieces
        b.extend_from_slice(&rest);
        parse_e5s1(b)?;
    }

    #[test]
    fn e5s1_truncated_image_is_an_error(cut in any::<Index>()) {
        let cut = cut.index(IMAGE.len());
        let ok = parse_e5s1(IMAGE[..cut].to_vec())?;
        prop_assert!(!ok, "an image cut at byte {} of {} was accepted", cut, IMAGE.len());
    }

    #[test]
    fn e5s1_mutated_image(muts in prop::collection::vec((any::<Index>(), any::<u8>()), 1..8)) {
        let mut b = IMAGE.clone();
        for (at, byte) in muts {
            let i = at.index(b.len());
            b[i] = byte;
        }
        parse_e5s1(b)?;
    }

    #[test]
    fn e5s1_mutated_header(muts in prop::collection::vec((0usize..160, any::<u8>()), 1..6)) {
        // Mutations aimed at the header and the start of the tensor directory.
        let mut b = IMAGE.clone();
        for (i, byte) in muts {
            b[i] = byte;
        }
        parse_e5s1(b)?;
    }
}

// ---------------------------------------------------------------------------
// (c) Head files
// ---------------------------------------------------------------------------

const HEAD_NAME: &str = "h.json";

fn base_head() -> Value {
    json!({
        "format": "stance-head",
        "version": 1,
        "kind": "linear",
        "task": "stance",
        "labels": ["regulation", "neutral", "openness"],
        "encoder": "e5-small-q4",
        "dim": 4,
        "features": "sentence",
        "weights": [[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 0.0], [-0.1, -0.2, -0.3, -0.4]],
        "bias": [0.0, 0.1, -0.1],
        "temperature": 1.0,
        "training": {"files": ["x.tsv"], "examples": 10, "sha256": "00"},
        "validation": null
    })
}

/// Deserialises and checks a head file as `HeadFile::load` does; a head that passes
/// the check is then used as the pipeline uses it (`score::features` for its kind, then
/// `predict_proba`). Errors must name the file.
fn use_head(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let Ok(hf) = serde_json::from_slice::<HeadFile>(bytes) else {
        return Ok(false);
    };
    let path = Path::new(HEAD_NAME);
    match hf.check(path) {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.contains(HEAD_NAME), "error does not name the file: {}", msg);
            Ok(false)
        }
        Ok(()) => {
            let dim = hf.dim;
            let head: Box<dyn Head> = match hf.into_head(path) {
                Ok(h) => h,
                Err(e) => {
                    // A fused head whose lexical model is missing or altered.
                    let msg = e.to_string();
                    prop_assert!(msg.contains(HEAD_NAME), "error does not name the file: {}", msg);
                    return Ok(false);
                }
            };
            if dim <= 1 << 16 {
                // Vectors of the encoder's width, as check_encoder guarantees.
                let vecs = vec![vec![0.25f32; dim]; 2];
                let x = stance::score::features(&vecs, head.features());
                let p = head.predict_proba(x.view(), &["a", "b"]);
                prop_assert_eq!(p.dim(), (2, 3));
            }
            Ok(true)
        }
    }
}

/// Values a field may be replaced with: plausible ones, wrong types, extremes.
fn candidates(field: &str) -> Vec<Value> {
    let huge = json!(1u64 << 63);
    let common = vec![Value::Null, json!(""), json!(-1), json!({}), json!([])];
    let specific = match field {
        "format" => vec![json!("stance-head"), json!("stance"), json!(1)],
        "version" => vec![json!(1), json!(2), json!(0), json!(1.5), json!("1"), json!(4294967296u64)],
        "kind" => vec![json!("linear"), json!("prototype"), json!("context"), json!("LINEAR")],
        "task" => vec![json!("stance"), json!("sentiment"), json!("other")],
        "labels" => vec![
            json!(["regulation", "neutral", "openness"]),
            json!(["negative", "neutral", "positive"]),
            json!(["openness", "neutral", "regulation"]),
            json!(["regulation", "neutral"]),
        ],
        "encoder" => vec![json!("e5-small-q4"), json!("other"), json!(7)],
        "dim" => vec![
            json!(0),
            json!(1),
            json!(2),
            json!(4),
            json!(8),
            huge,
            json!(u64::MAX),
            json!((1u64 << 63) + 2),
            json!(4.5),
        ],
        "features" => vec![json!("sentence"), json!("context"), json!("both")],
        "weights" => vec![
            json!([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 0.0], [-0.1, -0.2, -0.3, -0.4]]),
            json!([
                [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
                [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
            ]),
            json!([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]),
            json!([[], [], []]),
            json!([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 0.0]]),
            json!([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]),
            json!([[1e39, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]),
            json!([[3e38, 3e38, 3e38, 3e38], [-3e38, -3e38, -3e38, -3e38], [0.0, 0.0, 0.0, 0.0]]),
        ],
        "bias" => vec![
            json!([0.0, 0.0, 0.0]),
            json!([0.0, 0.0]),
            json!([1e39, 0.0, 0.0]),
            json!([0.0, 0.0, 0.0, 0.0]),
        ],
        "temperature" => vec![
            json!(1.0),
            json!(0.0),
            json!(-1.0),
            json!(1e39),
            json!(1e-45),
            json!(1e-30),
            json!("1"),
        ],
        "descriptions" => vec![json!([["a"], ["b"], ["c"]]), json!(3)],
        "training" => vec![json!({"files": [], "examples": 0, "sha256": ""}), json!({"files": 1})],
        "validation" => vec![
            json!({"data": "x", "examples": 1, "accuracy": 0.5, "macro_f1": 0.5}),
            json!({"data": 1}),
        ],
        _ => vec![],
    };
    specific.into_iter().chain(common).collect()
}

const HEAD_FIELDS: &[&str] = &[
    "format",
    "version",
    "kind",
    "task",
    "labels",
    "encoder",
    "dim",
    "features",
    "weights",
    "bias",
    "temperature",
    "descriptions",
    "training",
    "validation",
    "extra",
];

/// A valid head with some fields replaced or removed, then some bytes flipped,
/// inserted or deleted.
fn mutated_head() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((0..HEAD_FIELDS.len(), any::<Index>(), any::<bool>()), 0..5),
        prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..4), 0..3),
    )
        .prop_map(|(fields, bytes)| {
            let mut v = base_head();
            let obj = v.as_object_mut().unwrap();
            for (f, pick, remove) in fields {
                let name = HEAD_FIELDS[f];
                if remove {
                    obj.remove(name);
                } else {
                    let c = candidates(name);
                    obj.insert(name.to_string(), c[pick.index(c.len())].clone());
                }
            }
            let mut b = serde_json::to_vec(&v).unwrap();
            for (at, byte, op) in bytes {
                match op {
                    0 if !b.is_empty() => {
                        let i = at.index(b.len());
                        b[i] = byte;
                    }
                    1 => {
                        let i = at.index(b.len() + 1);
                        b.insert(i, byte);
                    }
                    2 if !b.is_empty() => {
                        let i = at.index(b.len());
                        b.remove(i);
                    }
                    _ => {}
                }
            }
            b
        })
}

#[test]
fn head_base_is_valid() {
    let bytes = serde_json::to_vec(&base_head()).unwrap();
    let hf: HeadFile = serde_json::from_slice(&bytes).expect("base head deserialises");
    hf.check(Path::new(HEAD_NAME)).expect("base head passes the check");
    assert_eq!(hf.input_dim(), 4);
}

/// `features: context` doubles the input width: a huge `dim` must be refused, not
/// overflow.
#[test]
fn head_context_with_huge_dim_is_refused_without_panic() {
    for dim in [1u64 << 63, u64::MAX, (1u64 << 63) + 2] {
        let mut v = base_head();
        v["features"] = json!("context");
        v["dim"] = json!(dim);
        let bytes = serde_json::to_vec(&v).unwrap();
        let hf: HeadFile = serde_json::from_slice(&bytes).unwrap();
        let r = std::panic::catch_unwind(|| hf.check(Path::new(HEAD_NAME)).is_err());
        assert_eq!(
            r.ok(),
            Some(true),
            "dim {dim} with context features: check must return an error, not panic or accept"
        );
    }
}

/// A prototype head reads sentence vectors; a file claiming `kind: prototype` with
/// `features: context` (weights 3 × 2·dim) must be refused by the check or scored
/// without a shape panic.
#[test]
fn head_prototype_with_context_features_does_not_panic() {
    let mut v = base_head();
    v["kind"] = json!("prototype");
    v["features"] = json!("context");
    v["dim"] = json!(2);
    let bytes = serde_json::to_vec(&v).unwrap();
    match std::panic::catch_unwind(|| use_head(&bytes)) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("a prototype head with context features panicked when used"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn head_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        use_head(&bytes)?;
    }

    #[test]
    fn head_arbitrary_text(s in "\\PC*") {
        use_head(s.as_bytes())?;
    }

    #[test]
    fn head_mutated_valid_json(bytes in mutated_head()) {
        use_head(&bytes)?;
    }
}

// ---------------------------------------------------------------------------
// (d) JSON Lines reader
// ---------------------------------------------------------------------------

/// Lines `read_jsonl` must yield an item for: those with something other than
/// whitespace once decoded (lossily) — split on `\n` as it does.
fn nonblank_lines(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !String::from_utf8_lossy(l).trim().is_empty())
        .count()
}

fn check_jsonl(bytes: &[u8]) -> Result<Vec<Item>, TestCaseError> {
    let mut warnings = Vec::new();
    let items = read_jsonl(bytes, "<stdin>", &mut warnings);
    prop_assert_eq!(
        items.len(),
        nonblank_lines(bytes),
        "one item per non-empty line of {:?}",
        String::from_utf8_lossy(bytes)
    );
    for it in &items {
        if let Item::Bad { error, .. } = it {
            prop_assert!(error.contains("<stdin>:"), "error does not name input and line: {}", error);
        }
    }
    Ok(items)
}

const ODD_LINES: &[&str] = &[
    "",
    " ",
    "\r",
    "\t \r",
    "[1,2]",
    "null",
    "\"text\"",
    "{}",
    "{\"text\":",
    "\u{FEFF}{\"text\":\"x\"}",
];

fn jsonl_line() -> impl Strategy<Value = Vec<u8>> {
    let id = prop::sample::select(vec![
        json!("a"),
        json!("a#2"),
        json!("b"),
        json!("1"),
        json!(1),
        json!(2.5),
        Value::Null,
        json!(["x"]),
    ]);
    let text = prop_oneof![
        Just(json!("Una frase. Un'altra frase.")),
        any::<String>().prop_map(Value::from),
        Just(json!(42)),
        Just(Value::Null),
    ];
    let object = (id, text, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(id, text, has_id, has_text, extra)| {
        let mut m = Map::new();
        if has_id {
            m.insert("id".into(), id);
        }
        if has_text {
            m.insert("text".into(), text);
        }
        if extra {
            m.insert("outlet".into(), json!("Corriere"));
            m.insert("source".into(), json!("feed"));
        }
        serde_json::to_vec(&Value::Object(m)).unwrap()
    });
    prop_oneof![
        5 => object,
        1 => "[^\n]*".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>().prop_filter("no line feed", |b| *b != b'\n'), 0..40),
        1 => prop::sample::select(ODD_LINES).prop_map(|s| s.as_bytes().to_vec()),
    ]
}

fn jsonl_input() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(jsonl_line(), 0..24), any::<bool>(), any::<bool>()).prop_map(|(lines, crlf, trailing)| {
        let sep: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut out = lines.join(sep);
        if trailing {
            out.extend_from_slice(sep);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn jsonl_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_jsonl(&bytes)?;
    }

    #[test]
    fn jsonl_mixed_lines(bytes in jsonl_input()) {
        check_jsonl(&bytes)?;
    }

    /// No article is lost or overwritten: every item has its own id, whatever ids the
    /// input repeats (including ids that look like the `#2` suffixes given to repeats).
    #[test]
    fn jsonl_ids_are_unique(bytes in jsonl_input()) {
        let items = check_jsonl(&bytes)?;
        let mut seen = std::collections::HashSet::new();
        for it in &items {
            prop_assert!(seen.insert(it.id().to_string()), "id {:?} given twice for {:?}", it.id(), String::from_utf8_lossy(&bytes));
        }
    }
}

#[test]
fn jsonl_duplicates_kept_and_extra_fields_carried() {
    let input = b"{\"id\":\"a\",\"text\":\"Uno.\",\"outlet\":\"Corriere\"}\n\n{bad\n{\"id\":\"a\",\"text\":\"Due.\"}\n{\"id\":\"b\"}\n";
    let mut warnings = Vec::new();
    let items = read_jsonl(&input[..], "<stdin>", &mut warnings);
    let ids: Vec<&str> = items.iter().map(Item::id).collect();
    assert_eq!(ids, ["a", "<stdin>:3", "a#2", "b"]);
    match &items[0] {
        Item::Json { extra, .. } => assert_eq!(extra.get("outlet"), Some(&json!("Corriere"))),
        other => panic!("{other:?}"),
    }
    match &items[1] {
        Item::Bad { error, .. } => assert!(error.starts_with("<stdin>:3:"), "{error}"),
        other => panic!("{other:?}"),
    }
    match &items[3] {
        Item::Bad { error, .. } => assert!(error.contains("<stdin>:5") && error.contains("text"), "{error}"),
        other => panic!("{other:?}"),
    }
    assert!(warnings.iter().any(|w| w.contains("duplicate")), "{warnings:?}");
}

// ---------------------------------------------------------------------------
// (e) Decoding
// ---------------------------------------------------------------------------

const BOMS: &[&[u8]] = &[
    b"",
    b"\xEF\xBB\xBF",
    b"\xFF\xFE",
    b"\xFE\xFF",
    b"\xEF\xBB\xBF\xEF\xBB\xBF",
    b"\xEF\xBB\xBF\xFF\xFE",
];

fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
    for lossy in [false, true] {
        match decode_text("in.txt", bytes, lossy) {
            Ok((_, warnings)) => {
                if !lossy {
                    prop_assert!(warnings.is_empty(), "warnings without --lossy: {:?}", warnings);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("in.txt"), "error does not name the input: {}", msg);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn decode_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_decode(&bytes)?;
    }

    #[test]
    fn decode_bom_then_anything(bom in prop::sample::select(BOMS), rest in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut b = bom.to_vec();
        b.extend_from_slice(&rest);
        check_decode(&b)?;
    }

    #[test]
    fn decode_utf8_text_round_trips(s in "\\PC*") {
        // Printable text (no control characters, so not "binary") comes back unchanged.
        let (t, w) = decode_text("in.txt", s.as_bytes(), false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t, s);
        prop_assert!(w.is_empty());
    }

    #[test]
    fn decode_utf16_round_trips(s in any::<String>(), le in any::<bool>()) {
        let mut b: Vec<u8> = if le { vec![0xFF, 0xFE] } else { vec![0xFE, 0xFF] };
        for u in s.encode_utf16() {
            b.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        let (t, _) = decode_text("in.txt", &b, false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t, s);
    }
}
