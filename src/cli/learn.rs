//! `stance train` and `stance eval`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use ndarray::Array2;

use stance::cache::{VectorCache, embed_cached};
use stance::data::{self, Example, Task};
use stance::encode::{Embedder, EncoderOptions};
use stance::score::{self, Features, HeadFile, Training, Validation};
use stance::train::metrics::Metrics;
use stance::{models, train};

use crate::cli::args::ModelArgs;

#[derive(Args)]
pub struct TrainArgs {
    /// What the head judges.
    #[arg(long, value_enum)]
    task: Task,
    /// Labeled files (LABELING.md TSV or UMSAB label<TAB>text).
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<PathBuf>,
    /// Where to write the head (default: models/heads/TASK-KIND.VARIANT.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// linear (logistic regression), context (linear on the sentence and its neighbours), prototype (zero-shot).
    #[arg(long, default_value = "linear")]
    head: String,
    #[command(flatten)]
    model: ModelArgs,
    /// L2 strength; by default picked from a grid on a validation split held out by source.
    #[arg(long)]
    l2: Option<f32>,
    /// Passes of the regression over the training data.
    #[arg(long, default_value_t = 400)]
    epochs: usize,
    /// Share of sources held out for validation, in percent.
    #[arg(long, default_value_t = 15)]
    val_percent: u64,
    /// Seed of the validation split and of fine-tuning (a run is deterministic from it).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    cache: crate::cli::args::CacheArgs,
    /// Replace a head or adapter that is already there (committed heads included).
    #[arg(long)]
    force: bool,
    /// Fine-tune the encoder (LoRA adapters on the top layers) instead of training a
    /// head on frozen vectors; writes models/adapters/BASE+TASK.safetensors and its head.
    #[arg(long)]
    finetune: bool,
    /// Fine-tuning: layers from the top that get adapters.
    #[arg(long, requires = "finetune", default_value_t = 4)]
    top_layers: usize,
    /// Fine-tuning: adapter rank.
    #[arg(long, requires = "finetune", default_value_t = 4)]
    rank: usize,
    /// Fine-tuning: passes over the training data.
    #[arg(long, requires = "finetune", default_value_t = 2)]
    tune_epochs: usize,
    /// Fine-tuning: learning rate.
    #[arg(long, requires = "finetune", default_value_t = 1e-3)]
    lr: f64,
    /// Fine-tuning: cross-entropy through the classifier, or SetFit-style contrastive
    /// pairs followed by a logistic regression on the tuned vectors.
    #[arg(long, requires = "finetune", value_enum, default_value = "cross-entropy")]
    objective: stance::train::finetune::Objective,
    /// Fine-tuning: the tuned variant's name after `BASE+` (default: the task's name).
    #[arg(long, requires = "finetune")]
    variant_name: Option<String>,
}

#[derive(Args)]
pub struct EvalArgs {
    /// What to evaluate.
    #[arg(long, value_enum)]
    task: Task,
    /// Labeled evaluation file(s).
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<PathBuf>,
    /// Encoder variants, comma-separated (default: every variant present).
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// Heads, comma-separated (default: linear, context, prototype — those present).
    #[arg(long, value_delimiter = ',')]
    heads: Vec<String>,
    /// Output: an aligned table, JSON, or Markdown tables.
    #[arg(long, value_enum, default_value = "table")]
    format: EvalFormat,
    /// Also print per-class figures and confusion matrices.
    #[arg(long)]
    detail: bool,
    #[command(flatten)]
    encoder: crate::cli::args::EncoderArgs,
}

#[derive(Args)]
pub struct BenchArgs {
    /// A file of sentences, one per line (as `--lines`).
    file: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Cycle the file's lines to this many sentences (to check cost is linear).
    #[arg(long)]
    sentences: Option<usize>,
    /// Padded tokens per forward batch.
    #[arg(long, default_value_t = 1024)]
    batch_tokens: usize,
    /// Afterwards, embed the same sentences with the f32 forward (`--backend fast`) and
    /// report how far the vectors are from it (worst and mean cosine).
    #[arg(long)]
    check: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq)]
enum EvalFormat {
    Table,
    Json,
    Md,
}

fn embed_examples(emb: &Embedder, examples: &[Example], use_cache: bool) -> Result<Vec<Vec<f32>>> {
    let mut cache = if use_cache { Some(VectorCache::for_embedder(emb)?) } else { None };
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let bar = progress_bar(texts.len() as u64, "embedding");
    let (v, fresh) = embed_cached(emb, cache.as_mut(), &texts, &mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    tracing::info!("{} sentences embedded, {} from the cache", fresh, texts.len() - fresh);
    Ok(v)
}

pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} sentences ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

fn files_sha256(paths: &[PathBuf]) -> Result<String> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?);
    }
    Ok(models::sha256_bytes(&all))
}

pub fn train(mut a: TrainArgs) -> Result<i32> {
    a.data = data::expand_all(&a.data)?;
    if a.finetune {
        return finetune(a);
    }
    // Everything that can be refused is checked before the (slow) embedding.
    let kind: stance::train::heads::HeadKind = a.head.parse()?;
    let examples = data::load_many(&a.data, a.task)?;
    let resolved = models::resolve(&a.model.model, true)?;
    let variant_short = resolved.variant.rsplit('/').next().unwrap_or(&resolved.variant).to_string();
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| score::heads_dir().join(format!("{}-{}.{}.json", a.task.name(), a.head, variant_short)));
    refuse_overwrite(&out, a.force)?;
    let emb = Embedder::load(&resolved, &a.model.encoder_options())?;
    let vecs = embed_examples(&emb, &examples, !a.cache.no_cache)?;
    let opts = stance::train::heads::HeadTraining {
        task: a.task,
        kind,
        l2: a.l2,
        epochs: a.epochs,
        val_percent: a.val_percent,
        seed: a.seed,
        files: a.data.clone(),
    };
    let head = stance::train::heads::train_head(&emb, &examples, &vecs, &opts, &mut |m| stance::note!("stance: {m}"))?;
    head.check(&out)?;
    head.save(&out)?;
    stance::say!("wrote {}", out.display())?;
    Ok(0)
}

pub fn eval(a: EvalArgs) -> Result<i32> {
    let ev = stance::train::evaluate::evaluate(a.task, &a.data, &a.variants, &a.heads, &a.encoder.options())?;
    let (rows, notes, y_len) = (&ev.rows, &ev.notes, ev.examples);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let data_names = &ev.data;
    match a.format {
        EvalFormat::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({"task": a.task, "data": data_names, "examples": y_len, "rows": rows}),
            )?;
            writeln!(out)?;
        }
        EvalFormat::Table | EvalFormat::Md => {
            let md = a.format == EvalFormat::Md;
            let cols = ["variant", "head", "n", "accuracy", "macro-F1", "95% CI", "ECE", "sent/s", "peak MB"];
            writeln!(out, "{} on {} ({} sentences)\n", a.task.name(), data_names.join(", "), y_len)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.variant.clone(),
                        r.head.clone(),
                        r.metrics.n.to_string(),
                        format!("{:.3}", r.metrics.accuracy),
                        format!("{:.3}", r.metrics.macro_f1),
                        format!("{:.3}–{:.3}", r.metrics.macro_f1_ci.0, r.metrics.macro_f1_ci.1),
                        format!("{:.3}", r.metrics.ece),
                        r.sentences_per_second.map_or("-".into(), |s| format!("{s:.0}")),
                        r.peak_memory_mb.map_or("-".into(), |m| format!("{m:.0}")),
                    ]
                })
                .collect();
            write_grid(&mut out, &cols, &cells, md)?;
            let langs: Vec<String> = rows
                .iter()
                .flat_map(|r| r.per_language.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if !langs.is_empty() {
                writeln!(out, "\nmacro-F1 per language\n")?;
                let mut cols2 = vec!["variant".to_string(), "head".to_string()];
                cols2.extend(langs.iter().map(|l| format!("{l} (n)")));
                let cells2: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        let mut c = vec![r.variant.clone(), r.head.clone()];
                        c.extend(
                            langs
                                .iter()
                                .map(|l| r.per_language.get(l).map_or("-".into(), |m| format!("{:.3} ({})", m.macro_f1, m.n))),
                        );
                        c
                    })
                    .collect();
                let cols2: Vec<&str> = cols2.iter().map(String::as_str).collect();
                write_grid(&mut out, &cols2, &cells2, md)?;
            }
            if a.detail {
                let labels = a.task.labels();
                for r in rows.iter().skip(1) {
                    writeln!(
                        out,
                        "\n{} / {}: per class (precision, recall, F1, support) and confusion (rows gold, columns predicted)\n",
                        r.variant, r.head
                    )?;
                    write_per_class(&mut out, &r.metrics, labels, md)?;
                }
            }
            for n in notes {
                writeln!(out, "\nnote: {n}")?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

fn write_grid(out: &mut impl Write, cols: &[&str], rows: &[Vec<String>], md: bool) -> std::io::Result<()> {
    if md {
        writeln!(out, "| {} |", cols.join(" | "))?;
        writeln!(out, "|{}|", cols.iter().map(|_| "---").collect::<Vec<_>>().join("|"))?;
        for r in rows {
            writeln!(out, "| {} |", r.join(" | "))?;
        }
        return Ok(());
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([cols[i].chars().count()])
                .max()
                .unwrap()
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(cols.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// `stance bench`: encoding throughput on a file of sentences, like the speed peers.
pub fn bench(a: BenchArgs) -> Result<i32> {
    stance::train::evaluate::reset_peak_memory();
    let base = stance::train::evaluate::peak_memory_mb().unwrap_or(0.0);
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("{}: cannot read", a.file.display()))?;
    let mut lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        bail!("{}: no sentences", a.file.display());
    }
    if let Some(n) = a.sentences {
        lines = lines.iter().cycle().take(n).copied().collect();
    }
    let resolved = models::resolve(&a.model.model, true)?;
    let t0 = Instant::now();
    let mut opts = a.model.encoder_options();
    opts.batch_tokens = a.batch_tokens;
    let emb = Embedder::load(&resolved, &opts)?;
    let load = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let ids = emb.tokenize(&lines)?;
    let tok_secs = t1.elapsed().as_secs_f64();
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let t2 = Instant::now();
    let vecs = emb.embed_ids(&ids, &mut |_| {})?;
    let enc = t2.elapsed().as_secs_f64();
    assert_eq!(vecs.len(), lines.len());
    let peak = stance::train::evaluate::peak_memory_mb().unwrap_or(0.0);
    stance::say!(
        "stance[{} {}] sentences={} tokens={} seconds={:.3} sent_per_s={:.1} tok_per_s={:.0} load_s={:.3} tokenize_s={:.3} peak_mb={:.0} (before load {:.0}) threads={}",
        resolved.variant,
        emb.backend(),
        lines.len(),
        tokens,
        enc,
        lines.len() as f64 / enc,
        tokens as f64 / enc,
        load,
        tok_secs,
        peak,
        base,
        rayon::current_num_threads()
    )?;
    if a.check {
        let reference = Embedder::load(
            &resolved,
            &EncoderOptions {
                backend: stance::encode::Backend::Fast,
                ..opts
            },
        )?;
        let refs = reference.embed_ids(&ids, &mut |_| {})?;
        let cos: Vec<f32> = vecs.iter().zip(&refs).map(|(a, b)| stance::encode::cosine(a, b)).collect();
        let (worst, at) = cos
            .iter()
            .enumerate()
            .fold((f32::INFINITY, 0), |m, (i, &c)| if c < m.0 { (c, i) } else { m });
        stance::say!(
            "check against {}: worst cosine {worst:.7} (line {}), mean {:.7}, below 0.9999: {} of {}",
            reference.backend(),
            at + 1,
            cos.iter().map(|&c| c as f64).sum::<f64>() / cos.len() as f64,
            cos.iter().filter(|&&c| c < 0.9999).count(),
            cos.len()
        )?;
    }
    Ok(0)
}

fn finetune(a: TrainArgs) -> Result<i32> {
    use stance::train::finetune::{Objective, TuneConfig, Tuner, frozen_hidden, save_adapter};
    let started = Instant::now();
    let name = a.variant_name.clone().unwrap_or_else(|| a.task.name().to_string());
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("--variant-name {name:?}: use letters, digits, '-' and '_' only");
    }
    if a.tune_epochs == 0 || a.rank == 0 || a.top_layers == 0 {
        bail!("--tune-epochs, --rank and --top-layers must be at least 1");
    }
    let examples = data::load_many(&a.data, a.task)?;
    // The split first: a bad --val-percent fails before the slow frozen layers run.
    let (train_idx, val_idx) = train::holdout_by_source(&examples, a.seed, a.val_percent)?;
    let resolved = models::resolve(&a.model.model, true)?;
    let models::ModelFiles::E5s1 { weights, .. } = &resolved.files else {
        bail!("--finetune needs an E5S1 variant (e5-small-q4)")
    };
    if resolved.adapter.is_some() {
        bail!("--finetune starts from a base variant, not {}", resolved.variant);
    }
    let variant = format!("{}+{name}", resolved.variant);
    let adapter_path = models::adapters_dir().join(format!("{variant}.safetensors"));
    let head_path = a
        .out
        .clone()
        .unwrap_or_else(|| score::heads_dir().join(format!("{}-linear.{variant}.json", a.task.name())));
    refuse_overwrite(&adapter_path, a.force)?;
    refuse_overwrite(&head_path, a.force)?;
    let image = stance::encode::e5s1::E5s1::open(weights)?;
    // The reference precision, so a run gives the same result on any CPU.
    let fast = stance::encode::fast::FastBert::from_e5s1(&image, stance::encode::fast::Precision::F32)?;
    let emb = Embedder::load(&resolved, &a.model.encoder_options())?;
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let ids = emb.tokenize(&texts)?;
    // Sentences longer than the model are cut to their first window for training only.
    let ids: Vec<Vec<u32>> = ids
        .into_iter()
        .map(|mut v| {
            if v.len() > 512 {
                let eos = *v.last().unwrap();
                v.truncate(511);
                v.push(eos);
            }
            v
        })
        .collect();
    let cfg = TuneConfig {
        top_layers: a.top_layers,
        rank: a.rank,
        lr: a.lr,
        epochs: a.tune_epochs,
        seed: a.seed,
        objective: a.objective,
        ..Default::default()
    };
    let tuner = Tuner::new(&image, cfg.clone())?;
    stance::note!(
        "stance: running the frozen layers 0..{} once for {} sentences",
        tuner.first_layer(),
        ids.len()
    );
    let bar = progress_bar(ids.len() as u64, "frozen layers");
    let hidden = frozen_hidden(&fast, &ids, tuner.first_layer(), &mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    drop(fast);
    let h = emb.dim();
    let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
    let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let yv: Vec<usize> = val_idx.iter().map(|&i| y[i]).collect();
    stance::note!(
        "stance: fine-tuning on {} sentences, validating on {} (held out by source)",
        train_idx.len(),
        val_idx.len()
    );
    // Start the classifier from a logistic regression on the untuned vectors of the
    // training split (the validation split stays unseen).
    let (p0, v0) = tuner.predict(&hidden, &lens, &train_idx, h)?;
    drop(p0);
    let yt: Vec<usize> = train_idx.iter().map(|&i| y[i]).collect();
    let l2 = a.l2.unwrap_or(0.1);
    let fit_head = |vecs: &[Vec<f32>]| -> Result<()> {
        let x = score::features(vecs, Features::Sentence);
        let fit = train::fit_logistic(x.view(), &yt, l2, a.epochs);
        tuner.set_head(
            &fit.weights.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
            &fit.bias.to_vec(),
        )?;
        Ok(())
    };
    fit_head(&v0)?;
    let mut opt = tuner.optimizer()?;
    let mut rng = stance::util::Rng(a.seed);
    let mut best: Option<(f32, usize, Vec<(String, candle_core::Tensor)>, (Vec<Vec<f32>>, Vec<f32>))> = None;
    for epoch in 1..=cfg.epochs {
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
        let t0 = Instant::now();
        let loss = tuner.train_epoch(&mut opt, &hidden, &lens, &y, &order, h)?;
        if cfg.objective == Objective::Contrastive {
            // SetFit's second step: a logistic regression on the tuned vectors.
            let (_, vt) = tuner.predict(&hidden, &lens, &train_idx, h)?;
            fit_head(&vt)?;
        }
        let (pv, _) = tuner.predict(&hidden, &lens, &val_idx, h)?;
        let p = Array2::from_shape_vec((pv.len(), 3), pv.concat())?;
        let m = Metrics::compute(&yv, &train::predict(&p), &p);
        stance::note!(
            "stance: epoch {epoch}: loss {loss:.4}, validation macro-F1 {:.3}, accuracy {:.3} ({:.0}s)",
            m.macro_f1,
            m.accuracy,
            t0.elapsed().as_secs_f64()
        );
        if best.as_ref().is_none_or(|b| m.macro_f1 > b.0) {
            // Keep copies of the best epoch's parameters (early stopping on validation).
            let tensors = tuner.tensors()?.into_iter().map(|(n, t)| (n, t.copy().expect("copy"))).collect();
            best = Some((m.macro_f1, epoch, tensors, tuner.head()?));
        }
    }
    let (best_f1, best_epoch, tensors, (hw, hb)) = best.expect("at least one epoch");
    let sha = files_sha256(&a.data)?;
    let mut meta = std::collections::HashMap::new();
    for (k, v) in [
        ("base", resolved.variant.clone()),
        ("task", a.task.name().to_string()),
        ("rank", cfg.rank.to_string()),
        ("alpha", cfg.alpha.to_string()),
        ("top_layers", cfg.top_layers.to_string()),
        ("epochs", format!("{best_epoch} of {}", cfg.epochs)),
        ("lr", cfg.lr.to_string()),
        ("objective", format!("{:?}", cfg.objective)),
        ("seed", a.seed.to_string()),
        ("data", a.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(",")),
        ("data_sha256", sha.clone()),
        ("validation_macro_f1", format!("{best_f1:.4}")),
        ("train_seconds", format!("{:.0}", started.elapsed().as_secs_f64())),
    ] {
        meta.insert(k.to_string(), v);
    }
    save_adapter(&adapter_path, tensors, meta)?;
    // The head: the classifier trained with the adapters (or, for the contrastive
    // objective, fitted on the best epoch's tuned vectors), its temperature fitted on the
    // validation split through the merged fast forward (what inference will run).
    let tuned = Embedder::load(&models::resolve(&variant, false)?, &a.model.encoder_options())?;
    let vval: Vec<&str> = val_idx.iter().map(|&i| examples[i].text.as_str()).collect();
    let vecs = tuned.embed(&vval)?;
    let x = score::features(&vecs, Features::Sentence);
    let w = Array2::from_shape_vec((3, h), hw.concat())?;
    let logits = x.dot(&w.t()) + &ndarray::Array1::from(hb.clone());
    let temperature = train::fit_temperature(&logits, &yv);
    let mut pv = logits / temperature;
    score::softmax_rows(&mut pv);
    let m = Metrics::compute(&yv, &train::predict(&pv), &pv);
    let head = HeadFile {
        format: score::HEAD_FORMAT.into(),
        version: score::HEAD_VERSION,
        kind: "linear".into(),
        task: a.task,
        labels: a.task.labels().iter().map(|s| s.to_string()).collect(),
        encoder: variant.clone(),
        dim: h,
        features: Features::Sentence,
        weights: hw,
        bias: hb,
        temperature,
        descriptions: None,
        training: Training {
            files: a.data.iter().map(|p| p.display().to_string()).collect(),
            examples: train_idx.len(),
            sha256: sha,
            // Cross-entropy trains the classifier without a penalty; the contrastive
            // objective's classifier is a logistic regression with this one.
            l2: if cfg.objective == Objective::Contrastive { l2 } else { 0.0 },
            seed: a.seed,
        },
        validation: Some(Validation {
            data: format!("{}% of sources held out", a.val_percent),
            examples: yv.len(),
            accuracy: m.accuracy,
            macro_f1: m.macro_f1,
        }),
        lexical: None,
        article: None,
    };
    head.save(&head_path)?;
    stance::say!(
        "wrote {} and {} (validation macro-F1 {:.3} through the merged forward; {:.0}s on {} threads)",
        adapter_path.display(),
        head_path.display(),
        m.macro_f1,
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    )?;
    Ok(0)
}

#[derive(Args)]
pub struct SelectArgs {
    /// What the heads judge.
    #[arg(long, value_enum)]
    task: Task,
    /// The core labeled set, selected on (files, folders of .tsv, or `DIR/*_train.tsv`
    /// patterns), e.g. ../shared/data/news/ai-policy.
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<PathBuf>,
    /// An extra labeled set that may join the training folds (repeatable; each a file,
    /// folder or pattern). The cross-validation decides whether and at what weight.
    #[arg(long)]
    extra: Vec<PathBuf>,
    /// Folds over the core set's source articles.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of the fold assignment (and of the learning curve's order).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also measure the learning curve (250 / 500 / 1,000 / 2,000 / all sentences).
    #[arg(long)]
    curve: bool,
    /// Refit the chosen heads on all the data and write them into models/heads
    /// (TASK-linear, TASK-lexical, TASK-fused for the variant).
    #[arg(long)]
    write: bool,
    /// Where --write puts the heads (default: models/heads).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Write the rows the chosen model contradicts with confidence (out of fold) to this
    /// TSV (ids, labels and probabilities; no text).
    #[arg(long)]
    disagreements: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    cache: crate::cli::args::CacheArgs,
    /// With --write: replace heads that are already there (committed heads included).
    #[arg(long, requires = "write")]
    force: bool,
    /// Output: a Markdown report, or the whole selection as JSON.
    #[arg(long, value_enum, default_value = "md")]
    format: SelectFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq)]
enum SelectFormat {
    Md,
    Json,
}

/// Training never replaces a head or adapter silently (committed ones least of all).
fn refuse_overwrite(path: &std::path::Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{}: already exists; pass --force to replace it (or --out elsewhere)",
            path.display()
        );
    }
    Ok(())
}

fn set_name(p: &std::path::Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let parent = p.parent().and_then(|d| d.file_name()).and_then(|n| n.to_str());
    match parent {
        Some(dir) if name.contains('*') => format!("{dir}/{name}"),
        _ => name.trim_end_matches(".tsv").to_string(),
    }
}

/// `stance select`: grouped cross-validation over a core set, optionally writing the
/// chosen heads.
pub fn select(a: SelectArgs) -> Result<i32> {
    use stance::train::select::{self as sel, Labeled, SelectOptions};
    let resolved = models::resolve(&a.model.model, true)?;
    let dir = a.out_dir.clone().unwrap_or_else(score::heads_dir);
    if a.write {
        let short = resolved.variant.rsplit('/').next().unwrap_or(&resolved.variant);
        for name in [
            "linear.{short}.json",
            "context.{short}.json",
            "fused.{short}.json",
            "lexical.{short}.safetensors",
        ] {
            let file = name.replace("{short}", short);
            refuse_overwrite(&dir.join(format!("{}-{file}", a.task.name())), a.force)?;
        }
    }
    let emb = Embedder::load(&resolved, &a.model.encoder_options())?;
    let load = |arg: &[PathBuf], name: String| -> Result<Labeled> {
        let files = data::expand_all(arg)?;
        let examples = data::load_many(&files, a.task)?;
        stance::note!("stance: {name}: {} sentences from {} files", examples.len(), files.len());
        let vectors = embed_examples(&emb, &examples, !a.cache.no_cache)?;
        Ok(Labeled {
            name,
            files,
            examples,
            vectors,
        })
    };
    let core = load(&a.data, a.data.iter().map(|p| set_name(p)).collect::<Vec<_>>().join("+"))?;
    let extras: Vec<Labeled> = a
        .extra
        .iter()
        .map(|p| load(std::slice::from_ref(p), set_name(p)))
        .collect::<Result<_>>()?;
    let opts = SelectOptions {
        task: a.task,
        folds: a.folds,
        seed: a.seed,
        curve: a.curve,
        ..Default::default()
    };
    let s = sel::select(&core, &extras, &opts, &mut |m| tracing::info!("{m}"))?;
    if let Some(path) = &a.disagreements {
        let mut out = String::from("id\tlang\tlabel\tpredicted\tp_predicted\tp_label\n");
        for d in &s.disagreements {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{:.3}\t{:.3}\n",
                d.id, d.lang, d.label, d.predicted, d.p_predicted, d.p_label
            ));
        }
        stance::util::write_atomic(path, out.as_bytes())?;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.format == SelectFormat::Json {
        serde_json::to_writer_pretty(&mut out, &s)?;
        writeln!(out)?;
    } else {
        write_selection(&mut out, &s)?;
    }
    out.flush()?;
    drop(out);
    if a.write {
        let w = sel::write_heads(&s, &core, &extras, &resolved.variant, &dir, opts.epochs, opts.bits)?;
        for p in w.paths {
            stance::note!("stance: wrote {}", p.display());
        }
    }
    Ok(0)
}

/// Per-class precision, recall, F1 and support, with the confusion row of each class.
fn write_per_class(out: &mut impl Write, m: &Metrics, labels: [&str; 3], md: bool) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = (0..3)
        .map(|k| {
            let c = &m.per_class[k];
            let mut row = vec![
                labels[k].to_string(),
                format!("{:.3}", c.precision),
                format!("{:.3}", c.recall),
                format!("{:.3}", c.f1),
                c.support.to_string(),
            ];
            row.extend(m.confusion[k].iter().map(|n| n.to_string()));
            row
        })
        .collect();
    write_grid(out, &["class", "P", "R", "F1", "n", labels[0], labels[1], labels[2]], &rows, md)
}

fn metric_cells(m: &Metrics) -> Vec<String> {
    vec![
        m.n.to_string(),
        format!("{:.3}", m.accuracy),
        format!("{:.3}", m.macro_f1),
        format!("{:.3}–{:.3}", m.macro_f1_ci.0, m.macro_f1_ci.1),
        format!("{:.3}", m.ece),
    ]
}

fn write_selection(out: &mut impl Write, s: &stance::train::select::Selection) -> Result<()> {
    let labels = s.task.labels();
    writeln!(
        out,
        "{} on {} ({} sentences, {} articles): {}-fold cross-validation grouped by source article, seed {}\n",
        s.task.name(),
        s.core_files.join(", "),
        s.examples,
        s.articles,
        s.folds,
        s.seed
    )?;
    let cols = ["stage", "candidate", "n", "accuracy", "macro-F1", "95% CI", "ECE"];
    let rows: Vec<Vec<String>> = s
        .candidates
        .iter()
        .map(|c| {
            let mut r = vec![c.stage.to_string(), c.name.clone()];
            r.extend(metric_cells(&c.metrics));
            r
        })
        .collect();
    write_grid(out, &cols, &rows, true)?;
    let extras = |e: &[(String, f32)]| {
        if e.is_empty() {
            "none".to_string()
        } else {
            e.iter().map(|(n, w)| format!("{n} ×{w}")).collect::<Vec<_>>().join(", ")
        }
    };
    writeln!(
        out,
        "\nChosen: encoder head on {} vectors (l2 {}, extra data: {}, T {:.3}) + lexical head (l2 {}, extra data: {}, T {:.3}), lexical weight {:.1}\n",
        if s.encoder.features == Features::Context {
            "sentence + neighbour"
        } else {
            "sentence"
        },
        s.encoder.l2,
        extras(&s.encoder.extras),
        s.encoder.temperature,
        s.lexical.l2,
        extras(&s.lexical.extras),
        s.lexical.temperature,
        s.alpha
    )?;
    let mut rows = vec![];
    for (name, m) in [("chosen (fused)", &s.best), ("sentence-vector head alone", &s.encoder_only)] {
        let mut r = vec![name.to_string()];
        r.extend(metric_cells(m));
        rows.push(r);
    }
    write_grid(out, &["model", "n", "accuracy", "macro-F1", "95% CI", "ECE"], &rows, true)?;
    writeln!(out, "\nPer class (chosen; rows gold, columns predicted)\n")?;
    write_per_class(out, &s.best, labels, true)?;
    if !s.per_language.is_empty() {
        writeln!(out, "\nPer language (chosen)\n")?;
        let rows: Vec<Vec<String>> = s
            .per_language
            .iter()
            .map(|(l, m)| {
                let mut r = vec![l.clone()];
                r.extend(metric_cells(m));
                r
            })
            .collect();
        write_grid(out, &["lang", "n", "accuracy", "macro-F1", "95% CI", "ECE"], &rows, true)?;
    }
    writeln!(out, "\nArticles (gold: the side with more labeled sentences, neutral on a tie)\n")?;
    let rows: Vec<Vec<String>> = s
        .article
        .iter()
        .map(|a| {
            let mut r = vec![a.rule.clone()];
            r.extend(metric_cells(&a.metrics));
            r
        })
        .collect();
    write_grid(out, &["rule", "n", "accuracy", "macro-F1", "95% CI", "ECE"], &rows, true)?;
    if !s.curve.is_empty() {
        writeln!(
            out,
            "\nLearning curve (training sentences per fold: at least N, in whole articles, plus the chosen extras in full; the last row is all of a fold's mean; held-out folds whole)\n"
        )?;
        let rows: Vec<Vec<String>> = s
            .curve
            .iter()
            .map(|c| {
                vec![
                    c.sentences.to_string(),
                    format!("{:.3}", c.encoder),
                    format!("{:.3}", c.lexical),
                    format!("{:.3}", c.fused),
                ]
            })
            .collect();
        write_grid(out, &["sentences", "encoder", "lexical", "fused"], &rows, true)?;
    }
    writeln!(
        out,
        "\n{} rows contradicted with confidence out of fold (P(predicted) ≥ 0.8, P(label) ≤ 0.1)",
        s.disagreements.len()
    )?;
    Ok(())
}
