//! `stance batch` and `stance report merge`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use stance::actors::Gazetteer;
use stance::batch::{self, BatchOptions, Item};
use stance::pipeline::{Record, Scorer, ScorerOptions};
use stance::report::batch::{self as report_batch, BatchFormat};

use crate::cli::args::ModelArgs;

#[derive(Args)]
pub struct BatchArgs {
    /// Files and folders (walked recursively), or - for JSON Lines on standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Which files of a folder to take (default: *.{txt,md,markdown,html,htm}).
    #[arg(long)]
    glob: Option<String>,
    /// The report: its format comes from the extension (.jsonl .csv .md .html) or --format.
    #[arg(long, short)]
    out: Option<PathBuf>,
    #[command(flatten)]
    report: crate::cli::args::ReportArgs,
    /// Also stream every finished article as JSON Lines to this file.
    #[arg(long)]
    stream: Option<PathBuf>,
    /// Process only shard K of N (1-based), a deterministic slice by id hash.
    #[arg(long)]
    shard: Option<String>,
    /// Actor gazetteer (default: models/actors.tsv).
    #[arg(long)]
    actors: Option<PathBuf>,
    #[command(flatten)]
    cache: crate::cli::args::CacheArgs,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    text: crate::cli::args::TextArgs,
    /// Refuse articles with more sentences than this.
    #[arg(long, default_value_t = 100_000)]
    max_sentences: usize,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    heads: crate::cli::args::HeadArgs,
}

#[derive(Subcommand)]
pub enum ReportCmd {
    /// Combine JSON Lines outputs (shards, resumed runs) into one report.
    Merge {
        /// JSON Lines outputs of `stance batch` (shards or runs), merged in id order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The merged report: its format comes from the extension (.jsonl .csv .md .html) or --format.
        #[arg(long, short, required = true)]
        out: PathBuf,
        #[command(flatten)]
        report: crate::cli::args::ReportArgs,
    },
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (k, n) = s.split_once('/').context("--shard takes K/N, e.g. 2/8")?;
    let (k, n): (usize, usize) = (k.trim().parse().context("--shard K")?, n.trim().parse().context("--shard N")?);
    if n == 0 || k == 0 || k > n {
        bail!("--shard {s}: need 1 ≤ K ≤ N");
    }
    Ok((k - 1, n))
}

fn report_format(out: Option<&Path>, format: Option<BatchFormat>) -> BatchFormat {
    format
        .or_else(|| out.and_then(BatchFormat::from_path))
        .unwrap_or(BatchFormat::Jsonl)
}

/// Appends JSON Lines to a file, flushing after each chunk so a crash or Ctrl-C keeps
/// every finished article.
struct Stream(std::io::BufWriter<std::fs::File>, PathBuf);

impl Stream {
    fn create(path: &Path) -> Result<Stream> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).with_context(|| format!("{}: cannot create folder", d.display()))?;
        }
        let f = std::fs::File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
        Ok(Stream(std::io::BufWriter::new(f), path.to_path_buf()))
    }
    fn write(&mut self, recs: &[Record]) -> Result<()> {
        for r in recs {
            serde_json::to_writer(&mut self.0, r)?;
            self.0.write_all(b"\n")?;
        }
        self.0.flush().with_context(|| format!("{}: cannot write", self.1.display()))?;
        Ok(())
    }
}

pub fn batch(a: BatchArgs) -> Result<i32> {
    let started = Instant::now();
    // The output is checked and claimed before any work, so a bad --out or a second
    // run on the same file fails at once, not after the scoring.
    let _claim = match &a.out {
        Some(out) => {
            stance::util::check_output(out)?;
            if a.report.format.is_none() && BatchFormat::from_path(out).is_none() {
                bail!(
                    "{}: unknown report extension: use .jsonl, .csv, .md or .html, or say --format",
                    out.display()
                );
            }
            Some(stance::util::OutputLock::claim(out)?)
        }
        None => None,
    };
    let format = report_format(a.out.as_deref(), a.report.format);
    let mut warnings = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    let (stdin_inputs, paths): (Vec<PathBuf>, Vec<PathBuf>) = a.inputs.iter().cloned().partition(|p| p.as_os_str() == "-");
    if !stdin_inputs.is_empty() {
        items.extend(batch::read_jsonl(std::io::stdin().lock(), "<stdin>", &mut warnings));
    }
    items.extend(batch::list_files(&paths, a.glob.as_deref())?);
    if items.is_empty() {
        bail!("no input articles (check the paths and --glob)");
    }
    if let Some(spec) = &a.shard {
        // A shard may well be empty (few articles, many shards): that is not an error,
        // it writes an empty output so that merging finds every part.
        let (k, n) = parse_shard(spec)?;
        items.retain(|it| batch::shard_of(it.id(), n) == k);
    }
    for w in &warnings {
        stance::note!("stance: warning: {w}");
    }
    let scorer = Scorer::load(&ScorerOptions {
        model: a.model.model.clone(),
        encoder: a.model.encoder_options(),
        stance_head: a.heads.stance(),
        sentiment_head: a.heads.sentiment(),
        explain: 3,
    })?;
    let gazetteer = Gazetteer::for_run(a.actors.as_deref())?;
    let mut cache = if a.cache.no_cache {
        None
    } else {
        Some(stance::cache::VectorCache::for_embedder(&scorer.embedder)?)
    };
    let opts = BatchOptions {
        read: a.text.read_options(),
        lang: a.text.lang.clone(),
        max_sentences: a.max_sentences,
        lines: false,
    };

    // JSON Lines output streams into OUT.partial, renamed when the run completes.
    let partial = match (&a.out, format) {
        (Some(out), BatchFormat::Jsonl) => Some(PathBuf::from(format!("{}.partial", out.display()))),
        _ => None,
    };
    let mut streams: Vec<Stream> = Vec::new();
    if let Some(p) = &partial {
        streams.push(Stream::create(p)?);
    }
    if let Some(p) = &a.stream {
        streams.push(Stream::create(p)?);
    }
    let stdout_stream = a.out.is_none() && format == BatchFormat::Jsonl;

    let tty = std::io::stderr().is_terminal();
    let bar = if a.quiet || !tty {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(items.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} articles {msg} ({eta} left)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let mut records: Vec<Record> = Vec::new();
    let (mut fresh, mut sentences, mut done) = (0usize, 0usize, 0usize);
    // Cells: the per-batch progress callback and the per-chunk loop both update these.
    let last_log = std::cell::Cell::new(Instant::now());
    let embedded = std::cell::Cell::new(0usize);
    for chunk in items.chunks(16) {
        if stance::interrupt::requested() {
            break;
        }
        let mut on_batch = |n: usize| {
            embedded.set(embedded.get() + n);
            bar.set_message(format!("{} sentences embedded", embedded.get()));
            if !tty && !a.quiet && last_log.get().elapsed().as_secs() >= 10 {
                stance::note!("stance: {done}/{} articles, {} sentences embedded", items.len(), embedded.get());
                last_log.set(Instant::now());
            }
        };
        let scored = batch::score_chunk(chunk, &scorer, gazetteer.as_ref(), &opts, cache.as_mut(), &mut on_batch);
        let (recs, f) = match scored {
            Ok(r) => r,
            // Stopped inside the chunk: its articles are dropped, the finished ones kept.
            Err(stance::Error::Interrupted) => break,
            Err(e) => return Err(e.into()),
        };
        fresh += f;
        sentences += recs.iter().filter_map(Record::scored).map(|r| r.sentences.len()).sum::<usize>();
        for w in recs.iter().filter_map(Record::scored).flat_map(|r| &r.warnings) {
            stance::note!("stance: warning: {w}");
        }
        done += chunk.len();
        for st in &mut streams {
            st.write(&recs)?;
        }
        if stdout_stream {
            let mut out = std::io::stdout().lock();
            for r in &recs {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        records.extend(recs);
        let rate = sentences as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{sentences} sentences, {rate:.0}/s"));
        bar.set_position(done as u64);
        if !tty && !a.quiet && last_log.get().elapsed().as_secs() >= 10 {
            stance::note!(
                "stance: {done}/{} articles, {sentences} sentences, {rate:.0} sentences/s",
                items.len()
            );
            last_log.set(Instant::now());
        }
    }
    bar.finish_and_clear();
    let n_errors = records.iter().filter(|r| r.failed().is_some()).count();
    let scored = records.len() - n_errors;
    for f in records.iter().filter_map(Record::failed) {
        for w in &f.warnings {
            stance::note!("stance: warning: {w}");
        }
        stance::note!("stance: error: {}", f.error);
    }
    if stance::interrupt::requested() {
        let kept = partial
            .as_ref()
            .or(a.stream.as_ref())
            .map(|p| format!(" finished articles are in {}", p.display()))
            .unwrap_or_default();
        stance::note!(
            "stance: interrupted after {done} of {} articles;{kept}; the report was not written{}",
            items.len(),
            if cache.is_some() {
                "; a re-run reuses the cached vectors"
            } else {
                ""
            }
        );
        return Ok(130);
    }
    let records = report_batch::normalise(records);
    if let Some(out) = &a.out {
        match (format, &partial) {
            (BatchFormat::Jsonl, Some(p)) => {
                drop(streams);
                std::fs::rename(p, out).with_context(|| format!("{}: cannot rename into place", out.display()))?;
            }
            _ => {
                let bytes = report_batch::render(&records, format, a.report.sentences, a.report.html_texts)?;
                stance::util::write_atomic(out, &bytes)?;
            }
        }
    } else if !stdout_stream {
        let bytes = report_batch::render(&records, format, a.report.sentences, a.report.html_texts)?;
        std::io::stdout().lock().write_all(&bytes)?;
    }
    let from_cache = sentences.saturating_sub(fresh);
    if !a.quiet {
        stance::note!(
            "stance: scored {scored} articles ({sentences} sentences), {} errors; embedded {fresh} new sentences, {from_cache} from the cache; {:.1}s, {:.1} articles/s{}",
            n_errors,
            started.elapsed().as_secs_f64(),
            records.len() as f64 / started.elapsed().as_secs_f64().max(1e-9),
            a.out.as_ref().map(|o| format!("; wrote {}", o.display())).unwrap_or_default()
        );
    }
    Ok(if n_errors == 0 {
        0
    } else if scored > 0 {
        2
    } else {
        1
    })
}

pub fn report(cmd: ReportCmd) -> Result<i32> {
    match cmd {
        ReportCmd::Merge { files, out, report } => {
            let crate::cli::args::ReportArgs {
                format,
                sentences,
                html_texts,
            } = report;
            stance::util::check_output(&out)?;
            if format.is_none() && BatchFormat::from_path(&out).is_none() {
                bail!(
                    "{}: unknown report extension: use .jsonl, .csv, .md or .html, or say --format",
                    out.display()
                );
            }
            let _claim = stance::util::OutputLock::claim(&out)?;
            let mut all = Vec::new();
            for f in &files {
                all.extend(report_batch::read_records(f)?);
            }
            let records = report_batch::normalise(all);
            let bytes = report_batch::render(&records, report_format(Some(&out), format), sentences, html_texts)?;
            stance::util::write_atomic(&out, &bytes)?;
            stance::note!(
                "stance: merged {} records from {} files into {}",
                records.len(),
                files.len(),
                out.display()
            );
            Ok(0)
        }
    }
}
