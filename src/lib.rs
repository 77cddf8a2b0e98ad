//! `stance`: stance (regulation ↔ openness) and sentiment of news sentences and
//! articles, with a multilingual transformer run in-process by candle.
//!
//! The pipeline is the architecture, one module per stage, data flowing one way:
//! [`segment`] → [`encode`] → [`score`] → [`aggregate`] → [`report`], tied together
//! by [`pipeline`]. Around it: [`input`] (reading and decoding articles), [`models`]
//! (variants, cache, fetching), [`cache`] (sentence vectors on disk), [`data`]
//! (labeled files) and [`train`] (heads, fine-tuning, selection, metrics).

pub mod actors;
pub mod aggregate;
pub mod batch;
pub mod cache;
pub mod data;
pub mod encode;
pub mod error;
pub mod input;
pub mod interrupt;
pub mod models;
pub mod npy;
pub mod pipeline;
pub mod report;
pub mod score;
pub mod segment;
pub mod train;
pub mod util;

pub use error::{Error, Result};
