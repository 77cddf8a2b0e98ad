//! Reports over many articles, built from batch records (JSON values, as streamed in
//! JSON Lines): CSV, Markdown and a self-contained HTML page. The same code builds the
//! report of one run, a resumed run, or merged shards, always with articles sorted by
//! id, so that equal inputs give byte-identical reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::error::{Error, Result};
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
pub fn normalise(records: Vec<Value>) -> Vec<Value> {
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for r in records {
        let id = r.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        by_id.insert(id, r);
    }
    by_id.into_values().collect()
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

/// A record's sentences (none for a failed article).
fn sentences(record: &Value) -> impl Iterator<Item = &Value> {
    record.get("sentences").and_then(Value::as_array).into_iter().flatten()
}

/// The actors named in a sentence.
fn actor_names(sentence: &Value) -> impl Iterator<Item = &str> {
    sentence
        .get("actors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(x) => cur = x,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

pub struct ActorStats {
    pub name: String,
    pub count: usize,
    pub mean: f64,
    pub std: f64,
    pub articles: usize,
}

/// Each actor's mean sentence stance, its spread and its count, over all articles.
pub fn actor_stats(records: &[Value]) -> Vec<ActorStats> {
    let mut acc: BTreeMap<String, (Vec<f64>, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for r in records {
        let id = s(r, &["id"]).to_string();
        for sent in sentences(r) {
            let score = f(sent, &["stance", "score"]).unwrap_or(0.0);
            for a in actor_names(sent) {
                let e = acc.entry(a.to_string()).or_default();
                e.0.push(score);
                e.1.insert(id.clone());
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

pub fn source_stats(records: &[Value]) -> Vec<SourceStats> {
    let mut acc: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
    for r in records.iter().filter(|r| r.get("error").is_none()) {
        let e = acc.entry(s(r, &["source"]).to_string()).or_default();
        e.0 += 1;
        e.1 += f(r, &["stance", "score"]).unwrap_or(0.0);
        e.2 += f(r, &["sentiment", "score"]).unwrap_or(0.0);
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

fn count(r: &Value, task: &str, label: &str) -> u64 {
    r.get("counts")
        .and_then(|c| c.get(task))
        .and_then(|c| c.get(label))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

pub fn write_csv(records: &[Value], per_sentence: bool) -> Result<Vec<u8>> {
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
        for r in records {
            for sent in sentences(r) {
                let named: Vec<&str> = actor_names(sent).collect();
                w.write_record([
                    s(r, &["id"]).to_string(),
                    s(r, &["source"]).to_string(),
                    sent["index"].to_string(),
                    sent["start"].to_string(),
                    sent["end"].to_string(),
                    s(sent, &["stance", "label"]).to_string(),
                    format!("{:.4}", f(sent, &["stance", "score"]).unwrap_or(0.0)),
                    s(sent, &["sentiment", "label"]).to_string(),
                    format!("{:.4}", f(sent, &["sentiment", "score"]).unwrap_or(0.0)),
                    named.join("|"),
                    s(sent, &["text"]).to_string(),
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
            let n = r.get("sentences").and_then(Value::as_array).map_or(0, Vec::len);
            let num = |p: &[&str]| f(r, p).map_or(String::new(), |x| format!("{x:.4}"));
            w.write_record([
                s(r, &["id"]).to_string(),
                s(r, &["source"]).to_string(),
                s(r, &["lang"]).to_string(),
                n.to_string(),
                s(r, &["stance", "label"]).to_string(),
                num(&["stance", "score"]),
                s(r, &["sentiment", "label"]).to_string(),
                num(&["sentiment", "score"]),
                count(r, "stance", "regulation").to_string(),
                count(r, "stance", "neutral").to_string(),
                count(r, "stance", "openness").to_string(),
                s(r, &["error"]).to_string(),
            ])
            .map_err(map_err)?;
        }
    }
    w.into_inner().map_err(|e| Error::Usage(format!("csv: {e}")))
}

pub fn write_md(records: &[Value]) -> String {
    let mut o = String::new();
    let ok: Vec<&Value> = records.iter().filter(|r| r.get("error").is_none()).collect();
    let errors: Vec<&Value> = records.iter().filter(|r| r.get("error").is_some()).collect();
    let _ = writeln!(
        o,
        "# Stance report\n\n{} articles scored, {} with errors.\n",
        ok.len(),
        errors.len()
    );
    let _ = writeln!(
        o,
        "| article | source | lang | sentences | stance | score | sentiment | score | reg / neu / open |\n|---|---|---|---:|---|---:|---|---:|---|"
    );
    for r in &ok {
        let n = r.get("sentences").and_then(Value::as_array).map_or(0, Vec::len);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {:+.2} | {} | {:+.2} | {} / {} / {} |",
            md_escape(s(r, &["id"])),
            md_escape(s(r, &["source"])),
            md_escape(s(r, &["lang"])),
            n,
            s(r, &["stance", "label"]),
            f(r, &["stance", "score"]).unwrap_or(0.0),
            s(r, &["sentiment", "label"]),
            f(r, &["sentiment", "score"]).unwrap_or(0.0),
            count(r, "stance", "regulation"),
            count(r, "stance", "neutral"),
            count(r, "stance", "openness")
        );
    }
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
            let _ = writeln!(o, "- {}: {}", md_escape(s(r, &["id"])), md_escape(s(r, &["error"])));
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

fn scatter_svg(records: &[Value]) -> Result<String> {
    use plotters::prelude::*;
    let pts: Vec<(f32, f32)> = records
        .iter()
        .filter(|r| r.get("error").is_none())
        .map(|r| {
            (
                f(r, &["stance", "score"]).unwrap_or(0.0) as f32,
                f(r, &["sentiment", "score"]).unwrap_or(0.0) as f32,
            )
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 420)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| Error::Usage(format!("chart: {e}"));
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Articles: stance against sentiment", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(-1f32..1f32, -1f32..1f32)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("stance: regulation (−1) … openness (+1)")
            .y_desc("sentiment: negative … positive")
            .draw()
            .map_err(e)?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&(x, y)| Circle::new((x, y), 5, RGBColor(44, 123, 182).mix(0.6).filled())),
            )
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

fn histogram_svg(records: &[Value]) -> Result<String> {
    use plotters::prelude::*;
    let bins = 20u32;
    let mut counts = vec![0u32; bins as usize];
    for x in records.iter().flat_map(sentences).filter_map(|s| f(s, &["stance", "score"])) {
        counts[(((x + 1.0) / 2.0 * bins as f64) as usize).min(bins as usize - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 420)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| Error::Usage(format!("chart: {e}"));
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Sentence stance scores", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d((0u32..bins).into_segmented(), 0u32..top + top / 10 + 1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("stance score, regulation (−1) … openness (+1)")
            .y_desc("sentences")
            .x_label_formatter(&|v| match v {
                SegmentValue::Exact(b) | SegmentValue::CenterOf(b) => format!("{:+.1}", *b as f64 * 2.0 / bins as f64 - 1.0),
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(e)?;
        chart
            // The bars drawn from the counted bins, in bin order: plotters' `Histogram`
            // would count the values again in a hash map and draw the bars in a
            // different order on every run. Same geometry (1-pixel side margins).
            .draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(b, &c)| {
                let b = b as u32;
                let mut bar = Rectangle::new(
                    [(SegmentValue::Exact(b), c), (SegmentValue::Exact(b + 1), 0)],
                    RGBColor(120, 120, 120).mix(0.7).filled(),
                );
                bar.set_margin(0, 0, 1, 1);
                bar
            }))
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
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

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}th{cursor:pointer;background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}.charts{display:flex;flex-wrap:wrap;gap:12px}.art{border-top:1px solid #ccc;margin-top:18px}.s{border-radius:3px;padding:1px 0}.key span{padding:2px 6px;border-radius:3px}.err{color:#a00}";

const SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){var tb=th.closest('table').tBodies[0];var rows=Array.prototype.slice.call(tb.rows);var dir=th.dataset.dir==='asc'?-1:1;th.dataset.dir=dir===1?'asc':'desc';rows.sort(function(a,b){var x=a.cells[i].getAttribute('data-v')||a.cells[i].textContent,y=b.cells[i].getAttribute('data-v')||b.cells[i].textContent;var nx=parseFloat(x),ny=parseFloat(y);return(isNaN(nx)||isNaN(ny)?x.localeCompare(y):nx-ny)*dir;});rows.forEach(function(r){tb.appendChild(r);});});});document.body.setAttribute('data-ready','1');";

/// A single self-contained HTML page: no network (a Content-Security-Policy forbids it),
/// all article text escaped, charts inline SVG drawn by plotters.
pub fn write_html(records: &[Value], title: &str, max_texts: usize) -> Result<String> {
    let ok: Vec<&Value> = records.iter().filter(|r| r.get("error").is_none()).collect();
    let errors: Vec<&Value> = records.iter().filter(|r| r.get("error").is_some()).collect();
    let n_sent: usize = ok
        .iter()
        .map(|r| r.get("sentences").and_then(Value::as_array).map_or(0, Vec::len))
        .sum();
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\"><title>{}</title><style>{STYLE}</style></head><body>",
        html_escape(title)
    );
    let _ = write!(
        o,
        "<h1>{}</h1><p>{} articles, {} sentences, {} errors.</p>",
        html_escape(title),
        ok.len(),
        n_sent,
        errors.len()
    );
    let _ = write!(
        o,
        "<p class=\"key\">Shading: <span style=\"background:{}\">regulation</span> <span style=\"background:{}\">openness</span>; stronger colour, stronger stance. Hover a sentence for its scores.</p>",
        shade(-1.0),
        shade(1.0)
    );
    let _ = write!(
        o,
        "<div class=\"charts\" id=\"charts\">{}{}</div>",
        scatter_svg(records)?,
        histogram_svg(records)?
    );
    let _ = write!(
        o,
        "<h2>Articles</h2><table class=\"sortable\" id=\"articles\"><thead><tr><th>article</th><th>source</th><th>lang</th><th>sentences</th><th>stance</th><th>score</th><th>sentiment</th><th>score</th><th>reg / neu / open</th></tr></thead><tbody>"
    );
    for (i, r) in ok.iter().enumerate() {
        let n = r.get("sentences").and_then(Value::as_array).map_or(0, Vec::len);
        let (st, se) = (
            f(r, &["stance", "score"]).unwrap_or(0.0),
            f(r, &["sentiment", "score"]).unwrap_or(0.0),
        );
        let _ = write!(
            o,
            "<tr><td><a href=\"#a{i}\">{}</a></td><td>{}</td><td>{}</td><td class=\"n\">{n}</td><td>{}</td><td class=\"n\" data-v=\"{st:.4}\">{st:+.2}</td><td>{}</td><td class=\"n\" data-v=\"{se:.4}\">{se:+.2}</td><td class=\"n\">{} / {} / {}</td></tr>",
            html_escape(s(r, &["id"])),
            html_escape(s(r, &["source"])),
            html_escape(s(r, &["lang"])),
            html_escape(s(r, &["stance", "label"])),
            html_escape(s(r, &["sentiment", "label"])),
            count(r, "stance", "regulation"),
            count(r, "stance", "neutral"),
            count(r, "stance", "openness")
        );
    }
    let _ = write!(o, "</tbody></table>");
    let actors = actor_stats(records);
    let _ = write!(
        o,
        "<h2>Actors</h2><table class=\"sortable\" id=\"actors\"><thead><tr><th>actor</th><th>sentences</th><th>articles</th><th>mean stance</th><th>spread (sd)</th></tr></thead><tbody>"
    );
    for a in &actors {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\" data-v=\"{:.4}\">{:+.2}</td><td class=\"n\">{:.2}</td></tr>",
            html_escape(&a.name),
            a.count,
            a.articles,
            a.mean,
            a.mean,
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
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\" data-v=\"{:.4}\">{:+.2}</td><td class=\"n\" data-v=\"{:.4}\">{:+.2}</td></tr>",
            html_escape(&s.source),
            s.articles,
            s.stance,
            s.stance,
            s.sentiment,
            s.sentiment
        );
    }
    let _ = write!(o, "</tbody></table>");
    if !errors.is_empty() {
        let _ = write!(o, "<h2>Errors</h2><ul class=\"err\" id=\"errors\">");
        for r in &errors {
            let _ = write!(o, "<li>{}: {}</li>", html_escape(s(r, &["id"])), html_escape(s(r, &["error"])));
        }
        let _ = write!(o, "</ul>");
    }
    let _ = write!(o, "<h2>Texts</h2>");
    if ok.len() > max_texts {
        let _ = write!(
            o,
            "<p>The first {max_texts} of {} articles (raise with --html-texts).</p>",
            ok.len()
        );
    }
    for (i, r) in ok.iter().enumerate().take(max_texts) {
        let _ = write!(o, "<div class=\"art\" id=\"a{i}\"><h3>{}</h3><p>", html_escape(s(r, &["id"])));
        for sent in sentences(r) {
            let st = f(sent, &["stance", "score"]).unwrap_or(0.0);
            let se = f(sent, &["sentiment", "score"]).unwrap_or(0.0);
            let named: Vec<&str> = actor_names(sent).collect();
            let tip = format!(
                "stance {} {st:+.2} · sentiment {} {se:+.2}{}",
                s(sent, &["stance", "label"]),
                s(sent, &["sentiment", "label"]),
                if named.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", named.join(", "))
                }
            );
            let _ = write!(
                o,
                "<span class=\"s\" style=\"background:{}\" title=\"{}\">{}</span> ",
                shade(st),
                html_escape(&tip),
                html_escape(s(sent, &["text"]))
            );
        }
        let _ = write!(o, "</p></div>");
    }
    let _ = write!(o, "<script>{SCRIPT}</script></body></html>\n");
    Ok(o)
}

/// Renders records in a report format (JSON Lines: one record per line, sorted by id).
pub fn render(records: &[Value], format: BatchFormat, per_sentence: bool, max_texts: usize) -> Result<Vec<u8>> {
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
pub fn read_records(path: &std::path::Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("id").is_some() => out.push(v),
            Ok(_) => return Err(Error::data(path, i + 1, "record has no \"id\"")),
            // A torn last line (a killed run) is skipped; a bad line elsewhere is an error.
            Err(_) if i + 1 == text.lines().count() && !text.ends_with('\n') => {}
            Err(e) => return Err(Error::data(path, i + 1, format!("not valid JSON: {e}"))),
        }
    }
    Ok(out)
}
