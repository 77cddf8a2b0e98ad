//! Fitting a linear head: multinomial logistic regression with L2 regularisation on
//! standardised sentence vectors, class-balanced, fitted by full-batch Adam (the problem
//! is convex and small, so this is exact enough and fully deterministic). The L2
//! strength is picked on a validation split held out by source, and the probabilities
//! are calibrated by a temperature fitted on the same split.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::score::softmax_rows;
use crate::train::metrics::Metrics;

pub struct Fitted {
    /// [3, d] in the original (unstandardised) feature space.
    pub weights: Array2<f32>,
    pub bias: Array1<f32>,
}

/// Fits softmax regression. `l2` is the penalty on the standardised weights.
pub fn fit_logistic(x: ArrayView2<f32>, y: &[usize], l2: f32, epochs: usize) -> Fitted {
    fit_logistic_weighted(x, y, &vec![1.0; y.len()], l2, epochs)
}

/// Class-balanced weights, each class weighing the same in the loss whatever its size,
/// times a weight per example (extra data can count for less than the core data).
pub fn balanced_weights(y: &[usize], example_weight: &[f32]) -> Vec<f32> {
    let mut mass = [0f32; 3];
    y.iter().zip(example_weight).for_each(|(&c, &w)| mass[c] += w);
    let total: f32 = mass.iter().sum();
    let present = mass.iter().filter(|&&m| m > 0.0).count() as f32;
    y.iter()
        .zip(example_weight)
        .map(|(&c, &w)| if mass[c] > 0.0 { w * total / (present * mass[c]) } else { 0.0 })
        .collect()
}

/// [`fit_logistic`] with a weight per example (see [`balanced_weights`]).
pub fn fit_logistic_weighted(x: ArrayView2<f32>, y: &[usize], example_weight: &[f32], l2: f32, epochs: usize) -> Fitted {
    let (n, d) = x.dim();
    assert!(
        n > 0 && y.len() == n && example_weight.len() == n,
        "fit_logistic needs rows and one label and weight each"
    );
    let k = 3;
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let std = x.std_axis(Axis(0), 0.0).mapv(|s| s.max(1e-6));
    let z = (&x - &mean) / &std;
    let sw = balanced_weights(y, example_weight);
    let wsum: f32 = sw.iter().sum();
    let mut onehot = Array2::<f32>::zeros((n, k));
    for (i, &c) in y.iter().enumerate() {
        onehot[[i, c]] = 1.0;
    }
    let mut w = Array2::<f32>::zeros((k, d));
    let mut b = Array1::<f32>::zeros(k);
    let (mut mw, mut vw) = (Array2::<f32>::zeros((k, d)), Array2::<f32>::zeros((k, d)));
    let (mut mb, mut vb) = (Array1::<f32>::zeros(k), Array1::<f32>::zeros(k));
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let sw_col = Array2::from_shape_vec((n, 1), sw).unwrap();
    for t in 1..=epochs {
        let lr = 0.05 * (1.0 - 0.9 * t as f32 / epochs as f32);
        let mut p = z.dot(&w.t()) + &b;
        softmax_rows(&mut p);
        let g = (&p - &onehot) * &sw_col / wsum; // [n, k]
        let gw = g.t().dot(&z) + &(&w * l2);
        let gb = g.sum_axis(Axis(0));
        mw = &mw * b1 + &gw * (1.0 - b1);
        vw = &vw * b2 + &(&gw * &gw) * (1.0 - b2);
        mb = &mb * b1 + &gb * (1.0 - b1);
        vb = &vb * b2 + &(&gb * &gb) * (1.0 - b2);
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        w = &w - &((&mw / c1) / ((&vw / c2).mapv(f32::sqrt) + eps) * lr);
        b = &b - &((&mb / c1) / ((&vb / c2).mapv(f32::sqrt) + eps) * lr);
    }
    // Fold the standardisation into the weights: w·((x−μ)/σ) + b = (w/σ)·x + (b − (w/σ)·μ).
    let w_orig = &w / &std;
    let b_orig = &b - &w_orig.dot(&mean);
    Fitted {
        weights: w_orig,
        bias: b_orig,
    }
}

pub fn logits(f: &Fitted, x: ArrayView2<f32>) -> Array2<f32> {
    x.dot(&f.weights.t()) + &f.bias
}

/// The temperature minimising the negative log-likelihood of `y` under softmax(logits/T).
pub fn fit_temperature(logits: &Array2<f32>, y: &[usize]) -> f32 {
    let nll = |t: f32| -> f64 {
        let mut p = logits / t;
        softmax_rows(&mut p);
        y.iter().enumerate().map(|(i, &c)| -(p[[i, c]].max(1e-12) as f64).ln()).sum::<f64>()
    };
    // Log-spaced grid, then a golden-section refinement around the best point.
    let grid: Vec<f32> = (0..=60).map(|i| 10f32.powf(-2.0 + 3.5 * i as f32 / 60.0)).collect();
    let best = grid.iter().copied().min_by(|a, b| nll(*a).total_cmp(&nll(*b))).unwrap();
    let (mut lo, mut hi) = (best / 1.15, best * 1.15);
    let phi = 0.618_034f32;
    for _ in 0..30 {
        let (m1, m2) = (hi - phi * (hi - lo), lo + phi * (hi - lo));
        if nll(m1) < nll(m2) { hi = m2 } else { lo = m1 }
    }
    (lo + hi) / 2.0
}

pub fn predict(p: &Array2<f32>) -> Vec<usize> {
    p.axis_iter(Axis(0))
        .map(|r| r.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0)
        .collect()
}

/// Picks the L2 strength with the best validation macro-F1 (ties: the stronger penalty).
pub fn select_l2(xt: ArrayView2<f32>, yt: &[usize], xv: ArrayView2<f32>, yv: &[usize], grid: &[f32], epochs: usize) -> (f32, f32) {
    let mut best = (grid[0], -1.0f32);
    for &l2 in grid {
        let f = fit_logistic(xt, yt, l2, epochs);
        let mut p = logits(&f, xv);
        softmax_rows(&mut p);
        let m = Metrics::compute(yv, &predict(&p), &p);
        tracing::info!("l2 {l2}: validation macro-F1 {:.3}", m.macro_f1);
        if m.macro_f1 > best.1 + 1e-6 || (m.macro_f1 >= best.1 - 1e-6 && l2 > best.0) {
            best = (l2, m.macro_f1);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_data_is_learned_and_temperature_is_sane() {
        let mut rng = crate::util::Rng(7);
        let n = 300;
        let mut x = Array2::<f32>::zeros((n, 4));
        let mut y = vec![0; n];
        for i in 0..n {
            let c = i % 3;
            y[i] = c;
            for j in 0..4 {
                x[[i, j]] = (rng.below(1000) as f32 / 1000.0 - 0.5) * 0.5;
            }
            x[[i, c]] += 1.0;
        }
        let f = fit_logistic(x.view(), &y, 1e-3, 300);
        let mut p = logits(&f, x.view());
        softmax_rows(&mut p);
        let acc = predict(&p).iter().zip(&y).filter(|(a, b)| a == b).count();
        assert!(acc > 290, "{acc}");
        let t = fit_temperature(&logits(&f, x.view()), &y);
        assert!(t > 0.0 && t < 10.0);
    }
}
