use std::path::PathBuf;

use thiserror::Error;

/// Errors raised by ember-chunk: invalid configurations and tokenizers that cannot be loaded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("max_tokens must be at least 1")]
    ZeroMaxTokens,
    #[error("overlap_tokens ({overlap_tokens}) must be smaller than max_tokens ({max_tokens})")]
    OverlapNotBelowMax { overlap_tokens: usize, max_tokens: usize },
    #[error("cannot load tokenizer {}: {message}", path.display())]
    LoadTokenizer { path: PathBuf, message: String },
    #[error("cannot switch off the tokenizer's truncation: {message}")]
    ConfigureTokenizer { message: String },
}
