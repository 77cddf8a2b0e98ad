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
