use std::path::PathBuf;

use thiserror::Error;

use crate::filter::FilterError;

/// Everything that can go wrong in the store. File-level variants name the file (and the byte
/// offset where it matters) so a corrupt store can be diagnosed without a hex editor.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an ember-store {expected} file (bad magic bytes)", path.display())]
    BadMagic { path: PathBuf, expected: &'static str },
    #[error("{} has format version {found}; this build reads version {supported}", path.display())]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("corrupt data in {} at byte offset {offset}: {reason}", path.display())]
    Corruption { path: PathBuf, offset: u64, reason: String },
    #[error("{} is missing: {reason}", path.display())]
    MissingFile { path: PathBuf, reason: &'static str },
    #[error("{} exists and is not an ember store (no STORE file); refusing to write into it", path.display())]
    NotAStore { path: PathBuf },
    #[error("the store at {} is already open (in this or another process)", path.display())]
    Locked { path: PathBuf },
    #[error("invalid collection name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid collection config: {reason}")]
    InvalidConfig { reason: String },
    #[error("collection '{name}' already exists")]
    AlreadyExists { name: String },
    #[error("no collection named '{name}' (available: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NotFound { name: String, available: Vec<String> },
    #[error("collection '{name}' was dropped")]
    Dropped { name: String },
    #[error("collection '{collection}' holds vectors of dimension {expected}, got {got}")]
    DimensionMismatch { collection: String, expected: usize, got: usize },
    #[error("collection '{collection}': document {id:?} is invalid: {reason}")]
    InvalidDocument { collection: String, id: String, reason: String },
    #[error("collection '{collection}': invalid query: {reason}")]
    InvalidQuery { collection: String, reason: String },
    #[error("collection '{collection}': one write of {bytes} bytes is larger than the {limit}-byte record limit")]
    WriteTooLarge { collection: String, bytes: usize, limit: usize },
    #[error("collection '{collection}' refuses writes after an earlier write-ahead-log failure ({reason}); reopen the store")]
    WriterFailed { collection: String, reason: String },
    #[error("collection '{collection}': index error: {source}")]
    Index {
        collection: String,
        #[source]
        source: ember_core::CoreError,
    },
    #[error("collection '{collection}': sparse index error: {source}")]
    SparseIndex {
        collection: String,
        #[source]
        source: ember_index::SparseError,
    },
    #[error("collection '{collection}' has no {field}; {hint}")]
    MissingField { collection: String, field: &'static str, hint: &'static str },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Backend(#[from] crate::vector_store::BackendError),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }

    pub(crate) fn corruption(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        StoreError::Corruption { path: path.into(), offset, reason: reason.into() }
    }
}
