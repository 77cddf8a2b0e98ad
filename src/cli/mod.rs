use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};

use stance::encode::Embedder;
use stance::pipeline::{Scorer, ScorerOptions};
use stance::report::Format;

use crate::cli::learn::{EvalArgs, TrainArgs};

pub mod args;
pub mod batch;
pub mod learn;

use args::{CacheArgs, HeadArgs, ModelArgs, TextArgs};
use stance::input::ReadOptions;
use stance::models;
use stance::segment::{self, Segmenter};

#[derive(Parser)]
#[command(
    name = "stance",
    version,
    about = "Stance (regulation ↔ openness) and sentiment of news articles, sentence by sentence"
)]
struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Bound the CPU threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Split articles into sentences, with byte offsets.
    Segment {
        /// Article files; `-` or none reads standard input.
        files: Vec<PathBuf>,
        #[command(flatten)]
        read: ReadArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: SegFormat,
    },
    /// Embed each sentence of the articles.
    Embed {
        /// Article files; `-` or none reads standard input.
        files: Vec<PathBuf>,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        model: ModelArgs,
        /// Output format: one JSON object per sentence, or a NumPy array (sentences × dim).
        #[arg(long, value_enum, default_value = "jsonl")]
        format: EmbedFormat,
        /// Output file (required for npy on a terminal).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Judge stance and sentiment of every sentence and article.
    Classify {
        /// Article files; `-` or none reads standard input.
        files: Vec<PathBuf>,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        heads: HeadArgs,
        /// Output format (default: table on a terminal, jsonl otherwise).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// List the N sentences that pull most toward each side, in every format
        /// (default: none in the table and Markdown, 3 in JSON, JSON Lines and CSV).
        #[arg(long)]
        explain: Option<usize>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Train a scoring head on labeled data.
    Train(TrainArgs),
    /// Evaluate heads and encoder variants on labeled data, side by side.
    Eval(EvalArgs),
    /// Choose heads by cross-validation grouped by source article (and write them).
    Select(crate::cli::learn::SelectArgs),
    /// Score many articles (files, folders, JSON Lines) into one report.
    Batch(crate::cli::batch::BatchArgs),
    /// Reports: merge JSON Lines outputs of shards or runs.
    Report {
        #[command(subcommand)]
        cmd: crate::cli::batch::ReportCmd,
    },
    /// Encoding speed on a file of sentences (one per line), like the speed peers.
    Bench(crate::cli::learn::BenchArgs),
    /// Model variants: list them, fetch them.
    Models {
        #[command(subcommand)]
        cmd: ModelsCmd,
    },
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Variants, where each comes from, whether present, size.
    List,
    /// Fetch a variant into the cache (default: e5-small-q4).
    Fetch {
        /// The variant to fetch (see `stance models list`).
        name: Option<String>,
    },
    /// Make e5-small-static: a static token-embedding table distilled from e5-small-q4.
    Distill {
        /// Pieces per forward batch.
        #[arg(long, default_value_t = 1024)]
        batch: usize,
    },
}

#[derive(Args, Clone)]
struct ReadArgs {
    /// Treat every input line as one sentence (no segmentation).
    #[arg(long)]
    lines: bool,
    #[command(flatten)]
    text: TextArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq)]
enum SegFormat {
    Text,
    Jsonl,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq)]
enum EmbedFormat {
    Jsonl,
    Npy,
}

pub fn run() -> i32 {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STANCE_LOG").unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    if let Some(n) = cli.threads {
        // candle and gemm size their pools from RAYON_NUM_THREADS; set it before any
        // pool exists, while the program is still single-threaded.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    }
    // Ctrl-C or SIGTERM: the first asks for a clean stop (checked between encoder
    // batches; finished work is kept where the command keeps it), a second quits now.
    let _ = ctrlc::set_handler(|| {
        if stance::interrupt::request() {
            std::process::exit(130);
        }
        stance::note!("stance: stopping after the current batch (Ctrl-C again to quit at once)");
    });
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            if e.chain()
                .any(|c| matches!(c.downcast_ref::<stance::Error>(), Some(stance::Error::Interrupted)))
            {
                stance::note!("stance: interrupted");
                return 130;
            }
            let msg = format!("{e:#}").replace('\n', " ");
            stance::note!("stance: error: {msg}");
            1
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    // serde_json and csv keep the io::Error inside instead of as their source.
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
            || c.downcast_ref::<csv::Error>()
                .is_some_and(|x| matches!(x.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe))
    })
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Segment { files, read, format } => cmd_segment(&files, &read, format),
        Cmd::Embed {
            files,
            read,
            model,
            format,
            out,
        } => cmd_embed(&files, &read, &model, format, out.as_deref()),
        Cmd::Classify {
            files,
            read,
            model,
            heads,
            format,
            explain,
            cache,
        } => cmd_classify(&files, &read, &model, &heads, format, explain, cache.no_cache),
        Cmd::Train(a) => crate::cli::learn::train(a),
        Cmd::Eval(a) => crate::cli::learn::eval(a),
        Cmd::Select(a) => crate::cli::learn::select(a),
        Cmd::Bench(a) => crate::cli::learn::bench(a),
        Cmd::Batch(a) => crate::cli::batch::batch(a),
        Cmd::Report { cmd } => crate::cli::batch::report(cmd),
        Cmd::Models { cmd } => cmd_models(cmd),
    }
}

fn read_opts(r: &ReadArgs) -> ReadOptions {
    r.text.read_options()
}

fn inputs(files: &[PathBuf]) -> Vec<PathBuf> {
    if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files.to_vec()
    }
}

/// The inputs of segment, embed and classify as pipeline items (none: standard input).
fn items(files: &[PathBuf]) -> Vec<stance::batch::Item> {
    inputs(files).iter().map(|p| stance::batch::Item::named_file(p)).collect()
}

/// Options for reading and splitting the articles these commands name: any length.
fn batch_opts(r: &ReadArgs) -> stance::batch::BatchOptions {
    stance::batch::BatchOptions {
        read: read_opts(r),
        lang: r.text.lang.clone(),
        lines: r.lines,
        // classify, segment and embed take an article of any length (batch has --max-sentences).
        max_sentences: usize::MAX,
    }
}

/// Reads and splits every input through the pipeline's first stages, as batch does;
/// warnings and failures are reported on standard error. Returns one entry per input
/// and how many failed.
fn prepare_all(items: &[stance::batch::Item], r: &ReadArgs) -> (Vec<Result<stance::batch::Prepared, stance::pipeline::Record>>, usize) {
    let seg = Segmenter::new(&r.text.lang);
    let opts = batch_opts(r);
    let prepared: Vec<_> = items.iter().map(|i| stance::batch::prepare(i, &seg, &opts)).collect();
    let mut failed = 0;
    for p in &prepared {
        match p {
            Ok(p) => p.warnings.iter().for_each(|w| stance::note!("stance: warning: {w}")),
            Err(rec) => {
                if let Some(f) = rec.failed() {
                    f.warnings.iter().for_each(|w| stance::note!("stance: warning: {w}"));
                    stance::note!("stance: error: {}", f.error);
                }
                failed += 1;
            }
        }
    }
    (prepared, failed)
}

/// Reads and splits every input; a bad file is reported and skipped, the others go on.
fn read_all(files: &[PathBuf], r: &ReadArgs) -> (Vec<(String, Vec<segment::Sentence>)>, usize) {
    let items = items(files);
    let (prepared, failed) = prepare_all(&items, r);
    let arts = items
        .iter()
        .zip(prepared)
        .filter_map(|(i, p)| p.ok().map(|p| (i.id().to_string(), p.sentences)))
        .collect();
    (arts, failed)
}

fn exit_code(ok: usize, failed: usize) -> i32 {
    if failed == 0 {
        0
    } else if ok == 0 {
        1
    } else {
        2
    }
}

fn cmd_segment(files: &[PathBuf], r: &ReadArgs, format: SegFormat) -> Result<i32> {
    let (arts, failed) = read_all(files, r);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (id, sents) in &arts {
        for s in sents {
            match format {
                SegFormat::Text => writeln!(out, "{}\t{}\t{}-{}\t{}", id, s.index, s.start, s.end, s.text)?,
                SegFormat::Jsonl => {
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({"file": id, "index": s.index, "start": s.start, "end": s.end, "text": s.text}),
                    )?;
                    writeln!(out)?;
                }
            }
        }
    }
    out.flush()?;
    Ok(exit_code(arts.len(), failed))
}

pub fn load_embedder(m: &ModelArgs) -> Result<Embedder> {
    let resolved = models::resolve(&m.model, true)?;
    let t0 = std::time::Instant::now();
    let emb = Embedder::load(&resolved, &m.encoder_options())?;
    tracing::info!(
        "model {} loaded in {:.2}s ({} on {})",
        resolved.variant,
        t0.elapsed().as_secs_f64(),
        emb.backend(),
        emb.device
    );
    Ok(emb)
}

fn cmd_embed(files: &[PathBuf], r: &ReadArgs, m: &ModelArgs, format: EmbedFormat, out: Option<&Path>) -> Result<i32> {
    let (arts, failed) = read_all(files, r);
    if arts.is_empty() {
        bail!("no input could be read");
    }
    if format == EmbedFormat::Npy && out.is_none() && std::io::stdout().is_terminal() {
        bail!("--format npy writes binary data: pass --out FILE.npy or redirect standard output");
    }
    let emb = load_embedder(m)?;
    let texts: Vec<&str> = arts.iter().flat_map(|(_, s)| s.iter().map(|x| x.text.as_str())).collect();
    let vecs = emb.embed(&texts)?;
    // --out is written whole or not at all; standard output streams.
    match out {
        Some(p) => {
            let mut w = std::io::BufWriter::new(stance::util::AtomicFile::create(p)?);
            write_vectors(&mut w, format, &arts, &vecs, &emb)?;
            w.into_inner().map_err(|e| e.into_error())?.commit()?;
        }
        None => write_vectors(&mut std::io::BufWriter::new(std::io::stdout().lock()), format, &arts, &vecs, &emb)?,
    }
    Ok(exit_code(arts.len(), failed))
}

fn write_vectors(
    w: &mut impl Write,
    format: EmbedFormat,
    arts: &[(String, Vec<segment::Sentence>)],
    vecs: &[Vec<f32>],
    emb: &Embedder,
) -> Result<()> {
    match format {
        EmbedFormat::Npy => stance::npy::write_npy_f32(w, vecs, emb.dim())?,
        EmbedFormat::Jsonl => {
            let mut k = 0;
            for (id, sents) in arts {
                for s in sents {
                    serde_json::to_writer(
                        &mut *w,
                        &serde_json::json!({"file": id, "index": s.index, "start": s.start, "end": s.end, "text": s.text, "model": emb.variant, "vector": vecs[k]}),
                    )?;
                    writeln!(w)?;
                    k += 1;
                }
            }
        }
    }
    w.flush()?;
    Ok(())
}

fn cmd_models(cmd: ModelsCmd) -> Result<i32> {
    match cmd {
        ModelsCmd::List => {
            stance::say!("cache: {} (set STANCE_HOME to move it)", models::stance_home().display())?;
            // Rows first, then widths from the longest cell, so long adapter names align.
            let mut rows: Vec<[String; 4]> = Vec::new();
            for v in models::variants() {
                let files = models::local_files(v.name)?;
                let (present, size) = match &files {
                    Some(f) => ("yes", format!("{:.1} MB", f.size() as f64 / 1e6)),
                    None => ("no", "-".into()),
                };
                rows.push([v.name.to_string(), present.into(), size, v.source.to_string()]);
            }
            for v in models::adapter_variants() {
                let p = models::adapters_dir().join(format!("{v}.safetensors"));
                let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                rows.push([
                    v,
                    "yes".into(),
                    format!("{:.1} MB", size as f64 / 1e6),
                    format!("adapter {} merged into its base at load", p.display()),
                ]);
            }
            let w = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(7).max(7);
            stance::say!("{:<w$}  {:<7}  {:>9}  source", "variant", "present", "size")?;
            for r in &rows {
                stance::say!("{:<w$}  {:<7}  {:>9}  {}", r[0], r[1], r[2], r[3])?;
            }
            Ok(0)
        }
        ModelsCmd::Distill { batch } => {
            let base = models::resolve(models::DEFAULT_VARIANT, true)?;
            let models::ModelFiles::E5s1 { weights, tokenizer } = &base.files else {
                bail!("distillation needs the E5S1 base")
            };
            let t0 = std::time::Instant::now();
            let image = stance::encode::e5s1::E5s1::open(weights)?;
            let fast = stance::encode::fast::FastBert::from_e5s1(&image, stance::encode::fast::Precision::F32)?;
            let tok = stance::encode::load_tokenizer(tokenizer)?;
            let bar = crate::cli::learn::progress_bar(tok.get_vocab_size(true) as u64, "distilling");
            let (table, vocab, dim) = stance::encode::static_emb::distill(&fast, &tok, batch, &mut |n| bar.inc(n as u64))?;
            bar.finish_and_clear();
            let models::ModelFiles::Static { table: out, .. } = models::static_files() else {
                unreachable!()
            };
            let meta = [
                ("base".to_string(), base.variant.clone()),
                ("weighting".to_string(), "SIF a=1e-3 on unigram probabilities".to_string()),
            ]
            .into_iter()
            .collect();
            stance::encode::static_emb::save(&out, &table, vocab, dim, meta)?;
            stance::say!(
                "e5-small-static: {vocab} × {dim} table in {} ({:.0}s)",
                out.display(),
                t0.elapsed().as_secs_f64()
            )?;
            Ok(0)
        }
        ModelsCmd::Fetch { name } => {
            let name = name.unwrap_or_else(|| models::DEFAULT_VARIANT.into());
            let files = models::fetch_checked(&name, true)?;
            stance::say!(
                "{name}: ready ({:.1} MB) in {}",
                files.size() as f64 / 1e6,
                files.paths()[0].parent().unwrap_or(Path::new(".")).display()
            )?;
            Ok(0)
        }
    }
}

fn cmd_classify(
    files: &[PathBuf],
    r: &ReadArgs,
    m: &ModelArgs,
    h: &HeadArgs,
    format: Option<Format>,
    explain: Option<usize>,
    no_cache: bool,
) -> Result<i32> {
    let opts = ScorerOptions {
        model: m.model.clone(),
        encoder: m.encoder_options(),
        stance_head: h.stance(),
        sentiment_head: h.sentiment(),
        explain: explain.unwrap_or(3),
    };
    // The same article pipeline as `batch`: inputs are read and split first, so when
    // none can be, the run fails before the model loads.
    let items = items(files);
    let (prepared, failed) = prepare_all(&items, r);
    if failed == items.len() {
        bail!("no input could be read");
    }
    let scorer = Scorer::load(&opts)?;
    tracing::info!(
        "encoder {} ({}), heads {} and {}",
        scorer.embedder.variant,
        scorer.embedder.backend(),
        scorer.stance_path.display(),
        scorer.sentiment_path.display()
    );
    let gazetteer = stance::actors::Gazetteer::for_run(None)?;
    let mut cache = if no_cache {
        None
    } else {
        Some(stance::cache::VectorCache::for_embedder(&scorer.embedder)?)
    };
    let (records, _) = stance::batch::score_prepared(&items, prepared, &scorer, gazetteer.as_ref(), cache.as_mut(), &mut |_| {})?;
    // Failures were reported as the inputs were read; the scored ones are printed.
    let results: Vec<_> = records
        .into_iter()
        .filter_map(|r| match r {
            stance::pipeline::Record::Scored(a) => Some(*a),
            stance::pipeline::Record::Failed(_) => None,
        })
        .collect();
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    stance::report::write(&mut out, format, &results, explain.unwrap_or(0))?;
    out.flush()?;
    Ok(exit_code(results.len(), failed))
}
