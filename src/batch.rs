//! `stance batch`: many articles in (files, folders, JSON Lines), one record per article
//! out, streamed as JSON Lines as it goes, and a whole report at the end.
//!
//! Records are typed ([`Record`]) and read back from any JSONL stream the same way, so
//! the same code serves one run, a resumed run and merged shards.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::actors::Gazetteer;
use crate::error::{Error, Result};
use crate::input::{self, ReadOptions};
use crate::pipeline::{FailedArticle, Origin, Record, Scorer};
use crate::segment::{self, Segmenter};

/// One article to score: from a file, or a line of JSON Lines input.
#[derive(Debug, Clone)]
pub enum Item {
    File {
        path: PathBuf,
        id: String,
        source: String,
    },
    Json {
        id: String,
        text: String,
        source: Option<String>,
        extra: Map<String, Value>,
    },
    /// Input that could not even become an article (a bad JSON line).
    Bad {
        id: String,
        error: String,
    },
}

impl Item {
    /// A file named on the command line (`-`: standard input, read whole as one article).
    pub fn named_file(path: &Path) -> Item {
        if path.as_os_str() == "-" {
            return Item::File {
                path: path.to_path_buf(),
                id: "<stdin>".into(),
                source: String::new(),
            };
        }
        Item::File {
            id: path.display().to_string(),
            path: path.to_path_buf(),
            source: path.parent().map(|d| d.display().to_string()).unwrap_or_default(),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Item::File { id, .. } | Item::Json { id, .. } | Item::Bad { id, .. } => id,
        }
    }
}

/// Files under the given paths: folders are walked recursively (sorted, so every run
/// sees the same order) and filtered by `glob` (default: text, Markdown and HTML).
pub fn list_files(inputs: &[PathBuf], glob: Option<&str>) -> Result<Vec<Item>> {
    let pattern = glob.unwrap_or("*.{txt,md,markdown,html,htm}");
    let matcher = globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map_err(|e| Error::Usage(format!("bad --glob {pattern:?}: {e}")))?
        .compile_matcher();
    let mut out = Vec::new();
    for root in inputs {
        if root.is_dir() {
            let wanted = |p: &Path| p.file_name().is_some_and(|n| matcher.is_match(n)) || matcher.is_match(p);
            let mut files: Vec<PathBuf> = Vec::new();
            // What the walk cannot take is named, never skipped in silence: a folder that
            // cannot be read, and links (not followed: they may point anywhere, or loop).
            for entry in walkdir::WalkDir::new(root).follow_links(false) {
                match entry {
                    Ok(e) if e.file_type().is_file() && wanted(e.path()) => files.push(e.into_path()),
                    Ok(e) if e.file_type().is_symlink() && wanted(e.path()) => out.push(Item::Bad {
                        id: e.path().display().to_string(),
                        error: format!(
                            "{}: symbolic link, not followed (name the file itself to score it)",
                            e.path().display()
                        ),
                    }),
                    Ok(_) => {}
                    Err(err) => {
                        let path = err
                            .path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| root.display().to_string());
                        let why = err.io_error().map(|io| io.kind().to_string()).unwrap_or_else(|| err.to_string());
                        out.push(Item::Bad {
                            error: format!("{path}: cannot read folder: {why}"),
                            id: path,
                        });
                    }
                }
            }
            files.sort();
            for p in files {
                let source = p
                    .parent()
                    .and_then(|d| d.strip_prefix(root.parent().unwrap_or(Path::new(""))).ok())
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                out.push(Item::File {
                    id: p.display().to_string(),
                    path: p,
                    source,
                });
            }
        } else {
            // A named file is taken whatever its extension; a missing one becomes an error record.
            out.push(Item::named_file(root));
        }
    }
    Ok(out)
}

/// Parses JSON Lines (`{"id": …, "text": …, …}`): a bad line becomes a `Bad` item naming
/// its line number; the other fields are kept and carried to the output (see
/// [`Origin::carry`] for names the record uses itself); a repeated id
/// gets a `#2`, `#3` … suffix (with a warning) so no article is lost or overwritten.
pub fn read_jsonl(reader: impl BufRead, name: &str, warnings: &mut Vec<String>) -> Vec<Item> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let bad = |problem: String| Item::Bad {
            id: format!("{name}:{n}"),
            error: format!("{name}:{n}: {problem}"),
        };
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                out.push(bad(format!("cannot read: {e}")));
                break;
            }
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                out.push(bad(format!("not valid JSON: {e}")));
                continue;
            }
        };
        let Value::Object(mut obj) = v else {
            out.push(bad("expected a JSON object".into()));
            continue;
        };
        let id = match obj.remove("id") {
            Some(Value::String(s)) => s,
            Some(Value::Number(x)) => x.to_string(),
            _ => format!("{name}:{n}"),
        };
        let id = if seen.contains_key(&id) {
            // The next free suffix: generated ids are recorded too, so "a", "a", "a#2"
            // still give three different ids.
            let mut k = seen[&id];
            let new = loop {
                k += 1;
                let cand = format!("{id}#{k}");
                if !seen.contains_key(&cand) {
                    break cand;
                }
            };
            seen.insert(id.clone(), k);
            seen.insert(new.clone(), 1);
            warnings.push(format!("{name}:{n}: duplicate id {id:?}, scored as {new:?}"));
            new
        } else {
            seen.insert(id.clone(), 1);
            id
        };
        match obj.remove("text") {
            Some(Value::String(t)) => {
                let source = obj.get("source").and_then(Value::as_str).map(str::to_string);
                out.push(Item::Json {
                    id,
                    text: t,
                    source,
                    extra: obj,
                });
            }
            _ => out.push(Item::Bad {
                id: id.clone(),
                error: format!("{name}:{n}: no \"text\" string field"),
            }),
        }
    }
    out
}

/// Text of an HTML document, as a browser would show it: scripts, styles and the head
/// dropped; block elements on lines of their own. Parsed by html5ever (via `scraper`).
pub fn html_to_text(html: &str) -> String {
    use scraper::Node;
    let doc = scraper::Html::parse_document(html);
    let mut out = String::new();
    fn walk(node: ego_tree::NodeRef<'_, Node>, out: &mut String) {
        match node.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                let name = e.name();
                if matches!(
                    name,
                    "script" | "style" | "noscript" | "template" | "head" | "svg" | "iframe" | "object"
                ) {
                    return;
                }
                let block = matches!(
                    name,
                    "p" | "div"
                        | "br"
                        | "li"
                        | "h1"
                        | "h2"
                        | "h3"
                        | "h4"
                        | "h5"
                        | "h6"
                        | "tr"
                        | "section"
                        | "article"
                        | "header"
                        | "footer"
                        | "blockquote"
                        | "ul"
                        | "ol"
                        | "table"
                        | "title"
                        | "figcaption"
                        | "pre"
                        | "hr"
                        | "dd"
                        | "dt"
                );
                if block {
                    out.push('\n');
                }
                for c in node.children() {
                    walk(c, out);
                }
                if block {
                    out.push('\n');
                }
            }
            _ => {
                for c in node.children() {
                    walk(c, out);
                }
            }
        }
    }
    walk(doc.tree.root(), &mut out);
    // Collapse the blank lines markup leaves, keep paragraph breaks.
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let l = line.trim();
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(l);
    }
    text
}

/// Reads a file article (or standard input for `-`), stripping HTML markup for
/// .html/.htm files; returns the text and the warnings met reading it.
pub fn read_item_text(path: &Path, opts: &ReadOptions) -> Result<(String, Vec<String>)> {
    let a = input::read_article(path, opts)?;
    let is_html = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let text = if is_html { html_to_text(&a.text) } else { a.text };
    if input::is_blank(&text) {
        return Err(Error::input(path, "no text left after removing the markup"));
    }
    Ok((text, a.warnings))
}

/// Which shard an article belongs to: a stable hash of its id, so a slice is the same
/// whatever the order or the machine.
pub fn shard_of(id: &str, n: usize) -> usize {
    (crate::util::fnv1a(&[id.as_bytes()]) % n as u64) as usize
}

/// How articles are read and cut into sentences.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub read: ReadOptions,
    /// Segmentation language (`auto` detects it per article).
    pub lang: String,
    /// An article with more sentences is an error record.
    pub max_sentences: usize,
    /// One sentence per non-blank line instead of sentence segmentation.
    pub lines: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            read: ReadOptions::default(),
            lang: "auto".into(),
            max_sentences: 100_000,
            lines: false,
        }
    }
}

/// An input read and cut into sentences: ready for the encoder.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub lang: String,
    pub sentences: Vec<segment::Sentence>,
    /// Problems met reading the text that did not stop it (lossy decoding).
    pub warnings: Vec<String>,
}

/// The read and segment stages of the article pipeline for one input (HTML stripped,
/// the language told once and used to split): its sentences, or the failed record
/// that says why there are none. No model is needed, so inputs fail before one loads.
pub fn prepare(item: &Item, seg: &Segmenter, opts: &BatchOptions) -> std::result::Result<Prepared, Record> {
    let text = match item {
        Item::File { path, .. } => read_item_text(path, &opts.read),
        Item::Json { text, id, .. } => {
            if input::is_blank(text) {
                Err(Error::input(id, "empty: no text to score"))
            } else if text.len() as u64 > opts.read.max_bytes {
                Err(Error::input(
                    id,
                    format!(
                        "text is over the limit of {} bytes (raise it with --max-bytes)",
                        opts.read.max_bytes
                    ),
                ))
            } else {
                Ok((text.clone(), Vec::new()))
            }
        }
        Item::Bad { error, .. } => Err(Error::Usage(error.clone())),
    };
    let (t, warnings) = text.map_err(|e| failed(item, &e.to_string()))?;
    let (lang, sentences) = if opts.lines {
        (seg.language_of(&t), segment::lines_as_sentences(&t))
    } else {
        seg.segment_with_language(&t)
    };
    if sentences.is_empty() {
        return Err(failed_with(item, &format!("{}: no sentences found", item.id()), warnings));
    }
    if sentences.len() > opts.max_sentences {
        let why = format!(
            "{}: {} sentences, over the limit of {} (raise it with --max-sentences)",
            item.id(),
            sentences.len(),
            opts.max_sentences
        );
        return Err(failed_with(item, &why, warnings));
    }
    Ok(Prepared { lang, sentences, warnings })
}

/// The article pipeline for a chunk of inputs, as `classify` and `batch` run it:
/// [`prepare`] each, then [`score_prepared`].
pub fn score_chunk(
    items: &[Item],
    scorer: &Scorer,
    gazetteer: Option<&Gazetteer>,
    opts: &BatchOptions,
    cache: Option<&mut crate::cache::VectorCache>,
    progress: &mut dyn FnMut(usize),
) -> Result<(Vec<Record>, usize)> {
    let seg = Segmenter::new(&opts.lang);
    let prepared = items.iter().map(|item| prepare(item, &seg, opts)).collect();
    score_prepared(items, prepared, scorer, gazetteer, cache, progress)
}

/// The rest of the pipeline for prepared inputs (one per item, in order): encode
/// (through the cache), score, aggregate, attribute actors. Every item yields one
/// record, in order: an article's judgments or why there are none. Returns the records
/// and the number of sentences newly embedded. `progress` hears of every encoder batch
/// (sentences done), so one long article shows progress too.
pub fn score_prepared(
    items: &[Item],
    prepared: Vec<std::result::Result<Prepared, Record>>,
    scorer: &Scorer,
    gazetteer: Option<&Gazetteer>,
    cache: Option<&mut crate::cache::VectorCache>,
    progress: &mut dyn FnMut(usize),
) -> Result<(Vec<Record>, usize)> {
    let mut records: Vec<Option<Record>> = vec![None; items.len()];
    let mut arts = Vec::new();
    let mut meta = Vec::new();
    for (k, p) in prepared.into_iter().enumerate() {
        match p {
            Ok(p) => {
                arts.push((items[k].id().to_string(), p.lang, p.sentences));
                meta.push((k, p.warnings));
            }
            Err(failed) => records[k] = Some(failed),
        }
    }
    let (results, fresh) = scorer.score(arts, cache, progress)?;
    for ((k, warnings), mut r) in meta.into_iter().zip(results) {
        if let Some(g) = gazetteer {
            let texts: Vec<&str> = r.sentences.iter().map(|s| s.text.as_str()).collect();
            let attributed = g.attribute(&texts);
            for (s, a) in r.sentences.iter_mut().zip(&attributed) {
                s.actors = Some(a.iter().map(|&i| g.actors[i].name.clone()).collect());
            }
        }
        r.origin = origin(&items[k]);
        r.warnings = warnings;
        records[k] = Some(Record::Scored(Box::new(r)));
    }
    Ok((records.into_iter().map(|r| r.expect("every item has a record")).collect(), fresh))
}

/// Where an item came from, as its record says.
fn origin(item: &Item) -> Origin {
    match item {
        // Standard input has no path or folder to name.
        Item::File { path, .. } if path.as_os_str() == "-" => Origin::default(),
        Item::File { source, path, .. } => Origin::carry(Some(source.clone()), Some(path.display().to_string()), Map::new()),
        Item::Json { source, extra, .. } => Origin::carry(source.clone(), None, extra.clone()),
        Item::Bad { .. } => Origin::default(),
    }
}

fn failed(item: &Item, error: &str) -> Record {
    failed_with(item, error, Vec::new())
}

fn failed_with(item: &Item, error: &str, warnings: Vec<String>) -> Record {
    Record::Failed(FailedArticle {
        id: item.id().to_string(),
        error: error.to_string(),
        origin: origin(item),
        warnings,
    })
}
