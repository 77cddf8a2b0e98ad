//! Learning from labeled data: the heads' regressions ([`logistic`] on sentence
//! vectors, [`lexical`] on text), fine-tuning the encoder ([`finetune`]), and model
//! selection by cross-validation grouped by source article ([`select`]), and the
//! quality figures all of them report ([`metrics`]).

pub mod evaluate;
pub mod finetune;
pub mod lexical;
pub mod logistic;
pub mod metrics;
pub mod select;

pub use logistic::*;
