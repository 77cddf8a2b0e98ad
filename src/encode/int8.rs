//! Integer GEMM for the 4-bit weight matrices of an E5S1 image.
//!
//! Why: on CPUs without AVX-512 the f32 GEMMs already run near the FMA ceiling and are
//! ~80% of the forward. The weights are GGML Q4_0 — 4-bit integers with one f16 scale per
//! 32 inputs — so they are *exactly* small integers times a block scale. Quantising the
//! activations the same way (8-bit, one scale per 32 inputs, as GGML's Q8_0) turns each
//! block's dot product into integer arithmetic, which AVX2's `vpmaddubsw` does 32
//! multiply-adds at a time (four times an f32 FMA's eight). The only approximation is the
//! activations' rounding to 8 bits per block; `tests/model_vectors.rs` checks the vectors
//! against the f32 forward (cosine ≥ 0.9999).
//!
//! Layout. Weights are stored unsigned (the nibble, 0..=15, i.e. q + 8) and activations
//! signed (−127..=127), as `vpmaddubsw` wants (u8 × i8). A pair sum is at most
//! 2·15·127 = 3810, so eight of them (one 32-input block) add up in 16 bits without
//! saturating (30,480 < 32,767). The +8 offset is taken out per block with the
//! activation block's sum: Σ(q+8)·a = Σq·a + 8·Σa.
//!
//! Packing: output rows go in panels of 8 (one 256-bit register of 8 i32 lanes); for each
//! 32-input block, 8 groups of 4 inputs; each group is 8 rows × 4 bytes = 32 bytes, so one
//! load gives every row's next four weights and a broadcast of the activation row's four
//! bytes lines up with them.

use rayon::prelude::*;

use super::e5s1::{Q4_0_BLOCK_BYTES, Q4_0_BLOCK_WEIGHTS};

const BLOCK: usize = Q4_0_BLOCK_WEIGHTS;
/// Output rows per panel.
const PANEL: usize = 8;
/// Activation rows per micro-kernel call.
const TILE: usize = 4;
/// Activation rows per parallel task: a task streams each weight panel once from L2 for
/// these rows (the panel stays in L1 while the row tiles pass over it).
const TASK_ROWS: usize = 64;

/// A `[out, k]` Q4_0 matrix, repacked for the integer kernel.
pub struct Q4Matrix {
    out: usize,
    k: usize,
    /// `[out/8][k/32][8 groups][8 rows][4]` unsigned weights (q + 8).
    packed: Vec<u8>,
    /// `[out/8][k/32][8 rows]` block scales.
    scales: Vec<f32>,
}

/// Activations quantised per row and 32-input block.
pub struct QActs {
    n: usize,
    k: usize,
    q: Vec<i8>,
    /// `[n][k/32]` block scales.
    d: Vec<f32>,
    /// `[n][k/32]` 8 · Σ q over the block (the weights' +8 offset, taken out again).
    offset: Vec<i32>,
}

impl Q4Matrix {
    /// Whether the integer kernel can take a matrix of this shape.
    pub fn fits(out: usize, k: usize) -> bool {
        out % PANEL == 0 && k % BLOCK == 0 && out > 0 && k > 0
    }

    /// Repacks GGML Q4_0 bytes of a row-major `[out, k]` matrix.
    pub fn from_q4_0(bytes: &[u8], out: usize, k: usize) -> Option<Self> {
        let blocks = k / BLOCK;
        if !Self::fits(out, k) || bytes.len() != out * blocks * Q4_0_BLOCK_BYTES {
            return None;
        }
        let mut packed = vec![0u8; out * k];
        let mut scales = vec![0f32; out * blocks];
        for row in 0..out {
            let (p, r) = (row / PANEL, row % PANEL);
            for b in 0..blocks {
                let src = &bytes[(row * blocks + b) * Q4_0_BLOCK_BYTES..][..Q4_0_BLOCK_BYTES];
                scales[(p * blocks + b) * PANEL + r] = half::f16::from_le_bytes([src[0], src[1]]).to_f32();
                let base = (p * blocks + b) * BLOCK * PANEL;
                for i in 0..BLOCK {
                    let byte = src[2 + (i & 15)];
                    let nibble = if i < 16 { byte & 15 } else { byte >> 4 };
                    let (g, j) = (i / 4, i % 4);
                    packed[base + g * 32 + r * 4 + j] = nibble;
                }
            }
        }
        Some(Q4Matrix { out, k, packed, scales })
    }

    pub fn out(&self) -> usize {
        self.out
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// The matrix as f32 `[out, k]` (what the f32 forward multiplies by).
    pub fn dequantize(&self) -> Vec<f32> {
        let blocks = self.k / BLOCK;
        let mut w = vec![0f32; self.out * self.k];
        for row in 0..self.out {
            let (p, r) = (row / PANEL, row % PANEL);
            for b in 0..blocks {
                let d = self.scales[(p * blocks + b) * PANEL + r];
                let base = (p * blocks + b) * BLOCK * PANEL;
                for i in 0..BLOCK {
                    let u = self.packed[base + (i / 4) * 32 + r * 4 + i % 4];
                    w[row * self.k + b * BLOCK + i] = (u as f32 - 8.0) * d;
                }
            }
        }
        w
    }

    /// `y[n, out] = bias + x · Wᵀ`, with `x` quantised by [`quantize`].
    pub fn matmul(&self, x: &QActs, bias: &[f32]) -> Vec<f32> {
        assert_eq!(x.k, self.k, "activation width");
        assert_eq!(bias.len(), self.out, "bias length");
        let len = x.n * self.out;
        // Every element is written below; skipping the zero fill saves a pass over
        // megabytes per product.
        let mut y: Vec<f32> = Vec::with_capacity(len);
        y.spare_capacity_mut()[..len]
            .par_chunks_mut(TASK_ROWS * self.out)
            .enumerate()
            .for_each(|(t, ys)| {
                let row0 = t * TASK_ROWS;
                let rows = ys.len() / self.out;
                self.matmul_rows(x, row0, rows, bias, ys);
            });
        // SAFETY: matmul_rows wrote all `len` elements (every row, every panel).
        unsafe { y.set_len(len) };
        y
    }

    fn matmul_rows(&self, x: &QActs, row0: usize, rows: usize, bias: &[f32], ys: &mut [std::mem::MaybeUninit<f32>]) {
        let blocks = self.k / BLOCK;
        #[cfg(target_arch = "x86_64")]
        {
            if avx2() {
                for p in 0..self.out / PANEL {
                    let w = &self.packed[p * blocks * BLOCK * PANEL..][..blocks * BLOCK * PANEL];
                    let wd = &self.scales[p * blocks * PANEL..][..blocks * PANEL];
                    let b = &bias[p * PANEL..][..PANEL];
                    let mut r = 0;
                    while r < rows {
                        let m = (rows - r).min(TILE);
                        let a = x.rows(row0 + r);
                        let out = &mut ys[r * self.out + p * PANEL..];
                        // SAFETY: the CPU has AVX2 and FMA (checked); every pointer the
                        // kernel forms stays inside the slices passed (m rows of k
                        // activations, `blocks` weight blocks, m output rows of stride out).
                        unsafe {
                            match m {
                                4 => avx2_kernel::<4>(a, w, wd, b, blocks, out, self.out),
                                3 => avx2_kernel::<3>(a, w, wd, b, blocks, out, self.out),
                                2 => avx2_kernel::<2>(a, w, wd, b, blocks, out, self.out),
                                _ => avx2_kernel::<1>(a, w, wd, b, blocks, out, self.out),
                            }
                        }
                        r += m;
                    }
                }
                return;
            }
        }
        self.matmul_rows_portable(x, row0, rows, bias, ys);
    }

    /// The portable path (any CPU), and the reference the AVX2 kernel is tested against.
    fn matmul_rows_portable(&self, x: &QActs, row0: usize, rows: usize, bias: &[f32], ys: &mut [std::mem::MaybeUninit<f32>]) {
        let blocks = self.k / BLOCK;
        for r in 0..rows {
            let a = x.rows(row0 + r);
            for o in 0..self.out {
                let (p, j) = (o / PANEL, o % PANEL);
                let mut acc = 0f32;
                for b in 0..blocks {
                    let base = (p * blocks + b) * BLOCK * PANEL;
                    let mut dot = 0i32;
                    for i in 0..BLOCK {
                        let u = self.packed[base + (i / 4) * 32 + j * 4 + i % 4] as i32;
                        dot += u * a.q[b * BLOCK + i] as i32;
                    }
                    dot -= a.offset[b];
                    acc += dot as f32 * (self.scales[(p * blocks + b) * PANEL + j] * a.d[b]);
                }
                ys[r * self.out + o].write(bias[o] + acc);
            }
        }
    }
}

/// One activation row onwards: its quantised values, scales and offsets, with the row
/// stride (the kernels read `m` consecutive rows).
struct ActRows<'a> {
    q: &'a [i8],
    d: &'a [f32],
    offset: &'a [i32],
    k: usize,
}

impl QActs {
    fn rows(&self, row: usize) -> ActRows<'_> {
        let blocks = self.k / BLOCK;
        ActRows {
            q: &self.q[row * self.k..],
            d: &self.d[row * blocks..],
            offset: &self.offset[row * blocks..],
            k: self.k,
        }
    }
}

/// Quantises `x` (`[n, k]`, row-major) to 8 bits per 32-input block.
pub fn quantize(x: &[f32], n: usize, k: usize) -> QActs {
    assert_eq!(x.len(), n * k, "activation size");
    assert_eq!(k % BLOCK, 0, "activation width");
    let blocks = n * k / BLOCK;
    let mut q = vec![0i8; n * k];
    let mut d = vec![0f32; blocks];
    let mut offset = vec![0i32; blocks];
    const CHUNK: usize = 256;
    q.par_chunks_mut(CHUNK * BLOCK)
        .zip(d.par_chunks_mut(CHUNK).zip(offset.par_chunks_mut(CHUNK)))
        .enumerate()
        .for_each(|(c, (q, (d, off)))| {
            let x = &x[c * CHUNK * BLOCK..][..q.len()];
            quantize_blocks(x, q, d, off);
        });
    QActs { n, k, q, d, offset }
}

fn quantize_blocks(x: &[f32], q: &mut [i8], d: &mut [f32], off: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2() {
            // SAFETY: AVX2 checked; the slices hold whole blocks.
            unsafe { quantize_blocks_avx2(x, q, d, off) };
            return;
        }
    }
    quantize_blocks_portable(x, q, d, off)
}

fn quantize_blocks_portable(x: &[f32], q: &mut [i8], d: &mut [f32], off: &mut [i32]) {
    for (((x, q), d), off) in x
        .chunks_exact(BLOCK)
        .zip(q.chunks_exact_mut(BLOCK))
        .zip(d.iter_mut())
        .zip(off.iter_mut())
    {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        *d = amax / 127.0;
        let mut sum = 0i32;
        for (q, v) in q.iter_mut().zip(x) {
            let r = (v * inv).round_ties_even() as i32;
            *q = r as i8;
            sum += r;
        }
        *off = 8 * sum;
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_blocks_avx2(x: &[f32], q: &mut [i8], d: &mut [f32], off: &mut [i32]) {
    use std::arch::x86_64::*;
    let sign = _mm256_set1_ps(-0.0);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (bi, x) in x.chunks_exact(BLOCK).enumerate() {
        // SAFETY: x holds 32 floats; q has 32 bytes at bi·32.
        unsafe {
            let p = x.as_ptr();
            let v = [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ];
            let mut m = _mm256_andnot_ps(sign, v[0]);
            for vi in &v[1..] {
                m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *vi));
            }
            let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            let m1 = _mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1));
            let amax = _mm_cvtss_f32(m1);
            let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            d[bi] = amax / 127.0;
            let iv = _mm256_set1_ps(inv);
            // Round to nearest even (the default MXCSR mode), as the portable path does.
            let i = [
                _mm256_cvtps_epi32(_mm256_mul_ps(v[0], iv)),
                _mm256_cvtps_epi32(_mm256_mul_ps(v[1], iv)),
                _mm256_cvtps_epi32(_mm256_mul_ps(v[2], iv)),
                _mm256_cvtps_epi32(_mm256_mul_ps(v[3], iv)),
            ];
            let s = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
            let s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            let s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
            let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1));
            off[bi] = 8 * _mm_cvtsi128_si32(s1);
            let w01 = _mm256_packs_epi32(i[0], i[1]);
            let w23 = _mm256_packs_epi32(i[2], i[3]);
            let b = _mm256_packs_epi16(w01, w23);
            let b = _mm256_permutevar8x32_epi32(b, order);
            _mm256_storeu_si256(q.as_mut_ptr().add(bi * BLOCK) as *mut __m256i, b);
        }
    }
}

/// `M` activation rows × one panel of 8 output rows, over all blocks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_kernel<const M: usize>(
    a: ActRows<'_>,
    w: &[u8],
    wd: &[f32],
    bias: &[f32],
    blocks: usize,
    out: &mut [std::mem::MaybeUninit<f32>],
    ostride: usize,
) {
    use std::arch::x86_64::*;
    // Real checks, kept in release builds (a few compares per 8×M tile): the pointer
    // arithmetic below relies on them.
    assert!(
        w.len() >= blocks * BLOCK * PANEL && wd.len() >= blocks * PANEL,
        "int8 kernel: weight panel too short"
    );
    assert!(
        a.q.len() >= (M - 1) * a.k + blocks * BLOCK
            && a.d.len() >= (M - 1) * (a.k / BLOCK) + blocks
            && out.len() >= (M - 1) * ostride + PANEL,
        "int8 kernel: activation or output rows too short"
    );
    // SAFETY: the caller checked the features; the assertions above state the bounds.
    unsafe {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); M];
        let qp = a.q.as_ptr();
        let wp = w.as_ptr();
        let nb = a.k / BLOCK;
        for b in 0..blocks {
            let mut acc16 = [_mm256_setzero_si256(); M];
            let wb = wp.add(b * BLOCK * PANEL);
            for g in 0..8 {
                let wv = _mm256_loadu_si256(wb.add(g * 32) as *const __m256i);
                for r in 0..M {
                    let four = (qp.add(r * a.k + b * BLOCK + g * 4) as *const i32).read_unaligned();
                    acc16[r] = _mm256_add_epi16(acc16[r], _mm256_maddubs_epi16(wv, _mm256_set1_epi32(four)));
                }
            }
            let wdv = _mm256_loadu_ps(wd.as_ptr().add(b * PANEL));
            for r in 0..M {
                let dot = _mm256_sub_epi32(
                    _mm256_madd_epi16(acc16[r], ones),
                    _mm256_set1_epi32(*a.offset.get_unchecked(r * nb + b)),
                );
                let scale = _mm256_mul_ps(wdv, _mm256_set1_ps(*a.d.get_unchecked(r * nb + b)));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[r]);
            }
        }
        let bv = _mm256_loadu_ps(bias.as_ptr());
        for (r, v) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(r * ostride) as *mut f32, _mm256_add_ps(bv, *v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    fn random_q4(rng: &mut Rng, out: usize, k: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..out * k / BLOCK {
            let d = half::f16::from_f32(0.001 + (rng.next_u64() % 1000) as f32 * 1e-4);
            bytes.extend_from_slice(&d.to_le_bytes());
            for _ in 0..16 {
                bytes.push((rng.next_u64() & 0xff) as u8);
            }
        }
        bytes
    }

    #[test]
    fn repacking_keeps_every_weight() {
        let mut rng = Rng(7);
        let (out, k) = (16, 64);
        let bytes = random_q4(&mut rng, out, k);
        let m = Q4Matrix::from_q4_0(&bytes, out, k).unwrap();
        let mut reference = vec![0f32; out * k];
        for (row, dst) in reference.chunks_exact_mut(k).enumerate() {
            crate::encode::e5s1::dequantize_q4_0(&bytes[row * k / BLOCK * Q4_0_BLOCK_BYTES..][..k / BLOCK * Q4_0_BLOCK_BYTES], dst);
        }
        assert_eq!(m.dequantize(), reference);
        assert!(Q4Matrix::from_q4_0(&bytes, out, k + 32).is_none());
        assert!(Q4Matrix::from_q4_0(&bytes[..bytes.len() - 1], out, k).is_none());
    }

    #[test]
    fn integer_product_matches_f32_within_activation_rounding() {
        let mut rng = Rng(11);
        // Odd row counts exercise the partial tiles and a partial task.
        for &(n, out, k) in &[(1, 8, 32), (7, 24, 96), (70, 40, 384), (133, 16, 1536)] {
            let bytes = random_q4(&mut rng, out, k);
            let m = Q4Matrix::from_q4_0(&bytes, out, k).unwrap();
            let w = m.dequantize();
            let x: Vec<f32> = (0..n * k).map(|_| (rng.next_u64() % 20001) as f32 / 10000.0 - 1.0).collect();
            let bias: Vec<f32> = (0..out).map(|i| i as f32 * 0.1).collect();
            let qa = quantize(&x, n, k);
            let y = m.matmul(&qa, &bias);
            for r in 0..n {
                for o in 0..out {
                    let exact: f64 = bias[o] as f64 + (0..k).map(|i| x[r * k + i] as f64 * w[o * k + i] as f64).sum::<f64>();
                    // Bound: each activation moves by at most half a step (amax/254) of its block.
                    let bound: f64 = (0..k)
                        .map(|i| {
                            let blk = &x[r * k + i / BLOCK * BLOCK..][..BLOCK];
                            let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
                            amax / 254.0 * (w[o * k + i] as f64).abs()
                        })
                        .sum::<f64>();
                    let got = y[r * out + o] as f64;
                    assert!(
                        (got - exact).abs() <= bound * 1.001 + 1e-4,
                        "n{n} out{out} k{k} [{r},{o}]: {got} vs {exact} (bound {bound})"
                    );
                }
            }
        }
    }

    /// The AVX2 paths against the portable ones, where the CPU has AVX2 (elsewhere the
    /// portable path is what runs, and the other tests cover it).
    #[test]
    fn simd_paths_match_the_portable_ones() {
        #[cfg(target_arch = "x86_64")]
        {
            if !avx2() {
                return;
            }
            let mut rng = Rng(23);
            for &(n, out, k) in &[(1, 8, 32), (5, 24, 96), (9, 40, 384)] {
                let x: Vec<f32> = (0..n * k).map(|_| (rng.next_u64() % 20001) as f32 / 10000.0 - 1.0).collect();
                let qa = quantize(&x, n, k);
                let blocks = n * k / BLOCK;
                let (mut q, mut d, mut off) = (vec![0i8; n * k], vec![0f32; blocks], vec![0i32; blocks]);
                quantize_blocks_portable(&x, &mut q, &mut d, &mut off);
                assert_eq!(
                    (qa.q.clone(), qa.d.clone(), qa.offset.clone()),
                    (q, d, off),
                    "quantisation n{n} k{k}"
                );
                let m = Q4Matrix::from_q4_0(&random_q4(&mut rng, out, k), out, k).unwrap();
                let bias: Vec<f32> = (0..out).map(|i| i as f32 * 0.01).collect();
                let mut simd = vec![std::mem::MaybeUninit::new(0f32); n * out];
                let mut portable = vec![std::mem::MaybeUninit::new(0f32); n * out];
                m.matmul_rows(&qa, 0, n, &bias, &mut simd);
                m.matmul_rows_portable(&qa, 0, n, &bias, &mut portable);
                for (i, (a, b)) in simd.iter().zip(&portable).enumerate() {
                    // SAFETY: both paths wrote every element.
                    let (a, b) = unsafe { (a.assume_init(), b.assume_init()) };
                    // Integer dot products are exact; only the f32 sums' order differs.
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "n{n} out{out} k{k} [{i}]: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn quantisation_rounds_to_the_block_scale() {
        let mut x = vec![0f32; 64];
        x[3] = 1.27;
        x[4] = -0.634;
        x[5] = 0.00499;
        let qa = quantize(&x, 1, 64);
        assert_eq!(qa.q[3], 127);
        assert_eq!(qa.q[4], -63);
        assert_eq!(qa.q[5], 0);
        assert!((qa.d[0] - 0.01).abs() < 1e-7);
        assert_eq!(qa.d[1], 0.0);
        assert_eq!(qa.offset[0], 8 * (127 - 63));
        assert!(qa.q[32..].iter().all(|&v| v == 0));
    }
}
