//! The lexical head: hashed character n-grams (within words, as `char_wb`) and word
//! unigrams and bigrams, TF-IDF weighted and L2-normalised, read by a multinomial
//! logistic regression. It reads the sentence's text, not its vector, and makes other
//! mistakes than the encoder head; [`super::FusedHead`] mixes the two.
//!
//! Features are hashed into a fixed number of buckets, so the saved model holds no
//! text of its training data: only per-bucket IDF and weights (f16 safetensors).

use std::collections::HashMap;
use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};

/// log2 of the number of hashed feature buckets.
pub const DEFAULT_BITS: u32 = 18;
/// Character n-gram lengths (inclusive), inside space-padded words.
pub const CHAR_NGRAMS: (usize, usize) = (2, 5);

/// A sparse row: (bucket, value), buckets ascending and unique.
pub type SparseRow = Vec<(u32, f32)>;

/// The bucket hash: FNV-1a over a tag byte (the feature's kind) and the feature.
fn fnv1a(tag: u8, bytes: &[u8]) -> u64 {
    crate::util::fnv1a(&[&[tag], bytes])
}

/// Raw term counts per bucket of one text.
pub fn term_counts(text: &str, bits: u32) -> HashMap<u32, f32> {
    let mask = (1u64 << bits) - 1;
    let lower = text.to_lowercase();
    // Digits are folded to one symbol: years and figures say little about the side taken.
    let words: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect())
        .collect();
    let mut counts: HashMap<u32, f32> = HashMap::new();
    let mut add = |h: u64| *counts.entry((h & mask) as u32).or_default() += 1.0;
    // The hashes are FNV-1a over a tag byte and the feature's UTF-8 bytes, computed
    // without building each feature as a string (the same values as hashing it).
    let mut padded: Vec<char> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        add(fnv1a(1, w.as_bytes()));
        if let Some(next) = words.get(i + 1) {
            add(crate::util::fnv1a(&[&[2], w.as_bytes(), b" ", next.as_bytes()]));
        }
        padded.clear();
        padded.push(' ');
        padded.extend(w.chars());
        padded.push(' ');
        let (lo, hi) = CHAR_NGRAMS;
        for n in lo..=hi {
            if padded.len() < n {
                break;
            }
            for win in padded.windows(n) {
                let mut buf = [0u8; 4];
                let h = win.iter().fold(fnv1a(3, b""), |h, c| {
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .fold(h, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
                });
                add(h);
            }
        }
    }
    counts
}

/// TF-IDF rows: sublinear term frequency times IDF, L2-normalised.
pub fn tfidf(text: &str, bits: u32, idf: &[f32]) -> SparseRow {
    let mut row: SparseRow = term_counts(text, bits)
        .into_iter()
        .map(|(b, c)| (b, (1.0 + c.ln()) * idf[b as usize]))
        .filter(|(_, v)| *v != 0.0)
        .collect();
    row.sort_unstable_by_key(|(b, _)| *b);
    let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter_mut().for_each(|(_, v)| *v /= norm);
    }
    row
}

/// Smoothed IDF over training texts, `ln((1+N)/(1+df)) + 1`; buckets never seen get 0,
/// so they carry no weight at inference either.
pub fn fit_idf(texts: &[&str], bits: u32) -> Vec<f32> {
    let mut df = vec![0u32; 1 << bits];
    for t in texts {
        for b in term_counts(t, bits).keys() {
            df[*b as usize] += 1;
        }
    }
    let n = texts.len() as f32;
    df.iter()
        .map(|&d| if d == 0 { 0.0 } else { ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0 })
        .collect()
}

/// A fitted lexical model: IDF per bucket and a [3, buckets] weight matrix.
#[derive(Debug, Clone)]
pub struct LexicalModel {
    pub bits: u32,
    pub idf: Vec<f32>,
    /// Row-major [3][1 << bits].
    pub weights: Vec<f32>,
    pub bias: [f32; 3],
}

impl LexicalModel {
    pub fn buckets(&self) -> usize {
        1 << self.bits
    }

    pub fn featurize(&self, texts: &[&str]) -> Vec<SparseRow> {
        use rayon::prelude::*;
        texts.par_iter().map(|t| tfidf(t, self.bits, &self.idf)).collect()
    }

    /// Uncalibrated logits, one row per row of `x`.
    pub fn logits_sparse(&self, x: &[SparseRow]) -> Array2<f32> {
        let b = self.buckets();
        let mut out = Array2::zeros((x.len(), 3));
        for (i, row) in x.iter().enumerate() {
            for k in 0..3 {
                let w = &self.weights[k * b..(k + 1) * b];
                out[[i, k]] = self.bias[k] + row.iter().map(|&(j, v)| w[j as usize] * v).sum::<f32>();
            }
        }
        out
    }

    pub fn logits(&self, texts: &[&str]) -> Array2<f32> {
        self.logits_sparse(&self.featurize(texts))
    }

    /// Saves as safetensors (f16 IDF and weights, f32 bias) with `metadata` (provenance),
    /// kept as one JSON object under the key `provenance`: safetensors writes its
    /// metadata map in hash order, and one key keeps the file's bytes reproducible.
    pub fn save(&self, path: &Path, metadata: std::collections::BTreeMap<String, String>) -> Result<()> {
        use safetensors::tensor::{Dtype, TensorView};
        let to_f16 = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect() };
        let idf = to_f16(&self.idf);
        let w = to_f16(&self.weights);
        let bias: Vec<u8> = self.bias.iter().flat_map(|x| x.to_le_bytes()).collect();
        let b = self.buckets();
        let err = |e: safetensors::SafeTensorError| Error::head(path, e.to_string());
        let tensors = vec![
            ("idf", TensorView::new(Dtype::F16, vec![b], &idf).map_err(err)?),
            ("weights", TensorView::new(Dtype::F16, vec![3, b], &w).map_err(err)?),
            ("bias", TensorView::new(Dtype::F32, vec![3], &bias).map_err(err)?),
        ];
        let provenance = serde_json::to_string(&metadata).map_err(|e| Error::head(path, e.to_string()))?;
        let meta = HashMap::from([("provenance".to_string(), provenance)]);
        let bytes = safetensors::serialize(tensors, Some(meta)).map_err(err)?;
        crate::util::write_atomic(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::head(path, "no such lexical model file"),
            _ => Error::io(path, e),
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::head(path, format!("not a lexical model (safetensors): {e}")))?;
        let get = |name: &str| st.tensor(name).map_err(|_| Error::head(path, format!("no tensor {name:?}")));
        let idf_t = get("idf")?;
        let b = *idf_t.shape().first().unwrap_or(&0);
        if !b.is_power_of_two() || !(1 << 10..=1 << 24).contains(&b) {
            return Err(Error::head(
                path,
                format!("{b} buckets: expected a power of two between 2^10 and 2^24"),
            ));
        }
        let f16s = |t: &safetensors::tensor::TensorView, len: usize, name: &str| -> Result<Vec<f32>> {
            if t.dtype() != safetensors::Dtype::F16 || t.data().len() != 2 * len {
                return Err(Error::head(path, format!("tensor {name:?} must be f16 with {len} values")));
            }
            Ok(t.data()
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect())
        };
        let idf = f16s(&idf_t, b, "idf")?;
        let weights = f16s(&get("weights")?, 3 * b, "weights")?;
        let bias_t = get("bias")?;
        if bias_t.dtype() != safetensors::Dtype::F32 || bias_t.data().len() != 12 {
            return Err(Error::head(path, "tensor \"bias\" must be 3 f32 values"));
        }
        let mut bias = [0f32; 3];
        for (k, c) in bias_t.data().chunks_exact(4).enumerate() {
            bias[k] = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        if idf.iter().chain(&weights).chain(&bias).any(|x| !x.is_finite()) {
            return Err(Error::head(path, "non-finite values"));
        }
        Ok(LexicalModel {
            bits: b.trailing_zeros(),
            idf,
            weights,
            bias,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_normalised_case_folded_and_digit_folded() {
        let idf = vec![1.0; 1 << 12];
        let a = tfidf("The AI Act of 2024", 12, &idf);
        let b = tfidf("the ai act of 1999", 12, &idf);
        assert_eq!(a, b);
        let norm: f32 = a.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(tfidf("", 12, &idf).is_empty());
        assert_ne!(tfidf("open source", 12, &idf), tfidf("binding rules", 12, &idf));
    }

    #[test]
    fn hashes_are_those_of_the_features_as_strings() {
        // The committed models were fitted with features hashed as strings.
        let text = "Régulation «stricte» de l'IA, über alles";
        let bits = 18;
        let mask = (1u64 << bits) - 1;
        let mut want: HashMap<u32, f32> = HashMap::new();
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        for (i, w) in words.iter().enumerate() {
            *want.entry((fnv1a(1, w.as_bytes()) & mask) as u32).or_default() += 1.0;
            if let Some(n) = words.get(i + 1) {
                *want.entry((fnv1a(2, format!("{w} {n}").as_bytes()) & mask) as u32).or_default() += 1.0;
            }
            let padded: Vec<char> = format!(" {w} ").chars().collect();
            for n in 2..=5 {
                for win in padded.windows(n) {
                    *want
                        .entry((fnv1a(3, win.iter().collect::<String>().as_bytes()) & mask) as u32)
                        .or_default() += 1.0;
                }
            }
        }
        assert_eq!(term_counts(text, bits), want);
    }

    #[test]
    fn save_and_load_round_trip() {
        let bits = 10;
        let b = 1 << bits;
        let m = LexicalModel {
            bits,
            idf: (0..b).map(|i| (i % 7) as f32 * 0.5).collect(),
            weights: (0..3 * b).map(|i| ((i % 13) as f32 - 6.0) * 0.25).collect(),
            bias: [0.5, -0.25, 0.125],
        };
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lex.safetensors");
        m.save(&p, std::collections::BTreeMap::from([("task".into(), "stance".into())]))
            .unwrap();
        let l = LexicalModel::load(&p).unwrap();
        assert_eq!((l.bits, l.bias), (bits, m.bias));
        // These values are exact in f16.
        assert_eq!(l.weights, m.weights);
        assert_eq!(l.idf, m.idf);
        let lg = l.logits(&["open source models", "rules"]);
        assert_eq!(lg.dim(), (2, 3));
        std::fs::write(&p, b"junk").unwrap();
        assert!(LexicalModel::load(&p).unwrap_err().to_string().contains("lex.safetensors"));
    }
}
