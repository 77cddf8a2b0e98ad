//! The score stage: sentence vectors in, label probabilities out.
//!
//! [`Head`] is the swappable part: a trained multinomial logistic regression
//! ([`LinearHead`]) or zero-shot label prototypes ([`PrototypeHead`]). Both are saved as
//! small versioned JSON files that record the encoder variant they belong to; loading a
//! head for another encoder is an error before any scoring.

pub mod lexical;
pub mod prototype;

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::data::Task;
use crate::error::{Error, Result};

pub use lexical::LexicalModel;
pub use prototype::PrototypeHead;

pub const HEAD_FORMAT: &str = "stance-head";
pub const HEAD_VERSION: u32 = 1;

/// What a head reads: the sentence vector alone, or with its neighbours' mean appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Features {
    #[default]
    Sentence,
    Context,
}

pub trait Head: Send + Sync {
    fn task(&self) -> Task;
    /// `linear` or `prototype`.
    fn kind(&self) -> &'static str;
    /// The encoder variant the head was built on.
    fn encoder(&self) -> &str;
    fn features(&self) -> Features;
    /// One row of probabilities (in `task().labels()` order, summing to 1) per row of
    /// `x` (the features [`Head::features`] asks for); `texts` are the same sentences'
    /// texts, for heads that read words as well as vectors.
    fn predict_proba(&self, x: ArrayView2<f32>, texts: &[&str]) -> Array2<f32>;
    /// How this head's sentence judgments add up to an article's, when it was
    /// calibrated for that (else the default rule of [`crate::aggregate`]).
    fn article_rule(&self) -> Option<ArticleRule> {
        None
    }
}

/// How sentence probabilities add up to an article's judgment: each sentence weighs
/// `(1 − P(neutral))^weight_power` in the mean of probabilities, and the article's
/// label is the largest of `P(first)`, `neutral_scale · P(neutral)`, `P(third)`
/// (power 1 and scale 1 are the uncalibrated default). Chosen on the articles of
/// labeled news by grouped cross-validation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ArticleRule {
    pub weight_power: f32,
    pub neutral_scale: f32,
}

impl Default for ArticleRule {
    fn default() -> Self {
        ArticleRule {
            weight_power: 1.0,
            neutral_scale: 1.0,
        }
    }
}

/// The lexical half of a fused head: a [`LexicalModel`] file beside the head file, and
/// how much of the fused probability it contributes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LexicalPart {
    /// File name, in the head file's folder.
    pub file: String,
    pub sha256: String,
    /// Weight of the lexical probabilities in the mix (the encoder's is `1 − alpha`).
    pub alpha: f32,
    /// The lexical logits are divided by this before the softmax.
    pub temperature: f32,
}

/// Provenance of a trained head.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Training {
    pub files: Vec<String>,
    pub examples: usize,
    /// SHA-256 of the training files' bytes, concatenated in order.
    pub sha256: String,
    #[serde(default)]
    pub l2: f32,
    #[serde(default)]
    pub seed: u64,
}

/// The validation figures recorded with a head.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Validation {
    pub data: String,
    pub examples: usize,
    pub accuracy: f32,
    pub macro_f1: f32,
}

impl Validation {
    /// Figures on a validation split of `percent`% of the sources, held out whole.
    pub fn held_out(percent: u64, m: &crate::train::metrics::Metrics) -> Validation {
        Validation {
            data: format!("{percent}% of sources held out"),
            examples: m.n,
            accuracy: m.accuracy,
            macro_f1: m.macro_f1,
        }
    }
}

/// The on-disk form of every head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeadFile {
    pub format: String,
    pub version: u32,
    pub kind: String,
    pub task: Task,
    pub labels: Vec<String>,
    pub encoder: String,
    pub dim: usize,
    #[serde(default)]
    pub features: Features,
    /// One row per label: the regression weights, or the label prototypes.
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
    /// Logits are divided by this (fitted on validation data for calibration).
    pub temperature: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptions: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub training: Training,
    #[serde(default)]
    pub validation: Option<Validation>,
    /// For `fused` heads: the lexical model mixed with the encoder part above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical: Option<LexicalPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article: Option<ArticleRule>,
}

impl HeadFile {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::head(path, "no such head file"),
            _ => Error::io(path, e),
        })?;
        let hf: HeadFile = serde_json::from_slice(&bytes).map_err(|e| Error::head(path, format!("not a valid head file: {e}")))?;
        hf.check(path)?;
        Ok(hf)
    }

    pub fn check(&self, path: &Path) -> Result<()> {
        if self.format != HEAD_FORMAT {
            return Err(Error::head(path, format!("format is {:?}, expected {HEAD_FORMAT:?}", self.format)));
        }
        if self.version != HEAD_VERSION {
            return Err(Error::head(
                path,
                format!("head version {} is not supported (this build reads {HEAD_VERSION})", self.version),
            ));
        }
        let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        if labels != self.task.labels() {
            return Err(Error::head(
                path,
                format!("labels {labels:?} do not match the {} task", self.task.name()),
            ));
        }
        if self.dim == 0 || self.dim > 1 << 16 {
            return Err(Error::head(path, format!("dim {} is out of range", self.dim)));
        }
        if self.kind == "prototype" && self.features != Features::Sentence {
            return Err(Error::head(path, "a prototype head reads sentence features only"));
        }
        let in_dim = self.input_dim();
        if self.weights.len() != 3 || self.weights.iter().any(|r| r.len() != in_dim) || self.bias.len() != 3 {
            return Err(Error::head(path, format!("weights must be 3 × {in_dim} and bias 3")));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0)
            || self.weights.iter().flatten().chain(&self.bias).any(|x| !x.is_finite())
        {
            return Err(Error::head(path, "non-finite weights or temperature"));
        }
        if !matches!(self.kind.as_str(), "linear" | "prototype" | "fused") {
            return Err(Error::head(path, format!("unknown head kind {:?}", self.kind)));
        }
        match (&self.lexical, self.kind.as_str()) {
            (None, "fused") => return Err(Error::head(path, "a fused head needs its `lexical` part")),
            (Some(_), "linear" | "prototype") => {
                return Err(Error::head(path, format!("a {} head has no `lexical` part", self.kind)));
            }
            (Some(l), _) if !(0.0..=1.0).contains(&l.alpha) || !(l.temperature.is_finite() && l.temperature > 0.0) => {
                return Err(Error::head(path, "lexical alpha must be in 0..=1 and its temperature positive"));
            }
            _ => {}
        }
        if let Some(r) = self.article
            && !(r.weight_power.is_finite() && r.weight_power >= 0.0 && r.neutral_scale.is_finite() && r.neutral_scale > 0.0)
        {
            return Err(Error::head(
                path,
                "article rule: weight_power must be ≥ 0 and neutral_scale positive",
            ));
        }
        Ok(())
    }

    pub fn input_dim(&self) -> usize {
        match self.features {
            Features::Sentence => self.dim,
            Features::Context => 2 * self.dim,
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string(self).map_err(|e| Error::head(path, e.to_string()))?;
        crate::util::write_atomic(path, json.as_bytes())
    }

    /// Checks the head fits an encoder before anything is scored.
    pub fn check_encoder(&self, path: &Path, variant: &str, dim: usize) -> Result<()> {
        if self.encoder != variant || self.dim != dim {
            return Err(Error::head(
                path,
                format!(
                    "head was built for encoder {} ({}-d), not {variant} ({dim}-d): train one with `stance train --model {variant}`",
                    self.encoder, self.dim
                ),
            ));
        }
        Ok(())
    }

    /// Builds the head; `path` is where the head file was read from (a fused head's
    /// lexical model lies beside it and must match the recorded SHA-256).
    pub fn into_head(self, path: &Path) -> Result<Box<dyn Head>> {
        Ok(match self.kind.as_str() {
            "prototype" => Box::new(PrototypeHead(LinearHead(self))),
            "fused" => {
                let part = self.lexical.clone().expect("checked: fused heads have a lexical part");
                let file = path.parent().unwrap_or(Path::new(".")).join(&part.file);
                let bytes = std::fs::read(&file).map_err(|e| Error::head(path, format!("its lexical model {}: {e}", file.display())))?;
                let sha = crate::models::sha256_bytes(&bytes);
                if sha != part.sha256 {
                    return Err(Error::head(
                        path,
                        format!(
                            "its lexical model {} has SHA-256 {sha}, not the {} recorded",
                            file.display(),
                            part.sha256
                        ),
                    ));
                }
                let lexical = LexicalModel::load(&file).map_err(|e| Error::head(path, format!("its lexical model: {e}")))?;
                Box::new(FusedHead {
                    encoder: LinearHead(self),
                    lexical,
                    part,
                })
            }
            _ => Box::new(LinearHead(self)),
        })
    }
}

/// Multinomial logistic regression: softmax((W·x + b) / T).
#[derive(Debug, Clone)]
pub struct LinearHead(pub HeadFile);

pub fn affine_softmax(hf: &HeadFile, x: ArrayView2<f32>) -> Array2<f32> {
    if x.nrows() == 0 {
        return Array2::zeros((0, 3));
    }
    let w = Array2::from_shape_vec((3, hf.input_dim()), hf.weights.concat()).expect("checked shape");
    let mut logits = x.dot(&w.t());
    for mut row in logits.axis_iter_mut(Axis(0)) {
        for (l, b) in row.iter_mut().zip(&hf.bias) {
            *l = (*l + b) / hf.temperature;
        }
    }
    softmax_rows(&mut logits);
    logits
}

pub fn softmax_rows(a: &mut Array2<f32>) {
    for mut row in a.axis_iter_mut(Axis(0)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.mapv_inplace(|v| (v - max).exp());
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
}

impl Head for LinearHead {
    fn task(&self) -> Task {
        self.0.task
    }
    fn kind(&self) -> &'static str {
        "linear"
    }
    fn encoder(&self) -> &str {
        &self.0.encoder
    }
    fn features(&self) -> Features {
        self.0.features
    }
    fn predict_proba(&self, x: ArrayView2<f32>, _texts: &[&str]) -> Array2<f32> {
        affine_softmax(&self.0, x)
    }
    fn article_rule(&self) -> Option<ArticleRule> {
        self.0.article
    }
}

/// The encoder's linear head and the lexical head, their calibrated probabilities
/// mixed: `(1 − α)·P_encoder + α·P_lexical`.
pub struct FusedHead {
    pub encoder: LinearHead,
    pub lexical: LexicalModel,
    pub part: LexicalPart,
}

/// Mixes calibrated probabilities of the two halves of a fused head.
pub fn mix(p_encoder: &Array2<f32>, lexical_logits: &Array2<f32>, lexical_temperature: f32, alpha: f32) -> Array2<f32> {
    let mut pl = lexical_logits / lexical_temperature;
    softmax_rows(&mut pl);
    p_encoder * (1.0 - alpha) + &(pl * alpha)
}

impl Head for FusedHead {
    fn task(&self) -> Task {
        self.encoder.task()
    }
    fn kind(&self) -> &'static str {
        "fused"
    }
    fn encoder(&self) -> &str {
        self.encoder.encoder()
    }
    fn features(&self) -> Features {
        self.encoder.features()
    }
    fn predict_proba(&self, x: ArrayView2<f32>, texts: &[&str]) -> Array2<f32> {
        assert_eq!(x.nrows(), texts.len(), "a fused head needs one text per row");
        let pe = self.encoder.predict_proba(x, texts);
        mix(&pe, &self.lexical.logits(texts), self.part.temperature, self.part.alpha)
    }
    fn article_rule(&self) -> Option<ArticleRule> {
        self.encoder.0.article
    }
}

/// Where committed heads live: `./models/heads` when run from the repository, else
/// the heads folder of the source tree the binary was built from.
pub fn heads_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STANCE_HEADS") {
        return PathBuf::from(d);
    }
    crate::util::shipped("models/heads")
}

/// The head a variant uses unless told otherwise: `fused` where the variant has one
/// (chosen on real news), else `linear`.
pub const DEFAULT_HEAD: &str = "default";

/// The file of a named head (`default`, `fused`, `linear`, `context`, `prototype`,
/// `written`) for a task and encoder variant, or the path itself when `spec` is a file
/// path.
pub fn head_path(spec: &str, task: Task, variant: &str) -> PathBuf {
    if spec.ends_with(".json") || spec.contains('/') {
        return PathBuf::from(spec);
    }
    let variant = variant.rsplit('/').next().unwrap_or(variant);
    let named = |name: &str| heads_dir().join(format!("{}-{name}.{variant}.json", task.name()));
    if spec == DEFAULT_HEAD {
        let fused = named("fused");
        return if fused.is_file() { fused } else { named("linear") };
    }
    named(spec)
}

/// The head names present for a task and encoder variant (`default` first).
pub fn head_names(task: Task, variant: &str) -> Vec<String> {
    let variant = variant.rsplit('/').next().unwrap_or(variant);
    let (prefix, suffix) = (format!("{}-", task.name()), format!(".{variant}.json"));
    let mut names: Vec<String> = std::fs::read_dir(heads_dir())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_prefix(&prefix)?.strip_suffix(&suffix).map(str::to_string))
        .filter(|n| !n.contains('.'))
        .collect();
    names.sort();
    if !names.is_empty() {
        names.insert(0, DEFAULT_HEAD.to_string());
    }
    names
}

/// Reads a named head for a task and encoder variant and checks both, without needing
/// the encoder: callers check its width with [`HeadFile::check_encoder`] once loaded.
pub fn read_head(spec: &str, task: Task, variant: &str) -> Result<(HeadFile, PathBuf)> {
    let path = head_path(spec, task, variant);
    if !path.exists() && !(spec.ends_with(".json") || spec.contains('/')) {
        return Err(Error::head(
            &path,
            format!(
                "no {} head named {spec:?} for {variant} (available: {}; or pass a head file)",
                task.name(),
                head_names(task, variant).join(", ")
            ),
        ));
    }
    let hf = HeadFile::load(&path)?;
    if hf.task != task {
        return Err(Error::head(&path, format!("is a {} head, not {}", hf.task.name(), task.name())));
    }
    hf.check_encoder(&path, variant, hf.dim)?;
    Ok((hf, path))
}

pub fn load_head(spec: &str, task: Task, variant: &str, dim: usize) -> Result<(Box<dyn Head>, PathBuf)> {
    let (hf, path) = read_head(spec, task, variant)?;
    hf.check_encoder(&path, variant, dim)?;
    Ok((hf.into_head(&path)?, path))
}

/// Builds the inputs a head reads from the vectors of one article's sentences, in order.
pub fn features(vectors: &[Vec<f32>], kind: Features) -> Array2<f32> {
    let dim = vectors.first().map_or(0, Vec::len);
    match kind {
        Features::Sentence => Array2::from_shape_vec((vectors.len(), dim), vectors.concat()).expect("equal rows"),
        Features::Context => {
            let mut out = Array2::zeros((vectors.len(), 2 * dim));
            for (i, v) in vectors.iter().enumerate() {
                let mut row = out.row_mut(i);
                for (j, x) in v.iter().enumerate() {
                    row[j] = *x;
                }
                // The neighbours' mean; a sentence without neighbours is its own context.
                let neigh: Vec<&Vec<f32>> = [i.checked_sub(1), Some(i + 1)]
                    .into_iter()
                    .flatten()
                    .filter_map(|k| vectors.get(k))
                    .collect();
                for j in 0..dim {
                    row[dim + j] = if neigh.is_empty() {
                        v[j]
                    } else {
                        neigh.iter().map(|n| n[j]).sum::<f32>() / neigh.len() as f32
                    };
                }
            }
            out
        }
    }
}
