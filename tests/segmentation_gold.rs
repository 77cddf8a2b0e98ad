//! The segmenter against the gold segmentation in eval/segmentation (five Italian seed
//! articles, written by hand, and news paragraphs in en, fr, de, es and it; see
//! eval/README.md): per language, at least 98% of gold boundaries found and at most 2%
//! of predicted boundaries spurious.

use std::collections::BTreeMap;
use std::path::Path;

use stance::segment::{BoundaryCounts, Segmenter, compare_boundaries};

#[test]
fn gold_boundaries_per_language() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("eval/segmentation/MANIFEST.tsv")).unwrap();
    let mut per_lang: BTreeMap<String, BoundaryCounts> = BTreeMap::new();
    let mut misses = Vec::new();
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let (gold, raw, lang) = (f[0], f[1], f[2]);
        let text = std::fs::read_to_string(root.join(raw)).unwrap();
        let gold_text = std::fs::read_to_string(root.join("eval/segmentation").join(gold)).unwrap();
        let units: Vec<&str> = gold_text.lines().filter(|l| !l.trim().is_empty()).collect();
        // The language is detected, as users run it by default.
        let pred = Segmenter::new("auto").segment(&text);
        let c = compare_boundaries(&text, &units, &pred);
        if c.found < c.gold || c.spurious > 0 {
            misses.push(format!("{gold}: {c:?}"));
        }
        per_lang.entry(lang.to_string()).or_default().add(c);
    }
    for (lang, c) in &per_lang {
        eprintln!(
            "{lang}: recall {:.3} ({}/{}), spurious {:.3} ({}/{})",
            c.recall(),
            c.found,
            c.gold,
            c.spurious_rate(),
            c.spurious,
            c.predicted
        );
    }
    for (lang, c) in &per_lang {
        assert!(c.recall() >= 0.98, "{lang}: recall {:.3} < 0.98; {misses:?}", c.recall());
        assert!(
            c.spurious_rate() <= 0.02,
            "{lang}: spurious {:.3} > 0.02; {misses:?}",
            c.spurious_rate()
        );
    }
    assert_eq!(per_lang.len(), 5, "languages it, en, fr, de, es");
}
