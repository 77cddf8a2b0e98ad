//! The whole pipeline for articles: segment → encode → score → aggregate, producing
//! the records that [`crate::report`] writes.

use std::path::PathBuf;

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::aggregate::{self, Judgment, Pull};
use crate::cache::{VectorCache, embed_cached};
use crate::data::Task;
use crate::encode::{Embedder, EncoderOptions};
use crate::error::Result;
use crate::models;
use crate::score::{self, Head};
use crate::segment::Sentence;

#[derive(Debug, Clone, Serialize)]
pub struct SentenceResult {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub stance: Judgment,
    pub sentiment: Judgment,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct LabelCounts {
    pub stance: std::collections::BTreeMap<&'static str, usize>,
    pub sentiment: std::collections::BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The sentences that pull most toward openness, strongest first.
    pub openness: Vec<Pull>,
    /// The sentences that pull most toward regulation, strongest first.
    pub regulation: Vec<Pull>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleResult {
    pub id: String,
    pub lang: String,
    pub stance: Judgment,
    pub sentiment: Judgment,
    pub counts: LabelCounts,
    pub explain: Explanation,
    /// What produced these judgments.
    pub model: Provenance,
    pub sentences: Vec<SentenceResult>,
}

/// The encoder variant and the head files behind a record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Provenance {
    pub variant: String,
    pub stance_head: String,
    pub sentiment_head: String,
}

/// A head file's name without its folder (`stance-fused.e5-small-q4.json`).
fn head_name(path: &std::path::Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// An encoder and the two heads, ready to score.
pub struct Scorer {
    pub embedder: Embedder,
    pub stance: Box<dyn Head>,
    pub sentiment: Box<dyn Head>,
    pub stance_path: PathBuf,
    pub sentiment_path: PathBuf,
    /// How many sentences the explanation lists each way.
    pub explain: usize,
}

#[derive(Debug, Clone)]
pub struct ScorerOptions {
    pub model: String,
    pub encoder: EncoderOptions,
    pub stance_head: String,
    pub sentiment_head: String,
    pub explain: usize,
}

impl Default for ScorerOptions {
    fn default() -> Self {
        ScorerOptions {
            model: models::DEFAULT_VARIANT.into(),
            encoder: EncoderOptions::default(),
            stance_head: score::DEFAULT_HEAD.into(),
            sentiment_head: score::DEFAULT_HEAD.into(),
            explain: 3,
        }
    }
}

impl Scorer {
    pub fn load(opts: &ScorerOptions) -> Result<Scorer> {
        let resolved = models::resolve(&opts.model, true)?;
        // Heads are read and checked against the variant before the (slower) encoder
        // loads, and against its width after.
        let (stance, stance_path) = score::read_head(&opts.stance_head, Task::Stance, &resolved.variant)?;
        let (sentiment, sentiment_path) = score::read_head(&opts.sentiment_head, Task::Sentiment, &resolved.variant)?;
        let embedder = Embedder::load(&resolved, &opts.encoder)?;
        stance.check_encoder(&stance_path, &resolved.variant, embedder.dim())?;
        sentiment.check_encoder(&sentiment_path, &resolved.variant, embedder.dim())?;
        let (stance, sentiment) = (stance.into_head(&stance_path)?, sentiment.into_head(&sentiment_path)?);
        Ok(Scorer {
            embedder,
            stance,
            sentiment,
            stance_path,
            sentiment_path,
            explain: opts.explain,
        })
    }

    /// Scores articles already split into sentences; returns one result per article
    /// and the number of sentences newly embedded (the rest came from the cache).
    pub fn score(
        &self,
        articles: &[(String, String, Vec<Sentence>)],
        cache: Option<&mut VectorCache>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<ArticleResult>, usize)> {
        let texts: Vec<&str> = articles.iter().flat_map(|(_, _, s)| s.iter().map(|x| x.text.as_str())).collect();
        let (vectors, fresh) = embed_cached(&self.embedder, cache, &texts, progress)?;
        let mut out = Vec::with_capacity(articles.len());
        let mut k = 0;
        for (id, lang, sents) in articles {
            let vecs = &vectors[k..k + sents.len()];
            k += sents.len();
            out.push(self.judge(id, lang, sents, vecs));
        }
        Ok((out, fresh))
    }

    pub fn judge(&self, id: &str, lang: &str, sents: &[Sentence], vecs: &[Vec<f32>]) -> ArticleResult {
        let dim = self.embedder.dim();
        let features = |kind| {
            if vecs.is_empty() {
                Array2::zeros((0, dim * 2))
            } else {
                score::features(vecs, kind)
            }
        };
        let texts: Vec<&str> = sents.iter().map(|s| s.text.as_str()).collect();
        let st = self.stance.predict_proba(features(self.stance.features()).view(), &texts);
        let se = self.sentiment.predict_proba(features(self.sentiment.features()).view(), &texts);
        let mut counts = LabelCounts::default();
        for l in Task::Stance.labels() {
            counts.stance.insert(l, 0);
        }
        for l in Task::Sentiment.labels() {
            counts.sentiment.insert(l, 0);
        }
        let sentences: Vec<SentenceResult> = sents
            .iter()
            .zip(st.axis_iter(Axis(0)).zip(se.axis_iter(Axis(0))))
            .map(|(s, (ps, pe))| {
                let stance = Judgment::from_probs(Task::Stance, ps);
                let sentiment = Judgment::from_probs(Task::Sentiment, pe);
                *counts.stance.get_mut(stance.label).unwrap() += 1;
                *counts.sentiment.get_mut(sentiment.label).unwrap() += 1;
                SentenceResult {
                    index: s.index,
                    start: s.start,
                    end: s.end,
                    text: s.text.clone(),
                    stance,
                    sentiment,
                }
            })
            .collect();
        let scores: Vec<f32> = sentences.iter().map(|s| s.stance.score).collect();
        let (openness, regulation) = aggregate::strongest(&scores, &texts, self.explain);
        ArticleResult {
            id: id.to_string(),
            lang: lang.to_string(),
            stance: aggregate::aggregate(Task::Stance, &st, self.stance.article_rule()),
            sentiment: aggregate::aggregate(Task::Sentiment, &se, self.sentiment.article_rule()),
            counts,
            explain: Explanation { openness, regulation },
            model: Provenance {
                variant: self.embedder.variant.clone(),
                stance_head: head_name(&self.stance_path),
                sentiment_head: head_name(&self.sentiment_path),
            },
            sentences,
        }
    }
}
