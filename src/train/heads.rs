//! Training one head on frozen sentence vectors: `linear` or `context` (logistic
//! regression, L2 picked and temperature fitted on sources held out), or `prototype`
//! (zero-shot label descriptions, temperature fitted on the data given).

use std::path::PathBuf;

use ndarray::Array2;

use crate::data::{Example, Task};
use crate::encode::Embedder;
use crate::error::{Error, Result};
use crate::score::{self, Features, HeadFile, Training, Validation, prototype};
use crate::train::metrics::Metrics;
use crate::train::{self, select::labeled_features};

/// What kind of head to train, resolved from its name once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    Linear,
    Context,
    Prototype,
}

impl std::str::FromStr for HeadKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "linear" => Ok(HeadKind::Linear),
            "context" => Ok(HeadKind::Context),
            "prototype" => Ok(HeadKind::Prototype),
            other => Err(Error::Usage(format!(
                "unknown head kind {other:?} (linear, context, prototype; `stance select` trains fused heads)"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HeadTraining {
    pub task: Task,
    pub kind: HeadKind,
    /// L2 strength; `None` picks it from a grid on the held-out sources.
    pub l2: Option<f32>,
    pub epochs: usize,
    pub val_percent: u64,
    pub seed: u64,
    pub files: Vec<PathBuf>,
}

/// Trains a head on `examples` (from `opts.files`) embedded as `vecs` by `emb`.
/// `log` receives progress lines (split sizes, the validation figures).
pub fn train_head(
    emb: &Embedder,
    examples: &[Example],
    vecs: &[Vec<f32>],
    opts: &HeadTraining,
    log: &mut dyn FnMut(&str),
) -> Result<HeadFile> {
    let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let mut bytes = Vec::new();
    for p in &opts.files {
        bytes.extend(std::fs::read(p).map_err(|e| Error::io(p, e))?);
    }
    let training = Training {
        files: opts.files.iter().map(|p| p.display().to_string()).collect(),
        examples: examples.len(),
        sha256: crate::models::sha256_bytes(&bytes),
        l2: 0.0,
        seed: opts.seed,
    };
    let task = opts.task;
    let head = match opts.kind {
        HeadKind::Prototype => {
            let descriptions = prototype::descriptions(task);
            let described: Vec<Vec<Vec<f32>>> = descriptions
                .iter()
                .map(|ds| emb.embed(&ds.iter().map(String::as_str).collect::<Vec<_>>()))
                .collect::<Result<_>>()?;
            let mut hf = prototype::build(task, &emb.variant, &described, descriptions, 1.0);
            // Only the temperature is fitted, on the labeled data given.
            let x = score::features(vecs, Features::Sentence);
            let w = Array2::from_shape_vec((3, hf.dim), hf.weights.concat()).expect("3 prototypes of the head's width");
            hf.temperature = train::fit_temperature(&x.dot(&w.t()), &y);
            let p = score::affine_softmax(&hf, x.view());
            let m = Metrics::compute(&y, &train::predict(&p), &p);
            hf.validation = Some(Validation {
                data: training.files.join(", "),
                examples: y.len(),
                accuracy: m.accuracy,
                macro_f1: m.macro_f1,
            });
            hf.training = training;
            hf
        }
        HeadKind::Linear | HeadKind::Context => {
            let features = if opts.kind == HeadKind::Context {
                Features::Context
            } else {
                Features::Sentence
            };
            let x = labeled_features(examples, vecs, features);
            let (train_idx, val_idx) = train::holdout_by_source(examples, opts.seed, opts.val_percent)?;
            let pick =
                |idx: &[usize]| -> (Array2<f32>, Vec<usize>) { (x.select(ndarray::Axis(0), idx), idx.iter().map(|&i| y[i]).collect()) };
            let (xt, yt) = pick(&train_idx);
            let (xv, yv) = pick(&val_idx);
            log(&format!(
                "training on {} examples, validating on {} (held out by source)",
                yt.len(),
                yv.len()
            ));
            let l2 = match opts.l2 {
                Some(l) => l,
                None => train::select_l2(xt.view(), &yt, xv.view(), &yv, &[1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0], opts.epochs).0,
            };
            let f = train::fit_logistic(xt.view(), &yt, l2, opts.epochs);
            let lv = train::logits(&f, xv.view());
            let temperature = train::fit_temperature(&lv, &yv);
            let mut pv = lv / temperature;
            score::softmax_rows(&mut pv);
            let m = Metrics::compute(&yv, &train::predict(&pv), &pv);
            log(&format!(
                "l2 {l2}, temperature {temperature:.3}, validation macro-F1 {:.3}, accuracy {:.3}, ECE {:.3}",
                m.macro_f1, m.accuracy, m.ece
            ));
            // Refit on everything with the chosen strength; keep the fitted temperature.
            let f = train::fit_logistic(x.view(), &y, l2, opts.epochs);
            HeadFile {
                format: score::HEAD_FORMAT.into(),
                version: score::HEAD_VERSION,
                kind: "linear".into(),
                task,
                labels: task.labels().iter().map(|s| s.to_string()).collect(),
                encoder: emb.variant.clone(),
                dim: emb.dim(),
                features,
                weights: f.weights.outer_iter().map(|r| r.to_vec()).collect(),
                bias: f.bias.to_vec(),
                temperature,
                descriptions: None,
                training: Training { l2, ..training },
                validation: Some(Validation::held_out(opts.val_percent, &m)),
                lexical: None,
                article: None,
            }
        }
    };
    Ok(head)
}
