use std::path::PathBuf;

use ember_core::embedder::BoxError;
use thiserror::Error;

/// Errors of ember's pipelines.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("cannot read {}: {source}", path.display())]
    Source { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] ember_store::StoreError),
    #[error(transparent)]
    Chunk(#[from] ember_chunk::ChunkError),
    #[error("embedding failed: {0}")]
    Embed(BoxError),
    #[error(
        "collection '{collection}' holds vectors of model '{stored}', not '{given}': \
         search or ingest with --model {stored}, or use another collection"
    )]
    ModelMismatch { collection: String, stored: String, given: String },
    #[error("collection '{collection}' needs {what} for this, and none was given")]
    MissingModel { collection: String, what: String },
    #[error(transparent)]
    Fusion(#[from] crate::fusion::FusionError),
    #[error("reranking failed: {0}")]
    Rerank(BoxError),
    #[error("invalid search request on collection '{collection}': {reason}")]
    InvalidRequest { collection: String, reason: String },
}
