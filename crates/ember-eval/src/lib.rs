//! Evaluation as MTEB and BEIR do it: datasets, trec_eval-exact metrics, tasks that embed through
//! a cache, and comparison reports.

pub mod cache;
pub mod dataset;
pub mod error;
pub mod metrics;
pub mod report;
pub mod task;

pub use cache::{CachedOutput, EmbeddingCache, OutputCache, SparseCache};
pub use dataset::{
    detect, load_beir, load_labelled, load_pairs, load_reranking, load_squad, LabelledDataset, Layout, PairDataset,
    RerankingDataset, RetrievalDataset,
};
pub use error::EvalError;
pub use task::{EmbedStep, EvalOptions, SparseStep, TaskKind, TaskResult};
