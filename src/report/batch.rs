//! Reports over many articles, rendered from typed batch records ([`Record`], as
//! streamed in JSON Lines): CSV, Markdown and a self-contained HTML page. The same code builds the
//! report of one run, a resumed run, or merged shards, always with articles sorted by
//! id, so that equal inputs give byte-identical reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::data::Task;
use crate::error::{Error, Result};
use crate::pipeline::{ArticleResult, FailedArticle, Origin, Record};
use crate::report::md_escape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BatchFormat {
    Jsonl,
    Csv,
    Md,
    Html,
}

impl BatchFormat {
    pub fn from_path(p: &std::path::Path) -> Option<BatchFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(BatchFormat::Jsonl),
            "csv" => Some(BatchFormat::Csv),
            "md" | "markdown" => Some(BatchFormat::Md),
            "html" | "htm" => Some(BatchFormat::Html),
            _ => None,
        }
    }
}

/// Sorts records by id and keeps the last record of each id (a resumed or repeated run
/// may have written an article twice).
pub fn normalise(records: Vec<Record>) -> Vec<Record> {
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    for r in records {
        by_id.insert(r.id().to_string(), r);
    }
    by_id.into_values().collect()
}

/// The scored articles among the records.
fn scored(records: &[Record]) -> Vec<&ArticleResult> {
    records.iter().filter_map(Record::scored).collect()
}

/// The failed articles among the records.
fn failures(records: &[Record]) -> Vec<&FailedArticle> {
    records.iter().filter_map(Record::failed).collect()
}

/// A record's source, "" where it has none.
fn source_of(o: &Origin) -> &str {
    o.source.as_deref().unwrap_or("")
}

/// A record's figure as the f64 it is written as (4 decimals), so that two-decimal
/// displays round the written figure, not its f32 neighbour.
fn fig(x: f32) -> f64 {
    crate::aggregate::round_f64(x)
}

/// The actors named in a sentence.
fn actor_names(sentence: &crate::pipeline::SentenceResult) -> impl Iterator<Item = &str> {
    sentence.actors.iter().flatten().map(String::as_str)
}

pub struct ActorStats {
    pub name: String,
    pub count: usize,
    pub mean: f64,
    pub std: f64,
    pub articles: usize,
}

/// Each actor's mean sentence stance, its spread and its count, over all articles.
pub fn actor_stats(records: &[Record]) -> Vec<ActorStats> {
    let mut acc: BTreeMap<String, (Vec<f64>, std::collections::BTreeSet<&str>)> = BTreeMap::new();
    for r in scored(records) {
        for sent in &r.sentences {
            let score = fig(sent.stance.score);
            for a in actor_names(sent) {
                let e = acc.entry(a.to_string()).or_default();
                e.0.push(score);
                e.1.insert(&r.id);
            }
        }
    }
    let mut out: Vec<ActorStats> = acc
        .into_iter()
        .map(|(name, (xs, arts))| {
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            ActorStats {
                name,
                count: xs.len(),
                mean,
                std,
                articles: arts.len(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    out
}

pub struct SourceStats {
    pub source: String,
    pub articles: usize,
    pub stance: f64,
    pub sentiment: f64,
}

pub fn source_stats(records: &[Record]) -> Vec<SourceStats> {
    let mut acc: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
    for r in scored(records) {
        let e = acc.entry(source_of(&r.origin).to_string()).or_default();
        e.0 += 1;
        e.1 += fig(r.stance.score);
        e.2 += fig(r.sentiment.score);
    }
    acc.into_iter()
        .map(|(source, (n, st, se))| SourceStats {
            source,
            articles: n,
            stance: st / n as f64,
            sentiment: se / n as f64,
        })
        .collect()
}

pub fn write_csv(records: &[Record], per_sentence: bool) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let map_err = |e: csv::Error| Error::Usage(format!("csv: {e}"));
    if per_sentence {
        w.write_record([
            "article",
            "source",
            "index",
            "start",
            "end",
            "stance",
            "stance_score",
            "sentiment",
            "sentiment_score",
            "actors",
            "text",
        ])
        .map_err(map_err)?;
        for r in scored(records) {
            for sent in &r.sentences {
                let named: Vec<&str> = actor_names(sent).collect();
                w.write_record([
                    r.id.clone(),
                    source_of(&r.origin).to_string(),
                    sent.index.to_string(),
                    sent.start.to_string(),
                    sent.end.to_string(),
                    sent.stance.label.to_string(),
                    format!("{:.4}", sent.stance.score),
                    sent.sentiment.label.to_string(),
                    format!("{:.4}", sent.sentiment.score),
                    named.join("|"),
                    sent.text.clone(),
                ])
                .map_err(map_err)?;
            }
        }
    } else {
        w.write_record([
            "article",
            "source",
            "lang",
            "sentences",
            "stance",
            "stance_score",
            "sentiment",
            "sentiment_score",
            "regulation",
            "neutral",
            "openness",
            "error",
        ])
        .map_err(map_err)?;
        for r in records {
            let row = match r {
                Record::Scored(a) => {
                    let c = |l| a.counts.get(Task::Stance, l).to_string();
                    [
                        a.id.clone(),
                        source_of(&a.origin).to_string(),
                        a.lang.clone(),
                        a.sentences.len().to_string(),
                        a.stance.label.to_string(),
                        format!("{:.4}", a.stance.score),
                        a.sentiment.label.to_string(),
                        format!("{:.4}", a.sentiment.score),
                        c("regulation"),
                        c("neutral"),
                        c("openness"),
                        String::new(),
                    ]
                }
                Record::Failed(f) => {
                    let mut row: [String; 12] = Default::default();
                    row[0] = f.id.clone();
                    row[1] = source_of(&f.origin).to_string();
                    row[3] = "0".into();
                    row[8] = "0".into();
                    row[9] = "0".into();
                    row[10] = "0".into();
                    row[11] = f.error.clone();
                    row
                }
            };
            w.write_record(&row).map_err(map_err)?;
        }
    }
    w.into_inner().map_err(|e| Error::Usage(format!("csv: {e}")))
}

pub fn write_md(records: &[Record]) -> String {
    let mut o = String::new();
    let ok = scored(records);
    let errors = failures(records);
    let _ = writeln!(
        o,
        "# Stance report\n\n{} articles scored, {} with errors.\n",
        ok.len(),
        errors.len()
    );
    o.push_str(&crate::report::md_article_table(ok.iter().copied(), true));
    let actors = actor_stats(records);
    if !actors.is_empty() {
        let _ = writeln!(
            o,
            "\n## Actors\n\n| actor | sentences | articles | mean stance | spread (sd) |\n|---|---:|---:|---:|---:|"
        );
        for a in &actors {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:+.2} | {:.2} |",
                md_escape(&a.name),
                a.count,
                a.articles,
                a.mean,
                a.std
            );
        }
    }
    let _ = writeln!(
        o,
        "\n## Sources\n\n| source | articles | mean stance | mean sentiment |\n|---|---:|---:|---:|"
    );
    for s in source_stats(records) {
        let _ = writeln!(
            o,
            "| {} | {} | {:+.2} | {:+.2} |",
            md_escape(&s.source),
            s.articles,
            s.stance,
            s.sentiment
        );
    }
    if !errors.is_empty() {
        let _ = writeln!(o, "\n## Errors\n");
        for r in errors {
            let _ = writeln!(o, "- {}: {}", md_escape(&r.id), md_escape(&r.error));
        }
    }
    o
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(t: &str) -> String {
    let mut o = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page's key: one colour per stance side, grey for neutral.
const RED: &str = "#d73027";
const BLUE: &str = "#2c7bb6";
const GREY: &str = "#8c8c8c";

fn label_colour(label: &str) -> &'static str {
    match label {
        "regulation" => RED,
        "openness" => BLUE,
        _ => GREY,
    }
}

fn sign_colour(x: f64) -> &'static str {
    if x < 0.0 {
        RED
    } else if x > 0.0 {
        BLUE
    } else {
        GREY
    }
}

/// A tick label: "0" for zero, no plus sign, no trailing zeros, a true minus sign.
fn tick(v: f64) -> String {
    if v.abs() < 1e-9 {
        return "0".into();
    }
    let t = format!("{:.2}", v.abs());
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if v < 0.0 { format!("−{t}") } else { t.to_string() }
}

/// A score as text: "+0.42", "−0.42", "0.00".
fn signed(v: f64) -> String {
    let t = format!("{:.2}", v.abs());
    if t == "0.00" {
        t
    } else if v < 0.0 {
        format!("−{t}")
    } else {
        format!("+{t}")
    }
}

/// What names a record: its path, or its id where it has none (JSON Lines input).
fn record_path<'a>(id: &'a str, origin: &'a Origin) -> &'a str {
    match origin.path.as_deref() {
        None | Some("") => id,
        Some(p) => p,
    }
}

/// The longest directory shared by all records' paths, with its trailing slash: the
/// report names articles relative to it.
fn common_root(records: &[Record]) -> String {
    let mut root: Option<Vec<&str>> = None;
    for r in records {
        let p = record_path(r.id(), r.origin());
        let dirs: Vec<&str> = p.rfind('/').map_or(Vec::new(), |i| p[..i].split('/').collect());
        root = Some(match root {
            None => dirs,
            Some(cur) => cur.iter().zip(&dirs).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect(),
        });
    }
    let parts = root.unwrap_or_default();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{}/", parts.join("/"))
    }
}

fn short_name<'a>(id: &'a str, origin: &'a Origin, root: &str) -> &'a str {
    let p = record_path(id, origin);
    p.strip_prefix(root).filter(|x| !x.is_empty()).unwrap_or(p)
}

fn truncate(t: &str, n: usize) -> String {
    if t.chars().count() <= n {
        t.to_string()
    } else {
        let mut o: String = t.chars().take(n - 1).collect();
        o.push('…');
        o
    }
}

fn svg_open(id: &str, w: u32, h: u32, label: &str) -> String {
    format!(
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" font-family=\"system-ui,sans-serif\" font-size=\"13\" fill=\"#333\">",
        html_escape(label)
    )
}

/// Articles by stance (x) and sentiment (y): one point per scored article, coloured by
/// its stance label, with its name and scores as a tooltip; a shown article's point
/// links to its text.
fn scatter_svg(ok: &[&ArticleResult], root: &str, max_texts: usize) -> String {
    let (w, h) = (520.0, 400.0);
    let (l, r, t, b) = (60.0, 20.0, 40.0, 56.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let x = |v: f64| l + (v.clamp(-1.0, 1.0) + 1.0) / 2.0 * pw;
    let y = |v: f64| t + (1.0 - (v.clamp(-1.0, 1.0) + 1.0) / 2.0) * ph;
    let mut o = svg_open("scatter", 520, 400, "Articles: stance against sentiment");
    let _ = write!(
        o,
        "<text x=\"{l}\" y=\"22\" font-size=\"15\" font-weight=\"600\">Articles: stance against sentiment</text>"
    );
    for v in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        let (stroke, sw) = if v == 0.0 { ("#999", 1.2) } else { ("#e6e6e6", 1.0) };
        let _ = write!(
            o,
            "<line x1=\"{:.1}\" y1=\"{t}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/><line x1=\"{l}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>",
            x(v),
            x(v),
            t + ph,
            y(v),
            l + pw,
            y(v)
        );
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{}</text>",
            x(v),
            t + ph + 16.0,
            tick(v),
            l - 6.0,
            y(v) + 4.0,
            tick(v)
        );
    }
    let _ = write!(
        o,
        "<rect x=\"{l}\" y=\"{t}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#bbb\"/><text x=\"{l}\" y=\"{:.1}\" fill=\"{RED}\" font-size=\"12\">← regulation</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{BLUE}\" font-size=\"12\">openness →</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">stance score</text><text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">sentiment: negative … positive</text>",
        h - 10.0,
        l + pw,
        h - 10.0,
        l + pw / 2.0,
        h - 10.0,
        t + ph / 2.0
    );
    for (i, r) in ok.iter().enumerate() {
        let (st, se) = (fig(r.stance.score), fig(r.sentiment.score));
        let label = r.stance.label;
        let tip = format!(
            "{}: stance {label} {} · sentiment {} {}",
            short_name(&r.id, &r.origin, root),
            signed(st),
            r.sentiment.label,
            signed(se)
        );
        let dot = format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"7\" fill=\"{}\" fill-opacity=\"0.8\" stroke=\"#fff\" stroke-width=\"1.5\"><title>{}</title></circle>",
            x(st),
            y(se),
            label_colour(label),
            html_escape(&tip)
        );
        if i < max_texts {
            let _ = write!(o, "<a href=\"#a{i}\">{dot}</a>");
        } else {
            o.push_str(&dot);
        }
    }
    o.push_str("</svg>");
    o
}

/// How many articles fall in each tenth of the stance scale: bars left of 0 red,
/// right of 0 blue.
fn histogram_svg(ok: &[&ArticleResult]) -> String {
    let bins = 10usize;
    let mut counts = vec![0usize; bins];
    for x in ok.iter().map(|r| fig(r.stance.score)) {
        counts[(((x.clamp(-1.0, 1.0) + 1.0) / 2.0 * bins as f64) as usize).min(bins - 1)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let step = (max as f64 / 5.0).ceil().max(1.0) as usize;
    let top = max.div_ceil(step) * step;
    let (w, h) = (520.0, 400.0);
    let (l, r, t, b) = (60.0, 20.0, 40.0, 56.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let x = |v: f64| l + (v + 1.0) / 2.0 * pw;
    let y = |c: f64| t + ph - c / top as f64 * ph;
    let mut o = svg_open("histogram", 520, 400, "Articles by stance score");
    let _ = write!(
        o,
        "<text x=\"{l}\" y=\"22\" font-size=\"15\" font-weight=\"600\">Articles by stance score</text>"
    );
    for c in (0..=top).step_by(step) {
        let _ = write!(
            o,
            "<line x1=\"{l}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e6e6e6\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{c}</text>",
            y(c as f64),
            l + pw,
            y(c as f64),
            l - 6.0,
            y(c as f64) + 4.0
        );
    }
    for (k, &c) in counts.iter().enumerate() {
        let lo = -1.0 + 2.0 * k as f64 / bins as f64;
        let hi = lo + 2.0 / bins as f64;
        if c == 0 {
            continue;
        }
        let colour = if hi <= 1e-9 { RED } else { BLUE };
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.8\"><title>stance {} to {}: {c} article{}</title></rect>",
            x(lo) + 1.0,
            y(c as f64),
            x(hi) - x(lo) - 2.0,
            y(0.0) - y(c as f64),
            tick(lo),
            tick(hi),
            if c == 1 { "" } else { "s" }
        );
    }
    for v in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        let _ = write!(
            o,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
            x(v),
            if v == 0.0 { t } else { t + ph },
            x(v),
            t + ph + 4.0,
            if v == 0.0 { "#999" } else { "#bbb" },
            x(v),
            t + ph + 16.0,
            tick(v)
        );
    }
    let _ = write!(
        o,
        "<line x1=\"{l}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#bbb\"/><text x=\"{l}\" y=\"{:.1}\" fill=\"{RED}\" font-size=\"12\">← regulation</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{BLUE}\" font-size=\"12\">openness →</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">article stance score</text><text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">articles</text></svg>",
        t + ph,
        l + pw,
        t + ph,
        h - 10.0,
        l + pw,
        h - 10.0,
        l + pw / 2.0,
        h - 10.0,
        t + ph / 2.0
    );
    o
}

struct Bar {
    label: String,
    n: usize,
    mean: f64,
}

/// The half-width of a chart's symmetric stance axis: the first round value that holds
/// every bar.
fn axis_extent(bars: &[Bar]) -> f64 {
    let m = bars.iter().map(|b| b.mean.abs()).fold(0.0, f64::max);
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]
        .into_iter()
        .find(|&e| m <= e + 1e-9)
        .unwrap_or(1.0)
}

/// Horizontal bars of mean stance, one row each, red left of 0 and blue right of it,
/// each named with its count.
fn bars_svg(id: &str, caption: &str, unit: &str, bars: &[Bar]) -> String {
    let (w, row) = (520.0, 24.0);
    let (l, r, t, b) = (200.0, 60.0, 40.0, 40.0);
    let h = t + b + row * bars.len() as f64;
    let pw = w - l - r;
    let e = axis_extent(bars);
    let x = |v: f64| l + (v.clamp(-e, e) + e) / (2.0 * e) * pw;
    let mut o = svg_open(id, 520, h.ceil() as u32, caption);
    let _ = write!(
        o,
        "<text x=\"8\" y=\"22\" font-size=\"15\" font-weight=\"600\">{}</text>",
        html_escape(caption)
    );
    for v in [-e, -e / 2.0, 0.0, e / 2.0, e] {
        let _ = write!(
            o,
            "<line x1=\"{:.1}\" y1=\"{t}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
            x(v),
            x(v),
            h - b + 4.0,
            if v == 0.0 { "#999" } else { "#e6e6e6" },
            x(v),
            h - b + 18.0,
            tick(v)
        );
    }
    let _ = write!(
        o,
        "<text x=\"{l}\" y=\"{:.1}\" fill=\"{RED}\" font-size=\"12\">← regulation</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{BLUE}\" font-size=\"12\">openness →</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\" fill=\"#666\">mean</text>",
        h - 6.0,
        l + pw,
        h - 6.0,
        w - 6.0,
        t - 6.0
    );
    for (k, bar) in bars.iter().enumerate() {
        let cy = t + row * k as f64 + row / 2.0;
        let (x0, x1) = (x(0.0), x(bar.mean));
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} <tspan fill=\"#777\" font-size=\"12\">({})</tspan></text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.85\"><title>{}: mean stance {} over {} {unit}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{}</text>",
            l - 8.0,
            cy + 4.5,
            html_escape(&truncate(&bar.label, 24)),
            bar.n,
            x0.min(x1),
            cy - row / 2.0 + 4.0,
            (x1 - x0).abs().max(1.0),
            row - 8.0,
            sign_colour(bar.mean),
            html_escape(&bar.label),
            signed(bar.mean),
            bar.n,
            w - 6.0,
            cy + 4.5,
            signed(bar.mean)
        );
    }
    o.push_str("</svg>");
    o
}

/// Vertical bars of mean article stance per month, red below 0 and blue above.
fn months_svg(months: &[Bar]) -> String {
    let (w, h) = (520.0, 300.0);
    let (l, r, t, b) = (60.0, 20.0, 40.0, 56.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let e = axis_extent(months);
    let y = |v: f64| t + (1.0 - (v.clamp(-e, e) + e) / (2.0 * e)) * ph;
    let slot = pw / months.len().max(1) as f64;
    let every = months.len().div_ceil(8).max(1);
    let mut o = svg_open("months", 520, 300, "Mean article stance by month");
    let _ = write!(
        o,
        "<text x=\"{l}\" y=\"22\" font-size=\"15\" font-weight=\"600\">Mean article stance by month</text>"
    );
    for v in [-e, -e / 2.0, 0.0, e / 2.0, e] {
        let _ = write!(
            o,
            "<line x1=\"{l}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{}</text>",
            y(v),
            l + pw,
            y(v),
            if v == 0.0 { "#999" } else { "#e6e6e6" },
            l - 6.0,
            y(v) + 4.0,
            tick(v)
        );
    }
    for (k, m) in months.iter().enumerate() {
        let x0 = l + slot * k as f64;
        let (y0, y1) = (y(0.0), y(m.mean));
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.85\"><title>{}: mean stance {} over {} article{}</title></rect>",
            x0 + slot * 0.15,
            y0.min(y1),
            slot * 0.7,
            (y1 - y0).abs().max(1.0),
            sign_colour(m.mean),
            html_escape(&m.label),
            signed(m.mean),
            m.n,
            if m.n == 1 { "" } else { "s" }
        );
        if k % every == 0 {
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
                x0 + slot / 2.0,
                t + ph + 16.0,
                html_escape(&m.label)
            );
        }
    }
    let _ = write!(
        o,
        "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">mean stance</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">month (articles with a date)</text></svg>",
        t + ph / 2.0,
        l + pw / 2.0,
        h - 10.0
    );
    o
}

/// The month ("2025-03") of a record's `date` field, when it starts with one.
fn month_of(origin: &Origin) -> Option<&str> {
    let d = origin.date()?;
    let m = d.get(..7)?;
    let b = m.as_bytes();
    let month = m.get(5..).and_then(|x| x.parse::<u8>().ok());
    (b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5..].iter().all(u8::is_ascii_digit) && matches!(month, Some(1..=12)))
        .then_some(m)
}

/// Background of a sentence: one colour per side, its strength by the score.
fn shade(score: f64) -> String {
    let a = (score.abs() * 0.55).min(0.55);
    if score >= 0.0 {
        format!("rgba(44,123,182,{a:.2})")
    } else {
        format!("rgba(215,48,39,{a:.2})")
    }
}

/// Whether a sentence ends as running prose does; one that does not (a title, a list
/// item, a heading) ends its line in the shown text.
fn ends_prose(t: &str) -> bool {
    t.trim_end().chars().last().is_some_and(|c| ".!?…;:\"”»’')]".contains(c))
}

/// An article's text as shaded sentences. Records keep each sentence's text and byte
/// span, not the text between sentences: a gap of two bytes or more (a blank line in
/// the source) starts a new paragraph, and a sentence that does not end as prose does
/// ends its line.
fn article_text(o: &mut String, r: &ArticleResult) {
    let mut prev_end: Option<usize> = None;
    let mut open = false;
    let mut line_end = false;
    for sent in &r.sentences {
        let new_par = match prev_end {
            Some(e) => sent.start > e.saturating_add(1),
            None => !open,
        };
        if new_par {
            if open {
                o.push_str("</p>");
            }
            o.push_str("<p>");
            open = true;
        } else if line_end {
            o.push_str("<br>");
        } else {
            o.push(' ');
        }
        let text = sent.text.as_str();
        let st = fig(sent.stance.score);
        let se = fig(sent.sentiment.score);
        let named: Vec<&str> = actor_names(sent).collect();
        let tip = format!(
            "stance {} {} · sentiment {} {}{}",
            sent.stance.label,
            signed(st),
            sent.sentiment.label,
            signed(se),
            if named.is_empty() {
                String::new()
            } else {
                format!(" · {}", named.join(", "))
            }
        );
        let _ = write!(
            o,
            "<span class=\"s\" style=\"background:{}\" title=\"{}\">{}</span>",
            shade(st),
            html_escape(&tip),
            html_escape(text)
        );
        prev_end = Some(sent.end);
        line_end = !ends_prose(text);
    }
    if open {
        o.push_str("</p>");
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:2px solid #eee;padding-bottom:4px}.meta,.note{color:#555}.note{font-style:italic}table{border-collapse:collapse;margin:8px 0 20px}th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}th{cursor:pointer;background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.tile{flex:1 1 150px;background:#f6f6f6;border-left:6px solid #8c8c8c;border-radius:4px;padding:8px 14px}.tile b{display:block;font-size:30px;line-height:1.2}.tile.reg{border-color:#d73027}.tile.open{border-color:#2c7bb6}.tile.fail{border-color:#333}.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:4px 24px}.cols h3{font-size:15px;margin:10px 0 4px}.cols ol,.cols ul{margin:0;padding-left:22px}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px;margin:12px 0}.charts figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:4px}.charts svg{display:block;max-width:100%;height:auto}.art{border-top:1px solid #ccc;margin-top:22px}.art h3{margin:12px 0 2px;font-size:17px}.verdict{margin:0 0 8px;color:#444}.pill{color:#fff;border-radius:10px;padding:1px 8px;font-size:13px}.s{border-radius:3px;padding:1px 0}.key span.k{display:inline-block;width:11px;height:11px;border-radius:50%;margin:0 3px 0 8px;vertical-align:-1px}.key span.sh{padding:2px 6px;border-radius:3px}.err{color:#a00}.up{font-size:13px}";

const SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){var tb=th.closest('table').tBodies[0];var rows=Array.prototype.slice.call(tb.rows);var dir=th.dataset.dir==='asc'?-1:1;th.dataset.dir=dir===1?'asc':'desc';rows.sort(function(a,b){var x=a.cells[i].getAttribute('data-v')||a.cells[i].textContent,y=b.cells[i].getAttribute('data-v')||b.cells[i].textContent;var nx=parseFloat(x),ny=parseFloat(y);return(isNaN(nx)||isNaN(ny)?x.localeCompare(y):nx-ny)*dir;});rows.forEach(function(r){tb.appendChild(r);});});});document.body.setAttribute('data-ready','1');";

/// Standard base64 (with padding), for the script's hash in the page's policy.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                o.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// The Content-Security-Policy source that allows exactly the page's sorting script.
fn script_hash() -> String {
    use sha2::{Digest, Sha256};
    format!("'sha256-{}'", base64(&Sha256::digest(SCRIPT.as_bytes())))
}

/// A link to an article's text when the page shows it, its name alone otherwise.
fn article_ref(i: usize, name: &str, max_texts: usize) -> String {
    if i < max_texts {
        format!("<a href=\"#a{i}\">{}</a>", html_escape(name))
    } else {
        html_escape(name)
    }
}

/// A single self-contained HTML page: no network (a Content-Security-Policy forbids it,
/// and allows only the page's own table-sorting script, by its hash; the page reads
/// the same without it), all article text escaped, charts inline SVG.
pub fn write_html(records: &[Record], title: &str, max_texts: usize) -> Result<String> {
    let ok = scored(records);
    let errors = failures(records);
    let root = common_root(records);
    let n_sent: usize = ok.iter().map(|r| r.sentences.len()).sum();
    let score = |r: &ArticleResult| fig(r.stance.score);
    let short = |r: &'_ ArticleResult| short_name(&r.id, &r.origin, &root).to_string();
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src {}; img-src data:; base-uri 'none'; form-action 'none'\"><title>{}</title><style>{STYLE}</style></head><body>",
        script_hash(),
        html_escape(title)
    );
    let _ = write!(
        o,
        "<h1>{}</h1><p class=\"meta\">{} articles scored ({} sentences), {} with errors{}.</p>",
        html_escape(title),
        ok.len(),
        n_sent,
        errors.len(),
        if root.is_empty() {
            String::new()
        } else {
            format!("; files under <code>{}</code>", html_escape(&root))
        }
    );

    // Summary: how the articles lean, the strongest of each side, the actors of each side.
    let lean = |label: &str| ok.iter().filter(|r| r.stance.label == label).count();
    let _ = write!(
        o,
        "<section id=\"summary\"><h2>Summary</h2><div class=\"tiles\"><div class=\"tile reg\" id=\"n-regulation\"><b>{}</b>lean to regulation</div><div class=\"tile\" id=\"n-neutral\"><b>{}</b>neutral</div><div class=\"tile open\" id=\"n-openness\"><b>{}</b>lean to openness</div><div class=\"tile fail\" id=\"n-errors\"><b>{}</b>could not be scored</div></div>",
        lean("regulation"),
        lean("neutral"),
        lean("openness"),
        errors.len()
    );
    let mut order: Vec<usize> = (0..ok.len()).collect();
    order.sort_by(|&a, &b| score(ok[a]).total_cmp(&score(ok[b])).then(a.cmp(&b)));
    let strongest = |idx: Vec<usize>| {
        let mut l = String::new();
        for i in idx.into_iter().take(3) {
            let _ = write!(
                l,
                "<li>{} <b style=\"color:{}\">{}</b> <span class=\"meta\">{}</span></li>",
                article_ref(i, &short(ok[i]), max_texts),
                sign_colour(score(ok[i])),
                signed(score(ok[i])),
                html_escape(source_of(&ok[i].origin))
            );
        }
        if l.is_empty() {
            "<p class=\"note\">none</p>".to_string()
        } else {
            format!("<ol>{l}</ol>")
        }
    };
    let _ = write!(
        o,
        "<div class=\"cols\"><div><h3>Strongest for regulation</h3>{}</div><div><h3>Strongest for openness</h3>{}</div></div>",
        strongest(order.iter().copied().filter(|&i| score(ok[i]) < 0.0).collect()),
        strongest(order.iter().rev().copied().filter(|&i| score(ok[i]) > 0.0).collect())
    );
    let actors = actor_stats(records);
    let side = |neg: bool| {
        let mut l = String::new();
        for a in actors.iter().filter(|a| if neg { a.mean < 0.0 } else { a.mean > 0.0 }).take(5) {
            let _ = write!(
                l,
                "<li>{} <b style=\"color:{}\">{}</b> <span class=\"meta\">{} sentences in {} article{}</span></li>",
                html_escape(&a.name),
                sign_colour(a.mean),
                signed(a.mean),
                a.count,
                a.articles,
                if a.articles == 1 { "" } else { "s" }
            );
        }
        if l.is_empty() {
            "<p class=\"note\">none</p>".to_string()
        } else {
            format!("<ol>{l}</ol>")
        }
    };
    let _ = write!(
        o,
        "<div class=\"cols\"><div><h3>Actors most often on the regulation side</h3>{}</div><div><h3>Actors most often on the openness side</h3>{}</div></div></section>",
        side(true),
        side(false)
    );

    // Charts.
    let _ = write!(
        o,
        "<h2>Charts</h2><p class=\"key\">Key:<span class=\"k\" style=\"background:{RED}\"></span>regulation<span class=\"k\" style=\"background:{GREY}\"></span>neutral<span class=\"k\" style=\"background:{BLUE}\"></span>openness. Hover a point or a bar for its numbers; click a point to read the article.</p><div class=\"charts\" id=\"charts\"><figure>{}</figure><figure>{}</figure>",
        scatter_svg(&ok, &root, max_texts),
        histogram_svg(&ok)
    );
    let mut sources: Vec<Bar> = source_stats(records)
        .into_iter()
        .map(|x| Bar {
            label: if x.source.is_empty() { "(no source)".into() } else { x.source },
            n: x.articles,
            mean: x.stance,
        })
        .collect();
    sources.sort_by(|a, b| b.n.cmp(&a.n).then(a.label.cmp(&b.label)));
    sources.truncate(12);
    if !sources.is_empty() {
        let _ = write!(
            o,
            "<figure>{}</figure>",
            bars_svg("by-source", "Mean article stance by source (articles)", "articles", &sources)
        );
    }
    let mut by_actor: Vec<&ActorStats> = actors.iter().collect();
    by_actor.sort_by(|a, b| b.articles.cmp(&a.articles).then(b.count.cmp(&a.count)).then(a.name.cmp(&b.name)));
    let by_actor: Vec<Bar> = by_actor
        .into_iter()
        .take(12)
        .map(|a| Bar {
            label: a.name.clone(),
            n: a.articles,
            mean: a.mean,
        })
        .collect();
    if !by_actor.is_empty() {
        let _ = write!(
            o,
            "<figure>{}</figure>",
            bars_svg("by-actor", "Mean sentence stance by actor (articles)", "articles", &by_actor)
        );
    }
    let mut months: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for r in &ok {
        if let Some(m) = month_of(&r.origin) {
            let e = months.entry(m).or_default();
            e.0 += 1;
            e.1 += score(r);
        }
    }
    let months: Vec<Bar> = months
        .into_iter()
        .map(|(m, (n, sum))| Bar {
            label: m.to_string(),
            n,
            mean: sum / n as f64,
        })
        .collect();
    if !months.is_empty() {
        let _ = write!(o, "<figure>{}</figure>", months_svg(&months));
    }
    o.push_str("</div>");
    if months.is_empty() {
        o.push_str("<p class=\"note\">No dates in the input: no chart of stance over time.</p>");
    }

    // The articles table.
    let _ = write!(o, "<h2>Articles</h2>");
    if ok.len() > max_texts {
        let _ = write!(
            o,
            "<p class=\"note\" id=\"texts-note\">Texts shown for the first {} of {} articles (raise with --html-texts); the other rows are not links.</p>",
            max_texts,
            ok.len()
        );
    }
    let _ = write!(
        o,
        "<table class=\"sortable\" id=\"articles\"><thead><tr><th>article</th><th>source</th><th>lang</th><th>sentences</th><th>stance</th><th>score</th><th>sentiment</th><th>score</th><th>reg / neu / open</th></tr></thead><tbody>"
    );
    for (i, r) in ok.iter().enumerate() {
        let n = r.sentences.len();
        let (st, se) = (score(r), fig(r.sentiment.score));
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{n}</td><td style=\"color:{}\">{}</td><td class=\"n\" data-v=\"{st:.4}\">{}</td><td>{}</td><td class=\"n\" data-v=\"{se:.4}\">{}</td><td class=\"n\">{} / {} / {}</td></tr>",
            article_ref(i, &short(r), max_texts),
            html_escape(source_of(&r.origin)),
            html_escape(&r.lang),
            label_colour(r.stance.label),
            html_escape(r.stance.label),
            signed(st),
            html_escape(r.sentiment.label),
            signed(se),
            r.counts.get(Task::Stance, "regulation"),
            r.counts.get(Task::Stance, "neutral"),
            r.counts.get(Task::Stance, "openness")
        );
    }
    let _ = write!(o, "</tbody></table>");
    let _ = write!(
        o,
        "<h2>Actors</h2><table class=\"sortable\" id=\"actors\"><thead><tr><th>actor</th><th>sentences</th><th>articles</th><th>mean stance</th><th>spread (sd)</th></tr></thead><tbody>"
    );
    for a in &actors {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\" data-v=\"{:.4}\">{}</td><td class=\"n\">{:.2}</td></tr>",
            html_escape(&a.name),
            a.count,
            a.articles,
            a.mean,
            signed(a.mean),
            a.std
        );
    }
    let _ = write!(
        o,
        "</tbody></table><h2>Sources</h2><table class=\"sortable\" id=\"sources\"><thead><tr><th>source</th><th>articles</th><th>mean stance</th><th>mean sentiment</th></tr></thead><tbody>"
    );
    for s in source_stats(records) {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\" data-v=\"{:.4}\">{}</td><td class=\"n\" data-v=\"{:.4}\">{}</td></tr>",
            html_escape(&s.source),
            s.articles,
            s.stance,
            signed(s.stance),
            s.sentiment,
            signed(s.sentiment)
        );
    }
    let _ = write!(o, "</tbody></table>");
    if !errors.is_empty() {
        let _ = write!(o, "<h2>Errors</h2><ul class=\"err\" id=\"errors\">");
        for r in &errors {
            let _ = write!(
                o,
                "<li>{}: {}</li>",
                html_escape(short_name(&r.id, &r.origin, &root)),
                html_escape(&r.error)
            );
        }
        let _ = write!(o, "</ul>");
    }

    // The texts.
    let _ = write!(
        o,
        "<h2 id=\"texts\">Texts</h2><p class=\"key\">Shading: <span class=\"sh\" style=\"background:{}\">regulation</span> <span class=\"sh\" style=\"background:{}\">openness</span>; stronger colour, stronger stance. Hover a sentence for its scores.</p>",
        shade(-1.0),
        shade(1.0)
    );
    if ok.len() > max_texts {
        let _ = write!(
            o,
            "<p class=\"note\">Texts shown for the first {max_texts} of {} articles (raise with --html-texts).</p>",
            ok.len()
        );
    }
    for (i, r) in ok.iter().enumerate().take(max_texts) {
        let (st, se) = (score(r), fig(r.sentiment.score));
        let label = r.stance.label;
        let mut meta = vec![format!("{} sentences", r.sentences.len())];
        for k in [source_of(&r.origin), r.lang.as_str(), r.origin.date().unwrap_or("")] {
            if !k.is_empty() {
                meta.push(html_escape(k));
            }
        }
        let _ = write!(
            o,
            "<section class=\"art\" id=\"a{i}\"><h3>{}</h3><p class=\"verdict\"><span class=\"pill\" style=\"background:{}\">stance: {} {}</span> sentiment: {} {} · {} · <a class=\"up\" href=\"#summary\">summary ↑</a></p>",
            html_escape(&short(r)),
            label_colour(label),
            html_escape(label),
            signed(st),
            html_escape(r.sentiment.label),
            signed(se),
            meta.join(" · ")
        );
        article_text(&mut o, r);
        o.push_str("</section>");
    }
    let _ = write!(o, "<script>{SCRIPT}</script></body></html>\n");
    Ok(o)
}

/// Renders records in a report format (JSON Lines: one record per line, sorted by id).
pub fn render(records: &[Record], format: BatchFormat, per_sentence: bool, max_texts: usize) -> Result<Vec<u8>> {
    Ok(match format {
        BatchFormat::Jsonl => {
            let mut o = Vec::new();
            for r in records {
                serde_json::to_writer(&mut o, r).map_err(|e| Error::Usage(e.to_string()))?;
                o.push(b'\n');
            }
            o
        }
        BatchFormat::Csv => write_csv(records, per_sentence)?,
        BatchFormat::Md => write_md(records).into_bytes(),
        BatchFormat::Html => write_html(records, "Stance report", max_texts)?.into_bytes(),
    })
}

/// Reads JSONL streams back into records (for `report merge` and resumed runs); a bad
/// line is an error naming the file and line.
pub fn read_records(path: &std::path::Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v.get("id").is_none() => return Err(Error::data(path, i + 1, "record has no \"id\"")),
            Ok(v) => {
                out.push(serde_json::from_value(v).map_err(|e| Error::data(path, i + 1, format!("not a record of `stance batch`: {e}")))?)
            }
            // A torn last line (a killed run) is skipped; a bad line elsewhere is an error.
            Err(_) if i + 1 == text.lines().count() && !text.ends_with('\n') => {}
            Err(e) => return Err(Error::data(path, i + 1, format!("not valid JSON: {e}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_ticks() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let labels: Vec<String> = [-1.0, -0.5, 0.0, 0.25, 1.0].into_iter().map(tick).collect();
        assert_eq!(labels, ["−1", "−0.5", "0", "0.25", "1"]);
        assert_eq!(
            (signed(-0.004), signed(0.42), signed(-0.42)),
            ("0.00".into(), "+0.42".into(), "−0.42".into())
        );
    }

    fn failed(id: &str, path: Option<&str>, date: &str) -> Record {
        let fields = serde_json::json!({ "date": date }).as_object().cloned().unwrap_or_default();
        Record::Failed(FailedArticle {
            id: id.into(),
            error: "x".into(),
            origin: Origin::carry(None, path.map(Into::into), fields),
            warnings: Vec::new(),
        })
    }

    #[test]
    fn names_relative_to_the_common_folder_and_months() {
        let recs = vec![
            failed("/d/news/x/a.txt", Some("/d/news/x/a.txt"), "2025-03-14"),
            failed("/d/news/y/b.txt", None, "2025-13-01"),
        ];
        let root = common_root(&recs);
        assert_eq!(root, "/d/news/");
        let short = |r: &Record| short_name(r.id(), r.origin(), &root).to_string();
        assert_eq!((short(&recs[0]), short(&recs[1])), ("x/a.txt".to_string(), "y/b.txt".to_string()));
        assert_eq!(common_root(&[failed("a", None, ""), failed("b", None, "")]), "");
        assert_eq!((month_of(recs[0].origin()), month_of(recs[1].origin())), (Some("2025-03"), None));
    }

    #[test]
    fn records_read_back_as_they_were_written() {
        // A failed record keeps the input's own fields; a record's own names are not carried.
        let fields = serde_json::json!({ "date": "2025-01-02", "url": "u", "stance": "x" })
            .as_object()
            .cloned()
            .unwrap_or_default();
        let rec = Record::Failed(FailedArticle {
            id: "a".into(),
            error: "a: empty".into(),
            origin: Origin::carry(Some("feed".into()), None, fields),
            warnings: Vec::new(),
        });
        let line = serde_json::to_string(&rec).unwrap();
        assert!(!line.contains("\"stance\""), "{line}");
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.origin().date(), Some("2025-01-02"));
        // A record of an earlier version whose input carried fields under the record's
        // names (a scraper's `error`, a numeric `source`): still a scored article, the
        // input's fields kept as `input_NAME`; figures held at 4 decimals.
        let old = r#"{"counts":{"sentiment":{},"stance":{}},"error":"timeout","explain":{"openness":[],"regulation":[]},"id":"c","lang":"en","sentences":[],"sentiment":{"label":"neutral","probs":{"negative":0.2,"neutral":0.6,"positive":0.2},"score":0.0},"source":5,"stance":{"label":"openness","probs":{"neutral":0.3,"openness":0.512345,"regulation":0.187655},"score":0.32469}}"#;
        let Record::Scored(a) = serde_json::from_str::<Record>(old).unwrap() else {
            panic!("an old scored record read as failed")
        };
        assert_eq!(a.origin.fields.get("input_error"), Some(&serde_json::json!("timeout")));
        assert_eq!(a.origin.fields.get("input_source"), Some(&serde_json::json!(5)));
        assert_eq!((a.stance.score, a.stance.probs.values[2]), (0.3247, 0.5123));
        // A scored record with an unknown label is refused, not given a new label.
        let bad =
            r#"{"id":"b","lang":"en","stance":{"label":"maybe","score":0.1,"probs":{"regulation":0.2,"neutral":0.5,"openness":0.3}}}"#;
        assert!(serde_json::from_str::<Record>(bad).is_err());
    }
}
