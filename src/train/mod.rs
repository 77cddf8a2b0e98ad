//! Learning from labeled data: the heads' regressions ([`logistic`] on sentence
//! vectors, [`lexical`] on text), fine-tuning the encoder ([`finetune`]), and model
//! selection by cross-validation grouped by source article ([`select`]), and the
//! quality figures all of them report ([`metrics`]).

pub mod evaluate;
pub mod finetune;
pub mod heads;
pub mod lexical;
pub mod logistic;
pub mod metrics;
pub mod select;

pub use logistic::*;

/// The one train/validation split: whole sources held out (about `percent`% of them,
/// chosen by a stable hash of the seed and the source), never single sentences of one.
/// Fails when either side would have fewer than 10 examples.
pub fn holdout_by_source(examples: &[crate::data::Example], seed: u64, percent: u64) -> crate::Result<(Vec<usize>, Vec<usize>)> {
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, e) in examples.iter().enumerate() {
        let h = crate::util::fnv1a(&[seed.to_string().as_bytes(), e.source.as_bytes()]);
        if h % 100 < percent { val.push(i) } else { train.push(i) }
    }
    if train.len() < 10 || val.len() < 10 {
        return Err(crate::Error::Usage(format!(
            "too few examples to hold out a validation split ({} train, {} validation): change --val-percent or add data",
            train.len(),
            val.len()
        )));
    }
    Ok((train, val))
}

/// One SHA-256 over the bytes of all the files, in order: what trained weights record
/// of their data (never the text).
pub fn files_sha256(paths: &[&std::path::Path]) -> crate::Result<String> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(std::fs::read(p).map_err(|e| crate::Error::io(p, e))?);
    }
    Ok(crate::models::sha256_bytes(&all))
}
