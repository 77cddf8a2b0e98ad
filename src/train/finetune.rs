//! Fine-tuning the encoder for stance, in candle, on the CPU: LoRA adapters on the
//! attention and FFN matrices of the top layers, trained end to end with cross-entropy
//! through a classifier on the pooled vector; the base stays frozen.
//!
//! The frozen bottom layers run once per sentence in the fast forward and their output
//! is kept, so each epoch only runs the top layers forward and backward. The adapters
//! are saved as a small safetensors file and merged into the weights at load time
//! (W += (α/r)·B·A), so the tuned variant is exactly as fast as the base.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::encode::e5s1::E5s1;
use crate::encode::fast::FastBert;
use crate::error::{Error, Result};
use crate::util::Rng;

pub const MATRICES: [&str; 6] = ["q", "k", "v", "ao", "fi", "fo"];

/// What the adapters are trained to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Objective {
    /// Cross-entropy through a classifier on the pooled vector, trained with the adapters.
    #[default]
    CrossEntropy,
    /// SetFit-style: pull the pooled vectors of same-label sentences together and push
    /// the others apart (cosine similarity regressed on 1/0 over every pair of a batch);
    /// the classifier is a logistic regression fitted afterwards on the tuned vectors.
    Contrastive,
}

#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// How many of the top layers get adapters.
    pub top_layers: usize,
    pub rank: usize,
    pub alpha: f32,
    pub lr: f64,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    pub objective: Objective,
}

impl TuneConfig {
    /// Refuses a configuration that cannot train (checked before anything loads).
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 || self.rank == 0 || self.top_layers == 0 {
            return Err(Error::Usage("--tune-epochs, --rank and --top-layers must be at least 1".into()));
        }
        Ok(())
    }
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            top_layers: 4,
            rank: 8,
            alpha: 16.0,
            lr: 2e-3,
            epochs: 4,
            batch: 16,
            seed: 42,
            objective: Objective::CrossEntropy,
        }
    }
}

struct FrozenLayer {
    w: HashMap<&'static str, (Tensor, Tensor)>, // weight [out, in], bias [out]
    aln: (Tensor, Tensor),
    oln: (Tensor, Tensor),
}

/// The adapters of one matrix: A [r, in] and B [out, r].
struct Lora {
    a: Var,
    b: Var,
}

pub struct Tuner {
    layers: Vec<FrozenLayer>,
    lora: Vec<HashMap<&'static str, Lora>>,
    head_w: Var,
    head_b: Var,
    cfg: TuneConfig,
    heads: usize,
    eps: f64,
    first_layer: usize,
}

fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    xc.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(w)?.broadcast_add(b)
}

impl Tuner {
    pub fn new(image: &E5s1, cfg: TuneConfig) -> Result<Self> {
        let c = image.config;
        let dev = Device::Cpu;
        let first_layer = c.layers - cfg.top_layers.min(c.layers);
        let mut rng = Rng(cfg.seed);
        let mut layers = Vec::new();
        let mut lora = Vec::new();
        for l in first_layer..c.layers {
            let t = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(Tensor::from_vec(image.f32(&format!("l{l}.{n}"))?, shape, &dev)?) };
            let mut w = HashMap::new();
            let mut ad = HashMap::new();
            for m in MATRICES {
                let (out, inp) = match m {
                    "fi" => (c.ffn, c.hidden),
                    "fo" => (c.hidden, c.ffn),
                    _ => (c.hidden, c.hidden),
                };
                w.insert(m, (t(&format!("{m}.w"), &[out, inp])?, t(&format!("{m}.b"), &[out])?));
                // A: small random (Kaiming-like), B: zero, so training starts at the base model.
                let bound = 1.0 / (inp as f32).sqrt();
                let a: Vec<f32> = (0..cfg.rank * inp)
                    .map(|_| (rng.below(2_000_001) as f32 / 1_000_000.0 - 1.0) * bound)
                    .collect();
                ad.insert(
                    m,
                    Lora {
                        a: Var::from_tensor(&Tensor::from_vec(a, (cfg.rank, inp), &dev)?)?,
                        b: Var::from_tensor(&Tensor::zeros((out, cfg.rank), DType::F32, &dev)?)?,
                    },
                );
            }
            layers.push(FrozenLayer {
                w,
                aln: (t("aln.w", &[c.hidden])?, t("aln.b", &[c.hidden])?),
                oln: (t("oln.w", &[c.hidden])?, t("oln.b", &[c.hidden])?),
            });
            lora.push(ad);
        }
        Ok(Tuner {
            layers,
            lora,
            head_w: Var::from_tensor(&Tensor::zeros((3, c.hidden), DType::F32, &dev)?)?,
            head_b: Var::from_tensor(&Tensor::zeros(3, DType::F32, &dev)?)?,
            cfg,
            heads: c.heads,
            eps: c.layer_norm_eps as f64,
            first_layer,
        })
    }

    /// Starts the classifier from given weights (a logistic regression fitted on the
    /// frozen vectors), so tuning refines a good head instead of growing one from zero.
    pub fn set_head(&self, w: &[Vec<f32>], b: &[f32]) -> Result<()> {
        let h = w[0].len();
        self.head_w.set(&Tensor::from_vec(w.concat(), (3, h), &Device::Cpu)?)?;
        self.head_b.set(&Tensor::from_vec(b.to_vec(), 3, &Device::Cpu)?)?;
        Ok(())
    }

    pub fn first_layer(&self) -> usize {
        self.first_layer
    }

    fn vars(&self) -> Vec<Var> {
        let mut v: Vec<Var> = self
            .lora
            .iter()
            .flat_map(|m| MATRICES.iter().flat_map(|k| [m[k].a.clone(), m[k].b.clone()]))
            .collect();
        // The contrastive objective does not touch the classifier.
        if self.cfg.objective == Objective::CrossEntropy {
            v.push(self.head_w.clone());
            v.push(self.head_b.clone());
        }
        v
    }

    fn linear(&self, x: &Tensor, layer: usize, m: &str) -> candle_core::Result<Tensor> {
        let (w, b) = &self.layers[layer].w[m];
        let lo = &self.lora[layer][m];
        let scale = (self.cfg.alpha / self.cfg.rank as f32) as f64;
        let base = x.broadcast_matmul(&w.t()?)?.broadcast_add(b)?;
        let delta = x
            .broadcast_matmul(&lo.a.as_tensor().t()?)?
            .broadcast_matmul(&lo.b.as_tensor().t()?)?;
        base + (delta * scale)?
    }

    /// Pooled unit vectors [B, h] of a padded batch of hidden states [B, T, h].
    pub fn pooled(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let d = h / self.heads;
        let bias = ((mask.ones_like()? - mask)? * -1e9f64)?.reshape((b, 1, 1, t))?;
        let mut x = x.clone();
        for l in 0..self.layers.len() {
            let split = |y: Tensor| y.reshape((b, t, self.heads, d))?.transpose(1, 2)?.contiguous();
            let q = split(self.linear(&x, l, "q")?)?;
            let k = split(self.linear(&x, l, "k")?)?;
            let v = split(self.linear(&x, l, "v")?)?;
            let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(&bias)?;
            let p = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let ctx = p.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
            let ao = self.linear(&ctx, l, "ao")?;
            let fl = &self.layers[l];
            x = layer_norm(&(x + ao)?, &fl.aln.0, &fl.aln.1, self.eps)?;
            let fi = self.linear(&x, l, "fi")?.gelu_erf()?;
            let fo = self.linear(&fi, l, "fo")?;
            x = layer_norm(&(x + fo)?, &fl.oln.0, &fl.oln.1, self.eps)?;
        }
        let m = mask.unsqueeze(2)?;
        let pooled = x.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)?;
        pooled.broadcast_div(&pooled.sqr()?.sum_keepdim(1)?.sqrt()?)
    }

    /// Logits of the classifier: a cosine classifier with a fixed scale, so the head's
    /// weights stay well conditioned while the encoder moves.
    pub fn logits(&self, pooled: &Tensor) -> candle_core::Result<Tensor> {
        pooled.matmul(&self.head_w.as_tensor().t()?)?.broadcast_add(self.head_b.as_tensor())
    }

    /// One optimisation pass over `order` (indices into `hidden`) in batches.
    pub fn train_epoch(&self, opt: &mut AdamW, hidden: &[Vec<f32>], lens: &[usize], y: &[usize], order: &[usize], h: usize) -> Result<f32> {
        let mut total = 0f32;
        let mut n = 0;
        for idx in order.chunks(self.cfg.batch) {
            // A lone sentence has no pair: no loss, and no optimiser step on momentum alone.
            if self.cfg.objective == Objective::Contrastive && idx.len() < 2 {
                continue;
            }
            let (x, mask) = pad(hidden, lens, idx, h)?;
            let target = Tensor::from_vec(idx.iter().map(|&i| y[i] as u32).collect::<Vec<_>>(), idx.len(), &Device::Cpu)?;
            let pooled = self.pooled(&x, &mask)?;
            let loss = match self.cfg.objective {
                Objective::CrossEntropy => candle_nn::loss::cross_entropy(&self.logits(&pooled)?, &target)?,
                Objective::Contrastive => pair_loss(&pooled, &target)?,
            };
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()? * idx.len() as f32;
            n += idx.len();
        }
        Ok(total / n.max(1) as f32)
    }

    pub fn optimizer(&self) -> Result<AdamW> {
        Ok(AdamW::new(
            self.vars(),
            ParamsAdamW {
                lr: self.cfg.lr,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?)
    }

    /// Probabilities [n, 3] for cached hidden states, in batches.
    pub fn predict(&self, hidden: &[Vec<f32>], lens: &[usize], idx: &[usize], h: usize) -> Result<(Vec<[f32; 3]>, Vec<Vec<f32>>)> {
        let mut probs = Vec::new();
        let mut vecs = Vec::new();
        for part in idx.chunks(64) {
            let (x, mask) = pad(hidden, lens, part, h)?;
            let pooled = self.pooled(&x, &mask)?;
            let p = candle_nn::ops::softmax(&self.logits(&pooled)?, D::Minus1)?.to_vec2::<f32>()?;
            probs.extend(p.into_iter().map(|r| [r[0], r[1], r[2]]));
            vecs.extend(pooled.to_vec2::<f32>()?);
        }
        Ok((probs, vecs))
    }

    /// The adapters as named tensors (`l{N}.{m}.lora_a` / `.lora_b`) plus the head.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (k, m) in self.lora.iter().enumerate() {
            let l = self.first_layer + k;
            for name in MATRICES {
                out.push((format!("l{l}.{name}.lora_a"), m[name].a.as_tensor().clone()));
                out.push((format!("l{l}.{name}.lora_b"), m[name].b.as_tensor().clone()));
            }
        }
        Ok(out)
    }

    pub fn head(&self) -> Result<(Vec<Vec<f32>>, Vec<f32>)> {
        Ok((self.head_w.as_tensor().to_vec2::<f32>()?, self.head_b.as_tensor().to_vec1::<f32>()?))
    }
}

/// SetFit's cosine-similarity loss over every pair of a batch: the mean of
/// (cos(u, v) − [same label])² over ordered pairs u ≠ v. The vectors are unit length.
fn pair_loss(unit: &Tensor, labels: &Tensor) -> candle_core::Result<Tensor> {
    let b = unit.dim(0)?;
    if b < 2 {
        return unit.sum_all()?.affine(0.0, 0.0);
    }
    let cos = unit.matmul(&unit.t()?)?;
    let col = labels.reshape((b, 1))?.broadcast_as((b, b))?;
    let row = labels.reshape((1, b))?.broadcast_as((b, b))?;
    let same = col.eq(&row)?.to_dtype(DType::F32)?;
    let off_diagonal = (Tensor::ones((b, b), DType::F32, unit.device())? - Tensor::eye(b, DType::F32, unit.device())?)?;
    let err = ((cos - same)?.sqr()? * off_diagonal)?;
    err.sum_all()? / (b * (b - 1)) as f64
}

fn pad(hidden: &[Vec<f32>], lens: &[usize], idx: &[usize], h: usize) -> Result<(Tensor, Tensor)> {
    let t = idx.iter().map(|&i| lens[i]).max().unwrap_or(1);
    let mut x = vec![0f32; idx.len() * t * h];
    let mut mask = vec![0f32; idx.len() * t];
    for (r, &i) in idx.iter().enumerate() {
        x[r * t * h..r * t * h + lens[i] * h].copy_from_slice(&hidden[i]);
        mask[r * t..r * t + lens[i]].iter_mut().for_each(|m| *m = 1.0);
    }
    Ok((
        Tensor::from_vec(x, (idx.len(), t, h), &Device::Cpu)?,
        Tensor::from_vec(mask, (idx.len(), t), &Device::Cpu)?,
    ))
}

/// Hidden states after the frozen layers, one [len × h] block per sentence.
pub fn frozen_hidden(fast: &FastBert, ids: &[Vec<u32>], upto: usize, progress: &mut dyn FnMut(usize)) -> Result<Vec<Vec<f32>>> {
    let mut out = vec![Vec::new(); ids.len()];
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    for part in order.chunks(64) {
        let batch: Vec<&[u32]> = part.iter().map(|&i| ids[i].as_slice()).collect();
        let (x, spans) = fast.hidden_states(&batch, upto)?;
        let h = x.len() / spans.iter().map(|s| s.1).sum::<usize>().max(1);
        for (&i, &(o, l)) in part.iter().zip(&spans) {
            out[i] = x[o * h..(o + l) * h].to_vec();
        }
        progress(part.len());
    }
    Ok(out)
}

/// Loads an adapter file and adds it to a fast forward: W += (α/r)·B·A.
pub fn merge_adapter(fast: &mut FastBert, path: &Path) -> Result<AdapterInfo> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k)
            .cloned()
            .ok_or_else(|| Error::model(path, format!("adapter metadata has no {k}")))
    };
    let rank: usize = get("rank")?
        .parse()
        .ok()
        .filter(|&r| r > 0)
        .ok_or_else(|| Error::model(path, "bad rank"))?;
    let alpha: f32 = get("alpha")?.parse().map_err(|_| Error::model(path, "bad alpha"))?;
    let info = AdapterInfo {
        base: get("base")?,
        rank,
        alpha,
        sha256: crate::models::sha256_bytes(&bytes),
    };
    let scale = alpha / rank as f32;
    let read = |name: &str| -> Result<(Vec<f32>, Vec<usize>)> {
        let t = st.tensor(name).map_err(|_| Error::model(path, format!("missing tensor {name}")))?;
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(Error::model(path, format!("{name} is not f32")));
        }
        Ok((
            t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            t.shape().to_vec(),
        ))
    };
    let mut names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| n.ends_with(".lora_a"))
        .map(|n| n.to_string())
        .collect();
    names.sort();
    for an in names {
        let stem = an.trim_end_matches(".lora_a");
        let (layer, m) = stem
            .trim_start_matches('l')
            .split_once('.')
            .ok_or_else(|| Error::model(path, format!("bad tensor name {an}")))?;
        let layer: usize = layer.parse().map_err(|_| Error::model(path, format!("bad tensor name {an}")))?;
        let (a, ash) = read(&an)?;
        let (b, bsh) = read(&format!("{stem}.lora_b"))?;
        if ash.len() != 2 || bsh.len() != 2 || ash[0] != rank || bsh[1] != rank {
            return Err(Error::model(
                path,
                format!("{stem}: shapes {ash:?} and {bsh:?} do not fit rank {rank}"),
            ));
        }
        let b: Vec<f32> = b.iter().map(|v| v * scale).collect();
        fast.add_low_rank(layer, m, rank, a, b)
            .map_err(|e| Error::model(path, e.to_string()))?;
    }
    Ok(info)
}

#[derive(Debug, Clone)]
pub struct AdapterInfo {
    pub base: String,
    pub rank: usize,
    pub alpha: f32,
    /// Of the bytes that were merged (keys the tuned variant's vector cache).
    pub sha256: String,
}

pub fn save_adapter(path: &Path, tensors: Vec<(String, Tensor)>, meta: HashMap<String, String>) -> Result<()> {
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .into_iter()
        .map(|(n, t)| -> Result<_> {
            let v = t.flatten_all()?.to_vec1::<f32>()?;
            Ok((n, v.iter().flat_map(|x| x.to_le_bytes()).collect(), t.dims().to_vec()))
        })
        .collect::<Result<_>>()?;
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).expect("sizes match"),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::model(path, e.to_string()))?;
    crate::util::write_atomic(path, &bytes)
}

/// A whole fine-tuning run: what to tune, on what, and where the results go.
#[derive(Debug, Clone)]
pub struct FinetuneRun {
    pub task: crate::data::Task,
    /// The labeled files (their names and hashes are recorded, never their text).
    pub files: Vec<PathBuf>,
    pub config: TuneConfig,
    /// L2 of the classifier's logistic regressions (start, contrastive objective).
    pub l2: f32,
    /// Passes of those regressions.
    pub head_epochs: usize,
    pub val_percent: u64,
    /// The tuned variant (`BASE+NAME`); its adapter goes where the variant is looked
    /// up ([`FinetuneRun::adapter_path`]), its head to `head_path`.
    pub variant: String,
    pub head_path: PathBuf,
}

impl FinetuneRun {
    /// Where the adapter is written: where `--model BASE+NAME` will find it.
    pub fn adapter_path(&self) -> PathBuf {
        crate::models::adapters_dir().join(format!("{}.safetensors", self.variant))
    }
}

/// What a fine-tuning run wrote and how it did on its held-out sources.
#[derive(Debug, Clone)]
pub struct FinetuneOutcome {
    pub best_epoch: usize,
    /// Validation macro-F1 of the best epoch, through the tuner's own forward.
    pub tuner_macro_f1: f32,
    /// Validation figures through the merged fast forward (what inference runs).
    pub validation: crate::train::metrics::Metrics,
    pub seconds: f64,
}

/// Fine-tunes `base` (an E5S1 variant, no adapter) on `examples`: holds out whole
/// sources, runs the frozen layers once, trains the adapters for the configured epochs
/// keeping the best on validation, then writes the adapter and a linear head whose
/// temperature is fitted through the merged forward. `log` hears each step.
pub fn run(
    base: &crate::models::ResolvedModel,
    encoder: &crate::encode::EncoderOptions,
    examples: &[crate::data::Example],
    opts: &FinetuneRun,
    log: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(usize),
) -> Result<FinetuneOutcome> {
    use crate::encode::Embedder;
    use crate::score::{self, Features, HeadFile, Training, Validation};
    use crate::train::metrics::Metrics;
    use crate::train::{fit_logistic, fit_temperature, holdout_by_source, predict};
    use ndarray::Array2;

    let started = std::time::Instant::now();
    let cfg = &opts.config;
    cfg.check()?;
    // The split first: a bad --val-percent fails before the slow frozen layers run.
    let (train_idx, val_idx) = holdout_by_source(examples, cfg.seed, opts.val_percent)?;
    let crate::models::ModelFiles::E5s1 { weights, .. } = &base.files else {
        return Err(Error::Usage("--finetune needs an E5S1 variant (e5-small-q4)".into()));
    };
    if base.adapter.is_some() {
        return Err(Error::Usage(format!("--finetune starts from a base variant, not {}", base.variant)));
    }
    // One image, opened once: the reference-precision forward (so a run gives the same
    // result on any CPU), the tokenizer and the tuner all read it.
    let image = E5s1::open(weights)?;
    let fast = FastBert::from_e5s1(&image, crate::encode::fast::Precision::F32)?;
    let emb = Embedder::from_plan(&crate::encode::EncoderPlan::resolve(base, encoder)?, Some(&image))?;
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    // Sentences longer than the model are cut to their first window for training only.
    let ids: Vec<Vec<u32>> = emb
        .tokenize(&texts)?
        .into_iter()
        .map(|mut v| {
            if v.len() > 512 {
                let eos = *v.last().unwrap_or(&2);
                v.truncate(511);
                v.push(eos);
            }
            v
        })
        .collect();
    let tuner = Tuner::new(&image, cfg.clone())?;
    drop(image);
    log(&format!(
        "running the frozen layers 0..{} once for {} sentences",
        tuner.first_layer(),
        ids.len()
    ));
    let hidden = frozen_hidden(&fast, &ids, tuner.first_layer(), progress)?;
    drop(fast);
    let h = emb.dim();
    let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
    let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let yv: Vec<usize> = val_idx.iter().map(|&i| y[i]).collect();
    let yt: Vec<usize> = train_idx.iter().map(|&i| y[i]).collect();
    log(&format!(
        "fine-tuning on {} sentences, validating on {} (held out by source)",
        train_idx.len(),
        val_idx.len()
    ));
    // Start the classifier from a logistic regression on the untuned vectors of the
    // training split (the validation split stays unseen).
    let fit_head = |vecs: &[Vec<f32>]| -> Result<()> {
        let x = score::features(vecs, Features::Sentence);
        let fit = fit_logistic(x.view(), &yt, opts.l2, opts.head_epochs);
        tuner.set_head(
            &fit.weights.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
            &fit.bias.to_vec(),
        )
    };
    let (_, v0) = tuner.predict(&hidden, &lens, &train_idx, h)?;
    fit_head(&v0)?;
    let mut opt = tuner.optimizer()?;
    let mut rng = Rng(cfg.seed);
    type Best = (f32, usize, Vec<(String, Tensor)>, (Vec<Vec<f32>>, Vec<f32>));
    let mut best: Option<Best> = None;
    for epoch in 1..=cfg.epochs {
        crate::interrupt::check()?;
        // Batches of similar length (little padding), visited in a seeded random order.
        let mut order = train_idx.clone();
        rng.shuffle(&mut order);
        let mut batches: Vec<Vec<usize>> = order
            .chunks(cfg.batch * 8)
            .flat_map(|big| {
                let mut big = big.to_vec();
                big.sort_by_key(|&i| lens[i]);
                big.chunks(cfg.batch).map(|c| c.to_vec()).collect::<Vec<_>>()
            })
            .collect();
        rng.shuffle(&mut batches);
        let order: Vec<usize> = batches.concat();
        let t0 = std::time::Instant::now();
        let loss = tuner.train_epoch(&mut opt, &hidden, &lens, &y, &order, h)?;
        if cfg.objective == Objective::Contrastive {
            // SetFit's second step: a logistic regression on the tuned vectors.
            let (_, vt) = tuner.predict(&hidden, &lens, &train_idx, h)?;
            fit_head(&vt)?;
        }
        let (pv, _) = tuner.predict(&hidden, &lens, &val_idx, h)?;
        let p = Array2::from_shape_vec((pv.len(), 3), pv.concat()).map_err(|e| Error::Usage(e.to_string()))?;
        let m = Metrics::compute(&yv, &predict(&p), &p);
        log(&format!(
            "epoch {epoch}: loss {loss:.4}, validation macro-F1 {:.3}, accuracy {:.3} ({:.0}s)",
            m.macro_f1,
            m.accuracy,
            t0.elapsed().as_secs_f64()
        ));
        if best.as_ref().is_none_or(|b| m.macro_f1 > b.0) {
            // Keep copies of the best epoch's parameters (early stopping on validation).
            let tensors = tuner
                .tensors()?
                .into_iter()
                .map(|(n, t)| Ok((n, t.copy()?)))
                .collect::<Result<Vec<_>>>()?;
            best = Some((m.macro_f1, epoch, tensors, tuner.head()?));
        }
    }
    let Some((best_f1, best_epoch, tensors, (hw, hb))) = best else {
        return Err(Error::Usage("no epoch ran".into()));
    };
    let files: Vec<&Path> = opts.files.iter().map(PathBuf::as_path).collect();
    let sha = crate::train::files_sha256(&files)?;
    let mut meta = HashMap::new();
    for (k, v) in [
        ("base", base.variant.clone()),
        ("task", opts.task.name().to_string()),
        ("rank", cfg.rank.to_string()),
        ("alpha", cfg.alpha.to_string()),
        ("top_layers", cfg.top_layers.to_string()),
        ("epochs", format!("{best_epoch} of {}", cfg.epochs)),
        ("lr", cfg.lr.to_string()),
        ("objective", format!("{:?}", cfg.objective)),
        ("seed", cfg.seed.to_string()),
        (
            "data",
            opts.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(","),
        ),
        ("data_sha256", sha.clone()),
        ("validation_macro_f1", format!("{best_f1:.4}")),
        ("train_seconds", format!("{:.0}", started.elapsed().as_secs_f64())),
    ] {
        meta.insert(k.to_string(), v);
    }
    save_adapter(&opts.adapter_path(), tensors, meta)?;
    // The head: the classifier trained with the adapters (or, for the contrastive
    // objective, fitted on the best epoch's tuned vectors), its temperature fitted on the
    // validation split through the merged fast forward (what inference will run).
    let tuned = Embedder::load(&crate::models::resolve(&opts.variant, false)?, encoder)?;
    let vval: Vec<&str> = val_idx.iter().map(|&i| examples[i].text.as_str()).collect();
    let vecs = tuned.embed(&vval)?;
    let x = score::features(&vecs, Features::Sentence);
    let w = Array2::from_shape_vec((3, h), hw.concat()).map_err(|e| Error::Usage(e.to_string()))?;
    let logits = x.dot(&w.t()) + &ndarray::Array1::from(hb.clone());
    let temperature = fit_temperature(&logits, &yv);
    let mut pv = logits / temperature;
    score::softmax_rows(&mut pv);
    let m = Metrics::compute(&yv, &predict(&pv), &pv);
    let head = HeadFile {
        format: score::HEAD_FORMAT.into(),
        version: score::HEAD_VERSION,
        kind: "linear".into(),
        task: opts.task,
        labels: opts.task.labels().iter().map(|s| s.to_string()).collect(),
        encoder: opts.variant.clone(),
        dim: h,
        features: Features::Sentence,
        weights: hw,
        bias: hb,
        temperature,
        descriptions: None,
        training: Training {
            files: opts.files.iter().map(|p| p.display().to_string()).collect(),
            examples: train_idx.len(),
            sha256: sha,
            // Cross-entropy trains the classifier without a penalty; the contrastive
            // objective's classifier is a logistic regression with this one.
            l2: if cfg.objective == Objective::Contrastive { opts.l2 } else { 0.0 },
            seed: cfg.seed,
        },
        validation: Some(Validation::held_out(opts.val_percent, &m)),
        lexical: None,
        article: None,
    };
    head.save(&opts.head_path)?;
    Ok(FinetuneOutcome {
        best_epoch,
        tuner_macro_f1: best_f1,
        validation: m,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_rows(rows: &[[f32; 2]]) -> Tensor {
        let v: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                let n = (r[0] * r[0] + r[1] * r[1]).sqrt();
                [r[0] / n, r[1] / n]
            })
            .collect();
        Tensor::from_vec(v, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    #[test]
    fn pair_loss_is_zero_when_classes_are_tight_and_orthogonal() {
        let x = unit_rows(&[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]);
        let y = Tensor::new(&[0u32, 0, 1], &Device::Cpu).unwrap();
        let l = pair_loss(&x, &y).unwrap().to_scalar::<f32>().unwrap();
        assert!(l.abs() < 1e-6, "{l}");
    }

    #[test]
    fn pair_loss_counts_each_wrong_pair() {
        // Same label but orthogonal (cos 0, target 1): error 1 on 2 of 2 ordered pairs.
        let x = unit_rows(&[[1.0, 0.0], [0.0, 1.0]]);
        let y = Tensor::new(&[2u32, 2], &Device::Cpu).unwrap();
        let l = pair_loss(&x, &y).unwrap().to_scalar::<f32>().unwrap();
        assert!((l - 1.0).abs() < 1e-6, "{l}");
        // Different labels, identical vectors (cos 1, target 0): also 1.
        let x = unit_rows(&[[1.0, 1.0], [1.0, 1.0]]);
        let y = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let l = pair_loss(&x, &y).unwrap().to_scalar::<f32>().unwrap();
        assert!((l - 1.0).abs() < 1e-6, "{l}");
    }
}
