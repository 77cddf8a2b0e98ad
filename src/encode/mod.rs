//! The encode stage: text in, one L2-normalised vector per sentence out.
//!
//! [`Encoder`] is the swappable part (candle-transformers' BERT, our own faster forward,
//! a static embedding table); [`Embedder`] is what the pipeline holds: the tokenizer,
//! the `query: ` prefix, length-sorted batching, and windows for sentences longer than
//! the model's 512 positions (their window vectors are averaged, never silently cut).

pub mod candle_bert;
pub mod e5s1;
pub mod fast;
pub mod int8;
pub mod kernels;
pub mod static_emb;
pub mod unigram;

use std::path::Path;

use candle_core::Device;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::models::{ModelFiles, ResolvedModel};

/// The e5 models are trained with this prefix on symmetric tasks.
pub const QUERY_PREFIX: &str = "query: ";

/// A sentence encoder: token ids in, pooled L2-normalised vectors out.
pub trait Encoder: Send + Sync {
    /// Width of the vectors.
    fn dim(&self) -> usize;
    /// Longest sequence the model takes, special tokens included.
    fn max_len(&self) -> usize;
    /// Size of the model's embedding table; every token id must be below it.
    fn vocab_size(&self) -> usize;
    /// Embeds a batch of token-id sequences (special tokens included, each at most
    /// `max_len` long), returning one unit-length vector per sequence.
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>>;
    /// A short name of the implementation, for `--verbose` and benchmarks.
    fn backend(&self) -> &'static str;
}

/// Which implementation runs a transformer variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Our own forward on the CPU for E5S1 images (integer GEMMs where the CPU has
    /// AVX2, else f32); candle's BERT otherwise.
    Auto,
    /// candle-transformers' `BertModel` (dequantised f32), on any candle device.
    Candle,
    /// Our own CPU forward in f32 (quantised embedding table, fused kernels).
    Fast,
    /// Our own CPU forward with integer GEMMs on the 4-bit weights and 8-bit activations.
    Int8,
}

#[derive(Debug, Clone)]
pub struct EncoderOptions {
    pub device: String,
    pub backend: Backend,
    /// Upper bound on padded tokens per forward batch.
    pub batch_tokens: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            device: "auto".into(),
            backend: Backend::Auto,
            batch_tokens: 1024,
        }
    }
}

/// Picks the candle device: `auto` takes a GPU when the build has one and it answers.
/// Refuses a backend the model cannot run with, rather than silently running another.
fn check_plan(model: &ResolvedModel, backend: Backend, device: &Device) -> Result<()> {
    let name = |b: Backend| match b {
        Backend::Auto => "auto",
        Backend::Candle => "candle",
        Backend::Fast => "fast",
        Backend::Int8 => "int8",
    };
    let refuse = |why: String| Err(Error::Usage(format!("--backend {}: {why}", name(backend))));
    match (&model.files, backend) {
        (_, Backend::Auto) => Ok(()),
        (ModelFiles::E5s1 { .. }, Backend::Candle) if model.adapter.is_some() => refuse(format!(
            "{} carries an adapter, which only the own forward applies: use --backend auto, fast or int8",
            model.variant
        )),
        (ModelFiles::E5s1 { .. }, Backend::Fast | Backend::Int8) if !device.is_cpu() => {
            refuse("the own forward runs on the CPU only: use --backend candle (or auto) with a GPU".into())
        }
        (ModelFiles::E5s1 { .. }, _) => Ok(()),
        (ModelFiles::HfDir(_), Backend::Candle) => Ok(()),
        (ModelFiles::HfDir(_), _) => refuse(format!(
            "{} is a Hugging Face folder, which runs on candle: use --backend candle or auto",
            model.variant
        )),
        (ModelFiles::Static { .. }, _) => refuse(format!(
            "{} is a static token table, not a transformer: use --backend auto",
            model.variant
        )),
    }
}

/// What runs the transformer, chosen once from the model files, `--backend` and the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// The own CPU forward on an E5S1 image, at this precision (adapters merged in).
    Own(fast::Precision),
    /// candle-transformers' BERT (E5S1 dequantised, or a Hugging Face folder).
    Candle,
    /// A static token-embedding table.
    Static,
}

/// How a model variant will be run, resolved once before anything loads: the files,
/// the runner, the device. Impossible combinations (a backend the model cannot run
/// with) are refused here, and the vector cache's name derives from the plan.
#[derive(Debug, Clone)]
pub struct EncoderPlan {
    pub model: ResolvedModel,
    pub runner: Runner,
    pub device: Device,
    pub batch_tokens: usize,
    /// Start of the adapter file's SHA-256 for tuned variants: a retrained adapter under
    /// the same name gets a fresh vector cache.
    pub adapter_sha: Option<String>,
}

impl EncoderPlan {
    pub fn resolve(model: &ResolvedModel, opts: &EncoderOptions) -> Result<EncoderPlan> {
        let device = select_device(&opts.device)?;
        check_plan(model, opts.backend, &device)?;
        let runner = match (&model.files, opts.backend) {
            (ModelFiles::Static { .. }, _) => Runner::Static,
            (ModelFiles::HfDir(_), _) => Runner::Candle,
            (ModelFiles::E5s1 { .. }, Backend::Fast) => Runner::Own(fast::Precision::F32),
            (ModelFiles::E5s1 { .. }, Backend::Int8) => Runner::Own(fast::Precision::Int8),
            (ModelFiles::E5s1 { .. }, Backend::Candle) => Runner::Candle,
            // Adapters are merged into the own forward's weights, so a tuned variant
            // takes it even on a GPU build (check_plan refused the explicit candle case).
            (ModelFiles::E5s1 { .. }, Backend::Auto) if device.is_cpu() || model.adapter.is_some() => {
                Runner::Own(fast::Precision::best_for_cpu())
            }
            (ModelFiles::E5s1 { .. }, Backend::Auto) => Runner::Candle,
        };
        if model.adapter.is_some() && !matches!(runner, Runner::Own(_)) {
            return Err(Error::Usage(format!("{}: adapters apply to E5S1 variants only", model.variant)));
        }
        let adapter_sha = match &model.adapter {
            Some(a) => Some(crate::models::sha256_file(a)?[..12].to_string()),
            None => None,
        };
        Ok(EncoderPlan {
            model: model.clone(),
            runner,
            device,
            batch_tokens: opts.batch_tokens,
            adapter_sha,
        })
    }

    /// Name of the plan's vector cache: the variant (with its adapter's hash), and the
    /// runner when its vectors are not the f32 reference's (the integer forward's differ
    /// by up to 1e-4 in cosine; cached vectors never mix the two).
    pub fn cache_name(&self) -> String {
        let variant = match &self.adapter_sha {
            Some(sha) => format!("{}.{sha}", self.model.variant),
            None => self.model.variant.clone(),
        };
        match self.runner {
            Runner::Own(fast::Precision::Int8) => format!("{variant}@fast-cpu-int8"),
            _ => variant,
        }
    }
}

/// A damaged file inside the model cache can be repaired: say how.
fn repair_hint(e: Error, path: &Path) -> Error {
    match e {
        Error::Model { path: p, msg } if path.starts_with(crate::models::stance_home()) => Error::Model {
            path: p,
            msg: format!("{msg}; `stance models fetch` checks the cache and fetches it again"),
        },
        other => other,
    }
}

pub fn select_device(choice: &str) -> Result<Device> {
    match choice {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !cfg!(feature = "cuda") {
                return Err(Error::Usage(
                    "this build has no CUDA support: rebuild with `--features cuda`".into(),
                ));
            }
            Ok(Device::new_cuda(0)?)
        }
        "metal" => {
            if !cfg!(feature = "metal") {
                return Err(Error::Usage(
                    "this build has no Metal support: rebuild with `--features metal`".into(),
                ));
            }
            Ok(Device::new_metal(0)?)
        }
        "auto" => {
            if cfg!(feature = "cuda") {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            if cfg!(feature = "metal") {
                if let Ok(d) = Device::new_metal(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
        other => Err(Error::Usage(format!("unknown device {other:?} (auto, cpu, cuda, metal)"))),
    }
}

pub struct Embedder {
    pub variant: String,
    tokenizer: TextTokenizer,
    encoder: Box<dyn Encoder>,
    pub batch_tokens: usize,
    pub device: String,
    /// The vector cache's name, from the plan.
    cache_name: String,
}

/// Text to token ids: the `tokenizers` crate for `tokenizer.json` files, or an E5S1
/// image's own embedded Unigram (same ids, a fraction of the memory and load time).
pub enum TextTokenizer {
    Hf(Tokenizer),
    Embedded(unigram::Unigram),
}

impl TextTokenizer {
    pub fn vocab_size(&self) -> usize {
        match self {
            TextTokenizer::Hf(t) => t.get_vocab_size(true),
            TextTokenizer::Embedded(u) => u.vocab_size(),
        }
    }

    pub fn token_to_id(&self, piece: &str) -> Option<u32> {
        match self {
            TextTokenizer::Hf(t) => t.token_to_id(piece),
            TextTokenizer::Embedded(u) => u.piece_id(piece),
        }
    }

    /// Ids of each text with `<s>` and `</s>`.
    pub fn encode_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<u32>>> {
        use rayon::prelude::*;
        match self {
            TextTokenizer::Hf(t) => Ok(t
                .encode_batch(texts, true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?
                .into_iter()
                .map(|e| e.get_ids().to_vec())
                .collect()),
            TextTokenizer::Embedded(u) => Ok(texts.par_iter().map(|t| u.encode(t)).collect()),
        }
    }
}

pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut tok = Tokenizer::from_file(path).map_err(|e| Error::model(path, format!("not a valid tokenizer.json: {e}")))?;
    tok.with_truncation(None).map_err(|e| Error::model(path, e.to_string()))?;
    tok.with_padding(None);
    Ok(tok)
}

impl Embedder {
    pub fn load(model: &ResolvedModel, opts: &EncoderOptions) -> Result<Self> {
        Self::from_plan(&EncoderPlan::resolve(model, opts)?, None)
    }

    /// Loads the plan's encoder; an E5S1 image the caller has already opened is used
    /// as it is (fine-tuning opens it once for both its own forward and this).
    pub fn from_plan(plan: &EncoderPlan, opened: Option<&e5s1::E5s1>) -> Result<Self> {
        let model = &plan.model;
        let device = plan.device.clone();
        let mut embedded = None;
        let (encoder, tok_path): (Box<dyn Encoder>, _) = match &model.files {
            ModelFiles::E5s1 { weights, tokenizer } => {
                let owned;
                let image = match opened {
                    Some(i) => i,
                    None => {
                        owned = e5s1::E5s1::open(weights).map_err(|e| repair_hint(e, weights))?;
                        &owned
                    }
                };
                if std::env::var_os("STANCE_HF_TOKENIZER").is_none() {
                    embedded = Some(unigram::Unigram::from_e5s1(image)?);
                }
                let enc: Box<dyn Encoder> = match plan.runner {
                    Runner::Own(precision) => {
                        let mut f = fast::FastBert::from_e5s1(image, precision)?;
                        if let Some(a) = &model.adapter {
                            crate::train::finetune::merge_adapter(&mut f, a)?;
                        }
                        Box::new(f)
                    }
                    _ => Box::new(candle_bert::CandleBert::from_e5s1(image, &device)?),
                };
                (enc, tokenizer.clone())
            }
            ModelFiles::HfDir(dir) => (
                Box::new(candle_bert::CandleBert::from_hf_dir(dir, &device)?) as Box<dyn Encoder>,
                dir.join("tokenizer.json"),
            ),
            ModelFiles::Static { table, tokenizer } => (
                Box::new(static_emb::StaticEmbedding::load(table)?) as Box<dyn Encoder>,
                tokenizer.clone(),
            ),
        };
        let tokenizer = match embedded {
            Some(u) => TextTokenizer::Embedded(u),
            None => TextTokenizer::Hf(load_tokenizer(&tok_path)?),
        };
        // A tokenizer from another model would index past the embedding table, or
        // silently produce wrong vectors: refuse it before any scoring.
        let tok_vocab = tokenizer.vocab_size();
        if tok_vocab > encoder.vocab_size() {
            return Err(Error::model(
                &tok_path,
                format!(
                    "tokenizer has {tok_vocab} pieces but the model's embedding table has {} rows: they do not belong together",
                    encoder.vocab_size()
                ),
            ));
        }
        for (piece, id) in [("<s>", 0u32), ("<pad>", 1), ("</s>", 2)] {
            if tokenizer.token_to_id(piece) != Some(id) {
                return Err(Error::model(
                    &tok_path,
                    format!("tokenizer does not match the model: {piece} is not id {id}"),
                ));
            }
        }
        tracing::info!(variant = %model.variant, backend = encoder.backend(), device = ?device, "encoder loaded");
        Ok(Embedder {
            cache_name: plan.cache_name(),
            variant: model.variant.clone(),
            tokenizer,
            encoder,
            batch_tokens: plan.batch_tokens,
            device: format!("{device:?}"),
        })
    }

    pub fn dim(&self) -> usize {
        self.encoder.dim()
    }

    pub fn backend(&self) -> &'static str {
        self.encoder.backend()
    }

    /// Name of this encoder's vector cache (see [`EncoderPlan::cache_name`]).
    pub fn cache_name(&self) -> String {
        self.cache_name.clone()
    }

    /// Token ids of each text with the query prefix and special tokens, unwindowed.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<String> = texts.iter().map(|t| format!("{QUERY_PREFIX}{t}")).collect();
        self.tokenizer.encode_batch(inputs)
    }

    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenize(texts)?;
        self.embed_ids(&ids, &mut |_| {})
    }

    /// Embeds tokenized sentences; `progress` is called after each batch with the
    /// number of windows (about sentences) it finished.
    pub fn embed_ids(&self, ids: &[Vec<u32>], progress: &mut dyn FnMut(usize)) -> Result<Vec<Vec<f32>>> {
        let max_len = self.encoder.max_len();
        if max_len < 3 {
            return Err(Error::Usage(format!(
                "the model's maximum input length is {max_len} tokens: no room for a word between <s> and </s>"
            )));
        }
        // Cut each sentence into windows of at most max_len tokens, each with its own
        // <s> … </s>; `owner[w]` is the sentence of window w.
        let mut windows: Vec<Vec<u32>> = Vec::with_capacity(ids.len());
        let mut owner: Vec<usize> = Vec::with_capacity(ids.len());
        for (i, seq) in ids.iter().enumerate() {
            if seq.len() <= max_len {
                windows.push(seq.clone());
                owner.push(i);
            } else {
                let (bos, eos) = (seq[0], seq[seq.len() - 1]);
                for chunk in seq[1..seq.len() - 1].chunks(max_len - 2) {
                    let mut w = Vec::with_capacity(chunk.len() + 2);
                    w.push(bos);
                    w.extend_from_slice(chunk);
                    w.push(eos);
                    windows.push(w);
                    owner.push(i);
                }
            }
        }
        let vocab = self.encoder.vocab_size() as u32;
        if let Some(bad) = windows.iter().flatten().find(|&&t| t >= vocab) {
            return Err(Error::Tokenizer(format!(
                "token id {bad} is outside the model's vocabulary of {vocab}"
            )));
        }
        // Length-sorted batches keep padding small; cap padded tokens per batch.
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&w| std::cmp::Reverse(windows[w].len()));
        let mut window_vecs: Vec<Vec<f32>> = vec![Vec::new(); windows.len()];
        let mut pos = 0;
        while pos < order.len() {
            // A stop asked for is honoured between batches, not only between articles.
            crate::interrupt::check()?;
            let longest = windows[order[pos]].len();
            let n = (self.batch_tokens / longest).clamp(1, 256).min(order.len() - pos);
            let batch: Vec<&[u32]> = order[pos..pos + n].iter().map(|&w| windows[w].as_slice()).collect();
            let out = self.encoder.forward(&batch)?;
            for (k, v) in out.into_iter().enumerate() {
                window_vecs[order[pos + k]] = v;
            }
            pos += n;
            progress(n);
        }
        // Average the windows of each sentence, weighted by their token counts.
        let dim = self.encoder.dim();
        let mut out = vec![vec![0f32; dim]; ids.len()];
        for (w, v) in window_vecs.iter().enumerate() {
            let weight = windows[w].len() as f32;
            for (o, x) in out[owner[w]].iter_mut().zip(v) {
                *o += weight * x;
            }
        }
        for v in &mut out {
            normalize(v);
        }
        Ok(out)
    }
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}
