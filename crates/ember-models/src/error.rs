use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong finding, loading or running a model.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("model '{0}' not found: not a local directory, not in the Hugging Face cache, and hub downloads are disabled (HF_HUB_OFFLINE)")]
    NotFound(String),
    #[error("model directory {0} has no config.json")]
    NotAModelDir(PathBuf),
    #[error("downloading {file} of '{repo}' from {endpoint}: {message}")]
    Download { repo: String, file: String, endpoint: String, message: String },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid: {message}")]
    InvalidFile { path: PathBuf, message: String },
    #[error("unsupported architecture '{found}' in {path} (supported model_type values: {supported})")]
    UnsupportedArchitecture { found: String, path: PathBuf, supported: String },
    #[error("'{found}' in {path} is not a reranker ember can run (supported architectures: {supported})")]
    UnsupportedReranker { found: String, path: PathBuf, supported: String },
    #[error("weights in {path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("tokenizing input {index}: {message}")]
    Tokenize { index: usize, message: String },
    #[error("unknown prompt name '{name}' (this model knows: {known})")]
    UnknownPrompt { name: String, known: String },
    #[error("{what} is not enabled in this build (rebuild with `--features {feature}`)")]
    NotEnabled { what: &'static str, feature: &'static str },
    #[error("cannot open device {device}: {message}")]
    DeviceUnavailable { device: String, message: String },
    #[error("model forward pass: {0}")]
    Tensor(candle_core::Error),
    #[error(transparent)]
    Core(#[from] ember_core::CoreError),
    /// A model asked for an output kind it does not produce (dense from SPLADE, …).
    #[error(transparent)]
    Unsupported(#[from] ember_core::UnsupportedOutput),
    /// A batch whose parts do not fit together (a caller's mistake, reported instead of a panic).
    #[error("inference: {0}")]
    Inference(String),
}

impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        ModelError::Tensor(without_backtrace(e))
    }
}

/// candle attaches a backtrace to errors when RUST_BACKTRACE is set and prints it with the
/// message; users get the message alone.
pub(crate) fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        other => other,
    }
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io { path: path.into(), source }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        ModelError::InvalidFile { path: path.into(), message: message.to_string() }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
