//! Reader of the E5S1 model image (see README, "Model variants"): a header, an embedded
//! unigram tokenizer we skip (the matching `tokenizer.json` is used instead), a
//! normalisation map, a tensor directory, and the tensors (f32 or GGML Q4_0 blocks).
//!
//! Every read is bounds-checked: a truncated or corrupted file is an error naming the
//! file, never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const MAGIC: &[u8; 4] = b"E5S1";
/// Bytes of one Q4_0 block: an f16 scale and 16 bytes holding 32 four-bit weights.
pub const Q4_0_BLOCK_BYTES: usize = 18;
pub const Q4_0_BLOCK_WEIGHTS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct E5s1Config {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    Q4_0,
}

#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub dtype: DType,
    pub elements: usize,
    pub offset: usize,
    pub len: usize,
}

/// A parsed E5S1 image held in memory.
pub struct E5s1 {
    pub path: PathBuf,
    pub config: E5s1Config,
    bytes: Vec<u8>,
    tensors: HashMap<String, TensorEntry>,
    /// Byte range of the embedded tokenizer.
    tokenizer: std::ops::Range<usize>,
}

/// The embedded tokenizer, parsed (sizes were checked when the image was opened).
pub struct TokenizerSection<'a> {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
    pub offsets: Vec<u32>,
    pub scores: Vec<f32>,
    pub blob: &'a [u8],
    /// Code point → replacement code points (possibly none).
    pub norm: Vec<(u32, Vec<u32>)>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            Error::model(
                self.path,
                format!("truncated E5S1 file: {what} runs past the end at byte {}", self.pos),
            )
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    /// A non-negative i32 count, bounded so that a corrupted header cannot ask for
    /// absurd allocations.
    fn count(&mut self, what: &str, max: usize) -> Result<usize> {
        let v = self.i32(what)?;
        if v < 0 || v as usize > max {
            return Err(Error::model(self.path, format!("corrupted E5S1 header: {what} = {v}")));
        }
        Ok(v as usize)
    }
}

impl std::fmt::Debug for E5s1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E5s1")
            .field("path", &self.path)
            .field("config", &self.config)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl E5s1 {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, bytes)
    }

    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let mut c = Cursor {
            bytes: &bytes,
            pos: 0,
            path,
        };
        let magic = c.take(4, "magic")?;
        if magic != MAGIC {
            return Err(Error::model(path, "not an E5S1 model file (wrong magic bytes)"));
        }
        let version = c.u32("version")?;
        if version != 1 {
            return Err(Error::model(
                path,
                format!("unsupported E5S1 version {version} (this build reads version 1)"),
            ));
        }
        let config = E5s1Config {
            hidden: c.count("hidden", 1 << 16)?,
            layers: c.count("layers", 1024)?,
            heads: c.count("heads", 1024)?,
            ffn: c.count("ffn", 1 << 18)?,
            vocab: c.count("vocab", 1 << 24)?,
            max_positions: c.count("max_positions", 1 << 20)?,
            type_vocab: c.count("type_vocab", 1 << 10)?,
            layer_norm_eps: c.f32("layer_norm_eps")?,
        };
        let _qk = c.i32("qk")?;
        if config.hidden == 0 || config.heads == 0 || config.hidden % config.heads != 0 || config.hidden % Q4_0_BLOCK_WEIGHTS != 0 {
            return Err(Error::model(
                path,
                format!("corrupted E5S1 header: hidden {} / heads {}", config.hidden, config.heads),
            ));
        }
        if !(config.layer_norm_eps.is_finite() && config.layer_norm_eps > 0.0) {
            return Err(Error::model(path, "corrupted E5S1 header: layer_norm_eps"));
        }
        // Embedded tokenizer: located here, read by `unigram.rs` when asked for.
        let tok_start = c.pos;
        let n_pieces = c.count("n_pieces", 1 << 24)?;
        for what in ["bos", "eos", "pad", "unk"] {
            c.i32(what)?;
        }
        let blob_len = c.u64("blob_len")? as usize;
        c.take((n_pieces + 1) * 4, "piece offsets")?;
        c.take(n_pieces * 4, "piece scores")?;
        c.take(blob_len, "piece blob")?;
        let _n_norm = c.i32("normalisation entries")?;
        let norm_bytes = c.u32("normalisation bytes")? as usize;
        c.take(norm_bytes, "normalisation map")?;
        let tokenizer = tok_start..c.pos;
        let n_tensors = c.count("n_tensors", 1 << 16)?;
        let mut tensors = HashMap::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name_len = c.u16("tensor name length")? as usize;
            let name = std::str::from_utf8(c.take(name_len, "tensor name")?)
                .map_err(|_| Error::model(path, "corrupted tensor directory: name is not UTF-8"))?
                .to_string();
            let dtype = match c.u8("tensor dtype")? {
                0 => DType::F32,
                1 => DType::Q4_0,
                d => return Err(Error::model(path, format!("tensor {name}: unknown dtype code {d}"))),
            };
            let elements = c.u32("tensor elements")? as usize;
            let offset = c.u64("tensor offset")? as usize;
            let len = c.u64("tensor length")? as usize;
            let expected = match dtype {
                DType::F32 => elements.checked_mul(4),
                DType::Q4_0 => {
                    if elements % Q4_0_BLOCK_WEIGHTS != 0 {
                        None
                    } else {
                        Some(elements / Q4_0_BLOCK_WEIGHTS * Q4_0_BLOCK_BYTES)
                    }
                }
            };
            if expected != Some(len) {
                return Err(Error::model(
                    path,
                    format!("tensor {name}: byte length {len} does not fit {elements} elements of {dtype:?}"),
                ));
            }
            if offset.checked_add(len).is_none_or(|end| end > bytes.len()) {
                return Err(Error::model(
                    path,
                    format!("truncated E5S1 file: tensor {name} ends past the end of the file"),
                ));
            }
            tensors.insert(
                name,
                TensorEntry {
                    dtype,
                    elements,
                    offset,
                    len,
                },
            );
        }
        let model = E5s1 {
            path: path.to_path_buf(),
            config,
            bytes,
            tensors,
            tokenizer,
        };
        model.check_shapes()?;
        Ok(model)
    }

    /// Every tensor the BERT forward needs is present with the element count the header implies.
    fn check_shapes(&self) -> Result<()> {
        let c = &self.config;
        let h = c.hidden;
        let mut want: Vec<(String, usize)> = vec![
            ("emb.word".into(), c.vocab * h),
            ("emb.pos".into(), c.max_positions * h),
            ("emb.ln.w".into(), h),
            ("emb.ln.b".into(), h),
        ];
        for l in 0..c.layers {
            for (n, e) in [
                ("q.w", h * h),
                ("k.w", h * h),
                ("v.w", h * h),
                ("ao.w", h * h),
                ("fi.w", c.ffn * h),
                ("fo.w", h * c.ffn),
                ("q.b", h),
                ("k.b", h),
                ("v.b", h),
                ("ao.b", h),
                ("fi.b", c.ffn),
                ("fo.b", h),
                ("aln.w", h),
                ("aln.b", h),
                ("oln.w", h),
                ("oln.b", h),
            ] {
                want.push((format!("l{l}.{n}"), e));
            }
        }
        for (name, elements) in want {
            let t = self.entry(&name)?;
            if t.elements != elements {
                return Err(Error::model(
                    &self.path,
                    format!("tensor {name} has {} elements, expected {elements}", t.elements),
                ));
            }
        }
        let ty = self.entry("emb.type")?;
        if ty.elements == 0 || ty.elements % h != 0 {
            return Err(Error::model(
                &self.path,
                format!("tensor emb.type has {} elements, not a multiple of {h}", ty.elements),
            ));
        }
        Ok(())
    }

    pub fn entry(&self, name: &str) -> Result<&TensorEntry> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::model(&self.path, format!("tensor {name} is missing")))
    }

    /// The embedded tokenizer's vocabulary, scores and normalisation map.
    pub fn tokenizer_section(&self) -> Result<TokenizerSection<'_>> {
        let mut c = Cursor {
            bytes: &self.bytes[..self.tokenizer.end],
            pos: self.tokenizer.start,
            path: &self.path,
        };
        let n = c.count("n_pieces", 1 << 24)?;
        let mut ids = [0u32; 4];
        for (v, what) in ids.iter_mut().zip(["bos", "eos", "pad", "unk"]) {
            *v = c.count(what, n.saturating_sub(1))? as u32;
        }
        let blob_len = c.u64("blob_len")? as usize;
        let offsets = c
            .take((n + 1) * 4, "piece offsets")?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let scores = c
            .take(n * 4, "piece scores")?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let blob = c.take(blob_len, "piece blob")?;
        let n_norm = c.count("normalisation entries", 1 << 24)?;
        let norm_bytes = c.u32("normalisation bytes")? as usize;
        let mut m = Cursor {
            bytes: c.take(norm_bytes, "normalisation map")?,
            pos: 0,
            path: &self.path,
        };
        let mut norm = Vec::with_capacity(n_norm.min(1 << 16));
        for _ in 0..n_norm {
            let cp = m.u32("normalised code point")?;
            let k = m.u8("replacement length")? as usize;
            let repl = (0..k).map(|_| m.u32("replacement code point")).collect::<Result<Vec<u32>>>()?;
            norm.push((cp, repl));
        }
        Ok(TokenizerSection {
            bos: ids[0],
            eos: ids[1],
            pad: ids[2],
            unk: ids[3],
            offsets,
            scores,
            blob,
            norm,
        })
    }

    pub fn raw(&self, name: &str) -> Result<(&TensorEntry, &[u8])> {
        let e = self.entry(name)?;
        Ok((e, &self.bytes[e.offset..e.offset + e.len]))
    }

    /// The tensor as f32 values, dequantising Q4_0 blocks.
    pub fn f32(&self, name: &str) -> Result<Vec<f32>> {
        let (e, bytes) = self.raw(name)?;
        Ok(match e.dtype {
            DType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            DType::Q4_0 => {
                let mut out = vec![0f32; e.elements];
                dequantize_q4_0(bytes, &mut out);
                out
            }
        })
    }

    /// The token-type embedding table padded to `type_vocab` rows: the file may hold
    /// fewer rows, and only row 0 is ever used, so row 0 is repeated.
    pub fn type_embeddings(&self) -> Result<Vec<f32>> {
        let h = self.config.hidden;
        let mut t = self.f32("emb.type")?;
        let rows = self.config.type_vocab.max(1);
        while t.len() < rows * h {
            let row0: Vec<f32> = t[..h].to_vec();
            t.extend_from_slice(&row0);
        }
        t.truncate(rows * h);
        Ok(t)
    }
}

/// Dequantises GGML Q4_0 blocks: each block is an f16 scale `d` and 16 bytes whose low
/// nibble holds weight `j` and high nibble weight `j + 16`; a weight is `(nibble - 8) * d`.
pub fn dequantize_q4_0(bytes: &[u8], out: &mut [f32]) {
    for (block, dst) in bytes.chunks_exact(Q4_0_BLOCK_BYTES).zip(out.chunks_exact_mut(Q4_0_BLOCK_WEIGHTS)) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        for j in 0..16 {
            let q = block[2 + j];
            dst[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
            dst[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_block_layout() {
        let mut block = vec![0u8; 18];
        block[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        block[2] = 0x9f; // low nibble 15 -> +7*0.5, high nibble 9 -> +1*0.5
        let mut out = [0f32; 32];
        dequantize_q4_0(&block, &mut out);
        assert_eq!(out[0], 3.5);
        assert_eq!(out[16], 0.5);
        assert_eq!(out[1], -4.0); // nibble 0 -> -8 * 0.5
    }

    #[test]
    fn rejects_garbage_without_panic() {
        let p = Path::new("x.bin");
        assert!(E5s1::parse(p, vec![]).is_err());
        assert!(
            E5s1::parse(p, b"GGUF0000".to_vec())
                .unwrap_err()
                .to_string()
                .contains("wrong magic")
        );
        let mut h = b"E5S1".to_vec();
        h.extend_from_slice(&1u32.to_le_bytes());
        let err = E5s1::parse(p, h).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
