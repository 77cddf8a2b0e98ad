//! `stance train` and `stance eval`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use stance::cache::{VectorCache, embed_cached};
use stance::data::{self, Example, Task};
use stance::encode::Embedder;
use stance::models;
use stance::score::{self, Features};
use stance::train::metrics::Metrics;

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
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("{}: cannot read", a.file.display()))?;
    let mut lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        bail!("{}: no sentences", a.file.display());
    }
    if let Some(n) = a.sentences {
        lines = lines.iter().cycle().take(n).copied().collect();
    }
    let mut opts = a.model.encoder_options();
    opts.batch_tokens = a.batch_tokens;
    let f = stance::train::evaluate::bench(&a.model.model, &opts, &lines, a.check)?;
    stance::say!(
        "stance[{} {}] sentences={} tokens={} seconds={:.3} sent_per_s={:.1} tok_per_s={:.0} load_s={:.3} tokenize_s={:.3} peak_mb={:.0} (before load {:.0}) threads={}",
        f.variant,
        f.backend,
        f.sentences,
        f.tokens,
        f.encode_seconds,
        f.sentences as f64 / f.encode_seconds,
        f.tokens as f64 / f.encode_seconds,
        f.load_seconds,
        f.tokenize_seconds,
        f.peak_memory_mb,
        f.memory_before_load_mb,
        f.threads
    )?;
    if let Some(c) = &f.check {
        stance::say!(
            "check against {}: worst cosine {:.7} (line {}), mean {:.7}, below 0.9999: {} of {}",
            c.reference,
            c.worst_cosine,
            c.worst_line,
            c.mean_cosine,
            c.below_0_9999,
            f.sentences
        )?;
    }
    Ok(0)
}

fn finetune(a: TrainArgs) -> Result<i32> {
    use stance::train::finetune::{FinetuneRun, TuneConfig};
    let name = a.variant_name.clone().unwrap_or_else(|| a.task.name().to_string());
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("--variant-name {name:?}: use letters, digits, '-' and '_' only");
    }
    let config = TuneConfig {
        top_layers: a.top_layers,
        rank: a.rank,
        lr: a.lr,
        epochs: a.tune_epochs,
        seed: a.seed,
        objective: a.objective,
        ..Default::default()
    };
    config.check()?;
    let examples = data::load_many(&a.data, a.task)?;
    let resolved = models::resolve(&a.model.model, true)?;
    let variant = format!("{}+{name}", resolved.variant);
    let head_path = a
        .out
        .clone()
        .unwrap_or_else(|| score::heads_dir().join(format!("{}-linear.{variant}.json", a.task.name())));
    let run = FinetuneRun {
        task: a.task,
        files: a.data.clone(),
        config,
        l2: a.l2.unwrap_or(0.1),
        head_epochs: a.epochs,
        val_percent: a.val_percent,
        variant,
        head_path,
    };
    refuse_overwrite(&run.adapter_path(), a.force)?;
    refuse_overwrite(&run.head_path, a.force)?;
    // The bar runs while the frozen layers do; log lines print above it.
    let bar = progress_bar(examples.len() as u64, "frozen layers");
    let outcome = stance::train::finetune::run(
        &resolved,
        &a.model.encoder_options(),
        &examples,
        &run,
        &mut |m| bar.suspend(|| stance::note!("stance: {m}")),
        &mut |n| {
            bar.inc(n as u64);
            if bar.position() >= bar.length().unwrap_or(0) {
                bar.finish_and_clear();
            }
        },
    )?;
    bar.finish_and_clear();
    stance::say!(
        "wrote {} and {} (best epoch {}; validation macro-F1 {:.3} through the merged forward; {:.0}s on {} threads)",
        run.adapter_path().display(),
        run.head_path.display(),
        outcome.best_epoch,
        outcome.validation.macro_f1,
        outcome.seconds,
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
