use std::path::PathBuf;

use thiserror::Error;

/// Errors of datasets, caches and tasks. File problems name the file and, where there is one,
/// the line.
#[derive(Debug, Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Line { path: PathBuf, line: usize, message: String },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot tell which task {0} is for: expected a BEIR directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), a <split>.tsv, or a .tsv/.json file; pass --task")]
    UnknownLayout(PathBuf),
    #[error("{path}: the {split} split is empty")]
    EmptySplit { path: PathBuf, split: String },
    #[error("task {task} cannot run on this dataset: {message}")]
    TaskMismatch { task: String, message: String },
    #[error("embedding: {0}")]
    Embed(String),
    #[error(transparent)]
    Core(#[from] ember_core::CoreError),
    #[error("metrics: {0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("retrieval: {0}")]
    Engine(#[from] ember_engine::EngineError),
    #[error("retrieval store: {0}")]
    Store(#[from] ember_store::StoreError),
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io { path: path.into(), source }
    }

    pub(crate) fn line(path: impl Into<PathBuf>, line: usize, message: impl ToString) -> Self {
        EvalError::Line { path: path.into(), line, message: message.to_string() }
    }
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;
