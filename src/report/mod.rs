//! The report stage: article results out, as a table for people or JSON, JSON Lines,
//! CSV and Markdown for machines and documents.

pub mod batch;

use std::io::Write;

use crate::pipeline::ArticleResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
    Md,
}

fn pct(x: f32) -> String {
    format!("{:+.2}", x)
}

/// Shortens text for one table cell, on a character boundary.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

pub fn write_table(w: &mut impl Write, arts: &[ArticleResult], explain: usize) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<34} {:<4} {:>5}  {:<22} {:<20} {:>12}",
        "article", "lang", "sent.", "stance (score)", "sentiment (score)", "reg/neu/open"
    )?;
    for a in arts {
        let c = &a.counts.stance;
        writeln!(
            w,
            "{:<34} {:<4} {:>5}  {:<22} {:<20} {:>12}",
            clip(&a.id, 34),
            a.lang,
            a.sentences.len(),
            format!("{} ({})", a.stance.label, pct(a.stance.score)),
            format!("{} ({})", a.sentiment.label, pct(a.sentiment.score)),
            format!("{}/{}/{}", c["regulation"], c["neutral"], c["openness"]),
        )?;
        if explain > 0 {
            for (side, pulls) in [("openness", &a.explain.openness), ("regulation", &a.explain.regulation)] {
                for p in pulls.iter().take(explain) {
                    writeln!(w, "    {side:<10} {} #{:<3} {}", pct(p.score), p.index, clip(&p.text, 110))?;
                }
            }
        }
    }
    Ok(())
}

pub fn write_csv(w: &mut impl Write, arts: &[ArticleResult]) -> std::io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record([
        "article",
        "lang",
        "index",
        "start",
        "end",
        "stance",
        "stance_score",
        "p_regulation",
        "p_neutral",
        "p_openness",
        "sentiment",
        "sentiment_score",
        "p_negative",
        "p_neutral_sentiment",
        "p_positive",
        "text",
    ])?;
    for a in arts {
        for s in &a.sentences {
            let f = |x: f32| format!("{:.4}", x);
            c.write_record([
                a.id.clone(),
                a.lang.clone(),
                s.index.to_string(),
                s.start.to_string(),
                s.end.to_string(),
                s.stance.label.to_string(),
                f(s.stance.score),
                f(s.stance.probs.values[0]),
                f(s.stance.probs.values[1]),
                f(s.stance.probs.values[2]),
                s.sentiment.label.to_string(),
                f(s.sentiment.score),
                f(s.sentiment.probs.values[0]),
                f(s.sentiment.probs.values[1]),
                f(s.sentiment.probs.values[2]),
                s.text.clone(),
            ])?;
        }
    }
    c.flush()?;
    Ok(())
}

/// Escapes text for a Markdown table cell: no markup, no HTML, no table breaks.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' | '(' | ')' | '~' => {
                out.push('\\');
                out.push(ch)
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The Markdown table of articles, as `classify --format md` and the batch Markdown
/// report both write it; `with_source` adds the source column (batch).
pub fn md_article_table<'a>(arts: impl IntoIterator<Item = &'a ArticleResult>, with_source: bool) -> String {
    use std::fmt::Write as _;
    let fig = |x: f32| crate::aggregate::round_f64(x);
    let src = if with_source { " source |" } else { "" };
    let src_rule = if with_source { "---|" } else { "" };
    let mut o = format!(
        "| article |{src} lang | sentences | stance | score | sentiment | score | regulation / neutral / openness |\n|---|{src_rule}---|---:|---|---:|---|---:|---|\n"
    );
    for a in arts {
        let src = if with_source {
            format!(" {} |", md_escape(a.origin.source.as_deref().unwrap_or("")))
        } else {
            String::new()
        };
        let c = |l| a.counts.get(crate::data::Task::Stance, l);
        let _ = writeln!(
            o,
            "| {} |{src} {} | {} | {} | {:+.2} | {} | {:+.2} | {} / {} / {} |",
            md_escape(&a.id),
            md_escape(&a.lang),
            a.sentences.len(),
            a.stance.label,
            fig(a.stance.score),
            a.sentiment.label,
            fig(a.sentiment.score),
            c("regulation"),
            c("neutral"),
            c("openness")
        );
    }
    o
}

pub fn write_md(w: &mut impl Write, arts: &[ArticleResult], explain: usize) -> std::io::Result<()> {
    w.write_all(md_article_table(arts, false).as_bytes())?;
    if explain > 0 {
        for a in arts {
            writeln!(w, "\n#### {}\n", md_escape(&a.id))?;
            for (side, pulls) in [("openness", &a.explain.openness), ("regulation", &a.explain.regulation)] {
                for p in pulls.iter().take(explain) {
                    writeln!(w, "- **{side}** {}: {}", pct(p.score), md_escape(&p.text))?;
                }
            }
        }
    }
    Ok(())
}

pub fn write(w: &mut impl Write, format: Format, arts: &[ArticleResult], explain: usize) -> std::io::Result<()> {
    match format {
        Format::Table => write_table(w, arts, explain),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, arts)?;
            writeln!(w)
        }
        Format::Jsonl => {
            for a in arts {
                serde_json::to_writer(&mut *w, a)?;
                writeln!(w)?;
            }
            Ok(())
        }
        Format::Csv => write_csv(w, arts),
        Format::Md => write_md(w, arts, explain),
    }
}
