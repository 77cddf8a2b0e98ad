//! Selection on real news (`stance select`), with the real model: grouped folds, the
//! heads it writes, and what the committed heads record of their training data.

use std::path::{Path, PathBuf};
use std::process::Command;

use stance::score::HeadFile;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn stance() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stance"));
    c.current_dir(ROOT);
    c
}

fn news(rel: &str) -> PathBuf {
    let p = Path::new(ROOT).join("../shared/data/news").join(rel);
    assert!(p.exists(), "{}: the shared news data is expected beside the project", p.display());
    p
}

#[test]
fn select_writes_the_same_heads_from_the_same_seed_and_they_score() {
    let (pt, nl) = (news("ai-policy/pt.tsv"), news("ai-policy/nl.tsv"));
    let run = |dir: &Path| -> serde_json::Value {
        let out = stance()
            .args([
                "select",
                "--task",
                "stance",
                "--folds",
                "3",
                "--format",
                "json",
                "--write",
                "--out-dir",
            ])
            .arg(dir)
            .arg("--data")
            .arg(&pt)
            .arg(&nl)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = run(a.path());
    let sb = run(b.path());
    assert_eq!(sa["best"]["macro_f1"], sb["best"]["macro_f1"]);
    let rows = std::fs::read_to_string(&pt).unwrap().lines().count() + std::fs::read_to_string(&nl).unwrap().lines().count() - 2;
    assert_eq!(sa["examples"].as_u64().unwrap() as usize, rows);
    // Every candidate was measured on every core row, out of fold.
    for c in sa["candidates"].as_array().unwrap() {
        assert_eq!(c["metrics"]["n"].as_u64().unwrap() as usize, rows, "{}", c["name"]);
    }
    let names = ["stance-linear", "stance-fused"].map(|n| format!("{n}.e5-small-q4.json"));
    for n in names.iter().chain([&"stance-lexical.e5-small-q4.safetensors".to_string()]) {
        let (x, y) = (std::fs::read(a.path().join(n)).unwrap(), std::fs::read(b.path().join(n)).unwrap());
        assert!(x == y, "{n} differs between two runs from one seed");
    }
    // A second --write into the same folder is refused without --force.
    let out = stance()
        .args(["select", "--task", "stance", "--folds", "3", "--write", "--out-dir"])
        .arg(a.path())
        .arg("--data")
        .arg(&pt)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    // The fused head written there scores an article through the pipeline.
    let fused = a.path().join(&names[1]);
    let article = a.path().join("article.txt");
    std::fs::write(
        &article,
        "A União Europeia deve impor regras vinculativas à inteligência artificial.\n",
    )
    .unwrap();
    let out = stance()
        .args(["classify", "--format", "json", "--stance-head"])
        .arg(&fused)
        .arg(&article)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let probs = &v[0]["sentences"][0]["stance"]["probs"];
    let sum: f64 = ["regulation", "neutral", "openness"]
        .iter()
        .map(|l| probs[l].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-3, "{v}");
}

#[test]
fn committed_news_heads_record_their_training_files_and_hashes() {
    for task in ["stance", "sentiment"] {
        let path = Path::new(ROOT).join(format!("models/heads/{task}-fused.e5-small-q4.json"));
        let hf = HeadFile::load(&path).unwrap();
        let files: Vec<PathBuf> = hf
            .training
            .files
            .iter()
            .map(|f| PathBuf::from(f.split(" (weight").next().unwrap()))
            .collect();
        assert!(files.iter().any(|f| f.to_string_lossy().contains("news/ai-policy")), "{:?}", files);
        let mut bytes = Vec::new();
        for f in &files {
            bytes.extend(std::fs::read(Path::new(ROOT).join(f)).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        }
        assert_eq!(
            stance::models::sha256_bytes(&bytes),
            hf.training.sha256,
            "{task}: training data changed since the head was trained"
        );
        let v = hf.validation.as_ref().unwrap();
        assert!(v.data.contains("grouped by source"), "{}", v.data);
        // The lexical model beside it is the one recorded.
        let lex = hf.lexical.as_ref().unwrap();
        let got = stance::models::sha256_file(&path.parent().unwrap().join(&lex.file)).unwrap();
        assert_eq!(got, lex.sha256);
        assert!(hf.article.is_some());
    }
    // An altered lexical model is refused, naming the head.
    let d = tempfile::tempdir().unwrap();
    for f in ["stance-fused.e5-small-q4.json", "stance-lexical.e5-small-q4.safetensors"] {
        std::fs::copy(Path::new(ROOT).join("models/heads").join(f), d.path().join(f)).unwrap();
    }
    let lex = d.path().join("stance-lexical.e5-small-q4.safetensors");
    let mut b = std::fs::read(&lex).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&lex, b).unwrap();
    let head = d.path().join("stance-fused.e5-small-q4.json");
    let err = HeadFile::load(&head).unwrap().into_head(&head).err().unwrap().to_string();
    assert!(err.contains("stance-fused.e5-small-q4.json") && err.contains("SHA-256"), "{err}");
}
