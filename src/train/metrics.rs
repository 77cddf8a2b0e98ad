//! Quality figures: accuracy, macro-F1 with a bootstrap interval, per-class precision,
//! recall and F1, the confusion matrix and the expected calibration error.

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::util::Rng;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub precision: f32,
    pub recall: f32,
    pub f1: f32,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub n: usize,
    pub accuracy: f32,
    pub macro_f1: f32,
    /// 95% percentile bootstrap interval of macro-F1 (1,000 resamples, fixed seed).
    pub macro_f1_ci: (f32, f32),
    pub per_class: Vec<ClassMetrics>,
    /// confusion[gold][predicted]
    pub confusion: [[usize; 3]; 3],
    /// Expected calibration error over 10 equal-width confidence bins.
    pub ece: f32,
}

fn confusion(gold: &[usize], pred: &[usize]) -> [[usize; 3]; 3] {
    let mut c = [[0; 3]; 3];
    for (&g, &p) in gold.iter().zip(pred) {
        c[g][p] += 1;
    }
    c
}

fn per_class(c: &[[usize; 3]; 3]) -> Vec<ClassMetrics> {
    (0..3)
        .map(|k| {
            let tp = c[k][k] as f32;
            let predicted: usize = (0..3).map(|g| c[g][k]).sum();
            let support: usize = c[k].iter().sum();
            let precision = if predicted > 0 { tp / predicted as f32 } else { 0.0 };
            let recall = if support > 0 { tp / support as f32 } else { 0.0 };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect()
}

/// Macro-F1 over the classes present in the gold labels (a class absent from both gold
/// and predictions says nothing; one absent from gold but predicted counts as 0).
pub fn macro_f1(gold: &[usize], pred: &[usize]) -> f32 {
    let c = confusion(gold, pred);
    let pc = per_class(&c);
    let considered: Vec<&ClassMetrics> = (0..3)
        .filter(|&k| pc[k].support > 0 || (0..3).any(|g| c[g][k] > 0))
        .map(|k| &pc[k])
        .collect();
    if considered.is_empty() {
        return 0.0;
    }
    considered.iter().map(|m| m.f1).sum::<f32>() / considered.len() as f32
}

pub fn ece(gold: &[usize], probs: &Array2<f32>) -> f32 {
    let bins = 10;
    let mut conf_sum = vec![0f32; bins];
    let mut acc_sum = vec![0f32; bins];
    let mut count = vec![0usize; bins];
    for (i, row) in probs.axis_iter(Axis(0)).enumerate() {
        let (arg, &p) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        let b = ((p * bins as f32) as usize).min(bins - 1);
        conf_sum[b] += p;
        acc_sum[b] += (arg == gold[i]) as u8 as f32;
        count[b] += 1;
    }
    let n = gold.len().max(1) as f32;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (acc_sum[b] - conf_sum[b]).abs() / n)
        .sum()
}

impl Metrics {
    pub fn compute(gold: &[usize], pred: &[usize], probs: &Array2<f32>) -> Metrics {
        let c = confusion(gold, pred);
        let n = gold.len();
        let accuracy = if n > 0 {
            (0..3).map(|k| c[k][k]).sum::<usize>() as f32 / n as f32
        } else {
            0.0
        };
        let mut rng = Rng(0x5EED);
        let mut samples: Vec<f32> = (0..1000)
            .map(|_| {
                let idx: Vec<usize> = (0..n).map(|_| rng.below(n.max(1))).collect();
                let g: Vec<usize> = idx.iter().map(|&i| gold[i]).collect();
                let p: Vec<usize> = idx.iter().map(|&i| pred[i]).collect();
                macro_f1(&g, &p)
            })
            .collect();
        samples.sort_by(f32::total_cmp);
        let ci = if n > 0 { (samples[25], samples[974]) } else { (0.0, 0.0) };
        Metrics {
            n,
            accuracy,
            macro_f1: macro_f1(gold, pred),
            macro_f1_ci: ci,
            per_class: per_class(&c),
            confusion: c,
            ece: ece(gold, probs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example() {
        // gold:  0 0 0 1 1 2 ; pred: 0 0 1 1 2 2
        let gold = [0, 0, 0, 1, 1, 2];
        let pred = [0, 0, 1, 1, 2, 2];
        let probs = Array2::from_shape_vec(
            (6, 3),
            vec![
                0.9, 0.05, 0.05, 0.6, 0.2, 0.2, 0.3, 0.6, 0.1, 0.1, 0.8, 0.1, 0.1, 0.3, 0.6, 0.0, 0.0, 1.0,
            ],
        )
        .unwrap();
        let m = Metrics::compute(&gold, &pred, &probs);
        assert_eq!(m.confusion, [[2, 1, 0], [0, 1, 1], [0, 0, 1]]);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-6);
        // class 0: P 1, R 2/3, F1 0.8; class 1: P 1/2, R 1/2, F1 1/2; class 2: P 1/2, R 1, F1 2/3
        let f1s: Vec<f32> = m.per_class.iter().map(|c| c.f1).collect();
        assert!((f1s[0] - 0.8).abs() < 1e-6 && (f1s[1] - 0.5).abs() < 1e-6 && (f1s[2] - 2.0 / 3.0).abs() < 1e-6);
        assert!((m.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-6);
        // ECE: bins by max prob: 0.9 (bin 9, correct), 0.6 (bin 6, correct), 0.6 (bin 6, wrong:
        // argmax 1 = pred 1, gold 0), 0.8 (bin 8, correct), 0.6 (bin 6, argmax 2 vs gold 1: wrong), 1.0 (bin 9, correct)
        // bin 9: |2 − 1.9| = 0.1; bin 8: |1 − 0.8| = 0.2; bin 6: |1 − 1.8| = 0.8 → (0.1+0.2+0.8)/6
        assert!((m.ece - 1.1 / 6.0).abs() < 1e-5, "{}", m.ece);
        assert!(m.macro_f1_ci.0 <= m.macro_f1 && m.macro_f1 <= m.macro_f1_ci.1);
    }
}
