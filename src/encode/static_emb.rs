//! A static embedding table (`e5-small-static`): one vector per vocabulary piece,
//! distilled from the transformer by `stance models distill`; a sentence vector is the
//! mean of its pieces' vectors. Tens of times faster than the transformer, for a cost
//! in accuracy that `stance eval` shows side by side.

use std::path::Path;

use super::Encoder;
use crate::error::{Error, Result};

pub const TABLE_NAME: &str = "embeddings";

pub struct StaticEmbedding {
    table: Vec<f32>,
    vocab: usize,
    dim: usize,
}

impl StaticEmbedding {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
        let t = st
            .tensor(TABLE_NAME)
            .map_err(|_| Error::model(path, format!("no tensor named {TABLE_NAME}")))?;
        let shape = t.shape();
        if shape.len() != 2 || t.dtype() != safetensors::Dtype::F32 {
            return Err(Error::model(
                path,
                format!("{TABLE_NAME} must be a 2-D f32 tensor, found {:?} {shape:?}", t.dtype()),
            ));
        }
        let table = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        Ok(StaticEmbedding {
            table,
            vocab: shape[0],
            dim: shape[1],
        })
    }

    pub fn from_table(table: Vec<f32>, vocab: usize, dim: usize) -> Self {
        assert_eq!(table.len(), vocab * dim);
        StaticEmbedding { table, vocab, dim }
    }
}

impl Encoder for StaticEmbedding {
    fn dim(&self) -> usize {
        self.dim
    }
    fn max_len(&self) -> usize {
        usize::MAX / 2
    }
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn backend(&self) -> &'static str {
        "static-table"
    }
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        Ok(batch
            .iter()
            .map(|ids| {
                let mut v = vec![0f32; self.dim];
                // Skip <s> and </s>: they carry no content in a bag of pieces.
                let inner = if ids.len() > 2 { &ids[1..ids.len() - 1] } else { ids };
                for &id in inner {
                    let row = &self.table[id as usize * self.dim..(id as usize + 1) * self.dim];
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
                super::normalize(&mut v);
                v
            })
            .collect())
    }
}

/// Distils a static table from a transformer, as model2vec does: every vocabulary piece
/// goes through the encoder alone (`<s> piece </s>`), its pooled vector becomes its row,
/// weighted by how informative the piece is — SIF weighting a/(a + p), with p the
/// piece's unigram probability from the tokenizer — so frequent pieces (articles,
/// punctuation) weigh little in a sentence's mean.
pub fn distill(
    encoder: &dyn Encoder,
    tokenizer: &tokenizers::Tokenizer,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<(Vec<f32>, usize, usize)> {
    let vocab = tokenizer.get_vocab_size(true);
    let dim = encoder.dim();
    let probs = unigram_probs(tokenizer, vocab);
    let mut table = vec![0f32; vocab * dim];
    let ids: Vec<[u32; 3]> = (0..vocab as u32).map(|i| [0, i, 2]).collect();
    for (c, chunk) in ids.chunks(batch).enumerate() {
        let seqs: Vec<&[u32]> = chunk.iter().map(|s| &s[..]).collect();
        let vecs = encoder.forward(&seqs)?;
        for (k, v) in vecs.iter().enumerate() {
            let id = c * batch + k;
            let w = 1e-3 / (1e-3 + probs[id]);
            table[id * dim..(id + 1) * dim].iter_mut().zip(v).for_each(|(t, x)| *t = x * w);
        }
        progress(chunk.len());
    }
    Ok((table, vocab, dim))
}

/// Unigram probabilities of the pieces (exp of the Unigram model's log scores); 0 for
/// pieces without a score (special tokens).
fn unigram_probs(tokenizer: &tokenizers::Tokenizer, vocab: usize) -> Vec<f32> {
    let mut p = vec![0f32; vocab];
    if let Ok(v) = serde_json::to_value(tokenizer.get_model()) {
        if let Some(entries) = v.get("vocab").and_then(|x| x.as_array()) {
            for (i, e) in entries.iter().enumerate().take(vocab) {
                if let Some(score) = e.get(1).and_then(|s| s.as_f64()) {
                    p[i] = (score as f32).exp();
                }
            }
        }
    }
    p
}

pub fn save(path: &Path, table: &[f32], vocab: usize, dim: usize, meta: std::collections::HashMap<String, String>) -> Result<()> {
    let bytes: Vec<u8> = table.iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![vocab, dim], &bytes)
        .map_err(|e| Error::model(path, e.to_string()))?;
    let out = safetensors::serialize([(TABLE_NAME, view)], Some(meta)).map_err(|e| Error::model(path, e.to_string()))?;
    crate::util::write_atomic(path, &out)
}
