//! Evaluation of encoder variants × heads on labeled data, side by side, with a
//! majority baseline, per-language figures, speed and peak memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array2;
use serde::Serialize;

use crate::data::{self, Task};
use crate::encode::{Embedder, EncoderOptions};
use crate::error::{Error, Result};
use crate::models;
use crate::score;
use crate::train::metrics::Metrics;
use crate::train::select::{labeled_features, per_language};

/// The heads tried when none are named, those present for each variant.
pub const DEFAULT_HEADS: [&str; 4] = ["fused", "linear", "context", "prototype"];

#[derive(Debug, Serialize)]
pub struct EvalRow {
    pub variant: String,
    pub head: String,
    pub metrics: Metrics,
    pub per_language: BTreeMap<String, Metrics>,
    pub sentences_per_second: Option<f64>,
    pub peak_memory_mb: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub task: Task,
    pub data: Vec<String>,
    pub examples: usize,
    pub rows: Vec<EvalRow>,
    /// Heads asked for that a variant does not have.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// Peak resident memory of this process (VmHWM), in MB.
pub fn peak_memory_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak-memory counter, so each variant's peak is its own (Linux).
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The variants present in the cache, adapters included.
pub fn present_variants() -> Vec<String> {
    let mut v: Vec<String> = models::variants()
        .iter()
        .filter(|v| matches!(models::local_files(v.name), Ok(Some(_))))
        .map(|v| v.name.to_string())
        .collect();
    v.extend(models::adapter_variants());
    v
}

/// Evaluates every variant × head on the labeled files (folders and patterns expanded).
/// No variants: every variant present; no heads: [`DEFAULT_HEADS`], those present.
pub fn evaluate(task: Task, data_args: &[PathBuf], variants: &[String], heads: &[String], encoder: &EncoderOptions) -> Result<Evaluation> {
    let files = data::expand_all(data_args)?;
    let examples = data::load_many(&files, task)?;
    let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let variants = if variants.is_empty() {
        present_variants()
    } else {
        variants.to_vec()
    };
    if variants.is_empty() {
        return Err(Error::Usage("no encoder variant is present: run `stance models fetch`".into()));
    }
    let mut rows = Vec::new();
    // The majority baseline: the most frequent class of the evaluation data itself.
    let mut counts = [0usize; 3];
    y.iter().for_each(|&c| counts[c] += 1);
    let major = (0..3).max_by_key(|&c| counts[c]).expect("three classes");
    let mut p = Array2::zeros((y.len(), 3));
    p.column_mut(major).fill(1.0);
    rows.push(EvalRow {
        variant: "-".into(),
        head: format!("majority ({})", task.labels()[major]),
        metrics: Metrics::compute(&y, &vec![major; y.len()], &p),
        per_language: per_language(&examples, &y, &p),
        sentences_per_second: None,
        peak_memory_mb: None,
    });
    let mut notes = Vec::new();
    let explicit = !heads.is_empty();
    let heads: Vec<String> = if explicit {
        heads.to_vec()
    } else {
        DEFAULT_HEADS.map(String::from).to_vec()
    };
    for v in &variants {
        reset_peak_memory();
        let resolved = models::resolve(v, true)?;
        let emb = Embedder::load(&resolved, encoder)?;
        let t0 = Instant::now();
        let vecs = emb.embed(&texts)?;
        let speed = texts.len() as f64 / t0.elapsed().as_secs_f64();
        let peak = peak_memory_mb();
        for h in &heads {
            let path = score::head_path(h, task, &resolved.variant);
            if !path.is_file() {
                if explicit {
                    notes.push(format!("no {h} head for {v} ({})", path.display()));
                }
                continue;
            }
            let (head, _) = score::load_head(h, task, &resolved.variant, emb.dim())?;
            let x = labeled_features(&examples, &vecs, head.features());
            let p = head.predict_proba(x.view(), &texts);
            rows.push(EvalRow {
                variant: v.clone(),
                head: h.clone(),
                metrics: Metrics::compute(&y, &crate::train::predict(&p), &p),
                per_language: per_language(&examples, &y, &p),
                sentences_per_second: Some(speed),
                peak_memory_mb: peak,
            });
        }
    }
    Ok(Evaluation {
        task,
        data: files.iter().map(|p| p.display().to_string()).collect(),
        examples: y.len(),
        rows,
        notes,
    })
}

/// The figures of one speed run (`stance bench`).
#[derive(Debug, Clone, Serialize)]
pub struct BenchFigures {
    pub variant: String,
    pub backend: String,
    pub sentences: usize,
    pub tokens: usize,
    pub load_seconds: f64,
    pub tokenize_seconds: f64,
    /// Encoding alone (tokenized input to pooled vectors).
    pub encode_seconds: f64,
    pub peak_memory_mb: f64,
    pub memory_before_load_mb: f64,
    pub threads: usize,
    /// Against the f32 forward, when asked: worst cosine, its line (1-based), mean
    /// cosine, and how many are below 0.9999.
    pub check: Option<BenchCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchCheck {
    pub reference: String,
    pub worst_cosine: f32,
    pub worst_line: usize,
    pub mean_cosine: f64,
    pub below_0_9999: usize,
}

/// Times loading, tokenizing and encoding `lines` with `model`; with `check`, also
/// embeds them with the f32 forward and compares the vectors.
pub fn bench(model: &str, opts: &EncoderOptions, lines: &[&str], check: bool) -> Result<BenchFigures> {
    reset_peak_memory();
    let before = peak_memory_mb().unwrap_or(0.0);
    let resolved = models::resolve(model, true)?;
    let t0 = Instant::now();
    let emb = Embedder::load(&resolved, opts)?;
    let load_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let ids = emb.tokenize(lines)?;
    let tokenize_seconds = t1.elapsed().as_secs_f64();
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let t2 = Instant::now();
    let vecs = emb.embed_ids(&ids, &mut |_| {})?;
    let encode_seconds = t2.elapsed().as_secs_f64();
    let peak = peak_memory_mb().unwrap_or(0.0);
    let check = if check {
        let reference = Embedder::load(
            &resolved,
            &EncoderOptions {
                backend: crate::encode::Backend::Fast,
                ..opts.clone()
            },
        )?;
        let refs = reference.embed_ids(&ids, &mut |_| {})?;
        let cos: Vec<f32> = vecs.iter().zip(&refs).map(|(a, b)| crate::encode::cosine(a, b)).collect();
        let (worst, at) = cos
            .iter()
            .enumerate()
            .fold((f32::INFINITY, 0), |m, (i, &c)| if c < m.0 { (c, i) } else { m });
        Some(BenchCheck {
            reference: reference.backend().to_string(),
            worst_cosine: worst,
            worst_line: at + 1,
            mean_cosine: cos.iter().map(|&c| c as f64).sum::<f64>() / cos.len().max(1) as f64,
            below_0_9999: cos.iter().filter(|&&c| c < 0.9999).count(),
        })
    } else {
        None
    };
    Ok(BenchFigures {
        variant: resolved.variant.clone(),
        backend: emb.backend().to_string(),
        sentences: lines.len(),
        tokens,
        load_seconds,
        tokenize_seconds,
        encode_seconds,
        peak_memory_mb: peak,
        memory_before_load_mb: before,
        threads: rayon::current_num_threads(),
        check,
    })
}
