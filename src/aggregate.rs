//! The aggregate stage: sentence judgments in, article judgments out.
//!
//! An article's probabilities are the mean of its sentences' probabilities, each
//! sentence weighted by how much it takes a side, `1 − P(neutral)`: a few sentences that
//! argue decide the article, the many that report facts barely move it (an article of
//! only neutral sentences stays neutral, since then the weights are all alike).

use ndarray::{Array2, ArrayView1, Axis};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::data::Task;
use crate::score::ArticleRule;

/// Probabilities keyed by label, serialised as a JSON object in label order.
#[derive(Debug, Clone, PartialEq)]
pub struct Probs {
    pub labels: [&'static str; 3],
    pub values: [f32; 3],
}

impl Serialize for Probs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        for (l, v) in self.labels.iter().zip(self.values) {
            m.serialize_entry(l, &round_f64(v))?;
        }
        m.end()
    }
}

/// Figures are written with 4 decimals: enough for any reader, and stable across runs.
pub fn round(x: f32) -> f32 {
    (x * 10_000.0).round() / 10_000.0
}

/// The 4-decimal value as the f64 nearest to it, so that it prints the same whether
/// written directly or through a `serde_json::Value` (an f32 widened to f64 would
/// print as `0.07270000129938126`).
pub fn round_f64(x: f32) -> f64 {
    (x as f64 * 10_000.0).round() / 10_000.0
}

fn ser_round<S: Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round_f64(*x))
}

/// A judgment, as computed and as read back from a record. Its figures are held at the
/// 4 decimals they are written with, so a report built from records in memory and one
/// built from the same records read back from JSON Lines are the same to the byte.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Judgment {
    pub label: &'static str,
    /// P(third label) − P(first label): openness − regulation, positive − negative.
    #[serde(serialize_with = "ser_round")]
    pub score: f32,
    pub probs: Probs,
}

impl Judgment {
    pub fn from_probs(task: Task, p: ArrayView1<f32>) -> Judgment {
        let values = [p[0], p[1], p[2]];
        let arg = (0..3).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap();
        let labels = task.labels();
        Judgment {
            label: labels[arg],
            score: round(values[2] - values[0]),
            probs: Probs {
                labels,
                values: values.map(round),
            },
        }
    }
}

impl<'de> serde::Deserialize<'de> for Judgment {
    /// The task is known from the probabilities' labels (`neutral` alone is in both);
    /// a label outside the task's three is an error, not a new label.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(serde::Deserialize)]
        struct Raw {
            label: String,
            score: f32,
            probs: std::collections::BTreeMap<String, f32>,
        }
        let raw = Raw::deserialize(d)?;
        let task = if raw.probs.contains_key("regulation") {
            Task::Stance
        } else {
            Task::Sentiment
        };
        let labels = task.labels();
        let mut values = [0.0f32; 3];
        for (v, l) in values.iter_mut().zip(labels) {
            *v = *raw.probs.get(l).ok_or_else(|| D::Error::custom(format!("probs has no {l:?}")))?;
        }
        let i = task
            .label_index(&raw.label)
            .ok_or_else(|| D::Error::custom(format!("label {:?} is not one of {}", raw.label, labels.join(", "))))?;
        // Held at 4 decimals as when made, so figures read from any record (a foreign
        // one with more digits too) render the same after any number of merges.
        Ok(Judgment {
            label: labels[i],
            score: round(raw.score),
            probs: Probs {
                labels,
                values: values.map(round),
            },
        })
    }
}

/// The weighted mean described in the module docs; `probs` has one row per sentence.
/// A calibrated `rule` (see [`ArticleRule`]) sets the weights' power and how much
/// the neutral probability counts in choosing the label; `None` is the default rule.
pub fn aggregate(task: Task, probs: &Array2<f32>, rule: Option<ArticleRule>) -> Judgment {
    let n = probs.nrows();
    if n == 0 {
        return Judgment::from_probs(task, ndarray::arr1(&[0.0, 1.0, 0.0]).view());
    }
    let rule = rule.unwrap_or_default();
    let power = rule.weight_power;
    let weights: Vec<f32> = probs.axis_iter(Axis(0)).map(|r| (1.0 - r[1]).max(0.0).powf(power)).collect();
    let total: f32 = weights.iter().sum();
    let mut agg = ndarray::Array1::<f32>::zeros(3);
    for (row, w) in probs.axis_iter(Axis(0)).zip(&weights) {
        let w = if total > 1e-6 { *w / total } else { 1.0 / n as f32 };
        agg.scaled_add(w, &row);
    }
    let mut j = Judgment::from_probs(task, agg.view());
    let scaled = [agg[0], agg[1] * rule.neutral_scale, agg[2]];
    let arg = (0..3).max_by(|&a, &b| scaled[a].total_cmp(&scaled[b])).unwrap();
    j.label = task.labels()[arg];
    j
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Pull {
    pub index: usize,
    pub text: String,
    #[serde(serialize_with = "ser_round")]
    pub score: f32,
}

/// The sentences that pull most toward each end of the axis: the `n` highest scores
/// above zero and the `n` lowest below zero, strongest first.
pub fn strongest(scores: &[f32], texts: &[&str], n: usize) -> (Vec<Pull>, Vec<Pull>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let pull = |i: usize| Pull {
        index: i,
        text: texts[i].to_string(),
        score: round(scores[i]),
    };
    let high = order.iter().copied().filter(|&i| scores[i] > 0.0).take(n).map(pull).collect();
    let low = order.iter().rev().copied().filter(|&i| scores[i] < 0.0).take(n).map(pull).collect();
    (high, low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sided_sentences_outweigh_neutral_ones() {
        // Four neutral sentences and one clear openness sentence.
        let mut rows: Vec<f32> = Vec::new();
        for _ in 0..4 {
            rows.extend([0.05, 0.9, 0.05]);
        }
        rows.extend([0.05, 0.1, 0.85]);
        let p = Array2::from_shape_vec((5, 3), rows).unwrap();
        let j = aggregate(Task::Stance, &p, None);
        assert_eq!(j.label, "openness");
        assert!(j.score > 0.3);
        let all_neutral = Array2::from_shape_vec((2, 3), vec![0.1, 0.8, 0.1, 0.1, 0.8, 0.1]).unwrap();
        assert_eq!(aggregate(Task::Stance, &all_neutral, None).label, "neutral");
        // A rule that discounts neutral lets a mildly argued article take its side.
        let mild = Array2::from_shape_vec((2, 3), vec![0.1, 0.6, 0.3, 0.1, 0.7, 0.2]).unwrap();
        assert_eq!(aggregate(Task::Stance, &mild, None).label, "neutral");
        let rule = ArticleRule {
            weight_power: 1.0,
            neutral_scale: 0.3,
        };
        assert_eq!(aggregate(Task::Stance, &mild, Some(rule)).label, "openness");
        let flat = ArticleRule {
            weight_power: 0.0,
            neutral_scale: 1.0,
        };
        // Power 0 weighs every sentence alike: the plain mean.
        let j = aggregate(Task::Stance, &mild, Some(flat));
        assert!((j.probs.values[2] - 0.25).abs() < 1e-6);
        let (hi, lo) = strongest(&[0.5, -0.7, 0.9, 0.0], &["a", "b", "c", "d"], 2);
        assert_eq!(hi.iter().map(|p| p.index).collect::<Vec<_>>(), vec![2, 0]);
        assert_eq!(lo.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1]);
    }
}
