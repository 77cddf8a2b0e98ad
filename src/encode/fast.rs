//! Our own BERT forward for the CPU, for E5S1 images.
//!
//! Why not candle's `BertModel`: it pads every batch, runs the exact GELU through a
//! scalar `erf` on one thread, and needs the 250k×384 word table as f32 (384 MB). Here
//! the word table stays in its 4-bit blocks and only the rows a batch uses are
//! dequantised; sentences are packed without padding (attention runs per sentence and
//! head, so no mask is needed); biases are folded into the GEMMs (the output starts as
//! the bias and the GEMM accumulates into it); GELU, softmax and residual+LayerNorm are
//! vectorised kernels. Matrices are f32 (the `gemm` crate, as candle uses), because
//! 4-bit GEMMs are slower at these shapes (see README, "Speed").

use rayon::prelude::*;

use super::Encoder;
use super::e5s1::{DType, E5s1, Q4_0_BLOCK_BYTES, Q4_0_BLOCK_WEIGHTS, dequantize_q4_0};
use super::kernels;
use crate::error::{Error, Result};

struct Layer {
    /// Query, key and value stacked: [3h, h], row-major like `nn.Linear`.
    wqkv: Vec<f32>,
    bqkv: Vec<f32>,
    wao: Vec<f32>,
    bao: Vec<f32>,
    aln_w: Vec<f32>,
    aln_b: Vec<f32>,
    wfi: Vec<f32>,
    bfi: Vec<f32>,
    wfo: Vec<f32>,
    bfo: Vec<f32>,
    oln_w: Vec<f32>,
    oln_b: Vec<f32>,
}

pub struct FastBert {
    h: usize,
    heads: usize,
    ffn: usize,
    eps: f32,
    max_pos: usize,
    vocab: usize,
    word_q4: Vec<u8>,
    pos: Vec<f32>,
    type0: Vec<f32>,
    eln_w: Vec<f32>,
    eln_b: Vec<f32>,
    layers: Vec<Layer>,
}

/// A raw pointer that may cross threads; each task writes a disjoint region.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl FastBert {
    pub fn from_e5s1(image: &E5s1) -> Result<Self> {
        let c = image.config;
        let (word, bytes) = image.raw("emb.word")?;
        if word.dtype != DType::Q4_0 {
            return Err(Error::model(
                &image.path,
                "emb.word is not Q4_0; the fast forward expects the 4-bit E5S1 layout",
            ));
        }
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let g = |n: &str| image.f32(&format!("l{l}.{n}"));
            let mut wqkv = g("q.w")?;
            wqkv.extend(g("k.w")?);
            wqkv.extend(g("v.w")?);
            let mut bqkv = g("q.b")?;
            bqkv.extend(g("k.b")?);
            bqkv.extend(g("v.b")?);
            layers.push(Layer {
                wqkv,
                bqkv,
                wao: g("ao.w")?,
                bao: g("ao.b")?,
                aln_w: g("aln.w")?,
                aln_b: g("aln.b")?,
                wfi: g("fi.w")?,
                bfi: g("fi.b")?,
                wfo: g("fo.w")?,
                bfo: g("fo.b")?,
                oln_w: g("oln.w")?,
                oln_b: g("oln.b")?,
            });
        }
        Ok(FastBert {
            h: c.hidden,
            heads: c.heads,
            ffn: c.ffn,
            eps: c.layer_norm_eps,
            max_pos: c.max_positions,
            vocab: c.vocab,
            word_q4: bytes.to_vec(),
            pos: image.f32("emb.pos")?,
            type0: image.type_embeddings()?[..c.hidden].to_vec(),
            eln_w: image.f32("emb.ln.w")?,
            eln_b: image.f32("emb.ln.b")?,
            layers,
        })
    }

    /// y[n, out] = bias + x[n, k] · w[out, k]ᵀ
    fn linear(&self, x: &[f32], n: usize, k: usize, w: &[f32], b: &[f32]) -> Vec<f32> {
        let out = b.len();
        let mut y = Vec::with_capacity(n * out);
        for _ in 0..n {
            y.extend_from_slice(b);
        }
        // SAFETY: all three buffers hold exactly the elements the strides address.
        unsafe {
            gemm::gemm(
                n,
                out,
                k,
                y.as_mut_ptr(),
                1,
                out as isize,
                true,
                x.as_ptr(),
                1,
                k as isize,
                w.as_ptr(),
                k as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
        y
    }

    /// Self-attention for packed sequences: `qkv` is [n, 3h]; returns the context [n, h].
    fn attention(&self, qkv: &[f32], spans: &[(usize, usize)]) -> Vec<f32> {
        let (h, heads) = (self.h, self.heads);
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let n: usize = spans.iter().map(|s| s.1).sum();
        let mut ctx = vec![0f32; n * h];
        let ctx_ptr = SyncPtr(ctx.as_mut_ptr());
        let tasks: Vec<(usize, usize, usize)> = spans.iter().flat_map(|&(o, l)| (0..heads).map(move |hd| (o, l, hd))).collect();
        tasks.par_iter().for_each_init(Vec::new, |scores: &mut Vec<f32>, &(o, l, hd)| {
            let ctx_ptr = ctx_ptr;
            scores.resize(l * l, 0.0);
            let q = qkv[o * 3 * h + hd * d..].as_ptr();
            let k = qkv[o * 3 * h + h + hd * d..].as_ptr();
            let v = qkv[o * 3 * h + 2 * h + hd * d..].as_ptr();
            let s3h = (3 * h) as isize;
            // SAFETY: q/k/v address l rows of d values at stride 3h inside qkv; the
            // context region of (sequence, head) is written by this task only.
            unsafe {
                gemm::gemm(
                    l,
                    l,
                    d,
                    scores.as_mut_ptr(),
                    1,
                    l as isize,
                    false,
                    q,
                    1,
                    s3h,
                    k,
                    s3h,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                for row in scores.chunks_exact_mut(l) {
                    kernels::softmax(row);
                }
                let dst = ctx_ptr.0.add(o * h + hd * d);
                gemm::gemm(
                    l,
                    d,
                    l,
                    dst,
                    1,
                    h as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    l as isize,
                    v,
                    1,
                    s3h,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
        ctx
    }
}

impl FastBert {
    /// Packed hidden states [tokens, h] after the first `upto` layers, and each
    /// sequence's (offset, length) in them.
    pub fn hidden_states(&self, batch: &[&[u32]], upto: usize) -> Result<(Vec<f32>, Vec<(usize, usize)>)> {
        let h = self.h;
        let mut spans = Vec::with_capacity(batch.len());
        let mut n = 0;
        for s in batch {
            if s.len() > self.max_pos || s.is_empty() {
                return Err(Error::Usage(format!("sequence of {} tokens outside 1..={}", s.len(), self.max_pos)));
            }
            spans.push((n, s.len()));
            n += s.len();
        }
        let ids: Vec<u32> = batch.iter().flat_map(|s| s.iter().copied()).collect();
        let positions: Vec<usize> = batch.iter().flat_map(|s| 0..s.len()).collect();
        // Embeddings: dequantise only the rows this batch uses.
        let row_bytes = h / Q4_0_BLOCK_WEIGHTS * Q4_0_BLOCK_BYTES;
        let mut x = vec![0f32; n * h];
        x.par_chunks_mut(h)
            .zip(ids.par_iter().zip(positions.par_iter()))
            .for_each(|(row, (&id, &p))| {
                let id = id as usize;
                dequantize_q4_0(&self.word_q4[id * row_bytes..(id + 1) * row_bytes], row);
                for ((r, pe), te) in row.iter_mut().zip(&self.pos[p * h..(p + 1) * h]).zip(&self.type0) {
                    *r += pe + te;
                }
                kernels::layer_norm(row, &self.eln_w, &self.eln_b, self.eps);
            });
        for l in &self.layers[..upto.min(self.layers.len())] {
            let qkv = self.linear(&x, n, h, &l.wqkv, &l.bqkv);
            let ctx = self.attention(&qkv, &spans);
            drop(qkv);
            let ao = self.linear(&ctx, n, h, &l.wao, &l.bao);
            x.par_chunks_mut(h)
                .zip(ao.par_chunks(h))
                .for_each(|(xr, ar)| kernels::add_layer_norm(xr, ar, &l.aln_w, &l.aln_b, self.eps));
            let mut fi = self.linear(&x, n, h, &l.wfi, &l.bfi);
            fi.par_chunks_mut(self.ffn * 16).for_each(kernels::gelu);
            let fo = self.linear(&fi, n, self.ffn, &l.wfo, &l.bfo);
            x.par_chunks_mut(h)
                .zip(fo.par_chunks(h))
                .for_each(|(xr, fr)| kernels::add_layer_norm(xr, fr, &l.oln_w, &l.oln_b, self.eps));
        }
        Ok((x, spans))
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Adds a low-rank update to one weight matrix of one layer (`q`, `k`, `v`, `ao`,
    /// `fi`, `fo`): W += delta, with delta [out, in] row-major. Used to merge adapters,
    /// so a tuned variant runs exactly as fast as the base.
    pub fn add_to_weight(&mut self, layer: usize, name: &str, delta: &[f32]) -> Result<()> {
        let h = self.h;
        let l = self
            .layers
            .get_mut(layer)
            .ok_or_else(|| Error::Usage(format!("no layer {layer}")))?;
        let target: &mut [f32] = match name {
            "q" => &mut l.wqkv[..h * h],
            "k" => &mut l.wqkv[h * h..2 * h * h],
            "v" => &mut l.wqkv[2 * h * h..],
            "ao" => &mut l.wao,
            "fi" => &mut l.wfi,
            "fo" => &mut l.wfo,
            other => return Err(Error::Usage(format!("unknown matrix {other}"))),
        };
        if target.len() != delta.len() {
            return Err(Error::Usage(format!(
                "adapter for l{layer}.{name} has {} values, the matrix {}",
                delta.len(),
                target.len()
            )));
        }
        target.iter_mut().zip(delta).for_each(|(w, d)| *w += d);
        Ok(())
    }
}

impl Encoder for FastBert {
    fn dim(&self) -> usize {
        self.h
    }
    fn max_len(&self) -> usize {
        self.max_pos
    }
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn backend(&self) -> &'static str {
        "fast-cpu"
    }

    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let h = self.h;
        let (x, spans) = self.hidden_states(batch, self.layers.len())?;
        Ok(spans
            .iter()
            .map(|&(o, len)| {
                let mut v = vec![0f32; h];
                for row in x[o * h..(o + len) * h].chunks_exact(h) {
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
                super::normalize(&mut v);
                v
            })
            .collect())
    }
}
