//! Sentence segmentation of news text: Wikimedia's multilingual `sentencex` does the
//! sentence-level work inside each block of text; this module adds what news needs on
//! top — the line structure (headings, bullet items, bylines are units of their own, a
//! hard-wrapped paragraph is not split at its line breaks) and a few repairs (no new
//! sentence starting in lower case, no fragment made only of closing punctuation).
//! Every sentence keeps its byte offsets into the original article.

use serde::Serialize;

/// One sentence of an article. `start..end` are byte offsets into the article text;
/// `text` is that slice with runs of whitespace (line breaks of a hard-wrapped
/// paragraph included) collapsed to one space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentence {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Segmenter {
    /// ISO 639-1 code, or `auto` to detect the language of each article.
    pub lang: String,
}

impl Default for Segmenter {
    fn default() -> Self {
        Segmenter { lang: "auto".into() }
    }
}

impl Segmenter {
    pub fn new(lang: &str) -> Self {
        Segmenter { lang: lang.to_string() }
    }

    /// The language used for `text`: the configured one, or a detected one.
    pub fn language_of(&self, text: &str) -> String {
        if self.lang != "auto" {
            return self.lang.clone();
        }
        detect_language(text)
    }

    pub fn segment(&self, text: &str) -> Vec<Sentence> {
        self.segment_with_language(text).1
    }

    /// The article's language (told once, as `language_of` would) and its sentences,
    /// split by that language's rules.
    pub fn segment_with_language(&self, text: &str) -> (String, Vec<Sentence>) {
        let lang = self.language_of(text);
        let mut spans = Vec::new();
        for (start, end) in blocks(text) {
            // A block with no line break for megabytes (a dump on one line) is cut into
            // bounded pieces first, so the splitter's work and memory stay bounded.
            for (s, e) in bounded(text, start, end, MAX_BLOCK_BYTES) {
                split_block(&lang, text, s, e, &mut spans);
            }
        }
        let sentences = spans
            .into_iter()
            .flat_map(|(s, e)| bounded(text, s, e, MAX_SENTENCE_BYTES))
            // A piece of only invisible characters (a stray joiner or soft hyphen) is
            // not a sentence.
            .filter(|&(s, e)| !crate::input::is_blank(&text[s..e]))
            .enumerate()
            .map(|(index, (start, end))| Sentence {
                index,
                start,
                end,
                text: collapse_whitespace(&text[start..end]),
            })
            .collect();
        (lang, sentences)
    }
}

/// The longest sentence passed on: longer runs of text without a sentence end (no
/// real sentence is this long) are cut at the last space before the limit. The encoder
/// sees at most 512 tokens a window anyway; this bounds tokenisation and memory.
pub const MAX_SENTENCE_BYTES: usize = 4096;
/// The longest block handed to the sentence splitter at once.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024;

/// `start..end` cut into pieces of at most `max` bytes, at the last whitespace before
/// each limit (or at a character boundary when there is none), trimmed.
fn bounded(text: &str, start: usize, end: usize, max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut s = start;
    while end - s > max {
        let mut limit = s + max;
        while !text.is_char_boundary(limit) {
            limit -= 1;
        }
        let cut = text[s..limit].rfind(is_space).map(|i| s + i).filter(|&c| c > s).unwrap_or(limit);
        let (a, b) = trim_span(text, s, cut);
        if a < b {
            out.push((a, b));
        }
        s = cut;
    }
    let (a, b) = trim_span(text, s, end);
    if a < b {
        out.push((a, b));
    }
    out
}

/// Treats every non-blank line as one sentence (`--lines` input), long lines cut as
/// [`MAX_SENTENCE_BYTES`] says.
pub fn lines_as_sentences(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    for (start, end) in line_spans(text)
        .into_iter()
        .flat_map(|(a, b)| bounded(text, a, b, MAX_SENTENCE_BYTES))
    {
        let (s, e) = trim_span(text, start, end);
        if s < e && !crate::input::is_blank(&text[s..e]) {
            out.push(Sentence {
                index: out.len(),
                start: s,
                end: e,
                text: collapse_whitespace(&text[s..e]),
            });
        }
    }
    out
}

/// Latin-script languages of the news the tool reads. whatlang's trigrams are weak on
/// short text (a short English sentence comes out Catalan, Latin or Esperanto); among
/// these few they get short sentences right.
const LATIN_NEWS: [whatlang::Lang; 20] = {
    use whatlang::Lang::*;
    [
        Eng, Ita, Fra, Deu, Spa, Por, Nld, Pol, Ces, Slk, Ron, Hun, Swe, Dan, Fin, Hrv, Slv, Lit, Lav, Est,
    ]
};

/// The language of `text` (ISO 639-1) from its first 4 KiB, or `und` when it cannot be
/// told (no letters, as in emoji or figures only, or a language without a code here).
pub fn detect_language(text: &str) -> String {
    let mut cut = text.len().min(4096);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let sample = &text[..cut];
    if !sample.chars().any(char::is_alphabetic) {
        return "und".into();
    }
    let info = match whatlang::detect_script(sample) {
        // A short text (under 8 words) is told among the corpus's own eight languages,
        // where trigrams stay right; a longer one among all twenty.
        Some(whatlang::Script::Latin) => {
            let words = sample.split_whitespace().take(8).count();
            let langs = if words < 8 { &LATIN_NEWS[..8] } else { &LATIN_NEWS[..] };
            whatlang::Detector::with_allowlist(langs.to_vec()).detect(sample)
        }
        _ => whatlang::detect(sample),
    };
    info.map(|i| iso639_1(i.lang()).to_string()).unwrap_or_else(|| "und".into())
}

fn iso639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Ita => "it",
        Eng => "en",
        Fra => "fr",
        Deu => "de",
        Spa => "es",
        Por => "pt",
        Nld => "nl",
        Pol => "pl",
        Rus => "ru",
        Ukr => "uk",
        Bul => "bg",
        Dan => "da",
        Fin => "fi",
        Ell => "el",
        Slk => "sk",
        Hin => "hi",
        Ben => "bn",
        Mar => "mr",
        Guj => "gu",
        Pan => "pa",
        Tam => "ta",
        Tel => "te",
        Kan => "kn",
        Mal => "ml",
        Mya => "my",
        Amh => "am",
        Ara => "ar",
        Jpn => "ja",
        Cat => "ca",
        Hye => "hy",
        Ces => "cs",
        Ron => "ro",
        Hun => "hu",
        Swe => "sv",
        Hrv => "hr",
        Slv => "sl",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tur => "tr",
        Heb => "he",
        Kor => "ko",
        Cmn => "zh",
        Vie => "vi",
        Ind => "id",
        Pes => "fa",
        Tha => "th",
        _ => "und",
    }
}

pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(is_space) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whitespace, plus zero-width space and BOM. (Joiners stay text: they bind emoji
/// sequences, Persian or Indic letters, and words that must not break.)
fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}' | '\u{FEFF}')
}

fn trim_span(text: &str, start: usize, end: usize) -> (usize, usize) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start_matches(is_space).len();
    let trail = s.len() - s.trim_end_matches(is_space).len();
    if lead == s.len() {
        (start, start)
    } else {
        (start + lead, end - trail)
    }
}

/// Byte spans of lines, without their terminators; `\n`, `\r\n` and a lone `\r` all end a line.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                spans.push((start, i));
                start = i + 1;
            }
            b'\r' => {
                spans.push((start, i));
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        spans.push((start, bytes.len()));
    }
    spans
}

const CLOSERS: &[char] = &['"', '\'', '”', '’', '»', '“', ')', ']', '›', '“', '」', '』', '*', '_'];

/// The line ends like a sentence: terminal punctuation, possibly followed by closers.
fn terminated(line: &str) -> Option<char> {
    let t = line.trim_end_matches(is_space).trim_end_matches(CLOSERS);
    let c = t.chars().last()?;
    matches!(c, '.' | '!' | '?' | '…' | ':' | ';' | '。' | '！' | '？').then_some(c)
}

fn is_bullet(line: &str) -> bool {
    let t = line.trim_start_matches(is_space);
    let mut chars = t.chars();
    match chars.next() {
        Some('-' | '*' | '•' | '–' | '—' | '·' | '▪' | '‣' | '◦' | '►') => chars.next().is_some_and(is_space),
        Some(c) if c.is_ascii_digit() => {
            let rest = t.trim_start_matches(|c: char| c.is_ascii_digit());
            let mut r = rest.chars();
            matches!(r.next(), Some('.' | ')')) && r.next().is_some_and(is_space) && t.len() - rest.len() <= 3
        }
        _ => false,
    }
}

fn first_char(line: &str) -> Option<char> {
    line.trim_start_matches(is_space).chars().next()
}

fn starts_lowercase(line: &str) -> bool {
    first_char(line).is_some_and(|c| c.is_lowercase())
}

/// Groups lines into blocks that may hold several sentences but never cross a heading,
/// a bullet item or a blank line.
fn blocks(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<(usize, usize)> = line_spans(text)
        .into_iter()
        .filter(|&(s, e)| !text[s..e].trim_matches(is_space).is_empty() || s == e)
        .collect();
    // Hard wrapping shows as lines that stop mid-sentence and go on in lower case; the
    // longest such line gives the wrap column. Where there is such evidence, a line of
    // about that width that stops without punctuation is a wrap even when the next line
    // starts with a capital (a name, a German noun); elsewhere it is a heading.
    let evidence: Vec<usize> = lines
        .windows(2)
        .filter(|w| {
            let (a, b) = (&text[w[0].0..w[0].1], &text[w[1].0..w[1].1]);
            !a.trim().is_empty() && terminated(a).is_none() && starts_lowercase(b)
        })
        .map(|w| text[w[0].0..w[0].1].trim_end().chars().count())
        .collect();
    let width = if evidence.len() >= 2 {
        evidence.iter().copied().max().unwrap_or(0)
    } else {
        0
    };
    let wrapped = width > 0 && width <= 120;
    let mut out = Vec::new();
    let mut cur: Option<(usize, usize, bool)> = None; // start, end, block is a bullet item
    for &(s, e) in &lines {
        let line = &text[s..e];
        let blank = line.trim_matches(is_space).is_empty();
        if blank {
            if let Some((bs, be, _)) = cur.take() {
                out.push((bs, be));
            }
            continue;
        }
        let numbered = first_char(line).is_some_and(|c| c.is_ascii_digit());
        let bullet = is_bullet(line)
            && (!numbered
                || match cur {
                    None => true,
                    Some((_, be, cur_bullet)) => cur_bullet || terminated(&text[line_start_of(text, be)..be]) == Some(':'),
                });
        if let Some((bs, be, cur_bullet)) = cur {
            let prev = &text[line_start_of(text, be)..be];
            let join = if bullet {
                false
            } else if cur_bullet {
                starts_lowercase(line)
            } else {
                match terminated(prev) {
                    Some(':' | ';') => starts_lowercase(line),
                    Some(_) => true, // sentencex decides (abbreviation or new sentence)
                    None => {
                        starts_lowercase(line)
                            || first_char(line).is_some_and(|c| c.is_ascii_digit())
                            || (wrapped && {
                                let n = prev.trim_end().chars().count();
                                n + 20 >= width && n <= width + 2
                            })
                    }
                }
            };
            if join {
                cur = Some((bs, e, cur_bullet));
                continue;
            }
            out.push((bs, be));
        }
        cur = Some((s, e, bullet));
    }
    if let Some((bs, be, _)) = cur {
        out.push((bs, be));
    }
    out
}

fn line_start_of(text: &str, end: usize) -> usize {
    text[..end].rfind(['\n', '\r']).map_or(0, |i| i + 1)
}

/// Abbreviations that often end a sentence: after them a capitalised word starts a new one.
const CAN_END: &[&str] = &[
    "etc", "ecc", "usw", "inc", "ltd", "corp", "s.p.a", "s.a", "s.r.l", "spa", "srl", "co", "cie", "bzw",
];
/// Words that start sentences and are never part of a name.
const STARTERS: &[&str] = &[
    "It", "The", "This", "That", "These", "Those", "He", "She", "We", "They", "I", "But", "And", "In", "On", "At", "For", "A", "An", "As",
    "If", "When", "While", "Its", "His", "Her", "Their", "Our", "There", "Yet", "So", "Il", "Lo", "La", "Gli", "Le", "Un", "Una", "Ma",
    "Per", "Nel", "Nella", "Questo", "Questa", "Le", "Les", "Ce", "Cette", "Il", "Elle", "Ils", "Mais", "Der", "Die", "Das", "Es", "Er",
    "Sie", "Aber", "El", "Los", "Las", "Pero", "Esto", "Esta",
];
/// Titles, which never end a sentence: the capitalised word after them is a name.
const TITLES: &[&str] = &[
    "prof", "dott", "dr", "mr", "mrs", "ms", "sig", "sigg", "sra", "sr", "dra", "mme", "mlle", "ing", "avv", "on", "gen", "col", "rev",
    "st", "jr", "sen", "rep", "gov", "pres", "mons", "geom", "rag", "arch", "hon", "capt", "lt", "sgt", "mgr", "dir", "hr", "fr", "frau",
    "herr", "sta", "sto", "ssa", "vol", "nr", "art", "pag", "cap", "fig", "tab", "par", "cfr", "vgl", "bd", "abs", "no", "nos", "num",
    "núm", "pp", "ch", "sec", "sez",
];

/// The token before byte `i` (back to whitespace or an opening bracket/quote).
fn token_before(s: &str, i: usize) -> &str {
    let start = s[..i]
        .rfind(|c: char| is_space(c) || matches!(c, '(' | '[' | '«' | '“' | '"' | '„' | '‘'))
        .map_or(0, |p| p + s[p..].chars().next().unwrap().len_utf8());
    &s[start..i]
}

/// Does a full stop at byte `dot` of `s` end a sentence that sentencex kept whole? Only
/// when a capitalised word follows and the word before is clearly not an abbreviation.
fn forced_break(s: &str, dot: usize, next_word: &str) -> bool {
    let token = token_before(s, dot);
    let lower = token.to_lowercase();
    let bare = lower.trim_end_matches('.');
    if token.contains('@') {
        return true; // an e-mail address
    }
    let parts: Vec<&str> = bare.split('.').collect();
    if parts.len() >= 2
        && parts
            .iter()
            .all(|p| p.chars().count() >= 2 && p.chars().all(|c| c.is_alphanumeric() || c == '-'))
    {
        return true; // a domain such as www.governo.it
    }
    if CAN_END.contains(&bare) {
        return true;
    }
    // An acronym (AI, UE, USA, UU.) ends sentences often and is never a title.
    // (But "EE. UU.": an acronym in two dotted parts continues.)
    let next_is_dotted_acronym = next_word.ends_with('.') && next_word.trim_end_matches('.').chars().all(|c| c.is_uppercase());
    if bare.chars().count() >= 2 && token.trim_end_matches('.').chars().all(|c| c.is_uppercase()) && !next_is_dotted_acronym {
        return true;
    }
    // A dotted acronym (U.S., U.K.) may end a sentence or precede a name ("U.S.
    // Senate"): break only before a word that starts sentences, not names.
    if token.len() >= 3
        && token.contains('.')
        && token
            .split('.')
            .filter(|p| !p.is_empty())
            .all(|p| p.chars().count() == 1 && p.chars().all(char::is_uppercase))
    {
        return STARTERS.contains(&next_word.trim_matches(|c: char| !c.is_alphabetic()));
    }
    let letters = bare.chars().count();
    letters >= 4 && bare.chars().all(char::is_alphabetic) && !TITLES.contains(&bare) && !token.chars().skip(1).any(char::is_uppercase)
}

/// Byte offsets (into `s`) just after sentence ends that sentencex missed: an ellipsis,
/// or a full stop as [`forced_break`] judges, followed by space and a capital letter.
fn missed_breaks(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let ellipsis = c == '…' || (c == '.' && i >= 2 && s[..i].ends_with(".."));
        if !(c == '.' || c == '…') {
            continue;
        }
        // Closing quotes or brackets may follow the stop.
        let mut j = k + 1;
        while j < chars.len() && CLOSERS.contains(&chars[j].1) {
            j += 1;
        }
        if j >= chars.len() || !is_space(chars[j].1) {
            continue;
        }
        let end = chars[j].0;
        let mut m = j;
        while m < chars.len() && (is_space(chars[m].1) || matches!(chars[m].1, '«' | '“' | '"' | '„' | '‘' | '(' | '¿' | '¡')) {
            m += 1;
        }
        let Some(&(_, next)) = chars.get(m) else { continue };
        if !next.is_uppercase() && !(next == '(') {
            continue;
        }
        let rest = &s[chars[m].0..];
        let next_word = rest.split(is_space).next().unwrap_or("");
        if ellipsis || (c == '.' && !s[..i].ends_with('.') && forced_break(s, i, next_word)) {
            out.push(end);
        }
    }
    out
}

fn starts_with_digit(s: &str) -> bool {
    first_char(s).is_some_and(|c| c.is_ascii_digit())
}

/// "… n." "… art." "… janv." "… im 2." — a short abbreviation or an ordinal number
/// before a full stop, which a following number or noun continues.
fn ends_with_short_abbrev(s: &str) -> bool {
    let t = s.trim_end_matches(is_space);
    let Some(body) = t.strip_suffix('.') else { return false };
    let token = token_before(body, body.len());
    // French and Italian elision: l'art. → art.
    let token = token.rsplit(['\'', '’']).next().unwrap_or(token);
    let n = token.chars().count();
    (1..=5).contains(&n) && (token.chars().all(char::is_alphabetic) || TITLES.contains(&token.to_lowercase().as_str()))
}

fn ends_with_ordinal(s: &str) -> bool {
    let t = s.trim_end_matches(is_space);
    let Some(body) = t.strip_suffix('.') else { return false };
    let token = token_before(body, body.len());
    (1..=2).contains(&token.len()) && token.chars().all(|c| c.is_ascii_digit())
}

/// Splits one block with sentencex and repairs its output; pushes trimmed spans.
fn split_block(lang: &str, text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    // Line breaks inside a block are hard wraps: give sentencex spaces instead, of the
    // same byte length, so its offsets stay valid for the original text.
    let flat: String = text[start..end]
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut raw: Vec<(usize, usize)> = Vec::new();
    // Text whose language could not be told is split by the English rules.
    let lang = if lang == "und" { "en" } else { lang };
    for b in sentencex::get_sentence_boundaries(lang, &flat) {
        let (s, e) = trim_span(text, start + b.start_byte, start + b.end_byte);
        if s >= e {
            continue;
        }
        // Breaks sentencex missed inside its piece.
        let mut from = s;
        for cut in missed_breaks(&text[s..e]) {
            let (a, b) = trim_span(text, from, s + cut);
            if a < b {
                raw.push((a, b));
            }
            from = s + cut;
        }
        let (a, b) = trim_span(text, from, e);
        if a < b {
            raw.push((a, b));
        }
    }
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    for (s, e) in raw {
        let piece = &text[s..e];
        let merge = match pieces.last() {
            None => false,
            Some(&(ps, pe)) => {
                let prev = &text[ps..pe];
                starts_lowercase(piece)
                    || piece
                        .chars()
                        .all(|c| CLOSERS.contains(&c) || c.is_ascii_punctuation() || is_space(c))
                    || (ends_with_initial(prev) && !STARTERS.contains(&piece.split(is_space).next().unwrap_or("")))
                    || (starts_with_digit(piece) && ends_with_short_abbrev(prev))
                    || (lang == "de" && ends_with_ordinal(prev))
            }
        };
        if merge {
            pieces.last_mut().unwrap().1 = e;
        } else {
            pieces.push((s, e));
        }
    }
    if pieces.is_empty() {
        let (s, e) = trim_span(text, start, end);
        if s < e {
            pieces.push((s, e));
        }
    }
    out.extend(pieces);
}

/// "… J." or "… M." or "… J.-M." — a single capital letter before the full stop is an initial.
fn ends_with_initial(s: &str) -> bool {
    let mut rev = s.trim_end_matches(is_space).chars().rev();
    if rev.next() != Some('.') {
        return false;
    }
    let Some(c) = rev.next() else { return false };
    let t = s.trim_end_matches(is_space);
    let token = token_before(t, t.len()).to_lowercase();
    if CAN_END.contains(&token.trim_end_matches('.')) {
        return false; // S.p.A. is a company form, not an initial
    }
    c.is_uppercase() && rev.next().is_none_or(|p| is_space(p) || p == '.' || p == '(' || p == '-')
}

/// Boundary agreement with a gold segmentation, counted on the positions between
/// non-whitespace characters (so whitespace and line breaks never matter).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BoundaryCounts {
    pub gold: usize,
    pub found: usize,
    pub predicted: usize,
    pub spurious: usize,
}

impl BoundaryCounts {
    pub fn add(&mut self, o: BoundaryCounts) {
        self.gold += o.gold;
        self.found += o.found;
        self.predicted += o.predicted;
        self.spurious += o.spurious;
    }
    pub fn recall(&self) -> f64 {
        if self.gold == 0 {
            1.0
        } else {
            self.found as f64 / self.gold as f64
        }
    }
    pub fn spurious_rate(&self) -> f64 {
        if self.predicted == 0 {
            0.0
        } else {
            self.spurious as f64 / self.predicted as f64
        }
    }
}

fn nonspace_count(s: &str) -> usize {
    s.chars().filter(|c| !is_space(*c)).count()
}

/// Compares predicted sentences of `text` with gold units (in order).
pub fn compare_boundaries(text: &str, gold_units: &[&str], predicted: &[Sentence]) -> BoundaryCounts {
    let mut gold = std::collections::BTreeSet::new();
    let mut acc = 0;
    for u in gold_units {
        acc += nonspace_count(u);
        gold.insert(acc);
    }
    let total = nonspace_count(text);
    gold.remove(&total);
    let pred: std::collections::BTreeSet<usize> = predicted
        .iter()
        .map(|s| nonspace_count(&text[..s.end]))
        .filter(|&b| b != total && b != 0)
        .collect();
    let found = pred.intersection(&gold).count();
    BoundaryCounts {
        gold: gold.len(),
        found,
        predicted: pred.len(),
        spurious: pred.len() - found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_line_becomes_bounded_sentences_with_true_offsets() {
        let line = "parola ".repeat(300_000) + "fine.";
        let seg = Segmenter::new("it").segment(&line);
        assert!(seg.len() > 400, "{}", seg.len());
        for s in &seg {
            assert!(s.end - s.start <= MAX_SENTENCE_BYTES && s.end > s.start);
            assert_eq!(collapse_whitespace(&line[s.start..s.end]), s.text);
        }
        // No text lost: the pieces cover every word.
        let words: usize = seg.iter().map(|s| s.text.split(' ').count()).sum();
        assert_eq!(words, 300_001);
        let one = "x".repeat(10_000);
        let lines = lines_as_sentences(&one);
        assert_eq!(lines.iter().map(|s| s.text.len()).sum::<usize>(), 10_000);
        assert!(lines.iter().all(|s| s.text.len() <= MAX_SENTENCE_BYTES));
    }

    #[test]
    fn short_sentences_get_their_language_and_no_letters_is_und() {
        let cases = [
            ("en", "The EU must regulate AI now."),
            ("en", "Open models help everyone."),
            ("en", "We need binding rules for chatbots."),
            ("en", "The law passed on Tuesday."),
            ("fr", "L'Europe doit réguler l'IA."),
            ("fr", "Les modèles ouverts aident tout le monde."),
            ("fr", "La loi a été adoptée mardi."),
            ("de", "Die EU muss KI regulieren."),
            ("de", "Offene Modelle helfen allen."),
            ("de", "Das Gesetz wurde am Dienstag verabschiedet."),
            ("es", "La UE debe regular la IA."),
            ("es", "Los modelos abiertos ayudan a todos."),
            ("es", "La ley se aprobó el martes."),
            ("it", "L'Europa deve regolare l'IA."),
            ("it", "I modelli aperti aiutano tutti."),
            ("it", "La legge è stata approvata martedì."),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(lang, text)| detect_language(text) != *lang)
            .map(|(lang, text)| format!("{text:?}: {} (expected {lang})", detect_language(text)))
            .collect();
        assert!(wrong.is_empty(), "{wrong:?}");
        for none in ["🙂🚀🔥", "2024 - 2025: 42%", "", "   "] {
            assert_eq!(detect_language(none), "und", "{none:?}");
        }
        assert_eq!(detect_language("Это новый закон об искусственном интеллекте."), "ru");
        // Longer text in a language outside the eight is still told.
        assert_eq!(detect_language("Nový zákon o umělé inteligenci byl schválen v parlamentu."), "cs");
        assert_eq!(
            detect_language("A parlament elfogadta a mesterséges intelligenciáról szóló új törvényt."),
            "hu"
        );
    }

    fn texts(lang: &str, s: &str) -> Vec<String> {
        Segmenter::new(lang).segment(s).into_iter().map(|x| x.text).collect()
    }

    #[test]
    fn italian_news_cases() {
        let t = "Lo ha detto il Sig. Rossi, ecc. e altri. Il PIL cresce del 3,61% e +8,3% a 20.000 euro.\n“Serve un futuro”. Scrivete a info@smetteredilavorare.it per info.";
        assert_eq!(
            texts("it", t),
            vec![
                "Lo ha detto il Sig. Rossi, ecc. e altri.",
                "Il PIL cresce del 3,61% e +8,3% a 20.000 euro.",
                "“Serve un futuro”.",
                "Scrivete a info@smetteredilavorare.it per info."
            ]
        );
    }

    #[test]
    fn headings_bullets_and_wraps() {
        let t = "Un Nuovo Impulso per l’IA Europea\nNonostante tutto, la Commissione\nha deciso di investire. Poi basta.\n- primo punto\n- secondo punto\nIndice degli argomenti:\nL’appello dagli USA";
        assert_eq!(
            texts("it", t),
            vec![
                "Un Nuovo Impulso per l’IA Europea",
                "Nonostante tutto, la Commissione ha deciso di investire.",
                "Poi basta.",
                "- primo punto",
                "- secondo punto",
                "Indice degli argomenti:",
                "L’appello dagli USA"
            ]
        );
    }

    #[test]
    fn offsets_slice_original() {
        let t = "Prima frase.\r\nSeconda frase!\rTerza?  Quarta.";
        for s in Segmenter::new("it").segment(t) {
            assert_eq!(collapse_whitespace(&t[s.start..s.end]), s.text);
        }
    }
}
