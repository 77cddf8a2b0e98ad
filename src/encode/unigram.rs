//! The E5S1 image's own tokenizer: SentencePiece Unigram over the vocabulary, scores and
//! normalisation map embedded in the model file.
//!
//! Why not the `tokenizers` crate for E5S1 variants: its Unigram model builds a trie of
//! 250,002 pieces with a hash map per node — ~290 MB resident and ~0.5 s to build,
//! more than the whole encoder. Here the vocabulary is one open-addressing table
//! (2 MB) over the pieces' bytes, built in milliseconds. The `tokenizers` crate stays
//! for Hugging Face model directories and the static variant, and as the oracle:
//! `tests/tokenizer_oracle.rs` checks that both give the same ids on every labeled
//! sentence of the project and on hostile strings.
//!
//! The pipeline is the one `tokenizer.json` describes for multilingual-e5: NFKC-style
//! character map (`Precompiled`), runs of spaces collapsed (`Replace " {2,}" → " "`),
//! `Metaspace` (spaces become ▁, one ▁ prepended, words split before each ▁), Unigram
//! Viterbi per word with consecutive unknown characters fused into one `<unk>`, and
//! `<s> … </s>` around. The precompiled map works on whole grapheme clusters, the
//! embedded one on code points; composing to NFC first closes that gap for decomposed
//! accents. Known difference: special tokens typed in the text (`<s>`, `<mask>`) are
//! ordinary text here, where `tokenizers` turns them into control ids.

use std::collections::HashMap;

use unicode_normalization_alignments::UnicodeNormalization;

use super::e5s1::E5s1;
use crate::error::{Error, Result};

const META: char = '\u{2581}';
/// SentencePiece's penalty for an unknown character, below the rarest piece.
const UNK_PENALTY: f64 = 10.0;

pub struct Unigram {
    blob: Vec<u8>,
    offsets: Vec<u32>,
    /// Scores widened to f64 and paths summed in f64, as `tokenizers` does: equal-score
    /// segmentations ("." + "..." or "..." + ".") must tie exactly as they do there.
    scores: Vec<f64>,
    /// Open addressing over FNV-1a of the piece bytes; 0 = empty, else id + 1.
    table: Vec<u32>,
    norm: HashMap<u32, (u32, u32)>,
    norm_out: Vec<char>,
    bos: u32,
    eos: u32,
    unk: u32,
    unk_score: f64,
    max_piece_bytes: usize,
}

fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ b as u64).wrapping_mul(0x100000001b3)
}
const FNV_START: u64 = 0xcbf29ce484222325;

impl Unigram {
    pub fn from_e5s1(image: &E5s1) -> Result<Self> {
        let t = image.tokenizer_section()?;
        let bad = |what: &str| Error::model(&image.path, format!("corrupted embedded tokenizer: {what}"));
        let n = t.offsets.len().checked_sub(1).ok_or_else(|| bad("no offsets"))?;
        if t.scores.len() != n || n == 0 {
            return Err(bad("scores and pieces differ in number"));
        }
        let mut prev = 0u32;
        for &o in &t.offsets {
            if o < prev || o as usize > t.blob.len() {
                return Err(bad("piece offsets out of order"));
            }
            prev = o;
        }
        for id in [t.bos, t.eos, t.pad, t.unk] {
            if id as usize >= n {
                return Err(bad("special token id outside the vocabulary"));
            }
        }
        // Special pieces (<s>, </s>, <pad>, <unk>, <mask>) never match text.
        let special = |id: usize| {
            let p = &t.blob[t.offsets[id] as usize..t.offsets[id + 1] as usize];
            id == t.unk as usize || (p.len() >= 3 && p[0] == b'<' && p[p.len() - 1] == b'>' && t.scores[id] == 0.0)
        };
        let size = (n * 2).next_power_of_two();
        let mut table = vec![0u32; size];
        let mut max_piece_bytes = 0;
        let mut min_score = f32::INFINITY;
        for id in 0..n {
            let p = &t.blob[t.offsets[id] as usize..t.offsets[id + 1] as usize];
            if special(id) || p.is_empty() {
                continue;
            }
            min_score = min_score.min(t.scores[id]);
            max_piece_bytes = max_piece_bytes.max(p.len());
            let mut i = (p.iter().fold(FNV_START, |h, &b| fnv_step(h, b)) as usize) & (size - 1);
            loop {
                match table[i] {
                    0 => {
                        table[i] = id as u32 + 1;
                        break;
                    }
                    // A duplicated piece keeps its first id, as a vocabulary map does.
                    v if &t.blob[t.offsets[v as usize - 1] as usize..t.offsets[v as usize] as usize] == p => break,
                    _ => i = (i + 1) & (size - 1),
                }
            }
        }
        if !min_score.is_finite() {
            return Err(bad("no pieces"));
        }
        let mut norm = HashMap::with_capacity(t.norm.len());
        let mut norm_out = Vec::new();
        for (cp, repl) in &t.norm {
            let start = norm_out.len() as u32;
            norm_out.extend(repl.iter().filter_map(|&c| char::from_u32(c)));
            norm.insert(*cp, (start, norm_out.len() as u32));
        }
        Ok(Unigram {
            blob: t.blob.to_vec(),
            offsets: t.offsets.clone(),
            scores: t.scores.iter().map(|&s| s as f64).collect(),
            table,
            norm,
            norm_out,
            bos: t.bos,
            eos: t.eos,
            unk: t.unk,
            unk_score: min_score as f64 - UNK_PENALTY,
            max_piece_bytes,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// The id of a piece, special pieces included.
    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        (0..self.vocab_size() as u32).find(|&id| self.piece(id) == piece.as_bytes())
    }

    fn piece(&self, id: u32) -> &[u8] {
        &self.blob[self.offsets[id as usize] as usize..self.offsets[id as usize + 1] as usize]
    }

    fn lookup(&self, bytes: &[u8], hash: u64) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            match self.table[i] {
                0 => return None,
                v if self.piece(v - 1) == bytes => return Some(v - 1),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The normalised text with ▁ for spaces and a leading ▁.
    fn normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 4);
        out.push(META);
        let mut last_space = true; // the prepended ▁ counts as a space
        let mut push = |c: char, out: &mut String| {
            if c == ' ' {
                if !last_space {
                    out.push(META);
                }
                last_space = true;
            } else {
                out.push(c);
                last_space = false;
            }
        };
        let mut map = |c: char, out: &mut String| match self.norm.get(&(c as u32)) {
            Some(&(a, b)) => {
                for &r in &self.norm_out[a as usize..b as usize] {
                    push(r, out);
                }
            }
            None => push(c, out),
        };
        if text.is_ascii() {
            text.chars().for_each(|c| map(c, &mut out));
        } else {
            text.nfc().for_each(|(c, _)| map(c, &mut out));
        }
        out
    }

    /// Token ids of one text, `<s>` and `</s>` included.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let norm = self.normalize(text);
        let mut ids = vec![self.bos];
        // Words start at each ▁ (Metaspace's split); Viterbi runs within a word.
        let mut starts: Vec<usize> = norm.char_indices().filter(|&(_, c)| c == META).map(|(i, _)| i).collect();
        if starts.first() != Some(&0) {
            starts.insert(0, 0);
        }
        starts.push(norm.len());
        let mut scratch = Viterbi::default();
        for w in starts.windows(2) {
            if w[1] > w[0] {
                self.viterbi(&norm[w[0]..w[1]], &mut scratch, &mut ids);
            }
        }
        ids.push(self.eos);
        ids
    }

    fn viterbi(&self, word: &str, v: &mut Viterbi, ids: &mut Vec<u32>) {
        let bytes = word.as_bytes();
        let n = bytes.len();
        v.best.clear();
        v.best.resize(n + 1, f64::NEG_INFINITY);
        v.from.clear();
        v.from.resize(n + 1, (usize::MAX, u32::MAX));
        v.best[0] = 0.0;
        for (pos, c) in word.char_indices() {
            let base = v.best[pos];
            if base == f64::NEG_INFINITY {
                continue;
            }
            let clen = c.len_utf8();
            let mut single = false;
            let mut h = FNV_START;
            let end = n.min(pos + self.max_piece_bytes);
            for e in pos..end {
                h = fnv_step(h, bytes[e]);
                let stop = e + 1;
                // Only whole characters can end a piece.
                if !word.is_char_boundary(stop) {
                    continue;
                }
                if let Some(id) = self.lookup(&bytes[pos..stop], h) {
                    let score = base + self.scores[id as usize];
                    if v.from[stop].0 == usize::MAX || score > v.best[stop] {
                        v.best[stop] = score;
                        v.from[stop] = (pos, id);
                    }
                    single |= stop == pos + clen;
                }
            }
            if !single {
                let stop = pos + clen;
                let score = base + self.unk_score;
                if v.from[stop].0 == usize::MAX || score > v.best[stop] {
                    v.best[stop] = score;
                    v.from[stop] = (pos, self.unk);
                }
            }
        }
        let first = ids.len();
        let mut at = n;
        while at > 0 {
            let (from, id) = v.from[at];
            // Consecutive unknown characters become one <unk> (fuse_unk).
            if !(id == self.unk && ids.len() > first && ids[ids.len() - 1] == self.unk) {
                ids.push(id);
            }
            at = from;
        }
        ids[first..].reverse();
    }
}

#[derive(Default)]
struct Viterbi {
    best: Vec<f64>,
    from: Vec<(usize, u32)>,
}
