//! Sparse retrieval: an inverted index that scores analyzed text by BM25 or learned sparse
//! vectors (SPLADE, BGE-M3 lexical weights) by dot product, with exact top-k pruning.
//!
//! * [`analyzer`]: text → terms (Unicode or jieba segmentation, lowercasing, stopword lists,
//!   Porter or Snowball stemming), configured per collection by a serde [`AnalyzerConfig`];
//! * [`InvertedIndex`]: blocked posting lists of `(point id, value)` where the value is a term
//!   frequency (BM25) or a weight (dot product); exact incremental insert / remove by point id;
//!   Lucene's BM25 ([`bm25`]); block-max MaxScore search ([`search`]) with filters applied during
//!   the search, equal hit for hit and score for score to the exhaustive scan it is tested
//!   against; a versioned, checksummed byte format ([`format`](mod@format)).
//!
//! ```
//! use ember_index::sparse::{AnalyzerConfig, InvertedIndex, InvertedIndexParams};
//!
//! let mut index = InvertedIndex::new(InvertedIndexParams::bm25(AnalyzerConfig::english())).unwrap();
//! index.insert_text(0, "The cat sat on the mat.").unwrap();
//! index.insert_text(1, "Dogs and cats are running.").unwrap();
//! index.insert_text(2, "A bird in the hand.").unwrap();
//! let hits = index.search_text("running cats", 10, None).unwrap();
//! assert_eq!(hits[0].id, 1);
//! assert_eq!(hits.len(), 2);
//!
//! let mut splade = InvertedIndex::new(InvertedIndexParams::dot()).unwrap();
//! splade.insert_sparse(7, &[(2054, 1.5), (17, 0.25)]).unwrap();
//! let hits = splade.search_sparse(&[(2054, 2.0)], 10, None).unwrap();
//! assert_eq!((hits[0].id, hits[0].score), (7, 3.0));
//! ```

pub mod analyzer;
pub mod bm25;
mod error;
pub mod format;
mod index;
mod porter;
mod postings;
pub mod search;
#[cfg(test)]
mod tests;

pub use analyzer::{Analyzer, AnalyzerConfig, Language, Segmenter, Stemmer, Stopwords, LUCENE_ENGLISH_STOPWORDS};
pub use bm25::{Bm25Formula, Bm25Params, LengthNorm};
pub use error::SparseError;
pub use index::{InvertedIndex, InvertedIndexParams, MAX_SPARSE_ID};
pub use search::SearchStats;
