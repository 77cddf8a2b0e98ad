//! The whole pipeline for articles: segment → encode → score → aggregate, producing
//! the records that [`crate::report`] writes.

use std::path::PathBuf;

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::{self, Judgment, Pull};
use crate::cache::{VectorCache, embed_cached};
use crate::data::Task;
use crate::encode::{Embedder, EncoderOptions};
use crate::error::Result;
use crate::models;
use crate::score::{self, Head};
use crate::segment::Sentence;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SentenceResult {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub stance: Judgment,
    pub sentiment: Judgment,
    /// The actors the sentence names (present when a gazetteer was loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct LabelCounts {
    pub stance: std::collections::BTreeMap<String, usize>,
    pub sentiment: std::collections::BTreeMap<String, usize>,
}

impl LabelCounts {
    /// How many sentences of `task` got `label` (0 for a label never counted).
    pub fn get(&self, task: Task, label: &str) -> usize {
        let m = match task {
            Task::Stance => &self.stance,
            Task::Sentiment => &self.sentiment,
        };
        m.get(label).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Explanation {
    /// The sentences that pull most toward openness, strongest first.
    pub openness: Vec<Pull>,
    /// The sentences that pull most toward regulation, strongest first.
    pub regulation: Vec<Pull>,
}

/// One article's judgments: the record that every command writes (JSON, JSON Lines) and
/// every report is rendered from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArticleResult {
    pub id: String,
    pub lang: String,
    pub stance: Judgment,
    pub sentiment: Judgment,
    pub counts: LabelCounts,
    pub explain: Explanation,
    /// What produced these judgments (absent from records of older versions).
    #[serde(default)]
    pub model: Provenance,
    pub sentences: Vec<SentenceResult>,
    #[serde(flatten)]
    pub origin: Origin,
    /// Problems met reading the text that did not stop it being scored (lossy decoding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Where an article came from, and the input's own fields carried through.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Origin {
    /// The file's folder, or the `source` field of a JSON Lines article.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The file the article was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Other fields of a JSON Lines article (`date`, `url`, …), untouched; one named
    /// like a field of the record is kept as `input_NAME` (see [`Origin::carry`]).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// The names a record uses itself.
const RECORD_FIELDS: [&str; 13] = [
    "id",
    "lang",
    "stance",
    "sentiment",
    "counts",
    "explain",
    "model",
    "sentences",
    "source",
    "path",
    "warnings",
    "error",
    "text",
];

impl Origin {
    /// An origin with the input's own fields: a string `path` names the article (as a
    /// file's path does); a field named like one of the record's own is kept, renamed
    /// `input_NAME`, never dropped and never clashing.
    pub fn carry(source: Option<String>, path: Option<String>, fields: Map<String, Value>) -> Origin {
        let mut path = path;
        let mut kept = Map::new();
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("source", Value::String(_)) if source.is_some() => {}
                ("path", Value::String(p)) if path.is_none() => path = Some(p),
                (name, v) if RECORD_FIELDS.contains(&name) => {
                    kept.insert(format!("input_{name}"), v);
                }
                (_, v) => {
                    kept.insert(k, v);
                }
            }
        }
        Origin {
            source,
            path,
            fields: kept,
        }
    }

    /// The input's `date` field, when it has one.
    pub fn date(&self) -> Option<&str> {
        self.fields.get("date").and_then(Value::as_str)
    }
}

/// An article that could not be scored, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailedArticle {
    pub id: String,
    pub error: String,
    #[serde(flatten)]
    pub origin: Origin,
    /// Problems met reading the text before it failed (lossy decoding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One line of a batch: an article's judgments, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Scored(Box<ArticleResult>),
    Failed(FailedArticle),
}

impl Record {
    pub fn id(&self) -> &str {
        match self {
            Record::Scored(a) => &a.id,
            Record::Failed(f) => &f.id,
        }
    }
    pub fn origin(&self) -> &Origin {
        match self {
            Record::Scored(a) => &a.origin,
            Record::Failed(f) => &f.origin,
        }
    }
    pub fn scored(&self) -> Option<&ArticleResult> {
        match self {
            Record::Scored(a) => Some(a),
            Record::Failed(_) => None,
        }
    }
    pub fn failed(&self) -> Option<&FailedArticle> {
        match self {
            Record::Failed(f) => Some(f),
            Record::Scored(_) => None,
        }
    }
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Record::Scored(a) => a.serialize(s),
            Record::Failed(f) => f.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Record {
    /// A record with judgments (`stance`) is a scored article; one without is a failed
    /// one. Records of earlier versions carried input fields under the record's own
    /// names (an input `error`, a numeric `source`): where such a field does not have
    /// the record's type, it is read as the input's `input_NAME` field instead.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let Value::Object(mut o) = Value::deserialize(d)? else {
            return Err(D::Error::custom("a record is a JSON object"));
        };
        let scored = o.contains_key("stance");
        let foreign = |k: &str, v: &Value| match k {
            "source" | "path" => !v.is_string(),
            "warnings" => !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "model" => !v.is_object(),
            "error" => scored || !v.is_string(),
            _ => false,
        };
        let moved: Vec<String> = o.iter().filter(|(k, v)| foreign(k, v)).map(|(k, _)| k.clone()).collect();
        for k in moved {
            if let Some(v) = o.remove(&k) {
                o.insert(format!("input_{k}"), v);
            }
        }
        if !scored && !o.contains_key("error") {
            o.insert("error".into(), Value::String("no judgments in the record".into()));
        }
        let v = Value::Object(o);
        if scored {
            serde_json::from_value(v)
                .map(|a| Record::Scored(Box::new(a)))
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(v).map(Record::Failed).map_err(D::Error::custom)
        }
    }
}

/// The encoder variant and the head files behind a record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
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

    /// Scores articles (id, language, sentences); returns one result per article and
    /// the number of sentences newly embedded (the rest came from the cache). The
    /// sentences are taken, not copied: their texts move into the results, so a huge
    /// article is held once, not three times.
    pub fn score(
        &self,
        articles: Vec<(String, String, Vec<Sentence>)>,
        cache: Option<&mut VectorCache>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<ArticleResult>, usize)> {
        let texts: Vec<&str> = articles.iter().flat_map(|(_, _, s)| s.iter().map(|x| x.text.as_str())).collect();
        let (vectors, fresh) = embed_cached(&self.embedder, cache, &texts, progress)?;
        drop(texts);
        let mut out = Vec::with_capacity(articles.len());
        let mut k = 0;
        for (id, lang, sents) in articles {
            let vecs = &vectors[k..k + sents.len()];
            k += sents.len();
            out.push(self.judge(id, lang, sents, vecs));
        }
        Ok((out, fresh))
    }

    pub fn judge(&self, id: String, lang: String, sents: Vec<Sentence>, vecs: &[Vec<f32>]) -> ArticleResult {
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
        let judged: Vec<(Judgment, Judgment)> = st
            .axis_iter(Axis(0))
            .zip(se.axis_iter(Axis(0)))
            .map(|(ps, pe)| (Judgment::from_probs(Task::Stance, ps), Judgment::from_probs(Task::Sentiment, pe)))
            .collect();
        let scores: Vec<f32> = judged.iter().map(|(j, _)| j.score).collect();
        let (openness, regulation) = aggregate::strongest(&scores, &texts, self.explain);
        drop(texts);
        let mut counts = LabelCounts::default();
        for l in Task::Stance.labels() {
            counts.stance.insert(l.to_string(), 0);
        }
        for l in Task::Sentiment.labels() {
            counts.sentiment.insert(l.to_string(), 0);
        }
        let sentences: Vec<SentenceResult> = sents
            .into_iter()
            .zip(judged)
            .map(|(s, (stance, sentiment))| {
                *counts.stance.entry(stance.label.to_string()).or_default() += 1;
                *counts.sentiment.entry(sentiment.label.to_string()).or_default() += 1;
                SentenceResult {
                    index: s.index,
                    start: s.start,
                    end: s.end,
                    text: s.text,
                    stance,
                    sentiment,
                    actors: None,
                }
            })
            .collect();
        ArticleResult {
            id,
            lang,
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
            origin: Origin::default(),
            warnings: Vec::new(),
        }
    }
}
