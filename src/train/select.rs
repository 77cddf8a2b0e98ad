//! Model selection on labeled news, by cross-validation grouped by source article.
//!
//! The core set (for the project: `../shared/data/news/ai-policy/`) is split into
//! `folds` groups of whole articles (no article on both sides of a split). Every
//! candidate is trained on the other folds (plus, where a candidate says so, extra
//! sets at a weight) and predicts the held-out fold, so every core sentence gets one
//! out-of-fold prediction per candidate. Candidates are compared on those:
//!
//! 1. the encoder head: L2 strength, then which extra sets and at what weight, then
//!    sentence vectors against sentence + neighbours (`context`);
//! 2. the lexical head: L2 strength and extra sets;
//! 3. the fusion weight of the two;
//! 4. the article rule (how sentences add up to an article), on the core set's
//!    articles.
//!
//! The temperatures are fitted on the out-of-fold logits of the chosen candidates,
//! which is also what the final heads (refitted on all the data) use. The figures
//! of the chosen candidate are therefore selected on the same folds they are measured
//! on: slightly optimistic, and reported next to every other candidate's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::data::{Example, Task};
use crate::error::{Error, Result};
use crate::score::{self, ArticleRule, Features, HeadFile, LexicalPart, Training, Validation};
use crate::train::metrics::Metrics;
use crate::train::{self, lexical, logistic};
use crate::util::Rng;

/// Labeled examples with their sentence vectors (same order).
pub struct Labeled {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub examples: Vec<Example>,
    pub vectors: Vec<Vec<f32>>,
}

impl Labeled {
    pub fn texts(&self) -> Vec<&str> {
        self.examples.iter().map(|e| e.text.as_str()).collect()
    }
    pub fn labels(&self) -> Vec<usize> {
        self.examples.iter().map(|e| e.label).collect()
    }
    pub fn features(&self, kind: Features) -> Array2<f32> {
        labeled_features(&self.examples, &self.vectors, kind)
    }
}

/// Sentence or context features for labeled examples: a sentence's neighbours are the
/// previous and next example of the same source, in file order.
pub fn labeled_features(examples: &[Example], vecs: &[Vec<f32>], kind: Features) -> Array2<f32> {
    if kind == Features::Sentence || examples.is_empty() {
        return score::features(vecs, Features::Sentence);
    }
    let mut by_source: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_source.entry(e.source.as_str()).or_default().push(i);
    }
    let dim = vecs[0].len();
    let mut out = Array2::zeros((examples.len(), 2 * dim));
    for idx in by_source.values() {
        let group: Vec<Vec<f32>> = idx.iter().map(|&i| vecs[i].clone()).collect();
        let f = score::features(&group, kind);
        for (r, &i) in idx.iter().enumerate() {
            out.row_mut(i).assign(&f.row(r));
        }
    }
    out
}

/// The fold of every example: sources are shuffled from `seed` and dealt round-robin,
/// so folds hold about the same number of articles and no source is in two folds.
pub fn folds_by_source(examples: &[Example], folds: usize, seed: u64) -> Vec<usize> {
    let mut sources: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in examples {
        if seen.insert(e.source.as_str()) {
            sources.push(&e.source);
        }
    }
    Rng(seed).shuffle(&mut sources);
    let fold_of: HashMap<&str, usize> = sources.iter().enumerate().map(|(i, s)| (*s, i % folds)).collect();
    examples.iter().map(|e| fold_of[e.source.as_str()]).collect()
}

#[derive(Debug, Clone)]
pub struct SelectOptions {
    pub task: Task,
    pub folds: usize,
    pub seed: u64,
    /// Passes of the encoder head's regression.
    pub epochs: usize,
    /// log2 of the lexical head's feature buckets.
    pub bits: u32,
    /// Also measure the learning curve (training on growing parts of each fold's
    /// training articles).
    pub curve: bool,
}

impl Default for SelectOptions {
    fn default() -> Self {
        SelectOptions {
            task: Task::Stance,
            folds: 5,
            seed: 42,
            epochs: 400,
            bits: score::lexical::DEFAULT_BITS,
            curve: false,
        }
    }
}

/// Which extra sets a candidate trains with, and at what weight (index into the extras).
pub type ExtraMix = Vec<(usize, f32)>;

#[derive(Debug, Clone, Serialize)]
pub struct EncoderRecipe {
    pub features: Features,
    pub l2: f32,
    pub extras: Vec<(String, f32)>,
    #[serde(skip)]
    pub mix: ExtraMix,
    pub temperature: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LexicalRecipe {
    pub l2: f32,
    pub extras: Vec<(String, f32)>,
    #[serde(skip)]
    pub mix: ExtraMix,
    pub temperature: f32,
}

/// One candidate's out-of-fold figures.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRow {
    pub stage: &'static str,
    pub name: String,
    pub metrics: Metrics,
}

/// Article-level figures of a head under a rule.
#[derive(Debug, Clone, Serialize)]
pub struct ArticleFigures {
    pub rule: String,
    pub articles: usize,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub sentences: usize,
    pub encoder: f32,
    pub lexical: f32,
    pub fused: f32,
}

/// A core row the chosen model contradicts with confidence in every way it is asked.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub id: String,
    pub lang: String,
    pub label: &'static str,
    pub predicted: &'static str,
    pub p_predicted: f32,
    pub p_label: f32,
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Selection {
    pub task: Task,
    pub core: String,
    pub core_files: Vec<String>,
    pub examples: usize,
    pub articles: usize,
    pub folds: usize,
    pub seed: u64,
    pub candidates: Vec<CandidateRow>,
    pub encoder: EncoderRecipe,
    /// The sentence-vector head with the same data, for comparison with `context`.
    pub encoder_sentence: EncoderRecipe,
    pub lexical: LexicalRecipe,
    pub alpha: f32,
    /// The chosen (fused) model's out-of-fold figures.
    pub best: Metrics,
    pub encoder_only: Metrics,
    pub per_language: BTreeMap<String, Metrics>,
    pub article_rule: ArticleRule,
    pub article_rule_encoder: ArticleRule,
    /// The encoder head as chosen (context features when they won): its rule and figures.
    pub article_rule_chosen_encoder: ArticleRule,
    pub chosen_encoder: Metrics,
    pub article: Vec<ArticleFigures>,
    pub curve: Vec<CurvePoint>,
    pub disagreements: Vec<Disagreement>,
}

/// Logits of a weighted logistic regression fitted per fold, for the held-out rows.
fn oof_encoder(
    core_x: &Array2<f32>,
    y: &[usize],
    fold: &[usize],
    folds: usize,
    extras: &[(Array2<f32>, Vec<usize>, f32)],
    l2: f32,
    epochs: usize,
    keep: &dyn Fn(usize, usize) -> bool,
) -> Array2<f32> {
    let mut out = Array2::zeros((y.len(), 3));
    for f in 0..folds {
        let train_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f && keep(f, i)).collect();
        let test_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
        let mut x = core_x.select(Axis(0), &train_idx);
        let mut yt: Vec<usize> = train_idx.iter().map(|&i| y[i]).collect();
        let mut w = vec![1.0f32; yt.len()];
        for (ex, ey, ew) in extras {
            x.append(Axis(0), ex.view()).expect("same width");
            yt.extend(ey);
            w.extend(std::iter::repeat_n(*ew, ey.len()));
        }
        let fit = logistic::fit_logistic_weighted(x.view(), &yt, &w, l2, epochs);
        let l = logistic::logits(&fit, core_x.select(Axis(0), &test_idx).view());
        for (r, &i) in test_idx.iter().enumerate() {
            out.row_mut(i).assign(&l.row(r));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn oof_lexical(
    texts: &[&str],
    y: &[usize],
    fold: &[usize],
    folds: usize,
    extras: &[(Vec<&str>, Vec<usize>, f32)],
    l2: f32,
    bits: u32,
    keep: &dyn Fn(usize, usize) -> bool,
) -> Array2<f32> {
    let mut out = Array2::zeros((y.len(), 3));
    for f in 0..folds {
        let train_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f && keep(f, i)).collect();
        let test_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
        let mut tt: Vec<&str> = train_idx.iter().map(|&i| texts[i]).collect();
        let mut yt: Vec<usize> = train_idx.iter().map(|&i| y[i]).collect();
        let mut w = vec![1.0f32; yt.len()];
        for (et, ey, ew) in extras {
            tt.extend(et);
            yt.extend(ey);
            w.extend(std::iter::repeat_n(*ew, ey.len()));
        }
        let model = lexical::fit(&tt, &yt, &w, l2, bits);
        let test: Vec<&str> = test_idx.iter().map(|&i| texts[i]).collect();
        let l = model.logits(&test);
        for (r, &i) in test_idx.iter().enumerate() {
            out.row_mut(i).assign(&l.row(r));
        }
    }
    out
}

fn calibrated(logits: &Array2<f32>, y: &[usize]) -> (Array2<f32>, f32) {
    let t = logistic::fit_temperature(logits, y);
    let mut p = logits / t;
    score::softmax_rows(&mut p);
    (p, t)
}

fn metrics(y: &[usize], p: &Array2<f32>) -> Metrics {
    Metrics::compute(y, &train::predict(p), p)
}

/// Per-language figures (only when there are several languages).
pub fn per_language(examples: &[Example], y: &[usize], p: &Array2<f32>) -> BTreeMap<String, Metrics> {
    let mut langs: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        langs.entry(e.lang.clone()).or_default().push(i);
    }
    if langs.len() < 2 {
        return BTreeMap::new();
    }
    let pred = train::predict(p);
    langs
        .into_iter()
        .map(|(l, idx)| {
            let g: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
            let pr: Vec<usize> = idx.iter().map(|&i| pred[i]).collect();
            (l, Metrics::compute(&g, &pr, &p.select(Axis(0), &idx)))
        })
        .collect()
}

/// An article's gold label from its sentences' labels: the side with more sentences
/// (first label vs third), neutral when they tie (none included).
pub fn article_gold(labels: &[usize]) -> usize {
    let first = labels.iter().filter(|&&l| l == 0).count();
    let third = labels.iter().filter(|&&l| l == 2).count();
    match first.cmp(&third) {
        std::cmp::Ordering::Greater => 0,
        std::cmp::Ordering::Less => 2,
        std::cmp::Ordering::Equal => 1,
    }
}

/// The core set's articles: (source, row indices in order).
fn articles(examples: &[Example]) -> Vec<Vec<usize>> {
    let mut order: Vec<&str> = Vec::new();
    let mut rows: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        let r = rows.entry(e.source.as_str()).or_default();
        if r.is_empty() {
            order.push(&e.source);
        }
        r.push(i);
    }
    order.iter().map(|s| rows.remove(s).unwrap()).collect()
}

/// Article-level figures of sentence probabilities `p` under `rule` (None: the
/// uncalibrated default, the largest mean probability).
pub fn article_metrics(task: Task, arts: &[Vec<usize>], y: &[usize], p: &Array2<f32>, rule: Option<ArticleRule>) -> Metrics {
    let mut gold = Vec::with_capacity(arts.len());
    let mut pred = Vec::with_capacity(arts.len());
    let mut probs = Array2::zeros((arts.len(), 3));
    for (a, idx) in arts.iter().enumerate() {
        gold.push(article_gold(&idx.iter().map(|&i| y[i]).collect::<Vec<_>>()));
        let j = crate::aggregate::aggregate(task, &p.select(Axis(0), idx), rule);
        pred.push(task.label_index(j.label).unwrap());
        for k in 0..3 {
            probs[[a, k]] = j.probs.values[k];
        }
    }
    Metrics::compute(&gold, &pred, &probs)
}

/// The article rule with the best article macro-F1 on a grid (ties: the default,
/// power 1 and scale 1, then the earlier grid point).
pub fn select_article_rule(task: Task, arts: &[Vec<usize>], y: &[usize], p: &Array2<f32>) -> ArticleRule {
    let default = ArticleRule::default();
    let mut best = (default, article_metrics(task, arts, y, p, Some(default)).macro_f1);
    for power in [1.0f32, 0.0, 2.0] {
        for step in 2..=20 {
            let rule = ArticleRule {
                weight_power: power,
                neutral_scale: step as f32 * 0.1,
            };
            let f1 = article_metrics(task, arts, y, p, Some(rule)).macro_f1;
            if f1 > best.1 + 1e-6 {
                best = (rule, f1);
            }
        }
    }
    best.0
}

fn mix_extras<T: Clone>(extras: &[T], mix: &ExtraMix) -> Vec<(T, f32)> {
    mix.iter().map(|&(k, w)| (extras[k].clone(), w)).collect()
}

/// Runs the selection described in the module docs. `core` is the set selected on;
/// `extras` may join the training folds at a weight when the folds reward it.
pub fn select(core: &Labeled, extras: &[Labeled], opts: &SelectOptions, log: &mut dyn FnMut(&str)) -> Result<Selection> {
    let n = core.examples.len();
    let arts = articles(&core.examples);
    if arts.len() < opts.folds || opts.folds < 2 {
        return Err(Error::Usage(format!(
            "{}: {} articles cannot make {} folds",
            core.name,
            arts.len(),
            opts.folds
        )));
    }
    let y = core.labels();
    let fold = folds_by_source(&core.examples, opts.folds, opts.seed);
    let all = |_: usize, _: usize| true;
    let mut candidates = Vec::new();
    let name_mix = |mix: &ExtraMix| -> String {
        if mix.is_empty() {
            format!("{} only", core.name)
        } else {
            let parts: Vec<String> = mix.iter().map(|&(k, w)| format!("{} ×{w}", extras[k].name)).collect();
            format!("{} + {}", core.name, parts.join(" + "))
        }
    };

    // 1. The encoder head.
    let xs = core.features(Features::Sentence);
    let extra_xs: Vec<(Array2<f32>, Vec<usize>)> = extras.iter().map(|e| (e.features(Features::Sentence), e.labels())).collect();
    let mut enc_eval = |feat: Features, l2: f32, mix: &ExtraMix, candidates: &mut Vec<CandidateRow>| -> (f32, Array2<f32>) {
        let (x, ex): (Array2<f32>, Vec<(Array2<f32>, Vec<usize>, f32)>) = match feat {
            Features::Sentence => (
                xs.clone(),
                mix_extras(&extra_xs, mix).into_iter().map(|((x, y), w)| (x, y, w)).collect(),
            ),
            Features::Context => (
                core.features(Features::Context),
                mix.iter()
                    .map(|&(k, w)| (extras[k].features(Features::Context), extras[k].labels(), w))
                    .collect(),
            ),
        };
        let logits = oof_encoder(&x, &y, &fold, opts.folds, &ex, l2, opts.epochs, &all);
        let (p, _) = calibrated(&logits, &y);
        let m = metrics(&y, &p);
        let feat_name = if feat == Features::Context { "context" } else { "sentence" };
        let name = format!("{feat_name} vectors, l2 {l2}, {}", name_mix(mix));
        log(&format!("encoder head: {name}: macro-F1 {:.3}", m.macro_f1));
        let f1 = m.macro_f1;
        candidates.push(CandidateRow {
            stage: "encoder head",
            name,
            metrics: m,
        });
        (f1, logits)
    };
    let mut best_l2 = (0.1f32, -1.0f32);
    for l2 in [0.01f32, 0.03, 0.1, 0.3, 1.0] {
        let (f1, _) = enc_eval(Features::Sentence, l2, &vec![], &mut candidates);
        if f1 > best_l2.1 + 1e-6 {
            best_l2 = (l2, f1);
        }
    }
    let l2 = best_l2.0;
    let mut best_mix: (ExtraMix, f32) = (vec![], best_l2.1);
    let mut helpful: ExtraMix = Vec::new();
    for k in 0..extras.len() {
        let mut best_k: Option<(f32, f32)> = None;
        for w in [0.3f32, 1.0] {
            let mix = vec![(k, w)];
            let (f1, _) = enc_eval(Features::Sentence, l2, &mix, &mut candidates);
            if f1 > best_mix.1 + 1e-6 {
                best_mix = (mix, f1);
            }
            if f1 > best_l2.1 + 1e-6 && best_k.is_none_or(|b| f1 > b.1) {
                best_k = Some((w, f1));
            }
        }
        if let Some((w, _)) = best_k {
            helpful.push((k, w));
        }
    }
    if helpful.len() > 1 {
        let (f1, _) = enc_eval(Features::Sentence, l2, &helpful, &mut candidates);
        if f1 > best_mix.1 + 1e-6 {
            best_mix = (helpful.clone(), f1);
        }
    }
    let enc_mix = best_mix.0.clone();
    let (_, sent_logits) = enc_eval(Features::Sentence, l2, &enc_mix, &mut Vec::new());
    let (ctx_f1, ctx_logits) = enc_eval(Features::Context, l2, &enc_mix, &mut candidates);
    let use_context = ctx_f1 > best_mix.1 + 1e-6;
    let enc_logits = if use_context { ctx_logits } else { sent_logits.clone() };
    let (p_enc, t_enc) = calibrated(&enc_logits, &y);
    let (p_sent, t_sent) = calibrated(&sent_logits, &y);
    let extra_names = |mix: &ExtraMix| mix.iter().map(|&(k, w)| (extras[k].name.clone(), w)).collect::<Vec<_>>();
    let encoder = EncoderRecipe {
        features: if use_context { Features::Context } else { Features::Sentence },
        l2,
        extras: extra_names(&enc_mix),
        mix: enc_mix.clone(),
        temperature: t_enc,
    };
    let encoder_sentence = EncoderRecipe {
        features: Features::Sentence,
        temperature: t_sent,
        ..encoder.clone()
    };

    // 2. The lexical head.
    let texts = core.texts();
    let extra_texts: Vec<(Vec<&str>, Vec<usize>)> = extras.iter().map(|e| (e.texts(), e.labels())).collect();
    let mut lex_eval = |l2: f32, mix: &ExtraMix, candidates: &mut Vec<CandidateRow>| -> (f32, Array2<f32>) {
        let ex: Vec<(Vec<&str>, Vec<usize>, f32)> = mix_extras(&extra_texts, mix).into_iter().map(|((t, y), w)| (t, y, w)).collect();
        let logits = oof_lexical(&texts, &y, &fold, opts.folds, &ex, l2, opts.bits, &all);
        let (p, _) = calibrated(&logits, &y);
        let m = metrics(&y, &p);
        let name = format!("character n-grams, l2 {l2}, {}", name_mix(mix));
        log(&format!("lexical head: {name}: macro-F1 {:.3}", m.macro_f1));
        let f1 = m.macro_f1;
        candidates.push(CandidateRow {
            stage: "lexical head",
            name,
            metrics: m,
        });
        (f1, logits)
    };
    let mut best_lex: (f32, ExtraMix, f32, Option<Array2<f32>>) = (1e-3, vec![], -1.0, None);
    for l2 in [1e-4f32, 3e-4, 1e-3, 3e-3] {
        let (f1, lg) = lex_eval(l2, &vec![], &mut candidates);
        if f1 > best_lex.2 + 1e-6 {
            best_lex = (l2, vec![], f1, Some(lg));
        }
    }
    let lex_l2 = best_lex.0;
    for k in 0..extras.len() {
        for w in [0.3f32, 1.0] {
            let mix = vec![(k, w)];
            let (f1, lg) = lex_eval(lex_l2, &mix, &mut candidates);
            if f1 > best_lex.2 + 1e-6 {
                best_lex = (lex_l2, mix, f1, Some(lg));
            }
        }
    }
    let (lex_l2, lex_mix, _, lex_logits) = best_lex;
    let lex_logits = lex_logits.expect("at least one lexical candidate");
    let (_, t_lex) = calibrated(&lex_logits, &y);
    let lexical = LexicalRecipe {
        l2: lex_l2,
        extras: extra_names(&lex_mix),
        mix: lex_mix.clone(),
        temperature: t_lex,
    };

    // 3. The fusion weight.
    let mut best_alpha = (0.0f32, -1.0f32, p_enc.clone());
    for step in 0..=10 {
        let alpha = step as f32 / 10.0;
        let p = score::mix(&p_enc, &lex_logits, t_lex, alpha);
        let m = metrics(&y, &p);
        log(&format!("fusion: alpha {alpha}: macro-F1 {:.3}", m.macro_f1));
        if m.macro_f1 > best_alpha.1 + 1e-6 {
            best_alpha = (alpha, m.macro_f1, p.clone());
        }
        candidates.push(CandidateRow {
            stage: "fusion",
            name: format!("encoder ×{:.1} + lexical ×{alpha:.1}", 1.0 - alpha),
            metrics: m,
        });
    }
    let (alpha, _, p_best) = best_alpha;
    let best = metrics(&y, &p_best);

    // 4. Articles.
    let article_rule = select_article_rule(opts.task, &arts, &y, &p_best);
    let article_rule_encoder = select_article_rule(opts.task, &arts, &y, &p_sent);
    let article_rule_chosen_encoder = select_article_rule(opts.task, &arts, &y, &p_enc);
    let article = vec![
        ArticleFigures {
            rule: "chosen model, default rule (largest weighted mean probability)".into(),
            articles: arts.len(),
            metrics: article_metrics(opts.task, &arts, &y, &p_best, None),
        },
        ArticleFigures {
            rule: format!(
                "chosen model, calibrated rule (weights (1−P(neutral))^{}, neutral ×{:.1})",
                article_rule.weight_power, article_rule.neutral_scale
            ),
            articles: arts.len(),
            metrics: article_metrics(opts.task, &arts, &y, &p_best, Some(article_rule)),
        },
        ArticleFigures {
            rule: format!(
                "sentence-vector head alone, calibrated rule (power {}, neutral ×{:.1})",
                article_rule_encoder.weight_power, article_rule_encoder.neutral_scale
            ),
            articles: arts.len(),
            metrics: article_metrics(opts.task, &arts, &y, &p_sent, Some(article_rule_encoder)),
        },
    ];

    // The learning curve: each fold's training articles, in a seeded order, cut at
    // growing numbers of sentences; the held-out folds stay whole.
    let mut curve = Vec::new();
    if opts.curve {
        let mut order: Vec<usize> = (0..arts.len()).collect();
        Rng(opts.seed ^ 0xC0DE).shuffle(&mut order);
        let fold_rows = n - n / opts.folds;
        for size in [250usize, 500, 1000, 2000, usize::MAX] {
            if size != usize::MAX && size >= fold_rows {
                continue;
            }
            // Per fold, the first articles (in the seeded order) outside it, up to `size` sentences.
            let mut kept = vec![vec![false; n]; opts.folds];
            for (f, kept_f) in kept.iter_mut().enumerate() {
                let mut count = 0;
                for &a in &order {
                    if fold[arts[a][0]] == f || count >= size {
                        continue;
                    }
                    for &i in &arts[a] {
                        kept_f[i] = true;
                    }
                    count += arts[a].len();
                }
            }
            let keep = |f: usize, i: usize| kept[f][i];
            let feat = core.features(encoder.features);
            let ex: Vec<(Array2<f32>, Vec<usize>, f32)> = enc_mix
                .iter()
                .map(|&(k, w)| (extras[k].features(encoder.features), extras[k].labels(), w))
                .collect();
            let le = oof_encoder(&feat, &y, &fold, opts.folds, &ex, l2, opts.epochs, &keep);
            let exl: Vec<(Vec<&str>, Vec<usize>, f32)> = mix_extras(&extra_texts, &lex_mix)
                .into_iter()
                .map(|((t, y), w)| (t, y, w))
                .collect();
            let ll = oof_lexical(&texts, &y, &fold, opts.folds, &exl, lex_l2, opts.bits, &keep);
            let (pe, _) = calibrated(&le, &y);
            let (pl, tl) = calibrated(&ll, &y);
            let pf = score::mix(&pe, &ll, tl, alpha);
            let sentences = if size == usize::MAX { fold_rows } else { size };
            let point = CurvePoint {
                sentences,
                encoder: metrics(&y, &pe).macro_f1,
                lexical: metrics(&y, &pl).macro_f1,
                fused: metrics(&y, &pf).macro_f1,
            };
            log(&format!("learning curve: {sentences} sentences: fused macro-F1 {:.3}", point.fused));
            curve.push(point);
        }
    }

    // Rows the chosen model contradicts with confidence, out of fold.
    let labels = opts.task.labels();
    let pred = train::predict(&p_best);
    let mut disagreements: Vec<Disagreement> = (0..n)
        .filter(|&i| pred[i] != y[i] && p_best[[i, pred[i]]] >= 0.8 && p_best[[i, y[i]]] <= 0.1)
        .map(|i| Disagreement {
            id: core.examples[i].id.clone(),
            lang: core.examples[i].lang.clone(),
            label: labels[y[i]],
            predicted: labels[pred[i]],
            p_predicted: p_best[[i, pred[i]]],
            p_label: p_best[[i, y[i]]],
            text: core.examples[i].text.clone(),
        })
        .collect();
    disagreements.sort_by(|a, b| a.p_label.total_cmp(&b.p_label).then(a.id.cmp(&b.id)));

    Ok(Selection {
        task: opts.task,
        core: core.name.clone(),
        core_files: core.files.iter().map(|p| p.display().to_string()).collect(),
        examples: n,
        articles: arts.len(),
        folds: opts.folds,
        seed: opts.seed,
        candidates,
        encoder,
        encoder_sentence,
        lexical,
        alpha,
        per_language: per_language(&core.examples, &y, &p_best),
        encoder_only: metrics(&y, &p_sent),
        best,
        article_rule,
        article_rule_encoder,
        article_rule_chosen_encoder,
        chosen_encoder: metrics(&y, &p_enc),
        article,
        curve,
        disagreements,
    })
}

/// What [`write_heads`] wrote.
pub struct Written {
    pub paths: Vec<PathBuf>,
}

/// Refits the chosen heads on all of the core set (and the chosen extras) and writes
/// them into `dir`: `TASK-linear.VARIANT.json` (sentence vectors), `TASK-context…`
/// when context won, `TASK-lexical.VARIANT.safetensors` and `TASK-fused.VARIANT.json`
/// (the default head). Each records its training files and their SHA-256, never text.
pub fn write_heads(
    sel: &Selection,
    core: &Labeled,
    extras: &[Labeled],
    variant: &str,
    dir: &Path,
    epochs: usize,
    bits: u32,
) -> Result<Written> {
    let short = variant.rsplit('/').next().unwrap_or(variant);
    let task = sel.task;
    let mut paths = Vec::new();
    let fit_encoder = |recipe: &EncoderRecipe| -> Result<(HeadFile, Vec<&Path>)> {
        let mut x = core.features(recipe.features);
        let mut y = core.labels();
        let mut w = vec![1.0f32; y.len()];
        let mut files: Vec<&Path> = core.files.iter().map(PathBuf::as_path).collect();
        let mut names: Vec<String> = core.files.iter().map(|p| p.display().to_string()).collect();
        for &(k, wk) in &recipe.mix {
            x.append(Axis(0), extras[k].features(recipe.features).view()).expect("same width");
            y.extend(extras[k].labels());
            w.extend(std::iter::repeat_n(wk, extras[k].examples.len()));
            files.extend(extras[k].files.iter().map(PathBuf::as_path));
            names.extend(extras[k].files.iter().map(|p| format!("{} (weight {wk})", p.display())));
        }
        let fit = logistic::fit_logistic_weighted(x.view(), &y, &w, recipe.l2, epochs);
        let hf = HeadFile {
            format: score::HEAD_FORMAT.into(),
            version: score::HEAD_VERSION,
            kind: "linear".into(),
            task,
            labels: task.labels().iter().map(|s| s.to_string()).collect(),
            encoder: variant.to_string(),
            dim: core.vectors[0].len(),
            features: recipe.features,
            weights: fit.weights.outer_iter().map(|r| r.to_vec()).collect(),
            bias: fit.bias.to_vec(),
            temperature: recipe.temperature,
            descriptions: None,
            training: Training {
                files: names,
                examples: y.len(),
                sha256: crate::train::files_sha256(&files)?,
                l2: recipe.l2,
                seed: sel.seed,
            },
            validation: None,
            lexical: None,
            article: None,
        };
        Ok((hf, files))
    };
    let validation = |m: &Metrics, what: &str| Validation {
        data: format!(
            "{what}: {}-fold cross-validation grouped by source over {} (seed {})",
            sel.folds,
            sel.core_files.join(", "),
            sel.seed
        ),
        examples: m.n,
        accuracy: m.accuracy,
        macro_f1: m.macro_f1,
    };
    // The sentence-vector head.
    let (mut linear, _) = fit_encoder(&sel.encoder_sentence)?;
    linear.validation = Some(validation(&sel.encoder_only, "out-of-fold"));
    linear.article = Some(sel.article_rule_encoder);
    let p = dir.join(format!("{}-linear.{short}.json", task.name()));
    linear.check(&p)?;
    linear.save(&p)?;
    paths.push(p);
    let (encoder_part, _) = if sel.encoder.features == Features::Context {
        let (ctx, f) = fit_encoder(&sel.encoder)?;
        let p = dir.join(format!("{}-context.{short}.json", task.name()));
        let mut c = ctx.clone();
        c.article = Some(sel.article_rule_chosen_encoder);
        c.validation = Some(validation(&sel.chosen_encoder, "out-of-fold, context"));
        c.check(&p)?;
        c.save(&p)?;
        paths.push(p);
        (ctx, f)
    } else {
        (linear.clone(), vec![])
    };
    // The lexical head.
    let mut texts = core.texts();
    let mut y = core.labels();
    let mut w = vec![1.0f32; y.len()];
    let mut lex_files: Vec<&Path> = core.files.iter().map(PathBuf::as_path).collect();
    for &(k, wk) in &sel.lexical.mix {
        texts.extend(extras[k].texts());
        y.extend(extras[k].labels());
        w.extend(std::iter::repeat_n(wk, extras[k].examples.len()));
        lex_files.extend(extras[k].files.iter().map(PathBuf::as_path));
    }
    let model = lexical::fit(&texts, &y, &w, sel.lexical.l2, bits);
    let lex_name = format!("{}-lexical.{short}.safetensors", task.name());
    let lex_path = dir.join(&lex_name);
    let meta: std::collections::BTreeMap<String, String> = [
        ("task", task.name().to_string()),
        ("l2", sel.lexical.l2.to_string()),
        (
            "data",
            lex_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(","),
        ),
        ("data_sha256", crate::train::files_sha256(&lex_files)?),
        (
            "extra_weights",
            sel.lexical
                .extras
                .iter()
                .map(|(n, w)| format!("{n}={w}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("examples", y.len().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    model.save(&lex_path, meta)?;
    let lex_sha = crate::models::sha256_file(&lex_path)?;
    paths.push(lex_path);
    // The fused head: the chosen encoder part and the lexical model.
    let mut fused = encoder_part;
    fused.kind = "fused".into();
    fused.temperature = sel.encoder.temperature;
    fused.lexical = Some(LexicalPart {
        file: lex_name,
        sha256: lex_sha,
        alpha: sel.alpha,
        temperature: sel.lexical.temperature,
    });
    fused.article = Some(sel.article_rule);
    fused.validation = Some(validation(&sel.best, "out-of-fold, fused"));
    let p = dir.join(format!("{}-fused.{short}.json", task.name()));
    fused.check(&p)?;
    fused.save(&p)?;
    paths.push(p);
    Ok(Written { paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(source: &str, label: usize) -> Example {
        Example {
            id: format!("{source}-{label}"),
            lang: "en".into(),
            label,
            text: String::new(),
            source: source.into(),
        }
    }

    #[test]
    fn folds_never_split_a_source_and_are_balanced() {
        let examples: Vec<Example> = (0..50)
            .flat_map(|s| (0..(1 + s % 4)).map(move |k| ex(&format!("s{s}"), k % 3)))
            .collect();
        let fold = folds_by_source(&examples, 5, 7);
        let mut of: HashMap<&str, usize> = HashMap::new();
        for (e, &f) in examples.iter().zip(&fold) {
            assert_eq!(*of.entry(e.source.as_str()).or_insert(f), f, "source {} in two folds", e.source);
        }
        let mut per = [0usize; 5];
        of.values().for_each(|&f| per[f] += 1);
        assert_eq!(per, [10; 5]);
        assert_ne!(folds_by_source(&examples, 5, 8), fold);
    }

    #[test]
    fn article_gold_is_the_side_with_more_sentences() {
        assert_eq!(article_gold(&[0, 1, 0, 2]), 0);
        assert_eq!(article_gold(&[2, 1, 1]), 2);
        assert_eq!(article_gold(&[0, 2, 1]), 1);
        assert_eq!(article_gold(&[1, 1]), 1);
    }
}
