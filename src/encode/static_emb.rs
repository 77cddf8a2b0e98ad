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
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
        let t = st.tensor(TABLE_NAME).map_err(|_| Error::model(path, format!("no tensor named {TABLE_NAME}")))?;
        let shape = t.shape();
        if shape.len() != 2 || t.dtype() != safetensors::Dtype::F32 {
            return Err(Error::model(path, format!("{TABLE_NAME} must be a 2-D f32 tensor, found {:?} {shape:?}", t.dtype())));
        }
        let table = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        Ok(StaticEmbedding { table, vocab: shape[0], dim: shape[1] })
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
