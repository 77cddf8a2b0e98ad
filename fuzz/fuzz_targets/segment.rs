//! The segmenter on any text (first byte picks the language): no panic, and the
//! sentences slice the text on char boundaries, in order, trimmed, without overlap,
//! covering every non-whitespace character exactly once. Same for `lines_as_sentences`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stance::segment::{Segmenter, Sentence, lines_as_sentences};

const LANGS: [&str; 6] = ["it", "en", "de", "fr", "es", "auto"];

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{200B}' || c == '\u{FEFF}'
}

fn nonspace(s: &str) -> usize {
    s.chars().filter(|&c| !is_space(c)).count()
}

fn collapse(s: &str) -> String {
    s.split(is_space).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

fn check(text: &str, sents: &[Sentence], what: &str) {
    let mut prev = 0;
    let mut covered = 0;
    for (i, s) in sents.iter().enumerate() {
        assert_eq!(s.index, i, "{what}: index");
        assert!(s.start < s.end && s.start >= prev && s.end <= text.len(), "{what}: span {}..{} after {prev} in {} bytes", s.start, s.end, text.len());
        let slice = text.get(s.start..s.end).unwrap_or_else(|| panic!("{what}: {}..{} not on char boundaries", s.start, s.end));
        assert!(!slice.starts_with(is_space) && !slice.ends_with(is_space), "{what}: not trimmed: {slice:?}");
        assert_eq!(collapse(slice), s.text, "{what}: text");
        covered += nonspace(slice);
        prev = s.end;
    }
    assert_eq!(covered, nonspace(text), "{what}: visible characters covered");
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let lang = LANGS[first as usize % LANGS.len()];
    check(&text, &Segmenter::new(lang).segment(&text), lang);
    let lines = lines_as_sentences(&text);
    check(&text, &lines, "lines");
    for s in &lines {
        assert!(!text[s.start..s.end].contains(['\n', '\r']), "lines: a sentence crosses a line end");
    }
});
