//! The flags several commands share, each defined once and flattened into the
//! commands that take it. Nothing here depends on a command.

use clap::Args;

use stance::encode::{Backend, EncoderOptions};
use stance::input::{self, ReadOptions};
use stance::models;

/// How input text is read: shared by every command that reads articles.
#[derive(Args, Clone, Debug)]
pub struct TextArgs {
    /// Language of the articles for segmentation (ISO 639-1), or auto (detected per article).
    #[arg(long, default_value = "auto")]
    pub lang: String,
    /// Refuse inputs larger than this many bytes.
    #[arg(long, default_value_t = input::DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,
    /// Replace invalid UTF-8 with U+FFFD (and warn) instead of refusing the file.
    #[arg(long)]
    pub lossy: bool,
}

impl TextArgs {
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            max_bytes: self.max_bytes,
            lossy: self.lossy,
        }
    }
}

/// How a batch report is written: shared by `batch` and `report merge`.
#[derive(Args, Clone, Copy, Debug)]
pub struct ReportArgs {
    /// Report format, when --out has no known extension or writes to standard output
    /// (default: from the extension, else jsonl).
    #[arg(long, value_enum)]
    pub format: Option<stance::report::batch::BatchFormat>,
    /// CSV: one row per sentence instead of per article.
    #[arg(long)]
    pub sentences: bool,
    /// Articles whose text the HTML report shows, shaded.
    #[arg(long, default_value_t = 500)]
    pub html_texts: usize,
}

/// The sentence-vector cache switch: shared by every command that embeds.
#[derive(Args, Clone, Copy, Debug)]
pub struct CacheArgs {
    /// Do not read or write the sentence-vector cache ($STANCE_HOME/vectors).
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Model variant name (see `stance models list`) or a Hugging Face model directory.
    #[arg(long, default_value = models::DEFAULT_VARIANT)]
    pub model: String,
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// Where and how the encoder runs: shared by every command that encodes.
#[derive(Args, Clone, Debug)]
pub struct EncoderArgs {
    /// Device: auto takes a GPU when the build has one and it answers.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Encoder implementation.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

impl EncoderArgs {
    pub fn options(&self) -> EncoderOptions {
        EncoderOptions {
            device: self.device.clone(),
            backend: self.backend,
            ..Default::default()
        }
    }
}

#[derive(Args, Clone)]
pub struct HeadArgs {
    /// Scoring head for both tasks: default (fused where the variant has one, else
    /// linear), fused (encoder + lexical, trained on real news), linear, context,
    /// written (linear, trained on the written sentences), prototype (zero-shot), or a file.
    #[arg(long, default_value = stance::score::DEFAULT_HEAD)]
    pub head: String,
    /// Stance head, overriding --head.
    #[arg(long)]
    pub stance_head: Option<String>,
    /// Sentiment head, overriding --head.
    #[arg(long)]
    pub sentiment_head: Option<String>,
}

impl HeadArgs {
    pub fn stance(&self) -> String {
        self.stance_head.clone().unwrap_or_else(|| self.head.clone())
    }
    pub fn sentiment(&self) -> String {
        self.sentiment_head.clone().unwrap_or_else(|| self.head.clone())
    }
}

impl ModelArgs {
    pub fn encoder_options(&self) -> EncoderOptions {
        self.encoder.options()
    }
}
