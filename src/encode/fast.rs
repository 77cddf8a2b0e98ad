//! Our own BERT forward for the CPU, for E5S1 images.
//!
//! Why not candle's `BertModel`: it pads every batch, runs the exact GELU through a
//! scalar `erf` on one thread, and needs the 250k×384 word table as f32 (384 MB). Here
//! the word table stays in its 4-bit blocks and only the rows a batch uses are
//! dequantised; sentences are packed without padding (attention runs per sentence and
//! head, so no mask is needed); biases are folded into the GEMMs (the output starts as
//! the bias and the GEMM accumulates into it); GELU, softmax and residual+LayerNorm are
//! vectorised kernels. The weight matrices run either as f32 (the `gemm` crate, as candle
//! uses) or, on CPUs with AVX2, as the image's own 4-bit integers through an integer GEMM
//! with 8-bit activations (`int8.rs`, ~1.6× faster; vectors within cosine 0.9999).

use rayon::prelude::*;

use super::Encoder;
use super::e5s1::{DType, E5s1, Q4_0_BLOCK_BYTES, Q4_0_BLOCK_WEIGHTS, dequantize_q4_0};
use super::int8::{self, Q4Matrix};
use super::kernels;
use crate::error::{Error, Result};

/// How the weight matrices are multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights (the image's 4-bit weights dequantised) and f32 activations.
    F32,
    /// The 4-bit weights as integers, activations rounded to 8 bits per 32-value block.
    Int8,
}

impl Precision {
    /// The faster one this CPU runs well: the integer kernel needs AVX2.
    pub fn best_for_cpu() -> Precision {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Precision::Int8;
            }
        }
        Precision::F32
    }
}

/// A low-rank update `W += B·A` kept beside a 4-bit matrix (an adapter), applied to
/// rows `rows.start..rows.end` of the output in f32.
struct LowRank {
    rows: std::ops::Range<usize>,
    rank: usize,
    /// [rank, in]
    a: Vec<f32>,
    /// [out, rank], scale included.
    b: Vec<f32>,
}

/// One weight matrix `[out, in]` and what multiplies by it.
enum Matrix {
    F32(Vec<f32>),
    Int8 { q: Q4Matrix, low_rank: Vec<LowRank> },
}

struct Layer {
    /// Query and key stacked: [2h, h], row-major like `nn.Linear`.
    wqk: Matrix,
    bqk: Vec<f32>,
    wv: Matrix,
    bv: Vec<f32>,
    wao: Matrix,
    bao: Vec<f32>,
    aln_w: Vec<f32>,
    aln_b: Vec<f32>,
    wfi: Matrix,
    bfi: Vec<f32>,
    wfo: Matrix,
    bfo: Vec<f32>,
    oln_w: Vec<f32>,
    oln_b: Vec<f32>,
}

pub struct FastBert {
    precision: Precision,
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
    pub fn from_e5s1(image: &E5s1, precision: Precision) -> Result<Self> {
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
            // The integer kernel takes the 4-bit blocks as they are; anything else (or
            // the f32 precision) runs dequantised.
            let matrix = |names: &[&str], out: usize, k: usize, int8_ok: bool| -> Result<Matrix> {
                if precision == Precision::Int8 && int8_ok {
                    let mut bytes = Vec::new();
                    let mut all_q4 = true;
                    for n in names {
                        let (t, b) = image.raw(&format!("l{l}.{n}"))?;
                        all_q4 &= t.dtype == DType::Q4_0;
                        bytes.extend_from_slice(b);
                    }
                    if all_q4 {
                        if let Some(q) = Q4Matrix::from_q4_0(&bytes, out, k) {
                            return Ok(Matrix::Int8 { q, low_rank: Vec::new() });
                        }
                    }
                }
                let mut w = Vec::with_capacity(out * k);
                for n in names {
                    w.extend(g(n)?);
                }
                if w.len() != out * k {
                    return Err(Error::model(
                        &image.path,
                        format!("l{l}.{} has {} values, expected {}", names[0], w.len(), out * k),
                    ));
                }
                Ok(Matrix::F32(w))
            };
            let (h, f) = (c.hidden, c.ffn);
            let mut bqk = g("q.b")?;
            bqk.extend(g("k.b")?);
            layers.push(Layer {
                wqk: matrix(&["q.w", "k.w"], 2 * h, h, true)?,
                bqk,
                // The value projection stays f32: of the four products it is the one
                // where 8-bit activations move the vectors most (measured on the bench
                // corpus: worst cosine 0.99988 with it in 8 bits, 0.99993 without), and
                // it is only 1/12 of the multiply-adds.
                wv: matrix(&["v.w"], h, h, false)?,
                bv: g("v.b")?,
                wao: matrix(&["ao.w"], h, h, true)?,
                bao: g("ao.b")?,
                aln_w: g("aln.w")?,
                aln_b: g("aln.b")?,
                wfi: matrix(&["fi.w"], f, h, true)?,
                bfi: g("fi.b")?,
                wfo: matrix(&["fo.w"], h, f, true)?,
                bfo: g("fo.b")?,
                oln_w: g("oln.w")?,
                oln_b: g("oln.b")?,
            });
        }
        Ok(FastBert {
            precision,
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
    fn linear(&self, x: &[f32], n: usize, k: usize, w: &Matrix, b: &[f32]) -> Vec<f32> {
        match w {
            Matrix::F32(w) => self.linear_f32(x, n, k, w, b),
            Matrix::Int8 { q, low_rank } => {
                let mut y = q.matmul(&int8::quantize(x, n, k), b);
                let out = b.len();
                for lr in low_rank {
                    // y[:, rows] += (x·Aᵀ)·Bᵀ in f32 on the unrounded activations, as two
                    // thin GEMMs (the rank is 4–8).
                    let mut t = vec![0f32; n * lr.rank];
                    // SAFETY: each buffer holds exactly the elements its strides address;
                    // the output columns lr.rows lie inside y's rows of `out`.
                    unsafe {
                        let par = gemm::Parallelism::Rayon(rayon::current_num_threads());
                        matmul(
                            n,
                            lr.rank,
                            k,
                            t.as_mut_ptr(),
                            lr.rank,
                            false,
                            x.as_ptr(),
                            k,
                            lr.a.as_ptr(),
                            (k, 1),
                            1.0,
                            par,
                        );
                        let dst = y.as_mut_ptr().add(lr.rows.start);
                        matmul(
                            n,
                            lr.rows.len(),
                            lr.rank,
                            dst,
                            out,
                            true,
                            t.as_ptr(),
                            lr.rank,
                            lr.b.as_ptr(),
                            (lr.rank, 1),
                            1.0,
                            par,
                        );
                    }
                }
                y
            }
        }
    }

    fn linear_f32(&self, x: &[f32], n: usize, k: usize, w: &[f32], b: &[f32]) -> Vec<f32> {
        let out = b.len();
        let mut y = Vec::with_capacity(n * out);
        for _ in 0..n {
            y.extend_from_slice(b);
        }
        // SAFETY: all three buffers hold exactly the elements the strides address.
        unsafe {
            let par = gemm::Parallelism::Rayon(rayon::current_num_threads());
            matmul(n, out, k, y.as_mut_ptr(), out, true, x.as_ptr(), k, w.as_ptr(), (k, 1), 1.0, par);
        }
        y
    }

    /// Self-attention for packed sequences: `qk` is [n, 2h] (queries, keys), `v` [n, h];
    /// returns the context [n, h].
    fn attention(&self, qk: &[f32], v: &[f32], spans: &[(usize, usize)]) -> Vec<f32> {
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
            let q = qk[o * 2 * h + hd * d..].as_ptr();
            let k = qk[o * 2 * h + h + hd * d..].as_ptr();
            let v = v[o * h + hd * d..].as_ptr();
            // SAFETY: q/k address l rows of d values at stride 2h inside qk, v at stride
            // h inside v; the context region of (sequence, head) is written by this
            // task only.
            unsafe {
                let none = gemm::Parallelism::None;
                matmul(l, l, d, scores.as_mut_ptr(), l, false, q, 2 * h, k, (2 * h, 1), scale, none);
                for row in scores.chunks_exact_mut(l) {
                    kernels::softmax(row);
                }
                let dst = ctx_ptr.0.add(o * h + hd * d);
                matmul(l, d, l, dst, h, false, scores.as_ptr(), l, v, (1, h), 1.0, none);
            }
        });
        ctx
    }
}

/// `dst[i, j] = (dst[i, j] if accumulate) + scale · Σ_p lhs[i, p] · rhs[p, j]`, through
/// the `gemm` crate. `dst` and `lhs` are row-major with the given row strides; `rhs` is
/// addressed by its (column, row) strides, so a weight `[out, in]` used transposed is
/// `(in, 1)` and a row-major `[k, n]` block is `(1, row stride)`.
///
/// # Safety
/// Every element the strides address lies inside its buffer, and calls running at
/// the same time write disjoint parts of `dst`.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: *const f32,
    (rhs_cs, rhs_rs): (usize, usize),
    scale: f32,
    par: gemm::Parallelism,
) {
    // SAFETY: forwarded from the caller. The crate computes dst = α·dst + β·lhs·rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            1,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            scale,
            false,
            false,
            false,
            par,
        );
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
            let qk = self.linear(&x, n, h, &l.wqk, &l.bqk);
            let v = self.linear(&x, n, h, &l.wv, &l.bv);
            let ctx = self.attention(&qk, &v, &spans);
            drop((qk, v));
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

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Adds a low-rank update `W += B·A` to one weight matrix of one layer (`q`, `k`,
    /// `v`, `ao`, `fi`, `fo`), with `a` [rank, in] and `b` [out, rank] (scale included).
    /// f32 matrices take it merged; 4-bit ones keep it beside them (re-rounding the sum
    /// to 4 bits would cost more accuracy than the adapter adds), at ~1% of the
    /// matrix's multiply-adds for the ranks adapters use. Either way a tuned variant
    /// runs at the base's speed.
    pub fn add_low_rank(&mut self, layer: usize, name: &str, rank: usize, a: Vec<f32>, b: Vec<f32>) -> Result<()> {
        let h = self.h;
        let ffn = self.ffn;
        let l = self
            .layers
            .get_mut(layer)
            .ok_or_else(|| Error::Usage(format!("no layer {layer}")))?;
        let (target, rows, inp): (&mut Matrix, std::ops::Range<usize>, usize) = match name {
            "q" => (&mut l.wqk, 0..h, h),
            "k" => (&mut l.wqk, h..2 * h, h),
            "v" => (&mut l.wv, 0..h, h),
            "ao" => (&mut l.wao, 0..h, h),
            "fi" => (&mut l.wfi, 0..ffn, h),
            "fo" => (&mut l.wfo, 0..h, ffn),
            other => return Err(Error::Usage(format!("unknown matrix {other}"))),
        };
        let out = rows.len();
        if rank == 0 || a.len() != rank * inp || b.len() != out * rank {
            return Err(Error::Usage(format!(
                "adapter for l{layer}.{name}: {} and {} values do not fit [{rank}, {inp}] and [{out}, {rank}]",
                a.len(),
                b.len()
            )));
        }
        match target {
            Matrix::F32(w) => {
                for (o, br) in b.chunks_exact(rank).enumerate() {
                    let wrow = &mut w[(rows.start + o) * inp..][..inp];
                    for (bv, ar) in br.iter().zip(a.chunks_exact(inp)) {
                        if *bv != 0.0 {
                            wrow.iter_mut().zip(ar).for_each(|(w, x)| *w += bv * x);
                        }
                    }
                }
            }
            Matrix::Int8 { low_rank, .. } => low_rank.push(LowRank { rows, rank, a, b }),
        }
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
        match self.precision {
            Precision::F32 => "fast-cpu",
            Precision::Int8 => "fast-cpu-int8",
        }
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
