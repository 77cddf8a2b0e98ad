//! Who holds which stance: a gazetteer of actors (states, blocs, institutions,
//! companies, people) with multilingual aliases, matched leftmost-longest on word
//! boundaries, and the attribution of each sentence's stance to the actors it names —
//! or, for a sentence led by a pronoun, to the actors of the sentence before.

use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub kind: String,
}

#[derive(Debug)]
pub struct Gazetteer {
    pub actors: Vec<Actor>,
    /// Exact-case and case-folded alias matchers, each with the actor of every pattern.
    matchers: [(AhoCorasick, Vec<usize>); 2],
}

/// The gazetteer shipped in `models/actors.tsv` (users extend it or pass their own).
pub fn default_path() -> PathBuf {
    crate::util::shipped("models/actors.tsv")
}

/// Pronouns that start a sentence about someone already named (it, en, fr, de, es).
const PRONOUNS: &[&str] = &[
    "Egli",
    "Lui",
    "Lei",
    "Esso",
    "Essa",
    "Essi",
    "Questi",
    "Quest’ultimo",
    "Quest'ultimo",
    "Quest’ultima",
    "Quest'ultima",
    "He",
    "She",
    "They",
    "It",
    "Il",
    "Elle",
    "Ils",
    "Elles",
    "Er",
    "Sie",
    "Él",
    "Ella",
    "Ellos",
    "Ellas",
    "Ha",
    "Hanno",
];

impl Gazetteer {
    /// The gazetteer a run uses: the named file (an error if it cannot be read), or the
    /// shipped one when it is there (none otherwise: actors are then not attributed).
    pub fn for_run(named: Option<&Path>) -> Result<Option<Self>> {
        match named {
            Some(p) => Self::load(p).map(Some),
            None => {
                let p = default_path();
                if p.is_file() { Self::load(&p).map(Some) } else { Ok(None) }
            }
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut actors = Vec::new();
        let mut patterns = Vec::new();
        let mut owner = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if i == 0 && line.starts_with("actor\t") || line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 3 {
                return Err(Error::data(
                    path,
                    i + 1,
                    format!("expected 3 tab-separated columns (actor, kind, aliases), found {}", f.len()),
                ));
            }
            let idx = actors.len();
            actors.push(Actor {
                name: f[0].trim().to_string(),
                kind: f[1].trim().to_string(),
            });
            for alias in std::iter::once(f[0])
                .chain(f[2].split('|'))
                .map(str::trim)
                .filter(|a| !a.is_empty())
            {
                patterns.push(alias.to_string());
                owner.push(idx);
            }
        }
        // Names ("Ursula von der Leyen") match whatever their case ("Ursula Von Der
        // Leyen", "URSULA VON DER LEYEN"); acronyms (no lower-case letter: "US", "UE")
        // only as written, or "us" and "ue" would be actors.
        let (exact, folded): (Vec<usize>, Vec<usize>) = (0..patterns.len()).partition(|&i| !patterns[i].chars().any(char::is_lowercase));
        let build = |idx: &[usize], fold: bool| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .ascii_case_insensitive(fold)
                .build(idx.iter().map(|&i| &patterns[i]))
                .map_err(|e| Error::data(path, 0, format!("cannot build the alias matcher: {e}")))
        };
        let matchers = [
            (build(&exact, false)?, exact.iter().map(|&i| owner[i]).collect()),
            (build(&folded, true)?, folded.iter().map(|&i| owner[i]).collect()),
        ];
        Ok(Gazetteer { actors, matchers })
    }

    /// Actors named in `text`, in order of first mention, each once.
    pub fn mentions(&self, text: &str) -> Vec<usize> {
        // (start, longer first, actor) from both matchers, then in text order.
        let mut found: Vec<(usize, std::cmp::Reverse<usize>, usize)> = Vec::new();
        for (matcher, owner) in &self.matchers {
            for m in matcher.find_iter(text) {
                let before = text[..m.start()].chars().next_back();
                let after = text[m.end()..].chars().next();
                // Word boundaries: no letter or digit on either side ("US" is not in "USA").
                if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric) {
                    continue;
                }
                found.push((m.start(), std::cmp::Reverse(m.end()), owner[m.pattern().as_usize()]));
            }
        }
        found.sort();
        let mut out: Vec<usize> = Vec::new();
        let mut covered = 0;
        for (start, std::cmp::Reverse(end), a) in found {
            if start < covered {
                continue; // inside a longer mention already taken
            }
            covered = end;
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Actors per sentence of one article: named ones, or for a sentence that names
    /// nobody and starts with a pronoun, those of the previous sentence.
    pub fn attribute(&self, sentences: &[&str]) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::with_capacity(sentences.len());
        for s in sentences {
            let mut m = self.mentions(s);
            if m.is_empty() {
                let first = s.split(|c: char| c.is_whitespace() || c == ',').next().unwrap_or("");
                if PRONOUNS.contains(&first) {
                    if let Some(prev) = out.last() {
                        m = prev.clone();
                    }
                }
            }
            out.push(m);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_match_boundaries_and_pronouns() {
        let g = Gazetteer::parse(
            Path::new("t.tsv"),
            "actor\tkind\taliases\nUnited States\tstate\tUSA|Stati Uniti|amministrazione Trump\nDonald Trump\tperson\tTrump\nEU\tbloc\tUE|Bruxelles\n",
        )
        .unwrap();
        assert_eq!(g.mentions("L'amministrazione Trump e la UE"), vec![0, 2]);
        assert_eq!(g.mentions("Trump parla"), vec![1]);
        assert!(g.mentions("USAGE e DUE").is_empty());
        // Names in any case; acronyms only as written.
        assert_eq!(g.mentions("DONALD TRUMP e gli stati uniti"), vec![1, 0]);
        assert!(
            g.mentions("ue, usa e bruxelles?").len() == 1,
            "{:?}",
            g.mentions("ue, usa e bruxelles?")
        );
        let a = g.attribute(&["Gli Stati Uniti rifiutano.", "Egli insiste.", "Nessuno risponde."]);
        assert_eq!(a, vec![vec![0], vec![0], vec![]]);
        assert!(
            Gazetteer::parse(Path::new("bad.tsv"), "actor\tkind\taliases\nX\tstate\n")
                .unwrap_err()
                .to_string()
                .contains("bad.tsv:2")
        );
    }
}
