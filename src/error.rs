//! Typed errors of the library. Every variant that concerns a file names it, so the
//! binary can print a one-line message that tells the user which input is at fault.

use std::path::Path;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An article or text input that cannot be read or is not text.
    #[error("{path}: {msg}")]
    Input { path: String, msg: String },
    /// A model file (weights, tokenizer, config) that is missing, truncated or malformed.
    #[error("{path}: {msg}")]
    Model { path: String, msg: String },
    /// A scoring-head file that is malformed or does not fit the encoder.
    #[error("{path}: {msg}")]
    Head { path: String, msg: String },
    /// Labeled data with a problem on a given line (1-based; 0 for the whole file).
    #[error("{path}:{line}: {msg}")]
    Data { path: String, line: usize, msg: String },
    /// Fetching a model failed (network, pip, checksum).
    #[error("{0}")]
    Fetch(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Usage(String),
    /// The user asked to stop (Ctrl-C, SIGTERM).
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn input(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Input {
            path: show(path),
            msg: msg.into(),
        }
    }
    pub fn model(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Model {
            path: show(path),
            msg: msg.into(),
        }
    }
    pub fn head(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Head {
            path: show(path),
            msg: msg.into(),
        }
    }
    pub fn data(path: impl AsRef<Path>, line: usize, msg: impl Into<String>) -> Self {
        Error::Data {
            path: show(path),
            line,
            msg: msg.into(),
        }
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: show(path), source }
    }
}

pub(crate) fn show(path: impl AsRef<Path>) -> String {
    path.as_ref().display().to_string()
}
