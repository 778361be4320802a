//! ember's vocabulary: the types every other crate speaks.
//!
//! Nothing here depends on a tensor library: pooling, normalisation, Matryoshka truncation and
//! output quantization work on plain `f32` slices so they are written once and shared by every
//! architecture and backend.

pub mod batching;
pub mod distance;
pub mod embedder;
pub mod error;
pub mod pooling;
pub mod postprocess;
pub mod quantize;
pub mod rerank;
pub mod scoring;

pub use batching::{plan_batches, Batch};
pub use distance::{cosine, dot, Similarity};
pub use embedder::{
    EmbedOptions, Embedder, Embeddings, MultiEmbeddings, OutputKinds, SparseVector, TokenVectors, UnsupportedOutput,
};
pub use error::CoreError;
pub use pooling::PoolingMode;
pub use postprocess::{l2_normalize, truncate_dimensions};
pub use quantize::{quantize, Precision, QuantizedEmbeddings};
pub use rerank::{rank_by_score, RerankOptions, RerankScores, Reranker};
pub use scoring::{colbert_score, sparse_dot, ModeWeights, PairScores, ScoreMode, TextOutputs};
