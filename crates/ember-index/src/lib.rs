//! Searching collections of vectors fast. The flat (brute-force) index is exact and is the
//! oracle every approximate index is checked against.
//!
//! * [`distance`]: SIMD kernels (AVX-512 / AVX2 / scalar, picked at run time) on `f32`, `f16`,
//!   `i8` and packed binary vectors;
//! * [`FlatIndex`]: exact search, the oracle;
//! * [`HnswIndex`]: an HNSW graph with tombstone deletes, filters applied during the search and
//!   a versioned byte format;
//! * [`QuantizedFlatIndex`]: an int8 or binary first pass over every point, rescored with the
//!   `f32` vectors;
//! * [`sparse`]: an inverted index scoring analyzed text by BM25 or learned sparse vectors by dot
//!   product, with block-max MaxScore pruning checked against its exhaustive scan.
//!
//! The three dense indexes implement [`DenseIndex`].

mod bytes;
pub mod dense;
pub mod distance;
mod error;
pub mod flat;
pub mod hnsw;
mod metric;
pub mod multivector;
pub mod quantized;
mod random;
pub mod sparse;
#[cfg(test)]
mod testdata;
pub mod topk;

pub use dense::{DenseIndex, PointFilter};
pub use error::IndexError;
pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use quantized::{Quantization, QuantizedFlatIndex};
pub use sparse::{AnalyzerConfig, InvertedIndex, InvertedIndexParams, SparseError};
pub use topk::{top_k, Scored};
