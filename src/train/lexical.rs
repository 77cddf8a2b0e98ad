//! Fitting the lexical head: multinomial logistic regression with L2 on sparse TF-IDF
//! rows, class-balanced and weighted per example, by full-batch Adam (convex, so
//! deterministic and exact enough in a few hundred passes).

use rayon::prelude::*;

use crate::score::lexical::{LexicalModel, SparseRow, fit_idf};
use crate::train::logistic::balanced_weights;

pub const EPOCHS: usize = 200;

/// Fits IDF on `texts`, then the regression; `example_weight` as in
/// [`crate::train::logistic::fit_logistic_weighted`].
pub fn fit(texts: &[&str], y: &[usize], example_weight: &[f32], l2: f32, bits: u32) -> LexicalModel {
    assert!(!texts.is_empty() && texts.len() == y.len() && y.len() == example_weight.len());
    let idf = fit_idf(texts, bits);
    let mut model = LexicalModel {
        bits,
        idf,
        weights: vec![0.0; 3 << bits],
        bias: [0.0; 3],
    };
    let x = model.featurize(texts);
    fit_rows(&mut model, &x, y, example_weight, l2, EPOCHS);
    model
}

/// Fits the weights of `model` (its IDF already set) on featurised rows.
pub fn fit_rows(model: &mut LexicalModel, x: &[SparseRow], y: &[usize], example_weight: &[f32], l2: f32, epochs: usize) {
    let b = model.buckets();
    let sw = balanced_weights(y, example_weight);
    let wsum: f32 = sw.iter().sum();
    let mut m = vec![0f32; 3 * b];
    let mut v = vec![0f32; 3 * b];
    let (mut mb, mut vb) = ([0f32; 3], [0f32; 3]);
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    // Buckets no training row touches keep a zero weight and are skipped by the update.
    let mut touched = vec![false; b];
    x.iter().flatten().for_each(|&(j, _)| touched[j as usize] = true);
    let active: Vec<usize> = (0..b).filter(|&j| touched[j]).collect();
    // Fixed chunks summed in order: the same floating-point sums on any number of
    // threads, so a run is bit-identical from its seed (rayon's reduce would vary).
    const CHUNK: usize = 1024;
    for t in 1..=epochs {
        let lr = 0.1 * (1.0 - 0.9 * t as f32 / epochs as f32);
        let logits = model.logits_sparse(x);
        let parts: Vec<(Vec<f32>, [f32; 3])> = x
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, rows)| {
                let mut gw = vec![0f32; 3 * b];
                let mut gb = [0f32; 3];
                for (r, row) in rows.iter().enumerate() {
                    let i = c * CHUNK + r;
                    let l = [logits[[i, 0]], logits[[i, 1]], logits[[i, 2]]];
                    let mx = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e = l.map(|z| (z - mx).exp());
                    let s: f32 = e.iter().sum();
                    for k in 0..3 {
                        let g = (e[k] / s - (y[i] == k) as u8 as f32) * sw[i] / wsum;
                        gb[k] += g;
                        let gk = &mut gw[k * b..(k + 1) * b];
                        for &(j, val) in row {
                            gk[j as usize] += g * val;
                        }
                    }
                }
                (gw, gb)
            })
            .collect();
        let mut parts = parts.into_iter();
        let (mut gw, mut gb) = parts.next().unwrap_or_else(|| (vec![0f32; 3 * b], [0f32; 3]));
        for (pw, pb) in parts {
            for &j in &active {
                for k in 0..3 {
                    gw[k * b + j] += pw[k * b + j];
                }
            }
            (0..3).for_each(|k| gb[k] += pb[k]);
        }
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        for k in 0..3 {
            for &j in &active {
                let idx = k * b + j;
                let g = gw[idx] + l2 * model.weights[idx];
                m[idx] = b1 * m[idx] + (1.0 - b1) * g;
                v[idx] = b2 * v[idx] + (1.0 - b2) * g * g;
                model.weights[idx] -= lr * (m[idx] / c1) / ((v[idx] / c2).sqrt() + eps);
            }
            mb[k] = b1 * mb[k] + (1.0 - b1) * gb[k];
            vb[k] = b2 * vb[k] + (1.0 - b2) * gb[k] * gb[k];
            model.bias[k] -= lr * (mb[k] / c1) / ((vb[k] / c2).sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_words_that_decide_the_label_and_is_deterministic() {
        let reg = [
            "we need binding rules",
            "strict rules protect citizens",
            "binding oversight is needed",
        ];
        let open = [
            "open source frees developers",
            "cut red tape for innovation",
            "open models help everyone",
        ];
        let neu = [
            "the meeting is on tuesday",
            "the report has forty pages",
            "the minister spoke in rome",
        ];
        let mut texts = Vec::new();
        let mut y = Vec::new();
        for (c, set) in [reg, neu, open].iter().enumerate() {
            for t in set.iter() {
                texts.push(*t);
                y.push(c);
            }
        }
        let w = vec![1.0; y.len()];
        let m = fit(&texts, &y, &w, 1e-4, 12);
        let p = m.logits(&["binding rules for oversight", "open source innovation", "on tuesday in rome"]);
        let arg = |r: usize| (0..3).max_by(|&a, &b| p[[r, a]].total_cmp(&p[[r, b]])).unwrap();
        assert_eq!((arg(0), arg(1), arg(2)), (0, 2, 1));
        let again = fit(&texts, &y, &w, 1e-4, 12);
        assert_eq!(again.weights, m.weights);
        // A zero example weight removes an example's pull entirely.
        let mut w0 = w.clone();
        w0[0] = 0.0;
        assert_ne!(fit(&texts, &y, &w0, 1e-4, 12).weights, m.weights);
    }
}
