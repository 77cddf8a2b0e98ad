//! Labeled data: LABELING.md's TSV (`id lang stance sentiment text source`) and the
//! UMSAB `label<TAB>text` layout (0 negative, 1 neutral, 2 positive; language taken
//! from the file name). Every problem is an error naming the file and the line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Stance,
    Sentiment,
}

pub const STANCE_LABELS: [&str; 3] = ["regulation", "neutral", "openness"];
pub const SENTIMENT_LABELS: [&str; 3] = ["negative", "neutral", "positive"];

impl Task {
    pub fn labels(self) -> [&'static str; 3] {
        match self {
            Task::Stance => STANCE_LABELS,
            Task::Sentiment => SENTIMENT_LABELS,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Task::Stance => "stance",
            Task::Sentiment => "sentiment",
        }
    }
    pub fn label_index(self, label: &str) -> Option<usize> {
        self.labels().iter().position(|l| *l == label)
    }
}

#[derive(Debug, Clone)]
pub struct Example {
    pub id: String,
    pub lang: String,
    pub label: usize,
    pub text: String,
    /// Where the sentence comes from; examples of one source are never split between
    /// training and validation.
    pub source: String,
}

const HEADER: [&str; 6] = ["id", "lang", "stance", "sentiment", "text", "source"];

fn umsab_lang(path: &Path) -> String {
    let stem = path.file_name().and_then(|s| s.to_str()).unwrap_or("").to_lowercase();
    for (name, code) in [
        ("italian", "it"),
        ("english", "en"),
        ("french", "fr"),
        ("german", "de"),
        ("spanish", "es"),
        ("portuguese", "pt"),
        ("arabic", "ar"),
        ("hindi", "hi"),
    ] {
        if stem.starts_with(name) {
            return code.into();
        }
    }
    "und".into()
}

/// Loads one labeled file for `task`. Checks the header or layout, the column count of
/// every line, the labels, and that more than one class is present.
pub fn load(path: &Path, task: Task) -> Result<Vec<Example>> {
    let raw = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::data(path, 0, "no such file"),
        _ => Error::io(path, e),
    })?;
    let text = std::str::from_utf8(&raw).map_err(|e| Error::data(path, 0, format!("not valid UTF-8 (byte {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(Error::data(path, 0, "empty file: no header and no examples"));
    };
    let cols: Vec<&str> = header.split('\t').map(str::trim).collect();
    let mut out = Vec::new();
    if cols == HEADER {
        let col = if task == Task::Stance { 2 } else { 3 };
        for (i, line) in lines {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 6 {
                return Err(Error::data(
                    path,
                    i + 1,
                    format!("expected 6 tab-separated columns, found {}", f.len()),
                ));
            }
            let label = task.label_index(f[col].trim()).ok_or_else(|| {
                Error::data(
                    path,
                    i + 1,
                    format!(
                        "unknown {} label {:?} (expected one of {})",
                        task.name(),
                        f[col],
                        task.labels().join(", ")
                    ),
                )
            })?;
            out.push(Example {
                id: f[0].into(),
                lang: f[1].trim().into(),
                label,
                text: f[4].trim().into(),
                source: f[5].trim().into(),
            });
        }
    } else if cols == ["label", "text"] {
        if task != Task::Sentiment {
            return Err(Error::data(
                path,
                1,
                "a label<TAB>text file (UMSAB layout) holds sentiment labels, not stance",
            ));
        }
        let lang = umsab_lang(path);
        let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("umsab").to_string();
        for (i, line) in lines {
            let Some((label, text)) = line.split_once('\t') else {
                return Err(Error::data(path, i + 1, "expected 2 tab-separated columns, found 1"));
            };
            if text.contains('\t') {
                return Err(Error::data(path, i + 1, "expected 2 tab-separated columns, found more"));
            }
            let label = match label.trim() {
                "0" | "negative" => 0,
                "1" | "neutral" => 1,
                "2" | "positive" => 2,
                other => {
                    return Err(Error::data(
                        path,
                        i + 1,
                        format!("unknown sentiment label {other:?} (expected 0, 1 or 2)"),
                    ));
                }
            };
            // Tweets have no article: each is its own source.
            out.push(Example {
                id: format!("{name}:{}", i + 1),
                lang: lang.clone(),
                label,
                text: text.trim().into(),
                source: format!("{name}:{}", i + 1),
            });
        }
    } else {
        return Err(Error::data(
            path,
            1,
            format!(
                "unrecognised header {:?}: expected `{}` (LABELING.md) or `label<TAB>text` (UMSAB)",
                header,
                HEADER.join("<TAB>")
            ),
        ));
    }
    if out.is_empty() {
        return Err(Error::data(path, 0, "no examples after the header"));
    }
    Ok(out)
}

/// The files a `--data` argument names: a folder gives its `.tsv` files, a file name
/// with `*` the files of its folder that match it, anything else itself; sorted.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (dir, matcher) = if path.is_dir() {
        (
            path.to_path_buf(),
            globset::Glob::new("*.tsv").expect("valid glob").compile_matcher(),
        )
    } else if name.contains('*') {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let glob = globset::Glob::new(name).map_err(|e| Error::data(path, 0, format!("bad pattern: {e}")))?;
        (dir.to_path_buf(), glob.compile_matcher())
    } else {
        return Ok(vec![path.to_path_buf()]);
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| matcher.is_match(n)))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Error::data(path, 0, "no labeled files here"));
    }
    Ok(out)
}

/// [`expand`] over several arguments, in order.
pub fn expand_all(paths: &[impl AsRef<Path>]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(expand(p.as_ref())?);
    }
    Ok(out)
}

/// Loads several files and checks the union has at least two classes (a model cannot
/// learn, nor be fairly evaluated, from one).
pub fn load_many(paths: &[impl AsRef<Path>], task: Task) -> Result<Vec<Example>> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(load(p.as_ref(), task)?);
    }
    let mut seen = [false; 3];
    all.iter().for_each(|e| seen[e.label] = true);
    if seen.iter().filter(|&&s| s).count() < 2 {
        let names: Vec<String> = paths.iter().map(|p| p.as_ref().display().to_string()).collect();
        return Err(Error::data(
            names.join(", "),
            0,
            format!("only one {} class present: need at least two", task.name()),
        ));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(name: &str, body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::File::create(&p).unwrap().write_all(body.as_bytes()).unwrap();
        (d, p)
    }

    #[test]
    fn reads_both_layouts_and_names_bad_lines() {
        let (_d, p) = file(
            "x.tsv",
            "id\tlang\tstance\tsentiment\ttext\tsource\na\tit\topenness\tpositive\tCiao.\ts1\nb\ten\tregulation\tnegative\tHi.\ts2\n",
        );
        let ex = load(&p, Task::Stance).unwrap();
        assert_eq!((ex[0].label, ex[1].label), (2, 0));
        assert_eq!(load(&p, Task::Sentiment).unwrap()[1].label, 0);
        let (_d, p) = file("italian_val.tsv", "label\ttext\n0\tbrutto\n2\tbello\n");
        let ex = load(&p, Task::Sentiment).unwrap();
        assert_eq!((ex[0].lang.as_str(), ex[1].label), ("it", 2));
        let (_d, p) = file(
            "bad.tsv",
            "id\tlang\tstance\tsentiment\ttext\tsource\na\tit\tpro\tpositive\tCiao.\ts1\n",
        );
        let e = load(&p, Task::Stance).unwrap_err().to_string();
        assert!(e.contains("bad.tsv:2") && e.contains("unknown stance label"), "{e}");
        let (_d, p) = file("cols.tsv", "id\tlang\tstance\tsentiment\ttext\tsource\na\tit\topenness\tCiao.\n");
        assert!(load(&p, Task::Stance).unwrap_err().to_string().contains("expected 6"));
        let (_d, p) = file("one.tsv", "label\ttext\n1\ta\n1\tb\n");
        assert!(load_many(&[&p], Task::Sentiment).unwrap_err().to_string().contains("only one"));
        let (_d, p) = file("empty.tsv", "");
        assert!(load(&p, Task::Stance).unwrap_err().to_string().contains("empty"));
    }
}
